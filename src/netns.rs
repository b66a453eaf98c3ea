//! A new network namespace, made ahead of the container's init and in
//! parallel with it.
//!
//! Creating a network namespace is the most expensive step of a container
//! start here (0.3-0.45 ms: the kernel registers every per-net subsystem
//! and brings up `lo`), and nothing else the runtime does depends on it
//! until the init mounts a fresh sysfs (which shows the mounter's network
//! namespace), writes `net.*` sysctls or hands its pid to the prestart
//! hooks. So as soon as the config is parsed, a helper process unshares a
//! network namespace and passes it over a socket; meanwhile the runtime
//! makes the state and the cgroup and clones the init without
//! `CLONE_NEWNET`, and the init mounts; it joins the namespace just before
//! the first step that needs it ([`Ahead::join`]).
//!
//! The helper shares the runtime's memory (`CLONE_VM`, no page tables to
//! copy, no copy-on-write faults in the runtime afterwards) and runs on its
//! own small stack; it therefore makes raw system calls only: no libc
//! wrapper that would set the shared `errno`, no allocation, no lock.
//!
//! Used only when the config asks for a new network namespace and has no
//! user namespace (a network namespace must be owned by the container's
//! user namespace, which only the init can create or join first).

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const STACK: usize = 16 << 10;

/// The helper's job, read by it from the shared memory.
#[repr(C)]
struct Job {
    /// The helper's end of the socket pair.
    sock: RawFd,
}

/// A network namespace on its way (the helper is running or done).
pub struct Ahead {
    pid: i32,
    /// Where the namespace (or the helper's errno) arrives.
    recv: Option<OwnedFd>,
    /// The helper's stack and job; freed only after it has exited.
    _stack: Box<[u8]>,
    _job: Box<Job>,
}

/// Should the network namespace be made ahead for this config?
pub fn wanted(spec: &Spec) -> bool {
    let ns = crate::spec::namespaces(spec);
    crate::spec::has_new_ns(spec, LinuxNamespaceType::Network) && !ns.iter().any(|n| n.typ() == LinuxNamespaceType::User)
}

/// Start the helper: it unshares a network namespace and sends it.
pub fn start() -> Result<Ahead> {
    let mut fds = [0; 2];
    // SAFETY: valid array of two ints.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(Error::os("network namespace: socketpair", nix::errno::Errno::last_raw()));
    }
    // SAFETY: the kernel just gave us these two fds.
    let (recv, send) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut stack = vec![0u8; STACK].into_boxed_slice();
    let job = Box::new(Job { sock: send.as_raw_fd() });
    // 16-byte aligned top of the stack (it grows down).
    let top = ((stack.as_mut_ptr() as usize + STACK) & !15) as *mut libc::c_void;
    // SAFETY: `helper` only makes raw system calls on its own stack and reads
    // `job`, both of which outlive it (Drop waits for the helper to exit);
    // without CLONE_FILES it has its own copy of the fd table.
    let pid = unsafe {
        libc::clone(helper, top, libc::CLONE_VM | libc::SIGCHLD, &*job as *const Job as *mut libc::c_void)
    };
    if pid < 0 {
        return Err(Error::os("network namespace: clone", nix::errno::Errno::last_raw()));
    }
    drop(send);
    elsewhere(pid);
    Ok(Ahead { pid, recv: Some(recv), _stack: stack, _job: job })
}

