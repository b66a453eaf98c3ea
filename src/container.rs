//! The container lifecycle (the state machine): create, start, run, state,
//! kill, delete, pause, resume, ps, list. Each operation takes the
//! container's lock for as long as it changes anything.

use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};
use crate::hooks::{self, Kind};
use crate::policy;
use crate::process::{self, SpawnOpts, StartVia};
use crate::state::{self, Entry, State, Status, Store};
use crate::bail;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Global settings from the command line.
#[derive(Clone, Debug)]
pub struct Globals {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub store: PathBuf,
}

impl Globals {
    pub fn store(&self) -> Store {
        Store::new(&self.root)
    }
}

#[derive(Clone, Debug, Default)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// Kill the container when the runtime dies (sandbox `run`).
    pub die_with_parent: bool,
    /// A console socket already connected (the sandbox's pty proxy), used
    /// instead of `console_socket`.
    pub console_fd: Option<std::sync::Arc<OwnedFd>>,
}

/// What a sandbox job (`run --image`) hands the create path besides
/// [`CreateOpts`].
#[derive(Clone, Debug, Default)]
pub struct Job {
    /// Its config.json document, built in memory: used instead of reading
    /// `<bundle>/config.json`, and saved in the state as it is.
    pub config: serde_json::Value,
    /// The cgroup controllers it needs (device rules, the limits and
    /// statistics asked for): its cgroup is made only in their v1
    /// hierarchies. The job's pid namespace, not a cgroup, ends every
    /// process of it when its init exits.
    pub controllers: Vec<&'static str>,
}

fn connect_console(path: &Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path).with_ctx(|| format!("connect to console socket {}", path.display()))?;
    Ok(OwnedFd::from(s))
}

/// The console socket: `console_fd` (sandbox), else `--console-socket PATH`.
fn console_of(o: &CreateOpts) -> Result<Option<OwnedFd>> {
    match &o.console_fd {
        Some(fd) => fd.try_clone().map(Some).ctx("dup the console socket"),
        None => o.console_socket.as_deref().map(connect_console).transpose(),
    }
}

/// The host's root, recursively, read-only, as a detached mount tree.
fn host_root_tree() -> Result<OwnedFd> {
    use crate::sys;
    let slash = sys::open_path(Path::new("/"), libc::O_PATH | libc::O_DIRECTORY)?;
    let tree = sys::open_tree_fd(slash.as_raw_fd(), true, "the host root")?;
    sys::mount_setattr(tree.as_raw_fd(), true, sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NODEV, 0, 0, "the host root")?;
    Ok(tree)
}

