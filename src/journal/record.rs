//! One journal record: how a frame is framed on disk, and how it is
//! checked when read back.
//!
//! ```text
//! <seq>\t<e|r>\t<len>\t<frame json>\t<crc32>\n
//! ```
//!
//! `e` marks a `job.event`, `r` the `job.result`; `len` is the frame's
//! length in bytes and `crc32` (IEEE, 8 lowercase hex digits) covers every
//! byte before the tab that precedes it. serde_json never writes a raw
//! newline or tab, so one line is one record, a reader can skip lines
//! without parsing JSON, and a damaged record is found and skipped alone:
//! the next `\n` starts the next record.
//!
//! The format before checksums, `<seq>\t<e|r>\t<frame json>\n`, is still
//! read (a journal on disk across an upgrade): its third field starts with
//! `{`, never a digit. Such a record has nothing to check it by, so it is
//! trusted only when its frame parses as JSON and carries the same `seq`.

use serde::Deserialize;

/// The largest frame the journal stores (protocol: no frame over 1 MiB).
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// The largest record: a frame plus its fields around it (seq, kind,
/// length, checksum: under 64 bytes) and the `\n`.
pub(crate) const MAX_RECORD_BYTES: usize = MAX_FRAME_BYTES + 64;

/// A record read back and checked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    /// The frame's seq.
    pub(crate) seq: u64,
    /// Whether it is the `job.result`.
    pub(crate) is_result: bool,
    /// The frame JSON.
    pub(crate) frame: &'a [u8],
}

/// Append the record of `frame` to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, seq: u64, is_result: bool, frame: &[u8]) {
    use std::io::Write as _;
    let start = out.len();
    let kind = if is_result { 'r' } else { 'e' };
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{seq}\t{kind}\t{}\t", frame.len());
    out.extend_from_slice(frame);
    let crc = crc32(&out[start..]);
    let _ = writeln!(out, "\t{crc:08x}");
}

/// Check and split one line (with its `\n`); `None` when it is not a whole,
/// intact record.
pub(crate) fn decode(line: &[u8]) -> Option<Record<'_>> {
    let body = line.strip_suffix(b"\n")?;
    let (seq, rest) = split_number(body)?;
    let (is_result, rest) = match rest {
        [b'e', b'\t', rest @ ..] => (false, rest),
        [b'r', b'\t', rest @ ..] => (true, rest),
        _ => return None,
    };
    if seq == 0 {
        return None;
    }
    if rest.first() == Some(&b'{') {
        return decode_unchecked(seq, is_result, rest);
    }
    // `<len>\t<frame>\t<crc>`: the checksum first, so nothing damaged is
    // looked at further.
    let (checked, crc) = body.split_at(body.len().checked_sub(9)?);
    let crc = crc.strip_prefix(b"\t")?;
    if crc.len() != 8 || !crc.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if crc32(checked) != crc {
        return None;
    }
    let rest = rest.get(..rest.len().checked_sub(9)?)?;
    let (len, frame) = split_number(rest)?;
    if u64::try_from(frame.len()).ok()? != len || frame.first() != Some(&b'{') {
        return None;
    }
    Some(Record {
        seq,
        is_result,
        frame,
    })
}

/// A record of the format before checksums: trusted only if its frame is
/// JSON with the same seq.
fn decode_unchecked(seq: u64, is_result: bool, frame: &[u8]) -> Option<Record<'_>> {
    #[derive(Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    let parsed: SeqOnly = serde_json::from_slice(frame).ok()?;
    (parsed.seq == seq).then_some(Record {
        seq,
        is_result,
        frame,
    })
}

/// `<digits>\t<rest>`: the number (1 to 20 digits) and what follows the tab.
fn split_number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let tab = bytes.iter().take(21).position(|&b| b == b'\t')?;
    let digits = &bytes[..tab];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some((n, &bytes[tab + 1..]))
}

