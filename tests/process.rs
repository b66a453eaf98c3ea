//! The container process: env, cwd, user, umask, rlimits, capabilities,
//! no_new_privs, oom_score_adj, and which fds it gets.

#[macro_use]
mod common;

use common::*;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::OwnedFd;

/// Mask of capability numbers as /proc/PID/status prints it.
fn cap_mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1u64 << c)))
}

fn status_of(out: &str, key: &str) -> String {
    status_field(out, key).unwrap_or_else(|| panic!("{key} missing in {out}")).to_owned()
}

#[test]
fn env_is_exactly_the_config() {
    let t = Ctx::new("env");
    let mut b = t.sh("env | sort");
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY=", "HOME=/custom"]);
    b.save();
    let out = t.run(&b);
    out.ok();
    // sh adds PWD and SHLVL itself; nothing from the caller's environment leaks.
    let got: BTreeSet<String> = out.lines().into_iter().collect();
    let want: BTreeSet<String> = ["EMPTY=", "FOO=bar baz", "HOME=/custom", "PATH=/bin", "PWD=/", "SHLVL=1"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(got, want, "{out}");
}

#[test]
fn home_defaults_from_passwd() {
    // runc sets HOME from the rootfs's /etc/passwd when the config has none.
    let t = Ctx::new("home");
    let mut b = t.sh("echo $HOME");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.save();
    let out = t.run(&b);
    out.ok();
    assert_eq!(out.stdout, "/home/stele\n");
    let out = t.run(&t.sh("echo $HOME"));
    assert_eq!(out.stdout, "/root\n");
}

#[test]
fn cwd_is_honoured() {
    let t = Ctx::new("cwd");
    let mut b = t.sh("pwd; echo $PWD");
    b.mkdirs(&["/work/dir"]);
    b.config["process"]["cwd"] = json!("/work/dir");
    b.save();
    let out = t.run(&b);
    out.ok();
    assert_eq!(out.stdout, "/work/dir\n/work/dir\n");
}

#[test]
fn user_uid_gid_additional_gids() {
    let t = Ctx::new("user");
    let mut b = t.sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status; id");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 65534]});
    b.save();
    let out = t.run(&b);
    out.ok();
    assert_eq!(status_of(&out.stdout, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_of(&out.stdout, "Gid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_of(&out.stdout, "Groups"), "5 65534");
    assert!(out.stdout.contains("uid=1000(stele) gid=1000(stele) groups=5(tty),65534(nogroup)"), "{out}");
}

#[test]
fn root_user_has_no_supplementary_groups() {
    let t = Ctx::new("root-groups");
    let out = t.run_sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status");
    assert_eq!(status_of(&out, "Uid"), "0\t0\t0\t0");
    assert_eq!(status_of(&out, "Gid"), "0\t0\t0\t0");
    assert_eq!(status_of(&out, "Groups"), "", "the caller's groups must not leak");
}

#[test]
fn umask_is_honoured() {
    let t = Ctx::new("umask");
    let mut b = t.sh("umask; touch /tmp/f; stat -c %a /tmp/f");
    b.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}));
    b.config["process"]["user"]["umask"] = json!(0o027);
    b.save();
    let out = t.run(&b);
    out.ok();
    assert_eq!(out.stdout, "0027\n640\n");
}

#[test]
fn umask_defaults_to_022() {
    let t = Ctx::new("umask-default");
    assert_eq!(t.run_sh("umask"), "0022\n");
}

#[test]
fn rlimit_nofile() {
    let t = Ctx::new("rlimits");
    let mut b = t.sh("grep -E '^Max (open files|processes|core file size)' /proc/self/limits; ulimit -n");
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    b.save();
    let out = t.run(&b);
    out.ok();
    let line = |prefix: &str| -> Vec<String> {
        out.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing: {out}"))[prefix.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(line("Max open files"), ["512", "1000", "files"]);
    assert_eq!(line("Max core file size"), ["0", "0", "bytes"]);
    assert!(out.stdout.ends_with("512\n"));
}

#[test]
fn rlimit_above_hard_limit_fails_cleanly() {
    // CAP_SYS_RESOURCE is not in this host's bounding set; raising the hard
    // NOFILE limit above the caller's fails: the runtime must report it.
    let t = Ctx::new("rlimit-eperm");
    let mut b = t.sh("echo should-not-run");
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1u64 << 40, "hard": 1u64 << 40}]);
    b.save();
    let id = t.id("rlimit");
    let out = t.rt(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    out.fails();
    assert!(!out.stdout.contains("should-not-run"));
    t.rt(&["delete", "--force", &id]);
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn capabilities_root() {
    // For uid 0, execve gives permitted = effective = bounding | inheritable.
    let t = Ctx::new("caps-root");
    let mut b = t.sh("grep -E '^Cap' /proc/self/status");
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"]
    });
    b.save();
    let out = t.run(&b);
    out.ok();
    let s = &out.stdout;
    assert_eq!(status_of(s, "CapBnd"), cap_mask(&[0, 5, 13]));
    assert_eq!(status_of(s, "CapPrm"), cap_mask(&[0, 5, 13]));
    assert_eq!(status_of(s, "CapEff"), cap_mask(&[0, 5, 13]));
    assert_eq!(status_of(s, "CapInh"), cap_mask(&[5]));
    assert_eq!(status_of(s, "CapAmb"), cap_mask(&[5]));
}

