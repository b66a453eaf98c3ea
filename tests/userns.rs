//! User namespaces: the container's root is a mapped, unprivileged host id.
//! Checked from both sides: what the container sees (/proc/self/uid_map, its
//! ids, its devices) and what the host sees (owners of files it made, what it
//! could not touch).

#[macro_use]
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const HOST_BASE: u32 = 100000;

/// A bundle whose container gets a new user namespace mapping 0..65536 to
/// HOST_BASE.., with `dir` (made here, owned by the container's root) bound
/// rw at /out.
fn userns_bundle(t: &Ctx, script: &str) -> (Bundle, std::path::PathBuf) {
    // The mapped root reaches the rootfs by the "other" permission bits.
    fs::set_permissions(t.path(""), fs::Permissions::from_mode(0o755)).unwrap();
    let mut b = t.sh(script);
    fs::set_permissions(&b.dir, fs::Permissions::from_mode(0o755)).unwrap();
    let out = t.path("out");
    fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(HOST_BASE), Some(HOST_BASE)).unwrap();
    b.mkdirs(&["/out"]);
    b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]);
    b.add_mount(json!({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]}));
    (b, out)
}

#[test]
fn root_in_the_container_is_a_mapped_host_id() {
    let t = Ctx::new("userns-root");
    // A host file only host root may write, bound in read-write.
    let host_file = t.path("host-owned");
    fs::write(&host_file, "host\n").unwrap();
    fs::set_permissions(&host_file, fs::Permissions::from_mode(0o644)).unwrap();
    let (mut b, out) = userns_bundle(
        &t,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; grep CapEff /proc/self/status; \
         echo made > /out/made; \
         echo x >> /host-owned 2>&1 && echo host-file-written || echo host-file-refused; \
         echo x > /dev/null && head -c 4 /dev/zero | wc -c; \
         touch /bin/new 2>&1 || true",
    );
    b.add_mount(json!({"destination": "/host-owned", "type": "bind", "source": host_file, "options": ["bind", "rw"]}));
    fs::write(b.rootfs().join("host-owned"), "").unwrap();
    let o = t.run(&b);
    o.ok();
    let lines = o.lines();
    let maps: Vec<Vec<&str>> = lines[..2].iter().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(maps, vec![vec!["0", "100000", "65536"]; 2], "{o}");
    assert_eq!(&lines[2..4], ["0", "0"], "{o}");
    // The config's capabilities, held in the container's namespace only.
    assert_eq!(lines[4], "CapEff:\t0000000020000420", "{o}");
    assert!(o.stdout.contains("host-file-refused"), "container root wrote a host root's file: {o}");
    assert_eq!(fs::read_to_string(&host_file).unwrap(), "host\n");
    assert!(o.stdout.contains("\n4\n"), "host devices are usable: {o}");
    assert!(o.stdout.contains("Read-only file system"), "{o}");
    // What the container made belongs to the mapped ids on the host.
    let md = fs::metadata(out.join("made")).unwrap();
    assert_eq!((md.uid(), md.gid()), (HOST_BASE, HOST_BASE));
}

#[test]
fn process_user_maps_into_the_range_and_exec_joins_the_namespace() {
    let t = Ctx::new("userns-exec");
    let (mut b, out) = userns_bundle(&t, "sleep 30");
    // uid 1000 may write there too
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.save();
    let id = t.id("c");
    t.create(&b, &id);
    t.rt(&["start", &id]).ok();
    let pid = t.state(&id)["pid"].as_i64().unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(status_field(&status, "Uid").unwrap().split_whitespace().next(), Some("101000"), "{status}");
    let init_ns = fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    assert_ne!(init_ns, fs::read_link("/proc/self/ns/user").unwrap());

    let o = t.rt(&["exec", &id, "sh", "-c", "readlink /proc/self/ns/user; id -u; cat /proc/self/uid_map; echo e > /out/by-exec"]);
    o.ok();
    let lines = o.lines();
    assert_eq!(Path::new(&lines[0]), init_ns, "{o}");
    assert_eq!(lines[1], "1000", "{o}");
    assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"], "{o}");
    let md = fs::metadata(out.join("by-exec")).unwrap();
    assert_eq!((md.uid(), md.gid()), (HOST_BASE + 1000, HOST_BASE + 1000));
    t.rt(&["delete", "-f", &id]).ok();
    t.assert_nothing_left(&id, &b.dir);
}

