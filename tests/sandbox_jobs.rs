//! The sandbox behaves like the process it wraps: limits, timeout, signals,
//! exit status, a terminal; and a killed stele leaves nothing running.
mod common;
mod sandbox_util;

use common::Ctx;
use sandbox_util::*;
use std::time::{Duration, Instant};

fn kill(pid: u32, sig: i32) {
    // SAFETY: plain kill(2).
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

fn init_pid(ctx: &Ctx, id: &str) -> i32 {
    let t = Instant::now();
    loop {
        let st = ctx.rt(&["state", id]);
        if st.code == 0 {
            let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
            if let Some(p) = v["pid"].as_i64().filter(|p| *p > 0) {
                return p as i32;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no state for {id}: {st}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.contains(") Z "),
    }
}

#[test]
fn memory_limit_oom_kills() {
    let ctx = Ctx::new("sb-oom");
    let js = ctx.path("s.json");
    let (out, id) = sb_argv(&ctx, &["--image", "host", "--memory", "64m", "--json-status", js.to_str().unwrap()], &["tail", "/dev/zero"]);
    assert_eq!(out.code, 137, "{out}");
    assert_clean(&ctx, &id);
    let v = json_status(&js);
    assert_eq!(v["oom_killed"], true, "{v}");
    assert_eq!(v["signal"], 9, "{v}");
    assert!(v["peak_memory_bytes"].as_u64().unwrap() >= 32 << 20, "{v}");
}

#[test]
fn pids_limit_bounds_forks() {
    let ctx = Ctx::new("sb-pids");
    let (out, id) = sb(&ctx, &["--image", "host", "--pids", "16"], "i=0; while [ $i -lt 200 ]; do echo $i; sleep 5 & i=$((i+1)); done");
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("fork"), "{out}");
    let last: u32 = out.lines().last().unwrap().parse().unwrap();
    assert!(last < 16, "started {last} processes under --pids 16");
    assert_clean(&ctx, &id);
}

#[test]
fn fork_bomb_is_bounded_and_timed_out() {
    let ctx = Ctx::new("sb-bomb");
    let t = Instant::now();
    // The bomb runs in a subshell: the job's own shell forks only before it
    // (dash forks a background pipeline's elements itself, and its second
    // fork could find the pids limit already reached by the first one's
    // offspring, ending the job with "Cannot fork" before the timeout).
    let (out, id) = sb(&ctx, &["--image", "host", "--pids", "32", "--timeout", "2s"], "sleep 60 & (b() { b | b & }; b) 2>/dev/null & wait");
    assert_eq!(out.code, 124, "{out}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_clean(&ctx, &id);
}

#[test]
fn timeout_exits_124_on_time() {
    let ctx = Ctx::new("sb-timeout");
    let js = ctx.path("s.json");
    let t = Instant::now();
    let (out, id) = sb(&ctx, &["--image", "host", "--timeout", "1s", "--json-status", js.to_str().unwrap()], "sleep 30 & sleep 30");
    let took = t.elapsed();
    assert_eq!(out.code, 124, "{out}");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(2), "took {took:?}");
    out.stderr_has("--timeout");
    assert_clean(&ctx, &id);
    let v = json_status(&js);
    assert_eq!(v["timed_out"], true);
    assert_eq!(v["exit_code"], 124);
}

#[test]
fn sigint_reaches_the_jobs_trap() {
    let ctx = Ctx::new("sb-sigint");
    let (mut c, id, outp) = spawn_sb(&ctx, &["--image", "host"], "trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.05; done", "int");
    wait_for_text(&outp, "ready", Duration::from_secs(10));
    kill(c.id(), libc::SIGINT);
    assert_eq!(wait_child(&mut c, Duration::from_secs(10)), 7);
    assert!(std::fs::read_to_string(&outp).unwrap().contains("got-int"));
    assert_clean(&ctx, &id);
}

#[test]
fn other_signals_are_forwarded() {
    let ctx = Ctx::new("sb-sigs");
    let script = "for s in TERM HUP QUIT USR1; do trap \"echo got-$s\" $s; done; trap 'echo got-USR2; exit 5' USR2; \
                  echo ready; while :; do sleep 0.05; done";
    let (mut c, id, outp) = spawn_sb(&ctx, &["--image", "host"], script, "sigs");
    wait_for_text(&outp, "ready", Duration::from_secs(10));
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGHUP, "HUP"), (libc::SIGQUIT, "QUIT"), (libc::SIGUSR1, "USR1")] {
        kill(c.id(), sig);
        wait_for_text(&outp, &format!("got-{name}"), Duration::from_secs(10));
    }
    kill(c.id(), libc::SIGUSR2);
    assert_eq!(wait_child(&mut c, Duration::from_secs(10)), 5);
    assert_clean(&ctx, &id);
}

