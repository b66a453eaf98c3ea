//! cgroup v2 device filter (BPF_PROG_TYPE_CGROUP_DEVICE).

use std::path::Path;

use super::v2::DevRule;
use crate::error::Result;

/// Install the device rules on a v2 cgroup.
pub fn apply_device_rules(_leaf: &Path, _rules: &[DevRule]) -> Result<()> {
    crate::warn!("device cgroup rules are not yet enforced on cgroup v2 (eBPF device filter not implemented)");
    Ok(())
}
