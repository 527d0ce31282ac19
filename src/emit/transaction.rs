//! The pack's one transaction: carry out a plan in an output directory. The steps and their order
//! live here, not in the caller: stage every artifact under a temporary name, build the merged
//! manifest, commit the artifacts, write the manifest, then remove what became stale.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use super::{Emitted, Pending, Unbuilt, commit, emit, remove_empty_dirs};
use crate::error::{Error, Result};
use crate::image::ImageOptions;
use crate::manifest::{MANIFEST_FILE, Manifest, ManifestArtifact, PreviousZip};
use crate::manifest_paths::{self, Cleaned, Removable};
use crate::plan::{Plan, PlannedArtifact};

/// What carrying out a plan did.
#[derive(Debug)]
pub struct CarriedOut {
    /// The entries this run wrote, in the plan's order.
    pub manifest: Manifest,
    /// `manifest.json`'s bytes as written: this run's entries and the previous run's that stay.
    pub merged_json: String,
    /// Stale artifacts removed, or refused on disk, in the plan's order.
    pub cleaned: Vec<Cleaned>,
}

/// Carries out `plan` in `out_dir`. `trusted` are the previous manifest's entries whose paths were
/// screened as safe (`manifest_paths::screen`); `on_done` is told as each artifact is written;
/// `before_commit` may still refuse the staged artifacts (and record what it did in the manifest).
pub fn carry_out(
    plan: &Plan,
    out_dir: &Path,
    trusted: &[ManifestArtifact],
    workspace_root: &Path,
    images: &ImageOptions,
    on_done: impl Fn(&PlannedArtifact, &Emitted) + Sync,
    before_commit: impl FnOnce(&[Pending], &mut Manifest) -> Result<()>,
) -> Result<CarriedOut> {
    let previous: BTreeMap<String, PreviousZip> = Manifest::previous_zips(trusted);
    let mut staged = emit(plan, out_dir, &previous, images, on_done)?;
    let new_dirs = std::mem::take(&mut staged.new_dirs);
    let result = if staged.unbuilt.is_empty() {
        finish(
            plan,
            out_dir,
            trusted,
            workspace_root,
            staged,
            before_commit,
        )
    } else {
        let unbuilt = std::mem::take(&mut staged.unbuilt);
        // The other artifacts' temporaries go before the contexts are committed.
        drop(staged);
        Err(commit_contexts_only(out_dir, trusted, unbuilt))
    };
    // Every temporary is gone by now (dropped with what was staged): a directory this run
    // created and left empty goes too.
    if result.is_err() {
        remove_empty_dirs(&new_dirs);
    }
    result
}

/// Builds the manifest from what was staged, commits it all, writes the manifest and removes
/// what became stale.
fn finish(
    plan: &Plan,
    out_dir: &Path,
    trusted: &[ManifestArtifact],
    workspace_root: &Path,
    staged: super::Staged,
    before_commit: impl FnOnce(&[Pending], &mut Manifest) -> Result<()>,
) -> Result<CarriedOut> {
    let manifest_path = out_dir.join(MANIFEST_FILE);
    let mut manifest = super::manifest(plan, &staged.emitted, workspace_root);
    // Work on the staged artifacts that must succeed before any of them is committed (pushing
    // images: a failed push leaves the output directory as it was).
    before_commit(&staged.pending, &mut manifest)?;
    // A set: a previous manifest may list a hundred thousand entries, most of them stale.
    let stale_paths: HashSet<&str> = plan.stale.iter().map(String::as_str).collect();
    let stale: Vec<&ManifestArtifact> = trusted
        .iter()
        .filter(|a| stale_paths.contains(a.path.as_str()))
        .collect();
    // Entries this run neither wrote nor removed (other packages, architectures or workspaces)
    // stay listed while their artifact is still there.
    let kept: Vec<ManifestArtifact> = trusted
        .iter()
        .filter(|a| !stale_paths.contains(a.path.as_str()))
        .filter(|a| {
            matches!(
                manifest_paths::removable(out_dir, a),
                Ok(Removable::File(_) | Removable::Context(_))
            )
        })
        .cloned()
        .collect();
    let merged = manifest.merged_with(kept);
    let merged_json = merged.to_json();
    // Artifacts are renamed into place one by one. A kill between two renames must not leave a
    // manifest whose hash describes a file's previous version, so while they happen the
    // manifest lists only entries whose files the renames do not touch; the full manifest
    // follows the last rename. Every listed file matches its hash at every moment.
    let replaced: BTreeSet<&Path> = staged.pending.iter().map(Pending::dest).collect();
    if !replaced.is_empty() && manifest_path.exists() {
        let untouched = Manifest {
            schema_version: merged.schema_version,
            generator: merged.generator.clone(),
            artifacts: merged
                .artifacts
                .iter()
                .filter(|a| !replaced.contains(out_dir.join(&a.path).as_path()))
                .cloned()
                .collect(),
        };
        crate::files::write_atomic(&manifest_path, untouched.to_json().as_bytes())?;
    }
    commit(staged.pending)?;
    crate::files::write_atomic(&manifest_path, merged_json.as_bytes())?;
    let cleaned = manifest_paths::remove_stale(out_dir, &manifest_path, &stale)?;
    Ok(CarriedOut {
        manifest,
        merged_json,
        cleaned,
    })
}

/// Some image's base image could not be resolved, so the run fails. Its build context needs no
/// base, so it is committed all the same, and the error says where it is and how to build it.
/// Nothing else is: no OCI layout, no other artifact, no new manifest entry, nothing removed.
/// A previous manifest entry describing a context replaced here is dropped from the manifest
/// (written first, so every listed file matches its hash at every moment).
fn commit_contexts_only(
    out_dir: &Path,
    trusted: &[ManifestArtifact],
    unbuilt: Vec<Unbuilt>,
) -> Error {
    let manifest_path = out_dir.join(MANIFEST_FILE);
    let mut contexts = Vec::new();
    let mut notes = Vec::new();
    let mut first_error = None;
    for item in unbuilt {
        notes.push(format!(
            "the Docker build context of `{}` ({}) is written all the same, at `{}`: build it where the base can be pulled, with `docker build --platform {platform} --provenance=false -t {name} {dir}` or `buildah bud --platform {platform} -t {name} {dir}` (no OCI image or manifest entry was written for it)",
            item.name,
            item.arch,
            item.context_dir.display(),
            platform = item.arch.docker_platform(),
            name = item.name,
            dir = item.context_dir.display(),
        ));
        contexts.extend(item.context);
        first_error.get_or_insert(item.error);
    }
    let mut error = first_error.expect("called with at least one unbuilt image");
    let replaced: BTreeSet<&Path> = contexts.iter().map(Pending::dest).collect();
    let listed: Vec<ManifestArtifact> = trusted
        .iter()
        .filter(|a| !replaced.contains(out_dir.join(&a.path).as_path()))
        .cloned()
        .collect();
    let written = (|| {
        if listed.len() != trusted.len() && manifest_path.exists() {
            let manifest = Manifest {
                schema_version: crate::manifest::SCHEMA_VERSION,
                generator: Some(crate::manifest::GENERATOR.to_string()),
                artifacts: listed,
            };
            crate::files::write_atomic(&manifest_path, manifest.to_json().as_bytes())?;
        }
        commit(contexts)
    })();
    if let Err(failed) = written {
        return failed;
    }
    error.notes.extend(notes);
    error
}
