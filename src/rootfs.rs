//! The container's root filesystem, built inside its own mount namespace.
//!
//! Every path inside the rootfs is resolved by file descriptor with
//! openat2(RESOLVE_IN_ROOT), and every mount is attached to that fd with the
//! new mount API (fsopen/fsmount/open_tree/move_mount), so a symlink in the
//! image (or one swapped in during setup) can never redirect a mount to the
//! host. Nothing is mounted in the host's mount namespace.

use crate::error::{Context, Error, Result};
use crate::sys::{self, FsContext};
use crate::bail;
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Mount options stele understands (for `features`).
pub const MOUNT_OPTION_NAMES: &[&str] = &[
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand", "noatime", "nodev",
    "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime",
    "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime",
    "suid", "sync", "tmpcopyup", "unbindable",
];

/// A parsed mount: attributes for the mount, data for the filesystem.
#[derive(Default, Debug)]
struct Opts {
    set: u64,
    clr: u64,
    propagation: u64,
    bind: bool,
    recursive: bool,
    tmpcopyup: bool,
    readonly: bool,
    /// key[=value] passed to the filesystem (fsconfig)
    data: Vec<(String, Option<String>)>,
}

fn parse_opts(options: &[String]) -> Opts {
    let mut o = Opts::default();
    for opt in options {
        match opt.as_str() {
            "ro" => {
                o.set |= sys::MOUNT_ATTR_RDONLY;
                o.readonly = true;
            }
            "rw" => {
                o.clr |= sys::MOUNT_ATTR_RDONLY;
                o.set &= !sys::MOUNT_ATTR_RDONLY;
                o.readonly = false;
            }
            "nosuid" => o.set |= sys::MOUNT_ATTR_NOSUID,
            "suid" => o.clr |= sys::MOUNT_ATTR_NOSUID,
            "nodev" => o.set |= sys::MOUNT_ATTR_NODEV,
            "dev" => o.clr |= sys::MOUNT_ATTR_NODEV,
            "noexec" => o.set |= sys::MOUNT_ATTR_NOEXEC,
            "exec" => o.clr |= sys::MOUNT_ATTR_NOEXEC,
            "noatime" => {
                o.clr |= sys::MOUNT_ATTR__ATIME;
                o.set = (o.set & !sys::MOUNT_ATTR__ATIME) | sys::MOUNT_ATTR_NOATIME;
            }
            "strictatime" => {
                o.clr |= sys::MOUNT_ATTR__ATIME;
                o.set = (o.set & !sys::MOUNT_ATTR__ATIME) | sys::MOUNT_ATTR_STRICTATIME;
            }
            "relatime" => {
                o.clr |= sys::MOUNT_ATTR__ATIME;
                o.set &= !sys::MOUNT_ATTR__ATIME;
            }
            "atime" | "norelatime" | "nostrictatime" => {}
            "nodiratime" => o.set |= sys::MOUNT_ATTR_NODIRATIME,
            "diratime" => o.clr |= sys::MOUNT_ATTR_NODIRATIME,
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive = true;
            }
            "private" => o.propagation = libc::MS_PRIVATE as _,
            "rprivate" => o.propagation = libc::MS_PRIVATE as _,
            "shared" | "rshared" => o.propagation = libc::MS_SHARED as _,
            "slave" | "rslave" => o.propagation = libc::MS_SLAVE as _,
            "unbindable" | "runbindable" => o.propagation = libc::MS_UNBINDABLE as _,
            "tmpcopyup" => o.tmpcopyup = true,
            "defaults" | "remount" | "async" | "nomand" | "mand" => {}
            // SELinux relabel requests and other client-side hints
            "z" | "Z" | "nocopyup" | "copy-symlink" | "notmpcopyup" => {}
            "sync" | "dirsync" => o.data.push((opt.clone(), None)),
            _ => match opt.split_once('=') {
                Some((k, v)) => o.data.push((k.to_string(), Some(v.to_string()))),
                None => o.data.push((opt.clone(), None)),
            },
        }
    }
    o
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::msg(format!("NUL byte in {s:?}")))
}

