//! `cargo lambda-pack verify`: reads the manifest, lays each function out as Lambda would
//! (function ZIP in the task dir, layers in order in the opt dir) and runs it.
//!
//! Everything a user can get wrong (the manifest, the function names, the event and expect
//! files, an artifact changed since it was packed) is checked before the first function runs;
//! then every selected function runs, its results are printed, and a single error at the end
//! says whether any failed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::env::Overrides;
use super::expect::{self, ExpectReport};
use super::prepare::{Prepared, prepare};
use super::render::{first_line, render};
use super::select::{read_manifest, select};
use super::{
    FunctionRun, NamespaceMode, RunReport, VerifyError, extract_zip, run_function, unpack_image,
};
use crate::cli::{MessageFormat, NetworkArg, VerifyArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::output::Shell;
use crate::output::Verbosity;
use crate::settings::Options;
use crate::target::{Arch, Runtime};
use crate::workspace::Workspace;

pub fn run(args: &VerifyArgs, options: &Options, shell: &Shell) -> Result<()> {
    // SIGTERM, SIGINT, SIGHUP from here on tear the environments down and remove their folders.
    super::interrupt::install();
    // The workspace decides which functions run without names: several workspaces may share an
    // output directory. With --out-dir outside any workspace, every function is this run's.
    let (out_dir, workspace) = match &options.out_dir {
        Some(dir) => (
            dir.clone(),
            Workspace::load(&options.cargo, options.manifest_path.as_deref()).ok(),
        ),
        None => {
            let workspace = Workspace::load(&options.cargo, options.manifest_path.as_deref())?;
            (options.out_dir(&workspace.target_dir), Some(workspace))
        }
    };
    let workspace_root = workspace.as_ref().map(|w| w.root.clone());
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
    if let Some(tenant_id) = &args.tenant_id {
        check_tenant_id(tenant_id)?;
    }
    let selected = select(
        &manifest,
        &args.functions,
        options.arch,
        &manifest_path,
        workspace_root.as_deref(),
        shell,
    )?;
    let mut checked = BTreeSet::new();
    let prepared = selected
        .into_iter()
        .map(|artifact| prepare(artifact, &manifest, &out_dir, &manifest_path, &mut checked))
        .collect::<Result<Vec<_>>>()?;
    if let Some(n) = args.concurrency.filter(|n| *n > 1)
        && let Some(al2) = prepared
            .iter()
            .find(|p| p.artifact.runtime == Runtime::ProvidedAl2 && !p.standalone)
    {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "--concurrency {n}: function {} runs on provided.al2, and Lambda Managed Instances \
                 (several invocations at once in one environment) run provided.al2023 only",
                al2.artifact.name
            ),
        )
        .with_help(
            "pack the function for provided.al2023 (`runtime = \"provided.al2023\"` in \
             [package.metadata.lambda-pack]), or run it without --concurrency",
        ));
    }

    let settings = RunSettings {
        event,
        invokes: args.invokes as usize,
        timeout: Duration::from_secs(args.timeout),
        expected,
        overrides,
        show_output: options.verbosity >= Verbosity::Verbose,
        concurrency: args.concurrency,
        tenant_id: args.tenant_id.clone(),
        memory: args.memory,
        ephemeral_storage: args.ephemeral_storage,
        workspace,
        sandbox: match (args.no_sandbox, args.network) {
            (true, _) => NamespaceMode::Disabled,
            (false, NetworkArg::Host) => NamespaceMode::HostNetwork,
            (false, NetworkArg::Own) => NamespaceMode::Auto,
        },
    };
    let human = options.message_format == MessageFormat::Human;
    let mut results = Vec::new();
    for function in &prepared {
        shell.status("Verifying", function.describe());
        for arn in &function.unmounted {
            shell.warn(format!(
                "{} ({}) attaches layer {arn} by ARN without a local copy: verify could not mount it at /opt, so the function runs without it (add `zip = \"path.zip\"` to its `layers` entry)",
                function.artifact.name, function.arch
            ));
        }
        let started = Instant::now();
        let mut result = verify_function(function, &settings);
        result.unmounted_layers = function.unmounted.clone();
        // Interrupted: the environment is already dead and verify ends by the signal, once
        // its folders are gone; this run's result is not one to report.
        super::interrupt::wait_if_interrupted();
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
            _ if result.setup_help.is_some() => {
                error.with_help(result.setup_help.clone().unwrap_or_default())
            }
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
    for result in &failed {
        error = error.with_note(format!(
            "{} ({}): {}",
            result.name,
            result.arch,
            result.failure_summary()
        ));
    }
    // An init that timed out while a layer was missing: most likely that layer is what the
    // function waits for (an extension that answers the Runtime API, a runtime).
    let missing: Vec<String> = failed
        .iter()
        .filter(|r| r.init_timed_out() && !r.unmounted_layers.is_empty())
        .map(|r| format!("{} ({}): {}", r.name, r.arch, r.unmounted_layers.join(", ")))
        .collect();
    if !missing.is_empty() {
        return Err(error.with_help(format!(
            "init timed out while verify ran without layers it could not mount, attached by ARN without a local copy ({}); if the function needs one of them to start (an adapter or runtime layer), add `zip = \"path.zip\"` with that layer's content to its `layers` entry and pack again",
            missing.join("; ")
        )));
    }
    Err(error.with_help(
        "the output above shows each invoke, any expected and actual responses and the runtime's \
         stderr; fix the function (or the --expect file), pack again and re-run \
         `cargo lambda-pack verify` (or pass --build)",
    ))
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
    /// `--concurrency`.
    concurrency: Option<u32>,
    /// `--tenant-id`.
    tenant_id: Option<String>,
    /// `--memory`, over the function's `memory`.
    memory: Option<u32>,
    /// `--ephemeral-storage`, over the function's `ephemeral_storage`.
    ephemeral_storage: Option<u32>,
    /// `--no-sandbox` gives `Disabled`.
    sandbox: NamespaceMode,
    /// Where the functions' own `memory` and `ephemeral_storage` are read (absent with an
    /// --out-dir outside any workspace: Lambda's defaults).
    workspace: Option<Workspace>,
}

