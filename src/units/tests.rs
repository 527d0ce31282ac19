use super::*;
use crate::metadata::PackageMetadata;
use crate::settings::Selection;
use std::path::PathBuf;

fn package(
    name: &str,
    bins: &[&str],
    cdylibs: &[&str],
    deps: &[&str],
    table: MetadataTable,
) -> Package {
    Package {
        name: name.into(),
        version: "0.1.0".into(),
        id: format!("path+file:///ws/{name}#0.1.0"),
        manifest_path: PathBuf::from(format!("/ws/{name}/Cargo.toml")),
        dir: PathBuf::from(format!("/ws/{name}")),
        bins: bins.iter().map(|s| s.to_string()).collect(),
        examples: Vec::new(),
        cdylibs: cdylibs.iter().map(|s| s.to_string()).collect(),
        dependencies: deps.iter().map(|s| s.to_string()).collect(),
        required_features: Default::default(),
        features: Default::default(),
        metadata: PackageMetadata {
            table,
            bins: Default::default(),
        },
        notes: Vec::new(),
    }
}

fn workspace(members: Vec<Package>) -> Workspace {
    Workspace {
        root: "/ws".into(),
        root_manifest: "/ws/Cargo.toml".into(),
        target_dir: "/ws/target".into(),
        defaults: MetadataTable::default(),
        default_members: members.iter().map(|p| p.name.clone()).collect(),
        members,
        notes: Vec::new(),
    }
}

fn options() -> Options {
    Options::from_args(crate::cli::PackArgs::default(), |_| None).unwrap()
}

fn resolve(ws: &Workspace) -> Result<Resolved> {
    let selected = ws.select(&Selection::default())?;
    resolve_units(ws, &selected, &options())
}

fn layers(names: &[&str]) -> MetadataTable {
    MetadataTable {
        layers: Some(names.iter().map(|s| LayerEntry::krate(s)).collect()),
        ..Default::default()
    }
}

#[test]
fn roles_are_inferred_and_explained() {
    let ws = workspace(vec![
        package(
            "api",
            &["api"],
            &[],
            &["lambda_http"],
            MetadataTable::default(),
        ),
        package(
            "ext",
            &["ext"],
            &[],
            &["lambda-extension"],
            MetadataTable::default(),
        ),
        package("codec", &[], &["codec"], &[], MetadataTable::default()),
        package("plain", &["plain"], &[], &[], MetadataTable::default()),
        package("util", &[], &[], &[], MetadataTable::default()),
    ]);
    let resolved = resolve(&ws).unwrap();
    let roles: Vec<(&str, Role, &str)> = resolved
        .units
        .iter()
        .map(|u| (u.name.as_str(), u.role, u.reasons[0].as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            (
                "api",
                Role::Function,
                "function: a binary that depends on lambda_http"
            ),
            (
                "codec",
                Role::Layer,
                "layer: a cdylib library and no binaries"
            ),
            (
                "ext",
                Role::Extension,
                "extension: depends on lambda-extension"
            ),
            (
                "plain",
                Role::Function,
                "function: a binary with no role set and no Lambda crate among its dependencies: a function if the binary reads AWS_LAMBDA_RUNTIME_API"
            ),
        ],
        "`util` has neither a bin nor a cdylib and is skipped"
    );
    // No doubt said before the build: the built binary decides (`plan::lambda_binary`).
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
}