/// Open `path` inside `root`, creating missing directories (and, when
/// `file` is set, the last component as an empty file). Every step is
/// resolved inside the root; nothing is created by string path.
pub fn ensure_in_root(root: RawFd, path: &str, file: bool) -> Result<OwnedFd> {
    match sys::open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.errno() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    // Usually only the last component is missing (dev/pts in a fresh /dev):
    // start from its parent when that exists, else from the root.
    let open_dir = |p: &str| sys::open_in_root(root, p, libc::O_PATH | libc::O_DIRECTORY);
    let (mut cur, mut sofar, first) = match comps.split_last() {
        Some((last, parents)) if *last != ".." && !parents.is_empty() => {
            let parent = format!("/{}", parents.join("/"));
            match open_dir(&parent) {
                Ok(fd) => (fd, parent, parents.len()),
                Err(_) => (open_dir("/")?, String::new(), 0),
            }
        }
        _ => (open_dir("/")?, String::new(), 0),
    };
    for (i, c) in comps.iter().enumerate().skip(first) {
        sofar.push('/');
        sofar.push_str(c);
        let last = i + 1 == comps.len();
        // From the parent, the last component is known to be missing.
        if !(last && first > 0) {
            match sys::open_in_root(root, &sofar, libc::O_PATH) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(e) if e.errno() == Some(libc::ENOENT) && *c != ".." => {}
                Err(e) => return Err(e),
            }
        }
        let name = cstring(c)?;
        // SAFETY: `cur` is a directory fd resolved inside the root; `name` has no '/'.
        let r = if last && file {
            unsafe {
                libc::openat(
                    cur.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0o644,
                )
            }
        } else {
            unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o755) }
        };
        if r < 0 {
            let errno = nix::errno::Errno::last_raw();
            if errno != libc::EEXIST {
                return Err(Error::os(format!("create mountpoint {sofar}"), errno));
            }
        } else if last && file {
            // SAFETY: r is the fd openat just returned.
            unsafe { libc::close(r) };
        }
        cur = sys::open_in_root(root, &sofar, libc::O_PATH)?;
    }
    Ok(cur)
}

/// `a/./b/../c` -> `a/c`, without touching the filesystem.
fn lexical_normal(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn is_dir_fd(fd: RawFd) -> bool {
    sys::fstat(fd).map(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR).unwrap_or(false)
}

/// Everything the init needs to build the root, computed before clone.
pub struct Plan<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    /// Detached read-only overlay of image layers to use as the root (image mode).
    pub root_mount: Option<OwnedFd>,
    /// host dirs for a cgroup mount (from the container's cgroup)
    pub cgroup_sources: Vec<(String, PathBuf)>,
    pub terminal: bool,
    /// Whether missing mountpoints may be created in the rootfs (only when
    /// writes land in a layer of their own; see policy::RootfsKind).
    pub create_mountpoints: bool,
    /// In a user namespace (new or joined): device nodes are the host's, bound
    /// (src/userns.rs).
    pub userns: bool,
}

/// What the init keeps from the rootfs setup for the last steps.
pub struct Prepared {
    /// The container's root (the bind of root.path), before pivot_root.
    pub root: OwnedFd,
    /// The host's /dev/null, verified char 1:3, for masking.
    pub devnull: OwnedFd,
    /// The pty master (terminal mode), to send over the console socket.
    pub pty_master: Option<OwnedFd>,
    pub pty_peer: Option<OwnedFd>,
}

/// Where [`prepare`] lets the init catch up with the runtime.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    /// Before a sysfs mount (it shows the mounter's network namespace).
    Sysfs,
    /// After the mounts, before any device node is made (the runtime's
    /// device rules must be complete by then). Always reached.
    Devices,
}

