//! The process model: the runtime clones the container's init directly
//! (clone3, no re-exec of the stele binary inside the container), and the
//! two talk over a SOCK_SEQPACKET pair until the init is ready and blocked.
//!
//! ```text
//! parent (create/run)                      init (in new namespaces)
//!   clone3(ns flags, into the cgroup) -->  non-dumpable
//!   new network namespace, send Net ---->  join ns, unshare cgroup ns,
//!   limits + device rules, send Go ----->  hostname, mounts (joins Net
//!   write the state record                 before sysfs), devices (after
//!                                          Go on v1), sysctl
//!                          <------------- Mounted (only if there are hooks)
//!   prestart + createRuntime hooks
//!   send HooksDone --------------------->  createContainer hooks, pivot_root,
//!                                          masked/readonly paths, ro root,
//!                                          rlimits, cwd, resolve args[0],
//!                                          no_new_privs | seccomp (no NNP),
//!                                          bounding set, user, capabilities
//!                          <------------- Ready   (or Error "msg")
//!   create: pid file, Saved, exit          wait for start: exec.fifo (create)
//!   run: Start (with Go when no hooks) ->  or Start on the socket (run);
//!                                          startContainer hooks, seccomp
//!                                          (with NNP), fds >= 3+N cloexec,
//!                                          execve (the socket is CLOEXEC:
//!                          <------------- EOF = exec succeeded)
//! ```

use crate::error::{Context, Error, Result};
use crate::hooks::{self, Kind};
use crate::rootfs;
use crate::security::{self, CapSets};
use crate::spec::Bundle;
use crate::sys;
use crate::bail;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Annotation asking the init to bring `lo` up in its new network namespace
/// (the sandbox's `--net none`: loopback only).
pub const LOOPBACK_ANNOTATION: &str = "dev.stele.loopback-up";

const MSG_GO: u8 = b'G';
const MSG_MOUNTED: u8 = b'M';
const MSG_HOOKS_DONE: u8 = b'H';
const MSG_READY: u8 = b'R';
const MSG_START: u8 = b'S';
/// `create`: the runtime has written the state (the init may wait on the fifo).
const MSG_SAVED: u8 = b'V';
const MSG_ERROR: u8 = b'E';
/// The init's uid and gid maps are written (new user namespace).
const MSG_MAPPED: u8 = b'U';
/// From the intermediate of a joined user namespace: the init's pid.
const MSG_CLONED: u8 = b'C';
/// The container's new network namespace (an fd), made by the runtime.
const MSG_NET: u8 = b'N';

/// How the init learns that it may exec.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StartVia {
    /// `create`: the init blocks opening `exec.fifo` until `start` reads it.
    Fifo,
    /// `run`: the parent sends Start on the socket.
    Socket,
}

pub struct SpawnOpts<'a> {
    pub bundle: &'a Bundle,
    pub id: &'a str,
    /// The state root (`--root`), for the seccomp cache.
    pub state_root: &'a Path,
    /// `create`'s fifo (the init opens it to wait for `start`).
    pub fifo: &'a Path,
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub start_via: StartVia,
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
    /// Detached read-only image overlay to use as the root.
    pub root_mount: Option<OwnedFd>,
    /// Kill the container if the runtime dies (foreground `run` of a sandbox).
    pub die_with_parent: bool,
    /// May missing mountpoints be created in the rootfs?
    pub create_mountpoints: bool,
    /// Resources for `cgroup`, applied while the init sets up its namespaces
    /// (before it can exec).
    pub resources: Option<&'a oci_spec::runtime::LinuxResources>,
    /// fds the init must close at once (the container's state lock).
    pub close_in_child: &'a [RawFd],
    /// The state JSON hooks receive (status "creating", pid filled in).
    pub state_json: &'a dyn Fn(i32) -> serde_json::Value,
    /// With [`StartVia::Socket`] (`run`) and no hooks: send Start right
    /// behind Go, so that the init goes on to exec as soon as it is ready
    /// instead of waiting for the runtime once more (one wake-up less on
    /// each side). It still cannot exec before Go, that is, before its
    /// cgroup's limits and device rules are in place, and the runtime still
    /// waits for its Ready or error.
    pub start_early: bool,
    /// Called in the runtime with the init's pid once Go is sent (it
    /// records the container while the init mounts, before any hook);
    /// an error kills the init.
    pub on_cloned: &'a mut dyn FnMut(i32) -> Result<()>,
}

/// A container init that has reported ready.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    sock: OwnedFd,
    /// Start went out with Go (`SpawnOpts::start_early`).
    start_sent: bool,
}

fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid array of two ints.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(Error::os("socketpair", nix::errno::Errno::last_raw()));
    }
    // SAFETY: the kernel just gave us these two fds.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn send(sock: RawFd, tag: u8, payload: &[u8]) -> Result<()> {
    let mut buf = Vec::with_capacity(1 + payload.len());
    buf.push(tag);
    buf.extend_from_slice(payload);
    // SAFETY: valid buffer.
    let n = unsafe { libc::send(sock, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(Error::os("sync socket: send", nix::errno::Errno::last_raw()));
    }
    Ok(())
}

