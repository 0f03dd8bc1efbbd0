//! A tiny HTTP CONNECT proxy that records what it was asked, for the
//! proxy tests: `HTTPS_PROXY=http://127.0.0.1:PORT`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One CONNECT request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// `host:port` asked for.
    pub target: String,
    /// The `Proxy-Authorization` header, if sent.
    pub proxy_authorization: Option<String>,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<ConnectRequest>>,
    sockets: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stopping: AtomicBool,
    /// Where every tunnel goes instead of the CONNECT target.
    upstream: Option<SocketAddr>,
}

/// A running proxy; dropping it closes every tunnel.
pub struct ConnectProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl ConnectProxy {
    /// Listen on `127.0.0.1`, any port.
    ///
    /// # Panics
    /// Cannot bind.
    pub fn start() -> ConnectProxy {
        ConnectProxy::start_with(None)
    }

    /// Like [`ConnectProxy::start`], but every tunnel goes to `upstream`
    /// whatever host the CONNECT names: the proxy resolves names the test
    /// machine cannot (`api.corp.invalid`), as a corporate proxy does.
    ///
    /// # Panics
    /// Cannot bind.
    pub fn start_to(upstream: SocketAddr) -> ConnectProxy {
        ConnectProxy::start_with(Some(upstream))
    }

    fn start_with(upstream: Option<SocketAddr>) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("bound").port();
        let shared = Arc::new(Shared {
            upstream,
            ..Shared::default()
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if s.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let s2 = s.clone();
                    let h = std::thread::Builder::new()
                        .name("proxy-conn".into())
                        .spawn(move || tunnel(stream, &s2))
                        .expect("spawn");
                    s.threads.lock().unwrap().push(h);
                }
            })
            .expect("spawn");
        ConnectProxy {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every CONNECT request so far.
    pub fn requests(&self) -> Vec<ConnectRequest> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        for s in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let threads: Vec<_> = std::mem::take(&mut *self.shared.threads.lock().unwrap());
        for t in threads {
            let _ = t.join();
        }
    }
}

fn tunnel(mut client: TcpStream, shared: &Shared) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
    };
    let proxy_authorization = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_string())
    });
    shared.requests.lock().unwrap().push(ConnectRequest {
        target: target.to_string(),
        proxy_authorization,
    });
    let upstream = match shared.upstream {
        Some(addr) => TcpStream::connect(addr),
        None => TcpStream::connect(target),
    };
    let Ok(upstream) = upstream else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    {
        let mut sockets = shared.sockets.lock().unwrap();
        for s in [&client, &upstream] {
            if let Ok(s) = s.try_clone() {
                sockets.push(s);
            }
        }
    }
    let mut upstream_w = upstream;
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut upstream_w);
        let _ = upstream_w.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut u2, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.join();
}
