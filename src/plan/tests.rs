use super::*;
use crate::facts::builder::{elf, facts, include, unit};
use crate::metadata::PackageFormat;
use crate::units::RoleEvidence;

fn inputs(units: Vec<UnitFacts>) -> PlanInputs {
    PlanInputs {
        units,
        builds: vec![],
        source_date_epoch: None,
        previous: vec![],
        selected_packages: BTreeSet::new(),
        workspace_packages: BTreeSet::new(),
        compile_flags: Default::default(),
        dependencies: Default::default(),
        library_origins: Default::default(),
    }
}

fn listing(artifact: &PlannedArtifact) -> Vec<(&str, u32)> {
    artifact
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.mode))
        .collect()
}

fn find<'a>(plan: &'a Plan, name: &str, arch: Arch) -> &'a PlannedArtifact {
    plan.artifacts
        .iter()
        .find(|a| a.name == name && a.arch == arch)
        .unwrap()
}

#[test]
fn function_zip_has_bootstrap_includes_and_their_directories() {
    let unit = unit("fn-a", Role::Function, &[Arch::X86_64]);
    let plan = plan(&inputs(vec![facts(
        unit,
        Arch::X86_64,
        vec![
            include("etc/app.toml", 5, false),
            include("bin/tool", 7, true),
        ],
    )]))
    .unwrap();
    let artifact = &plan.artifacts[0];
    assert_eq!(artifact.path, "x86_64/fn-a.zip");
    assert_eq!(
        listing(artifact),
        [
            ("bin/", 0o755),
            ("bin/tool", 0o755),
            ("bootstrap", 0o755),
            ("etc/", 0o755),
            ("etc/app.toml", 0o644)
        ]
    );
    assert_eq!(artifact.size_unzipped, 1012);
    assert_eq!(artifact.size_unzipped_with_layers, Some(1012));
    assert!(artifact.findings.is_empty(), "{:?}", artifact.findings);
}

#[test]
fn extension_layer_puts_the_binary_under_extensions() {
    let unit = unit("audit-ext", Role::Extension, &[Arch::Arm64]);
    let plan = plan(&inputs(vec![facts(
        unit,
        Arch::Arm64,
        vec![include("share/audit.conf", 3, false)],
    )]))
    .unwrap();
    let artifact = &plan.artifacts[0];
    assert_eq!(artifact.kind, Role::Extension);
    assert_eq!(artifact.bin.as_deref(), Some("audit-ext"));
    assert_eq!(
        listing(artifact),
        [
            ("extensions/", 0o755),
            ("extensions/audit-ext", 0o755),
            ("share/", 0o755),
            ("share/audit.conf", 0o644)
        ]
    );
}

#[test]
fn shared_code_layer_holds_bins_cdylibs_and_includes() {
    let mut layer = unit("tools", Role::Layer, &[Arch::X86_64]);
    layer.bins = vec!["convert".into()];
    layer.cdylibs = vec!["img-codec".into()];
    let plan = plan(&inputs(vec![facts(
        layer,
        Arch::X86_64,
        vec![include("share/tools/table.csv", 9, false)],
    )]))
    .unwrap();
    let artifact = &plan.artifacts[0];
    assert_eq!(artifact.bin, None);
    assert_eq!(
        listing(artifact),
        [
            ("bin/", 0o755),
            ("bin/convert", 0o755),
            ("lib/", 0o755),
            ("lib/libimg_codec.so", 0o755),
            ("share/", 0o755),
            ("share/tools/", 0o755),
            ("share/tools/table.csv", 0o644)
        ]
    );
    assert!(
        artifact.findings.is_empty(),
        "a shared object under lib/ is what a layer should hold: {:?}",
        artifact.findings
    );
}

#[test]
fn include_may_not_replace_a_binary() {
    let unit = unit("fn-a", Role::Function, &[Arch::X86_64]);
    let err = plan(&inputs(vec![facts(
        unit,
        Arch::X86_64,
        vec![include("bootstrap", 5, true)],
    )]))
    .unwrap_err();
    assert!(
        err.to_string().contains("would overwrite `bootstrap`"),
        "{err}"
    );
}

