//! OCI images: verified import, a shared layer store in overlay form, drift
//! detection and bundles.
//!
//! Entry points:
//! - [`Store::open`], [`Store::import`], [`Store::list`], [`Store::get`],
//!   [`Store::remove`], [`Store::gc`], [`Store::verify`]
//! - [`bundle::create_bundle`] writes `DIR/config.json` (+ `DIR/rootfs`)
//! - [`overlay_root_mount`]: the runtime's read-only overlay root, by fd
//! - [`verify_bundle`]: drift check for `stele verify --bundle DIR`

pub mod bundle;
pub mod digest;
pub(crate) mod fs;
pub mod source;
pub mod store;
pub mod tree;
pub mod unpack;

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

pub use digest::Digest;
pub use source::ImageRef;
pub use store::{GcReport, ImageRecord, ImportOptions, LayerRecord, Report, Store, DEFAULT_STORE};
pub use tree::Drift;
pub use unpack::Limits;

use crate::error::{Context, Error, Result};

/// Store layer directories of the bundle's image, lowest first, joined by `:`.
pub const ANN_LAYERS: &str = "dev.stele.image.layers";
/// Manifest digest of the bundle's image.
pub const ANN_DIGEST: &str = "dev.stele.image.digest";
/// Config digest of the bundle's image.
pub const ANN_CONFIG: &str = "dev.stele.image.config";
/// Tree digest of a flattened rootfs (`bundle create --flatten`).
pub const ANN_FLAT_TREE: &str = "dev.stele.image.flat-tree";

/// Parse [`ANN_LAYERS`]: absolute directories, lowest first.
pub fn layer_dirs(annotations: &HashMap<String, String>) -> Result<Option<Vec<PathBuf>>> {
    let Some(v) = annotations.get(ANN_LAYERS) else { return Ok(None) };
    let dirs: Vec<PathBuf> = v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect();
    if dirs.is_empty() {
        crate::bail!("annotation {ANN_LAYERS} is empty");
    }
    for d in &dirs {
        if !d.is_absolute() {
            crate::bail!("annotation {ANN_LAYERS}: layer directory {} is not absolute", d.display());
        }
    }
    Ok(Some(dirs))
}

/// Open the layer directories named in [`ANN_LAYERS`] by fd, each only if it
/// is a layer of `store`: the path must be `STORE/layers/<algo>-<hex>/root`
/// exactly (no `..`, no symlinked component), resolved beneath an fd of the
/// store with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`. Anything else names the
/// annotation in the error: a bundle cannot stack arbitrary host directories.
pub fn open_layer_dirs(dirs: &[PathBuf], store: &Path) -> Result<Vec<OwnedFd>> {
    use std::os::unix::ffi::OsStrExt;
    let abs = if store.is_absolute() {
        store.to_path_buf()
    } else {
        std::env::current_dir().ctx("current directory")?.join(store)
    };
    let canon = std::fs::canonicalize(&abs).unwrap_or_else(|_| abs.clone());
    let storefd = fs::open_dir_path(&canon).with_ctx(|| format!("annotation {ANN_LAYERS}: open layer store"))?;
    let mut out = Vec::with_capacity(dirs.len());
    for d in dirs {
        let refuse = |why: &str| {
            Error::msg(format!(
                "annotation {ANN_LAYERS}: layer directory {} {why} (store {}); bundles from `stele bundle create` only name store layers",
                d.display(),
                canon.display()
            ))
        };
        let rel = d.strip_prefix(&canon).or_else(|_| d.strip_prefix(&abs)).map_err(|_| refuse("is not inside the layer store"))?;
        let comps: Vec<&[u8]> = rel.iter().map(|c| c.as_bytes()).collect();
        let key_ok = |k: &[u8]| {
            let k = String::from_utf8_lossy(k);
            k.split_once('-').is_some_and(|(a, h)| Digest::parse(&format!("{a}:{h}")).is_ok())
        };
        if comps.len() != 3 || comps[0] != b"layers" || !key_ok(comps[1]) || comps[2] != b"root" {
            return Err(refuse("is not a store layer (STORE/layers/<digest>/root)"));
        }
        let rel_b = rel.as_os_str().as_bytes();
        let fd = fs::openat2(storefd.as_fd(), rel_b, libc::O_PATH | libc::O_DIRECTORY, fs::RESOLVE_BENEATH | fs::RESOLVE_NO_SYMLINKS | fs::RESOLVE_NO_MAGICLINKS | fs::RESOLVE_NO_XDEV)
            .map_err(|e| Error::os(format!("annotation {ANN_LAYERS}: open layer {} beneath the store", d.display()), e))?;
        out.push(fd);
    }
    Ok(out)
}

