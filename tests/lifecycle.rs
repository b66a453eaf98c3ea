//! create / start / state / kill / delete / run / list / spec, and global flags.

#[macro_use]
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn is_rfc3339(s: &str) -> bool {
    // 2026-11-26T04:29:21.764220929Z or with a numeric offset.
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && s[..4].chars().all(|c| c.is_ascii_digit())
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

#[test]
fn run_passes_stdout_and_stderr() {
    let t = Ctx::new("run-stdio");
    let b = t.sh("echo to-stdout; echo to-stderr >&2");
    let out = t.run(&b);
    out.ok();
    assert_eq!(out.stdout, "to-stdout\n", "{out}");
    assert!(out.stderr.contains("to-stderr"), "{out}");
}

#[test]
fn run_passes_exit_code() {
    let t = Ctx::new("run-exit");
    for code in [0, 3, 42] {
        let b = t.sh(&format!("echo before-exit; exit {code}"));
        let out = t.run(&b);
        assert_eq!(out.code, code, "{out}");
        assert_eq!(out.stdout, "before-exit\n", "{out}");
    }
}

#[test]
fn run_reports_signal_death_as_128_plus_signal() {
    // `run` in the foreground; the container is SIGKILLed from outside.
    let t = Ctx::new("run-signal");
    let b = t.sh("echo started; exec sleep 1000");
    let id = t.id("sigdeath");
    let out_path = t.path("run.out");
    let mut child = t
        .cmd(&["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| fs::read_to_string(&out_path).unwrap_or_default().contains("started"));
    t.rt(&["kill", &id, "KILL"]).ok();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("run did not return after its container was killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(137), "run exit status after SIGKILL");
}

#[test]
fn run_detach_then_state_kill_delete() {
    let t = Ctx::new("run-detach");
    let b = t.sh("sleep 1000");
    let id = t.id("detach");
    let out = t.rt(&["run", "--detach", "--bundle", b.dir.to_str().unwrap(), &id]);
    out.ok();
    assert_eq!(out.stdout, "", "detached run prints nothing itself");
    let state = t.state(&id);
    assert_eq!(state["status"], "running", "{state}");
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid > 0);
    wait_cmdline(pid as i32, "sleep\u{0}1000\u{0}");
    t.rt(&["kill", &id, "KILL"]).ok();
    let state = t.wait_status(&id, "stopped");
    assert_eq!(state["pid"], 0, "{state}");
    t.rt(&["delete", &id]).ok();
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn lifecycle_state_fields() {
    let t = Ctx::new("lifecycle");
    let b = t.sh("sleep 1000");
    let id = t.id("life");
    let pid_file = t.path("init.pid");
    t.rt(&["create", "--bundle", b.dir.to_str().unwrap(), "--pid-file", pid_file.to_str().unwrap(), &id])
        .ok();

    // The pid file exists when create returns and holds the init pid, no newline.
    let pid_text = fs::read_to_string(&pid_file).expect("pid file written by create");
    assert!(!pid_text.ends_with('\n'), "pid file has a newline: {pid_text:?}");
    let pid: i64 = pid_text.parse().expect("pid file holds a number");

    let state = t.state(&id);
    assert_eq!(state["ociVersion"].as_str().map(|v| v.starts_with("1.")), Some(true), "{state}");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"].as_i64(), Some(pid), "state pid matches the pid file");
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "init process exists while created");
    assert_eq!(state["bundle"], b.dir.to_str().unwrap());
    assert!(Path::new(state["bundle"].as_str().unwrap()).is_absolute());
    assert_eq!(state["rootfs"], b.rootfs().to_str().unwrap());
    assert!(is_rfc3339(state["created"].as_str().unwrap()), "{state}");
    assert_eq!(state["owner"], "");

    t.rt(&["start", &id]).ok();
    let state = t.state(&id);
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["pid"].as_i64(), Some(pid));
    // the init became the user process (`sh -c`, which then execs sleep)
    wait_cmdline(pid as i32, "sleep\u{0}1000\u{0}");

    // pid 1 ignores TERM without a handler: use KILL.
    t.rt(&["kill", &id, "KILL"]).ok();
    let state = t.wait_status(&id, "stopped");
    assert_eq!(state["pid"], 0, "{state}");
    assert_eq!(state["id"], id.as_str());

    t.rt(&["delete", &id]).ok();
    t.rt(&["state", &id]).fails_with_1();
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn create_stdout_reaches_container() {
    // runtime-tools reads the container's output from the stdout given to create.
    let t = Ctx::new("create-stdout");
    let b = t.sh("echo hello-from-created; echo err-from-created >&2");
    let id = t.id("cstdout");
    let created = t.create(&b, &id);
    assert_eq!(created.stdout, "", "nothing printed before start");
    t.rt(&["start", &id]).ok();
    t.wait_status(&id, "stopped");
    assert_eq!(created.reread_stdout(), "hello-from-created\n");
    let err = created.reread_stderr();
    assert!(err.contains("err-from-created"), "stderr of create got {err:?}");
}

/// The init waits for `start` on the fifo after switching to the
/// container's user: it reopens the fifo through /proc/self/fd, so the
/// (root-only) state root's mode does not stop it.
#[test]
fn create_start_as_non_root_user() {
    let t = Ctx::new("create-user");
    let mut b = t.sh("echo uid=$(id -u)");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.save();
    let id = t.id("cuser");
    let created = t.create(&b, &id);
    let root_mode = fs::metadata(t.root()).unwrap().permissions().mode() & 0o777;
    assert_eq!(root_mode & 0o077, 0, "the state root is for root only: {root_mode:o}");
    t.rt(&["start", &id]).ok();
    t.wait_status(&id, "stopped");
    assert_eq!(created.reread_stdout(), "uid=1000\n");
    t.rt(&["delete", &id]).ok();
    t.assert_nothing_left(&id, &b.dir);
}

/// The init finds the create fifo through /proc/self/fd: a rootfs without
/// a procfs there, whose /proc/self/fd/N lead elsewhere, is refused.
#[test]
fn create_refuses_a_fake_proc_for_its_fifo() {
    let t = Ctx::new("create-fakeproc");
    let mut b = t.sh("echo should-not-run");
    let mounts: Vec<_> = b.config["mounts"].as_array().unwrap().iter().filter(|m| m["destination"] != "/proc").cloned().collect();
    b.config["mounts"] = json!(mounts);
    b.save();
    b.mkdirs(&["proc/self/fd"]);
    for n in 3..=30 {
        let _ = std::os::unix::fs::symlink("/dev/null", b.rootfs().join(format!("proc/self/fd/{n}")));
    }
    let id = t.id("fakeproc");
    // The init looks for the fifo once create has returned: it gives up,
    // saying why on the container's stderr, and start finds it gone.
    let created = t.rt(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    created.ok();
    t.wait_status(&id, "stopped");
    t.rt(&["start", &id]).fails();
    assert!(created.reread_stderr().contains("not the create fifo"), "{}", created.reread_stderr());
    assert!(!created.reread_stdout().contains("should-not-run"));
    t.rt(&["delete", "--force", &id]);
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn start_twice_fails() {
    let t = Ctx::new("start-twice");
    let b = t.sh("sleep 1000");
    let id = t.id("twice");
    t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    t.rt(&["start", &id]).fails_with_1();
    assert_eq!(t.state(&id)["status"], "running");
}

#[test]
fn start_stopped_fails() {
    let t = Ctx::new("start-stopped");
    let b = t.sh("true");
    let id = t.id("stopped");
    t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    t.wait_status(&id, "stopped");
    t.rt(&["start", &id]).fails_with_1();
}

#[test]
fn kill_stopped_fails() {
    let t = Ctx::new("kill-stopped");
    let b = t.sh("exit 0");
    let id = t.id("ks");
    t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    t.wait_status(&id, "stopped");
    t.rt(&["kill", &id, "KILL"]).fails_with_1().stderr_has("not running");
}

#[test]
fn delete_running_needs_force() {
    let t = Ctx::new("delete-running");
    let b = t.sh("sleep 1000");
    let id = t.id("dr");
    t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    let pid = t.state(&id)["pid"].as_i64().unwrap();
    t.rt(&["delete", &id]).fails_with_1();
    assert_eq!(t.state(&id)["status"], "running", "failed delete left it running");
    t.rt(&["delete", "--force", &id]).ok();
    t.rt(&["state", &id]).fails_with_1();
    // The process is gone (or at most a zombie being reaped).
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "init survived delete --force: {stat}");
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn delete_force_of_created_container() {
    let t = Ctx::new("delete-created");
    let b = t.sh("echo never");
    let id = t.id("dc");
    let created = t.create(&b, &id);
    t.rt(&["delete", "--force", &id]).ok();
    t.assert_nothing_left(&id, &b.dir);
    assert_eq!(created.reread_stdout(), "", "a deleted, never-started container ran");
}

#[test]
fn delete_stopped_without_force() {
    let t = Ctx::new("delete-stopped");
    let b = t.sh("true");
    let id = t.id("ds");
    t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    t.wait_status(&id, "stopped");
    t.rt(&["delete", &id]).ok();
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn delete_force_missing_is_ok() {
    let t = Ctx::new("delete-missing");
    let out = t.rt(&["delete", "--force", "no-such-container-xyz"]);
    out.ok();
}

#[test]
fn unknown_id_is_an_error() {
    let t = Ctx::new("unknown-id");
    for cmd in ["state", "delete", "kill", "start"] {
        let out = t.rt(&[cmd, "no-such-container-xyz"]);
        out.fails_with_1().stderr_has("does not exist");
    }
}

#[test]
fn duplicate_id_fails() {
    let t = Ctx::new("dup-id");
    let b = t.sh("sleep 1000");
    let id = t.id("dup");
    t.create(&b, &id);
    let pid = t.state(&id)["pid"].clone();
    let b2 = t.sh("sleep 1000");
    let out = t.rt(&["create", "--bundle", b2.dir.to_str().unwrap(), &id]);
    out.fails_with_1().stderr_has("exists");
    // The first container is untouched, and the second bundle runs nothing.
    let state = t.state(&id);
    assert_eq!(state["pid"], pid);
    assert_eq!(state["bundle"], b.dir.to_str().unwrap());
    assert!(processes_using(&b2.dir).is_empty());
}

#[test]
fn kill_signal_forms() {
    let t = Ctx::new("kill-signals");
    // Each container reports the signal it got through a trap.
    for (signal, trapped) in [("TERM", "TERM"), ("SIGUSR1", "USR1"), ("10", "USR1"), ("HUP", "HUP"), ("SIGHUP", "HUP"), ("15", "TERM")] {
        let b = t.sh(&format!("trap 'echo got-{trapped}; exit 0' {trapped}; echo ready; while true; do sleep 0.05; done"));
        let id = t.id("sig");
        let created = t.create(&b, &id);
        t.rt(&["start", &id]).ok();
        wait_for(|| created.reread_stdout().contains("ready"));
        t.rt(&["kill", &id, signal]).ok();
        t.wait_status(&id, "stopped");
        assert_eq!(created.reread_stdout(), format!("ready\ngot-{trapped}\n"), "signal {signal}");
    }
    for signal in ["KILL", "SIGKILL", "9"] {
        let b = t.sh("sleep 1000");
        let id = t.id("kill");
        t.create(&b, &id);
        t.rt(&["start", &id]).ok();
        t.rt(&["kill", &id, signal]).ok();
        t.wait_status(&id, "stopped");
    }
}

#[test]
fn kill_default_is_term() {
    let t = Ctx::new("kill-default");
    let b = t.sh("trap 'echo got-TERM; exit 0' TERM; echo ready; while true; do sleep 0.05; done");
    let id = t.id("kdef");
    let created = t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    wait_for(|| created.reread_stdout().contains("ready"));
    t.rt(&["kill", &id]).ok();
    t.wait_status(&id, "stopped");
    assert_eq!(created.reread_stdout(), "ready\ngot-TERM\n");
}

#[test]
fn kill_unknown_signal_fails() {
    let t = Ctx::new("kill-badsig");
    let b = t.sh("sleep 1000");
    let id = t.id("kbad");
    t.create(&b, &id);
    t.rt(&["kill", &id, "NOTASIGNAL"]).fails();
    assert_eq!(t.state(&id)["status"], "created");
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "condition not met in time");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn list_formats() {
    let t = Ctx::new("list");
    let b = t.sh("sleep 1000");
    let id1 = t.id("list-a");
    let id2 = t.id("list-b");
    t.create(&b, &id1);
    let b2 = t.sh("sleep 1000");
    t.create(&b2, &id2);
    t.rt(&["start", &id2]).ok();

    let out = t.rt(&["list"]);
    out.ok();
    let lines = out.lines();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], "{out}");
    let row = |id: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("{id} missing from list: {out}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let r1 = row(&id1);
    assert_eq!(r1[2], "created");
    assert_eq!(r1[3], b.dir.to_str().unwrap());
    assert_eq!(row(&id2)[2], "running");

    let out = t.rt(&["list", "--format", "json"]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    let arr = v.as_array().expect("list --format json is an array");
    assert_eq!(arr.len(), 2);
    let e1 = arr.iter().find(|e| e["id"] == id1.as_str()).expect("id1 in json");
    assert_eq!(e1["status"], "created");
    assert_eq!(e1["bundle"], b.dir.to_str().unwrap());
    assert!(e1["pid"].as_i64().unwrap() > 0);
    assert!(is_rfc3339(e1["created"].as_str().unwrap()));

    let out = t.rt(&["list", "-q"]);
    out.ok();
    let mut ids = out.lines();
    ids.sort();
    let mut want = vec![id1.clone(), id2.clone()];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn list_empty_root() {
    let t = Ctx::new("list-empty");
    let out = t.rt(&["list", "-q"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "");
    let out = t.rt(&["list", "--format", "json"]);
    out.ok();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(v.is_null() || v.as_array().map(|a| a.is_empty()) == Some(true), "{out}");
}

#[test]
fn spec_writes_config_and_refuses_overwrite() {
    let t = Ctx::new("spec");
    let dir = t.path("specdir");
    fs::create_dir_all(&dir).unwrap();
    let mut cmd = t.cmd(&["spec"]);
    cmd.current_dir(&dir);
    t.exec(cmd).ok();
    let config: Value = serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert!(config["ociVersion"].as_str().unwrap().starts_with("1."));
    assert_eq!(config["root"]["path"], "rootfs");
    assert!(config["process"]["args"].as_array().map(|a| !a.is_empty()) == Some(true));
    assert!(config["linux"]["namespaces"].as_array().is_some());

    // A second spec must not overwrite it.
    fs::write(dir.join("config.json"), "sentinel").unwrap();
    let mut cmd = t.cmd(&["spec"]);
    cmd.current_dir(&dir);
    t.exec(cmd).fails_with_1().stderr_has("exists");
    assert_eq!(fs::read_to_string(dir.join("config.json")).unwrap(), "sentinel");

    // --bundle DIR writes there instead.
    let other = t.path("specbundle");
    fs::create_dir_all(&other).unwrap();
    t.rt(&["spec", "--bundle", other.to_str().unwrap()]).ok();
    let config: Value = serde_json::from_str(&fs::read_to_string(other.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["root"]["path"], "rootfs");
    t.rt(&["spec", "--bundle", other.to_str().unwrap()]).fails_with_1();
}

#[test]
fn runc_spec_bundle_gives_same_output() {
    // A bundle written by `runc spec` (args edited, terminal off) gives the same
    // stdout under the runtime under test as under runc.
    let t = Ctx::new("runc-spec");
    let runc = ["/usr/sbin/runc", "/usr/bin/runc", "/sbin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("runc is installed by scripts/setup.sh");
    let dir = t.path("runcspec");
    fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new(runc).args(["spec", "--bundle", dir.to_str().unwrap()]).status().unwrap();
    assert!(status.success());
    make_rootfs(&dir.join("rootfs"));
    let mut config: Value = serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!([
        "sh", "-c",
        "echo $$; hostname; id -u; cat /proc/self/status | grep -E '^(Cap|NoNewPrivs)'; ls /dev | sort | tr '\\n' ' '"
    ]);
    fs::write(dir.join("config.json"), serde_json::to_string(&config).unwrap()).unwrap();

    let id = t.id("under-test");
    let ours = t.rt(&["run", "--bundle", dir.to_str().unwrap(), &id]);
    ours.ok();
    let runc_root = t.path("runc-root");
    let ref_id = t.id("reference");
    let reference = run_captured(
        {
            let mut c = std::process::Command::new(runc);
            c.args(["--root", runc_root.to_str().unwrap(), "run", "--bundle", dir.to_str().unwrap(), &ref_id]);
            c
        },
        &t.path(""),
        TIMEOUT,
    );
    reference.ok();
    assert_eq!(ours.stdout, reference.stdout);
    assert!(ours.stdout.starts_with("1\nrunc\n0\n"), "{ours}");
}

#[test]
fn log_json_on_error() {
    let t = Ctx::new("log-json");
    let log = t.path("log.json");
    let out = t.rt(&["--log", log.to_str().unwrap(), "--log-format", "json", "state", "no-such-container-xyz"]);
    out.fails_with_1();
    let text = fs::read_to_string(&log).expect("log file written");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}")))
        .collect();
    let err = lines.iter().rev().find(|l| l["level"] == "error").expect("an error line");
    assert!(err["msg"].as_str().unwrap().contains("does not exist"), "{err}");
    assert!(is_rfc3339(err["time"].as_str().unwrap()), "{err}");
}

#[test]
fn log_text_format_default() {
    let t = Ctx::new("log-text");
    let log = t.path("log.txt");
    t.rt(&["--log", log.to_str().unwrap(), "state", "no-such-container-xyz"]).fails_with_1();
    let text = fs::read_to_string(&log).expect("log file written");
    assert!(text.contains("level=error"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
}

#[test]
fn go_style_single_dash_flags_and_debug() {
    let t = Ctx::new("go-flags");
    let b = t.sh("echo single-dash-ok");
    let id = t.id("gostyle");
    let root = t.root().to_str().unwrap().to_owned();
    let mut cmd = std::process::Command::new(runtime());
    cmd.args(["-root", &root, "--debug", "run", "-bundle", b.dir.to_str().unwrap(), &id]);
    let out = t.exec(cmd);
    out.ok();
    assert_eq!(out.stdout, "single-dash-ok\n");
    assert!(t.root().is_dir(), "-root DIR was honoured");

    // The state under that root is visible with the long form.
    let b2 = t.sh("sleep 1000");
    let id2 = t.id("gostyle2");
    let mut cmd = std::process::Command::new(runtime());
    cmd.args(["-root", &root, "create", "-bundle", b2.dir.to_str().unwrap(), &id2]);
    t.exec(cmd).ok();
    assert_eq!(t.state(&id2)["status"], "created");
}

#[test]
fn root_flag_isolates_state() {
    let t = Ctx::new("root-flag");
    let b = t.sh("sleep 1000");
    let id = t.id("rootiso");
    t.create(&b, &id);
    assert!(t.root().join(&id).is_file(), "the state record is ROOT/ID");
    let other = t.path("other-root");
    let out = t.exec({
        let mut c = std::process::Command::new(runtime());
        c.arg("--root").arg(&other).args(["state", &id]);
        c
    });
    out.fails_with_1();
}

#[test]
fn version_flag() {
    let out = run_captured(
        {
            let mut c = std::process::Command::new(runtime());
            c.arg("--version");
            c
        },
        &std::env::temp_dir(),
        TIMEOUT,
    );
    out.ok();
    let name = runtime().file_name().unwrap().to_string_lossy().into_owned();
    assert!(out.stdout.starts_with(&format!("{name} version ")), "{out}");
    let _ = fs::remove_file(&out.stdout_path);
    let _ = fs::remove_file(&out.stderr_path);
}

#[test]
fn stele_default_root_is_run_stele() {
    stele_only!();
    let t = Ctx::new("default-root");
    let b = t.sh("sleep 1000");
    let id = t.id("defroot");
    let mut cmd = std::process::Command::new(runtime());
    cmd.args(["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    let out = t.exec(cmd);
    let exists = Path::new("/run/stele").join(&id).is_file();
    let _ = std::process::Command::new(runtime()).args(["delete", "--force", &id]).status();
    out.ok();
    assert!(exists, "state record under /run/stele");
}

#[test]
fn debug_logs_debug_lines_without_touching_stdout() {
    let t = Ctx::new("debug-log");
    let log = t.path("debug.json");
    let b = t.sh("echo container-stdout");
    let id = t.id("debug");
    let out = t.rt(&[
        "--debug", "--log", log.to_str().unwrap(), "--log-format", "json",
        "run", "--bundle", b.dir.to_str().unwrap(), &id,
    ]);
    out.ok();
    assert_eq!(out.stdout, "container-stdout\n", "debug output must not mix into the container's stdout");
    let text = fs::read_to_string(&log).expect("log file written");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["level"] == "debug"), "no debug line in {text}");
    for line in &lines {
        assert!(line["msg"].is_string() && is_rfc3339(line["time"].as_str().unwrap_or("")), "{line}");
    }
}

#[test]
fn run_passes_stdin() {
    let t = Ctx::new("run-stdin");
    let input = t.path("stdin.txt");
    fs::write(&input, "line one\nline two\n").unwrap();
    let b = t.sh("tr a-z A-Z");
    let id = t.id("stdin");
    let mut cmd = t.cmd(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    cmd.stdin(fs::File::open(&input).unwrap());
    // run_captured would replace stdin: spawn by hand, output to files.
    let out_path = t.path("stdin.out");
    cmd.stdout(fs::File::create(&out_path).unwrap()).stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < TIMEOUT, "run with stdin did not finish");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success());
    assert_eq!(fs::read_to_string(&out_path).unwrap(), "LINE ONE\nLINE TWO\n");
}

#[test]
fn state_includes_annotations() {
    let t = Ctx::new("annotations");
    let mut b = t.sh("sleep 1000");
    b.config["annotations"] = json!({"org.example.key": "value", "other": "x y"});
    b.save();
    let id = t.id("annot");
    t.create(&b, &id);
    let state = t.state(&id);
    assert_eq!(state["annotations"], json!({"org.example.key": "value", "other": "x y"}), "{state}");
}

#[test]
fn run_detach_pid_file() {
    let t = Ctx::new("detach-pidfile");
    let b = t.sh("exec sleep 1000");
    let id = t.id("dpf");
    let pid_file = t.path("pid");
    t.rt(&["run", "-d", "--pid-file", pid_file.to_str().unwrap(), "--bundle", b.dir.to_str().unwrap(), &id]).ok();
    let pid: i64 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(t.state(&id)["pid"].as_i64(), Some(pid));
    // `run -d` returns once sh runs; sh then execs sleep in the same process.
    wait_cmdline(pid as i32, "sleep\u{0}1000\u{0}");
}

#[test]
fn kill_all_signals_every_process() {
    let t = Ctx::new("kill-all");
    // Without a pid namespace, killing init does not take its children along:
    // only --all (through the cgroup) reaches them.
    let mut b = t.sh("sleep 1000 & sleep 1000 & echo ready; wait");
    b.config["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "pid");
    b.save();
    let id = t.id("killall");
    let created = t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    wait_for(|| created.reread_stdout().contains("ready"));
    t.rt(&["kill", "--all", &id, "KILL"]).ok();
    t.wait_status(&id, "stopped");
    assert!(processes_using(&b.rootfs()).is_empty(), "children of init survived kill --all");
}

#[test]
fn parallel_creates_in_one_root() {
    // Concurrent runtime invocations on one --root must not corrupt each other.
    let t = Ctx::new("parallel");
    let bundle = t.sh("exec sleep 1000");
    let ids: Vec<String> = (0..8).map(|i| t.id(&format!("par{i}"))).collect();
    let children: Vec<_> = ids
        .iter()
        .map(|id| {
            t.cmd(&["create", "--bundle", bundle.dir.to_str().unwrap(), id])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let mut listed = t.rt(&["list", "-q"]).lines();
    listed.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(listed, want);
    let pids: std::collections::BTreeSet<i64> = ids.iter().map(|id| t.state(id)["pid"].as_i64().unwrap()).collect();
    assert_eq!(pids.len(), ids.len(), "every container has its own init");
}

#[test]
fn delete_force_kills_every_process() {
    // Without a pid namespace, init's children only die if the runtime kills
    // the whole container (runc: through the cgroup), as runc's delete -f does.
    let t = Ctx::new("delete-all");
    let mut b = t.sh("sleep 1000 & sleep 1000 & echo ready; wait");
    b.config["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "pid");
    b.save();
    let id = t.id("delall");
    let created = t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    wait_for(|| created.reread_stdout().contains("ready"));
    t.rt(&["delete", "--force", &id]).ok();
    wait_for(|| processes_using(&b.rootfs()).is_empty());
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn harness_bundles_match_runc_spec() {
    // Self-check: the Rust bundle builder and scripts/make-bundle.sh both write
    // `runc spec`'s config (terminal off, args replaced), and the script's
    // bundle runs.
    let t = Ctx::new("harness");
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"].into_iter().find(|p| Path::new(p).exists()).expect("runc installed");
    let spec_dir = t.path("runc-spec");
    fs::create_dir_all(&spec_dir).unwrap();
    assert!(std::process::Command::new(runc).args(["spec", "--bundle", spec_dir.to_str().unwrap()]).status().unwrap().success());
    let strip = |mut v: Value| {
        v["process"].as_object_mut().unwrap().remove("args");
        v["process"].as_object_mut().unwrap().remove("terminal");
        v
    };
    let reference = strip(serde_json::from_str(&fs::read_to_string(spec_dir.join("config.json")).unwrap()).unwrap());
    assert_eq!(strip(default_config(&["true"])), reference, "tests/common default_config");

    let script_dir = t.path("script-bundle");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-bundle.sh");
    let status = std::process::Command::new("bash")
        .args([script, script_dir.to_str().unwrap(), "sh", "-c", "echo \"made by $0\"", "script"])
        .status()
        .unwrap();
    assert!(status.success());
    let config: Value = serde_json::from_str(&fs::read_to_string(script_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"], json!(["sh", "-c", "echo \"made by $0\"", "script"]));
    assert_eq!(config["process"]["terminal"], false);
    assert_eq!(strip(config), reference, "scripts/make-bundle.sh");
    let id = t.id("script");
    let out = t.rt(&["run", "--bundle", script_dir.to_str().unwrap(), &id]);
    out.ok();
    assert_eq!(out.stdout, "made by script\n");
}