#[test]
fn capabilities_non_root_ambient() {
    // For a non-root user only ambient capabilities survive execve.
    let t = Ctx::new("caps-user");
    let mut b = t.sh("grep -E '^Cap' /proc/self/status");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    b.save();
    let out = t.run(&b);
    out.ok();
    let s = &out.stdout;
    assert_eq!(status_of(s, "CapBnd"), cap_mask(&[5, 10, 29]));
    assert_eq!(status_of(s, "CapInh"), cap_mask(&[5, 10]));
    assert_eq!(status_of(s, "CapAmb"), cap_mask(&[10]));
    assert_eq!(status_of(s, "CapPrm"), cap_mask(&[10]));
    assert_eq!(status_of(s, "CapEff"), cap_mask(&[10]));
}

#[test]
fn missing_capabilities_means_none() {
    let t = Ctx::new("caps-none");
    let zero = "0000000000000000";
    for caps in [None, Some(json!({}))] {
        let mut b = t.sh("grep -E '^Cap' /proc/self/status");
        match caps {
            None => {
                b.config["process"].as_object_mut().unwrap().remove("capabilities");
            }
            Some(c) => b.config["process"]["capabilities"] = c,
        }
        b.save();
        let out = t.run(&b);
        out.ok();
        for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(status_of(&out.stdout, key), zero, "{key} with capabilities {:?}", b.config["process"].get("capabilities"));
        }
    }
}

#[test]
fn capabilities_take_effect() {
    // Without CAP_CHOWN, root cannot chown a file it does not own... it owns it,
    // so use CAP_DAC_OVERRIDE: reading a 000 file needs it.
    let t = Ctx::new("caps-effect");
    let mut b = t.sh("cat /etc/secret && echo read-ok || echo read-denied");
    std::fs::write(b.rootfs().join("etc/secret"), "s3cret\n").unwrap();
    std::fs::set_permissions(b.rootfs().join("etc/secret"), std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    std::os::unix::fs::chown(b.rootfs().join("etc/secret"), Some(1000), Some(1000)).unwrap();
    b.save();
    let out = t.run(&b);
    out.ok();
    assert_eq!(out.stdout, "read-denied\n", "{out}");

    let caps = json!(["CAP_DAC_OVERRIDE"]);
    b.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    b.save();
    let out = t.run(&b);
    out.ok();
    assert_eq!(out.stdout, "s3cret\nread-ok\n", "{out}");
}

#[test]
fn no_new_privileges() {
    let t = Ctx::new("nnp");
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = t.sh("grep NoNewPrivs /proc/self/status");
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.save();
        let out = t.run(&b);
        out.ok();
        assert_eq!(status_of(&out.stdout, "NoNewPrivs"), want, "noNewPrivileges={nnp}");
    }
}

#[test]
fn oom_score_adj() {
    let t = Ctx::new("oom");
    let mut b = t.sh("cat /proc/self/oom_score_adj");
    b.config["process"]["oomScoreAdj"] = json!(500);
    b.save();
    let out = t.run(&b);
    out.ok();
    assert_eq!(out.stdout, "500\n");
}

fn temp_file_with(t: &Ctx, name: &str, content: &str) -> OwnedFd {
    let path = t.path(name);
    let mut f = File::create(&path).unwrap();
    f.write_all(content.as_bytes()).unwrap();
    drop(f);
    File::open(&path).unwrap().into()
}

fn fd_list(stdout: &str) -> Vec<u32> {
    let mut fds: Vec<u32> = stdout.split_whitespace().filter_map(|s| s.parse().ok()).collect();
    fds.sort();
    fds
}

