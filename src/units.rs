//! Units: what each crate becomes. Roles (explicit or inferred), attachments, and the
//! architectures and runtimes that flow from functions to the layers and extensions they attach.
//! Pure: works on the [`Workspace`] model and the validated [`Options`].

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::metadata::{ArnLayer, IncludeSpec, LayerEntry, MetadataTable, PackageFormat, Role};
use crate::settings::{DEFAULT_ARCH, DEFAULT_RUNTIME, Options};
use crate::shard::{Shard, ShardListing};
use crate::target::{Arch, Runtime};
use crate::workspace::{Package, Workspace};

/// One artifact-to-be, with every setting merged: a function or an extension (one bin each) or
/// a layer (a whole package). It is built and packed once per architecture in `archs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// The artifact's name: the bin's for functions and extensions, the package's for layers.
    pub name: String,
    pub package: String,
    pub role: Role,
    /// Binaries packed: the one bin of a function or extension, every bin of a layer.
    pub bins: Vec<String>,
    /// The function's binary is an example target (`--example`), not a bin.
    pub example: bool,
    /// cdylib targets packed into a layer's `lib/`.
    pub cdylibs: Vec<String>,
    /// Sorted, non-empty.
    pub archs: Vec<Arch>,
    /// Runtimes the artifact serves, sorted and non-empty: a function has exactly one; a layer or
    /// extension has those of the functions attaching it.
    pub runtimes: Vec<Runtime>,
    pub includes: Vec<IncludeSpec>,
    /// Names of the layer and extension artifacts a function attaches, in merge order.
    pub layers: Vec<String>,
    /// Layers a function attaches by version ARN, each with its place in the merge order among
    /// all its layers (the workspace artifacts of `layers` fill the other places).
    pub arn_layers: Vec<AttachedArn>,
    pub format: PackageFormat,
    /// Finding codes downgraded to warnings.
    pub allow: Vec<String>,
    /// `FROM` of the function's Dockerfile when it becomes an image.
    pub base_image: Option<String>,
    /// Where `--push` sends the function's image.
    pub image_repository: Option<String>,
    /// The package's version: the tag `--push` gives an image is `<version>-<arch>`.
    pub version: String,
    /// Bundle shared libraries the runtime lacks into a `<function>-libs` layer.
    pub bundle_libs: bool,
    /// Link the dependency list into the binaries (cargo-auditable's `.dep-v0`).
    pub auditable: bool,
    /// Functions: their environment variables, merged workspace → package → bin.
    pub env: BTreeMap<String, String>,
    /// Functions: what Lambda passes to the runtime as `_HANDLER` (`handler`, default
    /// `bootstrap`).
    pub handler: String,
    /// Layers and extensions: `compatible_runtimes` as written (then the runtimes of the
    /// functions attaching it); `None` lists the attaching functions' runtimes, as before.
    pub compatible_runtimes: Option<Vec<String>>,
    /// Why the unit looks the way it does (role, architecture), for `plan`.
    pub reasons: Vec<String>,
    /// Whether the role rests on settings and dependencies, or is left to the built binary.
    pub role_evidence: RoleEvidence,
    /// Functions: `memory` (MB) and `ephemeral_storage` (MB), bin over package over workspace.
    pub memory: Option<u64>,
    pub ephemeral_storage: Option<u64>,
}

/// What a unit's role rests on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RoleEvidence {
    /// A `role` key, or a Lambda runtime or extension crate among the dependencies.
    #[default]
    Settled,
    /// A bin with no `role` set that reaches no Lambda crate: the built binary decides. The
    /// plan leaves out one that never reads `AWS_LAMBDA_RUNTIME_API` (a development server, a
    /// tool), or, when `--bin` named it, gives it the `not-lambda-binary` finding.
    Guessed { named: bool },
    /// No `role` key: the package reaches lambda_runtime or lambda_http (and not
    /// lambda-extension). Some external extensions are built on these too (one that serves the
    /// Runtime API for a web server), which the binary tells (`plan::lambda_binary`).
    RuntimeCrate,
}

/// The units of a run, with the warnings met while resolving them.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub units: Vec<Unit>,
    pub warnings: Vec<String>,
    /// Packages whose artifacts this run produces (the selection plus attached crates).
    pub packages: BTreeSet<String>,
}

