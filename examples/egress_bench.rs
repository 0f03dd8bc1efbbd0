//! Throughput of the egress proxy (BENCHMARKS.md, "Egress proxy"):
//! `cargo run --release --example egress_bench [MIB] [RUNS]`.
//!
//! A local server sends MIB mebibytes to each client; the client reads
//! them (1) directly, (2) through the proxy's CONNECT tunnel over TCP, and
//! (3) the way a fenced container does: through the in-container forwarder
//! (TCP on loopback), the job's unix socket and the proxy. Each variant
//! runs RUNS times; the median MB/s (10^6 bytes per second) is printed.

use ados_work_runner::egress::{forward, Allowlist, EgressProxy, Limits};
use ados_work_runner::metrics::Metrics;
use ados_work_runner::net::ProxySettings;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

const CHUNK: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let bytes = mib * 1024 * 1024;
    let server = source(bytes);

    let proxy = EgressProxy::start(
        "127.0.0.1:0".parse().expect("address"),
        ProxySettings::default(),
        Arc::new(Metrics::new()),
        Limits::default(),
    )
    .expect("start the proxy");
    let allow = Allowlist::parse("bench", &format!("127.0.0.1:{}", server.port())).expect("entry");
    let job = proxy.register("bench", allow);
    let dir = std::env::temp_dir().join(format!("ados-egress-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let sock = dir.join("proxy.sock");
    job.listen_unix(&sock).expect("job socket");
    let fwd = TcpListener::bind("127.0.0.1:0").expect("forwarder port");
    let fwd_addr = fwd.local_addr().expect("bound");
    let sock2 = sock.clone();
    std::thread::spawn(move || forward::serve(fwd, &sock2));

    let token = job.token().to_string();
    let target = format!("127.0.0.1:{}", server.port());
    println!("egress proxy throughput: {mib} MiB per run, {runs} runs, median");
    let direct = measure(runs, bytes, || TcpStream::connect(server).expect("connect"));
    report("direct", direct, direct);
    let proxied = measure(runs, bytes, || tunnel(proxy.addr(), &target, &token));
    report("proxy (CONNECT over TCP)", proxied, direct);
    let fenced = measure(runs, bytes, || tunnel(fwd_addr, &target, &token));
    report("forwarder + unix socket + proxy", fenced, direct);
    drop(job);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server that writes `bytes` to every connection, then closes it.
fn source(bytes: u64) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind the source");
    let addr = l.local_addr().expect("bound");
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = c;
                let buf = vec![0x5au8; CHUNK];
                let mut left = bytes;
                while left > 0 {
                    let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    addr
}

/// A CONNECT tunnel to `target` through the proxy at `via`.
fn tunnel(via: SocketAddr, target: &str, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(via).expect("connect to the proxy");
    let auth = ados_work_runner::base64::encode(format!("ados:{token}").as_bytes());
    write!(
        s,
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
    )
    .expect("send CONNECT");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).expect("read the answer");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Median MB/s of `runs` reads of `bytes` from a fresh `connect()`.
fn measure(runs: usize, bytes: u64, connect: impl Fn() -> TcpStream) -> f64 {
    let mut rates: Vec<f64> = (0..runs)
        .map(|_| {
            let mut s = connect();
            let mut buf = vec![0u8; CHUNK];
            let mut got = 0u64;
            let start = Instant::now();
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got += n as u64,
                    Err(e) => panic!("read: {e}"),
                }
            }
            assert_eq!(got, bytes, "short read");
            got as f64 / start.elapsed().as_secs_f64() / 1e6
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn report(what: &str, rate: f64, direct: f64) {
    println!(
        "  {what:<34} {rate:>9.0} MB/s  ({:.0} % of direct)",
        rate / direct * 100.0
    );
}
