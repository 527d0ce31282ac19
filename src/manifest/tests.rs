use super::*;

/// A manifest with every field set on some entry: a function ZIP with a layer, warnings and env;
/// an arm64 layer; an image.
fn full_manifest() -> Manifest {
    let zip = ManifestArtifact {
        name: "orders".into(),
        package: "orders".into(),
        bin: Some("orders".into()),
        kind: Role::Function,
        format: Format::Zip,
        arch: Arch::X86_64,
        runtime: Runtime::ProvidedAl2023,
        target: "x86_64-unknown-linux-musl".into(),
        path: "x86_64/orders.zip".into(),
        sha256: "ab".repeat(32),
        code_sha256: "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=".into(),
        size_zipped: 1_234,
        size_unzipped: 5_678,
        layers: vec!["codec".into()],
        size_unzipped_with_layers: Some(9_000),
        compatible_architectures: None,
        compatible_runtimes: None,
        upload: Some(Upload::Direct),
        glibc: None,
        dockerfile: None,
        image_size: None,
        build_command: None,
        inputs_sha256: Some("cd".repeat(32)),
        warnings: vec!["orders (x86_64) bootstrap: [not-stripped] ... (allowed)".into()],
        env: [("RUST_LOG".to_string(), "info".to_string())].into(),
        workspace_root: Some("/ws".into()),
        oci_layout: None,
        image_digest: None,
        base_image_digest: None,
        image_uri: None,
        sbom: Some("x86_64/orders.cdx.json".into()),
        sbom_components: Some(42),
        layer_type: None,
        handler: Some("bootstrap".into()),
        memory: Some(512),
        ephemeral_storage: Some(1024),
        arn_layers: vec![ArnLayerEntry {
            arn: "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerX86:25".into(),
            position: 0,
            zip: Some("/ws/orders/layers/adapter.zip".into()),
            size_unzipped: Some(3_000),
        }],
    };
    let layer = ManifestArtifact {
        name: "codec".into(),
        package: "codec".into(),
        bin: None,
        kind: Role::Layer,
        arch: Arch::Arm64,
        runtime: Runtime::ProvidedAl2,
        target: "aarch64-unknown-linux-gnu".into(),
        path: "arm64/codec.zip".into(),
        layers: vec![],
        size_unzipped_with_layers: None,
        compatible_architectures: Some(vec![Arch::Arm64]),
        compatible_runtimes: Some(vec!["provided.al2".into()]),
        upload: Some(Upload::S3),
        glibc: Some("2.26".into()),
        warnings: vec![],
        env: BTreeMap::new(),
        sbom: Some("arm64/codec.cdx.json".into()),
        sbom_components: Some(3),
        layer_type: Some(LayerType::Runtime),
        handler: None,
        memory: None,
        ephemeral_storage: None,
        arn_layers: vec![],
        ..zip.clone()
    };
    let image = ManifestArtifact {
        name: "big".into(),
        package: "big".into(),
        bin: Some("big".into()),
        kind: Role::Function,
        format: Format::Image,
        path: "x86_64/big".into(),
        layers: vec![],
        arn_layers: vec![],
        upload: None,
        dockerfile: Some("x86_64/big/Dockerfile".into()),
        image_size: Some(70_000_000),
        build_command: Some("docker build --platform linux/amd64 x86_64/big".into()),
        inputs_sha256: None,
        warnings: vec![],
        env: BTreeMap::new(),
        workspace_root: None,
        oci_layout: Some("x86_64/big.oci".into()),
        image_digest: Some(format!("sha256:{}", "ef".repeat(32))),
        base_image_digest: Some(format!("sha256:{}", "01".repeat(32))),
        sbom: Some("x86_64/big.cdx.json".into()),
        sbom_components: Some(97),
        image_uri: Some(format!(
            "127.0.0.1:5000/lambda/big@sha256:{}",
            "ef".repeat(32)
        )),
        ..zip.clone()
    };
    Manifest {
        schema_version: SCHEMA_VERSION,
        generator: Some("cargo-lambda-pack 1.2.3".into()),
        artifacts: vec![zip, layer, image],
    }
}