/// Everything `create` and `run` share: validate, check policy, make the
/// state dir, cgroup, spawn. On error nothing is left behind.
fn create_inner(g: &Globals, id: &str, o: &CreateOpts, via: StartVia, job: Option<&Job>) -> Result<(Entry, State, process::Spawned)> {
    state::validate_id(id)?;
    let bundle = match job {
        Some(j) => crate::spec::in_memory(&o.bundle, &j.config)?,
        None => crate::spec::load(&o.bundle)?,
    };
    crate::log::phase("config loaded");
    let spec = &bundle.spec;
    if spec.process().is_none() {
        bail!("config.json: process: missing");
    }
    let image_root = match spec.annotations() {
        Some(a) => crate::image::overlay_root_mount(a, &g.store)?,
        None => None,
    };
    let kind = policy::rootfs_kind(spec, &bundle.rootfs, image_root.is_some());
    // sandbox --writable: a throw-away upper layer over the image or host root.
    let (kind, image_root) = match crate::sandbox::writable_root(spec, kind)? {
        Some(m) => (policy::RootfsKind::OverlayWithUpper, Some(m)),
        None => (kind, image_root),
    };
    let image_root = match kind {
        policy::RootfsKind::Host => Some(host_root_tree()?),
        _ => image_root,
    };
    policy::check(spec, &bundle.dir, &bundle.rootfs, kind, &g.store)?;

    let store = g.store();
    let entry = store.create(id)?;
    crate::log::phase("state locked");

    if via == StartVia::Fifo {
        // 0622 (the umask would take the others' write bit): an init that
        // already switched to a non-root user opens it for writing. One left
        // by a create that was killed is stale (no record names it).
        let fifo = &entry.fifo;
        let _ = std::fs::remove_file(fifo);
        let made = nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
            .ctx("create exec.fifo")
            .and_then(|_| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(fifo, std::fs::Permissions::from_mode(0o622)).ctx("chmod exec.fifo")
            });
        if let Err(e) = made {
            discard(&entry, None);
            return Err(e);
        }
    }
    let linux = spec.linux().as_ref();
    let cgroup = match Cgroup::create_dirs_only(
        id,
        linux.and_then(|l| l.cgroups_path().as_ref()).map(|p| p.to_string_lossy()).as_deref(),
        g.systemd_cgroup,
        linux.and_then(|l| l.resources().as_ref()),
        job.map(|j| j.controllers.as_slice()),
    ) {
        Ok(c) => c,
        Err(e) => {
            discard(&entry, None);
            return Err(e);
        }
    };
    crate::log::phase("cgroup");
    let console = match console_of(o) {
        Ok(c) => c,
        Err(e) => {
            discard(&entry, Some(&cgroup));
            return Err(e);
        }
    };

    let annotations: std::collections::BTreeMap<String, String> =
        spec.annotations().clone().unwrap_or_default().into_iter().collect();
    // The record, saved by the runtime while the init mounts: from then
    // on, if this runtime is killed, `delete --force` finds the init and
    // the cgroup.
    let mut st = State {
        id: id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: crate::log::rfc3339_now(),
        owner: String::new(),
        annotations: annotations.clone(),
        cgroup: Some(cgroup.clone()),
        config: serde_json::Value::Null,
        started: via == StartVia::Socket,
        supervisor: job.map(|_| {
            let me = std::process::id() as i32;
            (me, crate::sys::process_start_time(me).unwrap_or(0))
        }),
    };
    let mut record = |pid: i32| {
        st.pid = pid;
        st.pid_start = crate::sys::process_start_time(pid).unwrap_or(0);
        st.config = match job {
            Some(j) => j.config.clone(),
            None => serde_json::to_value(spec).unwrap_or_default(),
        };
        entry.save(&st)
    };
    let state_json = |pid: i32| {
        serde_json::json!({
            "ociVersion": spec.version(),
            "id": id,
            "status": "creating",
            "pid": pid,
            "bundle": bundle.dir,
            "annotations": annotations,
        })
    };
    let spawned = process::spawn(SpawnOpts {
        bundle: &bundle,
        id,
        state_root: &g.root,
        fifo: &entry.fifo,
        console_socket: console,
        preserve_fds: o.preserve_fds,
        no_pivot: o.no_pivot,
        start_via: via,
        cgroup: Some(&cgroup),
        root_mount: image_root,
        die_with_parent: o.die_with_parent,
        create_mountpoints: kind.may_create_mountpoints(spec),
        close_in_child: &[entry.lock_fd()],
        resources: linux.and_then(|l| l.resources().as_ref()),
        state_json: &state_json,
        start_early: spec.hooks().is_none(),
        on_cloned: &mut record,
    });
    let spawned = match spawned {
        Ok(s) => s,
        Err(e) => {
            discard(&entry, Some(&cgroup));
            return Err(e);
        }
    };
    crate::log::phase("init ready");
    if via == StartVia::Socket {
        // `run`: the init is released first, the pid file written while it
        // execs (start_spawned).
        return Ok((entry, st, spawned));
    }
    if let Err(e) = write_pid_file(&st, o).and_then(|_| spawned.confirm_saved()) {
        spawned.kill_and_reap();
        discard(&entry, st.cgroup.as_ref());
        return Err(e);
    }
    Ok((entry, st, spawned))
}

/// Undo a create that failed: the cgroup (and the directories made for
/// it), then the state directory.
fn discard(entry: &Entry, cg: Option<&Cgroup>) {
    if let Some(cg) = cg {
        let _ = cg.destroy();
        cg.remove_created();
    }
    let _ = entry.remove();
}

fn write_pid_file(st: &State, o: &CreateOpts) -> Result<()> {
    match &o.pid_file {
        Some(p) => state::write_pid_file(p, st.pid),
        None => Ok(()),
    }
}

/// `create`: returns once the init is ready and blocked on exec.fifo.
pub fn create(g: &Globals, id: &str, o: &CreateOpts) -> Result<()> {
    let (_entry, _st, _sp) = create_inner(g, id, o, StartVia::Fifo, None)?;
    Ok(())
}

fn spec_of(st: &State) -> Option<oci_spec::runtime::Spec> {
    crate::spec::from_value(&st.config).ok()
}

