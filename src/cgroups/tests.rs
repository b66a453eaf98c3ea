//! Planner unit tests (no filesystem) and integration tests on this host
//! (root, cgroup v1 hybrid). The v2 integration test re-runs this test binary
//! inside a private mount namespace with a cgroup2-only /sys/fs/cgroup.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};

use oci_spec::runtime::LinuxResources;

use super::fsutil::Write;
use super::layout::{Hierarchy, Layout};
use super::*;

fn res(j: serde_json::Value) -> LinuxResources {
    serde_json::from_value(j).expect("resources json")
}

fn pairs(w: &[Write]) -> Vec<(&str, &str, &str)> {
    w.iter().map(|w| (w.ctrl, w.file.as_str(), w.value.as_str())).collect()
}

fn no_probe(_: &str) -> Option<String> {
    None
}

// ---------------------------------------------------------------- planners

#[test]
fn v1_plan_files() {
    let r = res(serde_json::json!({
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                    {"allow": true, "type": "b", "major": 8}],
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 10,
                   "disableOOMKiller": false, "kernel": 1},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0",
                "realtimePeriod": 1000000, "realtimeRuntime": 950000},
        "pids": {"limit": 32},
        "blockIO": {"weight": 500, "leafWeight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 20}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
        "unified": {}
    }));
    let probe = |f: &str| (f == "blkio.weight").then(String::new);
    let w = plan_v1(&r, true, &probe);
    let mut expect = vec![
        ("cpuset", "cpuset.cpus", "0"),
        ("cpuset", "cpuset.mems", "0"),
        ("devices", "devices.deny", "a"),
        ("devices", "devices.deny", "a *:* rwm"),
        ("devices", "devices.allow", "c 1:3 rw"),
        ("devices", "devices.allow", "b 8:* rwm"),
    ];
    expect.extend(v1::DEFAULT_ALLOWED.iter().map(|r| ("devices", "devices.allow", *r)));
    expect.extend([
        ("memory", "memory.limit_in_bytes", "67108864"),
        ("memory", "memory.memsw.limit_in_bytes", "134217728"),
        ("memory", "memory.soft_limit_in_bytes", "33554432"),
        ("memory", "memory.swappiness", "10"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.rt_period_us", "1000000"),
        ("cpu", "cpu.rt_runtime_us", "950000"),
        ("pids", "pids.max", "32"),
        ("blkio", "blkio.weight", "500"),
        ("blkio", "blkio.leaf_weight", "300"),
        ("blkio", "blkio.weight_device", "8:0 200"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1000"),
        ("blkio", "blkio.throttle.write_iops_device", "8:16 20"),
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
        ("net_cls", "net_cls.classid", "1048577"),
        ("net_prio", "net_prio.ifpriomap", "eth0 5"),
        ("rdma", "rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
    ]);
    assert_eq!(pairs(&w), expect);
    // No oom_control write unless disableOOMKiller is true.
    assert!(!w.iter().any(|w| w.file == "memory.oom_control"));
}

fn plan_v1(r: &LinuxResources, create: bool, probe: &dyn Fn(&str) -> Option<String>) -> Vec<Write> {
    v1::plan(r, create, probe).expect("v1 plan")
}

#[test]
fn v1_plan_memory_order_oom_and_update() {
    // Raising memsw above the current limit: memsw first.
    let r = res(serde_json::json!({"memory": {"limit": 268435456, "swap": 536870912, "disableOOMKiller": true}}));
    let cur = |f: &str| (f == "memory.limit_in_bytes").then(|| "134217728\n".to_string());
    let w = plan_v1(&r, false, &cur);
    assert_eq!(
        pairs(&w),
        [
            ("memory", "memory.memsw.limit_in_bytes", "536870912"),
            ("memory", "memory.limit_in_bytes", "268435456"),
            ("memory", "memory.oom_control", "1"),
        ]
    );
    // Unlimited memory with swap unset: memsw unlimited too (when it exists).
    let r = res(serde_json::json!({"memory": {"limit": -1}}));
    let has_memsw = |f: &str| (f == "memory.memsw.limit_in_bytes").then(String::new);
    assert_eq!(
        pairs(&plan_v1(&r, false, &has_memsw)),
        [("memory", "memory.memsw.limit_in_bytes", "-1"), ("memory", "memory.limit_in_bytes", "-1")]
    );
    // An update without devices does not touch devices; pids -1 is "max";
    // no blkio.weight file means BFQ.
    let r = res(serde_json::json!({"pids": {"limit": -1}, "blockIO": {"weight": 100}}));
    assert_eq!(
        pairs(&plan_v1(&r, false, &no_probe)),
        [("pids", "pids.max", "max"), ("blkio", "blkio.bfq.weight", "100")]
    );
    // An empty config at create still gets runc's device rules.
    let w = plan_v1(&LinuxResources::default(), true, &no_probe);
    assert_eq!(w.len(), 1 + v1::DEFAULT_ALLOWED.len());
}

#[test]
fn v1_plan_errors() {
    let r = res(serde_json::json!({"unified": {"memory.high": "1M"}}));
    let e = v1::plan(&r, false, &no_probe).unwrap_err().to_string();
    assert!(e.contains("\"memory.high\""), "{e}");
    let r = res(serde_json::json!({"memory": {"swappiness": 101}}));
    assert!(v1::plan(&r, false, &no_probe).is_err());
    let r = res(serde_json::json!({"devices": [{"allow": true, "access": "rwx"}]}));
    assert!(v1::plan(&r, false, &no_probe).unwrap_err().to_string().contains("rwx"));
    let r = res(serde_json::json!({"hugepageLimits": [{"pageSize": "../x", "limit": 1}]}));
    assert!(v1::plan(&r, false, &no_probe).is_err());
}

#[test]
fn v2_plan_files() {
    let r = res(serde_json::json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0", "idle": 1, "burst": 1000},
        "pids": {"limit": 0},
        "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2000}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 30}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 40}]},
        "hugepageLimits": [{"pageSize": "1GB", "limit": 1073741824}],
        "rdma": {"mlx5_1": {"hcaHandles": 3}},
        "unified": {"memory.high": "50331648", "cpu.uclamp.min": "10"}
    }));
    let w = v2::plan(&r, &no_probe).unwrap();
    assert_eq!(
        pairs(&w),
        [
            ("cpuset", "cpuset.cpus", "0-1"),
            ("cpuset", "cpuset.mems", "0"),
            ("memory", "memory.swap.max", "67108864"),
            ("memory", "memory.max", "67108864"),
            ("memory", "memory.low", "33554432"),
            ("cpu", "cpu.weight", "39"),
            ("cpu", "cpu.max", "50000 100000"),
            ("cpu", "cpu.max.burst", "1000"),
            ("cpu", "cpu.idle", "1"),
            ("pids", "pids.max", "max"),
            ("io", "io.weight", "4950"),
            ("io", "io.weight", "8:0 1920"),
            ("io", "io.max", "8:0 rbps=1000"),
            ("io", "io.max", "8:0 wbps=2000"),
            ("io", "io.max", "8:0 riops=30"),
            ("io", "io.max", "8:0 wiops=40"),
            ("hugetlb", "hugetlb.1GB.max", "1073741824"),
            ("rdma", "rdma.max", "mlx5_1 hca_handle=3"),
            ("unified", "cpu.uclamp.min", "10"),
            ("unified", "memory.high", "50331648"),
        ]
    );
    // BFQ present: raw weights into io.bfq.weight.
    let r = res(serde_json::json!({"blockIO": {"weight": 500}}));
    let bfq = |f: &str| (f == "io.bfq.weight").then(String::new);
    assert_eq!(pairs(&v2::plan(&r, &bfq).unwrap()), [("io", "io.bfq.weight", "500")]);
    // Quota only / unlimited memory.
    let r = res(serde_json::json!({"cpu": {"quota": -1}, "memory": {"limit": -1}}));
    assert_eq!(
        pairs(&v2::plan(&r, &no_probe).unwrap()),
        [("memory", "memory.swap.max", "max"), ("memory", "memory.max", "max"), ("cpu", "cpu.max", "max")]
    );
    let r = res(serde_json::json!({"unified": {"../memory.max": "1"}}));
    assert!(v2::plan(&r, &no_probe).unwrap_err().to_string().contains("../memory.max"));
    let r = res(serde_json::json!({"memory": {"limit": 100, "swap": 50}}));
    assert!(v2::plan(&r, &no_probe).is_err());
}

