//! The `stele` binary: argv -> library call -> output and exit code.

mod cli;

use clap::Parser;
use stele::log;

#[global_allocator]
static ALLOC: stele::arena::Arena = stele::arena::Arena::new();

fn main() {
    log::mark_start();
    // Inherited fds must not leak into hooks or the container: everything
    // above stdio becomes close-on-exec, except what --preserve-fds keeps.
    let args = cli::argv::normalize(std::env::args().collect());
    let keep = preserve_fds(&args);
    let _ = stele::sys::cloexec_from(3 + keep);

    let parsed = match cli::Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let format = if parsed.log_format == "json" { log::Format::Json } else { log::Format::Text };
    let file = parsed.log.as_ref().and_then(|p| {
        std::fs::OpenOptions::new().create(true).append(true).open(p).ok()
    });
    log::init(file, format, parsed.debug);
    log::phase("parsed");

    match cli::dispatch(parsed) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = e.to_string();
            if log::has_file() {
                log::error(&msg);
            }
            eprintln!("stele: {msg}");
            let code = match e {
                stele::Error::Exit(c, _) => c,
                _ => 1,
            };
            std::process::exit(code);
        }
    }
}

/// The --preserve-fds value, read before clap so that no fd is lost.
fn preserve_fds(args: &[String]) -> u32 {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if let Some(v) = a.strip_prefix("--preserve-fds=") {
            return v.parse().unwrap_or(0);
        }
        if a == "--preserve-fds" {
            return it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    0
}