/// The spec, to run its hooks: None, and nothing parsed, when it has none.
fn spec_with_hooks(st: &State) -> Option<oci_spec::runtime::Spec> {
    st.config.get("hooks").filter(|h| !h.is_null())?;
    spec_of(st)
}

/// `start`: release a created container's init to exec its process.
pub fn start(g: &Globals, id: &str) -> Result<()> {
    let entry = g.store().open(id)?;
    let mut st = entry.load()?;
    match st.status(&entry.fifo) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        s => bail!("cannot start an already {} container", s.as_str()),
    }
    // Pin the init with a pidfd *before* opening the fifo: opening it releases the
    // init, which may exec, exit and be reaped by its parent (a shim or conmon is a
    // subreaper) before we get to look at it again.
    let pidfd = crate::sys::pidfd_open(st.pid)
        .map_err(|_| Error::msg(format!("cannot start container {id}: its init exited")))?;
    let fifo = &entry.fifo;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(fifo)
        .with_ctx(|| format!("open {}", fifo.display()))?;
    // Wait for the init's byte, or its death.
    let mut fds = [
        libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
    ];
    loop {
        // SAFETY: two valid pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 30_000) };
        if n < 0 && nix::errno::Errno::last_raw() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            bail!("timed out waiting for the container's init");
        }
        break;
    }
    let mut b = [0u8; 1];
    // SAFETY: one byte into a valid buffer.
    let r = unsafe { libc::read(f.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
    if r != 1 {
        bail!("cannot start container {id}: its init exited");
    }
    // The init keeps its end open until it execs: EOF means the process
    // runs (poststart hooks come after that, as the spec says).
    wait_eof(&f, &pidfd);
    let _ = std::fs::remove_file(fifo);
    st.started = true;
    entry.save(&st)?;
    if let Some(spec) = spec_with_hooks(&st) {
        if let Err(e) = hooks::run(&spec, Kind::Poststart, &st.to_oci_json(Status::Running)) {
            crate::warn!("{e}");
        }
    }
    Ok(())
}

/// Wait (at most 30 s) until every writer of the fifo has closed it.
fn wait_eof(f: &std::fs::File, pidfd: &OwnedFd) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut b = [0u8; 16];
        // SAFETY: read into a valid buffer (non-blocking fd).
        let r = unsafe { libc::read(f.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
        if r == 0 {
            return;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        let mut fds = [
            libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: two valid pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, left.as_millis().min(1000) as i32) };
        if n > 0 && fds[0].revents & libc::POLLIN == 0 && fds[0].revents & libc::POLLHUP != 0 {
            return;
        }
        if n > 0 && fds[1].revents != 0 && fds[0].revents == 0 {
            return; // the init died
        }
    }
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}
impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

/// Signals `run` forwards to the container (all but the ones it cannot catch
/// and SIGCHLD, which it uses itself).
fn forwarded_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in Signal::iterator() {
        if !matches!(s, Signal::SIGKILL | Signal::SIGSTOP) {
            set.add(s);
        }
    }
    set
}

/// `run`: create + start, then wait and exit with the container's status
/// (or return at once with `detach`).
pub fn run(g: &Globals, id: &str, o: &CreateOpts, detach: bool) -> Result<i32> {
    if detach {
        let (entry, st, sp) = create_inner(g, id, o, StartVia::Socket, None)?;
        start_spawned(&entry, &st, &sp, o)?;
        return Ok(0);
    }
    Ok(run_supervised_with(g, id, o, None, false, None, &mut |_| false)?.code)
}

/// How a supervised container ended.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Shell-style status: the exit code, 128+N for signal N, 124 on timeout.
    pub code: i32,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub wall: Duration,
    /// Resource use read from the cgroup just before it was removed.
    pub peak_memory_bytes: Option<u64>,
    pub cpu_time_ns: Option<u64>,
}

/// `run`: release the init, write the pid file while it execs, wait for
/// the exec, run poststart hooks. On error the container is removed.
fn start_spawned(entry: &Entry, st: &State, sp: &process::Spawned, o: &CreateOpts) -> Result<()> {
    let started = sp.send_start().and_then(|_| write_pid_file(st, o)).and_then(|_| sp.wait_exec());
    if let Err(e) = started {
        sp.kill_and_reap();
        discard(entry, st.cgroup.as_ref());
        return Err(e);
    }
    if let Some(spec) = spec_with_hooks(st) {
        if let Err(e) = hooks::run(&spec, Kind::Poststart, &st.to_oci_json(Status::Running)) {
            crate::warn!("{e}");
        }
    }
    Ok(())
}

