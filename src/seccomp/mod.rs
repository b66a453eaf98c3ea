//! seccomp: OCI profile -> BPF with seccompiler plus stele's adapter (issue 3).
//!
//! CONTRACT used by the rest of stele:
//!
//! ```ignore
//! pub struct Program { .. }      // compiled filters, ready to install (Clone)
//! /// Compile in the parent before clone (errors reported at create, naming the field).
//! pub fn compile(profile: &LinuxSeccomp) -> Result<Program>;
//! impl Program {
//!     pub fn needs_listener(&self) -> bool;    // profile has SCMP_ACT_NOTIFY
//!     /// Install with raw seccomp(2) in the calling (single-threaded) process.
//!     /// Does not set no_new_privs. Returns the notify listener fd if any.
//!     pub fn install(&self) -> Result<Option<OwnedFd>>;
//! }
//! /// Send the listener fd with the container state to `listenerPath`, as runc does.
//! pub fn send_listener(sock: RawFd, metadata: &str, state_json: &[u8], fd: RawFd) -> Result<()>;
//! /// stele's built-in default profile (Docker-like allowlist).
//! pub fn default_profile() -> LinuxSeccomp;
//! ```
