//! An image whose /dev, /proc or /sys is a symlink to a host path: refused
//! with an error naming it; nothing mounted on or written to the host path.
mod security_util;
use security_util::*;

#[test]
fn dev_proc_sys_symlinks_refused() {
    need_root!();
    for (name, relative) in [("dev", false), ("proc", false), ("sys", false), ("dev", true), ("proc", true), ("sys", true)] {
        let victim = TempDir::new(&format!("spec-v-{name}"));
        let rt = Rt::new(&format!("spec-{name}"));
        let mut b = Bundle::new(&format!("spec-{name}"), &["true"]);
        b.sh("echo RAN");
        let p = b.rootfs().join(name);
        std::fs::remove_dir(&p).unwrap();
        if relative {
            std::os::unix::fs::symlink(format!("../../../../../../..{}", victim.path().display()), &p).unwrap();
        } else {
            std::os::unix::fs::symlink(victim.path(), &p).unwrap();
        }
        let id = rt.id(name);
        let o = rt.run(&b, &id);
        eprintln!("{name} relative={relative}: {o:?}");
        assert!(!o.ok() && !o.stdout.contains("RAN"), "{name}: must be refused: {o:?}");
        assert!(o.stderr.contains(&format!("/{name}")), "{name}: error must name /{name}: {o:?}");
        assert!(ls(victim.path()).is_empty(), "{name}: host path written: {:?}", ls(victim.path()));
        assert!(host_mounts_with(victim.path().to_str().unwrap()).is_empty());
        assert!(rt.state(&id).is_none(), "refused container left state");
    }
}
