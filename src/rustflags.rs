//! The compiler flags a build of one Rust target gets from the user's environment and cargo
//! configuration: rustflags as cargo picks them, and the C flags the `cc` crate reads.
//!
//! `cargo config get` is unstable, so the configuration is read here with the `toml` crate, the
//! way cargo reads it: `.cargo/config` (or `.cargo/config.toml`) in the directory cargo runs in
//! (the workspace root) and each of its ancestors, then `$CARGO_HOME/config.toml`. Arrays from
//! several files are joined, the nearer file's items last; for strings the nearer file wins.
//! Cargo's precedence for rustflags, first match only:
//! `CARGO_ENCODED_RUSTFLAGS`, `RUSTFLAGS`, every matching `target.<triple>.rustflags` and
//! `target.<cfg>.rustflags` (with `CARGO_TARGET_<TRIPLE>_RUSTFLAGS`), `build.rustflags` (with
//! `CARGO_BUILD_RUSTFLAGS`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::target::{Libc, RustTarget};

pub mod wrapper;

/// Flags from one source, named so that a finding can say where to fix them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagSource {
    /// `RUSTFLAGS`, `CFLAGS_x86_64-unknown-linux-gnu`, `target.<triple>.rustflags in <file>`.
    pub origin: String,
    pub flags: Vec<String>,
}

/// The flags one Rust target's build gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileFlags {
    /// What rustc gets for the target's crates: one source or several joined (target tables).
    pub rustflags: Vec<FlagSource>,
    /// What `cc` gets for C and C++ code, one source per variable set.
    pub cflags: Vec<FlagSource>,
}

/// One cargo configuration file, parsed.
struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

/// The flags for `target`, from the process environment and the configuration files cargo
/// reads when run in `workspace_root`.
pub fn effective(workspace_root: &Path, target: RustTarget) -> Result<CompileFlags> {
    let files = read_config_files(&config_files(workspace_root))?;
    Ok(resolve(target, &files, |name| std::env::var(name).ok()))
}

/// Configuration files in the order cargo merges them: `$CARGO_HOME` first (lowest precedence),
/// then the workspace root's ancestors from the file system root down to the root itself.
fn config_files(workspace_root: &Path) -> Vec<PathBuf> {
    let mut directories: Vec<PathBuf> = workspace_root
        .ancestors()
        .map(|dir| dir.join(".cargo"))
        .collect();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::home_dir().map(|home| home.join(".cargo")));
    if let Some(home) = cargo_home
        && !directories.contains(&home)
    {
        directories.push(home);
    }
    directories.reverse();
    directories
        .into_iter()
        // cargo takes `config` when both exist (and warns).
        .filter_map(|dir| {
            ["config", "config.toml"]
                .into_iter()
                .map(|name| dir.join(name))
                .find(|file| file.is_file())
        })
        .collect()
}

fn read_config_files(paths: &[PathBuf]) -> Result<Vec<ConfigFile>> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::config(format!(
                    "cannot read cargo configuration `{}`: {e}",
                    path.display()
                ))
            })?;
            let table = text.parse::<toml::Table>().map_err(|e| {
                Error::config(format!(
                    "cargo configuration `{}` is not valid TOML: {}",
                    path.display(),
                    e.message()
                ))
                .with_help("fix the file; cargo itself would refuse it")
            })?;
            Ok(ConfigFile {
                path: path.clone(),
                table,
            })
        })
        .collect()
}

/// Cargo's choice of rustflags and `cc`'s C flags, from parsed files and an environment.
fn resolve(
    target: RustTarget,
    files: &[ConfigFile],
    env: impl Fn(&str) -> Option<String>,
) -> CompileFlags {
    let triple = target.triple();
    let upper = triple.to_uppercase().replace('-', "_");
    let mut rustflags = Vec::new();
    if let Some(encoded) = env("CARGO_ENCODED_RUSTFLAGS") {
        rustflags.push(FlagSource {
            origin: "CARGO_ENCODED_RUSTFLAGS".into(),
            flags: encoded
                .split('\x1f')
                .filter(|f| !f.is_empty())
                .map(String::from)
                .collect(),
        });
    } else if let Some(flags) = env("RUSTFLAGS") {
        rustflags.push(FlagSource {
            origin: "RUSTFLAGS".into(),
            flags: split(&flags),
        });
    } else {
        for file in files {
            let Some(targets) = file.table.get("target").and_then(|t| t.as_table()) else {
                continue;
            };
            for (key, table) in targets {
                let matches =
                    key == &triple || (key.starts_with("cfg(") && cfg_matches(key, target));
                if matches && let Some(flags) = table.get("rustflags").map(value_flags) {
                    rustflags.push(FlagSource {
                        origin: format!("[target.{key}] rustflags in `{}`", file.path.display()),
                        flags,
                    });
                }
            }
        }
        let variable = format!("CARGO_TARGET_{upper}_RUSTFLAGS");
        if let Some(flags) = env(&variable) {
            rustflags.push(FlagSource {
                origin: variable,
                flags: split(&flags),
            });
        }
        if rustflags.is_empty() {
            for file in files {
                if let Some(flags) = file
                    .table
                    .get("build")
                    .and_then(|b| b.get("rustflags"))
                    .map(value_flags)
                {
                    rustflags.push(FlagSource {
                        origin: format!("[build] rustflags in `{}`", file.path.display()),
                        flags,
                    });
                }
            }
            if let Some(flags) = env("CARGO_BUILD_RUSTFLAGS") {
                rustflags.push(FlagSource {
                    origin: "CARGO_BUILD_RUSTFLAGS".into(),
                    flags: split(&flags),
                });
            }
        }
    }
    CompileFlags {
        rustflags,
        cflags: c_flags(&triple, files, &env),
    }
}

