//! `cargo lambda-pack verify`: reads the manifest, lays each function out as Lambda would
//! (function ZIP in the task dir, layers in order in the opt dir) and runs it.
//!
//! Everything a user can get wrong (the manifest, the function names, the event and expect
//! files, an artifact changed since it was packed) is checked before the first function runs;
//! then every selected function runs, its results are printed, and a single error at the end
//! says whether any failed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::env::Overrides;
use super::expect::{self, ExpectReport};
use super::{
    FunctionRun, InvokeOutcome, NamespaceMode, RunReport, ShutdownStatus, VerifyError, extract_zip,
    run_function,
};
use crate::cli::{MessageFormat, VerifyArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{
    Format, MANIFEST_FILE, Manifest, ManifestArtifact, ReadError, SCHEMA_VERSION,
};
use crate::metadata::Role;
use crate::output::Shell;
use crate::settings::{Options, Verbosity};
use crate::target::Arch;
use crate::workspace::Workspace;

/// Bytes of a response shown in the human output.
const PREVIEW_BYTES: usize = 200;
/// Lines of a failed process's stderr shown in the human output.
const STDERR_TAIL_LINES: usize = 20;
/// Characters of each JSON value shown for an expect mismatch.
const SHOWN_JSON_CHARS: usize = 2000;
/// Mismatching invokes shown in detail in the human output.
const SHOWN_MISMATCHES: usize = 3;
/// Indentation of detail lines: under the message of a status line.
const INDENT: &str = "             ";

pub fn run(args: &VerifyArgs, options: &Options, shell: &Shell) -> Result<()> {
    // The workspace decides which functions run without names: several workspaces may share an
    // output directory. With --out-dir outside any workspace, every function is this run's.
    let (out_dir, workspace_root) = match &options.out_dir {
        Some(dir) => (
            dir.clone(),
            Workspace::load(&options.cargo, options.manifest_path.as_deref())
                .ok()
                .map(|w| w.root),
        ),
        None => {
            let workspace = Workspace::load(&options.cargo, options.manifest_path.as_deref())?;
            (options.out_dir(&workspace), Some(workspace.root))
        }
    };
    // Read the manifest and unpack the artifacts while no pack is writing them; held to the end.
    let _lock = crate::emit::lock_out_dir_shared(&out_dir, || {
        shell.status(
            "Blocking",
            format!("waiting for a pack to finish in {}", out_dir.display()),
        )
    })?;
    let manifest_path = out_dir.join(MANIFEST_FILE);
    let manifest = read_manifest(&manifest_path)?;
    let event = match &args.event {
        Some(path) => super::input_file::read_json(path, "--event")?.0,
        None => b"{}".to_vec(),
    };
    let expected = match &args.expect {
        Some(path) => Some((
            path.display().to_string(),
            super::input_file::read_json(path, "--expect")?.1,
        )),
        None => None,
    };
    let overrides = Overrides::read(&args.env_file, &args.env)?;
    let selected = select(
        &manifest,
        &args.functions,
        &manifest_path,
        workspace_root.as_deref(),
        shell,
    )?;
    let mut checked = BTreeSet::new();
    let prepared = selected
        .into_iter()
        .map(|artifact| prepare(artifact, &manifest, &out_dir, &manifest_path, &mut checked))
        .collect::<Result<Vec<_>>>()?;

    let settings = RunSettings {
        event,
        invokes: args.invokes as usize,
        timeout: Duration::from_secs(args.timeout),
        expected,
        overrides,
        show_output: options.verbosity >= Verbosity::Verbose,
    };
    let human = options.message_format == MessageFormat::Human;
    let mut results = Vec::new();
    for function in &prepared {
        shell.status("Verifying", function.describe());
        let started = Instant::now();
        let result = verify_function(function, &settings);
        if human {
            shell.print_block(&render(&result, settings.show_output));
        }
        let verb = if result.passed { "Passed" } else { "Failed" };
        shell.status(
            verb,
            format!(
                "{} ({}) in {:.1}s",
                result.name,
                result.arch,
                started.elapsed().as_secs_f64()
            ),
        );
        results.push(result);
    }

    let passed = results.iter().filter(|r| r.passed).count();
    let failed = results.len() - passed;
    if options.message_format == MessageFormat::Json {
        let document = JsonDocument {
            functions: &results,
            passed,
            failed,
        };
        let text = serde_json::to_string_pretty(&document).expect("the report always serializes");
        shell.print_data(&text).map_err(|err| {
            Error::new(
                ErrorKind::WriteFailed,
                format!("could not write to stdout: {err}"),
            )
            .with_help("check the pipe or file stdout is redirected to")
        })?;
    }
    shell.status(
        "Finished",
        format!(
            "{} function(s): {passed} passed, {failed} failed",
            results.len()
        ),
    );
    outcome(&results)
}

/// The single error that ends a run with failures: the environment's (a missing qemu, say)
/// before the functions' own.
fn outcome(results: &[FunctionResult]) -> Result<()> {
    if let Some((result, kind)) = results.iter().find_map(|r| {
        r.setup_kind
            .filter(|k| *k != ErrorKind::VerifyFailed)
            .map(|k| (r, k))
    }) {
        let message = result.error.clone().unwrap_or_default();
        let mut error = Error::new(
            kind,
            format!(
                "could not verify {} ({}): {message}",
                result.name, result.arch
            ),
        );
        error = match kind {
            ErrorKind::ToolchainMissing => error.with_help(
                "install the missing tool, or name only functions of this machine's architecture",
            ),
            _ => error.with_help(
                "this is about this machine, not the function: check that the temporary directory \
                 (TMPDIR) is writable and has room, and that loopback networking works",
            ),
        };
        return Err(error);
    }
    let failed: Vec<&FunctionResult> = results.iter().filter(|r| !r.passed).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let mut error = Error::new(
        ErrorKind::VerifyFailed,
        format!(
            "{} of {} function(s) failed verification",
            failed.len(),
            results.len()
        ),
    );
    for result in failed {
        error = error.with_note(format!(
            "{} ({}): {}",
            result.name,
            result.arch,
            result.failure_summary()
        ));
    }
    Err(error.with_help(
        "the output above shows each invoke, any expected and actual responses and the runtime's \
         stderr; fix the function (or the --expect file), pack again and re-run \
         `cargo lambda-pack verify` (or pass --build)",
    ))
}

fn read_manifest(path: &Path) -> Result<Manifest> {
    let manifest = Manifest::read(path).map_err(|err| match err {
        ReadError::Missing | ReadError::Io(_) => {
            let what = match err {
                ReadError::Io(err) => {
                    format!("could not read manifest `{}`: {err}", path.display())
                }
                _ => format!("no manifest at `{}`", path.display()),
            };
            Error::config(what).with_help(
                "run `cargo lambda-pack` first, or pass --build (and --out-dir if the artifacts \
                 were written elsewhere)",
            )
        }
        ReadError::Invalid(err) => Error::config(format!(
            "`{}` is not a lambda-pack manifest: {err}",
            path.display()
        ))
        .with_help("regenerate it with `cargo lambda-pack`, or pass --build"),
    })?;
    if manifest.schema_version > SCHEMA_VERSION {
        return Err(Error::config(format!(
            "`{}` has schema version {}; this cargo-lambda-pack reads version {SCHEMA_VERSION}",
            path.display(),
            manifest.schema_version
        ))
        .with_help("update cargo-lambda-pack, or pack again with this version (--build)"));
    }
    Ok(manifest)
}

fn is_function(artifact: &ManifestArtifact) -> bool {
    artifact.kind == Role::Function
}

/// The functions to run: those named (every arch of each name), else every function. Image
/// artifacts are skipped with a note.
fn select<'a>(
    manifest: &'a Manifest,
    names: &[String],
    manifest_path: &Path,
    workspace_root: Option<&Path>,
    shell: &Shell,
) -> Result<Vec<&'a ManifestArtifact>> {
    let mut available: Vec<&str> = manifest
        .artifacts
        .iter()
        .filter(|a| is_function(a))
        .map(|a| a.name.as_str())
        .collect();
    available.sort_unstable();
    available.dedup();
    let candidates: Vec<&ManifestArtifact> = if names.is_empty() {
        let (own, others): (Vec<&ManifestArtifact>, Vec<&ManifestArtifact>) = manifest
            .artifacts
            .iter()
            .filter(|a| is_function(a))
            .partition(|a| workspace_root.is_none_or(|root| Manifest::belongs_to(a, root)));
        if !others.is_empty() {
            let named: Vec<String> = others
                .iter()
                .map(|a| {
                    format!(
                        "{} ({}, {})",
                        a.name,
                        a.arch,
                        a.workspace_root.as_deref().unwrap_or("?")
                    )
                })
                .collect();
            shell.note(format!(
                "not running {} function(s) of other workspaces sharing `{}`: {}; name them to verify them from here",
                others.len(),
                manifest_path.display(),
                named.join(", ")
            ));
        }
        own
    } else {
        let unknown: Vec<&String> = names
            .iter()
            .filter(|name| !manifest.artifacts.iter().any(|a| &a.name == *name))
            .collect();
        if !unknown.is_empty() {
            let quoted: Vec<String> = unknown.iter().map(|n| format!("`{n}`")).collect();
            let mut error = Error::config(format!(
                "no function {} in `{}`",
                quoted.join(", "),
                manifest_path.display()
            ))
            .with_note(format!("functions in the manifest: {}", list(&available)));
            let suggestions: Vec<String> = unknown
                .iter()
                .filter_map(|name| closest(name, &available).map(|s| format!("`{s}`")))
                .collect();
            error = if suggestions.is_empty() {
                error
                    .with_help("name functions from the list, or pack their crates first (--build)")
            } else {
                error.with_help(format!("did you mean {}?", suggestions.join(", ")))
            };
            return Err(error);
        }
        let mut chosen = Vec::new();
        for name in names {
            let matching: Vec<&ManifestArtifact> = manifest
                .artifacts
                .iter()
                .filter(|a| &a.name == name)
                .collect();
            let functions: Vec<&ManifestArtifact> = matching
                .iter()
                .copied()
                .filter(|a| is_function(a))
                .collect();
            if functions.is_empty() && is_standalone_extension(manifest, name) {
                // No function of the workspace runs it: run it against a stand-in function.
                for extension in matching
                    .iter()
                    .copied()
                    .filter(|c| c.kind == Role::Extension)
                {
                    if !chosen
                        .iter()
                        .any(|c: &&ManifestArtifact| std::ptr::eq(*c, extension))
                    {
                        chosen.push(extension);
                    }
                }
                continue;
            }
            if functions.is_empty() {
                let mut users: Vec<&str> = manifest
                    .artifacts
                    .iter()
                    .filter(|a| is_function(a) && a.layers.contains(name))
                    .map(|a| a.name.as_str())
                    .collect();
                users.sort_unstable();
                users.dedup();
                let help = if users.is_empty() {
                    "no function attaches it; name a function instead".to_string()
                } else {
                    format!("verify a function that attaches it: {}", users.join(", "))
                };
                return Err(Error::config(format!(
                    "`{name}` is {} {}, not a function; verify runs functions with their layers",
                    article(matching[0].kind.name()),
                    matching[0].kind
                ))
                .with_note(format!("functions in the manifest: {}", list(&available)))
                .with_help(help));
            }
            for function in functions {
                if !chosen
                    .iter()
                    .any(|c: &&ManifestArtifact| std::ptr::eq(*c, function))
                {
                    chosen.push(function);
                }
            }
        }
        chosen
    };
    let mut selected = Vec::new();
    for artifact in candidates {
        if artifact.format == Format::Zip {
            selected.push(artifact);
        } else {
            shell.note(format!(
                "skipping {} ({}): {} artifacts are not run by verify yet",
                artifact.name, artifact.arch, artifact.format
            ));
        }
    }
    if selected.is_empty() {
        return Err(Error::config(format!(
            "nothing to verify: `{}` lists no ZIP function{}",
            manifest_path.display(),
            if names.is_empty() {
                ""
            } else {
                " among those named"
            }
        ))
        .with_help(standalone_help(manifest)));
    }
    Ok(selected)
}

