//! Compiling: one cargo invocation per Rust target, artifact paths taken from cargo's own
//! `compiler-artifact` messages.
//!
//! Paths are never guessed: a binary that cargo did not report in this run is not packed, so a
//! stale file left in the target directory by an earlier build can never reach an artifact.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::output::Shell;
use crate::settings::{DEFAULT_RUNTIME, Options};
use crate::target::{Arch, GlibcVersion, Libc, RustTarget};
use crate::toolchain::Linker;
use crate::units::Unit;
use crate::workspace::Workspace;

mod cargo_lines;
mod early;
mod zig_checks;
mod zig_env;

pub use early::{
    EarlyBuild, Environment, abandon as abandon_early, locate as early_record_location,
};
pub use zig_checks::wrapper_problem;
pub use zig_env::ZigEnvCache;

/// Prefix of the target sub-directory of a glibc pin other than the default runtime's.
pub const PIN_DIR_PREFIX: &str = "lambda-pack-glibc-";

/// One cargo invocation: every package and bin needed for one Rust target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BuildRequest {
    #[serde(serialize_with = "serialize_display")]
    pub target: RustTarget,
    pub linker: Linker,
    /// The glibc the binaries are linked against (zig, gnu targets): the oldest runtime's, so one
    /// build serves every runtime that uses this target.
    pub glibc: Option<GlibcVersion>,
    pub packages: Vec<String>,
    pub bins: Vec<String>,
    /// Example targets packed as functions; built with `--example`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// cdylib targets needed (by layers); built with `--lib`.
    pub cdylibs: Vec<String>,
}

fn serialize_display<S: serde::Serializer>(value: &RustTarget, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

impl BuildRequest {
    /// `x86_64-unknown-linux-gnu with zig, glibc 2.34`, for status lines and `plan`.
    pub fn describe(&self) -> String {
        match self.glibc {
            Some(glibc) => format!(
                "{} with {}, glibc {glibc}",
                self.target,
                self.linker.describe()
            ),
            None => format!("{} with {}", self.target, self.linker.describe()),
        }
    }

    /// The sub-directory of the target directory where cargo builds this request: `None` (the
    /// target directory itself) except for a glibc pin other than the default runtime's, which
    /// gets `lambda-pack-glibc-<version>/`.
    ///
    /// The pin changes what cargo-zigbuild hands cargo (the linker and C compiler wrappers, their
    /// flags), and cargo fingerprints those, so two pins sharing one directory would each rebuild
    /// every dependency after the other (a `--runtime` switch back and forth). A directory per pin
    /// keeps each pin's build state; cargo's fingerprints stay valid in each, and the binaries are
    /// still taken from cargo's own `compiler-artifact` messages, wherever cargo put them. The
    /// default pin stays in the target directory itself, at the paths `cargo build` uses.
    pub fn pin_dir(&self) -> Option<String> {
        self.glibc
            .filter(|glibc| *glibc != DEFAULT_RUNTIME.glibc())
            .map(|glibc| format!("{PIN_DIR_PREFIX}{glibc}"))
    }

    /// The target as cargo-zigbuild spells it, with the glibc pin: `x86_64-unknown-linux-gnu.2.26`.
    fn zig_target(&self) -> String {
        match self.glibc {
            Some(glibc) => format!("{}.{glibc}", self.target),
            None => self.target.triple(),
        }
    }
}

/// Groups units into one request per Rust target. `choice_for` gives each architecture's target
/// and linker (see [`crate::toolchain::choose`]).
pub fn requests(
    units: &[Unit],
    choice_for: impl Fn(&Unit, Arch) -> (RustTarget, Linker),
) -> Vec<BuildRequest> {
    let mut by_target: BTreeMap<RustTarget, BuildRequest> = BTreeMap::new();
    // A layer made only of included files has nothing to compile.
    for unit in units
        .iter()
        .filter(|u| !u.bins.is_empty() || !u.cdylibs.is_empty())
    {
        for arch in &unit.archs {
            let (target, linker) = choice_for(unit, *arch);
            let request = by_target.entry(target).or_insert_with(|| BuildRequest {
                target,
                linker,
                glibc: None,
                packages: Vec::new(),
                bins: Vec::new(),
                examples: Vec::new(),
                cdylibs: Vec::new(),
            });
            if linker == Linker::Zig && target.libc == Libc::Gnu {
                for runtime in &unit.runtimes {
                    let floor = runtime.glibc();
                    request.glibc = Some(request.glibc.map_or(floor, |g| g.min(floor)));
                }
            }
            request.packages.push(unit.package.clone());
            if unit.example {
                request.examples.extend(unit.bins.iter().cloned());
            } else {
                request.bins.extend(unit.bins.iter().cloned());
            }
            request.cdylibs.extend(unit.cdylibs.iter().cloned());
        }
    }
    let mut requests: Vec<BuildRequest> = by_target.into_values().collect();
    for request in &mut requests {
        for list in [
            &mut request.packages,
            &mut request.bins,
            &mut request.examples,
            &mut request.cdylibs,
        ] {
            list.sort();
            list.dedup();
        }
    }
    requests
}

/// What kind of Cargo target a built file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TargetKind {
    Bin,
    Cdylib,
    /// An `example` target with crate type `bin`, packed as a function.
    Example,
}

