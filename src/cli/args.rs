//! stele's commands and flags: one table per command for the parser
//! (`parse.rs`), and the settings `dispatch` works with (the library's
//! option structs where there is one), made and checked from what the
//! parser matched. Flags that are only accepted for runc's sake
//! (`--rootless`, `--criu`, `--no-new-keyring`, `--keep`, `--no-subreaper`,
//! `--pidfd-socket`, exec's `--apparmor`, `--process-label` and `--cgroup`,
//! update's kernel-memory and schema flags) are parsed and checked like
//! the others but have no field.

use super::parse::{self, arg, command, opt_value, switch, value, Command, Flag, Matches, Slot, Stop};
use std::path::PathBuf;
use stele::container::{CreateOpts, ExecOpts};
use stele::image::DEFAULT_STORE;
use stele::sandbox;
use stele::state::DEFAULT_ROOT;
use stele::units::{parse_duration, parse_size};

/// Accepted before and after the command.
pub const GLOBAL: &[Flag] = &[
    value("root", "root directory for storage of container state").default(DEFAULT_ROOT),
    value("log", "set the log file to write runtime logs to (default: stderr)"),
    value("log-format", "set the log format ('text' or 'json')").default("text"),
    switch("debug", "enable debug logging"),
    switch("systemd-cgroup", "use systemd cgroup paths (slice:prefix:name)"),
    opt_value("rootless", "ignored: stele runs as root (accepted for runc compatibility)"),
    value("criu", "ignored (runc compatibility)").hidden(),
    value("store", "image and layer store").default(DEFAULT_STORE),
];

const CREATE_FLAGS: &[Flag] = &[
    value("bundle", "path to the root of the bundle directory").short('b').default("."),
    value("console-socket", "path to an AF_UNIX socket which will receive the pty master"),
    value("pid-file", "file to write the container's init pid to"),
    switch("no-pivot", "do not use pivot_root (move the root and chroot instead)"),
    switch("no-new-keyring", "accepted for runc compatibility (stele does not create session keyrings)"),
    value("preserve-fds", "pass N additional fds (3 .. 3+N-1) to the container").default("0"),
    value("pidfd-socket", "accepted for runc compatibility").hidden(),
];

const RUN_FLAGS: &[Flag] = &[
    switch("detach", "detach from the container's process").short('d'),
    switch("keep", "do not delete the container after it exits"),
    switch("no-subreaper", "accepted for runc compatibility"),
];

/// `stele run --image REF [options] -- CMD`: the CI sandbox.
const SANDBOX_FLAGS: &[Flag] = &[
    value("image", "run CMD in a throw-away read-only container of this image (`host`: the host's root, read-only)"),
    value("bind", "bind SRC:DST[:ro|rw] (rw never into an image)"),
    value("tmpfs", "a tmpfs at DST[:size=N]"),
    value("workdir", "working directory inside").short('w'),
    value("env", "set an environment variable KEY=VALUE").short('e'),
    value("env-file", "read KEY=VALUE lines from a file"),
    value("user", "UID[:GID]").short('u'),
    value("hostname", "hostname inside (default stele-sandbox)"),
    value("net", "none (loopback only, default) or host").default("none"),
    value("memory", "memory limit (e.g. 512m, 2g)"),
    value("pids", "maximum number of processes"),
    value("cpus", "CPU limit in cores (e.g. 1.5)"),
    value("timeout", "kill the job after this long (e.g. 30s, 10m) and exit 124"),
    value("seccomp", "default, unconfined or a profile file").default("default"),
    value("cap-add", "add a capability"),
    value("cap-drop", "drop a capability"),
    value("name", "a name for the container (default: generated)"),
    switch("interactive", "pass stdin to the job").short('i'),
    switch("tty", "give the job a terminal (the default when stdin is one)").short('t'),
    switch("writable", "a throw-away writable layer over the root (on tmpfs, discarded at the end)"),
    value("json-status", "write the job's exit code, signal, OOM, timeout, wall time, peak memory and CPU time here"),
];

const EXEC_FLAGS: &[Flag] = &[
    value("process", "path to a process.json").short('p'),
    switch("detach", "detach from the process").short('d'),
    value("pid-file", "file to write the process's pid to"),
    value("console-socket", "path to an AF_UNIX socket which will receive the pty master"),
    switch("tty", "allocate a pseudo-TTY").short('t'),
    value("cwd", "current working directory in the container"),
    value("env", "set environment variables (KEY=VALUE)").short('e'),
    value("user", "UID[:GID] to run as").short('u'),
    value("additional-gids", "additional gids").short('g'),
    value("cap", "add a capability to the process").short('c'),
    switch("no-new-privs", "set no_new_privs"),
    value("preserve-fds", "pass N additional fds (3 .. 3+N-1)").default("0"),
    switch("ignore-paused", "allow exec in a paused container"),
    value("process-label", "accepted for runc compatibility").hidden(),
    value("apparmor", "accepted for runc compatibility").hidden(),
    value("pidfd-socket", "accepted for runc compatibility").hidden(),
    value("cgroup", "accepted for runc compatibility").hidden(),
];

