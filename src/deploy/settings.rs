//! The function settings Lambda added beside code, memory and timeout — tags, ephemeral storage,
//! Managed Instances' capacity provider, tenant isolation — wanted and found, and how they
//! differ; and the ownership tag that tells this workspace's functions from everyone else's.
//!
//! Ownership: every function this tool creates or updates carries
//! `lambda-pack:workspace = <workspace id>`, and `lambda-pack:tags` lists (space-separated) the
//! metadata's tag keys it set, so that a key removed from the metadata is untagged while tags
//! that others set are left alone. Layer versions cannot be tagged; their description carries
//! the same `lambda-pack:workspace=<id>` (see [`layer_description`]).

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_lambda::types as lambda;

/// The ownership tag's key.
pub const OWNER_TAG: &str = "lambda-pack:workspace";
/// The tag listing the metadata's tag keys this tool set.
pub const TAG_KEYS_TAG: &str = "lambda-pack:tags";

/// Managed Instances: `capacity_provider`, `max_concurrency`, `memory_per_vcpu`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub arn: String,
    pub max_concurrency: Option<u64>,
    /// GiB per vCPU, in thousandths.
    pub memory_per_vcpu_milli: Option<u64>,
}

/// What this tool sets of a function besides its code, memory, timeout and environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionSettings {
    /// Every tag the function is to carry: the metadata's, then [`OWNER_TAG`] and
    /// [`TAG_KEYS_TAG`].
    pub tags: BTreeMap<String, String>,
    pub ephemeral_storage: Option<u64>,
    pub capacity: Option<Capacity>,
    pub per_tenant: bool,
    /// `function_url`, when the function is to have one.
    pub url: Option<super::url::UrlWanted>,
}

/// The same settings as GetFunction reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedSettings {
    pub tags: BTreeMap<String, String>,
    pub ephemeral_storage: Option<i32>,
    pub capacity: Option<Capacity>,
    pub per_tenant: bool,
    /// The Function URL (read when one is wanted or this tool made one).
    pub url: Option<super::url::UrlFound>,
}

/// A stable id of the workspace: the name of its root directory (the repository's name in a
/// clone), the same on every machine and CI runner that checks it out, kept to the characters
/// a tag value may hold.
pub fn workspace_id(root: &Path) -> String {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workspace".into());
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || "_.:/=+-@".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(200)
        .collect()
}

/// The tags a function is to carry: the metadata's, the ownership tag and the list of the
/// metadata's keys. `Err` when the keys do not fit one tag value (256 characters) or one holds
/// a space (the list's separator).
pub fn function_tags(
    user: &BTreeMap<String, String>,
    workspace_id: &str,
) -> Result<BTreeMap<String, String>, String> {
    if let Some(key) = user.keys().find(|k| k.contains(' ')) {
        return Err(format!(
            "tag key `{key}` holds a space; deploy records the keys it sets space-separated in `{TAG_KEYS_TAG}`"
        ));
    }
    let keys = user.keys().cloned().collect::<Vec<_>>().join(" ");
    if keys.chars().count() > crate::lambda_rules::MAX_TAG_VALUE_CHARS {
        return Err(format!(
            "the tag keys together are {} characters; deploy records them in one tag value of at most {}",
            keys.chars().count(),
            crate::lambda_rules::MAX_TAG_VALUE_CHARS
        ));
    }
    let mut tags = user.clone();
    tags.insert(OWNER_TAG.into(), workspace_id.into());
    tags.insert(TAG_KEYS_TAG.into(), keys);
    Ok(tags)
}

/// A layer version's description, which records its owner since layers cannot be tagged.
pub fn layer_description(name: &str, arch: crate::target::Arch, workspace_id: &str) -> String {
    format!("cargo-lambda-pack {name} ({arch}) {OWNER_TAG}={workspace_id}")
}

/// Whether a layer version's description says this workspace published it.
pub fn layer_is_ours(description: &str, workspace_id: &str) -> bool {
    description.starts_with("cargo-lambda-pack ")
        && description.ends_with(&format!(" {OWNER_TAG}={workspace_id}"))
}

