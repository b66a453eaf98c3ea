//! config.json's wire form: how stele deserializes a `Spec` and a `Process`.
//!
//! oci-spec's own `Deserialize` for `Process` checks `execCPUAffinity` with a
//! regex. Deriving it would link that validator into the runtime, and with it
//! the regex crate's Unicode tables: ~115 KB of `.data.rel.ro` that a static
//! PIE relocates (page by page, copy-on-write) at every start, for one
//! optional string (docs/performance.md). These mirrors have the same JSON
//! names and defaults, so a bad field is named exactly as before; the values
//! are then moved into oci-spec's types through their builders and setters,
//! and `execCPUAffinity` is checked here by hand.

use oci_spec::runtime::{
    Box as ConsoleBox, ExecCPUAffinity, Hooks, Linux, LinuxCapabilities, LinuxIOPriority, Mount, PosixRlimit, Process,
    ProcessBuilder, Root, Scheduler, Spec, SpecBuilder, User,
};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// `De<Spec>` and `De<Process>` deserialize through the mirrors below:
/// use them wherever a config.json or a `process` object is read
/// (`serde_json::from_slice::<De<Spec>>`, `serde_path_to_error`).
pub struct De<T>(pub T);

impl<'de> Deserialize<'de> for De<Spec> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WireSpec::deserialize(d).map(|w| De(w.into_spec()))
    }
}

impl<'de> Deserialize<'de> for De<Process> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WireProcess::deserialize(d).map(|w| De(w.into_process()))
    }
}

/// The fields of the runtime spec a Linux runtime reads. `solaris`,
/// `windows`, `vm` and `zos` belong to other platforms and are ignored, as
/// any unknown field is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSpec {
    #[serde(default)]
    oci_version: String,
    #[serde(default)]
    root: Option<Root>,
    #[serde(default)]
    mounts: Option<Vec<Mount>>,
    #[serde(default)]
    process: Option<WireProcess>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    domainname: Option<String>,
    #[serde(default)]
    hooks: Option<Hooks>,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    linux: Option<Linux>,
}

impl WireSpec {
    fn into_spec(self) -> Spec {
        // The builder with nothing set: every field None, no defaults built
        // only to be overwritten (Spec::default() makes mounts, masks ...).
        let mut s = SpecBuilder::default().build().expect("an empty SpecBuilder builds");
        s.set_version(self.oci_version);
        s.set_root(self.root);
        s.set_mounts(self.mounts);
        s.set_process(self.process.map(WireProcess::into_process));
        s.set_hostname(self.hostname);
        s.set_domainname(self.domainname);
        s.set_hooks(self.hooks);
        s.set_annotations(self.annotations);
        s.set_linux(self.linux);
        s
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireProcess {
    #[serde(default)]
    terminal: Option<bool>,
    #[serde(default)]
    console_size: Option<ConsoleBox>,
    user: User,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    command_line: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    cwd: PathBuf,
    #[serde(default)]
    capabilities: Option<LinuxCapabilities>,
    #[serde(default)]
    rlimits: Option<Vec<PosixRlimit>>,
    #[serde(default)]
    no_new_privileges: Option<bool>,
    #[serde(default)]
    apparmor_profile: Option<String>,
    oom_score_adj: Option<i32>,
    #[serde(default)]
    selinux_label: Option<String>,
    #[serde(default)]
    io_priority: Option<LinuxIOPriority>,
    #[serde(default)]
    scheduler: Option<Scheduler>,
    #[serde(rename = "execCPUAffinity", default)]
    exec_cpu_affinity: Option<WireCpuAffinity>,
}

impl WireProcess {
    fn into_process(self) -> Process {
        let mut p = ProcessBuilder::default().build().expect("an empty ProcessBuilder builds");
        p.set_terminal(self.terminal);
        p.set_console_size(self.console_size);
        p.set_user(self.user);
        p.set_args(self.args);
        p.set_command_line(self.command_line);
        p.set_env(self.env);
        p.set_cwd(self.cwd);
        p.set_capabilities(self.capabilities);
        p.set_rlimits(self.rlimits);
        p.set_no_new_privileges(self.no_new_privileges);
        p.set_apparmor_profile(self.apparmor_profile);
        p.set_oom_score_adj(self.oom_score_adj);
        p.set_selinux_label(self.selinux_label);
        p.set_io_priority(self.io_priority);
        p.set_scheduler(self.scheduler);
        p.set_exec_cpu_affinity(self.exec_cpu_affinity.map(|a| {
            let mut e = ExecCPUAffinity::default();
            e.set_initial(a.initial);
            e.set_cpu_affinity_final(a.fin);
            e
        }));
        p
    }
}

#[derive(Deserialize)]
struct WireCpuAffinity {
    #[serde(default, deserialize_with = "cpu_list")]
    initial: Option<String>,
    #[serde(default, rename = "final", deserialize_with = "cpu_list")]
    fin: Option<String>,
}

/// A CPU list as the runtime spec defines it: `N` or `N-M`, comma-separated
/// (`0-3,7`).
fn cpu_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<String>::deserialize(d)?;
    if let Some(s) = &v {
        if !is_cpu_list(s) {
            return Err(D::Error::custom(format!("invalid CPU list {s:?}: want N or N-M, comma-separated")));
        }
    }
    Ok(v)
}

fn is_cpu_list(s: &str) -> bool {
    s.split(',').all(|item| super::list_range(item).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        for ok in ["0", "0-3", "0-3,7", "1,2,3", "10-12,14"] {
            assert!(is_cpu_list(ok), "{ok}");
        }
        for bad in ["", ",", "0,", "-1", "1-", "a", "0-3-5", "1 ,2", "0x1"] {
            assert!(!is_cpu_list(bad), "{bad}");
        }
    }

    /// Every field a config can carry comes through the mirror unchanged:
    /// the result equals what oci-spec's own Deserialize makes of it.
    #[test]
    fn same_as_oci_spec() {
        let v = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs", "readonly": true},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "process": {
                "terminal": true, "consoleSize": {"height": 24, "width": 80},
                "user": {"uid": 1, "gid": 2, "additionalGids": [3], "umask": 18},
                "args": ["sh"], "commandLine": "x", "env": ["A=b"], "cwd": "/w",
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 5}],
                "noNewPrivileges": true, "apparmorProfile": "a", "oomScoreAdj": 7,
                "selinuxLabel": "l", "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0},
                "scheduler": {"policy": "SCHED_OTHER", "nice": 1},
                "execCPUAffinity": {"initial": "0-1", "final": "1"}
            },
            "hostname": "h", "domainname": "d",
            "hooks": {"prestart": [{"path": "/bin/true"}]},
            "annotations": {"k": "v"},
            "linux": {"namespaces": [{"type": "pid"}], "maskedPaths": ["/proc/kcore"]}
        });
        let ours = De::<Spec>::deserialize(&v).unwrap().0;
        let theirs: Spec = serde_json::from_value(v).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn bad_cpu_list_names_the_field() {
        let v = serde_json::json!({"user": {"uid": 0, "gid": 0}, "cwd": "/", "execCPUAffinity": {"final": "0-"}});
        let e = serde_path_to_error::deserialize::<_, De<Process>>(&v).map(|_| ()).unwrap_err();
        assert_eq!(e.path().to_string(), "execCPUAffinity.final");
    }
}
