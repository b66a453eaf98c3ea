//! cgroups v1 and v2 (issue 4).
//!
//! CONTRACT used by the rest of stele (container/process code calls exactly this):
//!
//! ```ignore
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! pub struct Cgroup { .. }            // saved inside the container's state.json
//! impl Cgroup {
//!     /// Where the container's cgroup lives: cgroupsPath absolute or relative
//!     /// (relative = under the caller's own cgroup, as runc), `--systemd-cgroup`
//!     /// syntax slice:prefix:name, default when cgroupsPath is None (as runc).
//!     /// Creates the directories in every controller (v1) or the leaf (v2) and
//!     /// applies `resources`. On error nothing is left behind.
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
//!     /// host directories to bind into the container at /sys/fs/cgroup:
//!     /// (name relative to /sys/fs/cgroup, host dir). v2: [("", leaf)].
//!     pub fn mount_sources(&self) -> Vec<(String, PathBuf)>;
//! }
//! ```

// Temporary stand-in until the cgroups module lands (keeps main building).
use crate::error::Result;
use std::path::PathBuf;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {}

impl Cgroup {
    pub fn create(_id: &str, _p: Option<&str>, _systemd: bool, _r: Option<&oci_spec::runtime::LinuxResources>) -> Result<Cgroup> {
        Ok(Cgroup {})
    }
    pub fn add_pid(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    pub fn v2_dir_fd(&self) -> Option<std::os::fd::OwnedFd> {
        None
    }
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(vec![])
    }
    pub fn freeze(&self) -> Result<()> {
        Ok(())
    }
    pub fn thaw(&self) -> Result<()> {
        Ok(())
    }
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(false)
    }
    pub fn kill_all(&self, _sig: i32) -> Result<()> {
        Ok(())
    }
    pub fn destroy(&self) -> Result<()> {
        Ok(())
    }
    pub fn mount_sources(&self) -> Vec<(String, PathBuf)> {
        vec![]
    }
}
