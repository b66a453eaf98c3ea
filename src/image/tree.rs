//! Deterministic tree digest of a layer directory, for drift detection.
//!
//! One record per path (the root is `.`), sorted by path bytes:
//! `path TAB type TAB mode TAB uid TAB gid TAB size TAB content TAB xattrs`
//! - type: `d f l c b p s`; mode: octal permission bits incl. setuid/sticky
//! - content: `blake3:` and the BLAKE3 hex of a regular file's bytes (see
//!   [`ContentHash`]), the target of a symlink, `major:minor` of a device, `-` otherwise
//! - xattrs: `name=hexvalue` joined by `,` (allowlisted + `trusted.overlay.opaque`), `-` if none
//!
//! Paths and symlink targets are escaped: bytes outside `!`..`~` and `%` become `%XX`.
//! mtimes are not part of the digest. The digest is `sha256:` over all records,
//! each followed by `\n`.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::digest::{to_hex, Digest};
use super::fs::{self, show};
use super::unpack::{xattr_policy, Written, XattrPolicy, OPAQUE_XATTR};
use crate::error::{Context, Error, Result};

pub fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if (b'!'..=b'~').contains(&c) && c != b'%' {
            s.push(c as char);
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

/// The content hash of a regular file in its record. BLAKE3 (a
/// cryptographic hash, several times SHA-256's speed with SIMD): an import
/// computes it over every byte it writes, a verify over every byte on disk.
/// The digest over the records, and every OCI digest, stay SHA-256.
#[derive(Default)]
pub struct ContentHash(blake3::Hasher);

impl ContentHash {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, b: &[u8]) {
        self.0.update(b);
    }
    /// The record's content field: `blake3:<hex>`.
    pub fn finish(&self) -> String {
        format!("blake3:{}", self.0.finalize().to_hex())
    }
}

/// Path → record (the part after the path).
pub type Tree = BTreeMap<String, String>;

