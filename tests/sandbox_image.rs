//! `stele run --image oci:DIR|host`: image mode, `--writable`, and a real
//! project's build-and-test job.
mod common;
mod image_util;
mod sandbox_util;

use common::Ctx;
use image_util::{busybox_layer, listing, write_layout, Comp};
use sandbox_util::*;
use serde_json::json;

/// A busybox OCI layout (two layers, env and workdir from the image config).
fn busybox_image(ctx: &Ctx) -> String {
    let mut top = image_util::Tar::new();
    top.dir("srv", 0o755).file("srv/motd", b"from-image\n", 0o644);
    let cfg = json!({"Env": ["IMG_VAR=1", "PATH=/bin"], "WorkingDir": "/srv", "Cmd": ["/bin/sh"]});
    let l = write_layout(&ctx.path("oci"), &[(busybox_layer(), Comp::Gzip), (top.finish(), Comp::None)], cfg, "latest", None);
    format!("oci:{}", l.dir.display())
}

fn sb_store(ctx: &Ctx, extra: &[&str], script: &str) -> (common::Out, String) {
    let id = ctx.id("img");
    let store = ctx.path("store");
    let mut args: Vec<String> = vec!["--store".into(), store.display().to_string(), "run".into(), "--name".into(), id.clone()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--".into(), "/bin/busybox".into(), "sh".into(), "-c".into(), script.into()]);
    (ctx.rt(&args), id)
}

#[test]
fn image_mode_is_read_only_with_the_image_config() {
    let ctx = Ctx::new("sb-img");
    let img = busybox_image(&ctx);
    let (out, id) = sb_store(&ctx, &["--image", &img], "cat motd; pwd; echo IMG_VAR=$IMG_VAR; { echo x > /srv/motd; } 2>&1; ls /");
    out.ok();
    assert!(out.stdout.contains("from-image\n/srv\nIMG_VAR=1\n"), "{out}");
    assert!(out.stdout.contains("Read-only file system"), "{out}");
    assert_clean(&ctx, &id);
}

#[test]
fn writable_image_is_thrown_away() {
    let ctx = Ctx::new("sb-img-w");
    let img = busybox_image(&ctx);
    // import once, then look at the store
    sb_store(&ctx, &["--image", &img], "true").0.ok();
    let before = listing(&ctx.path("store"));
    let (out, id) = sb_store(&ctx, &["--image", &img, "--writable"], "echo new > /srv/motd && rm /bin/cat && mkdir /new && echo w > /new/f && cat /srv/motd /new/f");
    out.ok();
    assert_eq!(out.stdout, "new\nw\n", "{out}");
    assert_clean(&ctx, &id);
    assert_eq!(listing(&ctx.path("store")), before, "the store changed");
    // the next job sees the image as it was
    let (out, _) = sb_store(&ctx, &["--image", &img], "cat /srv/motd; ls /bin/cat; ls /new 2>&1 || true");
    out.ok();
    assert!(out.stdout.starts_with("from-image\n/bin/cat\n"), "{out}");
}

#[test]
fn rw_bind_into_the_store_is_refused() {
    let ctx = Ctx::new("sb-img-bind");
    let img = busybox_image(&ctx);
    sb_store(&ctx, &["--image", &img], "true").0.ok();
    let store = ctx.path("store");
    let (out, _) = sb_store(&ctx, &["--image", &img, "--bind", &format!("{}:/mnt", store.display())], "true");
    out.fails().stderr_has("layer store");
    let (out, _) = sb_store(&ctx, &["--image", &img, "--bind", &format!("{}:/root:ro", store.display())], "ls /root >/dev/null");
    out.ok();
}

#[test]
fn writable_host_root_leaves_the_host_untouched() {
    let ctx = Ctx::new("sb-host-w");
    let marker = format!("/etc/stele-writable-{}", std::process::id());
    let out = host_ok(&ctx, &["--writable"], &format!("echo w > {marker} && cat {marker} && rm /etc/hostname && ls /etc/hostname 2>&1; mkdir -p /work && echo ok"));
    assert!(out.starts_with("w\n") && out.contains("No such file") && out.ends_with("ok\n"), "{out}");
    assert!(!std::path::Path::new(&marker).exists());
    assert!(std::path::Path::new("/etc/hostname").exists());
    // without --writable the same write fails
    let (o, _) = sb(&ctx, &["--image", "host"], &format!("echo w > {marker}"));
    assert_ne!(o.code, 0);
    o.stderr_has("Read-only file system");
}

#[test]
fn c_project_builds_and_tests_in_the_sandbox() {
    let ctx = Ctx::new("sb-ci");
    let ws = ctx.path("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(
        ws.join("calc.c"),
        "#include <stdio.h>\n#include <stdlib.h>\nint add(int a, int b) { return a + b; }\n\
         #ifndef TEST\nint main(int c, char **v) { printf(\"%d\\n\", add(atoi(v[1]), atoi(v[2]))); return 0; }\n#endif\n",
    )
    .unwrap();
    std::fs::write(
        ws.join("test.c"),
        "#include <stdio.h>\nint add(int, int);\nint main(void) { if (add(2, 3) != 5) { puts(\"FAIL\"); return 1; } puts(\"all tests passed\"); return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        ws.join("Makefile"),
        "CFLAGS = -O2 -Wall -Werror\nall: calc\ncalc: calc.c\n\t$(CC) $(CFLAGS) -o $@ $<\n\
         test: calc.c test.c\n\t$(CC) $(CFLAGS) -DTEST -o test_calc calc.c test.c\n\t./test_calc\n\t./calc 40 2 | grep -qx 42\n",
    )
    .unwrap();
    let js = ctx.path("s.json");
    // A read-only root: bind the workspace on a mountpoint the host has.
    let out = host_ok(&ctx, &["--bind", &format!("{}:/mnt", ws.display()), "--workdir", "/mnt", "--json-status", js.to_str().unwrap(), "--memory", "512m", "--pids", "256", "--timeout", "5m"], "make && make test");
    assert!(out.contains("all tests passed"), "{out}");
    assert!(ws.join("calc").is_file() && ws.join("test_calc").is_file());
    assert_eq!(json_status(&js)["exit_code"], 0);
    // with --writable the workspace can sit on a path the host does not have
    let dst = format!("/stele-ws-{}", std::process::id());
    let bind = format!("{}:{dst}", ws.display());
    let out = host_ok(&ctx, &["--writable", "--bind", &bind, "--workdir", &dst], "make -s clean 2>/dev/null; rm -f calc test_calc; make -s && make -s test && ./calc 1 2");
    assert!(out.contains("all tests passed") && out.ends_with("3\n"), "{out}");
    assert!(!std::path::Path::new(&dst).exists());
}
