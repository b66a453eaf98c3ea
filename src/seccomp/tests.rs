//! Tests. The kernel tests fork: the child sets no_new_privs, installs the
//! filter, makes raw syscalls and reports through its exit code (each failed
//! check has its own code); the parent checks the wait status. Run as root
//! for the NOTIFY and default-profile tests (`cargo test --lib seccomp`).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

use super::bpf::{self, interp};
use super::*;

const SIGSYS: i32 = libc::SIGSYS;
#[cfg(target_arch = "x86_64")]
const AUDIT_NATIVE: u32 = 0xc000_003e;
#[cfg(target_arch = "x86_64")]
const AUDIT_I386: u32 = 0x4000_0003;

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("test profile parses")
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Exit(i32),
    Signal(i32),
}

fn wait(pid: libc::pid_t) -> Outcome {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        assert_eq!(
            nix::errno::Errno::last(),
            nix::errno::Errno::EINTR,
            "waitpid"
        );
    }
    if libc::WIFEXITED(status) {
        Outcome::Exit(libc::WEXITSTATUS(status))
    } else {
        Outcome::Signal(libc::WTERMSIG(status))
    }
}

/// Fork; the child sets no_new_privs, installs `prog`, then exits with `f(listener)`.
/// Exit codes 200-202 are the harness's own failures.
fn in_child(prog: &Program, f: impl FnOnce(Option<OwnedFd>) -> i32) -> Outcome {
    // SAFETY: the child only runs `f` (raw syscalls, no locks shared with other
    // test threads) and leaves with _exit, never returning into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let run = std::panic::AssertUnwindSafe(|| {
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return 200;
            }
            match prog.install() {
                Ok(listener) => f(listener),
                Err(_) => 201,
            }
        });
        let code = std::panic::catch_unwind(run).unwrap_or(202);
        // SAFETY: _exit ends the forked child without running the harness's atexit.
        unsafe { libc::_exit(code) }
    }
    wait(pid)
}

/// A raw syscall: Ok(return value) or Err(errno).
fn raw(nr: libc::c_long, args: [u64; 6]) -> std::result::Result<i64, i32> {
    // SAFETY: the tests only call syscalls that take integers, or null
    // pointers the kernel validates; no memory is passed.
    let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    if r == -1 {
        Err(nix::errno::Errno::last_raw())
    } else {
        Ok(r)
    }
}

fn getppid_with(args: [u64; 6]) -> std::result::Result<i64, i32> {
    raw(libc::SYS_getppid, args)
}

const EXIT_NAMES: [&str; 2] = ["exit", "exit_group"];

/// A profile: default ALLOW with one rule on getppid.
fn one_rule(rule: serde_json::Value) -> Program {
    compile(&profile(
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule] }),
    ))
    .unwrap()
}

// ---------------------------------------------------------------- actions

#[test]
fn errno_rule_returns_configured_errno() {
    let p = one_rule(
        json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV}),
    );
    let out = in_child(&p, |_| match getppid_with([0; 6]) {
        Err(libc::EXDEV) => 0,
        _ => 1,
    });
    assert_eq!(out, Outcome::Exit(0));
    // ERRNO without errnoRet: EPERM
    let p = one_rule(json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}));
    assert_eq!(
        in_child(&p, |_| (getppid_with([0; 6]) != Err(libc::EPERM)) as i32),
        Outcome::Exit(0)
    );
}

