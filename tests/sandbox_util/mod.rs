//! Helpers for the `stele run --image REF -- CMD` (sandbox) suites.
#![allow(dead_code)]

use crate::common::{mounts_mentioning, runtime, Ctx, Out};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `stele --root R run --name ID OPTS... -- sh -c SCRIPT`; the id is tracked.
pub fn sb(ctx: &Ctx, opts: &[&str], script: &str) -> (Out, String) {
    let id = ctx.id("sb");
    let mut args: Vec<&str> = vec!["run", "--name", &id];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    (ctx.rt(&args), id)
}

/// Like [`sb`] but the job is `ARGV...` (no shell).
pub fn sb_argv(ctx: &Ctx, opts: &[&str], argv: &[&str]) -> (Out, String) {
    let id = ctx.id("sb");
    let mut args: Vec<&str> = vec!["run", "--name", &id];
    args.extend_from_slice(opts);
    args.push("--");
    args.extend_from_slice(argv);
    (ctx.rt(&args), id)
}

/// Host-mode sandbox running `sh -c SCRIPT`, asserting success; stdout.
#[track_caller]
pub fn host_ok(ctx: &Ctx, opts: &[&str], script: &str) -> String {
    let mut o = vec!["--image", "host"];
    o.extend_from_slice(opts);
    let (out, id) = sb(ctx, &o, script);
    out.ok();
    assert_clean(ctx, &id);
    out.stdout
}

/// Cgroup directories named `id` in any v1 hierarchy or the v2 tree.
pub fn cgroups_named(id: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, id: &str, depth: u32, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let p = e.path();
            // Exactly the id: "sb-1-1" must not match a concurrent test's "sb-1-10".
            if e.file_name().to_string_lossy() == id {
                out.push(p.clone());
            }
            if depth > 0 {
                walk(&p, id, depth - 1, out);
            }
        }
    }
    let mut out = vec![];
    walk(Path::new("/sys/fs/cgroup"), id, 4, &mut out);
    out
}

/// After a sandbox ended: no state dir, no bundle dir, no mount, no cgroup.
#[track_caller]
pub fn assert_clean(ctx: &Ctx, id: &str) {
    let state = ctx.root().join(id);
    assert!(!state.exists(), "state dir left: {}", state.display());
    let bundle = ctx.root().join(".sandbox").join(id);
    assert!(!bundle.exists(), "bundle dir left: {}", bundle.display());
    let m = mounts_mentioning(ctx.root());
    assert!(m.is_empty(), "mounts left: {m:?}");
    let cg = cgroups_named(id);
    assert!(cg.is_empty(), "cgroups left: {cg:?}");
}

/// Start `stele run --name ID OPTS -- sh -c SCRIPT` in the background with
/// stdout/stderr in files under the test dir.
pub fn spawn_sb(ctx: &Ctx, opts: &[&str], script: &str, tag: &str) -> (std::process::Child, String, PathBuf) {
    let id = ctx.id(tag);
    let outp = ctx.path(&format!("{tag}.out"));
    let mut c = Command::new(runtime());
    c.arg("--root").arg(ctx.root()).args(["run", "--name", &id]).args(opts).args(["--", "sh", "-c", script]);
    c.stdin(Stdio::null())
        .stdout(std::fs::File::create(&outp).unwrap())
        .stderr(std::fs::File::create(ctx.path(&format!("{tag}.err"))).unwrap());
    (c.spawn().unwrap(), id, outp)
}

/// Wait until `path` contains `needle`.
#[track_caller]
pub fn wait_for_text(path: &Path, needle: &str, within: Duration) -> String {
    let t = Instant::now();
    loop {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        if s.contains(needle) {
            return s;
        }
        assert!(t.elapsed() < within, "{needle:?} not seen in {} within {within:?}: {s:?}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait for a child with a bound; its exit code (128+N for a signal).
#[track_caller]
pub fn wait_child(c: &mut std::process::Child, within: Duration) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let t = Instant::now();
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0));
        }
        if t.elapsed() > within {
            let _ = c.kill();
            panic!("stele did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Read a `--json-status` file.
pub fn json_status(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// The CapEff mask of a `/proc/self/status` text.
pub fn cap_eff(status: &str) -> u64 {
    let v = crate::common::status_field(status, "CapEff").expect("CapEff");
    u64::from_str_radix(v, 16).unwrap()
}