/// The JSON of every field, byte for byte: later versions add fields, never rename one.
#[test]
fn full_manifest_json_is_pinned() {
    insta::assert_snapshot!(full_manifest().to_json());
}

#[test]
fn read_gives_back_what_to_json_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = full_manifest();
    std::fs::write(dir.path().join(MANIFEST_FILE), manifest.to_json()).unwrap();
    assert_eq!(
        Manifest::read(&dir.path().join(MANIFEST_FILE)).unwrap(),
        manifest
    );
    assert_eq!(Manifest::read_previous(dir.path()), Ok(Some(manifest)));
}

#[test]
fn a_missing_manifest_is_no_previous_run_and_a_broken_one_a_note() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Manifest::read(&dir.path().join(MANIFEST_FILE)),
        Err(ReadError::Missing)
    ));
    assert_eq!(Manifest::read_previous(dir.path()), Ok(None));
    std::fs::write(dir.path().join(MANIFEST_FILE), "{\"schema_version\": 1}").unwrap();
    let note = Manifest::read_previous(dir.path()).unwrap_err();
    assert!(note.starts_with("ignoring unreadable `"), "{note}");
    assert!(note.contains("missing field `artifacts`"), "{note}");
}

#[test]
fn the_previous_run_view_lists_zips_with_recorded_inputs_only() {
    let manifest = full_manifest();
    let previous = Manifest::previous_zips(&manifest.artifacts);
    assert_eq!(
        previous.keys().collect::<Vec<_>>(),
        ["arm64/codec.zip", "x86_64/orders.zip"]
    );
    assert_eq!(previous["x86_64/orders.zip"].size_zipped, 1_234);
}

#[test]
fn merged_entries_sort_by_architecture_then_name() {
    let manifest = full_manifest();
    let (ours, kept) = manifest.artifacts.split_at(1);
    let merged = Manifest {
        schema_version: SCHEMA_VERSION,
        generator: Some(GENERATOR.into()),
        artifacts: ours.to_vec(),
    }
    .merged_with(kept.to_vec());
    let order: Vec<(Arch, &str)> = merged
        .artifacts
        .iter()
        .map(|a| (a.arch, a.name.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (Arch::X86_64, "big"),
            (Arch::X86_64, "orders"),
            (Arch::Arm64, "codec")
        ]
    );
}

/// `docs/manifest.schema.json` is the JSON Schema of [`Manifest`], generated from the type, so
/// that release scripts and infrastructure code can check what they read. Regenerate it with
/// `LAMBDA_PACK_WRITE_SCHEMA=1 cargo test --lib manifest::`.
#[test]
fn json_schema_file_is_the_types_schema() {
    let schema = schemars::schema_for!(Manifest);
    let generated = serde_json::to_string_pretty(&schema).expect("schema as JSON") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/manifest.schema.json");
    if std::env::var_os("LAMBDA_PACK_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write docs/manifest.schema.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is not the schema of `Manifest`; regenerate it with \
         `LAMBDA_PACK_WRITE_SCHEMA=1 cargo test --lib manifest::`",
        path.display()
    );
    // The schema speaks of the fields the snapshot pins, with their wire names.
    let properties = &schema.as_value()["$defs"]["ManifestArtifact"]["properties"];
    for field in [
        "name",
        "kind",
        "arch",
        "runtime",
        "code_sha256",
        "layers",
        "handler",
    ] {
        assert!(
            properties.get(field).is_some(),
            "no `{field}` in the schema"
        );
    }
}

#[test]
fn merge_order_puts_arn_layers_at_their_places() {
    let merged = merge_order(["a", "b", "libs"], [(0, "arn0"), (2, "arn2"), (9, "arn9")]);
    assert_eq!(merged, ["arn0", "a", "arn2", "b", "libs", "arn9"]);
    assert_eq!(
        merge_order(Vec::<&str>::new(), [(1, "x"), (0, "y")]),
        ["y", "x"]
    );
    assert_eq!(merge_order(["a"], Vec::<(usize, &str)>::new()), ["a"]);
}
