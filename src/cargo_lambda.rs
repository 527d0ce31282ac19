//! Settings that cargo-lambda users already wrote: `[package.metadata.lambda...]`,
//! `[workspace.metadata.lambda...]` and `CargoLambda.toml`. The keys that map one-to-one are
//! honoured when there is no lambda-pack table at the same level: `include`, `env` (package,
//! `deploy` and per-bin), and `deploy`'s `memory` and `timeout`; `deploy`'s `layers` (ARNs)
//! unless lambda-pack's own `layers` is set. Every other key gets one note naming the lambda-pack
//! equivalent, or saying there is none, so that nothing is ignored silently.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::lambda_rules;
use crate::metadata::{self, IncludeSpec};

/// cargo-lambda's table under `[package.metadata]`.
const TABLE: &str = "lambda";
/// cargo-lambda's configuration file, read from the workspace and package roots.
pub const CONFIG_FILE: &str = "CargoLambda.toml";

/// What a package's (or the workspace's) cargo-lambda settings give lambda-pack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CargoLambdaSettings {
    /// `include` of `[package.metadata.lambda.build]` then of `[package.metadata.lambda.deploy]`;
    /// `None` when neither is set or the crate has its own lambda-pack table.
    pub include: Option<Vec<IncludeSpec>>,
    /// `[package.metadata.lambda.env]` overlaid with `[package.metadata.lambda.deploy.env]`
    /// (the variables deployed win); empty when the crate has its own lambda-pack table.
    pub env: BTreeMap<String, String>,
    /// `[package.metadata.lambda.bin.<name>.env]`: one bin's variables, over the package's.
    pub bin_env: BTreeMap<String, BTreeMap<String, String>>,
    /// `memory` of `[package.metadata.lambda.deploy]` (MB), checked against Lambda's range.
    pub memory: Option<u64>,
    /// `timeout` of `[package.metadata.lambda.deploy]` (seconds), checked against Lambda's range.
    pub timeout: Option<u64>,
    /// `layers` of `[package.metadata.lambda.deploy]`: layer version ARNs, attached in order.
    pub layers: Option<Vec<metadata::LayerEntry>>,
    /// One note per key that is not honoured, for people (printed once per run).
    pub notes: Vec<String>,
}

/// Where cargo-lambda's table sits: `package` or `workspace` (`[<scope>.metadata.lambda]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Package,
    Workspace,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Package => "package",
            Scope::Workspace => "workspace",
        }
    }

    fn whose(self) -> &'static str {
        match self {
            Scope::Package => "the crate",
            Scope::Workspace => "the workspace",
        }
    }
}

/// The lambda-pack equivalent of each cargo-lambda key that is not read, or why there is none.
/// Keys not listed get a note saying they are unknown and not read. docs/src/cargo-lambda.md shows the same
/// table.
fn equivalent(section: &str, key: &str) -> Option<&'static str> {
    const NO_DEPLOY: &str = "none: `cargo lambda-pack deploy` leaves it as it is in the account; set it where the function is managed";
    Some(match (section, key) {
        ("build", "arm64") => {
            "`arch = \"arm64\"` in [package.metadata.lambda-pack], or --arch arm64"
        }
        ("build", "x86_64") => {
            "`arch = \"x86_64\"` in [package.metadata.lambda-pack], or --arch x86_64"
        }
        ("build", "target") => "--target TRIPLE, or `arch` in [package.metadata.lambda-pack]",
        ("build", "compiler") => "--compiler auto|zig|cargo",
        ("build", "release") => {
            "none needed: the `release` profile is the default (--profile NAME)"
        }
        ("build", "profile") => "--profile NAME",
        ("build", "features") => "-F/--features",
        ("build", "all_features") => "--all-features",
        ("build", "no_default_features") => "--no-default-features",
        ("build", "lambda_dir") => "--out-dir DIR",
        ("build", "output_format") => {
            "none: lambda-pack always writes ZIPs (or image build contexts)"
        }
        ("build", "flatten") => "none: artifacts are always `<arch>/<name>.zip`",
        ("build", "extension") => {
            "`role = \"extension\"` in [package.metadata.lambda-pack] (inferred from a lambda-extension dependency)"
        }
        ("build", "internal") => {
            "none needed: a crate with lambda_runtime and lambda-extension is a function with an internal extension"
        }
        ("deploy", "layers") => {
            "`layers` in [package.metadata.lambda-pack] (workspace crates and layer version ARNs)"
        }
        ("deploy", "env_file") => "verify --env-file FILE",
        ("deploy", "s3_bucket") => {
            "`s3_bucket` in [package.metadata.lambda-pack] (or deploy --s3-bucket), for ZIPs over 50 MB"
        }
        ("deploy", "s3_key") => "none: deploy names the object after the ZIP's SHA-256",
        ("deploy", "memory") => "`memory` in [package.metadata.lambda-pack] (MB, for deploy)",
        ("deploy", "timeout") => {
            "`timeout` in [package.metadata.lambda-pack] (seconds, for deploy)"
        }
        ("deploy", "role") => "`iam_role` in [package.metadata.lambda-pack], or deploy --iam-role",
        ("deploy", "runtime") => "`runtime` in [package.metadata.lambda-pack]",
        ("deploy", _) => NO_DEPLOY,
        ("", "watch" | "invoke") => "`cargo lambda-pack verify` runs the packed functions locally",
        ("", "bin") => "[package.metadata.lambda-pack.bin.<name>]",
        ("bin", _) => "[package.metadata.lambda-pack.bin.<name>]",
        _ => return None,
    })
}