/// Create, start and wait for a container in the foreground, forwarding
/// signals; kill it when `timeout` passes; remove it when it has ended.
/// `job`: a sandbox job's config and cgroup needs (else the bundle's
/// config.json). Each signal is offered to `on_signal` first: a signal for
/// which it returns true is not forwarded (the pty proxy takes SIGWINCH).
pub fn run_supervised_with(
    g: &Globals,
    id: &str,
    o: &CreateOpts,
    timeout: Option<Duration>,
    collect_stats: bool,
    job: Option<&Job>,
    on_signal: &mut dyn FnMut(i32) -> bool,
) -> Result<Outcome> {
    // Block the signals before the container exists, so none is lost
    // (a fast container can exit before we would otherwise wait).
    let set = forwarded_signals();
    set.thread_block().ctx("block signals")?;
    let began = std::time::Instant::now();
    let (entry, st, sp) = create_inner(g, id, o, StartVia::Socket, job)?;
    start_spawned(&entry, &st, &sp, o)?;
    crate::log::phase("started");
    drop(entry);
    let deadline = timeout.map(|t| began + t);
    let mut out = wait_forwarding(sp.pid, sp.pidfd.as_raw_fd(), &set, deadline, &st, on_signal);
    out.wall = began.elapsed();
    crate::log::phase("exited");
    let _ = set.thread_unblock();
    if let Some(cg) = st.cgroup.as_ref().filter(|_| collect_stats) {
        if let Ok(v) = cg.stats() {
            out.peak_memory_bytes = v["memory"]["usage"]["max"].as_u64();
            out.cpu_time_ns = v["cpu"]["usage"]["total"].as_u64();
        }
        out.oom_killed = cg.oom_kill_count().unwrap_or(0) > 0;
    }
    destroy(g, id, &st)?;
    crate::log::phase("removed");
    Ok(out)
}

/// Wait for `pid`, forwarding every signal we get to it; at `deadline`,
/// kill every process of the container.
fn wait_forwarding(
    pid: i32,
    pidfd: i32,
    set: &nix::sys::signal::SigSet,
    deadline: Option<std::time::Instant>,
    st: &State,
    on_signal: &mut dyn FnMut(i32) -> bool,
) -> Outcome {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let mut timed_out = false;
    loop {
        let sig = match deadline {
            Some(d) if !timed_out => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    timed_out = true;
                    let _ = signal_all(st, libc::SIGKILL);
                    let _ = crate::sys::pidfd_send_signal(pidfd, libc::SIGKILL);
                    continue;
                }
                let ts = libc::timespec { tv_sec: left.as_secs() as _, tv_nsec: left.subsec_nanos() as libc::c_long };
                // SAFETY: valid signal set and timeout; no siginfo wanted.
                let r = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
                if r < 0 {
                    continue;
                }
                r
            }
            _ => match set.wait() {
                Ok(s) => s as i32,
                Err(_) => continue,
            },
        };
        if sig == libc::SIGCHLD {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => {
                        return Outcome { code: if timed_out { 124 } else { c }, timed_out, ..Default::default() }
                    }
                    Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => {
                        let code = if timed_out { 124 } else { 128 + s as i32 };
                        return Outcome { code, signal: Some(s as i32), timed_out, ..Default::default() };
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        } else if !timed_out && !on_signal(sig) {
            let _ = crate::sys::pidfd_send_signal(pidfd, sig);
        }
    }
}

/// Tear down a container whose processes are gone: poststop hooks, cgroup,
/// state directory.
fn destroy(g: &Globals, id: &str, st: &State) -> Result<()> {
    let entry = match g.store().open(id) {
        Ok(e) => e,
        Err(_) => return Ok(()),
    };
    if let Some(cg) = &st.cgroup {
        cg.destroy()?;
    }
    if let Some(spec) = spec_with_hooks(st) {
        if let Err(e) = hooks::run(&spec, Kind::Poststop, &st.to_oci_json(Status::Stopped)) {
            crate::warn!("{e}");
        }
    }
    entry.remove()
}

/// `state`: runc's state JSON.
pub fn state(g: &Globals, id: &str) -> Result<serde_json::Value> {
    let entry = g.store().open(id)?;
    let st = entry.load()?;
    Ok(st.to_oci_json(st.status(&entry.fifo)))
}

