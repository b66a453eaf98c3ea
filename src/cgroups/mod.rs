//! cgroups v1 (including the hybrid layout) and v2, without external crates.
//!
//! CONTRACT used by the rest of stele (container/process code calls exactly this):
//!
//! ```ignore
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! pub struct Cgroup { .. }            // saved inside the container's state.json
//! impl Cgroup {
//!     pub fn create(id: &str, cgroups_path: Option<&str>, systemd: bool,
//!                   resources: Option<&LinuxResources>) -> Result<Cgroup>;
//!     pub fn add_pid(&self, pid: i32) -> Result<()>;          // every hierarchy
//!     pub fn v2_dir_fd(&self) -> Option<OwnedFd>;             // for CLONE_INTO_CGROUP
//!     pub fn pids(&self) -> Result<Vec<i32>>;                 // all processes, host pids
//!     pub fn freeze(&self) -> Result<()>; pub fn thaw(&self) -> Result<()>;
//!     pub fn is_frozen(&self) -> Result<bool>;
//!     pub fn kill_all(&self, sig: i32) -> Result<()>;
//!     pub fn destroy(&self) -> Result<()>;                    // Ok if already gone
//!     pub fn update(&self, r: &LinuxResources) -> Result<()>;
//!     pub fn stats(&self) -> Result<serde_json::Value>;       // runc `events --stats` "data"
//!     pub fn oom_kill_count(&self) -> Result<u64>;
//!     pub fn mount_sources(&self) -> Vec<(String, PathBuf)>;
//! }
//! ```
//!
//! Layout: [`layout`] parses /proc/self/mountinfo and /proc/self/cgroup once per
//! process. Resources are turned into an ordered list of [`Write`]s by a pure
//! planner ([`v1::plan`], [`v2::plan`]) so tests can check exactly what would be
//! written; [`Cgroup`] then performs the writes.
//!
//! Path rules (as runc's cgroupfs driver, libcontainer/cgroups/fs and fs2):
//! - cgroupsPath absolute: `<mountpoint>/<path>` in every hierarchy;
//! - relative: under the caller's own cgroup of each v1 hierarchy (and of the
//!   unified hierarchy in hybrid mode); on a pure v2 host under the *parent* of
//!   the caller's cgroup (runc fs2: the caller's cgroup has processes, so
//!   controllers could not be enabled for a child of it);
//! - None: runc uses `Name = <id>` with an empty parent, i.e. the relative path
//!   `<id>`; we do the same;
//! - `--systemd-cgroup`: "slice:prefix:name" becomes
//!   `/<expanded slice>/<prefix>-<name>.scope` (the systemd layout); default
//!   "system.slice:runc:<id>". It needs systemd running (/run/systemd/system).
//!
//! Devices: v1 writes devices.deny "a", the config's rules in order, then
//! runc's default allowed devices (specconv.AllowedDevices); v2 compiles the
//! same list into a BPF_PROG_TYPE_CGROUP_DEVICE program ([`bpf`]).
//! Hybrid hosts: controllers bound to the unified hierarchy only (hugetlb
//! here) are written there in v2 syntax.

pub mod layout;
pub mod v1;
pub mod v2;
mod bpf;
mod fsutil;
#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use layout::Layout;

pub use fsutil::Write;

/// True on a pure cgroup2 host (no v1 hierarchy mounted). Cached.
pub fn is_v2_only() -> bool {
    layout::get().map(|l| l.is_v2_only()).unwrap_or(false)
}

/// One v1 hierarchy the container's cgroup lives in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Dir {
    /// Name as mounted below /sys/fs/cgroup ("memory", "cpu,cpuacct", "systemd").
    pub name: String,
    /// Controllers of the hierarchy ("cpu", "cpuacct", "name=systemd").
    pub controllers: Vec<String>,
    /// The container's cgroup directory on the host.
    pub path: PathBuf,
}

/// The container's cgroup in every hierarchy. Serialized into state.json.
/// See [`Cgroup::join_handles`].
pub struct JoinHandles {
    pub v2: Option<OwnedFd>,
    pub tasks: Vec<OwnedFd>,
}

