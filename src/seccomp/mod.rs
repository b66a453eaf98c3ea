//! seccomp: OCI profile -> one classic-BPF filter, installed with raw seccomp(2) (issue 3).
//!
//! The filter is generated here rather than with seccompiler, whose filters
//! carry one action each, know only the native arch and cannot express
//! NOTIFY: one program covers every action, the architectures the profile
//! lists (i386 and x32 on x86_64, arm on aarch64), an x32 guard, the ENOSYS
//! guard and SECCOMP_RET_USER_NOTIF. Syscall names are resolved per ABI with
//! the `syscalls` crate.
//!
//! Semantics:
//! - a syscall matching several rules gets the most restrictive of their
//!   actions (the kernel's order: KILL_PROCESS, KILL_THREAD, TRAP, ERRNO,
//!   NOTIFY, TRACE, LOG, ALLOW), the same result stacking one filter per
//!   action would give; no match: `defaultAction`;
//! - the args of a rule are ANDed; when an index repeats, every arg of that
//!   rule becomes a rule of its own (ORed), as runc does;
//! - MASKED_EQ: `(arg & value) == valueTwo` (libseccomp; valueTwo absent = 0);
//!   32-bit ABIs (i386, arm) compare the low 32 bits of args only;
//! - rules whose action equals the default are dropped (as runc does) but
//!   their names still count for the ENOSYS guard;
//! - ENOSYS guard (default action KILL*/TRAP/ERRNO only): a number above the
//!   highest number the profile names (per ABI) returns ENOSYS, so that libc
//!   falls back from syscalls newer than the profile (clone3, ...);
//! - an ABI the profile does not list (i386, x32, arm compat) gets the
//!   "bad arch" action: the default action when it denies, KILL_PROCESS when the
//!   default would run the syscall (libseccomp also kills on a bad arch).
//!
//! NOTIFY: the listener fd belongs to the installing process until an agent
//! holds it; a notified syscall made before that waits for an answer nobody
//! can give. NOTIFY needs `listenerPath`; the default action cannot be NOTIFY, and `write` and
//! `sendmsg` cannot be notified (runc refuses `write`: its init reports the fd
//! number to the parent with it). Between `install` and the hand-over the
//! caller must make no other syscall the profile may notify: either call
//! [`send_listener`] at once (sendmsg), or do as runc does: write the fd
//! number to the parent, which takes the fd with pidfd_getfd(2) and calls
//! `send_listener` itself (nothing allocated in the child).

pub mod cache;
mod arch;
mod bpf;
mod profile;
mod sys;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::OnceLock;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Operator,
};

use crate::error::{Error, Result};
use arch::Abi;
use bpf::{Cond, Op, Rule, Section};

pub use profile::default_profile;

/// Default errno for ERRNO/TRACE without errnoRet (runc's choice).
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;
/// Largest errno the kernel passes through (MAX_ERRNO).
const MAX_ERRNO: u32 = 4095;
/// Syscalls the runtime needs between installing the filter and handing the
/// listener fd over: notifying them would deadlock.
const NOTIFY_REFUSED: [&str; 2] = ["write", "sendmsg"];

/// A compiled seccomp program, ready to install.
#[derive(Clone)]
pub struct Program {
    filter: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    listener: bool,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("instructions", &self.filter.len())
            .field("flags", &self.flags)
            .field("listener", &self.listener)
            .finish()
    }
}

impl Program {
    /// Whether the profile uses SCMP_ACT_NOTIFY (install returns a listener fd).
    pub fn needs_listener(&self) -> bool {
        self.listener
    }

    /// Number of BPF instructions (for diagnostics).
    pub fn len(&self) -> usize {
        self.filter.len()
    }

    /// Always false: a compiled program has at least the arch check.
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
    }

    /// Install the filter in the calling thread (all threads with TSYNC) with
    /// the profile's flags. Does not set no_new_privs: without it the caller
    /// must hold CAP_SYS_ADMIN. Returns the notify listener fd, if any.
    pub fn install(&self) -> Result<Option<OwnedFd>> {
        sys::seccomp_set_mode_filter(&self.filter, self.flags, self.listener).map_err(|errno| {
            let why = match errno {
                libc::EACCES => " (needs no_new_privs or CAP_SYS_ADMIN)",
                _ => "",
            };
            Error::os(format!("seccomp: install filter{why}"), errno)
        })
    }
}

