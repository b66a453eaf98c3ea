//! The sandbox's pty proxy (`stele run --image REF -t`).
//!
//! The container's init makes a pty, keeps the peer as the job's stdio and
//! controlling terminal, and sends the master over a console socket: here an
//! internal socketpair, not a path. A proxy thread receives it and copies
//! stdin → master and master → stdout until the job is gone; stele's own
//! terminal is put in raw mode meanwhile (so ^C, ^Z, ^D reach the job as
//! bytes) and restored on every way out but SIGKILL.
//!
//! Signals stay with the supervisor's wait loop (`container::wait_forwarding`,
//! sigtimedwait on a blocked set): the proxy thread runs with every signal
//! blocked, and the loop hands SIGWINCH to [`Proxy::resize`] instead of
//! forwarding it, which copies the window size to the master (the kernel then
//! signals the job's foreground process group itself).
//!
//! The thread is started before the container's init is cloned (raw clone3,
//! no atfork handlers): it handshakes once it sits in poll(2), and allocates
//! nothing until the master arrives, which only happens after the clone.

use crate::error::{Context, Error, Result};
use crate::sys;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

/// A connected pair of unix stream sockets: (stele's end, the container's end).
pub fn console_pair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: valid array of two fds.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } < 0 {
        return Err(Error::os("console socketpair", nix::errno::Errno::last_raw()));
    }
    // SAFETY: fresh fds we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: valid array of two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(Error::os("pipe", nix::errno::Errno::last_raw()));
    }
    // SAFETY: fresh fds we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A terminal in raw mode; the saved settings come back on drop.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and pointer.
        if unsafe { libc::tcgetattr(fd, &mut saved) } < 0 {
            return None;
        }
        let mut raw = saved;
        // SAFETY: valid pointer.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: valid fd and pointer.
        if unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, &raw) } < 0 {
            return None;
        }
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: valid fd and pointer.
        unsafe { libc::tcsetattr(self.fd, libc::TCSADRAIN, &self.saved) };
    }
}

/// Copy the window size of our terminal (stdin, else stdout) to `master`.
fn copy_winsize(master: RawFd) {
    // SAFETY: winsize is plain data.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    for fd in [0, 1] {
        // SAFETY: ioctl with a valid winsize pointer.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 {
            // SAFETY: as above.
            unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) };
            return;
        }
    }
}

fn poll(fds: &mut [libc::pollfd]) -> bool {
    loop {
        // SAFETY: valid pollfd array.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n >= 0 {
            return true;
        }
        if nix::errno::Errno::last_raw() != libc::EINTR {
            return false;
        }
    }
}

fn read(fd: RawFd, buf: &mut [u8]) -> isize {
    loop {
        // SAFETY: valid buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 || nix::errno::Errno::last_raw() != libc::EINTR {
            return n;
        }
    }
}

fn write_all(fd: RawFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: valid buffer.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 && nix::errno::Errno::last_raw() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

/// The running proxy. Dropping it stops the thread (after draining what the
/// job wrote) and restores the terminal.
pub struct Proxy {
    master: Arc<OnceLock<OwnedFd>>,
    wake: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    _raw: Option<RawMode>,
}

impl Proxy {
    /// Start proxying for the master that will arrive on `sock`. With
    /// `pass_stdin`, stdin is copied to the job (and its EOF becomes ^D);
    /// otherwise the job's terminal gets no input.
    pub fn start(sock: OwnedFd, pass_stdin: bool) -> Result<Proxy> {
        let (wake_r, wake_w) = pipe()?;
        let (ready_r, ready_w) = pipe()?;
        let master: Arc<OnceLock<OwnedFd>> = Arc::new(OnceLock::new());
        let m = master.clone();
        // The thread takes no signal: they are the wait loop's.
        let all = nix::sys::signal::SigSet::all();
        let old = all.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK).ctx("block signals")?;
        let spawned = std::thread::Builder::new()
            .name("stele-pty".into())
            .spawn(move || proxy_thread(sock, wake_r, ready_w, m, pass_stdin));
        let _ = old.thread_set_mask();
        let thread = spawned.ctx("start the pty proxy")?;
        // Wait until the thread sits in poll (see the module doc).
        let mut b = [0u8; 1];
        let _ = read(ready_r.as_raw_fd(), &mut b);
        // SAFETY: isatty on fd 0.
        let raw = if unsafe { libc::isatty(0) } == 1 { RawMode::enter(0) } else { None };
        Ok(Proxy { master, wake: Some(wake_w), thread: Some(thread), _raw: raw })
    }

    /// SIGWINCH: copy our window size to the job's terminal.
    pub fn resize(&self) {
        if let Some(m) = self.master.get() {
            copy_winsize(m.as_raw_fd());
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Closing the wake pipe tells the thread the job is gone.
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy_thread(sock: OwnedFd, wake: OwnedFd, ready: OwnedFd, master: Arc<OnceLock<OwnedFd>>, pass_stdin: bool) {
    let mut buf = [0u8; 16384];
    let _ = write_all(ready.as_raw_fd(), b"r");
    drop(ready);
    // 1. The master, or the end (the container was never made).
    let mut fds = [
        libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 },
    ];
    if !poll(&mut fds) || fds[1].revents != 0 {
        return;
    }
    let Some((_, m)) = sys::recv_fd(sock.as_raw_fd(), &mut [0u8; 64]) else { return };
    drop(sock);
    let mfd = m.as_raw_fd();
    let _ = master.set(m);
    copy_winsize(mfd);

    // 2. Copy until the job's side of the pty is closed by all (EIO), or
    //    the supervisor says the container is gone.
    let mut stdin_open = pass_stdin;
    let mut out_ok = true;
    loop {
        let mut fds = [
            libc::pollfd { fd: mfd, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: if stdin_open { 0 } else { -1 }, events: libc::POLLIN, revents: 0 },
        ];
        if !poll(&mut fds) {
            return;
        }
        if fds[0].revents != 0 {
            let n = read(mfd, &mut buf);
            if n <= 0 {
                return;
            }
            if out_ok {
                out_ok = write_all(1, &buf[..n as usize]);
            }
            continue;
        }
        if fds[1].revents != 0 {
            drain(mfd, &mut buf, out_ok);
            return;
        }
        if fds[2].revents != 0 {
            let n = read(0, &mut buf);
            if n <= 0 {
                // End of input: the job's terminal reads EOF (^D).
                stdin_open = false;
                let _ = write_all(mfd, &[4]);
            } else if !write_all(mfd, &buf[..n as usize]) {
                stdin_open = false;
            }
        }
    }
}

/// Copy what is left in the master to stdout without blocking.
fn drain(mfd: RawFd, buf: &mut [u8], out_ok: bool) {
    loop {
        let mut p = [libc::pollfd { fd: mfd, events: libc::POLLIN, revents: 0 }];
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(p.as_mut_ptr(), 1, 0) } <= 0 {
            return;
        }
        let n = read(mfd, buf);
        if n <= 0 || (out_ok && !write_all(1, &buf[..n as usize])) {
            return;
        }
    }
}
