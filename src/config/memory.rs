//! Memory sizes: `8G`, `8GB`, `8Gi` (Kubernetes' spelling), `512M`,
//! `512MiB`, plain bytes. Binary units
//! throughout (1G = 1 GiB), because that is what cgroup limits and
//! `docker --memory` mean.

/// Parse a memory size. Returns bytes, or a message saying what is wrong.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("`{t}` does not start with a number"));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{num}` is not a number"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "ki" | "kib" => 1 << 10,
        "m" | "mb" | "mi" | "mib" => 1 << 20,
        "g" | "gb" | "gi" | "gib" => 1 << 30,
        "t" | "tb" | "ti" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit `{other}` (use K, M, G or T, optionally with B, i or iB)"
            ))
        }
    };
    let bytes = value * mult as f64;
    if !(1.0..=1.8e19).contains(&bytes) {
        return Err(format!("`{t}` is out of range"));
    }
    Ok(bytes as u64)
}

/// Bytes as the `memory` field of `hello` shows them: `8GB`, `512MB`
/// (the contract's spelling; the value is binary, as `memory_bytes` says).
pub fn format_memory(bytes: u64) -> String {
    format_binary(bytes).replace("iB", "B")
}

/// Bytes for a person, in the binary units they are counted in: `8GiB`,
/// `23.6GiB`, `512MiB` (`ADOS_MEMORY=8Gi` is shown as `8GiB`, never as a
/// decimal `8.6GB`).
pub fn format_binary(bytes: u64) -> String {
    const G: u64 = 1 << 30;
    const M: u64 = 1 << 20;
    if bytes >= G && bytes % G == 0 {
        format!("{}GiB", bytes / G)
    } else if bytes >= G {
        format!("{:.1}GiB", bytes as f64 / G as f64)
    } else if bytes >= M {
        format!("{}MiB", bytes / M)
    } else {
        format!("{bytes}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        for (s, v) in [
            ("8G", 8u64 << 30),
            ("8GB", 8 << 30),
            ("8gib", 8 << 30),
            ("512M", 512 << 20),
            ("512MiB", 512 << 20),
            ("1048576", 1 << 20),
            ("1.5G", 3 << 29),
        ] {
            assert_eq!(parse_memory(s), Ok(v), "{s}");
        }
        for bad in ["", "G", "8X", "-1G", "0"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert_eq!(format_memory(8 << 30), "8GB");
        assert_eq!(format_memory(512 << 20), "512MB");
        for (given, shown) in [
            ("8Gi", "8GiB"),
            ("8G", "8GiB"),
            ("23.6Gi", "23.6GiB"),
            ("512Mi", "512MiB"),
        ] {
            let bytes = parse_memory(given).expect("valid");
            assert_eq!(format_binary(bytes), shown, "{given}");
        }
    }
}
