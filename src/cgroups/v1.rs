//! cgroup v1: resources -> files (a pure planner), cpuset setup, freezer, stats.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};
use serde_json::{json, Map, Value};

use super::fsutil::{self, OnError, Write};
use super::invalid;
use crate::error::{Context, Result};

/// Hierarchies whose directory may fail to be created without failing the
/// container (runc skips them when unusable).
pub const OPTIONAL: &[&str] = &["net_cls", "net_prio", "perf_event", "rdma", "misc", "hugetlb"];

/// Device rules runc appends after the config's own rules (specconv.AllowedDevices):
/// mknod of anything, and the devices every container gets.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm",
    "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
];

/// A device rule in the syntax of devices.allow / devices.deny ("c 1:3 rwm").
/// None for rules the device controller cannot express (fifo).
pub fn device_rule(d: &LinuxDeviceCgroup) -> Result<Option<String>> {
    let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => return Ok(None),
    };
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    };
    let access = d.access().as_deref().filter(|a| !a.is_empty()).unwrap_or("rwm");
    if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(invalid(format!("device access {access:?}: only r, w and m are allowed")));
    }
    Ok(Some(format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))))
}

/// The writes (in order) that apply `r` to a v1 cgroup. `create`: a new
/// cgroup, which always gets the device rules (deny all, the config's rules,
/// runc's default allowed devices). `probe(file)` reads a current value
/// (memory.limit_in_bytes) or tells whether a file exists.
pub fn plan(r: &LinuxResources, create: bool, probe: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Write>> {
    let mut w = Vec::new();
    if let Some(cpu) = r.cpu() {
        if let Some(c) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            w.push(Write::new("cpuset", "cpuset.cpus", c));
        }
        if let Some(m) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            w.push(Write::new("cpuset", "cpuset.mems", m));
        }
    }
    if create || r.devices().is_some() {
        w.push(Write::new("devices", "devices.deny", "a"));
        for d in r.devices().iter().flatten() {
            if let Some(rule) = device_rule(d)? {
                let file = if d.allow() { "devices.allow" } else { "devices.deny" };
                w.push(Write::new("devices", file, rule));
            }
        }
        for rule in DEFAULT_ALLOWED {
            w.push(Write::new("devices", "devices.allow", *rule));
        }
    }
    if let Some(m) = r.memory() {
        let limit = m.limit().filter(|&l| l != 0);
        let mut swap = m.swap().filter(|&s| s != 0);
        // Unlimited memory with swap unset means unlimited swap too (runc).
        if limit == Some(-1) && swap.is_none() && probe("memory.memsw.limit_in_bytes").is_some() {
            swap = Some(-1);
        }
        let lw = limit.map(|l| Write::new("memory", "memory.limit_in_bytes", l.to_string()));
        let sw = swap.map(|s| Write::new("memory", "memory.memsw.limit_in_bytes", s.to_string()));
        // memsw must stay >= the memory limit at every step: raise it first
        // when it grows past the current limit.
        let swap_first = match (limit, swap) {
            (Some(_), Some(s)) => {
                s == -1
                    || probe("memory.limit_in_bytes")
                        .and_then(|c| c.trim().parse::<u64>().ok())
                        .is_some_and(|cur| cur < s as u64)
            }
            _ => false,
        };
        if swap_first {
            w.extend(sw.into_iter().chain(lw));
        } else {
            w.extend(lw.into_iter().chain(sw));
        }
        if let Some(res) = m.reservation().filter(|&v| v != 0) {
            w.push(Write::new("memory", "memory.soft_limit_in_bytes", res.to_string()));
        }
        if m.kernel().is_some() {
            crate::warn!("memory.kernel (kernel memory limit) is deprecated and ignored");
        }
        if m.kernel_tcp().is_some() {
            crate::warn!("memory.kernelTCP (kernel TCP memory limit) is ignored");
        }
        // Only ever write 1, and only when asked: 0 is the kernel default and
        // writing the wrong value leaves OOM tasks stuck.
        if m.disable_oom_killer() == Some(true) {
            w.push(Write::new("memory", "memory.oom_control", "1"));
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(invalid(format!("memory.swappiness {s}: valid range is 0-100")));
            }
            w.push(Write::new("memory", "memory.swappiness", s.to_string()));
        }
    }
    if let Some(cpu) = r.cpu() {
        if let Some(s) = cpu.shares().filter(|&s| s != 0) {
            w.push(Write::new("cpu", "cpu.shares", s.to_string()));
        }
        let period = cpu.period().filter(|&p| p != 0);
        let quota = cpu.quota().filter(|&q| q != 0);
        if let Some(p) = period {
            // Lowering the period can fail before the quota is lowered: retry after.
            let on_err = if quota.is_some() { OnError::RetryLater } else { OnError::Fail };
            w.push(Write::new("cpu", "cpu.cfs_period_us", p.to_string()).on_error(on_err));
        }
        if let Some(q) = quota {
            w.push(Write::new("cpu", "cpu.cfs_quota_us", q.to_string()));
            if let Some(p) = period {
                w.push(Write::new("cpu", "cpu.cfs_period_us", p.to_string()));
            }
        }
        if let Some(b) = cpu.burst() {
            w.push(Write::new("cpu", "cpu.cfs_burst_us", b.to_string()));
        }
        if let Some(i) = cpu.idle() {
            w.push(Write::new("cpu", "cpu.idle", i.to_string()));
        }
        if let Some(p) = cpu.realtime_period().filter(|&p| p != 0) {
            w.push(Write::new("cpu", "cpu.rt_period_us", p.to_string()));
        }
        if let Some(rt) = cpu.realtime_runtime().filter(|&v| v != 0) {
            w.push(Write::new("cpu", "cpu.rt_runtime_us", rt.to_string()));
        }
    }
    if let Some(p) = r.pids() {
        w.push(Write::new("pids", "pids.max", pids_max(p.limit())));
    }
    if let Some(b) = r.block_io() {
        let bfq = probe("blkio.weight").is_none();
        let (wf, wdf) = if bfq {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        } else {
            ("blkio.weight", "blkio.weight_device")
        };
        if let Some(v) = b.weight().filter(|&v| v != 0) {
            w.push(Write::new("blkio", wf, v.to_string()));
        }
        if let Some(v) = b.leaf_weight().filter(|&v| v != 0) {
            w.push(Write::new("blkio", "blkio.leaf_weight", v.to_string()));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(v) = d.weight() {
                w.push(Write::new("blkio", wdf, format!("{}:{} {v}", d.major(), d.minor())));
            }
            if let Some(v) = d.leaf_weight() {
                w.push(Write::new("blkio", "blkio.leaf_weight_device", format!("{}:{} {v}", d.major(), d.minor())));
            }
        }
        let throttles = [
            ("blkio.throttle.read_bps_device", b.throttle_read_bps_device()),
            ("blkio.throttle.write_bps_device", b.throttle_write_bps_device()),
            ("blkio.throttle.read_iops_device", b.throttle_read_iops_device()),
            ("blkio.throttle.write_iops_device", b.throttle_write_iops_device()),
        ];
        for (file, devs) in throttles {
            for d in devs.iter().flatten() {
                w.push(Write::new("blkio", file, format!("{}:{} {}", d.major(), d.minor(), d.rate())));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        let size = checked_page_size(h.page_size())?;
        w.push(Write::new("hugetlb", format!("hugetlb.{size}.limit_in_bytes"), h.limit().to_string()));
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            w.push(Write::new("net_cls", "net_cls.classid", id.to_string()));
        }
        for p in n.priorities().iter().flatten() {
            w.push(Write::new("net_prio", "net_prio.ifpriomap", format!("{} {}", p.name(), p.priority())));
        }
    }
    w.extend(rdma_writes(r));
    if let Some(u) = r.unified() {
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        if let Some(k) = keys.first() {
            return Err(invalid(format!(
                "unified {k:?}: unified resources need cgroup v2, but this host uses cgroup v1"
            )));
        }
    }
    Ok(w)
}

