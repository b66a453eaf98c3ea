//! Safe layer unpack: the tar crate only parses; every file is created by us
//! through fds inside the layer root (openat2 RESOLVE_IN_ROOT for parents,
//! *at calls on a single name for the entry itself). Whiteouts become overlay
//! whiteouts (char 0:0), opaque markers the `trusted.overlay.opaque` xattr.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::fs::{self, show, IN_LAYER};
use super::tree::ContentHash;
use crate::error::{Context, Error, Result};

const WH_PREFIX: &[u8] = b".wh.";
const WH_OPAQUE: &[u8] = b".wh..wh..opq";
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Caps against decompression bombs and hostile archives.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Total uncompressed bytes of one layer.
    pub max_bytes: u64,
    /// Number of tar entries in one layer.
    pub max_entries: u64,
    /// Uncompressed/compressed ratio, checked once `ratio_after` bytes are out.
    pub max_ratio: u64,
    pub ratio_after: u64,
    /// Create block and character device nodes (refused by default).
    pub allow_devices: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 30,
            max_entries: 2_000_000,
            max_ratio: 500,
            ratio_after: 64 << 20,
            allow_devices: false,
        }
    }
}

/// What to do with an xattr found in a layer.
#[derive(PartialEq, Eq, Debug)]
pub enum XattrPolicy {
    Keep,
    Drop,
    Refuse,
}

/// The xattr allowlist. `trusted.overlay.*` from an image is refused outright
/// (it would let a layer forge whiteouts, redirects or metacopy).
pub fn xattr_policy(name: &str) -> XattrPolicy {
    if name.starts_with("trusted.overlay.") {
        XattrPolicy::Refuse
    } else if name.starts_with("user.")
        || name == "security.capability"
        || name == "system.posix_acl_access"
        || name == "system.posix_acl_default"
    {
        XattrPolicy::Keep
    } else {
        XattrPolicy::Drop
    }
}

/// Counts decompressed bytes and enforces [`Limits`] as data streams.
/// `compressed` counts the compressed bytes consumed so far (for the ratio).
pub struct BombGuard<'a, R> {
    inner: R,
    out: u64,
    compressed: Option<&'a AtomicU64>,
    limits: Limits,
}

impl<'a, R: Read> BombGuard<'a, R> {
    pub fn new(inner: R, compressed: Option<&'a AtomicU64>, limits: &Limits) -> Self {
        BombGuard { inner, out: 0, compressed, limits: limits.clone() }
    }
}

impl<R: Read> Read for BombGuard<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if self.out > self.limits.max_bytes {
            return Err(io::Error::other(format!(
                "decompression bomb: layer expands beyond the {} byte cap",
                self.limits.max_bytes
            )));
        }
        if let Some(c) = self.compressed {
            let c = c.load(Ordering::Relaxed).max(1);
            if self.out > self.limits.ratio_after && self.out / c > self.limits.max_ratio {
                return Err(io::Error::other(format!(
                    "decompression bomb: expansion ratio above {} ({} bytes from {})",
                    self.limits.max_ratio, self.out, c
                )));
            }
        }
        Ok(n)
    }
}

