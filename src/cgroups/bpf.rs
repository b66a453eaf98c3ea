//! cgroup v2 device filter: a BPF_PROG_TYPE_CGROUP_DEVICE program built from
//! the device rules, loaded and attached with raw bpf(2).
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }` where access_type = (access << 16) | device type. Rules are
//! checked from the last to the first (a later rule overrides an earlier
//! one, as appending to devices.allow/deny does on v1); no match = deny.
//! An allow rule matches when the requested access is a subset of its
//! access, a deny rule when they share any bit.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::v2::DevRule;
use crate::error::{Context, Error, Result};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One eBPF instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, regs: (src << 4) | (dst & 0x0f), off, imm }
    }
    fn bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(0x61, dst, src, off, 0) // BPF_LDX | BPF_MEM | BPF_W
}
fn mov_reg(dst: u8, src: u8) -> Insn {
    Insn::new(0xbf, dst, src, 0, 0) // BPF_ALU64 | BPF_MOV | BPF_X
}
fn mov_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(0xb7, dst, 0, 0, imm)
}
fn and_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(0x57, dst, 0, 0, imm)
}
fn rsh_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(0x77, dst, 0, 0, imm)
}
fn jne_imm(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(0x55, dst, 0, off, imm)
}
fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(0x15, dst, 0, off, imm)
}
fn exit() -> Insn {
    Insn::new(0x95, 0, 0, 0, 0)
}

fn access_bits(a: &str) -> i32 {
    a.chars().fold(0, |acc, c| {
        acc | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

/// Compile rules into a program. Registers: r2 type, r3 access, r4 major, r5 minor.
pub fn compile(rules: &[DevRule]) -> Vec<Insn> {
    let mut p = vec![
        ldx_w(2, 1, 0),
        mov_reg(3, 2),
        and_imm(2, 0xffff),
        rsh_imm(3, 16),
        ldx_w(4, 1, 4),
        ldx_w(5, 1, 8),
    ];
    for r in rules.iter().rev() {
        let acc = access_bits(&r.access);
        if acc == 0 {
            continue;
        }
        // Each test jumps to the end of this block when it does not match;
        // `None` offsets are patched once the block length is known.
        let mut block: Vec<(Insn, bool)> = Vec::new();
        match r.typ {
            'b' => block.push((jne_imm(2, DEV_BLOCK, 0), true)),
            'c' => block.push((jne_imm(2, DEV_CHAR, 0), true)),
            _ => {}
        }
        if r.allow && acc != 7 {
            block.push((mov_reg(0, 3), false));
            block.push((and_imm(0, !acc & 7), false));
            block.push((jne_imm(0, 0, 0), true));
        } else if !r.allow && acc != 7 {
            block.push((mov_reg(0, 3), false));
            block.push((and_imm(0, acc), false));
            block.push((jeq_imm(0, 0, 0), true));
        }
        if let Some(m) = r.major {
            block.push((jne_imm(4, m as i32, 0), true));
        }
        if let Some(m) = r.minor {
            block.push((jne_imm(5, m as i32, 0), true));
        }
        block.push((mov_imm(0, r.allow as i32), false));
        block.push((exit(), false));
        let len = block.len();
        for (i, (mut insn, is_jump)) in block.into_iter().enumerate() {
            if is_jump {
                insn.off = (len - i - 1) as i16;
            }
            p.push(insn);
        }
        if r.typ == 'a' && r.major.is_none() && r.minor.is_none() && acc == 7 {
            // Matches everything: later (earlier in the list) rules are unreachable.
            return p;
        }
    }
    p.push(mov_imm(0, 0));
    p.push(exit());
    p
}

fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> std::io::Result<i64> {
    // SAFETY: attr is a valid, writable bpf_attr-sized buffer for the command.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn put_u32(a: &mut [u8], off: usize, v: u32) {
    a[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put_u64(a: &mut [u8], off: usize, v: u64) {
    a[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}
fn get_u32(a: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([a[off], a[off + 1], a[off + 2], a[off + 3]])
}

/// Fill `info` (a `struct bpf_prog_info` prefix; pointers in it set by the
/// caller) for the program `fd`.
fn prog_info(fd: &OwnedFd, info: &mut [u8]) -> bool {
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, fd.as_raw_fd() as u32);
    put_u32(&mut attr, 4, info.len() as u32);
    put_u64(&mut attr, 8, info.as_mut_ptr() as u64);
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).is_ok()
}

/// Where loaded device programs are kept for the next start, when the host
/// has a bpffs at /sys/fs/bpf (systemd mounts one at boot).
const PIN_DIR: &str = "/sys/fs/bpf/stele";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The loaded program for `prog`. Loading runs the verifier (~0.4 ms here),
/// so a program is pinned under [`PIN_DIR`] once and reused by every later
/// container with the same device rules. The pin's name is only a hint: a
/// pinned program is used only if it is a device program whose instructions,
/// as the kernel holds them, are exactly `prog`'s; anything else (a name
/// collision, a planted pin) is loaded afresh. No cryptographic hash on this
/// path: its CPU-feature probing alone (cpuid traps in a VM) costs more than
/// the lookup.
fn load_cached(prog: &[Insn]) -> Result<OwnedFd> {
    use std::hash::{Hash, Hasher};
    let code: Vec<u8> = prog.iter().flat_map(|i| i.bytes()).collect();
    let mut h = std::hash::DefaultHasher::new();
    code.hash(&mut h);
    let pin = format!("{PIN_DIR}/dev-{:016x}-{}", h.finish(), prog.len());
    if let Some(fd) = obj_get(&pin).filter(|fd| holds_exactly(fd, &code)) {
        return Ok(fd);
    }
    let fd = load(prog)?;
    if let Err(e) = pin_at(&fd, &pin) {
        crate::debug!("device filter not cached at {pin}: {e}");
    }
    Ok(fd)
}

fn c_path(p: &str) -> std::ffi::CString {
    std::ffi::CString::new(p).unwrap_or_default()
}

fn obj_get(path: &str) -> Option<OwnedFd> {
    let c = c_path(path);
    let mut attr = [0u8; 128];
    put_u64(&mut attr, 0, c.as_ptr() as u64);
    // SAFETY: a new fd from the kernel.
    bpf(BPF_OBJ_GET, &mut attr).ok().map(|fd| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Is `fd` a device program whose (translated) instructions are `code`?
fn holds_exactly(fd: &OwnedFd, code: &[u8]) -> bool {
    // struct bpf_prog_info: type u32 @0, xlated_prog_len u32 @20,
    // xlated_prog_insns u64 @32.
    let mut info = [0u8; 40];
    let mut insns = vec![0u8; code.len()];
    put_u32(&mut info, 20, insns.len() as u32);
    put_u64(&mut info, 32, insns.as_mut_ptr() as u64);
    prog_info(fd, &mut info)
        && get_u32(&info, 0) == BPF_PROG_TYPE_CGROUP_DEVICE
        && get_u32(&info, 20) as usize == code.len()
        && insns == code
}

/// Pin `fd` at `path`, making the 0700 directory on a bpffs first. Two
/// starts racing to pin the same program: one wins, the other gets EEXIST.
fn pin_at(fd: &OwnedFd, path: &str) -> std::io::Result<()> {
    let st = nix::sys::statfs::statfs("/sys/fs/bpf").map_err(std::io::Error::from)?;
    if st.filesystem_type().0 as i64 != BPF_FS_MAGIC {
        return Err(std::io::Error::other("/sys/fs/bpf is not a bpffs"));
    }
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(PIN_DIR) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let c = c_path(path);
    let mut attr = [0u8; 128];
    put_u64(&mut attr, 0, c.as_ptr() as u64);
    put_u32(&mut attr, 8, fd.as_raw_fd() as u32);
    bpf(BPF_OBJ_PIN, &mut attr).map(|_| ())
}

fn load(prog: &[Insn]) -> Result<OwnedFd> {
    // Without a verifier log first: formatting the log is a third of the
    // load's cost. Only a failed load is repeated with the log, for the error.
    load_with_log(prog, false).or_else(|_| load_with_log(prog, true))
}

fn load_with_log(prog: &[Insn], with_log: bool) -> Result<OwnedFd> {
    let code: Vec<u8> = prog.iter().flat_map(|i| i.bytes()).collect();
    let license = b"Apache\0";
    let mut log = if with_log { vec![0u8; 16 * 1024] } else { Vec::new() };
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE);
    put_u32(&mut attr, 4, prog.len() as u32);
    put_u64(&mut attr, 8, code.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    if with_log {
        put_u32(&mut attr, 24, 1); // log_level
        put_u32(&mut attr, 28, log.len() as u32);
        put_u64(&mut attr, 32, log.as_mut_ptr() as u64);
    }
    attr[48..56].copy_from_slice(b"stele_dv");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: the kernel returned a new fd that we own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&log[..end]);
            let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
            Err(e).with_ctx(|| format!("load the cgroup device filter (bpf BPF_PROG_LOAD){}", if last.is_empty() { String::new() } else { format!(" [{last}]") }))
        }
    }
}

/// Ids of the device programs attached to the cgroup now.
fn attached(cg: &OwnedFd) -> Vec<u32> {
    let mut ids = [0u32; 64];
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, cg.as_raw_fd() as u32);
    put_u32(&mut attr, 4, BPF_CGROUP_DEVICE);
    put_u64(&mut attr, 16, ids.as_mut_ptr() as u64);
    put_u32(&mut attr, 24, ids.len() as u32);
    if bpf(BPF_PROG_QUERY, &mut attr).is_err() {
        return Vec::new();
    }
    let n = get_u32(&attr, 24) as usize;
    ids[..n.min(ids.len())].to_vec()
}

/// How many device programs are attached to the cgroup (tests).
#[cfg(test)]
pub fn attached_count(leaf: &Path) -> usize {
    attached_ids(leaf).len()
}

/// Ids of the device programs attached to the cgroup (tests).
#[cfg(test)]
pub fn attached_ids(leaf: &Path) -> Vec<u32> {
    std::fs::File::open(leaf).map(|f| attached(&OwnedFd::from(f))).unwrap_or_default()
}

/// The id of the program pinned at `path` (tests).
#[cfg(test)]
pub fn pinned_id(path: &Path) -> Option<u32> {
    let fd = obj_get(path.to_str()?)?;
    let mut info = [0u8; 16];
    // struct bpf_prog_info: id u32 @4.
    prog_info(&fd, &mut info).then(|| get_u32(&info, 4))
}

/// Install the device rules on a v2 cgroup, replacing the programs attached before.
pub fn apply_device_rules(leaf: &Path, rules: &[DevRule]) -> Result<()> {
    let cg = OwnedFd::from(std::fs::File::open(leaf).with_ctx(|| format!("open {}", leaf.display()))?);
    let old = attached(&cg);
    let prog = load_cached(&compile(rules))?;
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, cg.as_raw_fd() as u32);
    put_u32(&mut attr, 4, prog.as_raw_fd() as u32);
    put_u32(&mut attr, 8, BPF_CGROUP_DEVICE);
    put_u32(&mut attr, 12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attr).with_ctx(|| format!("attach the device filter to {}", leaf.display()))?;
    for id in old {
        let mut a = [0u8; 128];
        put_u32(&mut a, 0, id);
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut a) else { continue };
        // SAFETY: a new fd from the kernel.
        let old_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut d = [0u8; 128];
        put_u32(&mut d, 0, cg.as_raw_fd() as u32);
        put_u32(&mut d, 4, old_fd.as_raw_fd() as u32);
        put_u32(&mut d, 8, BPF_CGROUP_DEVICE);
        if let Err(e) = bpf(BPF_PROG_DETACH, &mut d) {
            return Err(Error::os(format!("detach the old device filter from {}", leaf.display()), e.raw_os_error().unwrap_or(0)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, typ: char, major: Option<u32>, minor: Option<u32>, access: &str) -> DevRule {
        DevRule { allow, typ, major, minor, access: access.into() }
    }

    /// A tiny interpreter for the instructions `compile` emits.
    fn run(p: &[Insn], typ: i32, acc: i32, major: u32, minor: u32) -> i64 {
        let ctx = [((acc << 16) | typ) as u32, major, minor];
        let mut r = [0i64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                0x61 => r[dst] = ctx[(i.off / 4) as usize] as i64,
                0xbf => r[dst] = r[src],
                0xb7 => r[dst] = i.imm as i64,
                0x57 => r[dst] &= i.imm as i64,
                0x77 => r[dst] = ((r[dst] as u64) >> i.imm) as i64,
                0x55 => {
                    if r[dst] != i.imm as i64 {
                        pc += i.off as usize
                    }
                }
                0x15 => {
                    if r[dst] == i.imm as i64 {
                        pc += i.off as usize
                    }
                }
                0x95 => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn filter_semantics() {
        let rules = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(1), Some(9), "r"),
            rule(true, 'b', Some(8), None, "rw"),
            rule(false, 'b', Some(8), Some(1), "w"),
        ];
        let p = compile(&rules);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 9), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 9), 0);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 1), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 1);
        assert_eq!(run(&p, DEV_BLOCK, ACC_MKNOD, 8, 0), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 1), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 1), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 8, 0), 0);
        // allow-all at the end: everything passes, the rest is not emitted
        let p = compile(&[rule(false, 'a', None, None, "rwm"), rule(true, 'a', None, None, "rwm")]);
        assert_eq!(run(&p, DEV_BLOCK, ACC_WRITE, 3, 3), 1);
        assert_eq!(p.len(), 8);
    }
}
