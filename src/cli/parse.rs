//! The command-line parser: one pass over argv against a static table of
//! flags and arguments per command (the tables are in `args.rs`). Parsing
//! borrows the words from argv and records what it saw; `args.rs` turns
//! that into typed settings. Help text is only built when asked for.
//!
//! The syntax is runc's (Go's `flag` package as urfave/cli uses it, plus
//! GNU habits), which is what containerd's go-runc and conmon send:
//! - `--name VALUE`, `--name=VALUE`, `-n VALUE`, `-nVALUE`, `-n=VALUE`; a
//!   value flag takes the next word whatever it looks like (`--cpu-quota -1`).
//! - Go's single-dash long flags: `-root DIR`, `-no-pivot`, `-log-format=json`.
//! - switches: `--debug`, `--debug=true|false` (and Go's 1 0 t f T F TRUE
//!   FALSE True False), short clusters `-dt`; the last occurrence wins.
//! - global flags at any level, before or after the command.
//! - `--` ends the flags; so does the first word of a trailing argument list
//!   (`exec ID CMD ARGS...`, `ps ID PS-ARGS...`), which takes every word after
//!   it as it is.
//! - `-h`, `--help` and `help [COMMAND...]` print the command's help.

use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// `--x`, `--x=true|false`
    Switch,
    /// `--x V`, `--x=V`
    Value,
    /// `--x` (meaning `true`) or `--x=V`, never `--x V`
    OptValue,
}

#[derive(Clone, Copy, Debug)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub help: &'static str,
    pub default: Option<&'static str>,
    pub required: bool,
    pub hidden: bool,
}

pub const fn switch(long: &'static str, help: &'static str) -> Flag {
    Flag { long, short: None, kind: Kind::Switch, help, default: None, required: false, hidden: false }
}

pub const fn value(long: &'static str, help: &'static str) -> Flag {
    Flag { kind: Kind::Value, ..switch(long, help) }
}

pub const fn opt_value(long: &'static str, help: &'static str) -> Flag {
    Flag { kind: Kind::OptValue, ..switch(long, help) }
}

impl Flag {
    pub const fn short(self, c: char) -> Flag {
        Flag { short: Some(c), ..self }
    }
    pub const fn default(self, v: &'static str) -> Flag {
        Flag { default: Some(v), ..self }
    }
    pub const fn required(self) -> Flag {
        Flag { required: true, ..self }
    }
    /// Accepted but not listed in the help (runc compatibility).
    pub const fn hidden(self) -> Flag {
        Flag { hidden: true, ..self }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Slot {
    Required,
    Optional,
    /// The rest of argv from its first word on, hyphens and `--` included.
    /// Flags the command knows may still come before that first word.
    Trailing,
    /// Only the words after `--`.
    AfterDashes,
}

/// A positional argument. Required and optional ones come first, then at
/// most one list (Trailing or AfterDashes).
#[derive(Clone, Copy, Debug)]
pub struct Arg {
    pub name: &'static str,
    pub slot: Slot,
    pub help: &'static str,
}

pub const fn arg(name: &'static str, slot: Slot, help: &'static str) -> Arg {
    Arg { name, slot, help }
}

#[derive(Debug)]
pub struct Command {
    /// The words that name it: "" for the top level, "image import".
    pub path: &'static str,
    pub about: &'static str,
    pub flags: &'static [&'static [Flag]],
    pub args: &'static [Arg],
    pub subs: &'static [Command],
}

pub const fn command(path: &'static str, about: &'static str) -> Command {
    Command { path, about, flags: &[], args: &[], subs: &[] }
}

impl Command {
    pub const fn flags(self, flags: &'static [&'static [Flag]]) -> Command {
        Command { flags, ..self }
    }
    pub const fn args(self, args: &'static [Arg]) -> Command {
        Command { args, ..self }
    }
    pub const fn subs(self, subs: &'static [Command]) -> Command {
        Command { subs, ..self }
    }
    pub fn name(&self) -> &'static str {
        self.path.rsplit(' ').next().unwrap_or("")
    }
    fn own_flags(&self) -> impl Iterator<Item = &'static Flag> {
        self.flags.iter().flat_map(|g| g.iter())
    }
    /// The required and optional arguments, then the list, if any.
    fn singles(&self) -> usize {
        self.args.iter().filter(|a| matches!(a.slot, Slot::Required | Slot::Optional)).count()
    }
    fn list(&self) -> Option<Slot> {
        self.args.get(self.singles()).map(|a| a.slot)
    }
}