/// Step 1, in the new mount namespace: make the host's mounts invisible to
/// propagation, mount the root and every configured mount, create devices.
/// `step` runs at each [`Step`].
pub fn prepare(plan: &mut Plan, step: &mut dyn FnMut(Step) -> Result<()>) -> Result<Prepared> {
    let linux = plan.spec.linux().as_ref();
    // Our copy of the host's mounts must not propagate back to the host.
    nix::mount::mount(None::<&str>, "/", None::<&str>, nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE, None::<&str>)
        .ctx("make / rslave")?;

    let devnull = sys::open_path(Path::new("/dev/null"), libc::O_PATH)?;
    let st = sys::fstat(devnull.as_raw_fd()).ctx("stat /dev/null")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        bail!("/dev/null on the host is not the null device");
    }

    // The root: the image overlay (image mode) or a recursive bind of root.path.
    let rootfs_dir = sys::open_path(plan.rootfs, libc::O_PATH | libc::O_DIRECTORY)
        .ctx("root.path")?;
    let tree = match plan.root_mount.take() {
        Some(m) => m,
        None => sys::open_tree_fd(rootfs_dir.as_raw_fd(), true, &format!("root.path {}", plan.rootfs.display()))?,
    };
    sys::move_mount_fd(tree.as_raw_fd(), rootfs_dir.as_raw_fd(), "rootfs")?;
    drop(rootfs_dir);
    // Re-open to get the mount we just attached (not the directory under it).
    let root = sys::open_path(plan.rootfs, libc::O_PATH | libc::O_DIRECTORY).ctx("root.path")?;
    refuse_special_symlinks(root.as_raw_fd())?;
    if !plan.create_mountpoints {
        // The image is read-only from the first moment: a missing mountpoint
        // is an error, never a new directory in the image.
        sys::mount_setattr(root.as_raw_fd(), true, sys::MOUNT_ATTR_RDONLY, 0, 0, "rootfs")?;
    }

    let mounts = plan.spec.mounts().as_deref().unwrap_or(&[]);
    let mut dev_is_new = false;
    for (i, m) in mounts.iter().enumerate() {
        if m.typ().as_deref() == Some("sysfs") {
            step(Step::Sysfs)?;
        }
        mount_one(plan, root.as_raw_fd(), m).map_err(|e| {
            if e.errno() == Some(libc::EROFS) && !plan.create_mountpoints {
                Error::msg(format!(
                    "mounts[{i}]: the mountpoint {} does not exist in the rootfs, and stele never creates files in an image; \
                     add it to the image or mount somewhere that exists",
                    m.destination().display()
                ))
            } else {
                e.context(format!("mounts[{i}] {}", m.destination().display()))
            }
        })?;
        if m.destination() == Path::new("/dev") && !parse_opts(m.options().as_deref().unwrap_or(&[])).bind {
            dev_is_new = true;
        }
    }

    step(Step::Devices)?;
    if dev_is_new {
        if plan.userns {
            for (p, ma, mi) in DEFAULT_DEVICES {
                bind_device(root.as_raw_fd(), p, libc::S_IFCHR, *ma, *mi)?;
            }
            dev_links(root.as_raw_fd())?;
        } else {
            create_default_devices(root.as_raw_fd(), devnull.as_raw_fd())?;
        }
    }
    if let Some(devs) = linux.and_then(|l| l.devices().as_ref()) {
        for d in devs {
            if plan.userns {
                let path = d.path().to_string_lossy();
                bind_device(root.as_raw_fd(), &path, device_kind(d)?, d.major() as u64, d.minor() as u64)?;
            } else {
                create_device(root.as_raw_fd(), d)?;
            }
        }
    }

    let (pty_master, pty_peer) = if plan.terminal { open_pty(root.as_raw_fd())? } else { (None, None) };
    Ok(Prepared { root, devnull, pty_master, pty_peer })
}

