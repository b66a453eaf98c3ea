//! OCI images: verified import, layer store, bundles (see issue 5).

use crate::error::Result;
use std::collections::HashMap;
use std::os::fd::OwnedFd;

/// Stand-in until the image module lands: no image annotation, no overlay.
pub fn overlay_root_mount(_annotations: Option<&HashMap<String, String>>) -> Result<Option<OwnedFd>> {
    Ok(None)
}
