//! The first cargo build, started while the workspace is still being read.
//!
//! Which build a run needs is only known after `cargo metadata`, but it is nearly always the one
//! the previous run made. So the previous run's first cargo command is remembered in the target
//! directory, and started again right away; `cargo metadata` and the rest of the setup run while
//! it checks freshness. When the run has worked out its own first command, the early one is kept
//! only if it is exactly that command: same program, arguments and directory, and the same
//! changes to this process's environment (the rest of the environment is this process's own in
//! both cases, so only the changes are compared, and the user's variables are never written to
//! disk). Otherwise it is waited for, its output dropped, and the right command runs. It is never killed: a killed
//! cargo leaves its rustc processes writing into the target directory behind the next build.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

/// Bumped whenever what is recorded changes meaning.
const FORMAT: u32 = 1;

/// A process environment.
pub type Environment = BTreeMap<OsString, OsString>;

/// The first cargo command of a run, as the next run needs it to start the same one.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    format: u32,
    program: String,
    args: Vec<String>,
    dir: PathBuf,
    /// Variables this program set or removed relative to the environment it was started with
    /// (linker wrappers, zig's location), never the user's own.
    set: BTreeMap<String, String>,
    removed: Vec<String>,
    /// Files those variables name (zig's wrapper scripts): all must exist to start early.
    files: Vec<PathBuf>,
}

/// A cargo build started from the previous run's record.
#[derive(Debug)]
pub struct EarlyBuild {
    record: Record,
    child: Option<Child>,
}

/// Where the record may be before `cargo metadata` has said where the target directory is:
/// `--target-dir`, `CARGO_TARGET_DIR`/`CARGO_BUILD_TARGET_DIR`, else `target/` in the workspace
/// root, found as cargo finds it: the nearest directory, from the manifest's up, whose Cargo.toml
/// has a `[workspace]` table (else the manifest's own directory). A target directory set only in
/// a cargo config file is not found, and nothing starts early.
pub fn record_candidates(target_dir: Option<&Path>, manifest_path: Option<&Path>) -> Vec<PathBuf> {
    let current_dir = std::env::current_dir().unwrap_or_default();
    let from_environment = ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .iter()
        .find_map(std::env::var_os)
        .map(PathBuf::from);
    if let Some(dir) = target_dir.map(Path::to_path_buf).or(from_environment) {
        return vec![crate::cache::early_build(&current_dir.join(dir))];
    }
    let start = match manifest_path {
        Some(manifest) => current_dir
            .join(manifest)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        None => current_dir,
    };
    // Without a manifest here, cargo looks upwards for the package too.
    let Some(package) = start
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file())
    else {
        return Vec::new();
    };
    let root = package
        .ancestors()
        .find(|dir| declares_workspace(&dir.join("Cargo.toml")))
        .unwrap_or(package);
    vec![crate::cache::early_build(&root.join("target"))]
}

/// Whether a Cargo.toml has a `[workspace]` table (read as text: a wrong answer only costs the
/// early start).
fn declares_workspace(manifest: &Path) -> bool {
    std::fs::read_to_string(manifest).is_ok_and(|text| {
        text.lines().any(|line| {
            let line = line.trim();
            line == "[workspace]" || line.starts_with("[workspace.")
        })
    })
}

impl EarlyBuild {
    /// Starts the command recorded at the first of `candidates` that exists, with `original`
    /// (this process's environment as it started) plus the recorded changes. `None` when there
    /// is no usable record or the command cannot start.
    pub fn start(candidates: &[PathBuf], original: &Environment) -> Option<EarlyBuild> {
        let bytes = candidates
            .iter()
            .find_map(|path| std::fs::read(path).ok())?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        if record.format != FORMAT || !record.files.iter().all(|file| file.is_file()) {
            return None;
        }
        let mut environment = original.clone();
        for (name, value) in &record.set {
            environment.insert(name.into(), value.into());
        }
        for name in &record.removed {
            environment.remove(&OsString::from(name));
        }
        let child = Command::new(&record.program)
            .args(&record.args)
            .current_dir(&record.dir)
            .env_clear()
            .envs(&environment)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        Some(EarlyBuild {
            record,
            child: Some(child),
        })
    }

    /// The running cargo if it is exactly `wanted` (the run's own first command, see
    /// [`Record::of`]); otherwise the early build is waited for and dropped, and `None` says to
    /// start the command itself.
    pub fn adopt(mut self, wanted: &Record) -> Option<Child> {
        if *wanted == self.record {
            return self.child.take();
        }
        None
    }
}

