//! CVE-2019-5736: a container process overwriting the runtime binary through
//! /proc/<pid>/exe of a runtime process that has entered its namespaces.
//!
//! stele has no `exec`; the only stele process that ever sits in a
//! container's namespaces is a container's init between clone3 and execve.
//! With `create`, that window is as long as we like (the init blocks on
//! exec.fifo), and a *second* container that joins the pid namespace of a
//! running attacker container (a pod sharing its pid namespace) puts that
//! init in the attacker's view. The attacker then scans /proc for it and
//! tries every /proc/<pid> handle to the host: exe (readlink, read, write),
//! root, cwd, fd, environ, mem. All must be denied (the init is
//! non-dumpable), and the runtime binary (a private copy) must be unchanged.
mod security_util;
use security_util::*;
use std::time::{Duration, Instant};

const ATTACK: &str = r#"
me=$$
i=0
while [ $i -lt 300 ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$me" ] && continue
    c=$(cat $d/comm 2>/dev/null)
    if [ "$c" = "stele-5736" ]; then
      echo "FOUND pid=$p comm=$c"
      l=$(readlink $d/exe 2>&1) && echo "EXE_READLINK_OK $l" || echo "EXE_READLINK_DENIED $l"
      cat $d/exe >/dev/null 2>&1 && echo EXE_READ_OK || echo EXE_READ_DENIED
      (echo pwned >> $d/exe) 2>/dev/null && echo EXE_WRITE_OK || echo EXE_WRITE_DENIED
      (exec 7<$d/exe) 2>/dev/null && echo EXE_OPEN_OK || echo EXE_OPEN_DENIED
      ls $d/root/ >/dev/null 2>&1 && echo ROOT_OK || echo ROOT_DENIED
      ls $d/cwd/ >/dev/null 2>&1 && echo CWD_OK || echo CWD_DENIED
      # the fd *names* are listable by a same-uid root (generic permission on
      # the dir); following any of them needs ptrace access
      echo "FD_NAMES $(ls $d/fd/ 2>&1 | tr '\n' ' ')"
      for f in $d/fd/*; do
        readlink $f >/dev/null 2>&1 && echo "FD_LINK_OK $f"
        ls $f/ >/dev/null 2>&1 && echo "FD_OPEN_OK $f"
      done
      echo FD_CHECKED
      cat $d/environ >/dev/null 2>&1 && echo ENVIRON_OK || echo ENVIRON_DENIED
      cat $d/maps >/dev/null 2>&1 && echo MAPS_OK || echo MAPS_DENIED
      # every process we can see: none may expose a stele binary
      for e in /proc/[0-9]*/exe; do
        t=$(readlink $e 2>/dev/null) && echo "EXE_OF $e $t"
      done
      echo DONE
      # stay alive a while: pid 1 of the shared pid namespace takes B with it
      sleep 3
      exit 0
    fi
  done
  i=$((i+1))
  sleep 0.05
done
echo NOTFOUND
"#;

#[test]
fn runtime_binary_not_exposed_to_a_container_sharing_the_pid_namespace() {
    need_root!();
    // A private copy of the runtime, run for both containers.
    let bindir = TempDir::new("5736bin");
    let copy = bindir.path().join("stele-5736");
    std::fs::copy(stele_bin(), &copy).unwrap();
    let before = sha256_file(&copy);
    let rt = Rt::with_bin("5736", copy.clone());

    // Attacker: container A, running, scanning its /proc.
    let mut a = Bundle::new("5736a", &["true"]);
    a.sh(ATTACK);
    let ida = rt.id("a");
    let mut cmd = rt.cmd();
    cmd.args(["run", "-b", a.path().to_str().unwrap(), &ida]);
    let att = std::thread::spawn(move || exec_timeout(cmd, Duration::from_secs(40)));

    // Wait until A runs, then create B in A's pid namespace.
    let deadline = Instant::now() + Duration::from_secs(20);
    let apid = loop {
        if let Some(p) = rt.pid(&ida) {
            if rt.state(&ida).map(|s| s["status"] == "running").unwrap_or(false) {
                break p;
            }
        }
        assert!(Instant::now() < deadline, "attacker container never ran");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut b = Bundle::new("5736b", &["true"]);
    b.config["linux"]["namespaces"] = serde_json::json!([
        {"type": "pid", "path": format!("/proc/{apid}/ns/pid")},
        {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
    ]);
    b.write();
    let idb = rt.id("b");
    let o = rt.create(&b, &idb);
    assert!(o.ok(), "create B failed: {o:?}");
    let bpid = rt.pid(&idb).expect("B pid");
    // On the host, B's init is still the stele copy (the window is real).
    let host_exe = std::fs::read_link(format!("/proc/{bpid}/exe")).unwrap();
    assert_eq!(host_exe, copy, "B's init should still be the runtime before start");
    // ... and it is not dumpable (host side: /proc/<pid>/exe is owned by root:root mode and
    // status shows nothing; the effect is checked from inside below).

    let out = att.join().unwrap();
    eprintln!("attacker output:\n{}", out.all());
    // (B's init dies with A: A's init was pid 1 of the shared pid namespace.)
    rt.delete(&idb);
    rt.delete(&ida);

    let s = &out.stdout;
    assert!(s.contains("FOUND"), "the attacker never saw B's init: {out:?}");
    assert!(s.contains("DONE"), "{out:?}");
    for denied in [
        "EXE_READLINK_DENIED",
        "EXE_READ_DENIED",
        "EXE_WRITE_DENIED",
        "EXE_OPEN_DENIED",
        "ROOT_DENIED",
        "CWD_DENIED",
        "FD_CHECKED",
        "ENVIRON_DENIED",
        "MAPS_DENIED",
    ] {
        assert!(s.contains(denied), "expected {denied}: {s}");
    }
    assert!(!s.contains("FD_LINK_OK") && !s.contains("FD_OPEN_OK"), "init fds reachable: {s}");
    for l in s.lines().filter(|l| l.starts_with("EXE_OF")) {
        assert!(!l.contains("stele"), "a container process exposed the runtime binary: {l}");
    }
    assert_eq!(sha256_file(&copy), before, "the runtime binary was modified");
}

#[test]
fn container_proc_self_exe_is_never_the_runtime() {
    need_root!();
    let bindir = TempDir::new("5736bin2");
    let copy = bindir.path().join("stele-5736");
    std::fs::copy(stele_bin(), &copy).unwrap();
    let before = sha256_file(&copy);
    let rt = Rt::with_bin("5736s", copy.clone());
    let mut b = Bundle::new("5736s", &["true"]);
    // pid 1 is the container's own process; /proc/self/exe, /proc/1/exe are
    // the container's busybox; writing through them hits the read-only root.
    b.sh(
        "readlink /proc/self/exe; readlink /proc/1/exe; \
         (echo x >> /proc/self/exe) 2>&1; (echo x >> /proc/1/exe) 2>&1; \
         for e in /proc/[0-9]*/exe; do readlink $e; done; echo END",
    );
    let id = rt.id("s");
    let o = rt.run(&b, &id);
    assert!(o.stdout.contains("END"), "{o:?}");
    assert!(!o.all().contains("stele"), "runtime visible: {o:?}");
    assert!(o.stdout.contains("/bin/busybox"), "{o:?}");
    assert_eq!(sha256_file(&copy), before);
    let bb = sha256_file(std::path::Path::new("/bin/busybox"));
    assert_eq!(sha256_file(&b.rootfs().join("bin/busybox")), bb, "the image's busybox changed");
}