/// An extension that no function of the manifest attaches: shipped on its own (often to
/// functions in other languages), so verify runs it against a stand-in function.
fn is_standalone_extension(manifest: &Manifest, name: &str) -> bool {
    let is_extension = |a: &ManifestArtifact| a.name == name && a.kind == Role::Extension;
    manifest.artifacts.iter().any(is_extension)
        && !manifest
            .artifacts
            .iter()
            .any(|a| is_function(a) && a.layers.iter().any(|l| l == name))
}

fn standalone_help(manifest: &Manifest) -> String {
    let mut standalone: Vec<&str> = manifest
        .artifacts
        .iter()
        .filter(|a| is_standalone_extension(manifest, &a.name))
        .map(|a| a.name.as_str())
        .collect();
    standalone.dedup();
    match standalone.first() {
        Some(first) => format!(
            "name an extension to run it against a stand-in function, e.g. `cargo lambda-pack verify {first}` (standalone extensions: {})",
            standalone.join(", ")
        ),
        None => "pack a workspace with at least one function crate (--build)".into(),
    }
}

/// The available name nearest to a mistyped one, if any is near.
fn closest<'a>(name: &str, available: &[&'a str]) -> Option<&'a str> {
    available
        .iter()
        .map(|candidate| (strsim::levenshtein(name, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2.max(name.len() / 3))
        .min()
        .map(|(_, candidate)| candidate)
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A function with its ZIP and its layers' ZIPs, in merge order, all checked against the
/// manifest.
struct Prepared<'a> {
    artifact: &'a ManifestArtifact,
    arch: Arch,
    zip: PathBuf,
    layers: Vec<PathBuf>,
    /// An extension no function attaches, run against a stand-in function.
    standalone: bool,
}

impl Prepared<'_> {
    fn describe(&self) -> String {
        let mut parts = vec![self.arch.to_string()];
        match self.layers.len() {
            0 => {}
            1 => parts.push("1 layer".into()),
            n => parts.push(format!("{n} layers")),
        }
        if self.standalone {
            parts.push("extension, stand-in function".into());
        }
        if Arch::host() != Some(self.arch) {
            parts.push("qemu".into());
        }
        format!("{} ({})", self.artifact.name, parts.join(", "))
    }
}