#[test]
fn conversions() {
    assert_eq!(v2::shares_to_weight(2), 1);
    assert_eq!(v2::shares_to_weight(1024), 39);
    assert_eq!(v2::shares_to_weight(262144), 10000);
    assert_eq!(v2::blkio_weight_to_io(10), 1);
    assert_eq!(v2::blkio_weight_to_io(1000), 10000);
    assert_eq!(v2::swap_max(Some(0), Some(100)).unwrap(), None);
    assert_eq!(v2::swap_max(None, None).unwrap(), None);
    assert_eq!(v2::swap_max(Some(-1), Some(100)).unwrap().as_deref(), Some("max"));
    assert_eq!(v2::swap_max(Some(300), Some(100)).unwrap().as_deref(), Some("200"));
    assert!(v2::swap_max(Some(300), None).is_err());
    assert_eq!(expand_slice("a-b-c.slice").unwrap(), "/a.slice/a-b.slice/a-b-c.slice");
    assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
    assert!(expand_slice("a--b.slice").is_err());
    assert!(expand_slice("foo").is_err());
}

#[test]
fn placement_rules() {
    assert_eq!(placement("abc", None, false).unwrap(), Placement::Relative("abc".into()));
    assert_eq!(placement("abc", Some(""), false).unwrap(), Placement::Relative("abc".into()));
    assert_eq!(placement("x", Some("/a/../../b/./c/"), false).unwrap(), Placement::Absolute("/b/c".into()));
    assert_eq!(placement("x", Some("../a/b"), false).unwrap(), Placement::Relative("a/b".into()));
    if !Path::new("/run/systemd/system").exists() {
        let e = placement("x", Some("system.slice:runc:x"), true).unwrap_err().to_string();
        assert!(e.contains("systemd") && e.contains("/run/systemd/system"), "{e}");
        let e = Cgroup::create("x", None, true, None).unwrap_err().to_string();
        assert!(e.contains("systemd is not running"), "{e}");
    }
}

