//! Shared harness for stele's end-to-end tests.
//!
//! Every test builds a [`Ctx`]: a private temp dir holding its own `--root`
//! state dir and its bundles. Dropping the `Ctx` force-deletes every container
//! it created and removes the temp dir, so a failing test leaves nothing.
//!
//! The runtime under test is `$STELE_TEST_RUNTIME` when set (e.g. `/usr/sbin/runc`
//! to validate the suite against the reference), otherwise the stele binary
//! cargo just built.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use serde_json::{json, Value};

/// How long any single runtime invocation may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait for a container to reach a state or print something.
/// Containers start in milliseconds here; this only bounds a broken runtime.
pub const WAIT: Duration = Duration::from_secs(20);

/// The runtime binary under test.
pub fn runtime() -> PathBuf {
    match std::env::var_os("STELE_TEST_RUNTIME") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_stele")),
    }
}

/// True when the runtime under test is stele (by basename).
pub fn is_stele() -> bool {
    runtime().file_name() == Some(OsStr::new("stele"))
}

/// True when the runtime under test is runc (the reference), for the few
/// places where runc 1.1.5 is known to fall short of the spec.
pub fn runtime_is_runc() -> bool {
    runtime().file_name() == Some(OsStr::new("runc"))
}

/// Return early from a test that checks one of stele's rules that are
/// stricter than runc's, when another runtime is under test.
#[macro_export]
macro_rules! stele_only {
    () => {
        if !$crate::common::is_stele() {
            eprintln!("skipped: stele-only test, runtime is {}", $crate::common::runtime().display());
            return;
        }
    };
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn next_seq() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// Temp dirs

/// A directory removed (recursively) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "stele-test-{}-{}-{}",
            std::process::id(),
            next_seq(),
            sanitize(tag)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn sanitize(tag: &str) -> String {
    tag.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(24)
        .collect()
}

// ---------------------------------------------------------------------------
// Busybox rootfs

struct Busybox {
    /// The host's busybox.
    path: PathBuf,
    /// Applet names from `busybox --list`.
    applets: Vec<String>,
    /// A private copy in the temp dir's filesystem, for when the host binary
    /// cannot be hard-linked (another filesystem). Made on first need.
    copy: OnceLock<PathBuf>,
}

/// Where busybox is and which applets it has, looked up once per test binary.
fn busybox() -> &'static Busybox {
    static BUSYBOX: OnceLock<Busybox> = OnceLock::new();
    BUSYBOX.get_or_init(|| {
        let path = ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("busybox not found: run scripts/setup.sh (busybox-static)");
        let out = Command::new(&path).arg("--list").output().expect("busybox --list");
        assert!(out.status.success(), "busybox --list failed");
        let applets = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|a| !a.is_empty() && a != "busybox")
            .collect();
        Busybox { path, applets, copy: OnceLock::new() }
    })
}

impl Busybox {
    /// Put busybox at `target` as a hard link: to the host binary when on the
    /// same filesystem, else to one cached copy per test binary.
    fn link_to(&self, target: &Path) {
        if fs::hard_link(&self.path, target).is_ok() {
            return;
        }
        let copy = self.copy.get_or_init(|| {
            remove_stale_copies();
            let dir = std::env::temp_dir().join(format!("stele-test-busybox-{}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            let copy = dir.join("busybox");
            fs::copy(&self.path, &copy).expect("copy busybox");
            copy
        });
        if fs::hard_link(copy, target).is_err() {
            fs::copy(copy, target).expect("copy busybox");
        }
    }
}

/// Remove busybox copies left by test binaries that have exited.
fn remove_stale_copies() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("stele-test-busybox-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
stele:x:1000:1000:stele:/home/stele:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

pub const GROUP: &str = "root:x:0:\ntty:x:5:\nstele:x:1000:\nnogroup:x:65534:\n";

/// Build a busybox rootfs at `dir` (same shape as scripts/make-bundle.sh).
/// busybox is hard-linked, never copied per bundle, so this costs ~1 ms.
pub fn make_rootfs(dir: &Path) {
    let bb = busybox();
    for sub in ["bin", "proc", "sys", "dev", "tmp", "etc", "mnt", "run", "root", "home/stele"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    bb.link_to(&dir.join("bin/busybox"));
    for applet in &bb.applets {
        symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    fs::write(dir.join("etc/passwd"), PASSWD).unwrap();
    fs::write(dir.join("etc/group"), GROUP).unwrap();
}

/// The config.json `runc spec` writes, with a read-only root, no terminal and
/// the given args.
pub fn default_config(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// An OCI bundle: a directory with `rootfs/` and `config.json`.
/// Mutate `config`, then call [`Bundle::save`].
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Write `config` to config.json.
    pub fn save(&self) -> &Self {
        let text = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.config_path(), text).expect("write config.json");
        self
    }

    /// Replace process.args and save.
    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self.save();
        self
    }

    /// Create directories inside the rootfs (mountpoints must exist: the root
    /// is read-only and stele never creates mountpoints in an image).
    pub fn mkdirs(&self, paths: &[&str]) -> &Self {
        for p in paths {
            fs::create_dir_all(self.rootfs().join(p.trim_start_matches('/'))).unwrap();
        }
        self
    }

    /// Append a mount entry and save.
    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.config["mounts"].as_array_mut().unwrap().push(mount);
        self.save();
        self
    }
}

// ---------------------------------------------------------------------------
// Running the runtime

/// The result of one runtime invocation. stdout/stderr are captured through
/// files (not pipes) so a container that inherits them cannot block the test.
#[derive(Debug)]
pub struct Out {
    pub argv: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Out {
    /// Assert success; returns self for chaining.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success: {self}");
        self
    }

    /// Assert failure with a message on stderr.
    #[track_caller]
    pub fn fails(&self) -> &Self {
        assert_ne!(self.code, 0, "expected failure: {self}");
        assert!(!self.stderr.trim().is_empty(), "failure without a message on stderr: {self}");
        self
    }

    /// Assert failure with exit code 1 and a message on stderr.
    #[track_caller]
    pub fn fails_with_1(&self) -> &Self {
        self.fails();
        assert_eq!(self.code, 1, "expected exit code 1: {self}");
        self
    }

    /// Assert stderr contains `needle` (case-insensitive).
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr lacks {needle:?}: {self}"
        );
        self
    }

