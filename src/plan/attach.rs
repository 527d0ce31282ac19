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
        let arn_sizes: u64 = artifact
            .arn_layers
            .iter()
            .filter_map(|a| a.size_unzipped)
            .sum();
        let total = artifact.size_unzipped + layers.iter().map(|l| l.size).sum::<u64>() + arn_sizes;
        artifact.size_unzipped_with_layers = Some(total);
        let unmeasured: Vec<&str> = artifact
            .arn_layers
            .iter()
            .filter(|a| a.size_unzipped.is_none())
            .map(|a| a.layer.arn.as_str())
            .collect();
        if !unmeasured.is_empty() {
            artifact.reasons.push(format!(
                "the size check left out {} (no local copy: add `zip = \"path.zip\"` to the entry to count it)",
                unmeasured.join(", ")
            ));
        }
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
        let layer_count = layers.len() + artifact.arn_layers.len();
        let arn_attached = !artifact.arn_layers.is_empty();
        if arn_attached {
            // A container image cannot attach layers, so a function with ARN layers stays a ZIP.
            arn_limits(artifact, layer_count, total > MAX_UNZIPPED_BYTES, total)?;
        }
        let too_big = !arn_attached && total > MAX_UNZIPPED_BYTES;
        let too_many_layers = !arn_attached && layer_count > MAX_LAYERS;
        let why_image = match artifact.requested_format {
            PackageFormat::Image if !arn_attached => Some("package = \"image\"".to_string()),
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
            None if arn_attached => zip_reason(artifact, total),
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

/// Lambda's limits for a function that attaches layers by ARN. Such a function cannot become a
/// container image (an image has no layers), so more than five layers is a `too-many-layers`
/// finding, and too large or `package = "image"` is an error.
fn arn_limits(
    artifact: &mut PlannedArtifact,
    layer_count: usize,
    too_big: bool,
    total: u64,
) -> Result<()> {
    let arns: Vec<&str> = artifact
        .arn_layers
        .iter()
        .map(|a| a.layer.arn.as_str())
        .collect();
    if artifact.requested_format == PackageFormat::Image || too_big {
        let why = if too_big {
            format!(
                "is {} unzipped with its layers, over Lambda's {} limit",
                human_bytes(total),
                human_bytes(MAX_UNZIPPED_BYTES)
            )
        } else {
            "has package = \"image\"".to_string()
        };
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "function `{}` ({}) {why}, and it attaches layers by ARN ({}), which a container image cannot attach",
                artifact.name,
                artifact.arch,
                arns.join(", ")
            ),
        )
        .with_help("shrink the function or its layers to fit a ZIP, or build the layer's content as a workspace layer crate so the image can hold it"));
    }
    if layer_count > MAX_LAYERS {
        let names = layer_names(artifact);
        let code = crate::inspect::codes::TOO_MANY_LAYERS;
        artifact.findings.push(PlannedFinding {
            entry: "layers".into(),
            allowed: artifact.allow.iter().any(|a| a == code),
            finding: crate::inspect::Finding {
                code,
                severity: crate::inspect::Severity::Error,
                message: format!(
                    "function `{}` attaches {layer_count} layers ({}); Lambda allows at most {MAX_LAYERS}",
                    artifact.name,
                    names.join(", ")
                ),
                lambda_error: Some(format!(
                    "Cannot add more than {MAX_LAYERS} layers to your function."
                )),
                help: "attach fewer layers, or merge workspace layer crates into one; a container image cannot replace layers attached by ARN".into(),
                soname: None,
            },
        });
    }
    Ok(())
}

/// Every layer a function attaches, workspace artifacts and ARNs, in merge order.
fn layer_names(artifact: &PlannedArtifact) -> Vec<&str> {
    crate::manifest::merge_order(
        artifact.layers.iter().map(String::as_str),
        artifact
            .arn_layers
            .iter()
            .map(|a| (a.position, a.layer.arn.as_str())),
    )
}

/// The reason line of a function with ARN layers, which stays a ZIP.
fn zip_reason(artifact: &mut PlannedArtifact, total: u64) {
    let names = layer_names(artifact);
    artifact.reasons.push(format!(
        "zip: {} unzipped with layers {}, within the {} limit",
        human_bytes(total),
        names.join(", "),
        human_bytes(MAX_UNZIPPED_BYTES)
    ));
}
