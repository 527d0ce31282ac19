//! The rustc wrappers cargo would use: `build.rustc-wrapper` and `build.rustc-workspace-wrapper`
//! as cargo resolves them, from the environment and the same configuration files as the flags.
//!
//! The pack replaces cargo's wrapper with its own (which links the dependency lists and runs the
//! user's in front of rustc), and it sets the replacement in the environment, which beats every
//! configuration file. So a wrapper set only in a file has to be found here, or it would be lost
//! (workspace wrapper) or run around ours (`rustc-wrapper`, which sccache refuses).
//!
//! Cargo's order, first match only: `RUSTC_WRAPPER` (an empty value means no wrapper), then
//! `CARGO_BUILD_RUSTC_WRAPPER`, then the nearest file's `build.rustc-wrapper`; likewise for the
//! workspace wrapper. A value with a path separator is a path: relative to the directory cargo
//! runs in for the environment, to the directory holding the file's `.cargo` directory for a
//! file; without one it is a program looked up on `PATH`.

use std::ffi::OsString;
use std::path::Path;

use super::{ConfigFile, config_files, read_config_files};
use crate::error::{Error, Result};

/// One wrapper the user set, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserWrapper {
    /// `RUSTC_WRAPPER`, or `build.rustc-wrapper` for a file.
    pub name: String,
    /// The file that set it; `None` for the environment.
    pub file: Option<std::path::PathBuf>,
    /// What cargo would run: the value, made absolute when it is a relative path.
    pub program: OsString,
}

impl UserWrapper {
    /// `RUSTC_WRAPPER=`sccache`` or `build.rustc-wrapper = `sccache` in `/w/.cargo/config.toml``.
    pub fn describe(&self) -> String {
        let program = Path::new(&self.program).display();
        match &self.file {
            None => format!("{}=`{program}`", self.name),
            Some(file) => format!("{} = `{program}` in `{}`", self.name, file.display()),
        }
    }

    /// How to stop using it.
    pub fn removal(&self) -> String {
        match &self.file {
            None => format!("unset {}", self.name),
            Some(file) => format!("remove {} from `{}`", self.name, file.display()),
        }
    }
}

/// Both wrappers cargo would use in a workspace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserWrappers {
    pub rustc: Option<UserWrapper>,
    pub workspace: Option<UserWrapper>,
}

impl UserWrappers {
    pub fn iter(&self) -> impl Iterator<Item = &UserWrapper> {
        self.rustc.iter().chain(self.workspace.iter())
    }
}

/// The wrappers cargo, run in `workspace_root` with this process's environment, would use.
pub fn user_wrappers(workspace_root: &Path) -> Result<UserWrappers> {
    let files = read_config_files(&config_files(workspace_root))?;
    resolve(&files, workspace_root, |name| std::env::var_os(name))
}