/// An image whose /dev, /proc or /sys is a symlink would let mounts land on
/// whatever it points to: refuse it.
fn refuse_special_symlinks(root: RawFd) -> Result<()> {
    for d in ["dev", "proc", "sys"] {
        let name = cstring(d)?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd, C string and stat buffer.
        let r = unsafe { libc::fstatat(root, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            bail!("rootfs: /{d} is a symlink; refusing to mount over it");
        }
    }
    Ok(())
}

fn mount_one(plan: &Plan, root: RawFd, m: &Mount) -> Result<()> {
    let dest = m.destination().to_string_lossy().into_owned();
    let typ = m.typ().as_deref().unwrap_or("");
    let o = parse_opts(m.options().as_deref().unwrap_or(&[]));
    let source = m.source().as_ref().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();

    if o.bind || typ == "bind" {
        let src_path = lexical_normal(&if Path::new(&source).is_absolute() { PathBuf::from(&source) } else { plan.bundle.join(&source) });
        // A source inside the rootfs is the image's: resolve it in the root,
        // so an image symlink cannot make it a host path (e.g. "/").
        let src = match src_path.strip_prefix(lexical_normal(plan.rootfs)) {
            Ok(rel) => sys::open_in_root(root, &rel.to_string_lossy(), libc::O_PATH),
            Err(_) => sys::open_path(&src_path, libc::O_PATH),
        }
        .with_ctx(|| format!("bind source {}", src_path.display()))?;
        let dst = ensure_in_root(root, &dest, !is_dir_fd(src.as_raw_fd()))?;
        let tree = sys::open_tree_fd(src.as_raw_fd(), o.recursive, &src_path.display().to_string())?;
        if o.set != 0 || o.clr != 0 {
            sys::mount_setattr(tree.as_raw_fd(), o.recursive, o.set, o.clr, 0, &dest)?;
        }
        sys::move_mount_fd(tree.as_raw_fd(), dst.as_raw_fd(), &dest)?;
        if o.propagation != 0 {
            let top = sys::open_in_root(root, &dest, libc::O_PATH)?;
            sys::mount_setattr(top.as_raw_fd(), o.recursive, 0, 0, o.propagation, &dest)?;
        }
        return Ok(());
    }

    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(plan, root, &dest, &o);
    }

    let dst = ensure_in_root(root, &dest, false)?;
    let fstype = if typ.is_empty() { bail!("type: missing") } else { typ };
    let fresh = || {
        let ctx = FsContext::new(fstype)?;
        if !source.is_empty() {
            let _ = ctx.set_string("source", &source);
        }
        for (k, v) in &o.data {
            match v {
                Some(v) => ctx.set_string(k, v)?,
                None => ctx.set_flag(k)?,
            }
        }
        ctx.mount(o.set & !sys::MOUNT_ATTR_RDONLY)
    };
    let mnt = match fresh() {
        // A user namespace may mount sysfs only with a network namespace it
        // owns: else the host's /sys is bound, read-only whatever the config says.
        Err(e) if fstype == "sysfs" && plan.userns && e.errno() == Some(libc::EPERM) => {
            let src = sys::open_path(Path::new("/sys"), libc::O_PATH | libc::O_DIRECTORY)?;
            let tree = sys::open_tree_fd(src.as_raw_fd(), true, "/sys")?;
            let ro = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC;
            sys::mount_setattr(tree.as_raw_fd(), true, o.set | ro, 0, 0, &dest)?;
            return sys::move_mount_fd(tree.as_raw_fd(), dst.as_raw_fd(), &dest);
        }
        r => r?,
    };
    if o.tmpcopyup {
        copy_up(dst.as_raw_fd(), mnt.as_raw_fd()).with_ctx(|| format!("tmpcopyup {dest}"))?;
    }
    if o.readonly {
        sys::mount_setattr(mnt.as_raw_fd(), false, sys::MOUNT_ATTR_RDONLY, 0, 0, &dest)?;
    }
    sys::move_mount_fd(mnt.as_raw_fd(), dst.as_raw_fd(), &dest)?;
    if o.propagation != 0 {
        let top = sys::open_in_root(root, &dest, libc::O_PATH)?;
        sys::mount_setattr(top.as_raw_fd(), false, 0, 0, o.propagation, &dest)?;
    }
    Ok(())
}

