//! Classic BPF code generation for one seccomp filter.
//!
//! The program is built bottom-up from self-contained blocks: every path
//! through a block ends in a `ret`, so blocks can be concatenated freely and
//! every conditional jump stays short (a binary search over syscall numbers
//! uses `ja` with its 32-bit offset for the long hops).
//!
//! Layout:
//! ```text
//!   ld arch; for each section: jeq AUDIT_ARCH, +0, +1; ja section
//!   ret bad_arch
//!   section: ld nr; [x32 split]; [jgt max_nr -> ret ENOSYS]; search tree
//!   tree leaf: nr in lo..=hi -> body; ...; ret default
//!   body: rules by precedence, each = ANDed arg checks + ret action; ret default
//! ```

use std::collections::BTreeMap;

use libc::sock_filter;

use super::arch::X32_SYSCALL_BIT;

// Opcodes (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;

/// Largest program the kernel accepts (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

// Offsets in struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;

/// The kernel's precedence between actions: lower sorts first (more restrictive).
pub fn precedence(ret: u32) -> i32 {
    (ret & RET_ACTION_FULL) as i32
}

/// Whether `ret` runs the syscall (allow-like actions).
pub fn is_permissive(ret: u32) -> bool {
    matches!(ret & RET_ACTION_FULL, RET_ALLOW | RET_LOG)
}

/// A comparison operator on one 64-bit syscall argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == datum`
    MaskedEq {
        mask: u64,
    },
}

/// One argument condition; the conditions of a rule are ANDed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
}

/// A rule for one syscall: when all `conds` hold, return `ret`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub ret: u32,
    pub conds: Vec<Cond>,
}

/// Rules of one ABI, keyed by syscall number.
#[derive(Clone, Debug)]
pub struct Section {
    pub audit_arch: u32,
    /// x86_64 only: what to do with x32 numbers (bit 30): their own section,
    /// or `None` to return the bad-arch action.
    pub x32: Option<Box<Section>>,
    /// Whether this section guards bit 30 (the x86_64 native section).
    pub has_x32_split: bool,
    pub is_64bit: bool,
    pub rules: BTreeMap<u32, Vec<Rule>>,
    /// Numbers above this return ENOSYS (the ENOSYS guard), if set.
    pub enosys_above: Option<u32>,
}

/// Everything the generator needs.
pub struct FilterSpec {
    pub sections: Vec<Section>,
    pub default_ret: u32,
    pub bad_arch_ret: u32,
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: BPF_JMP | code | BPF_K,
        jt,
        jf,
        k,
    }
}

fn ret(k: u32) -> sock_filter {
    stmt(BPF_RET | BPF_K, k)
}

fn load(off: u32) -> sock_filter {
    stmt(BPF_LD | BPF_W | BPF_ABS, off)
}

fn ja(off: usize) -> Result<sock_filter, String> {
    let k = u32::try_from(off).map_err(|_| "jump too long".to_string())?;
    Ok(stmt(BPF_JMP | BPF_JA, k))
}

/// Generate the whole program.
pub fn generate(spec: &FilterSpec) -> Result<Vec<sock_filter>, String> {
    let mut bodies = Vec::with_capacity(spec.sections.len());
    for s in &spec.sections {
        bodies.push(section(s, spec.default_ret, spec.bad_arch_ret)?);
    }
    // Header: arch dispatch. Entry i is `jeq arch_i, 0, 1; ja body_i`.
    let n = bodies.len();
    let mut out = vec![load(OFF_ARCH)];
    // Distance from the insn after the `ja` of entry i to the start of body i:
    // remaining dispatch entries, the bad-arch ret, and the bodies before i.
    let mut before = 0usize;
    for (i, s) in spec.sections.iter().enumerate() {
        out.push(jump(BPF_JEQ, s.audit_arch, 0, 1));
        let rest = 2 * (n - i - 1) + 1;
        out.push(ja(rest + before)?);
        before += bodies[i].len();
    }
    out.push(ret(spec.bad_arch_ret));
    for b in bodies {
        out.extend(b);
    }
    if out.len() > MAX_INSNS {
        return Err(format!(
            "the filter needs {} BPF instructions, more than the kernel's limit of {MAX_INSNS}",
            out.len()
        ));
    }
    Ok(out)
}

fn section(s: &Section, default_ret: u32, bad_arch_ret: u32) -> Result<Vec<sock_filter>, String> {
    let mut out = vec![load(OFF_NR)];
    if s.has_x32_split {
        // Bit 30 set and not -1 (the "no syscall" number ptrace may set): x32.
        let x32 = match &s.x32 {
            Some(x) => section_body(x, default_ret)?,
            None => vec![ret(bad_arch_ret)],
        };
        out.push(jump(BPF_JSET, X32_SYSCALL_BIT, 0, 2));
        out.push(jump(BPF_JEQ, u32::MAX, 1, 0));
        out.push(ja(0)?);
        let native = section_body(s, default_ret)?;
        // The `ja` skips the native body; x32 follows it.
        let at = out.len() - 1;
        out[at] = ja(native.len())?;
        out.extend(native);
        out.extend(x32);
    } else {
        out.extend(section_body(s, default_ret)?);
    }
    Ok(out)
}

