//! Hostile layers: each is refused or contained inside the layer, and the
//! host directory the layer aims at is checked afterwards.
mod image_util;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use image_util::*;
use stele::image::{ImportOptions, Limits, Store};

struct Case {
    s: PathBuf,
    host: PathBuf,
    store: Store,
}

impl Case {
    fn new(tag: &str) -> Case {
        let s = scratch(tag);
        let host = s.join("host");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("victim"), b"keep").unwrap();
        let store = Store::open(&s.join("store")).unwrap();
        Case { s, host, store }
    }
    fn host_str(&self) -> String {
        self.host.display().to_string()
    }
    fn import(&self, tar: Vec<u8>, limits: Limits) -> Result<stele::image::ImageRecord, String> {
        let l = single(&self.s.join("oci"), tar);
        self.store
            .import(&format!("oci:{}", l.dir.display()), &ImportOptions { name: Some("t".into()), limits })
            .map_err(|e| e.to_string())
    }
    fn layer(&self, r: &stele::image::ImageRecord) -> PathBuf {
        self.store.layer_dir(&r.layers[0].diff_id).unwrap()
    }
    /// The host dir is exactly as set up: one file, unchanged.
    fn host_untouched(&self) {
        assert_eq!(listing(&self.host), vec!["victim".to_string()]);
        let m = std::fs::symlink_metadata(self.host.join("victim")).unwrap();
        assert!(m.is_file() && m.nlink() == 1);
        assert_eq!(std::fs::read(self.host.join("victim")).unwrap(), b"keep");
        // nothing staged left behind, no image recorded by a refused import
        assert_eq!(std::fs::read_dir(self.s.join("store/tmp")).unwrap().count(), 0);
    }
    fn refused(&self, tar: Vec<u8>, limits: Limits, msg: &str) {
        let e = self.import(tar, limits).expect_err("hostile layer accepted");
        assert!(e.contains(msg), "error {e:?} should mention {msg:?}");
        assert_eq!(std::fs::read_dir(self.s.join("store/layers")).unwrap().count(), 0);
        self.host_untouched();
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.s);
    }
}

fn rel_to_root(p: &Path) -> String {
    // enough ../ to reach / from any layer dir, then the host path
    format!("{}{}", "../".repeat(12), p.display().to_string().trim_start_matches('/'))
}

#[test]
fn dotdot_name_refused() {
    let c = Case::new("dotdot");
    let mut t = Tar::new();
    t.file(&format!("{}/pwned", rel_to_root(&c.host)), b"x", 0o644);
    c.refused(t.finish(), Limits::default(), "'..'");
}

#[test]
fn absolute_name_refused() {
    let c = Case::new("abs");
    let mut t = Tar::new();
    t.file(&format!("{}/pwned", c.host_str()), b"x", 0o644);
    c.refused(t.finish(), Limits::default(), "absolute path");
}

#[test]
fn symlink_write_through_contained() {
    for (i, root) in ["/", "../../../../../../../../.."].into_iter().enumerate() {
        let c = Case::new(&format!("sym{i}"));
        let rel = c.host_str().trim_start_matches('/').to_string();
        let mut t = Tar::new();
        t.symlink("l", root).file(&format!("l/{rel}/pwned"), b"x", 0o644).file(&format!("l/{rel}/victim"), b"over", 0o644);
        let r = c.import(t.finish(), Limits::default()).unwrap();
        c.host_untouched();
        // the writes landed inside the layer, under the symlink's in-root target
        let inside = c.layer(&r).join(&rel);
        assert_eq!(std::fs::read(inside.join("pwned")).unwrap(), b"x");
        assert_eq!(std::fs::read(inside.join("victim")).unwrap(), b"over");
    }
    // a symlink to a host directory that does not exist in the layer: refused
    let c = Case::new("symhost");
    let mut t = Tar::new();
    t.symlink("l", &c.host_str()).file("l/pwned", b"x", 0o644);
    c.refused(t.finish(), Limits::default(), "no such file or directory");
}

#[test]
fn directory_replaced_by_symlink_refused() {
    let c = Case::new("dirsym");
    let mut t = Tar::new();
    t.dir("d", 0o755).symlink("d", &c.host_str()).file("d/pwned", b"x", 0o644);
    c.refused(t.finish(), Limits::default(), "would replace a directory");
}

