//! `stele run --image REF -- CMD`: a CI job in a throw-away, read-only,
//! isolated container that behaves like the process it wraps (output
//! streamed, exit status passed through, signals forwarded, a wall-clock
//! timeout), with nothing left behind.
//!
//! The sandbox is an ordinary container: this module turns the options into
//! a config (kept in memory) and runs it supervised.

use crate::container::{self, CreateOpts, Globals, Outcome};
use crate::error::{Context, Error, Result};
use crate::bail;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Annotation marking a sandbox's container (for stale clean-up).
pub const SANDBOX_ANNOTATION: &str = "dev.stele.sandbox";
/// Annotation asking for a writable root whose writes go to a fresh tmpfs
/// and are discarded with the container (`--writable`).
pub const WRITABLE_ANNOTATION: &str = "dev.stele.sandbox.writable";

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `host`, an image name in the store, or a transport reference.
    pub image: String,
    pub command: Vec<String>,
    /// SRC:DST[:ro|rw]
    pub binds: Vec<String>,
    /// DST[:size=N]
    pub tmpfs: Vec<String>,
    pub workdir: Option<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// none (loopback only) or host
    pub net: String,
    pub memory: Option<i64>,
    pub pids: Option<i64>,
    pub cpus: Option<f64>,
    pub timeout: Option<Duration>,
    /// default, unconfined or a file
    pub seccomp: String,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub name: Option<String>,
    pub interactive: bool,
    /// Read the job's peak memory and CPU time from its cgroup at the end
    /// (for `--json-status`).
    pub collect_stats: bool,
    /// Give the job a terminal (also when stdin is one).
    pub tty: bool,
    /// A throw-away writable layer over the root (tmpfs upper).
    pub writable: bool,
}

/// The capabilities a job gets unless told otherwise (Docker's default set).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn cap_name(c: &str) -> String {
    let u = c.to_ascii_uppercase();
    if u.starts_with("CAP_") { u } else { format!("CAP_{u}") }
}