/// A file cargo reported building.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltBinary {
    pub package: String,
    /// The Cargo target's name.
    pub name: String,
    pub kind: TargetKind,
    pub target: RustTarget,
    pub path: PathBuf,
}

/// Every file built in this run, by (package, Cargo target name, kind, Rust target).
pub type Built = BTreeMap<(String, String, TargetKind, RustTarget), BuiltBinary>;

/// What every build of one run shares: the toolchain, zig's remembered setup, and the first
/// build if it was started early ([`EarlyBuild`]).
pub struct BuildContext<'a> {
    pub workspace: &'a Workspace,
    pub options: &'a Options,
    pub rustc: &'a Path,
    pub zig_env: &'a mut ZigEnvCache,
    /// This process's environment as it started, before zig's location was added to it.
    pub original_env: &'a Environment,
    /// Taken by the first build, which adopts it if it is the same command.
    pub early: Option<EarlyBuild>,
    /// Where the first build's command is remembered for the next run's early start; `None`
    /// after the first build.
    pub remember_first: Option<PathBuf>,
}

/// Builds the cargo command for a request, with the linker set up.
pub fn command(
    request: &BuildRequest,
    context: &mut BuildContext,
    color: bool,
    quiet: bool,
) -> Result<Command> {
    let options = context.options;
    let mut build = cargo_options::Build {
        manifest_path: options.manifest_path.clone(),
        packages: request.packages.clone(),
        bin: request.bins.clone(),
        example: request.examples.clone(),
        lib: !request.cdylibs.is_empty(),
        ..Default::default()
    };
    let common = &mut build.common;
    common.profile = Some(options.profile.clone());
    common.features = options.features.clone();
    common.all_features = options.all_features;
    common.no_default_features = options.no_default_features;
    common.target = vec![request.zig_target()];
    common.target_dir = match request.pin_dir() {
        Some(dir) => Some(options.target_dir(&context.workspace.target_dir).join(dir)),
        None => options.target_dir.clone(),
    };
    common.message_format = vec!["json-render-diagnostics".to_string()];
    common.jobs = options.jobs.map(|j| j as usize);
    common.locked = options.locked;
    common.offline = options.offline;
    common.frozen = options.frozen;
    common.quiet = quiet;
    common.verbose = match options.verbosity {
        crate::output::Verbosity::VeryVerbose => 2,
        crate::output::Verbosity::Verbose => 1,
        _ => 0,
    };
    common.color = Some(if color { "always" } else { "never" }.to_string());

    let mut command = match request.linker {
        Linker::Zig => {
            let zig_target = request.zig_target();
            let key = zig_env::key(&zig_env::KeyInputs {
                zig_target: &zig_target,
                manifest_path: options.manifest_path.as_deref(),
                workspace_root: &context.workspace.root,
                rustc: context.rustc,
            });
            let var = |name: &str| std::env::var(name).ok();
            if let Some(error) = zig_checks::cache_dir_problem(var) {
                return Err(error);
            }
            context.zig_env.command(build, &zig_target, &key).map_err(|err| {
                let wrappers = crate::rustflags::wrapper::user_wrappers(&context.workspace.root);
                let wrappers = wrappers.unwrap_or_default();
                zig_checks::wrapper_problem(context.rustc, &wrappers).unwrap_or_else(|| {
                    Error::toolchain(format!("could not set up zig to link `{zig_target}`: {err:#}"))
                        .with_help("check that `python3 -m ziglang version` (or `zig version`) works, or use --compiler cargo")
                })
            })?
        }
        Linker::RustLld | Linker::Host => build.command(),
    };
    if request.linker == Linker::RustLld {
        let variable = request.target.linker_env_var();
        // A linker the user configured in the environment wins; otherwise rust-lld from the
        // toolchain, which links musl statically with no C toolchain at all.
        if std::env::var_os(&variable).is_none() {
            command.env(variable, "rust-lld");
        }
    }
    // Always, even when no unit wants a list: the wrapper is also what tells cargo that a
    // binary built with a list must be built again without one.
    embed_dependency_lists(&mut command, request, context)?;
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    Ok(command)
}

