//! What ships in each artifact: the crates compiled into its binaries, and the shared libraries
//! a generated `<function>-libs` layer bundles, written as a CycloneDX 1.5 SBOM.
//!
//! The crate graph is cargo's resolve for one Rust target (`cargo metadata --filter-platform
//! <triple>`, with the run's feature flags). From a unit's package only *normal* dependencies are
//! followed: build dependencies and proc-macros run on the build machine and never reach the
//! binary, so they are excluded (with everything only they pull in); dev-dependencies are never
//! followed. Checksums come from `Cargo.lock`. Loading is I/O ([`DependencyGraph::load`]); the
//! plan picks each unit's part of the graph ([`DependencyGraph::closure`]), and emit renders it
//! ([`cyclonedx::render`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

pub mod cyclonedx;
pub mod deb;
mod version_info;

/// One crate of the resolved graph.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// The `license` field of its manifest (an SPDX expression), when it has one.
    pub license: Option<String>,
    /// The registry checksum from Cargo.lock (hex SHA-256 of the `.crate` file).
    pub checksum: Option<String>,
    /// A member of the workspace being packed.
    pub workspace: bool,
}

impl Crate {
    pub fn purl(&self) -> String {
        format!("pkg:cargo/{}@{}", self.name, self.version)
    }
}

/// cargo's resolve for one target, reduced to what ships: crates by package id and the normal
/// dependencies of each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DependencyGraph {
    crates: BTreeMap<String, Crate>,
    /// Normal dependencies, proc-macros left out.
    dependencies: BTreeMap<String, BTreeSet<String>>,
}

/// The part of a graph one unit ships: its own package and every crate it reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitCrates {
    pub root: Crate,
    /// Sorted by name and version, the root excluded.
    pub crates: Vec<Crate>,
    /// For each crate (the root included), by purl: the purls of its dependencies.
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

/// Where a bundled shared library came from: its file's SHA-256 (hex) and its Debian package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryOrigin {
    pub sha256: String,
    pub deb: Option<deb::DebPackage>,
}

impl LibraryOrigin {
    /// Hashes `file` and asks the host's dpkg about it.
    pub fn read(file: &Path) -> Result<LibraryOrigin> {
        let sha256 = crate::files::sha256_hex(file).map_err(|e| {
            Error::internal(format!(
                "cannot read `{}` for the SBOM: {e}",
                file.display()
            ))
        })?;
        Ok(LibraryOrigin {
            sha256,
            deb: deb::lookup(file),
        })
    }
}

/// The feature flags of the run, which change what the resolve contains.
#[derive(Clone, Copy, Debug)]
pub struct FeatureFlags<'a> {
    pub features: &'a [String],
    pub all_features: bool,
    pub no_default_features: bool,
}

impl DependencyGraph {
    /// Runs `cargo metadata --filter-platform <triple>` for the workspace and reads its
    /// `Cargo.lock`.
    pub fn load(
        cargo: &Path,
        manifest_path: &Path,
        lock_file: &Path,
        triple: &str,
        features: FeatureFlags<'_>,
        cargo_flags: &[&str],
    ) -> Result<DependencyGraph> {
        let mut command = cargo_metadata::MetadataCommand::new();
        command.cargo_path(cargo).manifest_path(manifest_path);
        let mut other = vec!["--filter-platform".to_string(), triple.to_string()];
        other.extend(cargo_flags.iter().map(|f| f.to_string()));
        command.other_options(other);
        if features.all_features {
            command.features(cargo_metadata::CargoOpt::AllFeatures);
        }
        if features.no_default_features {
            command.features(cargo_metadata::CargoOpt::NoDefaultFeatures);
        }
        if !features.features.is_empty() {
            command.features(cargo_metadata::CargoOpt::SomeFeatures(
                features.features.to_vec(),
            ));
        }
        let metadata = command.exec().map_err(|e| {
            Error::new(
                ErrorKind::BuildFailed,
                format!("`cargo metadata --filter-platform {triple}` failed (for the SBOM): {e}"),
            )
        })?;
        let lock = std::fs::read_to_string(lock_file).unwrap_or_default();
        Ok(DependencyGraph::from_metadata(&metadata, &lock))
    }

