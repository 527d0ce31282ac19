//! Which manifest entries `verify` runs: the functions named (with a suggestion for a typo), else
//! this workspace's functions; a standalone extension runs against a stand-in function.

use std::path::Path;

use crate::error::{Error, Result};
use crate::manifest::{Manifest, ManifestArtifact, ReadError, SCHEMA_VERSION};
use crate::metadata::Role;
use crate::output::Shell;
use crate::target::Arch;

pub(super) fn read_manifest(path: &Path) -> Result<Manifest> {
    let manifest = Manifest::read(path).map_err(|err| match err {
        ReadError::Missing | ReadError::Io(_) => {
            let what = match err {
                ReadError::Io(err) => {
                    format!("could not read manifest `{}`: {err}", path.display())
                }
                _ => format!("no manifest at `{}`", path.display()),
            };
            Error::config(what).with_help(
                "run `cargo lambda-pack` first, or pass --build (and --out-dir if the artifacts \
                 were written elsewhere)",
            )
        }
        ReadError::Invalid(err) => Error::config(format!(
            "`{}` is not a lambda-pack manifest: {err}",
            path.display()
        ))
        .with_help("regenerate it with `cargo lambda-pack`, or pass --build"),
    })?;
    if manifest.schema_version > SCHEMA_VERSION {
        return Err(Error::config(format!(
            "`{}` has schema version {}; this cargo-lambda-pack reads version {SCHEMA_VERSION}",
            path.display(),
            manifest.schema_version
        ))
        .with_help("update cargo-lambda-pack, or pack again with this version (--build)"));
    }
    Ok(manifest)
}

pub(super) fn is_function(artifact: &ManifestArtifact) -> bool {
    artifact.kind == Role::Function
}