/// Receive one message; None on EOF.
///
/// A peer that exits with our messages unread in its queue (an init that
/// failed before reading "go") leaves ECONNRESET pending on our end, and
/// recv reports it before the messages the peer sent: the init's error.
/// Reading the error clears it, so read once more to get them (or EOF).
fn recv(sock: RawFd) -> Result<Option<(u8, Vec<u8>)>> {
    let mut buf = [0u8; 8192];
    let mut reset_seen = false;
    loop {
        // SAFETY: valid buffer.
        let n = unsafe { libc::recv(sock, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = nix::errno::Errno::last_raw();
            if e == libc::EINTR {
                continue;
            }
            if e == libc::ECONNRESET && !reset_seen {
                reset_seen = true;
                continue;
            }
            return Err(Error::os("sync socket: recv", e));
        }
        if n == 0 {
            return Ok(None);
        }
        return Ok(Some((buf[0], buf[1..n as usize].to_vec())));
    }
}

/// The error a peer reported in a [`MSG_ERROR`] message.
fn peer_error(msg: &[u8]) -> Error {
    Error::Msg(String::from_utf8_lossy(msg).into_owned())
}

fn clone_flags(spec: &Spec) -> u64 {
    let mut f = 0u64;
    for ns in crate::spec::namespaces(spec) {
        if ns.path().is_some() {
            continue;
        }
        f |= match ns.typ() {
            LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
            LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
            LinuxNamespaceType::Network => libc::CLONE_NEWNET,
            LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
            // first: the namespaces created with it belong to it
            LinuxNamespaceType::User => libc::CLONE_NEWUSER,
            // the cgroup namespace is unshared by the init once it is in its cgroup
            _ => 0,
        } as u64;
    }
    f
}

fn ns_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

fn setns_path(path: &Path, t: LinuxNamespaceType) -> Result<()> {
    let fd = sys::open_path(path, libc::O_RDONLY)
        .with_ctx(|| format!("linux.namespaces: {} path {}", crate::spec::ns_name(t), path.display()))?;
    // SAFETY: plain syscall on a namespace fd.
    if unsafe { libc::setns(fd.as_raw_fd(), ns_flag(t)) } != 0 {
        return Err(Error::os(
            format!("linux.namespaces: join {} namespace {}", crate::spec::ns_name(t), path.display()),
            nix::errno::Errno::last_raw(),
        ));
    }
    Ok(())
}

/// Compile a seccomp profile through the cache in the state root
/// (`<root>/.seccomp`).
fn compile_seccomp(p: &oci_spec::runtime::LinuxSeccomp, root: &Path) -> Result<crate::seccomp::Program> {
    crate::seccomp::cache::compile_cached(p, &root.join(".seccomp"))
}

/// In a new process right after clone3: move into the v1 cgroups (the
/// cgroup2 one was entered by clone3 itself); on failure report and leave.
fn enter_cgroups_or_exit(join: Option<crate::cgroups::JoinHandles>, sock: RawFd) {
    if let Some(j) = join {
        if let Err(e) = crate::cgroups::join_self(&j.tasks) {
            let _ = send(sock, MSG_ERROR, e.to_string().as_bytes());
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(1) }
        }
    }
}

