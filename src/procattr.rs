//! Attributes the config gives the container's process besides credentials:
//! `process.scheduler` (sched_setattr), `process.ioPriority` (ioprio_set),
//! `linux.personality` and `linux.memoryPolicy` (set_mempolicy). Set by the
//! init (and by `exec`) on itself just before its credentials and seccomp,
//! as runc does: the filter may not allow these calls, and a real-time
//! policy needs capabilities that are dropped. And `process.execCPUAffinity`
//! (exec only, as the runtime spec says): [`exec_affinity`].

use crate::error::{Error, Result};
use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy,
    MemoryPolicyFlagType, MemoryPolicyModeType, Scheduler,
};

/// Check what the kernel would refuse less clearly; errors name the field.
pub fn validate(sched: Option<&Scheduler>, ioprio: Option<&oci_spec::runtime::LinuxIOPriority>, linux: &Linux) -> Result<()> {
    if let Some(m) = linux.memory_policy() {
        node_mask(m)?;
    }
    if let Some(s) = sched {
        if *s.policy() == LinuxSchedulerPolicy::SchedIso {
            return Err(Error::msg("config.json: process.scheduler.policy: SCHED_ISO is not a Linux scheduling policy"));
        }
        if let Some(n) = *s.nice() {
            if !(-20..=19).contains(&n) {
                return Err(Error::msg(format!("config.json: process.scheduler.nice: {n} is outside -20..19")));
            }
        }
    }
    if let Some(p) = ioprio {
        if !(0..=7).contains(&p.priority()) {
            return Err(Error::msg(format!("config.json: process.ioPriority.priority: {} is outside 0..7", p.priority())));
        }
    }
    if let Some(p) = linux.personality() {
        if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(Error::msg("config.json: linux.personality.flags: not supported (only the domain is)"));
        }
    }
    Ok(())
}

/// Apply them to the calling process.
pub fn apply(sched: Option<&Scheduler>, ioprio: Option<&oci_spec::runtime::LinuxIOPriority>, linux: Option<&Linux>) -> Result<()> {
    if let Some(m) = linux.and_then(|l| l.memory_policy().as_ref()) {
        set_memory_policy(m)?;
    }
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        personality(p)?;
    }
    if let Some(s) = sched {
        set_scheduler(s)?;
    }
    if let Some(p) = ioprio {
        let class: i64 = match p.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        const IOPRIO_WHO_PROCESS: i64 = 1;
        // SAFETY: plain syscall with integer arguments (0: this process).
        if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (class << 13) | p.priority()) } != 0 {
            return Err(Error::os("process.ioPriority: ioprio_set", nix::errno::Errno::last_raw()));
        }
    }
    Ok(())
}

fn personality(p: &LinuxPersonality) -> Result<()> {
    let domain = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: plain syscall with an integer argument.
    if unsafe { libc::personality(domain) } == -1 {
        return Err(Error::os("linux.personality: personality", nix::errno::Errno::last_raw()));
    }
    Ok(())
}

/// Node masks up to this many NUMA nodes (the kernel's MAX_NUMNODES is at
/// most 1024).
const MAX_NODES: usize = 1024;

/// The mode (with flags) and node mask `linux.memoryPolicy` asks for.
fn node_mask(m: &LinuxMemoryPolicy) -> Result<(i32, [u64; MAX_NODES / 64])> {
    use MemoryPolicyModeType as M;
    let mode = match m.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    let flags = m.flags().as_deref().unwrap_or(&[]).iter().fold(0, |f, fl| {
        f | match fl {
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        }
    });
    let mut mask = [0u64; MAX_NODES / 64];
    let nodes = m.nodes().as_deref().unwrap_or("");
    for item in nodes.split(',').filter(|i| !i.is_empty()) {
        let Some((a, b)) = crate::spec::list_range(item).filter(|&(a, b)| a.max(b) < MAX_NODES as u64) else {
            return Err(Error::msg(format!("config.json: linux.memoryPolicy.nodes: {nodes:?} is not a node list (N or N-M, comma-separated, below {MAX_NODES})")));
        };
        for n in a as usize..=b as usize {
            mask[n / 64] |= 1 << (n % 64);
        }
    }
    let empty = mask.iter().all(|w| *w == 0);
    match m.mode() {
        M::MpolDefault | M::MpolLocal if !empty => {
            return Err(Error::msg("config.json: linux.memoryPolicy.nodes: must be empty for MPOL_DEFAULT and MPOL_LOCAL"))
        }
        M::MpolBind | M::MpolInterleave | M::MpolPreferredMany | M::MpolWeightedInterleave if empty => {
            return Err(Error::msg("config.json: linux.memoryPolicy.nodes: required for this mode"))
        }
        _ => {}
    }
    Ok((mode | flags, mask))
}

fn set_memory_policy(m: &LinuxMemoryPolicy) -> Result<()> {
    let (mode, mask) = node_mask(m)?;
    // SAFETY: a node mask of MAX_NODES bits; the kernel reads maxnode - 1 bits.
    if unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, mask.as_ptr(), MAX_NODES + 1) } != 0 {
        return Err(Error::os("linux.memoryPolicy: set_mempolicy", nix::errno::Errno::last_raw()));
    }
    Ok(())
}

/// struct sched_attr, SCHED_ATTR_SIZE_VER0 (no utilization clamps).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

fn set_scheduler(s: &Scheduler) -> Result<()> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let flags = s.flags().as_deref().unwrap_or(&[]).iter().fold(0u64, |f, fl| {
        f | match fl {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: a valid sched_attr of the size it declares; pid 0 is this thread.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(Error::os("process.scheduler: sched_setattr", nix::errno::Errno::last_raw()));
    }
    Ok(())
}

/// `process.execCPUAffinity` of an exec'd process, as runc 1.2: `initial` is
/// the runtime's own affinity before it clones the process (which inherits
/// it), `final` the process's once it is in the container's cgroup (a
/// cpuset there has narrowed it). An empty or missing list changes nothing.
pub fn exec_affinity(initial: bool, aff: Option<&oci_spec::runtime::ExecCPUAffinity>) -> Result<()> {
    let (list, field) = match aff {
        Some(a) if initial => (a.initial().as_deref(), "process.execCPUAffinity.initial"),
        Some(a) => (a.cpu_affinity_final().as_deref(), "process.execCPUAffinity.final"),
        None => return Ok(()),
    };
    let Some(list) = list.filter(|l| !l.is_empty()) else { return Ok(()) };
    // SAFETY: cpu_set_t is plain data.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>() as u64;
    for item in list.split(',') {
        let Some((a, b)) = crate::spec::list_range(item).filter(|&(a, b)| a <= b && b < max) else {
            return Err(Error::msg(format!("{field}: {list:?} is not a CPU list (N or N-M, comma-separated, below {max})")));
        };
        for cpu in a..=b {
            // SAFETY: cpu < the set's size, checked above.
            unsafe { libc::CPU_SET(cpu as usize, &mut set) };
        }
    }
    // SAFETY: a valid cpu_set_t of the size given.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(Error::os(format!("{field}: set CPU affinity {list:?}"), nix::errno::Errno::last_raw()));
    }
    Ok(())
}