const UPDATE_FLAGS: &[Flag] = &[
    value("resources", "LinuxResources JSON from a file, or - for stdin").short('r'),
    value("blkio-weight", "block IO weight (10-1000)"),
    value("cpu-period", "CPU CFS period in microseconds"),
    value("cpu-quota", "CPU CFS quota in microseconds per period"),
    value("cpu-share", "CPU shares (relative weight)"),
    value("cpu-rt-period", "CPU realtime period in microseconds"),
    value("cpu-rt-runtime", "CPU realtime runtime in microseconds per period"),
    value("cpuset-cpus", "CPUs to use (0-3, 0,1)"),
    value("cpuset-mems", "memory nodes to use (0-3, 0,1)"),
    value("kernel-memory", "ignored (runc compatibility)").hidden(),
    value("kernel-memory-tcp", "ignored (runc compatibility)").hidden(),
    value("memory", "memory limit (e.g. 512m)"),
    value("memory-reservation", "memory soft limit"),
    value("memory-swap", "memory plus swap limit (-1: unlimited)"),
    value("pids-limit", "maximum number of processes"),
    value("l3-cache-schema", "ignored (runc compatibility)").hidden(),
    value("mem-bw-schema", "ignored (runc compatibility)").hidden(),
];

const FORMAT: Flag = value("format", "table or json").short('f').default("table");
const ID: &[parse::Arg] = &[arg("ID", Slot::Required, "")];

const IMAGE: Command = command("image", "import, list, inspect, verify and remove OCI images in the layer store").subs(&[
    command("image import", "Import an image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE")
        .flags(&[&[
            value("name", "Name to store the image under (default: the source's own name, else REF)"),
            switch("allow-devices", "Allow block/character device nodes in layers"),
        ]])
        .args(&[arg("REFERENCE", Slot::Required, "")]),
    command("image ls", "List stored images"),
    command("image inspect", "Show a stored image's record (JSON)").args(&[arg("NAME", Slot::Required, "")]),
    command("image rm", "Remove an image record (layers go with `image gc`)").args(&[arg("NAME", Slot::Required, "")]),
    command("image gc", "Remove layers and configs no image refers to"),
    command("image verify", "Recompute every layer's tree digest and report drifted paths").args(&[arg("NAME", Slot::Required, "")]),
]);

const BUNDLE: Command = command("bundle", "make OCI bundles from images").subs(&[command(
    "bundle create",
    "write DIR/config.json (and DIR/rootfs) from an image",
)
.flags(&[&[
    value("image", "Stored image name, or a reference to import first").required(),
    switch("flatten", "Write a plain merged rootfs instead of referring to the store layers"),
]])
.args(&[arg("DIR", Slot::Required, "Bundle directory (created)")])]);

pub static ROOT: Command = command("", "stele: an OCI container runtime for immutable infrastructure")
    .flags(&[&[switch("version", "print the version").short('v')]])
    .subs(&[
        command("create", "create a container").flags(&[CREATE_FLAGS]).args(ID),
        command("start", "start a created container").args(ID),
        command("run", "create and start a container, wait for it and exit with its status")
            .flags(&[CREATE_FLAGS, RUN_FLAGS, SANDBOX_FLAGS])
            .args(&[
                arg("ID", Slot::Optional, "the container id (runc form: stele run [-b DIR] ID)"),
                arg("COMMAND", Slot::AfterDashes, "with --image: the command to run, after --"),
            ]),
        command("exec", "run a process in a running container")
            .flags(&[EXEC_FLAGS])
            .args(&[arg("ID", Slot::Required, ""), arg("COMMAND", Slot::Trailing, "the command and its arguments")]),
        command("state", "output the state of a container").args(ID),
        command("kill", "send a signal to the container's init (default TERM)")
            .flags(&[&[switch("all", "send the signal to all processes in the container").short('a')]])
            .args(&[arg("ID", Slot::Required, ""), arg("SIGNAL", Slot::Optional, "")]),
        command("delete", "delete a container and everything it holds")
            .flags(&[&[switch("force", "kill the container first if it is running").short('f')]])
            .args(ID),
        command("list", "list containers").flags(&[&[FORMAT, switch("quiet", "print only the ids").short('q')]]),
        command("ps", "list the processes of a container")
            .flags(&[&[FORMAT]])
            .args(&[arg("ID", Slot::Required, ""), arg("PS_ARGS", Slot::Trailing, "options for ps(1) (default -ef)")]),
        command("pause", "suspend all processes of a container").args(ID),
        command("resume", "resume a paused container").args(ID),
        command("update", "update a container's resource limits").flags(&[UPDATE_FLAGS]).args(ID),
        command("events", "show container events and resource statistics")
            .flags(&[&[
                switch("stats", "print one stats record and exit"),
                value("interval", "stats interval (Go duration: 5s, 500ms, 1m)").default("5s"),
            ]])
            .args(ID),
        command("spec", "write a default config.json")
            .flags(&[&[value("bundle", "bundle directory to write config.json into").short('b').default(".")]]),
        command("features", "show what this runtime supports (runtime-spec features JSON)"),
        IMAGE,
        BUNDLE,
        command("verify", "check that a bundle's root filesystem has not drifted from its image")
            .flags(&[&[value("bundle", "the bundle directory").short('b').required()]]),
    ]);

#[derive(Debug)]
pub struct Cli {
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub log_format: String,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub store: PathBuf,
    pub version: bool,
    pub cmd: Option<Cmd>,
}

// One value per process: the size of `Sandbox` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Cmd {
    Create { id: String, opts: CreateOpts },
    Start { id: String },
    /// runc's `run [-b DIR] ID`
    Run { id: String, opts: CreateOpts, detach: bool },
    /// `run --image REF [options] -- CMD`: the CI sandbox
    Sandbox { opts: sandbox::Options, json_status: Option<PathBuf> },
    Exec { id: String, opts: ExecOpts },
    State { id: String },
    Kill { all: bool, id: String, signal: Option<String> },
    Delete { force: bool, id: String },
    List { format: String, quiet: bool },
    Ps { format: String, id: String, ps_args: Vec<String> },
    Pause { id: String },
    Resume { id: String },
    Update(UpdateArgs),
    Events { stats: bool, interval: String, id: String },
    Spec { bundle: PathBuf },
    Features,
    Image(ImageCmd),
    Bundle(BundleCmd),
    Verify { bundle: PathBuf },
}