/// Split a tar name into clean components; `..` and absolute names are refused.
pub fn components(raw: &[u8]) -> Result<Vec<&[u8]>> {
    if raw.first() == Some(&b'/') {
        crate::bail!("absolute path {:?} in layer refused", show(raw));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => crate::bail!("path {:?} with '..' in layer refused", show(raw)),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(c: &[&[u8]]) -> Vec<u8> {
    c.join(&b'/')
}

/// The regular files written by one unpack, by (st_dev, st_ino). Every
/// regular file in a layer is created by [`unpack`] (or hard-linked to one
/// it created) and never written again, so the latest record of an inode
/// describes its content and its xattrs.
#[derive(Default)]
pub struct Written {
    pub files: HashMap<(u64, u64), WrittenFile>,
    /// A directory may carry a default ACL, so new files may have inherited
    /// xattrs we did not set: the tree scan must read xattrs from disk.
    pub xattrs_inherited: bool,
}

pub struct WrittenFile {
    /// The record's content field ([`ContentHash`]), hashed while writing.
    pub content: String,
    pub size: u64,
    /// The xattrs we set, by name (the last value of a repeated name).
    pub xattrs: std::collections::BTreeMap<String, Vec<u8>>,
}

const ACL_DEFAULT: &str = "system.posix_acl_default";

/// Open parent directories kept across entries (tar entries of one directory
/// are rarely consecutive). Dropped whenever an entry is unlinked: that is
/// the only way an already resolved path can come to resolve elsewhere
/// (directories are never removed or renamed during an unpack).
const DIR_CACHE_MAX: usize = 2048;

/// Files at least this large get their writeback started as soon as they are
/// written, so the store's syncfs at the end of the import has less to wait for.
const EARLY_WRITEBACK: u64 = 1 << 20;

fn early_writeback() -> bool {
    std::env::var_os("STELE_NO_EARLY_WRITEBACK").is_none()
}

/// Write buffer for file contents (fewer, larger write(2) calls).
const WRITE_BUF: usize = 256 << 10;

struct Unpacker<'a> {
    root: &'a OwnedFd,
    limits: &'a Limits,
    dir_times: Vec<(Vec<u8>, i64)>,
    dirs: HashMap<Vec<u8>, Rc<OwnedFd>>,
    written: Written,
    buf: Vec<u8>,
}

impl Unpacker<'_> {
    fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Open directory `comps` inside the layer, creating missing directories
    /// (0755 root:root) when `create`. Every lookup stays inside the root.
    fn dir(&mut self, comps: &[&[u8]], create: bool) -> Result<Rc<OwnedFd>> {
        let path = join(comps);
        if let Some(fd) = self.dirs.get(&path) {
            return Ok(fd.clone());
        }
        let fd = Rc::new(self.open_dir(comps, &path, create)?);
        if self.dirs.len() >= DIR_CACHE_MAX {
            self.dirs.clear();
        }
        self.dirs.insert(path, fd.clone());
        Ok(fd)
    }

    fn open_dir(&self, comps: &[&[u8]], path: &[u8], create: bool) -> Result<OwnedFd> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        match fs::openat2(self.root(), path, flags, IN_LAYER) {
            Ok(fd) => return Ok(fd),
            Err(libc::ENOENT) if create => {}
            Err(e) => return Err(Error::os(format!("open directory {:?} in layer", show(path)), e)),
        }
        let mut cur = fs::openat2(self.root(), b"", flags, IN_LAYER)
            .map_err(|e| Error::os("open layer root", e))?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            cur = match fs::openat2(self.root(), &prefix, flags, IN_LAYER) {
                Ok(fd) => fd,
                Err(libc::ENOENT) => {
                    match fs::mkdirat(cur.as_fd(), comps[i], 0o755) {
                        Ok(()) | Err(libc::EEXIST) => {}
                        Err(e) => return Err(Error::os(format!("mkdir {:?} in layer", show(&prefix)), e)),
                    }
                    fs::openat2(self.root(), &prefix, flags, IN_LAYER)
                        .map_err(|e| Error::os(format!("open directory {:?} in layer", show(&prefix)), e))?
                }
                Err(e) => return Err(Error::os(format!("open directory {:?} in layer", show(&prefix)), e)),
            };
        }
        Ok(cur)
    }

    /// Make room for a new entry `name` in `parent`. Returns true when an
    /// existing directory should be kept (directory over directory).
    fn clear_slot(&mut self, parent: BorrowedFd, name: &[u8], new_is_dir: bool, path: &[u8]) -> Result<bool> {
        match fs::fstatat(parent, name) {
            Err(libc::ENOENT) => Ok(false),
            Err(e) => Err(Error::os(format!("stat {:?}", show(path)), e)),
            Ok(st) => {
                let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                match (is_dir, new_is_dir) {
                    (true, true) => Ok(true),
                    (true, false) => crate::bail!("entry {:?} would replace a directory: refused", show(path)),
                    _ => {
                        fs::unlinkat(parent, name, false)?;
                        self.dirs.clear();
                        Ok(false)
                    }
                }
            }
        }
    }

    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let comps = components(&raw)?;
        let hdr = e.header().clone();
        let kind = hdr.entry_type();
        let mode = hdr.mode().ctx("tar header mode")? & 0o7777;
        let uid = u32::try_from(hdr.uid().ctx("tar header uid")?).map_err(|_| Error::msg("uid out of range"))?;
        let gid = u32::try_from(hdr.gid().ctx("tar header gid")?).map_err(|_| Error::msg("gid out of range"))?;
        let mtime = hdr.mtime().unwrap_or(0) as i64;

        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().ctx("tar pax header")? {
            for ext in pax {
                let ext = ext.ctx("tar pax record")?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    match xattr_policy(name) {
                        XattrPolicy::Keep => xattrs.push((name.to_string(), ext.value_bytes().to_vec())),
                        XattrPolicy::Drop => crate::warn!("layer entry {:?}: xattr {name} dropped", show(&raw)),
                        XattrPolicy::Refuse => crate::bail!("layer entry {:?}: xattr {name} refused", show(&raw)),
                    }
                }
            }
        }

        // The layer root itself ("./").
        let Some((&name, parent_comps)) = comps.split_last() else {
            if kind.is_dir() {
                let root = self.root.as_fd();
                fs::fchown(root, uid, gid)?;
                fs::fchmod(root, mode)?;
                for (k, v) in &xattrs {
                    self.written.xattrs_inherited |= k == ACL_DEFAULT;
                    fs::fsetxattr(root, k, v)?;
                }
                self.dir_times.push((Vec::new(), mtime));
                return Ok(());
            }
            crate::bail!("entry {:?} names the layer root", show(&raw));
        };

        // Whiteouts.
        if let Some(target) = name.strip_prefix(WH_PREFIX) {
            let parent = self.dir(parent_comps, true)?;
            if name == WH_OPAQUE {
                fs::fsetxattr(parent.as_fd(), OPAQUE_XATTR, b"y")
                    .with_ctx(|| format!("opaque marker {:?}", show(&raw)))?;
                return Ok(());
            }
            if target.is_empty() || target == b"." || target == b".." || target.starts_with(WH_PREFIX) {
                crate::bail!("whiteout {:?} refused", show(&raw));
            }
            if fs::fstatat(parent.as_fd(), target).is_ok() {
                // Whiteouts hide lower layers only; this layer's own entry stays.
                return Ok(());
            }
            fs::mknodat(parent.as_fd(), target, libc::S_IFCHR, 0)?;
            fs::lchown_at(parent.as_fd(), target, 0, 0)?;
            return Ok(());
        }

        let parent = self.dir(parent_comps, true)?;
        let p = parent.as_fd();
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                if !self.clear_slot(p, name, true, &raw)? {
                    fs::mkdirat(p, name, 0o700).map_err(|er| Error::os(format!("mkdir {:?}", show(&raw)), er))?;
                }
                let d = fs::openat(p, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                    .map_err(|er| Error::os(format!("open {:?}", show(&raw)), er))?;
                fs::fchown(d.as_fd(), uid, gid)?;
                fs::fchmod(d.as_fd(), mode)?;
                for (k, v) in &xattrs {
                    self.written.xattrs_inherited |= k == ACL_DEFAULT;
                    fs::fsetxattr(d.as_fd(), k, v).with_ctx(|| show(&raw))?;
                }
                self.dir_times.push((raw.clone(), mtime));
            }
            T::Regular | T::Continuous => {
                // Create first; only an existing name costs a stat + unlink.
                // The file is created with its permission bits (not the
                // special bits: those go on after the chown, which clears them).
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
                let f = match fs::openat(p, name, flags, mode & 0o777) {
                    Err(libc::EEXIST) => {
                        self.clear_slot(p, name, false, &raw)?;
                        fs::openat(p, name, flags, mode & 0o777)
                    }
                    r => r,
                }
                .map_err(|er| Error::os(format!("create {:?}", show(&raw)), er))?;
                let mut file = std::fs::File::from(f);
                let mut h = ContentHash::new();
                let mut size = 0u64;
                loop {
                    let n = match e.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(er) if er.kind() == io::ErrorKind::Interrupted => continue,
                        Err(er) => return Err(er).with_ctx(|| format!("write {:?}", show(&raw))),
                    };
                    h.update(&self.buf[..n]);
                    file.write_all(&self.buf[..n]).with_ctx(|| format!("write {:?}", show(&raw)))?;
                    size += n as u64;
                }
                file.flush().ctx("flush")?;
                if size >= EARLY_WRITEBACK && early_writeback() {
                    fs::start_writeback(file.as_fd());
                }
                // One fstat instead of an unconditional fchown + fchmod: a
                // file we create usually has the wanted owner and mode already.
                let st = fs::fstat(file.as_fd())?;
                let chowned = st.st_uid != uid || st.st_gid != gid;
                if chowned {
                    fs::fchown(file.as_fd(), uid, gid)?;
                }
                if chowned || st.st_mode & 0o7777 != mode {
                    fs::fchmod(file.as_fd(), mode)?;
                }
                for (k, v) in &xattrs {
                    fs::fsetxattr(file.as_fd(), k, v).with_ctx(|| show(&raw))?;
                }
                fs::futimes(file.as_fd(), mtime)?;
                if size != st.st_size as u64 {
                    crate::bail!("write {:?}: {} bytes written, file has {}", show(&raw), size, st.st_size);
                }
                let xattrs = xattrs.into_iter().collect();
                let f = WrittenFile { content: h.finish(), size, xattrs };
                self.written.files.insert((st.st_dev, st.st_ino), f);
            }
            T::Symlink => {
                let target = e.link_name_bytes().ok_or_else(|| Error::msg(format!("symlink {:?} without target", show(&raw))))?;
                if target.is_empty() {
                    crate::bail!("symlink {:?} with empty target", show(&raw));
                }
                if let Err(libc::EEXIST) = fs::symlinkat_raw(&target, p, name) {
                    self.clear_slot(p, name, false, &raw)?;
                    fs::symlinkat(&target, p, name)?;
                }
                fs::lchown_at(p, name, uid, gid)?;
                fs::utimes_at(p, name, mtime)?;
            }
            T::Link => {
                let target = e.link_name_bytes().ok_or_else(|| Error::msg(format!("hardlink {:?} without target", show(&raw))))?;
                let tcomps = components(&target)?;
                let Some((&tname, tparent)) = tcomps.split_last() else {
                    crate::bail!("hardlink {:?} to the layer root refused", show(&raw));
                };
                let tdir = self.dir(tparent, false).with_ctx(|| format!("hardlink {:?}", show(&raw)))?;
                let st = fs::fstatat(tdir.as_fd(), tname)
                    .map_err(|er| Error::os(format!("hardlink {:?} target {:?}", show(&raw), show(&target)), er))?;
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    crate::bail!("hardlink {:?} to directory {:?} refused", show(&raw), show(&target));
                }
                if st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0 {
                    crate::bail!("hardlink {:?} to a whiteout refused", show(&raw));
                }
                self.clear_slot(p, name, false, &raw)?;
                fs::linkat(tdir.as_fd(), tname, p, name)?;
            }
            T::Fifo | T::Char | T::Block => {
                let ft = match kind {
                    T::Fifo => libc::S_IFIFO,
                    T::Char => libc::S_IFCHR,
                    _ => libc::S_IFBLK,
                };
                let mut dev = 0;
                if kind != T::Fifo {
                    if !self.limits.allow_devices {
                        crate::bail!("device node {:?} refused (devices are not allowed in layers)", show(&raw));
                    }
                    let maj = hdr.device_major().ok().flatten().unwrap_or(0);
                    let min = hdr.device_minor().ok().flatten().unwrap_or(0);
                    if maj == 0 && min == 0 {
                        crate::bail!("device node {:?} is 0:0 (a raw overlay whiteout): refused", show(&raw));
                    }
                    dev = libc::makedev(maj, min);
                }
                self.clear_slot(p, name, false, &raw)?;
                fs::mknodat(p, name, ft, dev)?;
                fs::lchown_at(p, name, uid, gid)?;
                fs::chmod_at(p, name, mode)?;
                fs::utimes_at(p, name, mtime)?;
            }
            T::XGlobalHeader => {}
            other => crate::bail!("entry {:?}: unsupported tar entry type {:?}", show(&raw), other),
        }
        Ok(())
    }
}