/// Compile a profile (in the parent, before fork): every error names its field.
pub fn compile(profile: &LinuxSeccomp) -> Result<Program> {
    let native = arch::native().ok_or_else(|| {
        Error::msg("linux.seccomp: seccomp is not supported on this architecture")
    })?;
    let default_ret = action_ret(
        profile.default_action(),
        profile.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    if profile.default_action() == Action::ScmpActNotify {
        return Err(Error::msg(
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let abis = arch::sections(native, profile.architectures().as_deref().unwrap_or(&[]));

    // rules and the highest known number, per ABI (index as in `abis`)
    let mut rules: Vec<BTreeMap<u32, Vec<Rule>>> = vec![BTreeMap::new(); abis.len()];
    let mut max_nr: Vec<Option<u32>> = vec![None; abis.len()];
    let mut listener = false;

    for (i, sc) in profile
        .syscalls()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let ret = action_ret(sc.action(), sc.errno_ret(), &format!("{field}.errnoRet"))?;
        if sc.names().is_empty() {
            return Err(Error::msg(format!(
                "{field}.names: must name at least one syscall"
            )));
        }
        let alternatives = arg_rules(sc.args().as_deref().unwrap_or(&[]), &field)?;
        let notify = sc.action() == Action::ScmpActNotify;
        for (j, name) in sc.names().iter().enumerate() {
            if name.is_empty() {
                return Err(Error::msg(format!(
                    "{field}.names[{j}]: empty syscall name"
                )));
            }
            if notify && NOTIFY_REFUSED.contains(&name.as_str()) {
                return Err(Error::msg(format!(
                    "{field}.names[{j}]: SCMP_ACT_NOTIFY cannot be used for {name:?}: \
                     the runtime needs it before the listener is handed over"
                )));
            }
            let mut known = false;
            for (k, abi) in abis.iter().enumerate() {
                let Some(nr) = abi.resolve(name) else {
                    continue;
                };
                known = true;
                max_nr[k] = max_nr[k].max(Some(nr));
                if ret == default_ret {
                    continue;
                }
                listener |= notify;
                let list = rules[k].entry(nr).or_default();
                list.extend(alternatives.iter().map(|conds| Rule {
                    ret,
                    conds: conds.clone(),
                }));
            }
            if !known {
                crate::warn!(
                    "seccomp: unknown syscall {name:?} ({field}.names[{j}]) on {}, skipping it",
                    abis.iter().map(|a| a.name()).collect::<Vec<_>>().join("/")
                );
            }
        }
    }

    if listener && profile.listener_path().is_none() {
        return Err(Error::msg(
            "linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY",
        ));
    }

    let enosys_guard = !bpf::is_permissive(default_ret)
        && matches!(
            profile.default_action(),
            Action::ScmpActErrno
                | Action::ScmpActKill
                | Action::ScmpActKillThread
                | Action::ScmpActKillProcess
                | Action::ScmpActTrap
        );
    let bad_arch_ret = match profile.default_action() {
        Action::ScmpActErrno
        | Action::ScmpActKill
        | Action::ScmpActKillThread
        | Action::ScmpActKillProcess
        | Action::ScmpActTrap => default_ret,
        _ => bpf::RET_KILL_PROCESS,
    };

    let mut sections: Vec<Section> = Vec::new();
    let mut x32: Option<Box<Section>> = None;
    for (k, (abi, rules)) in abis.iter().zip(rules).enumerate() {
        let s = Section {
            audit_arch: abi.audit_arch(),
            x32: None,
            has_x32_split: *abi == Abi::X86_64,
            is_64bit: abi.is_64bit(),
            rules,
            enosys_above: if enosys_guard { max_nr[k] } else { None },
        };
        if *abi == Abi::X32 {
            x32 = Some(Box::new(s));
        } else {
            sections.push(s);
        }
    }
    if let Some(native) = sections.iter_mut().find(|s| s.has_x32_split) {
        native.x32 = x32;
    }

    let filter = bpf::generate(&bpf::FilterSpec {
        sections,
        default_ret,
        bad_arch_ret,
    })
    .map_err(|e| Error::msg(format!("linux.seccomp: {e}")))?;
    let flags = filter_flags(profile.flags().as_deref().unwrap_or(&[]), listener);
    Ok(Program {
        filter,
        flags,
        listener,
    })
}

/// The built-in default profile, compiled once.
pub fn compile_default() -> &'static Program {
    static DEFAULT: OnceLock<Program> = OnceLock::new();
    DEFAULT
        .get_or_init(|| compile(&default_profile()).expect("the built-in seccomp profile compiles"))
}

/// Hand the listener fd to a seccomp agent over a connected unix socket, as
/// runc does: one sendmsg carrying the JSON
/// `{"ociVersion","fds":["seccompFd"],"pid","metadata","state"}` and the fd
/// in SCM_RIGHTS.
pub fn send_listener(
    sock: RawFd,
    metadata: &str,
    state_json: &serde_json::Value,
    fd: RawFd,
) -> Result<()> {
    let version = state_json
        .get("ociVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("1.2.1");
    let pid = state_json.get("pid").and_then(|v| v.as_i64()).unwrap_or(0);
    let msg = serde_json::json!({
        "ociVersion": version,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state_json,
    });
    let bytes = serde_json::to_vec(&msg)
        .map_err(|e| Error::msg(format!("seccomp: encode listener message: {e}")))?;
    crate::sys::send_fd(sock, &bytes, fd)
        .map_err(|errno| Error::os("seccomp: send listener fd to the seccomp agent", errno))
}

/// The BPF return value for an action.
fn action_ret(action: Action, errno: Option<u32>, errno_field: &str) -> Result<u32> {
    let data = |default: u32| -> Result<u32> {
        let e = errno.unwrap_or(default);
        if e > MAX_ERRNO {
            return Err(Error::msg(format!(
                "{errno_field}: {e} is out of range (0-{MAX_ERRNO})"
            )));
        }
        Ok(e)
    };
    Ok(match action {
        Action::ScmpActKill | Action::ScmpActKillThread => bpf::RET_KILL_THREAD,
        Action::ScmpActKillProcess => bpf::RET_KILL_PROCESS,
        Action::ScmpActTrap => bpf::RET_TRAP,
        Action::ScmpActErrno => bpf::RET_ERRNO | data(DEFAULT_ERRNO)?,
        Action::ScmpActTrace => bpf::RET_TRACE | data(DEFAULT_ERRNO)?,
        Action::ScmpActNotify => bpf::RET_USER_NOTIF,
        Action::ScmpActLog => bpf::RET_LOG,
        Action::ScmpActAllow => bpf::RET_ALLOW,
    })
}

/// The condition lists a rule's args stand for (ORed): one list with every
/// arg ANDed, or, when an index repeats, one list per arg (runc's rule).
fn arg_rules(args: &[oci_spec::runtime::LinuxSeccompArg], field: &str) -> Result<Vec<Vec<Cond>>> {
    let mut conds = Vec::with_capacity(args.len());
    for (k, a) in args.iter().enumerate() {
        let index = u8::try_from(a.index())
            .ok()
            .filter(|i| *i <= 5)
            .ok_or_else(|| {
                Error::msg(format!(
                    "{field}.args[{k}].index: {} is out of range (0-5)",
                    a.index()
                ))
            })?;
        let (op, value) = match a.op() {
            Operator::ScmpCmpNe => (Op::Ne, a.value()),
            Operator::ScmpCmpLt => (Op::Lt, a.value()),
            Operator::ScmpCmpLe => (Op::Le, a.value()),
            Operator::ScmpCmpEq => (Op::Eq, a.value()),
            Operator::ScmpCmpGe => (Op::Ge, a.value()),
            Operator::ScmpCmpGt => (Op::Gt, a.value()),
            // OCI: `value` is the mask, `valueTwo` the datum.
            Operator::ScmpCmpMaskedEq => {
                (Op::MaskedEq { mask: a.value() }, a.value_two().unwrap_or(0))
            }
        };
        conds.push(Cond { index, op, value });
    }
    if conds.is_empty() {
        return Ok(vec![Vec::new()]);
    }
    let mut seen = [false; 6];
    let repeated = conds
        .iter()
        .any(|c| std::mem::replace(&mut seen[c.index as usize], true));
    Ok(if repeated {
        conds.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conds]
    })
}

fn filter_flags(flags: &[Flag], listener: bool) -> libc::c_ulong {
    let mut f: libc::c_ulong = 0;
    for flag in flags {
        f |= match flag {
            Flag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            Flag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv if listener => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
            Flag::SeccompFilterFlagWaitKillableRecv => {
                crate::debug!(
                    "seccomp: WAIT_KILLABLE_RECV ignored: the profile has no NOTIFY rule"
                );
                0
            }
        };
    }
    if listener {
        f |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // The kernel refuses TSYNC with NEW_LISTENER unless TSYNC_ESRCH is set.
        if f & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            f |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    f
}
