//! Function URLs (`function_url`): the URL's configuration, and for `auth = "NONE"` the two
//! resource-policy statements a public URL needs since October 2025 — `lambda:InvokeFunctionUrl`
//! (condition `lambda:FunctionUrlAuthType = NONE`) and `lambda:InvokeFunction` (invoked via the
//! URL) — under stable statement ids, each added once and left alone when present.
//!
//! Ownership: URL configurations cannot be tagged, so a function whose URL this tool created
//! carries the tag `lambda-pack:function-url = <alias or "latest">`; a URL is removed (`false`,
//! or the key gone) only when that tag is there. A URL someone else made is never touched.
//! With `--alias`, the URL is the alias's (Qualifier), made after the alias points at the
//! version.

use std::collections::BTreeSet;

use aws_sdk_lambda::types as lambda;
use serde::Serialize;

use super::aws::{Aws, api_error};
use crate::error::Result;
use crate::metadata::{CorsKey, FunctionUrlKey};

/// The tag that says this tool made the function's URL; its value is the qualifier.
pub const URL_TAG: &str = "lambda-pack:function-url";
/// The statement allowing `lambda:InvokeFunctionUrl` to everyone (AuthType NONE).
pub const SID_INVOKE_URL: &str = "lambda-pack-url-invoke-function-url";
/// The statement allowing `lambda:InvokeFunction` through the URL.
pub const SID_INVOKE: &str = "lambda-pack-url-invoke-function";

/// The URL a function is to have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlWanted {
    pub auth: String,
    pub invoke_mode: String,
    pub cors: Option<CorsKey>,
    /// The alias the URL belongs to (`--alias`), or `None` for the unqualified function.
    pub qualifier: Option<String>,
}

impl UrlWanted {
    pub fn from_key(key: &FunctionUrlKey, alias: Option<&str>) -> Option<UrlWanted> {
        key.enabled.then(|| UrlWanted {
            auth: key.auth.clone(),
            invoke_mode: key.invoke_mode.clone(),
            cors: key.cors.clone(),
            qualifier: alias.map(str::to_string),
        })
    }

    /// The value of [`URL_TAG`].
    pub fn tag_value(&self) -> String {
        self.qualifier.clone().unwrap_or_else(|| "latest".into())
    }
}

/// A function's URL as GetFunctionUrlConfig and GetPolicy describe it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlFound {
    pub url: String,
    pub auth: String,
    pub invoke_mode: String,
    pub cors: Option<CorsKey>,
    /// Statement ids of the function's (or alias's) resource policy.
    pub statements: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UrlAction {
    Create,
    Update,
    Delete,
}

/// What a deploy does to a function's URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UrlStep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<UrlAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    /// Statement ids to add (AuthType NONE).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_statements: Vec<String>,
    /// Our statement ids to remove (AuthType no longer NONE, or the URL removed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove_statements: Vec<String>,
    /// The URL when it exists already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl UrlStep {
    pub fn changes_something(&self) -> bool {
        self.action.is_some()
            || !self.add_statements.is_empty()
            || !self.remove_statements.is_empty()
    }
}

/// PURE: the URL step for `wanted` given what was `found` and whether the URL is ours (its
/// tag). `None` when there is nothing of a URL to do or to report.
pub fn plan_url(
    wanted: Option<&UrlWanted>,
    found: Option<&UrlFound>,
    ours: bool,
    reasons: &mut Vec<String>,
) -> Option<UrlStep> {
    let ours_sids = [SID_INVOKE_URL, SID_INVOKE];
    let present = |sid: &str| found.is_some_and(|f| f.statements.contains(sid));
    match (wanted, found) {
        (None, None) => None,
        (None, Some(found)) if !ours => {
            let _ = found;
            None
        }
        (None, Some(found)) => {
            reasons.push(format!(
                "function URL {}: removed (no longer wanted)",
                found.url
            ));
            Some(UrlStep {
                action: Some(UrlAction::Delete),
                qualifier: None,
                add_statements: Vec::new(),
                remove_statements: ours_sids
                    .iter()
                    .filter(|s| present(s))
                    .map(|s| s.to_string())
                    .collect(),
                url: Some(found.url.clone()),
            })
        }
        (Some(wanted), found) => {
            let mut step = UrlStep {
                qualifier: wanted.qualifier.clone(),
                url: found.map(|f| f.url.clone()),
                ..UrlStep::default()
            };
            match found {
                None => {
                    step.action = Some(UrlAction::Create);
                    reasons.push(format!(
                        "function URL: created ({}, {})",
                        wanted.auth, wanted.invoke_mode
                    ));
                }
                Some(found) => {
                    let mut differ = Vec::new();
                    if found.auth != wanted.auth {
                        differ.push(format!("auth {} → {}", found.auth, wanted.auth));
                    }
                    if found.invoke_mode != wanted.invoke_mode {
                        differ.push(format!(
                            "invoke mode {} → {}",
                            found.invoke_mode, wanted.invoke_mode
                        ));
                    }
                    if found.cors.clone().unwrap_or_default()
                        != wanted.cors.clone().unwrap_or_default()
                    {
                        differ.push("cors differs".into());
                    }
                    if !differ.is_empty() {
                        step.action = Some(UrlAction::Update);
                        reasons.push(format!("function URL: {}", differ.join(", ")));
                    }
                }
            }
            if wanted.auth == "NONE" {
                step.add_statements = ours_sids
                    .iter()
                    .filter(|s| !present(s))
                    .map(|s| s.to_string())
                    .collect();
            } else {
                step.remove_statements = ours_sids
                    .iter()
                    .filter(|s| present(s))
                    .map(|s| s.to_string())
                    .collect();
            }
            if !step.add_statements.is_empty() {
                reasons.push(format!(
                    "function URL: statement(s) {} added",
                    step.add_statements.join(", ")
                ));
            }
            if !step.remove_statements.is_empty() {
                reasons.push(format!(
                    "function URL: statement(s) {} removed",
                    step.remove_statements.join(", ")
                ));
            }
            Some(step)
        }
    }
}

