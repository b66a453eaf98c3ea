//! Non-namespaced sysctls are refused at create; namespaced ones work in
//! their own namespace and never change the host.
mod security_util;
use security_util::*;
use serde_json::json;

#[test]
fn non_namespaced_sysctl_refused() {
    need_root!();
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let rt = Rt::new("sysctl1");
    let mut b = Bundle::new("sysctl1", &["true"]);
    b.config["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/tmp/pwn %p"});
    b.write();
    let id = rt.id("c");
    let o = rt.create(&b, &id);
    assert!(!o.ok(), "{o:?}");
    assert!(o.stderr.contains("kernel.core_pattern") && o.stderr.contains("linux.sysctl"), "{o:?}");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(), before);
    assert!(rt.state(&id).is_none());
}

#[test]
fn namespaced_sysctl_without_its_namespace_refused() {
    need_root!();
    let rt = Rt::new("sysctl2");
    let mut b = Bundle::new("sysctl2", &["true"]);
    b.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.write();
    let o = rt.create(&b, &rt.id("c"));
    assert!(!o.ok() && o.stderr.contains("net.ipv4.ip_forward"), "{o:?}");
}

#[test]
fn namespaced_sysctl_applies_inside_only() {
    need_root!();
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want = if host.trim() == "1" { "0" } else { "1" };
    let rt = Rt::new("sysctl3");
    let mut b = Bundle::new("sysctl3", &["true"]);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": want, "kernel.shmmni": "1234"});
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni");
    let o = rt.run(&b, &rt.id("c"));
    assert!(o.ok(), "{o:?}");
    assert_eq!(o.stdout, format!("{want}\n1234\n"));
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(), host);
}