/// The functions to run: those named (every arch of each name), else every function, ZIPs and
/// images alike, else (a workspace of standalone extensions only) its standalone extensions;
/// `arch` (`--arch`) keeps only that architecture's, as it does for deploy.
pub(super) fn select<'a>(
    manifest: &'a Manifest,
    names: &[String],
    arch: Option<Arch>,
    manifest_path: &Path,
    workspace_root: Option<&Path>,
    shell: &Shell,
) -> Result<Vec<&'a ManifestArtifact>> {
    let mut available: Vec<&str> = manifest
        .artifacts
        .iter()
        .filter(|a| is_function(a))
        .map(|a| a.name.as_str())
        .collect();
    available.sort_unstable();
    available.dedup();
    let candidates: Vec<&ManifestArtifact> = if names.is_empty() {
        let (own, others): (Vec<&ManifestArtifact>, Vec<&ManifestArtifact>) = manifest
            .artifacts
            .iter()
            .filter(|a| is_function(a))
            .partition(|a| workspace_root.is_none_or(|root| Manifest::belongs_to(a, root)));
        let own = if own.is_empty() {
            // No function here: a workspace of standalone extensions runs them.
            manifest
                .artifacts
                .iter()
                .filter(|a| workspace_root.is_none_or(|root| Manifest::belongs_to(a, root)))
                .filter(|a| a.kind == Role::Extension && is_standalone_extension(manifest, &a.name))
                .collect()
        } else {
            own
        };
        if !others.is_empty() {
            let named: Vec<String> = others
                .iter()
                .map(|a| {
                    format!(
                        "{} ({}, {})",
                        a.name,
                        a.arch,
                        a.workspace_root.as_deref().unwrap_or("?")
                    )
                })
                .collect();
            shell.note(format!(
                "not running {} function(s) of other workspaces sharing `{}`: {}; name them to verify them from here",
                others.len(),
                manifest_path.display(),
                named.join(", ")
            ));
        }
        own
    } else {
        let unknown: Vec<&String> = names
            .iter()
            .filter(|name| !manifest.artifacts.iter().any(|a| &a.name == *name))
            .collect();
        if !unknown.is_empty() {
            let quoted: Vec<String> = unknown.iter().map(|n| format!("`{n}`")).collect();
            let mut error = Error::config(format!(
                "no function {} in `{}`",
                quoted.join(", "),
                manifest_path.display()
            ))
            .with_note(format!("functions in the manifest: {}", list(&available)));
            let suggestions: Vec<String> = unknown
                .iter()
                .filter_map(|name| {
                    crate::suggest::nearest(name, available.iter().copied(), crate::suggest::NEAR)
                        .map(|s| format!("`{s}`"))
                })
                .collect();
            error = if suggestions.is_empty() {
                error
                    .with_help("name functions from the list, or pack their crates first (--build)")
            } else {
                error.with_help(format!("did you mean {}?", suggestions.join(", ")))
            };
            return Err(error);
        }
        let mut chosen = Vec::new();
        for name in names {
            let matching: Vec<&ManifestArtifact> = manifest
                .artifacts
                .iter()
                .filter(|a| &a.name == name)
                .collect();
            let functions: Vec<&ManifestArtifact> = matching
                .iter()
                .copied()
                .filter(|a| is_function(a))
                .collect();
            if functions.is_empty() && is_standalone_extension(manifest, name) {
                // No function of the workspace runs it: run it against a stand-in function.
                for extension in matching
                    .iter()
                    .copied()
                    .filter(|c| c.kind == Role::Extension)
                {
                    if !chosen
                        .iter()
                        .any(|c: &&ManifestArtifact| std::ptr::eq(*c, extension))
                    {
                        chosen.push(extension);
                    }
                }
                continue;
            }
            if functions.is_empty() {
                let mut users: Vec<&str> = manifest
                    .artifacts
                    .iter()
                    .filter(|a| is_function(a) && a.layers.contains(name))
                    .map(|a| a.name.as_str())
                    .collect();
                users.sort_unstable();
                users.dedup();
                let help = if users.is_empty() {
                    "no function attaches it; name a function instead".to_string()
                } else {
                    format!("verify a function that attaches it: {}", users.join(", "))
                };
                return Err(Error::config(format!(
                    "`{name}` is {} {}, not a function; verify runs functions with their layers",
                    article(matching[0].kind.name()),
                    matching[0].kind
                ))
                .with_note(format!("functions in the manifest: {}", list(&available)))
                .with_help(help));
            }
            for function in functions {
                if !chosen
                    .iter()
                    .any(|c: &&ManifestArtifact| std::ptr::eq(*c, function))
                {
                    chosen.push(function);
                }
            }
        }
        chosen
    };
    let selected: Vec<&ManifestArtifact> = match arch {
        Some(arch) => {
            let (kept, other): (Vec<_>, Vec<_>) =
                candidates.into_iter().partition(|a| a.arch == arch);
            if kept.is_empty() && !other.is_empty() {
                let mut names: Vec<String> = other
                    .iter()
                    .map(|a| format!("{} ({})", a.name, a.arch))
                    .collect();
                names.dedup();
                return Err(Error::config(format!(
                    "nothing to verify for --arch {arch}: the selected artifacts are built for \
                     other architectures: {}",
                    names.join(", ")
                ))
                .with_help(format!(
                    "drop --arch, or pack for {arch} first (`cargo lambda-pack --arch {arch}`, or \
                     pass --build)"
                )));
            }
            kept
        }
        None => candidates,
    };
    if selected.is_empty() {
        return Err(Error::config(format!(
            "nothing to verify: `{}` lists no function{}",
            manifest_path.display(),
            if names.is_empty() {
                ""
            } else {
                " among those named"
            }
        ))
        .with_help(standalone_help(manifest)));
    }
    Ok(selected)
}

/// An extension that no function of the manifest attaches: shipped on its own (often to
/// functions in other languages), so verify runs it against a stand-in function.
fn is_standalone_extension(manifest: &Manifest, name: &str) -> bool {
    let is_extension = |a: &ManifestArtifact| a.name == name && a.kind == Role::Extension;
    manifest.artifacts.iter().any(is_extension)
        && !manifest
            .artifacts
            .iter()
            .any(|a| is_function(a) && a.layers.iter().any(|l| l == name))
}

fn standalone_help(manifest: &Manifest) -> String {
    let mut standalone: Vec<&str> = manifest
        .artifacts
        .iter()
        .filter(|a| is_standalone_extension(manifest, &a.name))
        .map(|a| a.name.as_str())
        .collect();
    standalone.dedup();
    match standalone.first() {
        Some(first) => format!(
            "name an extension to run it against a stand-in function, e.g. `cargo lambda-pack verify {first}` (standalone extensions: {})",
            standalone.join(", ")
        ),
        None => "pack a workspace with at least one function crate (--build)".into(),
    }
}

pub(super) fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

pub(super) fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}
