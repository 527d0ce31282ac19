//! `base_image = "scratch"` has no loader and no shared libraries: every dynamically linked file
//! of an image built on it is an error finding (`dynamic-on-scratch`), so `plan` shows it and a
//! pack stops before writing anything. With `--compiler auto` such a function is built static
//! (musl) in the first place (`commands::pack`'s choice of targets), and its plan says so.

use std::path::Path;

use super::*;
use crate::inspect::BinaryFacts;
use crate::inspect::codes::DYNAMIC_ON_SCRATCH;

/// The base image reference that builds an image from nothing.
pub(super) const SCRATCH: &str = "scratch";

/// Adds a finding for each executable entry of an image on scratch whose ELF facts say it is
/// dynamically linked: the function's bootstrap, its attached extensions and layer programs,
/// and bundled or built shared objects.
pub(super) fn scratch_findings(inputs: &PlanInputs, artifacts: &mut [PlannedArtifact]) {
    let facts: BTreeMap<&Path, &BinaryFacts> = inputs
        .units
        .iter()
        .flat_map(|unit| {
            unit.binaries
                .iter()
                .chain(&unit.cdylibs)
                .chain(&unit.libraries)
        })
        .map(|input| (input.path.as_path(), &input.facts))
        .collect();
    for artifact in artifacts
        .iter_mut()
        .filter(|a| a.format == Format::Image && a.base_image.as_deref() == Some(SCRATCH))
    {
        if artifact.target.ends_with("-musl") {
            artifact.reasons.push(format!(
                "built static ({}): base_image = \"scratch\" has no loader or shared libraries",
                artifact.target
            ));
        }
        let allow = inputs
            .units
            .iter()
            .find(|u| u.unit.name == artifact.name && u.arch == artifact.arch)
            .map(|u| u.unit.allow.clone())
            .unwrap_or_default();
        let mut found = Vec::new();
        for entry in &artifact.entries {
            let Some(binary) = entry.source.as_deref().and_then(|s| facts.get(s)) else {
                continue;
            };
            if entry.mode & 0o111 == 0 || binary.linkage != crate::inspect::Linkage::Dynamic {
                continue;
            }
            let needs: Vec<&str> = binary
                .interpreter
                .iter()
                .chain(&binary.needed)
                .map(String::as_str)
                .collect();
            found.push(PlannedFinding {
                entry: entry.path.clone(),
                allowed: allow.iter().any(|a| a == DYNAMIC_ON_SCRATCH),
                finding: Finding {
                    code: DYNAMIC_ON_SCRATCH,
                    severity: Severity::Error,
                    message: format!(
                        "is dynamically linked (needs {}), but the image is built on base_image = \"scratch\", which has no loader or shared libraries",
                        needs.join(", ")
                    ),
                    lambda_error: None,
                    help: "build it statically (a musl target, e.g. --target x86_64-unknown-linux-musl), or set base_image to an image with a glibc".into(),
                    soname: None,
                },
            });
        }
        artifact.findings.extend(found);
    }
}