/// /sys/fs/cgroup: a tmpfs with the container's own cgroup directories bound
/// in (v1), or its cgroup2 leaf (v2). Never a fresh cgroup2 mount outside a
/// cgroup namespace (it stalls for an RCU grace period).
fn mount_cgroup(plan: &Plan, root: RawFd, dest: &str, o: &Opts) -> Result<()> {
    let dst = ensure_in_root(root, dest, false)?;
    let attrs = o.set & !sys::MOUNT_ATTR_RDONLY;
    if plan.cgroup_sources.len() == 1 && plan.cgroup_sources[0].0.is_empty() {
        let src = sys::open_path(&plan.cgroup_sources[0].1, libc::O_PATH | libc::O_DIRECTORY)?;
        let tree = sys::open_tree_fd(src.as_raw_fd(), false, "cgroup")?;
        sys::mount_setattr(tree.as_raw_fd(), false, o.set, 0, 0, dest)?;
        return sys::move_mount_fd(tree.as_raw_fd(), dst.as_raw_fd(), dest);
    }
    let ctx = FsContext::new("tmpfs")?;
    ctx.set_string("mode", "755")?;
    let tmp = ctx.mount(attrs)?;
    sys::move_mount_fd(tmp.as_raw_fd(), dst.as_raw_fd(), dest)?;
    for (name, host) in &plan.cgroup_sources {
        let Ok(src) = sys::open_path(host, libc::O_PATH | libc::O_DIRECTORY) else { continue };
        let sub = format!("{dest}/{name}");
        let d = ensure_in_root(root, &sub, false)?;
        let tree = sys::open_tree_fd(src.as_raw_fd(), false, &sub)?;
        sys::mount_setattr(tree.as_raw_fd(), false, o.set | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC, 0, 0, &sub)?;
        sys::move_mount_fd(tree.as_raw_fd(), d.as_raw_fd(), &sub)?;
    }
    if o.readonly {
        let top = sys::open_in_root(root, dest, libc::O_PATH)?;
        sys::mount_setattr(top.as_raw_fd(), false, sys::MOUNT_ATTR_RDONLY, 0, 0, dest)?;
    }
    Ok(())
}

/// podman's `tmpcopyup`: copy what the image has at the mountpoint into the
/// new (still detached) tmpfs, so the tmpfs starts with the image's files.
fn copy_up(from_dir: RawFd, mnt: RawFd) -> Result<()> {
    let from = format!("/proc/self/fd/{from_dir}");
    let to = format!("/proc/self/fd/{mnt}");
    copy_tree(Path::new(&from), Path::new(&to))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let rd = match std::fs::read_dir(from) {
        Ok(r) => r,
        Err(_) => return Ok(()),
    };
    for e in rd.flatten() {
        let src = e.path();
        let dst = to.join(e.file_name());
        let md = std::fs::symlink_metadata(&src).ctx("stat")?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst).with_ctx(|| format!("mkdir {}", dst.display()))?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&src).ctx("readlink")?;
            std::os::unix::fs::symlink(t, &dst).ctx("symlink")?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst).with_ctx(|| format!("copy {}", src.display()))?;
        } else {
            continue;
        }
        let _ = std::os::unix::fs::lchown(&dst, Some(md.uid()), Some(md.gid()));
        if !ft.is_symlink() {
            let _ = std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(md.mode() & 0o7777));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn mknod_in(root: RawFd, path: &str, kind: u32, perm: u32, major: u64, minor: u64, uid: u32, gid: u32) -> Result<()> {
    let (parent, name) = match path.rsplit_once('/') {
        Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
        None => ("/", path),
    };
    let dir = ensure_in_root(root, parent, false)?;
    let cname = cstring(name)?;
    // SAFETY: dir is resolved inside the root; name has no '/'.
    unsafe { libc::unlinkat(dir.as_raw_fd(), cname.as_ptr(), 0) };
    let dev = libc::makedev(major as u32, minor as u32);
    // SAFETY: as above.
    if unsafe { libc::mknodat(dir.as_raw_fd(), cname.as_ptr(), kind | perm, dev) } != 0 {
        return Err(Error::os(format!("linux.devices: mknod {path}"), nix::errno::Errno::last_raw()));
    }
    // SAFETY: as above; do not follow symlinks.
    unsafe {
        libc::fchownat(dir.as_raw_fd(), cname.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW);
        libc::fchmodat(dir.as_raw_fd(), cname.as_ptr(), perm, 0);
    }
    Ok(())
}