/// Clone the init and drive it until it is ready and blocked before exec.
/// On any error the init is killed and reaped before returning.
pub fn spawn(mut o: SpawnOpts) -> Result<Spawned> {
    let spec = &o.bundle.spec;
    let (psock, csock) = socketpair()?;

    // Everything the init needs that can fail is computed here, in the parent.
    let caps = CapSets::from_spec(spec.process().as_ref().and_then(|p| p.capabilities().as_ref()))?;
    caps.check_available()?;
    let seccomp_profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let seccomp = seccomp_profile.map(|p| compile_seccomp(p, o.state_root)).transpose()?;
    let listener = match (seccomp_profile, &seccomp) {
        (Some(p), Some(prog)) if prog.needs_listener() => {
            let path = p.listener_path().as_ref().ok_or_else(|| Error::msg("linux.seccomp.listenerPath: required by SCMP_ACT_NOTIFY"))?;
            let s = std::os::unix::net::UnixStream::connect(path)
                .with_ctx(|| format!("linux.seccomp.listenerPath: connect {}", path.display()))?;
            Some((OwnedFd::from(s), p.listener_metadata().clone().unwrap_or_default()))
        }
        _ => None,
    };
    let fifo = match o.start_via {
        // An O_PATH fd the init reopens through /proc/self/fd: only the
        // fifo's own mode counts, not the (0700) state root's, once the init
        // runs as the container's user.
        StartVia::Fifo => Some(sys::open_path(o.fifo, libc::O_PATH)?),
        StartVia::Socket => None,
    };
    let cgroup_sources = o.cgroup.map(|c| c.mount_sources()).unwrap_or_default();
    let join = o.cgroup.map(|c| c.join_handles()).transpose()?;
    let cgroup_fd = join.as_ref().and_then(|j| j.v2.as_ref()).map(|f| f.as_raw_fd());

    // Joining a pid namespace only affects children: do it before clone
    // (the intermediate does, with a joined user namespace: then the pid
    // clone3 returns to it is still ours).
    let joined_user = crate::spec::namespaces(spec).iter().find(|n| n.typ() == LinuxNamespaceType::User).and_then(|n| n.path().as_deref());
    let join_pid = || {
        crate::spec::namespaces(spec).iter().try_for_each(|ns| match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::Pid, Some(p)) => setns_path(p, LinuxNamespaceType::Pid),
            _ => Ok(()),
        })
    };
    if joined_user.is_none() {
        join_pid()?;
    }

    // The child is visible in a joined pid namespace (and is the runtime
    // binary) from the moment clone3 returns, before it could make itself
    // non-dumpable: make the runtime non-dumpable first, so the child
    // inherits it (CVE-2019-5736). The container process becomes dumpable
    // again at execve.
    security::set_dumpable(false);
    let mut flags = clone_flags(spec);
    // A new network namespace is the costliest to make (~0.4 ms): the
    // runtime makes it after the clone, while the init mounts, and sends it
    // (the init joins it before it mounts sysfs or anything can see it).
    // With a user namespace it must be made inside it: by clone3 then.
    let net_later = flags & libc::CLONE_NEWNET as u64 != 0 && flags & libc::CLONE_NEWUSER as u64 == 0 && joined_user.is_none();
    if net_later {
        flags &= !(libc::CLONE_NEWNET as u64);
    }
    crate::log::phase("clone");
    // A joined user namespace must own the namespaces made for the
    // container: an intermediate process enters it and clones the init
    // (as the runtime's child, CLONE_PARENT), then reports its pid and exits.
    let cloned = match joined_user {
        None => sys::clone3(flags, cgroup_fd)?,
        Some(userns) => clone_in_userns(userns, &join_pid, flags, cgroup_fd, (psock.as_raw_fd(), csock.as_raw_fd()))?,
    };
    match cloned {
        None => {
            // The init. It never returns. First into the v1 cgroups (the
            // cgroup2 one was entered by clone3 itself).
            enter_cgroups_or_exit(join, csock.as_raw_fd());
            drop(psock);
            for fd in o.close_in_child {
                // SAFETY: closing an fd the parent owns in our copy of its table.
                unsafe { libc::close(*fd) };
            }
            let ctx = InitCtx {
                spec,
                id: o.id,
                bundle: &o.bundle.dir,
                rootfs: &o.bundle.rootfs,
                sock: csock.as_raw_fd(),
                caps: &caps,
                seccomp: seccomp.as_ref(),
                listener: listener.as_ref().map(|(fd, m)| (fd.as_raw_fd(), m.as_str())),
                fifo: fifo.as_ref().map(|f| f.as_raw_fd()),
                console: o.console_socket.as_ref().map(|f| f.as_raw_fd()),
                preserve_fds: o.preserve_fds,
                no_pivot: o.no_pivot,
                root_mount: o.root_mount.take(),
                cgroup_sources,
                die_with_parent: o.die_with_parent,
                create_mountpoints: o.create_mountpoints,
                go_before_devices: o.cgroup.is_some_and(|c| c.devices_written_in_steps()),
                net_later,
            };
            let err = match init(ctx) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            if send(csock.as_raw_fd(), MSG_ERROR, err.to_string().as_bytes()).is_err() {
                // After Ready nobody listens on the socket: say it on the
                // container's stderr, which its engine logs.
                eprintln!("stele: container init: {err}");
            }
            // SAFETY: leave without running the parent's destructors or atexit handlers.
            unsafe { libc::_exit(1) }
        }
        Some((pid, pidfd)) => {
            drop(csock);
            drop(join);
            drop(o.console_socket.take());
            let sp = Spawned { pid, pidfd, sock: psock, start_sent: o.start_early && o.start_via == StartVia::Socket };
            match drive(&sp, &mut o, net_later) {
                Ok(()) => Ok(sp),
                Err(e) => {
                    sp.kill_and_reap();
                    Err(e)
                }
            }
        }
    }
}

/// [`sys::clone3`] from inside the user namespace at `userns`, through an
/// intermediate process: it joins the pid namespace given by path (so the
/// pid it gets back is still ours), enters `userns`, clones the init as our
/// child (CLONE_PARENT), sends its pid on the socket and exits. Returns
/// like clone3: None in the init, its pid and a pidfd (no pid reuse before
/// we reap it) here.
fn clone_in_userns(
    userns: &Path,
    join_pid: &dyn Fn() -> Result<()>,
    flags: u64,
    cgroup_fd: Option<RawFd>,
    (psock, csock): (RawFd, RawFd),
) -> Result<Option<(i32, OwnedFd)>> {
    let Some((mid, _)) = sys::clone3(0, None)? else {
        let r = join_pid()
            .and_then(|_| setns_path(userns, LinuxNamespaceType::User))
            .and_then(|_| sys::clone3(flags | libc::CLONE_PARENT as u64, cgroup_fd));
        let code = match r {
            Ok(None) => return Ok(None),
            Ok(Some((pid, _))) => send(csock, MSG_CLONED, pid.to_string().as_bytes()).is_err() as i32,
            Err(e) => {
                let _ = send(csock, MSG_ERROR, e.to_string().as_bytes());
                1
            }
        };
        // SAFETY: leave without running the parent's destructors.
        unsafe { libc::_exit(code) }
    };
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    unsafe { libc::waitpid(mid, &mut status, 0) };
    let pid = match recv(psock)? {
        Some((MSG_CLONED, p)) => String::from_utf8_lossy(&p).parse().unwrap_or(0),
        Some((MSG_ERROR, m)) => return Err(peer_error(&m)),
        _ => bail!("linux.namespaces: the process entering the user namespace exited ({status:#x})"),
    };
    Ok(Some((pid, sys::pidfd_open(pid).ctx("container init")?)))
}

