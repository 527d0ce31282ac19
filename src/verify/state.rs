//! The state the API handlers and the lifecycle share, and the ids Lambda hands out.
//!
//! Long polls park on a `watch` channel: every change bumps it and each parked request or waiter
//! re-checks the state.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::report::{InitErrorReport, InvokeOutcome};
use super::telemetry::Telemetry;

/// What the APIs answer about the function.
pub(crate) struct ApiConfig {
    pub function_name: String,
    pub handler: String,
    pub arn: String,
    /// `--tenant-id`: sent as `Lambda-Runtime-Aws-Tenant-Id` with every invocation.
    pub tenant_id: Option<String>,
}

/// An event on its way to the runtime.
pub(crate) struct Invocation {
    pub request_id: String,
    pub deadline_ms: u64,
    pub trace_id: String,
    pub body: Bytes,
}

/// An invocation the runtime took (or a stand-in answered), answered or not. Kept after it
/// ends so that a second answer is refused as Lambda refuses it.
pub(crate) struct Current {
    pub request_id: String,
    pub outcome: Option<InvokeOutcome>,
    /// When the runtime's `/next` handed it the event: Lambda's invocation (and its duration)
    /// starts there, not when verify queued the event. With `--concurrency N` and a runtime that
    /// polls one event at a time, queued events must not look as if they ran at once.
    pub taken_at: Instant,
}

/// A registered extension.
pub(crate) struct Extension {
    pub name: String,
    /// Registered by the function's own process (any name but an external extension's file),
    /// not by a process started from `/opt/extensions`.
    pub internal: bool,
    pub id: String,
    pub events: Vec<String>,
    /// Parked `/event/next` requests.
    pub waiting: usize,
    pub queue: VecDeque<(String, Bytes)>,
    pub received: Vec<String>,
    pub errors: Vec<String>,
}

pub(crate) struct State {
    pub config: ApiConfig,
    /// Parked `/invocation/next` requests.
    pub runtime_waiting: usize,
    /// Events dispatched and not yet taken by a `/next` (one at a time without `--concurrency`).
    pub runtime_inbox: VecDeque<Invocation>,
    /// Every invocation the runtime took, in order; matched to answers by request id.
    pub taken: Vec<Current>,
    /// The external extensions' names (the files in `/opt/extensions`); any other name is an
    /// internal extension of the function's own process.
    pub allowed_extensions: Vec<String>,
    /// Init is over: Lambda accepts no more registrations.
    pub init_done: bool,
    pub extensions: Vec<Extension>,
    pub init_error: Option<InitErrorReport>,
    pub requests: u64,
    /// Exit status of each started process, by the lifecycle's index.
    pub exits: Vec<Option<ExitStatus>>,
    /// Logs and Telemetry API subscriptions and their buffers.
    pub telemetry: Telemetry,
}

impl State {
    pub fn extension(&self, name: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.name == name)
    }

    /// The taken invocation with this request id.
    pub fn taken(&self, request_id: &str) -> Option<&Current> {
        self.taken.iter().rev().find(|c| c.request_id == request_id)
    }

    pub fn taken_mut(&mut self, request_id: &str) -> Option<&mut Current> {
        self.taken
            .iter_mut()
            .rev()
            .find(|c| c.request_id == request_id)
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    /// The environment's own network, when it has one: telemetry subscribers listen there.
    pub network: std::sync::OnceLock<Arc<super::network::Network>>,
}

impl Shared {
    pub fn new(config: ApiConfig, allowed_extensions: Vec<String>) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                config,
                runtime_waiting: 0,
                runtime_inbox: VecDeque::new(),
                taken: Vec::new(),
                allowed_extensions,
                init_done: false,
                extensions: Vec::new(),
                init_error: None,
                requests: 0,
                exits: Vec::new(),
                telemetry: Telemetry::default(),
            }),
            changed: watch::channel(0).0,
            network: std::sync::OnceLock::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes the state and wakes every parked request and waiter.
    pub fn update<R>(&self, change: impl FnOnce(&mut State) -> R) -> R {
        let result = change(&mut self.lock());
        self.changed
            .send_modify(|version| *version = version.wrapping_add(1));
        result
    }

    /// Re-checks `ready` after every change until it yields, or `None` at the deadline.
    pub async fn wait_for<T>(
        &self,
        deadline: Instant,
        mut ready: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let mut changes = self.changed.subscribe();
        loop {
            changes.borrow_and_update();
            if let Some(value) = ready(&mut self.lock()) {
                return Some(value);
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return ready(&mut self.lock()),
            }
        }
    }
}

/// A random (version 4) UUID, as Lambda uses for request and extension ids.
pub(crate) fn uuid_v4() -> String {
    let mut bytes = random_bytes::<16>();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = crate::files::hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An X-Ray trace header like Lambda's: `Root=1-<epoch hex>-<96 bits>;Parent=<64 bits>;Sampled=0`.
pub(crate) fn trace_id(epoch_secs: u64) -> String {
    format!(
        "Root=1-{epoch_secs:08x}-{};Parent={};Sampled=0",
        crate::files::hex(&random_bytes::<12>()),
        crate::files::hex(&random_bytes::<8>())
    )
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // SAFETY: the pointer and length describe `bytes`, which outlives the call.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), N, 0) };
    if filled != N as isize {
        // Uniqueness, not secrecy, is what matters here.
        use std::hash::{BuildHasher, RandomState};
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let value = RandomState::new().hash_one(i).to_le_bytes();
            chunk.copy_from_slice(&value[..chunk.len()]);
        }
    }
    bytes
}

/// Takes a parked long poll off the count again when its connection goes away.
pub(super) struct Parked<'a> {
    pub(super) shared: &'a Shared,
    pub(super) extension: Option<String>,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.shared.update(|s| match &self.extension {
            None => s.runtime_waiting = s.runtime_waiting.saturating_sub(1),
            Some(id) => {
                if let Some(ext) = s.extensions.iter_mut().find(|e| &e.id == id) {
                    ext.waiting = ext.waiting.saturating_sub(1);
                }
            }
        });
    }
}
