//! Image sources: OCI layout directories, oci-archive and docker-archive
//! tars. Every blob read here is checked against its descriptor's digest and
//! size; manifests and configs are size-capped before they are parsed.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::digest::{self, Digest};
use super::unpack::components;
use crate::error::{Context, Error, Result};

const MAX_JSON: u64 = 8 << 20;

const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// `oci:DIR[:TAG|@DIGEST]`
    Layout { dir: PathBuf, tag: Option<String>, digest: Option<String> },
    /// `oci-archive:FILE[:TAG]`
    OciArchive { file: PathBuf, tag: Option<String> },
    /// `docker-archive:FILE[:REPO:TAG]`
    DockerArchive { file: PathBuf, tag: Option<String> },
}

fn split_tag(rest: &str) -> (PathBuf, Option<String>) {
    if Path::new(rest).exists() {
        return (rest.into(), None);
    }
    // FILE:TAG, where TAG may itself hold a colon (docker-archive REPO:TAG).
    for (i, _) in rest.match_indices(':') {
        let (p, t) = (&rest[..i], &rest[i + 1..]);
        if !t.is_empty() && Path::new(p).exists() {
            return (p.into(), Some(t.to_string()));
        }
    }
    match rest.rsplit_once(':') {
        Some((p, t)) if !t.is_empty() && !t.contains('/') => (p.into(), Some(t.to_string())),
        _ => (rest.into(), None),
    }
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef> {
        if let Some(rest) = s.strip_prefix("oci:") {
            if let Some((d, dg)) = rest.rsplit_once('@') {
                Digest::parse(dg)?;
                return Ok(ImageRef::Layout { dir: d.into(), tag: None, digest: Some(dg.to_string()) });
            }
            let (dir, tag) = split_tag(rest);
            return Ok(ImageRef::Layout { dir, tag, digest: None });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (file, tag) = split_tag(rest);
            return Ok(ImageRef::OciArchive { file, tag });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (file, tag) = split_tag(rest);
            return Ok(ImageRef::DockerArchive { file, tag });
        }
        crate::bail!("unsupported image reference {s:?} (use oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG] or docker-archive:FILE)")
    }
}

/// Layer compression, from the media type (or sniffed for docker-archive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn from_media_type(mt: &str) -> Result<Compression> {
        Ok(match mt {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd" | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Compression::Zstd
            }
            _ => crate::bail!("unsupported layer media type {mt:?}"),
        })
    }
    pub fn sniff(path: &Path) -> Result<Compression> {
        let mut f = std::fs::File::open(path).with_ctx(|| format!("open {}", path.display()))?;
        let mut m = [0u8; 4];
        let n = f.read(&mut m).ctx("read layer")?;
        Ok(match &m[..n] {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
            _ => Compression::None,
        })
    }
}

/// One layer blob to import.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    pub path: PathBuf,
    pub compression: Compression,
    /// Compressed digest and size from the manifest (None for docker-archive).
    pub digest: Option<Digest>,
    pub size: Option<u64>,
}

/// A resolved image, ready to import.
#[derive(Debug)]
pub struct Resolved {
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub config: Vec<u8>,
    pub layers: Vec<LayerBlob>,
    /// Name suggested by the source (ref annotation, RepoTags).
    pub name: Option<String>,
}

/// Read a small blob fully, verifying digest and size.
fn read_blob(layout: &Path, d: &Digest, size: Option<u64>, what: &str) -> Result<Vec<u8>> {
    let path = blob_path(layout, d);
    let f = std::fs::File::open(&path).with_ctx(|| format!("{what} {d}: open {}", path.display()))?;
    let cap = size.unwrap_or(MAX_JSON).min(MAX_JSON);
    let mut buf = Vec::new();
    f.take(cap + 1).read_to_end(&mut buf).with_ctx(|| format!("{what} {d}: read"))?;
    if buf.len() as u64 > cap && size.map_or(true, |s| s > MAX_JSON) {
        crate::bail!("{what} {d}: larger than {MAX_JSON} bytes: refused");
    }
    digest::check(what, d, size, &Digest::of(d.algo, &buf), buf.len() as u64)?;
    Ok(buf)
}

