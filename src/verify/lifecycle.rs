//! Lambda's execution-environment lifecycle: init (extensions, then the runtime), one invoke per
//! event, shutdown (SIGTERM, SHUTDOWN events with a 2 s budget, SIGKILL). Every wait has a
//! deadline; every process is killed, by process group, before [`run_function`] returns.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::api;
use super::limits::{MemoryWatch, watch_memory};
use super::report::{RunReport, ShutdownStatus, describe_exit};
use super::sandbox::{LineSink, Sandbox, Spawned, exec_error, executable};
use super::state::{ApiConfig, Shared, State};
use super::telemetry::{Category, Record};
use super::{FunctionRun, VerifyError, function_arn};
use crate::target::Arch;

const BOOTSTRAP_MISSING: &str =
    "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]";

/// Runs the function in `run` like Lambda would and reports what happened. Blocking: it builds
/// its own (single-threaded) tokio runtime, so call it from outside any async context.
///
/// `Err` means the verification itself could not run (no emulator, no free port, unreadable
/// directories); a function that fails in any way yields `Ok` with [`RunReport::error_type`] set.
pub fn run_function(run: &FunctionRun) -> Result<RunReport, VerifyError> {
    for (role, dir) in [("task", &run.task_dir), ("layers (opt)", &run.opt_dir)] {
        if !dir.is_dir() {
            return Err(VerifyError::MissingDir {
                role,
                path: dir.clone(),
            });
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(VerifyError::Server)?;
    let report = runtime.block_on(run_async(run));
    runtime.shutdown_timeout(Duration::from_secs(1));
    report
}

pub(super) struct Proc {
    pub(super) name: String,
    /// Index into `State::exits`.
    pub(super) index: usize,
    pub(super) visible: PathBuf,
    pub(super) spawned: Spawned,
}

#[derive(Clone)]
pub(super) enum Stop {
    InitError,
    RuntimeExited(String),
    ExtensionExited(String, String),
}

pub(super) struct Life<'a> {
    pub(super) run: &'a FunctionRun,
    pub(super) sandbox: Sandbox,
    pub(super) shared: Arc<Shared>,
    pub(super) runtime: Option<Proc>,
    pub(super) extensions: Vec<Proc>,
    /// Extensions that could not be started.
    pub(super) unstarted: Vec<(String, PathBuf, String)>,
    /// How the runtime process ended at shutdown (also the internal extensions' end).
    pub(super) runtime_shutdown: ShutdownStatus,
    pub(super) report: RunReport,
    /// When the run began: invocations' start and end are reported relative to it.
    pub(super) began: Instant,
    /// `platform.report` carries `initDurationMs` on the first invocation only.
    pub(super) reported_init: bool,
    /// The environment's memory: its peak, and whether it went past the limit.
    pub(super) memory: Arc<MemoryWatch>,
}

/// An invocation on its way: dispatched, not yet ended.
pub(super) struct Dispatched {
    pub(super) request_id: String,
    pub(super) started: Instant,
    pub(super) deadline: Instant,
}

async fn run_async(run: &FunctionRun) -> Result<RunReport, VerifyError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(VerifyError::Server)?;
    let port = listener.local_addr().map_err(VerifyError::Server)?.port();
    let workdir = tempfile::Builder::new()
        .prefix("lambda-verify-")
        .tempdir()
        .map_err(|e| VerifyError::io("create a temporary directory in", std::env::temp_dir(), e))?;
    let _tracked = super::interrupt::TrackedDir::new(workdir.path());
    let sandbox = Sandbox::prepare(run, workdir.path(), &format!("127.0.0.1:{port}"))?;
    let memory = Arc::new(MemoryWatch::default());
    let watcher = sandbox.environment.as_ref().map(|environment| {
        tokio::spawn(watch_memory(
            environment.pid_namespace.clone(),
            environment.init_pid(),
            run.memory_mb,
            memory.clone(),
        ))
    });
    let extensions = match &run.image {
        Some(image) => super::image::extensions(&image.root),
        None => list_extensions(&run.opt_dir)?,
    };
    let names: Vec<String> = extensions.iter().map(|(name, _)| name.clone()).collect();
    let config = ApiConfig {
        function_name: run.function_name.clone(),
        handler: run.handler.clone(),
        arn: function_arn(&run.region, &run.function_name),
        tenant_id: run.tenant_id.clone(),
    };
    let shared = Shared::new(config, names.clone());
    // In the environment's own network the Runtime API listens on its loopback, at the port
    // the host gave (free there too: the network is new).
    let network = sandbox.environment.as_ref().and_then(|e| e.network.clone());
    let listener = match network {
        Some(network) => {
            let inside = network.listener(port).map_err(VerifyError::Server)?;
            let _ = shared.network.set(network);
            TcpListener::from_std(inside).map_err(VerifyError::Server)?
        }
        None => listener,
    };
    let server = tokio::spawn(api::serve(listener, shared.clone()));
    let report = RunReport {
        function_name: run.function_name.clone(),
        arch: run.arch,
        emulator: sandbox
            .emulator
            .as_ref()
            .map(|e| e.program.display().to_string()),
        private_mount_namespace: sandbox.environment.is_some(),
        namespace_note: sandbox.note.clone(),
        sandbox: sandbox.containment.clone(),
        init_duration_ms: 0.0,
        init_error: None,
        invocations: Vec::new(),
        events_not_run: 0,
        extensions: Vec::new(),
        runtime: None,
        error_type: None,
        error_message: None,
        api_requests: 0,
        stand_in: run.stand_in,
        image: run.image.is_some(),
        concurrency: run.concurrency.unwrap_or(1),
        tenant_id: run.tenant_id.clone(),
        telemetry_subscriptions: Vec::new(),
    };
    let mut life = Life {
        run,
        sandbox,
        shared,
        runtime: None,
        extensions: Vec::new(),
        unstarted: Vec::new(),
        runtime_shutdown: ShutdownStatus::NotStarted,
        report,
        began: Instant::now(),
        reported_init: false,
        memory,
    };
    let reason = life.init_and_invoke(&extensions).await;
    let statuses = life.shutdown(reason).await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    server.abort();
    Ok(life.finish(statuses).await)
}

