//! cgroup v2: resources -> files (a pure planner), leaf creation, freezer, stats.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceType, LinuxResources};
use serde_json::{json, Map, Value};

use super::fsutil::{self, OnError, Write};
use super::invalid;
use super::v1::{checked_page_size, pids_max, rdma_writes};
use crate::error::{Context, Result};

/// runc's conversion of v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2)) * 9999 / 262142
}

/// runc's conversion of v1 blkio weight (10..1000) to v2 io.weight (1..10000).
pub fn blkio_weight_to_io(w: u64) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (w.saturating_sub(10)) * 9999 / 990
}

/// OCI memory.swap is memory+swap (v1 semantics); v2 memory.swap.max is swap
/// alone (runc's ConvertMemorySwapToCgroupV2Value). Returns the value to write.
pub fn swap_max(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>> {
    let limit = limit.unwrap_or(0);
    let swap = swap.unwrap_or(0);
    if limit == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        s if s < 0 => Err(invalid(format!("memory.swap {s}"))),
        s => {
            if limit == 0 || limit == -1 {
                return Err(invalid("memory.swap: unable to set a swap limit without a memory limit"));
            }
            if limit < 0 {
                return Err(invalid(format!("memory.limit {limit}")));
            }
            if s < limit {
                return Err(invalid(format!("memory.swap {s} must be >= memory.limit {limit} (it is memory+swap)")));
            }
            Ok(Some((s - limit).to_string()))
        }
    }
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// The writes (in order) that apply `r` to a v2 cgroup. `probe(file)` tells
/// whether an interface file exists (io.bfq.weight).
pub fn plan(r: &LinuxResources, probe: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Write>> {
    plan_inner(r, probe, true)
}

/// Only the writes of some controllers (hybrid hosts: those in the unified
/// hierarchy only).
pub fn plan_controllers(r: &LinuxResources, ctrls: &[&str]) -> Result<Vec<Write>> {
    let mut w = plan_inner(r, &|_| None, false)?;
    w.retain(|w| ctrls.contains(&w.ctrl));
    Ok(w)
}

fn plan_inner(r: &LinuxResources, probe: &dyn Fn(&str) -> Option<String>, warn: bool) -> Result<Vec<Write>> {
    let mut w = Vec::new();
    if let Some(cpu) = r.cpu() {
        if let Some(c) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            w.push(Write::new("cpuset", "cpuset.cpus", c));
        }
        if let Some(m) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            w.push(Write::new("cpuset", "cpuset.mems", m));
        }
    }
    if let Some(m) = r.memory() {
        if let Some(s) = swap_max(m.swap(), m.limit())? {
            // Without swap accounting, "max" and "0" are what we have anyway.
            let on = if s == "max" || s == "0" { OnError::SkipMissing } else { OnError::Fail };
            w.push(Write::new("memory", "memory.swap.max", s).on_error(on));
        }
        if let Some(l) = m.limit().filter(|&l| l != 0) {
            w.push(Write::new("memory", "memory.max", max_or(l)));
        }
        if let Some(res) = m.reservation().filter(|&v| v != 0) {
            w.push(Write::new("memory", "memory.low", max_or(res)));
        }
        if warn {
            if m.disable_oom_killer() == Some(true) {
                crate::warn!("memory.disableOOMKiller is not supported on cgroup v2: ignored");
            }
            if m.swappiness().is_some() {
                crate::warn!("memory.swappiness is not supported on cgroup v2: ignored");
            }
            if m.kernel().is_some() || m.kernel_tcp().is_some() {
                crate::warn!("memory.kernel and memory.kernelTCP are not supported on cgroup v2: ignored");
            }
        }
    }
    if let Some(cpu) = r.cpu() {
        if let Some(s) = cpu.shares().filter(|&s| s != 0) {
            w.push(Write::new("cpu", "cpu.weight", shares_to_weight(s).to_string()));
        }
        let quota = cpu.quota().filter(|&q| q != 0);
        let period = cpu.period().filter(|&p| p != 0);
        if quota.is_some() || period.is_some() {
            let mut v = match quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_string(),
            };
            if let Some(p) = period {
                v.push_str(&format!(" {p}"));
            }
            w.push(Write::new("cpu", "cpu.max", v));
        }
        if let Some(b) = cpu.burst() {
            w.push(Write::new("cpu", "cpu.max.burst", b.to_string()));
        }
        if let Some(i) = cpu.idle() {
            w.push(Write::new("cpu", "cpu.idle", i.to_string()));
        }
        if warn && (cpu.realtime_period().is_some() || cpu.realtime_runtime().is_some()) {
            crate::warn!("cpu.realtimePeriod/realtimeRuntime are not supported on cgroup v2: ignored");
        }
    }
    if let Some(p) = r.pids() {
        w.push(Write::new("pids", "pids.max", pids_max(p.limit())));
    }
    if let Some(b) = r.block_io() {
        let bfq = probe("io.bfq.weight").is_some();
        if let Some(v) = b.weight().filter(|&v| v != 0) {
            w.push(if bfq {
                Write::new("io", "io.bfq.weight", v.to_string())
            } else {
                Write::new("io", "io.weight", blkio_weight_to_io(v.into()).to_string())
            });
        }
        if warn && b.leaf_weight().is_some() {
            crate::warn!("blockIO.leafWeight is not supported on cgroup v2: ignored");
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(v) = d.weight() {
                w.push(if bfq {
                    Write::new("io", "io.bfq.weight", format!("{}:{} {v}", d.major(), d.minor()))
                } else {
                    let v = blkio_weight_to_io(v.into());
                    Write::new("io", "io.weight", format!("{}:{} {v}", d.major(), d.minor()))
                });
            }
        }
        let throttles = [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ];
        for (key, devs) in throttles {
            for d in devs.iter().flatten() {
                w.push(Write::new("io", "io.max", format!("{}:{} {key}={}", d.major(), d.minor(), d.rate())));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        let size = checked_page_size(h.page_size())?;
        w.push(Write::new("hugetlb", format!("hugetlb.{size}.max"), max_or(h.limit())));
    }
    if warn && r.network().is_some() {
        crate::warn!("network (net_cls/net_prio) is not supported on cgroup v2: ignored");
    }
    w.extend(rdma_writes(r));
    if let Some(u) = r.unified() {
        let mut keys: Vec<(&String, &String)> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            if k.is_empty() || k.contains('/') || k.starts_with('.') || !k.contains('.') {
                return Err(invalid(format!("unified key {k:?}: not a cgroup interface file name")));
            }
            w.push(Write::new("unified", k.as_str(), v.as_str()));
        }
    }
    Ok(w)
}

