//! Thin fd-based filesystem primitives (openat2, *at calls, xattrs, the new
//! mount API). Everything inside a layer is reached through a directory fd;
//! nothing here takes a host path string except where noted.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

pub(crate) use crate::sys::{RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV};

/// The resolution used for every path inside a layer: symlinks are followed
/// but can never leave the layer root, magic links are refused.
pub(crate) const IN_LAYER: u64 = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Printable form of a byte path for error messages.
pub(crate) fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn cstr(b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| Error::msg(format!("name contains a NUL byte: {:?}", show(b))))
}

/// openat2(2); retried on EAGAIN (a concurrent rename, which the kernel reports
/// rather than risk a wrong answer). An empty path means the directory itself.
pub(crate) fn openat2(dir: BorrowedFd, path: &[u8], flags: i32, resolve: u64) -> std::result::Result<OwnedFd, i32> {
    let p = if path.is_empty() { CString::new(".").unwrap() } else { CString::new(path).map_err(|_| libc::EINVAL)? };
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u64, mode: 0, resolve };
    for _ in 0..64 {
        // SAFETY: valid C string and struct of the size we pass.
        let r = unsafe {
            libc::syscall(libc::SYS_openat2, dir.as_raw_fd(), p.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>())
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new fd that we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = errno();
        if e != libc::EAGAIN && e != libc::EINTR {
            return Err(e);
        }
    }
    Err(libc::EAGAIN)
}

/// Plain openat of one name (no slashes) relative to `dir`.
pub(crate) fn openat(dir: BorrowedFd, name: &[u8], flags: i32, mode: u32) -> std::result::Result<OwnedFd, i32> {
    let c = CString::new(name).map_err(|_| libc::EINVAL)?;
    // SAFETY: valid C string.
    let r = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    if r < 0 {
        Err(errno())
    } else {
        // SAFETY: new fd owned by us.
        Ok(unsafe { OwnedFd::from_raw_fd(r) })
    }
}

/// Open a host directory path (the store, a bundle) as an O_DIRECTORY fd.
pub(crate) fn open_dir_path(path: &std::path::Path) -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: valid C string.
    let r = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if r < 0 {
        return Err(Error::os(format!("open {}", path.display()), errno()));
    }
    // SAFETY: new fd owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

fn check(r: libc::c_int, what: impl FnOnce() -> String) -> Result<()> {
    if r < 0 {
        Err(Error::os(what(), errno()))
    } else {
        Ok(())
    }
}

pub(crate) fn fstatat(dir: BorrowedFd, name: &[u8]) -> std::result::Result<libc::stat, i32> {
    let c = CString::new(if name.is_empty() { b"." as &[u8] } else { name }).map_err(|_| libc::EINVAL)?;
    // SAFETY: zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers.
    let r = unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(st)
    }
}

pub(crate) fn fstat(fd: BorrowedFd) -> Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }, || "fstat".into())?;
    Ok(st)
}

pub(crate) fn mkdirat(dir: BorrowedFd, name: &[u8], mode: u32) -> std::result::Result<(), i32> {
    let c = CString::new(name).map_err(|_| libc::EINVAL)?;
    // SAFETY: valid C string.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) } < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

pub(crate) fn mknodat(dir: BorrowedFd, name: &[u8], mode: u32, dev: u64) -> Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid C string.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), mode, dev) }, || format!("mknod {}", show(name)))
}

pub(crate) fn symlinkat(target: &[u8], dir: BorrowedFd, name: &[u8]) -> Result<()> {
    let t = cstr(target)?;
    let c = cstr(name)?;
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) }, || format!("symlink {}", show(name)))
}

/// symlinkat(2) returning the raw errno.
pub(crate) fn symlinkat_raw(target: &[u8], dir: BorrowedFd, name: &[u8]) -> std::result::Result<(), i32> {
    let t = CString::new(target).map_err(|_| libc::EINVAL)?;
    let c = CString::new(name).map_err(|_| libc::EINVAL)?;
    // SAFETY: valid C strings.
    if unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) } < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

pub(crate) fn linkat(odir: BorrowedFd, oname: &[u8], ndir: BorrowedFd, nname: &[u8]) -> Result<()> {
    let o = cstr(oname)?;
    let n = cstr(nname)?;
    // SAFETY: valid C strings; flags 0 never follows a symlink target.
    check(unsafe { libc::linkat(odir.as_raw_fd(), o.as_ptr(), ndir.as_raw_fd(), n.as_ptr(), 0) }, || {
        format!("link {} to {}", show(nname), show(oname))
    })
}

pub(crate) fn unlinkat(dir: BorrowedFd, name: &[u8], is_dir: bool) -> Result<()> {
    let c = cstr(name)?;
    let fl = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: valid C string.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), fl) }, || format!("unlink {}", show(name)))
}

/// chown/chmod/utimes on `name` in `dir` without following a symlink.
pub(crate) fn lchown_at(dir: BorrowedFd, name: &[u8], uid: u32, gid: u32) -> Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid C string.
    check(unsafe { libc::fchownat(dir.as_raw_fd(), c.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }, || {
        format!("chown {}", show(name))
    })
}