fn drive(sp: &Spawned, o: &mut SpawnOpts, net_later: bool) -> Result<()> {
    let spec = &o.bundle.spec;
    if crate::userns::is_new(spec) {
        crate::userns::write_maps(spec, sp.pid)?;
        send(sp.sock.as_raw_fd(), MSG_MAPPED, &[])?;
    }
    // A send fails when the init has failed already: its message says why.
    let init_error = |e: Error| match recv(sp.sock.as_raw_fd()) {
        Ok(Some((MSG_ERROR, m))) => peer_error(&m),
        _ => e,
    };
    if net_later {
        let ns = sys::new_netns().ctx("linux.namespaces: network")?;
        send_fd(sp.sock.as_raw_fd(), &[MSG_NET], ns.as_raw_fd()).map_err(init_error)?;
    }
    // The init is in its cgroup already: limits and device rules go on now,
    // while it joins namespaces and mounts; it waits for Go before it creates
    // device nodes (a half-written v1 device list would refuse them), and
    // cannot exec before Start or the fifo.
    if let Some(cg) = o.cgroup {
        cg.apply_initial(o.resources)?;
    }
    send(sp.sock.as_raw_fd(), MSG_GO, sp.pid.to_string().as_bytes())
        .and_then(|_| if sp.start_sent { send(sp.sock.as_raw_fd(), MSG_START, &[]) } else { Ok(()) })
        .map_err(init_error)?;
    // The record, written while the init mounts.
    (o.on_cloned)(sp.pid)?;
    loop {
        match recv(sp.sock.as_raw_fd())? {
            Some((MSG_MOUNTED, _)) => {
                let st = (o.state_json)(sp.pid);
                hooks::run(spec, Kind::Prestart, &st)?;
                hooks::run(spec, Kind::CreateRuntime, &st)?;
                send(sp.sock.as_raw_fd(), MSG_HOOKS_DONE, &[])?;
            }
            Some((MSG_READY, _)) => return Ok(()),
            Some((MSG_ERROR, m)) => return Err(peer_error(&m)),
            Some((t, _)) => bail!("sync socket: unexpected message {t}"),
            None => bail!("container init exited before it was ready"),
        }
    }
}

impl Spawned {
    /// `run`: let the init exec now. Returns once the exec happened (the
    /// socket closed on exec) or with the init's error.
    pub fn start(&self) -> Result<()> {
        self.send_start()?;
        self.wait_exec()
    }

    /// `create`: the state is on disk; the init may block on the fifo.
    pub fn confirm_saved(&self) -> Result<()> {
        send(self.sock.as_raw_fd(), MSG_SAVED, &[])
    }

    /// Let the init go on to exec (see [`Spawned::wait_exec`]).
    pub fn send_start(&self) -> Result<()> {
        if self.start_sent {
            return Ok(());
        }
        send(self.sock.as_raw_fd(), MSG_START, &[])
    }

    /// Wait until the process has exec'd (the socket closes on exec) or
    /// failed to (its error).
    pub fn wait_exec(&self) -> Result<()> {
        match recv(self.sock.as_raw_fd())? {
            None => Ok(()),
            Some((MSG_ERROR, m)) => Err(peer_error(&m)),
            Some((t, _)) => bail!("sync socket: unexpected message {t}"),
        }
    }

    pub fn kill_and_reap(&self) {
        let _ = sys::pidfd_send_signal(self.pidfd.as_raw_fd(), libc::SIGKILL);
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
    }
}

// ------------------------------------------------------------------ the init

struct InitCtx<'a> {
    spec: &'a Spec,
    id: &'a str,
    bundle: &'a Path,
    rootfs: &'a Path,
    sock: RawFd,
    caps: &'a CapSets,
    seccomp: Option<&'a crate::seccomp::Program>,
    listener: Option<(RawFd, &'a str)>,
    /// `create`: an O_PATH fd of the fifo to wait on.
    fifo: Option<RawFd>,
    console: Option<RawFd>,
    preserve_fds: u32,
    no_pivot: bool,
    root_mount: Option<OwnedFd>,
    cgroup_sources: Vec<(String, PathBuf)>,
    die_with_parent: bool,
    create_mountpoints: bool,
    /// Wait for Go before creating device nodes (v1 device rules are being
    /// written meanwhile); else wait for it once the mounts are done.
    go_before_devices: bool,
    /// The new network namespace comes on the socket ([`MSG_NET`]).
    net_later: bool,
}

enum Never {}

/// The init's wait for the runtime's Go (cgroup limits and device rules are
/// in place); Go carries the init's host pid.
fn wait_go(sock: RawFd) -> Result<i32> {
    match recv(sock)? {
        Some((MSG_GO, p)) => Ok(String::from_utf8_lossy(&p).parse().unwrap_or(0)),
        Some((MSG_ERROR, m)) => Err(peer_error(&m)),
        _ => bail!("runtime went away"),
    }
}

/// The init's join of the network namespace the runtime made for it.
fn join_sent_netns(sock: RawFd) -> Result<()> {
    let mut tag = [0u8; 1];
    match sys::recv_fd(sock, &mut tag) {
        Some((1, ns)) if tag[0] == MSG_NET => {
            // SAFETY: plain syscall on an nsfs fd.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(Error::os("join the new network namespace", nix::errno::Errno::last_raw()));
            }
            Ok(())
        }
        _ => bail!("runtime went away before sending the network namespace"),
    }
}

