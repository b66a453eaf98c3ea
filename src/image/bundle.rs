//! `stele bundle create --image REF DIR`: an OCI bundle whose root is the
//! image's store layers (stacked by [`super::overlay_root_mount`]) or, with
//! `flatten`, a plain copy of the merged tree in `DIR/rootfs`.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::fs::{self, show};
use super::source::ImageRef;
use super::store::{ImageRecord, ImportOptions, Store};
use super::unpack::OPAQUE_XATTR;
use super::{tree, ANN_CONFIG, ANN_DIGEST, ANN_FLAT_TREE, ANN_LAYERS};
use crate::error::{Context, Error, Result};

/// Tree records of a flattened rootfs, beside `rootfs/` in the bundle.
pub const FLAT_TREE_FILE: &str = "rootfs.tree";

pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    pub flatten: bool,
}

/// Find an image by name in the store, importing `reference` first when it
/// is a transport reference not yet stored under that name.
pub fn image_for(store: &Store, reference: &str) -> Result<ImageRecord> {
    match store.get(reference) {
        Ok(r) => Ok(r),
        Err(e) if ImageRef::parse(reference).is_err() => Err(e),
        Err(_) => store.import(reference, &ImportOptions { name: Some(reference.to_string()), ..Default::default() }),
    }
}

/// Read a file of the merged image (top layer first, honouring whiteouts and
/// opaque directories). Symlinks are not followed: used for /etc/passwd, /etc/group.
fn image_file(layers: &[PathBuf], path: &str) -> Result<Option<Vec<u8>>> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    'layers: for l in layers.iter().rev() {
        let mut dir = fs::open_dir_path(l)?;
        for (i, c) in comps.iter().enumerate() {
            let st = match fs::fstatat(dir.as_fd(), c.as_bytes()) {
                Ok(st) => st,
                Err(_) => continue 'layers,
            };
            let fmt = st.st_mode & libc::S_IFMT;
            if fmt == libc::S_IFCHR && st.st_rdev == 0 {
                return Ok(None); // whited out
            }
            if i + 1 == comps.len() {
                if fmt != libc::S_IFREG {
                    return Ok(None);
                }
                let f = fs::openat(dir.as_fd(), c.as_bytes(), libc::O_RDONLY | libc::O_NOFOLLOW, 0)
                    .map_err(|e| Error::os(format!("open {path} in image"), e))?;
                let mut b = Vec::new();
                std::fs::File::from(f).take(4 << 20).read_to_end(&mut b).with_ctx(|| format!("read {path} in image"))?;
                return Ok(Some(b));
            }
            if fmt != libc::S_IFDIR {
                continue 'layers;
            }
            let sub = fs::openat(dir.as_fd(), c.as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                .map_err(|e| Error::os(format!("open {path} in image"), e))?;
            let opaque = fs::fxattrs(sub.as_fd())?.iter().any(|(k, v)| k == OPAQUE_XATTR && v == b"y");
            dir = sub;
            if opaque && i + 1 < comps.len() {
                // Lower layers are hidden below this directory.
                if fs::fstatat(dir.as_fd(), comps[i + 1].as_bytes()).is_err() {
                    return Ok(None);
                }
            }
        }
    }
    Ok(None)
}

