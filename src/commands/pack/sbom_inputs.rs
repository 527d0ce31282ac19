//! What the SBOMs need that takes I/O: cargo's resolve per Rust target, and each bundled
//! library's hash and Debian package.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Choices;
use crate::error::Result;
use crate::facts::UnitFacts;
use crate::sbom::{DependencyGraph, FeatureFlags, LibraryOrigin};
use crate::settings::Options;
use crate::workspace::Workspace;

/// cargo's resolved graph for each Rust target of the run, with the run's feature flags.
pub fn dependency_graphs(
    workspace: &Workspace,
    options: &Options,
    choices: &Choices,
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
    let mut graphs = BTreeMap::new();
    for (target, _) in choices.values() {
        let triple = target.triple();
        if graphs.contains_key(&triple) {
            continue;
        }
        let graph = DependencyGraph::load(
            &options.cargo,
            &workspace.root_manifest,
            &workspace.root.join("Cargo.lock"),
            &triple,
            features,
            &cargo_flags,
        )?;
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
