//! fd hygiene: only stdio (and --preserve-fds) reach the container, however
//! many fds the caller leaks; every fd the runtime itself opens is CLOEXEC.
mod security_util;
use security_util::*;

#[test]
fn leaked_caller_fds_do_not_reach_the_container() {
    need_root!();
    let host = TempDir::new("fdhost");
    let rt = Rt::new("fds");
    let mut b = Bundle::new("fds", &["true"]);
    b.sh("ls -l /proc/self/fd; echo END");
    let id = rt.id("c");
    let mut cmd = rt.cmd();
    cmd.args(["run", "-b", b.path().to_str().unwrap(), &id]);
    leak_fds(&mut cmd, host.path(), vec![3, 4, 5, 9, 17]);
    let o = exec_timeout(cmd, T);
    assert!(o.ok(), "{o:?}");
    let fds = parse_fd_listing(&o.stdout);
    let nums: Vec<u32> = fds.iter().map(|f| f.0).collect();
    assert!(nums.starts_with(&[0, 1, 2]), "{fds:?}");
    let extra: Vec<_> = fds.iter().filter(|f| f.0 > 2).collect();
    // at most ls's own directory fd (its link is gone by the time ls reads it)
    assert!(extra.len() <= 1, "leaked fds: {fds:?}");
    for (_, t) in &extra {
        assert!(!t.contains(host.path().to_str().unwrap()), "leaked host dir: {fds:?}");
    }
}

#[test]
fn preserve_fds_keeps_exactly_those() {
    need_root!();
    let host = TempDir::new("fdhostp");
    let rt = Rt::new("fdsp");
    let mut b = Bundle::new("fdsp", &["true"]);
    b.sh("ls -l /proc/self/fd; echo END");
    let id = rt.id("c");
    let mut cmd = rt.cmd();
    cmd.args(["run", "--preserve-fds", "2", "-b", b.path().to_str().unwrap(), &id]);
    leak_fds(&mut cmd, host.path(), vec![3, 4, 5, 6, 7]);
    let o = exec_timeout(cmd, T);
    assert!(o.ok(), "{o:?}");
    let fds = parse_fd_listing(&o.stdout);
    let hostp = host.path().to_str().unwrap();
    let has = |n: u32| fds.iter().any(|(f, t)| *f == n && t.contains(hostp));
    assert!(has(3) && has(4), "preserved fds missing: {fds:?}");
    for n in [5, 6, 7] {
        assert!(!has(n), "fd {n} leaked: {fds:?}");
    }
    assert!(fds.iter().filter(|f| f.0 > 4).count() <= 1, "{fds:?}");
}

#[test]
fn runtime_fds_in_a_created_init_are_cloexec() {
    need_root!();
    let rt = Rt::new("fdsc");
    let b = Bundle::new("fdsc", &["true"]);
    let id = rt.id("c");
    let o = rt.create(&b, &id);
    assert!(o.ok(), "{o:?}");
    let pid = rt.pid(&id).unwrap();
    // The init is blocked before exec: every fd above stdio is one the
    // runtime opened, and each must be close-on-exec.
    let mut checked = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap().flatten() {
        let n: u32 = e.file_name().to_string_lossy().parse().unwrap();
        if n <= 2 {
            continue;
        }
        let info = std::fs::read_to_string(e.path()).unwrap_or_default();
        let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).map(|v| u32::from_str_radix(v.trim(), 8).unwrap());
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{n}")).unwrap_or_default();
        if let Some(f) = flags {
            assert!(f & libc::O_CLOEXEC as u32 != 0, "init fd {n} ({}) is not CLOEXEC: flags {f:o}", target.display());
            checked += 1;
        }
    }
    eprintln!("checked {checked} runtime fds in the created init");
    rt.delete(&id);
}
