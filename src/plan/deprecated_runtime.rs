//! The warning for artifacts packed for a runtime Lambda has deprecated: said while packing and
//! planning, so that nobody learns of the dates from a refused deploy.

use super::PlannedArtifact;
use crate::target::Runtime;

/// One warning per deprecated runtime that any artifact is packed for, naming the artifacts,
/// the dates of Lambda's schedule and the runtime to move to.
pub(super) fn deprecated_runtime_warnings(artifacts: &[PlannedArtifact]) -> Vec<String> {
    Runtime::ALL
        .into_iter()
        .filter_map(|runtime| {
            let deprecation = runtime.deprecation()?;
            let names: Vec<String> = artifacts
                .iter()
                .filter(|a| a.runtimes.contains(&runtime))
                .map(|a| format!("`{}` ({})", a.name, a.arch))
                .collect();
            (!names.is_empty()).then(|| {
                format!(
                    "{}: built for {runtime}, which Lambda deprecated on {}; it blocks creating \
                     functions on it from {} and updating them from {}; help: --runtime {}",
                    names.join(", "),
                    deprecation.deprecated,
                    deprecation.create_blocked,
                    deprecation.update_blocked,
                    Runtime::ProvidedAl2023,
                )
            })
        })
        .collect()
}