    /// Read the stdout file again (a container may have written to it since).
    pub fn reread_stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Read the stderr file again.
    pub fn reread_stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// stdout lines, trimmed.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(|l| l.trim().to_owned()).collect()
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n  argv: {:?}\n  exit: {}\n  stdout: {:?}\n  stderr: {:?}",
            self.argv, self.code, self.stdout, self.stderr
        )
    }
}

/// Run `cmd` with stdout/stderr redirected to files under `dir`, stdin from
/// /dev/null, and fail the test if it takes longer than `timeout`.
pub fn run_captured(mut cmd: Command, dir: &Path, timeout: Duration) -> Out {
    let n = next_seq();
    let out_path = dir.join(format!("out-{n}"));
    let err_path = dir.join(format!("err-{n}"));
    let argv: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "timed out after {timeout:?}: {argv:?}\nstderr so far: {}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    };
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Out {
        argv,
        code,
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        stdout_path: out_path,
        stderr_path: err_path,
    }
}

/// Make the given fds (target number, source) appear in the child without
/// close-on-exec: simulates a caller that leaks fds, or `--preserve-fds`.
pub fn with_fds(cmd: &mut Command, fds: Vec<(i32, OwnedFd)>) {
    let pairs: Vec<(i32, i32)> = fds.iter().map(|(t, f)| (*t, f.as_raw_fd())).collect();
    // Keep the sources open until the command is dropped.
    let keep = fds;
    unsafe {
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        cmd.pre_exec(move || {
            let _ = &keep;
            // First move every source above the targets so dup2 cannot clobber
            // a source that happens to sit on a target number.
            let mut high = Vec::with_capacity(pairs.len());
            for (_, src) in &pairs {
                let fd = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, 100);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push(fd);
            }
            for ((target, _), fd) in pairs.iter().zip(high) {
                if libc::dup2(fd, *target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// One test's world: a temp dir, a private `--root`, unique container ids.
pub struct Ctx {
    tmp: TempDir,
    root: PathBuf,
    ids: RefCell<Vec<String>>,
    bundles: Cell<u32>,
}

impl Ctx {
    pub fn new(name: &str) -> Ctx {
        let tmp = TempDir::new(name);
        let root = tmp.path().join("state");
        Ctx { tmp, root, ids: RefCell::new(Vec::new()), bundles: Cell::new(0) }
    }

    /// The `--root` state dir.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside this test's temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// A fresh, unique container id; the container is force-deleted on drop.
    pub fn id(&self, tag: &str) -> String {
        let id = format!("{}-{}-{}", sanitize(tag), std::process::id(), next_seq());
        self.track(&id);
        id
    }

    /// Force-delete `id` when the test ends.
    pub fn track(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_owned());
    }

    /// A new bundle with the default config and `args`; config.json is written.
    pub fn bundle(&self, args: &[&str]) -> Bundle {
        let n = self.bundles.get();
        self.bundles.set(n + 1);
        let dir = self.tmp.path().join(format!("bundle{n}"));
        fs::create_dir_all(&dir).unwrap();
        make_rootfs(&dir.join("rootfs"));
        let bundle = Bundle { dir, config: default_config(args) };
        bundle.save();
        bundle
    }

    /// A bundle running `sh -c SCRIPT`.
    pub fn sh(&self, script: &str) -> Bundle {
        self.bundle(&["sh", "-c", script])
    }

    /// `RUNTIME --root ROOT ARGS...` as a Command, not yet run.
    pub fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(runtime());
        cmd.arg("--root").arg(&self.root);
        cmd.args(args);
        cmd
    }

    /// Run the runtime with `--root` and `args`.
    pub fn rt<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        self.exec(self.cmd(args))
    }

    /// Run a prepared command with output capture and the default timeout.
    pub fn exec(&self, cmd: Command) -> Out {
        run_captured(cmd, self.tmp.path(), TIMEOUT)
    }

    /// `run --bundle B ID` in the foreground; returns the container's output.
    pub fn run(&self, bundle: &Bundle) -> Out {
        let id = self.id("run");
        self.rt(&[OsStr::new("run"), OsStr::new("--bundle"), bundle.dir.as_os_str(), OsStr::new(&id)])
    }

    /// Run `sh -c SCRIPT` in a default bundle, assert success, return stdout.
    #[track_caller]
    pub fn run_sh(&self, script: &str) -> String {
        let bundle = self.sh(script);
        let out = self.run(&bundle);
        out.ok();
        out.stdout
    }

    /// `create --bundle B ID`, asserting success and that `state` then
    /// reports it created with a live init process.
    #[track_caller]
    pub fn create(&self, bundle: &Bundle, id: &str) -> Out {
        let out = self.rt(&[OsStr::new("create"), OsStr::new("--bundle"), bundle.dir.as_os_str(), OsStr::new(id)]);
        out.ok();
        let state = self.state(id);
        assert_eq!(state["status"], "created", "after create: {state}");
        let pid = state["pid"].as_i64().unwrap_or(0);
        assert!(pid > 0 && Path::new(&format!("/proc/{pid}")).exists(), "no init process after create: {state}");
        out
    }

    /// `state ID` parsed, asserting success.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.rt(&["state", id]);
        out.ok();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("state is not JSON ({e}): {out}"))
    }

    /// Poll `state` until the status is `want`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) -> Value {
        let start = Instant::now();
        loop {
            let state = self.state(id);
            if state["status"] == want {
                return state;
            }
            assert!(start.elapsed() < WAIT, "container {id} never became {want}: {state}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Assert that nothing of container `id` / `bundle` is left: no state dir,
    /// no process running from the bundle, no mount mentioning the bundle.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str, bundle: &Path) {
        let state_dir = self.root.join(id);
        assert!(!state_dir.exists(), "state dir left behind: {}", state_dir.display());
        let procs = processes_using(bundle);
        assert!(procs.is_empty(), "processes left behind using {}: {procs:?}", bundle.display());
        let mounts = mounts_mentioning(bundle);
        assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
        let list = self.rt(&["list", "-q"]);
        assert!(!list.stdout.lines().any(|l| l.trim() == id), "{id} still listed: {list}");
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let mut ids = self.ids.borrow().clone();
        if let Ok(out) = Command::new(runtime()).arg("--root").arg(&self.root).args(["list", "-q"]).output() {
            ids.extend(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned));
        }
        ids.sort();
        ids.dedup();
        for id in ids.iter().filter(|id| !id.is_empty()) {
            let _ = Command::new(runtime())
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

// ---------------------------------------------------------------------------
// Host-side observations

/// Pids of processes whose root, cwd or command line is inside `dir`.
pub fn processes_using(dir: &Path) -> Vec<(i32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else { return found };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == me {
            continue;
        }
        let base = entry.path();
        let cmdline = fs::read(base.join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let in_dir = |link: &str| {
            fs::read_link(base.join(link))
                .map(|p| p.starts_with(dir))
                .unwrap_or(false)
        };
        if cmdline.contains(&needle) || in_dir("root") || in_dir("cwd") {
            // Zombies being reaped and our own helpers are not leftovers.
            let state = fs::read_to_string(base.join("stat")).unwrap_or_default();
            if state.contains(") Z ") {
                continue;
            }
            found.push((pid, cmdline));
        }
    }
    found
}

/// Lines of /proc/self/mountinfo that mention `dir`.
pub fn mounts_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// Parse "Key:\tvalue" lines of a /proc/PID/status text into the value for `key`.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
}

/// Write an executable shell script (run with the host's /bin/sh).
pub fn write_script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Wait (at most 5 s) until process `pid` runs `want` (its NUL-separated
/// /proc/PID/cmdline): a shell the runtime started may exec its command a
/// moment after the runtime returns.
#[track_caller]
pub fn wait_cmdline(pid: i32, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).into_owned();
        if now == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "pid {pid} runs {now:?}, not {want:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
