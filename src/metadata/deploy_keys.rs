//! The metadata keys the pack does not use: the function's name in the account, the role it is
//! created with, its memory, timeout and ephemeral storage (which `verify` holds the function to
//! as well), and the bucket that large ZIPs go through. The pack accepts and validates them (a
//! typo fails before anything is built).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Context, render};
use crate::error::{Error, Result};
use crate::lambda_rules::{self, NameKind};

/// `function_name`, `iam_role`, `memory`, `timeout`, `s3_bucket` of one table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeployKeys {
    /// The function's name in the account (default: the artifact's name). Not a workspace key.
    pub function_name: Option<String>,
    /// The execution role a function is created with.
    pub iam_role: Option<String>,
    /// MemorySize in MB.
    pub memory: Option<u64>,
    /// Timeout in seconds.
    pub timeout: Option<u64>,
    /// Where ZIPs too large to send inline are uploaded.
    pub s3_bucket: Option<String>,
    /// The function's tags (Tags); merged key by key over the levels, the bin's winning.
    pub tags: BTreeMap<String, String>,
    /// EphemeralStorage.Size in MB (`/tmp`).
    pub ephemeral_storage: Option<u64>,
    /// CapacityProviderArn of Managed Instances.
    pub capacity_provider: Option<String>,
    /// PerExecutionEnvironmentMaxConcurrency (Managed Instances).
    pub max_concurrency: Option<u64>,
    /// ExecutionEnvironmentMemoryGiBPerVCpu (Managed Instances), in thousandths of a GiB so the
    /// keys stay comparable with `Eq`.
    pub memory_per_vcpu_milli: Option<u64>,
    /// `tenancy = "per-tenant"`: TenancyConfig.TenantIsolationMode PER_TENANT.
    pub per_tenant: bool,
    /// `function_url = true | false | { auth, invoke_mode, cors }` (package and bin only).
    pub function_url: Option<FunctionUrlKey>,
    /// `workspace_id` (workspace table only): the value of the ownership tag
    /// `lambda-pack:workspace` instead of the root directory's name.
    pub workspace_id: Option<String>,
}

/// The `function_url` key: whether the function has a Function URL, and its configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FunctionUrlKey {
    /// `false` removes a URL this tool created.
    pub enabled: bool,
    /// AuthType: `AWS_IAM` (the default) or `NONE`.
    pub auth: String,
    /// InvokeMode: `BUFFERED` (the default) or `RESPONSE_STREAM`.
    pub invoke_mode: String,
    pub cors: Option<CorsKey>,
}

/// Lambda's `Cors` of a Function URL, its fields in snake case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CorsKey {
    pub allow_credentials: Option<bool>,
    pub allow_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_origins: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
}

/// Keys only a package or a bin table may hold (not workspace defaults).
pub(super) const MORE_UNIT_KEYS: [&str; 1] = ["function_url"];

/// Keys only the workspace table may hold.
pub(super) const WORKSPACE_ONLY_KEYS: [&str; 1] = ["workspace_id"];

/// The deploy keys a package, a bin and the workspace table may hold besides those listed in
/// `metadata.rs` (`function_name`, `iam_role`, `memory`, `timeout`, `s3_bucket`).
pub(super) const MORE_DEPLOY_KEYS: [&str; 6] = [
    "tags",
    "ephemeral_storage",
    "capacity_provider",
    "max_concurrency",
    "memory_per_vcpu",
    "tenancy",
];

impl DeployKeys {
    /// `self` over `weaker`, key by key (a bin's table over its package's over the workspace's).
    pub fn or(&self, weaker: &DeployKeys) -> DeployKeys {
        DeployKeys {
            function_name: self
                .function_name
                .clone()
                .or_else(|| weaker.function_name.clone()),
            iam_role: self.iam_role.clone().or_else(|| weaker.iam_role.clone()),
            memory: self.memory.or(weaker.memory),
            timeout: self.timeout.or(weaker.timeout),
            s3_bucket: self.s3_bucket.clone().or_else(|| weaker.s3_bucket.clone()),
            tags: weaker
                .tags
                .iter()
                .chain(&self.tags)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ephemeral_storage: self.ephemeral_storage.or(weaker.ephemeral_storage),
            capacity_provider: self
                .capacity_provider
                .clone()
                .or_else(|| weaker.capacity_provider.clone()),
            max_concurrency: self.max_concurrency.or(weaker.max_concurrency),
            memory_per_vcpu_milli: self.memory_per_vcpu_milli.or(weaker.memory_per_vcpu_milli),
            per_tenant: self.per_tenant || weaker.per_tenant,
            function_url: self
                .function_url
                .clone()
                .or_else(|| weaker.function_url.clone()),
            workspace_id: self
                .workspace_id
                .clone()
                .or_else(|| weaker.workspace_id.clone()),
        }
    }
}