#[test]
fn leaked_fds_do_not_reach_container() {
    let t = Ctx::new("fd-leak");
    let b = t.sh("ls /proc/self/fd");
    let id = t.id("fdleak");
    let mut cmd = t.cmd(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    with_fds(
        &mut cmd,
        vec![
            (3, temp_file_with(&t, "leak3", "three")),
            (4, temp_file_with(&t, "leak4", "four")),
            (7, temp_file_with(&t, "leak7", "seven")),
        ],
    );
    let out = t.exec(cmd);
    out.ok();
    // 0 1 2, plus the directory fd ls itself opens (3).
    assert_eq!(fd_list(&out.stdout), [0, 1, 2, 3], "{out}");
}

#[test]
fn leaked_fds_do_not_reach_created_container() {
    // Same through create/start: the shim leaks a socket as fd 3 into both.
    let t = Ctx::new("fd-leak-create");
    let b = t.sh("ls /proc/self/fd");
    let id = t.id("fdleakc");
    let mut cmd = t.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    with_fds(&mut cmd, vec![(3, temp_file_with(&t, "leak3", "three"))]);
    let created = t.exec(cmd);
    created.ok();
    let mut cmd = t.cmd(&["start", &id]);
    with_fds(&mut cmd, vec![(3, temp_file_with(&t, "leak3b", "three")), (5, temp_file_with(&t, "leak5", "five"))]);
    t.exec(cmd).ok();
    t.wait_status(&id, "stopped");
    assert_eq!(fd_list(&created.reread_stdout()), [0, 1, 2, 3]);
}

#[test]
fn preserve_fds_passes_exactly_n() {
    let t = Ctx::new("preserve-fds");
    let b = t.sh("cat <&3; echo; cat <&4; echo; ls /proc/self/fd | tr '\\n' ' '");
    let id = t.id("pfds");
    let mut cmd = t.cmd(&["run", "--preserve-fds", "2", "--bundle", b.dir.to_str().unwrap(), &id]);
    with_fds(
        &mut cmd,
        vec![
            (3, temp_file_with(&t, "p3", "payload-three")),
            (4, temp_file_with(&t, "p4", "payload-four")),
            (5, temp_file_with(&t, "p5", "must-not-pass")),
        ],
    );
    let out = t.exec(cmd);
    out.ok();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("payload-three"));
    assert_eq!(lines.next(), Some("payload-four"));
    // 0-4, plus ls's own directory fd (5); a leaked fd 5 would push it to 6.
    assert_eq!(fd_list(lines.next().unwrap_or("")), [0, 1, 2, 3, 4, 5], "{out}");
}

#[test]
fn args_are_passed_verbatim() {
    let t = Ctx::new("args");
    let b = t.bundle(&["sh", "-c", "for a in \"$@\"; do echo \"[$a]\"; done", "argv0", "a b", "", "*", "$HOME"]);
    let out = t.run(&b);
    out.ok();
    assert_eq!(out.stdout, "[a b]\n[]\n[*]\n[$HOME]\n");
}

#[test]
fn exec_uses_path_from_config_env() {
    let t = Ctx::new("path-lookup");
    let mut b = t.bundle(&["echo", "found-via-path"]);
    b.config["process"]["env"] = json!(["PATH=/nonexistent:/bin"]);
    b.save();
    let out = t.run(&b);
    out.ok();
    assert_eq!(out.stdout, "found-via-path\n");
}

