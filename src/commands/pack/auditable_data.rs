//! The dependency list each unit's binaries carry: cargo-auditable's JSON written where the
//! rustc wrapper (`crate::auditable`) finds it, before the build.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Choices, sbom_inputs};
use crate::auditable::data_file;
use crate::error::{Error, Result};
use crate::sbom::DependencyGraph;
use crate::settings::Options;
use crate::toolchain::RustToolchain;
use crate::units::Unit;
use crate::workspace::Workspace;

/// Before the build: loads each target's dependency graph (the SBOMs use it too) and writes the
/// lists the rustc wrapper links into each binary. Returns the graphs and whether any list
/// changed.
pub fn prepare(
    workspace: &Workspace,
    options: &Options,
    units: &[Unit],
    requests: &[crate::build::BuildRequest],
    choices: &Choices,
    rust: &RustToolchain,
) -> Result<(BTreeMap<String, DependencyGraph>, bool)> {
    // `cargo metadata --filter-platform` is the first command to run rustc through the user's
    // wrapper: a broken wrapper is named here rather than reported as a metadata failure.
    let graphs = sbom_inputs::dependency_graphs(workspace, options, requests).map_err(|err| {
        let wrappers = crate::rustflags::wrapper::user_wrappers(&workspace.root);
        crate::build::wrapper_problem(&rust.rustc, &wrappers.unwrap_or_default()).unwrap_or(err)
    })?;
    let target_dir = options.target_dir(&workspace.target_dir);
    let changed = write(units, choices, &graphs, &target_dir)?;
    Ok((graphs, changed))
}

/// Writes `<triple>/<package>/<bin>.json` (and `<package>/lib.cdylib.json` for cdylibs) for every
/// unit with `auditable` on, leaving identical files alone, and removes them for a unit with it
/// off, so the wrapper links exactly the lists this run asks for. Returns whether anything
/// changed (then a build started early, before this, must not be adopted).
fn write(
    units: &[Unit],
    choices: &Choices,
    graphs: &BTreeMap<String, DependencyGraph>,
    target_dir: &Path,
) -> Result<bool> {
    let mut changed = false;
    for unit in units {
        for arch in &unit.archs {
            let (target, _) = choices.for_unit(unit, *arch);
            let triple = target.triple();
            let dir = crate::cache::auditable(target_dir, &triple);
            let json = graphs
                .get(&triple)
                .filter(|_| unit.auditable)
                .and_then(|graph| graph.version_info(&unit.package));
            // The directory exists for every unit: the wrapper names it to cargo as a
            // dependency of the binaries (a missing one would make them always stale).
            let package_dir = dir.join(&unit.package);
            changed |= !package_dir.is_dir();
            std::fs::create_dir_all(&package_dir).map_err(|e| Error::write(&package_dir, &e))?;
            let mut files: Vec<_> = unit
                .bins
                .iter()
                .map(|bin| data_file(&dir, &unit.package, Some(bin)))
                .collect();
            if !unit.cdylibs.is_empty() {
                files.push(data_file(&dir, &unit.package, None));
            }
            for file in files {
                match &json {
                    Some(json) => {
                        if std::fs::read(&file).ok().as_deref() != Some(json.as_bytes()) {
                            changed = true;
                            crate::files::write_atomic(&file, json.as_bytes())?;
                        }
                    }
                    None => match std::fs::remove_file(&file) {
                        Ok(()) => changed = true,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::write(&file, &e)),
                    },
                }
            }
        }
    }
    Ok(changed)
}