fn hier(mp: &str, ctrls: &[&str], own: &str) -> Hierarchy {
    Hierarchy {
        mountpoint: mp.into(),
        root: "/".into(),
        name: mp.trim_start_matches("/sys/fs/cgroup").trim_start_matches('/').into(),
        controllers: ctrls.iter().map(|s| s.to_string()).collect(),
        own: own.into(),
    }
}

/// A hybrid host: two v1 hierarchies (the caller's memory cgroup not the
/// root) and the unified one.
fn hybrid_layout() -> Layout {
    Layout {
        v1: vec![
            hier("/sys/fs/cgroup/memory", &["memory"], "/user/1"),
            hier("/sys/fs/cgroup/cpu,cpuacct", &["cpu", "cpuacct"], "/"),
        ],
        v2: Some(hier("/sys/fs/cgroup/unified", &[], "/u")),
    }
}

#[test]
fn resolve_paths() {
    let hybrid = hybrid_layout();
    let cg = resolve(&hybrid, &Placement::Relative("c1".into())).unwrap();
    assert_eq!(cg.v1[0].path, PathBuf::from("/sys/fs/cgroup/memory/user/1/c1"));
    assert_eq!(cg.v1[1].path, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1"));
    assert_eq!(cg.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified/u/c1")));
    assert_eq!(
        cg.mount_sources(),
        [
            ("memory".to_string(), PathBuf::from("/sys/fs/cgroup/memory/user/1/c1")),
            ("cpu,cpuacct".to_string(), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1")),
            ("unified".to_string(), PathBuf::from("/sys/fs/cgroup/unified/u/c1")),
        ]
    );
    let cg = resolve(&hybrid, &Placement::Absolute("/a/b".into())).unwrap();
    assert_eq!(cg.v1[0].path, PathBuf::from("/sys/fs/cgroup/memory/a/b"));
    assert!(!cg.pure_v2);
    // Pure v2: relative to the parent of the caller's cgroup (runc fs2).
    let v2 = Layout { v1: vec![], v2: Some(hier("/sys/fs/cgroup", &[], "/user.slice/session-1.scope")) };
    let cg = resolve(&v2, &Placement::Relative("c1".into())).unwrap();
    assert_eq!(cg.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/user.slice/c1")));
    assert!(cg.pure_v2);
    assert_eq!(cg.mount_sources(), [(String::new(), PathBuf::from("/sys/fs/cgroup/user.slice/c1"))]);
    assert!(resolve(&v2, &Placement::Absolute("/".into())).is_err());
    // state.json round trip
    let back: Cgroup = serde_json::from_str(&serde_json::to_string(&cg).unwrap()).unwrap();
    assert_eq!(back, cg);
}

#[test]
fn restrict_to_controllers() {
    let mut hybrid = hybrid_layout();
    hybrid.v1.push(hier("/sys/fs/cgroup/devices", &["devices"], "/"));
    hybrid.v1.push(hier("/sys/fs/cgroup/systemd", &["name=systemd"], "/"));
    let mut cg = resolve(&hybrid, &Placement::Relative("c1".into())).unwrap();
    let mut v1: Vec<&Hierarchy> = hybrid.v1.iter().collect();
    cg.restrict(&["devices", "cpuacct"], &mut v1);
    let names: Vec<&str> = cg.v1.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["cpu,cpuacct", "devices"]);
    assert_eq!(v1.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), names, "layout entries stay paired");
    assert!(cg.v2.is_none(), "hybrid: no unified leaf");
    // Pure v2: the leaf is the cgroup.
    let v2 = Layout { v1: vec![], v2: Some(hier("/sys/fs/cgroup", &[], "/a/b")) };
    let mut cg = resolve(&v2, &Placement::Relative("c1".into())).unwrap();
    cg.restrict(&["devices"], &mut vec![]);
    assert!(cg.v2.is_some());
}

// ---------------------------------------------------------------- integration

static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    format!("stele-test-{tag}-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("read {}: {e}", p.as_ref().display()))
}

fn dir_of<'a>(cg: &'a Cgroup, ctrl: &str) -> &'a Path {
    cg.v1_dir(ctrl).unwrap_or_else(|| panic!("no {ctrl} hierarchy"))
}