/// `update`'s flags as given; `dispatch` reads --resources and merges.
#[derive(Debug)]
pub struct UpdateArgs {
    pub resources: Option<String>,
    pub blkio_weight: Option<u16>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_share: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub pids_limit: Option<i64>,
    pub id: String,
}

#[derive(Debug)]
pub enum BundleCmd {
    Create(BundleCreate),
}

#[derive(Debug)]
pub enum ImageCmd {
    Import { reference: String, name: Option<String>, allow_devices: bool },
    Ls,
    Inspect { name: String },
    Rm { name: String },
    Gc,
    Verify { name: String },
}

#[derive(Debug)]
pub struct BundleCreate {
    pub image: String,
    pub flatten: bool,
    pub dir: PathBuf,
}

impl Cli {
    /// Parse argv (argv[0] is skipped). Stop::Help and Stop::Usage say what
    /// to print instead of running a command.
    pub fn parse(argv: &[String]) -> Result<Cli, Stop> {
        let m = parse::parse(&ROOT, GLOBAL, argv)?;
        Ok(Cli {
            root: path(&m, "root").unwrap_or_default(),
            log: path(&m, "log"),
            log_format: text(&m, "log-format").unwrap_or_default(),
            debug: m.on("debug"),
            systemd_cgroup: m.on("systemd-cgroup"),
            store: path(&m, "store").unwrap_or_default(),
            version: m.on("version"),
            cmd: cmd(&m)?,
        })
    }

    /// The --preserve-fds of create, run and exec: fds main must keep open.
    pub fn preserve_fds(&self) -> u32 {
        match &self.cmd {
            Some(Cmd::Create { opts, .. } | Cmd::Run { opts, .. }) => opts.preserve_fds,
            Some(Cmd::Exec { opts, .. }) => opts.preserve_fds,
            _ => 0,
        }
    }
}

fn text(m: &Matches, long: &str) -> Option<String> {
    m.value(long).map(String::from)
}

fn path(m: &Matches, long: &str) -> Option<PathBuf> {
    m.value(long).map(PathBuf::from)
}

/// A required argument (the parser has checked it is there).
fn req(m: &Matches, i: usize) -> String {
    m.arg(i).unwrap_or_default().to_string()
}

fn cmd(m: &Matches) -> Result<Option<Cmd>, Stop> {
    let id = || req(m, 0);
    let c = match m.cmd.path {
        "" => return Ok(None),
        "create" => Cmd::Create { id: id(), opts: create_opts(m)? },
        "start" => Cmd::Start { id: id() },
        "run" => match m.value("image") {
            Some(image) => Cmd::Sandbox { opts: sandbox_opts(m, image)?, json_status: path(m, "json-status") },
            None => {
                let Some(id) = m.arg(0) else { return Err(m.usage("a container id is required (or --image REF -- CMD)")) };
                if !m.rest().is_empty() {
                    return Err(m.usage("a command after -- needs --image"));
                }
                Cmd::Run { id: id.into(), opts: create_opts(m)?, detach: m.on("detach") }
            }
        },
        "exec" => Cmd::Exec { id: id(), opts: exec_opts(m)? },
        "state" => Cmd::State { id: id() },
        "kill" => Cmd::Kill { all: m.on("all"), id: id(), signal: m.arg(1).map(String::from) },
        "delete" => Cmd::Delete { force: m.on("force"), id: id() },
        "list" => Cmd::List { format: text(m, "format").unwrap_or_default(), quiet: m.on("quiet") },
        "ps" => Cmd::Ps { format: text(m, "format").unwrap_or_default(), id: id(), ps_args: m.rest() },
        "pause" => Cmd::Pause { id: id() },
        "resume" => Cmd::Resume { id: id() },
        "update" => Cmd::Update(update_args(m)?),
        "events" => Cmd::Events { stats: m.on("stats"), interval: text(m, "interval").unwrap_or_default(), id: id() },
        "spec" => Cmd::Spec { bundle: path(m, "bundle").unwrap_or_default() },
        "features" => Cmd::Features,
        "image import" => Cmd::Image(ImageCmd::Import {
            reference: req(m, 0),
            name: text(m, "name"),
            allow_devices: m.on("allow-devices"),
        }),
        "image ls" => Cmd::Image(ImageCmd::Ls),
        "image inspect" => Cmd::Image(ImageCmd::Inspect { name: req(m, 0) }),
        "image rm" => Cmd::Image(ImageCmd::Rm { name: req(m, 0) }),
        "image gc" => Cmd::Image(ImageCmd::Gc),
        "image verify" => Cmd::Image(ImageCmd::Verify { name: req(m, 0) }),
        "bundle create" => Cmd::Bundle(BundleCmd::Create(BundleCreate {
            image: text(m, "image").unwrap_or_default(),
            flatten: m.on("flatten"),
            dir: PathBuf::from(req(m, 0)),
        })),
        "verify" => Cmd::Verify { bundle: path(m, "bundle").unwrap_or_default() },
        other => unreachable!("command {other:?} has a table but no settings"),
    };
    Ok(Some(c))
}

fn create_opts(m: &Matches) -> Result<CreateOpts, Stop> {
    Ok(CreateOpts {
        bundle: path(m, "bundle").unwrap_or_default(),
        pid_file: path(m, "pid-file"),
        console_socket: path(m, "console-socket"),
        no_pivot: m.on("no-pivot"),
        preserve_fds: m.number("preserve-fds")?.unwrap_or(0),
        die_with_parent: false,
        console_fd: None,
    })
}

