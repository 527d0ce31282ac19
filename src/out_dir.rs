//! Whether a directory is this tool's to write in: the one rule every writer asks before it writes,
//! replaces or removes anything (a pack's output directory, `merge`'s `--out-dir`, the base image
//! cache under `<target-dir>/lambda-pack-cache/oci`).
//!
//! An output directory is *ours* when it does not exist, is empty, or holds only what this tool
//! writes there, with the proof that this tool wrote it:
//! - `manifest.json` that this tool wrote ([`manifest_is_ours`]): its `generator` says
//!   `cargo-lambda-pack <version>`; a manifest written before that field existed is ours when it
//!   has `schema_version` 1 and every entry has the shape of one this tool writes;
//! - the lock files (`.lambda-pack.lock`, `.lambda-pack-deploy.lock`); without a manifest, the
//!   lock file is the proof (a run creates it before anything else, so a run stopped before its
//!   first manifest leaves it);
//! - the temporary names of an interrupted run (`.<name>.*.tmp`, `.<name>.old-*`);
//! - architecture directories (`x86_64/`, `arm64/`) holding artifacts: `<name>.zip` and
//!   `<name>.cdx.json` files, image contexts `<name>/` (with their `Dockerfile`) and OCI layouts
//!   `<name>.oci/` (with their `oci-layout`), and temporary names. An artifact the manifest does
//!   not list is accepted: a pack killed between renaming its artifacts and writing its manifest
//!   leaves such files, and the next run must be able to take the directory back.
//!
//! Nothing reached through a symlink is ours. Anything else is foreign, and the caller refuses
//! before writing anything, naming the directory and the first foreign entry. [`refuse_holding`]
//! adds the rule that a directory which is, or contains, something the run reads (the workspace,
//! a merge input) is never written either.
//!
//! Writing below a directory once it is ours never follows a link: that rule lives in
//! `files::create_dir_within`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::{GENERATOR_PREFIX, MANIFEST_FILE, Manifest};
use crate::target::Arch;

/// The lock file that serializes runs writing to one output directory.
pub const LOCK_FILE: &str = ".lambda-pack.lock";

/// The lock file that serializes deploys of one output directory.
pub const DEPLOY_LOCK_FILE: &str = ".lambda-pack-deploy.lock";

/// The first entry that makes a directory foreign, relative to it, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Foreign {
    pub entry: PathBuf,
    pub why: String,
}

/// Refuses, before anything is written, an output directory that is not this tool's.
/// `what` names it as the user gave it (`the output directory`, `--out-dir`).
pub fn claim_output(dir: &Path, what: &str) -> Result<()> {
    match foreign_output_entry(dir) {
        Ok(None) => Ok(()),
        Ok(Some(foreign)) => Err(refusal(dir, what, &foreign)),
        Err(err) => Err(Error::read(dir, &err)),
    }
}

/// Refuses the base image cache when it holds anything an OCI image layout filled by this tool
/// (or by `skopeo copy ... oci:<cache>`) would not.
pub fn claim_base_cache(dir: &Path) -> Result<()> {
    match foreign_cache_entry(dir) {
        Ok(None) => Ok(()),
        Ok(Some(foreign)) => Err(Error::config(format!(
            "the base image cache `{}` is not cargo-lambda-pack's to write: `{}` {}",
            dir.display(),
            foreign.entry.display(),
            foreign.why
        ))
        .with_help(format!(
            "delete `{}` (it is filled again from the registry), or pick another --target-dir; nothing was written",
            dir.display()
        ))),
        Err(err) => Err(Error::read(dir, &err)),
    }
}

/// Refuses `dir` when it is, or contains, one of `protected` (`(path, what it is)`): the
/// workspace root, a merge input. Paths that do not exist yet cannot be held.
pub fn refuse_holding(dir: &Path, what: &str, protected: &[(&Path, &str)]) -> Result<()> {
    let Ok(canonical) = dir.canonicalize() else {
        return Ok(());
    };
    for (path, name) in protected {
        let Ok(inner) = path.canonicalize() else {
            continue;
        };
        if inner.starts_with(&canonical) {
            let relation = if inner == canonical { "is" } else { "contains" };
            return Err(Error::config(format!(
                "{what} `{}` {relation} {name} `{}`: cargo-lambda-pack never writes over what it reads",
                dir.display(),
                path.display()
            ))
            .with_help("pick an empty or new directory outside it; nothing was written"));
        }
    }
    Ok(())
}