fn record(dir: BorrowedFd, name: &[u8], st: &libc::stat, known: &Written) -> Result<String> {
    let fmt = st.st_mode & libc::S_IFMT;
    let t = match fmt {
        libc::S_IFDIR => 'd',
        libc::S_IFREG => 'f',
        libc::S_IFLNK => 'l',
        libc::S_IFCHR => 'c',
        libc::S_IFBLK => 'b',
        libc::S_IFIFO => 'p',
        _ => 's',
    };
    let mut size = 0u64;
    let mut content = "-".to_string();
    let mut xattrs = Vec::new();
    let known_file = if fmt == libc::S_IFREG { known.files.get(&(st.st_dev, st.st_ino)) } else { None };
    let known_file = known_file.filter(|f| f.size == st.st_size as u64);
    match fmt {
        // A file this unpack wrote: content and xattrs as written; no open.
        libc::S_IFREG if known_file.is_some() && !known.xattrs_inherited => {
            if let Some(f) = known_file {
                size = f.size;
                content = f.content.clone();
                for (k, v) in &f.xattrs {
                    if k == OPAQUE_XATTR || xattr_policy(k) == XattrPolicy::Keep {
                        xattrs.push(format!("{k}={}", to_hex(v)));
                    }
                }
            }
        }
        libc::S_IFREG | libc::S_IFDIR => {
            let flags = libc::O_RDONLY | libc::O_NOFOLLOW | if fmt == libc::S_IFDIR { libc::O_DIRECTORY } else { 0 };
            let fd = fs::openat(dir, if name.is_empty() { b"." } else { name }, flags, 0)
                .map_err(|e| Error::os(format!("open {:?}", show(name)), e))?;
            if let Some(f) = known_file {
                size = f.size;
                content = f.content.clone();
            } else if fmt == libc::S_IFREG {
                size = st.st_size as u64;
                let mut f = std::fs::File::from(fd.try_clone().ctx("dup")?);
                let mut h = ContentHash::new();
                h.0.update_reader(&mut f).with_ctx(|| format!("read {:?}", show(name)))?;
                content = h.finish();
            }
            for (k, v) in fs::fxattrs(fd.as_fd())? {
                if k == OPAQUE_XATTR || xattr_policy(&k) == XattrPolicy::Keep {
                    xattrs.push(format!("{k}={}", to_hex(&v)));
                }
            }
        }
        libc::S_IFLNK => {
            let c = fs::cstr(name)?;
            let mut buf = vec![0u8; 4096];
            // SAFETY: buffer pointer and length match.
            let n = unsafe { libc::readlinkat(std::os::fd::AsRawFd::as_raw_fd(&dir), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                return Err(Error::os(format!("readlink {:?}", show(name)), fs::errno()));
            }
            buf.truncate(n as usize);
            content = escape(&buf);
        }
        libc::S_IFCHR | libc::S_IFBLK => {
            content = format!("{}:{}", libc::major(st.st_rdev), libc::minor(st.st_rdev));
        }
        _ => {}
    }
    let x = if xattrs.is_empty() { "-".to_string() } else { xattrs.join(",") };
    Ok(format!("{t}\t{:o}\t{}\t{}\t{size}\t{content}\t{x}", st.st_mode & 0o7777, st.st_uid, st.st_gid))
}

fn walk(dir: &OwnedFd, prefix: &[u8], out: &mut Tree, known: &Written) -> Result<()> {
    for name in fs::read_dir(dir.as_fd())? {
        let st = fs::fstatat(dir.as_fd(), &name).map_err(|e| Error::os(format!("stat {:?}", show(&name)), e))?;
        let mut path = prefix.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        out.insert(escape(&path), record(dir.as_fd(), &name, &st, known)?);
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let sub = fs::openat(dir.as_fd(), &name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                .map_err(|e| Error::os(format!("open {:?}", show(&path)), e))?;
            walk(&sub, &path, out, known)?;
        }
    }
    Ok(())
}

/// Scan a directory tree (by fd) into canonical records.
pub fn scan(root: &OwnedFd) -> Result<Tree> {
    scan_known(root, &Written::default())
}

/// [`scan`], taking the content of regular files from `known` (hashed while
/// [`super::unpack::unpack_written`] wrote them into this tree) instead of
/// reading them back. A file whose inode is not there, or whose size
/// differs, is read and hashed.
pub fn scan_known(root: &OwnedFd, known: &Written) -> Result<Tree> {
    let mut out = Tree::new();
    let st = fs::fstat(root.as_fd())?;
    out.insert(".".to_string(), record(root.as_fd(), b"", &st, known)?);
    walk(root, b"", &mut out, known)?;
    Ok(out)
}

pub fn scan_path(path: &std::path::Path) -> Result<Tree> {
    let fd = fs::open_dir_path(path)?;
    scan(&fd)
}

/// The records as text, one `path TAB record` per line.
pub fn serialize(t: &Tree) -> String {
    let mut s = String::new();
    for (p, r) in t {
        s.push_str(p);
        s.push('\t');
        s.push_str(r);
        s.push('\n');
    }
    s
}

pub fn parse(s: &str) -> Result<Tree> {
    let mut t = Tree::new();
    for line in s.lines() {
        let (p, r) = line.split_once('\t').ok_or_else(|| Error::msg("corrupt tree record"))?;
        t.insert(p.to_string(), r.to_string());
    }
    Ok(t)
}

pub fn digest(t: &Tree) -> Digest {
    Digest::sha256_of(serialize(t).as_bytes())
}

/// One drifted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    Added(String),
    Removed(String),
    Changed { path: String, was: String, now: String },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Added(p) => write!(f, "added {p}"),
            Drift::Removed(p) => write!(f, "removed {p}"),
            Drift::Changed { path, was, now } => write!(f, "changed {path}: [{was}] -> [{now}]"),
        }
    }
}

pub fn diff(recorded: &Tree, now: &Tree) -> Vec<Drift> {
    let mut out = Vec::new();
    for (p, r) in recorded {
        match now.get(p) {
            None => out.push(Drift::Removed(p.clone())),
            Some(n) if n != r => out.push(Drift::Changed { path: p.clone(), was: r.clone(), now: n.clone() }),
            _ => {}
        }
    }
    for p in now.keys() {
        if !recorded.contains_key(p) {
            out.push(Drift::Added(p.clone()));
        }
    }
    out
}