fn init(mut c: InitCtx) -> Result<Never> {
    // Nothing in the container may ptrace us or open /proc/<pid>/exe (the
    // host binary) while we are still stele.
    security::set_dumpable(false);
    let spec = c.spec;
    let process = spec.process().as_ref().ok_or_else(|| Error::msg("config.json: process: missing"))?;
    if crate::userns::is_new(spec) {
        match recv(c.sock)? {
            Some((MSG_MAPPED, _)) => crate::userns::become_root()?,
            Some((MSG_ERROR, m)) => return Err(peer_error(&m)),
            _ => bail!("runtime went away"),
        }
    } else if crate::spec::has_ns(spec, LinuxNamespaceType::User) {
        // joined by the intermediate
        crate::userns::become_root()?;
    }

    // Join namespaces given by path (pid was joined by the runtime, user by
    // the intermediate).
    for ns in crate::spec::namespaces(spec) {
        if let Some(p) = ns.path() {
            if !matches!(ns.typ(), LinuxNamespaceType::Pid | LinuxNamespaceType::User) {
                setns_path(p, ns.typ())?;
            }
        }
    }
    if crate::spec::has_new_ns(spec, LinuxNamespaceType::Cgroup) {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).ctx("unshare cgroup namespace")?;
    }
    // A new time namespace is for the init's children, and for the init
    // itself from its execve on: the container's process starts in it, with
    // the offsets written below (possible only while nobody is in it).
    if crate::spec::has_new_ns(spec, LinuxNamespaceType::Time) {
        // SAFETY: plain syscall.
        if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
            return Err(Error::os("unshare time namespace", nix::errno::Errno::last_raw()));
        }
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).with_ctx(|| format!("hostname: set {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: valid pointer and length.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(Error::os(format!("domainname: set {d:?}"), nix::errno::Errno::last_raw()));
        }
    }

    let terminal = process.terminal().unwrap_or(false);
    if terminal && c.console.is_none() {
        bail!("process.terminal is true but no --console-socket was given");
    }
    let mut plan = rootfs::Plan {
        spec,
        bundle: c.bundle,
        rootfs: c.rootfs,
        root_mount: c.root_mount.take(),
        cgroup_sources: std::mem::take(&mut c.cgroup_sources),
        terminal,
        create_mountpoints: c.create_mountpoints,
        userns: crate::spec::has_ns(spec, LinuxNamespaceType::User),
    };
    crate::log::phase("init: namespaces");
    let sock = c.sock;
    let mut host_pid = 0;
    let mut net_later = c.net_later;
    // The runtime applies the cgroup's limits and device rules meanwhile
    // (and makes the network namespace, which comes first on the socket).
    let mut step = |s: rootfs::Step| -> Result<()> {
        if std::mem::take(&mut net_later) {
            join_sent_netns(sock)?;
        }
        if s == rootfs::Step::Devices && c.go_before_devices {
            host_pid = wait_go(sock)?;
        }
        Ok(())
    };
    let mut prep = rootfs::prepare(&mut plan, &mut step)?;
    if !c.go_before_devices {
        host_pid = wait_go(sock)?;
    }
    crate::log::phase("init: mounts");

    // In every namespace now, before anyone is told so: sysctls (as runc,
    // after the mounts), the time offsets (nobody has entered the time
    // namespace yet), oom_score_adj, loopback.
    let time_offsets = crate::spec::time_offsets(spec);
    if spec.annotations().as_ref().and_then(|a| a.get(LOOPBACK_ANNOTATION)).map(String::as_str) == Some("true")
        && crate::spec::has_new_ns(spec, LinuxNamespaceType::Network)
    {
        sys::loopback_up()?;
    }
    // The runtime's own /proc writes go through a private procfs.
    let has_sysctl = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()).is_some_and(|m| !m.is_empty());
    let private_proc = if has_sysctl || process.oom_score_adj().is_some() || time_offsets.is_some() {
        Some(sys::PrivateProc::new()?)
    } else {
        None
    };
    if let Some(proc) = &private_proc {
        rootfs::apply_sysctl(spec, proc)?;
        if let Some(text) = &time_offsets {
            // Our pid as that procfs (of our pid namespace) numbers it.
            proc.write(&format!("{}/timens_offsets", std::process::id()), text).ctx("linux.timeOffsets")?;
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        if let Some(proc) = &private_proc {
            security::set_oom_score_adj(adj, proc)?;
        }
    }

    if hooks::has(spec, Kind::Prestart) || hooks::has(spec, Kind::CreateRuntime) {
        send(c.sock, MSG_MOUNTED, &[])?;
        match recv(c.sock)? {
            Some((MSG_HOOKS_DONE, _)) => {}
            _ => bail!("runtime went away"),
        }
    }
    if hooks::has(spec, Kind::CreateContainer) {
        hooks::run(spec, Kind::CreateContainer, &hook_state(spec, c.id, host_pid, "creating", c.bundle))?;
    }

    rootfs::enter(&prep, c.no_pivot)?;
    rootfs::finish(spec, &prep)?;
    crate::log::phase("init: pivot, masks, ro");

    if let (Some(master), Some(console)) = (prep.pty_master.take(), c.console) {
        send_fd(console, b"/dev/console", master.as_raw_fd())?;
    }

    let start_hooks = hook_state(spec, c.id, host_pid, "created", c.bundle);
    let tail = Tail {
        process,
        caps: c.caps,
        seccomp: c.seccomp,
        listener: c.listener,
        state: hook_state(spec, c.id, host_pid, "creating", c.bundle),
        pty_peer: prep.pty_peer.take(),
        die_with_parent: c.die_with_parent,
        preserve_fds: c.preserve_fds,
        sock: c.sock,
        fifo: c.fifo,
        start_hooks: hooks::has(spec, Kind::StartContainer).then_some((spec, start_hooks)),
        linux: spec.linux().as_ref(),
    };
    drop(prep);
    finish_and_exec(tail)
}

