//! Sizes and durations as users type them on the command line.

use crate::error::{Error, Result};
use std::time::Duration;

/// Bytes, or with a k/m/g/t suffix (binary, an optional trailing `b`):
/// `512m`, `2g`, `4096`. `-1` means unlimited where `allow_unlimited`.
pub fn parse_size(s: &str, allow_unlimited: bool) -> Result<i64> {
    let bad = || Error::msg(format!("invalid size {s:?} (e.g. 512m, 2g)"));
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" && allow_unlimited {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if n.is_nan() || n <= 0.0 {
        return Err(bad());
    }
    Ok((n * (1u64 << shift) as f64) as i64)
}

/// Seconds by default, or with a unit: `90`, `90s`, `1.5m`, `2h`, `500ms`
/// (Go's forms `ns`/`us` too, as runc's `events --interval` takes them).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::msg(format!("invalid duration {s:?} (e.g. 30s, 10m, 1h)"));
    let i = s.find(|c: char| c.is_ascii_alphabetic() || c == 'µ').unwrap_or(s.len());
    let (num, unit) = s.split_at(i);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => n,
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs.is_nan() || secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m", false).unwrap(), 512 << 20);
        assert_eq!(parse_size("2g", false).unwrap(), 2 << 30);
        assert_eq!(parse_size("2GB", false).unwrap(), 2 << 30);
        assert_eq!(parse_size("4096", false).unwrap(), 4096);
        assert!(parse_size("-1", false).is_err());
        assert_eq!(parse_size("-1", true).unwrap(), -1);
        assert!(parse_size("x", true).is_err());
    }
    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0").is_err());
    }
}
