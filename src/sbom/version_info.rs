//! A workspace member's crates in cargo-auditable's format (`auditable_serde::VersionInfo`), the
//! JSON that the `.dep-v0` section of a packed binary holds (the rustc wrapper links it in).
//!
//! The same closure as the SBOM's: normal dependencies only, proc-macros and build dependencies
//! left out (cargo-auditable would list the latter with `kind: build`; they are not in the
//! binary, and the SBOM beside it leaves them out too).

use std::collections::{BTreeMap, BTreeSet};

use super::DependencyGraph;

impl DependencyGraph {
    /// The `VersionInfo` JSON of what the workspace member `package` ships, its own package the
    /// root: packages sorted by name, version and source, each with the indices of its
    /// dependencies, so equal graphs give equal bytes. `None` when `package` is not a member.
    pub fn version_info(&self, package: &str) -> Option<String> {
        let (root_id, _) = self
            .crates
            .iter()
            .find(|(_, c)| c.workspace && c.name == package)?;
        let mut seen = BTreeSet::from([root_id.clone()]);
        let mut queue = vec![root_id.clone()];
        while let Some(id) = queue.pop() {
            for dep in self.dependencies.get(&id).into_iter().flatten() {
                if self.crates.contains_key(dep) && seen.insert(dep.clone()) {
                    queue.push(dep.clone());
                }
            }
        }
        let mut ids: Vec<&String> = seen.iter().collect();
        ids.sort_by_key(|id| {
            let krate = &self.crates[*id];
            (
                krate.name.clone(),
                krate.version.clone(),
                source_of(id),
                *id,
            )
        });
        let index: BTreeMap<&String, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let packages: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| {
                let krate = &self.crates[*id];
                let mut dependencies: Vec<usize> = self
                    .dependencies
                    .get(*id)
                    .into_iter()
                    .flatten()
                    .filter_map(|dep| index.get(dep).copied())
                    .collect();
                dependencies.sort_unstable();
                serde_json::json!({
                    "name": krate.name,
                    "version": krate.version,
                    "source": source_of(id),
                    "dependencies": dependencies,
                    "root": *id == root_id,
                })
            })
            .collect();
        // Through the format's own type: it checks what its readers will check (versions parse,
        // indices are in range, no cycles) and writes the fields the way they expect them.
        // (From text: `Source` deserializes from a borrowed `&str`, which a `Value` cannot lend.)
        let raw = serde_json::json!({ "packages": packages }).to_string();
        let info: auditable_serde::VersionInfo = serde_json::from_str(&raw).ok()?;
        serde_json::to_string(&info).ok()
    }
}

/// cargo-auditable's `source` of a package, from cargo's package id (`path+file://…#…`,
/// `registry+https://github.com/rust-lang/crates.io-index#…`, or the older `name version (source)`).
fn source_of(id: &str) -> &'static str {
    let source = match id.find('(') {
        Some(open) => &id[open + 1..],
        None => id,
    };
    if source.starts_with("path+") {
        "local"
    } else if source.starts_with("git+") {
        "git"
    } else if source.starts_with("registry+https://github.com/rust-lang/crates.io-index")
        || source.starts_with("sparse+https://index.crates.io/")
    {
        "crates.io"
    } else if source.starts_with("registry+") || source.starts_with("sparse+") {
        "registry"
    } else {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use super::source_of;

    #[test]
    fn sources_are_named_as_cargo_auditable_names_them() {
        assert_eq!(source_of("path+file:///w/fn-a#0.1.0"), "local");
        assert_eq!(
            source_of("registry+https://github.com/rust-lang/crates.io-index#serde@1.0.228"),
            "crates.io"
        );
        assert_eq!(
            source_of("sparse+https://index.crates.io/#serde@1.0.228"),
            "crates.io"
        );
        assert_eq!(
            source_of("sparse+https://my.registry/index/#x@1.0.0"),
            "registry"
        );
        assert_eq!(source_of("git+https://github.com/a/b?rev=1#abc"), "git");
        assert_eq!(
            source_of("serde 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)"),
            "crates.io"
        );
    }
}
