//! config.json: loading (typed with oci-spec, raw kept beside it), stele's
//! own validation (oci-spec validates almost nothing), the default spec that
//! `stele spec` writes, and the `features` document.

use crate::error::{Context, Error, Result};
use crate::bail;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

mod wire;
pub use wire::De;

/// A loaded and validated bundle.
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute root filesystem path.
    pub rootfs: PathBuf,
}

/// Load `<bundle>/config.json` and validate it. Errors name the field.
pub fn load(bundle: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(bundle).with_ctx(|| format!("bundle {}", bundle.display()))?;
    let path = dir.join("config.json");
    let bytes = std::fs::read(&path).with_ctx(|| format!("open {}", path.display()))?;
    let spec = parse(&bytes)?;
    let rootfs = validate(&spec, &dir)?;
    Ok(Bundle { dir, spec, rootfs })
}

/// Parse config.json bytes; the error names the JSON path of the bad field.
/// Tracking the path slows the parse down (every field goes through a
/// wrapper): a config is parsed plainly, and again with the path only to
/// explain an error.
pub fn parse(bytes: &[u8]) -> Result<Spec> {
    serde_json::from_slice::<De<Spec>>(bytes).map(|s| s.0).or_else(|_| {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize::<_, De<Spec>>(de).map(|s| s.0).map_err(parse_error)
    })
}

/// [`parse`] for a config built in memory (the sandbox's): no text in between.
pub fn from_value(v: &serde_json::Value) -> Result<Spec> {
    use serde::Deserialize;
    // As in [`parse`]: the path only to explain an error.
    De::<Spec>::deserialize(v)
        .map(|s| s.0)
        .or_else(|_| serde_path_to_error::deserialize::<_, De<Spec>>(v).map(|s| s.0).map_err(parse_error))
}

fn parse_error(e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let field = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        Error::msg(format!("config.json: invalid JSON: {inner}"))
    } else if field.is_empty() || field == "." || field == "?" {
        Error::msg(format!("config.json: {inner}"))
    } else {
        Error::msg(format!("config.json: {field}: {inner}"))
    }
}

/// A bundle whose config was built in memory (`config`, the sandbox's) for
/// the bundle directory `bundle`: validated as [`load`] does.
pub fn in_memory(bundle: &Path, config: &serde_json::Value) -> Result<Bundle> {
    let dir = std::path::absolute(bundle).with_ctx(|| format!("bundle {}", bundle.display()))?;
    let spec = from_value(config)?;
    let rootfs = validate(&spec, &dir)?;
    Ok(Bundle { dir, spec, rootfs })
}

const NAMESPACED_SYSCTL_PREFIXES: &[(&str, LinuxNamespaceType)] = &[
    ("kernel.msgmax", LinuxNamespaceType::Ipc),
    ("kernel.msgmnb", LinuxNamespaceType::Ipc),
    ("kernel.msgmni", LinuxNamespaceType::Ipc),
    ("kernel.sem", LinuxNamespaceType::Ipc),
    ("kernel.shmall", LinuxNamespaceType::Ipc),
    ("kernel.shmmax", LinuxNamespaceType::Ipc),
    ("kernel.shmmni", LinuxNamespaceType::Ipc),
    ("kernel.shm_rmid_forced", LinuxNamespaceType::Ipc),
    ("fs.mqueue.", LinuxNamespaceType::Ipc),
    ("net.", LinuxNamespaceType::Network),
    ("kernel.hostname", LinuxNamespaceType::Uts),
    ("kernel.domainname", LinuxNamespaceType::Uts),
];

/// One item of a CPU or NUMA node list as the runtime spec writes them
/// (`0-3,7`): `N` or `N-M` in decimal, as (first, last).
pub(crate) fn list_range(item: &str) -> Option<(u64, u64)> {
    let num = |n: &str| n.bytes().all(|b| b.is_ascii_digit()).then(|| n.parse().ok()).flatten();
    match item.split_once('-') {
        Some((a, b)) => Some((num(a)?, num(b)?)),
        None => num(item).map(|n| (n, n)),
    }
}

fn is_abs(p: &Path) -> bool {
    p.is_absolute()
}

/// Does the spec create (not join) a namespace of this type?
pub fn has_new_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|n| n.typ() == t && n.path().is_none())
}

pub fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|n| n.typ() == t)
}

pub fn namespaces(spec: &Spec) -> &[oci_spec::runtime::LinuxNamespace] {
    spec.linux().as_ref().and_then(|l| l.namespaces().as_deref()).unwrap_or(&[])
}

