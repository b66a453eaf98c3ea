//! CVE-2021-30465: a mount destination that is (or is swapped to) a symlink
//! pointing at a host path. Every destination is resolved inside the rootfs
//! by fd, so the mount lands inside the rootfs and the host path is never
//! mounted on or written.
mod security_util;
use security_util::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn victim(tag: &str) -> TempDir {
    let v = TempDir::new(tag);
    std::fs::write(v.path().join("SECRET"), "host secret\n").unwrap();
    v
}

fn assert_victim_untouched(v: &TempDir) {
    assert_eq!(ls(v.path()), vec!["SECRET".to_string()], "host victim dir changed");
    assert_eq!(std::fs::read_to_string(v.path().join("SECRET")).unwrap(), "host secret\n");
    assert!(host_mounts_with(v.path().to_str().unwrap()).is_empty(), "host victim is a mountpoint");
}

#[test]
fn symlinked_mount_destination_resolves_inside_the_rootfs() {
    need_root!();
    let v = victim("30465v");
    let payload = TempDir::new("30465p");
    std::fs::write(payload.path().join("PAYLOAD"), "payload\n").unwrap();
    let rt = Rt::new("30465");
    let mut b = Bundle::new("30465", &["true"]);
    let root = b.rootfs();
    std::fs::remove_dir(root.join("mnt")).unwrap();
    // absolute and relative links to the host victim
    std::os::unix::fs::symlink(v.path(), root.join("mnt")).unwrap();
    std::os::unix::fs::symlink(format!("../../../../../../..{}", v.path().display()), root.join("rel")).unwrap();
    let mut mounts = default_mounts();
    let m = mounts.as_array_mut().unwrap();
    m.push(json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    m.push(json!({"destination": "/rel", "type": "bind", "source": payload.path(), "options": ["bind", "ro"]}));
    b.config["mounts"] = mounts;
    b.sh("echo inside > /mnt/written && echo WROTE; cat /mnt/SECRET 2>&1; cat /rel/PAYLOAD; cat /rel/SECRET 2>&1; \
          grep -c tmpfs /proc/self/mountinfo >/dev/null; ls -a /mnt; echo END");
    let before = tree_digest(&root);
    let o = rt.run(&b, &rt.id("c"));
    eprintln!("{o:?}");
    // Either refused, or the mounts landed inside the root (payload visible
    // through /rel, the host SECRET never visible).
    assert!(!o.stdout.contains("host secret"), "host dir visible inside: {o:?}");
    if o.ok() {
        assert!(o.stdout.contains("WROTE") && o.stdout.contains("payload"), "{o:?}");
    }
    assert_victim_untouched(&v);
    // the tmpfs took the write; the image dir holds at most new empty mountpoint dirs
    let after = tree_digest(&root);
    for (k, d) in &before {
        assert_eq!(after.get(k), Some(d), "image entry {k} changed");
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        assert!(after[k].starts_with("d:"), "runtime created a non-directory {k} in the image");
    }
}

#[test]
fn racing_dir_symlink_swap_never_reaches_the_host() {
    need_root!();
    let v = victim("30465rv");
    let rt = Rt::new("30465r");
    let mut b = Bundle::new("30465r", &["true"]);
    let root = b.rootfs();
    // mnt (dir) <-> swp (symlink to the host victim), exchanged atomically
    std::os::unix::fs::symlink(v.path(), root.join("swp")).unwrap();
    let mut mounts = default_mounts();
    mounts.as_array_mut().unwrap().push(json!({"destination": "/mnt/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    std::fs::create_dir(root.join("mnt/data")).unwrap();
    b.config["mounts"] = mounts;
    b.sh("echo x > /mnt/data/f 2>/dev/null && echo WROTE; cat /mnt/SECRET /mnt/data/SECRET 2>/dev/null; echo END");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s2, r2) = (stop.clone(), root.clone());
    let swapper = std::thread::spawn(move || {
        let (a, c) = (r2.join("mnt"), r2.join("swp"));
        let mut n = 0u64;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = stele::sys::exchange(&a, &c);
            n += 1;
        }
        n
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut ok, mut failed, mut wrote) = (0, 0, 0);
    for i in 0..40 {
        if Instant::now() > deadline {
            break;
        }
        let o = rt.run(&b, &rt.id(&format!("r{i}")));
        assert!(!o.stdout.contains("host secret"), "host dir visible inside: {o:?}");
        assert!(!o.timed_out, "{o:?}");
        if o.ok() { ok += 1 } else { failed += 1 }
        if o.stdout.contains("WROTE") {
            wrote += 1;
        }
        assert_victim_untouched(&v);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    eprintln!("runs ok={ok} failed={failed} wrote={wrote} swaps={swaps}");
    assert!(swaps > 1000, "the swapper did not race");
    assert_victim_untouched(&v);
    assert!(rt.list_ids().iter().all(|id| rt.state(id).map(|s| s["status"] == "stopped").unwrap_or(true)));
}
