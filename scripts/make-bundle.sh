#!/bin/bash
# make-bundle.sh DIR [ARGS...]
# Build a minimal OCI bundle in DIR from busybox-static: DIR/rootfs holds
# /bin/busybox and its applet symlinks, /etc/passwd and /etc/group, and empty
# mountpoint directories; DIR/config.json is runc-spec equivalent with a
# read-only root, no terminal and process.args = ARGS
# (default: sh -c 'echo hello from stele'). Idempotent; does not need runc.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 DIR [ARGS...]" >&2
    exit 2
fi
dir=$1
shift
if [ $# -eq 0 ]; then
    set -- sh -c 'echo hello from stele'
fi

busybox=$(command -v busybox || true)
for candidate in "$busybox" /bin/busybox /usr/bin/busybox; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then busybox=$candidate; break; fi
done
if [ -z "$busybox" ] || [ ! -x "$busybox" ]; then
    echo "make-bundle.sh: busybox not found (apt-get install busybox-static)" >&2
    exit 1
fi

rootfs=$dir/rootfs
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc,mnt,run,root,home/stele}
chmod 1777 "$rootfs/tmp"
# Copy only when it differs: overwriting a binary a container runs gives ETXTBSY.
cmp -s "$busybox" "$rootfs/bin/busybox" 2>/dev/null || cp -f "$busybox" "$rootfs/bin/busybox"
chmod 0755 "$rootfs/bin/busybox"

# Applet symlinks, all in /bin (PATH in the config contains /bin).
# As root, the copied busybox installs its own links (one exec instead of
# one `ln` per applet); otherwise fall back to a loop. Existing links are kept.
if [ ! -L "$rootfs/bin/sh" ]; then
    if [ "$(id -u)" = 0 ] && chroot "$rootfs" /bin/busybox --install -s /bin 2>/dev/null; then
        :
    else
        for applet in $("$busybox" --list); do
            [ "$applet" = busybox ] && continue
            [ -L "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
        done
    fi
fi

cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
stele:x:1000:1000:stele:/home/stele:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
tty:x:5:
stele:x:1000:
nogroup:x:65534:
GROUP

# process.args as a JSON array.
args_json=""
for arg in "$@"; do
    if command -v jq >/dev/null 2>&1; then
        quoted=$(printf '%s' "$arg" | jq -Rs .)
    else
        esc=${arg//\\/\\\\}; esc=${esc//\"/\\\"}
        esc=${esc//$'\t'/\\t}; esc=${esc//$'\n'/\\n}
        quoted="\"$esc\""
    fi
    args_json+="${args_json:+, }$quoted"
done

cat > "$dir/config.json" <<JSON
{
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": false,
		"user": { "uid": 0, "gid": 0 },
		"args": [ $args_json ],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"effective": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"permitted": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"ambient": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ]
		},
		"rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
		"noNewPrivileges": true
	},
	"root": { "path": "rootfs", "readonly": true },
	"hostname": "runc",
	"mounts": [
		{ "destination": "/proc", "type": "proc", "source": "proc" },
		{ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
		  "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
		{ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
		  "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
		{ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
		  "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
		{ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
		  "options": [ "nosuid", "noexec", "nodev" ] },
		{ "destination": "/sys", "type": "sysfs", "source": "sysfs",
		  "options": [ "nosuid", "noexec", "nodev", "ro" ] },
		{ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
		  "options": [ "nosuid", "noexec", "nodev", "relatime", "ro" ] }
	],
	"linux": {
		"resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
		"namespaces": [
			{ "type": "pid" }, { "type": "network" }, { "type": "ipc" },
			{ "type": "uts" }, { "type": "mount" }
		],
		"maskedPaths": [
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
			"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
			"/proc/sched_debug", "/sys/firmware", "/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
		]
	}
}
JSON
