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

/// What a bin's inferred role (no `role` key anywhere) rests on: a runtime crate reached (with
/// lambda-extension beside it, an in-process extension, settled), `layers` (a function's key: a
/// web server whose Runtime API client comes from a layer, such as the Lambda Web Adapter, never
/// reads the variable itself), or else the built binary (`Guessed`).
pub(super) fn infer_evidence(
    draft: &mut super::Draft,
    runtime_crate: bool,
    extension_crate: bool,
    named: bool,
) {
    draft.unit.role_evidence = if runtime_crate && extension_crate {
        super::RoleEvidence::Settled
    } else if runtime_crate {
        super::RoleEvidence::RuntimeCrate
    } else if !draft.attach.is_empty() {
        draft.unit.reasons[0] = format!(
            "function: a binary that attaches {} (`layers`), with no role set and no Lambda crate among its dependencies: its Runtime API client may come from a layer",
            draft.attach.join(", ")
        );
        super::RoleEvidence::Settled
    } else {
        super::RoleEvidence::Guessed { named }
    };
}
