//! A cache of compiled programs under the state root, so that a profile
//! (most often the same default one for every container) is compiled once
//! per stele binary, not on every start (~0.2-0.3 ms saved per start).
//!
//! The key is a SHA-256 of the profile's JSON and of the running binary's
//! identity (device, inode, size, mtime of /proc/self/exe): a new stele build
//! never reads programs an older one compiled. Entries are written to a
//! temp file and renamed; anything that does not decode exactly is ignored
//! and recompiled. The directory is the runtime's own (root only).

use super::{compile, Program};
use crate::error::Result;
use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const MAGIC: &[u8; 8] = b"STELESC1";

fn key(profile: &LinuxSeccomp) -> Option<String> {
    let exe = std::fs::metadata("/proc/self/exe").ok()?;
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(profile).ok()?);
    for v in [exe.dev(), exe.ino(), exe.size(), exe.mtime() as u64, exe.mtime_nsec() as u64] {
        h.update(v.to_le_bytes());
    }
    Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn encode(p: &Program) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + p.filter.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(p.flags as u64).to_le_bytes());
    out.push(p.listener as u8);
    out.extend_from_slice(&(p.filter.len() as u32).to_le_bytes());
    for i in &p.filter {
        out.extend_from_slice(&i.code.to_le_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_le_bytes());
    }
    out
}

fn decode(b: &[u8]) -> Option<Program> {
    let rest = b.strip_prefix(MAGIC.as_slice())?;
    let flags = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let listener = match *rest.get(8)? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let n = u32::from_le_bytes(rest.get(9..13)?.try_into().ok()?) as usize;
    let body = rest.get(13..)?;
    if n == 0 || n > 4096 || body.len() != n * 8 {
        return None;
    }
    let filter = body
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some(Program { filter, flags: flags as libc::c_ulong, listener })
}

/// [`compile`], through the cache in `dir` (created if missing). A cache
/// that cannot be read or written only costs the compile.
pub fn compile_cached(profile: &LinuxSeccomp, dir: &Path) -> Result<Program> {
    let Some(k) = key(profile) else { return compile(profile) };
    let path = dir.join(&k);
    if let Some(p) = std::fs::read(&path).ok().as_deref().and_then(decode) {
        return Ok(p);
    }
    let p = compile(profile)?;
    if std::fs::create_dir_all(dir).is_ok() {
        let tmp = dir.join(format!(".{k}.{}", std::process::id()));
        if std::fs::write(&tmp, encode(&p)).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reuse() {
        let dir = std::env::temp_dir().join(format!("stele-sc-cache-{}", std::process::id()));
        let profile = crate::seccomp::default_profile();
        let a = compile_cached(&profile, &dir).unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(files.len(), 1, "one entry, no temp files");
        let b = compile_cached(&profile, &dir).unwrap();
        assert_eq!(encode(&a), encode(&b));
        let direct = compile(&profile).unwrap();
        assert_eq!(encode(&a), encode(&direct));
        // a damaged entry is ignored, not trusted
        std::fs::write(files[0].path(), b"STELESC1garbage").unwrap();
        let c = compile_cached(&profile, &dir).unwrap();
        assert_eq!(encode(&c), encode(&direct));
        assert!(decode(b"nope").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