impl Context<'_> {
    pub(super) fn deploy_keys(&self, map: &Map<String, Value>) -> Result<DeployKeys> {
        let mut keys = DeployKeys::default();
        if let Some(value) = map.get("function_name") {
            let name = value
                .as_str()
                .filter(|name| lambda_rules::check_name(NameKind::Function, name).is_ok());
            let Some(name) = name else {
                return Err(self.bad_value(
                    "function_name",
                    value,
                    &format!(
                        "{} (Lambda's rule for function names)",
                        NameKind::Function.rule()
                    ),
                ));
            };
            keys.function_name = Some(name.to_string());
        }
        if let Some(value) = map.get("iam_role") {
            let role = self.name_like(
                value,
                "iam_role",
                2048,
                |c| !c.is_whitespace(),
                "a role ARN such as \"arn:aws:iam::123456789012:role/lambda-exec\"",
            )?;
            if !role.starts_with("arn:") || !role.contains(":role/") {
                return Err(self.bad_value(
                    "iam_role",
                    value,
                    "a role ARN such as \"arn:aws:iam::123456789012:role/lambda-exec\"",
                ));
            }
            keys.iam_role = Some(role);
        }
        if let Some(value) = map.get("memory") {
            keys.memory = Some(self.in_range(
                value,
                "memory",
                lambda_rules::check_memory,
                &lambda_rules::memory_rule(),
            )?);
        }
        if let Some(value) = map.get("timeout") {
            keys.timeout = Some(self.in_range(
                value,
                "timeout",
                lambda_rules::check_timeout,
                &lambda_rules::timeout_rule(),
            )?);
        }
        if let Some(value) = map.get("s3_bucket") {
            // S3's bucket naming rule, roughly: 3-63 of lowercase letters, digits, `.` and `-`.
            keys.s3_bucket = Some(self.name_like(
                value,
                "s3_bucket",
                63,
                |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.',
                "a bucket name: 3-63 characters of a-z 0-9 . -",
            )?);
        }
        if let Some(value) = map.get("tags") {
            keys.tags = self.tags(value)?;
        }
        if let Some(value) = map.get("workspace_id") {
            // It becomes a tag value (and part of layer descriptions): Lambda's rule for those,
            // and not empty, since an empty id would own nothing recognisable.
            let id = value.as_str().filter(|id| {
                !id.is_empty() && lambda_rules::check_tag_value("workspace_id", id).is_ok()
            });
            let Some(id) = id else {
                return Err(self.bad_value(
                    "workspace_id",
                    value,
                    &format!(
                        "a tag value: 1 to {} letters, digits, spaces and _ . : / = + - @",
                        lambda_rules::MAX_TAG_VALUE_CHARS
                    ),
                ));
            };
            keys.workspace_id = Some(id.to_string());
        }
        if let Some(value) = map.get("ephemeral_storage") {
            keys.ephemeral_storage = Some(self.in_range(
                value,
                "ephemeral_storage",
                lambda_rules::check_ephemeral_storage,
                &lambda_rules::ephemeral_storage_rule(),
            )?);
        }
        if let Some(value) = map.get("capacity_provider") {
            match value.as_str() {
                Some(arn) if lambda_rules::check_capacity_provider_arn(arn).is_ok() => {
                    keys.capacity_provider = Some(arn.to_string());
                }
                _ => {
                    return Err(self.bad_value(
                        "capacity_provider",
                        value,
                        "a capacity provider ARN such as \"arn:aws:lambda:us-east-1:123456789012:capacity-provider:my-provider\"",
                    ));
                }
            }
        }
        if let Some(value) = map.get("max_concurrency") {
            keys.max_concurrency = Some(self.in_range(
                value,
                "max_concurrency",
                lambda_rules::check_max_concurrency,
                &lambda_rules::max_concurrency_rule(),
            )?);
        }
        if let Some(value) = map.get("memory_per_vcpu") {
            match value.as_f64() {
                Some(gib) if lambda_rules::check_memory_per_vcpu(gib).is_ok() => {
                    keys.memory_per_vcpu_milli = Some((gib * 1000.0).round() as u64);
                }
                _ => {
                    return Err(self.bad_value(
                        "memory_per_vcpu",
                        value,
                        "GiB of memory per vCPU from 2.0 to 8.0 (Lambda's ExecutionEnvironmentMemoryGiBPerVCpu)",
                    ));
                }
            }
        }
        if let Some(value) = map.get("tenancy") {
            if value.as_str() != Some("per-tenant") {
                return Err(self.bad_value(
                    "tenancy",
                    value,
                    "\"per-tenant\" (Lambda's TenancyConfig with TenantIsolationMode PER_TENANT)",
                ));
            }
            keys.per_tenant = true;
        }
        if let Some(value) = map.get("function_url") {
            keys.function_url = Some(self.function_url(value)?);
        }
        Ok(keys)
    }

    /// `function_url = true`, `false`, or `{ auth, invoke_mode, cors = { ... } }`.
    fn function_url(&self, value: &Value) -> Result<FunctionUrlKey> {
        let mut key = FunctionUrlKey {
            enabled: true,
            auth: "AWS_IAM".into(),
            invoke_mode: "BUFFERED".into(),
            cors: None,
        };
        let table = match value {
            Value::Bool(enabled) => {
                key.enabled = *enabled;
                return Ok(key);
            }
            Value::Object(table) => table,
            _ => {
                return Err(self.bad_value(
                    "function_url",
                    value,
                    "true, false, or a table { auth = \"AWS_IAM\" | \"NONE\", invoke_mode = \"BUFFERED\" | \"RESPONSE_STREAM\", cors = { ... } }",
                ));
            }
        };
        for (name, item) in table {
            match name.as_str() {
                "auth" => match item.as_str() {
                    Some(auth @ ("AWS_IAM" | "NONE")) => key.auth = auth.into(),
                    _ => {
                        return Err(self.bad_value(
                            "function_url.auth",
                            item,
                            "\"AWS_IAM\" or \"NONE\" (Lambda's AuthType)",
                        ));
                    }
                },
                "invoke_mode" => match item.as_str() {
                    Some(mode @ ("BUFFERED" | "RESPONSE_STREAM")) => key.invoke_mode = mode.into(),
                    _ => {
                        return Err(self.bad_value(
                            "function_url.invoke_mode",
                            item,
                            "\"BUFFERED\" or \"RESPONSE_STREAM\" (Lambda's InvokeMode)",
                        ));
                    }
                },
                "cors" => key.cors = Some(self.cors(item)?),
                _ => {
                    return Err(self.bad_value(
                        &format!("function_url.{name}"),
                        item,
                        "one of `auth`, `invoke_mode`, `cors`",
                    ));
                }
            }
        }
        Ok(key)
    }

    /// Lambda's `Cors`: AllowCredentials, AllowHeaders, AllowMethods, AllowOrigins,
    /// ExposeHeaders, MaxAge (0-86400 s), spelled in snake case.
    fn cors(&self, value: &Value) -> Result<CorsKey> {
        let Some(table) = value.as_object() else {
            return Err(self.bad_value(
                "function_url.cors",
                value,
                "a table of Lambda's Cors fields",
            ));
        };
        let mut cors = CorsKey::default();
        let strings = |name: &str, item: &Value| -> Result<Vec<String>> {
            item.as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .map(|i| {
                            i.as_str()
                                .filter(|s| !s.is_empty() && s.len() <= 1024)
                                .map(str::to_string)
                        })
                        .collect::<Option<Vec<_>>>()
                })
                .filter(|items| items.len() <= 100)
                .ok_or_else(|| {
                    self.bad_value(
                        &format!("function_url.cors.{name}"),
                        item,
                        "a list of at most 100 strings",
                    )
                })
        };
        for (name, item) in table {
            match name.as_str() {
                "allow_credentials" => {
                    cors.allow_credentials = Some(item.as_bool().ok_or_else(|| {
                        self.bad_value("function_url.cors.allow_credentials", item, "true or false")
                    })?);
                }
                "allow_headers" => cors.allow_headers = strings(name, item)?,
                "allow_methods" => cors.allow_methods = strings(name, item)?,
                "allow_origins" => cors.allow_origins = strings(name, item)?,
                "expose_headers" => cors.expose_headers = strings(name, item)?,
                "max_age" => match item.as_u64() {
                    Some(seconds) if seconds <= 86_400 => cors.max_age = Some(seconds),
                    _ => {
                        return Err(self.bad_value(
                            "function_url.cors.max_age",
                            item,
                            "seconds from 0 to 86400 (Lambda's MaxAge)",
                        ));
                    }
                },
                _ => {
                    return Err(self.bad_value(
                        &format!("function_url.cors.{name}"),
                        item,
                        "one of allow_credentials, allow_headers, allow_methods, allow_origins, expose_headers, max_age",
                    ));
                }
            }
        }
        Ok(cors)
    }

    /// `tags = { key = "value", ... }`: each key and value as AWS allows them.
    fn tags(&self, value: &Value) -> Result<BTreeMap<String, String>> {
        let expected = "a table of tag names to string values, such as { team = \"orders\" }";
        let Some(table) = value.as_object() else {
            return Err(self.bad_value("tags", value, expected));
        };
        if table.len() > lambda_rules::MAX_TAGS {
            return Err(self.bad_value(
                "tags",
                value,
                &format!(
                    "at most {} tags (AWS's limit per resource, the ownership tag included)",
                    lambda_rules::MAX_TAGS - 1
                ),
            ));
        }
        let mut tags = BTreeMap::new();
        for (key, item) in table {
            let Some(text) = item.as_str() else {
                return Err(self.bad_value(&format!("tags.{key}"), item, "a string"));
            };
            if let Err(why) = lambda_rules::check_tag_key(key)
                .and_then(|()| lambda_rules::check_tag_value(key, text))
            {
                return Err(self.bad_value("tags", value, &why));
            }
            tags.insert(key.clone(), text.to_string());
        }
        Ok(tags)
    }

    fn name_like(
        &self,
        value: &Value,
        key: &str,
        max_len: usize,
        allowed: impl Fn(char) -> bool,
        expected: &str,
    ) -> Result<String> {
        match value.as_str() {
            Some(text)
                if !text.is_empty() && text.len() <= max_len && text.chars().all(allowed) =>
            {
                Ok(text.to_string())
            }
            _ => Err(self.bad_value(key, value, expected)),
        }
    }

    /// A number `check` accepts; the message of a refusal states the range (`rule`).
    fn in_range(
        &self,
        value: &Value,
        key: &str,
        check: fn(u64) -> std::result::Result<(), String>,
        rule: &str,
    ) -> Result<u64> {
        match value.as_u64() {
            Some(number) if check(number).is_ok() => Ok(number),
            _ => Err(Error::config(format!(
                "invalid value {} for key `{key}` in {}: {rule}",
                render(value),
                self.location()
            ))
            .with_help(format!(
                "fix `{key}` (docs/src/configuration.md lists deploy's keys), or remove it"
            ))),
        }
    }

    fn bad_value(&self, key: &str, value: &Value, expected: &str) -> Error {
        Error::config(format!(
            "invalid value {} for key `{key}` in {}",
            render(value),
            self.location()
        ))
        .with_note(format!("expected {expected}"))
        .with_help(format!(
            "fix `{key}` (docs/src/configuration.md lists deploy's keys), or remove it"
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use crate::metadata::{parse_package, parse_workspace};

    fn package(table: serde_json::Value) -> crate::error::Result<crate::metadata::PackageMetadata> {
        parse_package(
            &json!({ "lambda-pack": table }),
            Path::new("/ws/orders/Cargo.toml"),
        )
    }

    #[test]
    fn deploy_keys_are_read_at_every_level_and_merged_bin_first() {
        let metadata = package(json!({
            "function_name": "orders-prod", "memory": 512, "timeout": 30,
            "iam_role": "arn:aws:iam::123456789012:role/orders",
            "bin": { "orders": { "memory": 1024, "s3_bucket": "my-artifacts" } }
        }))
        .unwrap();
        let workspace = parse_workspace(
            &json!({ "lambda-pack": { "iam_role": "arn:aws:iam::123456789012:role/default", "timeout": 10 } }),
            Path::new("/ws/Cargo.toml"),
        )
        .unwrap();
        let merged = metadata.bins["orders"]
            .deploy
            .or(&metadata.table.deploy)
            .or(&workspace.deploy);
        assert_eq!(merged.function_name.as_deref(), Some("orders-prod"));
        assert_eq!(merged.memory, Some(1024));
        assert_eq!(merged.timeout, Some(30));
        assert_eq!(merged.s3_bucket.as_deref(), Some("my-artifacts"));
        assert_eq!(
            merged.iam_role.as_deref(),
            Some("arn:aws:iam::123456789012:role/orders")
        );
    }

    #[test]
    fn bad_values_name_the_key_and_the_range() {
        let error = package(json!({ "memory": 64 })).unwrap_err();
        assert!(error.message.contains("key `memory`"), "{}", error.message);
        assert!(
            error.message.contains("MB from 128 to 10240"),
            "{}",
            error.message
        );
        let error = package(json!({ "timeout": 901 })).unwrap_err();
        assert!(
            error.message.contains("seconds from 1 to 900"),
            "{}",
            error.message
        );
        let error = package(json!({ "timeout": "30" })).unwrap_err();
        assert!(error.message.contains("key `timeout`"), "{}", error.message);
        let error = package(json!({ "function_name": "orders/prod" })).unwrap_err();
        assert!(
            error.notes[0].contains("1 to 64 characters"),
            "{:?}",
            error.notes
        );
        let error = package(json!({ "iam_role": "lambda-exec" })).unwrap_err();
        assert!(error.notes[0].contains("role ARN"), "{:?}", error.notes);
        let error = package(json!({ "s3_bucket": "My_Bucket" })).unwrap_err();
        assert!(
            error.message.contains("key `s3_bucket`"),
            "{}",
            error.message
        );
        assert!(error.help.unwrap().contains("docs/src/configuration.md"));
    }

    #[test]
    fn ephemeral_storage_is_a_package_or_bin_key_in_lambdas_range() {
        let metadata = package(json!({
            "ephemeral_storage": 1024, "bin": { "big": { "ephemeral_storage": 10240 } }
        }))
        .unwrap();
        assert_eq!(metadata.table.deploy.ephemeral_storage, Some(1024));
        assert_eq!(metadata.bins["big"].deploy.ephemeral_storage, Some(10_240));
        let error = package(json!({ "ephemeral_storage": 256 })).unwrap_err();
        assert!(
            error.message.contains("key `ephemeral_storage`")
                && error.message.contains("from 512 to 10240"),
            "{}",
            error.message
        );
        // A workspace default, like memory and timeout.
        let workspace = parse_workspace(
            &json!({ "lambda-pack": { "ephemeral_storage": 2048 } }),
            Path::new("/ws/Cargo.toml"),
        )
        .unwrap();
        assert_eq!(workspace.deploy.ephemeral_storage, Some(2048));
    }

    #[test]
    fn environment_is_spelled_env() {
        // The function's environment is the `env` key, which verify uses too.
        let error = package(json!({ "environment": { "STAGE": "prod" } })).unwrap_err();
        assert_eq!(error.help.as_deref(), Some("did you mean `env`?"));
    }

    #[test]
    fn function_name_is_not_a_workspace_default() {
        let error = parse_workspace(
            &json!({ "lambda-pack": { "function_name": "orders" } }),
            Path::new("/ws/Cargo.toml"),
        )
        .unwrap_err();
        assert!(
            error.message.contains("unknown key `function_name`"),
            "{}",
            error.message
        );
    }
}
