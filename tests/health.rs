//! The `/health` server against hostile clients over real TCP: a client
//! that pipelines requests and never reads, thousands of idle connections
//! and a huge request head must neither lock out a health check nor cost
//! a thread or memory each.

use ados_work_runner::health::{self, HealthServer};
use ados_work_runner::metrics::Metrics;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Generous: only a server that never answers reaches it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

fn server() -> HealthServer {
    let metrics = Arc::new(Metrics::new());
    metrics.set_connected(true);
    health::serve("127.0.0.1:0".parse().expect("addr"), metrics).expect("serve")
}

fn get_health(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("timeout");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut out = String::new();
    match s.read_to_string(&mut out) {
        Ok(_) => out,
        Err(e) => panic!("/health did not answer: {e}"),
    }
}

fn threads_of_this_process() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

#[test]
fn a_pipelining_client_that_never_reads_does_not_block_health() {
    let server = server();
    let addr = server.local_addr();
    let hog = TcpStream::connect(addr).expect("connect");
    hog.set_write_timeout(Some(CLIENT_TIMEOUT))
        .expect("timeout");
    let sent = Arc::new(AtomicUsize::new(0));
    let writer = std::thread::spawn({
        let sent = Arc::clone(&sent);
        let mut hog = hog.try_clone().expect("clone");
        move || {
            let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
            // Far more answers than socket buffers hold; never read.
            for _ in 0..200_000 {
                if hog.write_all(request).is_err() {
                    break;
                }
                sent.fetch_add(request.len(), Ordering::SeqCst);
            }
            sent.fetch_add(usize::MAX / 2, Ordering::SeqCst);
        }
    });
    // Until the hog has sent plenty (or was cut off), the check waits.
    while sent.load(Ordering::SeqCst) < 256 * 1024 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let answer = get_health(addr);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"status\":\"ok\""), "{answer}");
    drop(hog);
    writer.join().expect("writer");
}

#[test]
fn two_thousand_idle_connections_cost_no_threads_and_do_not_lock_out_health() {
    let server = server();
    let addr = server.local_addr();
    let before = threads_of_this_process();
    let mut idle: Vec<TcpStream> = Vec::with_capacity(2000);
    for _ in 0..20 {
        idle.extend((0..100).map(|_| TcpStream::connect(addr).expect("connect")));
        // Answered after every idle connection before it was accepted (and
        // keeps the listen backlog from overflowing, which costs a SYN retry).
        let answer = get_health(addr);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let after = threads_of_this_process();
    // Other tests of this file run beside this one with a thread or two
    // each; a thread per connection would add 2000.
    assert!(
        after < before + 20,
        "{before} threads before, {after} with 2000 idle connections"
    );
    drop(idle);
}

#[test]
fn a_huge_request_head_is_refused_before_it_ends() {
    let server = server();
    let addr = server.local_addr();
    let mut client = TcpStream::connect(addr).expect("connect");
    client
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("timeout");
    client
        .set_write_timeout(Some(CLIENT_TIMEOUT))
        .expect("timeout");
    let mut writer = client.try_clone().expect("clone");
    // 16 MiB of one header that never ends: the server must not wait for
    // (or keep) all of it.
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(b"GET /health HTTP/1.1\r\nX-Big: ");
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..256 {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let refused = match client.read_to_end(&mut answer) {
        Ok(_) => answer.is_empty() || answer.starts_with(b"HTTP/1.1 431"),
        Err(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
        ),
    };
    assert!(
        refused,
        "expected 431 or a closed connection, got {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    drop(client);
    sender.join().expect("sender");
    // And the server still serves.
    assert!(get_health(addr).starts_with("HTTP/1.1 200"));
}