/// Validate what the runtime spec requires and stele relies on. Returns the
/// absolute rootfs path.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let v = spec.version();
    if v.is_empty() {
        bail!("config.json: ociVersion: missing");
    }
    if !v.starts_with("1.") {
        bail!("config.json: ociVersion: {v:?} is not supported (stele supports 1.x)");
    }

    // root
    let root = match spec.root() {
        Some(r) => r,
        None => bail!("config.json: root: missing"),
    };
    if root.path().as_os_str().is_empty() {
        bail!("config.json: root.path: empty");
    }
    let rootfs = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
    match std::fs::symlink_metadata(&rootfs) {
        Err(e) => {
            return Err(Error::os(format!("root.path: {}", rootfs.display()), e.raw_os_error().unwrap_or(libc::ENOENT)))
        }
        Ok(m) if m.file_type().is_symlink() => {
            bail!("root.path: {} is a symlink; give the real directory", rootfs.display())
        }
        Ok(m) if !m.is_dir() => bail!("root.path: {} is not a directory", rootfs.display()),
        Ok(_) => {}
    }

    // process
    if let Some(p) = spec.process() {
        match p.args() {
            Some(a) if !a.is_empty() && !a[0].is_empty() => {}
            _ => bail!("config.json: process.args: args must not be empty"),
        }
        if !is_abs(p.cwd()) {
            bail!("config.json: process.cwd: {:?} must be an absolute path", p.cwd());
        }
        if let Some(env) = p.env() {
            for (i, e) in env.iter().enumerate() {
                if !e.contains('=') {
                    bail!("config.json: process.env[{i}]: {e:?} is not KEY=VALUE");
                }
            }
        }
        if let Some(rl) = p.rlimits() {
            let mut seen = HashSet::new();
            for (i, r) in rl.iter().enumerate() {
                if r.soft() > r.hard() {
                    bail!("config.json: process.rlimits[{i}]: soft limit {} exceeds hard limit {}", r.soft(), r.hard());
                }
                if !seen.insert(format!("{:?}", r.typ())) {
                    bail!("config.json: process.rlimits[{i}]: duplicate {:?}", r.typ());
                }
            }
        }
    }

    // mounts
    for (i, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        if !is_abs(m.destination()) {
            bail!("config.json: mounts[{i}].destination: {:?} must be an absolute path", m.destination());
        }
    }

    // hooks
    if let Some(h) = spec.hooks() {
        let lists = [
            ("prestart", h.prestart()),
            ("createRuntime", h.create_runtime()),
            ("createContainer", h.create_container()),
            ("startContainer", h.start_container()),
            ("poststart", h.poststart()),
            ("poststop", h.poststop()),
        ];
        for (name, list) in lists {
            for (i, hook) in list.as_deref().unwrap_or(&[]).iter().enumerate() {
                if !is_abs(hook.path()) {
                    bail!("config.json: hooks.{name}[{i}].path: {:?} must be an absolute path", hook.path());
                }
                if let Some(t) = hook.timeout() {
                    if t <= 0 {
                        bail!("config.json: hooks.{name}[{i}].timeout: must be positive, got {t}");
                    }
                }
            }
        }
    }

    // linux
    let linux = match spec.linux() {
        Some(l) => l,
        None => bail!("config.json: linux: missing"),
    };
    let mut seen = HashSet::new();
    for (i, ns) in namespaces(spec).iter().enumerate() {
        if !seen.insert(ns.typ()) {
            bail!("config.json: linux.namespaces[{i}]: duplicate namespace type {}", ns_name(ns.typ()));
        }
        if let Some(p) = ns.path() {
            if !is_abs(p) {
                bail!("config.json: linux.namespaces[{i}].path: {:?} must be an absolute path", p);
            }
        }
    }
    crate::userns::validate(spec)?;
    if let Some(offsets) = linux.time_offsets() {
        // Offsets can only be given to a namespace nobody is in yet.
        if !offsets.is_empty() && !has_new_ns(spec, LinuxNamespaceType::Time) {
            bail!("config.json: linux.timeOffsets: needs a new time namespace in linux.namespaces");
        }
        for (clock, o) in offsets {
            if clock != "monotonic" && clock != "boottime" {
                bail!("config.json: linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)");
            }
            if o.nanosecs().unwrap_or(0) >= 1_000_000_000 {
                bail!("config.json: linux.timeOffsets.{clock}.nanosecs: must be below 1000000000");
            }
        }
    }
    if !has_ns(spec, LinuxNamespaceType::Mount) {
        bail!("config.json: linux.namespaces: a mount namespace is required (stele never mounts in the host's)");
    }
    if let Some(sysctl) = linux.sysctl() {
        let mut keys: Vec<_> = sysctl.keys().collect();
        keys.sort();
        for k in keys {
            let ns = NAMESPACED_SYSCTL_PREFIXES
                .iter()
                .find(|(p, _)| if p.ends_with('.') { k.starts_with(p) } else { k == p })
                .map(|(_, t)| *t);
            match ns {
                None => bail!("config.json: linux.sysctl: {k:?} is not namespaced: it would change the host"),
                Some(t) if !has_new_ns(spec, t) => bail!(
                    "config.json: linux.sysctl: {k:?} needs a new {} namespace: it would change the host",
                    ns_name(t)
                ),
                _ => {}
            }
        }
    }
    if let Some(devs) = linux.devices() {
        for (i, d) in devs.iter().enumerate() {
            if !is_abs(d.path()) {
                bail!("config.json: linux.devices[{i}].path: {:?} must be an absolute path", d.path());
            }
            use oci_spec::runtime::LinuxDeviceType as T;
            if !matches!(d.typ(), T::C | T::B | T::U | T::P) {
                bail!("config.json: linux.devices[{i}].type: must be c, b, u or p");
            }
        }
    }
    for (field, list) in [("maskedPaths", linux.masked_paths()), ("readonlyPaths", linux.readonly_paths())] {
        for (i, p) in list.as_deref().unwrap_or(&[]).iter().enumerate() {
            if !p.starts_with('/') {
                bail!("config.json: linux.{field}[{i}]: {p:?} must be an absolute path");
            }
        }
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !matches!(p.as_str(), "" | "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable" | "runbindable") {
            bail!("config.json: linux.rootfsPropagation: unknown value {p:?}");
        }
    }
    if linux.intel_rdt().is_some() {
        // Silently running without the asked-for cache/memory-bandwidth
        // allocation would be worse than refusing (runc refuses it too where
        // resctrl is missing).
        bail!("config.json: linux.intelRdt: not supported by stele (no resctrl support)");
    }
    let process = spec.process().as_ref();
    crate::procattr::validate(
        process.and_then(|p| p.scheduler().as_ref()),
        process.and_then(|p| p.io_priority().as_ref()),
        linux,
    )?;
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has_ns(spec, LinuxNamespaceType::Uts) {
        bail!("config.json: hostname: setting the hostname needs a uts namespace (new or joined by path)");
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has_ns(spec, LinuxNamespaceType::Uts) {
        bail!("config.json: domainname: setting the domainname needs a uts namespace (new or joined by path)");
    }
    Ok(rootfs)
}

pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The default config.json written by `stele spec`: runc's default with a
/// read-only root, stele's hostname and the built-in seccomp profile.
pub fn default_spec() -> serde_json::Value {
    let mut v = default_spec_without_seccomp();
    v["linux"]["seccomp"] = serde_json::to_value(crate::seccomp::default_profile()).unwrap_or_default();
    v
}

fn default_spec_without_seccomp() -> serde_json::Value {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "stele",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// The kernel filesystems every stele-made config mounts (image bundles and
/// sandboxes): /proc, /dev (tmpfs), /dev/pts, /dev/shm, /dev/mqueue, /sys
/// read-only; all nosuid, and noexec/nodev where they can be.
pub fn kernel_mounts() -> Vec<serde_json::Value> {
    use serde_json::json;
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ]
}

/// `linux.timeOffsets` as /proc/PID/timens_offsets takes them ("CLOCK SECS
/// NANOSECS" lines), or None when there are none.
pub fn time_offsets(spec: &Spec) -> Option<String> {
    let offsets = spec.linux().as_ref()?.time_offsets().as_ref().filter(|o| !o.is_empty())?;
    let mut clocks: Vec<_> = offsets.iter().collect();
    clocks.sort_by_key(|(k, _)| k.as_str());
    Some(clocks.iter().map(|(k, o)| format!("{k} {} {}\n", o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0))).collect())
}

/// The runtime-spec `features` document, listing only what stele supports.
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::rootfs::MOUNT_OPTION_NAMES,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": crate::security::all_capability_names(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_RISCV64", "SCMP_ARCH_X32",
                          "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
                               "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
                                   "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runc.version": "compatible",
            "dev.stele.version": env!("CARGO_PKG_VERSION")
        }
    })
}