/// Remove the test's top directory in every hierarchy (after destroy).
fn cleanup_top(top: &str) {
    if let Ok(l) = layout::get() {
        for h in l.v1.iter().chain(&l.v2) {
            let _ = std::fs::remove_dir(h.host_path(&format!("/{top}")));
            let _ = std::fs::remove_dir(h.host_path(&format!("{}/{top}", h.own.trim_end_matches('/'))));
        }
    }
}

struct Top(String);
impl Drop for Top {
    fn drop(&mut self) {
        cleanup_top(&self.0);
    }
}

fn sleeper() -> Child {
    Command::new("sleep").arg("1000").spawn().expect("spawn sleep")
}

fn wait_signal(mut c: Child) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    c.wait().expect("wait").signal()
}

fn host_is_v1() -> bool {
    is_root() && layout::get().map(|l| !l.v1.is_empty()).unwrap_or(false)
}

#[test]
fn v1_lifecycle() {
    if !host_is_v1() {
        return;
    }
    let top = Top(unique("life"));
    let r = res(serde_json::json!({
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
        "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 32},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
    }));
    let path = format!("/{}/ctr", top.0);
    let cg = Cgroup::create("ctr", Some(&path), false, Some(&r)).expect("create");
    let mem = dir_of(&cg, "memory");
    assert!(mem.ends_with(format!("memory/{}/ctr", top.0)), "{}", mem.display());
    assert_eq!(read(mem.join("memory.limit_in_bytes")).trim(), "67108864");
    if mem.join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")).trim(), "134217728");
    }
    assert_eq!(read(mem.join("memory.soft_limit_in_bytes")).trim(), "33554432");
    assert!(read(mem.join("memory.oom_control")).contains("oom_kill_disable 0"));
    let cpu = dir_of(&cg, "cpu");
    assert_eq!(read(cpu.join("cpu.shares")).trim(), "512");
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")).trim(), "50000");
    assert_eq!(read(cpu.join("cpu.cfs_period_us")).trim(), "100000");
    assert_eq!(read(dir_of(&cg, "pids").join("pids.max")).trim(), "32");
    let cs = dir_of(&cg, "cpuset");
    assert_eq!(read(cs.join("cpuset.cpus")).trim(), "0");
    assert_eq!(read(cs.join("cpuset.mems")).trim(), "0");
    // The intermediate cpuset got its parent's cpus (or it could not hold tasks).
    assert!(!read(cs.parent().unwrap().join("cpuset.cpus")).trim().is_empty());
    let list = read(dir_of(&cg, "devices").join("devices.list"));
    assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
    assert!(list.lines().any(|l| l == "c 136:* rwm"), "{list}");
    assert!(!list.contains("a *:* rwm"), "{list}");
    // hugetlb lives in the unified hierarchy on these hosts.
    if let Some(leaf) = &cg.v2 {
        let unified_root = leaf.parent().unwrap().parent().unwrap();
        let hugetlb_in_v2 = read(unified_root.join("cgroup.controllers")).split_whitespace().any(|c| c == "hugetlb");
        if hugetlb_in_v2 && !cg.v1_has("hugetlb") && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
            assert_eq!(read(leaf.join("hugetlb.2MB.max")).trim(), "4194304");
            assert!(cg.stats().unwrap()["hugetlb"]["2MB"]["usage"].is_u64());
        }
    }
    assert_eq!(cg.oom_kill_count().unwrap(), 0);
    assert!(cg.v2_dir_fd().is_none());
    let names: Vec<String> = cg.mount_sources().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"memory".to_string()) && names.contains(&"systemd".to_string()), "{names:?}");

    // A real process.
    let child = sleeper();
    let pid = child.id() as i32;
    cg.add_pid(pid).expect("add_pid");
    assert_eq!(cg.pids().unwrap(), [pid]);
    assert!(read(dir_of(&cg, "memory").join("cgroup.procs")).contains(&pid.to_string()));
    cg.freeze().unwrap();
    assert_eq!(read(dir_of(&cg, "freezer").join("freezer.state")).trim(), "FROZEN");
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert_eq!(read(dir_of(&cg, "freezer").join("freezer.state")).trim(), "THAWED");
    assert!(!cg.is_frozen().unwrap());
    let s = cg.stats().unwrap();
    assert!(s["memory"]["usage"]["usage"].is_u64(), "{s}");
    assert_eq!(s["memory"]["usage"]["limit"], 67108864);
    assert_eq!(s["pids"]["current"], 1, "{s}");
    assert_eq!(s["pids"]["limit"], 32);
    assert!(s["cpu"]["usage"]["total"].is_u64());

    // update
    let u = res(serde_json::json!({"memory": {"limit": 134217728, "swap": 268435456}, "pids": {"limit": 10},
                                   "cpu": {"quota": 20000}}));
    cg.update(&u).expect("update");
    assert_eq!(read(mem.join("memory.limit_in_bytes")).trim(), "134217728");
    assert_eq!(read(dir_of(&cg, "pids").join("pids.max")).trim(), "10");
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")).trim(), "20000");
    // update leaves the device rules alone
    assert_eq!(read(dir_of(&cg, "devices").join("devices.list")), list);

    cg.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(wait_signal(child), Some(libc::SIGKILL));
    cg.destroy().expect("destroy");
    for (_, d) in cg.mount_sources() {
        assert!(!d.exists(), "{} still exists", d.display());
    }
    cg.destroy().expect("destroy twice");
}