pub(crate) fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

pub(crate) fn checked_page_size(s: &str) -> Result<&str> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(format!("hugepage pageSize {s:?}")));
    }
    Ok(s)
}

/// rdma.max lines (same syntax on v1 and v2), sorted by device.
pub(crate) fn rdma_writes(r: &LinuxResources) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = r.rdma() {
        let mut devs: Vec<_> = m.iter().collect();
        devs.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, l) in devs {
            let mut line = dev.clone();
            if let Some(h) = l.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            if line.len() > dev.len() {
                out.push(Write::new("rdma", "rdma.max", line));
            }
        }
    }
    out
}

/// mkdir -p in the cpuset hierarchy, initialising cpuset.cpus and
/// cpuset.mems of every level from its parent when empty (a new v1 cpuset
/// is empty, and no task can join an empty cpuset).
pub fn mkdir_cpuset(mount: &Path, leaf: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let rel = leaf.strip_prefix(mount).map_err(|_| invalid(format!("{} is outside {}", leaf.display(), mount.display())))?;
    let mut cur = mount.to_path_buf();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_ctx(|| format!("mkdir {}", cur.display())),
        }
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if fsutil::read(&cur.join(f))?.trim().is_empty() {
                let v = fsutil::read(&parent.join(f))?;
                fsutil::write_file(&cur, f, v.trim())?;
            }
        }
    }
    Ok(())
}

