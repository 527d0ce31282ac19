//! Reading `[package.metadata.lambda-pack]` and `[workspace.metadata.lambda-pack]`.
//!
//! cargo has already parsed the TOML (a malformed Cargo.toml fails in `cargo metadata`, with cargo's
//! own message); this module validates the table it hands back as JSON. Validation is by hand rather
//! than through serde's derive so that every error can name the file, the exact key, the value it got
//! and the values it accepts, and suggest the nearest key for a typo.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::target::{Arch, Runtime};

/// The table name under `[package.metadata]` and `[workspace.metadata]`.
pub const TABLE: &str = "lambda-pack";

/// What a crate is packed as.
/// Spelled by [`Role::name`] everywhere (metadata, manifest `kind`, messages); serde's lowercase
/// renaming gives the same words, which the manifest snapshot test pins.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Role {
    Function,
    Extension,
    Layer,
    /// A custom runtime: one binary packed as `bootstrap` at the root of a layer (`/opt/bootstrap`).
    /// Its artifact is a layer (manifest `kind: "layer"`, `layer_type: "runtime"`).
    Runtime,
}

impl Role {
    const ALL: [Role; 4] = [Role::Function, Role::Extension, Role::Layer, Role::Runtime];
    const NAMES: [&'static str; 4] = [
        Role::ALL[0].name(),
        Role::ALL[1].name(),
        Role::ALL[2].name(),
        Role::ALL[3].name(),
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Role::Function => "function",
            Role::Extension => "extension",
            Role::Layer => "layer",
            Role::Runtime => "runtime",
        }
    }

    /// What the artifact of this role is, as the manifest's `kind` says: a runtime is a layer.
    pub const fn artifact_kind(self) -> Role {
        match self {
            Role::Runtime => Role::Layer,
            other => other,
        }
    }

    fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == value)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a function is delivered: a ZIP, a container image, or whichever fits (`auto`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    #[default]
    Auto,
    Zip,
    Image,
}

impl PackageFormat {
    const NAMES: [&'static str; 3] = ["auto", "zip", "image"];

    fn parse(value: &str) -> Option<PackageFormat> {
        match value {
            "auto" => Some(PackageFormat::Auto),
            "zip" => Some(PackageFormat::Zip),
            "image" => Some(PackageFormat::Image),
            _ => None,
        }
    }
}

/// One `include` entry: `"assets/**"` or `"config/app.toml:etc/app.toml"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncludeSpec {
    /// A path or glob relative to the package directory.
    pub pattern: String,
    /// Where the files land in the artifact: the file's path for a single file, a directory for a
    /// glob or a directory. `None` keeps the path relative to the package directory.
    pub dest: Option<String>,
}

impl IncludeSpec {
    /// The text as the user wrote it, for messages.
    pub fn display(&self) -> String {
        match &self.dest {
            Some(dest) => format!("{}:{dest}", self.pattern),
            None => self.pattern.clone(),
        }
    }
}

/// The keys of one `lambda-pack` table (package level, per-bin level, or workspace defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetadataTable {
    /// `arch = "arm64"` or `arch = ["x86_64", "arm64"]`: sorted, without duplicates, non-empty.
    pub arch: Option<Vec<Arch>>,
    pub runtime: Option<Runtime>,
    pub include: Option<Vec<IncludeSpec>>,
    pub role: Option<Role>,
    /// Workspace crates and layer version ARNs, in merge order.
    pub layers: Option<Vec<LayerEntry>>,
    pub package: Option<PackageFormat>,
    /// Finding codes downgraded from errors to warnings.
    pub allow: Option<Vec<String>>,
    /// The image a function's Dockerfile starts `FROM` (default: AWS's provided base image).
    pub base_image: Option<String>,
    /// Where `--push` sends a function's image: `<registry>/<repository>`.
    pub image_repository: Option<String>,
    /// Whether shared libraries the runtime lacks are bundled into a `<function>-libs` layer.
    pub bundle_libs: Option<bool>,
    /// Whether the binaries carry their dependency list (cargo-auditable's `.dep-v0`).
    pub auditable: Option<bool>,
    /// The function's own environment variables; merged key by key across the levels.
    pub env: Option<BTreeMap<String, String>>,
    /// Layers and extensions: Lambda runtime identifiers for PublishLayerVersion.
    pub compatible_runtimes: Option<Vec<String>>,
    /// Keys the pack does not use: function_name, iam_role, memory, timeout, s3_bucket (deploy
    /// reads them) and ephemeral_storage; verify holds the function to memory and
    /// ephemeral_storage.
    pub deploy: DeployKeys,
    /// Functions: what Lambda passes to the runtime as `_HANDLER` (default `bootstrap`).
    pub handler: Option<String>,
}

