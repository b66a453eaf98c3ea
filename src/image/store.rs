//! The layer store. Layout under the store root (default /var/lib/stele):
//!
//! ```text
//! layers/sha256-<diff_id hex>/root/      the layer in overlay form (whiteouts = char 0:0)
//! layers/sha256-<diff_id hex>/tree.txt   per-path records (see tree.rs)
//! layers/sha256-<diff_id hex>/layer.json {diff_id, tree_digest, size}
//! configs/sha256-<hex>                   image config, original bytes
//! images/<sha256 of name>.json           image records
//! tmp/                                   staging; renamed into place when complete
//! lock                                   flock: shared for import/read, exclusive for gc/rm
//! ```
//!
//! Layers are unpacked into `tmp/` and renamed into `layers/` only after every
//! layer of the image has been verified, so a failed import leaves nothing.
//! Concurrent imports of the same layer race on the final rename; the loser
//! discards its copy.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::digest::{self, Algorithm, Digest, HashReader, Hasher};
use super::fs;
use super::source::{self, Compression, ImageRef, LayerBlob, Resolved};
use super::tree::{self, Drift};
use super::unpack::{self, BombGuard, Limits};
use crate::error::{Context, Error, Result};

pub const DEFAULT_STORE: &str = "/var/lib/stele";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    pub diff_id: String,
    /// Compressed blob digest as imported (informational).
    pub blob_digest: Option<String>,
    pub tree_digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    pub name: String,
    pub source: String,
    pub manifest_digest: String,
    pub config_digest: String,
    /// Lowest layer first.
    pub layers: Vec<LayerRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LayerMeta {
    diff_id: String,
    tree_digest: String,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub name: Option<String>,
    pub limits: Limits,
}

/// Drift found by a verification, per layer directory.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// (layer directory, drift) pairs; empty when everything matches.
    pub drift: Vec<(PathBuf, Drift)>,
    /// Layer directories checked.
    pub checked: Vec<PathBuf>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.drift.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
pub struct GcReport {
    pub removed_layers: Vec<String>,
    pub removed_configs: Vec<String>,
}

pub struct Store {
    root: PathBuf,
}

struct Lock(#[allow(dead_code)] OwnedFd);

impl Lock {
    fn take(path: &Path, exclusive: bool) -> Result<Lock> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_ctx(|| format!("open {}", path.display()))?;
        let fd = OwnedFd::from(f);
        let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
        // SAFETY: plain syscall on our fd.
        if unsafe { libc::flock(fd.as_raw_fd(), op) } < 0 {
            return Err(Error::os(format!("lock {}", path.display()), fs::errno()));
        }
        Ok(Lock(fd))
    }
}

/// Staged directories removed on drop unless committed.
struct Staged(Vec<PathBuf>);

impl Drop for Staged {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{prefix}-{}-{}-{t}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(unique("tmp"));
    std::fs::write(&tmp, data).with_ctx(|| format!("write {}", tmp.display()))?;
    File::open(&tmp).and_then(|f| f.sync_all()).ctx("fsync")?;
    std::fs::rename(&tmp, path).with_ctx(|| format!("rename {}", path.display()))
}

/// Unpack one layer blob into `root`, verifying the compressed digest/size
/// (when known) and the uncompressed diff_id. The error names the blob.
pub fn unpack_blob(blob: &LayerBlob, diff_id: &Digest, root: &OwnedFd, limits: &Limits) -> Result<()> {
    unpack_blob_progress(blob, diff_id, root, limits, None).map(|_| ())
}