fn device_kind(d: &oci_spec::runtime::LinuxDevice) -> Result<u32> {
    Ok(match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => bail!("linux.devices: {}: type must be c, b, u or p", d.path().display()),
    })
}

/// In a user namespace no device node can be made: bind the host's node of
/// the same path over an empty file, after checking that it is the device
/// the config asks for.
fn bind_device(root: RawFd, path: &str, kind: u32, major: u64, minor: u64) -> Result<()> {
    let what = format!("linux.devices: {path}");
    let src = sys::open_path(Path::new(path), libc::O_PATH | libc::O_NOFOLLOW)
        .with_ctx(|| format!("{what}: the host's node (bound in a user namespace)"))?;
    let st = sys::fstat(src.as_raw_fd()).with_ctx(|| what.clone())?;
    let same = st.st_mode & libc::S_IFMT == kind && (kind == libc::S_IFIFO || st.st_rdev == libc::makedev(major as u32, minor as u32));
    if !same {
        bail!("{what}: the host's node (bound in a user namespace) is not that device");
    }
    let dst = ensure_in_root(root, path, true)?;
    let tree = sys::open_tree_fd(src.as_raw_fd(), false, path)?;
    sys::move_mount_fd(tree.as_raw_fd(), dst.as_raw_fd(), path)
}

fn create_device(root: RawFd, d: &oci_spec::runtime::LinuxDevice) -> Result<()> {
    let path = d.path().to_string_lossy();
    mknod_in(
        root,
        &path,
        device_kind(d)?,
        d.file_mode().unwrap_or(0o666) & 0o7777,
        d.major() as u64,
        d.minor() as u64,
        d.uid().unwrap_or(0),
        d.gid().unwrap_or(0),
    )
}

const DEFAULT_DEVICES: &[(&str, u64, u64)] =
    &[("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)];

/// The default devices in a fresh /dev tmpfs: one mknodat each (under
/// umask 0, owned by the init's root already); a name taken (a mount the
/// config put there) goes the long way of [`mknod_in`].
fn create_default_devices(root: RawFd, _devnull: RawFd) -> Result<()> {
    let dev = ensure_in_root(root, "/dev", false)?;
    // SAFETY: umask only swaps the process's mask.
    let old = unsafe { libc::umask(0) };
    let made = DEFAULT_DEVICES.iter().try_for_each(|(p, ma, mi)| {
        let name = cstring(&p["/dev/".len()..])?;
        // SAFETY: dev is resolved in the root; name has no '/'.
        let r = unsafe { libc::mknodat(dev.as_raw_fd(), name.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(*ma as u32, *mi as u32)) };
        match r {
            0 => Ok(()),
            _ if nix::errno::Errno::last_raw() == libc::EEXIST => mknod_in(root, p, libc::S_IFCHR, 0o666, *ma, *mi, 0, 0),
            _ => Err(Error::os(format!("mknod {p}"), nix::errno::Errno::last_raw())),
        }
    });
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    made?;
    dev_links(root)
}

/// /dev/fd, /dev/stdin ... /dev/ptmx, as runc makes them.
fn dev_links(root: RawFd) -> Result<()> {
    let dev = ensure_in_root(root, "/dev", false)?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
        ("ptmx", "pts/ptmx"),
    ] {
        // as runc: /dev/core only where the kernel has /proc/kcore
        if name == "core" && !Path::new("/proc/kcore").exists() {
            continue;
        }
        let n = cstring(name)?;
        let t = cstring(target)?;
        // SAFETY: dev is resolved in the root; name has no '/'.
        if unsafe { libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), n.as_ptr()) } != 0 {
            let e = nix::errno::Errno::last_raw();
            if e != libc::EEXIST {
                return Err(Error::os(format!("symlink /dev/{name}"), e));
            }
        }
    }
    Ok(())
}