/// All containers' state JSON (for `list`), skipping half-made ones.
pub fn list(g: &Globals) -> Result<Vec<serde_json::Value>> {
    let store = g.store();
    let mut out = vec![];
    for id in store.list()? {
        let Ok(entry) = store.open(&id) else { continue };
        let Ok(st) = entry.load() else { continue };
        out.push(st.to_oci_json(st.status(&entry.fifo)));
    }
    Ok(out)
}

/// Parse a signal given as a name (KILL, SIGKILL) or a number.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal: {s}");
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let base = libc::SIGRTMIN();
        let off: i32 = if rest.is_empty() { 0 } else { rest.trim_start_matches('+').parse().map_err(|_| Error::msg(format!("invalid signal: {s}")))? };
        return Ok(base + off);
    }
    name.parse::<nix::sys::signal::Signal>().map(|s| s as i32).map_err(|_| Error::msg(format!("unknown signal {s:?}")))
}

fn signal_init(st: &State, sig: i32) -> Result<()> {
    let pidfd = crate::sys::pidfd_open(st.pid)?;
    // The pidfd pins the process: check it is still the one we started.
    if !state::process_alive(st.pid, st.pid_start) {
        bail!("container not running");
    }
    crate::sys::pidfd_send_signal(pidfd.as_raw_fd(), sig)
}

/// Signal every process of the container: through its cgroup, or, when
/// the cgroup lists none, every process in the init's pid namespace.
fn signal_all(st: &State, sig: i32) -> Result<()> {
    if let Some(cg) = &st.cgroup {
        if !cg.pids().unwrap_or_default().is_empty() {
            return cg.kill_all(sig);
        }
    }
    let ns = std::fs::read_link(format!("/proc/{}/ns/pid", st.pid)).ctx("read the container's pid namespace")?;
    let mut pids = vec![];
    for e in std::fs::read_dir("/proc").ctx("read /proc")?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() == Some(&ns) {
            pids.push(pid);
        }
    }
    for p in pids {
        // SAFETY: plain kill.
        unsafe { libc::kill(p, sig) };
    }
    Ok(())
}

/// `kill`.
pub fn kill(g: &Globals, id: &str, sig: i32, all: bool) -> Result<()> {
    let entry = g.store().open(id)?;
    let st = entry.load()?;
    let status = st.status(&entry.fifo);
    if status == Status::Stopped {
        if all {
            return Ok(());
        }
        bail!("container not running");
    }
    if all {
        signal_all(&st, sig)
    } else {
        signal_init(&st, sig)
    }
}

