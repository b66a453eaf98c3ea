//! Shared helpers for the security tests: temp dirs, busybox bundles, a
//! runtime handle with its own --root that deletes its containers on drop,
//! commands with a timeout, tree hashes and host mount checks.
#![allow(dead_code)]

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn stele_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stele"))
}

pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("sec-{tag}-{}-{n}-{t:x}", std::process::id())
}

/// A directory under /tmp removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // make everything writable/removable first (tests may chmod)
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn has_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skip (return early) when not root: every test here needs root.
#[macro_export]
macro_rules! need_root {
    () => {
        if !security_util::has_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// The default masked and read-only paths of `runc spec`.
pub const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];
pub const READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

pub const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

pub fn default_mounts() -> Value {
    json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
    ])
}

pub fn default_config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS
            },
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "stele-sec",
        "mounts": default_mounts(),
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY
        }
    })
}

/// A bundle: rootfs with busybox and its applets in /bin, plus config.json.
pub struct Bundle {
    pub dir: TempDir,
    pub config: Value,
}

impl Bundle {
    pub fn new(tag: &str, args: &[&str]) -> Bundle {
        let dir = TempDir::new(tag);
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "mnt"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let out = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for name in String::from_utf8_lossy(&out.stdout).lines() {
            let name = name.trim();
            if name.is_empty() || name == "busybox" {
                continue;
            }
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(name));
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        let b = Bundle { dir, config: default_config(args) };
        b.write();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    pub fn write(&self) {
        std::fs::write(self.path().join("config.json"), serde_json::to_vec_pretty(&self.config).unwrap()).unwrap();
    }
    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
        self.write();
    }
    /// Shell script as the process.
    pub fn sh(&mut self, script: &str) {
        self.set_args(&["/bin/sh", "-c", script]);
    }
}

#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Run `cmd` with stdout/stderr into files, waiting at most `timeout`.
/// Files (not pipes) so that a container init inheriting stdio can never
/// keep us waiting for EOF.
pub fn exec_timeout(mut cmd: Command, timeout: Duration) -> Out {
    let tmp = TempDir::new("out");
    let o = std::fs::File::create(tmp.path().join("o")).unwrap();
    let e = std::fs::File::create(tmp.path().join("e")).unwrap();
    cmd.stdin(Stdio::null()).stdout(o).stderr(e);
    let mut child = cmd.spawn().expect("spawn");
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    use std::os::unix::process::ExitStatusExt;
    Out {
        code: status.code(),
        signal: status.signal(),
        stdout: std::fs::read_to_string(tmp.path().join("o")).unwrap_or_default(),
        stderr: std::fs::read_to_string(tmp.path().join("e")).unwrap_or_default(),
        timed_out,
    }
}

pub const T: Duration = Duration::from_secs(30);

/// A runtime with its own --root; every container it made is `delete -f`d on drop.
pub struct Rt {
    pub root: TempDir,
    pub bin: PathBuf,
    ids: Mutex<Vec<String>>,
}

impl Rt {
    pub fn new(tag: &str) -> Rt {
        Rt::with_bin(tag, stele_bin())
    }
    pub fn with_bin(tag: &str, bin: PathBuf) -> Rt {
        Rt { root: TempDir::new(&format!("root-{tag}")), bin, ids: Mutex::new(Vec::new()) }
    }
    pub fn id(&self, tag: &str) -> String {
        let id = unique(tag);
        self.ids.lock().unwrap().push(id.clone());
        id
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path());
        c
    }
    pub fn stele(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        exec_timeout(c, T)
    }
    pub fn run(&self, b: &Bundle, id: &str) -> Out {
        self.stele(&["run", "-b", b.path().to_str().unwrap(), id])
    }
    pub fn create(&self, b: &Bundle, id: &str) -> Out {
        self.stele(&["create", "-b", b.path().to_str().unwrap(), id])
    }
    pub fn state(&self, id: &str) -> Option<Value> {
        let o = self.stele(&["state", id]);
        if !o.ok() {
            return None;
        }
        serde_json::from_str(&o.stdout).ok()
    }
    pub fn pid(&self, id: &str) -> Option<i32> {
        self.state(id).and_then(|v| v["pid"].as_i64()).map(|p| p as i32)
    }
    pub fn delete(&self, id: &str) {
        let _ = self.stele(&["delete", "-f", id]);
    }
    /// Poll `state` until the container is stopped (or gone).
    pub fn wait_stopped(&self, id: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.state(id) {
                None => return true,
                Some(v) if v["status"] == "stopped" => return true,
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    }
    /// Ids of containers still known to this runtime.
    pub fn list_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .map(|r| r.flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        let ids = self.ids.lock().unwrap().clone();
        for id in ids {
            self.delete(&id);
        }
    }
}