/// What the last steps of an init or an exec'd process need.
struct Tail<'a> {
    process: &'a oci_spec::runtime::Process,
    caps: &'a CapSets,
    seccomp: Option<&'a crate::seccomp::Program>,
    listener: Option<(RawFd, &'a str)>,
    state: serde_json::Value,
    pty_peer: Option<OwnedFd>,
    die_with_parent: bool,
    preserve_fds: u32,
    sock: RawFd,
    /// `create`: an O_PATH fd of the fifo to wait on.
    fifo: Option<RawFd>,
    start_hooks: Option<(&'a Spec, serde_json::Value)>,
    /// The container's `linux` (memory policy, personality).
    linux: Option<&'a oci_spec::runtime::Linux>,
}

/// Shared by the init and `exec`: rlimits, cwd, args[0], terminal,
/// credentials and seccomp in runc's order, Ready, wait for Start, exec.
fn finish_and_exec(t: Tail) -> Result<Never> {
    let process = t.process;
    security::apply_rlimits(process)?;
    let cwd = process.cwd();
    nix::unistd::chdir(cwd.as_path()).with_ctx(|| format!("process.cwd: chdir to {:?}", cwd))?;
    check_cwd_inside()?;
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        // as runc: HOME from the container's /etc/passwd, else "/"
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    let args = process.args().clone().unwrap_or_default();
    let exe = find_executable(&args[0], &env)?;

    // Terminal: the pty peer becomes stdio and the controlling terminal.
    if let Some(peer) = &t.pty_peer {
        nix::unistd::setsid().ctx("setsid")?;
        // SAFETY: ioctl on a valid tty fd.
        if unsafe { libc::ioctl(peer.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
            return Err(Error::os("set controlling terminal", nix::errno::Errno::last_raw()));
        }
        for fd in 0..3 {
            // SAFETY: dup2 onto stdio.
            unsafe { libc::dup2(peer.as_raw_fd(), fd) };
        }
    }
    drop(t.pty_peer);

    crate::procattr::apply(process.scheduler().as_ref(), process.io_priority().as_ref(), t.linux)?;

    // runc's order: no_new_privs; without it, seccomp now (installing needs
    // CAP_SYS_ADMIN, which we still have); then the bounding set, the user,
    // the capability sets; with no_new_privs, seccomp last, after start.
    let nnp = process.no_new_privileges().unwrap_or(false);
    if nnp {
        security::set_no_new_privs()?;
    } else if let Some(p) = t.seccomp {
        install_seccomp(p, t.listener, &t.state)?;
    }
    t.caps.apply_bounding()?;
    security::apply_user(process)?;
    t.caps.apply_sets()?;
    if t.die_with_parent {
        // SAFETY: prctl with integer arguments (after setuid, which clears it).
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    }

    crate::log::phase("init: credentials");
    send(t.sock, MSG_READY, &[])?;

    // Wait for `start` (or `run`'s / `exec`'s Start).
    let _fifo_until_exec = match t.fifo {
        Some(fifo) => {
            // Only once the runtime has recorded us: if it died before, no
            // state names this process and nothing could ever start or
            // delete it, so leave.
            match recv(t.sock)? {
                Some((MSG_SAVED, _)) => {}
                _ => bail!("runtime went away before recording the container"),
            }
            // `create` returns now and reads nothing more: shut our side, so
            // that an error from here on fails to send and goes to the
            // container's stderr instead of a socket nobody reads.
            // SAFETY: shutdown of our own socket.
            unsafe { libc::shutdown(t.sock, libc::SHUT_WR) };
            Some(wait_fifo(fifo)?)
        }
        None => match recv(t.sock)? {
            Some((MSG_START, _)) => None,
            _ => bail!("runtime went away"),
        },
    };

    if let Some((spec, st)) = &t.start_hooks {
        hooks::run(spec, Kind::StartContainer, st)?;
    }
    if nnp {
        if let Some(p) = t.seccomp {
            install_seccomp(p, t.listener, &t.state)?;
        }
    }
    exec(&exe, &args, &env, 3 + t.preserve_fds, t.sock)
}

/// Install the filter; hand a notify listener to the agent at listenerPath.
/// Between here and exec the runtime only makes a few syscalls (the profile
/// may not notify write/sendmsg, which this needs).
fn install_seccomp(p: &crate::seccomp::Program, listener: Option<(RawFd, &str)>, state: &serde_json::Value) -> Result<()> {
    let fd = p.install()?;
    if let (Some(fd), Some((sock, meta))) = (fd, listener) {
        crate::seccomp::send_listener(sock, meta, state, fd.as_raw_fd())?;
    }
    Ok(())
}

fn hook_state(spec: &Spec, id: &str, pid: i32, status: &str, bundle: &Path) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": spec.version(),
        "id": id,
        "pid": pid,
        "status": status,
        "bundle": bundle,
        "annotations": spec.annotations().clone().unwrap_or_default(),
    })
}