#[test]
fn hardlink_escapes() {
    let c = Case::new("hl-dotdot");
    let mut t = Tar::new();
    t.hardlink("h", &format!("{}/victim", rel_to_root(&c.host)));
    c.refused(t.finish(), Limits::default(), "'..'");

    let c = Case::new("hl-abs");
    let mut t = Tar::new();
    t.hardlink("h", &format!("{}/victim", c.host_str()));
    c.refused(t.finish(), Limits::default(), "absolute path");

    // through a symlink: resolved inside the layer, where the target does not exist
    let c = Case::new("hl-sym");
    let mut t = Tar::new();
    t.symlink("l", &c.host_str()).hardlink("h", "l/victim");
    c.refused(t.finish(), Limits::default(), "no such file or directory");
}

#[test]
fn whiteout_names_refused() {
    for (i, name) in [".wh..", ".wh.", "d/.wh..", "d/.wh..wh.plnk"].into_iter().enumerate() {
        let c = Case::new(&format!("wh{i}"));
        let mut t = Tar::new();
        t.dir("d", 0o755).file(name, b"", 0o644);
        c.refused(t.finish(), Limits::default(), "refused");
    }
}

#[test]
fn whiteout_and_opaque_through_symlink_contained() {
    let c = Case::new("whsym");
    let rel = c.host_str().trim_start_matches('/').to_string();
    let mut t = Tar::new();
    t.symlink("l", "/").file(&format!("l/{rel}/.wh.victim"), b"", 0).file(&format!("l/{rel}/.wh..wh..opq"), b"", 0);
    let r = c.import(t.finish(), Limits::default()).unwrap();
    c.host_untouched();
    let inside = c.layer(&r).join(&rel);
    assert!(std::fs::symlink_metadata(inside.join("victim")).unwrap().file_type().is_char_device());
}

#[test]
fn device_nodes_refused_unless_allowed() {
    let c = Case::new("dev");
    let mut t = Tar::new();
    t.chr("null", 1, 3);
    c.refused(t.finish(), Limits::default(), "device node");

    let c = Case::new("dev-wh");
    let mut t = Tar::new();
    t.chr("fake-whiteout", 0, 0);
    c.refused(t.finish(), Limits { allow_devices: true, ..Default::default() }, "device node");

    let c = Case::new("dev-ok");
    let mut t = Tar::new();
    t.chr("null", 1, 3);
    let r = c.import(t.finish(), Limits { allow_devices: true, ..Default::default() }).unwrap();
    let m = std::fs::symlink_metadata(c.layer(&r).join("null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), libc::makedev(1, 3));
}

#[test]
fn overlay_xattrs_refused() {
    let c = Case::new("xattr");
    let mut t = Tar::new();
    t.file_xattrs("f", b"x", 0o644, &[("trusted.overlay.redirect", b"/etc")]);
    c.refused(t.finish(), Limits::default(), "trusted.overlay.redirect refused");
}

#[test]
fn decompression_bombs_refused() {
    let zeros = vec![0u8; 8 << 20];
    let bomb = || {
        let mut t = Tar::new();
        t.file("zeros", &zeros, 0o644);
        t.finish()
    };
    let c = Case::new("bomb-bytes");
    c.refused(bomb(), Limits { max_bytes: 1 << 20, ..Default::default() }, "decompression bomb");
    let c = Case::new("bomb-ratio");
    c.refused(bomb(), Limits { max_ratio: 20, ratio_after: 1 << 20, ..Default::default() }, "expansion ratio");
    let c = Case::new("bomb-entries");
    let mut t = Tar::new();
    for i in 0..20 {
        t.file(&format!("f{i}"), b"", 0o644);
    }
    c.refused(t.finish(), Limits { max_entries: 10, ..Default::default() }, "more than 10 entries");
}

#[test]
fn duplicate_entries_last_wins() {
    let c = Case::new("dup");
    let mut t = Tar::new();
    t.file("f", b"first", 0o644).file("f", b"second", 0o600).symlink("s", "a").file("s", b"file", 0o644);
    let r = c.import(t.finish(), Limits::default()).unwrap();
    let l = c.layer(&r);
    assert_eq!(std::fs::read(l.join("f")).unwrap(), b"second");
    assert_eq!(std::fs::metadata(l.join("f")).unwrap().mode() & 0o777, 0o600);
    assert!(std::fs::symlink_metadata(l.join("s")).unwrap().is_file());
    c.host_untouched();
}
