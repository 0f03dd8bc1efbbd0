//! `check` over TLS with a private CA and through a CONNECT proxy: the
//! API and WebSocket checks together, as the daemon would connect.

use super::tests::{api_check_for, temp_dir, websocket_check_for};
use super::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

/// A private CA and a `localhost`/127.0.0.1 server certificate made
/// with the openssl CLI: (ca.pem, server chain, server key).
fn test_pki() -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir("pki");
    let run = |args: &[&str]| {
        let st = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "openssl {args:?}");
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=ados-test-ca",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("srv.pem"), dir.join("srv.key"))
}

/// A TLS server for `conns` connections; each is handed to `serve`.
fn tls_server(
    cert: &Path,
    key: &Path,
    conns: usize,
    serve: fn(rustls::StreamOwned<rustls::ServerConnection, TcpStream>),
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        for _ in 0..conns {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            serve(rustls::StreamOwned::new(conn, tcp));
        }
    });
    (addr, t)
}

fn https_ok(mut s: rustls::StreamOwned<rustls::ServerConnection, TcpStream>) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return, // the client refused our certificate
        }
    }
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = s.flush();
    s.conn.send_close_notify();
    let _ = s.flush();
}

fn wss_accept(s: rustls::StreamOwned<rustls::ServerConnection, TcpStream>) {
    if let Ok(mut ws) = tungstenite::accept(s) {
        while ws.read().is_ok() {}
    }
}

fn tls_config_for(port: u16, ca: Option<&Path>) -> Config {
    let ws = temp_dir("tls");
    let mut pairs = vec![
        (
            "ADOS_API_URL".to_string(),
            format!("https://localhost:{port}"),
        ),
        ("ADOS_TOKEN".into(), "tok".into()),
        ("ADOS_RUNNER_ID".into(), "runner-1".into()),
        ("WORKSPACE_DIR".into(), ws.display().to_string()),
        ("ADOS_CPUS".into(), "1".into()),
        ("ADOS_MEMORY".into(), "4G".into()),
        // localhost must bypass any proxy of the machine running tests.
        ("NO_PROXY".into(), "localhost".into()),
    ];
    if let Some(ca) = ca {
        pairs.push(("ADOS_CA_CERT".into(), ca.display().to_string()));
    }
    Config::from_raw(&RawEnv::from_pairs(pairs), Purpose::Daemon).unwrap()
}

#[test]
fn private_ca_is_trusted_for_api_and_websocket() {
    let (ca, cert, key) = test_pki();

    // With ADOS_CA_CERT: the first (private-CA) attempt succeeds.
    let (addr, t) = tls_server(&cert, &key, 1, https_ok);
    let api = api_check_for(&tls_config_for(addr.port(), Some(&ca)));
    t.join().unwrap();
    assert!(api.ok, "{api:?}");

    // Without it: private CA attempt skipped, the public roots refuse.
    let (addr, t) = tls_server(&cert, &key, 1, https_ok);
    let api = api_check_for(&tls_config_for(addr.port(), None));
    t.join().unwrap();
    assert!(!api.ok && api.detail.contains("certificate"), "{api:?}");

    let (addr, t) = tls_server(&cert, &key, 1, wss_accept);
    let ws = websocket_check_for(&tls_config_for(addr.port(), Some(&ca)));
    t.join().unwrap();
    assert!(ws.ok, "{ws:?}");

    let (addr, t) = tls_server(&cert, &key, 1, wss_accept);
    let ws = websocket_check_for(&tls_config_for(addr.port(), None));
    t.join().unwrap();
    assert!(!ws.ok && ws.detail.contains("certificate"), "{ws:?}");
}

/// A fake CONNECT proxy for one connection: it checks the CONNECT line
/// and credentials, answers 200, then plays the target itself (no real
/// tunnel is needed to test the client side).
fn fake_proxy(
    target: &'static str,
    then: fn(TcpStream),
) -> (SocketAddr, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1);
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.starts_with(&format!("CONNECT {target} HTTP/1.1\r\n")),
            "{head}"
        );
        s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .unwrap();
        then(s);
        head
    });
    (addr, t)
}

fn proxied_config(proxy: SocketAddr) -> Config {
    let ws = temp_dir("proxy");
    Config::from_raw(
        &RawEnv::from_pairs([
            ("ADOS_API_URL", "http://api.ados.invalid:8081"),
            ("ADOS_TOKEN", "tok"),
            ("ADOS_RUNNER_ID", "runner-1"),
            ("WORKSPACE_DIR", ws.to_str().unwrap()),
            ("ADOS_CPUS", "1"),
            ("ADOS_MEMORY", "4G"),
            ("HTTP_PROXY", &format!("http://user:pass@{proxy}")),
        ]),
        Purpose::Daemon,
    )
    .unwrap()
}

#[test]
fn checks_go_through_the_proxy() {
    // The target host does not resolve: only the proxy can reach it.
    let (addr, t) = fake_proxy("api.ados.invalid:8081", |s| {
        if let Ok(mut ws) = tungstenite::accept(s) {
            while ws.read().is_ok() {}
        }
    });
    let ws = websocket_check_for(&proxied_config(addr));
    let head = t.join().unwrap();
    assert!(ws.ok, "{ws:?}");
    assert!(
        head.contains("Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"),
        "{head}"
    );

    let (addr, t) = fake_proxy("api.ados.invalid:8081", |mut s| {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
            head.push(b[0]);
        }
        assert!(head.starts_with(b"GET /api/v1/health HTTP/1.1"));
        s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .unwrap();
    });
    let api = api_check_for(&proxied_config(addr));
    t.join().unwrap();
    assert!(api.ok, "{api:?}");
}