pub fn blob_path(layout: &Path, d: &Digest) -> PathBuf {
    layout.join("blobs").join(d.algo_name()).join(&d.hex)
}

fn json(b: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(b).map_err(|e| Error::msg(format!("{what}: invalid JSON: {e}")))
}

struct Desc {
    media_type: String,
    digest: Digest,
    size: u64,
    platform: Option<(String, String, Option<String>)>,
    annotations: serde_json::Map<String, Value>,
}

fn descs(v: &Value, what: &str) -> Result<Vec<Desc>> {
    let list = v.get("manifests").and_then(Value::as_array).ok_or_else(|| Error::msg(format!("{what}: no manifests")))?;
    list.iter()
        .map(|m| {
            let dg = m.get("digest").and_then(Value::as_str).ok_or_else(|| Error::msg(format!("{what}: descriptor without digest")))?;
            let p = m.get("platform").map(|p| {
                let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                (s("os"), s("architecture"), p.get("variant").and_then(Value::as_str).map(str::to_string))
            });
            Ok(Desc {
                media_type: m.get("mediaType").and_then(Value::as_str).unwrap_or("").to_string(),
                digest: Digest::parse(dg).with_ctx(|| what.to_string())?,
                size: m.get("size").and_then(Value::as_u64).ok_or_else(|| Error::msg(format!("{what}: descriptor {dg} without size")))?,
                platform: p,
                annotations: m.get("annotations").and_then(Value::as_object).cloned().unwrap_or_default(),
            })
        })
        .collect()
}

/// The platform images are selected for: linux and this machine's architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn platform_ok(d: &Desc) -> bool {
    match &d.platform {
        None => true,
        Some((os, arch, _)) => os == "linux" && arch == host_arch(),
    }
}

fn is_index(mt: &str) -> bool {
    mt == MT_INDEX || mt == MT_DOCKER_LIST
}

/// Resolve a manifest in an OCI layout directory.
pub fn resolve_layout(dir: &Path, tag: Option<&str>, want: Option<&str>) -> Result<Resolved> {
    let ip = dir.join("index.json");
    let mut ib = Vec::new();
    std::fs::File::open(&ip)
        .with_ctx(|| format!("open {}", ip.display()))?
        .take(MAX_JSON)
        .read_to_end(&mut ib)
        .ctx("read index.json")?;
    let index = json(&ib, "index.json")?;
    let want = want.map(Digest::parse).transpose()?;
    let top = descs(&index, "index.json")?;
    let mut name = None;
    let mut cands: Vec<Desc> = Vec::new();
    for d in top {
        let refname = d.annotations.get("org.opencontainers.image.ref.name").and_then(Value::as_str).map(str::to_string);
        let cname = d.annotations.get("io.containerd.image.name").and_then(Value::as_str).map(str::to_string);
        if let Some(t) = tag {
            let hit = refname.as_deref() == Some(t)
                || cname.as_deref() == Some(t)
                || cname.as_deref().is_some_and(|c| c.rsplit_once(':').map(|x| x.1) == Some(t));
            if !hit {
                continue;
            }
        }
        if name.is_none() {
            name = cname.or(refname);
        }
        cands.push(d);
    }
    if cands.is_empty() {
        crate::bail!("{}: no manifest tagged {:?}", dir.display(), tag.unwrap_or(""));
    }
    // Walk nested indexes (depth-limited) until a manifest matches.
    let mut depth = 0;
    loop {
        depth += 1;
        if depth > 8 {
            crate::bail!("{}: image indexes nested too deeply", dir.display());
        }
        let mut next = Vec::new();
        for d in cands {
            if is_index(&d.media_type) {
                let b = read_blob(dir, &d.digest, Some(d.size), "index")?;
                next.extend(descs(&json(&b, "index")?, &format!("index {}", d.digest))?);
                continue;
            }
            let ok = match &want {
                Some(w) => *w == d.digest,
                None => platform_ok(&d),
            };
            if ok {
                return load_manifest(dir, &d.digest, d.size, name);
            }
        }
        if next.is_empty() {
            crate::bail!(
                "{}: no manifest for {}",
                dir.display(),
                want.map(|w| w.to_string()).unwrap_or_else(|| format!("linux/{}", host_arch()))
            );
        }
        // A digest may also name a nested index's child directly.
        cands = next;
    }
}

