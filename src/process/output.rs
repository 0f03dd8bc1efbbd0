//! The threads that move bytes between a child's pipes and the supervisor.
//!
//! Each of stdout and stderr has its own reader thread: it reads raw chunks
//! of up to [`READ_CHUNK`] bytes, passes them through a
//! [`StreamRedactor`] (one per stream, so a secret split across two reads
//! is still caught), splits the result into lines and sends them over a
//! bounded channel. A full channel blocks the reader, which in turn blocks
//! the child on its next write: back-pressure, never unbounded memory.
//!
//! Readers `poll(2)` with a short timeout so that the supervisor can make
//! them give up (the `abandon` flag) when a process that escaped the group
//! still holds the pipe; a reader never blocks forever.

use super::spec::OutputStream;
use crate::redact::StreamRedactor;
use crossbeam_channel::Sender;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes read from a pipe at once.
pub const READ_CHUNK: usize = 64 * 1024;

/// A single line longer than this is cut: the first `MAX_LINE` bytes are
/// kept, the rest of the line is discarded as it streams in (never held),
/// and the cut line is followed by a note line
/// `[ados: line truncated: N bytes dropped]`.
///
/// Why 1 MiB: nothing the runner does with a line needs more. A frame to
/// the control plane never exceeds 1 MiB (event text is cut to 128 KiB),
/// so a longer line could never be reported whole anyway; a cut JSON line
/// of an agent CLI no longer parses and is reported as unknown output (a
/// log line), which is what it then is. A bigger cap only costs memory
/// per stream of every running child (a 100 MB line once took the runner
/// from 6 MB to 205 MB).
pub const MAX_LINE: usize = 1024 * 1024;

/// How long a blocked reader or writer sleeps before it checks `abandon`.
const POLL_MS: i32 = 200;

/// What a reader thread tells the supervisor.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Msg {
    /// One line, without its `\n`.
    Line(OutputStream, String),
    /// The previous line of this stream was cut; `u64` bytes were dropped.
    Truncated(OutputStream, u64),
    /// The stream reached end of file (or was abandoned).
    Eof(OutputStream),
}

/// The note line delivered after a cut line.
pub fn truncation_note(dropped: u64) -> String {
    format!("[ados: line truncated: {dropped} bytes dropped]")
}

/// Splits a byte stream into lines with a per-line cap.
pub(super) struct LineSplitter {
    current: Vec<u8>,
    dropped: u64,
    cap: usize,
    /// `\r` ends a line too (progress output).
    cr_ends_line: bool,
    /// The last line ended with `\r`: a `\n` right after it ends nothing.
    after_cr: bool,
}

/// A piece of split output.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Piece {
    /// A complete line (lossy UTF-8, no `\n`).
    Line(String),
    /// The line just given was cut; this many bytes were dropped.
    Truncated(u64),
}

impl LineSplitter {
    pub(super) fn new(cap: usize) -> LineSplitter {
        LineSplitter {
            current: Vec::new(),
            dropped: 0,
            cap,
            cr_ends_line: false,
            after_cr: false,
        }
    }

    /// The same splitter, ending lines at `\r` too when `on` (a `\r\n`
    /// still ends one line).
    pub(super) fn cr_ends_line(mut self, on: bool) -> LineSplitter {
        self.cr_ends_line = on;
        self
    }

    /// Add bytes; `emit` gets every completed line. Returns `false` as soon
    /// as `emit` does (the receiver is gone).
    pub(super) fn push(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(Piece) -> bool) -> bool {
        let cr = self.cr_ends_line;
        while let Some(i) = bytes.iter().position(|&b| b == b'\n' || (cr && b == b'\r')) {
            let after_cr = std::mem::replace(&mut self.after_cr, bytes[i] == b'\r');
            // The `\n` of a `\r\n`: its line already ended at the `\r`.
            let ends_nothing = after_cr && i == 0 && bytes[i] == b'\n';
            if !ends_nothing {
                self.take(&bytes[..i]);
                if !self.flush(emit) {
                    return false;
                }
            }
            bytes = &bytes[i + 1..];
        }
        if !bytes.is_empty() {
            self.after_cr = false;
        }
        self.take(bytes);
        true
    }

