//! stele's built-in default profile: an allowlist in the spirit of Docker's.
//!
//! Default action ERRNO(EPERM); syscalls newer than the list get ENOSYS
//! through the ENOSYS guard. Not allowed: kernel modules and kexec, mount
//! and the new mount API, pivot_root, namespaces (setns; clone and unshare
//! only without namespace flags; clone3 returns ENOSYS so libc falls back to
//! the inspectable clone), keyrings, bpf, perf, userfaultfd, io_uring,
//! open_by_handle_at, clock and time setting, swap, reboot, quotactl, acct,
//! syslog, kcmp/pidfd_getfd, migrate_pages/move_pages, ioperm/iopl/modify_ldt/vm86,
//! AF_VSOCK sockets and personality values other than the usual ones.
//! Capabilities still apply to whatever is allowed here.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator as Operator, LinuxSyscall,
};

use super::arch::{self, Abi};

/// Allowed without argument checks (names of every ABI stele may filter;
/// names no ABI of this machine knows are left out of the profile).
#[rustfmt::skip]
const ALLOW: &[&str] = &[
    // file descriptors and I/O
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
    "preadv2", "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range",
    "lseek", "_llseek", "dup", "dup2", "dup3", "fcntl", "fcntl64", "flock", "fsync",
    "fdatasync", "sync", "syncfs", "sync_file_range", "sync_file_range2", "arm_sync_file_range",
    "truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate", "fadvise64",
    "fadvise64_64", "arm_fadvise64_64", "readahead", "sendfile", "sendfile64", "splice", "tee",
    "vmsplice", "copy_file_range", "ioctl", "pipe", "pipe2", "select", "_newselect", "pselect6",
    "pselect6_time64", "poll", "ppoll", "ppoll_time64", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd",
    "signalfd4", "timerfd_create", "timerfd_settime", "timerfd_settime64", "timerfd_gettime",
    "timerfd_gettime64", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "memfd_create", "io_setup", "io_destroy", "io_submit", "io_cancel",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    // files and directories
    "stat", "fstat", "lstat", "stat64", "fstat64", "lstat64", "newfstatat", "fstatat64",
    "statx", "statfs", "statfs64", "fstatfs", "fstatfs64", "access", "faccessat", "faccessat2",
    "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "chroot",
    "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat", "symlink",
    "symlinkat", "unlink", "unlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
    "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32", "umask", "utime",
    "utimes", "utimensat", "utimensat_time64", "futimesat", "mknod", "mknodat", "getxattr",
    "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr",
    "flistxattr", "removexattr", "lremovexattr", "fremovexattr", "getxattrat", "setxattrat",
    "listxattrat", "removexattrat", "file_getattr", "file_setattr", "statmount", "listmount",
    // memory
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "pkey_mprotect", "pkey_alloc",
    "pkey_free", "madvise", "mlock", "mlock2", "munlock", "mlockall", "munlockall", "mincore",
    "msync", "remap_file_pages", "membarrier", "map_shadow_stack", "mseal", "cachestat",
    "get_mempolicy", "set_mempolicy", "mbind", "set_mempolicy_home_node",
    // processes and threads
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid",
    "kill", "tkill", "tgkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp",
    "getsid", "setsid", "getpriority", "setpriority", "nice", "sched_yield",
    "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
    "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_getattr", "sched_setattr", "set_tid_address", "set_robust_list", "get_robust_list",
    "rseq", "arch_prctl", "prctl", "seccomp", "capget", "capset", "getrlimit", "setrlimit",
    "prlimit64", "ugetrlimit", "getrusage", "times", "uname", "sysinfo", "getrandom",
    "pidfd_open", "pidfd_send_signal", "ptrace", "process_vm_readv", "process_vm_writev",
    "ioprio_get", "ioprio_set", "set_thread_area", "get_thread_area", "set_tls",
    "restart_syscall", "pause", "getcpu", "futex", "futex_time64", "futex_waitv", "futex_wake",
    "futex_wait", "futex_requeue", "landlock_create_ruleset", "landlock_add_rule",
    "landlock_restrict_self", "lsm_get_self_attr", "lsm_list_modules", "sethostname",
    "setdomainname", "breakpoint", "cacheflush", "riscv_flush_icache", "riscv_hwprobe",
    // credentials
    "getuid", "geteuid", "getgid", "getegid", "setuid", "setgid", "setreuid", "setregid",
    "setresuid", "setresgid", "getresuid", "getresgid", "setfsuid", "setfsgid", "getgroups",
    "setgroups", "getuid32", "geteuid32", "getgid32", "getegid32", "setuid32", "setgid32",
    "setreuid32", "setregid32", "setresuid32", "setresgid32", "getresuid32", "getresgid32",
    "setfsuid32", "setfsgid32", "getgroups32", "setgroups32",
    // signals
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "sigaltstack", "sigaction", "sigprocmask", "sigreturn", "signal", "sigsuspend",
    "sigpending",
    // time (setting the clocks stays with CAP_SYS_TIME checks in adjtimex/clock_adjtime)
    "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres",
    "clock_getres_time64", "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "alarm",
    "getitimer", "setitimer", "timer_create", "timer_settime", "timer_settime64",
    "timer_gettime", "timer_gettime64", "timer_getoverrun", "timer_delete", "adjtimex",
    "clock_adjtime", "clock_adjtime64",
    // sockets (socket itself has a rule below)
    "socketpair", "bind", "connect", "listen", "accept", "accept4", "getsockname",
    "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "recvmmsg_time64", "shutdown", "setsockopt", "getsockopt", "socketcall", "send", "recv",
    // System V and POSIX IPC
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semctl", "semtimedop",
    "semtimedop_time64", "msgget", "msgsnd", "msgrcv", "msgctl", "ipc", "mq_open", "mq_unlink",
    "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_notify", "mq_getsetattr",
];