#[test]
fn default_action_applies_to_unlisted_syscalls() {
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EACCES,
        "syscalls": [{"names": ["getppid", "exit", "exit_group"], "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    let ppid = std::process::id() as i64;
    let out = in_child(&p, |_| {
        if getppid_with([0; 6]) != Ok(ppid) {
            return 1;
        }
        // getuid (102 on x86_64) is older than exit_group: the default errno, not ENOSYS
        if raw(libc::SYS_getuid, [0; 6]) != Err(libc::EACCES) {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exit(0));
}

#[test]
fn kill_process_kills_with_sigsys() {
    let p = one_rule(json!({"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}));
    assert_eq!(
        in_child(&p, |_| getppid_with([0; 6]).is_ok() as i32 + 10),
        Outcome::Signal(SIGSYS)
    );
}

#[test]
fn kill_and_kill_thread_kill_the_single_thread() {
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"] {
        let p = one_rule(json!({"names": ["getppid"], "action": action}));
        assert_eq!(
            in_child(&p, |_| 10),
            Outcome::Exit(10),
            "{action}: other syscalls pass"
        );
        assert_eq!(
            in_child(&p, |_| getppid_with([0; 6]).is_ok() as i32 + 10),
            Outcome::Signal(SIGSYS),
            "{action}"
        );
    }
}

static TRAPPED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_sigsys(sig: libc::c_int) {
    TRAPPED.store(sig, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn trap_delivers_sigsys() {
    let p = one_rule(json!({"names": ["getppid"], "action": "SCMP_ACT_TRAP"}));
    // no handler: SIGSYS terminates
    assert_eq!(
        in_child(&p, |_| getppid_with([0; 6]).is_ok() as i32 + 10),
        Outcome::Signal(SIGSYS)
    );
    // with a handler: it runs and the syscall is skipped
    let out = in_child(&p, |_| {
        // SAFETY: installing a handler that only stores to an atomic.
        let old = unsafe { libc::signal(SIGSYS, on_sigsys as *const () as libc::sighandler_t) };
        if old == libc::SIG_ERR {
            return 1;
        }
        let _ = getppid_with([0; 6]);
        (TRAPPED.load(std::sync::atomic::Ordering::SeqCst) != SIGSYS) as i32 * 2
    });
    assert_eq!(out, Outcome::Exit(0));
}

#[test]
fn log_and_allow_pass() {
    let ppid = std::process::id() as i64;
    for action in ["SCMP_ACT_LOG", "SCMP_ACT_ALLOW"] {
        let p = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_KILL_PROCESS",
            "syscalls": [{"names": ["getppid", "exit", "exit_group"], "action": action}]
        })))
        .unwrap();
        assert_eq!(
            in_child(&p, |_| (getppid_with([0; 6]) != Ok(ppid)) as i32),
            Outcome::Exit(0),
            "{action}"
        );
    }
}

#[test]
fn several_actions_in_one_profile() {
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOTTY},
            {"names": ["getuid"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["getgid"], "action": "SCMP_ACT_LOG"},
            {"names": ["getegid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
        ]
    })))
    .unwrap();
    let out = in_child(&p, |_| {
        if getppid_with([0; 6]) != Err(libc::ENOTTY) {
            return 1;
        }
        if raw(libc::SYS_getgid, [0; 6]).is_err() {
            return 2;
        }
        // TRACE without a tracer: the kernel fails the syscall with ENOSYS
        if raw(libc::SYS_getegid, [0; 6]) != Err(libc::ENOSYS) {
            return 3;
        }
        let _ = raw(libc::SYS_getuid, [0; 6]);
        4
    });
    assert_eq!(out, Outcome::Signal(SIGSYS));
}

#[test]
fn most_restrictive_matching_rule_wins() {
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        ]
    })))
    .unwrap();
    let nr = libc::SYS_getppid as u32;
    assert_eq!(
        interp::run(&p.filter, native_audit(), nr, [1, 0, 0, 0, 0, 0]),
        bpf::RET_ERRNO | 5
    );
    assert_eq!(
        interp::run(&p.filter, native_audit(), nr, [2, 0, 0, 0, 0, 0]),
        bpf::RET_LOG
    );
}

