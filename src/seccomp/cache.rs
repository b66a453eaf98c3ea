//! A cache of compiled programs under the state root, so that a profile
//! (most often the same default one for every container) is compiled once
//! per stele binary, not on every start (~0.2-0.3 ms saved per start).
//!
//! An entry holds the profile's JSON and the identity of the binary that
//! compiled it (device, inode, size, mtime of /proc/self/exe) next to the
//! program, and is used only if both are exactly those of this start: a new
//! stele build never reads programs an older one compiled, and a profile
//! crafted to collide with another's file name gets a miss, never the other
//! program. The file name is a hash of the same bytes (std's SipHash: no
//! cryptographic hash is needed when the content is compared, and SHA-256's
//! CPU-feature probing alone costs tens of microseconds in a VM). Entries are
//! written to a temp file and renamed; anything that does not decode exactly
//! is ignored and recompiled. The directory is the runtime's own (root only).

use super::{compile, Program};
use crate::error::Result;
use oci_spec::runtime::LinuxSeccomp;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const MAGIC: &[u8; 8] = b"STELESC2";

/// What an entry must match: the profile's JSON and the binary's identity.
fn identity(profile: &LinuxSeccomp) -> Option<Vec<u8>> {
    let exe = std::fs::metadata("/proc/self/exe").ok()?;
    let mut id = serde_json::to_vec(profile).ok()?;
    for v in [exe.dev(), exe.ino(), exe.size(), exe.mtime() as u64, exe.mtime_nsec() as u64] {
        id.extend_from_slice(&v.to_le_bytes());
    }
    Some(id)
}

fn file_name(id: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    format!("{:016x}-{}", h.finish(), id.len())
}

fn encode(p: &Program, id: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(28 + id.len() + p.filter.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(id.len() as u32).to_le_bytes());
    out.extend_from_slice(id);
    let flags: u64 = p.flags as _;
    out.extend_from_slice(&flags.to_le_bytes());
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

fn decode(b: &[u8], id: &[u8]) -> Option<Program> {
    let rest = b.strip_prefix(MAGIC.as_slice())?;
    let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let rest = rest.get(4..)?.strip_prefix(id).filter(|_| n == id.len())?;
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
    let Some(id) = identity(profile) else { return compile(profile) };
    let name = file_name(&id);
    let path = dir.join(&name);
    if let Some(p) = std::fs::read(&path).ok().and_then(|b| decode(&b, &id)) {
        return Ok(p);
    }
    let p = compile(profile)?;
    if std::fs::create_dir_all(dir).is_ok() {
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        if std::fs::write(&tmp, encode(&p, &id)).is_ok() && std::fs::rename(&tmp, &path).is_err() {
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
        let id = identity(&profile).unwrap();
        assert_eq!(encode(&a, &id), encode(&b, &id));
        let direct = compile(&profile).unwrap();
        assert_eq!(encode(&a, &id), encode(&direct, &id));
        // a damaged entry is ignored, not trusted
        std::fs::write(files[0].path(), b"STELESC2garbage").unwrap();
        let c = compile_cached(&profile, &dir).unwrap();
        assert_eq!(encode(&c, &id), encode(&direct, &id));
        assert!(decode(b"nope", &id).is_none());
        // an entry compiled from another profile, under this profile's name
        // (a crafted collision), is a miss: the other program is never used
        let mut other = profile.clone();
        other.set_default_action(oci_spec::runtime::LinuxSeccompAction::ScmpActAllow);
        let other_prog = compile(&other).unwrap();
        std::fs::write(files[0].path(), encode(&other_prog, &identity(&other).unwrap())).unwrap();
        let d = compile_cached(&profile, &dir).unwrap();
        assert_eq!(encode(&d, &id), encode(&direct, &id));
        assert_ne!(encode(&other_prog, &id), encode(&direct, &id));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