fn load_manifest(dir: &Path, md: &Digest, size: u64, name: Option<String>) -> Result<Resolved> {
    let mb = read_blob(dir, md, Some(size), "manifest")?;
    let m = json(&mb, &format!("manifest {md}"))?;
    let cfg = m.get("config").ok_or_else(|| Error::msg(format!("manifest {md}: no config")))?;
    let cd = Digest::parse(cfg.get("digest").and_then(Value::as_str).unwrap_or(""))
        .with_ctx(|| format!("manifest {md}: config"))?;
    let cs = cfg.get("size").and_then(Value::as_u64);
    let config = read_blob(dir, &cd, cs, "config")?;
    let mut layers = Vec::new();
    for l in m.get("layers").and_then(Value::as_array).cloned().unwrap_or_default() {
        let d = Digest::parse(l.get("digest").and_then(Value::as_str).unwrap_or("")).with_ctx(|| format!("manifest {md}: layer"))?;
        let mt = l.get("mediaType").and_then(Value::as_str).unwrap_or("");
        layers.push(LayerBlob {
            path: blob_path(dir, &d),
            compression: Compression::from_media_type(mt).with_ctx(|| format!("layer {d}"))?,
            size: Some(l.get("size").and_then(Value::as_u64).ok_or_else(|| Error::msg(format!("layer {d}: no size")))?),
            digest: Some(d),
        });
    }
    Ok(Resolved { manifest_digest: md.clone(), config_digest: cd, config, layers, name })
}

/// Extract an archive (regular files and directories only; symlinks become
/// hardlinks to their in-archive target) into `dest`, a fresh directory.
pub fn extract_archive(file: &Path, dest: &Path, max_bytes: u64) -> Result<()> {
    let f = std::fs::File::open(file).with_ctx(|| format!("open {}", file.display()))?;
    let mut ar = tar::Archive::new(f);
    let mut total = 0u64;
    let mut links = Vec::new();
    for e in ar.entries().with_ctx(|| format!("read {}", file.display()))? {
        let mut e = e.with_ctx(|| format!("read {}", file.display()))?;
        let raw = e.path_bytes().into_owned();
        let comps = components(&raw).with_ctx(|| file.display().to_string())?;
        if comps.is_empty() {
            continue;
        }
        let rel: PathBuf = comps.iter().map(|c| std::ffi::OsStr::from_bytes_(c)).collect();
        let out = dest.join(&rel);
        match e.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&out).with_ctx(|| format!("mkdir {}", out.display()))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                total += e.header().size().unwrap_or(0);
                if total > max_bytes {
                    crate::bail!("{}: archive larger than {max_bytes} bytes: refused", file.display());
                }
                if let Some(p) = out.parent() {
                    std::fs::create_dir_all(p).with_ctx(|| format!("mkdir {}", p.display()))?;
                }
                let _ = std::fs::remove_file(&out);
                let mut w = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&out)
                    .with_ctx(|| format!("create {}", out.display()))?;
                std::io::copy(&mut e, &mut w).with_ctx(|| format!("extract {}", out.display()))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let t = e.link_name_bytes().map(|c| c.into_owned()).unwrap_or_default();
                let base: Vec<&[u8]> = if e.header().entry_type() == tar::EntryType::Symlink {
                    comps[..comps.len() - 1].to_vec()
                } else {
                    Vec::new()
                };
                links.push((rel, base.iter().map(|c| c.to_vec()).collect::<Vec<_>>(), t));
            }
            _ => {}
        }
    }
    for (rel, base, target) in links {
        // Lexical resolution within the archive; never leaves dest.
        let mut parts: Vec<Vec<u8>> = if target.first() == Some(&b'/') { Vec::new() } else { base };
        for c in target.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                c => parts.push(c.to_vec()),
            }
        }
        let src: PathBuf = parts.iter().map(|c| std::ffi::OsStr::from_bytes_(c)).collect();
        let (src, out) = (dest.join(src), dest.join(&rel));
        if std::fs::symlink_metadata(&src).map(|m| m.is_file()).unwrap_or(false) {
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p).ctx("mkdir")?;
            }
            let _ = std::fs::remove_file(&out);
            std::fs::hard_link(&src, &out).with_ctx(|| format!("link {}", out.display()))?;
        }
    }
    Ok(())
}

