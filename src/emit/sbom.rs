//! Writing an artifact's SBOM beside it: rendered from the plan's contents, staged under a
//! temporary name like the artifact, left alone when the file in place has the same bytes.

use std::path::Path;

use super::Pending;
use crate::error::Result;
use crate::plan::PlannedSbom;

/// Stages `sbom` under `out_dir`; `None` when the file in place already holds these bytes.
pub fn stage(sbom: &PlannedSbom, out_dir: &Path) -> Result<Option<Pending>> {
    let text = crate::sbom::cyclonedx::render(
        &sbom.contents,
        sbom.source_date_epoch,
        crate::image::config::rfc3339,
    );
    let dest = out_dir.join(&sbom.path);
    if let Some(parent) = dest.parent() {
        crate::files::create_dir_within(out_dir, parent)?;
    }
    Ok(crate::files::stage(&dest, text.as_bytes())?.map(|temp| Pending::File { temp, dest }))
}