/// Makes this executable the rustc wrapper that links each workspace binary's dependency list
/// into it; a wrapper the user set is run by ours. Ours is cargo's `RUSTC_WRAPPER`, in the place
/// of the user's if they set one (sccache: cargo would run `sccache <ours> rustc …` for
/// workspace crates, and sccache only serves a compiler it recognises as rustc, so it must be the
/// one that runs rustc). Not `RUSTC_WORKSPACE_WRAPPER`: cargo mixes that path into the
/// `-C metadata` hash of workspace crates, which unstripped binaries keep in their symbol names,
/// so the bytes would depend on where this tool is installed and on whether sccache is used.
/// Only a workspace wrapper the user set themselves keeps ours in that place.
fn embed_dependency_lists(
    command: &mut Command,
    request: &BuildRequest,
    context: &BuildContext,
) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::toolchain(format!(
            "cannot find this executable to link dependency lists with: {e}"
        ))
        .with_help(
            "set auditable = false in [workspace.metadata.lambda-pack] to build without them",
        )
    })?;
    // From the environment or a cargo configuration file (`build.rustc-wrapper`): ours is set in
    // the environment, which beats every file, so a wrapper set in one is passed on here.
    let user = crate::rustflags::wrapper::user_wrappers(&context.workspace.root)?;
    match (user.rustc, user.workspace) {
        (None, Some(workspace)) => {
            command
                .env(crate::auditable::USER_WRAPPER_VAR, workspace.program)
                .env("RUSTC_WORKSPACE_WRAPPER", exe)
                .env_remove("CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER");
        }
        (rustc, _) => {
            if let Some(rustc) = rustc {
                command.env(crate::auditable::USER_WRAPPER_VAR, rustc.program);
            }
            command
                .env("RUSTC_WRAPPER", exe)
                .env_remove("CARGO_BUILD_RUSTC_WRAPPER");
        }
    }
    let target_dir = context.options.target_dir(&context.workspace.target_dir);
    command.env(
        crate::auditable::DIR_VAR,
        crate::cache::auditable(&target_dir, &request.target.triple()),
    );
    Ok(())
}

/// `value` as a file it names: an absolute path to an existing file (a zig wrapper script, a CMake
/// toolchain file). Remembered commands are reused only while such files still exist.
fn named_file(value: &str) -> Option<PathBuf> {
    let path = Path::new(value);
    (path.is_absolute() && path.is_file()).then(|| path.to_path_buf())
}

