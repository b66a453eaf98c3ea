//! One error type for the library. Every error carries the field, path or
//! operation it is about; the CLI prints it on one line.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A plain message (validation, policy, protocol).
    #[error("{0}")]
    Msg(String),
    /// An OS error with what was being done when it happened.
    #[error("{ctx}: {}", errno_text(.errno))]
    Os { ctx: String, errno: i32 },
    /// A failure that must end the process with a specific exit code.
    #[error("{1}")]
    Exit(i32, String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn msg(m: impl fmt::Display) -> Self {
        Error::Msg(m.to_string())
    }
    pub fn os(ctx: impl fmt::Display, errno: i32) -> Self {
        Error::Os { ctx: ctx.to_string(), errno }
    }
    /// The errno of an OS error, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Os { errno, .. } => Some(*errno),
            Error::Msg(_) | Error::Exit(..) => None,
        }
    }
    /// Prefix the error with more context ("create: <err>").
    pub fn context(self, ctx: impl fmt::Display) -> Self {
        match self {
            Error::Msg(m) => Error::Msg(format!("{ctx}: {m}")),
            Error::Os { ctx: c, errno } => Error::Os { ctx: format!("{ctx}: {c}"), errno },
            Error::Exit(code, m) => Error::Exit(code, format!("{ctx}: {m}")),
        }
    }
}

/// strerror in Go's (and so runc's) spelling: lower case, no "(os error N)".
/// Clients match this text: podman maps "no such file or directory" to 127
/// and "permission denied" to 126.
pub fn errno_text(errno: &i32) -> String {
    let s = nix::errno::Errno::from_raw(*errno).desc();
    let mut t = s.to_ascii_lowercase();
    if t.is_empty() {
        t = format!("errno {errno}");
    }
    t
}

/// Attach context to results from std, nix and raw syscalls.
pub trait Context<T> {
    fn ctx<C: fmt::Display>(self, ctx: C) -> Result<T>;
    fn with_ctx<C: fmt::Display, F: FnOnce() -> C>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx<C: fmt::Display>(self, ctx: C) -> Result<T> {
        self.map_err(|e| io_err(ctx, e))
    }
    fn with_ctx<C: fmt::Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| io_err(f(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::errno::Errno> {
    fn ctx<C: fmt::Display>(self, ctx: C) -> Result<T> {
        self.map_err(|e| Error::os(ctx, e as i32))
    }
    fn with_ctx<C: fmt::Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::os(f(), e as i32))
    }
}

impl<T> Context<T> for Result<T> {
    fn ctx<C: fmt::Display>(self, ctx: C) -> Result<T> {
        self.map_err(|e| e.context(ctx))
    }
    fn with_ctx<C: fmt::Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| e.context(f()))
    }
}

fn io_err(ctx: impl fmt::Display, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(n) => Error::os(ctx, n),
        None => Error::Msg(format!("{ctx}: {e}")),
    }
}

/// `bail!("...")`: return early with a formatted message error.
#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::error::Error::Msg(format!($($t)*))) };
}
