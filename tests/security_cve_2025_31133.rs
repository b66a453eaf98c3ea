//! CVE-2025-31133: the image's /dev/null is a symlink to a procfs file, so
//! masking a file would bind that procfs file. With no /dev mount the
//! image's /dev is used as is: stele must refuse, naming /dev/null.
mod security_util;
use security_util::*;
use serde_json::json;

fn core_pattern() -> String {
    std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap()
}

fn no_dev_mounts() -> serde_json::Value {
    json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
    ])
}

#[test]
fn dev_null_symlink_to_core_pattern_refused() {
    need_root!();
    let before = core_pattern();
    let rt = Rt::new("31133");
    let mut b = Bundle::new("31133", &["true"]);
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", b.rootfs().join("dev/null")).unwrap();
    b.config["mounts"] = no_dev_mounts();
    b.config["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/timer_list"]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.sh("echo '|/tmp/pwn %p' > /proc/kcore; echo '|/tmp/pwn %p' > /proc/timer_list; echo END");
    let id = rt.id("c");
    let o = rt.run(&b, &id);
    eprintln!("{o:?}");
    assert!(!o.ok(), "a /dev/null symlink must be refused: {o:?}");
    assert!(o.stderr.contains("/dev/null"), "error must name /dev/null: {o:?}");
    assert!(!o.stdout.contains("END"), "the container ran: {o:?}");
    assert_eq!(core_pattern(), before, "host core_pattern changed");
    assert!(rt.state(&id).is_none(), "refused container left state");
    assert!(std::fs::symlink_metadata(b.rootfs().join("dev/null")).unwrap().file_type().is_symlink());
}

#[test]
fn dev_null_regular_file_refused() {
    need_root!();
    let rt = Rt::new("31133f");
    let mut b = Bundle::new("31133f", &["true"]);
    std::fs::write(b.rootfs().join("dev/null"), "").unwrap();
    b.config["mounts"] = no_dev_mounts();
    b.config["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    b.write();
    let o = rt.run(&b, &rt.id("c"));
    assert!(!o.ok() && o.stderr.contains("/dev/null"), "{o:?}");
}

#[test]
fn dev_null_symlink_under_dev_tmpfs_is_harmless() {
    // with a /dev tmpfs the image's /dev is hidden; masking works and the
    // masked file cannot be written through
    need_root!();
    let before = core_pattern();
    let rt = Rt::new("31133t");
    let mut b = Bundle::new("31133t", &["true"]);
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", b.rootfs().join("dev/null")).unwrap();
    b.sh("stat -c '%t:%T %F' /dev/null; cat /proc/kcore | wc -c; (echo '|/tmp/pwn' > /proc/kcore) 2>&1; \
          (echo '|/tmp/pwn' > /proc/sys/kernel/core_pattern) 2>&1; echo END");
    let o = rt.run(&b, &rt.id("c"));
    eprintln!("{o:?}");
    assert!(o.stdout.contains("1:3 character special file"), "{o:?}");
    assert!(o.stdout.contains("Read-only file system"), "{o:?}");
    assert_eq!(core_pattern(), before, "host core_pattern changed");
}