fn prepare<'a>(
    artifact: &'a ManifestArtifact,
    manifest: &'a Manifest,
    out_dir: &Path,
    manifest_path: &Path,
    checked: &mut BTreeSet<PathBuf>,
) -> Result<Prepared<'a>> {
    let arch = artifact.arch;
    let zip = confined(out_dir, manifest_path, artifact)?;
    check_sha256(artifact, &zip, checked)?;
    let mut layers = Vec::new();
    for name in &artifact.layers {
        let attachable =
            |a: &&ManifestArtifact| &a.name == name && a.arch == artifact.arch && !is_function(a);
        // The function's own workspace's layer first, when several workspaces share the manifest.
        let layer = manifest
            .artifacts
            .iter()
            .filter(attachable)
            .find(|a| a.workspace_root == artifact.workspace_root)
            .or_else(|| manifest.artifacts.iter().find(attachable))
            .ok_or_else(|| {
                Error::config(format!(
                    "function `{}` ({}) attaches `{name}`, but `{}` has no {} layer or extension `{name}`",
                    artifact.name,
                    artifact.arch,
                    manifest_path.display(),
                    artifact.arch
                ))
                .with_help("pack the workspace again so the manifest lists every attached layer (or pass --build)")
            })?;
        let path = confined(out_dir, manifest_path, layer)?;
        check_sha256(layer, &path, checked)?;
        layers.push(path);
    }
    Ok(Prepared {
        artifact,
        arch,
        zip,
        layers,
        standalone: !is_function(artifact),
    })
}

