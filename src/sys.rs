//! Thin, safe wrappers over the raw syscalls stele needs that nix does not
//! have: clone3, openat2, the new mount API, close_range, pidfds.
//! Every `unsafe` block in stele outside the fork/exec boundary lives here.

use crate::error::{Error, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::msg(format!("path contains a NUL byte: {s:?}")))
}

fn check(ret: libc::c_long, what: impl FnOnce() -> String) -> Result<libc::c_long> {
    if ret < 0 {
        Err(Error::os(what(), nix::errno::Errno::last_raw()))
    } else {
        Ok(ret)
    }
}

fn owned(ret: libc::c_long) -> OwnedFd {
    // SAFETY: the caller checked that `ret` is a new file descriptor the kernel just gave us.
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

// ---------------------------------------------------------------- clone3

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork-like clone3: returns 0 in the child, (pid, pidfd) in the parent.
/// `flags` may hold namespace flags; `cgroup_fd` places the child in a cgroup2
/// directory atomically.
///
/// The caller must be single-threaded (stele is): the child is a copy of the
/// whole process and continues on a copy of the same stack, as after fork().
pub fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> Result<Option<(i32, OwnedFd)>> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut RawFd as u64,
        // With CLONE_PARENT the kernel takes our own (and wants 0 here).
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 { 0 } else { libc::SIGCHLD as u64 },
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: args is a valid clone_args of the size we pass; with no stack the
    // child resumes here on a copy of our stack, exactly like fork().
    let ret = unsafe {
        libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>())
    };
    let ret = check(ret, || "clone3".into())?;
    if ret == 0 {
        Ok(None)
    } else {
        Ok(Some((ret as i32, owned(pidfd as libc::c_long))))
    }
}

// ---------------------------------------------------------------- openat2

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2). Always adds O_CLOEXEC.
pub fn openat2(dirfd: RawFd, path: &str, flags: i32, mode: u32, resolve: u64) -> Result<OwnedFd> {
    let p = cstr(path)?;
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u64, mode: mode as u64, resolve };
    // SAFETY: valid C string and open_how struct, sizes match.
    let ret = unsafe {
        libc::syscall(libc::SYS_openat2, dirfd, p.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>())
    };
    check(ret, || format!("open {path}")).map(owned)
}

/// Open `path` inside the directory tree `root`, with every symlink resolved
/// as if `root` were "/" (no escape by `..` or absolute links) and no magic links.
pub fn open_in_root(root: RawFd, path: &str, flags: i32) -> Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    openat2(root, rel, flags, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
}

pub fn open_path(path: &Path, flags: i32) -> Result<OwnedFd> {
    let p = cstr(&path.to_string_lossy())?;
    // SAFETY: valid C string.
    let fd = unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC) };
    check(fd as libc::c_long, || format!("open {}", path.display())).map(owned)
}

// ---------------------------------------------------------------- new mount API

pub const FSCONFIG_SET_FLAG: u32 = 0;
pub const FSCONFIG_SET_STRING: u32 = 1;
pub const FSCONFIG_SET_FD: u32 = 5;
pub const FSCONFIG_CMD_CREATE: u32 = 6;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;

const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
pub const OPEN_TREE_CLONE: u32 = 1;
const AT_EMPTY_PATH: u32 = 0x1000;
pub const AT_RECURSIVE: u32 = 0x8000;

/// A filesystem context being configured (fsopen).
pub struct FsContext {
    fd: OwnedFd,
    fstype: String,
}

