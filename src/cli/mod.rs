//! The command line: runc's global flags and subcommands, parsed with clap
//! after Go-style argv normalisation; each command calls the library and
//! prints the result the way runc does.

/// Print to stdout, ignoring a closed pipe (`stele list | head`).
macro_rules! out {
    ($($t:tt)*) => {{
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

pub mod argv;
pub mod image;

use clap::{Args, Parser, Subcommand};
use stele::container::{self, CreateOpts, Globals};
use stele::{bail, Context, Error, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "stele", version = None, disable_version_flag = true,
          about = "stele: an OCI container runtime for immutable infrastructure")]
pub struct Cli {
    /// root directory for storage of container state
    #[arg(long, global = true, default_value = stele::state::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// set the log file to write runtime logs to (default: stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// set the log format ('text' or 'json')
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// use systemd cgroup paths (slice:prefix:name)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// ignored: stele runs as root (accepted for runc compatibility)
    #[arg(long, global = true, require_equals = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// ignored (runc compatibility)
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// image and layer store
    #[arg(long, global = true, default_value = stele::image::DEFAULT_STORE)]
    pub store: PathBuf,
    /// print the version
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// path to an AF_UNIX socket which will receive the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// file to write the container's init pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// do not use pivot_root (move the root and chroot instead)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// accepted for runc compatibility (stele does not create session keyrings)
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// pass N additional fds (3 .. 3+N-1) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// accepted for runc compatibility
    #[arg(long = "pidfd-socket", hide = true)]
    pub pidfd_socket: Option<PathBuf>,
}

impl CreateArgs {
    fn opts(&self) -> CreateOpts {
        CreateOpts {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            die_with_parent: false,
            console_fd: None,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// create a container
    Create {
        #[command(flatten)]
        a: CreateArgs,
        id: String,
    },
    /// start a created container
    Start { id: String },
    /// create and start a container, wait for it and exit with its status
    Run {
        #[command(flatten)]
        a: CreateArgs,
        /// detach from the container's process
        #[arg(short = 'd', long)]
        detach: bool,
        /// do not delete the container after it exits
        #[arg(long)]
        keep: bool,
        /// accepted for runc compatibility
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
        #[command(flatten)]
        sandbox: SandboxArgs,
        /// the container id (runc form: stele run [-b DIR] ID)
        id: Option<String>,
        /// with --image: the command to run, after --
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// run a process in a running container
    Exec(ExecArgs),
    /// output the state of a container
    State { id: String },
    /// send a signal to the container's init (default TERM)
    Kill {
        /// send the signal to all processes in the container
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// delete a container and everything it holds
    Delete {
        /// kill the container first if it is running
        #[arg(short = 'f', long)]
        force: bool,
        id: String,
    },
    /// list containers
    List {
        /// table or json
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        /// print only the ids
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// list the processes of a container
    Ps {
        /// table or json
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        id: String,
        /// options for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// suspend all processes of a container
    Pause { id: String },
    /// resume a paused container
    Resume { id: String },
    /// update a container's resource limits
    Update(UpdateArgs),
    /// show container events and resource statistics
    Events {
        /// print one stats record and exit
        #[arg(long)]
        stats: bool,
        /// stats interval (Go duration: 5s, 500ms, 1m)
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// write a default config.json
    Spec {
        /// bundle directory to write config.json into
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
    },
    /// show what this runtime supports (runtime-spec features JSON)
    Features,
    /// import, list, inspect, verify and remove OCI images in the layer store
    #[command(subcommand)]
    Image(image::ImageCmd),
    /// make OCI bundles from images
    #[command(subcommand)]
    Bundle(BundleCmd),
    /// check that a bundle's root filesystem has not drifted from its image
    Verify {
        /// the bundle directory
        #[arg(short = 'b', long)]
        bundle: PathBuf,
    },
}

/// `stele run --image REF [options] -- CMD`: the CI sandbox.
#[derive(Args, Debug, Default)]
pub struct SandboxArgs {
    /// run CMD in a throw-away read-only container of this image (`host`: the host's root, read-only)
    #[arg(long)]
    pub image: Option<String>,
    /// bind SRC:DST[:ro|rw] (rw never into an image)
    #[arg(long)]
    pub bind: Vec<String>,
    /// a tmpfs at DST[:size=N]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// working directory inside
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// set an environment variable KEY=VALUE
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// read KEY=VALUE lines from a file
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// UID[:GID]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// hostname inside (default stele-sandbox)
    #[arg(long)]
    pub hostname: Option<String>,
    /// none (loopback only, default) or host
    #[arg(long, default_value = "none")]
    pub net: String,
    /// memory limit (e.g. 512m, 2g)
    #[arg(long)]
    pub memory: Option<String>,
    /// maximum number of processes
    #[arg(long)]
    pub pids: Option<i64>,
    /// CPU limit in cores (e.g. 1.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// kill the job after this long (e.g. 30s, 10m) and exit 124
    #[arg(long)]
    pub timeout: Option<String>,
    /// default, unconfined or a profile file
    #[arg(long, default_value = "default")]
    pub seccomp: String,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// a name for the container (default: generated)
    #[arg(long)]
    pub name: Option<String>,
    /// pass stdin to the job
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// give the job a terminal (the default when stdin is one)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// a throw-away writable layer over the root (on tmpfs, discarded at the end)
    #[arg(long)]
    pub writable: bool,
    /// write the job's exit code, signal, OOM, timeout, wall time, peak memory and CPU time here
    #[arg(long = "json-status")]
    pub json_status: Option<PathBuf>,
}

impl SandboxArgs {
    fn options(&self, image: String, command: Vec<String>) -> Result<stele::sandbox::Options> {
        use stele::units::{parse_duration, parse_size};
        Ok(stele::sandbox::Options {
            image,
            command,
            binds: self.bind.clone(),
            tmpfs: self.tmpfs.clone(),
            workdir: self.workdir.clone(),
            env: self.env.clone(),
            env_files: self.env_file.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            net: self.net.clone(),
            memory: self.memory.as_deref().map(|m| parse_size(m, false)).transpose().ctx("--memory")?,
            pids: self.pids,
            cpus: self.cpus,
            timeout: self.timeout.as_deref().map(parse_duration).transpose().ctx("--timeout")?,
            seccomp: self.seccomp.clone(),
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            name: self.name.clone(),
            interactive: self.interactive,
            collect_stats: self.json_status.is_some(),
            tty: self.tty,
            writable: self.writable,
        })
    }
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// path to a process.json
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// detach from the process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// file to write the process's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// path to an AF_UNIX socket which will receive the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// current working directory in the container
    #[arg(long)]
    pub cwd: Option<String>,
    /// set environment variables (KEY=VALUE)
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// add a capability to the process
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    /// set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// pass N additional fds (3 .. 3+N-1)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// accepted for runc compatibility
    #[arg(long = "process-label", hide = true)]
    pub process_label: Option<String>,
    /// accepted for runc compatibility
    #[arg(long = "apparmor", hide = true)]
    pub apparmor: Option<String>,
    /// accepted for runc compatibility
    #[arg(long = "pidfd-socket", hide = true)]
    pub pidfd_socket: Option<PathBuf>,
    /// accepted for runc compatibility
    #[arg(long = "cgroup", hide = true)]
    pub cgroup: Vec<String>,
    pub id: String,
    /// the command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// LinuxResources JSON from a file, or - for stdin
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "l3-cache-schema", hide = true)]
    pub l3_cache_schema: Option<String>,
    #[arg(long = "mem-bw-schema", hide = true)]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

impl UpdateArgs {
    fn resources(&self) -> Result<oci_spec::runtime::LinuxResources> {
        let mut v = match self.resources.as_deref() {
            Some("-") => {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).ctx("read resources from stdin")?;
                serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| Error::msg(format!("resources: {e}")))?
            }
            Some(f) => {
                let b = std::fs::read(f).with_ctx(|| format!("read {f}"))?;
                serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| Error::msg(format!("resources {f}: {e}")))?
            }
            None => serde_json::json!({}),
        };
        let mut set = |path: &[&str], val: serde_json::Value| {
            let mut cur = &mut v;
            for p in &path[..path.len() - 1] {
                if !cur[*p].is_object() {
                    cur[*p] = serde_json::json!({});
                }
                cur = &mut cur[*p];
            }
            cur[path[path.len() - 1]] = val;
        };
        if let Some(x) = self.blkio_weight { set(&["blockIO", "weight"], x.into()); }
        if let Some(x) = self.cpu_period { set(&["cpu", "period"], x.into()); }
        if let Some(x) = self.cpu_quota { set(&["cpu", "quota"], x.into()); }
        if let Some(x) = self.cpu_share { set(&["cpu", "shares"], x.into()); }
        if let Some(x) = self.cpu_rt_period { set(&["cpu", "realtimePeriod"], x.into()); }
        if let Some(x) = self.cpu_rt_runtime { set(&["cpu", "realtimeRuntime"], x.into()); }
        if let Some(x) = &self.cpuset_cpus { set(&["cpu", "cpus"], x.clone().into()); }
        if let Some(x) = &self.cpuset_mems { set(&["cpu", "mems"], x.clone().into()); }
        if let Some(x) = &self.memory { set(&["memory", "limit"], stele::units::parse_size(x, true).ctx("--memory")?.into()); }
        if let Some(x) = &self.memory_reservation { set(&["memory", "reservation"], stele::units::parse_size(x, true).ctx("--memory-reservation")?.into()); }
        if let Some(x) = &self.memory_swap { set(&["memory", "swap"], stele::units::parse_size(x, true).ctx("--memory-swap")?.into()); }
        if let Some(x) = self.pids_limit { set(&["pids", "limit"], x.into()); }
        let text = v.to_string();
        let de = &mut serde_json::Deserializer::from_slice(text.as_bytes());
        serde_path_to_error::deserialize(de).map_err(|e| Error::msg(format!("resources: {}: {}", e.path(), e.inner())))
    }
}


#[derive(Subcommand, Debug)]
pub enum BundleCmd {
    /// write DIR/config.json (and DIR/rootfs) from an image
    Create(image::BundleCreate),
}

fn print_json_pretty(v: &serde_json::Value) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::msg(e.to_string()))?;
    outln!("{s}");
    Ok(())
}

/// Go's tabwriter as runc's `list` uses it: minwidth 12, padding 3.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut w = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                w[i] = w[i].max((c.chars().count() + 3).max(12));
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                out.push_str(&" ".repeat(w[i] - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

pub fn version_text() -> String {
    format!("stele version {}\nspec: 1.0.2-dev\n", env!("CARGO_PKG_VERSION"))
}

/// Run the parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let g = Globals { root: cli.root.clone(), systemd_cgroup: cli.systemd_cgroup, store: cli.store.clone() };
    let Some(cmd) = cli.cmd else {
        if cli.version {
            out!("{}", version_text());
            return Ok(0);
        }
        bail!("no command given; see `stele --help`");
    };
    match cmd {
        Cmd::Create { a, id } => container::create(&g, &id, &a.opts()).map(|_| 0),
        Cmd::Start { id } => container::start(&g, &id).map(|_| 0),
        Cmd::Run { a, detach, keep: _, no_subreaper: _, sandbox, id, command } => {
            let Some(image) = sandbox.image.clone() else {
                let Some(id) = id else { bail!("run: a container id is required (or --image REF -- CMD)") };
                if !command.is_empty() {
                    bail!("run: a command after -- needs --image");
                }
                return container::run(&g, &id, &a.opts(), detach);
            };
            // `run --image REF CMD...` without `--` also works: the id slot holds CMD's first word.
            let mut cmd = command;
            if let Some(first) = id {
                cmd.insert(0, first);
            }
            let o = sandbox.options(image, cmd)?;
            let out = stele::sandbox::run(&g, &o)?;
            if out.timed_out {
                eprintln!("stele: the job ran longer than --timeout {} and was killed", sandbox.timeout.as_deref().unwrap_or(""));
            }
            if let Some(p) = &sandbox.json_status {
                let v = stele::sandbox::status_json(&out);
                std::fs::write(p, format!("{v}\n")).with_ctx(|| format!("--json-status {}", p.display()))?;
            }
            Ok(out.code)
        }
        Cmd::Exec(a) => {
            let o = container::ExecOpts {
                process_file: a.process,
                args: a.command,
                detach: a.detach,
                pid_file: a.pid_file,
                console_socket: a.console_socket,
                tty: a.tty,
                cwd: a.cwd,
                env: a.env,
                user: a.user,
                additional_gids: a.additional_gids,
                caps: a.cap,
                no_new_privs: a.no_new_privs,
                preserve_fds: a.preserve_fds,
                ignore_paused: a.ignore_paused,
            };
            // runc: every exec failure exits 255, "exec failed: ..."
            container::exec(&g, &a.id, &o).map_err(|e| Error::Exit(255, format!("exec failed: {e}")))
        }
        Cmd::State { id } => {
            let v = container::state(&g, &id)?;
            print_json_pretty(&v)?;
            Ok(0)
        }
        Cmd::Kill { all, id, signal } => {
            let sig = container::parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            container::kill(&g, &id, sig, all).map(|_| 0)
        }
        Cmd::Delete { force, id } => container::delete(&g, &id, force).map(|_| 0),
        Cmd::List { format, quiet } => {
            let list = container::list(&g)?;
            if quiet {
                for c in &list {
                    outln!("{}", c["id"].as_str().unwrap_or(""));
                }
                return Ok(0);
            }
            match format.as_str() {
                "json" => {
                    let s = serde_json::to_string(&list).map_err(|e| Error::msg(e.to_string()))?;
                    outln!("{s}");
                }
                "table" => {
                    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from).to_vec()];
                    for c in &list {
                        let f = |k: &str| c[k].as_str().unwrap_or("").to_string();
                        rows.push(vec![f("id"), c["pid"].to_string(), f("status"), f("bundle"), f("created"), f("owner")]);
                    }
                    out!("{}", table(&rows));
                }
                other => bail!("invalid format option {other:?}"),
            }
            Ok(0)
        }
        Cmd::Ps { format, id, ps_args } => {
            let pids = container::ps(&g, &id)?;
            match format.as_str() {
                "json" => {
                    outln!("{}", serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into()));
                    Ok(0)
                }
                "table" => ps_table(&pids, &ps_args),
                other => bail!("invalid format option {other:?}"),
            }
        }
        Cmd::Update(a) => {
            let r = a.resources()?;
            container::update(&g, &a.id, &r).map(|_| 0)
        }
        Cmd::Events { stats, interval, id } => {
            if stats {
                let v = container::stats_event(&g, &id)?;
                outln!("{v}");
                return Ok(0);
            }
            let d = stele::units::parse_duration(&interval).ctx("--interval")?;
            container::events(&g, &id, d, |v| {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{v}");
                let _ = o.flush();
            })?;
            Ok(0)
        }
        Cmd::Pause { id } => container::pause(&g, &id, true).map(|_| 0),
        Cmd::Resume { id } => container::pause(&g, &id, false).map(|_| 0),
        Cmd::Spec { bundle } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&stele::spec::default_spec(), &mut ser).map_err(|e| Error::msg(e.to_string()))?;
            std::fs::write(&path, &buf).with_ctx(|| format!("write {}", path.display()))?;
            Ok(0)
        }
        Cmd::Features => {
            print_json_pretty(&stele::spec::features())?;
            Ok(0)
        }
        Cmd::Image(c) => image::run_image(c, &g.store),
        Cmd::Bundle(BundleCmd::Create(a)) => image::run_bundle_create(a, &g.store),
        Cmd::Verify { bundle } => image::run_verify_bundle(&bundle),
    }
}

/// `ps` table: ps(1) output filtered to the container's pids, as runc does.
fn ps_table(pids: &[i32], args: &[String]) -> Result<i32> {
    let args: Vec<String> = if args.is_empty() { vec!["-ef".into()] } else { args.to_vec() };
    let out = std::process::Command::new("ps").args(&args).output().ctx("run ps")?;
    if !out.status.success() {
        bail!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header.split_whitespace().position(|h| h == "PID").ok_or_else(|| Error::msg("ps output has no PID column"))?;
    let mut w = std::io::stdout().lock();
    let _ = writeln!(w, "{header}");
    for l in lines {
        if let Some(p) = l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()) {
            if pids.contains(&p) {
                let _ = writeln!(w, "{l}");
            }
        }
    }
    Ok(0)
}
