//! The command line: runc's global flags and subcommands (tables and typed
//! settings in `args`, the parser in `parse`); each command calls the
//! library and prints the result the way runc does.

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

pub mod args;
pub mod image;
pub mod parse;

pub use args::*;
use stele::container::{self, Globals};
use stele::{bail, Context, Error, Result};
use std::io::Write;

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
        Cmd::Create { id, opts } => container::create(&g, &id, &opts).map(|_| 0),
        Cmd::Start { id } => container::start(&g, &id).map(|_| 0),
        Cmd::Run { id, opts, detach } => container::run(&g, &id, &opts, detach),
        Cmd::Sandbox { opts, json_status } => {
            let out = stele::sandbox::run(&g, &opts)?;
            if out.timed_out {
                eprintln!("stele: the job ran longer than --timeout {:?} and was killed", opts.timeout.unwrap_or_default());
            }
            if let Some(p) = &json_status {
                let v = stele::sandbox::status_json(&out);
                std::fs::write(p, format!("{v}\n")).with_ctx(|| format!("--json-status {}", p.display()))?;
            }
            Ok(out.code)
        }
        Cmd::Exec { id, opts } => {
            // runc: every exec failure exits 255, "exec failed: ..."
            container::exec(&g, &id, &opts).map_err(|e| Error::Exit(255, format!("exec failed: {e}")))
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