/// Freeze and wait until the kernel reports FROZEN (runc retries the write).
pub fn freeze(dir: &Path) -> Result<()> {
    for i in 0..2000 {
        if i % 50 == 0 {
            fsutil::write_file(dir, "freezer.state", "FROZEN")?;
        }
        if fsutil::read(&dir.join("freezer.state"))?.trim() == "FROZEN" {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let _ = fsutil::write_file(dir, "freezer.state", "THAWED");
    crate::bail!("unable to freeze cgroup {}: tasks did not freeze", dir.display())
}

fn num(dir: Option<&Path>, file: &str) -> u64 {
    dir.and_then(|d| fsutil::probe(d, file)).and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn list(dir: Option<&Path>, file: &str) -> Vec<u64> {
    dir.and_then(|d| fsutil::probe(d, file))
        .map(|s| s.split_whitespace().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default()
}

/// The hugepage sizes of this machine in runc's naming ("2MB", "1GB").
pub(crate) fn hugepage_sizes() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(kb) = name.strip_prefix("hugepages-").and_then(|s| s.strip_suffix("kB")) {
                if let Ok(kb) = kb.parse::<u64>() {
                    out.push(size_name(kb * 1024));
                }
            }
        }
    }
    out.sort();
    out
}

fn size_name(mut bytes: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut i = 0;
    while bytes >= 1024 && bytes % 1024 == 0 && i + 1 < units.len() {
        bytes /= 1024;
        i += 1;
    }
    format!("{bytes}{}", units[i])
}

fn blkio_entries(dir: Option<&Path>, file: &str) -> Value {
    let text = dir.and_then(|d| fsutil::probe(d, file)).unwrap_or_default();
    let mut out = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        let Some((maj, min)) = f[0].split_once(':') else { continue };
        out.push(json!({
            "major": maj.parse::<u64>().unwrap_or(0),
            "minor": min.parse::<u64>().unwrap_or(0),
            "op": f[1],
            "value": f[2].parse::<u64>().unwrap_or(0),
        }));
    }
    Value::Array(out)
}

/// runc `events --stats` data for a v1 cgroup.
pub fn stats<'a>(dir: &dyn Fn(&str) -> Option<&'a Path>) -> Value {
    // SAFETY: sysconf has no memory effects.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as u64,
        _ => 100,
    };
    let acct = dir("cpuacct");
    let cpu = dir("cpu");
    let acct_stat = acct.and_then(|d| fsutil::probe(d, "cpuacct.stat")).unwrap_or_default();
    let ticks = |k| fsutil::keyed(&acct_stat, k).unwrap_or(0) * 1_000_000_000 / hz;
    let cpu_stat = cpu.and_then(|d| fsutil::probe(d, "cpu.stat")).unwrap_or_default();
    let cs = |k| fsutil::keyed(&cpu_stat, k).unwrap_or(0);

    let mem = dir("memory");
    let entry = |prefix: &str| {
        json!({
            "limit": num(mem, &format!("{prefix}.limit_in_bytes")),
            "usage": num(mem, &format!("{prefix}.usage_in_bytes")),
            "max": num(mem, &format!("{prefix}.max_usage_in_bytes")),
            "failcnt": num(mem, &format!("{prefix}.failcnt")),
        })
    };
    let raw: Map<String, Value> = mem
        .and_then(|d| fsutil::probe(d, "memory.stat"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), Value::from(v.trim().parse::<u64>().ok()?)))
        })
        .collect();
    let cache = raw.get("cache").cloned().unwrap_or(Value::from(0));

    let pids = dir("pids");
    let pids_limit = pids
        .and_then(|d| fsutil::probe(d, "pids.max"))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);

    let blk = dir("blkio");
    let hug = dir("hugetlb");
    let mut hugetlb = Map::new();
    if hug.is_some() {
        for size in hugepage_sizes() {
            hugetlb.insert(
                size.clone(),
                json!({
                    "usage": num(hug, &format!("hugetlb.{size}.usage_in_bytes")),
                    "max": num(hug, &format!("hugetlb.{size}.max_usage_in_bytes")),
                    "failcnt": num(hug, &format!("hugetlb.{size}.failcnt")),
                }),
            );
        }
    }
    json!({
        "cpu": {
            "usage": {
                "total": num(acct, "cpuacct.usage"),
                "percpu": list(acct, "cpuacct.usage_percpu"),
                "percpu_kernel": list(acct, "cpuacct.usage_percpu_sys"),
                "percpu_user": list(acct, "cpuacct.usage_percpu_user"),
                "kernel": ticks("system"),
                "user": ticks("user"),
            },
            "throttling": {
                "periods": cs("nr_periods"),
                "throttledPeriods": cs("nr_throttled"),
                "throttledTime": cs("throttled_time"),
            },
        },
        "memory": {
            "cache": cache,
            "usage": entry("memory"),
            "swap": entry("memory.memsw"),
            "kernel": entry("memory.kmem"),
            "kernelTCP": entry("memory.kmem.tcp"),
            "raw": raw,
        },
        "pids": { "current": num(pids, "pids.current"), "limit": pids_limit },
        "blkio": {
            "ioServiceBytesRecursive": blkio_entries(blk, "blkio.throttle.io_service_bytes_recursive"),
            "ioServicedRecursive": blkio_entries(blk, "blkio.throttle.io_serviced_recursive"),
        },
        "hugetlb": hugetlb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_names() {
        assert_eq!(size_name(2 * 1024 * 1024), "2MB");
        assert_eq!(size_name(1024 * 1024 * 1024), "1GB");
        assert_eq!(size_name(64 * 1024), "64KB");
    }
}