#[test]
fn without_a_network_namespace_sysfs_is_the_hosts_read_only() {
    let t = Ctx::new("userns-sysfs");
    let (mut b, _) = userns_bundle(&t, "ls /sys/class/net; touch /sys/x 2>&1 || true; cat /proc/self/uid_map");
    b.config["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "network");
    b.save();
    let o = t.run(&b);
    o.ok();
    // the host's interfaces: the host's sysfs
    for iface in fs::read_dir("/sys/class/net").unwrap().flatten() {
        let name = iface.file_name().into_string().unwrap();
        assert!(o.lines().contains(&name), "{name} missing: {o}");
    }
    assert!(o.stdout.contains("Read-only file system"), "{o}");
}

#[test]
fn a_device_that_is_not_the_hosts_node_is_refused() {
    let t = Ctx::new("userns-dev");
    let (mut b, _) = userns_bundle(&t, "echo should-not-run");
    // /dev/zero is 1:5: asking for 1:3 there would bind the wrong device
    b.config["linux"]["devices"] = json!([{"path": "/dev/zero", "type": "c", "major": 1, "minor": 3}]);
    b.save();
    let id = t.id("c");
    let o = t.rt(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert_eq!(o.code, 1, "{o}");
    o.stderr_has("linux.devices: /dev/zero: the host's node (bound in a user namespace) is not that device");
    assert!(!o.stdout.contains("should-not-run"));
    t.assert_nothing_left(&id, &b.dir);
}

/// A pod: the second container joins the first one's user and network
/// namespaces by path and gets new mount, pid, ipc and uts namespaces, which
/// its user namespace owns (it mounts its own proc and sysfs).
#[test]
fn a_container_joins_another_ones_user_namespace() {
    let t = Ctx::new("userns-join");
    let (a, out) = userns_bundle(&t, "sleep 30");
    let ida = t.id("a");
    t.create(&a, &ida);
    t.rt(&["start", &ida]).ok();
    let pa = t.state(&ida)["pid"].as_i64().unwrap();
    let ns = |pid: i64, n: &str| fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap().to_string_lossy().into_owned();

    let (mut b, _) = userns_bundle(
        &t,
        "readlink /proc/self/ns/user; readlink /proc/self/ns/net; cat /proc/self/uid_map; echo $$; \
         ls /sys/class/net | tr '\\n' ' '; echo; echo b > /out/by-b; sleep 30",
    );
    let nss = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    nss.retain(|n| n["type"] != "user" && n["type"] != "network");
    nss.push(json!({"type": "user", "path": format!("/proc/{pa}/ns/user")}));
    nss.push(json!({"type": "network", "path": format!("/proc/{pa}/ns/net")}));
    let linux = b.config["linux"].as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
    // the pod's shared /out
    b.config["mounts"].as_array_mut().unwrap().last_mut().unwrap()["source"] = json!(out);
    b.save();
    let idb = t.id("b");
    let o = t.rt(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), &idb]);
    o.ok();
    let pb = t.state(&idb)["pid"].as_i64().unwrap();
    assert_eq!(ns(pb, "user"), ns(pa, "user"));
    assert_eq!(ns(pb, "net"), ns(pa, "net"));
    for own in ["pid_for_children", "mnt", "uts", "ipc"] {
        assert_ne!(ns(pb, own), ns(pa, own), "{own}");
    }
    let status = fs::read_to_string(format!("/proc/{pb}/status")).unwrap();
    assert_eq!(status_field(&status, "Uid").unwrap().split_whitespace().next(), Some("100000"), "{status}");
    // what b wrote (b runs detached: wait for its file)
    let made = out.join("by-b");
    for _ in 0..200 {
        if made.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let md = fs::metadata(&made).unwrap();
    assert_eq!((md.uid(), md.gid()), (HOST_BASE, HOST_BASE));
    // what b printed before that: a's namespaces, a's maps, pid 1 of its
    // own pid namespace, and its own sysfs, which shows a's network (lo only)
    let printed = o.reread_stdout();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines[..2], [ns(pa, "user"), ns(pa, "net")], "{printed}");
    assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"], "{printed}");
    assert_eq!(lines[3], "1", "{printed}");
    assert_eq!(lines[4].trim(), "lo", "{printed}");
    // exec into b lands in the same user namespace, as its root
    let e = t.rt(&["exec", &idb, "sh", "-c", "readlink /proc/self/ns/user; id -u; echo $$ > /dev/null; ls /proc/1/ns >/dev/null && echo in-pidns"]);
    e.ok();
    assert_eq!(e.lines()[0], ns(pa, "user"), "{e}");
    assert_eq!(e.lines()[1], "0", "{e}");
    for id in [&idb, &ida] {
        t.rt(&["delete", "-f", id]).ok();
    }
    t.assert_nothing_left(&idb, &b.dir);
    t.assert_nothing_left(&ida, &a.dir);
}