#[test]
fn a_runtime_crate_beside_lambda_extension_makes_a_function_with_an_internal_extension() {
    let ws = workspace(vec![
        package(
            "inproc",
            &["inproc"],
            &[],
            &["lambda-extension", "lambda_runtime"],
            MetadataTable::default(),
        ),
        package(
            "web",
            &["web"],
            &[],
            &["lambda-extension", "lambda_http"],
            MetadataTable::default(),
        ),
        package(
            "ext",
            &["ext"],
            &[],
            &["lambda-extension"],
            MetadataTable::default(),
        ),
    ]);
    let resolved = resolve(&ws).unwrap();
    let roles: Vec<(&str, Role, &str)> = resolved
        .units
        .iter()
        .map(|u| (u.name.as_str(), u.role, u.reasons[0].as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            (
                "ext",
                Role::Extension,
                "extension: depends on lambda-extension"
            ),
            (
                "inproc",
                Role::Function,
                "function: a binary that depends on lambda_runtime and lambda-extension (an internal extension, run in the function's process)"
            ),
            (
                "web",
                Role::Function,
                "function: a binary that depends on lambda_http and lambda-extension (an internal extension, run in the function's process)"
            ),
        ]
    );
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    // lambda-extension beside a runtime crate settles it: an internal extension, no doubt left.
    for unit in &resolved.units {
        assert_eq!(unit.role_evidence, RoleEvidence::Settled, "{}", unit.name);
    }
    // An explicit role still wins over the inference.
    let explicit = workspace(vec![package(
        "both",
        &["both"],
        &[],
        &["lambda-extension", "lambda_runtime"],
        MetadataTable {
            role: Some(Role::Extension),
            ..Default::default()
        },
    )]);
    assert_eq!(resolve(&explicit).unwrap().units[0].role, Role::Extension);
}

#[test]
fn attached_crates_follow_their_functions_architectures() {
    let x86 = MetadataTable {
        arch: Some(vec![Arch::X86_64]),
        ..layers(&["tools"])
    };
    let arm = MetadataTable {
        arch: Some(vec![Arch::Arm64]),
        runtime: Some(Runtime::ProvidedAl2),
        ..layers(&["tools", "ext"])
    };
    let layer = MetadataTable {
        role: Some(Role::Layer),
        ..Default::default()
    };
    let ws = workspace(vec![
        package("fn-x", &["fn-x"], &[], &["lambda_runtime"], x86),
        package("fn-a", &["fn-a"], &[], &["lambda_runtime"], arm),
        package("tools", &["tool"], &["tools"], &[], layer),
        package(
            "ext",
            &["ext"],
            &[],
            &["lambda-extension"],
            MetadataTable::default(),
        ),
    ]);
    let units = resolve(&ws).unwrap().units;
    let get = |name: &str| units.iter().find(|u| u.name == name).unwrap();
    assert_eq!(get("tools").archs, [Arch::X86_64, Arch::Arm64]);
    assert_eq!(
        get("tools").runtimes,
        [Runtime::ProvidedAl2023, Runtime::ProvidedAl2]
    );
    assert_eq!(get("tools").bins, ["tool"]);
    assert_eq!(get("tools").cdylibs, ["tools"]);
    assert_eq!(get("ext").archs, [Arch::Arm64]);
    assert_eq!(get("fn-a").layers, ["tools", "ext"]);
    assert!(
        get("tools")
            .reasons
            .iter()
            .any(|r| r == "attached by fn-a, fn-x: built for x86_64, arm64"),
        "{:?}",
        get("tools").reasons
    );
}

#[test]
fn an_arch_list_gives_one_artifact_per_architecture_and_attached_crates_follow() {
    let both = MetadataTable {
        arch: Some(vec![Arch::X86_64, Arch::Arm64]),
        ..layers(&["ext"])
    };
    let ws = workspace(vec![
        package("fn-both", &["fn-both"], &[], &["lambda_runtime"], both),
        package(
            "ext",
            &["ext"],
            &[],
            &["lambda-extension"],
            MetadataTable::default(),
        ),
    ]);
    let units = resolve(&ws).unwrap().units;
    let get = |name: &str| units.iter().find(|u| u.name == name).unwrap();
    assert_eq!(get("fn-both").archs, [Arch::X86_64, Arch::Arm64]);
    assert!(
        get("fn-both")
            .reasons
            .contains(&"x86_64 and arm64 from package metadata".to_string()),
        "{:?}",
        get("fn-both").reasons
    );
    assert_eq!(get("ext").archs, [Arch::X86_64, Arch::Arm64]);
    // `--arch` overrides the list, for the function and what it attaches.
    let args = crate::cli::PackArgs {
        arch: Some(crate::cli::ArchArg::Arm64),
        ..Default::default()
    };
    let options = Options::from_args(args, |_| None).unwrap();
    let selected = ws.select(&Selection::default()).unwrap();
    let units = resolve_units(&ws, &selected, &options).unwrap().units;
    for unit in &units {
        assert_eq!(unit.archs, [Arch::Arm64], "{}", unit.name);
    }
}

