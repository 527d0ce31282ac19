//! The units and facts the planner's unit tests (and the rendering tests that need a plan) start
//! from: a function, extension or layer unit with one include, its binaries read as static musl
//! ELF files, and included files under `/ws`.

use super::{BinaryInput, UnitFacts};
use crate::include::IncludedFile;
use crate::inspect::BinaryFacts;
use crate::inspect::facts_builder::FactsBuilder;
use crate::metadata::{IncludeSpec, PackageFormat, Role};
use crate::target::{Arch, Libc, Runtime, RustTarget};
use crate::toolchain::Linker;
use crate::units::Unit;

/// Facts of a static musl executable (or a shared object) for `arch`, as the inspector reports them.
pub fn elf(arch: Arch, size: u64, shared: bool) -> BinaryFacts {
    let facts = FactsBuilder::static_musl(arch).size(size);
    if shared {
        facts.shared_object().build()
    } else {
        facts.build()
    }
}

pub fn unit(name: &str, role: Role, archs: &[Arch]) -> Unit {
    Unit {
        name: name.into(),
        package: format!("pkg-{name}"),
        role,
        bins: vec![name.into()],
        example: false,
        cdylibs: vec![],
        archs: archs.to_vec(),
        runtimes: vec![Runtime::ProvidedAl2023],
        includes: vec![IncludeSpec {
            pattern: "x".into(),
            dest: None,
        }],
        layers: vec![],
        arn_layers: vec![],
        format: PackageFormat::Auto,
        allow: vec![],
        base_image: None,
        image_repository: None,
        version: "0.1.0".into(),
        bundle_libs: true,
        auditable: true,
        env: Default::default(),
        handler: "bootstrap".into(),
        compatible_runtimes: None,
        reasons: vec![format!("{}: test", role.name())],
        role_evidence: Default::default(),
        memory: None,
        ephemeral_storage: None,
    }
}

pub fn facts(unit: Unit, arch: Arch, includes: Vec<IncludedFile>) -> UnitFacts {
    let binaries = unit
        .bins
        .iter()
        .map(|bin| BinaryInput {
            name: bin.clone(),
            path: format!("/t/{bin}").into(),
            facts: elf(arch, 1000, false),
        })
        .collect();
    let cdylibs = unit
        .cdylibs
        .iter()
        .map(|lib| BinaryInput {
            name: lib.clone(),
            path: format!("/t/lib{lib}.so").into(),
            facts: elf(arch, 500, true),
        })
        .collect();
    UnitFacts {
        unit,
        arch,
        target: RustTarget::new(arch, Libc::Musl),
        linker: Linker::RustLld,
        glibc: None,
        binaries,
        cdylibs,
        libraries: vec![],
        includes,
    }
}

pub fn include(dest: &str, size: u64, executable: bool) -> IncludedFile {
    IncludedFile {
        source: format!("/ws/{dest}").into(),
        dest: dest.into(),
        size,
        executable,
        spec: dest.into(),
    }
}