/// Namespace flags clone and unshare may not use: NEWNS, NEWCGROUP, NEWUTS,
/// NEWIPC, NEWUSER, NEWPID, NEWNET. (NEWTIME = 0x80 is a signal number bit in
/// clone's flags, so only unshare checks it.)
const CLONE_NS_FLAGS: u64 = 0x7e02_0000;
const CLONE_NEWTIME: u64 = 0x80;
const AF_VSOCK: u64 = 40;
/// personality(): PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, query.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

fn arg(index: usize, op: Operator, value: u64, value_two: Option<u64>) -> LinuxSeccompArg {
    let b = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    let b = match value_two {
        Some(v) => b.value_two(v),
        None => b,
    };
    b.build()
        .expect("every field of a seccomp arg has a default")
}

fn syscall(names: Vec<String>, action: Action, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names);
    s.set_action(action);
    if !args.is_empty() {
        s.set_args(Some(args));
    }
    s
}

fn one(name: &str, action: Action, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    syscall(vec![name.to_string()], action, args)
}

/// stele's built-in default profile (see the module docs).
pub fn default_profile() -> LinuxSeccomp {
    let abis: Vec<Abi> = arch::native()
        .map(|n| {
            arch::sections(
                n,
                &[Arch::ScmpArchX86, Arch::ScmpArchX32, Arch::ScmpArchArm],
            )
        })
        .unwrap_or_default();
    let known = |n: &&&str| abis.iter().any(|a| a.resolve(n).is_some());
    let allow: Vec<String> = ALLOW.iter().filter(known).map(|s| s.to_string()).collect();

    let mut rules = vec![syscall(allow, Action::ScmpActAllow, vec![])];
    rules.push(one(
        "clone",
        Action::ScmpActAllow,
        vec![arg(0, Operator::ScmpCmpMaskedEq, CLONE_NS_FLAGS, Some(0))],
    ));
    rules.push(one(
        "unshare",
        Action::ScmpActAllow,
        vec![arg(
            0,
            Operator::ScmpCmpMaskedEq,
            CLONE_NS_FLAGS | CLONE_NEWTIME,
            Some(0),
        )],
    ));
    // clone3 passes its flags in memory, out of seccomp's reach.
    let mut clone3 = one("clone3", Action::ScmpActErrno, vec![]);
    clone3.set_errno_ret(Some(libc::ENOSYS as u32));
    rules.push(clone3);
    rules.push(one(
        "socket",
        Action::ScmpActAllow,
        vec![arg(0, Operator::ScmpCmpNe, AF_VSOCK, None)],
    ));
    for p in PERSONALITIES {
        rules.push(one(
            "personality",
            Action::ScmpActAllow,
            vec![arg(0, Operator::ScmpCmpEq, p, None)],
        ));
    }

    let archs = match arch::native() {
        Some(Abi::X86_64) => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        Some(Abi::Aarch64) => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        Some(Abi::Riscv64) => vec![Arch::ScmpArchRiscv64],
        _ => vec![],
    };
    let mut p = LinuxSeccomp::default();
    p.set_default_action(Action::ScmpActErrno);
    p.set_default_errno_ret(Some(libc::EPERM as u32));
    p.set_architectures(Some(archs));
    p.set_syscalls(Some(rules));
    p
}