/// Renders a command for people (`-v` and `plan`): environment that we set, then the argv.
pub fn render_command(command: &Command) -> String {
    let mut text = String::new();
    for (key, value) in command.get_envs() {
        if let (Some(value), Some(key)) = (value, key.to_str())
            && key.ends_with("_LINKER")
        {
            text.push_str(&format!("{key}={} ", value.to_string_lossy()));
        }
    }
    text.push_str(&command.get_program().to_string_lossy());
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs one request, forwarding cargo's stderr unchanged and reading artifacts from stdout.
pub fn run(
    request: &BuildRequest,
    context: &mut BuildContext,
    shell: &Shell,
) -> Result<Vec<BuiltBinary>> {
    let (workspace, options) = (context.workspace, context.options);
    let progress_shown = shell.progress_enabled();
    let mut command = command(
        request,
        context,
        shell.err_color(),
        // Not quiet for the progress bar's sake: a quiet cargo would not say it waits on a lock.
        // Its status lines are dropped below instead, while the bar shows.
        options.verbosity == crate::output::Verbosity::Quiet,
    )?;
    command.current_dir(&workspace.root);
    let mut adopted = None;
    if let Some(path) = context.remember_first.take() {
        let first = early::Record::of(&command, context.original_env);
        early::remember(&path, first.as_ref());
        adopted = match (context.early.take(), first.as_ref()) {
            (Some(early), Some(first)) => early.adopt(first, shell),
            (Some(early), None) => {
                early.abandon(shell);
                None
            }
            (None, _) => None,
        };
    }
    shell.verbose(|| {
        format!(
            "Running `{}`{}",
            render_command(&command),
            if adopted.is_some() {
                " (started early, while the workspace was read)"
            } else {
                ""
            }
        )
    });
    let spawned = match adopted {
        Some(child) => Ok(child),
        None => command.spawn(),
    };
    let mut child = spawned.map_err(|err| {
        Error::toolchain(format!(
            "could not run cargo (`{}`): {err}",
            options.cargo.display()
        ))
        .with_help("run this as `cargo lambda-pack`, or set $CARGO to the cargo binary")
    })?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let stdout = child.stdout.take().expect("stdout is piped");

    let progress = shell.progress(&format!("Building {}", request.target));
    let packages_by_id: BTreeMap<String, String> = workspace
        .members
        .iter()
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    let (built, parse_result) = std::thread::scope(|scope| {
        scope.spawn(|| {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                if progress_shown
                    && cargo_lines::is_status(&line)
                    && !cargo_lines::is_lock_wait(&line)
                {
                    continue;
                }
                shell.cargo_stderr_line(&line);
            }
        });
        let mut compiled = 0usize;
        let result = parse_messages(
            BufReader::new(stdout),
            &packages_by_id,
            request.target,
            |name| {
                compiled += 1;
                progress.set_message(format!("{compiled} crates compiled, last: {name}"));
            },
        );
        (child.wait(), result)
    });
    progress.finish();
    let status =
        built.map_err(|err| Error::internal(format!("could not wait for cargo: {err}")))?;
    if !status.success() {
        return Err(Error::new(
            ErrorKind::BuildFailed,
            format!(
                "cargo could not build the workspace for `{}`",
                request.target
            ),
        )
        .with_help(
            "fix the errors cargo printed above; nothing was written to the output directory",
        ));
    }
    let built = parse_result?;
    check_complete(request, &built)?;
    Ok(built)
}

/// Reads cargo's JSON message stream and returns the workspace binaries it built. `on_artifact`
/// is called with each crate's name as cargo finishes it (for progress).
pub fn parse_messages(
    reader: impl BufRead,
    packages_by_id: &BTreeMap<String, String>,
    target: RustTarget,
    mut on_artifact: impl FnMut(&str),
) -> Result<Vec<BuiltBinary>> {
    let mut built = Vec::new();
    for message in cargo_metadata::Message::parse_stream(reader) {
        let message = message
            .map_err(|err| Error::internal(format!("could not read cargo's output: {err}")))?;
        let cargo_metadata::Message::CompilerArtifact(artifact) = message else {
            continue;
        };
        on_artifact(&artifact.target.name);
        let Some(package) = packages_by_id.get(&artifact.package_id.repr) else {
            continue;
        };
        let executable_kind = if artifact.target.is_bin() {
            Some(TargetKind::Bin)
        } else if artifact.target.is_example() {
            Some(TargetKind::Example)
        } else {
            None
        };
        if let Some(kind) = executable_kind
            && let Some(executable) = artifact.executable
        {
            built.push(BuiltBinary {
                package: package.clone(),
                name: artifact.target.name.clone(),
                kind,
                target,
                path: executable.into_std_path_buf(),
            });
        } else if artifact.target.is_cdylib()
            && let Some(library) = artifact
                .filenames
                .iter()
                .find(|f| f.extension() == Some("so"))
        {
            built.push(BuiltBinary {
                package: package.clone(),
                name: artifact.target.name.clone(),
                kind: TargetKind::Cdylib,
                target,
                path: library.clone().into_std_path_buf(),
            });
        }
    }
    Ok(built)
}