/// A function attaching `n` layers, each a layer artifact of its own.
fn function_with_layers(n: usize) -> Vec<UnitFacts> {
    let mut function = unit("fn-a", Role::Function, &[Arch::X86_64]);
    let mut units = Vec::new();
    for i in 0..n {
        let name = format!("layer-{i}");
        function.layers.push(name.clone());
        let mut layer = unit(&name, Role::Layer, &[Arch::X86_64]);
        layer.bins = vec![];
        units.push(facts(
            layer,
            Arch::X86_64,
            vec![
                include(&format!("share/{i}.txt"), 100, false),
                include("share/common.txt", 1, false),
            ],
        ));
    }
    units.push(facts(function, Arch::X86_64, vec![]));
    units
}

#[test]
fn five_layers_fit_and_six_do_not_in_a_zip() {
    let plan = plan(&inputs(function_with_layers(5))).unwrap();
    let function = find(&plan, "fn-a", Arch::X86_64);
    assert_eq!(function.format, Format::Zip);
    assert_eq!(function.layers.len(), 5);
    assert_eq!(function.size_unzipped_with_layers, Some(1000 + 5 * 101));
    let mut six = function_with_layers(6);
    six.last_mut().unwrap().unit.format = PackageFormat::Zip;
    let err = super::plan(&inputs(six)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::LimitExceeded);
    assert!(err.to_string().contains("attaches 6 layers"), "{err}");
    assert!(err.help.is_some());
}

#[test]
fn overlapping_layer_paths_warn_and_name_the_winner() {
    let plan = plan(&inputs(function_with_layers(2))).unwrap();
    assert_eq!(
        plan.warnings,
        [
            "layers `layer-0` and `layer-1` of function `fn-a` (x86_64) all write /opt/share/common.txt; `layer-1` wins because it is attached last"
        ]
    );
}

#[test]
fn wrong_architecture_blocks_unless_allowed() {
    let mut unit_facts = facts(
        unit("fn-a", Role::Function, &[Arch::X86_64]),
        Arch::X86_64,
        vec![],
    );
    unit_facts.binaries[0].facts = elf(Arch::Arm64, 1000, false);
    let blocked = plan(&inputs(vec![unit_facts.clone()])).unwrap();
    let (_, finding) = blocked
        .blocking_findings()
        .next()
        .expect("a blocking finding");
    assert_eq!(finding.finding.code, "wrong-architecture");
    assert_eq!(finding.entry, "bootstrap");
    unit_facts.unit.allow = vec!["wrong-architecture".into()];
    let allowed = plan(&inputs(vec![unit_facts])).unwrap();
    assert_eq!(allowed.blocking_findings().count(), 0);
    assert!(allowed.artifacts[0].findings[0].allowed);
}

#[test]
fn plan_is_deterministic_and_sorted() {
    let units = vec![
        facts(
            unit("zeta", Role::Function, &[Arch::X86_64]),
            Arch::X86_64,
            vec![],
        ),
        facts(
            unit("alpha", Role::Function, &[Arch::Arm64]),
            Arch::Arm64,
            vec![],
        ),
        facts(
            unit("beta", Role::Function, &[Arch::X86_64]),
            Arch::X86_64,
            vec![],
        ),
    ];
    let inputs = PlanInputs {
        source_date_epoch: Some(1_700_000_000),
        ..inputs(units)
    };
    let first = serde_json::to_string(&plan(&inputs).unwrap()).unwrap();
    let second = serde_json::to_string(&plan(&inputs).unwrap()).unwrap();
    assert_eq!(first, second);
    let paths: Vec<String> = plan(&inputs)
        .unwrap()
        .artifacts
        .into_iter()
        .map(|a| a.path)
        .collect();
    assert_eq!(
        paths,
        ["x86_64/beta.zip", "x86_64/zeta.zip", "arm64/alpha.zip"]
    );
}

