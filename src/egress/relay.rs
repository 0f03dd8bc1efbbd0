//! Copying bytes both ways between two connections until both sides are
//! done or the pair has been idle too long: the proxy's tunnels and the
//! in-container forwarder share it. Bytes go through a 16 KiB buffer,
//! never gathered whole; one direction runs on the calling thread, the
//! other on one small named thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Stack size of a copy thread: one 16 KiB buffer and a few frames.
pub const COPY_STACK: usize = 64 * 1024;

const BUF: usize = 16 * 1024;

/// A connection the relay can copy over: TCP or a unix socket.
pub trait Duplex: Read + Write + Send + 'static {
    /// A second handle on the same connection.
    fn dup(&self) -> io::Result<Box<dyn Duplex>>;
    /// Shut down one or both directions (errors ignored: the peer may be
    /// gone already).
    fn close(&self, how: Shutdown);
    /// Bound each read and each write.
    fn timeouts(&self, read: Duration, write: Duration) -> io::Result<()>;
}

/// TCP and unix streams have the same calls under the same names.
macro_rules! duplex {
    ($t:ty) => {
        impl Duplex for $t {
            fn dup(&self) -> io::Result<Box<dyn Duplex>> {
                Ok(Box::new(self.try_clone()?))
            }
            fn close(&self, how: Shutdown) {
                let _ = self.shutdown(how);
            }
            fn timeouts(&self, read: Duration, write: Duration) -> io::Result<()> {
                self.set_read_timeout(Some(read))?;
                self.set_write_timeout(Some(write))
            }
        }
    };
}

duplex!(TcpStream);
duplex!(UnixStream);

/// Bytes copied each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// From the first connection to the second.
    pub up: u64,
    /// From the second connection to the first.
    pub down: u64,
}

/// State the two directions share: when either last moved a byte, and
/// whether the pair was ended.
struct Shared {
    start: Instant,
    last_ms: AtomicU64,
    ended: AtomicBool,
}

impl Shared {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Duration {
        let now = self.start.elapsed();
        now.saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Copy `a` → `b` on this thread and `b` → `a` on another until both
/// directions reach end of file, either fails, or neither has moved a byte
/// for `idle`. An end of file is passed on as a half close, so
/// request/response protocols that close their sending side still work.
///
/// # Errors
/// The second thread could not be started (both connections are closed).
pub fn relay(a: Box<dyn Duplex>, b: Box<dyn Duplex>, idle: Duration) -> io::Result<Copied> {
    let tick = idle.clamp(Duration::from_millis(10), Duration::from_secs(5));
    a.timeouts(tick, idle)?;
    b.timeouts(tick, idle)?;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
        ended: AtomicBool::new(false),
    });
    let (a2, b2) = (a.dup()?, b.dup()?);
    let s2 = Arc::clone(&shared);
    let down = std::thread::Builder::new()
        .name("ados-egress-copy".into())
        .stack_size(COPY_STACK)
        .spawn(move || copy(b2, a2, &s2, idle));
    let down = match down {
        Ok(h) => h,
        Err(e) => {
            a.close(Shutdown::Both);
            b.close(Shutdown::Both);
            return Err(e);
        }
    };
    let up = copy(a, b, &shared, idle);
    let down = down.join().unwrap_or(0);
    Ok(Copied { up, down })
}

/// One direction. Ends both connections on an error or on idleness, so
/// the other direction's blocked read returns too.
fn copy(mut from: Box<dyn Duplex>, mut to: Box<dyn Duplex>, s: &Shared, idle: Duration) -> u64 {
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        if s.ended.load(Ordering::Relaxed) {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => {
                to.close(Shutdown::Write);
                return total;
            }
            Ok(n) => {
                s.touch();
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                total = total.saturating_add(n as u64);
                s.touch();
            }
            Err(e) if crate::net::dial::would_block(&e) => {
                if s.idle_for() >= idle {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    s.ended.store(true, Ordering::Relaxed);
    from.close(Shutdown::Both);
    to.close(Shutdown::Both);
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    #[test]
    fn bytes_go_both_ways_and_a_half_close_is_passed_on() {
        let (client, a) = pair();
        let (b, mut server) = pair();
        let h = std::thread::spawn(move || {
            relay(Box::new(a), Box::new(b), Duration::from_secs(30)).unwrap()
        });
        let mut client = client;
        let big = vec![7u8; 1 << 20];
        let writer = {
            let mut c = client.try_clone().unwrap();
            let big = big.clone();
            std::thread::spawn(move || {
                c.write_all(&big).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got, big);
        server.write_all(b"answer").unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"answer");
        let copied = h.join().unwrap();
        assert_eq!(
            copied,
            Copied {
                up: 1 << 20,
                down: 6
            }
        );
    }

    #[test]
    fn an_idle_pair_is_closed() {
        let (mut client, a) = pair();
        let (b, mut server) = pair();
        let copied = relay(Box::new(a), Box::new(b), Duration::from_millis(50)).unwrap();
        assert_eq!(copied, Copied::default());
        let mut buf = [0u8; 1];
        assert_eq!(client.read(&mut buf).unwrap_or(0), 0);
        assert_eq!(server.read(&mut buf).unwrap_or(0), 0);
    }
}
