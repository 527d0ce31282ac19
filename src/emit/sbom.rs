//! Writing an artifact's SBOM beside it: rendered from the plan's contents, staged under a
//! temporary name like the artifact, left alone when the file in place has the same bytes.

use std::io::Write;
use std::path::Path;

use super::Pending;
use crate::error::{Error, Result};
use crate::files::created_file_mode;
use crate::plan::PlannedSbom;

/// Stages `sbom` under `out_dir`; `None` when the file in place already holds these bytes.
pub fn stage(sbom: &PlannedSbom, out_dir: &Path) -> Result<Option<Pending>> {
    let text = crate::sbom::cyclonedx::render(
        &sbom.contents,
        sbom.source_date_epoch,
        crate::image::config::rfc3339,
    );
    let dest = out_dir.join(&sbom.path);
    if std::fs::read(&dest).ok().as_deref() == Some(text.as_bytes()) {
        return Ok(None);
    }
    let parent = dest.parent().unwrap_or(out_dir).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, &e))?;
    let stem = dest
        .file_name()
        .map_or_else(|| "sbom".into(), |n| n.to_string_lossy());
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{stem}."))
        .suffix(".tmp")
        .permissions(created_file_mode())
        .tempfile_in(&parent)
        .map_err(|e| Error::write(&parent, &e))?;
    temp.write_all(text.as_bytes())
        .map_err(|e| Error::write(&dest, &e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::write(&dest, &e))?;
    Ok(Some(Pending::File { temp, dest }))
}
