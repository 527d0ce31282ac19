//! The pure planner (`plan::plan`) on generated workspaces of 50 and 500 units.
//!
//! Harness: divan (see `benches/zip_writer.rs` for why). Inputs are canned `PlanInputs` in the
//! shape the planner's unit tests use: no cargo, no files on disk, no network. Units are mostly
//! functions with a few extensions and shared-code layers attached to them, half of them arm64,
//! each with includes in nested directories; the previous manifest lists every artifact plus
//! some that are now stale, so every step of the planner does real work.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cargo_lambda_pack::BuildRequest;
use cargo_lambda_pack::IncludedFile;
use cargo_lambda_pack::Linker;
use cargo_lambda_pack::Unit;
use cargo_lambda_pack::{Arch, GlibcVersion, Libc, Runtime, RustTarget};
use cargo_lambda_pack::{BinaryFacts, ByteOrder, ElfKind, Linkage};
use cargo_lambda_pack::{BinaryInput, PlanInputs, UnitFacts, plan};
use cargo_lambda_pack::{IncludeSpec, PackageFormat, Role};
use divan::Bencher;

const GLIBC: GlibcVersion = GlibcVersion {
    major: 2,
    minor: 34,
};

fn main() {
    divan::main();
}

#[divan::bench(args = [50, 500])]
fn plan_units(bencher: Bencher, units: usize) {
    let inputs = inputs(units);
    // The inputs must plan: a benchmark of the error path would measure nothing useful.
    plan(&inputs).expect("the generated inputs plan");
    bencher
        .counter(divan::counter::ItemsCount::new(units))
        .bench(|| plan(divan::black_box(&inputs)).expect("plan"));
}

fn arch_of(i: usize) -> Arch {
    if i.is_multiple_of(2) {
        Arch::X86_64
    } else {
        Arch::Arm64
    }
}

/// `count` units: one extension and one shared-code layer per twenty-five, the rest functions;
/// every function attaches the extension and the layer of its group of that architecture.
fn inputs(count: usize) -> PlanInputs {
    let mut units = Vec::with_capacity(count);
    for i in 0..count {
        let arch = arch_of(i);
        let group = i / 50;
        let (name, role, layers) = match i % 25 {
            0 | 1 => (format!("ext-{group}-{arch}"), Role::Extension, vec![]),
            2 | 3 => (format!("tools-{group}-{arch}"), Role::Layer, vec![]),
            _ => (
                format!("fn-{i:04}"),
                Role::Function,
                vec![
                    format!("tools-{group}-{arch}"),
                    format!("ext-{group}-{arch}"),
                ],
            ),
        };
        units.push(unit_facts(i, name, role, arch, layers));
    }
    let packages: BTreeSet<String> = units.iter().map(|u| u.unit.package.clone()).collect();
    let builds = [Arch::X86_64, Arch::Arm64]
        .into_iter()
        .map(|arch| {
            let mine: Vec<&UnitFacts> = units.iter().filter(|u| u.arch == arch).collect();
            BuildRequest {
                target: RustTarget::new(arch, Libc::Gnu),
                linker: Linker::Zig,
                glibc: Some(GLIBC),
                packages: mine.iter().map(|u| u.unit.package.clone()).collect(),
                bins: mine.iter().flat_map(|u| u.unit.bins.clone()).collect(),
                examples: Vec::new(),
                cdylibs: mine.iter().flat_map(|u| u.unit.cdylibs.clone()).collect(),
            }
        })
        .collect();
    let mut previous: Vec<(String, String)> = units
        .iter()
        .map(|u| {
            (
                format!("{}/{}.zip", u.arch, u.unit.name),
                u.unit.package.clone(),
            )
        })
        .collect();
    // A tenth of the packages had a bin that is gone, and a few packages left the workspace.
    previous.extend((0..count / 10).map(|i| {
        let package = units[i * 10].unit.package.clone();
        (format!("x86_64/old-bin-{i}.zip"), package)
    }));
    previous.extend((0..count / 20).map(|i| (format!("arm64/gone-{i}.zip"), format!("gone-{i}"))));
    PlanInputs {
        units,
        builds,
        source_date_epoch: Some(1_700_000_000),
        previous,
        selected_packages: packages.clone(),
        workspace_packages: packages,
        compile_flags: Default::default(),
        dependencies: Default::default(),
        library_origins: Default::default(),
    }
}

