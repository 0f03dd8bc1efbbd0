//! The forwarder that runs inside a fenced job container
//! (`ados-work-runner egress-forward`, a hidden subcommand): the container
//! has no network but its own loopback (`--network none`), so the proxy
//! variables point at `127.0.0.1:<port>` there, and this relays each
//! connection to that port over the job's unix socket, bind-mounted from
//! the runner's side, where the proxy decides. It decides nothing itself:
//! whatever runs in the container can replace it, and still reaches only
//! the socket.
//!
//! It is the container's main process (instead of `sleep infinity`), so
//! the container lives exactly as long as it serves.

use super::relay;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Connections relayed at once; more are closed at once.
const MAX_CONNS: usize = 256;

/// A relay idle this long is closed (the proxy has its own, shorter, idle
/// timeout; this one only frees threads the proxy already let go of).
const IDLE: Duration = Duration::from_secs(3600);

/// Usage of the hidden subcommand.
pub const USAGE: &str = "usage: ados-work-runner egress-forward --listen 127.0.0.1:PORT --socket PATH\n\
    (runs inside a job container: relays the container's loopback port to the runner's egress proxy)\n";

/// Parsed arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// Where to listen (the container's loopback).
    pub listen: SocketAddr,
    /// The job's proxy socket.
    pub socket: PathBuf,
}

/// Parse `--listen ADDR --socket PATH` (either order).
///
/// # Errors
/// What is missing or wrong, with the usage.
pub fn parse_args(args: &[String]) -> Result<Args, String> {
    let (mut listen, mut socket) = (None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--listen" => {
                listen = Some(value.parse::<SocketAddr>().map_err(|_| {
                    format!("--listen must be ADDRESS:PORT, like 127.0.0.1:3128\n{USAGE}")
                })?)
            }
            "--socket" => socket = Some(PathBuf::from(value)),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    match (listen, socket) {
        (Some(listen), Some(socket)) => Ok(Args { listen, socket }),
        _ => Err(format!("both --listen and --socket are required\n{USAGE}")),
    }
}

/// Serve until the process is killed (the container stops).
///
/// # Errors
/// The listen address cannot be bound.
pub fn run(args: &Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.listen)?;
    serve(listener, &args.socket);
    Ok(())
}

/// Accept on `listener` and relay each connection to `socket`.
pub fn serve(listener: TcpListener, socket: &Path) {
    let open = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNS {
            open.fetch_sub(1, Ordering::AcqRel);
            continue; // dropped: closed at once
        }
        let (socket, open2) = (socket.to_path_buf(), Arc::clone(&open));
        let started = std::thread::Builder::new()
            .name("ados-egress-fwd".into())
            .stack_size(relay::COPY_STACK)
            .spawn(move || {
                if let Ok(up) = UnixStream::connect(&socket) {
                    let _ = conn.set_nodelay(true);
                    let _ = relay::relay(Box::new(conn), Box::new(up), IDLE);
                }
                open2.fetch_sub(1, Ordering::AcqRel);
            });
        if started.is_err() {
            open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn arguments_in_either_order_and_every_mistake_says_how() {
        let a = parse_args(&s(&[
            "--socket",
            "/run/p.sock",
            "--listen",
            "127.0.0.1:3128",
        ]))
        .unwrap();
        assert_eq!(a.listen, "127.0.0.1:3128".parse().unwrap());
        assert_eq!(a.socket, PathBuf::from("/run/p.sock"));
        for bad in [
            &["--listen", "127.0.0.1:3128"][..],
            &["--listen", "localhost", "--socket", "/s"],
            &["--socket"],
            &["--port", "1"],
        ] {
            let e = parse_args(&s(bad)).unwrap_err();
            assert!(e.contains("usage: ados-work-runner egress-forward"), "{e}");
        }
    }
}