/// The process user for an image `User` string, resolved like Docker does:
/// `name|uid[:group|gid]`, names looked up in the image's /etc/passwd and /etc/group.
pub fn resolve_user(layers: &[PathBuf], user: &str) -> Result<(u32, u32, Vec<u32>)> {
    let passwd = String::from_utf8_lossy(&image_file(layers, "etc/passwd")?.unwrap_or_default()).into_owned();
    let group = String::from_utf8_lossy(&image_file(layers, "etc/group")?.unwrap_or_default()).into_owned();
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let pw: Vec<Vec<&str>> = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 4).collect();
    let gr: Vec<Vec<&str>> = group.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 3).collect();
    let (uid, mut gid, uname) = if u.is_empty() {
        (0, 0, Some("root".to_string()))
    } else if let Some(e) = pw.iter().find(|f| f[0] == u) {
        (e[2].parse().map_err(|_| Error::msg(format!("bad uid for {u} in /etc/passwd")))?, e[3].parse().unwrap_or(0), Some(u.to_string()))
    } else if let Ok(n) = u.parse::<u32>() {
        match pw.iter().find(|f| f[2] == u) {
            Some(e) => (n, e[3].parse().unwrap_or(0), Some(e[0].to_string())),
            None => (n, 0, None),
        }
    } else {
        crate::bail!("image user {u:?} not found in the image's /etc/passwd");
    };
    if let Some(g) = g {
        gid = if let Some(e) = gr.iter().find(|f| f[0] == g) {
            e[2].parse().map_err(|_| Error::msg(format!("bad gid for {g} in /etc/group")))?
        } else if let Ok(n) = g.parse::<u32>() {
            n
        } else {
            crate::bail!("image group {g:?} not found in the image's /etc/group");
        };
    }
    let mut extra = Vec::new();
    if let (Some(name), None) = (&uname, g) {
        for f in &gr {
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid && !extra.contains(&n) {
                        extra.push(n);
                    }
                }
            }
        }
    }
    Ok((uid, gid, extra))
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// Build config.json (as JSON) for an image.
pub fn bundle_config(img: &ImageRecord, config: &[u8], layers: &[PathBuf], annotations: Vec<(String, String)>) -> Result<Value> {
    let cfg: Value = serde_json::from_slice(config).map_err(|e| Error::msg(format!("config {}: {e}", img.config_digest)))?;
    let c = cfg.get("config").cloned().unwrap_or(Value::Null);
    let mut args = strs(c.get("Entrypoint"));
    args.extend(strs(c.get("Cmd")));
    if args.is_empty() {
        crate::bail!("image {}: no Entrypoint or Cmd", img.name);
    }
    let mut env = strs(c.get("Env"));
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let cwd = c.get("WorkingDir").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("/");
    if !cwd.starts_with('/') {
        crate::bail!("image {}: WorkingDir {cwd:?} is not absolute", img.name);
    }
    let (uid, gid, extra) = resolve_user(layers, c.get("User").and_then(Value::as_str).unwrap_or(""))?;
    let mut mounts = crate::spec::kernel_mounts();
    let mut vols: Vec<String> = c.get("Volumes").and_then(Value::as_object).map(|o| o.keys().cloned().collect()).unwrap_or_default();
    vols.sort();
    for v in vols {
        if !v.starts_with('/') {
            crate::bail!("image {}: volume {v:?} is not absolute", img.name);
        }
        mounts.push(json!({"destination": v, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]}));
    }
    let ann: serde_json::Map<String, Value> = annotations.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    Ok(json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid, "additionalGids": extra},
            "args": args, "env": env, "cwd": cwd,
            "capabilities": {"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "stele",
        "mounts": mounts,
        "annotations": ann,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    }))
}

/// Write DIR/config.json and DIR/rootfs for image `reference` (a stored
/// name, or a transport reference that is imported first).
pub fn create_bundle(store: &Store, reference: &str, dir: &Path, opts: &BundleOptions) -> Result<ImageRecord> {
    let img = image_for(store, reference)?;
    let config = store.config(&img)?;
    let layers: Vec<PathBuf> = img.layers.iter().map(|l| store.layer_dir(&l.diff_id)).collect::<Result<_>>()?;
    for l in &layers {
        if !l.is_dir() {
            crate::bail!("image {}: layer {} missing from the store", img.name, l.display());
        }
    }
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).with_ctx(|| format!("create {}", rootfs.display()))?;
    if std::fs::read_dir(&rootfs).ctx("read rootfs")?.next().is_some() {
        crate::bail!("{} is not empty", rootfs.display());
    }
    let mut ann = vec![
        (ANN_DIGEST.to_string(), img.manifest_digest.clone()),
        (ANN_CONFIG.to_string(), img.config_digest.clone()),
        ("org.opencontainers.image.ref.name".to_string(), img.name.clone()),
    ];
    if opts.flatten {
        let dst = fs::open_dir_path(&rootfs)?;
        for l in &layers {
            let src = fs::open_dir_path(l)?;
            apply_layer(src.as_fd(), dst.as_fd(), b"")?;
        }
        let t = tree::scan(&dst)?;
        std::fs::write(dir.join(FLAT_TREE_FILE), tree::serialize(&t)).ctx("write rootfs tree")?;
        ann.push((ANN_FLAT_TREE.to_string(), tree::digest(&t).to_string()));
    } else {
        let joined: Vec<String> = layers.iter().map(|l| l.display().to_string()).collect();
        if joined.iter().any(|l| l.contains(':')) {
            crate::bail!("store path contains ':' and cannot be listed in {ANN_LAYERS}");
        }
        ann.push((ANN_LAYERS.to_string(), joined.join(":")));
    }
    ann.sort();
    let v = bundle_config(&img, &config, &layers, ann)?;
    let mut out = serde_json::to_vec_pretty(&v).map_err(|e| Error::msg(e.to_string()))?;
    out.push(b'\n');
    std::fs::write(dir.join("config.json"), out).with_ctx(|| format!("write {}/config.json", dir.display()))?;
    Ok(img)
}