/// The artifact's file, its manifest path read through [`crate::manifest_paths::resolve`]: an
/// entry whose path leaves the output directory is never read, whatever its hash.
fn confined(out_dir: &Path, manifest_path: &Path, artifact: &ManifestArtifact) -> Result<PathBuf> {
    crate::manifest_paths::resolve(out_dir, &artifact.path).map_err(|refused| {
        Error::config(format!(
            "{} `{}` ({}) in `{}` has path `{}`, which verify refuses: {refused}",
            artifact.kind,
            artifact.name,
            artifact.arch,
            manifest_path.display(),
            artifact.path
        ))
        .with_help(
            "verify reads artifacts only from inside the manifest's directory; pack again \
             (`cargo lambda-pack`, or pass --build) to rewrite the manifest",
        )
    })
}

/// The file must still be the one the manifest describes.
fn check_sha256(
    artifact: &ManifestArtifact,
    path: &Path,
    checked: &mut BTreeSet<PathBuf>,
) -> Result<()> {
    if checked.contains(path) {
        return Ok(());
    }
    let actual = crate::files::sha256_hex(path).map_err(|err| {
        Error::config(format!(
            "could not read {} `{}` ({}) at `{}`: {err}",
            artifact.kind,
            artifact.name,
            artifact.arch,
            path.display()
        ))
        .with_help("pack again (`cargo lambda-pack`, or pass --build) to write it")
    })?;
    if !actual.eq_ignore_ascii_case(&artifact.sha256) {
        return Err(Error::config(format!(
            "`{}` changed since it was packed: its SHA-256 is {actual}, the manifest says {}",
            path.display(),
            artifact.sha256
        ))
        .with_help("re-run the pack (`cargo lambda-pack`, or pass --build) so the manifest and the artifacts agree"));
    }
    checked.insert(path.to_path_buf());
    Ok(())
}