/// `[package.metadata.lambda-pack]` with its `[package.metadata.lambda-pack.bin.<name>]` overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PackageMetadata {
    pub table: MetadataTable,
    pub bins: BTreeMap<String, MetadataTable>,
}

/// Keys a package table and a per-bin table may hold (a package table also holds `bin`).
const UNIT_KEYS: [&str; 20] = [
    "arch",
    "runtime",
    "include",
    "role",
    "layers",
    "package",
    "allow",
    "extension",
    "base_image",
    "image_repository",
    "bundle_libs",
    "auditable",
    "env",
    "compatible_runtimes",
    "function_name",
    "iam_role",
    "memory",
    "timeout",
    "s3_bucket",
    "handler",
];

/// Keys that make sense as defaults for every package of a workspace.
const WORKSPACE_KEYS: [&str; 14] = [
    "arch",
    "runtime",
    "package",
    "allow",
    "base_image",
    "image_repository",
    "bundle_libs",
    "auditable",
    "env",
    "compatible_runtimes",
    "iam_role",
    "memory",
    "timeout",
    "s3_bucket",
];

/// Where a table sits, which decides the keys it may hold and how messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level<'a> {
    Workspace,
    Package,
    Bin(&'a str),
    /// Another tool's table read for compatibility, named as written (`[package.metadata.lambda.build]`).
    Foreign(&'a str),
}

impl Level<'_> {
    fn header(&self) -> String {
        match self {
            Level::Workspace => format!("[workspace.metadata.{TABLE}]"),
            Level::Package => format!("[package.metadata.{TABLE}]"),
            Level::Bin(name) => format!("[package.metadata.{TABLE}.bin.{name}]"),
            Level::Foreign(header) => header.to_string(),
        }
    }

    fn keys(&self) -> Vec<&'static str> {
        match self {
            Level::Workspace => WORKSPACE_KEYS
                .iter()
                .chain(&deploy_keys::MORE_DEPLOY_KEYS)
                .chain(&deploy_keys::WORKSPACE_ONLY_KEYS)
                .copied()
                .collect(),
            Level::Package => UNIT_KEYS
                .iter()
                .chain(&deploy_keys::MORE_DEPLOY_KEYS)
                .chain(&deploy_keys::MORE_UNIT_KEYS)
                .copied()
                .chain(["bin"])
                .collect(),
            Level::Bin(_) => UNIT_KEYS
                .iter()
                .chain(&deploy_keys::MORE_DEPLOY_KEYS)
                .chain(&deploy_keys::MORE_UNIT_KEYS)
                .copied()
                .collect(),
            Level::Foreign(_) => Vec::new(),
        }
    }
}

/// Reads `[package.metadata.lambda-pack]` out of a package's `metadata` value. A package without
/// the table gets the defaults.
pub fn parse_package(metadata: &Value, manifest_path: &Path) -> Result<PackageMetadata> {
    let Some(value) = metadata.get(TABLE) else {
        return Ok(PackageMetadata::default());
    };
    let ctx = Context {
        manifest_path,
        level: Level::Package,
    };
    let map = ctx.expect_table(value, None)?;
    let table = ctx.parse_table(map)?;
    let mut bins = BTreeMap::new();
    if let Some(bin_value) = map.get("bin") {
        let bin_map = ctx.expect_table(bin_value, Some("bin"))?;
        for (name, value) in bin_map {
            let bin_ctx = Context {
                manifest_path,
                level: Level::Bin(name),
            };
            let map = bin_ctx.expect_table(value, None)?;
            bins.insert(name.clone(), bin_ctx.parse_table(map)?);
        }
    }
    Ok(PackageMetadata { table, bins })
}

/// Reads `[workspace.metadata.lambda-pack]`: defaults for every package of the workspace.
pub fn parse_workspace(metadata: &Value, manifest_path: &Path) -> Result<MetadataTable> {
    let Some(value) = metadata.get(TABLE) else {
        return Ok(MetadataTable::default());
    };
    let ctx = Context {
        manifest_path,
        level: Level::Workspace,
    };
    let map = ctx.expect_table(value, None)?;
    ctx.parse_table(map)
}

