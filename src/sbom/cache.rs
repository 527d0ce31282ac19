//! The dependency graph of a target, remembered between runs. Loading it costs a `cargo
//! metadata` and a `cargo tree` per Rust target (each probing rustc), several times a no-op
//! `cargo build`; the graph changes only with `Cargo.lock`, a manifest of a path package, the
//! feature and cargo flags, the target or cargo itself, so it is kept in
//! `lambda-pack-cache/dependency-graph/<triple>.json` under a key of those, and reused while the
//! key holds. The manifests a graph depends on are listed in the record: they are only known once
//! cargo has resolved the graph.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::DependencyGraph;

/// Bumped when the record's shape or the graph's meaning changes.
const FORMAT: &str = "dependency-graph 1";

#[derive(Serialize, Deserialize)]
struct Record {
    key: String,
    /// Every file whose bytes the graph depends on: Cargo.lock and each path package's manifest.
    files: Vec<PathBuf>,
    graph: DependencyGraph,
}

/// What the graph depends on besides files: the target, the flags, cargo's identity, and the
/// variables that change which `cfg(...)` tables apply.
pub fn fixed_inputs(cargo: &Path, manifest_path: &Path, triple: &str, flags: &[String]) -> String {
    let mut text = format!(
        "{FORMAT}\n{}\n{triple}\n{}\n",
        env!("CARGO_PKG_VERSION"),
        manifest_path.display()
    );
    for flag in flags {
        text.push_str(flag);
        text.push('\n');
    }
    // `$CARGO` is the toolchain's cargo: an update changes its size or mtime.
    let cargo = which(cargo);
    let identity = std::fs::metadata(&cargo)
        .map(|m| format!("{} {:?}", m.len(), m.modified().ok()))
        .unwrap_or_default();
    text.push_str(&format!("{} {identity}\n", cargo.display()));
    for variable in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC",
        "CARGO_HOME",
    ] {
        let value = std::env::var_os(variable).unwrap_or_default();
        text.push_str(&format!("{variable}={}\n", value.to_string_lossy()));
    }
    text
}

/// `cargo` as a path: as given when it names a file, else found on PATH.
fn which(cargo: &Path) -> PathBuf {
    if cargo.components().count() > 1 {
        return cargo.to_path_buf();
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(cargo))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| cargo.to_path_buf())
}

fn key(fixed: &str, files: &[PathBuf]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(fixed.as_bytes());
    for file in files {
        hasher.update(file.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        match std::fs::read(file) {
            Ok(bytes) => {
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
            }
            Err(_) => hasher.update(b"missing"),
        }
    }
    crate::files::hex(&hasher.finalize())
}

/// The remembered graph, if nothing it depends on has changed.
pub fn lookup(cache_file: &Path, fixed: &str) -> Option<DependencyGraph> {
    let bytes = std::fs::read(cache_file).ok()?;
    let record: Record = serde_json::from_slice(&bytes).ok()?;
    (record.key == key(fixed, &record.files)).then_some(record.graph)
}

/// Remembers `graph`; best effort (a cache that cannot be written costs the next run the work).
pub fn store(cache_file: &Path, fixed: &str, files: Vec<PathBuf>, graph: &DependencyGraph) {
    let record = Record {
        key: key(fixed, &files),
        files,
        graph: graph.clone(),
    };
    if let Ok(json) = serde_json::to_vec(&record) {
        let _ = crate::files::write_atomic(cache_file, &json);
    }
}