/// Every bin we asked for must have been reported; anything else is a bug worth stopping for
/// rather than packing a stale file.
fn check_complete(request: &BuildRequest, built: &[BuiltBinary]) -> Result<()> {
    let reported: BTreeSet<(&str, TargetKind)> =
        built.iter().map(|b| (b.name.as_str(), b.kind)).collect();
    let expected = request
        .bins
        .iter()
        .map(|b| (b.as_str(), TargetKind::Bin))
        .chain(
            request
                .examples
                .iter()
                .map(|e| (e.as_str(), TargetKind::Example)),
        )
        .chain(
            request
                .cdylibs
                .iter()
                .map(|c| (c.as_str(), TargetKind::Cdylib)),
        );
    let missing: Vec<&str> = expected
        .filter(|key| !reported.contains(key))
        .map(|(name, _)| name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "cargo finished but did not report building {} for `{}`",
            missing.join(", "),
            request.target
        ))
        .with_help("run again with -v to see cargo's command line; this is a bug worth reporting"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real lines as cargo 1.95 prints them with --message-format=json-render-diagnostics.
    const STREAM: &str = r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#itoa@1.0.15","manifest_path":"/r/itoa/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"itoa","src_path":"/r/itoa/src/lib.rs","edition":"2018","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"3","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":[],"filenames":["/t/x86_64-unknown-linux-musl/release/deps/libitoa-1.rlib"],"executable":null,"fresh":true}
{"reason":"compiler-artifact","package_id":"path+file:///ws/fn-a#0.1.0","manifest_path":"/ws/fn-a/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"fn-a","src_path":"/ws/fn-a/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"profile":{"opt_level":"3","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":[],"filenames":["/t/x86_64-unknown-linux-musl/release/fn-a"],"executable":"/t/x86_64-unknown-linux-musl/release/fn-a","fresh":false}
{"reason":"build-finished","success":true}
"#;

    #[test]
    fn reads_workspace_binaries_from_cargo_messages() {
        let ids = BTreeMap::from([("path+file:///ws/fn-a#0.1.0".to_string(), "fn-a".to_string())]);
        let target = RustTarget::parse("x86_64-unknown-linux-musl").unwrap();
        let mut seen = Vec::new();
        let built = parse_messages(STREAM.as_bytes(), &ids, target, |n| {
            seen.push(n.to_string())
        })
        .unwrap();
        assert_eq!(seen, ["itoa", "fn-a"]);
        assert_eq!(
            built,
            [BuiltBinary {
                package: "fn-a".into(),
                name: "fn-a".into(),
                kind: TargetKind::Bin,
                target,
                path: "/t/x86_64-unknown-linux-musl/release/fn-a".into(),
            }]
        );
    }

    #[test]
    fn missing_binary_is_an_error() {
        let request = BuildRequest {
            target: RustTarget::parse("x86_64-unknown-linux-musl").unwrap(),
            linker: Linker::RustLld,
            glibc: None,
            packages: vec!["fn-a".into()],
            bins: vec!["fn-a".into(), "fn-b".into()],
            examples: vec![],
            cdylibs: vec![],
        };
        let err = check_complete(&request, &[]).unwrap_err();
        assert!(err.to_string().contains("fn-a, fn-b"), "{err}");
    }
}