/// Why parsing stopped short of a command to run: help was asked for
/// (print it to stdout, exit 0) or the command line is wrong (one line
/// for stderr, exit 1).
#[derive(Debug, PartialEq)]
pub enum Stop {
    Help(String),
    Usage(String),
}

fn usage(cmd: &Command, msg: impl std::fmt::Display) -> Stop {
    if cmd.path.is_empty() {
        Stop::Usage(msg.to_string())
    } else {
        Stop::Usage(format!("{}: {msg}", cmd.path))
    }
}

/// What one command line said: the command, its flags in the order given,
/// its arguments.
#[derive(Debug)]
pub struct Matches<'a> {
    pub cmd: &'static Command,
    root: &'static Command,
    global: &'static [Flag],
    flags: Vec<(&'static Flag, &'a str)>,
    args: Vec<&'a str>,
    rest: Vec<&'a str>,
}

/// A flag word that did not parse: one the command does not know (which
/// may still open a trailing list), or a wrong one.
enum Bad {
    Unknown(String),
    Stop(Stop),
}

impl From<Stop> for Bad {
    fn from(s: Stop) -> Bad {
        Bad::Stop(s)
    }
}

pub fn parse<'a>(root: &'static Command, global: &'static [Flag], argv: &'a [String]) -> Result<Matches<'a>, Stop> {
    let mut m = Matches { cmd: root, root, global, flags: Vec::new(), args: Vec::new(), rest: Vec::new() };
    let mut words = argv.iter().skip(1).map(String::as_str);
    let (mut dashes, mut trailing) = (false, false);
    while let Some(w) = words.next() {
        if trailing {
            m.rest.push(w);
            continue;
        }
        if !dashes && w == "--" {
            dashes = true;
            continue;
        }
        if !dashes && w.len() > 1 && w.starts_with('-') {
            match m.flag(w, &mut words) {
                Ok(false) => continue,
                Ok(true) => return Err(Stop::Help(help(m.cmd, global))),
                // `exec ID -la`: an unknown flag-like word (which set
                // nothing) opens the list.
                Err(Bad::Unknown(_)) if m.list_next() == Some(Slot::Trailing) => {}
                Err(Bad::Unknown(f)) => return Err(usage(m.cmd, format_args!("unknown flag {f}"))),
                Err(Bad::Stop(stop)) => return Err(stop),
            }
        }
        if !m.cmd.subs.is_empty() {
            if w == "help" {
                return Err(help_for(m.cmd, words, global));
            }
            m.cmd = m.cmd.subs.iter().find(|c| c.name() == w).ok_or_else(|| usage(m.cmd, format_args!("unknown command {w:?}")))?;
            continue;
        }
        match m.cmd.list() {
            Some(Slot::AfterDashes) if dashes => m.rest.push(w),
            _ if m.args.len() < m.cmd.singles() => m.args.push(w),
            Some(Slot::Trailing) => {
                m.rest.push(w);
                trailing = true;
            }
            _ => return Err(usage(m.cmd, format_args!("unexpected argument {w:?}"))),
        }
    }
    m.check()?;
    Ok(m)
}

/// `help [COMMAND...]` at a level that has commands.
fn help_for<'a>(mut cmd: &'static Command, words: impl Iterator<Item = &'a str>, global: &'static [Flag]) -> Stop {
    for w in words {
        match cmd.subs.iter().find(|c| c.name() == w) {
            Some(c) => cmd = c,
            None => return usage(cmd, format_args!("unknown command {w:?}")),
        }
    }
    Stop::Help(help(cmd, global))
}

fn parse_bool(v: &str) -> Option<&'static str> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Some("true"),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Some("false"),
        _ => None,
    }
}