fn copy_meta(dst: BorrowedFd, fd: Option<BorrowedFd>, name: &[u8], st: &libc::stat, src_fd: Option<BorrowedFd>) -> Result<()> {
    let (uid, gid, mode) = (st.st_uid, st.st_gid, st.st_mode & 0o7777);
    match fd {
        Some(f) => {
            fs::fchown(f, uid, gid)?;
            fs::fchmod(f, mode)?;
            if let Some(s) = src_fd {
                for (k, v) in fs::fxattrs(s)? {
                    if !k.starts_with("trusted.overlay.") {
                        fs::fsetxattr(f, &k, &v)?;
                    }
                }
            }
        }
        None => {
            fs::lchown_at(dst, name, uid, gid)?;
            if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
                fs::chmod_at(dst, name, mode)?;
            }
        }
    }
    fs::utimes_at(dst, name, st.st_mtime)
}

fn remove_entry(dst: BorrowedFd, name: &[u8]) -> Result<()> {
    match fs::fstatat(dst, name) {
        Err(_) => Ok(()),
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
            let d = fs::openat(dst, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                .map_err(|e| Error::os(format!("open {}", show(name)), e))?;
            fs::clear_dir(d.as_fd())?;
            fs::unlinkat(dst, name, true)
        }
        Ok(_) => fs::unlinkat(dst, name, false),
    }
}

/// Apply one overlay-form layer onto a plain directory (for `--flatten`).
/// Hardlinks become separate copies.
fn apply_layer(src: BorrowedFd, dst: BorrowedFd, prefix: &[u8]) -> Result<()> {
    for name in fs::read_dir(src)? {
        let st = fs::fstatat(src, &name).map_err(|e| Error::os(format!("stat {}", show(&name)), e))?;
        let fmt = st.st_mode & libc::S_IFMT;
        if fmt == libc::S_IFCHR && st.st_rdev == 0 {
            remove_entry(dst, &name)?;
            continue;
        }
        let path = [prefix, &name].concat();
        if fmt == libc::S_IFDIR {
            let s = fs::openat(src, &name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                .map_err(|e| Error::os(format!("open {}", show(&path)), e))?;
            let opaque = fs::fxattrs(s.as_fd())?.iter().any(|(k, v)| k == OPAQUE_XATTR && v == b"y");
            match fs::fstatat(dst, &name) {
                Ok(d) if d.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                Ok(_) => fs::unlinkat(dst, &name, false)?,
                Err(_) => {}
            }
            if fs::fstatat(dst, &name).is_err() {
                fs::mkdirat(dst, &name, 0o700).map_err(|e| Error::os(format!("mkdir {}", show(&path)), e))?;
            }
            let d: OwnedFd = fs::openat(dst, &name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                .map_err(|e| Error::os(format!("open {}", show(&path)), e))?;
            if opaque {
                fs::clear_dir(d.as_fd())?;
            }
            let mut sub = path.clone();
            sub.push(b'/');
            apply_layer(s.as_fd(), d.as_fd(), &sub)?;
            copy_meta(dst, Some(d.as_fd()), &name, &st, Some(s.as_fd()))?;
            continue;
        }
        remove_entry(dst, &name)?;
        match fmt {
            libc::S_IFREG => {
                let s = fs::openat(src, &name, libc::O_RDONLY | libc::O_NOFOLLOW, 0).map_err(|e| Error::os(format!("open {}", show(&path)), e))?;
                let d = fs::openat(dst, &name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, 0o600)
                    .map_err(|e| Error::os(format!("create {}", show(&path)), e))?;
                let (mut sf, mut df) = (std::fs::File::from(s), std::fs::File::from(d));
                std::io::copy(&mut sf, &mut df).with_ctx(|| format!("copy {}", show(&path)))?;
                copy_meta(dst, Some(df.as_fd()), &name, &st, Some(sf.as_fd()))?;
            }
            libc::S_IFLNK => {
                let c = fs::cstr(&name)?;
                let mut buf = vec![0u8; 4096];
                // SAFETY: buffer pointer and length match.
                let n = unsafe { libc::readlinkat(std::os::fd::AsRawFd::as_raw_fd(&src), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    return Err(Error::os(format!("readlink {}", show(&path)), fs::errno()));
                }
                buf.truncate(n as usize);
                fs::symlinkat(&buf, dst, &name)?;
                copy_meta(dst, None, &name, &st, None)?;
            }
            _ => {
                fs::mknodat(dst, &name, fmt, st.st_rdev)?;
                copy_meta(dst, None, &name, &st, None)?;
            }
        }
    }
    Ok(())
}