#[test]
fn seccomp_flags_are_honoured() {
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap();
    assert_eq!(
        p.flags,
        libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
    );
    assert_eq!(
        in_child(&p, |_| (getppid_with([0; 6]) != Err(libc::EPERM)) as i32),
        Outcome::Exit(0)
    );
    // with NOTIFY: NEW_LISTENER, TSYNC_ESRCH (required with TSYNC) and WAIT_KILLABLE_RECV
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    assert_eq!(
        p.flags,
        libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
            | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
            | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    );
    assert_eq!(in_child(&p, |l| l.is_none() as i32), Outcome::Exit(0));
}

// ---------------------------------------------------------------- arguments

fn native_audit() -> u32 {
    arch::native().unwrap().audit_arch()
}

#[test]
fn masked_eq_has_libseccomp_semantics() {
    // OCI: value = mask, valueTwo = datum; matches when (arg & mask) == datum
    let p = one_rule(
        json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
        "args": [{"index": 1, "value": 0xf0, "valueTwo": 0x30, "op": "SCMP_CMP_MASKED_EQ"}]}),
    );
    let out = in_child(&p, |_| {
        if getppid_with([0, 0x35, 0, 0, 0, 0]) != Err(libc::EXDEV) {
            return 1;
        }
        if getppid_with([0, 0x1_0000_0130, 0, 0, 0, 0]) != Err(libc::EXDEV) {
            return 2; // bits outside the mask do not matter
        }
        if getppid_with([0, 0x45, 0, 0, 0, 0]).is_err() {
            return 3;
        }
        if getppid_with([0x30, 0, 0, 0, 0, 0]).is_err() {
            return 4; // another index
        }
        0
    });
    assert_eq!(out, Outcome::Exit(0));
    // a mask in the high word
    let p = one_rule(json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 0, "value": 0xffff_0000_0000_0000u64, "valueTwo": 0x1234_0000_0000_0000u64, "op": "SCMP_CMP_MASKED_EQ"}]}));
    let nr = libc::SYS_getppid as u32;
    assert_eq!(
        interp::run(
            &p.filter,
            native_audit(),
            nr,
            [0x1234_0000_dead_beef, 0, 0, 0, 0, 0]
        ),
        bpf::RET_ERRNO | 1
    );
    assert_eq!(
        interp::run(
            &p.filter,
            native_audit(),
            nr,
            [0x1235_0000_0000_0000, 0, 0, 0, 0, 0]
        ),
        bpf::RET_ALLOW
    );
}

#[test]
fn several_args_are_anded() {
    let p = one_rule(
        json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                 {"index": 2, "value": 2, "op": "SCMP_CMP_EQ"}]}),
    );
    let out = in_child(&p, |_| {
        if getppid_with([1, 0, 2, 0, 0, 0]) != Err(libc::EXDEV) {
            return 1;
        }
        if getppid_with([1, 0, 3, 0, 0, 0]).is_err() || getppid_with([0, 0, 2, 0, 0, 0]).is_err() {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exit(0));
}

#[test]
fn repeated_index_is_ored() {
    let p = one_rule(
        json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                 {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}),
    );
    let out = in_child(&p, |_| {
        if getppid_with([1, 0, 0, 0, 0, 0]) != Err(libc::EXDEV)
            || getppid_with([2, 0, 0, 0, 0, 0]) != Err(libc::EXDEV)
        {
            return 1;
        }
        if getppid_with([3, 0, 0, 0, 0, 0]).is_err() {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exit(0));
}

/// Every operator against Rust's own comparison, at 64-bit boundaries, for
/// the native (64-bit) section and the i386 (32-bit, low word) section.
#[test]
fn all_operators_match_reference_semantics() {
    let samples: [u64; 12] = [
        0,
        1,
        2,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x2_0000_0000,
        0x8000_0000_0000_0000,
        u64::MAX - 1,
        u64::MAX,
    ];
    let ops = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let reference = |op: &str, arg: u64, v: u64, v2: u64| match op {
        "SCMP_CMP_NE" => arg != v,
        "SCMP_CMP_LT" => arg < v,
        "SCMP_CMP_LE" => arg <= v,
        "SCMP_CMP_EQ" => arg == v,
        "SCMP_CMP_GE" => arg >= v,
        "SCMP_CMP_GT" => arg > v,
        _ => arg & v == v2,
    };
    let nr = libc::SYS_getppid as u32;
    for op in ops {
        for &v in &samples {
            let v2 = v & 0xffff_0000_ffff_0000;
            let p = compile(&profile(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 3, "value": v, "valueTwo": v2, "op": op}]}]
            })))
            .unwrap();
            for &arg in &samples {
                let want = if reference(op, arg, v, v2) {
                    bpf::RET_ERRNO | 1
                } else {
                    bpf::RET_ALLOW
                };
                let got = interp::run(&p.filter, native_audit(), nr, [0, 0, 0, arg, 0, 0]);
                assert_eq!(got, want, "{op} arg={arg:#x} value={v:#x}");
                #[cfg(target_arch = "x86_64")]
                {
                    let (a, b, b2) = (arg as u32 as u64, v as u32 as u64, v2 as u32 as u64);
                    let want = if reference(op, a, b, b2) {
                        bpf::RET_ERRNO | 1
                    } else {
                        bpf::RET_ALLOW
                    };
                    let got = interp::run(&p.filter, AUDIT_I386, 64, [0, 0, 0, arg, 0, 0]);
                    assert_eq!(got, want, "i386 {op} arg={arg:#x} value={v:#x}");
                }
            }
        }
    }
}