impl RunSettings {
    /// The run's limits: the flags, else the function's own settings (as its manifest entry
    /// records them; for a manifest written before those fields, as its workspace's metadata
    /// sets them), else Lambda's defaults.
    fn limit(&self, function: &Prepared<'_>, run: &mut FunctionRun) {
        let artifact = function.artifact;
        let mut keys = self
            .workspace
            .as_ref()
            .filter(|_| artifact.memory.is_none() && artifact.ephemeral_storage.is_none())
            .filter(|w| Manifest::belongs_to(artifact, &w.root))
            .map(|w| w.deploy_keys(&artifact.package, artifact.bin.as_deref()))
            .unwrap_or_default();
        keys.memory = artifact.memory.or(keys.memory);
        keys.ephemeral_storage = artifact.ephemeral_storage.or(keys.ephemeral_storage);
        let narrow = |mb: u64| u32::try_from(mb).unwrap_or(u32::MAX);
        if let Some(memory) = self.memory.or(keys.memory.map(narrow)) {
            run.memory_mb = memory;
        }
        if let Some(storage) = self
            .ephemeral_storage
            .or(keys.ephemeral_storage.map(narrow))
        {
            run.ephemeral_storage_mb = storage;
        }
        run.namespace = self.sandbox;
    }
}

/// Lambda's tenant ids: 1 to 256 characters, printable ASCII (they travel in a header).
fn check_tenant_id(tenant_id: &str) -> Result<()> {
    let printable = tenant_id.bytes().all(|b| (0x21..0x7f).contains(&b));
    if tenant_id.is_empty() || tenant_id.len() > 256 || !printable {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "--tenant-id {tenant_id:?} is not a tenant id Lambda accepts: expected 1 to 256 \
                 printable ASCII characters without spaces"
            ),
        )
        .with_help("pass an id like `--tenant-id customer-42`"));
    }
    Ok(())
}

