//! `stele run --image host -- CMD`: each option, with its effect checked
//! from inside the job, and nothing left behind afterwards.
mod common;
mod sandbox_util;

use common::{status_field, Ctx};
use sandbox_util::*;
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn root_is_read_only_and_binds_behave() {
    let ctx = Ctx::new("sb-binds");
    let rw = ctx.path("rw");
    let ro = ctx.path("ro");
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("seen"), "from-host").unwrap();
    let out = host_ok(
        &ctx,
        &["--bind", &format!("{}:/mnt", rw.display()), "--bind", &format!("{}:/opt:ro", ro.display())],
        "{ echo x > /etc/stele-sb; } 2>&1 || echo root-refused; \
         echo written > /mnt/new && echo rw-ok; \
         cat /opt/seen; echo; { echo x > /opt/x; } 2>&1 || echo ro-refused; \
         touch /tmp/t && echo tmp-ok",
    );
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("root-refused") && out.contains("rw-ok") && out.contains("from-host"), "{out}");
    assert!(out.contains("ro-refused") && out.contains("tmp-ok"), "{out}");
    assert_eq!(std::fs::read_to_string(rw.join("new")).unwrap(), "written\n");
    assert!(!ro.join("x").exists());
    assert!(!std::path::Path::new("/etc/stele-sb").exists());
}

#[test]
fn bad_bind_and_net_are_refused() {
    let ctx = Ctx::new("sb-bad");
    let (out, _) = sb(&ctx, &["--image", "host", "--bind", "/nonexistent-x:/mnt"], "true");
    out.fails().stderr_has("--bind");
    let (out, _) = sb(&ctx, &["--image", "host", "--net", "bridge"], "true");
    out.fails().stderr_has("--net");
}

#[test]
fn network_is_loopback_only_and_up() {
    let ctx = Ctx::new("sb-net");
    let out = host_ok(
        &ctx,
        &[],
        "cat /proc/net/dev; busybox nc -l -p 5555 > /tmp/got & sleep 0.3; \
         echo ping | busybox nc 127.0.0.1 5555; wait; echo got=$(cat /tmp/got)",
    );
    let ifaces: Vec<&str> = out.lines().filter_map(|l| l.split_once(':').map(|(a, _)| a.trim())).filter(|s| !s.contains('|')).collect();
    assert_eq!(ifaces, vec!["lo"], "{out}");
    assert!(out.contains("got=ping"), "{out}");
    // --net host: the host's interfaces
    let host_ifaces = std::fs::read_to_string("/proc/net/dev").unwrap();
    let out = host_ok(&ctx, &["--net", "host"], "cat /proc/net/dev");
    assert_eq!(out.lines().count(), host_ifaces.lines().count(), "{out}");
}

#[test]
fn environment_is_clean_by_default() {
    let ctx = Ctx::new("sb-env");
    let (out, id) = sb_argv(&ctx, &["--image", "host"], &["env"]);
    out.ok();
    assert_clean(&ctx, &id);
    let mut keys: Vec<&str> = out.stdout.lines().map(|l| l.split('=').next().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, vec!["HOME", "PATH", "TERM"], "{out}");
    assert!(out.stdout.contains("TERM=dumb") && out.stdout.contains("HOME=/root"), "{out}");
}

#[test]
fn env_and_env_file() {
    let ctx = Ctx::new("sb-envfile");
    let f = ctx.path("vars");
    std::fs::write(&f, "# comment\nA=1\n\nB=two words\nC=from-file\n").unwrap();
    let (out, _) = sb_argv(&ctx, &["--image", "host", "--env-file", f.to_str().unwrap(), "--env", "C=from-flag", "-e", "D=4"], &["env"]);
    out.ok();
    for want in ["A=1", "B=two words", "C=from-flag", "D=4"] {
        assert!(out.lines().iter().any(|l| l == want), "{want}: {out}");
    }
    assert!(!out.stdout.contains("from-file"), "{out}");
}

#[test]
fn user_hostname_workdir() {
    let ctx = Ctx::new("sb-user");
    let out = host_ok(&ctx, &["--user", "1234:2345", "--hostname", "job-7", "--workdir", "/tmp"], "id -u; id -g; hostname; pwd");
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["1234", "2345", "job-7", "/tmp"], "{out}");
    let out = host_ok(&ctx, &[], "hostname; pwd; id -u");
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["stele-sandbox", "/", "0"], "{out}");
}

