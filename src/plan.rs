//! The plan: every artifact, its kind, format, entries, modes and paths, decided without I/O.
//!
//! [`plan`] is a pure function of the units (settings merged), the build requests and the facts
//! gathered about built binaries and includes. The same inputs give the same plan, byte for byte
//! once serialized; `emit` then carries it out without making a decision of its own, and
//! `cargo lambda-pack plan` prints it without writing anything.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::build::BuildRequest;
use crate::emit::zip::ZipTimestamp;
use crate::error::{Error, Result};
use crate::include::IncludedFile;
use crate::metadata::Role;
use crate::settings::Unit;
use crate::target::{Arch, GlibcVersion, Runtime, RustTarget};
use crate::toolchain::Linker;

/// The file name Lambda's OS-only runtimes execute.
pub const BOOTSTRAP: &str = "bootstrap";
/// Lambda's limit on a function and all its layers, unzipped (`Unzipped size must be smaller
/// than 262144000 bytes`).
pub const MAX_UNZIPPED_BYTES: u64 = 262_144_000;
/// The mode of executables and directories in archives.
pub const MODE_EXECUTABLE: u32 = 0o755;
/// The mode of other files in archives.
pub const MODE_FILE: u32 = 0o644;

/// Everything known about one unit once its binary is built.
#[derive(Clone, Debug)]
pub struct UnitFacts {
    pub unit: Unit,
    pub target: RustTarget,
    pub linker: Linker,
    pub glibc: Option<GlibcVersion>,
    pub binary: PathBuf,
    pub binary_size: u64,
    pub includes: Vec<IncludedFile>,
}

#[derive(Clone, Debug)]
pub struct PlanInputs {
    pub units: Vec<UnitFacts>,
    pub builds: Vec<BuildRequest>,
    pub source_date_epoch: Option<u64>,
    /// Artifacts the previous manifest in the output directory lists: `(path, package)`.
    pub previous: Vec<(String, String)>,
    /// Packages this run packs; their earlier artifacts that are not produced again are stale.
    pub selected_packages: BTreeSet<String>,
    /// Every workspace member; artifacts of packages that left the workspace are stale too.
    pub workspace_packages: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    Function,
    Extension,
    Layer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Zip,
    Image,
}

/// One entry of an archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Path inside the archive; directories end with `/`.
    pub path: String,
    pub mode: u32,
    /// The file to copy, or `None` for a directory.
    pub source: Option<PathBuf>,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedArtifact {
    pub name: String,
    pub package: String,
    pub bin: Option<String>,
    pub kind: ArtifactKind,
    pub format: Format,
    pub arch: Arch,
    pub runtime: Runtime,
    pub target: String,
    pub linker: Linker,
    pub glibc: Option<String>,
    /// Where the artifact goes, relative to the output directory, `/`-separated.
    pub path: String,
    pub entries: Vec<Entry>,
    pub layers: Vec<String>,
    pub size_unzipped: u64,
    /// Why the artifact looks the way it does, one decision per line, for `plan`.
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub builds: Vec<BuildRequest>,
    pub timestamp: ZipTimestamp,
    pub artifacts: Vec<PlannedArtifact>,
    /// Files of earlier runs to delete, relative to the output directory: artifacts of packages
    /// packed in this run (or gone from the workspace) that this run no longer produces.
    pub stale: Vec<String>,
}

pub fn plan(inputs: &PlanInputs) -> Result<Plan> {
    let mut artifacts = inputs
        .units
        .iter()
        .map(plan_unit)
        .collect::<Result<Vec<_>>>()?;
    artifacts.sort_by(|a, b| (a.arch, &a.name).cmp(&(b.arch, &b.name)));
    let produced: BTreeSet<&str> = artifacts.iter().map(|a| a.path.as_str()).collect();
    let mut stale: Vec<String> = inputs
        .previous
        .iter()
        .filter(|(path, package)| {
            !produced.contains(path.as_str())
                && (inputs.selected_packages.contains(package)
                    || !inputs.workspace_packages.contains(package))
        })
        .map(|(path, _)| path.clone())
        .collect();
    stale.sort();
    stale.dedup();
    Ok(Plan {
        builds: inputs.builds.clone(),
        timestamp: ZipTimestamp::from_epoch(inputs.source_date_epoch),
        artifacts,
        stale,
    })
}