    /// End of stream: a last line without `\n` still counts.
    pub(super) fn finish(&mut self, emit: &mut dyn FnMut(Piece) -> bool) -> bool {
        if self.current.is_empty() && self.dropped == 0 {
            return true;
        }
        self.flush(emit)
    }

    fn take(&mut self, bytes: &[u8]) {
        let room = self.cap.saturating_sub(self.current.len());
        let n = room.min(bytes.len());
        if n > 0 {
            // Grow by doubling, but never past `cap`: `Vec`'s own growth
            // could reserve up to twice the cap for a line at the limit.
            let len = self.current.len();
            let want = len.saturating_add(n);
            if want > self.current.capacity() {
                let target = want.max(len.saturating_mul(2)).min(self.cap);
                self.current.reserve_exact(target - len);
            }
            self.current.extend_from_slice(&bytes[..n]);
        }
        self.dropped = self.dropped.saturating_add((bytes.len() - n) as u64);
    }

    fn flush(&mut self, emit: &mut dyn FnMut(Piece) -> bool) -> bool {
        let bytes = std::mem::take(&mut self.current);
        let line = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        let dropped = std::mem::take(&mut self.dropped);
        emit(Piece::Line(line)) && (dropped == 0 || emit(Piece::Truncated(dropped)))
    }
}

/// Wait until `fd` is ready for `events` or [`POLL_MS`] passes. `Ok(true)`
/// when ready (or hung up), `Ok(false)` on timeout.
fn wait_ready(fd: i32, events: i16) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, count 1.
    let rc = unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(rc > 0)
}

/// Start the reader thread of one stream.
pub(super) fn spawn_reader<R>(
    stream: OutputStream,
    mut pipe: R,
    mut splitter: LineSplitter,
    mut redactor: StreamRedactor,
    tx: Sender<Msg>,
    abandon: Arc<AtomicBool>,
    pgid: i32,
) -> io::Result<JoinHandle<()>>
where
    R: Read + AsRawFd + Send + 'static,
{
    let name = format!("proc-{pgid}-{}", stream.as_str());
    std::thread::Builder::new().name(name).spawn(move || {
        let mut emit = |p: Piece| {
            let msg = match p {
                Piece::Line(l) => Msg::Line(stream, l),
                Piece::Truncated(n) => Msg::Truncated(stream, n),
            };
            tx.send(msg).is_ok()
        };
        let mut buf = vec![0u8; READ_CHUNK];
        let fd = pipe.as_raw_fd();
        loop {
            if abandon.load(Ordering::SeqCst) {
                break;
            }
            match wait_ready(fd, libc::POLLIN) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    log::warn!("polling the child's {}: {e}", stream.as_str());
                    break;
                }
            }
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("reading the child's {}: {e}", stream.as_str());
                    break;
                }
            };
            let safe = redactor.feed(&buf[..n]);
            if !splitter.push(&safe, &mut emit) {
                // The supervisor is gone (it is unwinding): stop reading.
                return;
            }
        }
        let rest = redactor.finish();
        if splitter.push(&rest, &mut emit) && splitter.finish(&mut emit) {
            let _ = tx.send(Msg::Eof(stream));
        }
    })
}

