//! stele: a low-level OCI container runtime for immutable infrastructure.
//!
//! The library never prints and never exits; the `stele` binary turns argv
//! into calls here and prints results.

pub mod arena;
pub mod error;
pub mod log;
pub mod sys;
pub mod spec;
pub mod state;
pub mod hooks;
pub mod policy;
pub mod security;
pub mod seccomp;
pub mod cgroups;
pub mod rootfs;
pub mod process;
pub mod procattr;
pub mod userns;
pub mod container;
pub mod image;
pub mod sandbox;
pub mod units;
pub mod pty;

pub use error::{Context, Error, Result};