/// The variables `cc` reads for a target's C and C++ flags; cargo's `[env]` table sets them too
/// (the process environment wins over it, as in cargo).
fn c_flags(
    triple: &str,
    files: &[ConfigFile],
    env: &impl Fn(&str) -> Option<String>,
) -> Vec<FlagSource> {
    let underscored = triple.replace('-', "_");
    let mut names = Vec::new();
    for base in ["CFLAGS", "CXXFLAGS"] {
        names.push(format!("{base}_{triple}"));
        names.push(format!("{base}_{underscored}"));
        names.push(format!("TARGET_{base}"));
        names.push(base.to_string());
    }
    let mut sources = Vec::new();
    for name in names {
        if let Some(value) = env(&name) {
            sources.push(FlagSource {
                origin: name,
                flags: split(&value),
            });
            continue;
        }
        // The nearest file's `[env]` entry is the one cargo sets.
        let from_config = files.iter().rev().find_map(|file| {
            let value = file.table.get("env")?.get(&name)?;
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Table(t) => t.get("value")?.as_str()?.to_string(),
                _ => return None,
            };
            Some((file, text))
        });
        if let Some((file, text)) = from_config {
            sources.push(FlagSource {
                origin: format!("[env] {name} in `{}`", file.path.display()),
                flags: split(&text),
            });
        }
    }
    sources
}

fn split(flags: &str) -> Vec<String> {
    flags.split_whitespace().map(String::from).collect()
}

/// A rustflags value: an array of strings or one string split on whitespace.
fn value_flags(value: &toml::Value) -> Vec<String> {
    match value {
        toml::Value::String(s) => split(s),
        toml::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a `cfg(...)` table key matches a Lambda target. Lambda's targets are Linux on x86_64
/// or aarch64, so the predicates are known without asking rustc; an unknown one is false, as
/// rustc would have it for any predicate these targets do not set.
fn cfg_matches(key: &str, target: RustTarget) -> bool {
    let Some(inner) = key
        .strip_prefix("cfg(")
        .and_then(|rest| rest.strip_suffix(')'))
    else {
        return false;
    };
    let tokens = tokenize(inner);
    let mut position = 0;
    let result = eval(&tokens, &mut position, target);
    result.unwrap_or(false) && position == tokens.len()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
    Equals,
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '(' | ')' | ',' | '=' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    ',' => Token::Comma,
                    _ => Token::Equals,
                });
            }
            '"' => {
                chars.next();
                let s: String = chars.by_ref().take_while(|c| *c != '"').collect();
                tokens.push(Token::Str(s));
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            _ => {
                let mut ident = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' {
                        ident.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if ident.is_empty() {
                    chars.next();
                }
                tokens.push(Token::Ident(ident));
            }
        }
    }
    tokens
}

fn eval(tokens: &[Token], at: &mut usize, target: RustTarget) -> Option<bool> {
    let Token::Ident(name) = tokens.get(*at)? else {
        return None;
    };
    *at += 1;
    match tokens.get(*at) {
        Some(Token::Open) if matches!(name.as_str(), "all" | "any" | "not") => {
            *at += 1;
            let mut values = Vec::new();
            while tokens.get(*at) != Some(&Token::Close) {
                values.push(eval(tokens, at, target)?);
                if tokens.get(*at) == Some(&Token::Comma) {
                    *at += 1;
                }
            }
            *at += 1;
            match name.as_str() {
                "all" => Some(values.iter().all(|v| *v)),
                "any" => Some(values.iter().any(|v| *v)),
                _ => (values.len() == 1).then(|| !values[0]),
            }
        }
        Some(Token::Equals) => {
            *at += 1;
            let Token::Str(value) = tokens.get(*at)? else {
                return None;
            };
            *at += 1;
            let libc = match target.libc {
                Libc::Gnu => "gnu",
                Libc::Musl => "musl",
            };
            let actual: &[&str] = match name.as_str() {
                "target_arch" => &[target.arch.rust_arch()],
                "target_os" => &["linux"],
                "target_family" => &["unix"],
                "target_env" => &[libc],
                "target_vendor" => &["unknown"],
                "target_pointer_width" => &["64"],
                "target_endian" => &["little"],
                _ => &[],
            };
            Some(actual.contains(&value.as_str()))
        }
        _ => Some(name == "unix"),
    }
}

#[cfg(test)]
mod tests;