impl<'a> Matches<'a> {
    /// A flag the command takes where it is being parsed: its own or a global one.
    fn lookup(&self, long: &str) -> Option<&'static Flag> {
        self.cmd.own_flags().chain(self.global.iter()).find(|f| f.long == long)
    }

    fn short(&self, c: char) -> Option<&'static Flag> {
        self.cmd.own_flags().chain(self.global.iter()).find(|f| f.short == Some(c))
    }

    /// The kind of list the next positional word goes to, if it goes to one.
    fn list_next(&self) -> Option<Slot> {
        self.cmd.list().filter(|_| self.args.len() == self.cmd.singles())
    }

    /// Parse one flag word (taking its value from `words` if it needs one).
    /// Ok(true): help was asked for.
    fn flag(&mut self, w: &'a str, words: &mut impl Iterator<Item = &'a str>) -> Result<bool, Bad> {
        let single = !w.starts_with("--");
        let body = if single { &w[1..] } else { &w[2..] };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        // `-root` is Go's spelling of `--root`; `-bDIR` and `-dt` are short flags.
        if !single || (name.len() > 1 && (name == "help" || self.lookup(name).is_some())) {
            if name == "help" {
                return Ok(true);
            }
            let f = self.lookup(name).ok_or_else(|| Bad::Unknown(w.split('=').next().unwrap_or(w).into()))?;
            self.set(f, inline, words)?;
            return Ok(false);
        }
        // Where a trailing list may start, `-la` is a value unless all of it
        // is short flags (`exec ID -t sh`: a flag; `exec ID -ef`: a value).
        if self.list_next() == Some(Slot::Trailing) {
            if let Some(c) = w[1..].chars().find(|&c| c != 'h' && self.short(c).is_none()) {
                return Err(Bad::Unknown(format!("-{c}")));
            }
        }
        for (i, c) in w[1..].char_indices() {
            if c == 'h' {
                return Ok(true);
            }
            let f = self.short(c).ok_or_else(|| Bad::Unknown(if w.len() == 2 { w.into() } else { format!("-{c} (in {w})") }))?;
            let after = &w[1 + i + c.len_utf8()..];
            if f.kind == Kind::Value || after.starts_with('=') {
                // `-bDIR`, `-b=DIR`, `-b DIR`; `-d=true`
                let v = after.strip_prefix('=').unwrap_or(after);
                self.set(f, (!v.is_empty() || after.starts_with('=')).then_some(v), words)?;
                break;
            }
            self.set(f, None, words)?;
        }
        Ok(false)
    }

    fn set(&mut self, f: &'static Flag, inline: Option<&'a str>, words: &mut impl Iterator<Item = &'a str>) -> Result<(), Stop> {
        let v = match (f.kind, inline) {
            (Kind::Switch, None) | (Kind::OptValue, None) => "true",
            (Kind::Switch, Some(v)) => {
                parse_bool(v).ok_or_else(|| usage(self.cmd, format_args!("invalid value {v:?} for --{}: want true or false", f.long)))?
            }
            (_, Some(v)) => v,
            (Kind::Value, None) => words.next().ok_or_else(|| usage(self.cmd, format_args!("flag --{} needs a value", f.long)))?,
        };
        self.flags.push((f, v));
        Ok(())
    }

    /// After the last word: required arguments and flags, and a command
    /// where one is needed.
    fn check(&self) -> Result<(), Stop> {
        let cmd = self.cmd;
        if !cmd.subs.is_empty() && !cmd.path.is_empty() {
            let names: Vec<&str> = cmd.subs.iter().map(|c| c.name()).collect();
            return Err(usage(cmd, format_args!("missing command (one of: {})", names.join(", "))));
        }
        if let Some(a) = cmd.args.iter().filter(|a| a.slot == Slot::Required).nth(self.args.len()) {
            return Err(usage(cmd, format_args!("missing argument <{}>", a.name)));
        }
        if let Some(f) = cmd.own_flags().find(|f| f.required && !self.flags.iter().any(|(g, _)| g.long == f.long)) {
            return Err(usage(cmd, format_args!("missing flag --{}", f.long)));
        }
        Ok(())
    }

    /// The table entry of a flag the conversion asks for: the command's,
    /// a global one, or one of the top level's own (`--version`).
    fn entry(&self, long: &str) -> &'static Flag {
        let f = self.lookup(long).or_else(|| self.root.own_flags().find(|f| f.long == long));
        f.unwrap_or_else(|| panic!("{}: no flag --{long} in the table", self.cmd.path))
    }

    /// The last value given, else the table's default.
    pub fn value(&self, long: &str) -> Option<&'a str> {
        let f = self.entry(long);
        self.flags.iter().rev().find(|(g, _)| g.long == f.long).map(|(_, v)| *v).or(f.default)
    }

    /// Every value given, in order (repeated flags: `-e A=1 -e B=2`).
    pub fn values(&self, long: &str) -> Vec<String> {
        let f = self.entry(long);
        self.flags.iter().filter(|(g, _)| g.long == f.long).map(|(_, v)| v.to_string()).collect()
    }

    /// A switch: given (and not `=false` last).
    pub fn on(&self, long: &str) -> bool {
        self.value(long) == Some("true")
    }

    /// The value (or default) through `f`; its error names the flag.
    pub fn parsed<T, E: std::fmt::Display>(&self, long: &str, f: impl Fn(&str) -> Result<T, E>) -> Result<Option<T>, Stop> {
        self.value(long).map(|v| f(v).map_err(|e| self.bad_value(long, v, e))).transpose()
    }

    pub fn number<T: std::str::FromStr>(&self, long: &str) -> Result<Option<T>, Stop>
    where
        T::Err: std::fmt::Display,
    {
        self.parsed(long, str::parse)
    }

    /// Every value given, as numbers.
    pub fn numbers<T: std::str::FromStr>(&self, long: &str) -> Result<Vec<T>, Stop>
    where
        T::Err: std::fmt::Display,
    {
        let f = self.entry(long);
        let all = self.flags.iter().filter(|(g, _)| g.long == f.long);
        all.map(|(_, v)| v.parse().map_err(|e| self.bad_value(long, v, e))).collect()
    }

    fn bad_value(&self, long: &str, v: &str, e: impl std::fmt::Display) -> Stop {
        self.usage(format_args!("invalid value {v:?} for --{long}: {e}"))
    }

    /// A usage error of this command.
    pub fn usage(&self, msg: impl std::fmt::Display) -> Stop {
        usage(self.cmd, msg)
    }

    /// The i-th required or optional argument.
    pub fn arg(&self, i: usize) -> Option<&'a str> {
        self.args.get(i).copied()
    }

    /// The trailing list (or the words after `--`).
    pub fn rest(&self) -> Vec<String> {
        self.rest.iter().map(|s| s.to_string()).collect()
    }
}