#[test]
fn attaching_a_missing_crate_a_function_or_itself_is_an_error() {
    for (attach, expected) in [
        (
            "nope",
            "names `nope`, which is not a crate of this workspace",
        ),
        (
            "other",
            "attaches `other`, which is a function, not a layer or extension",
        ),
        ("fn-a", "the function's own package"),
    ] {
        let ws = workspace(vec![
            package(
                "fn-a",
                &["fn-a"],
                &[],
                &["lambda_runtime"],
                layers(&[attach]),
            ),
            package(
                "other",
                &["other"],
                &[],
                &["lambda_runtime"],
                MetadataTable::default(),
            ),
        ]);
        let err = resolve(&ws).unwrap_err();
        assert!(err.to_string().contains(expected), "{attach}: {err}");
        assert!(err.to_string().contains("/ws/fn-a/Cargo.toml"), "{err}");
        assert!(err.help.is_some());
    }
}

#[test]
fn attached_crates_join_the_selection() {
    let ws = workspace(vec![
        package(
            "fn-a",
            &["fn-a"],
            &[],
            &["lambda_runtime"],
            layers(&["ext"]),
        ),
        package(
            "ext",
            &["ext"],
            &[],
            &["lambda-extension"],
            MetadataTable::default(),
        ),
    ]);
    let only_fn = Selection {
        packages: vec!["fn-a".into()],
        ..Default::default()
    };
    let selected = ws.select(&only_fn).unwrap();
    let resolved = resolve_units(&ws, &selected, &options()).unwrap();
    let names: Vec<&str> = resolved.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["ext", "fn-a"]);
    assert!(resolved.packages.contains("ext"));
}

#[test]
fn a_layer_pinned_to_one_architecture_cannot_serve_another() {
    let x86 = MetadataTable {
        arch: Some(vec![Arch::X86_64]),
        ..layers(&["tools"])
    };
    let arm_layer = MetadataTable {
        role: Some(Role::Layer),
        arch: Some(vec![Arch::Arm64]),
        ..Default::default()
    };
    let ws = workspace(vec![
        package("fn-x", &["fn-x"], &[], &["lambda_runtime"], x86),
        package("tools", &["tool"], &[], &[], arm_layer),
    ]);
    let err = resolve(&ws).unwrap_err();
    assert!(
        err.to_string().contains("layer `tools` is arm64 only"),
        "{err}"
    );
    assert!(
        err.to_string().contains("fn-x attaches it from x86_64"),
        "{err}"
    );
    assert!(err.help.is_some());
}

#[test]
fn same_artifact_name_twice_is_an_error() {
    let ws = workspace(vec![
        package(
            "a",
            &["same"],
            &[],
            &["lambda_runtime"],
            MetadataTable::default(),
        ),
        package(
            "b",
            &["same"],
            &[],
            &["lambda_runtime"],
            MetadataTable::default(),
        ),
    ]);
    let err = resolve(&ws).unwrap_err();
    assert!(
        err.to_string()
            .contains("two artifacts would be named `same`"),
        "{err}"
    );
}

