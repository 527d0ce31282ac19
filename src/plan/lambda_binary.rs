//! Whether a bin is a Lambda binary at all, decided from the binary when no setting or
//! dependency says (`units::RoleEvidence::Guessed`). Every Lambda function, custom runtime and
//! extension reads `AWS_LAMBDA_RUNTIME_API` to find its API, so a bin without that string (a
//! local development server beside the Lambda one, a migration tool) is not one: it is left out
//! with a warning saying how to pack it anyway, or, when `--bin` named it, it gets the
//! `not-lambda-binary` finding, which stops the pack unless allowed.

use super::*;
use crate::inspect::codes::NOT_LAMBDA_BINARY;
use crate::inspect::{EXTENSION_NAME_HEADER, RUNTIME_API_VARIABLE};
use crate::units::RoleEvidence;

/// A bin whose role was guessed and whose binary never reads the Runtime API's variable.
fn not_lambda(facts: &UnitFacts) -> bool {
    matches!(facts.unit.role_evidence, RoleEvidence::Guessed { .. })
        && !facts.binaries.is_empty()
        && facts.binaries.iter().all(|b| !b.facts.runtime_api)
}

/// The units to plan: those that were selected by default and are not Lambda binaries are left
/// out, each with a warning.
pub(super) fn leave_out_non_lambda(
    units: &[UnitFacts],
    warnings: &mut Vec<String>,
) -> Vec<UnitFacts> {
    let mut kept = Vec::with_capacity(units.len());
    for facts in units {
        if not_lambda(facts) && facts.unit.role_evidence == (RoleEvidence::Guessed { named: false })
        {
            warnings.push(format!(
                "bin `{}` of package `{}` ({}) is skipped: it is not a Lambda binary ({}); pack it anyway with role = \"function\" in [package.metadata.lambda-pack.bin.{}]",
                facts.unit.bins[0],
                facts.unit.package,
                facts.arch,
                why(),
                facts.unit.bins[0],
            ));
        } else {
            kept.push(facts.clone());
        }
    }
    kept
}

/// A bin packed as a function by inference (no `role`; lambda_runtime or lambda_http reached, or
/// no Lambda crate at all) whose binary registers with the Extensions API, as an external
/// extension does: the Lambda Web Adapter runs lambda_http from `/opt/extensions`, a Runtime API
/// proxy uses no Lambda crate. A warning, once per bin, saying how to pack it as one.
pub(super) fn warn_of_extensions_packed_as_functions(
    units: &[UnitFacts],
    warnings: &mut Vec<String>,
) {
    let mut warned = BTreeSet::new();
    for facts in units {
        let inferred = matches!(
            facts.unit.role_evidence,
            RoleEvidence::RuntimeCrate | RoleEvidence::Guessed { .. }
        );
        if facts.unit.role != Role::Function
            || !inferred
            || !facts.binaries.iter().any(|b| b.facts.extension_api)
            || !warned.insert(facts.unit.name.clone())
        {
            continue;
        }
        let bin = &facts.unit.bins[0];
        warnings.push(format!(
            "bin `{bin}` of package `{}` is packed as a function, but its binary registers with the Extensions API (it sends `{EXTENSION_NAME_HEADER}`), as an external extension does; if it runs from /opt/extensions, set role = \"extension\" in [package.metadata.lambda-pack.bin.{bin}] (role = \"function\" there keeps it a function, without this warning)",
            facts.unit.package,
        ));
    }
}

/// The finding of a bin named with `--bin` that is not a Lambda binary.
pub(super) fn finding(facts: &UnitFacts) -> Option<PlannedFinding> {
    if !not_lambda(facts) {
        return None;
    }
    Some(PlannedFinding {
        entry: BOOTSTRAP.into(),
        allowed: facts.unit.allow.iter().any(|a| a == NOT_LAMBDA_BINARY),
        finding: Finding {
            code: NOT_LAMBDA_BINARY,
            severity: Severity::Error,
            message: format!(
                "bin `{}` of package `{}` is not a Lambda binary: {}",
                facts.unit.bins[0],
                facts.unit.package,
                why()
            ),
            lambda_error: None,
            help: format!(
                "build it on a Lambda runtime client (lambda_runtime, lambda_http), or set role = \"function\" in [package.metadata.lambda-pack.bin.{}] (or --allow {NOT_LAMBDA_BINARY}) if it speaks the Runtime API another way",
                facts.unit.bins[0]
            ),
            soname: None,
        },
    })
}

fn why() -> String {
    format!(
        "it never reads {RUNTIME_API_VARIABLE}, which every Lambda runtime client and extension reads, and its package reaches neither lambda_runtime nor lambda_http"
    )
}