fn wait_gone(st: &State, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if !state::process_alive(st.pid, st.pid_start) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// `delete`: remove a stopped (or, with `force`, any) container. A missing
/// container with `force` is not an error, as the shim expects.
pub fn delete(g: &Globals, id: &str, force: bool) -> Result<()> {
    let entry = match g.store().open(id) {
        Ok(e) => e,
        Err(e) if force && e.to_string().contains("does not exist") => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = match entry.load() {
        Ok(st) => st,
        // Half-made state (a create killed midway): nothing to run, clean up.
        Err(_) => return entry.remove(),
    };
    let status = st.status(&entry.fifo);
    if st.pid == 0 {
        // Recorded before its init existed (a create that was killed):
        // whatever runs in its cgroup goes.
        if let Some(cg) = &st.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
        }
    }
    match status {
        Status::Stopped => {}
        Status::Created => {
            let _ = signal_all(&st, libc::SIGKILL);
            let _ = signal_init(&st, libc::SIGKILL);
        }
        Status::Running | Status::Paused | Status::Creating if force => {
            let _ = signal_all(&st, libc::SIGKILL);
            let _ = signal_init(&st, libc::SIGKILL);
            if status == Status::Paused {
                if let Some(cg) = &st.cgroup {
                    let _ = cg.thaw();
                }
            }
        }
        s => bail!("cannot delete container {id} that is not stopped: {}", s.as_str()),
    }
    if status != Status::Stopped && !wait_gone(&st, Duration::from_secs(10)) {
        bail!("container {id}: init did not exit after SIGKILL");
    }
    drop(entry);
    destroy(g, id, &st)
}

/// `pause` / `resume` through the freezer.
pub fn pause(g: &Globals, id: &str, freeze: bool) -> Result<()> {
    let entry = g.store().open(id)?;
    let st = entry.load()?;
    let status = st.status(&entry.fifo);
    let cg = st.cgroup.as_ref().ok_or_else(|| Error::msg("container has no cgroup"))?;
    if freeze {
        if status != Status::Running {
            bail!("container not running");
        }
        cg.freeze()
    } else {
        if status != Status::Paused {
            bail!("container not paused");
        }
        cg.thaw()
    }
}

/// Host pids of the container's processes.
pub fn ps(g: &Globals, id: &str) -> Result<Vec<i32>> {
    let entry = g.store().open(id)?;
    let st = entry.load()?;
    match &st.cgroup {
        Some(cg) => cg.pids(),
        None => Ok(vec![]),
    }
}

/// `exec` options (runc's flags).
#[derive(Clone, Debug, Default)]
pub struct ExecOpts {
    pub process_file: Option<PathBuf>,
    pub args: Vec<String>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub tty: bool,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
}

/// The process `exec` runs: `--process FILE` as given, or the container's
/// own process with runc's flag overrides.
fn exec_process(st: &State, o: &ExecOpts) -> Result<oci_spec::runtime::Process> {
    let parse = |v: &[u8], what: &str| -> Result<oci_spec::runtime::Process> {
        let de = &mut serde_json::Deserializer::from_slice(v);
        serde_path_to_error::deserialize::<_, crate::spec::De<oci_spec::runtime::Process>>(de)
            .map(|p| p.0)
            .map_err(|e| Error::msg(format!("{what}: {}: {}", e.path(), e.inner())))
    };
    let p = if let Some(f) = &o.process_file {
        let bytes = std::fs::read(f).with_ctx(|| format!("read process file {}", f.display()))?;
        parse(&bytes, "process")?
    } else {
        let mut v = st.config.get("process").cloned().unwrap_or_else(|| serde_json::json!({}));
        if o.args.is_empty() {
            bail!("exec: no command given");
        }
        v["args"] = serde_json::json!(o.args);
        v["terminal"] = serde_json::json!(o.tty);
        if let Some(c) = &o.cwd {
            v["cwd"] = serde_json::json!(c);
        }
        if !o.env.is_empty() {
            let mut env: Vec<String> = v["env"].as_array().map(|a| a.iter().filter_map(|e| e.as_str().map(String::from)).collect()).unwrap_or_default();
            for e in &o.env {
                let key = e.split('=').next().unwrap_or("");
                env.retain(|x| x.split('=').next() != Some(key));
                env.push(e.clone());
            }
            v["env"] = serde_json::json!(env);
        }
        if let Some(u) = &o.user {
            let (uid, gid) = match u.split_once(':') {
                Some((a, b)) => (a, Some(b)),
                None => (u.as_str(), None),
            };
            let uid: u32 = uid.parse().map_err(|_| Error::msg(format!("--user: {u:?} must be UID[:GID] (numbers)")))?;
            v["user"]["uid"] = serde_json::json!(uid);
            if let Some(g) = gid {
                let gid: u32 = g.parse().map_err(|_| Error::msg(format!("--user: {u:?} must be UID[:GID] (numbers)")))?;
                v["user"]["gid"] = serde_json::json!(gid);
            }
        }
        if !o.additional_gids.is_empty() {
            v["user"]["additionalGids"] = serde_json::json!(o.additional_gids);
        }
        if !o.caps.is_empty() {
            for set in ["bounding", "effective", "permitted", "ambient", "inheritable"] {
                let list = v["capabilities"][set].as_array().cloned().unwrap_or_default();
                let mut list: Vec<serde_json::Value> = list;
                for c in &o.caps {
                    let c = if c.starts_with("CAP_") { c.clone() } else { format!("CAP_{}", c.to_ascii_uppercase()) };
                    if !list.iter().any(|x| x.as_str() == Some(&c)) {
                        list.push(serde_json::json!(c));
                    }
                }
                v["capabilities"][set] = serde_json::json!(list);
            }
        }
        if o.no_new_privs {
            v["noNewPrivileges"] = serde_json::json!(true);
        }
        parse(&serde_json::to_vec(&v).unwrap_or_default(), "process")?
    };
    match p.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => bail!("process.args: must name the program to run"),
    }
    if !p.cwd().is_absolute() {
        bail!("process.cwd: {:?} must be an absolute path", p.cwd());
    }
    Ok(p)
}