pub(crate) fn chmod_at(dir: BorrowedFd, name: &[u8], mode: u32) -> Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid C string. Only called on non-symlinks we just created.
    check(unsafe { libc::fchmodat(dir.as_raw_fd(), c.as_ptr(), mode, 0) }, || format!("chmod {}", show(name)))
}

pub(crate) fn utimes_at(dir: BorrowedFd, name: &[u8], secs: i64) -> Result<()> {
    let c = cstr(if name.is_empty() { b"." as &[u8] } else { name })?;
    let ts = [libc::timespec { tv_sec: secs, tv_nsec: 0 }, libc::timespec { tv_sec: secs, tv_nsec: 0 }];
    // SAFETY: valid pointers.
    check(unsafe { libc::utimensat(dir.as_raw_fd(), c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) }, || {
        format!("utimes {}", show(name))
    })
}

/// Start (not wait for) writeback of a file's dirty pages; a hint, errors ignored.
pub(crate) fn start_writeback(fd: BorrowedFd) {
    // SAFETY: plain syscall on our fd.
    unsafe { libc::sync_file_range(fd.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}

/// Set atime and mtime of an open file.
pub(crate) fn futimes(fd: BorrowedFd, secs: i64) -> Result<()> {
    let ts = [libc::timespec { tv_sec: secs, tv_nsec: 0 }, libc::timespec { tv_sec: secs, tv_nsec: 0 }];
    // SAFETY: valid pointer to two timespecs.
    check(unsafe { libc::futimens(fd.as_raw_fd(), ts.as_ptr()) }, || "futimens".into())
}

pub(crate) fn fchown(fd: BorrowedFd, uid: u32, gid: u32) -> Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }, || "fchown".into())
}

pub(crate) fn fchmod(fd: BorrowedFd, mode: u32) -> Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }, || "fchmod".into())
}

pub(crate) fn fsetxattr(fd: BorrowedFd, name: &str, value: &[u8]) -> Result<()> {
    let c = cstr(name.as_bytes())?;
    // SAFETY: valid pointers and lengths.
    check(
        unsafe { libc::fsetxattr(fd.as_raw_fd(), c.as_ptr(), value.as_ptr().cast(), value.len(), 0) },
        || format!("set xattr {name}"),
    )
}

/// All xattr names and values of an open file, sorted by name.
pub(crate) fn fxattrs(fd: BorrowedFd) -> Result<Vec<(String, Vec<u8>)>> {
    let mut buf = vec![0u8; 4096];
    let n = loop {
        // SAFETY: buffer pointer and length match.
        let r = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            break r as usize;
        }
        match errno() {
            libc::ERANGE => buf.resize(buf.len() * 4, 0),
            libc::ENOTSUP => return Ok(Vec::new()),
            e => return Err(Error::os("list xattrs", e)),
        }
    };
    let mut out = Vec::new();
    for name in buf[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let cname = cstr(name)?;
        let mut val = vec![0u8; 256];
        let len = loop {
            // SAFETY: buffer pointer and length match.
            let r = unsafe { libc::fgetxattr(fd.as_raw_fd(), cname.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
            if r >= 0 {
                break r as usize;
            }
            match errno() {
                libc::ERANGE => val.resize(val.len() * 4, 0),
                e => return Err(Error::os(format!("get xattr {}", show(name)), e)),
            }
        };
        val.truncate(len);
        out.push((show(name), val));
    }
    out.sort();
    Ok(out)
}

/// Names in a directory (without `.` and `..`), sorted bytewise, with d_type.
pub(crate) fn read_dir(dir: BorrowedFd) -> Result<Vec<Vec<u8>>> {
    // Duplicate: closedir closes the fd it was given.
    // SAFETY: plain syscall.
    let fd = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    check(fd, || "dup".into())?;
    // SAFETY: fd is a fresh directory fd; ownership passes to the DIR.
    let d = unsafe { libc::fdopendir(fd) };
    if d.is_null() {
        let e = errno();
        // SAFETY: fdopendir failed, fd still ours.
        unsafe { libc::close(fd) };
        return Err(Error::os("fdopendir", e));
    }
    // SAFETY: d is valid.
    unsafe { libc::rewinddir(d) };
    let mut names = Vec::new();
    loop {
        // SAFETY: d is valid; errno reset to tell end from error.
        unsafe { *libc::__errno_location() = 0 };
        let ent = unsafe { libc::readdir64(d) };
        if ent.is_null() {
            let e = errno();
            // SAFETY: d valid, closed once.
            unsafe { libc::closedir(d) };
            if e != 0 {
                return Err(Error::os("readdir", e));
            }
            break;
        }
        // SAFETY: d_name is NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

/// Remove everything inside `dir` (not following symlinks).
pub(crate) fn clear_dir(dir: BorrowedFd) -> Result<()> {
    for name in read_dir(dir)? {
        let st = fstatat(dir, &name).map_err(|e| Error::os(format!("stat {}", show(&name)), e))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let sub = openat(dir, &name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                .map_err(|e| Error::os(format!("open {}", show(&name)), e))?;
            clear_dir(std::os::fd::AsFd::as_fd(&sub))?;
            unlinkat(dir, &name, true)?;
        } else {
            unlinkat(dir, &name, false)?;
        }
    }
    Ok(())
}