/// Open a pty from the container's own devpts; the peer comes from
/// TIOCGPTPEER (no path lookup), and /dev/console is bound to it.
fn open_pty(root: RawFd) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    let (master, peer) = new_pty(root)?;
    // An image's /dev/console that is a symlink would have the pty mounted
    // over whatever it points to (e.g. a procfs file): refuse it.
    // (O_PATH|O_NOFOLLOW opens a trailing symlink itself; RESOLVE_NO_SYMLINKS
    // refuses symlinks in the earlier components.)
    match sys::openat2(root, "dev/console", libc::O_PATH | libc::O_NOFOLLOW, 0, sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_SYMLINKS) {
        Err(e) if e.errno() == Some(libc::ELOOP) => {
            bail!("terminal: /dev/console: a path component in the rootfs is a symlink; refusing")
        }
        Ok(fd) if sys::fstat(fd.as_raw_fd()).map(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK).unwrap_or(false) => {
            bail!("terminal: /dev/console in the rootfs is a symlink; refusing to mount the console over its target")
        }
        _ => {}
    }
    let console = ensure_in_root(root, "/dev/console", true)?;
    let tree = sys::open_tree_fd(peer.as_raw_fd(), false, "/dev/console")?;
    sys::move_mount_fd(tree.as_raw_fd(), console.as_raw_fd(), "/dev/console")?;
    Ok((Some(master), Some(peer)))
}

/// A new pty pair from the container's devpts under `root` (master, peer).
pub fn new_pty(root: RawFd) -> Result<(OwnedFd, OwnedFd)> {
    let master = sys::open_in_root(root, "/dev/pts/ptmx", libc::O_RDWR | libc::O_NOCTTY)
        .ctx("terminal: open the container's /dev/pts/ptmx (is devpts mounted at /dev/pts?)")?;
    let st = sys::fstat(master.as_raw_fd()).ctx("stat ptmx")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || libc::major(st.st_rdev) != 5 {
        bail!("terminal: /dev/pts/ptmx is not a pty multiplexer");
    }
    sys::unlock_pty(master.as_raw_fd())?;
    let peer = sys::pty_peer(master.as_raw_fd())?;
    Ok((master, peer))
}

/// Step 2: pivot into the root (or move it over / and chroot with
/// `--no-pivot`), drop the host's mounts.
pub fn enter(prep: &Prepared, no_pivot: bool) -> Result<()> {
    sys::fchdir(prep.root.as_raw_fd()).ctx("chdir to rootfs")?;
    if no_pivot {
        nix::mount::mount(Some("."), "/", None::<&str>, nix::mount::MsFlags::MS_MOVE, None::<&str>).ctx("move rootfs to /")?;
        nix::unistd::chroot(".").ctx("chroot")?;
    } else {
        nix::unistd::pivot_root(".", ".").ctx("pivot_root")?;
        // The old root is now stacked under the new one at "/": detach it.
        nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).ctx("unmount the old root")?;
    }
    nix::unistd::chdir("/").ctx("chdir /")?;
    Ok(())
}