/// Move the calling thread (a single-threaded new process) into every v1
/// hierarchy by writing "0" to the `tasks` files opened by
/// [`Cgroup::join_handles`]. Migrating oneself as a single thread does not
/// take the global threadgroup lock, so no RCU grace period is waited for.
pub fn join_self(tasks: &[OwnedFd]) -> Result<()> {
    use std::os::fd::AsRawFd;
    for fd in tasks {
        // SAFETY: write of one byte from a static buffer to an open fd.
        let n = unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) };
        if n != 1 {
            return Err(Error::os("join the container's cgroup (write tasks)", nix::errno::Errno::last_raw()));
        }
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub v1: Vec<V1Dir>,
    /// The cgroup2 leaf (pure v2, or the unified hierarchy of a hybrid host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v2: Option<PathBuf>,
    /// The name the unified hierarchy is mounted as below /sys/fs/cgroup
    /// ("" on a pure v2 host, "unified" in hybrid mode).
    #[serde(default)]
    pub v2_name: String,
    /// True when there is no v1 hierarchy (pure cgroup2).
    #[serde(default)]
    pub pure_v2: bool,
    /// Directories this process created (leaf and new parents), so that a
    /// failed create can remove exactly them. Not saved.
    #[serde(skip)]
    created: Vec<PathBuf>,
}

/// Split and clean a path: no "", ".", and ".." never climbs above the start
/// (runc's CleanPath: path safety).
pub(crate) fn clean_components(p: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Where the container's cgroup goes, before it is placed in a hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Absolute path inside every hierarchy ("/a/b").
    Absolute(String),
    /// Relative to the caller's cgroup ("a/b").
    Relative(String),
}

/// Expand a systemd slice name into its path: "a-b.slice" -> "/a.slice/a-b.slice".
pub(crate) fn expand_slice(slice: &str) -> Result<String> {
    const SUFFIX: &str = ".slice";
    if slice.is_empty() || slice == "-.slice" {
        return Ok(String::new());
    }
    let Some(base) = slice.strip_suffix(SUFFIX) else {
        crate::bail!("invalid systemd slice name {slice:?}: it must end in .slice");
    };
    if base.is_empty() || slice.contains('/') || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        crate::bail!("invalid systemd slice name {slice:?}");
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(SUFFIX);
    }
    Ok(path)
}

