//! stele's immutability rule, in one place, as a pure function of the
//! validated spec and what the rootfs is. It runs before anything is
//! created or mounted, so a refused config leaves nothing behind.

use crate::error::Result;
use crate::bail;
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// Annotation asking for the host's own root, read-only, as the rootfs
/// (`run --image host`); root.path is then only an empty mountpoint.
pub const HOST_ROOT_ANNOTATION: &str = "dev.stele.host-root";

/// Annotation with which a user opts out, for a runc-style mutable rootfs.
pub const MUTABLE_ROOTFS_ANNOTATION: &str = "dev.stele.mutable-rootfs";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootfsKind {
    /// A plain directory: writing to it writes the image.
    PlainDir,
    /// An overlay with its own upper layer (what containerd, podman and
    /// Docker hand over): writes land in the upper layer, never the image.
    OverlayWithUpper,
    /// stele's own read-only overlay of store layers (image mode).
    ImageLayers,
    /// The host's own root (`run --image host`): read-only, never an image.
    Host,
}

impl RootfsKind {
    /// May the runtime create missing mountpoints in the rootfs? Only where
    /// writes land in a layer of their own, or the user opted out.
    pub fn may_create_mountpoints(self, spec: &Spec) -> bool {
        self == RootfsKind::OverlayWithUpper || annotation(spec, MUTABLE_ROOTFS_ANNOTATION) == Some("true")
    }
}

/// Look at the rootfs (one statfs + statvfs).
pub fn rootfs_kind(spec: &Spec, rootfs: &Path, has_image_layers: bool) -> RootfsKind {
    if has_image_layers {
        return RootfsKind::ImageLayers;
    }
    if annotation(spec, HOST_ROOT_ANNOTATION) == Some("true") {
        return RootfsKind::Host;
    }
    const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
    match nix::sys::statfs::statfs(rootfs) {
        Ok(s) if s.filesystem_type().0 as i64 == OVERLAYFS_SUPER_MAGIC => {
            let ro = nix::sys::statvfs::statvfs(rootfs)
                .map(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
                .unwrap_or(true);
            if ro {
                RootfsKind::PlainDir
            } else {
                RootfsKind::OverlayWithUpper
            }
        }
        _ => RootfsKind::PlainDir,
    }
}

fn annotation<'a>(spec: &'a Spec, key: &str) -> Option<&'a str> {
    spec.annotations().as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

fn lexical_inside(path: &Path, dir: &Path) -> bool {
    let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let d = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    p.starts_with(&d)
}

/// The immutability rule. `store` is the layer store directory.
pub fn check(spec: &Spec, bundle: &Path, rootfs: &Path, kind: RootfsKind, store: &Path) -> Result<()> {
    let readonly = spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false);
    let opted_out = annotation(spec, MUTABLE_ROOTFS_ANNOTATION) == Some("true");
    if !readonly && !opted_out {
        match kind {
            RootfsKind::OverlayWithUpper => {}
            RootfsKind::Host => bail!("root.readonly: false would let the container write to the host's root; the host root is only ever mounted read-only"),
            RootfsKind::PlainDir | RootfsKind::ImageLayers => bail!(
                "root.readonly: false would let the container change the image files in {}; \
                 set root.readonly to true (with tmpfs mounts for what must be writable), \
                 hand over an overlay with its own upper layer, or set the annotation \
                 {MUTABLE_ROOTFS_ANNOTATION}=\"true\" for a runc-style mutable rootfs",
                rootfs.display()
            ),
        }
    }
    let protect_rootfs = matches!(kind, RootfsKind::PlainDir | RootfsKind::ImageLayers) && !opted_out;
    for (i, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        let opts = m.options().as_deref().unwrap_or(&[]);
        let is_bind = m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        if !is_bind {
            continue;
        }
        let ro = opts.iter().rev().find(|o| *o == "ro" || *o == "rw").is_some_and(|o| o == "ro");
        if ro {
            continue;
        }
        let Some(src) = m.source() else { continue };
        let src: PathBuf = if src.is_absolute() { src.clone() } else { bundle.join(src) };
        // A source inside the rootfs, or one that contains it (e.g. the
        // bundle directory: a non-recursive bind shows the image files
        // under the container's read-only root mount), exposes the image.
        if protect_rootfs && (lexical_inside(&src, rootfs) || lexical_inside(rootfs, &src)) {
            bail!(
                "mounts[{i}]: a writable bind of {} would expose image files inside the rootfs; add \"ro\" to its options",
                src.display()
            );
        }
        if lexical_inside(&src, store) {
            bail!(
                "mounts[{i}]: a writable bind of {} would expose the layer store; add \"ro\" to its options",
                src.display()
            );
        }
    }
    Ok(())
}
