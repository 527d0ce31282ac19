//! The workspace as cargo describes it: members, their binaries and their lambda-pack metadata.
//!
//! `cargo metadata` runs through `$CARGO` (the cargo that invoked us), so toolchain overrides,
//! `CARGO_TARGET_DIR` and `.cargo/config.toml` are honoured exactly as cargo itself would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::metadata::{self, MetadataTable, PackageMetadata};
use crate::settings::Selection;

/// A workspace member, reduced to what packing needs.
#[derive(Clone, Debug)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// cargo's package id, which `compiler-artifact` messages refer to.
    pub id: String,
    pub manifest_path: PathBuf,
    /// The directory holding the package's Cargo.toml; includes are relative to it.
    pub dir: PathBuf,
    /// Names of the package's `bin` targets, sorted.
    pub bins: Vec<String>,
    /// Names of the package's `example` targets (packed as functions with --example/--examples).
    pub examples: Vec<String>,
    /// Names of the package's `cdylib` library targets.
    pub cdylibs: Vec<String>,
    /// Names of the package's normal (non-dev, non-build) dependencies.
    pub dependencies: BTreeSet<String>,
    /// The `required-features` of each bin and example that has any (cargo builds such a
    /// target only when all of them are enabled).
    pub required_features: BTreeMap<String, Vec<String>>,
    /// The package's `[features]` table as cargo reports it (implicit features of optional
    /// dependencies included).
    pub features: BTreeMap<String, Vec<String>>,
    pub metadata: PackageMetadata,
    /// cargo-lambda keys that are not honoured, one note each (see [`crate::cargo_lambda`]).
    pub notes: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Workspace {
    pub root: PathBuf,
    pub root_manifest: PathBuf,
    /// cargo's target directory (`--target-dir` is applied later, by the settings).
    pub target_dir: PathBuf,
    /// `[workspace.metadata.lambda-pack]`.
    pub defaults: MetadataTable,
    /// Every member, sorted by name.
    pub members: Vec<Package>,
    /// Names of the members cargo builds when no package is named (`default-members`).
    pub default_members: BTreeSet<String>,
    /// Notes on cargo-lambda's `[workspace.metadata.lambda]` keys that are not honoured.
    pub notes: Vec<String>,
}

impl Workspace {
    /// Runs `cargo metadata --no-deps` and reads every member's lambda-pack table.
    pub fn load(cargo: &Path, manifest_path: Option<&Path>) -> Result<Workspace> {
        let mut command = cargo_metadata::MetadataCommand::new();
        command.cargo_path(cargo).no_deps();
        if let Some(path) = manifest_path {
            command.manifest_path(path);
        }
        let metadata = command.exec().map_err(metadata_error)?;
        Workspace::from_metadata(metadata)
    }

