//! Immutability: the image's files cannot be changed from inside, and
//! configs that would let them be changed are refused, naming the field.
mod security_util;
use security_util::*;
use serde_json::json;

#[test]
fn writes_from_inside_fail_with_erofs_and_bytes_unchanged() {
    need_root!();
    let rt = Rt::new("imm");
    let mut b = Bundle::new("imm", &["true"]);
    b.sh(
        "touch /newfile 2>&1; echo x >> /etc/passwd 2>&1; rm /bin/ls 2>&1; mkdir /newdir 2>&1; \
         chmod 777 /etc/group 2>&1; ln -s x /lnk 2>&1; mv /etc/group /etc/g2 2>&1; \
         touch /proc/../etc/x 2>&1; echo w > /dev/shm/ok && echo SHM_OK; echo END",
    );
    let before = tree_digest(&b.rootfs());
    let o = rt.run(&b, &rt.id("c"));
    eprintln!("{o:?}");
    assert!(o.stdout.contains("END") && o.stdout.contains("SHM_OK"), "{o:?}");
    let erofs = o.stdout.matches("Read-only file system").count();
    assert!(erofs >= 7, "each write must fail with EROFS ({erofs}): {o:?}");
    assert_eq!(tree_digest(&b.rootfs()), before, "the image changed");
}

#[test]
fn root_readonly_false_on_plain_dir_refused() {
    need_root!();
    let rt = Rt::new("immrw");
    let mut b = Bundle::new("immrw", &["true"]);
    b.config["root"]["readonly"] = json!(false);
    b.sh("touch /pwned; echo RAN");
    let before = tree_digest(&b.rootfs());
    let id = rt.id("c");
    let o = rt.run(&b, &id);
    assert!(!o.ok() && !o.stdout.contains("RAN"), "{o:?}");
    assert!(o.stderr.contains("root.readonly"), "{o:?}");
    assert!(rt.state(&id).is_none());
    assert_eq!(tree_digest(&b.rootfs()), before);
    // absent `readonly` means false: refused too
    b.config["root"].as_object_mut().unwrap().remove("readonly");
    b.write();
    let o = rt.run(&b, &rt.id("c2"));
    assert!(!o.ok() && o.stderr.contains("root.readonly"), "{o:?}");
}

fn bind(src: &str, dst: &str, opts: &[&str]) -> serde_json::Value {
    json!({"destination": dst, "type": "bind", "source": src, "options": opts})
}

#[test]
fn writable_bind_of_rootfs_paths_refused() {
    need_root!();
    let rt = Rt::new("immb");
    let mut b = Bundle::new("immb", &["true"]);
    b.sh("echo x > /mnt/passwd; echo RAN");
    let root = b.rootfs();
    std::os::unix::fs::symlink(root.join("etc"), b.path().join("etc-link")).unwrap();
    let before = tree_digest(&root);
    let n = default_mounts().as_array().unwrap().len();
    let cases = [
        bind(root.join("etc").to_str().unwrap(), "/mnt", &["rbind", "rw"]),
        bind("rootfs/etc", "/mnt", &["bind"]),
        bind("rootfs/../rootfs/etc", "/mnt", &["rbind"]),
        bind("etc-link", "/mnt", &["bind", "rw"]),
        bind(root.join("etc").to_str().unwrap(), "/mnt", &["ro", "rw", "bind"]),
        // a directory that *contains* the rootfs exposes it just the same
        bind(b.path().to_str().unwrap(), "/mnt", &["rbind", "rw"]),
    ];
    for (k, m) in cases.into_iter().enumerate() {
        let mut mounts = default_mounts();
        mounts.as_array_mut().unwrap().push(m.clone());
        b.config["mounts"] = mounts;
        b.write();
        let id = rt.id(&format!("b{k}"));
        let o = rt.run(&b, &id);
        eprintln!("case {k} {m}: {o:?}");
        assert!(!o.ok() && !o.stdout.contains("RAN"), "case {k} {m}: must be refused: {o:?}");
        assert!(o.stderr.contains(&format!("mounts[{n}]")), "case {k}: error must name mounts[{n}]: {o:?}");
        assert!(rt.state(&id).is_none());
    }
    assert_eq!(tree_digest(&root), before);

    // read-only is fine, and stays read-only inside
    let mut mounts = default_mounts();
    mounts.as_array_mut().unwrap().push(bind("rootfs/etc", "/mnt", &["rbind", "ro"]));
    b.config["mounts"] = mounts;
    b.sh("(echo x > /mnt/passwd) 2>&1; cat /mnt/group; echo RAN");
    let o = rt.run(&b, &rt.id("ro"));
    assert!(o.ok() && o.stdout.contains("RAN") && o.stdout.contains("Read-only file system"), "{o:?}");
    assert_eq!(tree_digest(&root), before);
}
