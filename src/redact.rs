//! Secret redaction: every secret the runner knows becomes `[REDACTED]`
//! before any byte of output becomes an event or a log line.
//!
//! [`Redactor`] works on whole strings (frames, log lines);
//! [`StreamRedactor`] works on a byte stream read in arbitrary chunks and
//! holds back just enough bytes that a secret split across two reads is
//! still caught.

use aho_corasick::{AhoCorasick, MatchKind};
use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this are not treated as secrets: masking them would
/// mangle ordinary output and reveal the value by elimination.
pub const MIN_SECRET_LEN: usize = 6;

/// Replaces every known secret (and its usual encodings) in text.
#[derive(Clone, Debug)]
pub struct Redactor {
    matcher: Option<AhoCorasick>,
    /// The longest pattern, in bytes: how much a stream must hold back.
    max_len: usize,
    /// No pattern contains a newline, so no match spans one.
    line_safe: bool,
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for `secrets`; values shorter than [`MIN_SECRET_LEN`] are
    /// skipped.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        // A multi-line secret (a PEM key) is matched line by line: then no
        // pattern holds a newline, so a stream can release every complete
        // line at once (see `StreamRedactor::feed`).
        //
        // When every line is too short to be masked on its own (`abc\ndef`),
        // the secret is kept whole instead: dropping all its lines would let
        // it through unredacted. The stream then holds back across newlines.
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .flat_map(|s| {
                if s.contains('\n') {
                    let lines: Vec<String> = s
                        .split('\n')
                        .map(|l| l.trim_end_matches('\r').to_string())
                        .filter(|l| l.len() >= MIN_SECRET_LEN)
                        .collect();
                    if lines.is_empty() {
                        vec![s]
                    } else {
                        lines
                    }
                } else {
                    vec![s]
                }
            })
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort();
        secrets.dedup();
        let patterns = patterns_for(&secrets);
        let max_len = patterns.iter().map(String::len).max().unwrap_or(0);
        let line_safe = patterns.iter().all(|p| !p.contains('\n'));
        let matcher = if patterns.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .ok()
        };
        Redactor {
            matcher,
            max_len,
            line_safe,
            secrets,
        }
    }

    /// A redactor that knows no secret.
    pub fn empty() -> Redactor {
        Redactor::new(Vec::new())
    }

    /// This redactor plus more secrets (a job's own credentials).
    pub fn with(&self, more: impl IntoIterator<Item = String>) -> Redactor {
        Redactor::new(self.secrets.iter().cloned().chain(more))
    }

    /// Whether `text` contains a known secret.
    pub fn contains_secret(&self, text: &str) -> bool {
        self.matcher
            .as_ref()
            .map(|m| m.is_match(text))
            .unwrap_or(false)
    }

    /// The secrets this redactor knows (for the pre-push guard).
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// `text` with every secret replaced.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.matcher {
            Some(m) if m.is_match(text) => {
                let n = m.patterns_len();
                let reps = vec![REDACTED; n];
                Cow::Owned(m.replace_all(text, &reps))
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// A streaming redactor over this redactor's secrets.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor {
            redactor: self.clone(),
            pending: Vec::new(),
        }
    }
}

