//! The Rust target and linker each unit is built with: one per architecture, except that with
//! `--compiler auto` (and no `--target`) a function whose image is built on
//! `base_image = "scratch"` is built static (musl), since scratch has no loader and no shared
//! libraries to run a glibc binary with. Such a unit gets a build of its own target; every other
//! unit of the architecture keeps the architecture's.

use std::collections::{BTreeMap, BTreeSet};

use crate::cli::CompilerChoice;
use crate::error::Result;
use crate::target::{Arch, Libc, RustTarget};
use crate::toolchain::{self, Linker};
use crate::units::Unit;

/// The base image reference that builds an image from nothing (as `plan::scratch` reads it).
const SCRATCH: &str = "scratch";

pub struct Choices {
    by_arch: BTreeMap<Arch, (RustTarget, Linker)>,
    /// The static choice per architecture, for the units in `static_units`.
    static_by_arch: BTreeMap<Arch, (RustTarget, Linker)>,
    /// (package, unit name, architecture) of the units built static for scratch.
    static_units: BTreeSet<(String, String, Arch)>,
}

impl Choices {
    /// Chooses for every architecture of `units`, then a static target for the units on scratch
    /// when the architecture's is glibc and neither `--compiler` nor `--target` forbids a
    /// choice of this tool's.
    pub fn choose(
        units: &[Unit],
        compiler: CompilerChoice,
        target_override: Option<RustTarget>,
        zig: bool,
    ) -> Result<Choices> {
        let mut choices = Choices {
            by_arch: BTreeMap::new(),
            static_by_arch: BTreeMap::new(),
            static_units: BTreeSet::new(),
        };
        let architectures: BTreeSet<Arch> =
            units.iter().flat_map(|u| u.archs.iter().copied()).collect();
        for arch in architectures {
            let choice = toolchain::choose(arch, compiler, target_override, zig, Arch::host())?;
            choices.by_arch.insert(arch, choice);
        }
        if compiler != CompilerChoice::Auto || target_override.is_some() {
            return Ok(choices);
        }
        for unit in units.iter().filter(|u| on_scratch(u)) {
            for arch in &unit.archs {
                if choices.by_arch[arch].0.libc != Libc::Gnu {
                    continue;
                }
                let musl = RustTarget::new(*arch, Libc::Musl);
                let choice = toolchain::choose(*arch, compiler, Some(musl), zig, Arch::host())?;
                choices.static_by_arch.insert(*arch, choice);
                choices
                    .static_units
                    .insert((unit.package.clone(), unit.name.clone(), *arch));
            }
        }
        Ok(choices)
    }

    /// The target and linker `unit` is built with for `arch`.
    pub fn for_unit(&self, unit: &Unit, arch: Arch) -> (RustTarget, Linker) {
        let key = (unit.package.clone(), unit.name.clone(), arch);
        if self.static_units.contains(&key) {
            self.static_by_arch[&arch]
        } else {
            self.by_arch[&arch]
        }
    }

    /// Whether `unit` is built static for `arch` because its image is built on scratch.
    pub fn static_for_scratch(&self, unit: &Unit, arch: Arch) -> bool {
        self.static_units
            .contains(&(unit.package.clone(), unit.name.clone(), arch))
    }

    /// Every target and linker some unit is built with, each once.
    pub fn all(&self) -> BTreeSet<(RustTarget, Linker)> {
        self.by_arch
            .values()
            .chain(self.static_by_arch.values())
            .copied()
            .collect()
    }
}

/// A function that is, or may become (`package = "auto"`), a container image on
/// `base_image = "scratch"`; the size decides an `auto` one's format only after the build.
fn on_scratch(unit: &Unit) -> bool {
    unit.format != crate::metadata::PackageFormat::Zip
        && unit.base_image.as_deref() == Some(SCRATCH)
}
