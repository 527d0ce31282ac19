//! `cargo lambda-pack verify`: runs a packaged function (bootstrap, layers, extensions) the way
//! Lambda would, offline and without Docker.
//!
//! The pieces:
//! - [`extract_zip`] unpacks a function ZIP or a layer ZIP, keeping exec bits and symlinks and
//!   refusing entries that would escape the destination or inflate absurdly.
//! - [`run_function`] serves the Runtime API, the Extensions API and the Logs/Telemetry APIs
//!   (which deliver to their subscribers, see `telemetry.rs`) on a free loopback port, starts the extensions and then the bootstrap with Lambda's environment,
//!   delivers each event, shuts everything down like Lambda does and returns a [`RunReport`].
//! - Every process runs in an environment held as Lambda holds it (`environment.rs`,
//!   `namespace.rs`, `limits.rs`): a user, mount and pid namespace with a root of only Lambda's
//!   folders, read-only but for a `/tmp` of the function's ephemeral storage, as uid 993, with
//!   the function's memory and 1,024 processes; nothing outlives it. Where the kernel refuses
//!   user namespaces verify refuses to run, unless `--no-sandbox` says to run without any of it.
//!
//! Dependencies and why:
//! - `tokio` (current-thread runtime, `net`, `process`, `time`, `sync`): the Runtime API is a
//!   long-polling HTTP API, so the emulator must hold many parked requests, child processes and
//!   deadlines at once; tokio is what the Lambda runtime crates themselves run on.
//! - `hyper` 1.x (`server`, `http1`) with `hyper-util` and `http-body-util`: a conformant HTTP/1.1
//!   server with chunked bodies and trailers (streamed responses report errors in trailers), the
//!   same stack the `lambda_runtime` client uses, without a web framework on top (`bytes` is
//!   hyper's buffer type).
//! - `libc`: `clone`, `setns`, `mount`, `pivot_root` and `kill` must run in the environment's init
//!   or between `fork` and `exec`, where only async-signal-safe raw system calls on pre-built C
//!   strings are sound; thin wrappers that may allocate are not.
//!
//! Nothing here prints: processes' output is captured into the report (shown with `-v`).

mod api;
pub(crate) mod command;
mod concurrency;
mod delivery;
mod env;
mod environment;
mod expect;
mod extensions_api;
mod extract;
mod http;
mod image;
mod input_file;
mod interrupt;
mod invoke;
mod lifecycle;
mod limits;
mod namespace;
mod network;
mod prepare;
mod preview;
#[cfg(test)]
mod protocol_tests;
mod render;
mod report;
mod sandbox;
mod select;
mod show;
mod shutdown;
mod state;
mod subscribe;
mod telemetry;
mod untar;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::target::Arch;

pub use extract::extract_zip;
pub use image::{ImageRoot, unpack_image};
pub use lifecycle::run_function;
pub use limits::Containment;
pub use report::{InvokeOutcome, RunReport, ShutdownStatus};
pub(crate) use telemetry::{Api as TelemetryApi, buffering_bounds, parse_subscription_body};

/// Largest synchronous response payload Lambda accepts (6 MiB).
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Lambda's ARN for a function in the emulated (fake) account and region.
pub fn function_arn(region: &str, function_name: &str) -> String {
    format!("arn:aws:lambda:{region}:000000000000:function:{function_name}")
}

/// Whether processes run in the sandboxed environment (see `environment.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NamespaceMode {
    /// The environment: user, mount and pid namespaces; refuse to run when the kernel refuses.
    #[default]
    Auto,
    /// `--network host`: the environment, sharing the host's network (no network namespace).
    HostNetwork,
    /// `--no-sandbox`: no namespaces; run from the temp dirs, as verify's user, unlimited.
    Disabled,
}

/// One function to run, with the directories already laid out (see [`extract_zip`]).
#[derive(Clone, Debug)]
pub struct FunctionRun {
    pub function_name: String,
    pub arch: Arch,
    /// Contents of the function ZIP (becomes `/var/task`).
    pub task_dir: PathBuf,
    /// Layers extracted in order (becomes `/opt`).
    pub opt_dir: PathBuf,
    /// `_HANDLER`, e.g. `bootstrap`.
    pub handler: String,
    /// One invoke per event (JSON bytes).
    pub events: Vec<Vec<u8>>,
    /// Per invoke; Lambda's default is 3 s, ours 30 s.
    pub invoke_timeout: Duration,
    /// 10 s like Lambda.
    pub init_timeout: Duration,
    pub memory_mb: u32,
    /// `/tmp`'s size, MB (Lambda's ephemeral storage: 512 by default).
    pub ephemeral_storage_mb: u32,
    /// Set after Lambda's variables, so they may override them.
    pub extra_env: Vec<(String, String)>,
    /// `AWS_REGION` and the region in the ARN.
    pub region: String,
    pub namespace: NamespaceMode,
    /// No runtime process: the emulator answers each invoke itself by echoing the event, so an
    /// extension can run on its own (a stand-in function).
    pub stand_in: bool,
    /// A container image: its root file system is `/` of every process, its entrypoint and
    /// command run instead of a bootstrap, its extensions are its `/opt/extensions`.
    pub image: Option<ImageRoot>,
    /// `--concurrency N`: `AWS_LAMBDA_MAX_CONCURRENCY=N` and up to N invocations in flight at
    /// once. `None`: one at a time and no such variable, as on Lambda (default).
    pub concurrency: Option<u32>,
    /// `--tenant-id`: sent as `Lambda-Runtime-Aws-Tenant-Id` with every invocation.
    pub tenant_id: Option<String>,
}