/// [`unpack_blob`], adding compressed bytes read to `progress`; returns the
/// content hashes of the files written (see [`unpack::Written`]).
pub fn unpack_blob_progress(
    blob: &LayerBlob,
    diff_id: &Digest,
    root: &OwnedFd,
    limits: &Limits,
    progress: Option<&AtomicU64>,
) -> Result<unpack::Written> {
    let name = blob.digest.as_ref().map(|d| d.to_string()).unwrap_or_else(|| blob.path.display().to_string());
    let what = format!("layer {name}");
    let f = File::open(&blob.path).with_ctx(|| format!("{what}: open {}", blob.path.display()))?;
    let algo = blob.digest.as_ref().map(|d| d.algo).unwrap_or(Algorithm::Sha256);
    // One pass over the data in four stages, each on its own thread and
    // linked by bounded channels of 1 MiB chunks, so the work spreads over
    // the cores: read + blob hash | decompress (bomb-guarded) | diff_id hash
    // | tar parse + files (this thread; it hashes each file as it writes it).
    let (comp_tx, comp_rx) = sync_channel::<Chunk>(PIPE_CHUNKS);
    let (raw_tx, raw_rx) = sync_channel::<Chunk>(PIPE_CHUNKS);
    let (tar_tx, tar_rx) = sync_channel::<Chunk>(PIPE_CHUNKS);
    // Spent chunks go back to the stage that fills them (see `Recycle`).
    let (comp_pool, comp_free) = recycle();
    let (raw_pool, raw_free) = recycle();
    let (result, diff, blob_check) = std::thread::scope(|sc| {
        let reader = sc.spawn(move || {
            let mut comp = HashReader::new(Counted { inner: f, count: progress }, algo, blob.size);
            if let Err(e) = pump(&mut comp, &comp_tx, &comp_free) {
                let _ = comp_tx.send(Err(e));
            }
            drop(comp_tx);
            // Hashes what the decompressor left unread too. The caller
            // prefers this error over whatever broke further down.
            let (got, size) = comp.finish().ctx("read layer")?;
            match &blob.digest {
                Some(d) => digest::check("layer", d, blob.size, &got, size),
                None => Ok(()),
            }
        });
        sc.spawn(move || {
            let consumed = AtomicU64::new(0);
            let input = Counted { inner: ChanReader::new(comp_rx, comp_pool), count: Some(&consumed) };
            let pumped = (|| {
                let (dec, ratio): (Box<dyn Read>, _) = match blob.compression {
                    Compression::None => (Box::new(input), None),
                    Compression::Gzip => (Box::new(flate2::bufread::MultiGzDecoder::new(input)), Some(&consumed)),
                    Compression::Zstd => (Box::new(zstd::stream::read::Decoder::with_buffer(input)?), Some(&consumed)),
                };
                pump(BombGuard::new(dec, ratio, limits), &raw_tx, &raw_free)
            })();
            if let Err(e) = pumped {
                let _ = raw_tx.send(Err(e));
            }
        });
        let hasher = sc.spawn(move || {
            let mut h = Hasher::new(diff_id.algo);
            for chunk in raw_rx {
                let ok = chunk.is_ok();
                if let Ok(b) = &chunk {
                    h.update(b);
                }
                if tar_tx.send(chunk).is_err() || !ok {
                    return None; // the stream broke or the writer stopped (it failed)
                }
            }
            Some(h.finish())
        });
        let result: Result<unpack::Written> = (|| {
            let mut chan = ChanReader::new(tar_rx, raw_pool);
            let written = unpack::unpack_written(&mut chan, root, limits)?;
            // Drain what follows the tar's end so the diff_id covers it all.
            std::io::copy(&mut chan, &mut std::io::sink()).ctx("read layer")?;
            Ok(written)
        })();
        let diff = hasher.join().unwrap_or(None);
        let blob_check = reader.join().unwrap_or_else(|_| Err(Error::msg("layer reader thread panicked")));
        (result, diff, blob_check)
    });
    match (result, diff, blob_check) {
        (_, _, Err(e)) => Err(e),
        (Err(e), _, Ok(())) => Err(e.context(what)),
        (Ok(_), None, Ok(())) => crate::bail!("{what}: layer stream ended early"),
        (Ok(_), Some(got), Ok(())) if got != *diff_id => {
            crate::bail!("{what}: diff_id mismatch: config rootfs.diff_ids says {diff_id}, uncompressed content hashes to {got}")
        }
        (Ok(w), Some(_), Ok(())) => Ok(w),
    }
}

/// Chunks in flight between two stages of the unpack pipeline.
type Chunk = std::io::Result<Vec<u8>>;
const PIPE_CHUNK: usize = 1 << 20;
const PIPE_CHUNKS: usize = 8;

/// The way back for spent chunks, from the stage that empties them to the
/// one that fills them. A fresh 1 MiB buffer is a new mapping: 256 page
/// faults, each page cleared by the kernel, then unmapped when dropped;
/// for a 1 GB layer that was half a million faults (~5% of the import's
/// CPU). Reusing the few buffers in flight makes it none.
type Recycle = (SyncSender<Vec<u8>>, Receiver<Vec<u8>>);

