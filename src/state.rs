//! The state store under `--root`: one file per container, `<root>/<id>`,
//! holding its record as JSON (replaced atomically: a temp file
//! `.<id>.tmp`, then a rename) and, between create and start, the fifo
//! `.<id>.fifo`. Ids never start with a dot, so these names cannot collide
//! with another container's.
//!
//! Every command that changes a container holds an exclusive lock on it:
//! an open-file-description lock on one byte of `<root>/.lock`, at an
//! offset derived from the id (two ids that share a byte merely wait for
//! each other). Files, not a directory per container: on ext4 (what /run
//! is on some hosts) a new directory gets a data block, and removing it
//! moments later frees the block with a synchronous discard (0.1-0.35 ms
//! per container here); a small file deleted before writeback never gets
//! one.
//!
//! Nor does a container cost an inode: a removed record is renamed to one
//! of [`SPARES`] spare names (`.spareN`) and the next new record is written
//! into it (overwritten in place, then cut to length: never truncated to
//! zero, which would make ext4 flush it at close). On a journal-less ext4 a
//! new inode skips every inode of its group freed in the last minute, with
//! a buffer-cache lookup for each: after a burst of containers a record's
//! first save took ~1 ms after the CPUs idled, against ~0.35 ms for a spare
//! (C loop, 50 ms apart).

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
/// The lock file in the root (see the module doc).
pub const LOCK_FILE: &str = ".lock";
/// How many removed records are kept for reuse (see the module doc).
const SPARES: usize = 8;

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
    /// The runtime-spec status, derived from the live process (`fifo`:
    /// the container's [`Entry::fifo`]).
    pub fn status(&self, fifo: &Path) -> Status {
        if !process_alive(self.pid, self.pid_start) {
            return Status::Stopped;
        }
        if !self.started || fifo.exists() {
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

/// A container's record, locked for the lifetime of this value.
pub struct Entry {
    pub id: String,
    /// The record, `<root>/<id>`.
    pub path: PathBuf,
    /// `create`'s fifo, `<root>/.<id>.fifo`, until `start`.
    pub fifo: PathBuf,
    tmp: PathBuf,
    _lock: File,
}

/// A directory where the record should be: the state of a stele from
/// before one file per container (`<root>/<id>/state.json`). Its processes
/// and cgroup are not tracked by this version.
fn old_layout(id: &str, path: &Path) -> String {
    format!(
        "container {id}: {} is a state directory from an older stele, which this one does not read: \
         stop its processes and remove their cgroup, then remove the directory",
        path.display()
    )
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

    /// Where container `id`'s record is (read it unlocked only as a whole:
    /// it is replaced by rename).
    pub fn record(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn entry(&self, id: &str, lock: File) -> Entry {
        Entry {
            id: id.to_string(),
            path: self.record(id),
            fifo: self.root.join(format!(".{id}.fifo")),
            tmp: self.root.join(format!(".{id}.tmp")),
            _lock: lock,
        }
    }

    /// Lock a new container's id. Fails if the id exists. Nothing is on
    /// disk for it until the first [`Entry::save`].
    pub fn create(&self, id: &str) -> Result<Entry> {
        validate_id(id)?;
        // The root usually exists: make it only when the lock file cannot
        // be opened for want of it.
        let lock = match self.lock(id) {
            Err(e) if e.errno() == Some(libc::ENOENT) => {
                self.ensure_root()?;
                self.lock(id)?
            }
            r => r?,
        };
        let e = self.entry(id, lock);
        match std::fs::symlink_metadata(&e.path) {
            Ok(m) if m.is_dir() => bail!("{}", old_layout(id, &e.path)),
            Ok(_) => bail!("container with id {id} already exists"),
            Err(_) => Ok(e),
        }
    }

    /// Lock an existing container.
    pub fn open(&self, id: &str) -> Result<Entry> {
        validate_id(id)?;
        let lock = match self.lock(id) {
            Ok(l) => l,
            Err(e) if e.errno() == Some(libc::ENOENT) => bail!("container {id} does not exist"),
            Err(e) => return Err(e),
        };
        let e = self.entry(id, lock);
        // It may have been deleted while we waited for the lock.
        match std::fs::symlink_metadata(&e.path) {
            Ok(m) if m.is_file() => Ok(e),
            Ok(m) if m.is_dir() => bail!("{}", old_layout(id, &e.path)),
            _ => bail!("container {id} does not exist"),
        }
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
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The exclusive lock of container `id` (waits for it).
    fn lock(&self, id: &str) -> Result<File> {
        let path = self.root.join(LOCK_FILE);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .with_ctx(|| format!("open {}", path.display()))?;
        // FNV-1a: stable across builds, so every stele locks the same byte.
        let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        // SAFETY: flock is plain data.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as _;
        fl.l_whence = libc::SEEK_SET as _;
        fl.l_start = (h >> 2) as libc::off_t;
        fl.l_len = 1;
        loop {
            // SAFETY: valid fd and flock struct.
            if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLKW, &fl) } == 0 {
                return Ok(f);
            }
            let e = nix::errno::Errno::last_raw();
            if e != libc::EINTR {
                return Err(Error::os(format!("lock container {id} in {}", path.display()), e));
            }
        }
    }
}

impl Entry {
    /// The lock's fd: a forked container init must close it, or it would
    /// hold the lock (flock belongs to the open file, shared by fork).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    pub fn load(&self) -> Result<State> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::os(format!("container {} does not exist", self.id), libc::ENOENT))
            }
            Err(e) => return Err(e).with_ctx(|| format!("read {}", self.path.display())),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::msg(format!("{}: {e}", self.path.display())))
    }

    /// Atomically replace the record.
    pub fn save(&self, st: &State) -> Result<()> {
        let tmp = &self.tmp;
        let data = serde_json::to_vec(st).map_err(|e| Error::msg(format!("encode state: {e}")))?;
        self.take_spare();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o600)
            .open(tmp)
            .with_ctx(|| format!("write {}", tmp.display()))?;
        f.write_all(&data).and_then(|_| f.set_len(data.len() as u64)).with_ctx(|| format!("write {}", tmp.display()))?;
        drop(f);
        // Swap with the previous record, then drop it: readers always see a
        // whole file, and ext4 does not flush the new one first as it would
        // for a rename over an existing file (~0.3 ms a start on this host).
        match crate::sys::exchange(tmp, &self.path) {
            Ok(()) => self.give_spare(tmp),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::rename(tmp, &self.path).with_ctx(|| format!("rename {}", tmp.display()))
            }
            Err(e) => Err(e).with_ctx(|| format!("rename {}", tmp.display())),
        }
    }

    /// Remove the record and the container's other files (the lock goes
    /// with the entry).
    pub fn remove(&self) -> Result<()> {
        let gone = |r: Result<()>| match r {
            Err(e) if e.errno() != Some(libc::ENOENT) => Err(e),
            _ => Ok(()),
        };
        gone(std::fs::remove_file(&self.fifo).with_ctx(|| format!("remove {}", self.fifo.display())))?;
        gone(self.give_spare(&self.tmp))?;
        gone(self.give_spare(&self.path))
    }

    fn spare(&self, n: usize) -> PathBuf {
        self.path.with_file_name(format!(".spare{n}"))
    }

    /// Move a spare record file to the temp name, if there is one (the temp
    /// file is then overwritten, not made).
    fn take_spare(&self) {
        // Another stele may take the same one first: then the next. (A temp
        // file left by a crash is reused as it is: no rename replaces it.)
        let _ = (0..SPARES).find(|&n| crate::sys::rename2(&self.spare(n), &self.tmp, libc::RENAME_NOREPLACE).is_ok());
    }

    /// Keep `p` as a spare if a spare name is free, else delete it.
    fn give_spare(&self, p: &Path) -> Result<()> {
        for n in 0..SPARES {
            match crate::sys::rename2(p, &self.spare(n), libc::RENAME_NOREPLACE) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(e).with_ctx(|| format!("remove {}", p.display())),
            }
        }
        std::fs::remove_file(p).with_ctx(|| format!("remove {}", p.display()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn state(id: &str, owner: &str) -> State {
        State {
            id: id.into(),
            pid: 1,
            pid_start: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "now".into(),
            owner: owner.into(),
            annotations: BTreeMap::new(),
            cgroup: None,
            config: serde_json::Value::Null,
            started: false,
            supervisor: None,
        }
    }

    #[test]
    fn removed_records_are_reused_whole_and_unlisted() {
        let dir = std::env::temp_dir().join(format!("stele-state-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::new(&dir);
        let a = store.create("a").unwrap();
        a.save(&state("a", &"x".repeat(3000))).unwrap();
        let ino = std::fs::metadata(&a.path).unwrap().ino();
        // an update swaps records: the old one becomes a spare
        a.save(&state("a", "short")).unwrap();
        assert_eq!(a.load().unwrap().owner, "short");
        a.remove().unwrap();
        drop(a);
        assert_eq!(store.list().unwrap(), Vec::<String>::new(), "spares are not containers");
        // the next container's record is written into a spare: an inode of
        // a's, holding exactly the new record (no tail of the longer one)
        let b = store.create("b").unwrap();
        b.save(&state("b", "o")).unwrap();
        let md = std::fs::metadata(&b.path).unwrap();
        assert_eq!(md.ino(), ino, "a's first record, kept as .spare0, is b's now");
        assert_eq!(md.mode() & 0o777, 0o600);
        assert_eq!(md.len() as usize, serde_json::to_vec(&state("b", "o")).unwrap().len());
        assert_eq!(b.load().unwrap().owner, "o");
        assert_eq!(store.list().unwrap(), vec!["b".to_string()]);
        // with every spare name taken, a removed record is deleted
        for n in 0..SPARES {
            std::fs::write(b.spare(n), "").unwrap();
        }
        b.remove().unwrap();
        assert!(!b.path.exists() && !b.tmp.exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), SPARES + 1, "the spares and .lock");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