impl FunctionRun {
    /// A run with Lambda's defaults: handler `bootstrap`, 30 s per invoke, 10 s init, 128 MB,
    /// `us-east-1`, no events.
    pub fn new(
        function_name: impl Into<String>,
        arch: Arch,
        task_dir: impl Into<PathBuf>,
        opt_dir: impl Into<PathBuf>,
    ) -> Self {
        FunctionRun {
            function_name: function_name.into(),
            arch,
            task_dir: task_dir.into(),
            opt_dir: opt_dir.into(),
            handler: "bootstrap".into(),
            events: Vec::new(),
            invoke_timeout: Duration::from_secs(30),
            init_timeout: Duration::from_secs(10),
            memory_mb: 128,
            ephemeral_storage_mb: 512,
            extra_env: Vec::new(),
            region: "us-east-1".into(),
            namespace: NamespaceMode::Auto,
            stand_in: false,
            image: None,
            concurrency: None,
            tenant_id: None,
        }
    }
}

/// Why a verification could not be carried out (as opposed to the function failing, which is
/// reported in [`RunReport::error_type`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{zip} is not a readable ZIP archive ({source}); rebuild it with `cargo lambda-pack`")]
    BadZip {
        zip: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("refusing to extract {zip}: entry `{entry}` {reason}; nothing was written")]
    UnsafeEntry {
        zip: PathBuf,
        entry: String,
        reason: String,
    },
    #[error(
        "refusing to extract {zip}: entry `{entry}` inflates {compressed} bytes to {uncompressed} \
         (limit {limit_ratio}:1); this looks like a ZIP bomb, nothing was written"
    )]
    CompressionRatio {
        zip: PathBuf,
        entry: String,
        compressed: u64,
        uncompressed: u64,
        limit_ratio: u64,
    },
    #[error(
        "refusing to extract {zip}: it unpacks to {total} bytes, over the {limit}-byte cap; \
         nothing was written"
    )]
    TooLarge {
        zip: PathBuf,
        total: u64,
        limit: u64,
    },
    #[error(
        "running {arch} binaries on this {host} host needs `{program}` on PATH; install it with \
         `apt-get install qemu-user-static` (Debian/Ubuntu)"
    )]
    EmulatorMissing {
        arch: Arch,
        host: String,
        program: String,
    },
    #[error(
        "{what} is not an image verify can run: {reason}; pack it again (`cargo lambda-pack`, or pass --build)"
    )]
    BadImage { what: String, reason: String },
    #[error(
        "cannot hold the function as Lambda does: the kernel refused the environment's user, \
         mount and pid namespaces ({why})"
    )]
    NoNamespace { why: String },
    #[error("{path} is not a directory; lay out the {role} directory before running the function")]
    MissingDir { role: &'static str, path: PathBuf },
    #[error("the local Runtime API could not start: {0}")]
    Server(#[source] io::Error),
}

impl VerifyError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        VerifyError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Sorts a failure to set up or start a run: an artifact at fault fails verification; a missing
/// emulator is a missing tool; anything else is this machine's problem.
impl From<VerifyError> for crate::error::Error {
    fn from(error: VerifyError) -> Self {
        use crate::error::ErrorKind;
        let kind = match &error {
            VerifyError::BadZip { .. }
            | VerifyError::UnsafeEntry { .. }
            | VerifyError::CompressionRatio { .. }
            | VerifyError::TooLarge { .. }
            | VerifyError::BadImage { .. } => ErrorKind::VerifyFailed,
            VerifyError::EmulatorMissing { .. } => ErrorKind::ToolchainMissing,
            VerifyError::Io { .. }
            | VerifyError::MissingDir { .. }
            | VerifyError::Server(_)
            | VerifyError::NoNamespace { .. } => ErrorKind::Internal,
        };
        let no_sandbox = matches!(error, VerifyError::NoNamespace { .. });
        let error = crate::error::Error::new(kind, error.to_string());
        if no_sandbox {
            return error.with_help(
                "allow user namespaces (sysctl user.max_user_namespaces > 0, and \
                 kernel.unprivileged_userns_clone=1 or kernel.apparmor_restrict_unprivileged_userns=0 \
                 where the kernel has them), or pass --no-sandbox to run ZIP functions as your \
                 own user, from the temporary directories, with the host's file system writable \
                 and no /tmp, memory, process or lifetime limits (an image cannot run without it)",
            );
        }
        error
    }
}