/// The home directory of `uid` in the container's /etc/passwd (we are
/// already inside its root), or "/".
fn home_of(uid: u32) -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // The image controls this file: never block on a fifo, read at most 1 MiB.
    let text = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/etc/passwd")
        .ok()
        .filter(|f| f.metadata().map(|m| m.is_file()).unwrap_or(false))
        .and_then(|f| {
            let mut s = String::new();
            f.take(1 << 20).read_to_string(&mut s).ok().map(|_| s)
        });
    let Some(text) = text else { return "/".into() };
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid) && !f[5].is_empty() {
            return f[5].to_string();
        }
    }
    "/".into()
}

/// After chdir, the cwd must be inside the container's root: a leaked fd
/// (`cwd=/proc/self/fd/N`) would leave it outside (CVE-2024-21626).
fn check_cwd_inside() -> Result<()> {
    // glibc's getcwd fails with ENOENT for a cwd outside the root (the
    // kernel's "(unreachable)" prefix): say what it means, not "no such file".
    let cwd = nix::unistd::getcwd()
        .map_err(|_| Error::msg("process.cwd: the working directory is outside the container"))?;
    if !cwd.is_absolute() || cwd.to_string_lossy().starts_with("(unreachable)") {
        bail!("process.cwd: the working directory is outside the container");
    }
    Ok(())
}

/// Block until `start` opens the fifo, then tell it we are going. The
/// returned write end is close-on-exec: `start` reads EOF once we exec'd
/// (or died), and runs poststart hooks only then.
fn wait_fifo(fifo: RawFd) -> Result<OwnedFd> {
    let path = CString::new(format!("/proc/self/fd/{fifo}")).map_err(|_| Error::msg("fifo path"))?;
    // SAFETY: a valid C string; blocks until a reader opens.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::os("open the create fifo through the container's /proc (create needs /proc mounted)", nix::errno::Errno::last_raw()));
    }
    // SAFETY: fd is ours.
    let f = unsafe { OwnedFd::from_raw_fd(fd) };
    // The container's /proc is whatever the config mounted there: make sure
    // it led to our fifo and not to a file the image planted.
    let (a, b) = (sys::fstat(fifo)?, sys::fstat(f.as_raw_fd())?);
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
        bail!("the container's /proc/self/fd/{fifo} is not the create fifo (is /proc a procfs?)");
    }
    // SAFETY: one byte from a valid buffer.
    unsafe { libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) };
    Ok(f)
}

/// Resolve args[0] in the container the way runc (Go's LookPath) does, and
/// word errors the same way, since engines match on them.
fn find_executable(arg0: &str, env: &[String]) -> Result<CString> {
    let is_exec = |p: &str| -> std::result::Result<(), i32> {
        let c = CString::new(p).map_err(|_| libc::EINVAL)?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid C string and stat buffer.
        if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
            return Err(nix::errno::Errno::last_raw());
        }
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(libc::EISDIR);
        }
        if st.st_mode & 0o111 == 0 {
            return Err(libc::EACCES);
        }
        Ok(())
    };
    if arg0.contains('/') {
        return match is_exec(arg0) {
            Ok(()) => CString::new(arg0).map_err(|_| Error::msg("process.args[0]: NUL byte")),
            Err(e) => Err(Error::msg(format!(
                "exec: {arg0:?}: stat {arg0}: {}",
                crate::error::errno_text(&e)
            ))),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = format!("{dir}/{arg0}");
        if is_exec(&cand).is_ok() {
            return CString::new(cand).map_err(|_| Error::msg("process.args[0]: NUL byte"));
        }
    }
    bail!("exec: {arg0:?}: executable file not found in $PATH")
}

/// Send `fd` over a unix socket with SCM_RIGHTS.
pub fn send_fd(sock: RawFd, payload: &[u8], fd: RawFd) -> Result<()> {
    sys::send_fd(sock, payload, fd).map_err(|e| Error::os("send fd over socket", e))
}

/// The last steps: clean signal state, close every fd above the preserved
/// ones, execve. Returns only on failure.
fn exec(exe: &CString, args: &[String], env: &[String], keep_below: u32, sock: RawFd) -> Result<Never> {
    let argv: Vec<CString> = args.iter().map(|a| CString::new(a.as_str()).unwrap_or_default()).collect();
    let envp: Vec<CString> = env.iter().map(|a| CString::new(a.as_str()).unwrap_or_default()).collect();
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());

    crate::log::phase("init: exec");
    reset_signals();
    // Keep the sync socket until exec (it is CLOEXEC): move it above the
    // range we close if it sits there.
    let _ = sock;
    sys::cloexec_from(keep_below)?;
    // SAFETY: argv/envp are NULL-terminated arrays of valid C strings that
    // outlive the call.
    unsafe { libc::execve(exe.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    let e = nix::errno::Errno::last_raw();
    Err(Error::os(format!("exec {:?}", args[0]), e))
}

/// Default dispositions and an empty mask: execve keeps ignored signals
/// ignored (Rust ignores SIGPIPE) and keeps the mask.
pub fn reset_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting SIG_DFL is always valid.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: empty set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

// ------------------------------------------------------------------ exec

pub struct ExecOpts<'a> {
    pub id: &'a str,
    /// The state root (`--root`), for the seccomp cache.
    pub state_root: &'a Path,
    pub bundle: &'a Path,
    /// The container's config (namespaces, seccomp).
    pub spec: &'a Spec,
    /// The process to run (already merged with the container's defaults).
    pub process: &'a oci_spec::runtime::Process,
    pub init_pid: i32,
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
}