/// Unpack one (already decompressed) layer tar stream into the directory `root`.
pub fn unpack<R: Read>(stream: R, root: &OwnedFd, limits: &Limits) -> Result<()> {
    unpack_written(stream, root, limits).map(|_| ())
}

/// [`unpack`], returning the content hashes of the regular files it wrote.
pub fn unpack_written<R: Read>(stream: R, root: &OwnedFd, limits: &Limits) -> Result<Written> {
    let mut ar = tar::Archive::new(stream);
    ar.set_ignore_zeros(false);
    let mut u = Unpacker {
        root,
        limits,
        dir_times: Vec::new(),
        dirs: HashMap::new(),
        written: Written::default(),
        buf: vec![0u8; WRITE_BUF],
    };
    // A default ACL already on the root (inherited from the store) is
    // inherited further by everything created below it.
    u.written.xattrs_inherited = fs::fxattrs(root.as_fd())?.iter().any(|(k, _)| k == ACL_DEFAULT);
    let mut count = 0u64;
    for e in ar.entries().ctx("read layer tar")? {
        let e = e.ctx("read layer tar")?;
        count += 1;
        if count > limits.max_entries {
            crate::bail!("layer has more than {} entries: refused", limits.max_entries);
        }
        u.entry(e)?;
    }
    // Directory mtimes last: creating children changed them.
    let dir_times = std::mem::take(&mut u.dir_times);
    for (path, t) in dir_times.iter().rev() {
        let comps = components(path)?;
        match comps.split_last() {
            None => fs::utimes_at(root.as_fd(), b"", *t)?,
            Some((name, parent)) => {
                let d = u.dir(parent, false)?;
                fs::utimes_at(d.as_fd(), name, *t)?;
            }
        }
    }
    Ok(u.written)
}
