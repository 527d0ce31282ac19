//! What the SBOMs need that takes I/O: cargo's resolve per Rust target, and each bundled
//! library's hash and Debian package.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::build::BuildRequest;
use crate::error::Result;
use crate::facts::UnitFacts;
use crate::sbom::{DependencyGraph, FeatureFlags, GraphQuery, LibraryOrigin};
use crate::settings::Options;
use crate::workspace::Workspace;

/// cargo's resolved graph for each Rust target of the run, with the run's feature flags and,
/// per target, the packages its builds name (cargo unifies features across them; a shard's builds
/// name the whole selection's, so a shard's graph, and the lists embedded from it, are the
/// unsharded run's).
pub fn dependency_graphs(
    workspace: &Workspace,
    options: &Options,
    requests: &[BuildRequest],
) -> Result<BTreeMap<String, DependencyGraph>> {
    let mut cargo_flags = Vec::new();
    for (set, flag) in [
        (options.locked, "--locked"),
        (options.offline, "--offline"),
        (options.frozen, "--frozen"),
    ] {
        if set {
            cargo_flags.push(flag);
        }
    }
    let features = FeatureFlags {
        features: &options.features,
        all_features: options.all_features,
        no_default_features: options.no_default_features,
    };
    let mut packages_by_triple: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in requests {
        let packages = packages_by_triple
            .entry(request.target.triple())
            .or_default();
        packages.extend(request.packages.iter().cloned());
        packages.sort();
        packages.dedup();
    }
    let mut graphs = BTreeMap::new();
    for (triple, packages) in packages_by_triple {
        let cache_file =
            crate::cache::dependency_graph(&options.target_dir(&workspace.target_dir), &triple);
        let graph = DependencyGraph::load(GraphQuery {
            cargo: &options.cargo,
            manifest_path: &workspace.root_manifest,
            lock_file: &workspace.root.join("Cargo.lock"),
            triple: &triple,
            features,
            packages: &packages,
            cargo_flags: &cargo_flags,
            cache_file: &cache_file,
        })?;
        graphs.insert(triple, graph);
    }
    Ok(graphs)
}

/// Each library a function bundles: its hash and the Debian package it came from.
pub fn library_origins(facts: &[UnitFacts]) -> Result<BTreeMap<PathBuf, LibraryOrigin>> {
    let mut origins = BTreeMap::new();
    for library in facts.iter().flat_map(|f| &f.libraries) {
        if !origins.contains_key(&library.path) {
            origins.insert(library.path.clone(), LibraryOrigin::read(&library.path)?);
        }
    }
    Ok(origins)
}
