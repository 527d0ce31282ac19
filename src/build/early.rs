//! The first cargo build, started while the workspace is still being read.
//!
//! Which build a run needs is only known after `cargo metadata`, but it is nearly always the one
//! the previous run made. So the previous run's first cargo command is remembered in the target
//! directory, and started again right away; `cargo metadata` and the rest of the setup run while
//! it checks freshness. When the run has worked out its own first command, the early one is kept
//! only if it is exactly that command: same program, arguments and directory, and the same
//! changes to this process's environment (the rest of the environment is this process's own in
//! both cases, so only the changes are compared, and the user's variables are never written to
//! disk). Otherwise it is waited for, its output dropped (but for cargo's lines saying it waits on
//! a lock), and the right command runs. It is never killed: a killed cargo leaves its rustc
//! processes writing into the target directory behind the next build.
//!
//! One record is kept per workspace (by its canonical root) in a target directory, and a record
//! is only started by a run in the workspace it was made in: workspaces sharing a
//! `CARGO_TARGET_DIR` never start each other's builds (nor run each other's build scripts).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::output::Shell;

/// Bumped whenever what is recorded changes meaning.
const FORMAT: u32 = 2;

/// A process environment.
pub type Environment = BTreeMap<OsString, OsString>;

/// The first cargo command of a run, as the next run needs it to start the same one.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    format: u32,
    /// The canonical root of the workspace the command builds (its directory).
    workspace_root: PathBuf,
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

/// Where a run's record is, found before `cargo metadata` has run, and the workspace it is for.
#[derive(Debug, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    /// Canonical.
    pub workspace_root: PathBuf,
}

/// Where the record may be before `cargo metadata` has said where the workspace and the target
/// directory are. The workspace root is found as cargo finds it: the nearest directory, from the
/// manifest's up, whose Cargo.toml has a `[workspace]` table (else the manifest's own directory);
/// a package that names its workspace (`package.workspace`) is not followed, and nothing starts
/// early. The target directory is `--target-dir`, `CARGO_TARGET_DIR`/`CARGO_BUILD_TARGET_DIR`,
/// else `target/` in the workspace root; one set only in a cargo config file is not found, and
/// nothing starts early either.
pub fn locate(target_dir: Option<&Path>, manifest_path: Option<&Path>) -> Option<Location> {
    let current_dir = std::env::current_dir().unwrap_or_default();
    let start = match manifest_path {
        Some(manifest) => current_dir
            .join(manifest)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        None => current_dir.clone(),
    };
    // Without a manifest here, cargo looks upwards for the package too.
    let package = start
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file())?;
    if names_its_workspace(&package.join("Cargo.toml")) {
        return None;
    }
    let root = package
        .ancestors()
        .find(|dir| declares_workspace(&dir.join("Cargo.toml")))
        .unwrap_or(package);
    let workspace_root = std::fs::canonicalize(root).ok()?;
    let from_environment = ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .iter()
        .find_map(std::env::var_os)
        .map(PathBuf::from);
    let target_dir = match target_dir.map(Path::to_path_buf).or(from_environment) {
        Some(dir) => current_dir.join(dir),
        None => root.join("target"),
    };
    Some(Location {
        path: crate::cache::early_build(&target_dir, &workspace_root),
        workspace_root,
    })
}

/// Whether a Cargo.toml has a `[workspace]` table (read as text: a wrong answer only costs the
/// early start, since a record is only started by the workspace that wrote it).
fn declares_workspace(manifest: &Path) -> bool {
    std::fs::read_to_string(manifest).is_ok_and(|text| {
        text.lines().any(|line| {
            let line = line.trim();
            line == "[workspace]" || line.starts_with("[workspace.")
        })
    })
}