fn read_env_file(p: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(p).with_ctx(|| format!("--env-file {}", p.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

fn set_env(env: &mut Vec<String>, kv: &str) -> Result<()> {
    let Some((k, _)) = kv.split_once('=') else { bail!("--env {kv:?}: expected KEY=VALUE") };
    env.retain(|e| e.split('=').next() != Some(k));
    env.push(kv.to_string());
    Ok(())
}

/// Build the config.json for a sandbox. `base` is the image bundle's config
/// (image mode) or None (`--image host`).
pub fn build_spec(o: &Options, base: Option<Value>, tty: bool) -> Result<Value> {
    if o.command.is_empty() {
        bail!("run --image: no command given (stele run --image REF -- CMD [ARGS...])");
    }
    let host = base.is_none();
    let mut spec = base.unwrap_or_else(|| {
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs", "readonly": true},
            "annotations": {crate::policy::HOST_ROOT_ANNOTATION: "true"},
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "env": []},
        })
    });
    // Environment: clean, from the image plus PATH, HOME, TERM, then the user's.
    let mut env: Vec<String> = spec["process"]["env"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let uid = match &o.user {
        Some(u) => {
            let (a, b) = u.split_once(':').map(|(a, b)| (a, Some(b))).unwrap_or((u.as_str(), None));
            let uid: u32 = a.parse().map_err(|_| Error::msg(format!("--user {u:?}: expected UID[:GID]")))?;
            let gid: u32 = match b {
                Some(g) => g.parse().map_err(|_| Error::msg(format!("--user {u:?}: expected UID[:GID]")))?,
                None => uid,
            };
            spec["process"]["user"] = json!({"uid": uid, "gid": gid});
            uid
        }
        None => spec["process"]["user"]["uid"].as_u64().unwrap_or(0) as u32,
    };
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(if uid == 0 { "HOME=/root".into() } else { "HOME=/".into() });
    }
    let term = if tty { std::env::var("TERM").unwrap_or_else(|_| "xterm".into()) } else { "dumb".into() };
    set_env(&mut env, &format!("TERM={term}"))?;
    for f in &o.env_files {
        for kv in read_env_file(f)? {
            set_env(&mut env, &kv)?;
        }
    }
    for kv in &o.env {
        set_env(&mut env, kv)?;
    }
    spec["process"]["env"] = json!(env);
    spec["process"]["args"] = json!(o.command);
    spec["process"]["terminal"] = json!(tty);
    if let Some(w) = &o.workdir {
        if !w.starts_with('/') {
            bail!("--workdir {w:?}: must be an absolute path");
        }
        spec["process"]["cwd"] = json!(w);
    }
    if spec["process"]["cwd"].as_str().unwrap_or("").is_empty() {
        spec["process"]["cwd"] = json!("/");
    }
    spec["process"]["noNewPrivileges"] = json!(true);
    spec["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]);
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    for c in &o.cap_drop {
        let c = cap_name(c);
        if c == "CAP_ALL" {
            caps.clear();
        }
        caps.retain(|x| *x != c);
    }
    for c in &o.cap_add {
        let c = cap_name(c);
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    spec["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    spec["hostname"] = json!(o.hostname.clone().unwrap_or_else(|| "stele-sandbox".into()));
    spec["root"]["readonly"] = json!(!o.writable);

    // Mounts: the usual kernel filesystems, a private /tmp, then the user's.
    let mut mounts = crate::spec::kernel_mounts();
    mounts.push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}));
    if host {
        // The host's /run holds sockets of host services: hide it.
        mounts.push(json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]}));
    }
    for b in &o.binds {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [s, d] => (*s, *d, "rw"),
            [s, d, m] if *m == "ro" || *m == "rw" => (*s, *d, *m),
            _ => bail!("--bind {b:?}: expected SRC:DST[:ro|rw]"),
        };
        let src = std::fs::canonicalize(src).with_ctx(|| format!("--bind {b:?}: source {src}"))?;
        if !dst.starts_with('/') {
            bail!("--bind {b:?}: destination must be an absolute path");
        }
        mounts.push(json!({"destination": dst, "type": "bind", "source": src,
                           "options": ["rbind", mode, "nosuid", "nodev"]}));
    }
    for t in &o.tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        if !dst.starts_with('/') {
            bail!("--tmpfs {t:?}: destination must be an absolute path");
        }
        let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
        options.extend(opts.split(',').filter(|s| !s.is_empty()).map(String::from));
        mounts.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": options}));
    }
    // Image volumes (tmpfs) from the image bundle come after ours.
    if let Some(img_mounts) = spec["mounts"].as_array() {
        for m in img_mounts {
            let d = m["destination"].as_str().unwrap_or("");
            if !mounts.iter().any(|x| x["destination"].as_str() == Some(d)) {
                mounts.push(m.clone());
            }
        }
    }
    spec["mounts"] = json!(mounts);

    let mut ns = vec![json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"}), json!({"type": "mount"}), json!({"type": "cgroup"})];
    match o.net.as_str() {
        "none" | "" => ns.push(json!({"type": "network"})),
        "host" => {}
        other => bail!("--net {other:?}: expected none or host"),
    }
    spec["linux"]["namespaces"] = json!(ns);
    spec["linux"]["maskedPaths"] = json!([
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
    ]);
    spec["linux"]["readonlyPaths"] = json!(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
    let mut res = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if let Some(m) = o.memory {
        res["memory"] = json!({"limit": m, "swap": m});
    }
    if let Some(p) = o.pids {
        res["pids"] = json!({"limit": p});
    }
    if let Some(c) = o.cpus {
        if c.is_nan() || c <= 0.0 {
            bail!("--cpus {c}: must be positive");
        }
        res["cpu"] = json!({"quota": (c * 100_000.0) as i64, "period": 100_000});
    }
    spec["linux"]["resources"] = res;
    match o.seccomp.as_str() {
        "" | "default" => {
            spec["linux"]["seccomp"] = serde_json::to_value(crate::seccomp::default_profile()).unwrap_or_default();
        }
        "unconfined" => {
            if let Some(l) = spec["linux"].as_object_mut() {
                l.remove("seccomp");
            }
        }
        file => {
            let text = std::fs::read(file).with_ctx(|| format!("--seccomp {file}"))?;
            spec["linux"]["seccomp"] = serde_json::from_slice(&text).map_err(|e| Error::msg(format!("--seccomp {file}: {e}")))?;
        }
    }
    spec["annotations"][SANDBOX_ANNOTATION] = json!("true");
    if o.writable {
        spec["annotations"][WRITABLE_ANNOTATION] = json!("true");
    }
    spec["annotations"][crate::process::LOOPBACK_ANNOTATION] = json!("true");
    Ok(spec)
}

/// The root of a container whose spec carries [`WRITABLE_ANNOTATION`]: an
/// overlay of the image layers (or of the host's root filesystem) under an
/// upper and work dir on a fresh tmpfs. Nothing but this detached mount
/// holds the tmpfs, so the writes vanish with the container's mount
/// namespace. `None` when the spec does not ask for it.
///
/// The host's root is taken as one filesystem: overlay cannot stack a tree
/// of mounts, so filesystems mounted below `/` on the host (other than the
/// ones the container mounts itself) show as their empty mountpoints.
pub fn writable_root(spec: &oci_spec::runtime::Spec, kind: crate::policy::RootfsKind) -> Result<Option<std::os::fd::OwnedFd>> {
    use crate::policy::RootfsKind;
    use crate::sys::{self, FsContext};
    use std::os::fd::AsRawFd;
    let Some(ann) = spec.annotations() else { return Ok(None) };
    if ann.get(WRITABLE_ANNOTATION).map(String::as_str) != Some("true") {
        return Ok(None);
    }
    let lowers: Vec<PathBuf> = match kind {
        RootfsKind::ImageLayers => crate::image::layer_dirs(ann)?.unwrap_or_default(),
        RootfsKind::Host => vec![PathBuf::from("/")],
        _ => bail!("--writable: the root must be an image or the host's root"),
    };
    let attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
    let tmp = FsContext::new("tmpfs")?;
    tmp.set_string("mode", "0755")?;
    let tmp = tmp.mount(attrs).ctx("--writable: the tmpfs for the upper layer")?;
    let mut dirs = vec![];
    for name in ["upper", "work"] {
        let c = std::ffi::CString::new(name).unwrap_or_default();
        // SAFETY: valid dirfd and C string.
        if unsafe { libc::mkdirat(tmp.as_raw_fd(), c.as_ptr(), 0o755) } < 0 {
            return Err(Error::os(format!("--writable: mkdir {name}"), nix::errno::Errno::last_raw()));
        }
        dirs.push(sys::openat2(tmp.as_raw_fd(), name, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC, 0, 0)?);
    }
    let ovl = FsContext::new("overlay")?;
    ovl.set_string("source", "stele")?;
    // Overlay takes the lower layers top-most first.
    let mut lower_fds = vec![];
    for d in lowers.iter().rev() {
        let fd = sys::open_path(d, libc::O_PATH | libc::O_DIRECTORY)?;
        ovl.set_fd("lowerdir+", fd.as_raw_fd()).with_ctx(|| format!("--writable: overlay lower {}", d.display()))?;
        lower_fds.push(fd);
    }
    ovl.set_fd("upperdir", dirs[0].as_raw_fd()).ctx("--writable: overlay upper dir")?;
    ovl.set_fd("workdir", dirs[1].as_raw_fd()).ctx("--writable: overlay work dir")?;
    let what = if kind == RootfsKind::Host { "the host's root" } else { "the image" };
    ovl.mount(attrs).with_ctx(|| format!("--writable: overlay over {what}")).map(Some)
}

fn generated_id() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("sandbox-{}-{:x}", std::process::id(), t.subsec_nanos())
}