/// Step 3, after pivot: masked and read-only paths, root propagation, and
/// the read-only root (recursively, keeping writable the mounts the config
/// declares writable).
pub fn finish(spec: &Spec, prep: &Prepared) -> Result<()> {
    let linux = spec.linux().as_ref();
    let root = sys::open_path(Path::new("/"), libc::O_PATH | libc::O_DIRECTORY)?;
    let masked = linux.and_then(|l| l.masked_paths().as_deref()).unwrap_or(&[]);
    if !masked.is_empty() {
        // The host's /dev/null is out of reach after pivot_root; use the
        // container's, but only once it is verified to be the null device
        // (an image could make it a symlink to a procfs file).
        let devnull = open_null_device(root.as_raw_fd())?;
        for p in masked {
            mask_path(root.as_raw_fd(), p, devnull.as_raw_fd()).with_ctx(|| format!("linux.maskedPaths: {p}"))?;
        }
    }
    let _ = &prep.devnull;
    for p in linux.and_then(|l| l.readonly_paths().as_deref()).unwrap_or(&[]) {
        readonly_path(root.as_raw_fd(), p).with_ctx(|| format!("linux.readonlyPaths: {p}"))?;
    }
    if let Some(prop) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        let (flag, rec) = match prop {
            "shared" => (libc::MS_SHARED, false),
            "rshared" => (libc::MS_SHARED, true),
            "slave" => (libc::MS_SLAVE, false),
            "rslave" => (libc::MS_SLAVE, true),
            "private" => (libc::MS_PRIVATE, false),
            "rprivate" => (libc::MS_PRIVATE, true),
            "unbindable" => (libc::MS_UNBINDABLE, false),
            "runbindable" => (libc::MS_UNBINDABLE, true),
            _ => (0, false),
        };
        if flag != 0 {
            sys::mount_setattr(root.as_raw_fd(), rec, 0, 0, flag as _, "linux.rootfsPropagation")?;
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        sys::mount_setattr(root.as_raw_fd(), true, sys::MOUNT_ATTR_RDONLY, 0, 0, "read-only root")?;
        // Mounts the config declares writable stay writable.
        for m in spec.mounts().as_deref().unwrap_or(&[]) {
            let o = parse_opts(m.options().as_deref().unwrap_or(&[]));
            if o.readonly {
                continue;
            }
            let dest = m.destination().to_string_lossy();
            if let Ok(fd) = sys::open_in_root(root.as_raw_fd(), &dest, libc::O_PATH) {
                let _ = sys::mount_setattr(fd.as_raw_fd(), false, 0, sys::MOUNT_ATTR_RDONLY, 0, &dest);
            }
        }
        // A pty bound on /dev/console must stay writable for the terminal.
        if prep.pty_peer.is_some() {
            if let Ok(fd) = sys::open_in_root(root.as_raw_fd(), "/dev/console", libc::O_PATH) {
                let _ = sys::mount_setattr(fd.as_raw_fd(), false, 0, sys::MOUNT_ATTR_RDONLY, 0, "/dev/console");
            }
        }
    }
    Ok(())
}

fn open_null_device(root: RawFd) -> Result<OwnedFd> {
    let fd = sys::openat2(root, "dev/null", libc::O_PATH | libc::O_NOFOLLOW, 0, sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_SYMLINKS)
        .ctx("linux.maskedPaths: the container needs /dev/null to mask files")?;
    let st = sys::fstat(fd.as_raw_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        bail!("linux.maskedPaths: the container's /dev/null is not the null device (char 1:3); refusing to mask with it");
    }
    Ok(fd)
}

fn mask_path(root: RawFd, path: &str, devnull: RawFd) -> Result<()> {
    let target = match sys::open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if is_dir_fd(target.as_raw_fd()) {
        let ctx = FsContext::new("tmpfs")?;
        ctx.set_string("size", "0")?;
        ctx.set_string("mode", "0")?;
        let m = ctx.mount(sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC)?;
        sys::move_mount_fd(m.as_raw_fd(), target.as_raw_fd(), path)
    } else {
        let tree = sys::open_tree_fd(devnull, false, "/dev/null")?;
        sys::mount_setattr(tree.as_raw_fd(), false, sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOEXEC, 0, 0, path)?;
        sys::move_mount_fd(tree.as_raw_fd(), target.as_raw_fd(), path)
    }
}

fn readonly_path(root: RawFd, path: &str) -> Result<()> {
    let target = match sys::open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let tree = sys::open_tree_fd(target.as_raw_fd(), true, path)?;
    sys::mount_setattr(
        tree.as_raw_fd(),
        true,
        sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC,
        0,
        0,
        path,
    )?;
    sys::move_mount_fd(tree.as_raw_fd(), target.as_raw_fd(), path)
}

/// Write the config's sysctls through a private procfs (the init is already
/// in the container's namespaces, so these land in them).
pub fn apply_sysctl(spec: &Spec, proc: &sys::PrivateProc) -> Result<()> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else { return Ok(()) };
    let mut keys: Vec<_> = map.keys().collect();
    keys.sort();
    for k in keys {
        if k.contains('/') || k.split('.').any(|c| c.is_empty() || c == "..") {
            bail!("linux.sysctl: {k:?} is not a sysctl name");
        }
        let rel = format!("sys/{}", k.replace('.', "/"));
        proc.write(&rel, &map[k]).with_ctx(|| format!("linux.sysctl: {k}"))?;
    }
    Ok(())
}