/// The tags to set (added or changed) and the keys to remove: the metadata's keys this tool set
/// before (its [`TAG_KEYS_TAG`]) and this tool's own `lambda-pack:` tags that are no longer
/// wanted. Other tags are left as they are.
pub fn tag_changes(
    wanted: &BTreeMap<String, String>,
    found: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = wanted
        .iter()
        .filter(|(k, v)| found.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = found
        .get(TAG_KEYS_TAG)
        .map(|keys| {
            keys.split(' ')
                .filter(|k| !k.is_empty() && !wanted.contains_key(*k) && found.contains_key(*k))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain(
            found
                .keys()
                .filter(|k| k.starts_with("lambda-pack:") && !wanted.contains_key(*k))
                .cloned(),
        )
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    (set, remove)
}

/// The settings that differ, one line each (for UpdateFunctionConfiguration). Tenancy is not
/// among them: Lambda takes TenancyConfig only in CreateFunction, so an existing function keeps
/// the mode it was created with.
pub fn differences(wanted: &FunctionSettings, found: &ObservedSettings) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(size) = wanted.ephemeral_storage
        && found.ephemeral_storage.map(i64::from) != Some(size as i64)
    {
        lines.push(format!(
            "ephemeral storage: {} → {size} MB",
            found
                .ephemeral_storage
                .map_or("(none)".into(), |s| s.to_string())
        ));
    }
    if let Some(capacity) = &wanted.capacity
        && found.capacity.as_ref() != Some(capacity)
    {
        lines.push(format!(
            "capacity provider: {} → {}",
            found.capacity.as_ref().map_or("(none)", |c| c.arn.as_str()),
            describe(capacity)
        ));
    }
    lines
}

fn describe(capacity: &Capacity) -> String {
    let mut text = capacity.arn.clone();
    if let Some(n) = capacity.max_concurrency {
        text.push_str(&format!(", max concurrency {n}"));
    }
    if let Some(milli) = capacity.memory_per_vcpu_milli {
        text.push_str(&format!(", {} GiB per vCPU", milli as f64 / 1000.0));
    }
    text
}

pub fn ephemeral_storage(settings: &FunctionSettings) -> Option<lambda::EphemeralStorage> {
    settings.ephemeral_storage.and_then(|size| {
        lambda::EphemeralStorage::builder()
            .size(size as i32)
            .build()
            .ok()
    })
}

pub fn capacity_provider_config(
    settings: &FunctionSettings,
) -> Option<lambda::CapacityProviderConfig> {
    let capacity = settings.capacity.as_ref()?;
    let managed = lambda::LambdaManagedInstancesCapacityProviderConfig::builder()
        .capacity_provider_arn(&capacity.arn)
        .set_per_execution_environment_max_concurrency(capacity.max_concurrency.map(|n| n as i32))
        .set_execution_environment_memory_gib_per_v_cpu(
            capacity.memory_per_vcpu_milli.map(|m| m as f64 / 1000.0),
        )
        .build()
        .ok()?;
    Some(
        lambda::CapacityProviderConfig::builder()
            .lambda_managed_instances_capacity_provider_config(managed)
            .build(),
    )
}

pub fn tenancy_config(settings: &FunctionSettings) -> Option<lambda::TenancyConfig> {
    settings
        .per_tenant
        .then(|| {
            lambda::TenancyConfig::builder()
                .tenant_isolation_mode(lambda::TenantIsolationMode::PerTenant)
                .build()
        })?
        .ok()
}

/// The settings of a GetFunction answer.
pub fn observed(
    config: &lambda::FunctionConfiguration,
    tags: Option<&std::collections::HashMap<String, String>>,
) -> ObservedSettings {
    ObservedSettings {
        tags: tags
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        ephemeral_storage: config.ephemeral_storage().map(|e| e.size()),
        capacity: config
            .capacity_provider_config()
            .and_then(|c| c.lambda_managed_instances_capacity_provider_config())
            .map(|m| Capacity {
                arn: m.capacity_provider_arn().to_string(),
                max_concurrency: m
                    .per_execution_environment_max_concurrency()
                    .map(|n| n as u64),
                memory_per_vcpu_milli: m
                    .execution_environment_memory_gib_per_v_cpu()
                    .map(|g| (g * 1000.0).round() as u64),
            }),
        url: None,
        per_tenant: config
            .tenancy_config()
            .is_some_and(|t| t.tenant_isolation_mode() == &lambda::TenantIsolationMode::PerTenant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_differing_tags_are_set_and_only_our_removed_keys_untagged() {
        let wanted = function_tags(&map(&[("team", "orders"), ("stage", "prod")]), "shop").unwrap();
        let found = map(&[
            ("team", "orders"),
            ("stage", "dev"),
            ("cost", "42"),
            ("old", "x"),
            (OWNER_TAG, "shop"),
            (TAG_KEYS_TAG, "old stage team"),
        ]);
        let (set, remove) = tag_changes(&wanted, &found);
        assert_eq!(set, map(&[("stage", "prod"), (TAG_KEYS_TAG, "stage team")]));
        // `cost` was set by someone else: left alone.
        assert_eq!(remove, vec!["old".to_string()]);
        let (set, remove) = tag_changes(&wanted, &wanted);
        assert!(set.is_empty() && remove.is_empty());
    }

    #[test]
    fn a_tag_key_with_a_space_is_refused() {
        let error = function_tags(&map(&[("cost center", "1")]), "shop").unwrap_err();
        assert!(error.contains("space"), "{error}");
    }

    #[test]
    fn layer_ownership_is_read_from_the_description() {
        let description = layer_description("tools", crate::target::Arch::X86_64, "shop");
        assert!(layer_is_ours(&description, "shop"));
        assert!(!layer_is_ours(&description, "shop2"));
        assert!(!layer_is_ours("cargo-lambda-pack tools (x86_64)", "shop"));
        assert!(description.len() <= 256);
    }
}
