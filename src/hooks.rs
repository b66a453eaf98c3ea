//! OCI hooks: each runs with the container state JSON on stdin, its own
//! args and env, and an optional timeout; a failure fails the operation
//! (except poststart/poststop, which only warn, as the spec says).

use crate::error::{Context, Error, Result};
use oci_spec::runtime::{Hook, Hooks, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
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
    // A failed poststart or poststop hook is a warning (the callers log it),
    // and "the remaining hooks and lifecycle continue as if the hook had
    // succeeded" (runtime-spec, lifecycle): run them all, report every failure.
    let keep_going = matches!(kind, Kind::Poststart | Kind::Poststop);
    let mut failed = Vec::new();
    for (i, h) in list.iter().enumerate() {
        let r = run_one(h, &input).map_err(|e| e.context(format!("{} hook #{i} ({})", kind.name(), h.path().display())));
        match r {
            Err(e) if keep_going => failed.push(e.to_string()),
            r => r?,
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::msg(failed.join("; ")))
    }
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
    let stdin = child.stdin.take().map(OwnedFd::from);
    let mut out = Capture::new(child.stdout.take().map(OwnedFd::from));
    let mut err = Capture::new(child.stderr.take().map(OwnedFd::from));
    if let Err(e) = pump(&child, h.timeout(), stdin, input, &mut out, &mut err) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    let status = child.wait().ctx("wait")?;
    if status.success() {
        return Ok(());
    }
    out.drain();
    err.drain();
    let how = match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    Err(Error::msg(format!("{how}, stdout: {}, stderr: {}", out.text(), err.text())))
}

/// Feed `input` to the hook's stdin and collect its stdout and stderr until
/// it exits (Ok) or its timeout passes (Err; the caller kills it). The pipes
/// are non-blocking and served by one poll with the pidfd: a blocking write
/// or read would deadlock with a hook that never reads its stdin or fills a
/// pipe with output while we wait for it to exit.
fn pump(
    child: &Child,
    timeout: Option<i64>,
    mut stdin: Option<OwnedFd>,
    mut input: &[u8],
    out: &mut Capture,
    err: &mut Capture,
) -> Result<()> {
    let pidfd = crate::sys::pidfd_open(child.id() as i32)?;
    for fd in [stdin.as_ref(), out.fd.as_ref(), err.fd.as_ref()].into_iter().flatten() {
        set_nonblocking(fd)?;
    }
    // No deadline when it is too far to represent.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));
    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |f| f.as_raw_fd()); // poll skips -1
    let mut scratch = [0u8; 64 * 1024];
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::msg(format!("timed out after {}s", timeout.unwrap_or(0))));
                }
                left.as_millis().min(i32::MAX as u128) as i32
            }
        };
        if input.is_empty() {
            stdin = None; // EOF for the hook
        }
        let mut fds = [
            libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: raw(&stdin), events: libc::POLLOUT, revents: 0 },
            libc::pollfd { fd: raw(&out.fd), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: raw(&err.fd), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: a valid array of pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) } < 0 {
            match nix::errno::Errno::last() {
                nix::errno::Errno::EINTR => continue,
                e => return Err(Error::os("poll", e as i32)),
            }
        }
        if fds[1].revents != 0 {
            if let Some(fd) = stdin.as_ref() {
                match nix::unistd::write(fd, input) {
                    Ok(n) => input = &input[n..],
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                    // EPIPE (SIGPIPE is ignored): the hook closed its stdin
                    // without reading it all, which it may do.
                    Err(_) => input = &[],
                }
            }
        }
        // One read each per round, so that a hook that writes without pause
        // cannot keep us from the pidfd and the deadline.
        if fds[2].revents != 0 {
            out.read(&mut scratch);
        }
        if fds[3].revents != 0 {
            err.read(&mut scratch);
        }
        if fds[0].revents != 0 {
            return Ok(()); // exited: the caller reaps it and drains the pipes
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).ctx("hook pipe")?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).ctx("hook pipe")?;
    Ok(())
}

/// What a hook wrote to stdout or stderr, the first `CAPTURE_MAX` bytes of it.
struct Capture {
    fd: Option<OwnedFd>,
    buf: Vec<u8>,
    truncated: bool,
}

const CAPTURE_MAX: usize = 64 * 1024;

impl Capture {
    fn new(fd: Option<OwnedFd>) -> Capture {
        Capture { fd, buf: Vec::new(), truncated: false }
    }

    /// One non-blocking read; past the cap the bytes are read and dropped,
    /// so the hook never blocks on a full pipe. Returns false when nothing
    /// more can come now (EAGAIN) or ever (EOF, error: the pipe is closed).
    fn read(&mut self, scratch: &mut [u8]) -> bool {
        let Some(fd) = self.fd.as_ref() else { return false };
        match nix::unistd::read(fd, scratch) {
            Ok(0) => {}
            Ok(n) => {
                let keep = n.min(CAPTURE_MAX - self.buf.len());
                self.buf.extend_from_slice(&scratch[..keep]);
                self.truncated |= keep < n;
                return true;
            }
            Err(nix::errno::Errno::EINTR) => return true,
            Err(nix::errno::Errno::EAGAIN) => return false,
            Err(_) => {}
        }
        self.fd = None;
        false
    }

    /// Read what is in the pipe now, never waiting for EOF: a process the
    /// hook left in the background may hold the pipe open (and may still be
    /// writing: stop once past the cap).
    fn drain(&mut self) {
        let mut scratch = [0u8; 16 * 1024];
        while !self.truncated && self.read(&mut scratch) {}
    }

    fn text(&self) -> String {
        let s = String::from_utf8_lossy(&self.buf);
        if self.truncated {
            format!("{}... (truncated at {} KiB)", s.trim_start(), CAPTURE_MAX / 1024)
        } else {
            s.trim().to_string()
        }
    }
}