/// ENOSYS guard + search tree; expects the syscall number in A.
fn section_body(s: &Section, default_ret: u32) -> Result<Vec<sock_filter>, String> {
    let mut out = Vec::new();
    if let Some(max) = s.enosys_above {
        out.push(jump(BPF_JGT, max, 0, 1));
        out.push(ret(RET_ERRNO | libc::ENOSYS as u32));
    }
    // Consecutive numbers with the same code share one range check: an
    // allowlist collapses to a few dozen ranges.
    let mut ranges: Vec<Range> = Vec::with_capacity(s.rules.len());
    for (&nr, rules) in &s.rules {
        let body = syscall_body(rules, s.is_64bit, default_ret)?;
        match ranges.last_mut() {
            Some(r) if r.hi.checked_add(1) == Some(nr) && same_code(&r.body, &body) => r.hi = nr,
            _ => ranges.push(Range {
                lo: nr,
                hi: nr,
                body,
            }),
        }
    }
    out.extend(tree(&ranges, default_ret)?);
    Ok(out)
}

/// Syscall numbers `lo..=hi` run `body`.
struct Range {
    lo: u32,
    hi: u32,
    body: Vec<sock_filter>,
}

fn same_code(a: &[sock_filter], b: &[sock_filter]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
}

/// Binary search over sorted ranges; leaves compare linearly.
fn tree(ranges: &[Range], default_ret: u32) -> Result<Vec<sock_filter>, String> {
    const LEAF: usize = 4;
    if ranges.len() <= LEAF {
        let mut out = Vec::new();
        for r in ranges {
            let len = r.body.len();
            // "nr in lo..=hi, else skip the body"
            match (
                r.lo == r.hi,
                u8::try_from(len).ok().filter(|l| *l < u8::MAX),
            ) {
                (true, Some(skip)) => out.push(jump(BPF_JEQ, r.lo, 0, skip)),
                (false, Some(skip)) => {
                    out.push(jump(BPF_JGT, r.hi, skip + 1, 0));
                    out.push(jump(BPF_JGE, r.lo, 0, skip));
                }
                (true, None) => {
                    out.push(jump(BPF_JEQ, r.lo, 1, 0));
                    out.push(ja(len)?);
                }
                (false, None) => {
                    out.push(jump(BPF_JGT, r.hi, 1, 0));
                    out.push(jump(BPF_JGE, r.lo, 1, 0));
                    out.push(ja(len)?);
                }
            }
            out.extend_from_slice(&r.body);
        }
        out.push(ret(default_ret));
        return Ok(out);
    }
    let mid = ranges.len() / 2;
    let left = tree(&ranges[..mid], default_ret)?;
    let right = tree(&ranges[mid..], default_ret)?;
    // nr >= pivot: fall into the `ja` over the left half; else skip it.
    let mut out = vec![jump(BPF_JGE, ranges[mid].lo, 0, 1), ja(left.len())?];
    out.extend(left);
    out.extend(right);
    Ok(out)
}

/// Rules of one syscall, most restrictive first; the first match returns.
fn syscall_body(
    rules: &[Rule],
    is_64bit: bool,
    default_ret: u32,
) -> Result<Vec<sock_filter>, String> {
    let mut sorted: Vec<&Rule> = rules.iter().collect();
    sorted.sort_by_key(|r| precedence(r.ret)); // stable: profile order among equals
    let mut out = Vec::new();
    for r in sorted {
        if r.conds.is_empty() {
            out.push(ret(r.ret));
            return Ok(out); // later rules are unreachable
        }
        out.extend(rule(r, is_64bit)?);
    }
    out.push(ret(default_ret));
    Ok(out)
}

/// Jump targets while assembling one rule.
#[derive(Clone, Copy)]
enum T {
    /// The next instruction.
    Next,
    /// The end of the current condition (the next condition, or the `ret`).
    Pass,
    /// Past the rule's `ret` (the next rule).
    Fail,
}

struct Pending {
    code: u16,
    k: u32,
    jt: T,
    jf: T,
}

fn p_load(off: u32) -> Pending {
    Pending {
        code: BPF_LD | BPF_W | BPF_ABS,
        k: off,
        jt: T::Next,
        jf: T::Next,
    }
}
fn p_and(k: u32) -> Pending {
    Pending {
        code: BPF_ALU | BPF_AND | BPF_K,
        k,
        jt: T::Next,
        jf: T::Next,
    }
}
fn p_jmp(op: u16, k: u32, jt: T, jf: T) -> Pending {
    Pending {
        code: BPF_JMP | op | BPF_K,
        k,
        jt,
        jf,
    }
}

