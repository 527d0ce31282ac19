//! What a bin reaches, for role inference: the crates its package reaches through the
//! workspace's own libraries, and the layers it attaches.

use std::collections::BTreeSet;

use crate::metadata::MetadataTable;
use crate::workspace::{Package, Workspace};

/// Why a bin with no Lambda crate that attaches layers is a function.
pub(super) const LAYERS_REASON: &str = "a binary that attaches layers (`layers`), with no Lambda crate among its dependencies: its Runtime API client may come from a layer (the Lambda Web Adapter's extension speaks it for a web server)";

/// Whether the bin's own table (or its package's, when it is the package's only bin) sets
/// `layers`, a function's key: such a bin is a function even when the binary never reads the
/// Runtime API's variable, since a layer may speak the API for it (the Lambda Web Adapter runs a
/// plain web server so). Workspace-wide layers (cargo-lambda's) say nothing of one bin, and a
/// package's say nothing of which of its bins is the function.
pub(super) fn attaches_layers(package: &Package, bin_table: &MetadataTable) -> bool {
    let has_layers = |table: &MetadataTable| table.layers.as_ref().is_some_and(|l| !l.is_empty());
    has_layers(bin_table) || (package.bins.len() == 1 && has_layers(&package.metadata.table))
}

/// Every crate `package` depends on directly or through the workspace's own libraries (path
/// members), so a function that reaches lambda_http through a library of its workspace is seen
/// as one. Crates reached through registry crates (wrappers) are not seen here: for those the
/// built binary decides ([`super::RoleEvidence::Guessed`]).
pub(super) fn reached_crates<'a>(
    workspace: &'a Workspace,
    package: &'a Package,
) -> BTreeSet<&'a str> {
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut queue: Vec<&Package> = vec![package];
    let mut visited: BTreeSet<&str> = BTreeSet::new();
    while let Some(current) = queue.pop() {
        if !visited.insert(current.name.as_str()) {
            continue;
        }
        for dependency in &current.dependencies {
            reached.insert(dependency.as_str());
            if let Some(member) = workspace.package(dependency) {
                queue.push(member);
            }
        }
    }
    reached
}

/// What a bin's inferred role (no `role` key anywhere) rests on: a runtime crate reached (with
/// lambda-extension beside it, an in-process extension, settled), `layers` ([`attaches_layers`]),
/// or else the built binary (`Guessed`).
pub(super) fn infer_evidence(
    runtime_crate: bool,
    extension_crate: bool,
    layers: bool,
    named: bool,
) -> super::RoleEvidence {
    if runtime_crate && extension_crate {
        super::RoleEvidence::Settled
    } else if runtime_crate {
        super::RoleEvidence::RuntimeCrate
    } else if layers {
        super::RoleEvidence::Settled
    } else {
        super::RoleEvidence::Guessed { named }
    }
}
