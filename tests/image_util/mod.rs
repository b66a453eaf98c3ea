//! Offline builders for test images (layer tars, OCI layouts, archives).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use stele::image::Digest;

pub const MTIME: u64 = 1_000_000;

/// A layer tar written entry by entry, names taken literally (so tests can
/// put hostile names in).
pub struct Tar {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Tar {
    fn default() -> Self {
        Self::new()
    }
}

impl Tar {
    pub fn new() -> Tar {
        Tar { b: tar::Builder::new(Vec::new()) }
    }
    fn hdr(path: &str, kind: tar::EntryType, mode: u32, size: u64, uid: u64, gid: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        let p = path.as_bytes();
        assert!(p.len() < 100, "test names must be short");
        h.as_old_mut().name[..p.len()].copy_from_slice(p);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(MTIME);
        h
    }
    fn put(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }
    pub fn dir(&mut self, p: &str, mode: u32) -> &mut Self {
        self.put(Self::hdr(p, tar::EntryType::Directory, mode, 0, 0, 0), b"")
    }
    pub fn file(&mut self, p: &str, data: &[u8], mode: u32) -> &mut Self {
        self.file_owned(p, data, mode, 0, 0)
    }
    pub fn file_owned(&mut self, p: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> &mut Self {
        self.put(Self::hdr(p, tar::EntryType::Regular, mode, data.len() as u64, uid, gid), data)
    }
    pub fn file_xattrs(&mut self, p: &str, data: &[u8], mode: u32, xattrs: &[(&str, &[u8])]) -> &mut Self {
        let keys: Vec<(String, &[u8])> = xattrs.iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v)).collect();
        self.b.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v))).unwrap();
        self.file(p, data, mode)
    }
    pub fn symlink(&mut self, p: &str, target: &str) -> &mut Self {
        let mut h = Self::hdr(p, tar::EntryType::Symlink, 0o777, 0, 0, 0);
        h.set_link_name_literal(target).unwrap();
        self.put(h, b"")
    }
    pub fn hardlink(&mut self, p: &str, target: &str) -> &mut Self {
        let mut h = Self::hdr(p, tar::EntryType::Link, 0o644, 0, 0, 0);
        h.set_link_name_literal(target).unwrap();
        self.put(h, b"")
    }
    pub fn chr(&mut self, p: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::hdr(p, tar::EntryType::Char, 0o666, 0, 0, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.put(h, b"")
    }
    pub fn fifo(&mut self, p: &str) -> &mut Self {
        self.put(Self::hdr(p, tar::EntryType::Fifo, 0o600, 0, 0, 0), b"")
    }
    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub fn compress(data: &[u8], c: Comp) -> (Vec<u8>, &'static str) {
    match c {
        Comp::None => (data.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            (e.finish().unwrap(), "application/vnd.oci.image.layer.v1.tar+gzip")
        }
        Comp::Zstd => (zstd::encode_all(data, 3).unwrap(), "application/vnd.oci.image.layer.v1.tar+zstd"),
    }
}

/// What a layout writer produced.
pub struct Layout {
    pub dir: PathBuf,
    pub manifest: Digest,
    pub config: Digest,
    pub layer_blobs: Vec<PathBuf>,
    pub layer_digests: Vec<Digest>,
    pub diff_ids: Vec<Digest>,
}

pub fn put_blob(dir: &Path, data: &[u8]) -> (Digest, PathBuf) {
    let d = Digest::sha256_of(data);
    let p = dir.join("blobs/sha256").join(&d.hex);
    std::fs::write(&p, data).unwrap();
    (d, p)
}

/// Write an OCI layout with one manifest (tagged `tag`) from layer tars.
/// `diff_override` replaces the computed diff_ids (for tamper tests).
pub fn write_layout(dir: &Path, layers: &[(Vec<u8>, Comp)], cfg: Value, tag: &str, diff_override: Option<Vec<String>>) -> Layout {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut blobs = Vec::new();
    let mut digests = Vec::new();
    for (tar, c) in layers {
        diff_ids.push(Digest::sha256_of(tar));
        let (data, mt) = compress(tar, *c);
        let (d, p) = put_blob(dir, &data);
        descs.push(json!({"mediaType": mt, "digest": d.to_string(), "size": data.len()}));
        blobs.push(p);
        digests.push(d);
    }
    let ids: Vec<String> = diff_override.unwrap_or_else(|| diff_ids.iter().map(|d| d.to_string()).collect());
    let config = json!({
        "created": "1970-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": ids},
    });
    let cb = serde_json::to_vec(&config).unwrap();
    let (cd, _) = put_blob(dir, &cb);
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cb.len()},
        "layers": descs,
    });
    let mb = serde_json::to_vec(&manifest).unwrap();
    let (md, _) = put_blob(dir, &mb);
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": mb.len(),
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Layout { dir: dir.to_path_buf(), manifest: md, config: cd, layer_blobs: blobs, layer_digests: digests, diff_ids }
}

/// A single-layer image from one tar.
pub fn single(dir: &Path, tar: Vec<u8>) -> Layout {
    write_layout(dir, &[(tar, Comp::Gzip)], json!({"Cmd": ["/bin/sh"]}), "latest", None)
}

pub fn busybox_layer() -> Vec<u8> {
    let bb = std::fs::read("/usr/bin/busybox").expect("busybox-static at /usr/bin/busybox");
    let mut t = Tar::new();
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        t.dir(d, if d == "tmp" { 0o1777 } else { 0o755 });
    }
    t.file("bin/busybox", &bb, 0o755);
    for a in ["sh", "ls", "cat", "echo", "id", "true"] {
        t.symlink(&format!("bin/{a}"), "busybox");
    }
    t.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\napp:x:1000:1001:app:/home/app:/bin/sh\n", 0o644);
    t.file("etc/group", b"root:x:0:\ndaemon:x:1:\napp:x:1001:\nextra:x:2000:app\n", 0o644);
    t.finish()
}

/// Fresh scratch directory under /tmp for one test.
pub fn scratch(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("stele-imgtest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Every path under `dir` (relative), sorted: to show a store is unchanged.
pub fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
