//! Layers attached to functions: resolved to artifacts of the same architecture, checked against
//! Lambda's limits, and merged into the function's unzipped size.

use super::bootstrap::choose_bootstrap;
use super::*;

/// A layer or extension as a function sees it.
pub(super) struct Attachable {
    pub(super) size: u64,
    pub(super) role: Role,
    pub(super) entries: Vec<Entry>,
}

/// Checks each function's attachments against Lambda's limits, totals its unzipped size with its
/// layers, routes functions that outgrow a ZIP to a container image, and warns where two layers
/// write the same path (the later one wins, as in Lambda).
pub(super) fn attach_layers(artifacts: &mut [PlannedArtifact]) -> Result<Vec<String>> {
    let by_key: BTreeMap<(Arch, String), Attachable> = artifacts
        .iter()
        .filter(|a| a.kind != Role::Function)
        .map(|a| {
            let attachable = Attachable {
                size: a.size_unzipped,
                role: a.kind,
                entries: a.entries.clone(),
            };
            ((a.arch, a.name.clone()), attachable)
        })
        .collect();
    let mut warnings = Vec::new();
    for artifact in artifacts.iter_mut().filter(|a| a.kind == Role::Function) {
        let layers: Vec<&Attachable> = artifact
            .layers
            .iter()
            .map(|name| {
                by_key
                    .get(&(artifact.arch, name.clone()))
                    .expect("attached artifacts are planned for the function's architecture")
            })
            .collect();
        let extensions: usize = layers
            .iter()
            .filter(|l| l.role == Role::Extension)
            .map(|l| l.entries.iter().filter(|e| e.source.is_some()).count())
            .sum();
        if extensions > MAX_EXTENSIONS {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "function `{}` attaches {extensions} extensions; Lambda allows at most {MAX_EXTENSIONS}",
                    artifact.name
                ),
            )
            .with_help("attach fewer extensions"));
        }
        let total = artifact.size_unzipped + layers.iter().map(|l| l.size).sum::<u64>();
        artifact.size_unzipped_with_layers = Some(total);
        // A library an attached layer puts in /opt/lib (on LD_LIBRARY_PATH) is no longer missing.
        let mut satisfied = Vec::new();
        artifact.findings.retain(|finding| {
            let Some(soname) = &finding.finding.soname else {
                return true;
            };
            let path = format!("lib/{soname}");
            match artifact
                .layers
                .iter()
                .zip(&layers)
                .find(|(_, l)| l.entries.iter().any(|e| e.path == path))
            {
                Some((name, _)) => {
                    satisfied.push(format!("{soname} comes from layer `{name}` (/opt/lib)"));
                    false
                }
                None => true,
            }
        });
        artifact.reasons.extend(satisfied);
        let too_many_layers = layers.len() > MAX_LAYERS;
        let too_big = total > MAX_UNZIPPED_BYTES;
        let why_image = match artifact.requested_format {
            PackageFormat::Image => Some("package = \"image\"".to_string()),
            PackageFormat::Auto if too_big => Some(format!(
                "{} unzipped > {} limit",
                human_bytes(total),
                human_bytes(MAX_UNZIPPED_BYTES)
            )),
            PackageFormat::Auto if too_many_layers => {
                Some(format!("{} layers > {MAX_LAYERS} limit", layers.len()))
            }
            PackageFormat::Zip if too_big => {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "function `{}` ({}) is {total} bytes unzipped with its layers ({}), over Lambda's {MAX_UNZIPPED_BYTES}-byte ({}) limit, and package = \"zip\" forbids a container image",
                        artifact.name,
                        artifact.arch,
                        human_bytes(total),
                        human_bytes(MAX_UNZIPPED_BYTES)
                    ),
                )
                .with_help("remove package = \"zip\" (or set \"auto\") to get a Dockerfile and build context instead, or shrink the includes or the binary"));
            }
            PackageFormat::Zip if too_many_layers => {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "function `{}` attaches {} layers ({}); Lambda allows at most {MAX_LAYERS}, and package = \"zip\" forbids a container image",
                        artifact.name,
                        layers.len(),
                        artifact.layers.join(", ")
                    ),
                )
                .with_help("merge some layer crates into one, attach fewer, or remove package = \"zip\" to get a container image"));
            }
            _ => None,
        };
        let names = artifact.layers.clone();
        let named: Vec<(&str, &Attachable)> = names
            .iter()
            .map(|name| {
                let layer = by_key
                    .get(&(artifact.arch, name.clone()))
                    .expect("attached artifacts are planned for the function's architecture");
                (name.as_str(), layer)
            })
            .collect();
        let runtime_bootstrap = choose_bootstrap(artifact, &named, &mut warnings);
        // Later layers win; report each shared path once, naming the winner.
        let mut writers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, layer) in artifact.layers.iter().zip(&layers) {
            for entry in layer.entries.iter().filter(|e| e.source.is_some()) {
                writers
                    .entry(entry.path.as_str())
                    .or_default()
                    .push(name.as_str());
            }
        }
        for (path, names) in writers {
            if names.len() > 1 {
                warnings.push(format!(
                    "layers {} of function `{}` ({}) all write /opt/{path}; `{}` wins because it is attached last",
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and "),
                    artifact.name,
                    artifact.arch,
                    names.last().expect("at least two")
                ));
            }
        }
        match why_image {
            None => artifact.reasons.push(if artifact.layers.is_empty() {
                format!(
                    "zip: {} unzipped, within the {} limit",
                    human_bytes(total),
                    human_bytes(MAX_UNZIPPED_BYTES)
                )
            } else {
                format!(
                    "zip: {} unzipped with layers {}, within the {} limit",
                    human_bytes(total),
                    artifact.layers.join(", "),
                    human_bytes(MAX_UNZIPPED_BYTES)
                )
            }),
            Some(why) => into_image(artifact, &named, runtime_bootstrap, &why)?,
        }
    }
    Ok(warnings)
}
