//! User namespaces: a new one per container, with the config's uid and gid
//! mappings.
//!
//! The init is cloned straight into the new user namespace (with the other
//! new namespaces, which it therefore owns). Until the runtime has written
//! `/proc/<pid>/uid_map` and `gid_map` the init is nobody there, so it waits
//! for the runtime's word before anything else, then becomes the namespace's
//! root (`setresgid`/`setresuid` 0: the host ids that 0 maps to). From then on
//! it holds every capability over its own namespaces and none over the
//! host's: file access on the host goes by the mapped ids (the bundle's
//! rootfs must be reachable by them, as with runc), device nodes cannot be
//! made (the host's are bind-mounted instead), and sysfs needs a network
//! namespace of its own (else the host's /sys is bound, read-only).
//!
//! A user namespace joined by path (a pod's) must own the namespaces stele
//! makes for the container: an intermediate process enters it and clones the
//! init from there (src/process.rs). Its maps are its creator's: mappings in
//! the config are then only checked, never written.

use crate::bail;
use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

/// The kernel's limit on lines in an id map.
const MAX_LINES: usize = 340;

/// Does the container get a new user namespace?
pub fn is_new(spec: &Spec) -> bool {
    crate::spec::has_new_ns(spec, LinuxNamespaceType::User)
}

fn maps(spec: &Spec) -> (&[LinuxIdMapping], &[LinuxIdMapping]) {
    let l = spec.linux().as_ref();
    (
        l.and_then(|l| l.uid_mappings().as_deref()).unwrap_or(&[]),
        l.and_then(|l| l.gid_mappings().as_deref()).unwrap_or(&[]),
    )
}

/// config.json's side: mappings only with a new user namespace, both of
/// them, well-formed, and the process's ids inside them.
pub fn validate(spec: &Spec) -> Result<()> {
    let (uids, gids) = maps(spec);
    let joined = !is_new(spec) && crate::spec::has_ns(spec, LinuxNamespaceType::User);
    if !is_new(spec) && !joined {
        for (name, m) in [("uidMappings", uids), ("gidMappings", gids)] {
            if !m.is_empty() {
                bail!("config.json: linux.{name}: given, but linux.namespaces has no user namespace");
            }
        }
        return Ok(());
    }
    for (name, m) in [("uidMappings", uids), ("gidMappings", gids)] {
        if !(joined && m.is_empty()) {
            check_map(name, m)?;
        }
    }
    if uids.is_empty() || gids.is_empty() {
        return Ok(()); // joined: the namespace's own maps decide
    }
    if let Some(u) = spec.process().as_ref().map(|p| p.user()) {
        if !maps_id(uids, u.uid()) {
            bail!("config.json: process.user.uid: {} is not mapped by linux.uidMappings", u.uid());
        }
        if !maps_id(gids, u.gid()) {
            bail!("config.json: process.user.gid: {} is not mapped by linux.gidMappings", u.gid());
        }
        for g in u.additional_gids().as_deref().unwrap_or(&[]) {
            if !maps_id(gids, *g) {
                bail!("config.json: process.user.additionalGids: {g} is not mapped by linux.gidMappings");
            }
        }
    }
    Ok(())
}

fn check_map(name: &str, m: &[LinuxIdMapping]) -> Result<()> {
    if m.is_empty() {
        bail!("config.json: linux.{name}: required with a new user namespace");
    }
    if m.len() > MAX_LINES {
        bail!("config.json: linux.{name}: {} entries, the kernel takes at most {MAX_LINES}", m.len());
    }
    let end = |start: u32, size: u32| start as u64 + size as u64;
    for (i, e) in m.iter().enumerate() {
        if e.size() == 0 {
            bail!("config.json: linux.{name}[{i}].size: must be at least 1");
        }
        if end(e.container_id(), e.size()) > 1 << 32 || end(e.host_id(), e.size()) > 1 << 32 {
            bail!("config.json: linux.{name}[{i}]: the range goes past the largest id (4294967295)");
        }
        for (j, o) in m[..i].iter().enumerate() {
            let overlap = |a: u32, b: u32| (a as u64) < end(b, o.size()) && (b as u64) < end(a, e.size());
            if overlap(e.container_id(), o.container_id()) || overlap(e.host_id(), o.host_id()) {
                bail!("config.json: linux.{name}[{i}]: overlaps linux.{name}[{j}]");
            }
        }
    }
    Ok(())
}

fn maps_id(m: &[LinuxIdMapping], id: u32) -> bool {
    m.iter().any(|e| id >= e.container_id() && (id as u64) < e.container_id() as u64 + e.size() as u64)
}

fn map_text(m: &[LinuxIdMapping]) -> String {
    m.iter().map(|e| format!("{} {} {}\n", e.container_id(), e.host_id(), e.size())).collect()
}

/// The runtime's side, right after clone: write the init's id maps (each in
/// one write, as the kernel requires).
pub fn write_maps(spec: &Spec, pid: i32) -> Result<()> {
    let (uids, gids) = maps(spec);
    for (file, field, m) in [("uid_map", "uidMappings", uids), ("gid_map", "gidMappings", gids)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, map_text(m)).map_err(|e| {
            Error::os(format!("linux.{field}: write {path}"), e.raw_os_error().unwrap_or(libc::EIO))
        })?;
    }
    Ok(())
}

/// The init's (or an exec'd process's) side, once the maps are written:
/// become root of the namespace, so that files it makes belong to ids the
/// namespace knows (a new tmpfs refuses unmapped owners).
pub fn become_root() -> Result<()> {
    // SAFETY: plain syscalls with integer arguments.
    unsafe {
        if libc::setresgid(0, 0, 0) != 0 {
            return Err(Error::os("user namespace: setresgid 0", nix::errno::Errno::last_raw()));
        }
        if libc::setresuid(0, 0, 0) != 0 {
            return Err(Error::os("user namespace: setresuid 0", nix::errno::Errno::last_raw()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        oci_spec::runtime::LinuxIdMappingBuilder::default().container_id(c).host_id(h).size(s).build().unwrap()
    }

    #[test]
    fn maps_are_checked_and_written() {
        assert!(check_map("uidMappings", &[m(0, 100000, 65536)]).is_ok());
        assert!(check_map("uidMappings", &[]).unwrap_err().to_string().contains("required"));
        assert!(check_map("uidMappings", &[m(0, 1, 0)]).unwrap_err().to_string().contains("[0].size"));
        assert!(check_map("uidMappings", &[m(0, u32::MAX, 2)]).unwrap_err().to_string().contains("past the largest"));
        let e = check_map("gidMappings", &[m(0, 1000, 10), m(5, 5000, 10)]).unwrap_err().to_string();
        assert!(e.contains("linux.gidMappings[1]: overlaps linux.gidMappings[0]"), "{e}");
        let e = check_map("gidMappings", &[m(0, 1000, 10), m(10, 1005, 1)]).unwrap_err().to_string();
        assert!(e.contains("overlaps"), "{e}");
        assert!(check_map("gidMappings", &[m(0, 1000, 10), m(10, 1010, 1)]).is_ok());
        let two = [m(0, 100000, 1000), m(1000, 5000, 10)];
        assert!(maps_id(&two, 0) && maps_id(&two, 1009) && !maps_id(&two, 1010));
        assert_eq!(map_text(&two), "0 100000 1000\n1000 5000 10\n");
    }
}