/// Whether a package's Cargo.toml says where its workspace is (`workspace = "…"` under
/// `[package]`), which the upward search above would not follow.
fn names_its_workspace(manifest: &Path) -> bool {
    std::fs::read_to_string(manifest).is_ok_and(|text| {
        let mut in_package = false;
        text.lines().map(str::trim).any(|line| {
            if line.starts_with('[') {
                in_package = line == "[package]";
                return false;
            }
            in_package
                && line
                    .strip_prefix("workspace")
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
    })
}

impl EarlyBuild {
    /// Starts the command recorded at `location`, with `original` (this process's environment
    /// as it started) plus the recorded changes. `None` when there is no usable record for this
    /// workspace or the command cannot start.
    pub fn start(location: &Location, original: &Environment) -> Option<EarlyBuild> {
        let bytes = std::fs::read(&location.path).ok()?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        let same_workspace = record.workspace_root == location.workspace_root
            && std::fs::canonicalize(&record.dir).ok()? == location.workspace_root;
        if record.format != FORMAT
            || !same_workspace
            || !record.files.iter().all(|file| file.is_file())
        {
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
    /// [`Record::of`]); otherwise the early build is waited for ([`EarlyBuild::abandon`]), and
    /// `None` says to start the command itself.
    pub fn adopt(mut self, wanted: &Record, shell: &Shell) -> Option<Child> {
        if *wanted == self.record {
            return self.child.take();
        }
        self.abandon(shell);
        None
    }

    /// Waits for a build nobody adopts, its output drained so it cannot block on a full pipe:
    /// cargo finishes (or fails) on its own and releases the build directory. A wait that is not
    /// over at once is said, and so is cargo's own line when it waits on a lock.
    pub fn abandon(mut self, shell: &Shell) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                shell.status(
                    "Waiting",
                    format!(
                        "for the early build (`{} {}`) to finish: this run needs another build",
                        self.record.program,
                        self.record.args.join(" ")
                    ),
                );
            }
            finish(child, |line| shell.cargo_stderr_line(line));
        }
    }
}

/// Abandons the early build in `slot`, if there is one (see [`EarlyBuild::abandon`]): for a run
/// that finds, before its first build, that the early one cannot be its build.
pub fn abandon(slot: &mut Option<EarlyBuild>, shell: &Shell) {
    if let Some(early) = slot.take() {
        early.abandon(shell);
    }
}

/// Drains `child`'s output and waits for it, passing cargo's lock-wait lines to `forward`.
fn finish(mut child: Child, forward: impl Fn(&str) + Sync) {
    use std::io::BufRead;
    let stderr = child.stderr.take();
    std::thread::scope(|scope| {
        if let Some(stderr) = stderr {
            // Split on bytes, not `lines()`: a line that is not UTF-8 must not stop the draining.
            scope.spawn(|| {
                for line in std::io::BufReader::new(stderr)
                    .split(b'\n')
                    .map_while(|l| l.ok())
                {
                    let line = String::from_utf8_lossy(&line);
                    if super::cargo_lines::is_lock_wait(&line) {
                        forward(line.trim_end_matches('\r'));
                    }
                }
            });
        }
        if let Some(mut stdout) = child.stdout.take() {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        }
    });
    let _ = child.wait();
}

impl Drop for EarlyBuild {
    /// An early build dropped on the way out of a failed run is waited for like an abandoned
    /// one ([`EarlyBuild::abandon`]), its lock-wait lines said without the shell.
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            finish(child, crate::output::cargo_line_stderr);
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
        let workspace_root = std::fs::canonicalize(&dir).ok()?;
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
            workspace_root,
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
    use crate::output::Verbosity;

    fn canonical(path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap()
    }

    #[test]
    fn the_record_is_the_workspace_roots_in_its_target_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = canonical(dir.path());
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
        // A package that names its workspace elsewhere: not followed.
        std::fs::create_dir_all(root.join("tools/y")).unwrap();
        std::fs::write(
            root.join("tools/y/Cargo.toml"),
            "[package]\nname = \"y\"\nworkspace = \"../../elsewhere\"\n",
        )
        .unwrap();

        let locate_from = |manifest: &str| locate(None, Some(&root.join(manifest)));
        let at = |target: &Path, workspace: &Path| Location {
            path: crate::cache::early_build(target, workspace),
            workspace_root: workspace.to_path_buf(),
        };
        assert_eq!(
            locate_from("Cargo.toml"),
            Some(at(&root.join("target"), &root))
        );
        assert_eq!(
            locate_from("a/Cargo.toml"),
            Some(at(&root.join("target"), &root))
        );
        let x = root.join("tools/x");
        assert_eq!(
            locate_from("tools/x/Cargo.toml"),
            Some(at(&x.join("target"), &x))
        );
        assert_eq!(locate_from("tools/y/Cargo.toml"), None);
        // One target directory, two workspaces: two records.
        let shared = Path::new("/elsewhere/t");
        let outer = locate(Some(shared), Some(&root.join("Cargo.toml"))).unwrap();
        let inner = locate(Some(shared), Some(&x.join("Cargo.toml"))).unwrap();
        assert_eq!(outer, at(shared, &root));
        assert_eq!(inner, at(shared, &x));
        assert_ne!(outer.path, inner.path);
        assert!(outer.path.starts_with(shared.join("lambda-pack-cache")));
    }

    #[test]
    fn only_the_same_command_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let (shell, _) = Shell::buffered(Verbosity::Normal);
        let location = Location {
            path: crate::cache::early_build(dir.path(), &canonical(dir.path())),
            workspace_root: canonical(dir.path()),
        };
        let original: Environment = std::env::vars_os().collect();
        let mut command = Command::new("true");
        command
            .args(["build", "--package", "a"])
            .current_dir(dir.path())
            .env("LAMBDA_PACK_TEST_LINKER", "/nonexistent/zigcc.sh");
        let first = Record::of(&command, &original);
        remember(&location.path, first.as_ref());
        let text = std::fs::read_to_string(&location.path).unwrap();
        assert!(text.contains("LAMBDA_PACK_TEST_LINKER"), "{text}");
        assert!(
            !text.contains("\"PATH\""),
            "the user's own variables are not written: {text}"
        );

        let early = EarlyBuild::start(&location, &original).unwrap();
        assert!(early.adopt(first.as_ref().unwrap(), &shell).is_some());

        let early = EarlyBuild::start(&location, &original).unwrap();
        let mut other = Command::new("true");
        other
            .args(["build", "--package", "b"])
            .current_dir(dir.path())
            .env("LAMBDA_PACK_TEST_LINKER", "/nonexistent/zigcc.sh");
        assert!(
            early
                .adopt(&Record::of(&other, &original).unwrap(), &shell)
                .is_none()
        );

        let early = EarlyBuild::start(&location, &original).unwrap();
        let mut other_env = Command::new("true");
        other_env
            .args(["build", "--package", "a"])
            .current_dir(dir.path())
            .env("LAMBDA_PACK_TEST_LINKER", "/nonexistent/other.sh");
        assert!(
            early
                .adopt(&Record::of(&other_env, &original).unwrap(), &shell)
                .is_none()
        );
    }

    #[test]
    fn another_workspaces_record_is_never_started() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let original: Environment = std::env::vars_os().collect();
        let mut command = Command::new("true");
        command.arg("build").current_dir(a.path());
        // A's record where B's run looks (a record of the old, per-target-directory kind).
        let b_location = Location {
            path: crate::cache::early_build(b.path(), &canonical(b.path())),
            workspace_root: canonical(b.path()),
        };
        remember(&b_location.path, Record::of(&command, &original).as_ref());
        assert!(EarlyBuild::start(&b_location, &original).is_none());
    }

    #[test]
    fn an_abandoned_build_says_it_waits_and_passes_on_cargos_lock_line() {
        let (shell, captured) = Shell::buffered(Verbosity::Normal);
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                "echo '   Compiling a v0.1.0' >&2; echo '    Blocking waiting for file lock on build directory' >&2; sleep 0.3",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.current_dir(".");
        let early = EarlyBuild {
            record: Record::of(&command, &std::env::vars_os().collect()).unwrap(),
            child: Some(command.spawn().unwrap()),
        };
        early.abandon(&shell);
        let stderr = captured.lock().unwrap().stderr.clone();
        assert!(
            stderr.contains("Waiting for the early build (`sh -c"),
            "{stderr}"
        );
        assert!(
            stderr.contains("    Blocking waiting for file lock on build directory"),
            "{stderr}"
        );
        assert!(
            !stderr.lines().any(|line| line.starts_with("   Compiling")),
            "{stderr}"
        );
    }
}
