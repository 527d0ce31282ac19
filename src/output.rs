//! The terminal: the only module that writes to stdout or stderr.
//!
//! stdout carries data (the manifest with `--message-format json`); stderr carries people's
//! messages: cargo-style right-aligned status lines, warnings, errors, progress bars and the summary.
//! Progress is drawn only when stderr is a terminal, not with `-q`, and not with
//! `--message-format json`; other lines are printed through the bar so they never tear it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{ColorChoice, MessageFormat};
use crate::error::Error;

/// How chatty the terminal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    VeryVerbose,
}

/// Where the shell writes: the process's stdout and stderr, or, in unit tests, buffers the test
/// reads back (as cargo-nextest's `OutputWriter` does), so rendering is tested without spawning
/// the binary.
enum Writer {
    Terminal,
    #[cfg(test)]
    Buffer(std::sync::Arc<Mutex<Captured>>),
}

/// What a buffered shell wrote, split as the terminal would split it.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
}

pub struct Shell {
    writer: Writer,
    verbosity: Verbosity,
    color: bool,
    progress_allowed: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Shell {
    pub fn new(verbosity: Verbosity, color: ColorChoice, format: MessageFormat) -> Shell {
        let tty = std::io::stderr().is_terminal();
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none(),
        };
        console::set_colors_enabled_stderr(color);
        Shell {
            writer: Writer::Terminal,
            verbosity,
            color,
            progress_allowed: tty
                && verbosity != Verbosity::Quiet
                && format == MessageFormat::Human,
            bar: Mutex::new(None),
        }
    }

    /// A shell that writes into a buffer instead of the terminal: no colour, no progress bar.
    #[cfg(test)]
    pub fn buffered(verbosity: Verbosity) -> (Shell, std::sync::Arc<Mutex<Captured>>) {
        let captured = std::sync::Arc::new(Mutex::new(Captured::default()));
        let shell = Shell {
            writer: Writer::Buffer(captured.clone()),
            verbosity,
            color: false,
            progress_allowed: false,
            bar: Mutex::new(None),
        };
        (shell, captured)
    }

    /// A shell for errors that happen before the flags are known.
    pub fn fallback() -> Shell {
        Shell::new(Verbosity::Normal, ColorChoice::Auto, MessageFormat::Human)
    }

    pub fn err_color(&self) -> bool {
        self.color
    }

    pub fn progress_enabled(&self) -> bool {
        self.progress_allowed
    }

    /// Prints a line on stderr without tearing an active progress bar.
    fn eprint_line(&self, line: &str) {
        match &self.writer {
            Writer::Terminal => {
                let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
                match bar.as_ref() {
                    Some(bar) => bar.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
            }
            #[cfg(test)]
            Writer::Buffer(captured) => {
                let mut captured = captured.lock().unwrap_or_else(|e| e.into_inner());
                captured.stderr.push_str(line);
                captured.stderr.push('\n');
            }
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }

    /// A cargo-style status line: `    Packing fn-a (x86_64)`.
    pub fn status(&self, verb: &str, message: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            let verb = self.paint(Style::new().green().bold(), &format!("{verb:>12}"));
            self.eprint_line(&format!("{verb} {message}"));
        }
    }

    /// A status line only shown with `-v`.
    pub fn verbose(&self, message: impl FnOnce() -> String) {
        if self.verbosity >= Verbosity::Verbose {
            let verb = self.paint(Style::new().cyan().bold(), &format!("{:>12}", "Info"));
            self.eprint_line(&format!("{verb} {}", message()));
        }
    }

    pub fn warn(&self, message: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            let label = self.paint(Style::new().yellow().bold(), "warning");
            self.eprint_line(&format!("{label}: {message}"));
        }
    }

