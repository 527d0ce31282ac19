//! Facts about what was built and what is included, gathered for the planner.
//!
//! This stage does the I/O the pure planner must not: it reads every built binary as ELF,
//! resolves each unit's includes on disk, and looks for shared libraries a function needs but
//! its runtime lacks (the plan decides they become a generated `<function>-libs` layer).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::build::{BuildRequest, Built, TargetKind};
use crate::error::{Error, ErrorKind, Result};
use crate::include::IncludedFile;
use crate::inspect::BinaryFacts;
use crate::output::Shell;
use crate::target::{Arch, GlibcVersion, RustTarget};
use crate::toolchain::Linker;
use crate::units::Unit;
use crate::workspace::Workspace;
use crate::{include, inspect, libs, metadata};

/// A built binary or cdylib, as the planner sees it.
#[derive(Clone, Debug)]
pub struct BinaryInput {
    /// The Cargo target's name (bin name, or lib name for a cdylib).
    pub name: String,
    pub path: PathBuf,
    pub facts: BinaryFacts,
}

/// Everything known about one unit on one architecture once its binaries are built.
#[derive(Clone, Debug)]
pub struct UnitFacts {
    pub unit: Unit,
    pub arch: Arch,
    pub target: RustTarget,
    pub linker: Linker,
    pub glibc: Option<GlibcVersion>,
    /// In the order of `unit.bins`.
    pub binaries: Vec<BinaryInput>,
    /// In the order of `unit.cdylibs`.
    pub cdylibs: Vec<BinaryInput>,
    /// Shared libraries found on the build host that the unit's binaries need and its runtime
    /// lacks, each named by its soname. The plan moves a function's into a generated
    /// `<function>-libs` layer, where each lands at `lib/<soname>`.
    pub libraries: Vec<BinaryInput>,
    pub includes: Vec<IncludedFile>,
}