#[test]
fn only_functions_attach_layers_and_layer_is_a_package_role() {
    let ext_with_layers = MetadataTable {
        role: Some(Role::Extension),
        ..layers(&["x"])
    };
    let ws = workspace(vec![package("ext", &["ext"], &[], &[], ext_with_layers)]);
    assert!(
        resolve(&ws)
            .unwrap_err()
            .to_string()
            .contains("only functions attach layers")
    );

    let mut bin_layer = package("p", &["p"], &[], &[], MetadataTable::default());
    bin_layer.metadata.bins.insert(
        "p".into(),
        MetadataTable {
            role: Some(Role::Layer),
            ..Default::default()
        },
    );
    let ws = workspace(vec![bin_layer]);
    assert!(
        resolve(&ws)
            .unwrap_err()
            .to_string()
            .contains("a layer is a whole package")
    );
}

fn env(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn env_merges_workspace_package_bin_and_compatible_runtimes_keep_the_attachers() {
    let mut api = package(
        "api",
        &["api"],
        &[],
        &["lambda_runtime"],
        MetadataTable {
            env: env(&[("STAGE", "package"), ("TABLE", "orders")]),
            layers: Some(vec![LayerEntry::krate("ext")]),
            ..Default::default()
        },
    );
    api.metadata.bins.insert(
        "api".into(),
        MetadataTable {
            env: env(&[("TABLE", "bin")]),
            ..Default::default()
        },
    );
    let ext = package(
        "ext",
        &["ext"],
        &[],
        &["lambda-extension"],
        MetadataTable {
            compatible_runtimes: Some(vec!["python3.13".into()]),
            ..Default::default()
        },
    );
    let mut ws = workspace(vec![api, ext]);
    ws.defaults.env = env(&[("STAGE", "workspace"), ("REGION_HINT", "eu")]);
    ws.defaults.runtime = Some(Runtime::ProvidedAl2);
    let units = resolve(&ws).unwrap().units;
    let api = units.iter().find(|u| u.name == "api").unwrap();
    assert_eq!(
        api.env,
        env(&[
            ("REGION_HINT", "eu"),
            ("STAGE", "package"),
            ("TABLE", "bin")
        ])
        .unwrap()
    );
    let ext = units.iter().find(|u| u.name == "ext").unwrap();
    assert!(ext.env.is_empty(), "the workspace's env is for functions");
    assert_eq!(
        ext.compatible_runtimes,
        Some(vec!["python3.13".to_string(), "provided.al2".to_string()])
    );

    // Each key where it means nothing is refused, naming the crate.
    let mut ws = workspace(vec![package(
        "ext",
        &["ext"],
        &[],
        &["lambda-extension"],
        MetadataTable {
            env: env(&[("A1", "x")]),
            ..Default::default()
        },
    )]);
    let err = resolve(&ws).unwrap_err();
    assert!(
        err.message
            .contains("`env` in `/ws/ext/Cargo.toml` is set on extension `ext`"),
        "{}",
        err.message
    );
    ws.members[0].metadata.table = MetadataTable {
        env: env(&[("BIG", &"x".repeat(4100))]),
        role: Some(Role::Function),
        ..Default::default()
    };
    let err = resolve(&ws).unwrap_err();
    assert!(
        err.message.contains("Lambda allows 4096"),
        "{}",
        err.message
    );
}

#[test]
fn a_runtime_bin_is_a_layer_of_its_package_and_a_package_without_bins_can_be_a_function() {
    // Per-bin tables pick the runtime among a package's bins; the other stays a function.
    let mut tools = package(
        "tools",
        &["host", "probe"],
        &[],
        &["lambda_runtime"],
        MetadataTable::default(),
    );
    tools.metadata.bins.insert(
        "host".into(),
        MetadataTable {
            role: Some(Role::Runtime),
            ..Default::default()
        },
    );
    let script = package(
        "script",
        &[],
        &[],
        &[],
        MetadataTable {
            role: Some(Role::Function),
            handler: Some("index.py".into()),
            ..layers(&["tools"])
        },
    );
    let resolved = resolve(&workspace(vec![tools, script])).unwrap();
    let by_name = |name: &str| resolved.units.iter().find(|u| u.name == name).unwrap();
    let runtime = by_name("tools");
    assert_eq!(runtime.role, Role::Runtime);
    assert_eq!(runtime.bins, ["host"]);
    assert!(
        runtime.reasons[0].contains("bin `host` is the layer's bootstrap"),
        "{:?}",
        runtime.reasons
    );
    assert_eq!(by_name("probe").role, Role::Function);
    let function = by_name("script");
    assert_eq!(function.role, Role::Function);
    assert!(function.bins.is_empty());
    assert_eq!(function.handler, "index.py");
    assert_eq!(function.layers, ["tools"]);
    assert_eq!(by_name("probe").handler, DEFAULT_HANDLER);

    // `handler` means nothing to a layer; a runtime package needs a binary.
    let layer = package(
        "rt",
        &["rt"],
        &[],
        &[],
        MetadataTable {
            role: Some(Role::Runtime),
            handler: Some("x".into()),
            ..Default::default()
        },
    );
    let error = resolve(&workspace(vec![layer])).unwrap_err().to_string();
    assert!(
        error
            .contains("`handler` in `/ws/rt/Cargo.toml` (package metadata) is set on runtime `rt`"),
        "{error}"
    );
    let empty = package(
        "rt",
        &[],
        &[],
        &[],
        MetadataTable {
            role: Some(Role::Runtime),
            ..Default::default()
        },
    );
    let error = resolve(&workspace(vec![empty])).unwrap_err().to_string();
    assert!(
        error.contains("package `rt` has no binary to run as /opt/bootstrap"),
        "{error}"
    );
}

/// A package with a `serve` bin and a `prepare` bin that needs the `__prepare` feature.
fn package_with_required_features() -> Package {
    let mut pkg = package(
        "api",
        &["prepare", "serve"],
        &[],
        &["lambda_http"],
        MetadataTable::default(),
    );
    pkg.required_features
        .insert("prepare".into(), vec!["__prepare".into()]);
    pkg.features.insert("__prepare".into(), Vec::new());
    pkg
}

fn options_from(args: crate::cli::PackArgs) -> Options {
    Options::from_args(args, |_| None).unwrap()
}

#[test]
fn a_bin_whose_required_features_are_off_is_skipped_with_the_flag_that_packs_it() {
    let ws = workspace(vec![package_with_required_features()]);
    let resolved = resolve(&ws).unwrap();
    let names: Vec<&str> = resolved.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["serve"]);
    assert_eq!(resolved.warnings.len(), 1, "{:?}", resolved.warnings);
    let warning = &resolved.warnings[0];
    assert!(
        warning.contains("bin `prepare` of package `api` is skipped")
            && warning.contains("`__prepare`")
            && warning.contains("-F api/__prepare"),
        "{warning}"
    );
}