#[test]
fn stale_artifacts_of_selected_or_removed_packages_are_removed() {
    let inputs = PlanInputs {
        previous: vec![
            ("x86_64/fn-a.zip".into(), "pkg-fn-a".into()),
            ("x86_64/old-bin.zip".into(), "pkg-fn-a".into()),
            ("x86_64/other.zip".into(), "pkg-other".into()),
            ("x86_64/gone.zip".into(), "pkg-gone".into()),
        ],
        selected_packages: ["pkg-fn-a".to_string()].into(),
        workspace_packages: ["pkg-fn-a".to_string(), "pkg-other".to_string()].into(),
        ..inputs(vec![facts(
            unit("fn-a", Role::Function, &[Arch::X86_64]),
            Arch::X86_64,
            vec![],
        )])
    };
    assert_eq!(
        plan(&inputs).unwrap().stale,
        ["x86_64/gone.zip", "x86_64/old-bin.zip"]
    );
}

#[test]
fn human_sizes() {
    assert_eq!(human_bytes(999), "999 B");
    assert_eq!(human_bytes(262_144_000), "250.0 MB");
    assert_eq!(human_bytes(52_428_800), "50.0 MB");
}

#[test]
fn zip_only_function_over_the_unzipped_limit_is_an_error_naming_both_sizes() {
    let mut unit = unit("fn-big", Role::Function, &[Arch::X86_64]);
    unit.format = PackageFormat::Zip;
    let err = plan(&inputs(vec![facts(
        unit,
        Arch::X86_64,
        vec![include("big.bin", MAX_UNZIPPED_BYTES, false)],
    )]))
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::LimitExceeded);
    assert!(
        err.to_string()
            .contains(&format!("is {} bytes unzipped", MAX_UNZIPPED_BYTES + 1000)),
        "{err}"
    );
    assert!(
        err.to_string().contains("262144000-byte (250.0 MB) limit"),
        "{err}"
    );
    assert!(err.help.as_deref().unwrap().contains("Dockerfile"), "{err}");
}

#[test]
fn over_the_unzipped_limit_becomes_an_image_and_says_why() {
    let unit = unit("fn-big", Role::Function, &[Arch::X86_64]);
    let plan = plan(&inputs(vec![facts(
        unit,
        Arch::X86_64,
        vec![include("data/big.bin", 326_000_000, false)],
    )]))
    .unwrap();
    let artifact = &plan.artifacts[0];
    assert_eq!(artifact.format, Format::Image);
    assert_eq!(artifact.path, "x86_64/fn-big");
    assert!(
        artifact
            .reasons
            .iter()
            .any(|r| r.starts_with("image (310.9 MB unzipped > 250.0 MB limit)")),
        "{:?}",
        artifact.reasons
    );
    assert_eq!(
        listing(artifact),
        [
            ("bootstrap", 0o755),
            ("task/", 0o755),
            ("task/data/", 0o755),
            ("task/data/big.bin", 0o644)
        ]
    );
    assert_eq!(
        artifact.build_command.as_deref(),
        Some("docker build --platform linux/amd64 --provenance=false -t fn-big x86_64/fn-big")
    );
}

#[test]
fn dockerfile_copies_layers_in_order_then_includes_then_bootstrap() {
    let mut units = function_with_layers(2);
    let function = units.last_mut().unwrap();
    function.unit.format = PackageFormat::Image;
    function.unit.runtimes = vec![Runtime::ProvidedAl2];
    function.includes = vec![include("etc/app.toml", 5, false)];
    let plan = plan(&inputs(units)).unwrap();
    let artifact = find(&plan, "fn-a", Arch::X86_64);
    assert_eq!(artifact.format, Format::Image);
    assert!(
        artifact
            .reasons
            .iter()
            .any(|r| r.starts_with("image (package = \"image\")")),
        "{:?}",
        artifact.reasons
    );
    // Its own binary runs from where the base image looks for it.
    assert!(
        artifact
            .reasons
            .iter()
            .any(|r| r
                == "bootstrap: /var/runtime/bootstrap in the image, the function's own binary"),
        "{:?}",
        artifact.reasons
    );
    insta::assert_snapshot!(artifact.dockerfile.as_deref().unwrap());
    let paths: Vec<&str> = artifact.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "bootstrap",
            "opt/",
            "opt/01-layer-0/",
            "opt/01-layer-0/share/",
            "opt/01-layer-0/share/0.txt",
            "opt/01-layer-0/share/common.txt",
            "opt/02-layer-1/",
            "opt/02-layer-1/share/",
            "opt/02-layer-1/share/1.txt",
            "opt/02-layer-1/share/common.txt",
            "task/",
            "task/etc/",
            "task/etc/app.toml",
        ]
    );
}