struct RunSettings {
    event: Vec<u8>,
    invokes: usize,
    timeout: Duration,
    /// The `--expect` file's name and JSON.
    expected: Option<(String, Value)>,
    /// `--env-file` and `--env`, over each function's `env` from the manifest.
    overrides: Overrides,
    /// `-v`: show what the processes wrote.
    show_output: bool,
}

/// What one function did, as printed and as serialised for `--message-format json`.
#[derive(Debug, Serialize)]
struct FunctionResult {
    name: String,
    arch: Arch,
    passed: bool,
    expect: Option<ExpectReport>,
    report: Option<RunReport>,
    /// Why the function could not be run at all (an unsafe ZIP, a missing emulator).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The kind of `error`: an artifact at fault fails verification; a missing tool or a
    /// broken temporary directory stops it.
    #[serde(skip)]
    setup_kind: Option<ErrorKind>,
}

impl FunctionResult {
    fn failure_summary(&self) -> String {
        if let Some(error) = &self.error {
            return error.clone();
        }
        if let Some(report) = &self.report
            && let Some(error_type) = &report.error_type
        {
            return match &report.error_message {
                Some(message) => format!("{error_type}: {}", first_line(message)),
                None => error_type.clone(),
            };
        }
        if let Some(expect) = &self.expect
            && let Some(mismatch) = expect.mismatches.first()
        {
            return format!(
                "the response of invoke {} does not match {}: {}",
                mismatch.invoke, expect.file, mismatch.reason
            );
        }
        "failed".into()
    }
}

/// `--message-format json`: the one document printed on stdout.
#[derive(Serialize)]
struct JsonDocument<'a> {
    functions: &'a [FunctionResult],
    passed: usize,
    failed: usize,
}

/// Lays the function out in a temporary directory and runs it.
fn verify_function(function: &Prepared<'_>, settings: &RunSettings) -> FunctionResult {
    let mut result = FunctionResult {
        name: function.artifact.name.clone(),
        arch: function.artifact.arch,
        passed: false,
        expect: None,
        report: None,
        error: None,
        setup_kind: None,
    };
    let report = match lay_out_and_run(function, settings) {
        Ok(report) => report,
        Err((kind, message)) => {
            result.error = Some(message);
            result.setup_kind = Some(kind);
            return result;
        }
    };
    let expect = settings
        .expected
        .as_ref()
        .map(|(file, value)| expect::compare(&report, value, file));
    result.passed = report.is_success() && expect.as_ref().is_none_or(|e| e.matched);
    result.expect = expect;
    result.report = Some(report);
    result
}

fn lay_out_and_run(
    function: &Prepared<'_>,
    settings: &RunSettings,
) -> std::result::Result<RunReport, (ErrorKind, String)> {
    let temp = tempfile::Builder::new()
        .prefix("lambda-verify-")
        .tempdir()
        .map_err(|err| {
            (
                ErrorKind::Internal,
                format!(
                    "could not create a temporary directory in `{}`: {err}",
                    std::env::temp_dir().display()
                ),
            )
        })?;
    let task = temp.path().join("task");
    let opt = temp.path().join("opt");
    for dir in [&task, &opt] {
        std::fs::create_dir_all(dir).map_err(|err| {
            (
                ErrorKind::Internal,
                format!("could not create `{}`: {err}", dir.display()),
            )
        })?;
    }
    // A standalone extension lands in /opt like any extension layer; the task dir stays empty.
    let own_dir = if function.standalone { &opt } else { &task };
    extract_zip(&function.zip, own_dir).map_err(setup_error)?;
    for layer in &function.layers {
        extract_zip(layer, &opt).map_err(setup_error)?;
    }
    let mut run = FunctionRun::new(&function.artifact.name, function.arch, &task, &opt);
    run.stand_in = function.standalone;
    run.extra_env = settings.overrides.apply(&function.artifact.env);
    run.events = vec![settings.event.clone(); settings.invokes];
    run.invoke_timeout = settings.timeout;
    run.namespace = NamespaceMode::Auto;
    run_function(&run).map_err(setup_error)
}