#[test]
fn a_bin_is_packed_once_its_required_features_are_enabled() {
    let ws = workspace(vec![package_with_required_features()]);
    let selected = ws.select(&Selection::default()).unwrap();
    for features in [vec!["api/__prepare".to_string()], vec!["__prepare".into()]] {
        let options = options_from(crate::cli::PackArgs {
            features,
            ..Default::default()
        });
        let resolved = resolve_units(&ws, &selected, &options).unwrap();
        let names: Vec<&str> = resolved.units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["prepare", "serve"]);
        assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    }
    let all = options_from(crate::cli::PackArgs {
        all_features: true,
        ..Default::default()
    });
    assert_eq!(resolve_units(&ws, &selected, &all).unwrap().units.len(), 2);
}

#[test]
fn naming_a_bin_whose_required_features_are_off_is_an_error_as_in_cargo() {
    let ws = workspace(vec![package_with_required_features()]);
    let options = options_from(crate::cli::PackArgs {
        bins: vec!["prepare".into()],
        ..Default::default()
    });
    let selected = ws.select(&options.selection).unwrap();
    let err = resolve_units(&ws, &selected, &options).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("bin `prepare` of package `api` requires the features: `__prepare`"),
        "{text}"
    );
    assert!(format!("{err:?}").contains("-F api/__prepare"), "{err:?}");
}

