//! argv normalisation before clap: containerd's go-runc and conmon speak Go's
//! flag syntax: single-dash long flags (`-root DIR`, `-no-subreaper`) and
//! booleans with values (`--systemd-cgroup=false`, `--detach=true`).

/// Long flags stele knows (without dashes).
const LONG: &[&str] = &[
    "root", "log", "log-format", "debug", "systemd-cgroup", "rootless", "criu", "store", "help", "version",
    "bundle", "pid-file", "console-socket", "no-pivot", "no-new-keyring", "preserve-fds", "detach", "keep",
    "no-subreaper", "all", "force", "format", "quiet", "process", "tty", "cwd", "env", "user", "additional-gids",
    "cap", "no-new-privs", "process-label", "apparmor", "resources", "stats", "interval", "seccomp", "pidfd-socket",
    "ignore-paused", "cgroup", "image", "bind", "tmpfs", "workdir", "hostname", "net", "memory", "pids", "cpus",
    "timeout", "cap-add", "cap-drop", "writable", "name", "json-status", "env-file", "interactive",
];

/// Boolean flags: `--x=true` becomes `--x`, `--x=false` is dropped.
const BOOL: &[&str] = &[
    "debug", "systemd-cgroup", "no-pivot", "no-new-keyring", "detach", "keep", "no-subreaper", "all", "force",
    "quiet", "tty", "no-new-privs", "stats", "ignore-paused", "writable", "interactive",
];

pub fn normalize(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || rest {
            out.push(a);
            continue;
        }
        if a == "--" {
            rest = true;
            out.push(a);
            continue;
        }
        let mut a = a;
        // -root -> --root (only for known long names; -b stays short)
        if a.starts_with('-') && !a.starts_with("--") && a.len() > 2 {
            let name = a[1..].split('=').next().unwrap_or("");
            if LONG.contains(&name) {
                a.insert(0, '-');
            }
        }
        if let Some(body) = a.strip_prefix("--") {
            if let Some((name, val)) = body.split_once('=') {
                if BOOL.contains(&name) {
                    match val {
                        "true" | "1" | "t" | "T" | "TRUE" | "True" => {
                            out.push(format!("--{name}"));
                            continue;
                        }
                        "false" | "0" | "f" | "F" | "FALSE" | "False" => continue,
                        _ => {}
                    }
                }
            }
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;
    fn n(v: &[&str]) -> Vec<String> {
        normalize(v.iter().map(|s| s.to_string()).collect())
    }
    #[test]
    fn go_style_flags() {
        assert_eq!(n(&["stele", "-root", "/r", "create", "-b", "x", "id"]), ["stele", "--root", "/r", "create", "-b", "x", "id"]);
        assert_eq!(n(&["stele", "--systemd-cgroup=false", "state", "x"]), ["stele", "state", "x"]);
        assert_eq!(n(&["stele", "--debug=true", "-log-format=json", "list"]), ["stele", "--debug", "--log-format=json", "list"]);
        assert_eq!(n(&["stele", "run", "-d", "--", "-root"]), ["stele", "run", "-d", "--", "-root"]);
        assert_eq!(n(&["stele", "kill", "x", "-9"]), ["stele", "kill", "x", "-9"]);
    }
}