/// `exec`: run a process in a running container. Foreground: returns its
/// exit status; `detach`: returns once it runs.
pub fn exec(g: &Globals, id: &str, o: &ExecOpts) -> Result<i32> {
    let (st, spec) = {
        let entry = g.store().open(id)?;
        let st = entry.load()?;
        match st.status(&entry.fifo) {
            Status::Stopped => bail!("cannot exec in a stopped container"),
            Status::Paused if !o.ignore_paused => bail!("cannot exec in a paused container"),
            _ => {}
        }
        let spec = spec_of(&st).ok_or_else(|| Error::msg("container state has no config"))?;
        (st, spec)
    };
    let process = exec_process(&st, o)?;
    let console = o.console_socket.as_deref().map(connect_console).transpose()?;
    let set = forwarded_signals();
    if !o.detach {
        set.thread_block().ctx("block signals")?;
    }
    let sp = process::spawn_exec(process::ExecOpts {
        id,
        state_root: &g.root,
        bundle: &st.bundle,
        spec: &spec,
        process: &process,
        init_pid: st.pid,
        cgroup: st.cgroup.as_ref(),
        console_socket: console,
        preserve_fds: o.preserve_fds,
    })?;
    if let Some(p) = &o.pid_file {
        if let Err(e) = state::write_pid_file(p, sp.pid) {
            sp.kill_and_reap();
            return Err(e);
        }
    }
    sp.start()?;
    if o.detach {
        return Ok(0);
    }
    let code = wait_forwarding(sp.pid, sp.pidfd.as_raw_fd(), &set, None, &st, &mut |_| false).code;
    let _ = set.thread_unblock();
    Ok(code)
}

/// `update`: apply new resource limits to a running container's cgroup and
/// record them in its state.
pub fn update(g: &Globals, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let entry = g.store().open(id)?;
    let mut st = entry.load()?;
    if st.status(&entry.fifo) == Status::Stopped {
        bail!("container {id} is not running");
    }
    let cg = st.cgroup.as_ref().ok_or_else(|| Error::msg("container has no cgroup"))?;
    cg.update(resources)?;
    // Merge the new values into the saved config's linux.resources.
    let new = serde_json::to_value(resources).unwrap_or_default();
    let cur = &mut st.config["linux"]["resources"];
    if !cur.is_object() {
        *cur = serde_json::json!({});
    }
    merge_json(cur, &new);
    entry.save(&st)
}

fn merge_json(dst: &mut serde_json::Value, src: &serde_json::Value) {
    match (dst, src) {
        (serde_json::Value::Object(d), serde_json::Value::Object(s)) => {
            for (k, v) in s {
                merge_json(d.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (d, s) => *d = s.clone(),
    }
}

/// One `events` record: `{"type":"stats","id":..,"data":{..}}`.
pub fn stats_event(g: &Globals, id: &str) -> Result<serde_json::Value> {
    let entry = g.store().open(id)?;
    let st = entry.load()?;
    if st.status(&entry.fifo) == Status::Stopped {
        bail!("container {id} is not running");
    }
    let cg = st.cgroup.as_ref().ok_or_else(|| Error::msg("container has no cgroup"))?;
    Ok(serde_json::json!({"type": "stats", "id": id, "data": cg.stats()?}))
}

/// `events` stream: a stats record every `interval`, an `oom` record when
/// the container's OOM kill count grows; ends when the container stops.
pub fn events(g: &Globals, id: &str, interval: Duration, mut emit: impl FnMut(&serde_json::Value)) -> Result<()> {
    let (st, dir) = {
        let entry = g.store().open(id)?;
        (entry.load()?, entry.fifo.clone())
    };
    let cg = st.cgroup.clone().ok_or_else(|| Error::msg("container has no cgroup"))?;
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    let tick = Duration::from_millis(100).min(interval);
    let mut last = std::time::Instant::now() - interval;
    loop {
        if st.status(&dir) == Status::Stopped {
            return Ok(());
        }
        let n = cg.oom_kill_count().unwrap_or(ooms);
        if n > ooms {
            ooms = n;
            emit(&serde_json::json!({"type": "oom", "id": id}));
        }
        if last.elapsed() >= interval {
            last = std::time::Instant::now();
            if let Ok(data) = cg.stats() {
                emit(&serde_json::json!({"type": "stats", "id": id, "data": data}));
            }
        }
        std::thread::sleep(tick);
    }
}
