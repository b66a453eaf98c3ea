//! Refusals: each bad input gives a clear error on stderr, a non-zero exit,
//! and leaves nothing behind (no state dir, no process, no mount).

#[macro_use]
mod common;

use common::*;
use std::fs;

/// Create `bundle` under a fresh id (with `create`, then `run`), expect a
/// refusal whose stderr contains `message`, and check nothing is left.
#[track_caller]
fn assert_refused(t: &Ctx, bundle: &Bundle, message: &str) -> String {
    let mut stderr = String::new();
    for verb in ["create", "run"] {
        let id = t.id(verb);
        let out = t.rt(&[verb, "--bundle", bundle.dir.to_str().unwrap(), &id]);
        out.fails();
        assert_eq!(out.code, 1, "runtime errors exit 1: {out}");
        out.stderr_has(message);
        assert!(!out.stdout.contains("should-not-run"), "the process ran: {out}");
        t.assert_nothing_left(&id, &bundle.dir);
        stderr = out.stderr;
    }
    stderr
}

fn refuse_with(tag: &str, message: &str, mutate: impl FnOnce(&mut Value)) {
    let t = Ctx::new(tag);
    let mut b = t.sh("echo should-not-run");
    mutate(&mut b.config);
    b.save();
    assert_refused(&t, &b, message);
}

#[test]
fn malformed_json() {
    let t = Ctx::new("bad-json");
    let b = t.sh("echo should-not-run");
    fs::write(b.config_path(), "{\"ociVersion\": \"1.0.2\", \"process\": {").unwrap();
    // runc: "unexpected EOF"; stele should name the file or JSON. Either
    // way it must be an error about the config, not a crash.
    let err = assert_refused(&t, &b, "");
    let lower = err.to_lowercase();
    assert!(lower.contains("eof") || lower.contains("json") || lower.contains("config"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn config_not_json_at_all() {
    let t = Ctx::new("bad-json2");
    let b = t.sh("echo should-not-run");
    fs::write(b.config_path(), "{bad json").unwrap();
    // runc words Go's decoder error ("invalid character"); stele names the
    // file and the position.
    let needle = if runtime_is_runc() { "invalid character" } else { "config.json: invalid JSON" };
    assert_refused(&t, &b, needle);
}

#[test]
fn missing_config() {
    let t = Ctx::new("no-config");
    let b = t.sh("echo should-not-run");
    fs::remove_file(b.config_path()).unwrap();
    assert_refused(&t, &b, "config.json");
}

#[test]
fn wrong_typed_field() {
    // runc: json: cannot unmarshal string into Go struct field User.process.user.uid of type uint32
    refuse_with("bad-type", "uid", |c| c["process"]["user"]["uid"] = json!("zero"));
}

#[test]
fn wrong_typed_args() {
    refuse_with("bad-args-type", "args", |c| c["process"]["args"] = json!("sh -c true"));
}

#[test]
fn empty_args() {
    refuse_with("empty-args", "args must not be empty", |c| c["process"]["args"] = json!([]));
}

#[test]
fn missing_args() {
    refuse_with("missing-args", "args must not be empty", |c| {
        c["process"].as_object_mut().unwrap().remove("args");
    });
}

#[test]
fn relative_cwd() {
    // runc: "Cwd must be an absolute path"
    refuse_with("rel-cwd", "absolute", |c| c["process"]["cwd"] = json!("tmp"));
}

#[test]
fn missing_rootfs() {
    // runc: "invalid rootfs: stat BUNDLE/nope: no such file or directory"
    refuse_with("no-rootfs", "no such file or directory", |c| c["root"]["path"] = json!("nope"));
}

#[test]
fn rootfs_is_a_regular_file() {
    // runc: "... fork/exec /proc/self/exe: not a directory"
    let t = Ctx::new("rootfs-file");
    let mut b = t.sh("echo should-not-run");
    fs::write(b.dir.join("rootfile"), "not a directory").unwrap();
    b.config["root"]["path"] = json!("rootfile");
    b.save();
    assert_refused(&t, &b, "not a directory");
}

#[test]
fn missing_binary() {
    // runc: exec: "nosuchbin": executable file not found in $PATH (exit 1)
    let t = Ctx::new("no-binary");
    let mut b = t.sh("true");
    b.set_args(&["nosuchbin"]);
    assert_refused(&t, &b, "executable file not found");
    let err = assert_refused(&t, &b, "nosuchbin");
    assert!(err.contains("$PATH"), "{err}");
}

#[test]
fn missing_binary_absolute_path() {
    let t = Ctx::new("no-binary-abs");
    let mut b = t.sh("true");
    b.set_args(&["/bin/nosuchbin"]);
    assert_refused(&t, &b, "no such file or directory");
}

#[test]
fn non_executable_binary() {
    // runc: exec: "/etc/passwd": permission denied
    let t = Ctx::new("not-exec");
    let mut b = t.sh("true");
    b.set_args(&["/etc/passwd"]);
    assert_refused(&t, &b, "permission denied");
}

#[test]
fn bad_rootfs_propagation() {
    // runc: "rootfsPropagation=bogus is not supported"
    refuse_with("bad-prop", "rootfsPropagation", |c| c["linux"]["rootfsPropagation"] = json!("bogus"));
}

#[test]
fn unknown_namespace_type() {
    refuse_with("bad-ns", "namespace", |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "bogus"}))
    });
}

