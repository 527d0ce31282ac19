//! The CycloneDX 1.5 JSON document of an artifact, written with serde structs of the fields we
//! fill (see ARCHITECTURE.md for why not `cyclonedx-bom`).
//!
//! Reproducible: components and dependencies are sorted, the serial number is a UUID derived
//! from the document's own content, and `metadata.timestamp` is present only when
//! `SOURCE_DATE_EPOCH` gives one.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::deb::DebPackage;
use super::{Crate, UnitCrates};

/// Everything the SBOM of one artifact says, as the plan decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents {
    /// The artifact's name (`metadata.component` for a generated libs layer).
    pub artifact: String,
    /// The artifact's package version.
    pub version: String,
    /// The crates compiled into its binaries, when it has any.
    pub crates: Option<UnitCrates>,
    /// Bundled shared libraries (generated `<function>-libs` layers).
    pub libraries: Vec<Library>,
}

/// A shared library a layer bundles, with its file's SHA-256 (hex) and the Debian package it came
/// from when the host's dpkg knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Library {
    pub soname: String,
    pub sha256: String,
    pub deb: Option<DebPackage>,
}

impl Contents {
    /// Components the document lists (crates and libraries; not the artifact itself).
    pub fn component_count(&self) -> usize {
        self.crates.as_ref().map_or(0, |c| c.crates.len()) + self.libraries.len()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom<'a> {
    bom_format: &'static str,
    spec_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial_number: Option<String>,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency<'a>>,
}

#[derive(Serialize)]
struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<License>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
}

#[derive(Serialize)]
struct License {
    expression: String,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency<'a> {
    #[serde(rename = "ref")]
    reference: &'a str,
    depends_on: Vec<&'a str>,
}

fn crate_component(krate: &Crate, kind: &'static str) -> Component {
    Component {
        kind,
        bom_ref: Some(krate.purl()),
        name: krate.name.clone(),
        version: Some(krate.version.clone()),
        purl: Some(krate.purl()),
        licenses: krate
            .license
            .iter()
            .map(|l| License {
                expression: l.clone(),
            })
            .collect(),
        hashes: krate
            .checksum
            .iter()
            .map(|c| Hash {
                alg: "SHA-256",
                content: c.clone(),
            })
            .collect(),
    }
}

fn library_component(library: &Library) -> Component {
    Component {
        kind: "library",
        bom_ref: Some(format!("lib:{}", library.soname)),
        name: library.soname.clone(),
        version: library.deb.as_ref().map(|d| d.version.clone()),
        purl: library.deb.as_ref().map(DebPackage::purl),
        licenses: Vec::new(),
        hashes: vec![Hash {
            alg: "SHA-256",
            content: library.sha256.clone(),
        }],
    }
}

/// The document's JSON text (pretty, with a final newline). `epoch` is `SOURCE_DATE_EPOCH`.
pub fn render(contents: &Contents, epoch: Option<u64>, rfc3339: fn(u64) -> String) -> String {
    let subject = match &contents.crates {
        // The unit's own crate is the application.
        Some(crates) => crate_component(&crates.root, "application"),
        None => Component {
            kind: "library",
            bom_ref: Some(format!("artifact:{}", contents.artifact)),
            name: contents.artifact.clone(),
            version: Some(contents.version.clone()),
            purl: None,
            licenses: Vec::new(),
            hashes: Vec::new(),
        },
    };
    let subject_ref = subject.bom_ref.clone().unwrap_or_default();
    let mut components: Vec<Component> = Vec::new();
    let empty = BTreeMap::new();
    let edges = contents.crates.as_ref().map_or(&empty, |c| &c.edges);
    if let Some(crates) = &contents.crates {
        components.extend(crates.crates.iter().map(|c| {
            crate_component(
                c,
                if c.workspace {
                    "application"
                } else {
                    "library"
                },
            )
        }));
    }
    components.extend(contents.libraries.iter().map(library_component));
    let mut dependencies: Vec<Dependency> = edges
        .iter()
        .map(|(from, to)| Dependency {
            reference: from,
            depends_on: to.iter().map(String::as_str).collect(),
        })
        .collect();
    if contents.crates.is_none() {
        dependencies.push(Dependency {
            reference: &subject_ref,
            depends_on: Vec::new(),
        });
    }
    let mut bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.5",
        serial_number: None,
        version: 1,
        metadata: Metadata {
            timestamp: epoch.map(rfc3339),
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    bom_ref: None,
                    name: env!("CARGO_PKG_NAME").to_string(),
                    version: Some(env!("CARGO_PKG_VERSION").to_string()),
                    purl: None,
                    licenses: Vec::new(),
                    hashes: Vec::new(),
                }],
            },
            component: subject,
        },
        components,
        dependencies,
    };
    let unsealed = serde_json::to_vec(&bom).expect("the SBOM always serializes");
    bom.serial_number = Some(serial_number(&unsealed));
    let mut text = serde_json::to_string_pretty(&bom).expect("the SBOM always serializes");
    text.push('\n');
    text
}

/// `urn:uuid:` of the content's SHA-256, shaped as a name-based (version 5, RFC 4122 variant)
/// UUID: the same content always gets the same serial number.
fn serial_number(content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = crate::files::hex(&bytes);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
