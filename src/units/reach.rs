//! The crates a package reaches through the workspace's own libraries, for role inference.

use std::collections::BTreeSet;

use crate::workspace::{Package, Workspace};

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