/// The help text of a command: usage, commands, arguments, flags.
pub fn help(cmd: &Command, global: &'static [Flag]) -> String {
    let top = cmd.path.is_empty();
    let mut s = format!("{}\n\nUsage: stele{}{} [OPTIONS]", cmd.about, if top { "" } else { " " }, cmd.path);
    for f in cmd.own_flags().filter(|f| f.required) {
        let _ = write!(s, " --{} <{}>", f.long, meta(f));
    }
    if !cmd.subs.is_empty() {
        s.push_str(if top { " [COMMAND]" } else { " <COMMAND>" });
    }
    for a in cmd.args {
        let _ = match a.slot {
            Slot::Required => write!(s, " <{}>", a.name),
            Slot::Optional => write!(s, " [{}]", a.name),
            Slot::Trailing => write!(s, " [{}]...", a.name),
            Slot::AfterDashes => write!(s, " [-- <{}>...]", a.name),
        };
    }
    s.push('\n');
    let mut subs: Vec<(String, &str)> = cmd.subs.iter().map(|c| (c.name().into(), c.about)).collect();
    if !subs.is_empty() {
        subs.push(("help".into(), "print this message or the help of the given command"));
    }
    section(&mut s, "Commands", &subs);
    section(&mut s, "Arguments", &cmd.args.iter().map(|a| (format!("<{}>", a.name), a.help)).collect::<Vec<_>>());
    let globals = global.iter().filter(|_| top);
    let mut own = flag_rows(globals.chain(cmd.own_flags()));
    own.push(("-h, --help".into(), "print help".into()));
    section(&mut s, "Options", &own);
    if !top {
        section(&mut s, "Global options", &flag_rows(global.iter()));
    }
    s
}

fn meta(f: &Flag) -> String {
    f.long.to_uppercase().replace('-', "_")
}

fn flag_rows<'f>(flags: impl Iterator<Item = &'f Flag>) -> Vec<(String, String)> {
    let row = |f: &Flag| {
        let short = f.short.map(|c| format!("-{c}, ")).unwrap_or_else(|| "    ".into());
        let label = match f.kind {
            Kind::Switch => format!("{short}--{}", f.long),
            Kind::Value => format!("{short}--{} <{}>", f.long, meta(f)),
            Kind::OptValue => format!("{short}--{}[=<{}>]", f.long, meta(f)),
        };
        let text = match f.default {
            Some(d) => format!("{} [default: {d}]", f.help),
            None => f.help.into(),
        };
        (label, text)
    };
    flags.filter(|f| !f.hidden).map(row).collect()
}

fn section<A: AsRef<str>, B: AsRef<str>>(s: &mut String, title: &str, rows: &[(A, B)]) {
    if rows.is_empty() {
        return;
    }
    let w = rows.iter().map(|(a, _)| a.as_ref().len()).max().unwrap_or(0);
    let _ = writeln!(s, "\n{title}:");
    for (a, b) in rows {
        let line = format!("  {:w$}  {}", a.as_ref(), b.as_ref());
        let _ = writeln!(s, "{}", line.trim_end());
    }
}