/// A device rule for the eBPF device filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevRule {
    pub allow: bool,
    /// 'a', 'b' or 'c'
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// r w m
    pub access: String,
}

/// The device rules of a cgroup: deny everything, the config's rules in order
/// (a later rule wins), then runc's default allowed devices. None when
/// nothing is to be set (update without devices).
pub fn device_rules(r: &LinuxResources, create: bool) -> Option<Vec<DevRule>> {
    if !create && r.devices().is_none() {
        return None;
    }
    let parse = |s: &str| -> Option<DevRule> {
        let mut it = s.split(' ');
        let typ = it.next()?.chars().next()?;
        let (maj, min) = it.next()?.split_once(':')?;
        Some(DevRule {
            allow: true,
            typ,
            major: maj.parse().ok(),
            minor: min.parse().ok(),
            access: it.next()?.to_string(),
        })
    };
    let mut out = Vec::new();
    for d in r.devices().iter().flatten() {
        let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::P => continue,
        };
        let n = |v: Option<i64>| v.filter(|&v| v >= 0).map(|v| v as u32);
        let access = d.access().as_deref().filter(|a| !a.is_empty()).unwrap_or("rwm").to_string();
        out.push(DevRule { allow: d.allow(), typ, major: n(d.major()), minor: n(d.minor()), access });
    }
    out.extend(super::v1::DEFAULT_ALLOWED.iter().filter_map(|s| parse(s)));
    Some(out)
}

/// Which controllers to enable in the ancestors' cgroup.subtree_control.
#[derive(Clone, Copy, Debug)]
pub enum Enable {
    None,
    All,
    Only(&'static [&'static str]),
}

/// mkdir -p the leaf, enabling controllers on the way (runc fs2 does the
/// same for every level between the mount and the leaf).
pub fn mkdir_leaf(mount: &Path, leaf: &Path, enable: Enable, created: &mut Vec<PathBuf>) -> Result<()> {
    let rel = leaf.strip_prefix(mount).map_err(|_| invalid(format!("{} is outside {}", leaf.display(), mount.display())))?;
    let mut cur = mount.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps {
        if !matches!(enable, Enable::None) {
            enable_controllers(&cur, enable);
        }
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_ctx(|| format!("mkdir {}", cur.display())),
        }
    }
    Ok(())
}

