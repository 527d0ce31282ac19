//! The error of a selection with nothing to pack, naming the members that have something.

use crate::error::{Error, ErrorKind};
use crate::workspace::{Package, Workspace};

/// The error for a selection without a binary or cdylib. A root library package whose functions
/// live in member crates is the usual case: those members are named, with the flags that select
/// them.
pub(super) fn nothing_to_pack(workspace: &Workspace, selected: &[&Package]) -> Error {
    let error = Error::new(
        ErrorKind::NothingToPack,
        format!(
            "nothing to pack: no binary or cdylib target in {}",
            if selected.is_empty() {
                "the selected packages".to_string()
            } else {
                selected
                    .iter()
                    .map(|p| format!("`{}`", p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    )
    .with_note(format!(
        "workspace: `{}`",
        workspace.root_manifest.display()
    ));
    // A library that keeps its function as an example (`examples/main.rs`): cargo builds
    // examples only when asked, and so does this tool; say how to ask.
    let examples: Vec<(&str, &str)> = selected
        .iter()
        .flat_map(|p| p.examples.iter().map(|e| (p.name.as_str(), e.as_str())))
        .collect();
    let error = match examples.as_slice() {
        [] => error,
        [(_, example), ..] => error
            .with_note(format!(
                "examples of the selection: {}, built only when asked for, as cargo builds them (`--example {example}`, or `--examples` for all)",
                examples
                    .iter()
                    .map(|(package, example)| format!("`{example}` (package `{package}`)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .with_help(format!(
                "pack one as a function with `--example {example}`, or all of them with `--examples`"
            )),
    };
    let others: Vec<&Package> = workspace
        .members
        .iter()
        .filter(|p| !selected.iter().any(|s| s.name == p.name))
        .filter(|p| !p.bins.is_empty() || !p.cdylibs.is_empty())
        .collect();
    match others.as_slice() {
        [] if !examples.is_empty() => error,
        [] => error.with_help(
            "a Lambda function is a binary crate (src/main.rs or [[bin]]); select one with -p, or add one",
        ),
        [only] => error
            .with_note(format!(
                "member `{}` has {}",
                only.name,
                targets_of(only)
            ))
            .with_help(format!(
                "pack it with `-p {}`, or every member with `--workspace`",
                only.name
            )),
        _ => error
            .with_note(format!(
                "members with binaries: {}",
                others
                    .iter()
                    .map(|p| format!("`{}` ({})", p.name, targets_of(p)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .with_help(format!(
                "pack them all with `--workspace`, or one with `-p <member>` (e.g. `-p {}`)",
                others[0].name
            )),
    }
}

/// `bin fn-a, fn-b` / `cdylib codec`, for naming what a member would pack.
fn targets_of(package: &Package) -> String {
    let mut parts = Vec::new();
    if !package.bins.is_empty() {
        parts.push(format!("bin {}", package.bins.join(", ")));
    }
    if !package.cdylibs.is_empty() {
        parts.push(format!("cdylib {}", package.cdylibs.join(", ")));
    }
    parts.join("; ")
}