    pub fn note(&self, message: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            let label = self.paint(Style::new().cyan().bold(), "note");
            self.eprint_line(&format!("{label}: {message}"));
        }
    }

    /// Errors are shown even with `-q`.
    pub fn error(&self, error: &Error) {
        let label = self.paint(Style::new().red().bold(), "error");
        let mut text = format!("{label}: {}", error.message);
        for note in &error.notes {
            text.push_str(&format!(
                "\n  {}: {note}",
                self.paint(Style::new().bold(), "note")
            ));
        }
        if let Some(help) = &error.help {
            text.push_str(&format!(
                "\n  {}: {help}",
                self.paint(Style::new().cyan().bold(), "help")
            ));
        }
        self.eprint_line(&text);
    }

    /// A line of cargo's stderr, passed on unchanged.
    pub fn cargo_stderr_line(&self, line: &str) {
        self.eprint_line(line);
    }

    /// Free-form text for people on stderr (the plan, the summary table).
    pub fn print_block(&self, text: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.eprint_line(text.trim_end_matches('\n'));
        }
    }

    /// Data on stdout: the only thing that ever goes there.
    pub fn print_data(&self, text: &str) -> std::io::Result<()> {
        let newline = if text.ends_with('\n') { "" } else { "\n" };
        match &self.writer {
            Writer::Terminal => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(text.as_bytes())?;
                stdout.write_all(newline.as_bytes())?;
                stdout.flush()
            }
            #[cfg(test)]
            Writer::Buffer(captured) => {
                let mut captured = captured.lock().unwrap_or_else(|e| e.into_inner());
                captured.stdout.push_str(text);
                captured.stdout.push_str(newline);
                Ok(())
            }
        }
    }

    /// Starts a spinner with a prefix such as `Building x86_64-unknown-linux-gnu`; a no-op handle
    /// when progress is not shown.
    pub fn progress(&self, prefix: &str) -> Progress<'_> {
        if !self.progress_allowed {
            return Progress {
                shell: self,
                bar: None,
            };
        }
        let bar = ProgressBar::new_spinner();
        let style =
            ProgressStyle::with_template("{spinner:.green} {prefix:>12.cyan.bold} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(prefix.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        Progress {
            shell: self,
            bar: Some(bar),
        }
    }
}

/// A running progress indicator; cleared when finished or dropped.
pub struct Progress<'a> {
    shell: &'a Shell,
    bar: Option<ProgressBar>,
}

impl Progress<'_> {
    pub fn set_message(&self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            *self.shell.bar.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The error for a failed write of data to stdout.
pub fn stdout_error(err: std::io::Error) -> Error {
    crate::error::Error::new(
        crate::error::ErrorKind::WriteFailed,
        format!("could not write to stdout: {err}"),
    )
    .with_help("check the pipe or file stdout is redirected to")
}

/// A warning from code that runs without the shell at hand (a retry deep in a registry or AWS
/// request): cargo's `warning:` label, coloured as the shell was told (`Shell::new` set
/// `console`'s choice for stderr).
pub fn warn_stderr(message: impl Display) {
    let label = console::style("warning").yellow().bold().for_stderr();
    eprintln!("{label}: {message}");
}

/// A line of cargo's own (`Blocking waiting for file lock …`) from code that runs without the
/// shell at hand (a build waited for on the way out of a failed run).
pub fn cargo_line_stderr(line: &str) {
    eprintln!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_warn_note_and_errors_render_as_cargo_does() {
        let (shell, captured) = Shell::buffered(Verbosity::Normal);
        shell.status("Packing", "fn-a (x86_64)");
        shell.verbose(|| "not shown without -v".to_string());
        shell.warn("fn-a (x86_64) is 60.0 MB zipped");
        shell.note("the previous manifest is unreadable");
        shell.error(
            &Error::config("`arch` must be a string")
                .with_note("in Cargo.toml")
                .with_help("write arch = \"arm64\""),
        );
        shell.print_block("table\n\n");
        shell.print_data("{}").unwrap();
        let captured = captured.lock().unwrap();
        assert_eq!(
            captured.stderr,
            "     Packing fn-a (x86_64)\n\
             warning: fn-a (x86_64) is 60.0 MB zipped\n\
             note: the previous manifest is unreadable\n\
             error: `arch` must be a string\n  note: in Cargo.toml\n  help: write arch = \"arm64\"\n\
             table\n"
        );
        assert_eq!(captured.stdout, "{}\n");
    }

    #[test]
    fn quiet_keeps_only_errors_and_data_and_verbose_adds_info() {
        let (quiet, captured) = Shell::buffered(Verbosity::Quiet);
        quiet.status("Finished", "1 artifact(s)");
        quiet.warn("hidden");
        quiet.print_block("hidden table");
        quiet.error(&Error::config("shown"));
        quiet.print_data("[1]\n").unwrap();
        let captured = captured.lock().unwrap();
        assert_eq!(captured.stderr, "error: shown\n");
        assert_eq!(captured.stdout, "[1]\n");

        let (verbose, captured) = Shell::buffered(Verbosity::Verbose);
        verbose.verbose(|| "bundling libsqlite3.so.0 for `fn-a` (x86_64)".to_string());
        assert_eq!(
            captured.lock().unwrap().stderr,
            "        Info bundling libsqlite3.so.0 for `fn-a` (x86_64)\n"
        );
    }
}
