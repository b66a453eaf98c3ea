//! OCI hooks: order, timing, state on stdin, env/args, timeout and failure.

#[macro_use]
mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HOST_HOOKS: [&str; 3] = ["prestart", "createRuntime", "poststart"];

/// A hook (run with the host's /bin/sh, or the container's for
/// startContainer) that saves its stdin to DIR/NAME.json and appends NAME to
/// DIR/order. `dir` is the log dir as the hook sees it.
fn logging_hook(name: &str, dir: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {dir}/{name}.json; echo {name} >> {dir}/order")]
    })
}

struct HookLog {
    dir: PathBuf,
}

impl HookLog {
    fn new(t: &Ctx) -> HookLog {
        let dir = t.path("hooklog");
        fs::create_dir_all(&dir).unwrap();
        HookLog { dir }
    }

    fn order(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("order"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Wait until the hook that wrote its pid to DIR/hookpid is gone.
    fn wait_hook_killed(&self) {
        let hook_pid = fs::read_to_string(self.dir.join("hookpid")).unwrap();
        wait_for(
            || {
                let stat = fs::read_to_string(format!("/proc/{}/stat", hook_pid.trim())).unwrap_or_default();
                stat.is_empty() || stat.contains(") Z ")
            },
            "timed-out hook to die",
        );
    }

    fn state(&self, name: &str) -> Value {
        let text = fs::read_to_string(self.dir.join(format!("{name}.json")))
            .unwrap_or_else(|e| panic!("{name} hook wrote no state: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} hook stdin is not JSON ({e}): {text:?}"))
    }
}

/// A bundle with every hook kind logging to `log`. The log dir is bound into
/// the container at /mnt/hooklog for startContainer, which runs inside it.
fn bundle_with_all_hooks(t: &Ctx, log: &HookLog, args: &[&str]) -> Bundle {
    let mut b = t.bundle(args);
    b.mkdirs(&["/mnt/hooklog"]);
    b.add_mount(json!({"destination": "/mnt/hooklog", "type": "bind", "source": log.dir, "options": ["bind", "rw"]}));
    let host = log.dir.to_str().unwrap();
    b.config["hooks"] = json!({
        "prestart": [logging_hook("prestart", host)],
        "createRuntime": [logging_hook("createRuntime", host)],
        "createContainer": [logging_hook("createContainer", host)],
        "startContainer": [logging_hook("startContainer", "/mnt/hooklog")],
        "poststart": [logging_hook("poststart", host)],
        "poststop": [logging_hook("poststop", host)],
    });
    b.save();
    b
}

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn hooks_run_in_order_with_state() {
    let t = Ctx::new("hooks-order");
    let log = HookLog::new(&t);
    let b = bundle_with_all_hooks(&t, &log, &["sh", "-c", "echo container-ran >> /mnt/hooklog/order; exec sleep 1000"]);
    let id = t.id("hooks");

    t.create(&b, &id);
    // runc 1.1.5 runs poststart hooks at the end of `create` (fixed in runc 1.2);
    // the spec, and stele, run them after the process is started.
    let mut want = vec!["prestart", "createRuntime", "createContainer"];
    if runtime_is_runc() {
        want.push("poststart");
    }
    assert_eq!(log.order(), want, "after create");
    let pid = t.state(&id)["pid"].as_i64().unwrap();

    t.rt(&["start", &id]).ok();
    // poststart runs before start returns; the container's own line may land
    // before or after it, but after startContainer.
    wait_for(|| log.order().iter().any(|l| l == "container-ran"), "container output");
    let order = log.order();
    let hooks_only: Vec<&String> = order.iter().filter(|l| *l != "container-ran").collect();
    want = vec!["prestart", "createRuntime", "createContainer", "startContainer", "poststart"];
    if runtime_is_runc() {
        want.swap(3, 4);
    }
    assert_eq!(hooks_only, want, "after start");
    let pos = |name: &str| order.iter().position(|l| l == name).unwrap();
    assert!(pos("startContainer") < pos("container-ran"), "startContainer runs before the process: {order:?}");

    t.rt(&["kill", &id, "KILL"]).ok();
    t.wait_status(&id, "stopped");
    assert!(!log.order().contains(&"poststop".to_owned()), "poststop waits for delete");
    t.rt(&["delete", &id]).ok();
    assert_eq!(log.order().last().map(String::as_str), Some("poststop"), "after delete");

    // Every hook got the state on stdin.
    for name in ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] {
        let state = log.state(name);
        assert_eq!(state["id"], id.as_str(), "{name}: {state}");
        assert_eq!(state["bundle"], b.dir.to_str().unwrap(), "{name}: {state}");
        assert!(state["ociVersion"].as_str().is_some(), "{name}: {state}");
        assert!(state["status"].as_str().is_some(), "{name}: {state}");
    }
    for name in ["prestart", "createRuntime", "poststart"] {
        assert_eq!(log.state(name)["pid"].as_i64(), Some(pid), "{name} sees the init pid");
    }
    // Hooks run inside the container: runc 1.1.5 reports the pid as seen in the
    // container's pid namespace (1); the host pid is also acceptable.
    for name in ["createContainer", "startContainer"] {
        let got = log.state(name)["pid"].as_i64();
        assert!(got == Some(1) || got == Some(pid), "{name} pid {got:?}");
    }
    // runc 1.1.5 omits pid once stopped; 0 is fine too.
    let stopped_pid = &log.state("poststop")["pid"];
    assert!(stopped_pid.is_null() || stopped_pid == 0, "poststop pid {stopped_pid}");
    assert_eq!(log.state("prestart")["status"], "creating");
    assert_eq!(log.state("createRuntime")["status"], "creating");
    assert_eq!(log.state("createContainer")["status"], "creating");
    assert_eq!(log.state("startContainer")["status"], "created");
    // runc 1.1.5 runs poststart during create and so reports "created".
    let want = if runtime_is_runc() { "created" } else { "running" };
    assert_eq!(log.state("poststart")["status"], want);
    assert_eq!(log.state("poststop")["status"], "stopped");
}

#[test]
fn run_runs_all_hooks() {
    let t = Ctx::new("hooks-run");
    let log = HookLog::new(&t);
    let b = bundle_with_all_hooks(&t, &log, &["sh", "-c", "echo container-output"]);
    let out = t.run(&b);
    out.ok();
    assert_eq!(out.stdout, "container-output\n");
    let mut want = vec!["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];
    if runtime_is_runc() {
        want.swap(3, 4); // runc 1.1.5 runs poststart during create
    }
    assert_eq!(log.order(), want, "run = create + start + delete");
}

#[test]
fn hook_args_and_env() {
    let t = Ctx::new("hooks-env");
    let log = HookLog::new(&t);
    let dir = log.dir.to_str().unwrap();
    let mut b = t.sh("true");
    b.config["hooks"] = json!({
        "createRuntime": [{
            "path": "/bin/sh",
            "args": ["hook-argv0", "-c", format!("echo \"$0|$1|$HOOK_VAR|${{LEAK_CHECK:-unset}}\" > {dir}/env"), "zeroth", "first"],
            "env": ["HOOK_VAR=hook value"]
        }]
    });
    b.save();
    let id = t.id("hookenv");
    let mut cmd = t.cmd(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    cmd.env("LEAK_CHECK", "leaked-from-runtime");
    t.exec(cmd).ok();
    let got = fs::read_to_string(log.dir.join("env")).unwrap();
    // args verbatim ($0 is the word after the -c script); only the configured
    // env, nothing inherited from the runtime's own environment.
    assert_eq!(got, "zeroth|first|hook value|unset\n");
}

#[test]
fn hook_timeout_fails_create() {
    let t = Ctx::new("hooks-timeout");
    let log = HookLog::new(&t);
    let dir = log.dir.to_str().unwrap();
    let mut b = t.sh("echo should-not-run");
    b.config["hooks"] = json!({
        "createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo $$ > {dir}/hookpid; exec sleep 60")],
            "timeout": 1
        }]
    });
    b.save();
    let id = t.id("timeout");
    let start = Instant::now();
    let out = t.rt(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    let took = start.elapsed();
    out.fails();
    assert!(took < Duration::from_secs(15), "timeout of 1s took {took:?}");
    log.wait_hook_killed();
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn failing_create_runtime_hook_leaves_nothing() {
    let t = Ctx::new("hooks-fail");
    let log = HookLog::new(&t);
    let dir = log.dir.to_str().unwrap();
    let mut b = t.sh("echo should-not-run");
    b.config["hooks"] = json!({
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-failing >&2; exit 7"]}],
        "createContainer": [logging_hook("createContainer", dir)]
    });
    b.save();
    let id = t.id("hookfail");
    let out = t.rt(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    out.fails();
    assert!(log.order().is_empty(), "later hooks did not run: {:?}", log.order());
    t.assert_nothing_left(&id, &b.dir);
    t.rt(&["state", &id]).fails_with_1();
}

#[test]
fn failing_hook_in_run_leaves_nothing() {
    let t = Ctx::new("hooks-fail-run");
    let mut b = t.sh("echo should-not-run");
    b.config["hooks"] = json!({
        "prestart": [{"path": "/bin/false"}]
    });
    b.save();
    let id = t.id("hookfailrun");
    let out = t.rt(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    out.fails();
    assert!(!out.stdout.contains("should-not-run"), "{out}");
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn missing_hook_binary_fails() {
    let t = Ctx::new("hooks-missing");
    let mut b = t.sh("echo should-not-run");
    b.config["hooks"] = json!({"createRuntime": [{"path": "/nonexistent/hook"}]});
    b.save();
    let id = t.id("hookmissing");
    let out = t.rt(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    out.fails();
    assert!(!out.stdout.contains("should-not-run"), "{out}");
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn poststop_runs_on_delete_force() {
    let t = Ctx::new("hooks-poststop");
    let log = HookLog::new(&t);
    let mut b = t.sh("exec sleep 1000");
    b.config["hooks"] = json!({"poststop": [logging_hook("poststop", log.dir.to_str().unwrap())]});
    b.save();
    let id = t.id("poststop");
    t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    assert!(log.order().is_empty());
    t.rt(&["delete", "--force", &id]).ok();
    assert_eq!(log.order(), ["poststop"]);
    assert_eq!(log.state("poststop")["id"], id.as_str());
}

#[test]
fn host_hooks_run_in_host_namespaces() {
    // prestart, createRuntime and poststart run in the runtime's namespaces.
    let t = Ctx::new("hooks-ns");
    let log = HookLog::new(&t);
    let dir = log.dir.to_str().unwrap();
    let mut b = t.sh("true");
    let hooks: serde_json::Map<String, Value> = HOST_HOOKS
        .iter()
        .map(|h| {
            let hook = json!({"path": "/bin/sh", "args": ["sh", "-c", format!("readlink /proc/self/ns/mnt /proc/self/ns/pid > {dir}/{h}.ns")]});
            (h.to_string(), json!([hook]))
        })
        .collect();
    b.config["hooks"] = Value::Object(hooks);
    b.save();
    t.run(&b).ok();
    let host_mnt = fs::read_link("/proc/self/ns/mnt").unwrap();
    let host_pid = fs::read_link("/proc/self/ns/pid").unwrap();
    let want = format!("{}\n{}\n", host_mnt.display(), host_pid.display());
    for h in HOST_HOOKS {
        let got = fs::read_to_string(Path::new(dir).join(format!("{h}.ns"))).unwrap();
        assert_eq!(got, want, "{h} hook namespaces");
    }
}

/// The runtime killed in the middle of create (here: while a createRuntime
/// hook runs): `delete --force` still removes everything: the init, the
/// cgroup, the state directory. (The shim's cleanup depends on it.)
#[test]
fn create_killed_midway_then_force_delete_cleans_up() {
    if !is_stele() {
        return; // runc leaves the cgroup of a half-made container behind
    }
    let t = Ctx::new("killed-create");
    let running = t.path("hook-running");
    let mut b = t.sh("echo should-not-run");
    b.config["hooks"] = json!({
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}; sleep 31.7", running.display())]}]
    });
    b.config["linux"]["cgroupsPath"] = json!(format!("/stele-test-killed-{}", std::process::id()));
    b.save();
    let id = t.id("killed");
    let mut child = t.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &id]).spawn().unwrap();
    let pids_dir = std::path::PathBuf::from(format!("/sys/fs/cgroup/pids/stele-test-killed-{}", std::process::id()));
    // Wait until the hook runs: the runtime has recorded the container by
    // then (the init is in its cgroup from clone3 on, before the record).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !running.exists() {
        assert!(std::time::Instant::now() < deadline, "the createRuntime hook never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let init: i32 = std::fs::read_to_string(pids_dir.join("cgroup.procs")).unwrap().trim().lines().next().unwrap().parse().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    t.rt(&["delete", "--force", &id]).ok();
    // the init is gone (it leaves when its runtime does; delete kills the cgroup)
    let gone = std::time::Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{init}")).exists()
        && !std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap_or_default().contains(") Z")
    {
        assert!(std::time::Instant::now() < gone, "init {init} survived");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pids_dir.exists(), "cgroup {} left behind", pids_dir.display());
    assert!(!t.root().join(&id).exists(), "state directory left behind");
    let _ = std::process::Command::new("pkill").args(["-f", "sleep 31.7"]).status();
}

// ---------------------------------------------------------------------------
// Hook stdio: the runtime must never block on a hook's pipes.

/// How long a runtime call with a misbehaving hook may take. The old,
/// blocking hook I/O hung (forever, or until a 60 s sleep ended): such a
/// regression fails here (run_captured kills the runtime) instead of hanging.
const PROMPT: Duration = Duration::from_secs(20);

fn sh_hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

/// Save `b` with `hooks` and `run` it as a new container; returns its id and
/// the runtime's output, failing the test if it takes PROMPT or longer.
fn run_with_hooks(t: &Ctx, b: &mut Bundle, hooks: Value) -> (String, Out) {
    b.config["hooks"] = hooks;
    b.save();
    let id = t.id("hookio");
    let start = Instant::now();
    let out = run_captured(t.cmd(&["run", "--bundle", b.dir.to_str().unwrap(), &id]), &t.path(""), PROMPT);
    assert!(start.elapsed() < PROMPT, "took {:?}: {out}", start.elapsed());
    (id, out)
}

/// `run` failed with every one of `why` in its error, before the container's
/// process (`echo should-not-run`) ran, and left nothing behind.
#[track_caller]
fn assert_failed_cleanly(t: &Ctx, b: &Bundle, id: &str, out: &Out, why: &[&str]) {
    out.fails();
    for w in why {
        out.stderr_has(w);
    }
    assert!(!out.stdout.contains("should-not-run"), "{out}");
    t.assert_nothing_left(id, &b.dir);
}

/// A 200 KiB annotation: the state JSON on the hooks' stdin outgrows a pipe.
fn big_annotation(b: &mut Bundle) -> String {
    let value = "a".repeat(200 * 1024);
    b.config["annotations"] = json!({"big": value});
    value
}

#[test]
fn hook_with_large_output_does_not_block() {
    let t = Ctx::new("hooks-big-output");
    let mut b = t.sh("echo container-ran");
    // No timeout: nothing but the runtime reading the pipes lets it finish.
    let hook = sh_hook("head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2");
    let (_, out) = run_with_hooks(&t, &mut b, json!({"createRuntime": [hook]}));
    out.ok();
    assert_eq!(out.stdout, "container-ran\n");
}

#[test]
fn failing_hook_output_is_in_the_error() {
    let t = Ctx::new("hooks-fail-msg");
    let mut b = t.sh("echo should-not-run");
    let hook = sh_hook("echo hook-said-out; echo hook-said-err >&2; exit 7");
    let (id, out) = run_with_hooks(&t, &mut b, json!({"createRuntime": [hook]}));
    assert_failed_cleanly(&t, &b, &id, &out, &["exit status 7", "hook-said-out", "hook-said-err"]);
}

#[test]
fn failing_hook_with_large_output_is_truncated_in_the_error() {
    stele_only!(); // runc puts all of it in the message
    let t = Ctx::new("hooks-fail-big");
    let mut b = t.sh("echo should-not-run");
    let hook = sh_hook("head -c 1048576 /dev/zero | tr '\\0' x >&2; exit 5");
    let (id, out) = run_with_hooks(&t, &mut b, json!({"createRuntime": [hook]}));
    assert_failed_cleanly(&t, &b, &id, &out, &["exit status 5", "xxxxxxxx", "truncated"]);
    assert!(out.stderr.len() < 128 * 1024, "error of {} bytes: not capped", out.stderr.len());
}

#[test]
fn failing_hook_with_background_child_returns_promptly() {
    // runc 1.1.5 waits for EOF on the hook's pipes: until the sleep ends.
    stele_only!();
    let t = Ctx::new("hooks-fail-bg");
    let log = HookLog::new(&t);
    let dir = log.dir.to_str().unwrap();
    let mut b = t.sh("echo should-not-run");
    // The background sleep inherits the hook's stdout and stderr.
    let hook = sh_hook(&format!("sleep 60 & echo $! > {dir}/bgpid; echo bad-hook >&2; exit 3"));
    let (id, out) = run_with_hooks(&t, &mut b, json!({"createRuntime": [hook]}));
    let bg: i32 = fs::read_to_string(log.dir.join("bgpid")).unwrap().trim().parse().unwrap();
    // SAFETY: plain kill(2) of the sleep the hook started (the runtime does
    // not own what a hook leaves behind, so the test cleans it up).
    unsafe { libc::kill(bg, libc::SIGKILL) };
    assert_failed_cleanly(&t, &b, &id, &out, &["exit status 3", "bad-hook"]);
}

#[test]
fn hook_that_ignores_big_state_on_stdin_does_not_block() {
    let t = Ctx::new("hooks-big-stdin");
    let log = HookLog::new(&t);
    let mut b = t.sh("echo container-ran");
    let value = big_annotation(&mut b);
    // The first hook never reads its stdin and fills its stdout: with a
    // blocking write of the state both sides wait for each other. The second
    // reads all of it: the state arrives whole however it is written.
    let hooks = json!({
        "prestart": [sh_hook("head -c 1048576 /dev/zero")],
        "createRuntime": [logging_hook("createRuntime", log.dir.to_str().unwrap())]
    });
    let (id, out) = run_with_hooks(&t, &mut b, hooks);
    out.ok();
    assert_eq!(out.stdout, "container-ran\n");
    let state = log.state("createRuntime");
    assert_eq!(state["annotations"]["big"].as_str().map(str::len), Some(value.len()));
    assert_eq!(state["id"], id.as_str());
}

#[test]
fn hook_timeout_holds_while_state_is_unread() {
    let t = Ctx::new("hooks-stdin-timeout");
    let log = HookLog::new(&t);
    let dir = log.dir.to_str().unwrap();
    let mut b = t.sh("echo should-not-run");
    big_annotation(&mut b);
    let mut hook = sh_hook(&format!("echo $$ > {dir}/hookpid; exec sleep 60"));
    hook["timeout"] = json!(1);
    let (id, out) = run_with_hooks(&t, &mut b, json!({"createRuntime": [hook]}));
    log.wait_hook_killed();
    let why: &[&str] = if is_stele() { &["timed out after 1s"] } else { &[] };
    assert_failed_cleanly(&t, &b, &id, &out, why);
}

/// A failing poststart or poststop hook is a warning, and the hooks after it
/// still run (runtime-spec, lifecycle: "the remaining hooks and lifecycle
/// continue as if the hook had succeeded").
#[test]
fn failed_poststart_and_poststop_hooks_warn_and_the_rest_run() {
    stele_only!(); // runc fails `start` on a poststart hook and stops there
    let t = Ctx::new("hooks-post-fail");
    let log = HookLog::new(&t);
    let dir = log.dir.to_str().unwrap();
    let mut b = t.sh("echo container-ran");
    let fail = |what: &str| sh_hook(&format!("echo {what}-hook-broke >&2; exit 4"));
    let hooks = json!({
        "poststart": [fail("poststart"), logging_hook("poststart", dir)],
        "poststop": [fail("poststop"), logging_hook("poststop", dir)],
    });
    let (id, out) = run_with_hooks(&t, &mut b, hooks);
    out.ok();
    assert!(out.stdout.contains("container-ran"), "{out}");
    out.stderr_has("poststart-hook-broke");
    out.stderr_has("poststop-hook-broke");
    assert_eq!(log.order(), ["poststart", "poststop"], "{out}");
    t.assert_nothing_left(&id, &b.dir);
}
