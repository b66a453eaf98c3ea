//! Bundles: config.json from the image, the read-only overlay root, flatten, verify.
mod image_util;

use std::os::unix::fs::MetadataExt;

use image_util::*;
use serde_json::{json, Value};
use stele::image::bundle::{create_bundle, BundleOptions};
use stele::image::{ImportOptions, Store, ANN_DIGEST, ANN_LAYERS};

fn image(s: &std::path::Path) -> (Store, Layout) {
    let mut top = Tar::new();
    top.dir("etc", 0o755).file("etc/.wh.hostname", b"", 0).file("etc/motd", b"top", 0o644).file("opt-file", b"o", 0o4755);
    top.dir("data", 0o755).file("data/.wh..wh..opq", b"", 0).file("data/new", b"n", 0o644);
    let mut base = busybox_layer();
    base = {
        // busybox layer plus files the top layer removes/hides
        let mut t = Tar::new();
        let mut ar = tar::Archive::new(&base[..]);
        let _ = &mut ar;
        t.dir("data", 0o755).file("data/old", b"old", 0o644).file("etc-hostname-placeholder", b"", 0o644);
        let extra = t.finish();
        // concatenating tars is not valid; build a combined one instead
        let _ = extra;
        base
    };
    let mut more = Tar::new();
    more.dir("etc", 0o755).file("etc/hostname", b"h", 0o644).dir("data", 0o755).file("data/old", b"old", 0o644);
    let cfg = json!({"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["id"], "Env": ["A=1"], "WorkingDir": "/data",
        "User": "app", "Volumes": {"/var/cache": {}}});
    let l = write_layout(&s.join("oci"), &[(base, Comp::Gzip), (more.finish(), Comp::None), (top.finish(), Comp::Zstd)], cfg, "latest", None);
    let store = Store::open(&s.join("store")).unwrap();
    store.import(&format!("oci:{}", l.dir.display()), &ImportOptions { name: Some("app".into()), ..Default::default() }).unwrap();
    (store, l)
}

#[test]
fn bundle_config_from_image() {
    let s = scratch("bundle");
    let (store, l) = image(&s);
    let b = s.join("b");
    create_bundle(&store, "app", &b, &BundleOptions::default()).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["process"]["args"], json!(["/bin/sh", "-c", "id"]));
    assert_eq!(v["process"]["cwd"], "/data");
    assert_eq!(v["process"]["user"], json!({"uid": 1000, "gid": 1001, "additionalGids": [2000]}));
    assert!(v["process"]["env"].as_array().unwrap().iter().any(|e| e == "A=1"));
    assert!(v["process"]["env"].as_array().unwrap().iter().any(|e| e.as_str().unwrap().starts_with("PATH=")));
    assert_eq!(v["root"], json!({"path": "rootfs", "readonly": true}));
    assert!(v["mounts"].as_array().unwrap().iter().any(|m| m["destination"] == "/var/cache" && m["type"] == "tmpfs"));
    assert_eq!(v["annotations"][ANN_DIGEST], l.manifest.to_string());
    let layers: Vec<&str> = v["annotations"][ANN_LAYERS].as_str().unwrap().split(':').collect();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[0], store.layer_dir(&l.diff_ids[0].to_string()).unwrap().display().to_string());
    assert!(std::fs::read_dir(b.join("rootfs")).unwrap().next().is_none());
    assert!(stele::image::verify_bundle(&b).unwrap().ok());
    std::fs::write(std::path::Path::new(layers[2]).join("etc/motd"), b"tampered").unwrap();
    let rep = stele::image::verify_bundle(&b).unwrap();
    assert_eq!(rep.drift.len(), 1, "{:?}", rep.drift);
    std::fs::remove_dir_all(&s).unwrap();
}

#[test]
fn flatten_merges_layers() {
    let s = scratch("flatten");
    let (store, _) = image(&s);
    let b = s.join("b");
    create_bundle(&store, "app", &b, &BundleOptions { flatten: true }).unwrap();
    let r = b.join("rootfs");
    assert!(r.join("bin/busybox").is_file());
    assert!(!r.join("etc/hostname").exists() && std::fs::symlink_metadata(r.join("etc/hostname")).is_err());
    assert_eq!(std::fs::read(r.join("etc/motd")).unwrap(), b"top");
    assert!(r.join("etc/passwd").is_file());
    assert!(!r.join("data/old").exists());
    assert!(r.join("data/new").exists());
    assert_eq!(std::fs::metadata(r.join("opt-file")).unwrap().mode() & 0o7777, 0o4755);
    assert!(stele::image::verify_bundle(&b).unwrap().ok());
    std::fs::write(r.join("added"), b"x").unwrap();
    assert_eq!(stele::image::verify_bundle(&b).unwrap().drift.len(), 1);
    std::fs::remove_dir_all(&s).unwrap();
}

