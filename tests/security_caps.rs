//! Capabilities: unknown names and unavailable capabilities fail create with
//! a clear error; a missing `capabilities` object means no capabilities.
mod security_util;
use security_util::*;
use serde_json::json;

fn status_field(s: &str, f: &str) -> Option<String> {
    s.lines().find_map(|l| l.strip_prefix(&format!("{f}:")).map(|v| v.trim().to_string()))
}

#[test]
fn unknown_capability_name_fails_naming_the_field() {
    need_root!();
    let rt = Rt::new("capx");
    let mut b = Bundle::new("capx", &["true"]);
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_TEST"]);
    b.write();
    let id = rt.id("c");
    let o = rt.create(&b, &id);
    eprintln!("{o:?}");
    assert!(!o.ok(), "{o:?}");
    assert!(o.stderr.contains("CAP_TEST"), "error must name the capability: {o:?}");
    assert!(o.stderr.contains("capabilities"), "error must name the field: {o:?}");
    assert!(o.stderr.contains("bounding"), "error must name the set: {o:?}");
    assert!(rt.state(&id).is_none());
}

#[test]
fn capability_missing_from_host_bounding_set() {
    need_root!();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = u64::from_str_radix(&status_field(&status, "CapBnd").unwrap(), 16).unwrap();
    const CAP_SYS_RESOURCE: u32 = 24;
    if bnd & (1 << CAP_SYS_RESOURCE) != 0 {
        eprintln!("skipped: this host has CAP_SYS_RESOURCE in its bounding set");
        return;
    }
    let rt = Rt::new("capm");
    let mut b = Bundle::new("capm", &["true"]);
    b.config["process"]["capabilities"]["effective"] = json!(["CAP_KILL", "CAP_SYS_RESOURCE"]);
    b.config["process"]["capabilities"]["permitted"] = json!(["CAP_KILL", "CAP_SYS_RESOURCE"]);
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_SYS_RESOURCE"]);
    b.write();
    let id = rt.id("c");
    let o = rt.create(&b, &id);
    eprintln!("{o:?}");
    assert!(!o.ok(), "{o:?}");
    assert!(o.stderr.contains("CAP_SYS_RESOURCE") && o.stderr.contains("process.capabilities"), "{o:?}");
    assert!(rt.state(&id).is_none());
}

#[test]
fn missing_capabilities_means_none() {
    need_root!();
    let rt = Rt::new("capn");
    for caps in [None, Some(json!({}))] {
        let mut b = Bundle::new("capn", &["true"]);
        match &caps {
            None => {
                b.config["process"].as_object_mut().unwrap().remove("capabilities");
            }
            Some(v) => b.config["process"]["capabilities"] = v.clone(),
        }
        b.sh("grep ^Cap /proc/self/status");
        let o = rt.run(&b, &rt.id("c"));
        assert!(o.ok(), "{caps:?}: {o:?}");
        for f in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(status_field(&o.stdout, f).as_deref(), Some("0000000000000000"), "{caps:?} {f}: {}", o.stdout);
        }
    }
}

#[test]
fn default_caps_exactly() {
    need_root!();
    let rt = Rt::new("capd");
    let mut b = Bundle::new("capd", &["true"]);
    b.sh("grep ^Cap /proc/self/status");
    let o = rt.run(&b, &rt.id("c"));
    assert!(o.ok(), "{o:?}");
    for f in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(status_field(&o.stdout, f).as_deref(), Some("0000000020000420"), "{f}: {}", o.stdout);
    }
    for f in ["CapInh", "CapAmb"] {
        assert_eq!(status_field(&o.stdout, f).as_deref(), Some("0000000000000000"), "{f}: {}", o.stdout);
    }
}
