//! The raw system calls of this module, each behind a small safe wrapper.
//! Errors are plain errno values; callers add context.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

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