#[test]
fn job_killed_by_signal_gives_128_plus_n() {
    let ctx = Ctx::new("sb-sig9");
    let js = ctx.path("s.json");
    let (mut c, id, outp) = spawn_sb(&ctx, &["--image", "host", "--json-status", js.to_str().unwrap()], "echo ready; sleep 60", "k9");
    wait_for_text(&outp, "ready", Duration::from_secs(10));
    let pid = init_pid(&ctx, &id);
    kill(pid as u32, libc::SIGKILL);
    assert_eq!(wait_child(&mut c, Duration::from_secs(10)), 137);
    let v = json_status(&js);
    assert_eq!(v["signal"], 9);
    assert_eq!(v["oom_killed"], false);
    assert_clean(&ctx, &id);
}

#[test]
fn killed_stele_leaves_nothing_running_and_next_run_reaps() {
    let ctx = Ctx::new("sb-orphan");
    let (mut c, id, outp) = spawn_sb(&ctx, &["--image", "host"], "sleep 60 & echo ready; sleep 60", "orphan");
    wait_for_text(&outp, "ready", Duration::from_secs(10));
    let pid = init_pid(&ctx, &id);
    kill(c.id(), libc::SIGKILL);
    let _ = c.wait();
    let t = Instant::now();
    while !gone(pid) {
        assert!(t.elapsed() < Duration::from_secs(2), "the job (pid {pid}) outlived stele");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Its state (naming the dead stele) is still there until the next
    // sandbox run, which removes it and its cgroup.
    assert!(ctx.root().join(&id).is_file());
    assert!(!cgroups_named(&id).is_empty());
    host_ok(&ctx, &[], "true");
    assert_clean(&ctx, &id);
    let left = std::fs::read_dir(ctx.root()).unwrap().flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count();
    assert_eq!(left, 0);
}

#[test]
fn a_running_sandbox_is_not_reaped_by_another() {
    let ctx = Ctx::new("sb-concurrent");
    let (mut c, id, outp) = spawn_sb(&ctx, &["--image", "host"], "echo ready; read x < /dev/null; sleep 1; echo still-here", "long");
    wait_for_text(&outp, "ready", Duration::from_secs(10));
    host_ok(&ctx, &[], "true");
    assert_eq!(wait_child(&mut c, Duration::from_secs(10)), 0);
    assert!(std::fs::read_to_string(&outp).unwrap().contains("still-here"));
    assert_clean(&ctx, &id);
}

/// Run `script -qec CMD` (a pty for stele's stdin/stdout); its output.
fn in_terminal(ctx: &Ctx, cmd: &str) -> String {
    let mut c = std::process::Command::new("script");
    c.args(["-qec", cmd, "/dev/null"]).current_dir(ctx.path(""));
    // Keep script's stdin open but silent (EOF would be typed into the pty).
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut ch = c.spawn().unwrap();
    let input = ch.stdin.take();
    let o = ch.wait_with_output().unwrap();
    drop(input);
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).replace('\r', "")
}