/// The file in an image sandbox's bundle dir naming the stele that runs it.
const OWNER: &str = "owner";

fn owner_alive(bundle: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(bundle.join(OWNER)) else { return false };
    let mut it = text.split_whitespace().map(|w| w.parse::<u64>().unwrap_or(0));
    let (pid, start) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    crate::state::process_alive(pid as i32, start)
}

/// What [`reap_stale`] reads of a container's record.
#[derive(serde::Deserialize)]
struct Supervised {
    #[serde(default)]
    supervisor: Option<(i32, u64)>,
}

/// Remove sandboxes left by a stele that was killed (their init died with
/// it, by PR_SET_PDEATHSIG): state, cgroup and, for an image, the bundle
/// directory. A sandbox whose stele still runs is left alone, whatever state
/// its container is in. The state names the stele that supervises it
/// (written before its cgroup could hold a process); an image sandbox's
/// bundle directory, made before its state, names it in an `owner` file.
fn reap_stale(g: &Globals, bundles: &Path) {
    let mut stale = vec![];
    let store = g.store();
    for id in store.list().unwrap_or_default() {
        // Unlocked: a record is replaced by rename, never half-written.
        let Ok(text) = std::fs::read(store.record(&id)) else { continue };
        let sup = serde_json::from_slice::<Supervised>(&text).ok().and_then(|s| s.supervisor);
        if sup.is_some_and(|(pid, start)| !crate::state::process_alive(pid, start)) {
            stale.push(id);
        }
    }
    if let Ok(rd) = std::fs::read_dir(bundles) {
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !owner_alive(&e.path()) && !stale.contains(&id) {
                let alive = container::state(g, &id).map(|v| v["status"] != "stopped").unwrap_or(false);
                if !alive {
                    stale.push(id);
                }
            }
        }
    }
    for id in stale {
        let _ = container::delete(g, &id, true);
        let _ = std::fs::remove_dir_all(bundles.join(&id));
    }
}