/// One `include` entry of another tool's table (`header`, e.g. cargo-lambda's
/// `[package.metadata.lambda.build]`), validated as lambda-pack's own `include` entries are.
pub fn foreign_include(entry: &str, header: &str, manifest_path: &Path) -> Result<IncludeSpec> {
    Context {
        manifest_path,
        level: Level::Foreign(header),
    }
    .include_spec(entry)
}

struct Context<'a> {
    manifest_path: &'a Path,
    level: Level<'a>,
}

impl Context<'_> {
    fn location(&self) -> String {
        format!(
            "{} in `{}`",
            self.level.header(),
            self.manifest_path.display()
        )
    }

    fn expect_table<'v>(
        &self,
        value: &'v Value,
        key: Option<&str>,
    ) -> Result<&'v Map<String, Value>> {
        value.as_object().ok_or_else(|| {
            let what = match key {
                Some(key) => format!("key `{key}` of {}", self.location()),
                None => self.location(),
            };
            Error::config(format!("{what} must be a table, found {}", describe(value))).with_help(
                format!(
                    "write it as `{}` followed by `key = value` lines",
                    self.level.header()
                ),
            )
        })
    }

    fn parse_table(&self, map: &Map<String, Value>) -> Result<MetadataTable> {
        let allowed = self.level.keys();
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(self.unknown_key(key, &allowed));
            }
        }
        let mut table = MetadataTable::default();
        if let Some(value) = map.get("arch") {
            table.arch = Some(self.archs(value)?);
        }
        if let Some(value) = map.get("runtime") {
            let names: Vec<&str> = Runtime::ALL.iter().map(|r| r.name()).collect();
            table.runtime = Some(self.enum_value(value, "runtime", &names, Runtime::parse)?);
        }
        if let Some(value) = map.get("role") {
            table.role = Some(self.enum_value(value, "role", &Role::NAMES, Role::parse)?);
        }
        if let Some(value) = map.get("package") {
            table.package = Some(self.enum_value(
                value,
                "package",
                &PackageFormat::NAMES,
                PackageFormat::parse,
            )?);
        }
        if let Some(value) = map.get("layers") {
            table.layers = Some(self.layer_entries(value)?);
        }
        if let Some(value) = map.get("allow") {
            let codes = self.string_list(value, "allow")?;
            for code in &codes {
                if !crate::inspect::codes::ALL.contains(&code.as_str()) {
                    return Err(Error::config(format!(
                        "unknown finding `{code}` in key `allow` of {}",
                        self.location()
                    ))
                    .with_note(format!(
                        "expected one of: {}",
                        quoted_list(&crate::inspect::codes::ALL)
                    ))
                    .with_help("use a code that `cargo lambda-pack plan` printed for a finding"));
                }
            }
            table.allow = Some(codes);
        }
        if let Some(value) = map.get("base_image") {
            match value.as_str() {
                Some(image) if !image.trim().is_empty() && !image.contains(char::is_whitespace) => {
                    table.base_image = Some(image.to_string());
                }
                _ => {
                    return Err(Error::config(format!(
                        "key `base_image` in {} must be an image reference such as \"public.ecr.aws/lambda/provided:al2023-arm64\", found {}",
                        self.location(),
                        render(value)
                    ))
                    .with_help("set it to a registry/repository:tag string, or remove it to use AWS's provided base image"));
                }
            }
        }
        if let Some(value) = map.get("image_repository") {
            table.image_repository = Some(self.image_repository(value)?);
        }
        if let Some(value) = map.get("bundle_libs") {
            table.bundle_libs = Some(value.as_bool().ok_or_else(|| {
                Error::config(format!(
                    "key `bundle_libs` in {} must be true or false, found {}",
                    self.location(),
                    render(value)
                ))
                .with_help("write `bundle_libs = false` to turn bundling off")
            })?);
        }
        if let Some(value) = map.get("auditable") {
            table.auditable = Some(value.as_bool().ok_or_else(|| {
                Error::config(format!(
                    "key `auditable` in {} must be true or false, found {}",
                    self.location(),
                    render(value)
                ))
                .with_help(
                    "write `auditable = false` to leave the dependency list out of the binaries",
                )
            })?);
        }
        if let Some(value) = map.get("extension") {
            // Lambda runs internal extensions inside the function's own process: they are part of
            // the function's binary, not a layer, so there is nothing separate to pack.
            match value.as_str() {
                Some("external") => {}
                Some("internal") => {
                    return Err(Error::config(format!(
                        "`extension = \"internal\"` in {} cannot be packed as a layer",
                        self.location()
                    ))
                    .with_note("internal extensions run inside the function's own process, started by the function's code")
                    .with_help("link the extension into the function crate (e.g. lambda-extension's internal API), or drop the key to pack an external extension"));
                }
                _ => {
                    return Err(self
                        .enum_value(value, "extension", &["external"], |_| None::<()>)
                        .unwrap_err());
                }
            }
        }
        if let Some(value) = map.get("env") {
            table.env = Some(self.env_table(value)?);
        }
        if let Some(value) = map.get("compatible_runtimes") {
            table.compatible_runtimes = Some(self.runtime_ids(value)?);
        }
        if let Some(value) = map.get("handler") {
            table.handler = Some(self.handler(value)?);
        }
        if let Some(value) = map.get("include") {
            let entries = self.string_list(value, "include")?;
            let specs = entries
                .iter()
                .map(|entry| self.include_spec(entry))
                .collect::<Result<Vec<_>>>()?;
            table.include = Some(specs);
        }
        table.deploy = self.deploy_keys(map)?;
        Ok(table)
    }

    fn unknown_key(&self, key: &str, allowed: &[&str]) -> Error {
        let suggestion =
            crate::suggest::nearest(key, allowed.iter().copied(), crate::suggest::NEAR);
        let help = match suggestion {
            Some(candidate) => format!("did you mean `{candidate}`?"),
            None if self.level == Level::Workspace => format!(
                "workspace defaults may set only {}; put other keys in each package's [package.metadata.{TABLE}]",
                quoted_list(allowed)
            ),
            None => "remove the key, or check its spelling against docs/src/configuration.md"
                .to_string(),
        };
        Error::config(format!("unknown key `{key}` in {}", self.location()))
            .with_note(format!("expected one of: {}", quoted_list(allowed)))
            .with_help(help)
    }

    fn enum_value<T>(
        &self,
        value: &Value,
        key: &str,
        names: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T> {
        let parsed = value.as_str().and_then(&parse);
        parsed.ok_or_else(|| {
            let choices = names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ");
            Error::config(format!(
                "invalid value {} for key `{key}` in {}",
                render(value),
                self.location()
            ))
            .with_note(format!("expected one of: {choices}"))
            .with_help(format!("set `{key} = \"{}\"`, for example", names[0]))
        })
    }

    /// `arch`: one architecture, or a list of them for one artifact per architecture.
    fn archs(&self, value: &Value) -> Result<Vec<Arch>> {
        const NAMES: [&str; 2] = ["x86_64", "arm64"];
        let mut archs = match value.as_array() {
            Some(items) if items.is_empty() => {
                return Err(Error::config(format!(
                    "key `arch` in {} is an empty list",
                    self.location()
                ))
                .with_help("list at least one architecture, e.g. `arch = [\"x86_64\", \"arm64\"]`, or remove the key"));
            }
            Some(items) => items
                .iter()
                .map(|item| self.enum_value(item, "arch", &NAMES, Arch::parse))
                .collect::<Result<Vec<_>>>()?,
            None => vec![self.enum_value(value, "arch", &NAMES, Arch::parse)?],
        };
        archs.sort();
        archs.dedup();
        Ok(archs)
    }

    fn string_list(&self, value: &Value, key: &str) -> Result<Vec<String>> {
        let invalid = || {
            Error::config(format!(
                "key `{key}` in {} must be an array of strings, found {}",
                self.location(),
                render(value)
            ))
            .with_help(format!("write it as `{key} = [\"...\", \"...\"]`"))
        };
        let items = value.as_array().ok_or_else(invalid)?;
        items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect()
    }
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

mod deploy_keys;
mod include_spec;
mod lambda_keys;
mod layer_entry;
mod repository;
pub use deploy_keys::DeployKeys;
pub use lambda_keys::MAX_COMPATIBLE_RUNTIMES;
pub use layer_entry::{ArnLayer, LayerEntry, foreign_layers};
// Read only by deploy (its checks before the first call, and the Function URL it sends).
#[cfg(feature = "deploy")]
pub use deploy_keys::{CorsKey, FunctionUrlKey};
#[cfg(feature = "deploy")]
pub use lambda_keys::LAMBDA_RUNTIME_IDS;
#[cfg(feature = "deploy")]
pub use layer_entry::{ARN_SHAPE, arn_problem};
#[cfg(test)]
mod tests;