/// What one function did, as printed and as serialised for `--message-format json`.
#[derive(Debug, Serialize)]
pub(super) struct FunctionResult {
    pub(super) name: String,
    pub(super) arch: Arch,
    pub(super) passed: bool,
    pub(super) expect: Option<ExpectReport>,
    pub(super) report: Option<RunReport>,
    /// Why the function could not be run at all (an unsafe ZIP, a missing emulator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
    /// The kind of `error`: an artifact at fault fails verification; a missing tool or a
    /// broken temporary directory stops it.
    #[serde(skip)]
    pub(super) setup_kind: Option<ErrorKind>,
    /// The `help:` of a setup failure that has its own.
    #[serde(skip)]
    pub(super) setup_help: Option<String>,
    /// Layers attached by ARN that verify could not mount (no local copy).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) unmounted_layers: Vec<String>,
}

impl FunctionResult {
    /// Whether the run failed because init did not finish in time.
    fn init_timed_out(&self) -> bool {
        self.report.as_ref().is_some_and(|r| {
            r.error_type.as_deref() == Some("Sandbox.Timeout")
                && r.error_message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("Init timed out"))
        })
    }

    pub(super) fn failure_summary(&self) -> String {
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
        setup_help: None,
        unmounted_layers: Vec::new(),
    };
    let report = match lay_out_and_run(function, settings) {
        Ok(report) => report,
        Err((kind, message, help)) => {
            result.error = Some(message);
            result.setup_kind = Some(kind);
            result.setup_help = help;
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
) -> std::result::Result<RunReport, SetupError> {
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
                None,
            )
        })?;
    let _tracked = super::interrupt::TrackedDir::new(temp.path());
    if let Some((layout, digest)) = &function.image {
        return run_image(function, settings, temp.path(), layout, digest);
    }
    let task = temp.path().join("task");
    let opt = temp.path().join("opt");
    for dir in [&task, &opt] {
        std::fs::create_dir_all(dir).map_err(|err| {
            (
                ErrorKind::Internal,
                format!("could not create `{}`: {err}", dir.display()),
                None,
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
    // `handler` from the metadata (absent in older manifests: Lambda's default, `bootstrap`).
    if let Some(handler) = &function.artifact.handler {
        run.handler = handler.clone();
    }
    run.extra_env = settings.overrides.apply(&function.artifact.env);
    run.events = vec![settings.event.clone(); settings.invokes];
    run.invoke_timeout = settings.timeout;
    settings.limit(function, &mut run);
    run.concurrency = settings.concurrency;
    run.tenant_id = settings.tenant_id.clone();
    run_function(&run).map_err(setup_error)
}

/// Unpacks the image into a root file system under `temp` and runs it there.
fn run_image(
    function: &Prepared<'_>,
    settings: &RunSettings,
    temp: &std::path::Path,
    layout: &std::path::Path,
    digest: &str,
) -> std::result::Result<RunReport, SetupError> {
    let root = temp.join("rootfs");
    let unpacked = unpack_image(layout, digest, &root, function.arch);
    let result = unpacked.map_err(setup_error).and_then(|image| {
        let mut run = FunctionRun::new(&function.artifact.name, function.arch, &root, &root);
        run.handler = image.handler.clone();
        run.image = Some(image);
        run.extra_env = settings.overrides.apply(&function.artifact.env);
        run.events = vec![settings.event.clone(); settings.invokes];
        run.invoke_timeout = settings.timeout;
        settings.limit(function, &mut run);
        run.concurrency = settings.concurrency;
        run.tenant_id = settings.tenant_id.clone();
        run_function(&run).map_err(setup_error)
    });
    // The image may have made directories read-only: the temporary directory's own removal
    // would stop at them.
    super::image::remove_root(&root);
    result
}

/// A failure to set up or start a run, as the kind its error has (see `From<VerifyError>`) and
/// the message.
fn setup_error(error: VerifyError) -> SetupError {
    let error = Error::from(error);
    (error.kind, error.message, error.help)
}

/// A setup failure: its kind, message and `help:` line when it has its own.
type SetupError = (ErrorKind, String, Option<String>);