#[test]
fn unknown_id_errors() {
    let t = Ctx::new("unknown-id2");
    for verb in [&["state"][..], &["kill"], &["delete"], &["start"], &["kill", "--all"]] {
        let mut args: Vec<&str> = verb.to_vec();
        args.push("never-created-id");
        let out = t.rt(&args);
        // runc: "container does not exist"; stele names the id as well.
        let needle = if runtime_is_runc() { "container does not exist".to_string() } else { "container never-created-id does not exist".to_string() };
        out.fails_with_1().stderr_has(&needle);
    }
    assert!(!t.root().join("never-created-id").exists());
}

#[test]
fn duplicate_id_leaves_first_intact() {
    let t = Ctx::new("dup-id2");
    let b = t.sh("exec sleep 1000");
    let id = t.id("dup");
    t.create(&b, &id);
    // runc: "container with given ID already exists"
    let b2 = t.sh("echo should-not-run");
    let out = t.rt(&["run", "--bundle", b2.dir.to_str().unwrap(), &id]);
    out.fails_with_1().stderr_has("already exists");
    assert!(!out.stdout.contains("should-not-run"));
    assert!(processes_using(&b2.dir).is_empty());
    assert_eq!(t.state(&id)["status"], "created");
}

#[test]
fn start_running_container() {
    let t = Ctx::new("start-running");
    let b = t.sh("exec sleep 1000");
    let id = t.id("sr");
    t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    // runc: "cannot start an already running container"
    t.rt(&["start", &id]).fails_with_1().stderr_has("running");
}

#[test]
fn invalid_ids_are_refused() {
    // runc refuses these too ("invalid container ID format", or ENAMETOOLONG).
    let t = Ctx::new("bad-ids");
    let b = t.sh("echo should-not-run");
    let long = "a".repeat(1100);
    for id in ["a/b", "..", ".", "a\tb", "a\nb", "bad\u{1}id", long.as_str(), ""] {
        let out = t.rt(&["create", "--bundle", b.dir.to_str().unwrap(), id]);
        out.fails();
        t.track(id);
        assert!(!t.root().join("a").exists(), "state created for {id:?}");
        let listed = t.rt(&["list", "-q"]);
        assert_eq!(listed.stdout.trim(), "", "{id:?} left state: {listed}");
        assert!(processes_using(&b.dir).is_empty());
    }
    // Control: the same bundle with a valid id works.
    let id = t.id("valid");
    let created = t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    t.wait_status(&id, "stopped");
    assert_eq!(created.reread_stdout(), "should-not-run\n");
}

#[test]
fn bundle_dir_missing() {
    let t = Ctx::new("no-bundle");
    let id = t.id("nobundle");
    let missing = t.path("no-such-bundle");
    let out = t.rt(&["create", "--bundle", missing.to_str().unwrap(), &id]);
    // runc: "chdir BUNDLE: no such file or directory"
    out.fails_with_1().stderr_has("no such file or directory");
    assert!(!t.root().join(&id).exists());
}

#[test]
fn relative_mount_destination() {
    // runc 1.1.5 only warns ("mount destination rel/x is not absolute") and runs.
    stele_only!();
    refuse_with("rel-mount", "absolute", |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "mnt", "type": "tmpfs", "source": "tmpfs"}))
    });
}

#[test]
fn unknown_capability() {
    // runc 1.1.5 only warns ("ignoring unknown or unavailable capabilities: [CAP_BOGUS]").
    stele_only!();
    refuse_with("bad-cap", "CAP_BOGUS", |c| {
        c["process"]["capabilities"]["bounding"].as_array_mut().unwrap().push(json!("CAP_BOGUS"))
    });
}