/// Keep the helper off the CPU we run on: the scheduler tends to queue a
/// new `CLONE_VM` child behind its parent, where it would wait for the
/// runtime to block instead of working beside it (measured: ~0.6 ms later).
fn elsewhere(pid: i32) {
    // SAFETY: cpu_set_t is plain data; the calls only read/write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return;
        }
        let me = libc::sched_getcpu();
        if me < 0 || libc::CPU_COUNT(&set) < 2 {
            return;
        }
        libc::CPU_CLR(me as usize, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The helper (runs in its own process, in the runtime's memory).
extern "C" fn helper(arg: *mut libc::c_void) -> libc::c_int {
    use syscalls::raw::{syscall2, syscall4};
    // SAFETY: `arg` is the Job the parent keeps alive until we exit.
    let sock = unsafe { (*(arg as *const Job)).sock } as usize;
    let all: u64 = !0;
    // SAFETY: raw system calls with valid pointers into our own stack frame.
    unsafe {
        syscall4(libc::SYS_rt_sigprocmask as usize, libc::SIG_SETMASK as usize, &all as *const u64 as usize, 0, 8);
        let r = syscall2(libc::SYS_unshare as usize, libc::CLONE_NEWNET as usize, 0) as isize;
        if r < 0 {
            let e = [(-r) as u8];
            syscall4(libc::SYS_sendto as usize, sock, e.as_ptr() as usize, 1, libc::MSG_NOSIGNAL as usize);
            return 1;
        }
        let path = b"/proc/thread-self/ns/net\0";
        let fd = syscalls::raw::syscall4(
            libc::SYS_openat as usize,
            libc::AT_FDCWD as usize,
            path.as_ptr() as usize,
            (libc::O_RDONLY | libc::O_CLOEXEC) as usize,
            0,
        ) as isize;
        if fd < 0 {
            let e = [(-fd) as u8];
            syscall4(libc::SYS_sendto as usize, sock, e.as_ptr() as usize, 1, libc::MSG_NOSIGNAL as usize);
            return 1;
        }
        let byte = [0u8];
        let mut iov = libc::iovec { iov_base: byte.as_ptr() as *mut libc::c_void, iov_len: 1 };
        // One cmsghdr (16 bytes) + one int, padded: 24 bytes, 8-aligned.
        let mut cbuf = [0u64; 3];
        let hdr = cbuf.as_mut_ptr() as *mut libc::cmsghdr;
        (*hdr).cmsg_len = 16 + 4;
        (*hdr).cmsg_level = libc::SOL_SOCKET;
        (*hdr).cmsg_type = libc::SCM_RIGHTS;
        *((cbuf.as_mut_ptr() as *mut u8).add(16) as *mut i32) = fd as i32;
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = 24;
        let r = syscalls::raw::syscall3(libc::SYS_sendmsg as usize, sock, &msg as *const libc::msghdr as usize, libc::MSG_NOSIGNAL as usize) as isize;
        if r < 0 {
            return 1;
        }
    }
    0
}

impl Ahead {
    /// The end the init receives the namespace on; the runtime closes its
    /// copy once the init is cloned ([`Ahead::close_receiver`]).
    pub fn receiver(&self) -> Option<RawFd> {
        self.recv.as_ref().map(|f| f.as_raw_fd())
    }

    pub fn close_receiver(&mut self) {
        self.recv = None;
    }
}

/// In the init: wait for the namespace on `recv` and enter it.
pub fn join(recv: RawFd) -> Result<()> {
    let mut byte = [0u8; 1];
    let fd = match crate::sys::recv_fd(recv, &mut byte) {
        Err(e) => return Err(Error::os("network namespace: receive", e.raw_os_error().unwrap_or(0))),
        Ok((0, _)) => return Err(Error::msg("network namespace: the helper that makes it exited")),
        // No fd: the byte is the helper's errno.
        Ok((_, None)) => return Err(Error::os("linux.namespaces: unshare network namespace", byte[0] as i32)),
        Ok((_, Some(fd))) => fd,
    };
    // SAFETY: plain syscall on a namespace fd.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::os("linux.namespaces: join the new network namespace", nix::errno::Errno::last_raw()));
    }
    Ok(())
}

impl Drop for Ahead {
    /// Reap the helper before its stack goes (it exits right after sending).
    fn drop(&mut self) {
        self.recv = None;
        loop {
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
            // ECHILD: reaped already by a wait for any child (`run`'s loop).
            if r >= 0 || nix::errno::Errno::last_raw() != libc::EINTR {
                break;
            }
        }
    }
}
