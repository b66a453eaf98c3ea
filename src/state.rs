//! The state store under `--root`: one directory per container holding
//! `state.json` (written atomically: write a temp file, then rename) and,
//! between create and start, `exec.fifo`. Every command that changes a
//! container holds an exclusive flock on its directory.

use crate::error::{Context, Error, Result};
use crate::bail;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/run/stele";
pub const STATE_FILE: &str = "state.json";
pub const FIFO: &str = "exec.fifo";

/// Refuse ids that could escape the root or confuse clients: runc's
/// character set, at most 1024 bytes, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!("invalid container id: empty");
    }
    if id.len() > 1024 {
        bail!("invalid container id: longer than 1024 bytes");
    }
    if id.starts_with('.') {
        // "." and ".." would escape; other dot names are stele's own (.seccomp, .sandbox)
        bail!("invalid container id {id:?}: must not start with '.'");
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))) {
        bail!("invalid container id {:?}: character {:?} is not allowed (use letters, digits, _ + - .)", id.escape_debug().to_string(), c);
    }
    Ok(())
}

/// What stele records about a container.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct State {
    pub id: String,
    /// Host pid of the container's init.
    pub pid: i32,
    /// Its start time (clock ticks since boot), to detect pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub cgroup: Option<crate::cgroups::Cgroup>,
    /// The namespace paths of the init (for exec), e.g. "net" -> /proc/PID/ns/net.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Set by `start`; `run` sets it at once.
    #[serde(default)]
    pub started: bool,
    /// The stele that supervises the container and removes it when it ends
    /// (`run --image`): its pid and start time. Once it is gone, the
    /// container (whose init died with it) is left over, for the next
    /// sandbox run to remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<(i32, u64)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Is `pid` still the process that started at `start` (and not a zombie)?
pub fn process_alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    matches!(crate::sys::process_stat(pid), Some((state, s)) if s == start && state != 'Z' && state != 'X')
}

impl State {
    /// The runtime-spec status, derived from the live process.
    pub fn status(&self, dir: &Path) -> Status {
        if !process_alive(self.pid, self.pid_start) {
            return Status::Stopped;
        }
        if !self.started || dir.join(FIFO).exists() {
            return Status::Created;
        }
        if let Some(cg) = &self.cgroup {
            if cg.is_frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        Status::Running
    }

    /// runc's `state` JSON.
    pub fn to_oci_json(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "id": self.id,
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        v
    }
}

/// The state root (`--root`).
pub struct Store {
    pub root: PathBuf,
}

/// A container's directory, locked for the lifetime of this value.
pub struct Entry {
    pub id: String,
    pub dir: PathBuf,
    _lock: File,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store { root: root.to_path_buf() }
    }

    pub fn ensure_root(&self) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_ctx(|| format!("create state root {}", self.root.display()))
    }

    /// Make a new container directory, locked. Fails if the id exists.
    pub fn create(&self, id: &str) -> Result<Entry> {
        validate_id(id)?;
        self.ensure_root()?;
        let dir = self.root.join(id);
        // 0711: a container init that already switched to its user opens
        // exec.fifo relative to this directory.
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container with id {id} already exists")
            }
            Err(e) => return Err(e).with_ctx(|| format!("create {}", dir.display())),
        }
        let lock = lock_dir(&dir)?;
        Ok(Entry { id: id.to_string(), dir, _lock: lock })
    }

    /// Open and lock an existing container directory.
    pub fn open(&self, id: &str) -> Result<Entry> {
        validate_id(id)?;
        let dir = self.root.join(id);
        let lock = match lock_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.errno() == Some(libc::ENOENT) => bail!("container {id} does not exist"),
            Err(e) => return Err(e),
        };
        // It may have been deleted while we waited for the lock.
        if !dir.exists() {
            bail!("container {id} does not exist");
        }
        Ok(Entry { id: id.to_string(), dir, _lock: lock })
    }

    /// Ids of all containers, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e).with_ctx(|| format!("read {}", self.root.display())),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock_dir(dir: &Path) -> Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .with_ctx(|| format!("open {}", dir.display()))?;
    crate::sys::flock_exclusive(f.as_raw_fd()).with_ctx(|| format!("lock {}", dir.display()))?;
    Ok(f)
}

impl Entry {
    /// The lock's fd: a forked container init must close it, or it would
    /// hold the lock (flock belongs to the open file, shared by fork).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    pub fn load(&self) -> Result<State> {
        let p = self.dir.join(STATE_FILE);
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::os(format!("container {} is not fully created", self.id), libc::ENOENT))
            }
            Err(e) => return Err(e).with_ctx(|| format!("read {}", p.display())),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::msg(format!("{}: {e}", p.display())))
    }

    /// Atomically replace state.json.
    pub fn save(&self, st: &State) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let data = serde_json::to_vec(st).map_err(|e| Error::msg(format!("encode state: {e}")))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_ctx(|| format!("write {}", tmp.display()))?;
        f.write_all(&data).with_ctx(|| format!("write {}", tmp.display()))?;
        drop(f);
        // Swap with the previous record, then drop it: readers always see a
        // whole file, and ext4 does not flush the new one first as it would
        // for a rename over an existing file (~0.3 ms a start on this host).
        let path = self.dir.join(STATE_FILE);
        match crate::sys::exchange(&tmp, &path) {
            Ok(()) => std::fs::remove_file(&tmp).with_ctx(|| format!("remove {}", tmp.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::rename(&tmp, &path).with_ctx(|| format!("rename {}", tmp.display()))
            }
            Err(e) => Err(e).with_ctx(|| format!("rename {}", tmp.display())),
        }
    }

    /// Remove the directory and everything in it (the lock goes with the
    /// entry).
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_ctx(|| format!("remove {}", self.dir.display())),
        }
    }
}

/// Write a pid file atomically (temp + rename), no newline, as runc.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = std::path::absolute(path).with_ctx(|| format!("pid file {}", path.display()))?;
    let dir = abs.parent().unwrap_or(Path::new("/"));
    let name = abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string()).with_ctx(|| format!("write pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, &abs).with_ctx(|| format!("write pid file {}", abs.display()))
}
