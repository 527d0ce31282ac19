//! The pack's one transaction: carry out a plan in an output directory. The steps and their order
//! live here, not in the caller: stage every artifact under a temporary name, build the merged
//! manifest, commit the artifacts, write the manifest, then remove what became stale.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Emitted, commit, emit};
use crate::error::Result;
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
/// screened as safe (`manifest_paths::screen`); `on_done` is told as each artifact is written.
pub fn carry_out(
    plan: &Plan,
    out_dir: &Path,
    trusted: &[ManifestArtifact],
    workspace_root: &Path,
    on_done: impl Fn(&PlannedArtifact, &Emitted) + Sync,
) -> Result<CarriedOut> {
    let manifest_path = out_dir.join(MANIFEST_FILE);
    let previous: BTreeMap<String, PreviousZip> = Manifest::previous_zips(trusted);
    let staged = emit(plan, out_dir, &previous, on_done)?;
    let manifest = super::manifest(plan, &staged.emitted, workspace_root);
    let stale: Vec<&ManifestArtifact> = trusted
        .iter()
        .filter(|a| plan.stale.contains(&a.path))
        .collect();
    // Entries this run neither wrote nor removed (other packages, architectures or workspaces)
    // stay listed while their artifact is still there.
    let kept: Vec<ManifestArtifact> = trusted
        .iter()
        .filter(|a| !plan.stale.contains(&a.path))
        .filter(|a| {
            matches!(
                manifest_paths::removable(out_dir, a),
                Ok(Removable::File(_) | Removable::Context(_))
            )
        })
        .cloned()
        .collect();
    let merged_json = manifest.merged_with(kept).to_json();
    // Everything is written and the manifest is ready; now swap it all in, then the manifest
    // that describes it, with as little as possible in between (a kill there leaves a manifest
    // describing the previous version of a replaced artifact).
    commit(staged.pending)?;
    crate::files::write_atomic(&manifest_path, merged_json.as_bytes())?;
    let cleaned = manifest_paths::remove_stale(out_dir, &manifest_path, &stale)?;
    Ok(CarriedOut {
        manifest,
        merged_json,
        cleaned,
    })
}