/// Start the thread that writes `bytes` to the child's stdin and closes it.
/// A child that stops reading (EPIPE) is not an error: it is its business.
pub(super) fn spawn_stdin_writer<W>(
    mut pipe: W,
    bytes: Vec<u8>,
    abandon: Arc<AtomicBool>,
    pgid: i32,
) -> io::Result<JoinHandle<()>>
where
    W: Write + AsRawFd + Send + 'static,
{
    std::thread::Builder::new()
        .name(format!("proc-{pgid}-stdin"))
        .spawn(move || {
            let fd = pipe.as_raw_fd();
            // Non-blocking, so that a child which never reads cannot keep
            // this thread (and so `run`) waiting past `abandon`.
            // SAFETY: fcntl on an fd this thread owns.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
                }
            }
            let mut rest = &bytes[..];
            while !rest.is_empty() && !abandon.load(Ordering::SeqCst) {
                match pipe.write(rest) {
                    Ok(0) => break,
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if wait_ready(fd, libc::POLLOUT).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            // Dropping `pipe` closes stdin: the child sees EOF.
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], cap: usize) -> Vec<Piece> {
        let mut s = LineSplitter::new(cap);
        let mut out = Vec::new();
        for c in chunks {
            assert!(s.push(c, &mut |p| {
                out.push(p);
                true
            }));
        }
        s.finish(&mut |p| {
            out.push(p);
            true
        });
        out
    }

    #[test]
    fn lines_across_chunks_and_a_last_line_without_newline() {
        let out = split(&[b"ab", b"c\nd", b"e\n\nf"], 100);
        assert_eq!(
            out,
            vec![
                Piece::Line("abc".into()),
                Piece::Line("de".into()),
                Piece::Line(String::new()),
                Piece::Line("f".into()),
            ]
        );
    }

    #[test]
    fn a_carriage_return_ends_a_line_only_when_asked() {
        let mut out = Vec::new();
        let mut s = LineSplitter::new(100).cr_ends_line(true);
        for chunk in [&b"a 1%\ra 2"[..], b"%\r", b"\nb\r\nc\n\n"] {
            s.push(chunk, &mut |p| {
                out.push(p);
                true
            });
        }
        let lines: Vec<Piece> = ["a 1%", "a 2%", "b", "c", ""]
            .into_iter()
            .map(|l| Piece::Line(l.into()))
            .collect();
        assert_eq!(out, lines);
        assert_eq!(
            split(&[b"a\rb\n"], 100),
            [Piece::Line("a\rb".into())],
            "stdout keeps its \\r"
        );
    }

    #[test]
    fn long_line_is_cut_with_a_count() {
        let out = split(&[b"0123", b"456789\nok"], 4);
        assert_eq!(
            out,
            vec![
                Piece::Line("0123".into()),
                Piece::Truncated(6),
                Piece::Line("ok".into()),
            ]
        );
        assert_eq!(
            truncation_note(6),
            "[ados: line truncated: 6 bytes dropped]"
        );
    }

    #[test]
    fn a_hundred_mib_line_is_cut_at_the_cap_and_never_buffered_past_it() {
        // Far below the 64 MiB that once let one line grow the runner by
        // 200 MB.
        const BOUND: usize = 1024 * 1024;
        let mut s = LineSplitter::new(MAX_LINE);
        let chunk = vec![b'x'; READ_CHUNK];
        let chunks = 100 * 1024 * 1024 / READ_CHUNK;
        let mut out = Vec::new();
        for _ in 0..chunks {
            assert!(s.push(&chunk, &mut |p| {
                out.push(p);
                true
            }));
            assert!(s.current.capacity() <= BOUND, "{}", s.current.capacity());
        }
        assert!(out.is_empty(), "nothing is emitted before the newline");
        assert!(s.push(b"\nnext\n", &mut |p| {
            out.push(p);
            true
        }));
        assert_eq!(out.len(), 3);
        let Piece::Line(cut) = &out[0] else {
            panic!("the cut line comes first: {:?}", out[0]);
        };
        assert_eq!(cut.len(), MAX_LINE);
        let dropped = (chunks * READ_CHUNK - MAX_LINE) as u64;
        assert_eq!(out[1], Piece::Truncated(dropped));
        assert_eq!(out[2], Piece::Line("next".into()));
    }

    #[test]
    fn invalid_utf8_is_replaced_and_split_chars_survive() {
        let e = "é".as_bytes();
        let out = split(&[&e[..1], &e[1..], b"\xff\n"], 100);
        assert_eq!(out, vec![Piece::Line("é\u{fffd}".into())]);
    }
}