/// Turn the config's cgroupsPath (or its absence) into a placement.
pub(crate) fn placement(id: &str, cgroups_path: Option<&str>, systemd: bool) -> Result<Placement> {
    let given = cgroups_path.filter(|p| !p.is_empty());
    if systemd {
        if !Path::new("/run/systemd/system").exists() {
            crate::bail!(
                "systemd cgroup driver requested (--systemd-cgroup) but systemd is not running on this host (no /run/systemd/system); use the cgroupfs driver"
            );
        }
        let (slice, prefix, name) = match given {
            None => ("system.slice", "runc", id),
            Some(p) => {
                let parts: Vec<&str> = p.split(':').collect();
                if parts.len() != 3 {
                    crate::bail!(
                        "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {p:?} instead"
                    );
                }
                (parts[0], parts[1], parts[2])
            }
        };
        if name.is_empty() || name.contains('/') {
            crate::bail!("invalid systemd unit name {name:?} in cgroupsPath");
        }
        let slice = if slice.is_empty() { "system.slice" } else { slice };
        let unit = if name.ends_with(".slice") {
            name.to_string()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        crate::warn!("systemd cgroup driver: creating {unit} in {slice} through cgroupfs (no D-Bus transient unit)");
        return Ok(Placement::Absolute(format!("{}/{unit}", expand_slice(slice)?)));
    }
    match given {
        None => Ok(Placement::Relative(clean_components(id).join("/"))),
        Some(p) if p.starts_with('/') => Ok(Placement::Absolute(format!("/{}", clean_components(p).join("/")))),
        Some(p) => Ok(Placement::Relative(clean_components(p).join("/"))),
    }
}

/// The resolved target directories before anything is created.
pub(crate) fn resolve(layout: &Layout, place: &Placement) -> Result<Cgroup> {
    let inner = match place {
        Placement::Absolute(p) | Placement::Relative(p) => p,
    };
    if clean_components(inner).is_empty() {
        crate::bail!("invalid cgroupsPath: it names the root cgroup");
    }
    let mut cg = Cgroup { v1: Vec::new(), v2: None, v2_name: String::new(), pure_v2: layout.is_v2_only(), created: Vec::new() };
    for h in &layout.v1 {
        let path = match place {
            Placement::Absolute(p) => h.host_path(p),
            Placement::Relative(p) => h.host_path(&join_cg(&h.own, p)),
        };
        cg.v1.push(V1Dir { name: h.name.clone(), controllers: h.controllers.clone(), path });
    }
    if let Some(u) = &layout.v2 {
        let path = match place {
            Placement::Absolute(p) => u.host_path(p),
            Placement::Relative(p) => {
                let base = if cg.pure_v2 { parent_cg(&u.own) } else { u.own.clone() };
                u.host_path(&join_cg(&base, p))
            }
        };
        cg.v2 = Some(path);
        cg.v2_name = u.name.clone();
    }
    if cg.v1.is_empty() && cg.v2.is_none() {
        crate::bail!("no cgroup filesystem is mounted (checked /proc/self/mountinfo)");
    }
    Ok(cg)
}

fn join_cg(base: &str, rel: &str) -> String {
    let mut s = base.trim_end_matches('/').to_string();
    s.push('/');
    s.push_str(rel);
    s
}

fn parent_cg(p: &str) -> String {
    let comps = clean_components(p);
    format!("/{}", comps[..comps.len().saturating_sub(1)].join("/"))
}

impl Cgroup {
    /// Create the container's cgroup in every hierarchy and apply `resources`.
    pub fn create(
        id: &str,
        cgroups_path: Option<&str>,
        systemd: bool,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroup> {
        let layout = layout::get()?;
        Self::create_in(layout, id, cgroups_path, systemd, resources)
    }

    pub(crate) fn create_in(
        layout: &Layout,
        id: &str,
        cgroups_path: Option<&str>,
        systemd: bool,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroup> {
        let cg = Self::create_dirs_in(layout, id, cgroups_path, systemd, resources, None)?;
        match cg.apply_initial(resources) {
            Ok(()) => Ok(cg),
            Err(e) => {
                cg.remove_created();
                Err(e)
            }
        }
    }

    /// Undo a create that failed later: remove the directories it made
    /// (the leaf and any new parents), newest first.
    pub fn remove_created(&self) {
        for d in self.created.iter().rev() {
            let _ = fsutil::rmdir_retry(d);
        }
    }

    /// [`Cgroup::create`] without applying `resources` yet (they only shape
    /// the directories, e.g. hugetlb in hybrid parents): the runtime applies
    /// them with [`Cgroup::apply_initial`] while the container's init sets up
    /// its namespaces, before the init may exec. On error nothing is left.
    /// `only`: see [`Cgroup::restrict`].
    pub fn create_dirs_only(
        id: &str,
        cgroups_path: Option<&str>,
        systemd: bool,
        resources: Option<&LinuxResources>,
        only: Option<&[&str]>,
    ) -> Result<Cgroup> {
        Self::create_dirs_in(layout::get()?, id, cgroups_path, systemd, resources, only)
    }

    fn create_dirs_in(
        layout: &Layout,
        id: &str,
        cgroups_path: Option<&str>,
        systemd: bool,
        resources: Option<&LinuxResources>,
        only: Option<&[&str]>,
    ) -> Result<Cgroup> {
        let place = placement(id, cgroups_path, systemd)?;
        let mut cg = resolve(layout, &place)?;
        let mut layout_v1: Vec<&layout::Hierarchy> = layout.v1.iter().collect();
        if let Some(only) = only {
            cg.restrict(only, &mut layout_v1);
        }
        let mut created: Vec<PathBuf> = Vec::new();
        match cg.create_dirs(&layout_v1, layout, resources, &mut created) {
            Ok(()) => {
                cg.created = created;
                Ok(cg)
            }
            Err(e) => {
                for d in created.iter().rev() {
                    let _ = fsutil::rmdir_retry(d);
                }
                Err(e)
            }
        }
    }

    /// Apply a new container's resources (device rules included): what
    /// [`Cgroup::create`] does after making the directories.
    pub fn apply_initial(&self, resources: Option<&LinuxResources>) -> Result<()> {
        self.apply(resources, true)
    }

    /// Keep only the v1 hierarchies with one of the controllers in `only`
    /// (and the matching entries of `v1`, the layout's hierarchies), and on
    /// a hybrid host no unified leaf (it has no controllers there; a pure
    /// cgroup2 host keeps its leaf, the only cgroup there is). For a job in
    /// its own pid namespace, which ends with its init, only the limits,
    /// the device rules and the statistics asked for need a cgroup.
    fn restrict(&mut self, only: &[&str], v1: &mut Vec<&layout::Hierarchy>) {
        let wanted = |ctrls: &[String]| ctrls.iter().any(|c| only.contains(&c.as_str()));
        v1.retain(|h| wanted(&h.controllers));
        self.v1.retain(|d| wanted(&d.controllers));
        if !self.pure_v2 {
            self.v2 = None;
        }
    }

    fn create_dirs(
        &mut self,
        v1: &[&layout::Hierarchy],
        layout: &Layout,
        r: Option<&LinuxResources>,
        created: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let mut keep = Vec::with_capacity(self.v1.len());
        for (d, h) in self.v1.iter().zip(v1) {
            let res = if d.controllers.iter().any(|c| c == "cpuset") {
                v1::mkdir_cpuset(&h.mountpoint, &d.path, created)
            } else {
                fsutil::mkdir_all(&d.path, created)
            };
            match res {
                Ok(()) => keep.push(d.clone()),
                Err(e) if d.controllers.iter().all(|c| v1::OPTIONAL.contains(&c.as_str())) => {
                    crate::debug!("skipping optional cgroup hierarchy {}: {e}", d.name);
                }
                Err(e) => return Err(e),
            }
        }
        self.v1 = keep;
        if let (Some(leaf), Some(u)) = (&self.v2, &layout.v2) {
            let enable = if self.pure_v2 {
                v2::Enable::All
            } else if r.and_then(|r| r.hugepage_limits().as_ref()).is_some_and(|h| !h.is_empty())
                && !self.v1_has("hugetlb")
            {
                v2::Enable::Only(&["hugetlb"])
            } else {
                v2::Enable::None
            };
            v2::mkdir_leaf(&u.mountpoint, leaf, enable, created)?;
        }
        Ok(())
    }

    /// Are device rules written file by file (the v1 devices controller)?
    /// A process in the cgroup that creates device nodes while they are
    /// half-written may be refused; the cgroup2 program is attached at once.
    pub fn devices_written_in_steps(&self) -> bool {
        self.v1_has("devices")
    }

    fn v1_has(&self, ctrl: &str) -> bool {
        self.v1_dir(ctrl).is_some()
    }

    fn v1_dir(&self, ctrl: &str) -> Option<&Path> {
        self.v1.iter().find(|d| d.controllers.iter().any(|c| c == ctrl)).map(|d| d.path.as_path())
    }

    /// Apply resources. `create` adds what runc always sets on a new cgroup
    /// (the default device rules).
    fn apply(&self, r: Option<&LinuxResources>, create: bool) -> Result<()> {
        let empty = LinuxResources::default();
        let r = r.unwrap_or(&empty);
        if self.pure_v2 {
            let leaf = self.v2.as_deref().ok_or_else(|| Error::msg("cgroup v2 leaf missing"))?;
            let probe = |f: &str| fsutil::probe(leaf, f);
            let writes = v2::plan(r, &probe)?;
            fsutil::perform(&writes, |_| Some(leaf))?;
            if let Some(rules) = v2::device_rules(r, create) {
                bpf::apply_device_rules(leaf, &rules)?;
            }
            return Ok(());
        }
        let probe = |f: &str| {
            let ctrl = f.split('.').next().unwrap_or("");
            self.v1_dir(ctrl).and_then(|d| fsutil::probe(d, f))
        };
        let mut writes = v1::plan(r, create, &probe)?;
        // Controllers that live only in the unified hierarchy of a hybrid host
        // (hugetlb on these machines) are written there, in v2 syntax.
        let mut v2_writes = Vec::new();
        if let Some(leaf) = &self.v2 {
            let orphans: Vec<&'static str> =
                writes.iter().map(|w| w.ctrl).filter(|c| !self.v1_has(c)).collect();
            if !orphans.is_empty() {
                let avail = fsutil::read(&leaf.join("cgroup.controllers")).unwrap_or_default();
                let in_v2: Vec<&str> = orphans
                    .into_iter()
                    .filter(|c| avail.split_whitespace().any(|a| a == *c))
                    .collect();
                if !in_v2.is_empty() {
                    let sub = v2::plan_controllers(r, &in_v2)?;
                    writes.retain(|w| !in_v2.contains(&w.ctrl));
                    v2_writes = sub;
                }
            }
        }
        let mut warned: Vec<&str> = Vec::new();
        writes.retain(|w| {
            if self.v1_has(w.ctrl) {
                return true;
            }
            if !warned.contains(&w.ctrl) {
                warned.push(w.ctrl);
                if !(create && w.ctrl == "devices") {
                    crate::warn!("cgroup controller {} is not available: ignoring {}", w.ctrl, w.file);
                }
            }
            false
        });
        fsutil::perform(&writes, |c| self.v1_dir(c))?;
        if let Some(leaf) = &self.v2 {
            fsutil::perform(&v2_writes, |_| Some(leaf.as_path()))?;
        }
        Ok(())
    }

    /// Move a process into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        let v = pid.to_string();
        for d in &self.v1 {
            fsutil::write_file(&d.path, "cgroup.procs", &v)?;
        }
        if let Some(leaf) = &self.v2 {
            fsutil::write_file(leaf, "cgroup.procs", &v)?;
        }
        Ok(())
    }

    /// What a new process needs to enter this cgroup without the kernel's
    /// global threadgroup lock (whose writer side waits for an RCU grace
    /// period, 6-16 ms here, on every `cgroup.procs` write):
    /// - the cgroup2 leaf (pure v2, or the unified hierarchy of a hybrid
    ///   host), for clone3(CLONE_INTO_CGROUP);
    /// - each v1 hierarchy's `tasks` file, opened for writing: the new,
    ///   single-threaded process writes "0" to move itself ([`join_self`]).
    pub fn join_handles(&self) -> Result<JoinHandles> {
        let mut tasks = Vec::with_capacity(self.v1.len());
        for d in &self.v1 {
            let p = d.path.join("tasks");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .with_ctx(|| format!("open {}", p.display()))?;
            tasks.push(OwnedFd::from(f));
        }
        let v2 = match &self.v2 {
            Some(leaf) => Some(OwnedFd::from(std::fs::File::open(leaf).with_ctx(|| format!("open {}", leaf.display()))?)),
            None => None,
        };
        Ok(JoinHandles { v2, tasks })
    }

    /// An fd of the pure-v2 leaf, for clone3(CLONE_INTO_CGROUP).
    pub fn v2_dir_fd(&self) -> Option<OwnedFd> {
        if !self.pure_v2 {
            return None;
        }
        let leaf = self.v2.as_ref()?;
        std::fs::File::open(leaf).ok().map(OwnedFd::from)
    }

    /// The hierarchy used for process listing (all tasks are in every hierarchy).
    fn procs_dir(&self) -> Option<&Path> {
        if self.pure_v2 {
            return self.v2.as_deref();
        }
        ["pids", "freezer", "devices", "memory", "cpu", "cpuset"]
            .iter()
            .find_map(|c| self.v1_dir(c))
            .or_else(|| self.v1.first().map(|d| d.path.as_path()))
            .or(self.v2.as_deref())
    }

    /// Every process in the cgroup and its descendants (host pids), sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(dir) = self.procs_dir() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        fsutil::collect_pids(dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(d) => v1::freeze(d),
            Freezer::V2(d) => v2::freeze(d),
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(d) => fsutil::write_file(d, "freezer.state", "THAWED"),
            Freezer::V2(d) => fsutil::write_file(d, "cgroup.freeze", "0"),
        }
    }

    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer()? {
            Freezer::V1(d) => Ok(fsutil::read(&d.join("freezer.state"))?.trim() == "FROZEN"),
            Freezer::V2(d) => Ok(fsutil::read(&d.join("cgroup.freeze"))?.trim() == "1"),
        }
    }

    fn freezer(&self) -> Result<Freezer<'_>> {
        if let Some(d) = self.v1_dir("freezer") {
            return Ok(Freezer::V1(d));
        }
        match &self.v2 {
            Some(d) if self.pure_v2 => Ok(Freezer::V2(d)),
            _ => Err(Error::msg("cgroup freezer is not available")),
        }
    }

    /// Signal every process: freeze, signal all, thaw (runc's signalAllProcesses).
    /// SIGKILL on a pure v2 host uses cgroup.kill when the kernel has it.
    /// A cgroup that was frozen before stays frozen, unless the signal is SIGKILL.
    pub fn kill_all(&self, sig: i32) -> Result<()> {
        if sig == libc::SIGKILL && self.pure_v2 {
            if let Some(leaf) = &self.v2 {
                if leaf.join("cgroup.kill").exists() {
                    return match fsutil::write_file(leaf, "cgroup.kill", "1") {
                        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(()),
                        r => r,
                    };
                }
            }
        }
        // A cgroup without a freezer (a sandbox job's) is signalled as is.
        let has_freezer = self.freezer().is_ok();
        let was_frozen = has_freezer && self.is_frozen().unwrap_or(false);
        let froze = has_freezer && !was_frozen && self.freeze().map_err(|e| crate::warn!("kill all: {e}")).is_ok();
        let pids = self.pids();
        if let Ok(pids) = &pids {
            for &pid in pids {
                // SAFETY: kill(2) has no memory effects.
                if unsafe { libc::kill(pid, sig) } != 0 {
                    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                    if errno != libc::ESRCH {
                        crate::warn!("kill {pid} (signal {sig}): {}", crate::error::errno_text(&errno));
                    }
                }
            }
        }
        if froze || (was_frozen && sig == libc::SIGKILL) {
            if let Err(e) = self.thaw() {
                crate::warn!("kill all: {e}");
            }
        }
        pids.map(|_| ())
    }

    /// Remove the cgroup (and sub-cgroups the container made) from every
    /// hierarchy, retrying while exiting tasks linger. Ok if already gone.
    pub fn destroy(&self) -> Result<()> {
        let mut first: Option<Error> = None;
        let dirs = self.v1.iter().map(|d| d.path.as_path()).chain(self.v2.as_deref());
        for d in dirs {
            if let Err(e) = fsutil::remove_tree(d) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Change limits of a live cgroup (runc update).
    pub fn update(&self, r: &LinuxResources) -> Result<()> {
        self.apply(Some(r), false)
    }

    /// Statistics in the shape of runc's `events --stats` "data" object.
    pub fn stats(&self) -> Result<serde_json::Value> {
        if self.pure_v2 {
            let leaf = self.v2.as_deref().ok_or_else(|| Error::msg("cgroup v2 leaf missing"))?;
            return Ok(v2::stats(leaf));
        }
        let mut s = v1::stats(&|c| self.v1_dir(c));
        if !self.v1_has("hugetlb") {
            if let Some(leaf) = &self.v2 {
                s["hugetlb"] = v2::hugetlb_stats(leaf);
            }
        }
        Ok(s)
    }

    /// How many times the OOM killer killed a task of this cgroup.
    pub fn oom_kill_count(&self) -> Result<u64> {
        let (path, key) = match self.v1_dir("memory") {
            Some(d) => (d.join("memory.oom_control"), "oom_kill"),
            None => match &self.v2 {
                Some(d) if self.pure_v2 => (d.join("memory.events"), "oom_kill"),
                _ => return Err(Error::msg("cgroup memory controller is not available")),
            },
        };
        let text = fsutil::read(&path)?;
        Ok(fsutil::keyed(&text, key).unwrap_or(0))
    }

    /// Host directories to bind at /sys/fs/cgroup inside the container.
    pub fn mount_sources(&self) -> Vec<(String, PathBuf)> {
        let mut out: Vec<(String, PathBuf)> =
            self.v1.iter().map(|d| (d.name.clone(), d.path.clone())).collect();
        if let Some(leaf) = &self.v2 {
            out.push((self.v2_name.clone(), leaf.clone()));
        }
        out
    }
}

enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

/// Context helper for errors of the planners.
pub(crate) fn invalid(what: impl std::fmt::Display) -> Error {
    Error::msg(format!("invalid cgroup resources: {what}"))
}