pub fn sha256_bytes(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    d.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256_file(p: &Path) -> String {
    sha256_bytes(&std::fs::read(p).unwrap())
}

/// path -> digest of content (files), target (symlinks), mode/owner (all).
pub fn tree_digest(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut ents: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        ents.sort_by_key(|e| e.file_name());
        for e in ents {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = format!("{:o}:{}:{}", md.mode(), md.uid(), md.gid());
            if md.file_type().is_symlink() {
                out.insert(rel, format!("l:{}:{meta}", std::fs::read_link(&p).unwrap().display()));
            } else if md.is_dir() {
                out.insert(rel, format!("d:{meta}"));
                walk(root, &p, out);
            } else if md.is_file() {
                out.insert(rel, format!("f:{}:{meta}", sha256_file(&p)));
            } else {
                out.insert(rel, format!("o:{}:{meta}", md.rdev()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Lines of the test process's (the host's) mountinfo that mention `needle`.
pub fn host_mounts_with(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Entries of a directory (names), sorted.
pub fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Parse `ls -l /proc/self/fd` output (busybox) into (fd, target) pairs.
pub fn parse_fd_listing(s: &str) -> Vec<(u32, String)> {
    let mut v = Vec::new();
    for l in s.lines() {
        let l = l.trim();
        if !l.starts_with('l') {
            continue;
        }
        let (name_part, target) = match l.split_once(" -> ") {
            Some((a, b)) => (a, b.to_string()),
            None => (l, String::new()),
        };
        if let Some(n) = name_part.split_whitespace().last().and_then(|n| n.parse().ok()) {
            v.push((n, target));
        }
    }
    v
}

/// Mark-up for the command's own pre_exec: open `path` without O_CLOEXEC and
/// dup2 it onto each of `fds` (a leak from the caller, as a shim would).
/// Returns the raw fd numbers for the child; the parent keeps nothing open.
pub fn leak_fds(cmd: &mut Command, path: &Path, fds: Vec<i32>) {
    use std::os::unix::process::CommandExt;
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: only async-signal-safe calls (open, dup2, close) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(c.as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for &n in &fds {
                if libc::dup2(fd, n) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if !fds.contains(&fd) {
                libc::close(fd);
            }
            Ok(())
        });
    }
}

/// A console socket receiver: accepts one connection, takes the pty master
/// (SCM_RIGHTS), and reads everything the container writes to it.
pub struct ConsoleReceiver {
    pub path: PathBuf,
    _dir: TempDir,
    handle: Option<std::thread::JoinHandle<Result<(String, String), String>>>,
}

impl ConsoleReceiver {
    pub fn new() -> ConsoleReceiver {
        let dir = TempDir::new("console");
        let path = dir.path().join("c.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || -> Result<(String, String), String> {
            use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
            listener.set_nonblocking(true).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return Err("no connection on the console socket".into());
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(format!("accept: {e}")),
                }
            };
            stream.set_nonblocking(false).unwrap();
            let mut buf = [0u8; 256];
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let msg = nix::sys::socket::recvmsg::<()>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                nix::sys::socket::MsgFlags::empty(),
            )
            .map_err(|e| format!("recvmsg: {e}"))?;
            let mut master = None;
            for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
                if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                    // SAFETY: the kernel just installed these fds for us.
                    master = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
                }
            }
            let n = msg.bytes;
            let payload = String::from_utf8_lossy(&buf[..n]).into_owned();
            let master = master.ok_or("no fd received")?;
            // Read until the last peer closes (EIO) or the deadline.
            let mut f = std::fs::File::from(master);
            let mut out = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                use std::io::Read;
                let mut pfd = libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut pfd, 1, 200) };
                if Instant::now() > deadline {
                    break;
                }
                if r == 0 {
                    continue;
                }
                match f.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        out.extend_from_slice(&chunk[..n]);
                        if String::from_utf8_lossy(&out).contains("__END__") {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            Ok((payload, String::from_utf8_lossy(&out).into_owned()))
        });
        ConsoleReceiver { path, _dir: dir, handle: Some(handle) }
    }
    /// (payload sent with the fd, everything read from the master up to the
    /// container printing `__END__`, EOF or a 30 s deadline)
    pub fn finish(mut self) -> Result<(String, String), String> {
        self.handle.take().unwrap().join().unwrap()
    }
}