#[test]
fn mount_destination_dotdot_escape() {
    // A destination escaping the rootfs with .. must never mount on the host.
    let t = Ctx::new("mount-escape");
    let target = t.path("escape-target");
    fs::create_dir_all(&target).unwrap();
    let mut b = t.sh("ls /mnt; echo ran");
    let rel = format!("/../../../../../../../..{}", target.display());
    b.add_mount(json!({"destination": rel, "type": "tmpfs", "source": "tmpfs"}));
    let id = t.id("escape");
    let out = t.rt(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    let _ = t.rt(&["delete", "--force", &id]);
    // Either refused or contained in the rootfs; never on the host path.
    assert!(mounts_mentioning(&target).is_empty(), "mounted on the host: {out}");
    if out.code == 0 {
        assert!(out.stdout.ends_with("ran\n"), "{out}");
    } else {
        out.fails();
    }
    t.assert_nothing_left(&id, &b.dir);
    // Control: the runtime does run containers.
    assert_eq!(t.run_sh("echo control"), "control\n");
}

#[test]
fn stele_ids_are_strict() {
    stele_only!();
    let t = Ctx::new("stele-ids");
    let b = t.sh("echo should-not-run");
    for id in ["x/y", "..", "a\u{7f}b", &"i".repeat(1025)] {
        t.rt(&["create", "--bundle", b.dir.to_str().unwrap(), id]).fails_with_1().stderr_has("id");
    }
}

#[test]
fn hostname_without_uts_namespace() {
    // runc: "unable to set hostname without a private UTS namespace"
    refuse_with("hostname-no-uts", "UTS", |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "uts")
    });
}

#[test]
fn bind_mount_source_missing() {
    // runc: error mounting "/nonexistent/src" to rootfs at "/mnt": stat /nonexistent/src: no such file or directory
    refuse_with("bind-missing", "no such file or directory", |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/mnt", "type": "bind", "source": "/nonexistent/src", "options": ["bind"]}))
    });
}

#[test]
fn unknown_filesystem_type() {
    // runc: mount x:/mnt (via /proc/self/fd/6): no such device
    refuse_with("bad-fstype", "no such device", |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/mnt", "type": "nosuchfs", "source": "x"}))
    });
}

#[test]
fn negative_gid() {
    refuse_with("neg-gid", "additionalGids", |c| c["process"]["user"]["additionalGids"] = json!([-1]));
}

/// A `<root>/<id>` directory is the state of a stele from before one file
/// per container: create and delete say so (instead of "already exists" /
/// "does not exist"), list skips it, and none of them touches it.
#[test]
fn old_layout_state_dir_is_named() {
    stele_only!();
    let t = Ctx::new("old-layout");
    let id = t.id("old");
    let dir = t.root().join(&id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("state.json"), "{}").unwrap();
    let b = t.sh("echo should-not-run");
    for args in [vec!["create", "--bundle", b.dir.to_str().unwrap(), &id], vec!["delete", &id], vec!["state", &id]] {
        let out = t.rt(&args);
        out.fails();
        out.stderr_has("state directory from an older stele");
        assert!(!out.stdout.contains("should-not-run"), "{out}");
    }
    let list = t.rt(&["list", "--format", "json"]);
    list.ok();
    assert!(!list.stdout.contains(&id), "{list}");
    assert!(dir.join("state.json").is_file(), "the old state was touched");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn intel_rdt_is_refused() {
    stele_only!();
    refuse_with("intel-rdt", "linux.intelRdt", |c| c["linux"]["intelRdt"] = json!({"closID": "guaranteed"}));
}

#[test]
fn time_offsets_need_a_new_time_namespace() {
    stele_only!();
    refuse_with("timens-noiso", "linux.timeOffsets: needs a new time namespace", |c| {
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 10}})
    });
    refuse_with("timens-clock", "unknown clock \"realtime\"", |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"realtime": {"secs": 10}});
    });
}

#[test]
fn bad_scheduler_io_priority_and_memory_policy() {
    stele_only!(); // runc 1.1.5 predates these fields
    refuse_with("sched-nice", "process.scheduler.nice", |c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 40})
    });
    refuse_with("ioprio", "process.ioPriority.priority", |c| {
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9})
    });
    refuse_with("mempolicy", "linux.memoryPolicy.nodes", |c| {
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE", "nodes": "0-x"})
    });
}

#[test]
fn bad_user_namespace_configs() {
    stele_only!();
    let userns = |c: &mut Value| c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    refuse_with("userns-nomap", "linux.uidMappings: required with a new user namespace", |c| userns(c));
    refuse_with("userns-nons", "linux.uidMappings: given, but linux.namespaces has no user namespace", |c| {
        c["linux"]["uidMappings"] = map.clone();
    });
    refuse_with("userns-unmapped", "process.user.uid: 70000 is not mapped by linux.uidMappings", |c| {
        userns(c);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map.clone();
        c["process"]["user"] = json!({"uid": 70000, "gid": 0});
    });
    refuse_with("userns-overlap", "linux.gidMappings[1]: overlaps linux.gidMappings[0]", |c| {
        userns(c);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 10}, {"containerID": 5, "hostID": 200000, "size": 10}]);
    });
    // the runtime's own user namespace cannot be entered (setns: EINVAL)
    refuse_with("userns-join", "linux.namespaces: join user namespace /proc/self/ns/user", |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user", "path": "/proc/self/ns/user"}));
    });
}
