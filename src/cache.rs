//! `lambda-pack-cache/` under the target directory: what one run remembers for the next (where zig
//! is, cargo-zigbuild's setup per zig target, each workspace's first build command, the dependency lists
//! linked into binaries). The only owner of its
//! paths; every entry is a hint the next run checks, so writing one is best effort.

use std::path::{Path, PathBuf};

/// The cache's directory under a target directory.
const DIR: &str = "lambda-pack-cache";

/// The location of zig found by an earlier run.
pub fn zig_path(target_dir: &Path) -> PathBuf {
    target_dir.join(DIR).join("zig-path")
}

/// cargo-zigbuild's setup for each zig target.
pub fn zig_env(target_dir: &Path) -> PathBuf {
    target_dir.join(DIR).join("zig-env.json")
}

/// The first build command of the last run in the workspace at `workspace_root` (canonical),
/// started early by the next one there: one file per workspace, named by a hash of its root, so
/// that workspaces sharing a target directory keep their own.
pub fn early_build(target_dir: &Path, workspace_root: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(workspace_root.as_os_str().as_encoded_bytes());
    target_dir
        .join(DIR)
        .join("early-build")
        .join(format!("{}.json", &crate::files::hex(&digest)[..16]))
}

/// The dependency lists (cargo-auditable's JSON) the rustc wrapper links into a target's
/// binaries: `<triple>/<package>/<bin>.json`, `<triple>/<package>/lib.cdylib.json` for cdylibs.
pub fn auditable(target_dir: &Path, triple: &str) -> PathBuf {
    target_dir.join(DIR).join("auditable").join(triple)
}

/// cargo's dependency graph for one Rust target, with the inputs it was computed from.
pub fn dependency_graph(target_dir: &Path, triple: &str) -> PathBuf {
    target_dir
        .join(DIR)
        .join("dependency-graph")
        .join(format!("{triple}.json"))
}

/// Writes a cache entry whole (temp file then rename), leaving an identical one alone. A cache
/// that cannot be written only costs the next run the work again, so failure is ignored.
pub fn remember(path: &Path, bytes: &[u8]) {
    let _ = crate::files::write_atomic(path, bytes);
}