fn plan_unit(facts: &UnitFacts) -> Result<PlannedArtifact> {
    let unit = &facts.unit;
    let mut entries = vec![Entry {
        path: BOOTSTRAP.to_string(),
        mode: MODE_EXECUTABLE,
        source: Some(facts.binary.clone()),
        size: facts.binary_size,
    }];
    let mut directories = BTreeSet::new();
    for file in &facts.includes {
        if file.dest == BOOTSTRAP || file.dest.starts_with("bootstrap/") {
            return Err(Error::config(format!(
                "include \"{}\" of package `{}` would overwrite `{BOOTSTRAP}`, the function's executable",
                file.spec, unit.package
            ))
            .with_help("give the include another destination with `source:destination`"));
        }
        let mut parent = file.dest.as_str();
        while let Some((dir, _)) = parent.rsplit_once('/') {
            directories.insert(format!("{dir}/"));
            parent = dir;
        }
        entries.push(Entry {
            path: file.dest.clone(),
            mode: if file.executable {
                MODE_EXECUTABLE
            } else {
                MODE_FILE
            },
            source: Some(file.source.clone()),
            size: file.size,
        });
    }
    entries.extend(directories.into_iter().map(|path| Entry {
        path,
        mode: MODE_EXECUTABLE,
        source: None,
        size: 0,
    }));
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let size_unzipped = entries.iter().map(|e| e.size).sum();

    let mut reasons = vec![format!(
        "function: bin `{}` of package `{}`{}",
        unit.bin,
        unit.package,
        if unit.role == Role::Function {
            ""
        } else {
            " (role not yet supported; packed as a function)"
        }
    )];
    reasons.push(format!(
        "{} ({}), runtime {}",
        unit.arch, unit.arch_source, unit.runtime
    ));
    reasons.push(match facts.glibc {
        Some(glibc) => format!(
            "{} linked by {} against glibc {glibc}",
            facts.target,
            facts.linker.describe()
        ),
        None => format!("{} linked by {}", facts.target, facts.linker.describe()),
    });
    if !facts.includes.is_empty() {
        reasons.push(format!("{} included file(s)", facts.includes.len()));
    }
    reasons.push(format!(
        "zip: {} unzipped, within the {} limit",
        human_bytes(size_unzipped),
        human_bytes(MAX_UNZIPPED_BYTES)
    ));

    Ok(PlannedArtifact {
        name: unit.name.clone(),
        package: unit.package.clone(),
        bin: Some(unit.bin.clone()),
        kind: ArtifactKind::Function,
        format: Format::Zip,
        arch: unit.arch,
        runtime: unit.runtime,
        target: facts.target.triple(),
        linker: facts.linker,
        glibc: facts.glibc.map(|g| g.to_string()),
        path: format!("{}/{}.zip", unit.arch, unit.name),
        entries,
        layers: unit.layers.clone(),
        size_unzipped,
        reasons,
    })
}

