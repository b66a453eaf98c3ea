//! Architectures a filter can see on this machine, and syscall name -> number
//! resolution for each of them (through the `syscalls` crate).
//!
//! A filter always checks `seccomp_data.arch` first. The native ABI is always
//! filtered. A secondary ABI the kernel can run on this machine (i386 on x86_64,
//! arm on aarch64) gets its own rule section when the profile lists it, and
//! the "bad arch" action otherwise. On x86_64, x32 syscalls arrive with the
//! native audit arch and bit 30 set in the number: they get their own section
//! when SCMP_ARCH_X32 is listed and the bad-arch action otherwise.

use oci_spec::runtime::Arch;

/// Bit 30: the x32 ABI marker in x86_64 syscall numbers.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// One ABI the filter has a section for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    X86_64,
    X32,
    I386,
    Aarch64,
    Arm,
    Riscv64,
}

impl Abi {
    /// `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`.
    pub fn audit_arch(self) -> u32 {
        match self {
            // x32 shares the x86_64 audit arch; the bit-30 check separates them.
            Abi::X86_64 | Abi::X32 => 0xc000_003e,
            Abi::I386 => 0x4000_0003,
            Abi::Aarch64 => 0xc000_00b7,
            Abi::Arm => 0x4000_0028,
            Abi::Riscv64 => 0xc000_00f3,
        }
    }

    /// Whether arguments are 64 bits wide (32-bit ABIs compare the low word only).
    pub fn is_64bit(self) -> bool {
        matches!(self, Abi::X86_64 | Abi::X32 | Abi::Aarch64 | Abi::Riscv64)
    }

    /// The OCI name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::I386 => "SCMP_ARCH_X86",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
            Abi::Arm => "SCMP_ARCH_ARM",
            Abi::Riscv64 => "SCMP_ARCH_RISCV64",
        }
    }

    /// The OCI architecture value that selects this ABI.
    fn oci(self) -> Arch {
        match self {
            Abi::X86_64 => Arch::ScmpArchX86_64,
            Abi::X32 => Arch::ScmpArchX32,
            Abi::I386 => Arch::ScmpArchX86,
            Abi::Aarch64 => Arch::ScmpArchAarch64,
            Abi::Arm => Arch::ScmpArchArm,
            Abi::Riscv64 => Arch::ScmpArchRiscv64,
        }
    }

    /// Syscall number of `name` in this ABI (x32 numbers include bit 30).
    pub fn resolve(self, name: &str) -> Option<u32> {
        match self {
            #[cfg(target_arch = "x86_64")]
            Abi::X86_64 => name
                .parse::<syscalls::x86_64::Sysno>()
                .ok()
                .map(|s| s.id() as u32),
            #[cfg(target_arch = "x86_64")]
            Abi::X32 => resolve_x32(name),
            #[cfg(target_arch = "x86_64")]
            Abi::I386 => name
                .parse::<syscalls::x86::Sysno>()
                .ok()
                .map(|s| s.id() as u32),
            #[cfg(target_arch = "aarch64")]
            Abi::Aarch64 => name
                .parse::<syscalls::aarch64::Sysno>()
                .ok()
                .map(|s| s.id() as u32),
            #[cfg(target_arch = "aarch64")]
            Abi::Arm => name
                .parse::<syscalls::arm::Sysno>()
                .ok()
                .map(|s| s.id() as u32),
            #[cfg(target_arch = "riscv64")]
            Abi::Riscv64 => name
                .parse::<syscalls::riscv64::Sysno>()
                .ok()
                .map(|s| s.id() as u32),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

/// The native ABI of this build, `None` on architectures stele has no tables for.
pub fn native() -> Option<Abi> {
    if cfg!(target_arch = "x86_64") {
        Some(Abi::X86_64)
    } else if cfg!(target_arch = "aarch64") {
        Some(Abi::Aarch64)
    } else if cfg!(target_arch = "riscv64") {
        Some(Abi::Riscv64)
    } else {
        None
    }
}

/// The other ABIs a process on this machine can enter the kernel with.
fn secondary(native: Abi) -> &'static [Abi] {
    match native {
        Abi::X86_64 => &[Abi::X32, Abi::I386],
        Abi::Aarch64 => &[Abi::Arm],
        _ => &[],
    }
}

/// The ABIs the filter must have sections for, given the profile's list.
/// The native ABI is always first. Listed architectures this machine cannot
/// run are ignored (they can never reach the filter).
pub fn sections(native: Abi, listed: &[Arch]) -> Vec<Abi> {
    let mut v = vec![native];
    for &abi in secondary(native) {
        if listed.contains(&abi.oci()) {
            v.push(abi);
        }
    }
    v
}

/// x32 numbers: the x86_64 number with bit 30, except the syscalls whose
/// arguments differ between the ABIs, which have their own x32 entries
/// (512..=547 in the kernel's syscall_64.tbl).
#[cfg(target_arch = "x86_64")]
fn resolve_x32(name: &str) -> Option<u32> {
    const X32_OWN: [&str; 36] = [
        "rt_sigaction",
        "rt_sigreturn",
        "ioctl",
        "readv",
        "writev",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "execve",
        "ptrace",
        "rt_sigpending",
        "rt_sigtimedwait",
        "rt_sigqueueinfo",
        "sigaltstack",
        "timer_create",
        "mq_notify",
        "kexec_load",
        "waitid",
        "set_robust_list",
        "get_robust_list",
        "vmsplice",
        "move_pages",
        "preadv",
        "pwritev",
        "rt_tgsigqueueinfo",
        "recvmmsg",
        "sendmmsg",
        "process_vm_readv",
        "process_vm_writev",
        "setsockopt",
        "getsockopt",
        "io_setup",
        "io_submit",
        "execveat",
        "preadv2",
        "pwritev2",
    ];
    if let Some(i) = X32_OWN.iter().position(|n| *n == name) {
        return Some(X32_SYSCALL_BIT | (512 + i as u32));
    }
    let nr = name.parse::<syscalls::x86_64::Sysno>().ok()?.id() as u32;
    Some(X32_SYSCALL_BIT | nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn resolves_per_abi() {
        assert_eq!(Abi::X86_64.resolve("getpid"), Some(39));
        assert_eq!(Abi::I386.resolve("getpid"), Some(20));
        assert_eq!(Abi::X32.resolve("getpid"), Some(X32_SYSCALL_BIT | 39));
        assert_eq!(Abi::X32.resolve("execve"), Some(X32_SYSCALL_BIT | 520));
        assert_eq!(Abi::X32.resolve("pwritev2"), Some(X32_SYSCALL_BIT | 547));
        assert_eq!(Abi::X86_64.resolve("no_such_call"), None);
        // i386 has both socketcall and (since 4.3) the direct socket call
        assert_eq!(Abi::I386.resolve("socket"), Some(359));
        assert_eq!(Abi::I386.resolve("socketcall"), Some(102));
    }
}