fn refusal(dir: &Path, what: &str, foreign: &Foreign) -> Error {
    Error::config(format!(
        "{what} `{}` is not cargo-lambda-pack's to write: `{}` {}",
        dir.display(),
        foreign.entry.display(),
        foreign.why
    ))
    .with_help(format!(
        "pick an empty or new directory (--out-dir), or move `{}` out of `{}`; nothing was written",
        foreign.entry.display(),
        dir.display()
    ))
}

/// Whether `bytes`, the `manifest.json` of a directory, was written by this tool: `Err` says why
/// not. Its `generator` names this tool; one without a `generator` (written before the field was
/// added) is taken for ours when it has `schema_version` 1 and only entries of the shape this tool
/// writes (`<arch>/<name>.zip`, `<arch>/<name>`).
pub fn manifest_is_ours(bytes: &[u8]) -> std::result::Result<(), String> {
    /// What decides: read without building the entries (a manifest may list 100,000).
    #[derive(serde::Deserialize)]
    struct Head {
        schema_version: u32,
        #[serde(default)]
        generator: Option<String>,
        #[allow(dead_code)]
        artifacts: serde::de::IgnoredAny,
    }
    let head: Head = serde_json::from_slice(bytes)
        .map_err(|err| format!("is not a manifest cargo-lambda-pack writes ({err})"))?;
    match head.generator.as_deref() {
        Some(generator) if generator.starts_with(GENERATOR_PREFIX) => Ok(()),
        Some(generator) => Err(format!(
            "was written by `{generator}`, not by cargo-lambda-pack"
        )),
        None if head.schema_version != 1 => Err(format!(
            "has no `generator` and schema_version {}, which no cargo-lambda-pack without `generator` wrote",
            head.schema_version
        )),
        None => {
            let manifest: Manifest = serde_json::from_slice(bytes)
                .map_err(|err| format!("is not a manifest cargo-lambda-pack writes ({err})"))?;
            match manifest
                .artifacts
                .iter()
                .find(|a| crate::manifest_paths::has_our_shape(a).is_err())
            {
                Some(odd) => Err(format!(
                    "has no `generator` and lists `{}` at `{}`, which cargo-lambda-pack does not write",
                    odd.name, odd.path
                )),
                None => Ok(()),
            }
        }
    }
}

/// A temporary name of an interrupted run: `.<name>.*.tmp` or `.<name>.old-*` (the shapes
/// `emit::remove_leftovers` cleans up), and the base cache's `.tmp.*` and `.download.*`.
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && (name.ends_with(".tmp") || name.contains(".old-"))
}

fn entries(dir: &Path) -> std::io::Result<Vec<(String, std::fs::Metadata)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // DirEntry::metadata does not follow a symlink. An entry gone since the listing was a
        // temporary of a run of ours still writing (the claim before the lock races with it).
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        found.push((entry.file_name().to_string_lossy().into_owned(), meta));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

fn foreign(entry: impl Into<PathBuf>, why: impl Into<String>) -> Option<Foreign> {
    Some(Foreign {
        entry: entry.into(),
        why: why.into(),
    })
}

const A_LINK: &str = "is a symlink, which a write could follow out of the directory";

