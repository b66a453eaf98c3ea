//! The raw system calls of this module, each behind a small safe wrapper.
//! Errors are plain errno values; callers add context.

use std::io::IoSlice;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{send, sendmsg, ControlMessage, MsgFlags, UnixAddr};

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`. With `listener` the
/// kernel returns a new notify fd (flags must include NEW_LISTENER).
pub fn seccomp_set_mode_filter(
    filter: &[libc::sock_filter],
    flags: libc::c_ulong,
    listener: bool,
) -> Result<Option<OwnedFd>, i32> {
    let len = u16::try_from(filter.len()).map_err(|_| libc::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points to `filter`, which outlives the call; the kernel
    // only reads (and copies) the program. No memory is handed over.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(Errno::last_raw());
    }
    if !listener {
        return Ok(None);
    }
    let fd = RawFd::try_from(r).map_err(|_| libc::EBADF)?;
    // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful call returns
    // a new file descriptor that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Send `bytes` with `fd` in SCM_RIGHTS: one sendmsg; a short write (stream
/// socket) is finished with plain sends.
pub fn send_with_fd(sock: RawFd, bytes: &[u8], fd: RawFd) -> Result<(), i32> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(bytes)];
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