#[test]
fn v1_relative_and_default_paths() {
    if !host_is_v1() {
        return;
    }
    let l = layout::get().unwrap();
    let top = Top(unique("rel"));
    let rel = format!("{}/c", top.0);
    let cg = Cgroup::create("ignored", Some(&rel), false, None).expect("create relative");
    for (d, h) in cg.v1.iter().zip(&l.v1) {
        assert_eq!(d.path, h.host_path(&format!("{}/{rel}", h.own.trim_end_matches('/'))));
        assert!(d.path.is_dir(), "{}", d.path.display());
    }
    if let (Some(leaf), Some(u)) = (&cg.v2, &l.v2) {
        assert_eq!(leaf, &u.host_path(&format!("{}/{rel}", u.own.trim_end_matches('/'))));
        assert!(leaf.is_dir());
    }
    cg.destroy().unwrap();

    // No cgroupsPath: runc's default, "<own cgroup>/<id>".
    let id = unique("default");
    let _t = Top(id.clone());
    let cg = Cgroup::create(&id, None, false, None).expect("create default");
    let mem = l.v1.iter().find(|h| h.controllers.iter().any(|c| c == "memory")).unwrap();
    assert_eq!(cg.v1_dir("memory").unwrap(), mem.host_path(&format!("{}/{id}", mem.own.trim_end_matches('/'))));
    cg.destroy().unwrap();
    assert!(!cg.v1_dir("memory").unwrap().exists());
}

