//! Small file helpers for cgroupfs: every error names the file (and the value).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Context, Error, Result};

/// What to do when a write fails in an expected way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    Fail,
    /// The file may be missing (feature not compiled in): skip silently.
    SkipMissing,
    /// EINVAL is tolerated: the same write is repeated later in the plan
    /// (cpu period before quota, as runc).
    RetryLater,
}

/// One planned write: `value` into `<dir of ctrl>/<file>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The controller the file belongs to ("memory", "cpu", ...).
    pub ctrl: &'static str,
    pub file: String,
    pub value: String,
    pub on_error: OnError,
}

impl Write {
    pub fn new(ctrl: &'static str, file: impl Into<String>, value: impl Into<String>) -> Write {
        Write { ctrl, file: file.into(), value: value.into(), on_error: OnError::Fail }
    }
    pub fn on_error(mut self, o: OnError) -> Write {
        self.on_error = o;
        self
    }
}

/// Perform planned writes; `dir` maps a controller to its directory.
pub fn perform<'a>(writes: &[Write], dir: impl Fn(&'static str) -> Option<&'a Path>) -> Result<()> {
    for w in writes {
        let Some(d) = dir(w.ctrl) else {
            return Err(Error::msg(format!("cgroup controller {} is not available for {}", w.ctrl, w.file)));
        };
        match write_file(d, &w.file, &w.value) {
            Ok(()) => {}
            Err(e) if w.on_error == OnError::SkipMissing && e.errno() == Some(libc::ENOENT) => {}
            Err(e) if w.on_error == OnError::RetryLater && e.errno() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
        if w.file == "cpu.shares" {
            check_shares(d, &w.value)?;
        }
    }
    Ok(())
}

/// The kernel clamps cpu.shares silently; runc reports it.
fn check_shares(dir: &Path, want: &str) -> Result<()> {
    let got = read(&dir.join("cpu.shares"))?;
    let (got, want) = (got.trim().parse::<u64>().unwrap_or(0), want.parse::<u64>().unwrap_or(0));
    if want > got {
        crate::bail!("the maximum allowed cpu-shares is {got}");
    } else if want < got {
        crate::bail!("the minimum allowed cpu-shares is {got}");
    }
    Ok(())
}

pub fn write_file(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    let ctx = || format!("write {} {:?}", p.display(), value);
    let mut f = OpenOptions::new().write(true).open(&p).with_ctx(ctx)?;
    f.write_all(value.as_bytes()).with_ctx(ctx)
}

pub fn read(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).with_ctx(|| format!("read {}", p.display()))
}

/// Content of a file if it exists (for planners that must look first).
pub fn probe(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, oom_control).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// mkdir -p that records every directory it created (for rollback).
pub fn mkdir_all(p: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    match std::fs::create_dir(p) {
        Ok(()) => {
            created.push(p.to_path_buf());
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e).with_ctx(|| format!("mkdir {}", p.display())),
    }
    if let Some(parent) = p.parent() {
        mkdir_all(parent, created)?;
    }
    match std::fs::create_dir(p) {
        Ok(()) => {
            created.push(p.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_ctx(|| format!("mkdir {}", p.display())),
    }
}

/// rmdir, retrying while exiting tasks keep the cgroup busy. Ok if gone.
pub fn rmdir_retry(p: &Path) -> Result<()> {
    let mut delay = Duration::from_millis(10);
    for attempt in 0.. {
        match std::fs::remove_dir(p) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 6 => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(e) => return Err(e).with_ctx(|| format!("rmdir {}", p.display())),
        }
    }
    unreachable!()
}

/// Remove a cgroup and its sub-cgroups, deepest first. Ok if gone.
pub fn remove_tree(p: &Path) -> Result<()> {
    // Usually a leaf whose tasks are gone: one rmdir, no directory read.
    match std::fs::remove_dir(p) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let entries = match std::fs::read_dir(p) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_ctx(|| format!("read directory {}", p.display())),
    };
    for ent in entries.flatten() {
        if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&ent.path())?;
        }
    }
    rmdir_retry(p)
}

/// Pids in cgroup.procs of `dir` and every sub-cgroup.
pub fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let text = match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_ctx(|| format!("read {}", dir.join("cgroup.procs").display())),
    };
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for ent in entries.flatten() {
            if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_pids(&ent.path(), out)?;
            }
        }
    }
    Ok(())
}