/// Every regular file directly in `opt/extensions`, by name, with its path.
fn list_extensions(opt: &Path) -> Result<Vec<(String, PathBuf)>, VerifyError> {
    let dir = opt.join("extensions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| VerifyError::io("list", &dir, e))?;
        if entry.path().is_file() {
            names.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
    }
    names.sort();
    Ok(names)
}

pub(super) fn epoch_ms(after: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + after).as_millis() as u64
}

impl Life<'_> {
    pub(super) fn fail(&mut self, error_type: &str, message: String) {
        if self.report.error_type.is_none() {
            self.report.error_type = Some(error_type.to_string());
            self.report.error_message = Some(message);
        }
    }

    fn spawn(
        &mut self,
        name: &str,
        host: &Path,
        visible: PathBuf,
        args: &[String],
    ) -> Result<Proc, String> {
        // Each line the process writes becomes a `function` (the runtime) or `extension`
        // record for the Logs and Telemetry API subscribers.
        let category = if name == "bootstrap" {
            Category::Function
        } else {
            Category::Extension
        };
        let shared = self.shared.clone();
        let lines: LineSink = Arc::new(move |line: &str| {
            shared.update(|s| s.telemetry.emit(Record::line(category, line)));
        });
        let spawned = self
            .sandbox
            .spawn(host, &visible, args, lines)
            .map_err(|e| exec_error(&visible, &e))?;
        let index = self.shared.update(|s| {
            s.exits.push(None);
            s.exits.len() - 1
        });
        let mut proc = Proc {
            name: name.to_string(),
            index,
            visible,
            spawned,
        };
        if let Some(mut child) = proc.spawned.child.take() {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                if let Ok(status) = child.wait().await {
                    shared.update(|s| s.exits[index] = Some(status));
                }
            });
        }
        Ok(proc)
    }

    /// Init, then the events; returns the SHUTDOWN reason.
    async fn init_and_invoke(&mut self, extensions: &[(String, PathBuf)]) -> &'static str {
        let run = self.run;
        let events = run.events.len();
        self.report.events_not_run = events;
        let started = Instant::now();
        let init_deadline = started + run.init_timeout;
        self.shared
            .update(|s| s.telemetry.emit(Record::init_start()));

        let bootstrap = if run.stand_in {
            None
        } else {
            let Some(found) = self.find_bootstrap() else {
                self.fail("Runtime.InvalidEntrypoint", BOOTSTRAP_MISSING.into());
                return "failure";
            };
            Some(found)
        };
        for (name, host_path) in extensions {
            let visible_path = self.sandbox.visible_opt(&format!("extensions/{name}"));
            let started = executable(host_path, &visible_path, self.machine())
                .and_then(|()| self.spawn(name, host_path, visible_path.clone(), &[]));
            match started {
                Ok(proc) => self.extensions.push(proc),
                Err(message) => {
                    self.fail("Extension.LaunchError", message.clone());
                    self.unstarted.push((name.clone(), visible_path, message));
                }
            }
        }
        if self.report.error_type.is_some() {
            return "failure";
        }
        let registered = self
            .wait(init_deadline, |s, exts| {
                if let Some(stop) = stopped(s, None, exts, true) {
                    return Some(Err(stop));
                }
                exts.iter()
                    .all(|(name, _)| s.extension(name).is_some())
                    .then_some(Ok(()))
            })
            .await;
        if !self.check_init(registered, run.init_timeout) {
            return "failure";
        }

        if let Some((host, visible, args)) = bootstrap {
            if let Err(message) = executable(&host, &visible, self.machine()) {
                self.fail("Runtime.InvalidEntrypoint", message);
                return "failure";
            }
            match self.spawn("bootstrap", &host, visible, &args) {
                Ok(proc) => self.runtime = Some(proc),
                Err(message) => {
                    self.fail("Runtime.InvalidEntrypoint", message);
                    return "failure";
                }
            }
        }
        let ready = self.wait_ready(init_deadline, true).await;
        self.report.init_duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        // Init is over once everything waits for an event; Lambda takes no registration after.
        self.shared.update(|s| s.init_done = true);
        let init_ok = self.check_init(ready, run.init_timeout);
        let (status, error_type) = match (&self.report.error_type, init_ok) {
            (_, true) => ("success", None),
            (Some(error_type), false) => ("failure", Some(error_type.clone())),
            (None, false) => ("failure", None),
        };
        let duration = self.report.init_duration_ms;
        self.shared.update(|s| {
            s.telemetry
                .emit(Record::init_runtime_done(status, error_type.as_deref()));
            s.telemetry.emit(Record::init_report(status, duration));
        });
        if !init_ok {
            return "failure";
        }
        if run.concurrency.is_some_and(|n| n > 1) {
            return self.invoke_concurrently().await;
        }

        for (i, event) in run.events.iter().enumerate() {
            if i > 0 {
                let ready = self
                    .wait_ready(Instant::now() + run.invoke_timeout, false)
                    .await;
                if let Some(reason) = self.check_invoke(ready, None, run.invoke_timeout) {
                    return reason;
                }
            }
            self.report.events_not_run = events - i;
            let reason = self.invoke(Bytes::from(event.clone())).await;
            self.report.events_not_run = events - i - 1;
            if let Some(reason) = reason {
                return reason;
            }
        }
        // As on Lambda, the last invoke ends only when the runtime and every extension are
        // parked on `next` again: an extension still handling that event finishes it (within
        // the timeout) before SHUTDOWN, instead of racing it.
        if !run.events.is_empty() {
            let ready = self
                .wait_ready(Instant::now() + run.invoke_timeout, false)
                .await;
            if let Some(reason) = self.check_invoke(ready, None, run.invoke_timeout) {
                return reason;
            }
        }
        "spindown"
    }

    /// The ELF machine the processes execute as: the emulated one under qemu, else the host's.
    fn machine(&self) -> u16 {
        match (&self.sandbox.emulator, Arch::host()) {
            (None, Some(host)) => host.elf_machine(),
            _ => self.run.arch.elf_machine(),
        }
    }

    /// What runs as the runtime: its file on the host, the path it has for the process and
    /// its arguments. An image's entrypoint and command (its file looked up inside the image);
    /// else `/var/task/bootstrap`, then `/opt/bootstrap`, as Lambda looks for them.
    fn find_bootstrap(&self) -> Option<(PathBuf, PathBuf, Vec<String>)> {
        if let Some(image) = &self.run.image {
            let (first, args) = image.argv.split_first()?;
            return Some((
                super::image::host_path(&image.root, first),
                PathBuf::from(first),
                args.to_vec(),
            ));
        }
        let task = self.run.task_dir.join("bootstrap");
        if task.exists() {
            return Some((task, self.sandbox.visible_task("bootstrap"), Vec::new()));
        }
        let opt = self.run.opt_dir.join("bootstrap");
        opt.exists()
            .then(|| (opt, self.sandbox.visible_opt("bootstrap"), Vec::new()))
    }

    /// Waits on the API state; `ready` also sees each extension process (name, exit index).
    pub(super) async fn wait<T>(
        &self,
        deadline: Instant,
        mut ready: impl FnMut(&State, &[(String, usize)]) -> Option<T>,
    ) -> Option<T> {
        let exts: Vec<(String, usize)> = self
            .extensions
            .iter()
            .map(|p| (p.name.clone(), p.index))
            .collect();
        self.shared.wait_for(deadline, |s| ready(s, &exts)).await
    }

    /// Until the runtime (unless a stand-in answers) and every registered extension, external
    /// or internal, are parked on `next`.
    pub(super) async fn wait_ready(
        &self,
        deadline: Instant,
        during_init: bool,
    ) -> Option<Result<(), Stop>> {
        let runtime = self.runtime.as_ref().map(|p| p.index);
        let stand_in = self.run.stand_in;
        self.wait(deadline, |s, exts| {
            if let Some(stop) = stopped(s, runtime, exts, during_init) {
                return Some(Err(stop));
            }
            let extensions_parked = s.extensions.iter().all(|e| e.waiting > 0);
            ((stand_in || s.runtime_waiting > 0) && extensions_parked).then_some(Ok(()))
        })
        .await
    }

    /// Records an init failure; true when init may go on.
    fn check_init(&mut self, outcome: Option<Result<(), Stop>>, limit: Duration) -> bool {
        match outcome {
            Some(Ok(())) => true,
            None => {
                let message = format!(
                    "Init timed out after {:.2} seconds (the runtime and every extension must \
                     call next within the init timeout)",
                    limit.as_secs_f64()
                );
                self.fail("Sandbox.Timeout", message);
                false
            }
            Some(Err(stop)) => {
                self.stop(stop, None);
                false
            }
        }
    }

    /// Records an invoke-phase failure; `Some(reason)` means the environment is finished.
    pub(super) fn check_invoke(
        &mut self,
        outcome: Option<Result<(), Stop>>,
        request_id: Option<&str>,
        limit: Duration,
    ) -> Option<&'static str> {
        match outcome {
            Some(Ok(())) => None,
            None => {
                let message = format!("Task timed out after {:.2} seconds", limit.as_secs_f64());
                self.fail("Sandbox.Timeout", with_request(request_id, &message));
                Some("timeout")
            }
            Some(Err(stop)) => {
                self.stop(stop, request_id);
                Some("failure")
            }
        }
    }

    fn stop(&mut self, stop: Stop, request_id: Option<&str>) {
        match stop {
            Stop::InitError => {
                let init_error = self.shared.lock().init_error.clone();
                if let Some(init) = init_error {
                    let message = init.error_message.clone().unwrap_or_default();
                    self.fail(&init.error_type, message);
                    self.report.init_error = Some(init);
                }
            }
            Stop::RuntimeExited(exit) if self.memory.exceeded() => {
                // Lambda's words when the function outgrows its memory: the runtime is killed.
                let message = format!("Runtime exited with error: {exit}");
                self.fail("Runtime.OutOfMemory", with_request(request_id, &message));
            }
            Stop::RuntimeExited(exit) => {
                let message = if exit == "exit status 0" {
                    "Runtime exited without providing a reason".to_string()
                } else {
                    format!("Runtime exited with error: {exit}")
                };
                self.fail("Runtime.ExitError", with_request(request_id, &message));
            }
            Stop::ExtensionExited(name, exit) => {
                let message = format!("extension {name} exited: {exit}");
                self.fail("Extension.Crash", with_request(request_id, &message));
            }
        }
    }
}

/// Why the environment can no longer go on, if it can't: an init error (only while
/// `during_init`), the runtime's exit or an extension's exit.
pub(super) fn stopped(
    s: &State,
    runtime: Option<usize>,
    exts: &[(String, usize)],
    during_init: bool,
) -> Option<Stop> {
    if during_init && s.init_error.is_some() {
        return Some(Stop::InitError);
    }
    if let Some(status) = runtime.and_then(|i| s.exits[i]) {
        return Some(Stop::RuntimeExited(describe_exit(&status)));
    }
    exts.iter().find_map(|(name, index)| {
        s.exits[*index].map(|status| Stop::ExtensionExited(name.clone(), describe_exit(&status)))
    })
}

fn with_request(request_id: Option<&str>, message: &str) -> String {
    match request_id {
        Some(id) => format!("RequestId: {id} Error: {message}"),
        None => message.to_string(),
    }
}