/// GetFunctionUrlConfig and GetPolicy of `function` (at `qualifier`); `None` without a URL.
pub async fn observe(
    aws: &Aws,
    function: &str,
    qualifier: Option<&str>,
) -> Result<Option<UrlFound>> {
    let config = match aws
        .lambda
        .get_function_url_config()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .send()
        .await
    {
        Ok(config) => config,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(api_error("GetFunctionUrlConfig", function, err)),
    };
    let statements = match aws
        .lambda
        .get_policy()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .send()
        .await
    {
        Ok(policy) => statement_ids(policy.policy().unwrap_or_default()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            BTreeSet::new()
        }
        Err(err) => return Err(api_error("GetPolicy", function, err)),
    };
    Ok(Some(UrlFound {
        url: config.function_url().to_string(),
        auth: config.auth_type().as_str().to_string(),
        invoke_mode: config
            .invoke_mode()
            .map_or("BUFFERED".to_string(), |m| m.as_str().to_ascii_uppercase()),
        cors: config.cors().map(|c| CorsKey {
            allow_credentials: c.allow_credentials(),
            allow_headers: c.allow_headers().to_vec(),
            allow_methods: c.allow_methods().to_vec(),
            allow_origins: c.allow_origins().to_vec(),
            expose_headers: c.expose_headers().to_vec(),
            max_age: c.max_age().map(|a| a as u64),
        }),
        statements,
    }))
}

fn statement_ids(policy: &str) -> BTreeSet<String> {
    serde_json::from_str::<serde_json::Value>(policy)
        .ok()
        .and_then(|p| p.get("Statement").and_then(|s| s.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.get("Sid").and_then(|id| id.as_str()).map(str::to_string))
        .collect()
}

fn cors(key: &Option<CorsKey>) -> Option<lambda::Cors> {
    key.as_ref().map(|c| {
        lambda::Cors::builder()
            .set_allow_credentials(c.allow_credentials)
            .set_allow_headers(Some(c.allow_headers.clone()).filter(|v| !v.is_empty()))
            .set_allow_methods(Some(c.allow_methods.clone()).filter(|v| !v.is_empty()))
            .set_allow_origins(Some(c.allow_origins.clone()).filter(|v| !v.is_empty()))
            .set_expose_headers(Some(c.expose_headers.clone()).filter(|v| !v.is_empty()))
            .set_max_age(c.max_age.map(|a| a as i32))
            .build()
    })
}

/// Sends a CreateFunctionUrlConfig or UpdateFunctionUrlConfig with the wanted configuration and
/// evaluates to the URL Lambda answers; a macro because the SDK's two builders share no trait.
macro_rules! send_url_config {
    ($builder:expr, $operation:literal, $function:expr, $qualifier:expr, $wanted:expr) => {
        $builder
            .function_name($function)
            .set_qualifier($qualifier)
            .auth_type(lambda::FunctionUrlAuthType::from($wanted.auth.as_str()))
            .invoke_mode(lambda::InvokeMode::from($wanted.invoke_mode.as_str()))
            .set_cors(cors(&$wanted.cors))
            .send()
            .await
            .map_err(|err| api_error($operation, $function, err))?
            .function_url()
            .to_string()
    };
}

/// Carries out `step` on `function`; returns the URL it has afterwards (`None` once deleted).
pub async fn apply(
    aws: &Aws,
    function: &str,
    wanted: Option<&UrlWanted>,
    step: &UrlStep,
) -> Result<Option<String>> {
    let qualifier = step.qualifier.clone();
    let mut url = step.url.clone();
    match (step.action, wanted) {
        (Some(UrlAction::Create), Some(wanted)) => {
            url = Some(send_url_config!(
                aws.lambda.create_function_url_config(),
                "CreateFunctionUrlConfig",
                function,
                qualifier.clone(),
                wanted
            ));
        }
        (Some(UrlAction::Update), Some(wanted)) => {
            url = Some(send_url_config!(
                aws.lambda.update_function_url_config(),
                "UpdateFunctionUrlConfig",
                function,
                qualifier.clone(),
                wanted
            ));
        }
        _ => {}
    }
    for sid in &step.remove_statements {
        aws.lambda
            .remove_permission()
            .function_name(function)
            .statement_id(sid)
            .set_qualifier(qualifier.clone())
            .send()
            .await
            .map_err(|err| api_error("RemovePermission", function, err))?;
    }
    if step.action == Some(UrlAction::Delete) {
        aws.lambda
            .delete_function_url_config()
            .function_name(function)
            .set_qualifier(qualifier.clone())
            .send()
            .await
            .map_err(|err| api_error("DeleteFunctionUrlConfig", function, err))?;
        url = None;
    }
    for sid in &step.add_statements {
        let request = aws
            .lambda
            .add_permission()
            .function_name(function)
            .statement_id(sid)
            .principal("*")
            .set_qualifier(qualifier.clone());
        let request = if sid == SID_INVOKE_URL {
            request
                .action("lambda:InvokeFunctionUrl")
                .function_url_auth_type(lambda::FunctionUrlAuthType::None)
        } else {
            request
                .action("lambda:InvokeFunction")
                .invoked_via_function_url(true)
        };
        match request.send().await {
            Ok(_) => {}
            // Added meanwhile (another deploy): the statement is there, as wanted.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_conflict_exception()) => {}
            Err(err) => return Err(api_error("AddPermission", function, err)),
        }
    }
    Ok(url)
}
