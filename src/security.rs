//! Process attributes applied in the container's init just before exec:
//! capabilities (all five sets), user and groups, rlimits, no_new_privs,
//! umask. Validation that can fail runs before the container is reported
//! ready, so `create` (not a later `start`) reports it.

use crate::error::{Context, Error, Result};
use crate::bail;
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimitType, Process};

/// Every capability name stele knows, sorted (for `features`).
pub fn all_capability_names() -> Vec<String> {
    let mut v: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

fn cap_of(c: &oci_spec::runtime::Capability, field: &str) -> Result<Capability> {
    let name = serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    name.parse::<Capability>()
        .map_err(|_| Error::msg(format!("config.json: {field}: unknown capability {name:?}")))
}

/// The five sets, resolved. `None` in the config means the empty set: a
/// missing `capabilities` object gives the process no capabilities at all.
#[derive(Clone, Debug, Default)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

impl CapSets {
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Result<CapSets> {
        let mut s = CapSets::default();
        let Some(c) = c else { return Ok(s) };
        let sets: [(&str, &Option<oci_spec::runtime::Capabilities>, &mut CapsHashSet); 5] = [
            ("bounding", c.bounding(), &mut s.bounding),
            ("effective", c.effective(), &mut s.effective),
            ("permitted", c.permitted(), &mut s.permitted),
            ("inheritable", c.inheritable(), &mut s.inheritable),
            ("ambient", c.ambient(), &mut s.ambient),
        ];
        for (name, list, out) in sets {
            for cap in list.iter().flatten() {
                out.insert(cap_of(cap, &format!("process.capabilities.{name}"))?);
            }
        }
        Ok(s)
    }

    /// Refuse capabilities the host cannot give (not in our bounding set).
    pub fn check_available(&self) -> Result<()> {
        // One PR_CAPBSET_READ per capability asked for (not per capability known).
        let all = [&self.bounding, &self.effective, &self.permitted, &self.inheritable, &self.ambient];
        let mut wanted: Vec<Capability> = all.iter().flat_map(|s| s.iter().copied()).collect();
        wanted.sort_by_key(|c| c.index());
        wanted.dedup();
        let mut missing: Vec<String> = wanted
            .into_iter()
            // SAFETY: prctl with integer arguments.
            .filter(|c| unsafe { libc::prctl(libc::PR_CAPBSET_READ, c.index() as libc::c_ulong, 0, 0, 0) } != 1)
            .map(|c| c.to_string())
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            bail!(
                "process.capabilities: {} not available on this host (missing from the runtime's bounding set)",
                missing.join(", ")
            );
        }
        Ok(())
    }

    /// Drop the bounding set to the configured one (needs CAP_SETPCAP; run
    /// before changing uid).
    pub fn apply_bounding(&self) -> Result<()> {
        for c in caps::all() {
            if !self.bounding.contains(&c) {
                // A capability the kernel does not know cannot be dropped: ignore EINVAL.
                if let Err(e) = caps::drop(None, CapSet::Bounding, c) {
                    if caps::runtime::thread_all_supported().contains(&c) {
                        return Err(Error::msg(format!("drop {c} from the bounding set: {e}")));
                    }
                }
            }
        }
        Ok(())
    }

    /// Set effective, permitted, inheritable, then raise ambient.
    pub fn apply_sets(&self) -> Result<()> {
        let err = |what: &str, e: caps::errors::CapsError| Error::msg(format!("set {what} capabilities: {e}"));
        // Inheritable first (raising it needs the current full permitted set),
        // then effective (must stay within permitted), then permitted.
        caps::set(None, CapSet::Inheritable, &self.inheritable).map_err(|e| err("inheritable", e))?;
        caps::set(None, CapSet::Effective, &self.effective).map_err(|e| err("effective", e))?;
        caps::set(None, CapSet::Permitted, &self.permitted).map_err(|e| err("permitted", e))?;
        caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
        for c in &self.ambient {
            // As runc: an ambient capability needs to be permitted and
            // inheritable; one that is not is skipped, not fatal.
            if let Err(e) = caps::raise(None, CapSet::Ambient, *c) {
                crate::debug!("cannot raise ambient capability {c}: {e}");
            }
        }
        Ok(())
    }
}

/// The RLIMIT_* number (its C type differs between glibc and musl).
fn rlimit_resource(t: PosixRlimitType) -> Option<libc::c_int> {
    use PosixRlimitType as R;
    Some(match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
        #[allow(unreachable_patterns)]
        _ => return None,
    } as libc::c_int)
}

/// Apply process.rlimits to the calling process (inherited by children).
pub fn apply_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().as_deref().unwrap_or(&[]) {
        let name = serde_json::to_value(r.typ()).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let Some(res) = rlimit_resource(r.typ()) else { bail!("process.rlimits: {name} is not supported") };
        let lim = libc::rlimit { rlim_cur: r.soft(), rlim_max: r.hard() };
        // SAFETY: valid rlimit struct.
        if unsafe { libc::setrlimit(res as _, &lim) } != 0 {
            return Err(Error::os(
                format!("process.rlimits: {name}: setrlimit soft={} hard={}", r.soft(), r.hard()),
                nix::errno::Errno::last_raw(),
            ));
        }
    }
    Ok(())
}

/// Switch to the configured user and groups (keeping capabilities across
/// the switch so that `apply_sets` can set them afterwards).
pub fn apply_user(p: &Process) -> Result<()> {
    let u = p.user();
    let groups: Vec<libc::gid_t> = u.additional_gids().as_deref().unwrap_or(&[]).to_vec();
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    // SAFETY: valid pointer and length.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        return Err(Error::os("process.user.additionalGids: setgroups", nix::errno::Errno::last_raw()));
    }
    nix::unistd::setresgid(u.gid().into(), u.gid().into(), u.gid().into())
        .with_ctx(|| format!("process.user.gid: setgid {}", u.gid()))?;
    nix::unistd::setresuid(u.uid().into(), u.uid().into(), u.uid().into())
        .with_ctx(|| format!("process.user.uid: setuid {}", u.uid()))?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(u.umask().unwrap_or(0o022) as libc::mode_t) };
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::os("set no_new_privs", nix::errno::Errno::last_raw()));
    }
    Ok(())
}

pub fn set_dumpable(on: bool) {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) };
}

/// Write oom_score_adj for the calling process.
pub fn set_oom_score_adj(v: i32, proc: &crate::sys::PrivateProc) -> Result<()> {
    // by pid: "self" is a symlink, and the private procfs follows none
    proc.write(&format!("{}/oom_score_adj", std::process::id()), &v.to_string()).ctx("process.oomScoreAdj")
}
