//! Each artifact's SBOM: the crates its unit ships (its package's part of cargo's resolve for its
//! target) and, for a generated libs layer, the libraries it bundles.

use super::{PlanInputs, PlannedSbom, UnitFacts};
use crate::sbom::cyclonedx::{Contents, Library};

/// The SBOM of `facts`' artifact, at `<arch>/<name>.cdx.json`; none when nothing is known of
/// what it contains (no resolve for its target and no bundled library).
pub(super) fn plan_sbom(facts: &UnitFacts, inputs: &PlanInputs) -> Option<PlannedSbom> {
    let unit = &facts.unit;
    let compiled = !facts.binaries.is_empty() || !facts.cdylibs.is_empty();
    let crates = compiled
        .then(|| inputs.dependencies.get(&facts.target.triple()))
        .flatten()
        .and_then(|graph| graph.member_closure(&unit.package));
    let libraries: Vec<Library> = facts
        .libraries
        .iter()
        .filter_map(|library| {
            let origin = inputs.library_origins.get(&library.path)?;
            Some(Library {
                soname: library.name.clone(),
                sha256: origin.sha256.clone(),
                deb: origin.deb.clone(),
            })
        })
        .collect();
    if crates.is_none() && libraries.is_empty() {
        return None;
    }
    let contents = Contents {
        artifact: unit.name.clone(),
        version: unit.version.clone(),
        crates,
        libraries,
    };
    Some(PlannedSbom {
        path: format!("{}/{}.cdx.json", facts.arch, unit.name),
        components: contents.component_count(),
        contents,
        source_date_epoch: inputs.source_date_epoch,
    })
}