/// `run --image REF [CMD] [-- ARGS...]`: without `--`, the id slot holds
/// the command's first word.
fn sandbox_opts(m: &Matches, image: &str) -> Result<sandbox::Options, Stop> {
    let command = m.arg(0).map(String::from).into_iter().chain(m.rest()).collect();
    Ok(sandbox::Options {
        image: image.into(),
        command,
        binds: m.values("bind"),
        tmpfs: m.values("tmpfs"),
        workdir: text(m, "workdir"),
        env: m.values("env"),
        env_files: m.values("env-file").into_iter().map(PathBuf::from).collect(),
        user: text(m, "user"),
        hostname: text(m, "hostname"),
        net: text(m, "net").unwrap_or_default(),
        memory: m.parsed("memory", |v| parse_size(v, false))?,
        pids: m.number("pids")?,
        cpus: m.number("cpus")?,
        timeout: m.parsed("timeout", parse_duration)?,
        seccomp: text(m, "seccomp").unwrap_or_default(),
        cap_add: m.values("cap-add"),
        cap_drop: m.values("cap-drop"),
        name: text(m, "name"),
        interactive: m.on("interactive"),
        collect_stats: m.value("json-status").is_some(),
        tty: m.on("tty"),
        writable: m.on("writable"),
    })
}

fn exec_opts(m: &Matches) -> Result<ExecOpts, Stop> {
    Ok(ExecOpts {
        process_file: path(m, "process"),
        args: m.rest(),
        detach: m.on("detach"),
        pid_file: path(m, "pid-file"),
        console_socket: path(m, "console-socket"),
        tty: m.on("tty"),
        cwd: text(m, "cwd"),
        env: m.values("env"),
        user: text(m, "user"),
        additional_gids: m.numbers("additional-gids")?,
        caps: m.values("cap"),
        no_new_privs: m.on("no-new-privs"),
        preserve_fds: m.number("preserve-fds")?.unwrap_or(0),
        ignore_paused: m.on("ignore-paused"),
    })
}

