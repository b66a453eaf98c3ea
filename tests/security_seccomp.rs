//! seccomp end to end through the runtime, from `stele spec`'s default config.
mod security_util;
use security_util::*;
use serde_json::json;

/// A busybox bundle whose config is `stele spec`'s default, args edited.
fn spec_bundle(tag: &str, script: &str) -> Bundle {
    let mut b = Bundle::new(tag, &["true"]);
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    let mut c = std::process::Command::new(stele_bin());
    c.args(["spec", "--bundle", b.path().to_str().unwrap()]);
    let o = exec_timeout(c, T);
    assert!(o.ok(), "stele spec: {o:?}");
    b.config = serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    assert!(b.config["linux"]["seccomp"].is_object(), "stele spec must include the default seccomp profile");
    b.config["process"]["terminal"] = json!(false);
    b.sh(script);
    b
}

fn add_rule(b: &mut Bundle, rule: serde_json::Value) {
    b.config["linux"]["seccomp"]["syscalls"].as_array_mut().unwrap().push(rule);
    b.write();
}

#[test]
fn default_profile_status_and_denials() {
    need_root!();
    let rt = Rt::new("scd");
    let b = spec_bundle(
        "scd",
        "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; \
         unshare -n true; echo unshare=$?; mount -t tmpfs none /tmp; echo mount=$?; echo END",
    );
    let o = rt.run(&b, &rt.id("c"));
    eprintln!("{o:?}");
    assert!(o.ok(), "{o:?}");
    assert!(o.stdout.contains("Seccomp:\t2"), "{o:?}");
    assert!(o.stdout.contains("NoNewPrivs:\t1"), "{o:?}");
    assert!(o.stdout.contains("CapEff:\t0000000020000420"), "{o:?}");
    assert!(o.stdout.contains("unshare=1") && o.stderr.contains("unshare(0x40000000): Operation not permitted"), "{o:?}");
    assert!(o.stdout.contains("mount=") && !o.stdout.contains("mount=0"), "{o:?}");
    // busybox words EPERM from mount(2) as "permission denied (are you root?)"
    assert!(o.stderr.contains("mount: permission denied") || o.stderr.contains("Operation not permitted"), "{o:?}");
}

#[test]
fn errno_ret_99_on_mkdir() {
    need_root!();
    let rt = Rt::new("sce");
    let mut b = spec_bundle("sce", "mkdir /dev/shm/x; echo rc=$?");
    add_rule(&mut b, json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99}));
    let o = rt.run(&b, &rt.id("c"));
    eprintln!("{o:?}");
    assert!(o.stdout.contains("rc=1"), "{o:?}");
    // strerror(99) = EADDRNOTAVAIL
    assert!(o.stderr.contains("Cannot assign requested address") || o.stderr.contains("Address not available"), "{o:?}");
}

#[test]
fn kill_process_gives_sigsys() {
    need_root!();
    let rt = Rt::new("sck");
    let mut b = spec_bundle("sck", "echo $$");
    b.set_args(&["/bin/sh", "-c", "echo pid $$; echo after"]);
    add_rule(&mut b, json!({"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"}));
    let o = rt.run(&b, &rt.id("c"));
    eprintln!("{o:?}");
    assert_eq!(o.code, Some(128 + libc::SIGSYS), "{o:?}");
    assert!(!o.stdout.contains("after"), "{o:?}");
}

#[test]
fn unknown_syscall_name_still_loads() {
    need_root!();
    let rt = Rt::new("scu");
    let mut b = spec_bundle("scu", "grep '^Seccomp:' /proc/self/status; echo ok");
    add_rule(&mut b, json!({"names": ["no_such_syscall_stele", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}));
    let o = rt.run(&b, &rt.id("c"));
    assert!(o.ok() && o.stdout.contains("Seccomp:\t2") && o.stdout.contains("ok"), "{o:?}");
}

#[test]
fn no_new_privileges_false_with_profile() {
    need_root!();
    let rt = Rt::new("scn");
    let mut b = spec_bundle("scn", "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; unshare -n true; echo unshare=$?");
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.write();
    let o = rt.run(&b, &rt.id("c"));
    eprintln!("{o:?}");
    assert!(o.ok(), "{o:?}");
    assert!(o.stdout.contains("Seccomp:\t2") && o.stdout.contains("NoNewPrivs:\t0"), "{o:?}");
    assert!(o.stdout.contains("CapEff:\t0000000020000420"), "{o:?}");
    assert!(o.stdout.contains("unshare=1"), "{o:?}");
}
