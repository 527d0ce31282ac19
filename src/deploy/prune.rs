//! `deploy --prune` and `--prune-layers`: what this workspace made that its manifest no longer
//! lists, found in the account and deleted — never anything without this workspace's ownership.
//!
//! A function is this workspace's when its tag `lambda-pack:workspace` is this workspace's id
//! (`settings::workspace_id`); an untagged function, or one of another workspace, is never a
//! candidate, whatever its name. Deleting a function deletes its versions, aliases and Function
//! URL with it. A layer version is this workspace's when its description ends with
//! `lambda-pack:workspace=<id>` (layers cannot be tagged); it is deleted only with
//! `--prune-layers`, and only when no version of any function in the account (as read before
//! this run's changes) and no function of this run attaches it — so a version a deploy has just
//! stopped using goes on the next run.

use std::collections::BTreeSet;

use super::aws::{Aws, api_error};
use super::desired::Desired;
use super::plan::{Deletion, DeletionKind};
use super::settings::{OWNER_TAG, layer_is_ours};
use crate::error::Result;
use crate::output::Shell;

/// Every deletion `--prune` (and `--prune-layers`) makes, in a stable order: functions by name,
/// then layer versions by name and number.
pub async fn find(
    aws: &Aws,
    desired: &Desired,
    layers_too: bool,
    attached_now: &BTreeSet<String>,
) -> Result<Vec<Deletion>> {
    let mut deletions = Vec::new();
    let mut functions = Vec::new();
    let mut marker = None;
    loop {
        let page = aws
            .lambda
            .list_functions()
            .set_marker(marker)
            .send()
            .await
            .map_err(|err| api_error("ListFunctions", &aws.region, err))?;
        for config in page.functions() {
            functions.push((
                config.function_name().unwrap_or_default().to_string(),
                config.function_arn().unwrap_or_default().to_string(),
            ));
        }
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    functions.sort();
    for (name, arn) in &functions {
        if desired.all_function_names.contains(name) {
            continue;
        }
        let tags = aws
            .lambda
            .list_tags()
            .resource(arn)
            .send()
            .await
            .map_err(|err| api_error("ListTags", name, err))?;
        let owner = tags.tags().and_then(|t| t.get(OWNER_TAG));
        if owner.map(String::as_str) == Some(desired.workspace_id.as_str()) {
            deletions.push(Deletion {
                kind: DeletionKind::Function,
                name: name.clone(),
                version: None,
                arn: arn.clone(),
                reason: format!(
                    "tagged {OWNER_TAG}={} and no longer in the manifest",
                    desired.workspace_id
                ),
            });
        }
    }
    if layers_too {
        let attached = attached_layers(aws, &functions, attached_now).await?;
        deletions.extend(unused_layer_versions(aws, desired, &attached).await?);
    }
    Ok(deletions)
}

/// The layer version ARNs that some version of some function attaches, and those of this run.
async fn attached_layers(
    aws: &Aws,
    functions: &[(String, String)],
    attached_now: &BTreeSet<String>,
) -> Result<BTreeSet<String>> {
    let mut attached = attached_now.clone();
    for (name, _) in functions {
        let mut marker = None;
        loop {
            let page = aws
                .lambda
                .list_versions_by_function()
                .function_name(name)
                .set_marker(marker)
                .send()
                .await
                .map_err(|err| api_error("ListVersionsByFunction", name, err))?;
            for version in page.versions() {
                attached.extend(
                    version
                        .layers()
                        .iter()
                        .filter_map(|l| l.arn().map(str::to_string)),
                );
            }
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
    }
    Ok(attached)
}

async fn unused_layer_versions(
    aws: &Aws,
    desired: &Desired,
    attached: &BTreeSet<String>,
) -> Result<Vec<Deletion>> {
    let mut names = Vec::new();
    let mut marker = None;
    loop {
        let page = aws
            .lambda
            .list_layers()
            .set_marker(marker)
            .send()
            .await
            .map_err(|err| api_error("ListLayers", &aws.region, err))?;
        names.extend(
            page.layers()
                .iter()
                .filter_map(|l| l.layer_name().map(str::to_string)),
        );
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    names.sort();
    let mut deletions = Vec::new();
    for name in names {
        let mut versions = Vec::new();
        let mut marker = None;
        loop {
            let page = aws
                .lambda
                .list_layer_versions()
                .layer_name(&name)
                .set_marker(marker)
                .send()
                .await
                .map_err(|err| api_error("ListLayerVersions", &name, err))?;
            for version in page.layer_versions() {
                versions.push((
                    version.version(),
                    version.layer_version_arn().unwrap_or_default().to_string(),
                    version.description().unwrap_or_default().to_string(),
                ));
            }
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        versions.sort();
        for (version, arn, description) in versions {
            if layer_is_ours(&description, &desired.workspace_id) && !attached.contains(&arn) {
                deletions.push(Deletion {
                    kind: DeletionKind::LayerVersion,
                    name: name.clone(),
                    version: Some(version),
                    arn,
                    reason: format!(
                        "published by this workspace ({OWNER_TAG}={}) and attached by no function",
                        desired.workspace_id
                    ),
                });
            }
        }
    }
    Ok(deletions)
}

/// Deletes each of `deletions`, saying each on stderr; `done` gets each ARN as it goes.
pub async fn delete(
    aws: &Aws,
    deletions: &[Deletion],
    shell: &Shell,
    done: &mut Vec<Deletion>,
) -> Result<()> {
    for deletion in deletions {
        match deletion.kind {
            DeletionKind::Function => {
                shell.status(
                    "Deleting",
                    format!("function {} ({})", deletion.name, deletion.reason),
                );
                match aws
                    .lambda
                    .delete_function()
                    .function_name(&deletion.name)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    // Deleted meanwhile (another run's prune): what was wanted.
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_resource_not_found_exception()) => {}
                    Err(err) => return Err(api_error("DeleteFunction", &deletion.name, err)),
                }
            }
            DeletionKind::LayerVersion => {
                shell.status(
                    "Deleting",
                    format!("layer version {} ({})", deletion.arn, deletion.reason),
                );
                aws.lambda
                    .delete_layer_version()
                    .layer_name(&deletion.name)
                    .version_number(deletion.version.unwrap_or_default())
                    .send()
                    .await
                    .map_err(|err| api_error("DeleteLayerVersion", &deletion.arn, err))?;
            }
        }
        done.push(deletion.clone());
    }
    Ok(())
}