/// Child half of `overlay_root_mount_merged_view`: runs re-executed under
/// `unshare -m --propagation private`, mounts the overlay and lists it.
#[test]
fn overlay_child() {
    let Ok(bundle) = std::env::var("STELE_OVERLAY_CHILD") else { return };
    let v: Value = serde_json::from_slice(&std::fs::read(format!("{bundle}/config.json")).unwrap()).unwrap();
    let ann: std::collections::HashMap<String, String> = serde_json::from_value(v["annotations"].clone()).unwrap();
    let store = std::path::Path::new(&bundle).parent().unwrap().join("store");
    let fd = stele::image::overlay_root_mount(&ann, &store).unwrap().expect("layers annotation");
    let target = std::ffi::CString::new(format!("{bundle}/rootfs")).unwrap();
    let empty = std::ffi::CString::new("").unwrap();
    let r = unsafe {
        libc::syscall(libc::SYS_move_mount, std::os::fd::AsRawFd::as_raw_fd(&fd), empty.as_ptr(), libc::AT_FDCWD, target.as_ptr(), 4u32)
    };
    assert_eq!(r, 0, "move_mount: {}", std::io::Error::last_os_error());
    let root = std::path::Path::new(&bundle).join("rootfs");
    let mut names = Vec::new();
    for d in ["", "etc", "data"] {
        let Ok(rd) = std::fs::read_dir(root.join(d)) else { continue };
        let mut l: Vec<String> = rd.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        l.sort();
        names.push(format!("{d}:{}", l.join(",")));
    }
    println!("LISTING {}", names.join(" "));
    let w = std::fs::write(root.join("etc/motd"), b"x").unwrap_err();
    println!("WRITE {}", w.raw_os_error().unwrap());
    println!("MOTD {}", std::fs::read_to_string(root.join("etc/motd")).unwrap_or_default());
}

fn mount_in_child(b: &std::path::Path) -> String {
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "overlay_child", "--nocapture", "--test-threads=1"])
        .env("STELE_OVERLAY_CHILD", b)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("WRITE {}", libc::EROFS)), "{text}");
    // the child's mount namespace is gone: nothing is mounted on the host
    assert!(std::fs::read_dir(b.join("rootfs")).unwrap().next().is_none());
    text
}

#[test]
fn overlay_root_mount_merged_view() {
    let s = scratch("overlay");
    let (store, _) = image(&s);
    let b = s.join("b");
    create_bundle(&store, "app", &b, &BundleOptions::default()).unwrap();
    let text = mount_in_child(&b);
    let listing = text.split("LISTING ").nth(1).and_then(|r| r.lines().next()).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        listing,
        ":bin,data,dev,etc,opt-file,proc,root,sys,tmp etc:group,motd,passwd data:new"
    );
    assert!(text.contains(&format!("WRITE {}", libc::EROFS)), "{text}");
    assert!(text.contains("MOTD top"));
    // the child's mount namespace is gone: nothing is mounted on the host
    assert!(std::fs::read_dir(b.join("rootfs")).unwrap().next().is_none());
    std::fs::remove_dir_all(&s).unwrap();
}

#[test]
fn single_layer_root_mount() {
    let s = scratch("single-root");
    let l = single(&s.join("oci"), busybox_layer());
    let store = Store::open(&s.join("store")).unwrap();
    let b = s.join("b");
    create_bundle(&store, &format!("oci:{}", l.dir.display()), &b, &BundleOptions::default()).unwrap();
    let text = mount_in_child(&b);
    assert!(text.contains("LISTING :bin,dev,etc,proc,root,sys,tmp etc:group,passwd\n"), "{text}");
    std::fs::remove_dir_all(&s).unwrap();
}

#[test]
fn overlay_root_mount_refuses_layers_outside_the_store() {
    let s = scratch("outside");
    let (store, l) = image(&s);
    let good = store.layer_dir(&l.diff_ids[0].to_string()).unwrap();
    let other = s.join("elsewhere");
    std::fs::create_dir_all(other.join("layers/x/root")).unwrap();
    let key = good.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string();
    // a symlinked store layer pointing out of the store
    std::fs::create_dir_all(other.join("real")).unwrap();
    let fake = s.join("store/layers").join(format!("sha256-{}", "0".repeat(64)));
    std::fs::create_dir_all(&fake).unwrap();
    std::os::unix::fs::symlink(other.join("real"), fake.join("root")).unwrap();
    let cases = [
        other.join("real").display().to_string(),
        format!("{}/layers/{key}/root/../../../../elsewhere/real", s.join("store").display()),
        format!("{}/layers/{key}", s.join("store").display()),
        s.join("store/layers/notadigest/root").display().to_string(),
        fake.join("root").display().to_string(),
        "/".to_string(),
    ];
    for bad in cases {
        let layers = format!("{}:{bad}", good.display());
        let ann: std::collections::HashMap<String, String> = [(ANN_LAYERS.to_string(), layers)].into_iter().collect();
        let e = stele::image::overlay_root_mount(&ann, store.root()).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(ANN_LAYERS), "{bad}: {e}");
    }
    // the right store with a relative spelling works
    let ann: std::collections::HashMap<String, String> = [(ANN_LAYERS.to_string(), good.display().to_string())].into_iter().collect();
    assert!(stele::image::open_layer_dirs(&stele::image::layer_dirs(&ann).unwrap().unwrap(), store.root()).is_ok());
    // another store is refused
    let e = stele::image::open_layer_dirs(std::slice::from_ref(&good), &other).unwrap_err().to_string();
    assert!(e.contains("not inside the layer store"), "{e}");
    std::fs::remove_dir_all(&s).unwrap();
}