/// A frame that stands in for one the server must get but the journal
/// cannot give: too big to store, or lost to damage on disk. The server
/// still gets a frame under the seq (seqs grow by exactly one), as a `log`
/// event on stream `runner` or, for a result, a `failed` result.
pub(crate) fn stand_in(job_id: &str, seq: u64, is_result: bool, note: &str) -> String {
    if is_result {
        serde_json::json!({"type":"job.result","job_id":job_id,"seq":seq,"status":"failed",
            "summary":note,"error":note})
    } else {
        serde_json::json!({"type":"job.event","job_id":job_id,"seq":seq,
            "ts":crate::job::reporter::rfc3339_now(),
            "event":{"kind":"log","stream":"runner","text":note}})
    }
    .to_string()
}

/// The CRC-32 (IEEE 802.3, as zlib and `cksum -a crc32b`) of `data`.
/// Slicing-by-8 over tables built at compile time: 8 bytes a step, so the
/// checksum stays a small part of an append or a read even unoptimised.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = CRC_TABLES[7][usize::from(lo as u8)]
            ^ CRC_TABLES[6][usize::from((lo >> 8) as u8)]
            ^ CRC_TABLES[5][usize::from((lo >> 16) as u8)]
            ^ CRC_TABLES[4][usize::from((lo >> 24) as u8)]
            ^ CRC_TABLES[3][usize::from(c[4])]
            ^ CRC_TABLES[2][usize::from(c[5])]
            ^ CRC_TABLES[1][usize::from(c[6])]
            ^ CRC_TABLES[0][usize::from(c[7])];
    }
    for &b in chunks.remainder() {
        crc = CRC_TABLES[0][usize::from((crc as u8) ^ b)] ^ (crc >> 8);
    }
    !crc
}

/// A `static`, not a `const`: a `const` array may be copied at each use in
/// an unoptimised build.
///
/// `CRC_TABLES[0]` is the byte-at-a-time table of the reflected polynomial
/// `0xEDB88320`; table `k` advances a byte's contribution by `k` more bytes.
static CRC_TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            k += 1;
        }
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
        // Every length around the 8-byte steps agrees with a bit-by-bit CRC.
        let data: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(37)).collect();
        for n in 0..data.len() {
            let mut slow = !0u32;
            for &b in &data[..n] {
                slow ^= u32::from(b);
                for _ in 0..8 {
                    slow = if slow & 1 == 1 {
                        0xEDB8_8320 ^ (slow >> 1)
                    } else {
                        slow >> 1
                    };
                }
            }
            assert_eq!(crc32(&data[..n]), !slow, "length {n}");
        }
    }

    #[test]
    fn a_record_reads_back_and_any_damage_is_refused() {
        let frame = br#"{"type":"job.event","seq":12,"event":{}}"#;
        let mut line = Vec::new();
        encode(&mut line, 12, false, frame);
        assert_eq!(
            decode(&line),
            Some(Record {
                seq: 12,
                is_result: false,
                frame
            })
        );
        let mut result = Vec::new();
        encode(&mut result, 3, true, b"{}");
        assert!(decode(&result).expect("result").is_result);
        // Every single-byte change and every cut is caught.
        for i in 0..line.len() {
            let mut bad = line.clone();
            bad[i] ^= 0x20;
            assert_eq!(decode(&bad), None, "byte {i} changed");
            assert_eq!(decode(&line[..i]), None, "cut at {i}");
        }
    }

    #[test]
    fn records_of_the_format_before_checksums_are_read_when_they_are_json() {
        let r = decode(b"7\tr\t{\"seq\":7,\"type\":\"job.result\"}\n").expect("old record");
        assert_eq!((r.seq, r.is_result), (7, true));
        for bad in [
            &b"7\te\t{\"seq\":7"[..],           // no newline: torn
            b"7\te\t{\"seq\":7,\"a\":\"\0\0\n", // not JSON
            b"8\te\t{\"seq\":7}\n",             // seq differs from the frame's
            b"\0\0\0\0\n",
            b"x\te\t{}\n",
            b"0\te\t{\"seq\":0}\n",
            b"1\tq\t{\"seq\":1}\n",
            b"1\te\tnot json\n",
            b"\n",
            b"123456789012345678901\te\t{}\n",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