/// Reads cargo-lambda's keys out of a package's (or, with [`Scope::Workspace`], the
/// workspace's) `metadata` value. `has_own_table`: there is a `[<scope>.metadata.lambda-pack]`
/// table, which then wins over every cargo-lambda key.
pub fn read(
    metadata: &Value,
    manifest_path: &Path,
    has_own_table: bool,
    scope: Scope,
) -> Result<CargoLambdaSettings> {
    let mut settings = CargoLambdaSettings::default();
    let Some(table) = metadata.get(TABLE).and_then(Value::as_object) else {
        return Ok(settings);
    };
    let file = manifest_path.display().to_string();
    let root = format!("[{}.metadata.{TABLE}", scope.name());
    let own = format!(
        "{} has its own [{}.metadata.lambda-pack] table",
        scope.whose(),
        scope.name()
    );
    let mut env = BTreeMap::new();
    let mut include: Option<Vec<IncludeSpec>> = None;
    for (key, value) in table {
        let section = match key.as_str() {
            "build" | "deploy" => key.as_str(),
            "env" => {
                if has_own_table {
                    settings.notes.push(format!(
                        "{root}.env] in `{file}` (cargo-lambda) is not read: {own}"
                    ));
                } else {
                    read_env(value, &format!("{root}.env]"), manifest_path, &mut env)?;
                }
                continue;
            }
            "bin" if !has_own_table => {
                read_bins(value, &root, manifest_path, &mut settings)?;
                continue;
            }
            _ => {
                settings
                    .notes
                    .push(note(&format!("{root}] {key}"), "", key, &file));
                continue;
            }
        };
        let header = format!("{root}.{section}]");
        let Some(keys) = value.as_object() else {
            settings.notes.push(format!(
                "{header} in `{file}` (cargo-lambda) is not a table and is not read"
            ));
            continue;
        };
        for (key, value) in keys {
            match key.as_str() {
                "include" if !has_own_table => {
                    let entries = value.as_array().and_then(|items| {
                        items
                            .iter()
                            .map(|i| i.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                    });
                    let Some(entries) = entries else {
                        return Err(Error::config(format!(
                            "key `include` in {header} in `{file}` must be an array of strings"
                        ))
                        .with_help("write it as `include = [\"assets\", \"config.toml\"]`"));
                    };
                    let specs = include.get_or_insert_with(Vec::new);
                    for entry in entries {
                        specs.push(metadata::foreign_include(&entry, &header, manifest_path)?);
                    }
                }
                "env" if section == "deploy" && !has_own_table => {
                    // Read after `[package.metadata.lambda.env]` so that the deployed values win.
                }
                "memory" if section == "deploy" && !has_own_table => {
                    settings.memory = Some(deploy_number(
                        value,
                        key,
                        &header,
                        &file,
                        lambda_rules::check_memory,
                        &lambda_rules::memory_rule(),
                    )?);
                }
                "timeout" if section == "deploy" && !has_own_table => {
                    settings.timeout = Some(deploy_number(
                        value,
                        key,
                        &header,
                        &file,
                        lambda_rules::check_timeout,
                        &lambda_rules::timeout_rule(),
                    )?);
                }
                // Read even beside a lambda-pack table: it applies unless that table (or the
                // bin's) sets `layers` itself (`workspace.rs` decides).
                "layers" if section == "deploy" => {
                    settings.layers = Some(metadata::foreign_layers(value, &header, manifest_path)?);
                }
                "include" | "env" | "memory" | "timeout" if has_own_table => {
                    settings.notes.push(format!(
                        "`{key}` in {header} in `{file}` (cargo-lambda) is not read: {own}, whose `{key}` applies"
                    ))
                }
                _ => settings.notes.push(note(&header, section, key, &file)),
            }
        }
    }
    if !has_own_table && let Some(deploy_env) = table.get("deploy").and_then(|d| d.get("env")) {
        read_env(
            deploy_env,
            &format!("{root}.deploy] env"),
            manifest_path,
            &mut env,
        )?;
    }
    settings.include = include;
    settings.env = env;
    Ok(settings)
}

/// `[<scope>.metadata.lambda.bin.<name>]`: each bin's `env` is read, every other key noted.
fn read_bins(
    value: &Value,
    root: &str,
    manifest_path: &Path,
    settings: &mut CargoLambdaSettings,
) -> Result<()> {
    let file = manifest_path.display().to_string();
    let Some(bins) = value.as_object() else {
        settings.notes.push(format!(
            "{root}.bin] in `{file}` (cargo-lambda) is not a table and is not read"
        ));
        return Ok(());
    };
    for (bin, table) in bins {
        let header = format!("{root}.bin.{bin}]");
        let Some(keys) = table.as_object() else {
            settings.notes.push(format!(
                "{header} in `{file}` (cargo-lambda) is not a table and is not read"
            ));
            continue;
        };
        for (key, value) in keys {
            if key == "env" {
                let env = settings.bin_env.entry(bin.clone()).or_default();
                read_env(value, &format!("{header} env"), manifest_path, env)?;
            } else {
                settings.notes.push(note(&header, "bin", key, &file));
            }
        }
    }
    Ok(())
}

/// A deploy number (`memory`, `timeout`) within Lambda's range, the range named when it is not.
fn deploy_number(
    value: &Value,
    key: &str,
    header: &str,
    file: &str,
    check: fn(u64) -> std::result::Result<(), String>,
    rule: &str,
) -> Result<u64> {
    match value.as_u64() {
        Some(number) if check(number).is_ok() => Ok(number),
        _ => Err(Error::config(format!(
            "invalid value {value} for key `{key}` in {header} in `{file}` (cargo-lambda): {rule}"
        ))
        .with_help(format!("set `{key}` to a whole number in that range"))),
    }
}

fn note(header: &str, section: &str, key: &str, file: &str) -> String {
    let what = if section.is_empty() {
        format!("{header} in `{file}` (cargo-lambda)")
    } else {
        format!("`{key}` in {header} in `{file}` (cargo-lambda)")
    };
    match equivalent(section, key) {
        Some(equivalent) => format!("{what} is not read; lambda-pack equivalent: {equivalent}"),
        None => format!(
            "{what} is not a key lambda-pack knows and is not read; docs/src/cargo-lambda.md lists the cargo-lambda keys it maps"
        ),
    }
}

/// A table of variables: string values as written, numbers and booleans as TOML writes them.
fn read_env(
    value: &Value,
    what: &str,
    manifest_path: &Path,
    env: &mut BTreeMap<String, String>,
) -> Result<()> {
    let invalid = |detail: String| {
        Error::config(format!("{what} in `{}` {detail}", manifest_path.display())).with_help(
            "write it as a table of strings: `env = { QUEUE_URL = \"...\", TABLE_NAME = \"...\" }`",
        )
    };
    let map = value
        .as_object()
        .ok_or_else(|| invalid("must be a table of variables".to_string()))?;
    for (name, value) in map {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(invalid(format!(
                    "sets `{name}` to a table or array; a variable is a string"
                )));
            }
        };
        crate::lambda_rules::check_env_key(name).map_err(|why| {
            Error::config(format!(
                "{what} in `{}` sets `{name}`: {why}",
                manifest_path.display()
            ))
            .with_help(crate::lambda_rules::env_key_help(name))
        })?;
        env.insert(name.clone(), text);
    }
    Ok(())
}