#[test]
fn arg_index_6_is_refused_naming_the_field() {
    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    })))
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "linux.seccomp.syscalls[1].args[0].index: 6 is out of range (0-5)"
    );
}

#[test]
fn other_profile_errors_name_their_field() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}),
            "linux.seccomp.defaultErrnoRet: 70000",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
            "linux.seccomp.defaultAction: ",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
                "syscalls": [{"names": ["getpid", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for \"write\"",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath: required",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
            "linux.seccomp.syscalls[0].names: ",
        ),
    ];
    for (p, want) in cases {
        let err = compile(&profile(p)).unwrap_err().to_string();
        assert!(err.starts_with(want), "{err:?} should start with {want:?}");
    }
}

// ---------------------------------------------------------------- names and arches

#[test]
fn unknown_syscall_name_is_skipped() {
    let p = one_rule(
        json!({"names": ["no_such_syscall_in_any_table", "getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV}),
    );
    assert_eq!(
        in_child(&p, |_| (getppid_with([0; 6]) != Err(libc::EXDEV)) as i32),
        Outcome::Exit(0)
    );
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscalls_are_blocked_unless_listed() {
    let p = one_rule(json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}));
    let x32_getpid = (arch::X32_SYSCALL_BIT | libc::SYS_getpid as u32) as libc::c_long;
    // default ALLOW: the x32 call is killed, not run
    assert_eq!(
        in_child(&p, |_| {
            let _ = raw(x32_getpid, [0; 6]);
            10
        }),
        Outcome::Signal(SIGSYS)
    );
    // nr -1 (what ptrace sets to skip a call) is not an x32 call
    assert_eq!(
        interp::run(&p.filter, AUDIT_NATIVE, u32::MAX, [0; 6]),
        bpf::RET_ALLOW
    );
    // default ERRNO: the default errno
    let p = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
        "syscalls": [{"names": EXIT_NAMES, "action": "SCMP_ACT_ALLOW"}]}),
    ))
    .unwrap();
    assert_eq!(
        in_child(&p, |_| (raw(x32_getpid, [0; 6]) != Err(13)) as i32),
        Outcome::Exit(0)
    );
    // listed: checked against x32 numbers
    let p = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getpid", "execve"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    let x32 = |nr: u32| interp::run(&p.filter, AUDIT_NATIVE, arch::X32_SYSCALL_BIT | nr, [0; 6]);
    assert_eq!(x32(libc::SYS_getpid as u32), bpf::RET_ERRNO | 1);
    assert_eq!(x32(520), bpf::RET_ERRNO | 1); // x32 execve
    assert_eq!(x32(libc::SYS_getppid as u32), bpf::RET_ALLOW);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscalls_cannot_bypass_the_filter() {
    const I386_GETPID: u32 = 20;
    let rules = json!([{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]);
    // not listed: default action for every i386 call
    let p = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}),
    ))
    .unwrap();
    assert_eq!(
        interp::run(&p.filter, AUDIT_I386, I386_GETPID, [0; 6]),
        bpf::RET_ERRNO | 1
    );
    // default ALLOW + not listed: killed (libseccomp's bad-arch action)
    let p = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    assert_eq!(
        interp::run(&p.filter, AUDIT_I386, I386_GETPID, [0; 6]),
        bpf::RET_KILL_PROCESS
    );
    // listed: i386 numbers are checked (20 is getpid on i386, 10 unlink, 39 mkdir)
    let p = compile(&profile(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": rules})))
    .unwrap();
    assert_eq!(
        interp::run(&p.filter, AUDIT_I386, I386_GETPID, [0; 6]),
        bpf::RET_ALLOW
    );
    assert_eq!(
        interp::run(&p.filter, AUDIT_I386, 10, [0; 6]),
        bpf::RET_ERRNO | 1
    );
    // ENOSYS guard per ABI: 39 is above i386 getpid but is x86_64 getpid
    assert_eq!(
        interp::run(&p.filter, AUDIT_I386, 39, [0; 6]),
        bpf::RET_ERRNO | libc::ENOSYS as u32
    );
    assert_eq!(
        interp::run(&p.filter, AUDIT_NATIVE, 39, [0; 6]),
        bpf::RET_ALLOW
    );
    // an arch this machine cannot produce: the bad-arch action
    assert_eq!(
        interp::run(&p.filter, 0xc000_00b7, 172, [0; 6]),
        bpf::RET_ERRNO | 1
    );
}

/// The real thing: `int 0x80` from a 64-bit process enters the i386 ABI.
#[cfg(target_arch = "x86_64")]
#[test]
fn i386_int80_is_filtered_by_the_kernel() {
    fn int80_getpid() -> i64 {
        let mut ret: i64 = 20; // i386 getpid
                               // SAFETY: i386 getpid takes no arguments and touches no memory; int 0x80
                               // clobbers only eax (and the flags, which asm! assumes clobbered).
        unsafe { std::arch::asm!("int 0x80", inout("rax") ret, options(nostack)) };
        ret as i32 as i64
    }
    let allow_getpid =
        json!([{"names": ["getpid", "exit", "exit_group"], "action": "SCMP_ACT_ALLOW"}]);
    let both = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    let none = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": both}),
    ))
    .unwrap();
    let probe = in_child(&none, |_| (int80_getpid() <= 0) as i32);
    if probe != Outcome::Exit(0) {
        eprintln!("skipping: no ia32 emulation here (int 0x80 probe: {probe:?})");
        return;
    }
    // not listed, default ALLOW: the bad-arch action kills
    let p = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}))).unwrap();
    assert_eq!(
        in_child(&p, |_| {
            int80_getpid();
            10
        }),
        Outcome::Signal(SIGSYS)
    );
    // not listed, default ERRNO: the default errno
    let p = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": allow_getpid}),
    ))
    .unwrap();
    assert_eq!(
        in_child(&p, |_| (int80_getpid() != -(libc::EPERM as i64)) as i32),
        Outcome::Exit(0)
    );
    let p = compile(&profile(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": allow_getpid})))
    .unwrap();
    assert_eq!(
        in_child(&p, |_| (int80_getpid() <= 0) as i32),
        Outcome::Exit(0)
    );
    // listed, deny rule on getpid: the i386 number (20) is denied too
    let p = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": both,
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV}]}),
    ))
    .unwrap();
    assert_eq!(
        in_child(&p, |_| (int80_getpid() != -(libc::EXDEV as i64)) as i32),
        Outcome::Exit(0)
    );
}