trait FromBytes {
    fn from_bytes_(b: &[u8]) -> &std::ffi::OsStr;
}
impl FromBytes for std::ffi::OsStr {
    fn from_bytes_(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}

/// Resolve an extracted docker-archive (`docker save`).
pub fn resolve_docker(dir: &Path, tag: Option<&str>) -> Result<Resolved> {
    let mp = dir.join("manifest.json");
    let mb = std::fs::read(&mp).with_ctx(|| format!("docker-archive: open {}", mp.display()))?;
    let m = json(&mb, "docker-archive manifest.json")?;
    let list = m.as_array().ok_or_else(|| Error::msg("docker-archive manifest.json: not a list"))?;
    let pick = match tag {
        Some(t) => list.iter().find(|e| {
            e.get("RepoTags").and_then(Value::as_array).is_some_and(|a| {
                a.iter().filter_map(Value::as_str).any(|r| r == t || r.rsplit_once(':').map(|x| x.1) == Some(t))
            })
        }),
        None if list.len() == 1 => list.first(),
        None => crate::bail!("docker-archive holds {} images: name one with :REPO:TAG", list.len()),
    }
    .ok_or_else(|| Error::msg(format!("docker-archive: no image {:?}", tag.unwrap_or(""))))?;
    let safe = |s: &str| -> Result<PathBuf> {
        let c = components(s.as_bytes())?;
        Ok(dir.join(c.iter().map(|c| std::ffi::OsStr::from_bytes_(c)).collect::<PathBuf>()))
    };
    let cpath = pick.get("Config").and_then(Value::as_str).ok_or_else(|| Error::msg("docker-archive: no Config"))?;
    let config = std::fs::read(safe(cpath)?).with_ctx(|| format!("docker-archive: read config {cpath}"))?;
    let config_digest = Digest::sha256_of(&config);
    // The config's file name is its digest in both archive formats.
    let stem = Path::new(cpath).file_name().and_then(|s| s.to_str()).unwrap_or("");
    let stem = stem.strip_suffix(".json").unwrap_or(stem);
    if stem.len() == 64 && stem != config_digest.hex {
        crate::bail!("config sha256:{stem}: digest mismatch: content hashes to {config_digest}");
    }
    let mut layers = Vec::new();
    for l in pick.get("Layers").and_then(Value::as_array).cloned().unwrap_or_default() {
        let p = safe(l.as_str().unwrap_or(""))?;
        layers.push(LayerBlob { compression: Compression::sniff(&p)?, path: p, digest: None, size: None });
    }
    let name = pick.get("RepoTags").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str).map(str::to_string);
    Ok(Resolved { manifest_digest: Digest::sha256_of(&mb), config_digest, config, layers, name })
}