/// A note for each `CargoLambda.toml` in `dirs` (the workspace root and package directories):
/// cargo-lambda's own configuration file, which lambda-pack does not read.
pub fn config_file_notes<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    dirs.into_iter()
        .map(|dir| dir.join(CONFIG_FILE))
        .filter(|path| path.is_file() && seen.insert(path.clone()))
        .map(|path| {
            format!(
                "`{}` is cargo-lambda's configuration file and is not read; put its settings in [package.metadata.lambda-pack] or pass them as flags (docs/src/cargo-lambda.md maps each cargo-lambda key)",
                path.display()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_it(metadata: Value, has_own_table: bool) -> Result<CargoLambdaSettings> {
        read(
            &metadata,
            Path::new("/ws/fn/Cargo.toml"),
            has_own_table,
            Scope::Package,
        )
    }

    #[test]
    fn include_and_env_are_read_and_every_other_key_gets_a_note() {
        let settings = read_it(
            json!({ "lambda": {
                "build": { "include": ["assets"], "arm64": true, "output_format": "zip" },
                "deploy": { "include": ["README.md"], "memory": 512, "env": { "TABLE_NAME": "orders", "RETRIES": 3 } },
                "env": { "TABLE_NAME": "local", "QUEUE_URL": "http://127.0.0.1:9324" },
                "frobnicate": true
            }}),
            false,
        )
        .unwrap();
        let include: Vec<String> = settings
            .include
            .unwrap()
            .iter()
            .map(|i| i.display())
            .collect();
        assert_eq!(include, ["assets", "README.md"]);
        assert_eq!(
            settings.env,
            BTreeMap::from([
                ("QUEUE_URL".to_string(), "http://127.0.0.1:9324".to_string()),
                ("RETRIES".to_string(), "3".to_string()),
                ("TABLE_NAME".to_string(), "orders".to_string()),
            ])
        );
        // deploy's memory is Lambda's MemorySize: taken, not noted.
        assert_eq!(settings.memory, Some(512));
        assert_eq!(settings.notes.len(), 3, "{:#?}", settings.notes);
        let all = settings.notes.join("\n");
        for expected in [
            "`arm64` in [package.metadata.lambda.build] in `/ws/fn/Cargo.toml` (cargo-lambda) is not read; lambda-pack equivalent: `arch = \"arm64\"`",
            "`output_format` in [package.metadata.lambda.build] in `/ws/fn/Cargo.toml` (cargo-lambda) is not read; lambda-pack equivalent: none: lambda-pack always writes ZIPs",
            "[package.metadata.lambda] frobnicate in `/ws/fn/Cargo.toml` (cargo-lambda) is not a key lambda-pack knows and is not read",
        ] {
            assert!(all.contains(expected), "{expected:?} missing from:\n{all}");
        }
        assert!(!all.contains("env"), "env is honoured, not noted: {all}");
    }

    #[test]
    fn an_own_lambda_pack_table_wins_and_says_so() {
        let settings = read_it(
            json!({ "lambda": { "build": { "include": ["assets"] }, "env": { "A": "1" } } }),
            true,
        )
        .unwrap();
        assert_eq!(settings.include, None);
        assert!(settings.env.is_empty());
        assert_eq!(settings.notes.len(), 2, "{:#?}", settings.notes);
        assert!(settings.notes[0].contains(
            "the crate has its own [package.metadata.lambda-pack] table, whose `include` applies"
        ));
    }

    #[test]
    fn bad_values_are_errors_naming_the_table() {
        let err = read_it(
            json!({ "lambda": { "build": { "include": "assets" } } }),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("key `include` in [package.metadata.lambda.build] in `/ws/fn/Cargo.toml` must be an array of strings"), "{err}");
        let err = read_it(
            json!({ "lambda": { "build": { "include": ["../secrets"] } } }),
            false,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(
                "include \"../secrets\" in [package.metadata.lambda.build] in `/ws/fn/Cargo.toml`"
            ),
            "{err}"
        );
        let err = read_it(json!({ "lambda": { "env": { "A": { "b": 1 } } } }), false).unwrap_err();
        assert!(
            err.to_string().contains(
                "[package.metadata.lambda.env] in `/ws/fn/Cargo.toml` sets `A` to a table or array"
            ),
            "{err}"
        );
        assert_eq!(err.exit_code(), 3);
    }

    #[test]
    fn deploy_numbers_per_bin_variables_and_the_workspace_table_are_taken() {
        let settings = read_it(
            json!({ "lambda": {
                "deploy": { "memory": 1024, "timeout": 30 },
                "bin": { "api": { "env": { "PORT": 8080 }, "watch": true } }
            }}),
            false,
        )
        .unwrap();
        assert_eq!((settings.memory, settings.timeout), (Some(1024), Some(30)));
        assert_eq!(
            settings.bin_env["api"],
            BTreeMap::from([("PORT".to_string(), "8080".to_string())])
        );
        assert_eq!(settings.notes.len(), 1, "{:#?}", settings.notes);
        assert!(
            settings.notes[0].contains("`watch` in [package.metadata.lambda.bin.api]"),
            "{:#?}",
            settings.notes
        );

        let workspace = read(
            &json!({ "lambda": { "env": { "STAGE": "prod" }, "deploy": { "timeout": 60, "tracing": "active" } } }),
            Path::new("/ws/Cargo.toml"),
            false,
            Scope::Workspace,
        )
        .unwrap();
        assert_eq!(workspace.env["STAGE"], "prod");
        assert_eq!(workspace.timeout, Some(60));
        assert!(
            workspace.notes[0]
                .contains("`tracing` in [workspace.metadata.lambda.deploy] in `/ws/Cargo.toml`"),
            "{:#?}",
            workspace.notes
        );
        // A workspace with its own lambda-pack table keeps it.
        let own = read(
            &json!({ "lambda": { "deploy": { "memory": 256 } } }),
            Path::new("/ws/Cargo.toml"),
            true,
            Scope::Workspace,
        )
        .unwrap();
        assert_eq!(own.memory, None);
        assert!(own.notes[0].contains("the workspace has its own [workspace.metadata.lambda-pack] table, whose `memory` applies"), "{:#?}", own.notes);
    }

    #[test]
    fn deploy_numbers_out_of_lambda_s_range_are_refused_with_the_range() {
        let err = read_it(json!({ "lambda": { "deploy": { "memory": 64 } } }), false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("invalid value 64 for key `memory` in [package.metadata.lambda.deploy] in `/ws/fn/Cargo.toml` (cargo-lambda)")
                && text.contains("128") && text.contains("10240"),
            "{text}"
        );
        assert_eq!(err.exit_code(), 3);
        let err =
            read_it(json!({ "lambda": { "deploy": { "timeout": 901 } } }), false).unwrap_err();
        assert!(err.to_string().contains("900"), "{err}");
    }

    #[test]
    fn deploy_layers_are_taken_as_arn_entries_and_a_non_arn_is_refused() {
        let arn = "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerX86:25";
        let settings = read_it(
            json!({ "lambda": { "deploy": { "layers": [arn] } } }),
            false,
        )
        .unwrap();
        assert_eq!(
            settings.layers,
            Some(vec![metadata::LayerEntry::Arn(metadata::ArnLayer {
                arn: arn.into(),
                zip: None
            })])
        );
        assert!(settings.notes.is_empty(), "{:#?}", settings.notes);
        // Beside a lambda-pack table too: it applies unless that table sets `layers`.
        let own = read_it(json!({ "lambda": { "deploy": { "layers": [arn] } } }), true).unwrap();
        assert_eq!(own.layers, settings.layers);
        assert!(own.notes.is_empty(), "{:#?}", own.notes);
        let text = read_it(
            json!({ "lambda": { "deploy": { "layers": ["tools"] } } }),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            text.contains("`layers` in [package.metadata.lambda.deploy] in `/ws/fn/Cargo.toml` (cargo-lambda) holds \"tools\"")
                && text.contains("help:"),
            "{text}"
        );
        let text = read_it(
            json!({ "lambda": { "deploy": { "layers": ["arn:aws:lambda:x"] } } }),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(text.contains("not a Lambda layer version ARN"), "{text}");
    }
}