#[test]
fn enosys_for_syscalls_newer_than_the_profile() {
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getppid", "exit", "exit_group"], "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    let out = in_child(&p, |_| {
        if raw(libc::SYS_getuid, [0; 6]) != Err(libc::EPERM) {
            return 1; // known era, not in the profile: default errno
        }
        if raw(libc::SYS_clone3, [0; 6]) != Err(libc::ENOSYS) {
            return 2; // newer than anything the profile names
        }
        if raw(1000, [0; 6]) != Err(libc::ENOSYS) {
            return 3;
        }
        0
    });
    assert_eq!(out, Outcome::Exit(0));
    // never with a permissive default
    let p = one_rule(json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}));
    assert_eq!(
        interp::run(&p.filter, native_audit(), 1000, [0; 6]),
        bpf::RET_ALLOW
    );
    // a name in a rule with the default action still counts as known
    let p = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO"}]}),
    ))
    .unwrap();
    assert_eq!(
        interp::run(&p.filter, native_audit(), libc::SYS_clone3 as u32, [0; 6]),
        bpf::RET_ERRNO | 1
    );
    assert_eq!(
        interp::run(&p.filter, native_audit(), 1000, [0; 6]),
        bpf::RET_ERRNO | libc::ENOSYS as u32
    );
}

