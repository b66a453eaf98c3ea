//! CVE-2024-21626: a leaked host directory fd and `cwd=/proc/self/fd/N`.
//! The container must fail to start or land inside its root, and it must
//! see no fd beyond stdio.
mod security_util;
use security_util::*;

#[test]
fn cwd_proc_self_fd_with_leaked_host_dir() {
    need_root!();
    let host = TempDir::new("21626host");
    std::fs::write(host.path().join("HOSTFILE"), "host\n").unwrap();
    let rt = Rt::new("21626");
    let mut b = Bundle::new("21626", &["true"]);
    b.sh("pwd; ls; ls -l /proc/self/fd; cat ../../../../HOSTFILE 2>&1; echo END");
    for n in 3..=12 {
        b.config["process"]["cwd"] = serde_json::json!(format!("/proc/self/fd/{n}"));
        b.write();
        let id = rt.id(&format!("fd{n}"));
        let mut cmd = rt.cmd();
        cmd.args(["run", "-b", b.path().to_str().unwrap(), &id]);
        // the caller leaks the host dir as fds 3..=8 (not CLOEXEC)
        leak_fds(&mut cmd, host.path(), (3..=8).collect());
        let o = exec_timeout(cmd, T);
        eprintln!("N={n}: {o:?}");
        assert!(!o.timed_out);
        assert!(!o.stdout.lines().any(|l| l == "HOSTFILE" || l == "host"), "N={n}: host dir reached: {o:?}");
        if o.ok() {
            // landed inside the root: pwd is a path of the container, and
            // only stdio (+ ls's own directory fd) is open
            let pwd = o.stdout.lines().next().unwrap_or("");
            assert!(pwd.starts_with('/') && !pwd.contains("unreachable"), "N={n}: {pwd}");
            let fds = parse_fd_listing(&o.stdout);
            let extra: Vec<_> = fds.iter().filter(|(f, _)| *f > 2).collect();
            assert!(extra.len() <= 1, "N={n}: fds leaked: {fds:?}");
            for (_, t) in extra {
                assert!(!t.contains(host.path().to_str().unwrap()), "N={n}: leaked {t}");
            }
        } else {
            assert!(o.stderr.contains("cwd"), "N={n}: error should name process.cwd: {o:?}");
        }
        assert!(rt.state(&id).is_none() || o.ok(), "N={n}: refused container left state");
    }
    assert_eq!(ls(host.path()), vec!["HOSTFILE".to_string()]);
}

#[test]
fn cwd_proc_self_fd_without_leaks() {
    // the init's own fds (sync socket, state dir, root fd ...) must not
    // serve as a way out either
    need_root!();
    let rt = Rt::new("21626b");
    let mut b = Bundle::new("21626b", &["true"]);
    b.sh("pwd; ls /; echo END");
    for n in 3..=12 {
        b.config["process"]["cwd"] = serde_json::json!(format!("/proc/self/fd/{n}"));
        b.write();
        let id = rt.id(&format!("n{n}"));
        let o = rt.run(&b, &id);
        assert!(!o.timed_out);
        if o.ok() {
            let pwd = o.stdout.lines().next().unwrap_or("");
            assert!(pwd.starts_with('/') && !pwd.contains("unreachable"), "N={n}: {o:?}");
            // `ls /` there would list the state root, named by the container's id.
            assert!(!o.stdout.contains(&id), "N={n}: state root reached {o:?}");
        } else {
            assert!(o.stderr.contains("cwd"), "N={n}: {o:?}");
        }
    }
}