/// Nothing of the cgroup (not even its new parents) exists in any hierarchy.
fn assert_gone(top: &str) {
    let l = layout::get().unwrap();
    for h in l.v1.iter().chain(&l.v2) {
        let p = h.host_path(&format!("/{top}"));
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

#[test]
fn v1_invalid_values_fail_cleanly() {
    if !host_is_v1() {
        return;
    }
    let top = Top(unique("bad"));
    let r = res(serde_json::json!({"cpu": {"cpus": "99"}}));
    let e = Cgroup::create("x", Some(&format!("/{}/c", top.0)), false, Some(&r)).unwrap_err().to_string();
    assert!(e.contains("cpuset.cpus\" \"99\"") || e.contains("cpuset.cpus \"99\""), "{e}");
    assert!(e.starts_with("write /sys/fs/cgroup/cpuset/"), "{e}");
    assert_gone(&top.0);

    let r = res(serde_json::json!({"unified": {"memory.high": "1M"}}));
    let e = Cgroup::create("x", Some(&format!("/{}/c", top.0)), false, Some(&r)).unwrap_err().to_string();
    assert!(e.contains("memory.high"), "{e}");
    assert_gone(&top.0);
}

#[test]
fn v1_memory_limit_below_usage() {
    if !host_is_v1() || !Path::new("/dev/shm").is_dir() {
        return;
    }
    let top = Top(unique("busy"));
    let cg = Cgroup::create("x", Some(&format!("/{}/c", top.0)), false, None).expect("create");
    let shm = format!("/dev/shm/{}", top.0);
    // A child that joins the cgroup, then fills 16 MiB of tmpfs (unreclaimable
    // without swap) charged to it.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read x; dd if=/dev/zero of={shm} bs=1M count=16 2>/dev/null; echo done; exec sleep 1000"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    {
        use std::io::{BufRead, Write as _};
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "done");
    }
    let swapless = read("/proc/swaps").lines().count() <= 1;
    let r = res(serde_json::json!({"memory": {"limit": 1048576}}));
    let out = cg.update(&r);
    let _ = std::fs::remove_file(&shm);
    cg.kill_all(libc::SIGKILL).unwrap();
    let _ = child.wait();
    cg.destroy().unwrap();
    if swapless {
        let e = out.unwrap_err().to_string();
        assert!(e.contains("memory.limit_in_bytes \"1048576\": device or resource busy"), "{e}");
    }
}

