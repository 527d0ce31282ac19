//! `cpu-too-new` before the build: the flags are known as soon as the targets are chosen, so a
//! pack refuses them without compiling anything.

use std::collections::BTreeMap;

use super::Choices;
use crate::error::{Error, ErrorKind, Result};
use crate::plan;
use crate::units::Unit;
use crate::workspace::Workspace;

/// The flags each Rust target's build gets from the environment and cargo's configuration.
pub fn read_compile_flags(
    workspace: &Workspace,
    choices: &Choices,
) -> Result<BTreeMap<String, crate::rustflags::CompileFlags>> {
    let mut flags = BTreeMap::new();
    for (target, _) in &choices.all() {
        flags.insert(
            target.triple(),
            crate::rustflags::effective(&workspace.root, *target)?,
        );
    }
    Ok(flags)
}

/// A pack refuses flags beyond Lambda's CPU floor before compiling anything: the same findings
/// the plan records, checked early because they need no build.
pub fn refuse_cpu_too_new(
    units: &[Unit],
    choices: &Choices,
    flags: &BTreeMap<String, crate::rustflags::CompileFlags>,
) -> Result<()> {
    let mut blocking = Vec::new();
    for unit in units {
        for arch in &unit.archs {
            let triple = choices.for_unit(unit, *arch).0.triple();
            for finding in plan::cpu_findings(&unit.allow, *arch, flags.get(&triple)) {
                if finding.is_blocking() {
                    blocking.push(plan::finding_line_for(&unit.name, *arch, &finding));
                }
            }
        }
    }
    if blocking.is_empty() {
        return Ok(());
    }
    Err(cpu_error(blocking))
}

pub fn cpu_error(lines: Vec<String>) -> Error {
    let mut error = Error::new(
        ErrorKind::BinaryCheck,
        format!(
            "{} CPU check(s) failed; these artifacts would crash on Lambda with an illegal instruction",
            lines.len()
        ),
    );
    for line in lines {
        error = error.with_note(line);
    }
    error.with_help(
        "build for Lambda's CPU floor as each finding says, or, if you know better, downgrade the finding with --allow cpu-too-new or allow = [\"cpu-too-new\"] in [package.metadata.lambda-pack]",
    )
}