/// Crate names that mark a binary as speaking the Runtime API.
const RUNTIME_CRATES: [&str; 2] = ["lambda_runtime", "lambda_http"];
/// The crate that marks a binary as an extension, under its name and the early one.
const EXTENSION_CRATE: &str = "lambda-extension";
const EXTENSION_CRATE_EARLY: &str = "lambda_extension";

/// A unit before architectures and attachments are settled.
struct Draft {
    unit: Unit,
    /// The first table (bin, package, workspace) that set each key, for the strongest-wins merge.
    /// Sorted, non-empty: one artifact per architecture.
    explicit_arch: Option<(Vec<Arch>, &'static str)>,
    explicit_runtime: Option<Runtime>,
    /// `layers = [...]` as written: package names and ARNs.
    attach: Vec<LayerEntry>,
    manifest_path: std::path::PathBuf,
}

/// Merges settings, decides each crate's role, expands attachments and architectures.
///
/// Packages without a bin or cdylib are skipped. `--bin` narrows functions and extensions to
/// the named bins. Crates attached by a selected function are packed even when not selected
/// themselves, like cargo builds dependencies.
pub fn resolve_units(
    workspace: &Workspace,
    packages: &[&Package],
    options: &Options,
) -> Result<Resolved> {
    check_bin_selection(packages, options)?;
    let mut warnings = Vec::new();
    let mut drafts: Vec<Draft> = Vec::new();
    let mut selected: BTreeSet<String> = packages.iter().map(|p| p.name.clone()).collect();
    // Crates attached by selected functions join the run.
    let mut queue: Vec<&Package> = packages.to_vec();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(package) = queue.pop() {
        if !seen.insert(package.name.clone()) {
            continue;
        }
        let narrow = selected.contains(&package.name);
        let package = &features::buildable(package, options, &mut warnings)?;
        for draft in package_drafts(workspace, package, options, narrow)? {
            for entry in &draft.attach {
                if let LayerEntry::Crate(name) = entry
                    && let Some(attached) = workspace.package(name)
                    && !seen.contains(name)
                {
                    queue.push(attached);
                }
            }
            drafts.push(draft);
        }
    }
    selected.extend(seen);
    let units = settle(workspace, drafts)?;
    check_unique_names(&units)?;
    Ok(Resolved {
        units,
        warnings,
        packages: selected,
    })
}

fn check_bin_selection(packages: &[&Package], options: &Options) -> Result<()> {
    for name in &options.selection.bins {
        if !packages.iter().any(|p| p.bins.contains(name)) {
            let known: Vec<&str> = packages
                .iter()
                .flat_map(|p| p.bins.iter().map(String::as_str))
                .collect();
            return Err(Error::config(format!(
                "no binary target named `{name}` in the selected packages"
            ))
            .with_note(format!(
                "available binaries: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
            .with_help("pass one of the available binaries to --bin"));
        }
    }
    for name in &options.selection.examples {
        if !packages.iter().any(|p| p.examples.contains(name)) {
            let known: Vec<&str> = packages
                .iter()
                .flat_map(|p| p.examples.iter().map(String::as_str))
                .collect();
            return Err(Error::config(format!(
                "no example target named `{name}` in the selected packages"
            ))
            .with_note(format!(
                "available examples: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
            .with_help(
                "pass one of the available examples to --example, or select its package with -p",
            ));
        }
    }
    Ok(())
}

/// The first table (strongest) that sets a key wins: bin, then package, then workspace.
fn pick<'a, T>(
    tables: &[(&'a MetadataTable, &'static str)],
    get: impl Fn(&'a MetadataTable) -> Option<T>,
) -> Option<(T, &'static str)> {
    tables
        .iter()
        .find_map(|(table, source)| get(table).map(|v| (v, *source)))
}

/// Splits one package into drafts: one per function or extension bin, one for a layer.
fn package_drafts(
    workspace: &Workspace,
    package: &Package,
    options: &Options,
    narrow_to_selected_bins: bool,
) -> Result<Vec<Draft>> {
    for bin_name in package.metadata.bins.keys() {
        if !package.bins.contains(bin_name) && !package.examples.contains(bin_name) {
            return Err(Error::config(format!(
                "[package.metadata.lambda-pack.bin.{bin_name}] in `{}` names no binary of package `{}`",
                package.manifest_path.display(),
                package.name
            ))
            .with_note(format!("binaries of `{}`: {}", package.name, package.bins.join(", ")))
            .with_help("rename the table after one of the binaries, or remove it"));
        }
    }
    let empty = MetadataTable::default();
    let package_tables = [
        (&package.metadata.table, "package metadata"),
        (&workspace.defaults, "workspace metadata"),
    ];
    let reached = reached_crates(workspace, package);
    let depends = |name: &str| {
        reached.contains(name)
            || (name == EXTENSION_CRATE && reached.contains(EXTENSION_CRATE_EARLY))
    };
    // The package-level role, explicit or inferred.
    let (package_role, package_reason) = match package.metadata.table.role {
        Some(role) => (
            Some(role),
            format!(
                "role = \"{}\" in [package.metadata.lambda-pack]",
                role.name()
            ),
        ),
        // lambda-extension beside a runtime crate is an internal extension: it runs inside the
        // function's own process, so the crate is still a function (decided per bin below).
        None if depends(EXTENSION_CRATE) && !RUNTIME_CRATES.iter().any(|c| depends(c)) => (
            Some(Role::Extension),
            format!("depends on {EXTENSION_CRATE}"),
        ),
        None if !package.cdylibs.is_empty() && package.bins.is_empty() => (
            Some(Role::Layer),
            "a cdylib library and no binaries".to_string(),
        ),
        None => (None, String::new()),
    };
    let mut drafts = Vec::new();
    let mut layer_bins = Vec::new();
    let mut runtime_bins: Vec<(String, String)> = Vec::new();
    for bin in &package.bins {
        let bin_table = package.metadata.bins.get(bin).unwrap_or(&empty);
        let attached = attaches_layers(package, bin_table);
        let (role, reason) = match bin_table.role {
            Some(Role::Layer) => {
                return Err(Error::config(format!(
                    "role = \"layer\" in [package.metadata.lambda-pack.bin.{bin}] of `{}`: a layer is a whole package",
                    package.manifest_path.display()
                ))
                .with_help("set role = \"layer\" in [package.metadata.lambda-pack] to pack the package's bins, cdylibs and includes as one layer"));
            }
            Some(role) => (
                role,
                format!(
                    "role = \"{}\" in [package.metadata.lambda-pack.bin.{bin}]",
                    role.name()
                ),
            ),
            None => match package_role {
                Some(role) => (role, package_reason.clone()),
                None if RUNTIME_CRATES.iter().any(|c| depends(c)) => {
                    let crate_name = RUNTIME_CRATES.iter().find(|c| depends(c)).expect("checked");
                    let reason = if depends(EXTENSION_CRATE) {
                        format!(
                            "a binary that depends on {crate_name} and {EXTENSION_CRATE} (an internal extension, run in the function's process)"
                        )
                    } else {
                        format!("a binary that depends on {crate_name}")
                    };
                    (Role::Function, reason)
                }
                None if attached => (Role::Function, LAYERS_REASON.to_string()),
                None => (
                    Role::Function,
                    "a binary with no role set and no Lambda crate among its dependencies: a function if the binary reads AWS_LAMBDA_RUNTIME_API".to_string(),
                ),
            },
        };
        if role == Role::Layer {
            layer_bins.push(bin.clone());
            continue;
        }
        if role == Role::Runtime {
            runtime_bins.push((bin.clone(), reason));
            continue;
        }
        if narrow_to_selected_bins
            && options.selection.names_targets()
            && !options.selection.bins.contains(bin)
        {
            continue;
        }
        let mut tables = vec![(bin_table, "bin table")];
        tables.extend(package_tables);
        let mut bin_draft = draft(
            package,
            options,
            &tables,
            role,
            bin.clone(),
            vec![bin.clone()],
            Vec::new(),
            reason,
        )?;
        if bin_table.role.is_none() && package_role.is_none() {
            bin_draft.unit.role_evidence = infer_evidence(
                RUNTIME_CRATES.iter().any(|c| depends(c)),
                depends(EXTENSION_CRATE),
                attached,
                options.selection.bins.contains(bin),
            );
        }
        drafts.push(bin_draft);
    }
    // Examples are packed only when asked for (as cargo builds them), always as functions: a
    // function kept as an example of a library crate is the usual case.
    for example in package
        .examples
        .iter()
        .filter(|e| narrow_to_selected_bins && options.selection.wants_example(e))
    {
        let bin_table = package.metadata.bins.get(example).unwrap_or(&empty);
        let mut tables = vec![(bin_table, "bin table")];
        tables.extend(package_tables);
        let mut example_draft = draft(
            package,
            options,
            &tables,
            Role::Function,
            example.clone(),
            vec![example.clone()],
            Vec::new(),
            format!("example `{example}` selected with --example/--examples"),
        )?;
        example_draft.unit.example = true;
        drafts.push(example_draft);
    }
    if let Some(runtime) = runtime_draft(
        package,
        options,
        &package_tables,
        runtime_bins,
        package_role == Some(Role::Runtime),
        narrow_to_selected_bins,
    )? {
        drafts.push(runtime);
    }
    if let Some(handler_only) = handler_only_draft(
        package,
        options,
        &package_tables,
        package_role,
        narrow_to_selected_bins,
    )? {
        drafts.push(handler_only);
    }
    if package_role == Some(Role::Layer) {
        drafts.push(draft(
            package,
            options,
            &package_tables,
            Role::Layer,
            package.name.clone(),
            layer_bins,
            package.cdylibs.clone(),
            package_reason,
        )?);
    }
    Ok(drafts)
}

#[allow(clippy::too_many_arguments)]
fn draft(
    package: &Package,
    options: &Options,
    tables: &[(&MetadataTable, &'static str)],
    role: Role,
    name: String,
    bins: Vec<String>,
    cdylibs: Vec<String>,
    reason: String,
) -> Result<Draft> {
    // Workspace-level layers (cargo-lambda's `[workspace.metadata.lambda.deploy] layers`) are
    // for the workspace's functions; its layers and extensions attach nothing.
    let attach = pick(tables, |t| t.layers.clone())
        .filter(|(_, source)| role == Role::Function || *source != "workspace metadata")
        .map(|(v, _)| v)
        .unwrap_or_default();
    if role != Role::Function && !attach.is_empty() {
        return Err(Error::config(format!(
            "`layers` in `{}` is set on {} `{name}`: only functions attach layers",
            package.manifest_path.display(),
            role.name()
        ))
        .with_help("move `layers` to the functions that use these crates"));
    }
    let mut allow = options.allow.clone();
    allow.extend(
        pick(tables, |t| t.allow.clone())
            .map(|(v, _)| v)
            .unwrap_or_default(),
    );
    allow.sort();
    allow.dedup();
    let explicit_arch = if let Some(target) = options.target {
        Some((vec![target.arch], "--target"))
    } else if let Some(arch) = options.arch {
        Some((vec![arch], "--arch"))
    } else {
        pick(tables, |t| t.arch.clone())
    };
    let explicit_runtime = options
        .runtime
        .or_else(|| pick(tables, |t| t.runtime).map(|(v, _)| v));
    let (env, compatible_runtimes) = lambda_settings(package, tables, role, &name)?;
    let handler = handler_setting(package, tables, role, &name)?;
    let mut reasons = vec![format!("{}: {reason}", role.name())];
    if !env.is_empty() {
        let keys: Vec<&str> = env.keys().map(String::as_str).collect();
        reasons.push(format!("env: {}", keys.join(", ")));
    }
    if handler != runtime::DEFAULT_HANDLER {
        reasons.push(format!("handler: {handler} (Lambda passes it as _HANDLER)"));
    }
    Ok(Draft {
        unit: Unit {
            name,
            package: package.name.clone(),
            role,
            bins,
            example: false,
            cdylibs,
            archs: Vec::new(),
            runtimes: Vec::new(),
            includes: pick(tables, |t| t.include.clone())
                .map(|(v, _)| v)
                .unwrap_or_default(),
            layers: Vec::new(),
            arn_layers: Vec::new(),
            format: pick(tables, |t| t.package)
                .map(|(v, _)| v)
                .unwrap_or_default(),
            allow,
            base_image: pick(tables, |t| t.base_image.clone()).map(|(v, _)| v),
            image_repository: pick(tables, |t| t.image_repository.clone()).map(|(v, _)| v),
            version: package.version.clone(),
            bundle_libs: pick(tables, |t| t.bundle_libs)
                .map(|(v, _)| v)
                .unwrap_or(true),
            auditable: pick(tables, |t| t.auditable)
                .map(|(v, _)| v)
                .unwrap_or(true),
            env,
            handler,
            compatible_runtimes,
            reasons,
            role_evidence: RoleEvidence::Settled,
            memory: pick(tables, |t| t.deploy.memory)
                .filter(|_| role == Role::Function)
                .map(|(v, _)| v),
            ephemeral_storage: pick(tables, |t| t.deploy.ephemeral_storage)
                .filter(|_| role == Role::Function)
                .map(|(v, _)| v),
        },
        explicit_arch,
        explicit_runtime,
        attach,
        manifest_path: package.manifest_path.clone(),
    })
}

/// A function's environment variables, by name.
type Env = BTreeMap<String, String>;

/// `env` merged key by key (workspace, then package, then bin: the later wins) for a function,
/// and `compatible_runtimes` for a layer or extension. Each key is refused where it means
/// nothing: `env` on a layer or extension's own tables, `compatible_runtimes` on a function's.
fn lambda_settings(
    package: &Package,
    tables: &[(&MetadataTable, &'static str)],
    role: Role,
    name: &str,
) -> Result<(Env, Option<Vec<String>>)> {
    let own = |source: &str| source != "workspace metadata";
    let misplaced = |key: &str, help: &str| {
        Error::config(format!(
            "`{key}` in `{}` is set on {} `{name}`",
            package.manifest_path.display(),
            role.name()
        ))
        .with_help(help.to_string())
    };
    if role != Role::Function {
        if tables
            .iter()
            .any(|(t, source)| own(source) && t.env.is_some())
        {
            return Err(misplaced(
                "env",
                "environment variables belong to the functions (Lambda sets them per function): move `env` to the functions that use it",
            ));
        }
        let runtimes = pick(tables, |t| t.compatible_runtimes.clone()).map(|(v, _)| v);
        return Ok((BTreeMap::new(), runtimes));
    }
    if tables
        .iter()
        .any(|(t, source)| own(source) && t.compatible_runtimes.is_some())
    {
        return Err(misplaced(
            "compatible_runtimes",
            "only layers and extensions list compatible runtimes; a function's runtime is `runtime`",
        ));
    }
    let mut env = BTreeMap::new();
    for (table, _) in tables.iter().rev() {
        if let Some(values) = &table.env {
            env.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    // Every rule again on the merged table: the size is only known here, and cargo-lambda's
    // tables (`cargo_lambda.rs`) come in beside the metadata's own.
    if let Err(why) = crate::lambda_rules::check_env(&env) {
        return Err(Error::config(format!(
            "the environment of function `{name}` (`env` in `{}` and the workspace) is not one Lambda takes: {why}",
            package.manifest_path.display(),
        ))
        .with_help("keep large configuration in a file (include) or a parameter store, and its name in `env`; values are text without NUL bytes"));
    }
    Ok((env, None))
}

mod features;
mod reach;
use reach::{LAYERS_REASON, attaches_layers, infer_evidence, reached_crates};
mod runtime;
pub use runtime::DEFAULT_HANDLER;
use runtime::{handler_only_draft, handler_setting, runtime_draft};
mod settle;
pub use settle::AttachedArn;
use settle::{check_unique_names, settle};

/// `--shard K/N`: the roots split are the functions, plus layers and extensions that no selected
/// function attaches (they would otherwise be packed by no shard). A shard packs its roots and
/// every unit they attach; a layer attached from several shards is built in each, with identical
/// bytes (its architectures and runtimes stay those of the whole selection).
pub fn shard(units: Vec<Unit>, shard: Shard) -> (Vec<Unit>, Vec<ShardListing>) {
    let attached: BTreeSet<&str> = units
        .iter()
        .filter(|u| u.role == Role::Function)
        .flat_map(|u| u.layers.iter().map(String::as_str))
        .collect();
    let roots: Vec<&Unit> = units
        .iter()
        .filter(|u| u.role == Role::Function || !attached.contains(u.name.as_str()))
        .collect();
    let listing = crate::shard::split(roots.iter().map(|u| u.name.as_str()), shard);
    let mine: BTreeSet<&str> = listing[(shard.index - 1) as usize]
        .functions
        .iter()
        .map(String::as_str)
        .collect();
    let kept: BTreeSet<String> = roots
        .iter()
        .filter(|u| mine.contains(u.name.as_str()))
        .flat_map(|u| std::iter::once(u.name.clone()).chain(u.layers.iter().cloned()))
        .collect();
    let units = units
        .into_iter()
        .filter(|u| kept.contains(&u.name))
        .collect();
    (units, listing)
}

#[cfg(test)]
mod tests;