fn enable_controllers(dir: &Path, enable: Enable) {
    let avail = fsutil::probe(dir, "cgroup.controllers").unwrap_or_default();
    let on = fsutil::probe(dir, "cgroup.subtree_control").unwrap_or_default();
    let want: Vec<&str> = avail
        .split_whitespace()
        .filter(|c| match enable {
            Enable::None => false,
            Enable::All => true,
            Enable::Only(l) => l.contains(c),
        })
        .filter(|c| !on.split_whitespace().any(|o| o == *c))
        .collect();
    if want.is_empty() {
        return;
    }
    let all = want.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
    if fsutil::write_file(dir, "cgroup.subtree_control", &all).is_err() {
        for c in want {
            if let Err(e) = fsutil::write_file(dir, "cgroup.subtree_control", &format!("+{c}")) {
                crate::debug!("enable cgroup controller {c}: {e}");
            }
        }
    }
}

/// Freeze and wait for cgroup.events to say "frozen 1".
pub fn freeze(dir: &Path) -> Result<()> {
    fsutil::write_file(dir, "cgroup.freeze", "1")?;
    for _ in 0..2000 {
        let ev = fsutil::read(&dir.join("cgroup.events"))?;
        if fsutil::keyed(&ev, "frozen") == Some(1) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let _ = fsutil::write_file(dir, "cgroup.freeze", "0");
    crate::bail!("unable to freeze cgroup {}: tasks did not freeze", dir.display())
}

fn num(dir: &Path, file: &str) -> u64 {
    match fsutil::probe(dir, file) {
        Some(s) if s.trim() == "max" => u64::MAX,
        Some(s) => s.trim().parse().unwrap_or(0),
        None => 0,
    }
}

/// hugetlb stats of a v2 cgroup (also used for the unified part of hybrid hosts).
pub fn hugetlb_stats(dir: &Path) -> Value {
    let mut m = Map::new();
    for size in super::v1::hugepage_sizes() {
        if fsutil::probe(dir, &format!("hugetlb.{size}.current")).is_none() {
            continue;
        }
        let ev = fsutil::probe(dir, &format!("hugetlb.{size}.events")).unwrap_or_default();
        m.insert(
            size.clone(),
            json!({
                "usage": num(dir, &format!("hugetlb.{size}.current")),
                "failcnt": fsutil::keyed(&ev, "max").unwrap_or(0),
            }),
        );
    }
    Value::Object(m)
}

/// runc `events --stats` data for a v2 cgroup.
pub fn stats(dir: &Path) -> Value {
    let cpu = fsutil::probe(dir, "cpu.stat").unwrap_or_default();
    let c = |k| fsutil::keyed(&cpu, k).unwrap_or(0);
    let raw: Map<String, Value> = fsutil::probe(dir, "memory.stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), Value::from(v.trim().parse::<u64>().ok()?)))
        })
        .collect();
    let events = fsutil::probe(dir, "memory.events").unwrap_or_default();
    let pids_max = num(dir, "pids.max");
    let mut service_bytes = Vec::new();
    let mut serviced = Vec::new();
    for l in fsutil::probe(dir, "io.stat").unwrap_or_default().lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else { continue };
        let (maj, min) = (maj.parse::<u64>().unwrap_or(0), min.parse::<u64>().unwrap_or(0));
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let v = v.parse::<u64>().unwrap_or(0);
            let (list, op) = match k {
                "rbytes" => (&mut service_bytes, "Read"),
                "wbytes" => (&mut service_bytes, "Write"),
                "rios" => (&mut serviced, "Read"),
                "wios" => (&mut serviced, "Write"),
                _ => continue,
            };
            list.push(json!({"major": maj, "minor": min, "op": op, "value": v}));
        }
    }
    json!({
        "cpu": {
            "usage": {
                "total": c("usage_usec") * 1000,
                "kernel": c("system_usec") * 1000,
                "user": c("user_usec") * 1000,
            },
            "throttling": {
                "periods": c("nr_periods"),
                "throttledPeriods": c("nr_throttled"),
                "throttledTime": c("throttled_usec") * 1000,
            },
        },
        "memory": {
            "cache": raw.get("file").cloned().unwrap_or(Value::from(0)),
            "usage": {
                "limit": num(dir, "memory.max"),
                "usage": num(dir, "memory.current"),
                "max": num(dir, "memory.peak"),
                "failcnt": fsutil::keyed(&events, "max").unwrap_or(0),
            },
            "swap": {
                "limit": num(dir, "memory.swap.max"),
                "usage": num(dir, "memory.swap.current"),
                "failcnt": 0,
            },
            "raw": raw,
        },
        "pids": {
            "current": num(dir, "pids.current"),
            "limit": if pids_max == u64::MAX { 0 } else { pids_max },
        },
        "blkio": {
            "ioServiceBytesRecursive": service_bytes,
            "ioServicedRecursive": serviced,
        },
        "hugetlb": hugetlb_stats(dir),
    })
}
