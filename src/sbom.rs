//! What ships in each artifact: the crates compiled into its binaries, and the shared libraries
//! a generated `<function>-libs` layer bundles, written as a CycloneDX 1.5 SBOM.
//!
//! The crate graph is cargo's for one Rust target, with the run's feature flags: the crates and
//! their licenses from `cargo metadata --filter-platform <triple>`, the edges from `cargo tree -e
//! normal --target <triple>` (`tree.rs`), whose feature resolution is the build's (an optional
//! dependency whose feature is off is not there; `cargo metadata` unifies features across build
//! and dev dependencies and would list it). From a unit's package only *normal* dependencies are
//! followed: build dependencies and proc-macros run on the build machine and never reach the
//! binary, so they are excluded (with everything only they pull in); dev-dependencies are never
//! followed. Checksums come from `Cargo.lock`. Loading is I/O ([`DependencyGraph::load`],
//! remembered between runs by `cache.rs`); the plan picks each unit's part of the graph
//! ([`DependencyGraph::closure`]), and emit renders it ([`cyclonedx::render`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

mod cache;
pub mod cyclonedx;
pub mod deb;
mod tree;
mod version_info;

/// One crate of the resolved graph.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// What to ask cargo for: one target's graph of one workspace, as a build would resolve it.
#[derive(Clone, Copy, Debug)]
pub struct GraphQuery<'a> {
    pub cargo: &'a Path,
    pub manifest_path: &'a Path,
    pub lock_file: &'a Path,
    pub triple: &'a str,
    pub features: FeatureFlags<'a>,
    /// The packages built for the target (features are unified across them); empty: all.
    pub packages: &'a [String],
    /// `--locked`, `--offline`, `--frozen`, as the run has them.
    pub cargo_flags: &'a [&'a str],
    /// Where the graph is remembered between runs.
    pub cache_file: &'a Path,
}

/// The feature flags of the run, which change what the resolve contains.
#[derive(Clone, Copy, Debug)]
pub struct FeatureFlags<'a> {
    pub features: &'a [String],
    pub all_features: bool,
    pub no_default_features: bool,
}

impl DependencyGraph {
    /// Runs `cargo metadata --filter-platform <triple>` and `cargo tree` for the workspace and
    /// reads its `Cargo.lock`, unless `cache_file` holds the graph for the same inputs.
    pub fn load(query: GraphQuery<'_>) -> Result<DependencyGraph> {
        let GraphQuery {
            cargo,
            manifest_path,
            lock_file,
            triple,
            features,
            packages,
            cargo_flags,
            cache_file,
        } = query;
        let mut flags: Vec<String> = cargo_flags.iter().map(|f| f.to_string()).collect();
        if features.all_features {
            flags.push("--all-features".into());
        }
        if features.no_default_features {
            flags.push("--no-default-features".into());
        }
        if !features.features.is_empty() {
            flags.push("--features".into());
            flags.push(features.features.join(","));
        }
        // Features are unified across the packages a build names, as `cargo build -p ...` does.
        let selection: Vec<String> = if packages.is_empty() {
            vec!["--workspace".to_string()]
        } else {
            packages
                .iter()
                .flat_map(|p| ["-p".to_string(), p.clone()])
                .collect()
        };
        let fixed = cache::fixed_inputs(
            cargo,
            manifest_path,
            triple,
            &[flags.as_slice(), selection.as_slice()].concat(),
        );
        if let Some(graph) = cache::lookup(cache_file, &fixed) {
            return Ok(graph);
        }
        let mut command = cargo_metadata::MetadataCommand::new();
        command.cargo_path(cargo).manifest_path(manifest_path);
        let mut other = vec!["--filter-platform".to_string(), triple.to_string()];
        other.extend(flags.iter().cloned());
        command.other_options(other);
        let metadata = command.exec().map_err(|e| {
            Error::new(
                ErrorKind::BuildFailed,
                format!("`cargo metadata --filter-platform {triple}` failed (for the SBOM): {e}"),
            )
        })?;
        let tree = cargo_tree(cargo, manifest_path, triple, &selection, &flags)?;
        let lock = std::fs::read_to_string(lock_file).unwrap_or_default();
        let mut graph = DependencyGraph::from_metadata(&metadata, &lock);
        graph.keep_edges_of(&tree);
        // The graph depends on Cargo.lock and on every path package's manifest.
        let mut files = vec![lock_file.to_path_buf(), manifest_path.to_path_buf()];
        files.extend(
            metadata
                .packages
                .iter()
                .filter(|p| p.source.is_none())
                .map(|p| p.manifest_path.clone().into_std_path_buf()),
        );
        files.sort();
        files.dedup();
        cache::store(cache_file, &fixed, files, &graph);
        Ok(graph)
    }

    /// Replaces the edges with those `cargo tree` shows for the target: a crate depends on what
    /// the build compiles for it, and a crate the tree never names is reached by nothing.
    fn keep_edges_of(&mut self, tree: &tree::TreeEdges) {
        let mut ids: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (id, krate) in &self.crates {
            ids.entry((krate.name.clone(), krate.version.clone()))
                .or_default()
                .push(id.clone());
        }
        let proc_macro = |nv: &(String, String)| tree.proc_macros.contains(nv);
        let mut dependencies = BTreeMap::new();
        for (id, krate) in &self.crates {
            let nv = (krate.name.clone(), krate.version.clone());
            let deps: BTreeSet<String> = tree
                .dependencies
                .get(&nv)
                .into_iter()
                .flatten()
                .filter(|dep| !proc_macro(dep))
                .flat_map(|dep| ids.get(dep).cloned().unwrap_or_default())
                .filter(|dep| {
                    self.dependencies
                        .get(id)
                        .is_none_or(|metadata_deps| metadata_deps.contains(dep))
                })
                .collect();
            dependencies.insert(id.clone(), deps);
        }
        self.dependencies = dependencies;
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

/// `cargo tree`'s view of the target's normal dependencies, each selected package a root.
fn cargo_tree(
    cargo: &Path,
    manifest_path: &Path,
    triple: &str,
    selection: &[String],
    flags: &[String],
) -> Result<tree::TreeEdges> {
    let output = std::process::Command::new(cargo)
        .args(["tree", "-e", "normal", "--target", triple])
        .args(selection)
        .args(["--prefix", "depth", "--format", "{p}", "--color", "never"])
        .arg("--manifest-path")
        .arg(manifest_path)
        .args(flags)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            Error::new(
                ErrorKind::BuildFailed,
                format!("cannot run `{} tree` (for the SBOM): {e}", cargo.display()),
            )
        })?;
    if !output.status.success() {
        return Err(Error::new(
            ErrorKind::BuildFailed,
            format!(
                "`cargo tree -e normal --target {triple}` failed (for the SBOM): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    Ok(tree::parse(&String::from_utf8_lossy(&output.stdout)))
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