/// ANDed conditions followed by `ret action`; failing any condition jumps past it.
fn rule(r: &Rule, is_64bit: bool) -> Result<Vec<sock_filter>, String> {
    // (instructions, end index of the condition each belongs to)
    let mut code: Vec<(Pending, usize)> = Vec::new();
    for c in &r.conds {
        let part = cond(c, is_64bit);
        let end = code.len() + part.len();
        code.extend(part.into_iter().map(|p| (p, end)));
    }
    let fail = code.len() + 1; // after the ret
    let mut out = Vec::with_capacity(fail);
    for (pc, (p, end)) in code.iter().enumerate() {
        let off = |t: T| -> Result<u8, String> {
            let target = match t {
                T::Next => pc + 1,
                T::Pass => *end,
                T::Fail => fail,
            };
            u8::try_from(target - (pc + 1)).map_err(|_| "argument checks too long".to_string())
        };
        out.push(sock_filter {
            code: p.code,
            jt: off(p.jt)?,
            jf: off(p.jf)?,
            k: p.k,
        });
    }
    out.push(ret(r.ret));
    Ok(out)
}

/// One 64-bit comparison as two 32-bit halves (high word first). 32-bit ABIs
/// compare the low word only.
fn cond(c: &Cond, is_64bit: bool) -> Vec<Pending> {
    let lo_off = OFF_ARGS + 8 * c.index as u32 + if cfg!(target_endian = "little") { 0 } else { 4 };
    let hi_off = OFF_ARGS + 8 * c.index as u32 + if cfg!(target_endian = "little") { 4 } else { 0 };
    let (vhi, vlo) = ((c.value >> 32) as u32, c.value as u32);
    use T::{Fail, Next, Pass};
    let mut v = Vec::new();
    if !is_64bit {
        v.push(p_load(lo_off));
        match c.op {
            Op::Eq => v.push(p_jmp(BPF_JEQ, vlo, Pass, Fail)),
            Op::Ne => v.push(p_jmp(BPF_JEQ, vlo, Fail, Pass)),
            Op::Gt => v.push(p_jmp(BPF_JGT, vlo, Pass, Fail)),
            Op::Ge => v.push(p_jmp(BPF_JGE, vlo, Pass, Fail)),
            Op::Lt => v.push(p_jmp(BPF_JGE, vlo, Fail, Pass)),
            Op::Le => v.push(p_jmp(BPF_JGT, vlo, Fail, Pass)),
            Op::MaskedEq { mask } => {
                v.push(p_and(mask as u32));
                v.push(p_jmp(BPF_JEQ, vlo, Pass, Fail));
            }
        }
        return v;
    }
    v.push(p_load(hi_off));
    match c.op {
        Op::Eq => {
            v.push(p_jmp(BPF_JEQ, vhi, Next, Fail));
            v.push(p_load(lo_off));
            v.push(p_jmp(BPF_JEQ, vlo, Pass, Fail));
        }
        Op::Ne => {
            v.push(p_jmp(BPF_JEQ, vhi, Next, Pass));
            v.push(p_load(lo_off));
            v.push(p_jmp(BPF_JEQ, vlo, Fail, Pass));
        }
        Op::Gt | Op::Ge => {
            v.push(p_jmp(BPF_JGT, vhi, Pass, Next));
            v.push(p_jmp(BPF_JEQ, vhi, Next, Fail));
            v.push(p_load(lo_off));
            let j = if c.op == Op::Gt { BPF_JGT } else { BPF_JGE };
            v.push(p_jmp(j, vlo, Pass, Fail));
        }
        Op::Lt | Op::Le => {
            // Lt = !(>=), Le = !(>)
            v.push(p_jmp(BPF_JGT, vhi, Fail, Next));
            v.push(p_jmp(BPF_JEQ, vhi, Next, Pass));
            v.push(p_load(lo_off));
            let j = if c.op == Op::Lt { BPF_JGE } else { BPF_JGT };
            v.push(p_jmp(j, vlo, Fail, Pass));
        }
        Op::MaskedEq { mask } => {
            v.push(p_and((mask >> 32) as u32));
            v.push(p_jmp(BPF_JEQ, vhi, Next, Fail));
            v.push(p_load(lo_off));
            v.push(p_and(mask as u32));
            v.push(p_jmp(BPF_JEQ, vlo, Pass, Fail));
        }
    }
    v
}

#[cfg(test)]
pub(crate) mod interp {
    //! A tiny classic-BPF interpreter over `seccomp_data`, to check the
    //! generated code for every operator and boundary without the kernel.
    use libc::sock_filter;

    pub fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let word = |off: u32| {
            let o = off as usize;
            u32::from_ne_bytes(data[o..o + 4].try_into().unwrap())
        };
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                0x20 => a = word(i.k),
                0x54 => a &= i.k,
                0x06 => return i.k,
                0x05 => pc += i.k as usize,
                c if c & 0x07 == 0x05 => {
                    let t = match c & 0xf0 {
                        0x10 => a == i.k,
                        0x20 => a > i.k,
                        0x30 => a >= i.k,
                        0x40 => a & i.k != 0,
                        _ => panic!("bad jump {c:#x}"),
                    };
                    pc += if t { i.jt } else { i.jf } as usize;
                }
                c => panic!("bad opcode {c:#x}"),
            }
        }
    }
}
