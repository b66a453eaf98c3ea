//! Images end to end through the runtime binary: `stele image import`,
//! `stele bundle create --image`, `stele run`, `stele image verify`,
//! `stele verify --bundle`. Each test has its own `--root` and `--store`.
mod image_util;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image_util::*;
use serde_json::{json, Value};
use stele::image::{Digest, ANN_LAYERS};

const BUSYBOX: &str = "/usr/bin/busybox";

struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        Env { dir: scratch(&format!("run-{name}")) }
    }
    fn store(&self) -> PathBuf {
        self.dir.join("store")
    }
    fn stele(&self, args: &[&str]) -> Output {
        let o = Command::new(env!("CARGO_BIN_EXE_stele"))
            .arg("--root")
            .arg(self.dir.join("state"))
            .arg("--store")
            .arg(self.store())
            .args(args)
            .output()
            .unwrap();
        eprintln!(
            "stele {args:?}: {:?}\n--- stdout\n{}--- stderr\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.stele(args);
        assert!(o.status.success(), "stele {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    /// Import `layout` as `name` and make a bundle of it in DIR/`bundle`.
    fn bundle(&self, layout: &Layout, name: &str, bundle: &str) -> PathBuf {
        let out = self.ok(&["image", "import", &format!("oci:{}", layout.dir.display()), "--name", name]);
        assert_eq!(out.trim(), format!("{name} {}", layout.manifest));
        let b = self.dir.join(bundle);
        self.ok(&["bundle", "create", "--image", name, b.to_str().unwrap()]);
        b
    }
    /// Rewrite the bundle's config.json.
    fn edit(&self, b: &Path, f: impl FnOnce(&mut Value)) {
        let p = b.join("config.json");
        let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
    fn run_sh(&self, b: &Path, id: &str, script: &str) -> Output {
        self.edit(b, |v| v["process"]["args"] = json!(["/bin/sh", "-c", script]));
        self.stele(&["run", "--bundle", b.to_str().unwrap(), id])
    }
    /// Lines of /proc/self/mountinfo that mention this test's directory.
    fn our_mounts(&self) -> Vec<String> {
        let d = self.dir.display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().filter(|l| l.contains(&d)).map(str::to_string).collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// busybox with every applet as a symlink, and the usual top directories.
fn busybox_tar(t: &mut Tar) {
    let bb = std::fs::read(BUSYBOX).expect("busybox-static at /usr/bin/busybox");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "mnt"] {
        t.dir(d, if d == "tmp" { 0o1777 } else { 0o755 });
    }
    t.file("bin/busybox", &bb, 0o755);
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        if !a.is_empty() && a != "busybox" {
            t.symlink(&format!("bin/{a}"), "busybox");
        }
    }
    t.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n", 0o644);
    t.file("etc/group", b"root:x:0:\napp:x:1000:\n", 0o644);
}

/// The busybox single-layer test image.
fn busybox_image(dir: &Path) -> Layout {
    let mut t = Tar::new();
    busybox_tar(&mut t);
    t.file("etc/motd", b"busybox\n", 0o644);
    write_layout(dir, &[(t.finish(), Comp::Gzip)], json!({"Cmd": ["/bin/sh"]}), "latest", None)
}

/// The multi-layer test image: whiteouts, an opaque directory, a setuid
/// file, a file with its own owner and mode; gzip, zstd and plain layers.
fn layered_image(dir: &Path) -> Layout {
    let mut base = Tar::new();
    busybox_tar(&mut base);
    base.file("etc/motd", b"base\n", 0o644).file("etc/removed", b"gone\n", 0o644);
    base.dir("opq", 0o755).file("opq/lower1", b"l1", 0o644).dir("opq/sub", 0o755).file("opq/sub/lower2", b"l2", 0o644);
    base.dir("data", 0o755).file("data/keep", b"k", 0o644).file("data/stays", b"s", 0o644);
    let mut mid = Tar::new();
    mid.dir("opq", 0o755).file("opq/.wh..wh..opq", b"", 0).file("opq/upper", b"u\n", 0o644);
    mid.dir("etc", 0o755).file("etc/.wh.removed", b"", 0).file("etc/motd", b"mid\n", 0o644);
    mid.file_owned("bin/suid", b"#!/bin/sh\nid -u\n", 0o4755, 0, 0);
    mid.dir("data", 0o755).file_owned("data/owned", b"secret\n", 0o640, 1234, 5678);
    let mut top = Tar::new();
    top.dir("etc", 0o755).file("etc/motd", b"top\n", 0o644);
    top.dir("data", 0o755).file("data/.wh.keep", b"", 0);
    write_layout(
        dir,
        &[(base.finish(), Comp::Gzip), (mid.finish(), Comp::Zstd), (top.finish(), Comp::None)],
        json!({"Cmd": ["/bin/sh"], "Env": ["IMG=layered"]}),
        "latest",
        None,
    )
}

/// Everything about a directory tree that could change: type, owner, mode,
/// size, mtime, content hash, link target, per path.
fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for rel in listing(dir) {
        let p = dir.join(&rel);
        let m = std::fs::symlink_metadata(&p).unwrap();
        let extra = if m.file_type().is_file() {
            Digest::sha256_of(&std::fs::read(&p).unwrap()).to_string()
        } else if m.file_type().is_symlink() {
            std::fs::read_link(&p).unwrap().display().to_string()
        } else {
            String::new()
        };
        out.push(format!(
            "{rel} {:o} {}:{} {} {}.{} {extra}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        ));
    }
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const PROBE_WRITES: &str = "touch /newfile 2>&1; echo touch=$?; echo x 2>&1 > /etc/motd; echo motd=$?; \
     mkdir /mnt/d 2>&1; echo mkdir=$?; ";

#[test]
fn busybox_image_runs_read_only_and_store_is_unchanged() {
    let e = Env::new("busybox");
    let l = busybox_image(&e.dir.join("oci"));
    let b = e.bundle(&l, "busybox", "bundle");
    let layers = e.store().join("layers");
    let before = snapshot(&layers);
    let o = e.run_sh(
        &b,
        "bb1",
        &format!("id -u; cat /etc/motd; {PROBE_WRITES} awk '$5 == \"/\"' /proc/self/mountinfo; ls /"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("0\nbusybox\n"), "{out}");
    for w in ["touch=1", "motd=1", "mkdir=1"] {
        assert!(out.contains(w), "{w}: {out}");
    }
    assert_eq!(out.matches("Read-only file system").count(), 3, "{out}");
    let root = out.lines().find(|l| l.split(' ').nth(4) == Some("/")).unwrap_or_else(|| panic!("no root mount: {out}"));
    let opts = root.split(' ').nth(5).unwrap();
    for f in ["ro", "nosuid", "nodev"] {
        assert!(opts.split(',').any(|o| o == f), "root mount {root}: no {f}");
    }
    // After the run: the layer is byte-identical, its tree digest verifies,
    // nothing of ours is left mounted, the bundle's rootfs is still empty.
    assert_eq!(snapshot(&layers), before);
    assert!(e.ok(&["image", "verify", "busybox"]).contains("ok: 1 layer tree(s) match"));
    assert!(e.ok(&["verify", "--bundle", b.to_str().unwrap()]).starts_with("ok:"));
    assert!(e.our_mounts().is_empty(), "{:?}", e.our_mounts());
    assert!(std::fs::read_dir(b.join("rootfs")).unwrap().next().is_none());
    // No container state left behind either.
    assert_eq!(e.ok(&["list", "-q"]).trim(), "");
}

#[test]
fn layered_image_merged_view_from_inside() {
    let e = Env::new("layered");
    let l = layered_image(&e.dir.join("oci"));
    let b = e.bundle(&l, "layered", "bundle");
    let layers = e.store().join("layers");
    let before = snapshot(&layers);
    let script = "for p in /etc/removed /data/keep /opq/lower1 /opq/sub; do [ -e $p ] && echo PRESENT $p; done; \
        echo opq: $(ls -A /opq); echo data: $(ls -A /data); \
        echo owned: $(stat -c '%u:%g %a' /data/owned); echo suid: $(stat -c '%u:%g %a' /bin/suid); \
        echo motd: $(cat /etc/motd); echo env: $IMG; \
        awk '$5 == \"/\"' /proc/self/mountinfo; ";
    let o = e.run_sh(&b, "lay1", &format!("{script}{PROBE_WRITES}"));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("PRESENT"), "whited-out or hidden paths visible: {out}");
    assert!(out.contains("opq: upper\n"), "opaque dir must show only the upper content: {out}");
    assert!(out.contains("data: owned stays\n"), "{out}");
    assert!(out.contains("owned: 1234:5678 640\n"), "{out}");
    assert!(out.contains("suid: 0:0 4755\n"), "the setuid bit is part of the image: {out}");
    assert!(out.contains("motd: top\n"), "{out}");
    assert!(out.contains("env: layered\n"), "{out}");
    let root = out.lines().find(|l| l.split(' ').nth(4) == Some("/")).unwrap();
    assert!(root.contains(" - overlay "), "{root}");
    let opts: Vec<&str> = root.split(' ').nth(5).unwrap().split(',').collect();
    // nosuid on the root mount: /bin/suid can never raise privileges.
    assert!(opts.contains(&"ro") && opts.contains(&"nosuid") && opts.contains(&"nodev"), "{root}");
    assert_eq!(out.matches("Read-only file system").count(), 3, "{out}");

    // As a non-root user without no_new_privs the ids stay the caller's
    // (the kernel ignores set-user-ID bits on a nosuid mount).
    e.edit(&b, |v| {
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        v["process"]["noNewPrivileges"] = json!(false);
    });
    let o = e.run_sh(&b, "lay2", "grep -E '^(Uid|Gid|NoNewPrivs)' /proc/self/status; /bin/suid; true");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Uid:\t1000\t1000\t1000\t1000"), "{out}");
    assert!(out.contains("\n1000\n") || out.ends_with("1000\n"), "{out}");

    assert_eq!(snapshot(&layers), before, "the layers changed");
    assert!(e.ok(&["image", "verify", "layered"]).contains("ok: 3 layer tree(s) match"));
    assert!(e.our_mounts().is_empty(), "{:?}", e.our_mounts());
    assert!(std::fs::read_dir(b.join("rootfs")).unwrap().next().is_none());
}

#[test]
fn writable_root_and_store_binds_are_refused() {
    let e = Env::new("refuse");
    let l = layered_image(&e.dir.join("oci"));
    let b = e.bundle(&l, "layered", "bundle");
    let pristine = std::fs::read(b.join("config.json")).unwrap();

    e.edit(&b, |v| v["root"]["readonly"] = json!(false));
    let o = e.run_sh(&b, "rw1", "true");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("root.readonly"), "{}", stderr(&o));

    for src in [e.store(), e.store().join("layers"), PathBuf::from(format!("{}/layers/x", e.store().display()))] {
        std::fs::write(b.join("config.json"), &pristine).unwrap();
        e.edit(&b, |v| {
            v["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/mnt", "type": "bind", "source": src, "options": ["rbind", "rw"]}));
        });
        let o = e.run_sh(&b, "rw2", "true");
        assert!(!o.status.success(), "rw bind of {} allowed", src.display());
        assert!(stderr(&o).contains("layer store"), "{}", stderr(&o));
    }

    // A read-only bind of the store is fine (and shows the files read-only).
    std::fs::write(b.join("config.json"), &pristine).unwrap();
    e.edit(&b, |v| {
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt", "type": "bind", "source": e.store().join("layers"), "options": ["rbind", "ro"]}));
    });
    let o = e.run_sh(&b, "ro1", "ls /mnt | wc -l; touch /mnt/x 2>&1; true");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("3\n") && stdout(&o).contains("Read-only file system"), "{}", stdout(&o));

    // A bundle whose layers annotation names a directory outside the store.
    let outside = e.dir.join("outside");
    std::fs::create_dir_all(outside.join("bin")).unwrap();
    std::fs::write(b.join("config.json"), &pristine).unwrap();
    e.edit(&b, |v| {
        let cur = v["annotations"][ANN_LAYERS].as_str().unwrap().to_string();
        v["annotations"][ANN_LAYERS] = json!(format!("{cur}:{}", outside.display()));
    });
    let o = e.run_sh(&b, "out1", "true");
    assert!(!o.status.success());
    assert!(stderr(&o).contains(ANN_LAYERS) && stderr(&o).contains("not inside the layer store"), "{}", stderr(&o));

    assert_eq!(e.ok(&["list", "-q"]).trim(), "", "a refused config left a container");
    assert!(e.our_mounts().is_empty(), "{:?}", e.our_mounts());
}

#[test]
fn verify_bundle_detects_drift_after_a_run() {
    let e = Env::new("drift");
    let l = layered_image(&e.dir.join("oci"));
    let b = e.bundle(&l, "layered", "bundle");
    let o = e.run_sh(&b, "d1", "cat /etc/motd");
    assert!(o.status.success());
    assert_eq!(stdout(&o), "top\n");
    assert!(e.ok(&["verify", "--bundle", b.to_str().unwrap()]).starts_with("ok: 3 layer tree(s) match"));

    // Tamper with a file of the middle layer, on the host.
    let mid = PathBuf::from(e.ok(&["image", "inspect", "layered"]).split('"').find(|s| s.ends_with("/root") && s.contains(&l.diff_ids[1].hex)).unwrap());
    std::fs::write(mid.join("data/owned"), b"tampered\n").unwrap();
    let o = e.stele(&["verify", "--bundle", b.to_str().unwrap()]);
    assert!(!o.status.success(), "drift not detected");
    assert!(stdout(&o).contains("data/owned"), "{}", stdout(&o));
    assert!(stderr(&o).contains("drift: 1 path(s) changed"), "{}", stderr(&o));
    let o = e.stele(&["image", "verify", "layered"]);
    assert!(!o.status.success() && stdout(&o).contains("data/owned"));

    // The container sees the tampered content: drift is what verify is for.
    let o = e.run_sh(&b, "d2", "cat /data/owned");
    assert_eq!(stdout(&o), "tampered\n");
}