#[test]
fn six_layers_make_an_image_unless_zip_is_required() {
    let plan = plan(&inputs(function_with_layers(6))).unwrap();
    let artifact = find(&plan, "fn-a", Arch::X86_64);
    assert_eq!(artifact.format, Format::Image);
    assert!(
        artifact
            .reasons
            .iter()
            .any(|r| r.starts_with("image (6 layers > 5 limit)")),
        "{:?}",
        artifact.reasons
    );
}

#[test]
fn base_image_overrides_the_from_line() {
    let mut function = unit("fn-a", Role::Function, &[Arch::Arm64]);
    function.format = PackageFormat::Image;
    function.base_image = Some("registry.example/base:1".into());
    let plan = plan(&inputs(vec![facts(function, Arch::Arm64, vec![])])).unwrap();
    let dockerfile = plan.artifacts[0].dockerfile.as_deref().unwrap();
    assert!(
        dockerfile.contains("\nFROM registry.example/base:1\n"),
        "{dockerfile}"
    );
    assert!(
        !dockerfile.contains("COPY task/"),
        "no includes, no task copy: {dockerfile}"
    );
}

#[test]
fn content_over_ten_gigabytes_is_an_error() {
    let unit = unit("fn-huge", Role::Function, &[Arch::X86_64]);
    let err = plan(&inputs(vec![facts(
        unit,
        Arch::X86_64,
        vec![include("huge.bin", MAX_IMAGE_BYTES, false)],
    )]))
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::LimitExceeded);
    assert!(err.to_string().contains("container-image limit"), "{err}");
}

/// A function whose binary needs `sonames`, found on the build host by `facts`.
fn function_needing_libraries(name: &str, sonames: &[&str]) -> UnitFacts {
    let mut function = facts(
        unit(name, Role::Function, &[Arch::X86_64]),
        Arch::X86_64,
        vec![],
    );
    function.libraries = sonames
        .iter()
        .map(|soname| BinaryInput {
            name: soname.to_string(),
            path: format!("/usr/lib/{soname}").into(),
            facts: elf(Arch::X86_64, 300, true),
        })
        .collect();
    function
}

#[test]
fn libraries_a_function_needs_become_its_libs_layer_attached_last() {
    let mut units = function_with_layers(1);
    units.last_mut().unwrap().libraries =
        function_needing_libraries("fn-a", &["libsqlite3.so.0"]).libraries;
    let plan = plan(&inputs(units)).unwrap();
    let function = find(&plan, "fn-a", Arch::X86_64);
    assert_eq!(function.layers, ["layer-0", "fn-a-libs"]);
    assert!(
        !listing(function)
            .iter()
            .any(|(path, _)| path.starts_with("lib/")),
        "the function keeps no libraries itself: {:?}",
        listing(function)
    );
    let layer = find(&plan, "fn-a-libs", Arch::X86_64);
    assert_eq!(layer.kind, Role::Layer);
    assert_eq!(layer.bin, None);
    assert_eq!(
        listing(layer),
        [
            ("lib/", MODE_EXECUTABLE),
            ("lib/libsqlite3.so.0", MODE_EXECUTABLE)
        ]
    );
    assert_eq!(
        layer.reasons[0],
        "layer: shared libraries `fn-a` needs and provided.al2023 lacks: libsqlite3.so.0"
    );
    assert_eq!(function.upload, Some(UploadRule::LAMBDA));
    assert_eq!(layer.upload, Some(UploadRule::LAMBDA));
}