    /// The graph of parsed metadata; `lock` is Cargo.lock's text (empty: no checksums).
    pub fn from_metadata(metadata: &cargo_metadata::Metadata, lock: &str) -> DependencyGraph {
        let checksums = lock_checksums(lock);
        let members: BTreeSet<&cargo_metadata::PackageId> =
            metadata.workspace_members.iter().collect();
        let mut proc_macros = BTreeSet::new();
        let mut crates = BTreeMap::new();
        for package in &metadata.packages {
            if package.targets.iter().any(|t| t.is_proc_macro()) {
                proc_macros.insert(package.id.repr.clone());
            }
            let source = package.source.as_ref().map(|s| s.repr.clone());
            let version = package.version.to_string();
            crates.insert(
                package.id.repr.clone(),
                Crate {
                    name: package.name.to_string(),
                    license: package.license.clone(),
                    checksum: source.and_then(|source| {
                        checksums
                            .get(&(package.name.to_string(), version.clone(), source))
                            .cloned()
                    }),
                    version,
                    workspace: members.contains(&package.id),
                },
            );
        }
        let mut dependencies = BTreeMap::new();
        for node in metadata.resolve.iter().flat_map(|r| &r.nodes) {
            let normal = node
                .deps
                .iter()
                .filter(|dep| {
                    dep.dep_kinds
                        .iter()
                        .any(|k| k.kind == cargo_metadata::DependencyKind::Normal)
                })
                .map(|dep| dep.pkg.repr.clone())
                .filter(|id| !proc_macros.contains(id))
                .collect();
            dependencies.insert(node.id.repr.clone(), normal);
        }
        DependencyGraph {
            crates,
            dependencies,
        }
    }

    /// What the workspace member `package` ships: see [`DependencyGraph::closure`].
    pub fn member_closure(&self, package: &str) -> Option<UnitCrates> {
        let id = self
            .crates
            .iter()
            .find(|(_, c)| c.workspace && c.name == package)
            .map(|(id, _)| id.clone())?;
        self.closure(&id)
    }

    /// What `package_id` ships: itself and every crate reachable through normal dependencies.
    pub fn closure(&self, package_id: &str) -> Option<UnitCrates> {
        let root = self.crates.get(package_id)?.clone();
        let mut seen = BTreeSet::from([package_id.to_string()]);
        let mut queue = vec![package_id.to_string()];
        while let Some(id) = queue.pop() {
            for dep in self.dependencies.get(&id).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    queue.push(dep.clone());
                }
            }
        }
        let purl = |id: &String| self.crates.get(id).map(Crate::purl);
        let edges = seen
            .iter()
            .filter_map(|id| {
                let deps = self
                    .dependencies
                    .get(id)
                    .into_iter()
                    .flatten()
                    .filter_map(purl)
                    .collect();
                Some((purl(id)?, deps))
            })
            .collect();
        let mut crates: Vec<Crate> = seen
            .iter()
            .filter(|id| id.as_str() != package_id)
            .filter_map(|id| self.crates.get(id).cloned())
            .collect();
        crates.sort();
        crates.dedup();
        Some(UnitCrates {
            root,
            crates,
            edges,
        })
    }
}

/// `(name, version, source) → checksum` from Cargo.lock (format v3 and v4 keep it per package).
fn lock_checksums(lock: &str) -> BTreeMap<(String, String, String), String> {
    let Ok(table) = lock.parse::<toml::Table>() else {
        return BTreeMap::new();
    };
    table
        .get("package")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter_map(|package| {
            let field = |key: &str| package.get(key)?.as_str().map(String::from);
            Some((
                (field("name")?, field("version")?, field("source")?),
                field("checksum")?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
