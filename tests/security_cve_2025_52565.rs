//! CVE-2025-52565: /dev/console must be the pty from the container's own
//! devpts (peer via TIOCGPTPEER), never something an image symlink points at.
mod security_util;
use security_util::*;
use serde_json::json;

const PROBE: &str = "tty; stat -c 'console %t:%T %F' /dev/console; stat -L -c 'stdin %t:%T' /proc/self/fd/0; \
    stat -c 'core_pattern %t:%T %F' /proc/sys/kernel/core_pattern; \
    (echo '|/tmp/pwn' > /proc/sys/kernel/core_pattern) 2>&1; \
    (echo x > /dev/console) && echo CONSOLE_WRITABLE; echo __END__";

fn run_terminal(b: &Bundle, rt: &Rt, id: &str) -> (Out, Result<(String, String), String>) {
    let rx = ConsoleReceiver::new();
    let o = rt.stele(&["run", "--console-socket", rx.path.to_str().unwrap(), "-b", b.path().to_str().unwrap(), id]);
    (o, rx.finish())
}

fn check_pty(o: &Out, r: &Result<(String, String), String>) {
    let (_payload, text) = r.as_ref().unwrap_or_else(|e| panic!("console: {e}; {o:?}"));
    eprintln!("console output:\n{text}");
    assert!(text.contains("/dev/pts/"), "stdin is not a pty from devpts: {text}");
    assert!(!text.contains("not a tty"), "{text}");
    // devpts slaves are major 136 (0x88)
    assert!(text.contains("console 88:"), "/dev/console is not a devpts pty: {text}");
    assert!(text.contains("stdin 88:"), "{text}");
}

#[test]
fn terminal_console_from_container_devpts() {
    need_root!();
    let rt = Rt::new("52565");
    let mut b = Bundle::new("52565", &["true"]);
    b.config["process"]["terminal"] = json!(true);
    b.sh(PROBE);
    let (o, r) = run_terminal(&b, &rt, &rt.id("c"));
    eprintln!("{o:?}");
    check_pty(&o, &r);
}

/// The image's /dev is used as is (no /dev tmpfs, devpts on /dev/pts), and
/// its /dev/console is a symlink to /proc/sys/kernel/core_pattern: the
/// console must not expose core_pattern, and the host's stays unchanged.
#[test]
fn image_dev_console_symlink_to_procfs() {
    need_root!();
    let rt = Rt::new("52565s");
    let mut b = Bundle::new("52565s", &["true"]);
    let dev = b.rootfs().join("dev");
    std::fs::create_dir_all(dev.join("pts")).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", dev.join("console")).unwrap();
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx")).unwrap();
    b.config["mounts"] = json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
    ]);
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["process"]["terminal"] = json!(true);
    b.sh(PROBE);
    let (o, r) = run_terminal(&b, &rt, &rt.id("c"));
    eprintln!("{o:?} {r:?}");
    // Following the symlink would mount the pty over the container's
    // core_pattern (seen before the fix): refuse instead.
    assert!(!o.ok(), "a /dev/console symlink must be refused: {o:?} {r:?}");
    assert!(o.stderr.contains("/dev/console"), "refusal should name /dev/console: {o:?}");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(), before);
    // the symlink in the image is untouched
    assert_eq!(std::fs::read_link(dev.join("console")).unwrap(), std::path::Path::new("/proc/sys/kernel/core_pattern"));
}

/// An image /dev/pts that is a symlink to a host dir: devpts must be mounted
/// inside the root (or refused), never on the host path.
#[test]
fn image_dev_pts_symlink_to_host() {
    need_root!();
    let victim = TempDir::new("52565v");
    let rt = Rt::new("52565p");
    let mut b = Bundle::new("52565p", &["true"]);
    let dev = b.rootfs().join("dev");
    std::os::unix::fs::symlink(victim.path(), dev.join("pts")).unwrap();
    b.config["mounts"] = json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}
    ]);
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["process"]["terminal"] = json!(true);
    b.sh(PROBE);
    let (o, r) = run_terminal(&b, &rt, &rt.id("c"));
    eprintln!("{o:?} {r:?}");
    if o.ok() {
        check_pty(&o, &r);
    }
    assert!(ls(victim.path()).is_empty());
    assert!(host_mounts_with(victim.path().to_str().unwrap()).is_empty());
}

/// The same in a new user namespace: the pty comes from the devpts the
/// container's namespace owns.
#[test]
fn terminal_console_in_a_user_namespace() {
    need_root!();
    let rt = Rt::new("52565u");
    let mut b = Bundle::new("52565u", &["true"]);
    for dir in [b.path().parent().unwrap(), b.path()] {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["process"]["terminal"] = json!(true);
    b.sh(&format!("cat /proc/self/uid_map; {PROBE}"));
    let (o, r) = run_terminal(&b, &rt, &rt.id("c"));
    eprintln!("{o:?}");
    check_pty(&o, &r);
    assert!(r.unwrap().1.contains("100000"), "not in the user namespace");
}