#[test]
fn a_libs_layer_name_already_taken_is_a_config_error() {
    let taken = unit("fn-a-libs", Role::Function, &[Arch::X86_64]);
    let err = plan(&inputs(vec![
        function_needing_libraries("fn-a", &["libxml2.so.2"]),
        facts(taken, Arch::X86_64, vec![]),
    ]))
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(
        err.to_string().contains(
            "function `fn-a` needs a generated layer `fn-a-libs`, but an artifact of that name already exists"
        ),
        "{err}"
    );
}

#[test]
fn zips_go_direct_up_to_fifty_mebibytes_and_images_have_no_upload() {
    assert_eq!(
        UploadRule::LAMBDA.upload(MAX_DIRECT_UPLOAD_BYTES),
        Upload::Direct
    );
    assert_eq!(
        UploadRule::LAMBDA.upload(MAX_DIRECT_UPLOAD_BYTES + 1),
        Upload::S3
    );
    let mut function = unit("fn-a", Role::Function, &[Arch::X86_64]);
    function.format = PackageFormat::Image;
    let plan = plan(&inputs(vec![facts(function, Arch::X86_64, vec![])])).unwrap();
    assert_eq!(plan.artifacts[0].format, Format::Image);
    assert_eq!(plan.artifacts[0].upload, None);
}

#[test]
fn a_runtime_layer_holds_bootstrap_and_a_handler_only_function_runs_it() {
    let mut runtime = unit("rt", Role::Runtime, &[Arch::X86_64]);
    runtime.includes.clear();
    let mut function = unit("script", Role::Function, &[Arch::X86_64]);
    function.bins.clear();
    function.handler = "main.js".into();
    let alone = function.clone();
    function.layers = vec!["rt".into()];
    let plan_of = |function: crate::units::Unit| {
        plan(&inputs(vec![
            facts(runtime.clone(), Arch::X86_64, vec![]),
            facts(function, Arch::X86_64, vec![include("main.js", 9, false)]),
        ]))
        .unwrap()
    };

    let planned = plan_of(function.clone());
    let layer = find(&planned, "rt", Arch::X86_64);
    assert_eq!(layer.kind, Role::Layer);
    assert_eq!(layer.layer_type, Some(LayerType::Runtime));
    assert_eq!(layer.bin.as_deref(), Some("rt"));
    assert_eq!(listing(layer), [("bootstrap", 0o755)]);
    let script = find(&planned, "script", Arch::X86_64);
    assert_eq!(script.bin, None);
    assert_eq!(script.handler.as_deref(), Some("main.js"));
    assert_eq!(listing(script), [("main.js", 0o644)]);
    assert!(script.findings.is_empty(), "{:?}", script.findings);
    assert!(
        script.reasons.iter().any(|r| r
            == "bootstrap: /opt/bootstrap from layer `rt` (the function has no /var/task/bootstrap); handler `main.js`"),
        "{:?}",
        script.reasons
    );

    // Without the layer: Lambda's error, as a finding that stops the pack.
    let planned = plan_of(alone);
    let script = find(&planned, "script", Arch::X86_64);
    let finding = &script.findings[0];
    assert_eq!(finding.finding.code, "no-bootstrap");
    assert_eq!(finding.entry, "bootstrap");
    assert!(finding.is_blocking());
    assert_eq!(
        finding.finding.lambda_error.as_deref(),
        Some("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]")
    );

    // As an image, the layer's bootstrap is also copied where the base image runs it.
    function.format = PackageFormat::Image;
    let planned = plan_of(function);
    let image = find(&planned, "script", Arch::X86_64);
    let dockerfile = image.dockerfile.as_deref().unwrap();
    assert!(
        dockerfile.ends_with("COPY bootstrap ${LAMBDA_RUNTIME_DIR}/bootstrap\nCMD [\"main.js\"]\n"),
        "{dockerfile}"
    );
    let bootstrap = image
        .entries
        .iter()
        .find(|e| e.path == "bootstrap")
        .unwrap();
    assert_eq!(
        bootstrap.source.as_deref(),
        Some(std::path::Path::new("/t/rt"))
    );
    assert_eq!(bootstrap.mode, 0o755);
    assert!(
        image.reasons.iter().any(|r| r
            == "bootstrap: /var/runtime/bootstrap in the image, copied from layer `rt`'s /opt/bootstrap; handler `main.js`"),
        "{:?}",
        image.reasons
    );
    assert!(
        !image
            .reasons
            .iter()
            .any(|r| r.contains("/var/task/bootstrap")),
        "{:?}",
        image.reasons
    );
}

