//! Flags ⊕ `[workspace.metadata.lambda-pack]` ⊕ `[package.metadata.lambda-pack]` (⊕ per-bin tables),
//! validated once. This module is the only home of defaults: later stages never guess.
//!
//! Precedence, strongest first: command-line flags (`--arch`, `--target`, `--runtime`), the bin's
//! table, the package's table, the workspace's table, then the built-in defaults (x86_64,
//! provided.al2023, role function, package auto).

use std::path::PathBuf;

use crate::cli::{self, ArchArg, CompilerChoice, MessageFormat, PackArgs, RuntimeArg};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};

use crate::metadata::{IncludeSpec, MetadataTable, PackageFormat, Role};
use crate::target::{Arch, Runtime, RustTarget};
use crate::workspace::{Package, Selection, Workspace};

pub const DEFAULT_ARCH: Arch = Arch::X86_64;
pub const DEFAULT_RUNTIME: Runtime = Runtime::ProvidedAl2023;
pub const DEFAULT_PROFILE: &str = "release";
/// The directory under the target directory that holds artifacts when `--out-dir` is not given.
pub const OUT_SUBDIR: &str = "lambda-pack";

/// How chatty the terminal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    VeryVerbose,
}

/// Global settings from the command line and environment, validated.
#[derive(Clone, Debug)]
pub struct Options {
    /// The cargo to run: `$CARGO` when cargo started us, else `cargo` on PATH.
    pub cargo: PathBuf,
    pub manifest_path: Option<PathBuf>,
    pub selection: Selection,
    pub profile: String,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    pub jobs: Option<u32>,
    pub locked: bool,
    pub offline: bool,
    pub frozen: bool,
    pub target_dir: Option<PathBuf>,
    pub out_dir: Option<PathBuf>,
    pub arch: Option<Arch>,
    pub runtime: Option<Runtime>,
    pub target: Option<RustTarget>,
    pub compiler: CompilerChoice,
    pub message_format: MessageFormat,
    pub verbosity: Verbosity,
    pub color: cli::ColorChoice,
    /// Seconds since the epoch for every ZIP entry's timestamp (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<u64>,
    /// Finding codes downgraded to warnings for every crate (`--allow`).
    pub allow: Vec<String>,
}

impl Options {
    /// Validates the flags; `env` looks up environment variables (injected for tests).
    pub fn from_args(args: PackArgs, env: impl Fn(&str) -> Option<String>) -> Result<Options> {
        let target = match &args.target {
            Some(triple) => Some(RustTarget::parse(triple).ok_or_else(|| {
                Error::config(format!("--target `{triple}` is not a target AWS Lambda can run"))
                    .with_note("Lambda runs Linux on x86_64 and arm64: x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl, aarch64-unknown-linux-gnu, aarch64-unknown-linux-musl")
                    .with_help("pass one of those triples, or use --arch x86_64|arm64 and let the compiler choice pick the triple")
            })?),
            None => None,
        };
        let source_date_epoch = match env("SOURCE_DATE_EPOCH") {
            Some(value) if !value.trim().is_empty() => {
                Some(value.trim().parse::<u64>().map_err(|_| {
                    Error::config(format!(
                        "environment variable SOURCE_DATE_EPOCH=`{value}` is not a number of seconds"
                    ))
                    .with_help("set it to a Unix timestamp such as `$(git log -1 --format=%ct)`, or unset it")
                })?)
            }
            _ => None,
        };
        let verbosity = match (args.quiet, args.verbose) {
            (true, 0) => Verbosity::Quiet,
            (true, _) => {
                return Err(Error::config("cannot set both --verbose and --quiet")
                    .with_help("pass only one of them"));
            }
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::VeryVerbose,
        };
        let profile = args.profile.unwrap_or_else(|| DEFAULT_PROFILE.to_string());
        if profile == "dev" || profile == "test" {
            // Allowed, but these are debug builds: large and slow on Lambda. No error: people
            // sometimes want a quick debug deploy.
        }
        Ok(Options {
            cargo: env("CARGO")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("cargo")),
            manifest_path: args.manifest_path,
            selection: Selection {
                packages: args.packages,
                workspace: args.workspace,
                exclude: args.exclude,
                bins: args.bins,
            },
            profile,
            features: args.features,
            all_features: args.all_features,
            no_default_features: args.no_default_features,
            jobs: args.jobs,
            locked: args.locked,
            offline: args.offline,
            frozen: args.frozen,
            target_dir: args.target_dir,
            out_dir: args.out_dir,
            arch: args.arch.map(arch_from_arg),
            runtime: args.runtime.map(runtime_from_arg),
            target,
            compiler: args.compiler,
            message_format: args.message_format.unwrap_or(MessageFormat::Human),
            verbosity,
            color: args.color.unwrap_or(cli::ColorChoice::Auto),
            source_date_epoch,
            allow: args.allow,
        })
    }

    /// No network: rustup may not download a target, cargo may not fetch.
    pub fn network_forbidden(&self) -> bool {
        self.offline || self.frozen
    }

    pub fn target_dir(&self, workspace: &Workspace) -> PathBuf {
        self.target_dir
            .clone()
            .unwrap_or_else(|| workspace.target_dir.clone())
    }

    pub fn out_dir(&self, workspace: &Workspace) -> PathBuf {
        self.out_dir
            .clone()
            .unwrap_or_else(|| self.target_dir(workspace).join(OUT_SUBDIR))
    }
}