#[test]
fn kill_all_keeps_paused_cgroup_frozen() {
    if !host_is_v1() {
        return;
    }
    let top = Top(unique("kill"));
    let cg = Cgroup::create("x", Some(&format!("/{}/c", top.0)), false, None).unwrap();
    let child = sleeper();
    cg.add_pid(child.id() as i32).unwrap();
    cg.freeze().unwrap();
    cg.kill_all(libc::SIGTERM).unwrap();
    assert!(cg.is_frozen().unwrap(), "a paused container stays paused");
    cg.thaw().unwrap();
    assert_eq!(wait_signal(child), Some(libc::SIGTERM));
    assert!(cg.pids().unwrap().is_empty());
    cg.destroy().unwrap();
}

/// destroy removes sub-cgroups a container made (deepest first) as well as
/// a plain leaf, in every hierarchy, and is Ok when it is all gone already.
#[test]
fn destroy_removes_sub_cgroups() {
    if !host_is_v1() {
        return;
    }
    let top = Top(unique("destroy"));
    let cg = Cgroup::create("x", Some(&format!("/{}/c", top.0)), false, None).unwrap();
    let dirs: Vec<PathBuf> = cg.v1.iter().map(|d| d.path.clone()).chain(cg.v2.clone()).collect();
    assert!(!dirs.is_empty());
    for d in &dirs {
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
    }
    cg.destroy().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    cg.destroy().unwrap();
}

// ---------------------------------------------------------------- pure v2

const V2_CHILD_ENV: &str = "STELE_CGROUP_V2_CHILD";

/// Runs `v2_child` in a private mount namespace whose /sys/fs/cgroup is a
/// cgroup2-only mount.
#[test]
fn v2_pure_hierarchy() {
    if !is_root() || Command::new("unshare").arg("--version").output().is_err() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            "umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && \
             mount -t bpf bpf /sys/fs/bpf && \
             exec \"$0\" --exact cgroups::tests::v2_child --ignored --nocapture --test-threads=1",
        )
        .arg(exe)
        .env(V2_CHILD_ENV, "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run by v2_pure_hierarchy inside a private mount namespace"]