/// A bin whose role was guessed: the binary decides whether it is a Lambda binary.
fn guessed(named: bool, runtime_api: bool) -> UnitFacts {
    let mut unit = unit("local", Role::Function, &[Arch::X86_64]);
    unit.role_evidence = crate::units::RoleEvidence::Guessed { named };
    let mut facts = facts(unit, Arch::X86_64, vec![]);
    facts.binaries[0].facts.runtime_api = runtime_api;
    facts
}

#[test]
fn a_guessed_bin_that_never_reads_the_runtime_api_is_left_out_or_refused_by_name() {
    // Selected by default: left out, with a warning saying how to pack it anyway.
    let planned = plan(&inputs(vec![guessed(false, false)])).unwrap();
    assert!(planned.artifacts.is_empty(), "{:?}", planned.artifacts);
    assert_eq!(planned.warnings.len(), 1, "{:?}", planned.warnings);
    assert!(
        planned.warnings[0].contains("bin `local` of package `pkg-local` (x86_64) is skipped: it is not a Lambda binary (it never reads AWS_LAMBDA_RUNTIME_API")
            && planned.warnings[0].contains("role = \"function\" in [package.metadata.lambda-pack.bin.local]"),
        "{}",
        planned.warnings[0]
    );

    // Named with --bin: a blocking finding, which `allow` downgrades.
    let planned = plan(&inputs(vec![guessed(true, false)])).unwrap();
    let artifact = find(&planned, "local", Arch::X86_64);
    let finding = &artifact.findings[0];
    assert_eq!(finding.finding.code, "not-lambda-binary");
    assert!(finding.is_blocking());
    let mut allowed = guessed(true, false);
    allowed.unit.allow = vec!["not-lambda-binary".into()];
    let planned = plan(&inputs(vec![allowed])).unwrap();
    assert!(!find(&planned, "local", Arch::X86_64).findings[0].is_blocking());

    // A binary that reads the variable is a function, said nowhere as a doubt.
    for named in [false, true] {
        let planned = plan(&inputs(vec![guessed(named, true)])).unwrap();
        let artifact = find(&planned, "local", Arch::X86_64);
        assert!(artifact.findings.is_empty(), "{:?}", artifact.findings);
        assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
    }
}

/// `function_with_layers(n)` with ARN layers at `positions`, the first with a measured local copy.
fn with_arn_layers(n: usize, positions: &[usize]) -> Vec<UnitFacts> {
    let mut units = function_with_layers(n);
    let function = &mut units.last_mut().unwrap().unit;
    for (i, position) in positions.iter().enumerate() {
        function.arn_layers.push(crate::units::AttachedArn {
            position: *position,
            layer: crate::metadata::ArnLayer {
                arn: format!("arn:aws:lambda:us-east-1:123456789012:layer:ext-{i}:1"),
                zip: (i == 0).then(|| "/ws/adapter.zip".into()),
            },
            size_unzipped: (i == 0).then_some(5_000),
        });
    }
    units
}

