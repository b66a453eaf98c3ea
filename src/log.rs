//! runc-compatible logging.
//!
//! `--log FILE --log-format json` writes one line per record:
//! `{"level":"error","msg":"...","time":"<RFC3339>"}`; containerd's shim
//! reports the `msg` of the last error line. `text` writes logrus-style
//! `time="..." level=error msg="..."`. Without `--log`, records go to stderr
//! (warnings and errors only unless `--debug`). The library calls
//! [`error`], [`warn`], [`info`], [`debug`]; nothing else prints.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Text,
    Json,
}

struct Sink {
    file: Option<File>,
    format: Format,
    max: Level,
}

static SINK: Mutex<Sink> = Mutex::new(Sink { file: None, format: Format::Text, max: Level::Warn });

/// Configure the global sink. `file` None means stderr.
pub fn init(file: Option<File>, format: Format, debug: bool) {
    let mut s = SINK.lock().unwrap_or_else(|e| e.into_inner());
    s.file = file;
    s.format = format;
    s.max = if debug { Level::Debug } else { Level::Warn };
}

/// Whether a `--log` file is configured (errors then go there as well as stderr).
pub fn has_file() -> bool {
    SINK.lock().map(|s| s.file.is_some()).unwrap_or(false)
}

pub fn enabled(level: Level) -> bool {
    SINK.lock().map(|s| level <= s.max).unwrap_or(false)
}

pub fn write(level: Level, msg: &str) {
    let mut s = match SINK.lock() {
        Ok(s) => s,
        Err(e) => e.into_inner(),
    };
    if level > s.max {
        return;
    }
    let time = rfc3339_now();
    let line = match s.format {
        Format::Json => {
            let v = serde_json::json!({"level": level.name(), "msg": msg, "time": time});
            format!("{v}\n")
        }
        Format::Text => format!(
            "time=\"{}\" level={} msg={}\n",
            time,
            level.name(),
            serde_json::Value::String(msg.to_string())
        ),
    };
    match s.file.as_mut() {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

pub fn error(msg: &str) {
    write(Level::Error, msg)
}
pub fn warn(msg: &str) {
    write(Level::Warn, msg)
}
pub fn info(msg: &str) {
    write(Level::Info, msg)
}
pub fn debug(msg: &str) {
    write(Level::Debug, msg)
}

/// `debug!` formats only when debug logging is on (keeps the start path cheap).
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Debug) {
            $crate::log::debug(&format!($($t)*));
        }
    };
}

/// Per-phase timing under `--debug`: "phase NAME at Nus" since the process
/// (or, in a container init, its runtime) started.
pub fn phase(name: &str) {
    if enabled(Level::Debug) {
        let t = START.get_or_init(std::time::Instant::now).elapsed();
        debug(&format!("phase {name} at {}us (pid {})", t.as_micros(), std::process::id()));
    }
}

static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Mark the process start for [`phase`].
pub fn mark_start() {
    let _ = START.set(std::time::Instant::now());
}

/// `warn!` formats a warning.
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::warn(&format!($($t)*)) };
}

/// Current time as RFC 3339 with nanoseconds in UTC (what runc writes).
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Format seconds + nanoseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_700_000_000, 5), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }
}
