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

/// Build the container's read-only root from the image layers named in the
/// bundle annotations: an overlay with one `lowerdir+` per layer (passed by
/// fd, top layer first), no upper dir, mounted detached with
/// `MOUNT_ATTR_RDONLY|NOSUID|NODEV`. A single-layer image is a detached
/// read-only bind mount of its layer instead (same attributes). Returns `None` when the bundle has no
/// [`ANN_LAYERS`] annotation (plain rootfs). The caller `move_mount`s the fd.
pub fn overlay_root_mount(annotations: &HashMap<String, String>) -> Result<Option<OwnedFd>> {
    let Some(dirs) = layer_dirs(annotations)? else { return Ok(None) };
    let attrs = fs::MOUNT_ATTR_RDONLY | fs::MOUNT_ATTR_NOSUID | fs::MOUNT_ATTR_NODEV;
    if let [only] = dirs.as_slice() {
        // Overlay needs two lower layers when it has no upper: bind the one layer.
        let d = fs::open_dir_path(only)?;
        return fs::bind_detached(d.as_fd(), attrs).with_ctx(|| format!("bind layer {}", only.display())).map(Some);
    }
    let fsfd = fs::fsopen("overlay")?;
    fs::fsconfig_string(fsfd.as_fd(), "source", "stele")?;
    // Overlay takes lower layers top-most first.
    for d in dirs.iter().rev() {
        use std::os::unix::ffi::OsStrExt;
        let c = fs::cstr(d.as_os_str().as_bytes())?;
        // SAFETY: valid C string.
        let r = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if r < 0 {
            return Err(Error::os(format!("open layer {}", d.display()), fs::errno()));
        }
        // SAFETY: fresh fd we own.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r) };
        fs::fsconfig_fd(fsfd.as_fd(), "lowerdir+", fd.as_fd()).with_ctx(|| format!("overlay layer {}", d.display()))?;
    }
    fs::fsconfig_create(fsfd.as_fd()).ctx("create overlay root")?;
    let m = fs::fsmount(fsfd.as_fd(), attrs)?;
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
