//! The `stele` binary: argv -> library call -> output and exit code.

mod cli;

use cli::parse::Stop;
use stele::log;

#[global_allocator]
static ALLOC: stele::arena::Arena = stele::arena::Arena::new();

fn main() {
    log::mark_start();
    let args: Vec<String> = std::env::args().collect();
    let parsed = match cli::Cli::parse(&args) {
        Ok(c) => c,
        Err(Stop::Help(text)) => {
            use std::io::Write;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            std::process::exit(0);
        }
        Err(Stop::Usage(msg)) => {
            eprintln!("stele: {msg}");
            std::process::exit(1);
        }
    };
    // Inherited fds must not leak into hooks or the container: everything
    // above stdio becomes close-on-exec, except what --preserve-fds keeps
    // (parsing touches no fd).
    let _ = stele::sys::cloexec_from(3 + parsed.preserve_fds());

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