/// Build the container's read-only root from the image layers named in the
/// bundle annotations: an overlay with one `lowerdir+` per layer (passed by
/// fd, top layer first), no upper dir, mounted detached with
/// `MOUNT_ATTR_RDONLY|NOSUID|NODEV`. A single-layer image is a detached
/// read-only bind mount of its layer instead (same attributes). Every layer
/// must be a layer of `store` (see [`open_layer_dirs`]). Returns `None` when
/// the bundle has no [`ANN_LAYERS`] annotation (plain rootfs). The caller
/// `move_mount`s the fd.
pub fn overlay_root_mount(annotations: &HashMap<String, String>, store: &Path) -> Result<Option<OwnedFd>> {
    let Some(dirs) = layer_dirs(annotations)? else { return Ok(None) };
    let fds = open_layer_dirs(&dirs, store)?;
    use crate::sys::{self, FsContext};
    use std::os::fd::AsRawFd;
    let attrs = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
    if let [only] = fds.as_slice() {
        // Overlay needs two lower layers when it has no upper: bind the one layer.
        let what = format!("layer {}", dirs[0].display());
        let m = sys::open_tree_fd(only.as_raw_fd(), false, &what)?;
        sys::mount_setattr(m.as_raw_fd(), false, attrs, 0, 0, &what)?;
        return Ok(Some(m));
    }
    let ovl = FsContext::new("overlay")?;
    ovl.set_string("source", "stele")?;
    // Overlay takes lower layers top-most first.
    for (d, fd) in dirs.iter().zip(&fds).rev() {
        ovl.set_fd("lowerdir+", fd.as_raw_fd()).with_ctx(|| format!("overlay layer {}", d.display()))?;
    }
    let m = ovl.mount(attrs).ctx("create overlay root")?;
    Ok(Some(m))
}

/// Check a bundle made by `stele bundle create` for drift: every layer
/// directory of [`ANN_LAYERS`] against its recorded tree, or a flattened
/// `rootfs` against the tree recorded beside it.
pub fn verify_bundle(dir: &Path) -> Result<Report> {
    let cp = dir.join("config.json");
    let b = std::fs::read(&cp).with_ctx(|| format!("read {}", cp.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&b).map_err(|e| Error::msg(format!("{}: {e}", cp.display())))?;
    let ann: HashMap<String, String> = v
        .get("annotations")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default();
    let mut rep = Report::default();
    if let Some(dirs) = layer_dirs(&ann)? {
        for d in dirs {
            store::verify_layer_dir(&d, None, &mut rep)?;
        }
        return Ok(rep);
    }
    if let Some(exp) = ann.get(ANN_FLAT_TREE) {
        let recorded = tree::parse(&std::fs::read_to_string(dir.join(bundle::FLAT_TREE_FILE)).ctx("read recorded tree")?)?;
        if tree::digest(&recorded).to_string() != *exp {
            crate::bail!("{}: recorded tree does not match annotation {ANN_FLAT_TREE}", dir.display());
        }
        let root = dir.join("rootfs");
        let now = tree::scan_path(&root)?;
        rep.drift.extend(tree::diff(&recorded, &now).into_iter().map(|d| (root.clone(), d)));
        rep.checked.push(root);
        return Ok(rep);
    }
    crate::bail!("{}: not a bundle created from an image (no {ANN_LAYERS} annotation)", dir.display())
}