/// Sorts a failure to set up or start a run: an artifact at fault fails verification; a missing
/// emulator is a missing tool; anything else is this machine's problem.
fn setup_error(error: VerifyError) -> (ErrorKind, String) {
    let kind = match &error {
        VerifyError::BadZip { .. }
        | VerifyError::UnsafeEntry { .. }
        | VerifyError::CompressionRatio { .. }
        | VerifyError::TooLarge { .. } => ErrorKind::VerifyFailed,
        VerifyError::EmulatorMissing { .. } => ErrorKind::ToolchainMissing,
        VerifyError::Io { .. } | VerifyError::MissingDir { .. } | VerifyError::Server(_) => {
            ErrorKind::Internal
        }
    };
    (kind, error.to_string())
}

/// The human rendering of one function's result (stderr, under its status line); with
/// `show_output` (`-v`) everything the processes wrote, else a failed one's stderr tail.
fn render(result: &FunctionResult, show_output: bool) -> String {
    let mut lines: Vec<String> = Vec::new();
    if let Some(error) = &result.error {
        lines.push(format!("could not run: {error}"));
    }
    if let Some(report) = &result.report {
        render_report(report, &mut lines);
    }
    if let Some(expect) = &result.expect {
        render_expect(expect, &mut lines);
    }
    if !result.passed && result.error.is_none() {
        lines.push(format!("result: FAILED ({})", result.failure_summary()));
        if let Some(report) = result.report.as_ref().filter(|_| !show_output) {
            render_stderr(report, &mut lines);
        }
    }
    if let Some(report) = result.report.as_ref().filter(|_| show_output) {
        super::show::render_output(report, &mut lines);
    }
    let mut text = String::new();
    for line in lines {
        for (index, part) in line.lines().enumerate() {
            text.push_str(INDENT);
            if index > 0 {
                text.push_str("  ");
            }
            text.push_str(part);
            text.push('\n');
        }
    }
    text
}

