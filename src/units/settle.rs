//! Settling drafts into units: architectures and runtimes flow from functions to what they
//! attach, and every unit gets a unique name.

use super::*;

/// A layer attached by ARN and where it sits among the function's layers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AttachedArn {
    /// Index in the function's merge order, counting workspace layers and ARNs together.
    pub position: usize,
    pub layer: ArnLayer,
    /// The local copy's content, unzipped, in bytes: measured by the facts stage when the entry
    /// names a `zip`; `None` before that and for an ARN without a local copy.
    pub size_unzipped: Option<u64>,
}

/// Resolves attachments and gives every layer and extension the architectures and runtimes of
/// the functions that attach it.
/// What flows from the functions attaching a layer or extension to it.
#[derive(Default)]
struct Flow {
    archs: BTreeSet<Arch>,
    runtimes: BTreeSet<Runtime>,
    attached_by: Vec<String>,
}

pub(super) fn settle(workspace: &Workspace, drafts: Vec<Draft>) -> Result<Vec<Unit>> {
    // Artifact names each package contributes as an attachment.
    let mut attachable: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for draft in &drafts {
        if draft.unit.role != Role::Function {
            attachable
                .entry(draft.unit.package.as_str())
                .or_default()
                .push(draft.unit.name.as_str());
        }
    }
    let mut resolved_layers: Vec<Vec<String>> = Vec::new();
    let mut resolved_arns: Vec<Vec<AttachedArn>> = Vec::new();
    for draft in &drafts {
        let mut names = Vec::new();
        let mut arns = Vec::new();
        for entry in &draft.attach {
            let crate_name = match entry {
                LayerEntry::Crate(name) => name,
                LayerEntry::Arn(layer) => {
                    arns.push(AttachedArn {
                        position: names.len() + arns.len(),
                        layer: layer.clone(),
                        size_unzipped: None,
                    });
                    continue;
                }
            };
            let location = format!("`layers` in `{}`", draft.manifest_path.display());
            if *crate_name == draft.unit.package {
                return Err(Error::config(format!("{location} attaches `{crate_name}`, the function's own package"))
                    .with_help("a function cannot be its own layer; move the shared code into a separate layer crate"));
            }
            let Some(package) = workspace.package(crate_name) else {
                let members: Vec<&str> =
                    workspace.members.iter().map(|p| p.name.as_str()).collect();
                return Err(Error::config(format!(
                    "{location} names `{crate_name}`, which is not a crate of this workspace"
                ))
                .with_note(format!("members: {}", members.join(", ")))
                .with_help("attach workspace crates whose role is layer or extension"));
            };
            match attachable.get(crate_name.as_str()) {
                Some(artifacts) => names.extend(artifacts.iter().map(|s| s.to_string())),
                None => {
                    let what = if package.bins.is_empty() && package.cdylibs.is_empty() {
                        "has no binary or cdylib to pack".to_string()
                    } else {
                        "is a function, not a layer or extension".to_string()
                    };
                    return Err(Error::config(format!("{location} attaches `{crate_name}`, which {what}"))
                        .with_help(format!("set role = \"layer\", \"runtime\" or \"extension\" in `{}`, or remove it from `layers`", package.manifest_path.display())));
                }
            }
        }
        resolved_layers.push(names);
        resolved_arns.push(arns);
    }
    // Architectures and runtimes flow from functions to what they attach.
    let mut flows: BTreeMap<String, Flow> = BTreeMap::new();
    for (draft, layers) in drafts.iter().zip(&resolved_layers) {
        if draft.unit.role != Role::Function {
            continue;
        }
        let archs = match &draft.explicit_arch {
            Some((archs, _)) => archs.clone(),
            None => vec![DEFAULT_ARCH],
        };
        let runtime = draft.explicit_runtime.unwrap_or(DEFAULT_RUNTIME);
        for layer in layers {
            let flow = flows.entry(layer.clone()).or_default();
            flow.archs.extend(archs.iter().copied());
            flow.runtimes.insert(runtime);
            if !flow.attached_by.contains(&draft.unit.name) {
                flow.attached_by.push(draft.unit.name.clone());
                flow.attached_by.sort();
            }
        }
    }
    let mut units = Vec::new();
    for ((draft, layers), arn_layers) in drafts.into_iter().zip(resolved_layers).zip(resolved_arns)
    {
        let mut unit = draft.unit;
        unit.layers = layers;
        unit.arn_layers = arn_layers;
        for arn in &unit.arn_layers {
            unit.reasons.push(match &arn.layer.zip {
                Some(zip) => format!(
                    "attaches layer {} by ARN (local copy {})",
                    arn.layer.arn,
                    zip.display()
                ),
                None => format!("attaches layer {} by ARN", arn.layer.arn),
            });
        }
        let flow = flows.get(&unit.name);
        let mut archs: BTreeSet<Arch> = flow.map(|f| f.archs.clone()).unwrap_or_default();
        let mut runtimes: BTreeSet<Runtime> = flow.map(|f| f.runtimes.clone()).unwrap_or_default();
        match draft.explicit_arch {
            // An architecture written in a layer's or extension's own metadata is a promise about
            // what it contains; a function of another architecture cannot use it.
            Some((explicit, source))
                if unit.role != Role::Function
                    && (source.ends_with("metadata") || source == "bin table") =>
            {
                let listed = join_archs(&explicit);
                if let Some(other) = archs.iter().find(|a| !explicit.contains(a)) {
                    let flow = flow.expect("attached archs come from a flow");
                    return Err(Error::config(format!(
                        "{} `{}` is {listed} only (arch = {} in `{}`), but {} attaches it from {other}",
                        unit.role.name(),
                        unit.name,
                        if explicit.len() == 1 {
                            format!("\"{listed}\"")
                        } else {
                            format!(
                                "[{}]",
                                explicit
                                    .iter()
                                    .map(|a| format!("\"{a}\""))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        },
                        draft.manifest_path.display(),
                        flow.attached_by.join(", ")
                    ))
                    .with_help(format!(
                        "remove `arch` from the {} so it is built for every architecture that attaches it, add {other} to its `arch`, or attach it only from {listed} functions",
                        unit.role.name()
                    )));
                }
                archs.extend(explicit.iter().copied());
                unit.reasons.push(format!("{listed} from {source}"));
            }
            Some((explicit, source)) => {
                archs.extend(explicit.iter().copied());
                unit.reasons
                    .push(format!("{} from {source}", join_archs(&explicit)));
            }
            None if archs.is_empty() => {
                archs.insert(DEFAULT_ARCH);
                unit.reasons.push(format!("{DEFAULT_ARCH} (default)"));
            }
            None => {}
        }
        if let Some(flow) = flow {
            unit.reasons.push(format!(
                "attached by {}: built for {}",
                flow.attached_by.join(", "),
                flow.archs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if unit.role == Role::Function || runtimes.is_empty() || draft.explicit_runtime.is_some() {
            runtimes.insert(draft.explicit_runtime.unwrap_or(DEFAULT_RUNTIME));
        }
        if let Some(ids) = unit.compatible_runtimes.as_mut() {
            // The workspace's own functions that attach it run it on their runtimes too.
            for runtime in flow.iter().flat_map(|f| &f.runtimes) {
                if !ids.iter().any(|id| id == runtime.name()) {
                    ids.push(runtime.name().to_string());
                }
            }
            if ids.len() > crate::metadata::MAX_COMPATIBLE_RUNTIMES {
                return Err(Error::config(format!(
                    "{} `{}` would list {} compatible runtimes (`compatible_runtimes` in `{}` and the runtimes of the functions attaching it); PublishLayerVersion takes at most {}",
                    unit.role.name(),
                    unit.name,
                    ids.len(),
                    draft.manifest_path.display(),
                    crate::metadata::MAX_COMPATIBLE_RUNTIMES
                ))
                .with_help("list fewer runtimes in `compatible_runtimes`"));
            }
            unit.reasons
                .push(format!("compatible runtimes: {}", ids.join(", ")));
            // A layer is loaded by every runtime it lists: it must link against the glibc of the
            // oldest Amazon Linux among them, and is checked against each.
            for id in ids.iter() {
                if let Some(runtime) = Runtime::of_lambda_runtime(id)
                    && runtimes.insert(runtime)
                {
                    unit.reasons.push(format!(
                        "{id} runs on the Amazon Linux of {} (glibc {}): built and checked for it too",
                        runtime.name(),
                        runtime.glibc()
                    ));
                }
            }
        }
        unit.archs = archs.into_iter().collect();
        unit.runtimes = runtimes.into_iter().collect();
        units.push(unit);
    }
    units.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(units)
}

pub(super) fn check_unique_names(units: &[Unit]) -> Result<()> {
    let mut seen: BTreeMap<&str, &Unit> = BTreeMap::new();
    for unit in units {
        if let Some(first) = seen.insert(unit.name.as_str(), unit) {
            return Err(Error::config(format!(
                "two artifacts would be named `{}`: the {} of package `{}` and the {} of package `{}`",
                unit.name,
                first.role.name(),
                first.package,
                unit.role.name(),
                unit.package
            ))
            .with_help("rename one of them ([[bin]] name = \"...\" or the package name) so each artifact has its own name"));
        }
    }
    Ok(())
}

/// `x86_64` or `x86_64 and arm64`, for reasons and messages.
fn join_archs(archs: &[Arch]) -> String {
    archs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}