pub fn arch_from_arg(arg: ArchArg) -> Arch {
    match arg {
        ArchArg::X86_64 => Arch::X86_64,
        ArchArg::Arm64 => Arch::Arm64,
    }
}

pub fn runtime_from_arg(arg: RuntimeArg) -> Runtime {
    match arg {
        RuntimeArg::ProvidedAl2023 => Runtime::ProvidedAl2023,
        RuntimeArg::ProvidedAl2 => Runtime::ProvidedAl2,
    }
}

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
    pub format: PackageFormat,
    /// Finding codes downgraded to warnings.
    pub allow: Vec<String>,
    /// `FROM` of the function's Dockerfile when it becomes an image.
    pub base_image: Option<String>,
    /// Bundle shared libraries the runtime lacks into a `<function>-libs` layer.
    pub bundle_libs: bool,
    /// Why the unit looks the way it does (role, architecture), for `plan`.
    pub reasons: Vec<String>,
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
/// The crate that marks a binary as an extension.
const EXTENSION_CRATE: &str = "lambda-extension";

/// A unit before architectures and attachments are settled.
struct Draft {
    unit: Unit,
    /// The first table (bin, package, workspace) that set each key, for the strongest-wins merge.
    explicit_arch: Option<(Arch, &'static str)>,
    explicit_runtime: Option<Runtime>,
    /// `layers = [...]` as written: package names.
    attach: Vec<String>,
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
        for draft in package_drafts(workspace, package, options, narrow, &mut warnings)? {
            for name in &draft.attach {
                if let Some(attached) = workspace.package(name)
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
    warnings: &mut Vec<String>,
) -> Result<Vec<Draft>> {
    for bin_name in package.metadata.bins.keys() {
        if !package.bins.contains(bin_name) {
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
    let depends = |name: &str| package.dependencies.contains(name);
    // The package-level role, explicit or inferred.
    let (package_role, package_reason) = match package.metadata.table.role {
        Some(role) => (
            Some(role),
            format!(
                "role = \"{}\" in [package.metadata.lambda-pack]",
                role_name(role)
            ),
        ),
        None if depends(EXTENSION_CRATE) => (
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
    for bin in &package.bins {
        let bin_table = package.metadata.bins.get(bin).unwrap_or(&empty);
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
                    role_name(role)
                ),
            ),
            None => match package_role {
                Some(role) => (role, package_reason.clone()),
                None if RUNTIME_CRATES.iter().any(|c| depends(c)) => {
                    let crate_name = RUNTIME_CRATES.iter().find(|c| depends(c)).expect("checked");
                    (
                        Role::Function,
                        format!("a binary that depends on {crate_name}"),
                    )
                }
                None => {
                    warnings.push(format!(
                        "bin `{bin}` of package `{}` is packed as a function, but the package depends on neither lambda_runtime nor lambda_http: it may not speak the Lambda Runtime API (set role = \"function\" in its [package.metadata.lambda-pack] to confirm)",
                        package.name
                    ));
                    (
                        Role::Function,
                        "a binary with no role set (inferred)".to_string(),
                    )
                }
            },
        };
        if role == Role::Layer {
            layer_bins.push(bin.clone());
            continue;
        }
        if narrow_to_selected_bins
            && !options.selection.bins.is_empty()
            && !options.selection.bins.contains(bin)
        {
            continue;
        }
        let mut tables = vec![(bin_table, "bin table")];
        tables.extend(package_tables);
        drafts.push(draft(
            package,
            options,
            &tables,
            role,
            bin.clone(),
            vec![bin.clone()],
            Vec::new(),
            reason,
        )?);
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
    let attach = pick(tables, |t| t.layers.clone())
        .map(|(v, _)| v)
        .unwrap_or_default();
    if role != Role::Function && !attach.is_empty() {
        return Err(Error::config(format!(
            "`layers` in `{}` is set on {} `{name}`: only functions attach layers",
            package.manifest_path.display(),
            role_name(role)
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
        Some((target.arch, "--target"))
    } else if let Some(arch) = options.arch {
        Some((arch, "--arch"))
    } else {
        pick(tables, |t| t.arch)
    };
    let explicit_runtime = options
        .runtime
        .or_else(|| pick(tables, |t| t.runtime).map(|(v, _)| v));
    Ok(Draft {
        unit: Unit {
            name,
            package: package.name.clone(),
            role,
            bins,
            cdylibs,
            archs: Vec::new(),
            runtimes: Vec::new(),
            includes: pick(tables, |t| t.include.clone())
                .map(|(v, _)| v)
                .unwrap_or_default(),
            layers: Vec::new(),
            format: pick(tables, |t| t.package)
                .map(|(v, _)| v)
                .unwrap_or_default(),
            allow,
            base_image: pick(tables, |t| t.base_image.clone()).map(|(v, _)| v),
            bundle_libs: pick(tables, |t| t.bundle_libs)
                .map(|(v, _)| v)
                .unwrap_or(true),
            reasons: vec![format!("{}: {reason}", role_name(role))],
        },
        explicit_arch,
        explicit_runtime,
        attach,
        manifest_path: package.manifest_path.clone(),
    })
}

/// Resolves attachments and gives every layer and extension the architectures and runtimes of
/// the functions that attach it.
/// What flows from the functions attaching a layer or extension to it.
#[derive(Default)]
struct Flow {
    archs: BTreeSet<Arch>,
    runtimes: BTreeSet<Runtime>,
    attached_by: Vec<String>,
}

fn settle(workspace: &Workspace, drafts: Vec<Draft>) -> Result<Vec<Unit>> {
    // Artifact names each package contributes as an attachment.
    let mut attachable: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for draft in &drafts {
        if draft.unit.role != Role::Function {
            attachable
                .entry(draft.unit.package.as_str())
                .or_default()
                .push(draft.unit.name.as_str());
        }
    }
    let mut resolved_layers: Vec<Vec<String>> = Vec::new();
    for draft in &drafts {
        let mut names = Vec::new();
        for crate_name in &draft.attach {
            let location = format!("`layers` in `{}`", draft.manifest_path.display());
            if *crate_name == draft.unit.package {
                return Err(Error::config(format!("{location} attaches `{crate_name}`, the function's own package"))
                    .with_help("a function cannot be its own layer; move the shared code into a separate layer crate"));
            }
            let Some(package) = workspace.package(crate_name) else {
                let members: Vec<&str> =
                    workspace.members.iter().map(|p| p.name.as_str()).collect();
                return Err(Error::config(format!(
                    "{location} names `{crate_name}`, which is not a crate of this workspace"
                ))
                .with_note(format!("members: {}", members.join(", ")))
                .with_help("attach workspace crates whose role is layer or extension"));
            };
            match attachable.get(crate_name.as_str()) {
                Some(artifacts) => names.extend(artifacts.iter().map(|s| s.to_string())),
                None => {
                    let what = if package.bins.is_empty() && package.cdylibs.is_empty() {
                        "has no binary or cdylib to pack".to_string()
                    } else {
                        "is a function, not a layer or extension".to_string()
                    };
                    return Err(Error::config(format!("{location} attaches `{crate_name}`, which {what}"))
                        .with_help(format!("set role = \"layer\" or role = \"extension\" in `{}`, or remove it from `layers`", package.manifest_path.display())));
                }
            }
        }
        resolved_layers.push(names);
    }
    // Architectures and runtimes flow from functions to what they attach.
    let mut flows: BTreeMap<String, Flow> = BTreeMap::new();
    for (draft, layers) in drafts.iter().zip(&resolved_layers) {
        if draft.unit.role != Role::Function {
            continue;
        }
        let arch = draft.explicit_arch.map(|(a, _)| a).unwrap_or(DEFAULT_ARCH);
        let runtime = draft.explicit_runtime.unwrap_or(DEFAULT_RUNTIME);
        for layer in layers {
            let flow = flows.entry(layer.clone()).or_default();
            flow.archs.insert(arch);
            flow.runtimes.insert(runtime);
            if !flow.attached_by.contains(&draft.unit.name) {
                flow.attached_by.push(draft.unit.name.clone());
                flow.attached_by.sort();
            }
        }
    }
    let mut units = Vec::new();
    for (draft, layers) in drafts.into_iter().zip(resolved_layers) {
        let mut unit = draft.unit;
        unit.layers = layers;
        let flow = flows.get(&unit.name);
        let mut archs: BTreeSet<Arch> = flow.map(|f| f.archs.clone()).unwrap_or_default();
        let mut runtimes: BTreeSet<Runtime> = flow.map(|f| f.runtimes.clone()).unwrap_or_default();
        match draft.explicit_arch {
            // An architecture written in a layer's or extension's own metadata is a promise about
            // what it contains; a function of another architecture cannot use it.
            Some((arch, source))
                if unit.role != Role::Function
                    && (source.ends_with("metadata") || source == "bin table") =>
            {
                if let Some(other) = archs.iter().find(|a| **a != arch) {
                    let flow = flow.expect("attached archs come from a flow");
                    return Err(Error::config(format!(
                        "{} `{}` is {arch} only (arch = \"{arch}\" in `{}`), but {} attaches it from {other}",
                        role_name(unit.role),
                        unit.name,
                        draft.manifest_path.display(),
                        flow.attached_by.join(", ")
                    ))
                    .with_help(format!(
                        "remove `arch` from the {} so it is built for every architecture that attaches it, or attach it only from {arch} functions",
                        role_name(unit.role)
                    )));
                }
                archs.insert(arch);
                unit.reasons.push(format!("{arch} from {source}"));
            }
            Some((arch, source)) => {
                archs.insert(arch);
                unit.reasons.push(format!("{arch} from {source}"));
            }
            None if archs.is_empty() => {
                archs.insert(DEFAULT_ARCH);
                unit.reasons.push(format!("{DEFAULT_ARCH} (default)"));
            }
            None => {}
        }
        if let Some(flow) = flow {
            unit.reasons.push(format!(
                "attached by {}: built for {}",
                flow.attached_by.join(", "),
                flow.archs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if unit.role == Role::Function || runtimes.is_empty() || draft.explicit_runtime.is_some() {
            runtimes.insert(draft.explicit_runtime.unwrap_or(DEFAULT_RUNTIME));
        }
        unit.archs = archs.into_iter().collect();
        unit.runtimes = runtimes.into_iter().collect();
        units.push(unit);
    }
    units.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(units)
}

fn check_unique_names(units: &[Unit]) -> Result<()> {
    let mut seen: BTreeMap<&str, &Unit> = BTreeMap::new();
    for unit in units {
        if let Some(first) = seen.insert(unit.name.as_str(), unit) {
            return Err(Error::config(format!(
                "two artifacts would be named `{}`: the {} of package `{}` and the {} of package `{}`",
                unit.name,
                role_name(first.role),
                first.package,
                role_name(unit.role),
                unit.package
            ))
            .with_help("rename one of them ([[bin]] name = \"...\" or the package name) so each artifact has its own name"));
        }
    }
    Ok(())
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Function => "function",
        Role::Extension => "extension",
        Role::Layer => "layer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::PackageMetadata;
    use std::path::PathBuf;

    fn package(
        name: &str,
        bins: &[&str],
        cdylibs: &[&str],
        deps: &[&str],
        table: MetadataTable,
    ) -> Package {
        Package {
            name: name.into(),
            id: format!("path+file:///ws/{name}#0.1.0"),
            manifest_path: PathBuf::from(format!("/ws/{name}/Cargo.toml")),
            dir: PathBuf::from(format!("/ws/{name}")),
            bins: bins.iter().map(|s| s.to_string()).collect(),
            cdylibs: cdylibs.iter().map(|s| s.to_string()).collect(),
            dependencies: deps.iter().map(|s| s.to_string()).collect(),
            metadata: PackageMetadata {
                table,
                bins: Default::default(),
            },
        }
    }

    fn workspace(members: Vec<Package>) -> Workspace {
        Workspace {
            root: "/ws".into(),
            root_manifest: "/ws/Cargo.toml".into(),
            target_dir: "/ws/target".into(),
            defaults: MetadataTable::default(),
            default_members: members.iter().map(|p| p.name.clone()).collect(),
            members,
        }
    }

    fn options() -> Options {
        Options::from_args(crate::cli::PackArgs::default(), |_| None).unwrap()
    }

    fn resolve(ws: &Workspace) -> Result<Resolved> {
        let selected = ws.select(&Selection::default())?;
        resolve_units(ws, &selected, &options())
    }

    fn layers(names: &[&str]) -> MetadataTable {
        MetadataTable {
            layers: Some(names.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn roles_are_inferred_and_explained() {
        let ws = workspace(vec![
            package(
                "api",
                &["api"],
                &[],
                &["lambda_http"],
                MetadataTable::default(),
            ),
            package(
                "ext",
                &["ext"],
                &[],
                &["lambda-extension"],
                MetadataTable::default(),
            ),
            package("codec", &[], &["codec"], &[], MetadataTable::default()),
            package("plain", &["plain"], &[], &[], MetadataTable::default()),
            package("util", &[], &[], &[], MetadataTable::default()),
        ]);
        let resolved = resolve(&ws).unwrap();
        let roles: Vec<(&str, Role, &str)> = resolved
            .units
            .iter()
            .map(|u| (u.name.as_str(), u.role, u.reasons[0].as_str()))
            .collect();
        assert_eq!(
            roles,
            [
                (
                    "api",
                    Role::Function,
                    "function: a binary that depends on lambda_http"
                ),
                (
                    "codec",
                    Role::Layer,
                    "layer: a cdylib library and no binaries"
                ),
                (
                    "ext",
                    Role::Extension,
                    "extension: depends on lambda-extension"
                ),
                (
                    "plain",
                    Role::Function,
                    "function: a binary with no role set (inferred)"
                ),
            ],
            "`util` has neither a bin nor a cdylib and is skipped"
        );
        assert_eq!(resolved.warnings.len(), 1);
        assert!(
            resolved.warnings[0].contains("bin `plain` of package `plain`"),
            "{:?}",
            resolved.warnings
        );
        assert!(resolved.warnings[0].contains("may not speak the Lambda Runtime API"));
    }

    #[test]
    fn attached_crates_follow_their_functions_architectures() {
        let x86 = MetadataTable {
            arch: Some(Arch::X86_64),
            ..layers(&["tools"])
        };
        let arm = MetadataTable {
            arch: Some(Arch::Arm64),
            runtime: Some(Runtime::ProvidedAl2),
            ..layers(&["tools", "ext"])
        };
        let layer = MetadataTable {
            role: Some(Role::Layer),
            ..Default::default()
        };
        let ws = workspace(vec![
            package("fn-x", &["fn-x"], &[], &["lambda_runtime"], x86),
            package("fn-a", &["fn-a"], &[], &["lambda_runtime"], arm),
            package("tools", &["tool"], &["tools"], &[], layer),
            package(
                "ext",
                &["ext"],
                &[],
                &["lambda-extension"],
                MetadataTable::default(),
            ),
        ]);
        let units = resolve(&ws).unwrap().units;
        let get = |name: &str| units.iter().find(|u| u.name == name).unwrap();
        assert_eq!(get("tools").archs, [Arch::X86_64, Arch::Arm64]);
        assert_eq!(
            get("tools").runtimes,
            [Runtime::ProvidedAl2023, Runtime::ProvidedAl2]
        );
        assert_eq!(get("tools").bins, ["tool"]);
        assert_eq!(get("tools").cdylibs, ["tools"]);
        assert_eq!(get("ext").archs, [Arch::Arm64]);
        assert_eq!(get("fn-a").layers, ["tools", "ext"]);
        assert!(
            get("tools")
                .reasons
                .iter()
                .any(|r| r == "attached by fn-a, fn-x: built for x86_64, arm64"),
            "{:?}",
            get("tools").reasons
        );
    }

    #[test]
    fn attaching_a_missing_crate_a_function_or_itself_is_an_error() {
        for (attach, expected) in [
            (
                "nope",
                "names `nope`, which is not a crate of this workspace",
            ),
            (
                "other",
                "attaches `other`, which is a function, not a layer or extension",
            ),
            ("fn-a", "the function's own package"),
        ] {
            let ws = workspace(vec![
                package(
                    "fn-a",
                    &["fn-a"],
                    &[],
                    &["lambda_runtime"],
                    layers(&[attach]),
                ),
                package(
                    "other",
                    &["other"],
                    &[],
                    &["lambda_runtime"],
                    MetadataTable::default(),
                ),
            ]);
            let err = resolve(&ws).unwrap_err();
            assert!(err.to_string().contains(expected), "{attach}: {err}");
            assert!(err.to_string().contains("/ws/fn-a/Cargo.toml"), "{err}");
            assert!(err.help.is_some());
        }
    }

    #[test]
    fn attached_crates_join_the_selection() {
        let ws = workspace(vec![
            package(
                "fn-a",
                &["fn-a"],
                &[],
                &["lambda_runtime"],
                layers(&["ext"]),
            ),
            package(
                "ext",
                &["ext"],
                &[],
                &["lambda-extension"],
                MetadataTable::default(),
            ),
        ]);
        let only_fn = Selection {
            packages: vec!["fn-a".into()],
            ..Default::default()
        };
        let selected = ws.select(&only_fn).unwrap();
        let resolved = resolve_units(&ws, &selected, &options()).unwrap();
        let names: Vec<&str> = resolved.units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["ext", "fn-a"]);
        assert!(resolved.packages.contains("ext"));
    }

    #[test]
    fn a_layer_pinned_to_one_architecture_cannot_serve_another() {
        let x86 = MetadataTable {
            arch: Some(Arch::X86_64),
            ..layers(&["tools"])
        };
        let arm_layer = MetadataTable {
            role: Some(Role::Layer),
            arch: Some(Arch::Arm64),
            ..Default::default()
        };
        let ws = workspace(vec![
            package("fn-x", &["fn-x"], &[], &["lambda_runtime"], x86),
            package("tools", &["tool"], &[], &[], arm_layer),
        ]);
        let err = resolve(&ws).unwrap_err();
        assert!(
            err.to_string().contains("layer `tools` is arm64 only"),
            "{err}"
        );
        assert!(
            err.to_string().contains("fn-x attaches it from x86_64"),
            "{err}"
        );
        assert!(err.help.is_some());
    }

    #[test]
    fn same_artifact_name_twice_is_an_error() {
        let ws = workspace(vec![
            package(
                "a",
                &["same"],
                &[],
                &["lambda_runtime"],
                MetadataTable::default(),
            ),
            package(
                "b",
                &["same"],
                &[],
                &["lambda_runtime"],
                MetadataTable::default(),
            ),
        ]);
        let err = resolve(&ws).unwrap_err();
        assert!(
            err.to_string()
                .contains("two artifacts would be named `same`"),
            "{err}"
        );
    }

    #[test]
    fn only_functions_attach_layers_and_layer_is_a_package_role() {
        let ext_with_layers = MetadataTable {
            role: Some(Role::Extension),
            ..layers(&["x"])
        };
        let ws = workspace(vec![package("ext", &["ext"], &[], &[], ext_with_layers)]);
        assert!(
            resolve(&ws)
                .unwrap_err()
                .to_string()
                .contains("only functions attach layers")
        );

        let mut bin_layer = package("p", &["p"], &[], &[], MetadataTable::default());
        bin_layer.metadata.bins.insert(
            "p".into(),
            MetadataTable {
                role: Some(Role::Layer),
                ..Default::default()
            },
        );
        let ws = workspace(vec![bin_layer]);
        assert!(
            resolve(&ws)
                .unwrap_err()
                .to_string()
                .contains("a layer is a whole package")
        );
    }
}