impl FsContext {
    pub fn new(fstype: &str) -> Result<FsContext> {
        let t = cstr(fstype)?;
        // SAFETY: valid C string; FSOPEN_CLOEXEC = 1.
        let ret = unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), 1u32) };
        let fd = check(ret, || format!("fsopen {fstype}")).map(owned)?;
        Ok(FsContext { fd, fstype: fstype.to_string() })
    }

    fn config(&self, cmd: u32, key: Option<&str>, value: Option<&str>, aux: i32) -> Result<()> {
        let k = key.map(cstr).transpose()?;
        let v = value.map(cstr).transpose()?;
        // SAFETY: pointers are valid C strings or NULL, as fsconfig expects for each cmd.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                cmd,
                k.as_ref().map_or(std::ptr::null(), |k| k.as_ptr()),
                v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
                aux,
            )
        };
        check(ret, || match (key, value) {
            (Some(k), Some(v)) => format!("mount {}: option {k}={v}", self.fstype),
            (Some(k), None) => format!("mount {}: option {k}", self.fstype),
            _ => format!("mount {}", self.fstype),
        })
        .map(|_| ())
    }

    pub fn set_flag(&self, key: &str) -> Result<()> {
        self.config(FSCONFIG_SET_FLAG, Some(key), None, 0)
    }
    pub fn set_string(&self, key: &str, value: &str) -> Result<()> {
        self.config(FSCONFIG_SET_STRING, Some(key), Some(value), 0)
    }
    pub fn set_fd(&self, key: &str, fd: RawFd) -> Result<()> {
        self.config(FSCONFIG_SET_FD, Some(key), None, fd)
    }
    /// Create the superblock and return a detached mount with `attrs`.
    pub fn mount(self, attrs: u64) -> Result<OwnedFd> {
        self.config(FSCONFIG_CMD_CREATE, None, None, 0)?;
        // SAFETY: fd is an fs context; FSMOUNT_CLOEXEC = 1.
        let ret = unsafe { libc::syscall(libc::SYS_fsmount, self.fd.as_raw_fd(), 1u32, attrs as u32) };
        check(ret, || format!("fsmount {}", self.fstype)).map(owned)
    }
}

/// open_tree(2) on an fd (AT_EMPTY_PATH): clone the mount (tree) at `fd`.
pub fn open_tree_fd(fd: RawFd, recursive: bool, what: &str) -> Result<OwnedFd> {
    let empty = c"";
    let mut flags = OPEN_TREE_CLONE | AT_EMPTY_PATH | libc::O_CLOEXEC as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: empty C string with AT_EMPTY_PATH refers to fd itself.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd, empty.as_ptr(), flags) };
    check(ret, || format!("bind {what}")).map(owned)
}

/// move_mount(2) from a detached/attached mount fd onto the directory fd `to`.
pub fn move_mount_fd(from: RawFd, to: RawFd, what: &str) -> Result<()> {
    let empty = c"";
    // SAFETY: both paths empty with *_EMPTY_PATH: the fds themselves are used.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            empty.as_ptr(),
            to,
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    check(ret, || format!("mount {what}")).map(|_| ())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount at `fd` (AT_EMPTY_PATH), optionally recursive.
pub fn mount_setattr(fd: RawFd, recursive: bool, set: u64, clr: u64, propagation: u64, what: &str) -> Result<()> {
    let attr = MountAttr { attr_set: set, attr_clr: clr, propagation, userns_fd: 0 };
    let empty = c"";
    let mut flags = AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: valid mount_attr of the size passed; fd refers to a mount.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            empty.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret, || format!("mount_setattr {what}")).map(|_| ())
}

// ---------------------------------------------------------------- fds and processes


/// Mark every fd >= `first` close-on-exec (CLOSE_RANGE_CLOEXEC).
///
/// When close_range is refused (EPERM from a seccomp profile that names a
/// newer syscall but not close_range, ENOSYS, EINVAL on old kernels), fall
/// back to /proc/self/fd with fcntl, as runc does: the container's filter is
/// already installed when the init calls this just before execve.
pub fn cloexec_from(first: u32) -> Result<()> {
    // SAFETY: plain syscall on integers; CLOSE_RANGE_CLOEXEC = 4.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 4u32) };
    if ret < 0 {
        let e = nix::errno::Errno::last_raw();
        if e == libc::EPERM || e == libc::ENOSYS || e == libc::EINVAL {
            return cloexec_from_procfs(first);
        }
        return Err(Error::os("close_range", e));
    }
    Ok(())
}

fn cloexec_from_procfs(first: u32) -> Result<()> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Error::os("close_range fallback: read /proc/self/fd", e.raw_os_error().unwrap_or(libc::EIO)))?
        .filter_map(|d| d.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|&fd| fd >= first as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on an integer fd; the directory's own fd is gone (EBADF, ignored).
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 {
            // SAFETY: as above.
            unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
        }
    }
    Ok(())
}

