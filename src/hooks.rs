//! OCI hooks: each runs with the container state JSON on stdin, its own
//! args and env, and an optional timeout; a failure fails the operation
//! (except poststart/poststop, which only warn, as the spec says).

use crate::error::{Context, Error, Result};
use oci_spec::runtime::{Hook, Hooks, Spec};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }
    fn list(self, h: &Hooks) -> &[Hook] {
        let l = match self {
            Kind::Prestart => h.prestart(),
            Kind::CreateRuntime => h.create_runtime(),
            Kind::CreateContainer => h.create_container(),
            Kind::StartContainer => h.start_container(),
            Kind::Poststart => h.poststart(),
            Kind::Poststop => h.poststop(),
        };
        l.as_deref().unwrap_or(&[])
    }
}

pub fn has(spec: &Spec, kind: Kind) -> bool {
    spec.hooks().as_ref().is_some_and(|h| !kind.list(h).is_empty())
}

/// Run every hook of `kind` in order with `state` on stdin.
pub fn run(spec: &Spec, kind: Kind, state: &serde_json::Value) -> Result<()> {
    let Some(hooks) = spec.hooks() else { return Ok(()) };
    let list = kind.list(hooks);
    if list.is_empty() {
        return Ok(());
    }
    let input = serde_json::to_vec(state).unwrap_or_default();
    for (i, h) in list.iter().enumerate() {
        run_one(h, &input).map_err(|e| e.context(format!("{} hook #{i} ({})", kind.name(), h.path().display())))?;
    }
    Ok(())
}

fn run_one(h: &Hook, input: &[u8]) -> Result<()> {
    let mut cmd = Command::new(h.path());
    let args = h.args().as_deref().unwrap_or(&[]);
    if let Some((a0, rest)) = args.split_first() {
        cmd.arg0(a0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().as_deref().unwrap_or(&[]) {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().ctx("start")?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input); // a hook may exit without reading
    }
    let pidfd = crate::sys::pidfd_open(child.id() as i32)?;
    let deadline = h.timeout().map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::msg(format!("timed out after {}s", h.timeout().unwrap_or(0))));
                }
                left.as_millis().min(i32::MAX as u128) as i32
            }
        };
        let mut pfd = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n > 0 {
            break;
        }
    }
    let status = child.wait().ctx("wait")?;
    if status.success() {
        return Ok(());
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let how = match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    Err(Error::msg(format!("{how}, stdout: {}, stderr: {}", out.trim(), err.trim())))
}