fn render_report(report: &RunReport, lines: &mut Vec<String>) {
    if let Some(emulator) = &report.emulator {
        lines.push(format!("emulator: {emulator}"));
    }
    if report.private_mount_namespace {
        lines.push(
            "sandbox: private mount namespace (function at /var/task, layers at /opt, read-only)"
                .into(),
        );
    } else {
        lines.push(format!(
            "sandbox: no private mount namespace: {}",
            report
                .namespace_note
                .as_deref()
                .unwrap_or("ran from the temporary directories")
        ));
    }
    lines.push(format!("init: {:.1} ms", report.init_duration_ms));
    if let Some(init) = &report.init_error {
        lines.push(format!(
            "init error from {}: {}{}",
            init.source,
            init.error_type,
            init.error_message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    for (index, invoke) in report.invocations.iter().enumerate() {
        let what = match &invoke.outcome {
            InvokeOutcome::Response {
                len,
                preview,
                streamed,
                ..
            } => {
                let more = if *len as usize > PREVIEW_BYTES {
                    format!("… ({len} bytes)")
                } else {
                    String::new()
                };
                let kind = if *streamed {
                    "streamed response"
                } else {
                    "response"
                };
                format!("{kind} {}{more}", preview.replace('\n', "\\n"))
            }
            InvokeOutcome::FunctionError {
                error_type,
                error_message,
                ..
            } => format!(
                "error {error_type}{}",
                error_message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            InvokeOutcome::Timeout { timeout_ms } => {
                format!("Sandbox.Timeout: no answer within {timeout_ms} ms")
            }
            InvokeOutcome::RuntimeExited { exit } => {
                format!("Runtime.ExitError: the runtime exited ({exit})")
            }
            InvokeOutcome::ExtensionCrashed { extension, exit } => {
                format!("Extension.Crash: extension {extension} exited ({exit})")
            }
        };
        lines.push(format!(
            "invoke {} ({}): {:.1} ms, {what}",
            index + 1,
            invoke.request_id,
            invoke.duration_ms
        ));
    }
    if report.events_not_run > 0 {
        lines.push(format!(
            "{} invoke(s) not run: the environment failed before them",
            report.events_not_run
        ));
    }
    for extension in &report.extensions {
        let registration = if extension.registered {
            format!("registered for [{}]", extension.subscribed.join(", "))
        } else {
            "never registered".into()
        };
        let shutdown = match extension.shutdown {
            ShutdownStatus::Exited => "exited at shutdown",
            ShutdownStatus::Finished => "finished shutdown",
            ShutdownStatus::ExitedEarly => "exited before shutdown",
            ShutdownStatus::Killed => "killed at the end of the shutdown budget",
            ShutdownStatus::NotStarted => "could not be started",
        };
        let shutdown = if extension.internal {
            format!("inside the function's process, which {shutdown}")
        } else {
            shutdown.to_string()
        };
        let mut line = format!(
            "{} {}: {registration}, received [{}], {shutdown}",
            if extension.internal {
                "internal extension"
            } else {
                "extension"
            },
            extension.name,
            extension.received.join(", ")
        );
        if let Some(exit) = &extension.process.exit {
            line.push_str(&format!(" ({exit})"));
        }
        for error in &extension.reported_errors {
            line.push_str(&format!("; reported {error}"));
        }
        lines.push(line);
    }
    match &report.runtime {
        Some(runtime) => {
            let exited_itself = report.error_type.as_deref() == Some("Runtime.ExitError")
                || report
                    .invocations
                    .iter()
                    .any(|i| matches!(i.outcome, InvokeOutcome::RuntimeExited { .. }));
            let how = if exited_itself {
                "exited on its own"
            } else {
                "stopped at shutdown"
            };
            lines.push(format!(
                "runtime {} {how}: {}",
                runtime.path,
                runtime.exit.as_deref().unwrap_or("status unknown")
            ));
        }
        None if report.stand_in => lines.push(
            "runtime: stand-in function (no runtime process; the emulator answered each invoke with its event)".into(),
        ),
        None => lines.push("runtime: not started".into()),
    }
}

fn render_expect(expect: &ExpectReport, lines: &mut Vec<String>) {
    if expect.matched {
        lines.push(format!("expect: every response equals {}", expect.file));
        return;
    }
    for mismatch in expect.mismatches.iter().take(SHOWN_MISMATCHES) {
        let mut line = format!(
            "expect: invoke {} does not match {}: {}",
            mismatch.invoke, expect.file, mismatch.reason
        );
        if !mismatch.actual.is_null() {
            line.push_str(&format!(
                "\nexpected: {}\nactual:   {}",
                shorten(&expect.expected.to_string()),
                shorten(&match &mismatch.actual {
                    Value::String(text) if mismatch.path.is_none() => text.clone(),
                    value => value.to_string(),
                })
            ));
        }
        lines.push(line);
    }
    if expect.mismatches.len() > SHOWN_MISMATCHES {
        lines.push(format!(
            "expect: {} more invoke(s) do not match either",
            expect.mismatches.len() - SHOWN_MISMATCHES
        ));
    }
    if expect.mismatches.is_empty() {
        lines.push(format!(
            "expect: no invoke ran, so nothing could be compared with {}",
            expect.file
        ));
    }
}

fn render_stderr(report: &RunReport, lines: &mut Vec<String>) {
    let processes = report.runtime.iter().map(|p| ("runtime", p)).chain(
        report
            .extensions
            .iter()
            .map(|e| (e.name.as_str(), &e.process)),
    );
    for (name, process) in processes {
        let all: Vec<&str> = process.stderr.trim_matches('\n').lines().collect();
        if all.iter().all(|line| line.trim().is_empty()) {
            continue;
        }
        let tail = &all[all.len().saturating_sub(STDERR_TAIL_LINES)..];
        let mut text = format!(
            "stderr of {name}{}:",
            if tail.len() < all.len() {
                format!(" (last {} lines)", tail.len())
            } else {
                String::new()
            }
        );
        for line in tail {
            text.push_str(&format!("\n| {line}"));
        }
        lines.push(text);
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(SHOWN_JSON_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