fn ns_flags_to_join(spec: &Spec) -> libc::c_int {
    let mut f = 0;
    for ns in crate::spec::namespaces(spec) {
        match ns.typ() {
            // pid: joined by the runtime, for its child
            LinuxNamespaceType::Pid => {}
            t => f |= ns_flag(t),
        }
    }
    f
}

/// Start a process inside a running container: join its namespaces (by
/// pidfd, so a recycled pid cannot be joined), its cgroup and its root;
/// apply the process's credentials and the container's seccomp profile.
/// Returns once it is ready; `Spawned::start` lets it exec.
pub fn spawn_exec(mut o: ExecOpts) -> Result<Spawned> {
    let process = o.process;
    let caps = CapSets::from_spec(process.capabilities().as_ref())?;
    caps.check_available()?;
    let seccomp = o.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()).map(|p| compile_seccomp(p, o.state_root)).transpose()?;
    let init = sys::pidfd_open(o.init_pid).ctx("container init")?;
    let root = sys::open_path(Path::new(&format!("/proc/{}/root", o.init_pid)), libc::O_PATH | libc::O_DIRECTORY)
        .ctx("container root")?;
    let (psock, csock) = socketpair()?;
    if crate::spec::has_ns(o.spec, LinuxNamespaceType::Pid) {
        // SAFETY: setns with a pidfd: only our future children enter its pid namespace.
        if unsafe { libc::setns(init.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
            return Err(Error::os("join the container's pid namespace", nix::errno::Errno::last_raw()));
        }
    }
    let terminal = process.terminal().unwrap_or(false);
    if terminal && o.console_socket.is_none() {
        bail!("--tty (process.terminal) needs --console-socket");
    }
    let join = o.cgroup.map(|c| c.join_handles()).transpose()?;
    let cgroup_fd = join.as_ref().and_then(|j| j.v2.as_ref()).map(|f| f.as_raw_fd());
    crate::procattr::exec_affinity(true, process.exec_cpu_affinity().as_ref())?;
    security::set_dumpable(false);
    match sys::clone3(0, cgroup_fd)? {
        None => {
            drop(psock);
            enter_cgroups_or_exit(join, csock.as_raw_fd());
            let err = match exec_child(&o, &caps, seccomp.as_ref(), init.as_raw_fd(), root.as_raw_fd(), csock.as_raw_fd()) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = send(csock.as_raw_fd(), MSG_ERROR, err.to_string().as_bytes());
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(1) }
        }
        Some((pid, pidfd)) => {
            drop(csock);
            drop(o.console_socket.take());
            drop(join);
            let sp = Spawned { pid, pidfd, sock: psock, start_sent: false };
            let driven = (|| {
                send(sp.sock.as_raw_fd(), MSG_GO, sp.pid.to_string().as_bytes())?;
                match recv(sp.sock.as_raw_fd())? {
                    Some((MSG_READY, _)) => Ok(()),
                    Some((MSG_ERROR, m)) => Err(peer_error(&m)),
                    Some((t, _)) => Err(Error::msg(format!("sync socket: unexpected message {t}"))),
                    None => Err(Error::msg("exec process exited before it was ready")),
                }
            })();
            match driven {
                Ok(()) => Ok(sp),
                Err(e) => {
                    sp.kill_and_reap();
                    Err(e)
                }
            }
        }
    }
}

fn exec_child(
    o: &ExecOpts,
    caps: &CapSets,
    seccomp: Option<&crate::seccomp::Program>,
    init: RawFd,
    root: RawFd,
    sock: RawFd,
) -> Result<Never> {
    let host_pid = wait_go(sock)?;
    // In the container's cgroup now (clone3 and the v1 joins).
    crate::procattr::exec_affinity(false, o.process.exec_cpu_affinity().as_ref())?;
    let flags = ns_flags_to_join(o.spec);
    if flags != 0 {
        // SAFETY: setns with a pidfd and namespace flags.
        if unsafe { libc::setns(init, flags) } != 0 {
            return Err(Error::os("join the container's namespaces", nix::errno::Errno::last_raw()));
        }
    }
    if crate::spec::has_ns(o.spec, LinuxNamespaceType::User) {
        crate::userns::become_root()?;
    }
    // The container's root (also right after --no-pivot, where the mount
    // namespace's root is not the container's).
    sys::fchdir(root)?;
    nix::unistd::chroot(".").ctx("chroot into the container")?;
    nix::unistd::chdir("/").ctx("chdir /")?;

    let mut pty_peer = None;
    if o.process.terminal().unwrap_or(false) {
        let slash = sys::open_path(Path::new("/"), libc::O_PATH | libc::O_DIRECTORY)?;
        let (master, peer) = rootfs::new_pty(slash.as_raw_fd())?;
        if let Some(c) = &o.console_socket {
            send_fd(c.as_raw_fd(), b"/dev/pts", master.as_raw_fd())?;
        }
        pty_peer = Some(peer);
    }
    let state = serde_json::json!({
        "ociVersion": o.spec.version(), "id": o.id, "pid": host_pid, "status": "running", "bundle": o.bundle,
    });
    finish_and_exec(Tail {
        process: o.process,
        caps,
        seccomp,
        listener: None,
        state,
        pty_peer,
        die_with_parent: false,
        preserve_fds: o.preserve_fds,
        sock,
        fifo: None,
        start_hooks: None,
        linux: o.spec.linux().as_ref(),
    })
}