// ---------------------------------------------------------------- notify

fn socketpair() -> (OwnedFd, OwnedFd) {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap()
}

/// Receive the agent message: (JSON, fd).
fn recv_listener(sock: RawFd) -> (serde_json::Value, OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg =
        recvmsg::<UnixAddr>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC).unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: SCM_RIGHTS installed this fd in our table; we own it now.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let n = msg.bytes;
    let v = serde_json::from_slice(&buf[..n]).unwrap();
    (v, fd.expect("an fd in SCM_RIGHTS"))
}

#[test]
fn send_listener_delivers_fd_and_state() {
    let (a, b) = socketpair();
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    let state = json!({"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 4321, "bundle": "/b"});
    send_listener(a.as_raw_fd(), "meta-data", &state, file.as_raw_fd()).unwrap();
    let (v, fd) = recv_listener(b.as_raw_fd());
    assert_eq!(v["ociVersion"], "1.2.0");
    assert_eq!(v["fds"], json!(["seccompFd"]));
    assert_eq!(v["pid"], 4321);
    assert_eq!(v["metadata"], "meta-data");
    assert_eq!(v["state"], state);
    let st = |f: std::os::fd::BorrowedFd| {
        let s = nix::sys::stat::fstat(f).unwrap();
        (s.st_dev, s.st_ino)
    };
    assert_eq!(st(fd.as_fd()), st(file.as_fd()));
}

/// Answer one notification with `val` or `-errno`; returns the syscall number seen.
fn answer(listener: RawFd, val: i64, errno: i32) -> i32 {
    // SAFETY: all-zero is a valid seccomp_notif (plain integers), and the
    // kernel requires it zeroed before NOTIF_RECV.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: NOTIF_RECV fills `req`, a properly sized and aligned struct.
    let r = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val,
        error: -errno,
        flags: 0,
    };
    // SAFETY: NOTIF_SEND reads `resp`, a properly sized and aligned struct.
    let r = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    req.data.nr
}

#[test]
fn notify_hands_the_listener_to_an_agent_that_answers() {
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    assert!(p.needs_listener());
    let (agent, runtime) = socketpair();
    let state =
        json!({"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 1, "bundle": "/b"});
    let out = std::thread::scope(|s| {
        let agent_side = s.spawn(|| {
            let (v, listener) = recv_listener(agent.as_raw_fd());
            assert_eq!(v["metadata"], "agent-meta");
            let a = answer(listener.as_raw_fd(), 4242, 0);
            let b = answer(listener.as_raw_fd(), 0, libc::EACCES);
            (a, b)
        });
        let out = in_child(&p, |listener| {
            let Some(listener) = listener else { return 1 };
            if send_listener(
                runtime.as_raw_fd(),
                "agent-meta",
                &state,
                listener.as_raw_fd(),
            )
            .is_err()
            {
                return 2;
            }
            drop(listener);
            if getppid_with([0; 6]) != Ok(4242) {
                return 3;
            }
            if getppid_with([0; 6]) != Err(libc::EACCES) {
                return 4;
            }
            0
        });
        let (a, b) = agent_side.join().unwrap();
        assert_eq!((a, b), (libc::SYS_getppid as i32, libc::SYS_getppid as i32));
        out
    });
    assert_eq!(out, Outcome::Exit(0));
}

// ---------------------------------------------------------------- default profile

#[test]
fn default_profile_runs_a_shell_and_blocks_escapes() {
    let p = compile_default();
    let out = in_child(p, |_| {
        let sh = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("x=$(echo hello | tr a-z A-Z) && [ \"$x\" = HELLO ] && ls / >/dev/null \
                  && cat /proc/self/status >/dev/null && d=$(mktemp -d) && echo data > \"$d/f\" \
                  && mv \"$d/f\" \"$d/g\" && chmod 600 \"$d/g\" && rm -r \"$d\" && (sleep 0 &) && wait")
            .stdin(std::process::Stdio::null())
            .status();
        match sh {
            Ok(s) if s.success() => {}
            Ok(_) => return 1,
            Err(_) => return 2,
        }
        // plain fork through the clone syscall without namespace flags
        // SAFETY: the forked grandchild only calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: leaving the grandchild.
            unsafe { libc::_exit(7) }
        }
        if pid < 0 || wait(pid) != Outcome::Exit(7) {
            return 3;
        }
        let ns = libc::CLONE_NEWUSER as u64;
        if raw(libc::SYS_unshare, [ns, 0, 0, 0, 0, 0]) != Err(libc::EPERM) {
            return 4;
        }
        if raw(libc::SYS_unshare, [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0]) != Err(libc::EPERM) {
            return 5;
        }
        if raw(libc::SYS_kexec_load, [0; 6]) != Err(libc::EPERM) {
            return 6;
        }
        let flags = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
        match raw(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]) {
            Err(libc::EPERM) => {}
            // SAFETY: a namespaced child slipped through: leave it at once.
            Ok(0) => unsafe { libc::_exit(99) },
            _ => return 7,
        }
        if raw(libc::SYS_clone3, [0; 6]) != Err(libc::ENOSYS) {
            return 8; // libc falls back to clone
        }
        if raw(
            libc::SYS_socket,
            [libc::AF_VSOCK as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
        ) != Err(libc::EPERM)
        {
            return 9;
        }
        if raw(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]).is_err() {
            return 10;
        }
        if raw(
            libc::SYS_personality,
            [libc::ADDR_NO_RANDOMIZE as u64, 0, 0, 0, 0, 0],
        ) != Err(libc::EPERM)
        {
            return 11;
        }
        if raw(libc::SYS_mount, [0; 6]) != Err(libc::EPERM)
            || raw(libc::SYS_bpf, [0; 6]) != Err(libc::EPERM)
        {
            return 12;
        }
        if raw(libc::SYS_setns, [0; 6]) != Err(libc::EPERM)
            || raw(libc::SYS_pivot_root, [0; 6]) != Err(libc::EPERM)
        {
            return 13;
        }
        if raw(1000, [0; 6]) != Err(libc::ENOSYS) {
            return 14;
        }
        0
    });
    assert_eq!(out, Outcome::Exit(0));
}

/// A C build and a threaded program under the default profile (when a C
/// compiler is installed).
#[test]
fn default_profile_runs_a_c_build() {
    if !std::path::Path::new("/usr/bin/cc").exists() {
        eprintln!("skipping: no /usr/bin/cc");
        return;
    }
    let dir = std::env::temp_dir().join(format!("stele-seccomp-cc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("t.c");
    std::fs::write(
        &src,
        "#include <pthread.h>\n#include <stdio.h>\n\
         static void *run(void *a) { return a; }\n\
         int main(void) { pthread_t t[4]; for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, run, 0);\n\
         for (int i = 0; i < 4; i++) pthread_join(t[i], 0); puts(\"ok\"); return 0; }\n",
    )
    .unwrap();
    let script = format!(
        "cd {} && cc -O1 -pthread t.c -o t && ./t > out",
        dir.display()
    );
    let out = in_child(compile_default(), |_| {
        match std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .status()
        {
            Ok(s) if s.success() => 0,
            Ok(_) => 1,
            Err(_) => 2,
        }
    });
    let printed = std::fs::read_to_string(dir.join("out")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out, Outcome::Exit(0));
    assert_eq!(printed, "ok\n");
}

#[test]
fn program_is_clone_and_send() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Program>();
}

#[test]
fn default_profile_shape() {
    let d = default_profile();
    assert_eq!(
        d.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
    );
    assert_eq!(d.default_errno_ret(), Some(libc::EPERM as u32));
    let names: Vec<&String> = d
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .flat_map(|s| s.names())
        .collect();
    for must in [
        "read",
        "execve",
        "mmap",
        "clone",
        "futex",
        "rt_sigreturn",
        "exit_group",
    ] {
        assert!(names.iter().any(|n| *n == must), "{must} allowed");
    }
    for never in [
        "kexec_load",
        "init_module",
        "mount",
        "bpf",
        "setns",
        "keyctl",
        "userfaultfd",
        "io_uring_setup",
    ] {
        assert!(!names.iter().any(|n| *n == never), "{never} not allowed");
    }
    // it round-trips through JSON (what `stele spec` would write)
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(serde_json::from_value::<LinuxSeccomp>(v).unwrap(), d);
}

#[test]
fn compile_default_is_cached() {
    let t = Instant::now();
    let a = compile_default() as *const Program;
    let first = t.elapsed();
    let t = Instant::now();
    let b = compile_default() as *const Program;
    let second = t.elapsed();
    assert_eq!(a, b);
    assert!(
        second < Duration::from_millis(1),
        "second call took {second:?} (first {first:?})"
    );
    assert!(compile_default().len() < bpf::MAX_INSNS);
}
/// Bodies longer than a conditional jump can skip (255) use `ja`.
#[test]
fn long_rule_bodies_and_ranges() {
    let mut rules: Vec<serde_json::Value> = (0..80u64)
        .map(|v| {
            json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 + v % 100,
                        "args": [{"index": 0, "value": 1000 + v, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    rules.push(json!({"names": ["read", "write", "open", "close", "exit", "exit_group", "getppid"], "action": "SCMP_ACT_ALLOW"}));
    let p = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99, "syscalls": rules}),
    ))
    .unwrap();
    let nr = libc::SYS_getppid as u32;
    let run = |nr: u32, a0: u64| interp::run(&p.filter, native_audit(), nr, [a0, 0, 0, 0, 0, 0]);
    assert_eq!(run(nr, 1000), bpf::RET_ERRNO | 1);
    assert_eq!(run(nr, 1079), bpf::RET_ERRNO | 80);
    assert_eq!(run(nr, 5), bpf::RET_ALLOW);
    for n in 0..=3 {
        assert_eq!(run(n, 0), bpf::RET_ALLOW, "range 0..=3, nr {n}");
    }
    assert_eq!(run(4, 0), bpf::RET_ERRNO | 99);
    let out = in_child(&p, |_| {
        match (
            getppid_with([1042, 0, 0, 0, 0, 0]),
            getppid_with([7, 0, 0, 0, 0, 0]),
        ) {
            (Err(43), Ok(_)) => 0,
            _ => 1,
        }
    });
    assert_eq!(out, Outcome::Exit(0));
}
