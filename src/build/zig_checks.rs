//! What the environment must give zig and cargo-zigbuild's setup, checked so that a failure names
//! the variable at fault instead of surfacing as an opaque zig error.

use std::path::Path;
use std::process::Command;

use crate::error::Error;
use crate::rustflags::wrapper::UserWrappers;

/// zig keeps a global cache under `$ZIG_GLOBAL_CACHE_DIR`, else `$XDG_CACHE_HOME/zig`, else
/// `$HOME/.cache/zig`; with none of them set, every zig call fails (`AppDataDirUnavailable`).
/// Checked before the setup runs. `var` reads the environment.
pub fn cache_dir_problem(var: impl Fn(&str) -> Option<String>) -> Option<Error> {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    if set("ZIG_GLOBAL_CACHE_DIR") || set("XDG_CACHE_HOME") || set("HOME") {
        return None;
    }
    Some(
        Error::config(
            "zig needs a cache directory, but HOME is not set (nor ZIG_GLOBAL_CACHE_DIR or XDG_CACHE_HOME); \
             zig would fail with `unable to resolve zig cache directory: AppDataDirUnavailable`",
        )
        .with_help(
            "set HOME, or set ZIG_GLOBAL_CACHE_DIR to a writable directory (for example \
             ZIG_GLOBAL_CACHE_DIR=/tmp/zig-cache), or use --compiler cargo",
        ),
    )
}

/// After zig's setup failed: when a rustc wrapper is set (in the environment or a cargo
/// configuration file) and cannot run `rustc -vV` (the setup's first step, which goes through
/// it), the error names where it was set instead of zig.
pub fn wrapper_problem(rustc: &Path, wrappers: &UserWrappers) -> Option<Error> {
    for wrapper in wrappers.iter() {
        let shown = format!(
            "`{} {} -vV`",
            Path::new(&wrapper.program).display(),
            rustc.display()
        );
        let failure = match Command::new(&wrapper.program)
            .arg(rustc)
            .arg("-vV")
            .output()
        {
            Err(err) => format!("could not be started: {err}"),
            Ok(output) if !output.status.success() => {
                let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
                if stderr.is_empty() {
                    format!("failed ({}) and printed nothing", output.status)
                } else {
                    format!("failed ({}): {stderr}", output.status)
                }
            }
            Ok(_) => continue,
        };
        return Some(
            Error::config(format!(
                "{} does not run rustc: {shown} {failure}",
                wrapper.describe()
            ))
            .with_note("cargo (and zig's setup) run every rustc command through the wrapper")
            .with_help(format!("fix the wrapper or {}", wrapper.removal())),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rustflags::wrapper::UserWrapper;

    #[test]
    fn a_missing_cache_directory_names_home_and_zig_global_cache_dir() {
        let error = cache_dir_problem(|_| None).unwrap();
        let text = error.to_string();
        assert!(
            text.contains("HOME") && text.contains("ZIG_GLOBAL_CACHE_DIR"),
            "{text}"
        );
        assert!(cache_dir_problem(|n| (n == "HOME").then(|| "/root".into())).is_none());
        assert!(
            cache_dir_problem(|n| (n == "ZIG_GLOBAL_CACHE_DIR").then(|| "/tmp/z".into())).is_none()
        );
        assert!(cache_dir_problem(|n| (n == "HOME").then(String::new)).is_some());
    }

    #[test]
    fn a_failing_wrapper_is_named() {
        let rustc = Path::new("rustc");
        let wrappers = |program: &str, file: Option<&str>| UserWrappers {
            rustc: Some(UserWrapper {
                name: if file.is_some() {
                    "build.rustc-wrapper"
                } else {
                    "RUSTC_WRAPPER"
                }
                .into(),
                file: file.map(Into::into),
                program: program.into(),
            }),
            workspace: None,
        };
        let error = wrapper_problem(rustc, &wrappers("false", None))
            .unwrap()
            .to_string();
        assert!(error.contains("RUSTC_WRAPPER=`false`"), "{error}");
        assert!(error.contains("unset RUSTC_WRAPPER"), "{error}");
        let error = wrapper_problem(rustc, &wrappers("false", Some("/w/.cargo/config.toml")))
            .unwrap()
            .to_string();
        assert!(
            error.contains("build.rustc-wrapper = `false` in `/w/.cargo/config.toml`"),
            "{error}"
        );
        assert!(
            error.contains("remove build.rustc-wrapper from `/w/.cargo/config.toml`"),
            "{error}"
        );
        // A wrapper that runs rustc (here `env`, which execs its arguments) is not at fault.
        assert!(wrapper_problem(rustc, &wrappers("env", None)).is_none());
        assert!(wrapper_problem(rustc, &UserWrappers::default()).is_none());
    }
}