/// Sizes the way people read them: `1.2 MB` (decimal, as AWS's console shows limits).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{IncludeSpec, PackageFormat};
    use crate::target::Libc;

    fn facts(name: &str, arch: Arch, includes: Vec<IncludedFile>) -> UnitFacts {
        UnitFacts {
            unit: Unit {
                package: format!("pkg-{name}"),
                bin: name.into(),
                name: name.into(),
                role: Role::Function,
                arch,
                runtime: Runtime::ProvidedAl2023,
                includes: vec![IncludeSpec {
                    pattern: "x".into(),
                    dest: None,
                }],
                layers: vec![],
                format: PackageFormat::Auto,
                arch_source: "package metadata",
            },
            target: RustTarget::new(arch, Libc::Musl),
            linker: Linker::RustLld,
            glibc: None,
            binary: format!("/t/{name}").into(),
            binary_size: 1000,
            includes,
        }
    }

    fn include(dest: &str, size: u64, executable: bool) -> IncludedFile {
        IncludedFile {
            source: format!("/ws/{dest}").into(),
            dest: dest.into(),
            size,
            executable,
            spec: dest.into(),
        }
    }

    #[test]
    fn function_zip_has_bootstrap_includes_and_their_directories() {
        let inputs = PlanInputs {
            units: vec![facts(
                "fn-a",
                Arch::X86_64,
                vec![
                    include("etc/app.toml", 5, false),
                    include("bin/tool", 7, true),
                ],
            )],
            builds: vec![],
            source_date_epoch: None,
            ..empty_inputs()
        };
        let plan = plan(&inputs).unwrap();
        let artifact = &plan.artifacts[0];
        assert_eq!(artifact.path, "x86_64/fn-a.zip");
        let listing: Vec<(&str, u32)> = artifact
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.mode))
            .collect();
        assert_eq!(
            listing,
            [
                ("bin/", 0o755),
                ("bin/tool", 0o755),
                ("bootstrap", 0o755),
                ("etc/", 0o755),
                ("etc/app.toml", 0o644)
            ]
        );
        assert_eq!(artifact.size_unzipped, 1012);
    }

    #[test]
    fn include_may_not_replace_bootstrap() {
        let inputs = PlanInputs {
            units: vec![facts(
                "fn-a",
                Arch::X86_64,
                vec![include("bootstrap", 5, true)],
            )],
            builds: vec![],
            source_date_epoch: None,
            ..empty_inputs()
        };
        let err = plan(&inputs).unwrap_err();
        assert!(
            err.to_string().contains("would overwrite `bootstrap`"),
            "{err}"
        );
    }

    #[test]
    fn plan_is_deterministic_and_sorted() {
        let inputs = PlanInputs {
            units: vec![
                facts("zeta", Arch::X86_64, vec![]),
                facts("alpha", Arch::Arm64, vec![]),
                facts("beta", Arch::X86_64, vec![]),
            ],
            builds: vec![],
            source_date_epoch: Some(1_700_000_000),
            ..empty_inputs()
        };
        let first = serde_json::to_string(&plan(&inputs).unwrap()).unwrap();
        let second = serde_json::to_string(&plan(&inputs).unwrap()).unwrap();
        assert_eq!(first, second);
        let names: Vec<String> = plan(&inputs)
            .unwrap()
            .artifacts
            .into_iter()
            .map(|a| a.path)
            .collect();
        assert_eq!(
            names,
            ["x86_64/beta.zip", "x86_64/zeta.zip", "arm64/alpha.zip"]
        );
    }

    fn empty_inputs() -> PlanInputs {
        PlanInputs {
            units: vec![],
            builds: vec![],
            source_date_epoch: None,
            previous: vec![],
            selected_packages: BTreeSet::new(),
            workspace_packages: BTreeSet::new(),
        }
    }

    #[test]
    fn stale_artifacts_of_selected_or_removed_packages_are_removed() {
        let inputs = PlanInputs {
            units: vec![facts("fn-a", Arch::X86_64, vec![])],
            previous: vec![
                ("x86_64/fn-a.zip".into(), "pkg-fn-a".into()),
                ("x86_64/old-bin.zip".into(), "pkg-fn-a".into()),
                ("x86_64/other.zip".into(), "pkg-other".into()),
                ("x86_64/gone.zip".into(), "pkg-gone".into()),
            ],
            selected_packages: ["pkg-fn-a".to_string()].into(),
            workspace_packages: ["pkg-fn-a".to_string(), "pkg-other".to_string()].into(),
            ..empty_inputs()
        };
        assert_eq!(
            plan(&inputs).unwrap().stale,
            ["x86_64/gone.zip", "x86_64/old-bin.zip"]
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(262_144_000), "262.1 MB");
    }
}