    /// Builds the model from parsed `cargo metadata` output; separate from [`Workspace::load`] so
    /// tests can feed canned metadata.
    pub fn from_metadata(metadata: cargo_metadata::Metadata) -> Result<Workspace> {
        let root = metadata.workspace_root.clone().into_std_path_buf();
        let root_manifest = root.join("Cargo.toml");
        let mut defaults = metadata::parse_workspace(&metadata.workspace_metadata, &root_manifest)?;
        let workspace_lambda = crate::cargo_lambda::read(
            &metadata.workspace_metadata,
            &root_manifest,
            metadata.workspace_metadata.get(metadata::TABLE).is_some(),
            crate::cargo_lambda::Scope::Workspace,
        )?;
        let mut workspace_notes = workspace_lambda.notes.clone();
        adopt(&mut defaults, &workspace_lambda);
        if workspace_lambda.include.is_some() {
            workspace_notes.push(format!(
                "`include` in [workspace.metadata.lambda] in `{}` (cargo-lambda) is not read: includes are a package's (`include` in [package.metadata.lambda-pack])",
                root_manifest.display()
            ));
        }
        for bin in workspace_lambda.bin_env.keys() {
            workspace_notes.push(format!(
                "[workspace.metadata.lambda.bin.{bin}] in `{}` (cargo-lambda) is not read; set `env` in [package.metadata.lambda-pack.bin.{bin}] of its package",
                root_manifest.display()
            ));
        }
        let member_ids: BTreeSet<_> = metadata.workspace_members.iter().collect();
        let mut members = Vec::new();
        for package in &metadata.packages {
            if !member_ids.contains(&package.id) {
                continue;
            }
            let manifest_path = package.manifest_path.clone().into_std_path_buf();
            let dir = manifest_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| root.clone());
            let mut bins = Vec::new();
            let mut cdylibs = Vec::new();
            let mut examples = Vec::new();
            let mut required_features = BTreeMap::new();
            for target in &package.targets {
                if (target.is_bin() || target.is_example()) && !target.required_features.is_empty()
                {
                    required_features.insert(target.name.clone(), target.required_features.clone());
                }
                if target.is_bin() {
                    bins.push(target.name.clone());
                } else if target.is_example()
                    && target.crate_types.contains(&cargo_metadata::CrateType::Bin)
                {
                    examples.push(target.name.clone());
                } else if target.is_cdylib() {
                    cdylibs.push(target.name.clone());
                }
            }
            bins.sort();
            cdylibs.sort();
            examples.sort();
            let dependencies = package
                .dependencies
                .iter()
                .filter(|d| d.kind == cargo_metadata::DependencyKind::Normal)
                .map(|d| d.name.clone())
                .collect();
            let mut package_metadata = metadata::parse_package(&package.metadata, &manifest_path)?;
            let has_own_table = package.metadata.get(metadata::TABLE).is_some();
            let cargo_lambda = crate::cargo_lambda::read(
                &package.metadata,
                &manifest_path,
                has_own_table,
                crate::cargo_lambda::Scope::Package,
            )?;
            let mut notes = cargo_lambda.notes.clone();
            // cargo-lambda's layers apply unless lambda-pack's own `layers` says otherwise.
            match (&package_metadata.table.layers, &cargo_lambda.layers) {
                (None, Some(layers)) => package_metadata.table.layers = Some(layers.clone()),
                (Some(_), Some(_)) => notes.push(format!(
                    "`layers` in [package.metadata.lambda.deploy] in `{}` (cargo-lambda) is not read: `layers` in [package.metadata.lambda-pack] applies",
                    manifest_path.display()
                )),
                _ => {}
            }
            if !has_own_table {
                adopt(&mut package_metadata.table, &cargo_lambda);
                package_metadata.table.include = cargo_lambda.include;
                for (bin, env) in cargo_lambda.bin_env {
                    if bins.contains(&bin) {
                        package_metadata.bins.entry(bin).or_default().env = Some(env);
                    } else {
                        notes.push(format!(
                            "[package.metadata.lambda.bin.{bin}] in `{}` (cargo-lambda) names no binary of package `{}` and is not read",
                            manifest_path.display(),
                            package.name
                        ));
                    }
                }
            }
            members.push(Package {
                name: package.name.to_string(),
                version: package.version.to_string(),
                id: package.id.repr.clone(),
                manifest_path,
                dir,
                bins,
                examples,
                cdylibs,
                dependencies,
                required_features,
                features: package.features.clone(),
                metadata: package_metadata,
                notes,
            });
        }
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let default_members = if metadata.workspace_default_members.is_available() {
            metadata
                .workspace_default_packages()
                .iter()
                .map(|p| p.name.to_string())
                .collect()
        } else {
            members.iter().map(|p| p.name.clone()).collect()
        };
        Ok(Workspace {
            root,
            root_manifest,
            target_dir: metadata.target_directory.into_std_path_buf(),
            defaults,
            members,
            default_members,
            notes: workspace_notes,
        })
    }

    /// The deploy keys of a package's bin (`None`: the package's own), over its package's, over
    /// the workspace's: what deploy sends and verify holds a function to, read one way for both.
    pub fn deploy_keys(&self, package: &str, bin: Option<&str>) -> crate::metadata::DeployKeys {
        let Some(package) = self.package(package) else {
            return self.defaults.deploy.clone();
        };
        let bin = bin
            .and_then(|bin| package.metadata.bins.get(bin))
            .map(|table| table.deploy.clone())
            .unwrap_or_default();
        bin.or(&package.metadata.table.deploy)
            .or(&self.defaults.deploy)
    }

    pub fn package(&self, name: &str) -> Option<&Package> {
        self.members.iter().find(|p| p.name == name)
    }

    /// Applies `-p`, `--workspace` and `--exclude` the way cargo does: named packages, else every
    /// member with `--workspace`, else the default members.
    pub fn select(&self, selection: &Selection) -> Result<Vec<&Package>> {
        for name in selection.packages.iter().chain(&selection.exclude) {
            if self.package(name).is_none() {
                return Err(self.unknown_package(name));
            }
        }
        if !selection.exclude.is_empty() && !selection.workspace {
            return Err(
                Error::config("--exclude can only be used together with --workspace")
                    .with_help("add --workspace, or name the packages to pack with -p"),
            );
        }
        let selected = self
            .members
            .iter()
            .filter(|p| {
                if !selection.packages.is_empty() {
                    selection.packages.contains(&p.name)
                } else if selection.workspace {
                    !selection.exclude.contains(&p.name)
                } else {
                    self.default_members.contains(&p.name)
                }
            })
            .collect();
        Ok(selected)
    }

    fn unknown_package(&self, name: &str) -> Error {
        let names: Vec<&str> = self.members.iter().map(|p| p.name.as_str()).collect();
        let mut error = Error::config(format!(
            "package `{name}` is not a member of the workspace at `{}`",
            self.root.display()
        ))
        .with_note(format!("members: {}", names.join(", ")));
        if let Some(near) =
            crate::suggest::nearest(name, names.iter().copied(), crate::suggest::NEAR)
        {
            error = error.with_help(format!("did you mean `{near}`?"));
        } else {
            error = error.with_help("pass one of the members above to -p");
        }
        error
    }
}

/// Takes cargo-lambda's settings that map one-to-one into a level's table that has no
/// lambda-pack table of its own: the variables, and deploy's memory and timeout.
fn adopt(table: &mut MetadataTable, cargo_lambda: &crate::cargo_lambda::CargoLambdaSettings) {
    if !cargo_lambda.env.is_empty() {
        table.env = Some(cargo_lambda.env.clone());
    }
    table.deploy.memory = table.deploy.memory.or(cargo_lambda.memory);
    if table.layers.is_none() {
        table.layers = cargo_lambda.layers.clone();
    }
    table.deploy.timeout = table.deploy.timeout.or(cargo_lambda.timeout);
}

fn metadata_error(err: cargo_metadata::Error) -> Error {
    match err {
        cargo_metadata::Error::CargoMetadata { stderr } => {
            let text = stderr.trim().trim_start_matches("error: ").to_string();
            Error::config(format!("`cargo metadata` failed: {text}"))
                .with_help("fix the manifest cargo names above; `cargo metadata --no-deps` shows the same error")
        }
        cargo_metadata::Error::Io(io) => Error::new(
            ErrorKind::ToolchainMissing,
            format!("could not run cargo: {io}"),
        )
        .with_help("run this as `cargo lambda-pack`, or set $CARGO to the cargo binary"),
        other => Error::internal(format!("could not read `cargo metadata` output: {other}")),
    }
}
