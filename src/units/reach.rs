//! What a bin reaches, for role inference: the crates its package reaches through the
//! workspace's own libraries, and layers it attaches by ARN.

use std::collections::BTreeSet;

use crate::metadata::{LayerEntry, MetadataTable};
use crate::workspace::{Package, Workspace};

/// Why a bin that attaches a layer by ARN is a function.
pub(super) const ARN_LAYER_REASON: &str = "a binary that attaches a layer by ARN, which may answer the Runtime API for it (the Lambda Web Adapter does, for a web server)";

/// Whether the bin's own table (or its package's, when it is the package's only bin) attaches a
/// layer by ARN: such a bin is a function even when the binary never reads the Runtime API's
/// variable, since a layer published elsewhere may speak the API for it (the Lambda Web Adapter
/// runs a plain web server so). Workspace-wide layers say nothing of one bin.
pub(super) fn attaches_arn_layer(package: &Package, bin_table: &MetadataTable) -> bool {
    let has_arn = |table: &MetadataTable| {
        table
            .layers
            .iter()
            .flatten()
            .any(|entry| matches!(entry, LayerEntry::Arn(_)))
    };
    has_arn(bin_table) || (package.bins.len() == 1 && has_arn(&package.metadata.table))
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