pub fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: plain syscall on integers.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    check(ret, || format!("pidfd_open {pid}")).map(owned)
}

pub fn pidfd_send_signal(pidfd: RawFd, sig: i32) -> Result<()> {
    // SAFETY: plain syscall; NULL siginfo means a normal kill()-like signal.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, sig, std::ptr::null::<u8>(), 0u32) };
    check(ret, || format!("signal {sig}")).map(|_| ())
}

/// Open the peer (slave) of a pty master without a path lookup (TIOCGPTPEER).
pub fn pty_peer(master: RawFd) -> Result<OwnedFd> {
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    // SAFETY: ioctl on a pty master returning a new fd.
    let ret = unsafe { libc::ioctl(master, TIOCGPTPEER as _, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    check(ret as libc::c_long, || "open pty peer".into()).map(owned)
}

/// Unlock a pty master (TIOCSPTLCK 0).
pub fn unlock_pty(master: RawFd) -> Result<()> {
    let zero: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to int.
    let ret = unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &zero) };
    check(ret as libc::c_long, || "unlock pty".into()).map(|_| ())
}

/// State (`R`, `S`, `Z`, ...) and start time (clock ticks since boot,
/// field 22) of a process from /proc/PID/stat; the start time tells a pid
/// from a reused one.
pub fn process_stat(pid: i32) -> Option<(char, u64)> {
    // One large read: procfs formats the whole line again for every read
    // call (read_to_string's small first reads cost four of them).
    let s = read_small_file(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    // the fields after the comm: state is field 3, starttime (22) is index 19
    let mut after = s[s.rfind(')')? + 2..].split(' ');
    let state = after.next()?.chars().next()?;
    Some((state, after.nth(18)?.parse().ok()?))
}

/// The start time of a process (see [`process_stat`]).
pub fn process_start_time(pid: i32) -> Option<u64> {
    process_stat(pid).map(|(_, start)| start)
}


/// fstat(2) on a raw fd.
pub fn fstat(fd: RawFd) -> Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid buffer.
    let r = unsafe { libc::fstat(fd, &mut st) };
    check(r as libc::c_long, || "fstat".into()).map(|_| st)
}

pub fn fchdir(fd: RawFd) -> Result<()> {
    // SAFETY: plain syscall.
    let r = unsafe { libc::fchdir(fd) };
    check(r as libc::c_long, || "fchdir".into()).map(|_| ())
}

/// A new network namespace, as an fd: made by this thread with
/// unshare(CLONE_NEWNET), which then returns to the namespace it was in.
/// (The runtime makes the container's while the init mounts: the largest
/// single step of a start, ~0.4 ms here, off the init's path.) The way back
/// is an fd of our own namespace, not a pidfd of a process in it: that
/// process may have exited by then (an init that failed at once).
pub fn new_netns() -> Result<OwnedFd> {
    let ns = Path::new("/proc/thread-self/ns/net");
    let here = open_path(ns, libc::O_RDONLY)?;
    // SAFETY: plain syscalls; only this thread's namespaces change.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(Error::os("unshare network namespace", nix::errno::Errno::last_raw()));
    }
    let new = open_path(ns, libc::O_RDONLY);
    // SAFETY: as above, with an nsfs fd we opened.
    if unsafe { libc::setns(here.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        // Nothing may go on in the wrong namespace: this process ends here.
        eprintln!("stele: cannot return to the runtime's network namespace: {}", std::io::Error::last_os_error());
        std::process::abort();
    }
    new
}

