//! The generated `<function>-libs` layer: named, described and attached here, in the plan.
//!
//! `facts` finds on the build host the shared libraries a function needs and its runtime lacks
//! (that takes I/O); what to do with them is a planning decision: they become a layer of their
//! own, named after the function, attached after the function's other layers.

use std::collections::BTreeSet;

use super::UnitFacts;
use crate::error::{Error, Result};
use crate::metadata::Role;

/// The units to plan: `units` with each function's bundled libraries moved into a generated
/// `<function>-libs` layer, appended after every unit and attached last to its function.
pub(super) fn with_libs_layers(units: &[UnitFacts]) -> Result<Vec<UnitFacts>> {
    let taken: BTreeSet<&str> = units.iter().map(|f| f.unit.name.as_str()).collect();
    let mut planned = units.to_vec();
    let mut generated = Vec::new();
    for function in planned.iter_mut() {
        if function.unit.role != Role::Function || function.libraries.is_empty() {
            continue;
        }
        let name = libs_layer_name(&function.unit.name);
        if taken.contains(name.as_str()) {
            return Err(Error::config(format!(
                "function `{}` needs a generated layer `{name}`, but an artifact of that name already exists",
                function.unit.name
            ))
            .with_help("rename the other artifact, or set bundle_libs = false and ship the libraries yourself"));
        }
        let libraries = std::mem::take(&mut function.libraries);
        let sonames: Vec<&str> = libraries.iter().map(|l| l.name.as_str()).collect();
        let mut unit = function.unit.clone();
        unit.name = name.clone();
        unit.role = Role::Layer;
        unit.bins = Vec::new();
        unit.example = false;
        unit.cdylibs = Vec::new();
        unit.includes = Vec::new();
        unit.layers = Vec::new();
        unit.archs = vec![function.arch];
        unit.reasons = vec![format!(
            "layer: shared libraries `{}` needs and {} lacks: {}",
            function.unit.name,
            function.unit.runtimes[0],
            sonames.join(", ")
        )];
        function.unit.layers.push(name);
        generated.push(UnitFacts {
            unit,
            arch: function.arch,
            target: function.target,
            linker: function.linker,
            glibc: function.glibc,
            binaries: Vec::new(),
            cdylibs: Vec::new(),
            libraries,
            includes: Vec::new(),
        });
    }
    planned.extend(generated);
    Ok(planned)
}

/// The generated layer's artifact name.
fn libs_layer_name(function: &str) -> String {
    format!("{function}-libs")
}