#[test]
fn arn_layers_count_in_the_limits_and_keep_the_function_a_zip() {
    let plan = super::plan(&inputs(with_arn_layers(2, &[0, 3]))).unwrap();
    let function = find(&plan, "fn-a", Arch::X86_64);
    assert_eq!(function.format, Format::Zip);
    // The local copy counts; the ARN without one is left out, and plan says so.
    assert_eq!(
        function.size_unzipped_with_layers,
        Some(1000 + 2 * 101 + 5_000)
    );
    let reasons = function.reasons.join("\n");
    assert!(
        reasons.contains("the size check left out arn:aws:lambda:us-east-1:123456789012:layer:ext-1:1 (no local copy"),
        "{reasons}"
    );
    assert!(
        reasons.contains("with layers arn:aws:lambda:us-east-1:123456789012:layer:ext-0:1, layer-0, layer-1, arn:aws:lambda:us-east-1:123456789012:layer:ext-1:1,"),
        "{reasons}"
    );
    assert!(function.findings.is_empty(), "{:?}", function.findings);

    // Six with ARNs: a finding (an image cannot carry ARN layers), which `allow` downgrades.
    let plan = super::plan(&inputs(with_arn_layers(4, &[0, 5]))).unwrap();
    let function = find(&plan, "fn-a", Arch::X86_64);
    assert_eq!(function.format, Format::Zip);
    let finding = &function.findings[0];
    assert_eq!(finding.finding.code, "too-many-layers");
    assert!(finding.is_blocking());
    assert!(
        finding.finding.message.contains("attaches 6 layers"),
        "{finding:?}"
    );
    let mut allowed = with_arn_layers(4, &[0, 5]);
    allowed.last_mut().unwrap().unit.allow = vec!["too-many-layers".into()];
    let plan = super::plan(&inputs(allowed)).unwrap();
    assert!(!find(&plan, "fn-a", Arch::X86_64).findings[0].is_blocking());

    // package = "image" cannot hold an ARN layer.
    let mut image = with_arn_layers(1, &[1]);
    image.last_mut().unwrap().unit.format = PackageFormat::Image;
    let err = super::plan(&inputs(image)).unwrap_err();
    assert!(
        err.to_string()
            .contains("which a container image cannot attach"),
        "{err}"
    );
}

#[test]
fn a_function_by_inference_whose_binary_registers_as_an_extension_gets_a_warning() {
    // The Lambda Web Adapter: lambda_http reached, run from /opt/extensions.
    let adapter = |evidence: RoleEvidence, extension_api: bool| {
        let mut unit = unit(
            "lambda-adapter",
            Role::Function,
            &[Arch::X86_64, Arch::Arm64],
        );
        unit.role_evidence = evidence;
        let mut units = Vec::new();
        for arch in [Arch::X86_64, Arch::Arm64] {
            let mut facts = facts(unit.clone(), arch, vec![]);
            facts.binaries[0].facts.extension_api = extension_api;
            units.push(facts);
        }
        plan(&inputs(units)).unwrap()
    };
    let planned = adapter(RoleEvidence::RuntimeCrate, true);
    // Packed as inferred, with one warning for both architectures.
    assert_eq!(planned.artifacts.len(), 2, "{:?}", planned.artifacts);
    assert_eq!(planned.warnings.len(), 1, "{:?}", planned.warnings);
    assert!(
        planned.warnings[0].starts_with("bin `lambda-adapter` of package `pkg-lambda-adapter` is packed as a function, but its binary registers with the Extensions API (it sends `Lambda-Extension-Name`)")
            && planned.warnings[0].contains("set role = \"extension\" in [package.metadata.lambda-pack.bin.lambda-adapter]"),
        "{}",
        planned.warnings[0]
    );
    // A hand-written extension that uses no Lambda crate (a Runtime API proxy).
    let planned = adapter(RoleEvidence::Guessed { named: false }, true);
    assert_eq!(planned.warnings.len(), 1, "{:?}", planned.warnings);
    // A plain function, a role written down, or an in-process extension: nothing to say.
    for (evidence, extension_api) in [
        (RoleEvidence::RuntimeCrate, false),
        (RoleEvidence::Settled, true),
    ] {
        let planned = adapter(evidence, extension_api);
        assert!(
            planned.warnings.is_empty(),
            "{evidence:?}: {:?}",
            planned.warnings
        );
    }
}