fn resolve(
    files: &[ConfigFile],
    cargo_dir: &Path,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<UserWrappers> {
    Ok(UserWrappers {
        rustc: one(files, cargo_dir, &env, "RUSTC_WRAPPER", "rustc-wrapper")?,
        workspace: one(
            files,
            cargo_dir,
            &env,
            "RUSTC_WORKSPACE_WRAPPER",
            "rustc-workspace-wrapper",
        )?,
    })
}

fn one(
    files: &[ConfigFile],
    cargo_dir: &Path,
    env: &impl Fn(&str) -> Option<OsString>,
    variable: &str,
    key: &str,
) -> Result<Option<UserWrapper>> {
    let config_variable = format!("CARGO_BUILD_{}", key.to_uppercase().replace('-', "_"));
    for name in [variable, config_variable.as_str()] {
        if let Some(value) = env(name) {
            return Ok(wrapper(name, None, cargo_dir, value));
        }
    }
    // Files come lowest precedence first: the nearest is the last.
    for file in files.iter().rev() {
        let Some(value) = file.table.get("build").and_then(|b| b.get(key)) else {
            continue;
        };
        let name = format!("build.{key}");
        let Some(text) = value.as_str() else {
            return Err(Error::config(format!(
                "`{name}` in `{}` is not a string",
                file.path.display()
            ))
            .with_help(format!(
                "set it to the wrapper's program, for example `{key} = \"sccache\"`"
            )));
        };
        // `<dir>/.cargo/config.toml` is relative to `<dir>`.
        let base = file
            .path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(cargo_dir);
        return Ok(wrapper(&name, Some(&file.path), base, text.into()));
    }
    Ok(None)
}

fn wrapper(name: &str, file: Option<&Path>, base: &Path, value: OsString) -> Option<UserWrapper> {
    if value.is_empty() {
        return None;
    }
    let text = value.to_string_lossy();
    let program = if text.contains('/') || text.contains('\\') {
        base.join(&value).into_os_string()
    } else {
        value
    };
    Some(UserWrapper {
        name: name.to_string(),
        file: file.map(Path::to_path_buf),
        program,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(path: &str, text: &str) -> ConfigFile {
        ConfigFile {
            path: PathBuf::from(path),
            table: text.parse().unwrap(),
        }
    }

    fn program(wrapper: &Option<UserWrapper>) -> Option<String> {
        wrapper
            .as_ref()
            .map(|w| w.program.to_string_lossy().into_owned())
    }

    #[test]
    fn the_nearest_file_wins_and_the_environment_beats_every_file() {
        let files = [
            file(
                "/home/u/.cargo/config.toml",
                "[build]\nrustc-wrapper = \"home-wrapper\"\n",
            ),
            file(
                "/w/.cargo/config.toml",
                "[build]\nrustc-wrapper = \"sccache\"\n",
            ),
        ];
        let found = resolve(&files, Path::new("/w"), |_| None).unwrap();
        assert_eq!(program(&found.rustc).as_deref(), Some("sccache"));
        let rustc = found.rustc.unwrap();
        assert_eq!(
            rustc.describe(),
            "build.rustc-wrapper = `sccache` in `/w/.cargo/config.toml`"
        );
        assert_eq!(
            rustc.removal(),
            "remove build.rustc-wrapper from `/w/.cargo/config.toml`"
        );
        assert_eq!(found.workspace, None);

        let env = |name: &str| (name == "RUSTC_WRAPPER").then(|| OsString::from("other"));
        let found = resolve(&files, Path::new("/w"), env).unwrap();
        assert_eq!(found.rustc.unwrap().describe(), "RUSTC_WRAPPER=`other`");
    }

    #[test]
    fn an_empty_value_means_no_wrapper_even_when_a_file_sets_one() {
        let files = [file(
            "/w/.cargo/config.toml",
            "[build]\nrustc-wrapper = \"sccache\"\n",
        )];
        let env = |name: &str| (name == "RUSTC_WRAPPER").then(OsString::new);
        assert_eq!(resolve(&files, Path::new("/w"), env).unwrap().rustc, None);
        let files = [file(
            "/w/.cargo/config.toml",
            "[build]\nrustc-wrapper = \"\"\n",
        )];
        assert_eq!(
            resolve(&files, Path::new("/w"), |_| None).unwrap().rustc,
            None
        );
    }

    #[test]
    fn relative_paths_are_relative_to_the_directory_holding_dot_cargo() {
        let files = [file(
            "/w/.cargo/config.toml",
            "[build]\nrustc-workspace-wrapper = \"tools/wrap\"\n",
        )];
        let env = |name: &str| {
            (name == "CARGO_BUILD_RUSTC_WRAPPER").then(|| OsString::from("./bin/cache"))
        };
        let found = resolve(&files, Path::new("/w/crates"), env).unwrap();
        assert_eq!(program(&found.workspace).as_deref(), Some("/w/tools/wrap"));
        assert_eq!(
            program(&found.rustc).as_deref(),
            Some("/w/crates/./bin/cache")
        );
        assert_eq!(found.iter().count(), 2);
    }

    #[test]
    fn a_wrapper_that_is_not_a_string_is_refused_naming_file_and_key() {
        let files = [file(
            "/w/.cargo/config.toml",
            "[build]\nrustc-wrapper = 1\n",
        )];
        let error = resolve(&files, Path::new("/w"), |_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("build.rustc-wrapper"), "{error}");
        assert!(error.contains("/w/.cargo/config.toml"), "{error}");
    }
}