/// The cgroup controllers a job needs: device rules always, and those of the
/// limits and statistics it asks for.
fn controllers(o: &Options) -> Vec<&'static str> {
    let mut c = vec!["devices"];
    if o.memory.is_some() || o.collect_stats {
        c.push("memory");
    }
    if o.collect_stats {
        c.push("cpuacct");
    }
    if o.cpus.is_some() {
        c.push("cpu");
    }
    if o.pids.is_some() {
        c.push("pids");
    }
    c
}

/// Run the job; returns how it ended.
///
/// `--image host` needs no bundle directory: the config goes to the create
/// path in memory, and the host's root is mounted, in the init's private
/// mount namespace, over the state root (a directory that exists anyway;
/// it is also the bundle directory the state records).
/// An image gets a bundle directory under `<root>/.sandbox` for its rootfs.
pub fn run(g: &Globals, o: &Options) -> Result<Outcome> {
    let id = o.name.clone().unwrap_or_else(generated_id);
    crate::state::validate_id(&id)?;
    let bundles = g.root.join(".sandbox");
    reap_stale(g, &bundles);
    let store = g.store();
    store.ensure_root()?;
    let root = std::path::absolute(&g.root).with_ctx(|| format!("state root {}", g.root.display()))?;
    let host = o.image == "host";
    let dir = if host { root.clone() } else { bundles.join(&id) };
    if root.join(&id).exists() || (!host && dir.exists()) {
        bail!("a sandbox named {id} already exists");
    }
    if !host {
        std::fs::create_dir_all(&bundles).with_ctx(|| format!("create {}", bundles.display()))?;
        std::fs::create_dir(&dir).with_ctx(|| format!("create {}", dir.display()))?;
    }
    let result = (|| {
        let base = if host {
            None
        } else {
            let me = std::process::id();
            let owner = format!("{me} {}\n", crate::sys::process_start_time(me as i32).unwrap_or(0));
            std::fs::write(dir.join(OWNER), owner).ctx("write the sandbox's owner")?;
            let store = crate::image::Store::open(&g.store)?;
            crate::image::bundle::create_bundle(&store, &o.image, &dir, &crate::image::bundle::BundleOptions { flatten: false })?;
            let text = std::fs::read(dir.join("config.json")).ctx("read the image's config.json")?;
            Some(serde_json::from_slice(&text).map_err(|e| Error::msg(format!("image config.json: {e}")))?)
        };
        // SAFETY: isatty on fd 0.
        let stdin_tty = unsafe { libc::isatty(0) } == 1;
        let tty = o.tty || stdin_tty;
        let mut config = build_spec(o, base, tty)?;
        if host {
            config["root"]["path"] = json!(root);
        }
        let job = container::Job { config, controllers: controllers(o) };
        if !o.interactive && !stdin_tty {
            // stdin is passed only with -i (or a terminal): the job reads EOF.
            let null = std::fs::File::open("/dev/null").ctx("open /dev/null")?;
            // SAFETY: dup2 of a valid fd onto stdin.
            if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0) } < 0 {
                return Err(Error::os("stdin", nix::errno::Errno::last_raw()));
            }
        }
        let mut co = CreateOpts { bundle: dir.clone(), die_with_parent: true, ..Default::default() };
        if !tty {
            return container::run_supervised_with(g, &id, &co, o.timeout, o.collect_stats, Some(&job), &mut |_| false);
        }
        // A terminal: the init sends the pty master over a socketpair to
        // the proxy; SIGWINCH goes to the proxy, every other signal to the job.
        let (ours, theirs) = crate::pty::console_pair()?;
        co.console_fd = Some(std::sync::Arc::new(theirs));
        let proxy = crate::pty::Proxy::start(ours, o.interactive || stdin_tty)?;
        let mut on_signal = |sig: i32| {
            if sig == libc::SIGWINCH {
                proxy.resize();
                return true;
            }
            false
        };
        let out = container::run_supervised_with(g, &id, &co, o.timeout, o.collect_stats, Some(&job), &mut on_signal);
        drop(co);
        drop(proxy);
        out
    })();
    if !host {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// The `--json-status` document.
pub fn status_json(out: &Outcome) -> Value {
    json!({
        "exit_code": out.code,
        "signal": out.signal,
        "oom_killed": out.oom_killed,
        "timed_out": out.timed_out,
        "wall_time_ms": out.wall.as_millis() as u64,
        "peak_memory_bytes": out.peak_memory_bytes,
        "cpu_time_ms": out.cpu_time_ns.map(|n| n / 1_000_000),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn spec_from_options() {
        let o = Options {
            command: vec!["true".into()],
            net: "none".into(),
            env: vec!["A=1".into()],
            memory: Some(1 << 26),
            cap_drop: vec!["net_raw".into()],
            ..Default::default()
        };
        let s = build_spec(&o, None, false).unwrap();
        assert_eq!(s["root"]["path"], "rootfs");
        assert_eq!(s["annotations"][crate::policy::HOST_ROOT_ANNOTATION], "true");
        assert_eq!(s["root"]["readonly"], true);
        assert!(s["process"]["env"].as_array().unwrap().contains(&json!("A=1")));
        assert!(!s["process"]["capabilities"]["bounding"].as_array().unwrap().contains(&json!("CAP_NET_RAW")));
        assert_eq!(s["linux"]["resources"]["memory"]["limit"], 1 << 26);
        assert!(s["linux"]["namespaces"].as_array().unwrap().contains(&json!({"type": "network"})));
        assert!(s["annotations"].get(WRITABLE_ANNOTATION).is_none());
        let w = build_spec(&Options { writable: true, ..o }, None, true).unwrap();
        assert_eq!(w["root"]["readonly"], false);
        assert_eq!(w["annotations"][WRITABLE_ANNOTATION], "true");
        assert_eq!(w["process"]["terminal"], true);
    }
}