fn stele(ctx: &Ctx) -> String {
    format!("{} --root {}", common::runtime().display(), ctx.root().display())
}

#[test]
fn terminal_stdin_gives_a_tty() {
    let ctx = Ctx::new("sb-tty");
    let s = stele(&ctx);
    let out = in_terminal(
        &ctx,
        &format!("stty rows 33 cols 77; before=$(stty -g); {s} run --image host -- sh -c 'tty; stty size; echo TERM=$TERM'; after=$(stty -g); [ \"$before\" = \"$after\" ] && echo restored"),
    );
    assert!(out.lines().any(|l| l.starts_with("/dev/pts/")), "{out}");
    assert!(out.contains("33 77\n"), "{out}");
    assert!(!out.contains("TERM=dumb") && out.contains("TERM="), "{out}");
    assert!(out.contains("restored"), "{out}");
    // without a terminal: no tty, unless -t
    let (o, _) = sb(&ctx, &["--image", "host"], "tty");
    assert_eq!(o.stdout.trim(), "not a tty");
    let (o, id) = sb(&ctx, &["--image", "host", "-t"], "tty; echo exit-code-passes; exit 3");
    assert_eq!(o.code, 3, "{o}");
    assert!(o.stdout.starts_with("/dev/pts/") && o.stdout.contains("exit-code-passes\r\n"), "{o}");
    assert_clean(&ctx, &id);
}

#[test]
fn window_size_follows_sigwinch() {
    let ctx = Ctx::new("sb-winch");
    let s = stele(&ctx);
    let out = in_terminal(
        &ctx,
        &format!("stty rows 10 cols 20; {s} run --image host -- sh -c 'stty size; sleep 1.5; stty size' < /dev/tty & sleep 0.7; stty rows 40 cols 100; kill -WINCH $!; wait"),
    );
    assert!(out.contains("10 20\n") && out.contains("40 100\n"), "{out}");
}

#[test]
fn tty_job_reads_the_terminal_input() {
    let ctx = Ctx::new("sb-ttyin");
    let s = stele(&ctx);
    // stdin of stele is the pty; typed input (from printf) reaches the job's terminal
    let out = in_terminal(&ctx, &format!("(sleep 0.5; printf 'typed\\n') | {s} run --image host -t -i -- sh -c 'read l; echo got=$l'"));
    assert!(out.contains("got=typed"), "{out}");
}

/// The job's cgroup is made only where it is needed: device rules always,
/// memory and CPU accounting for `--json-status`, a limit's controller; the
/// device rules hold (a device node it makes cannot be opened).
#[test]
fn cgroup_only_in_the_hierarchies_the_job_needs() {
    let ctx = Ctx::new("sb-cgroups");
    let v1 = std::path::Path::new("/sys/fs/cgroup/devices").is_dir();
    for (opts, want) in [(&[][..], &["devices"][..]), (&["--pids", "64"][..], &["devices", "pids"][..])] {
        let mut o = vec!["--image", "host"];
        o.extend_from_slice(opts);
        let script = "mknod /dev/sdx b 8 0 && { head -c1 /dev/sdx >/dev/null 2>&1 && echo opened || echo refused; }; echo ready; sleep 60";
        let (mut c, id, outp) = spawn_sb(&ctx, &o, script, "cg");
        let out = wait_for_text(&outp, "ready", Duration::from_secs(10));
        assert!(out.contains("refused"), "{out}");
        let dirs = cgroups_named(&id);
        kill(init_pid(&ctx, &id) as u32, libc::SIGKILL);
        assert_eq!(wait_child(&mut c, Duration::from_secs(10)), 137);
        assert_clean(&ctx, &id);
        if !v1 {
            assert_eq!(dirs.len(), 1, "{dirs:?}");
            continue;
        }
        let mut names: Vec<String> = dirs
            .iter()
            .map(|d| d.strip_prefix("/sys/fs/cgroup").unwrap().components().next().unwrap().as_os_str().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, want, "{dirs:?}");
    }
}