/// The first entry of `dir` that this tool does not write there; `None` when `dir` is ours (or
/// missing, or not a directory: its writer reports that).
pub fn foreign_output_entry(dir: &Path) -> std::io::Result<Option<Foreign>> {
    if !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(None);
    }
    let found = entries(dir)?;
    let mut proven = false;
    for (name, meta) in &found {
        if name == MANIFEST_FILE {
            if !meta.is_file() {
                return Ok(foreign(name, "is not a regular file"));
            }
            if let Err(why) = manifest_is_ours(&std::fs::read(dir.join(name))?) {
                return Ok(foreign(name, why));
            }
            proven = true;
        } else if name == LOCK_FILE && meta.is_file() {
            proven = true;
        }
    }
    for (name, meta) in &found {
        if meta.file_type().is_symlink() {
            return Ok(foreign(name, A_LINK));
        }
        let ours = match name.as_str() {
            MANIFEST_FILE => true,
            LOCK_FILE | DEPLOY_LOCK_FILE => meta.is_file(),
            name if is_temporary(name) => true,
            name if Arch::ALL.iter().any(|a| a.lambda_name() == name) && meta.is_dir() => {
                if let Some(inner) = foreign_arch_entry(&dir.join(name))? {
                    return Ok(foreign(Path::new(name).join(inner.entry), inner.why));
                }
                true
            }
            _ => false,
        };
        if !ours {
            return Ok(foreign(
                name,
                "is not something cargo-lambda-pack writes there",
            ));
        }
        if !proven && !is_temporary(name) && name != DEPLOY_LOCK_FILE {
            return Ok(foreign(
                name,
                format!(
                    "is there, but the directory has neither a {MANIFEST_FILE} nor a {LOCK_FILE} of cargo-lambda-pack"
                ),
            ));
        }
    }
    Ok(None)
}

/// The first entry of an architecture directory that is not an artifact, an SBOM, an image
/// context or layout, or a temporary name.
fn foreign_arch_entry(dir: &Path) -> std::io::Result<Option<Foreign>> {
    for (name, meta) in entries(dir)? {
        if meta.file_type().is_symlink() {
            return Ok(foreign(name, A_LINK));
        }
        let is_file_in = |inner: &str| {
            std::fs::symlink_metadata(dir.join(&name).join(inner)).is_ok_and(|m| m.is_file())
        };
        // A directory renamed aside by a run of ours replacing it (`.<name>.old-*`) since the
        // listing is gone: not foreign.
        let gone = || std::fs::symlink_metadata(dir.join(&name)).is_err();
        let ours = if is_temporary(&name) {
            true
        } else if name.ends_with(".zip") || name.ends_with(".cdx.json") {
            meta.is_file()
        } else if name.ends_with(".oci") {
            meta.is_dir() && (is_file_in("oci-layout") || gone())
        } else {
            !name.starts_with('.') && meta.is_dir() && (is_file_in("Dockerfile") || gone())
        };
        if !ours {
            return Ok(foreign(
                name,
                "is not an artifact, SBOM, image context or OCI layout cargo-lambda-pack writes",
            ));
        }
    }
    Ok(None)
}

/// The first entry of the base image cache that an OCI image layout of blobs does not hold.
pub fn foreign_cache_entry(dir: &Path) -> std::io::Result<Option<Foreign>> {
    if !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(None);
    }
    for (name, meta) in entries(dir)? {
        if meta.file_type().is_symlink() {
            return Ok(foreign(name, A_LINK));
        }
        let ours = match name.as_str() {
            "oci-layout" | "index.json" | ".index.lock" => meta.is_file(),
            "blobs" | "sizes" if meta.is_dir() => {
                if let Some(inner) = foreign_blob_entry(&dir.join(&name), name == "blobs")? {
                    return Ok(foreign(Path::new(&name).join(inner.entry), inner.why));
                }
                true
            }
            name => name.starts_with(".tmp.") && meta.is_file(),
        };
        if !ours {
            return Ok(foreign(
                name,
                "is not part of the OCI image layout cargo-lambda-pack keeps there",
            ));
        }
    }
    Ok(None)
}

/// `blobs/` (holding `sha256/`) or `sizes/` and `blobs/sha256/`: regular files only.
fn foreign_blob_entry(dir: &Path, holds_algorithms: bool) -> std::io::Result<Option<Foreign>> {
    for (name, meta) in entries(dir)? {
        if meta.file_type().is_symlink() {
            return Ok(foreign(name, A_LINK));
        }
        if holds_algorithms && meta.is_dir() {
            if let Some(inner) = foreign_blob_entry(&dir.join(&name), false)? {
                return Ok(foreign(Path::new(&name).join(inner.entry), inner.why));
            }
        } else if !meta.is_file() {
            return Ok(foreign(name, "is not a blob file"));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