/// One [`UnitFacts`] per unit and architecture; a function that needs libraries its runtime
/// lacks carries them in `libraries`.
pub fn gather(
    units: &[Unit],
    built: &Built,
    choice_for: impl Fn(&Unit, Arch) -> (RustTarget, Linker),
    requests: &[BuildRequest],
    workspace: &Workspace,
    shell: &Shell,
) -> Result<Vec<UnitFacts>> {
    let mut include_cache: BTreeMap<(String, String), Vec<include::IncludedFile>> = BTreeMap::new();
    let mut facts = Vec::new();
    for unit in units {
        let unit = &measure_arn_copies(unit)?;
        let package = workspace
            .package(&unit.package)
            .expect("units come from workspace members");
        let key = (unit.package.clone(), format!("{:?}", unit.includes));
        let includes = match include_cache.get(&key) {
            Some(files) => files.clone(),
            None => {
                let files = include::resolve(&package.dir, &package.manifest_path, &unit.includes)?;
                include_cache.insert(key, files.clone());
                files
            }
        };
        for arch in &unit.archs {
            let (target, linker) = choice_for(unit, *arch);
            let read = |name: &String, kind: TargetKind| -> Result<BinaryInput> {
                let binary = built
                    .get(&(unit.package.clone(), name.clone(), kind, target))
                    .ok_or_else(|| {
                        Error::internal(format!(
                            "cargo did not report building `{name}` for `{target}`"
                        ))
                    })?;
                let facts = inspect::inspect_file(&binary.path).map_err(|err| {
                    Error::new(ErrorKind::BinaryCheck, format!("cargo built `{}`, but it cannot be read as an ELF binary: {err}", binary.path.display()))
                        .with_help("check the linker configured for this target; `file` on the path shows what it is")
                })?;
                Ok(BinaryInput {
                    name: name.clone(),
                    path: binary.path.clone(),
                    facts,
                })
            };
            let binaries = unit
                .bins
                .iter()
                .map(|b| {
                    read(
                        b,
                        if unit.example {
                            TargetKind::Example
                        } else {
                            TargetKind::Bin
                        },
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let cdylibs = unit
                .cdylibs
                .iter()
                .map(|c| read(c, TargetKind::Cdylib))
                .collect::<Result<Vec<_>>>()?;
            let glibc = requests
                .iter()
                .find(|r| r.target == target)
                .and_then(|r| r.glibc);
            facts.push(UnitFacts {
                unit: unit.clone(),
                arch: *arch,
                target,
                linker,
                glibc,
                binaries,
                cdylibs,
                libraries: Vec::new(),
                includes: includes.clone(),
            });
        }
    }
    find_libraries(&mut facts, shell)?;
    Ok(facts)
}

/// Measures the local copy (`zip`) of every layer a function attaches by ARN: its unzipped size
/// counts toward Lambda's 250 MB limit. A copy that is missing or not a ZIP stops the run.
fn measure_arn_copies(unit: &Unit) -> Result<Unit> {
    let mut unit = unit.clone();
    for attached in &mut unit.arn_layers {
        let Some(zip) = &attached.layer.zip else {
            continue;
        };
        let unreadable = |why: String| {
            Error::config(format!(
                "the local copy `{}` of layer {} (`layers` of `{}`) cannot be read: {why}",
                zip.display(),
                attached.layer.arn,
                unit.name
            ))
            .with_help("put the layer's ZIP at that path (relative to the Cargo.toml that names it), or remove `zip` from the entry")
        };
        let metadata = std::fs::metadata(zip).map_err(|e| unreadable(e.to_string()))?;
        if !metadata.is_file() {
            return Err(unreadable("it is not a regular file".to_string()));
        }
        let file = std::fs::File::open(zip).map_err(|e| unreadable(e.to_string()))?;
        let mut archive =
            zip::ZipArchive::new(file).map_err(|e| unreadable(format!("not a ZIP ({e})")))?;
        let mut total = 0u64;
        for index in 0..archive.len() {
            let entry = archive
                .by_index_raw(index)
                .map_err(|e| unreadable(format!("not a ZIP ({e})")))?;
            total = total.saturating_add(entry.size());
        }
        attached.size_unzipped = Some(total);
    }
    Ok(unit)
}

/// For each function whose binary needs shared libraries its runtime lacks, finds them on the
/// build host and records them in its `libraries`; the plan puts them in a layer of their own.
fn find_libraries(facts: &mut [UnitFacts], shell: &Shell) -> Result<()> {
    let extra = std::env::var("LIBRARY_PATH")
        .map(|v| libs::SearchPath::split_list(&v))
        .unwrap_or_default();
    for function in facts.iter_mut() {
        if function.unit.role != metadata::Role::Function || !function.unit.bundle_libs {
            continue;
        }
        let roots: Vec<(String, &inspect::BinaryFacts)> = function
            .binaries
            .iter()
            .map(|b| (b.name.clone(), &b.facts))
            .collect();
        let search = libs::SearchPath::host(function.arch, &extra);
        let bundled = libs::bundle(&roots, function.arch, function.unit.runtimes[0], &search)?;
        if bundled.is_empty() {
            continue;
        }
        shell.verbose(|| {
            let sonames: Vec<&str> = bundled.iter().map(|b| b.soname.as_str()).collect();
            format!(
                "bundling {} for `{}` ({})",
                sonames.join(", "),
                function.unit.name,
                function.arch
            )
        });
        function.libraries = bundled
            .into_iter()
            .map(|library| BinaryInput {
                name: library.soname,
                path: library.path,
                facts: library.facts,
            })
            .collect();
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod builder;

#[cfg(test)]
mod arn_copy_tests {
    use super::*;
    use crate::metadata::{ArnLayer, Role};
    use crate::units::AttachedArn;

    fn with_copy(zip: &std::path::Path) -> Unit {
        let mut unit = builder::unit("web", Role::Function, &[crate::target::Arch::X86_64]);
        unit.arn_layers = vec![AttachedArn {
            position: 0,
            layer: ArnLayer {
                arn: "arn:aws:lambda:us-east-1:753240598075:layer:Adapter:25".into(),
                zip: Some(zip.to_path_buf()),
            },
            size_unzipped: None,
        }];
        unit
    }

    #[test]
    fn a_local_copy_is_measured_and_a_missing_or_foreign_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let zip_path = dir.path().join("adapter.zip");
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        writer
            .start_file("extensions/lambda-adapter", options)
            .unwrap();
        std::io::Write::write_all(&mut writer, &[7u8; 3000]).unwrap();
        writer.start_file("bootstrap", options).unwrap();
        std::io::Write::write_all(&mut writer, b"#!/bin/sh\n").unwrap();
        writer.finish().unwrap();
        let measured = measure_arn_copies(&with_copy(&zip_path)).unwrap();
        assert_eq!(measured.arn_layers[0].size_unzipped, Some(3010));

        let missing = dir.path().join("missing.zip");
        let text = measure_arn_copies(&with_copy(&missing))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains(&format!("the local copy `{}` of layer arn:aws:lambda:us-east-1:753240598075:layer:Adapter:25 (`layers` of `web`) cannot be read", missing.display()))
                && text.contains("help:"),
            "{text}"
        );
        let not_zip = dir.path().join("notes.txt");
        std::fs::write(&not_zip, "not a zip").unwrap();
        let text = measure_arn_copies(&with_copy(&not_zip))
            .unwrap_err()
            .to_string();
        assert!(text.contains("not a ZIP"), "{text}");
        let text = measure_arn_copies(&with_copy(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(text.contains("not a regular file"), "{text}");
    }
}