#[test]
fn lambda_crates_reached_through_a_workspace_library_settle_the_role() {
    let ws = workspace(vec![
        package("api", &["api"], &[], &["shared"], MetadataTable::default()),
        package(
            "shared",
            &[],
            &[],
            &["lambda_http"],
            MetadataTable::default(),
        ),
        package(
            "probe",
            &["probe"],
            &[],
            &["lambda_extension"],
            MetadataTable::default(),
        ),
        package(
            "local",
            &["local"],
            &[],
            &["tokio"],
            MetadataTable::default(),
        ),
    ]);
    let resolved = resolve(&ws).unwrap();
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    let unit = |name: &str| resolved.units.iter().find(|u| u.name == name).unwrap();
    assert_eq!(unit("api").role, Role::Function);
    // Inferred from the crate: the binary may still say it is an external extension.
    assert_eq!(unit("api").role_evidence, RoleEvidence::RuntimeCrate);
    assert!(
        unit("api").reasons[0].contains("depends on lambda_http"),
        "{:?}",
        unit("api").reasons
    );
    // The early crate name is an extension too.
    assert_eq!(unit("probe").role, Role::Extension);
    // Neither: the built binary decides.
    assert_eq!(unit("local").role, Role::Function);
    assert_eq!(
        unit("local").role_evidence,
        RoleEvidence::Guessed { named: false }
    );
}

#[test]
fn a_bin_attaching_a_layer_by_arn_is_a_function_whatever_its_binary_reads() {
    let adapter = || MetadataTable {
        layers: Some(vec![LayerEntry::Arn(ArnLayer {
            arn: "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerX86:25".into(),
            zip: None,
        })]),
        ..MetadataTable::default()
    };
    // A web server behind the Lambda Web Adapter: the package's only bin.
    let mut two_bins = package("tools", &["serve", "migrate"], &[], &["axum"], adapter());
    two_bins.metadata.bins.insert("serve".into(), adapter());
    let ws = workspace(vec![
        package("web", &["web"], &[], &["axum"], adapter()),
        two_bins,
    ]);
    let resolved = resolve(&ws).unwrap();
    let unit = |name: &str| resolved.units.iter().find(|u| u.name == name).unwrap();
    assert_eq!(unit("web").role, Role::Function);
    assert_eq!(unit("web").role_evidence, RoleEvidence::Settled);
    assert!(
        unit("web").reasons[0].contains("attaches layers (`layers`)"),
        "{:?}",
        unit("web").reasons
    );
    // The bin table's ARN settles that bin; the package's does not settle its other bins.
    assert_eq!(unit("serve").role_evidence, RoleEvidence::Settled);
    assert_eq!(
        unit("migrate").role_evidence,
        RoleEvidence::Guessed { named: false }
    );
}

#[test]
fn arn_layers_keep_their_place_among_workspace_layers() {
    let arn = |version: u32| ArnLayer {
        arn: format!("arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerX86:{version}"),
        zip: None,
    };
    let web = MetadataTable {
        layers: Some(vec![
            LayerEntry::Arn(arn(1)),
            LayerEntry::krate("tools"),
            LayerEntry::Arn(arn(2)),
        ]),
        ..Default::default()
    };
    let layer = MetadataTable {
        role: Some(Role::Layer),
        ..Default::default()
    };
    let ws = workspace(vec![
        package("web", &["web"], &[], &["lambda_runtime"], web),
        package("tools", &["tool"], &[], &[], layer),
    ]);
    let units = resolve(&ws).unwrap().units;
    let web = units.iter().find(|u| u.name == "web").unwrap();
    assert_eq!(web.layers, ["tools"]);
    assert_eq!(
        web.arn_layers,
        [
            AttachedArn {
                position: 0,
                layer: arn(1),
                size_unzipped: None
            },
            AttachedArn {
                position: 2,
                layer: arn(2),
                size_unzipped: None
            },
        ]
    );
}
