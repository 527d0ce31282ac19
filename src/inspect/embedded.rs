//! The dependency list cargo-auditable embeds in a binary (the zlib-compressed JSON of its
//! `.dep-v0` section), read with the cargo-auditable project's own `auditable-info`, so that
//! `inspect` shows what a binary says it is made of, whoever built it.

use serde::Serialize;

/// One crate of an embedded dependency list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmbeddedCrate {
    pub name: String,
    pub version: String,
    /// `crates.io`, `git`, `local`, `registry` or what the binary names.
    pub source: String,
    /// `runtime`, or `build` for crates used only at build time.
    pub kind: String,
    /// The crate the binary was built from.
    pub root: bool,
}

/// The embedded list of `binary` (its bytes): `Ok(None)` when the binary has none, `Err` (a reason) when its
/// section cannot be read.
pub fn embedded_dependencies(binary: &[u8]) -> Result<Option<Vec<EmbeddedCrate>>, String> {
    let json_limit = auditable_info::Limits::default().decompressed_json_size;
    match auditable_info::audit_info_from_slice(binary, json_limit) {
        Ok(info) => Ok(Some(
            info.packages
                .into_iter()
                .map(|package| EmbeddedCrate {
                    kind: serde_json::to_value(package.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    source: String::from(package.source),
                    version: package.version.to_string(),
                    name: package.name,
                    root: package.root,
                })
                .collect(),
        )),
        Err(auditable_info::Error::NoAuditData) => Ok(None),
        Err(err) => Err(err.to_string()),
    }
}