/// The literal forms a secret is searched in: as is, JSON-escaped,
/// URL-encoded and base64 (the usual ways tokens leak).
fn patterns_for(secrets: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for s in secrets {
        out.push(s.clone());
        if let Ok(json) = serde_json::to_string(s) {
            let inner = &json[1..json.len() - 1];
            if inner != s {
                out.push(inner.to_string());
            }
        }
        let url = url_encode(s);
        if url != *s {
            out.push(url);
        }
        for b in base64_forms(s.as_bytes()) {
            if b.len() >= MIN_SECRET_LEN {
                out.push(b);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The secret's base64 as it appears inside a longer encoded blob: at each
/// of the three alignments, only the characters that depend on the secret
/// alone (so `user:token` encoded for Basic auth is still caught).
fn base64_forms(secret: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for offset in 0..3usize {
        let mut buf = vec![0u8; offset];
        buf.extend_from_slice(secret);
        let enc = crate::base64::encode(&buf);
        // Characters fully determined by the prefix padding are dropped at
        // the front; the last (partial) group is dropped at the end.
        let skip_front = match offset {
            0 => 0,
            1 => 2,
            _ => 3,
        };
        let total_bits = buf.len() * 8;
        let whole_chars = total_bits / 6;
        if whole_chars > skip_front {
            out.push(enc[skip_front..whole_chars].to_string());
        }
    }
    out
}

/// Redacts a byte stream read in chunks of any size.
///
/// `feed` returns the bytes that are safe to pass on; up to the longest
/// pattern's length minus one is held back, in case a secret starts at the
/// end of this chunk and ends in the next one. `finish` returns the rest.
pub struct StreamRedactor {
    redactor: Redactor,
    pending: Vec<u8>,
}

impl StreamRedactor {
    /// Add bytes; get back the redacted bytes that can be released now.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        let Some(m) = &self.redactor.matcher else {
            return std::mem::take(&mut self.pending);
        };
        let hold = self.redactor.max_len.saturating_sub(1);
        // A match starting before `boundary` has room for the longest
        // pattern, so it is final; one starting later might be the prefix
        // of a longer secret still to come (a shorter pattern matching
        // first would let the rest of the longer one through), so it waits.
        let mut boundary = self.pending.len().saturating_sub(hold);
        // No match spans a newline: everything up to the last one is final.
        // Without this, the last line before a pause in the output would
        // wait for the next read (or EOF) however long that takes.
        if self.redactor.line_safe {
            if let Some(nl) = self.pending.iter().rposition(|&b| b == b'\n') {
                boundary = boundary.max(nl + 1);
            }
        }
        let mut out = Vec::with_capacity(self.pending.len());
        let mut last = 0;
        for mat in m.find_iter(&self.pending) {
            if mat.start() >= boundary {
                break;
            }
            out.extend_from_slice(&self.pending[last..mat.start()]);
            out.extend_from_slice(REDACTED.as_bytes());
            last = mat.end();
        }
        // Release everything except the tail that could begin a secret.
        let safe_end = boundary.max(last);
        out.extend_from_slice(&self.pending[last..safe_end]);
        self.pending.drain(..safe_end);
        out
    }

    /// Flush what is held back (at end of stream).
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.pending);
        match &self.redactor.matcher {
            Some(m) => {
                let reps = vec![REDACTED.as_bytes(); m.patterns_len()];
                m.replace_all_bytes(&rest, &reps)
            }
            None => rest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_encoded_forms_are_redacted() {
        let r = Redactor::new(vec!["tok/en+secret\"x".to_string(), "abc".to_string()]);
        assert_eq!(r.redact("a tok/en+secret\"x b"), "a [REDACTED] b");
        assert_eq!(
            r.redact(r#"{"t":"tok/en+secret\"x"}"#),
            r#"{"t":"[REDACTED]"}"#
        );
        assert_eq!(r.redact("u=tok%2Fen%2Bsecret%22x"), "u=[REDACTED]");
        // Too short to be a secret: left alone.
        assert_eq!(r.redact("abc"), "abc");
        let b = crate::base64::encode(b"user:tok/en+secret\"x");
        assert!(!r
            .redact(&b)
            .contains(&crate::base64::encode(b"tok/en+secret\"x")[4..]));
        assert!(r.redact(&b).contains(REDACTED), "{b}");
    }

    #[test]
    fn split_across_reads_is_caught() {
        let r = Redactor::new(vec!["supersecret-123".to_string()]);
        let mut s = r.stream();
        let mut out = s.feed(b"hello super");
        out.extend(s.feed(b"secret-"));
        out.extend(s.feed(b"123 bye\n"));
        out.extend(s.finish());
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "hello [REDACTED] bye\n"
        );
    }

    #[test]
    fn a_complete_line_is_released_at_once() {
        let r = Redactor::new(vec!["supersecret-123".to_string()]);
        let mut s = r.stream();
        assert_eq!(s.feed(b"ok\n"), b"ok\n");
        assert_eq!(s.feed(b"a supersecret-123\nb"), b"a [REDACTED]\n");
        assert_eq!(s.finish(), b"b");
    }

    #[test]
    fn a_multi_line_secret_is_matched_line_by_line() {
        let key = "-----BEGIN KEY-----\r\nAAAAB3NzaC1yc2EAAA\n-----END KEY-----";
        let r = Redactor::new(vec![key.to_string()]);
        assert_eq!(r.secrets().len(), 3);
        assert_eq!(r.redact("x\nAAAAB3NzaC1yc2EAAA\ny"), "x\n[REDACTED]\ny");
    }

    #[test]
    fn a_multi_line_secret_of_short_lines_is_matched_whole() {
        let r = Redactor::new(vec!["abc\ndef".to_string()]);
        assert_eq!(r.redact("x abc\ndef y"), "x [REDACTED] y");
        let mut s = r.stream();
        let mut out = s.feed(b"x abc\n");
        out.extend(s.feed(b"def y"));
        out.extend(s.finish());
        assert_eq!(out, b"x [REDACTED] y");
    }

    #[test]
    fn a_shorter_secret_at_the_end_of_a_read_waits_for_a_longer_one() {
        let r = Redactor::new(vec!["abcdef".to_string(), "abcdefghij-long".to_string()]);
        let mut s = r.stream();
        let mut out = s.feed(b"x abcdef");
        out.extend(s.feed(b"ghij-long y abcdef z"));
        out.extend(s.finish());
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "x [REDACTED] y [REDACTED] z"
        );
    }
}