fn unit_facts(i: usize, name: String, role: Role, arch: Arch, layers: Vec<String>) -> UnitFacts {
    let package = format!("pkg-{name}");
    let (bins, cdylibs) = match role {
        Role::Layer => (
            vec![format!("{name}-cli")],
            vec![format!("{}_codec", name.replace('-', "_"))],
        ),
        _ => (vec![name.clone()], vec![]),
    };
    let triple = RustTarget::new(arch, Libc::Gnu).triple();
    let binaries = bins
        .iter()
        .map(|bin| BinaryInput {
            name: bin.clone(),
            path: PathBuf::from(format!("/ws/target/{triple}/release/{bin}")),
            facts: elf(arch, 4_000_000 + i as u64 * 1_000, false),
        })
        .collect();
    let cdylibs_in = cdylibs
        .iter()
        .map(|lib| BinaryInput {
            name: lib.clone(),
            path: PathBuf::from(format!("/ws/target/{triple}/release/lib{lib}.so")),
            facts: elf(arch, 900_000, true),
        })
        .collect();
    let includes = vec![
        include(&package, "config/app.toml", 2_000, false),
        include(
            &package,
            &format!("assets/templates/{name}/index.html"),
            40_000,
            false,
        ),
        include(
            &package,
            &format!("assets/templates/{name}/mail.txt"),
            3_000,
            false,
        ),
        include(&package, "tools/helper", 150_000, true),
    ];
    UnitFacts {
        unit: Unit {
            name: name.clone(),
            package,
            role,
            bins,
            example: false,
            cdylibs,
            archs: vec![arch],
            runtimes: vec![Runtime::ProvidedAl2023],
            includes: vec![
                IncludeSpec {
                    pattern: "config/app.toml".into(),
                    dest: None,
                },
                IncludeSpec {
                    pattern: "assets/**".into(),
                    dest: None,
                },
                IncludeSpec {
                    pattern: "tools/helper".into(),
                    dest: None,
                },
            ],
            layers,
            arn_layers: Vec::new(),
            format: PackageFormat::Auto,
            allow: vec![],
            base_image: None,
            image_repository: None,
            version: "0.1.0".into(),
            bundle_libs: false,
            auditable: true,
            env: Default::default(),
            handler: "bootstrap".into(),
            compatible_runtimes: None,
            reasons: vec![format!("{name}: generated for the benchmark")],
            role_evidence: Default::default(),
            memory: None,
            ephemeral_storage: None,
        },
        arch,
        target: RustTarget::new(arch, Libc::Gnu),
        linker: Linker::Zig,
        glibc: Some(GLIBC),
        binaries,
        cdylibs: cdylibs_in,
        libraries: vec![],
        includes,
    }
}

/// What the inspector reports for a zig-linked, glibc-pinned Rust binary (or cdylib).
fn elf(arch: Arch, size: u64, shared: bool) -> BinaryFacts {
    BinaryFacts {
        elf_class: 64,
        byte_order: ByteOrder::Little,
        machine: arch.elf_machine(),
        machine_name: match arch {
            Arch::X86_64 => "EM_X86_64".into(),
            Arch::Arm64 => "EM_AARCH64".into(),
        },
        arch: Some(arch),
        kind: if shared {
            ElfKind::SharedObject
        } else {
            ElfKind::PieExecutable
        },
        linkage: Linkage::Dynamic,
        interpreter: (!shared).then(|| match arch {
            Arch::X86_64 => "/lib64/ld-linux-x86-64.so.2".into(),
            Arch::Arm64 => "/lib/ld-linux-aarch64.so.1".into(),
        }),
        libc: Some(Libc::Gnu),
        libc_evidence: None,
        needed: vec![
            "libc.so.6".into(),
            "libm.so.6".into(),
            "libgcc_s.so.1".into(),
        ],
        soname: None,
        max_glibc: Some(GLIBC),
        glibc_versions: [
            "2.2.5", "2.3", "2.14", "2.17", "2.28", "2.32", "2.33", "2.34",
        ]
        .iter()
        .map(|v| format!("GLIBC_{v}"))
        .collect(),
        stripped: true,
        debug_info: false,
        size,
        runtime_api: !shared,
        extension_api: false,
    }
}

fn include(package: &str, dest: &str, size: u64, executable: bool) -> IncludedFile {
    IncludedFile {
        source: PathBuf::from(format!("/ws/{package}/{dest}")),
        dest: dest.into(),
        size,
        executable,
        spec: dest.into(),
    }
}