fn update_args(m: &Matches) -> Result<UpdateArgs, Stop> {
    Ok(UpdateArgs {
        resources: text(m, "resources"),
        blkio_weight: m.number("blkio-weight")?,
        cpu_period: m.number("cpu-period")?,
        cpu_quota: m.number("cpu-quota")?,
        cpu_share: m.number("cpu-share")?,
        cpu_rt_period: m.number("cpu-rt-period")?,
        cpu_rt_runtime: m.number("cpu-rt-runtime")?,
        cpuset_cpus: text(m, "cpuset-cpus"),
        cpuset_mems: text(m, "cpuset-mems"),
        memory: text(m, "memory"),
        memory_reservation: text(m, "memory-reservation"),
        memory_swap: text(m, "memory-swap"),
        pids_limit: m.number("pids-limit")?,
        id: req(m, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn argv(line: &str) -> Vec<String> {
        std::iter::once("stele").chain(line.split(' ').filter(|w| !w.is_empty())).map(String::from).collect()
    }
    #[track_caller]
    fn ok(line: &str) -> Cli {
        Cli::parse(&argv(line)).unwrap_or_else(|e| panic!("{line}: {e:?}"))
    }
    #[track_caller]
    fn cmd(line: &str) -> Cmd {
        ok(line).cmd.unwrap_or_else(|| panic!("{line}: no command"))
    }
    #[track_caller]
    fn err(line: &str) -> String {
        match Cli::parse(&argv(line)) {
            Err(Stop::Usage(m)) => m,
            other => panic!("{line}: want a usage error, got {other:?}"),
        }
    }
    #[track_caller]
    fn help(line: &str) -> String {
        match Cli::parse(&argv(line)) {
            Err(Stop::Help(h)) => h,
            other => panic!("{line}: want help, got {other:?}"),
        }
    }
    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn containerd_shim_command_lines() {
        let g = "--root /run/containerd/runc/default --log /b/log.json --log-format json";
        let c = ok(&format!("{g} create --bundle /b --pid-file /b/init.pid --console-socket /tmp/pty1/pty.sock --no-pivot id1"));
        assert_eq!(c.root, PathBuf::from("/run/containerd/runc/default"));
        assert_eq!(c.log, Some(PathBuf::from("/b/log.json")));
        assert_eq!(c.log_format, "json");
        let Some(Cmd::Create { id, opts: a }) = c.cmd else { panic!() };
        assert_eq!((a.bundle, a.pid_file, a.console_socket, a.no_pivot, id.as_str()),
            ("/b".into(), Some("/b/init.pid".into()), Some("/tmp/pty1/pty.sock".into()), true, "id1"));
        assert!(matches!(cmd(&format!("{g} start id1")), Cmd::Start { id } if id == "id1"));
        let Cmd::Exec { id, opts: e } = cmd(&format!("{g} exec --process /tmp/runc-process1 --console-socket /tmp/p.sock --detach --pid-file /b/e.pid id1")) else { panic!() };
        assert_eq!((e.process_file, e.console_socket, e.detach, e.pid_file, id.as_str(), e.args.len()),
            (Some("/tmp/runc-process1".into()), Some("/tmp/p.sock".into()), true, Some("/b/e.pid".into()), "id1", 0));
        assert!(matches!(cmd(&format!("{g} kill id1 15")), Cmd::Kill { all: false, id, signal: Some(s) } if id == "id1" && s == "15"));
        assert!(matches!(cmd(&format!("{g} kill --all id1 9")), Cmd::Kill { all: true, signal: Some(s), .. } if s == "9"));
        assert!(matches!(cmd(&format!("{g} pause id1")), Cmd::Pause { .. }));
        assert!(matches!(cmd(&format!("{g} resume id1")), Cmd::Resume { .. }));
        assert!(matches!(cmd(&format!("{g} ps --format json id1")), Cmd::Ps { format, id, ps_args } if format == "json" && id == "id1" && ps_args.is_empty()));
        assert!(matches!(cmd(&format!("{g} delete id1")), Cmd::Delete { force: false, .. }));
        assert!(matches!(cmd(&format!("{g} delete --force id1")), Cmd::Delete { force: true, .. }));
        assert!(matches!(cmd(&format!("{g} update --resources - id1")), Cmd::Update(u) if u.resources.as_deref() == Some("-") && u.id == "id1"));
        let c = ok(&format!("{g} create --bundle /b --no-new-keyring --preserve-fds 2 id1"));
        assert_eq!(c.preserve_fds(), 2);
    }

    #[test]
    fn podman_conmon_command_lines() {
        let g = "--log-format=json --log /r/oci-log";
        let c = ok(&format!("{g} create --bundle /b --pid-file /r/pidfile --console-socket /tmp/conmon-term.X --preserve-fds 1 id1"));
        assert_eq!((c.log_format.as_str(), c.log.clone()), ("json", Some("/r/oci-log".into())));
        assert_eq!(c.preserve_fds(), 1);
        let Cmd::Exec { opts: e, .. } = cmd(&format!("{g} exec --pid-file /e/exec_pid --process /e/p --detach --tty --console-socket /tmp/t id1")) else { panic!() };
        assert!(e.tty && e.detach && e.pid_file == Some("/e/exec_pid".into()) && e.process_file == Some("/e/p".into()));
        assert!(matches!(cmd("kill id1 10"), Cmd::Kill { signal: Some(s), .. } if s == "10"));
        assert!(matches!(cmd("kill --all id1 15"), Cmd::Kill { all: true, .. }));
        assert!(matches!(cmd("update --resources=/var/tmp/podman1 id1"), Cmd::Update(u) if u.resources.as_deref() == Some("/var/tmp/podman1")));
        assert!(matches!(cmd("delete --force id1"), Cmd::Delete { force: true, .. }));
        assert!(ok("--version").version && ok("--version").cmd.is_none());
        // conmon -s and containers.conf no_pivot_root
        assert!(ok("--systemd-cgroup create --no-pivot id1").systemd_cgroup);
    }

    #[test]
    fn defaults() {
        let c = ok("create id");
        assert_eq!((c.root, c.store, c.log, c.log_format, c.debug), ("/run/stele".into(), "/var/lib/stele".into(), None, "text".into(), false));
        let Some(Cmd::Create { opts: a, .. }) = c.cmd else { panic!() };
        assert_eq!((a.bundle, a.preserve_fds, a.pid_file), (".".into(), 0, None));
        assert!(matches!(cmd("list"), Cmd::List { format, quiet: false } if format == "table"));
        assert!(matches!(cmd("events x"), Cmd::Events { stats: false, interval, .. } if interval == "5s"));
        assert!(matches!(cmd("spec"), Cmd::Spec { bundle } if bundle == Path::new(".")));
        let Cmd::Sandbox { opts: s, json_status: None } = cmd("run --image host -- true") else { panic!() };
        assert_eq!((s.image.as_str(), s.net.as_str(), s.seccomp.as_str(), s.command), ("host", "none", "default", v(&["true"])));
        assert!(!s.collect_stats && s.memory.is_none() && s.timeout.is_none());
        assert!(ok("").cmd.is_none());
    }

    #[test]
    fn value_forms() {
        for line in ["create --bundle /b id", "create --bundle=/b id", "create -b /b id", "create -b/b id", "create -b=/b id", "create id -b /b", "create -bundle /b id", "create -bundle=/b id"] {
            assert!(matches!(cmd(line), Cmd::Create { opts: a, id } if a.bundle == Path::new("/b") && id == "id"), "{line}");
        }
        // a value is the next word, whatever it looks like (Go's flag package)
        assert!(matches!(cmd("update --cpu-quota -1 x"), Cmd::Update(u) if u.cpu_quota == Some(-1)));
        assert!(matches!(cmd("update --cpu-quota=-1 x"), Cmd::Update(u) if u.cpu_quota == Some(-1)));
        assert!(matches!(cmd("list -qf json"), Cmd::List { format, quiet: true } if format == "json"));
        // single-valued flags: the last one wins
        assert!(matches!(cmd("create -b /a --bundle /b id"), Cmd::Create { opts: a, .. } if a.bundle == Path::new("/b")));
        assert_eq!(ok("--root /a state x --root=/b").root, PathBuf::from("/b"));
    }

    #[test]
    fn switches() {
        let Cmd::Exec { opts: e, .. } = cmd("exec -dt x sh") else { panic!() };
        assert!(e.detach && e.tty);
        let Cmd::Sandbox { opts: s, .. } = cmd("run -it --writable --image host -- sh") else { panic!() };
        assert!(s.interactive && s.tty && s.writable);
        for (w, want) in [("true", true), ("1", true), ("t", true), ("T", true), ("TRUE", true), ("True", true),
                          ("false", false), ("0", false), ("f", false), ("F", false), ("FALSE", false), ("False", false)] {
            assert_eq!(ok(&format!("--debug={w} state x")).debug, want, "{w}");
        }
        assert!(!ok("--debug --debug=false state x").debug, "the last one wins");
        assert!(matches!(cmd("delete -f=true x"), Cmd::Delete { force: true, .. }));
        assert_eq!(err("--debug=maybe state x"), "invalid value \"maybe\" for --debug: want true or false");
    }

    #[test]
    fn go_style_single_dash_long_flags() {
        let c = ok("-root /r -log /l -log-format=json -debug create -bundle /b -pid-file /p -no-pivot=true id");
        assert_eq!((c.root, c.log, c.log_format, c.debug), ("/r".into(), Some("/l".into()), "json".into(), true));
        let Some(Cmd::Create { opts: a, .. }) = c.cmd else { panic!() };
        assert_eq!((a.bundle, a.pid_file, a.no_pivot), ("/b".into(), Some("/p".into()), true));
        assert!(!ok("--systemd-cgroup=false state x").systemd_cgroup);
        assert!(matches!(cmd("exec -detach=true -pid-file /p x ls"), Cmd::Exec { opts: e, .. } if e.detach && e.pid_file.is_some()));
        assert!(matches!(cmd("create -no-pivot=false id"), Cmd::Create { opts: a, .. } if !a.no_pivot));
        assert!(ok("-version").version);
        help("create -help");
        // -bx is -b x, not a long flag
        assert!(matches!(cmd("create -bx id"), Cmd::Create { opts: a, .. } if a.bundle == Path::new("x")));
    }

    #[test]
    fn globals_anywhere() {
        let c = ok("state --root /r x --debug --log-format json --store /s --systemd-cgroup --log /l");
        assert_eq!((c.root, c.debug, c.log_format, c.store, c.systemd_cgroup, c.log),
            ("/r".into(), true, "json".into(), "/s".into(), true, Some("/l".into())));
        assert_eq!(ok("image import --store /s ref").store, PathBuf::from("/s"));
        assert_eq!(ok("image --store /s ls").store, PathBuf::from("/s"));
        assert_eq!(ok("bundle create --image i d --root=/r").root, PathBuf::from("/r"));
        for line in ["--rootless state x", "--rootless=false state x", "state x --rootless=true", "--criu /usr/sbin/criu state x", "state x --criu=c"] {
            assert!(matches!(cmd(line), Cmd::State { id } if id == "x"), "{line}");
        }
        // --rootless takes its value only with =
        assert_eq!(err("--rootless false state x"), "unknown command \"false\"");
        // --version belongs to the top level
        assert!(ok("-v").version);
        assert_eq!(err("state x -v"), "state: unknown flag -v");
    }

    #[test]
    fn repeated_flags_collect() {
        let Cmd::Exec { opts: e, .. } = cmd("exec -e A=1 -eB=2 --env=C=3 --env D=4 -g 1 -g2 --additional-gids=3 -c CAP_X --cap CAP_Y x ls") else { panic!() };
        assert_eq!(e.env, v(&["A=1", "B=2", "C=3", "D=4"]));
        assert_eq!(e.additional_gids, vec![1, 2, 3]);
        assert_eq!(e.caps, v(&["CAP_X", "CAP_Y"]));
        let Cmd::Sandbox { opts: s, .. } = cmd("run --image img --bind a:b --bind c:d:ro --tmpfs /t --tmpfs=/u --cap-add A --cap-drop B --env-file /e1 --env-file /e2 -e K=V -- x") else { panic!() };
        assert_eq!((s.binds, s.tmpfs, s.cap_add, s.cap_drop, s.env), (v(&["a:b", "c:d:ro"]), v(&["/t", "/u"]), v(&["A"]), v(&["B"]), v(&["K=V"])));
        assert_eq!(s.env_files, vec![PathBuf::from("/e1"), PathBuf::from("/e2")]);
    }

    #[test]
    fn run_sandbox_and_dashes() {
        let Cmd::Sandbox { opts: s, json_status } = cmd("run --image alpine --pids 50 --cpus 1.5 --memory 512m -w /w -u 1:2 --timeout 3s --json-status /j --name n --hostname h --net host -- sh -c echo --x -y") else { panic!() };
        assert_eq!((s.image.as_str(), s.pids, s.cpus, s.memory), ("alpine", Some(50), Some(1.5), Some(512 << 20)));
        assert_eq!((s.workdir.as_deref(), s.user.as_deref(), s.timeout, json_status, s.collect_stats), (Some("/w"), Some("1:2"), Some(std::time::Duration::from_secs(3)), Some("/j".into()), true));
        assert_eq!((s.name.as_deref(), s.hostname.as_deref(), s.net.as_str()), (Some("n"), Some("h"), "host"));
        assert_eq!(s.command, v(&["sh", "-c", "echo", "--x", "-y"]));
        let sandbox = |line: &str| match cmd(line) {
            Cmd::Sandbox { opts, .. } => opts.command,
            c => panic!("{c:?}"),
        };
        // words after -- are never flags, not even --help
        assert_eq!(sandbox("run --image host -- ls --help -root"), v(&["ls", "--help", "-root"]));
        // `run --image REF CMD [-- ARGS]`: the id slot holds CMD's first word
        assert_eq!(sandbox("run --image host sh -- -c x"), v(&["sh", "-c", "x"]));
        assert_eq!(sandbox("run --image host true"), v(&["true"]));
        // without --, a second word is an error
        assert_eq!(err("run --image host echo hi"), "run: unexpected argument \"hi\"");
        assert_eq!(err("run --image host --memory lots -- true"), "run: invalid value \"lots\" for --memory: invalid size \"lots\" (e.g. 512m, 2g)");
        assert!(err("run --image host --timeout soon -- true").starts_with("run: invalid value \"soon\" for --timeout: "));
        // runc form
        assert!(matches!(cmd("run -d -b /b id"), Cmd::Run { detach: true, id, opts } if id == "id" && opts.bundle == Path::new("/b")));
        assert!(matches!(cmd("run --keep --no-subreaper --bind ignored id"), Cmd::Run { detach: false, .. }));
        assert_eq!(err("run"), "run: a container id is required (or --image REF -- CMD)");
        assert_eq!(err("run id -- true"), "run: a command after -- needs --image");
        assert!(matches!(cmd("state -- x"), Cmd::State { id } if id == "x"));
        assert_eq!(err("create id -- extra"), "create: unexpected argument \"extra\"");
    }

    #[test]
    fn trailing_lists() {
        let exec = |line: &str| match cmd(line) {
            Cmd::Exec { id, opts } => (id, opts.args, opts.tty),
            c => panic!("{c:?}"),
        };
        assert_eq!(exec("exec x ls -la"), ("x".into(), v(&["ls", "-la"]), false));
        assert_eq!(exec("exec x -la"), ("x".into(), v(&["-la"]), false));
        assert_eq!(exec("exec x -t ls -la"), ("x".into(), v(&["ls", "-la"]), true));
        assert_eq!(exec("exec x -- ls -la"), ("x".into(), v(&["ls", "-la"]), false));
        assert_eq!(exec("exec -t x -- ls"), ("x".into(), v(&["ls"]), true));
        assert_eq!(exec("exec x ls -- -la"), ("x".into(), v(&["ls", "--", "-la"]), false));
        assert_eq!(exec("exec x sh -c -t --tty -root --debug=false --help"), ("x".into(), v(&["sh", "-c", "-t", "--tty", "-root", "--debug=false", "--help"]), false));
        // where the list may start, a cluster that is not all known shorts is a word of it
        assert_eq!(exec("exec x -ef"), ("x".into(), v(&["-ef"]), false));
        // --preserve-fds in the container's command is not stele's
        assert_eq!(ok("exec x sh --preserve-fds 5").preserve_fds(), 0);
        assert_eq!(ok("exec --preserve-fds 5 x sh").preserve_fds(), 5);
        let ps = |line: &str| match cmd(line) {
            Cmd::Ps { format, id, ps_args } => (format, id, ps_args),
            c => panic!("{c:?}"),
        };
        assert_eq!(ps("ps x -ef"), ("table".into(), "x".into(), v(&["-ef"])));
        assert_eq!(ps("ps x -f json"), ("json".into(), "x".into(), v(&[])));
        assert_eq!(ps("ps -f json x aux -f json"), ("json".into(), "x".into(), v(&["aux", "-f", "json"])));
        assert_eq!(ps("ps -- x -ef"), ("table".into(), "x".into(), v(&["-ef"])));
        assert_eq!(ps("ps x -- aux"), ("table".into(), "x".into(), v(&["aux"])));
        assert_eq!(ps("ps x -o pid,comm"), ("table".into(), "x".into(), v(&["-o", "pid,comm"])));
    }

    #[test]
    fn other_commands() {
        assert!(matches!(cmd("kill x"), Cmd::Kill { signal: None, .. }));
        assert!(matches!(cmd("kill -a x KILL"), Cmd::Kill { all: true, signal: Some(s), .. } if s == "KILL"));
        assert!(matches!(cmd("events --stats --interval 1s x"), Cmd::Events { stats: true, interval, id } if interval == "1s" && id == "x"));
        assert!(matches!(cmd("spec -b /x"), Cmd::Spec { bundle } if bundle == Path::new("/x")));
        assert!(matches!(cmd("features"), Cmd::Features));
        assert!(matches!(cmd("verify -b /x"), Cmd::Verify { bundle } if bundle == Path::new("/x")));
        assert!(matches!(cmd("image import oci:/d --name n --allow-devices"), Cmd::Image(ImageCmd::Import { reference, name: Some(n), allow_devices: true }) if reference == "oci:/d" && n == "n"));
        assert!(matches!(cmd("image ls"), Cmd::Image(ImageCmd::Ls)));
        assert!(matches!(cmd("image gc"), Cmd::Image(ImageCmd::Gc)));
        assert!(matches!(cmd("image inspect n"), Cmd::Image(ImageCmd::Inspect { name }) if name == "n"));
        assert!(matches!(cmd("image rm n"), Cmd::Image(ImageCmd::Rm { name }) if name == "n"));
        assert!(matches!(cmd("image verify n"), Cmd::Image(ImageCmd::Verify { name }) if name == "n"));
        assert!(matches!(cmd("bundle create --image i --flatten /d"), Cmd::Bundle(BundleCmd::Create(b)) if b.image == "i" && b.flatten && b.dir == Path::new("/d")));
        let Cmd::Update(u) = cmd("update -r /f --blkio-weight 10 --cpu-period 100000 --cpu-quota 5000 --cpu-share 512 --cpu-rt-period 1 --cpu-rt-runtime 2 --cpuset-cpus 0-1 --cpuset-mems 0 --memory 1m --memory-reservation 2m --memory-swap 3m --pids-limit 9 --kernel-memory 1 --l3-cache-schema L3:0=f x") else { panic!() };
        assert_eq!((u.blkio_weight, u.cpu_period, u.cpu_quota, u.cpu_share, u.cpu_rt_period, u.cpu_rt_runtime), (Some(10), Some(100000), Some(5000), Some(512), Some(1), Some(2)));
        assert_eq!((u.cpuset_cpus.as_deref(), u.cpuset_mems.as_deref(), u.memory.as_deref(), u.memory_reservation.as_deref(), u.memory_swap.as_deref(), u.pids_limit), (Some("0-1"), Some("0"), Some("1m"), Some("2m"), Some("3m"), Some(9)));
        let Cmd::Exec { opts: e, .. } = cmd("exec -p /p -u 0:0 --cwd /c --no-new-privs --ignore-paused --apparmor a --process-label l --cgroup c --pidfd-socket /s x") else { panic!() };
        assert!(e.no_new_privs && e.ignore_paused && e.user.as_deref() == Some("0:0") && e.cwd.as_deref() == Some("/c"));
    }

    #[test]
    fn usage_errors() {
        assert_eq!(err("create --foo x"), "create: unknown flag --foo");
        assert_eq!(err("create --foo=1 x"), "create: unknown flag --foo");
        assert_eq!(err("--foo state x"), "unknown flag --foo");
        assert_eq!(err("create -z x"), "create: unknown flag -z");
        assert_eq!(err("create -nz x"), "create: unknown flag -n (in -nz)");
        assert_eq!(err("kill x -9"), "kill: unknown flag -9");
        assert_eq!(err("create --bundle"), "create: flag --bundle needs a value");
        assert_eq!(err("create id -b"), "create: flag --bundle needs a value");
        assert_eq!(err("create"), "create: missing argument <ID>");
        assert_eq!(err("exec"), "exec: missing argument <ID>");
        assert_eq!(err("image import"), "image import: missing argument <REFERENCE>");
        assert_eq!(err("state a b"), "state: unexpected argument \"b\"");
        assert_eq!(err("kill x 9 extra"), "kill: unexpected argument \"extra\"");
        assert_eq!(err("create --preserve-fds x id"), "create: invalid value \"x\" for --preserve-fds: invalid digit found in string");
        assert_eq!(err("run --pids many --image host -- true"), "run: invalid value \"many\" for --pids: invalid digit found in string");
        assert_eq!(err("run --cpus 1,5 --image host -- true"), "run: invalid value \"1,5\" for --cpus: invalid float literal");
        assert_eq!(err("exec -g x c ls"), "exec: invalid value \"x\" for --additional-gids: invalid digit found in string");
        assert!(err("update --blkio-weight 70000 x").starts_with("update: invalid value \"70000\" for --blkio-weight"));
        assert_eq!(err("foo"), "unknown command \"foo\"");
        assert_eq!(err("image"), "image: missing command (one of: import, ls, inspect, rm, gc, verify)");
        assert_eq!(err("image foo"), "image: unknown command \"foo\"");
        assert_eq!(err("bundle create /d"), "bundle create: missing flag --image");
        assert_eq!(err("verify"), "verify: missing flag --bundle");
        assert_eq!(err("help foo"), "unknown command \"foo\"");
        // an error before --help wins, as it comes first
        assert_eq!(err("state --foo --help"), "state: unknown flag --foo");
    }

    #[test]
    fn help_text() {
        let top = help("--help");
        assert_eq!(top, help("-h"));
        assert_eq!(top, help("help"));
        assert!(top.starts_with("stele: an OCI container runtime for immutable infrastructure\n\nUsage: stele [OPTIONS] [COMMAND]\n"));
        for (name, about) in ROOT.subs.iter().map(|c| (c.name(), c.about)) {
            assert!(top.contains(&format!("\n  {name:<8}  {about}\n")), "{name}");
        }
        assert!(top.contains("  -v, --version "));
        assert!(top.contains("      --root <ROOT>              root directory for storage of container state [default: /run/stele]\n"));
        assert!(!top.contains("criu"), "hidden flags are not listed");
        let create = help("create --help");
        assert_eq!(create, help("help create"));
        assert_eq!(create, help("create -h x --bundle /b"));
        assert!(create.starts_with("create a container\n\nUsage: stele create [OPTIONS] <ID>\n"));
        assert!(create.contains("  -b, --bundle <BUNDLE>  ") && create.contains("path to the root of the bundle directory [default: .]\n"));
        assert!(create.contains("\nGlobal options:\n") && !create.contains("pidfd"));
        assert!(help("run --help").contains("Usage: stele run [OPTIONS] [ID] [-- <COMMAND>...]\n"));
        assert!(help("exec --help").contains("Usage: stele exec [OPTIONS] <ID> [COMMAND]...\n"));
        assert!(help("ps x -h").contains("Usage: stele ps [OPTIONS] <ID> [PS_ARGS]...\n"));
        let import = help("image help import");
        assert_eq!(import, help("help image import"));
        assert!(import.contains("Usage: stele image import [OPTIONS] <REFERENCE>\n"));
        assert!(help("image --help").contains("Usage: stele image [OPTIONS] <COMMAND>\n"));
        assert!(help("bundle create --help").contains("Usage: stele bundle create [OPTIONS] --image <IMAGE> <DIR>\n"));
        assert!(!help("update --help").lines().any(|l| l.ends_with(' ')));
    }

    /// Every command in the table parses with its required flags and
    /// arguments, so every flag name the conversion asks for is in the table.
    #[test]
    fn every_command_converts() {
        fn walk(c: &'static Command, out: &mut Vec<&'static Command>) {
            out.push(c);
            c.subs.iter().for_each(|s| walk(s, out));
        }
        let mut all = Vec::new();
        walk(&ROOT, &mut all);
        assert_eq!(all.len(), 26);
        for c in all.into_iter().filter(|c| c.subs.is_empty()) {
            let flags = c.flags.iter().flat_map(|g| g.iter());
            let mut line = c.path.to_string();
            for f in flags.clone().filter(|f| f.required) {
                line += &format!(" --{} v", f.long);
            }
            for a in c.args.iter().filter(|a| matches!(a.slot, Slot::Required | Slot::Optional)) {
                line += &format!(" {}", a.name);
            }
            cmd(&line);
            // names and letters are unique within a command and its globals
            let all: Vec<&Flag> = flags.chain(GLOBAL.iter()).collect();
            for (i, f) in all.iter().enumerate() {
                assert!(!all[..i].iter().any(|g| g.long == f.long || (f.short.is_some() && g.short == f.short)), "{}: --{}", c.path, f.long);
                assert!(f.short != Some('h'), "-h is help");
            }
            // at most one list, after the single arguments
            let singles = c.args.iter().take_while(|a| matches!(a.slot, Slot::Required | Slot::Optional)).count();
            assert!(c.args.len() - singles <= 1, "{}", c.path);
        }
    }
}