/// Send `bytes` with `fd` in SCM_RIGHTS: one sendmsg; a short write (stream
/// socket) is finished with plain sends. Errors are errno values.
pub fn send_fd(sock: RawFd, bytes: &[u8], fd: RawFd) -> std::result::Result<(), i32> {
    use nix::errno::Errno;
    use nix::sys::socket::{send, sendmsg, ControlMessage, MsgFlags, UnixAddr};
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(bytes)];
    let mut sent = loop {
        match sendmsg::<UnixAddr>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Err(Errno::EINTR) => continue,
            r => break r.map_err(|e| e as i32)?,
        }
    };
    while sent < bytes.len() {
        match send(sock, &bytes[sent..], MsgFlags::MSG_NOSIGNAL) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e as i32),
            Ok(0) => return Err(libc::EPIPE),
            Ok(n) => sent += n,
        }
    }
    Ok(())
}

/// Receive one message with one fd (SCM_RIGHTS) into `buf`, without
/// allocating: the payload's length and the fd; None at EOF, on an error
/// or when the message carries no fd.
pub fn recv_fd(sock: RawFd, buf: &mut [u8]) -> Option<(usize, OwnedFd)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    let n = loop {
        // SAFETY: msg points at live buffers.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n > 0 {
            break n as usize;
        }
        if n == 0 || nix::errno::Errno::last_raw() != libc::EINTR {
            return None;
        }
    };
    // SAFETY: the kernel filled msg; CMSG_* walk within msg_control.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS {
            return None;
        }
        Some((n, OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd))))
    }
}

/// Bring the loopback interface of the current network namespace up.
pub fn loopback_up() -> Result<()> {
    // SAFETY: plain socket creation.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let s = check(s as libc::c_long, || "socket for loopback".into()).map(owned)?;
    // SAFETY: zeroed ifreq is valid; the name fits.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo\0".iter().enumerate() {
        ifr.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS with a valid ifreq.
    unsafe {
        if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) != 0 {
            return Err(Error::os("loopback: get flags", nix::errno::Errno::last_raw()));
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr) != 0 {
            return Err(Error::os("loopback: set up", nix::errno::Errno::last_raw()));
        }
    }
    Ok(())
}

/// Read a procfs/sysfs file in few syscalls: procfs reports size 0, so
/// std's read_to_string probes with small reads; start with 64 KiB.
pub fn read_small_file(path: &Path) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    // Large reads (procfs regenerates its text on every read call), into
    // spare capacity: zero-filling 64 KiB first cost more than the read.
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        let spare = buf.spare_capacity_mut();
        // SAFETY: reads at most spare.len() bytes into memory we own.
        let n = unsafe { libc::read(f.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        // SAFETY: the kernel initialised n more bytes.
        unsafe { buf.set_len(buf.len() + n as usize) };
    }
    String::from_utf8(buf).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))
}

/// A private, detached procfs instance (of the caller's pid namespace),
/// for the runtime's own /proc writes: nothing in any mount namespace can
/// be mounted over it or swap a path under it (CVE-2025-52881 class).
pub struct PrivateProc {
    mnt: OwnedFd,
}

impl PrivateProc {
    pub fn new() -> Result<PrivateProc> {
        let ctx = FsContext::new("proc")?;
        let mnt = ctx.mount(MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)?;
        Ok(PrivateProc { mnt })
    }

    /// Write `value` to `rel` (e.g. "sys/net/ipv4/ip_forward"), resolved
    /// beneath this procfs without following any symlink or magic link.
    pub fn write(&self, rel: &str, value: &str) -> Result<()> {
        let fd = openat2(self.mnt.as_raw_fd(), rel, libc::O_WRONLY, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)?;
        // SAFETY: valid buffer and fd.
        let n = unsafe { libc::write(fd.as_raw_fd(), value.as_ptr().cast(), value.len()) };
        if n < 0 {
            return Err(Error::os(format!("write /proc/{rel}"), nix::errno::Errno::last_raw()));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- renameat2

/// Atomically swap two existing paths (RENAME_EXCHANGE). Unlike a rename
/// over an existing file, ext4 does not force the new file's data to disk
/// first (its auto_da_alloc heuristic only applies to replacing renames).
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    rename2(a, b, libc::RENAME_EXCHANGE)
}

/// renameat2 with `flags` (RENAME_EXCHANGE, RENAME_NOREPLACE).
pub fn rename2(a: &Path, b: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let b = CString::new(b.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: two valid C strings; the kernel only reads them.
    let r = unsafe { libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), flags) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