impl Drop for EarlyBuild {
    /// An early build nobody adopted is waited for, its output drained so it cannot block on a
    /// full pipe: cargo finishes (or fails) on its own and releases the build directory.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let stderr = child.stderr.take();
            std::thread::scope(|scope| {
                if let Some(mut stderr) = stderr {
                    scope.spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                }
                if let Some(mut stdout) = child.stdout.take() {
                    let _ = std::io::copy(&mut stdout, &mut std::io::sink());
                }
            });
            let _ = child.wait();
        }
    }
}

impl Record {
    /// The record of `command` started from this process now. `None` when a part of it is not
    /// UTF-8 (such a command is simply not started early).
    pub fn of(command: &Command, original: &Environment) -> Option<Record> {
        let program = command.get_program().to_str()?.to_string();
        let args = command
            .get_args()
            .map(|arg| arg.to_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?;
        let dir = command.get_current_dir()?.to_path_buf();
        let mut environment: Environment = std::env::vars_os().collect();
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => environment.insert(name.to_owned(), value.to_owned()),
                None => environment.remove(name),
            };
        }
        let mut set = BTreeMap::new();
        let mut files = Vec::new();
        for (name, value) in &environment {
            if original.get(name) != Some(value) {
                let value = value.to_str()?;
                files.extend(super::named_file(value));
                set.insert(name.to_str()?.to_string(), value.to_string());
            }
        }
        let removed = original
            .keys()
            .filter(|name| !environment.contains_key(*name))
            .map(|name| name.to_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?;
        Some(Record {
            format: FORMAT,
            program,
            args,
            dir,
            set,
            removed,
            files,
        })
    }
}

/// Remembers `record` (the run's first cargo command, `None` when it cannot be recorded) at
/// `path` for the next run. Best effort: without a record the next run only starts its first
/// build a little later.
pub fn remember(path: &Path, record: Option<&Record>) {
    match record.map(serde_json::to_vec_pretty) {
        Some(Ok(bytes)) => {
            // Leaves an identical record alone.
            crate::cache::remember(path, &bytes);
        }
        _ => {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_looked_for_in_the_workspace_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = [\"a\"]\n").unwrap();
        std::fs::create_dir_all(root.join("a/src")).unwrap();
        std::fs::write(root.join("a/Cargo.toml"), "[package]\nname = \"a\"\n").unwrap();
        // A separate workspace below the first one (excluded from it).
        std::fs::create_dir_all(root.join("tools/x")).unwrap();
        std::fs::write(
            root.join("tools/x/Cargo.toml"),
            "[package]\nname = \"x\"\n[workspace]\n",
        )
        .unwrap();

        let record = |manifest: &str| record_candidates(None, Some(&root.join(manifest)));
        assert_eq!(
            record("Cargo.toml"),
            vec![crate::cache::early_build(&root.join("target"))]
        );
        assert_eq!(
            record("a/Cargo.toml"),
            vec![crate::cache::early_build(&root.join("target"))]
        );
        assert_eq!(
            record("tools/x/Cargo.toml"),
            vec![crate::cache::early_build(&root.join("tools/x/target"))]
        );
        assert_eq!(
            record_candidates(
                Some(Path::new("/elsewhere/t")),
                Some(&root.join("Cargo.toml"))
            ),
            vec![crate::cache::early_build(Path::new("/elsewhere/t"))]
        );
    }

    #[test]
    fn only_the_same_command_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let record = crate::cache::early_build(dir.path());
        let original: Environment = std::env::vars_os().collect();
        let mut command = Command::new("true");
        command
            .args(["build", "--package", "a"])
            .current_dir(dir.path())
            .env("LAMBDA_PACK_TEST_LINKER", "/nonexistent/zigcc.sh");
        let first = Record::of(&command, &original);
        remember(&record, first.as_ref());
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(text.contains("LAMBDA_PACK_TEST_LINKER"), "{text}");
        assert!(
            !text.contains("\"PATH\""),
            "the user's own variables are not written: {text}"
        );

        let early = EarlyBuild::start(std::slice::from_ref(&record), &original).unwrap();
        assert!(early.adopt(first.as_ref().unwrap()).is_some());

        let early = EarlyBuild::start(std::slice::from_ref(&record), &original).unwrap();
        let mut other = Command::new("true");
        other
            .args(["build", "--package", "b"])
            .current_dir(dir.path())
            .env("LAMBDA_PACK_TEST_LINKER", "/nonexistent/zigcc.sh");
        assert!(
            early
                .adopt(&Record::of(&other, &original).unwrap())
                .is_none()
        );

        let early = EarlyBuild::start(std::slice::from_ref(&record), &original).unwrap();
        let mut other_env = Command::new("true");
        other_env
            .args(["build", "--package", "a"])
            .current_dir(dir.path())
            .env("LAMBDA_PACK_TEST_LINKER", "/nonexistent/other.sh");
        assert!(
            early
                .adopt(&Record::of(&other_env, &original).unwrap())
                .is_none()
        );
    }
}