#[test]
fn caps_add_and_drop_show_in_capeff() {
    let ctx = Ctx::new("sb-caps");
    const CHOWN: u64 = 1 << 0;
    const NET_RAW: u64 = 1 << 13;
    const SYS_ADMIN: u64 = 1 << 21;
    let base = cap_eff(&host_ok(&ctx, &[], "cat /proc/self/status"));
    assert!(base & CHOWN != 0 && base & NET_RAW != 0 && base & SYS_ADMIN == 0, "{base:x}");
    let changed = cap_eff(&host_ok(&ctx, &["--cap-drop", "chown", "--cap-drop", "CAP_NET_RAW", "--cap-add", "sys_admin"], "cat /proc/self/status"));
    assert_eq!(changed, (base & !CHOWN & !NET_RAW) | SYS_ADMIN, "{changed:x}");
    let none = cap_eff(&host_ok(&ctx, &["--cap-drop", "all"], "cat /proc/self/status"));
    assert_eq!(none, 0);
}

#[test]
fn seccomp_default_and_unconfined() {
    let ctx = Ctx::new("sb-seccomp");
    let st = host_ok(&ctx, &[], "cat /proc/self/status");
    assert_eq!(status_field(&st, "Seccomp"), Some("2"));
    assert_eq!(status_field(&st, "NoNewPrivs"), Some("1"));
    let st = host_ok(&ctx, &["--seccomp", "unconfined"], "cat /proc/self/status");
    assert_eq!(status_field(&st, "Seccomp"), Some("0"));
}

#[test]
fn tmpfs_with_size() {
    let ctx = Ctx::new("sb-tmpfs");
    let out = host_ok(
        &ctx,
        &["--tmpfs", "/mnt:size=1m"],
        "grep ' /mnt ' /proc/mounts; head -c 2000000 /dev/zero > /mnt/big 2>/dev/null || echo full; du -k /mnt/big | cut -f1",
    );
    assert!(out.contains("tmpfs /mnt tmpfs") && out.contains("size=1024k"), "{out}");
    assert!(out.contains("full"), "{out}");
}

#[test]
fn exit_status_and_json_status() {
    let ctx = Ctx::new("sb-exit");
    let js = ctx.path("status.json");
    let (out, id) = sb(&ctx, &["--image", "host", "--json-status", js.to_str().unwrap()], "echo out; echo err >&2; exit 3");
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    assert_clean(&ctx, &id);
    let v = json_status(&js);
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["signal"], serde_json::Value::Null);
    assert_eq!(v["oom_killed"], false);
    assert_eq!(v["timed_out"], false);
    assert!(v["wall_time_ms"].as_u64().is_some());
    assert!(v["cpu_time_ms"].as_u64().is_some(), "{v}");
    assert!(v["peak_memory_bytes"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn stdin_only_with_i() {
    let ctx = Ctx::new("sb-stdin");
    let run = |extra: &[&str]| {
        let mut c = Command::new(common::runtime());
        c.arg("--root").arg(ctx.root()).args(["run", "--image", "host"]).args(extra).args(["--", "cat"]);
        let mut ch = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut i = ch.stdin.take().unwrap();
        let _ = i.write_all(b"hello stdin\n");
        drop(i);
        let o = ch.wait_with_output().unwrap();
        assert!(o.status.success(), "{o:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(run(&["-i"]), "hello stdin\n");
    assert_eq!(run(&[]), "");
}

#[test]
fn cpus_limit_caps_cpu_time() {
    let ctx = Ctx::new("sb-cpus");
    let js = ctx.path("s.json");
    let (out, _) = sb(&ctx, &["--image", "host", "--cpus", "0.5", "--json-status", js.to_str().unwrap()], "timeout 2 sh -c 'while :; do :; done'; true");
    out.ok();
    let v = json_status(&js);
    let cpu = v["cpu_time_ms"].as_u64().unwrap();
    assert!((500..1500).contains(&cpu), "2 s of busy loop at 0.5 CPU used {cpu} ms: {v}");
}