/// The uptime (CLOCK_BOOTTIME, which /proc/uptime shows through the time
/// namespace) in the first line of `out`, in seconds.
fn uptime_secs(out: &str) -> f64 {
    out.lines().next().and_then(|l| l.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no uptime in {out:?}"))
}

const YEAR: i64 = 365 * 24 * 3600;

/// A new time namespace with linux.timeOffsets: the container's process
/// sees its boottime shifted (the host's is not), and `exec` joins the same
/// namespace.
#[test]
fn time_namespace_with_offsets() {
    stele_only!();
    let t = Ctx::new("timens");
    let mut b = t.sh("cat /proc/uptime; readlink /proc/self/ns/time; exec sleep 30");
    b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": YEAR, "nanosecs": 0}, "monotonic": {"secs": 7 * 24 * 3600}});
    b.save();
    let id = t.id("timens");
    t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    let host_up = uptime_secs(&fs::read_to_string("/proc/uptime").unwrap());
    assert!(host_up < YEAR as f64, "host uptime {host_up}");
    let st = t.state(&id);
    let pid = st["pid"].as_i64().unwrap();
    common::wait_cmdline(pid as i32, "sleep\u{0}30\u{0}");
    let ns = fs::read_link(format!("/proc/{pid}/ns/time")).unwrap();
    assert_ne!(ns, fs::read_link("/proc/self/ns/time").unwrap(), "the container is in its own time namespace");
    let exec = t.rt(&["exec", &id, "cat", "/proc/uptime"]);
    exec.ok();
    let up = uptime_secs(&exec.stdout);
    assert!(up >= YEAR as f64 && up < YEAR as f64 + host_up + 60.0, "exec'd process uptime {up} (host {host_up})");
    // A second container joins that namespace by path.
    let mut joiner = t.sh("cat /proc/uptime");
    joiner.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time", "path": format!("/proc/{pid}/ns/time")}));
    joiner.save();
    let out = t.run(&joiner);
    out.ok();
    let up = uptime_secs(&out.stdout);
    assert!(up >= YEAR as f64, "joined container's uptime {up}");
    t.rt(&["kill", &id, "KILL"]).ok();
    t.wait_status(&id, "stopped");
    t.rt(&["delete", &id]).ok();
}


/// Field `n` (1-based, as proc(5) numbers them) of a /proc/PID/stat line.
fn stat_field(stat: &str, n: usize) -> String {
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split_whitespace().nth(n - 3).unwrap().to_string()
}

/// process.scheduler, process.ioPriority and linux.personality, seen from
/// inside the container.
#[test]
fn scheduler_io_priority_and_personality() {
    stele_only!(); // runc 1.1.5 (Debian's) predates process.scheduler and ioPriority
    let t = Ctx::new("procattr");
    let mut b = t.sh("cat /proc/self/stat; ionice; uname -m");
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    b.save();
    let out = t.run(&b);
    out.ok();
    let lines = out.lines();
    assert_eq!(stat_field(&lines[0], 19), "7", "nice: {out}");
    assert_eq!(stat_field(&lines[0], 41), "3", "policy SCHED_BATCH: {out}");
    assert!(lines[1].contains("best-effort") && lines[1].contains('6'), "ionice: {out}");
    assert!(matches!(lines[2].as_str(), "i686" | "i386"), "uname -m under LINUX32: {out}");
}


/// linux.memoryPolicy: the container's memory is bound to the nodes asked
/// for (numa_maps shows each mapping's policy).
#[test]
fn memory_policy() {
    stele_only!(); // runc 1.1.5 predates linux.memoryPolicy
    let t = Ctx::new("mempolicy");
    let mut b = t.sh("cat /proc/self/numa_maps");
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    b.save();
    let out = t.run(&b);
    out.ok();
    assert!(out.stdout.lines().any(|l| l.contains(" bind:0 ")), "{out}");
}

/// process.execCPUAffinity (runc 1.2): an exec'd process ends on `final`
/// once in the container's cgroup; the init is not affected; a list the
/// kernel refuses is an error naming the field, and nothing ran.
#[test]
fn exec_cpu_affinity() {
    stele_only!();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let t = Ctx::new("exec-affinity");
    let b = t.sh("exec sleep 30");
    let id = t.id("aff");
    t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    let last = (cpus - 1).to_string();
    let process = |aff: Value| {
        let p = t.path(&format!("process-{}.json", aff["final"].as_str().unwrap_or("")));
        let v = json!({"args": ["sh", "-c", "grep Cpus_allowed_list /proc/self/status; echo ran"], "cwd": "/",
                       "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"], "execCPUAffinity": aff});
        fs::write(&p, v.to_string()).unwrap();
        p
    };
    let p = process(json!({"initial": "0", "final": last}));
    let o = t.rt(&["exec", "--process", p.to_str().unwrap(), &id]);
    o.ok();
    assert_eq!(o.lines()[0], format!("Cpus_allowed_list:\t{last}"), "{o}");
    let pid = t.state(&id)["pid"].as_i64().unwrap();
    let init = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let all = if cpus == 1 { "0".to_string() } else { format!("0-{last}") };
    assert_eq!(status_field(&init, "Cpus_allowed_list"), Some(all.as_str()), "the init keeps every CPU");
    // a CPU this machine does not have
    let p = process(json!({"final": "1000"}));
    let o = t.rt(&["exec", "--process", p.to_str().unwrap(), &id]);
    o.fails();
    o.stderr_has("process.execCPUAffinity.final");
    assert!(!o.stdout.contains("ran"), "{o}");
    t.rt(&["delete", "-f", &id]).ok();
}