fn recycle() -> Recycle {
    // Enough for every chunk in flight on one link, plus the ones in use.
    sync_channel(PIPE_CHUNKS + 2)
}

/// Read `r` to its end into `tx` in full chunks, taking buffers from `free`
/// when there are any; stops early (Ok) when the receiving stage has gone.
/// A recycled buffer comes back holding a full chunk: it is read into as it
/// is (`read_to_end` would clear its spare capacity first, 2 GB of memset per
/// 1 GB layer).
fn pump(mut r: impl Read, tx: &SyncSender<Chunk>, free: &Receiver<Vec<u8>>) -> std::io::Result<()> {
    loop {
        let mut buf = free.try_recv().unwrap_or_default();
        buf.resize(PIPE_CHUNK, 0);
        let mut n = 0;
        while n < PIPE_CHUNK {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(n);
        if n == 0 || tx.send(Ok(buf)).is_err() {
            return Ok(());
        }
    }
}

/// The receiving end of a pipeline stage, as a reader; a chunk it has read
/// goes back to `back` (the filling stage's [`Recycle`]) when there is room.
struct ChanReader {
    rx: Receiver<Chunk>,
    cur: Vec<u8>,
    pos: usize,
    back: SyncSender<Vec<u8>>,
}

impl ChanReader {
    fn new(rx: Receiver<Chunk>, back: SyncSender<Vec<u8>>) -> Self {
        ChanReader { rx, cur: Vec::new(), pos: 0, back }
    }
}

impl BufRead for ChanReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    let spent = std::mem::replace(&mut self.cur, b);
                    if spent.capacity() >= PIPE_CHUNK {
                        let _ = self.back.try_send(spent);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => break, // the end: the sender is done
            }
        }
        Ok(&self.cur[self.pos..])
    }
    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let have = self.fill_buf()?;
        let n = buf.len().min(have.len());
        buf[..n].copy_from_slice(&have[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// At most this many layers unpack at once (the machine's cores, capped).
pub const MAX_UNPACK_THREADS: usize = 4;

/// Unpack one layer into `tmp/root`, record its tree; returns the tree digest.
fn unpack_layer(blob: &LayerBlob, diff_id: &Digest, tmp: &Path, limits: &Limits, progress: &AtomicU64) -> Result<String> {
    std::fs::create_dir_all(tmp.join("root")).ctx("create staging dir")?;
    let rootfd = fs::open_dir_path(&tmp.join("root"))?;
    // A deterministic root (the tar may override it with "./").
    fs::fchown(rootfd.as_fd(), 0, 0)?;
    fs::fchmod(rootfd.as_fd(), 0o755)?;
    let t0 = std::time::Instant::now();
    let written = unpack_blob_progress(blob, diff_id, &rootfd, limits, Some(progress))?;
    let t1 = std::time::Instant::now();
    // One syncfs per layer (not an fsync per file), so that the layer is on
    // disk before it becomes visible under layers/; it runs while the tree
    // is scanned (stats of every path; file contents come from the hashes
    // taken while writing). The two files written after it began are
    // fsynced with their directory.
    let (t, t2) = std::thread::scope(|sc| {
        // SAFETY: plain syscall on our fd.
        let sync = sc.spawn(|| unsafe { libc::syncfs(rootfd.as_raw_fd()) });
        let t = tree::scan_known(&rootfd, &written);
        let t2 = std::time::Instant::now();
        let _ = sync.join();
        (t, t2)
    });
    let t = t?;
    let t3 = std::time::Instant::now();
    let td = tree::digest(&t).to_string();
    let meta = LayerMeta { diff_id: diff_id.to_string(), tree_digest: td.clone() };
    for (name, data) in [("tree.txt", tree::serialize(&t).into_bytes()), ("layer.json", serde_json::to_vec_pretty(&meta).unwrap_or_default())] {
        let mut f = File::create(tmp.join(name)).with_ctx(|| format!("write {name}"))?;
        f.write_all(&data).and_then(|_| f.sync_all()).with_ctx(|| format!("write {name}"))?;
    }
    File::open(tmp).and_then(|d| d.sync_all()).ctx("fsync staging dir")?;
    crate::debug!(
        "layer {diff_id}: unpack {:?}, tree scan {:?} (while syncfs), syncfs {:?} in all",
        t1 - t0,
        t2 - t1,
        t3 - t1
    );
    Ok(td)
}

fn progress_on_tty() -> bool {
    // SAFETY: plain syscall.
    let tty = unsafe { libc::isatty(2) == 1 };
    tty && std::env::var_os("STELE_NO_PROGRESS").is_none()
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

/// A progress line on stderr (a terminal): compressed bytes read / total,
/// redrawn at most 10 times a second until `finished`.
fn draw_progress(done: &AtomicU64, total: u64, layers: usize, finished: &std::sync::atomic::AtomicBool) {
    use std::io::Write;
    let start = std::time::Instant::now();
    let mut err = std::io::stderr();
    let mut drawn = false;
    while !finished.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let d = done.load(Ordering::Relaxed).min(total);
        let pct = (d * 100).checked_div(total).unwrap_or(100);
        let bar: String = (0..30).map(|i| if (i as u64) < pct * 30 / 100 { '#' } else { '.' }).collect();
        let rate = mb(d) / start.elapsed().as_secs_f64().max(0.001);
        let _ = write!(err, "\rimporting {layers} layer(s) [{bar}] {:.1}/{:.1} MB {pct:>3}% {rate:.0} MB/s ", mb(d), mb(total));
        let _ = err.flush();
        drawn = true;
    }
    if drawn {
        let _ = writeln!(err);
    }
}

/// Counts bytes read into a shared counter (progress, compressed bytes consumed).
struct Counted<'a, R> {
    inner: R,
    count: Option<&'a AtomicU64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = self.count {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<'_, R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        if let Some(c) = self.count {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

impl Store {
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["layers", "configs", "images", "tmp"] {
            std::fs::create_dir_all(root.join(d)).with_ctx(|| format!("create store {}", root.display()))?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).ctx("chmod store")?;
        // Absolute and canonical: layer paths written into bundles must
        // resolve the same from anywhere.
        let root = std::fs::canonicalize(root).with_ctx(|| format!("resolve store {}", root.display()))?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self, exclusive: bool) -> Result<Lock> {
        Lock::take(&self.root.join("lock"), exclusive)
    }

    /// Directory of a layer entry (holds `root/`, `tree.txt`, `layer.json`).
    pub fn layer_entry(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers").join(Digest::parse(diff_id)?.key()))
    }

    /// The layer tree itself, usable as an overlay lower dir.
    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.layer_entry(diff_id)?.join("root"))
    }

    fn image_path(&self, name: &str) -> PathBuf {
        self.root.join("images").join(format!("{}.json", Digest::sha256_of(name.as_bytes()).hex))
    }

    /// Import an image reference (`oci:…`, `oci-archive:…`, `docker-archive:…`).
    pub fn import(&self, reference: &str, opts: &ImportOptions) -> Result<ImageRecord> {
        let r = ImageRef::parse(reference)?;
        let _lock = self.lock(false)?;
        let mut staged = Staged(Vec::new());
        let resolved = match &r {
            ImageRef::Layout { dir, tag, digest } => source::resolve_layout(dir, tag.as_deref(), digest.as_deref())?,
            ImageRef::OciArchive { file, tag } | ImageRef::DockerArchive { file, tag } => {
                let x = self.root.join("tmp").join(unique("src"));
                staged.0.push(x.clone());
                std::fs::create_dir(&x).ctx("create staging dir")?;
                source::extract_archive(file, &x, opts.limits.max_bytes)?;
                if matches!(r, ImageRef::OciArchive { .. }) {
                    source::resolve_layout(&x, tag.as_deref(), None)?
                } else {
                    source::resolve_docker(&x, tag.as_deref())?
                }
            }
        };
        let name = opts.name.clone().or(resolved.name.clone()).unwrap_or_else(|| reference.to_string());
        let rec = self.import_resolved(reference, &name, &resolved, &opts.limits, &mut staged)?;
        Ok(rec)
    }

    fn import_resolved(&self, reference: &str, name: &str, img: &Resolved, limits: &Limits, staged: &mut Staged) -> Result<ImageRecord> {
        let cfg: Value = serde_json::from_slice(&img.config).map_err(|e| Error::msg(format!("config {}: {e}", img.config_digest)))?;
        let diff_ids: Vec<Digest> = cfg
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::msg(format!("config {}: no rootfs.diff_ids", img.config_digest)))?
            .iter()
            .map(|v| Digest::parse(v.as_str().unwrap_or("")))
            .collect::<Result<_>>()
            .with_ctx(|| format!("config {}", img.config_digest))?;
        if diff_ids.len() != img.layers.len() {
            crate::bail!(
                "config {}: {} diff_ids for {} layers in manifest {}",
                img.config_digest,
                diff_ids.len(),
                img.layers.len(),
                img.manifest_digest
            );
        }
        // Which layers need unpacking (once each: an image may repeat a layer).
        let mut known: std::collections::HashMap<Digest, String> = Default::default();
        let mut jobs: Vec<(usize, PathBuf, PathBuf)> = Vec::new(); // (layer index, tmp, entry)
        for (i, diff_id) in diff_ids.iter().enumerate() {
            let entry = self.root.join("layers").join(diff_id.key());
            if known.contains_key(diff_id) || jobs.iter().any(|(j, _, _)| diff_ids[*j] == *diff_id) {
                continue;
            }
            if let Ok(m) = std::fs::read(entry.join("layer.json")) {
                let m: LayerMeta = serde_json::from_slice(&m).map_err(|e| Error::msg(format!("{}: {e}", entry.display())))?;
                known.insert(diff_id.clone(), m.tree_digest);
                continue;
            }
            let tmp = self.root.join("tmp").join(unique("layer"));
            staged.0.push(tmp.clone());
            jobs.push((i, tmp, entry));
        }
        let total: u64 = jobs
            .iter()
            .map(|(i, _, _)| img.layers[*i].size.or_else(|| std::fs::metadata(&img.layers[*i].path).ok().map(|m| m.len())).unwrap_or(0))
            .sum();
        // Independent layers unpack in parallel: each is one streaming pass
        // (read → blob hash → decompress → diff_id hash → files), then a tree scan.
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, MAX_UNPACK_THREADS).min(jobs.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done_bytes = AtomicU64::new(0);
        let finished = std::sync::atomic::AtomicBool::new(false);
        let mut results: Vec<Option<Result<String>>> = (0..jobs.len()).map(|_| None).collect();
        std::thread::scope(|sc| {
            let progress = progress_on_tty().then(|| sc.spawn(|| draw_progress(&done_bytes, total, jobs.len(), &finished)));
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    sc.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            let Some((i, tmp, _)) = jobs.get(k) else { break };
                            let r = unpack_layer(&img.layers[*i], &diff_ids[*i], tmp, limits, &done_bytes);
                            let failed = r.is_err();
                            out.push((k, r));
                            if failed {
                                // Stop handing out work: the import fails anyway.
                                next.store(usize::MAX / 2, Ordering::Relaxed);
                            }
                        }
                        out
                    })
                })
                .collect();
            for w in workers {
                for (k, r) in w.join().unwrap_or_default() {
                    results[k] = Some(r);
                }
            }
            finished.store(true, Ordering::Relaxed);
            if let Some(p) = progress {
                let _ = p.join();
            }
        });
        let mut to_commit: Vec<(PathBuf, PathBuf)> = Vec::new();
        for ((i, tmp, entry), r) in jobs.iter().zip(results) {
            match r {
                Some(Ok(td)) => {
                    known.insert(diff_ids[*i].clone(), td);
                    to_commit.push((tmp.clone(), entry.clone()));
                }
                Some(Err(e)) => return Err(e),
                None => crate::bail!("layer {}: not unpacked (another layer failed)", diff_ids[*i]),
            }
        }
        let mut layers = Vec::new();
        for (blob, diff_id) in img.layers.iter().zip(&diff_ids) {
            let tree_digest = known.get(diff_id).cloned().ok_or_else(|| Error::msg(format!("layer {diff_id}: not imported")))?;
            layers.push(LayerRecord {
                diff_id: diff_id.to_string(),
                blob_digest: blob.digest.as_ref().map(|d| d.to_string()),
                tree_digest,
            });
        }
        // Every layer verified: commit.
        for (tmp, entry) in to_commit {
            match std::fs::rename(&tmp, &entry) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY)) => {
                    crate::debug!("layer {} imported concurrently; keeping the existing copy", entry.display());
                }
                Err(e) => return Err(e).with_ctx(|| format!("commit {}", entry.display())),
            }
        }
        let cpath = self.root.join("configs").join(img.config_digest.key());
        if !cpath.exists() {
            write_atomic(&cpath, &img.config)?;
        }
        let rec = ImageRecord {
            name: name.to_string(),
            source: reference.to_string(),
            manifest_digest: img.manifest_digest.to_string(),
            config_digest: img.config_digest.to_string(),
            layers,
        };
        write_atomic(&self.image_path(name), &serde_json::to_vec_pretty(&rec).unwrap_or_default())?;
        Ok(rec)
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.root.join("images")).ctx("read store images")? {
            let p = e.ctx("read store images")?.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let b = std::fs::read(&p).with_ctx(|| format!("read {}", p.display()))?;
            out.push(serde_json::from_slice(&b).map_err(|e| Error::msg(format!("{}: {e}", p.display())))?);
        }
        out.sort_by(|a: &ImageRecord, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn get(&self, name: &str) -> Result<ImageRecord> {
        let p = self.image_path(name);
        let b = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => crate::bail!("image {name:?} not found in the store"),
            Err(e) => return Err(e).with_ctx(|| format!("read {}", p.display())),
        };
        serde_json::from_slice(&b).map_err(|e| Error::msg(format!("{}: {e}", p.display())))
    }

    /// The image config, re-verified against its digest.
    pub fn config(&self, rec: &ImageRecord) -> Result<Vec<u8>> {
        let d = Digest::parse(&rec.config_digest)?;
        let b = std::fs::read(self.root.join("configs").join(d.key())).with_ctx(|| format!("read config {d}"))?;
        digest::check("config", &d, None, &Digest::of(d.algo, &b), b.len() as u64)?;
        Ok(b)
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        let _l = self.lock(true)?;
        self.get(name)?;
        std::fs::remove_file(self.image_path(name)).with_ctx(|| format!("remove image {name}"))
    }

    /// Remove layers and configs no image refers to, and stale staging dirs.
    pub fn gc(&self) -> Result<GcReport> {
        let _l = self.lock(true)?;
        let mut keep_layers = BTreeSet::new();
        let mut keep_cfg = BTreeSet::new();
        for r in self.list()? {
            keep_cfg.insert(Digest::parse(&r.config_digest)?.key());
            for l in &r.layers {
                keep_layers.insert(Digest::parse(&l.diff_id)?.key());
            }
        }
        let mut rep = GcReport::default();
        for (dir, keep, out) in [
            ("layers", &keep_layers, &mut rep.removed_layers),
            ("configs", &keep_cfg, &mut rep.removed_configs),
        ] {
            for e in std::fs::read_dir(self.root.join(dir)).ctx("read store")? {
                let e = e.ctx("read store")?;
                let n = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(&n) {
                    let p = e.path();
                    if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) }
                        .with_ctx(|| format!("remove {}", p.display()))?;
                    out.push(n);
                }
            }
        }
        // Exclusive lock held: no import is staging right now.
        for e in std::fs::read_dir(self.root.join("tmp")).ctx("read store tmp")? {
            let p = e.ctx("read store tmp")?.path();
            let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        }
        Ok(rep)
    }

    /// Recompute every layer's tree and compare with what was recorded at import.
    pub fn verify(&self, name: &str) -> Result<Report> {
        let _l = self.lock(false)?;
        let rec = self.get(name)?;
        let mut rep = Report::default();
        for l in &rec.layers {
            verify_layer_dir(&self.layer_dir(&l.diff_id)?, Some(&l.tree_digest), &mut rep)?;
        }
        Ok(rep)
    }
}

/// Verify one store layer directory (`…/layers/<key>/root`) against the
/// `tree.txt` beside it (and the expected digest, when given).
pub fn verify_layer_dir(dir: &Path, expected: Option<&str>, rep: &mut Report) -> Result<()> {
    let entry = dir.parent().ok_or_else(|| Error::msg(format!("{}: not a store layer", dir.display())))?;
    let recorded = std::fs::read_to_string(entry.join("tree.txt")).with_ctx(|| format!("read {}/tree.txt", entry.display()))?;
    let recorded = tree::parse(&recorded)?;
    if let Some(exp) = expected {
        let d = tree::digest(&recorded).to_string();
        if d != exp {
            crate::bail!("{}: recorded tree digest {d} does not match the image record {exp}", entry.display());
        }
    }
    let now = tree::scan_path(dir)?;
    for d in tree::diff(&recorded, &now) {
        rep.drift.push((dir.to_path_buf(), d));
    }
    rep.checked.push(dir.to_path_buf());
    Ok(())
}