fn v2_child() {
    if std::env::var_os(V2_CHILD_ENV).is_none() {
        return;
    }
    assert!(is_v2_only());
    // The statfs fast path sees what mountinfo says.
    let full = super::layout::Layout::parse(&read("/proc/self/mountinfo"), &read("/proc/self/cgroup"));
    assert_eq!(super::layout::Layout::read().unwrap(), full);
    let root = Path::new("/sys/fs/cgroup");
    let avail = read(root.join("cgroup.controllers"));
    let has = |c: &str| avail.split_whitespace().any(|a| a == c);
    let top = unique("v2");
    let mut r = serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]});
    if has("hugetlb") {
        r["hugepageLimits"] = serde_json::json!([{"pageSize": "2MB", "limit": 2097152}]);
    }
    if has("pids") {
        r["pids"] = serde_json::json!({"limit": 7});
    }
    if has("memory") {
        r["memory"] = serde_json::json!({"limit": 67108864});
    }
    if has("cpu") {
        r["cpu"] = serde_json::json!({"shares": 1024, "quota": 50000, "period": 100000});
    }
    let r = res(r);
    let cg = Cgroup::create("x", Some(&format!("/{top}/c")), false, Some(&r)).expect("create v2");
    let leaf = cg.v2.clone().unwrap();
    assert_eq!(leaf, root.join(&top).join("c"));
    assert!(cg.v1.is_empty());
    assert_eq!(cg.mount_sources(), [(String::new(), leaf.clone())]);
    let subtree = read(root.join(&top).join("cgroup.subtree_control"));
    if has("hugetlb") {
        assert!(subtree.contains("hugetlb"), "{subtree}");
        assert_eq!(read(leaf.join("hugetlb.2MB.max")).trim(), "2097152");
    }
    if has("pids") {
        assert_eq!(read(leaf.join("pids.max")).trim(), "7");
    }
    if has("memory") {
        assert_eq!(read(leaf.join("memory.max")).trim(), "67108864");
    }
    if has("cpu") {
        assert_eq!(read(leaf.join("cpu.weight")).trim(), "39");
        assert_eq!(read(leaf.join("cpu.max")).trim(), "50000 100000");
    }
    // unified writes: a file every cgroup2 has.
    cg.update(&res(serde_json::json!({"unified": {"cgroup.max.descendants": "5"}}))).unwrap();
    assert_eq!(read(leaf.join("cgroup.max.descendants")).trim(), "5");
    let e = cg.update(&res(serde_json::json!({"unified": {"nosuch.file": "1"}}))).unwrap_err().to_string();
    assert!(e.contains("nosuch.file") && e.contains("no such file or directory"), "{e}");
    assert!(cg.v2_dir_fd().is_some());

    // The eBPF device filter: /dev/null allowed (runc's defaults), /dev/kmsg (1:11) denied.
    let mut probe = Command::new("sh")
        .arg("-c")
        .arg("read x; echo hi >/dev/null && echo null-ok; (: </dev/kmsg) 2>/dev/null || echo kmsg-denied")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    cg.add_pid(probe.id() as i32).unwrap();
    {
        use std::io::Write as _;
        probe.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let out = probe.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "null-ok\nkmsg-denied\n");
    assert_eq!(bpf::attached_count(&leaf), 1);
    // The program was pinned for the next container with the same rules.
    let pins = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir("/sys/fs/bpf/stele").unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    };
    let deny_pin = match pins().as_slice() {
        [p] => p.clone(),
        other => panic!("expected one pinned program, got {other:?}"),
    };
    assert_eq!(bpf::attached_ids(&leaf), [bpf::pinned_id(&deny_pin).unwrap()]);
    let same = Cgroup::create("y", Some(&format!("/{top}/same")), false, Some(&r)).expect("create v2");
    let same_leaf = same.v2.clone().unwrap();
    assert_eq!(bpf::attached_ids(&same_leaf), bpf::attached_ids(&leaf), "the pinned program is reused");
    same.destroy().unwrap();
    // update with devices replaces the filter
    cg.update(&res(serde_json::json!({"devices": [{"allow": true, "access": "rwm"}]}))).unwrap();
    assert_eq!(bpf::attached_count(&leaf), 1);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("echo $$ > {}/cgroup.procs; (: </dev/kmsg) 2>/dev/null || echo kmsg-denied", leaf.display()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    // A pinned program that does not match its name is never used: put the
    // allow-all program in the place of the default rules' one.
    let allow_pin = pins().into_iter().find(|p| *p != deny_pin).expect("allow-all program pinned");
    std::fs::remove_file(&deny_pin).unwrap();
    std::fs::rename(&allow_pin, &deny_pin).unwrap();
    let fresh = Cgroup::create("z", Some(&format!("/{top}/fresh")), false, Some(&r)).expect("create v2");
    let fresh_leaf = fresh.v2.clone().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("echo $$ > {}/cgroup.procs; (: </dev/kmsg) 2>/dev/null || echo kmsg-denied", fresh_leaf.display()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kmsg-denied\n", "a tampered pin must not be used");
    assert_ne!(bpf::attached_ids(&fresh_leaf), [bpf::pinned_id(&deny_pin).unwrap()]);
    fresh.destroy().unwrap();

    let child = sleeper();
    let pid = child.id() as i32;
    cg.add_pid(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), [pid]);
    cg.freeze().unwrap();
    assert!(read(leaf.join("cgroup.events")).contains("frozen 1"));
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    let s = cg.stats().unwrap();
    assert!(s["cpu"]["usage"]["total"].is_u64(), "{s}");
    cg.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(wait_signal(child), Some(libc::SIGKILL));
    cg.destroy().unwrap();
    assert!(!leaf.exists());
    cg.destroy().unwrap();
    std::fs::remove_dir(root.join(&top)).unwrap();

    // create errors leave nothing behind on v2 either
    let bad = res(serde_json::json!({"unified": {"nosuch.file": "1"}}));
    assert!(Cgroup::create("x", Some(&format!("/{top}/c")), false, Some(&bad)).is_err());
    assert!(!root.join(&top).exists());
}
