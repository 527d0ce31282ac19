use super::*;
use serde_json::json;

fn parse(value: Value) -> Result<PackageMetadata> {
    parse_package(
        &json!({ "lambda-pack": value }),
        Path::new("/ws/fn-a/Cargo.toml"),
    )
}

#[test]
fn absent_table_gives_defaults() {
    let parsed = parse_package(&Value::Null, Path::new("/ws/Cargo.toml")).unwrap();
    assert_eq!(parsed, PackageMetadata::default());
}

#[test]
fn full_table_parses() {
    let parsed = parse(json!({
        "arch": "arm64",
        "runtime": "provided.al2",
        "include": ["assets/**", "config/app.toml:etc/app.toml"],
        "role": "function",
        "layers": ["tools"],
        "package": "zip",
        "bin": { "other": { "arch": "x86_64" } }
    }))
    .unwrap();
    assert_eq!(parsed.table.arch, Some(vec![Arch::Arm64]));
    assert_eq!(parsed.table.runtime, Some(Runtime::ProvidedAl2));
    assert_eq!(
        parsed.table.include.as_ref().unwrap()[1],
        IncludeSpec {
            pattern: "config/app.toml".into(),
            dest: Some("etc/app.toml".into())
        }
    );
    assert_eq!(
        parsed.table.layers.as_deref(),
        Some(&[LayerEntry::krate("tools")][..])
    );
    assert_eq!(parsed.bins["other"].arch, Some(vec![Arch::X86_64]));
}

#[test]
fn unknown_key_names_file_key_and_suggestion() {
    let err = parse(json!({ "archh": "arm64" })).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "unknown key `archh` in [package.metadata.lambda-pack] in `/ws/fn-a/Cargo.toml`"
        ),
        "{text}"
    );
    assert!(text.contains("help: did you mean `arch`?"), "{text}");
    assert_eq!(err.exit_code(), 3);
}

#[test]
fn bad_arch_lists_allowed_values() {
    let err = parse(json!({ "arch": "x86" })).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("invalid value \"x86\" for key `arch`"),
        "{text}"
    );
    assert!(
        text.contains("expected one of: \"x86_64\", \"arm64\""),
        "{text}"
    );
}

#[test]
fn arch_is_a_string_or_a_list() {
    let parsed = parse(json!({
        "arch": ["arm64", "x86_64", "arm64"],
        "bin": { "other": { "arch": ["arm64"] } }
    }))
    .unwrap();
    assert_eq!(parsed.table.arch, Some(vec![Arch::X86_64, Arch::Arm64]));
    assert_eq!(parsed.bins["other"].arch, Some(vec![Arch::Arm64]));
    let err = parse(json!({ "arch": ["x86_64", "i686"] })).unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid value \"i686\" for key `arch`"),
        "{err}"
    );
    let err = parse(json!({ "arch": [] })).unwrap_err();
    assert!(
        err.to_string().contains(
            "key `arch` in [package.metadata.lambda-pack] in `/ws/fn-a/Cargo.toml` is an empty list"
        ),
        "{err}"
    );
    assert_eq!(err.exit_code(), 3);
}

#[test]
fn bin_override_rejects_nested_bin_table() {
    let err = parse(json!({ "bin": { "a": { "bin": {} } } })).unwrap_err();
    assert!(
        err.to_string()
            .contains("[package.metadata.lambda-pack.bin.a]"),
        "{err}"
    );
}

#[test]
fn workspace_table_allows_only_defaults() {
    let err = parse_workspace(
        &json!({ "lambda-pack": { "include": ["x"] } }),
        Path::new("/ws/Cargo.toml"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("[workspace.metadata.lambda-pack]"),
        "{err}"
    );
}

#[test]
fn include_rejects_escapes_and_bad_globs() {
    for entry in [
        "../secret",
        "/etc/passwd",
        "a:../b",
        "a:/b",
        "a[:b",
        "x:",
        "a:b*",
    ] {
        let err = parse(json!({ "include": [entry] })).unwrap_err();
        assert!(
            err.to_string().contains(&format!("include \"{entry}\"")),
            "{err}"
        );
    }
}

#[test]
fn allow_takes_finding_codes_and_internal_extensions_are_refused() {
    let parsed = parse(json!({ "allow": ["glibc-too-new"] })).unwrap();
    assert_eq!(
        parsed.table.allow.as_deref(),
        Some(&["glibc-too-new".to_string()][..])
    );
    let err = parse(json!({ "allow": ["glibc"] })).unwrap_err();
    assert!(err.to_string().contains("unknown finding `glibc`"), "{err}");
    let err = parse(json!({ "extension": "internal" })).unwrap_err();
    assert!(
        err.to_string()
            .contains("inside the function's own process"),
        "{err}"
    );
    assert!(err.help.is_some());
    assert!(parse(json!({ "extension": "external" })).is_ok());
}

#[test]
fn base_image_and_bundle_libs_are_validated() {
    let parsed =
        parse(json!({ "base_image": "registry.example/base:1", "bundle_libs": false })).unwrap();
    assert_eq!(
        parsed.table.base_image.as_deref(),
        Some("registry.example/base:1")
    );
    assert_eq!(parsed.table.bundle_libs, Some(false));
    assert!(
        parse(json!({ "bundle_libs": "no" }))
            .unwrap_err()
            .to_string()
            .contains("must be true or false")
    );
    assert!(
        parse(json!({ "base_image": "" }))
            .unwrap_err()
            .to_string()
            .contains("image reference")
    );
}

#[test]
fn wrong_types_are_reported() {
    let err = parse(json!({ "layers": "tools" })).unwrap_err();
    assert!(err.to_string().contains("must be an array"), "{err}");
    let err = parse(json!("arm64")).unwrap_err();
    assert!(
        err.to_string().contains("must be a table, found a string"),
        "{err}"
    );
}

#[test]
fn image_repository_is_a_repository_without_tag_or_digest() {
    let parsed = parse(json!({ "image_repository": "127.0.0.1:5000/team/fn" })).unwrap();
    assert_eq!(
        parsed.table.image_repository.as_deref(),
        Some("127.0.0.1:5000/team/fn")
    );
    for bad in [
        json!("registry.example/fn:1.0"),
        json!("registry.example/fn@sha256:00"),
        json!("https://registry.example/fn"),
        json!("registry.example/Team/fn"),
        json!("registry.example/../fn"),
        json!("fn"),
        json!(""),
        json!(3),
    ] {
        let err = parse(json!({ "image_repository": bad })).unwrap_err();
        assert!(
            err.to_string().contains("key `image_repository`") && err.help.is_some(),
            "{bad}: {err}"
        );
    }
}

#[test]
fn runtime_is_a_role_and_handler_follows_lambdas_rule() {
    let parsed = parse(json!({
        "role": "runtime",
        "bin": { "script": { "role": "function", "handler": "app/index.handler" } }
    }))
    .unwrap();
    assert_eq!(parsed.table.role, Some(Role::Runtime));
    assert_eq!(
        parsed.bins["script"].handler.as_deref(),
        Some("app/index.handler")
    );
    let err = parse(json!({ "role": "runtimes" })).unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid value \"runtimes\" for key `role`")
            && err.notes.iter().any(|n| n.contains("\"runtime\"")),
        "{err:?}"
    );
    for bad in [
        json!("two words"),
        json!(""),
        json!("x".repeat(129)),
        json!(1),
    ] {
        let err = parse(json!({ "handler": bad })).unwrap_err();
        assert!(
            err.to_string().contains("key `handler` in [package.metadata.lambda-pack] in `/ws/fn-a/Cargo.toml` must be 1 to 128 characters without whitespace"),
            "{err}"
        );
        assert!(
            err.help.as_deref().is_some_and(|h| h.contains("bootstrap")),
            "{err:?}"
        );
    }
    let err = parse_workspace(
        &json!({ "lambda-pack": { "handler": "x" } }),
        Path::new("/ws/Cargo.toml"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown key `handler`"), "{err}");
}

#[test]
fn auditable_is_a_bool_at_every_level() {
    let parsed =
        parse(json!({ "auditable": false, "bin": { "b": { "auditable": true } } })).unwrap();
    assert_eq!(parsed.table.auditable, Some(false));
    assert_eq!(parsed.bins["b"].auditable, Some(true));
    let workspace = parse_workspace(
        &json!({ "lambda-pack": { "auditable": false } }),
        Path::new("/ws/Cargo.toml"),
    )
    .unwrap();
    assert_eq!(workspace.auditable, Some(false));
    let err = parse(json!({ "auditable": "off" })).unwrap_err();
    assert!(
        err.to_string().contains("key `auditable`")
            && err
                .to_string()
                .contains("must be true or false, found \"off\""),
        "{err}"
    );
    assert!(err.help.unwrap().contains("auditable = false"));
}

#[test]
fn an_env_table_lambda_would_refuse_is_refused_when_the_metadata_is_read() {
    // 5 KB in one table: over Lambda's 4096 bytes for all keys and values.
    let err = parse(json!({ "env": { "BIG": "x".repeat(5 * 1024) } })).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("key `env` in [package.metadata.lambda-pack] in `/ws/fn-a/Cargo.toml` is too large: the variables take 5130 bytes as Lambda measures them (the JSON object {\"KEY\":\"value\",...}); Lambda allows 4096 bytes"),
        "{text}"
    );
    assert!(text.contains("help: keep large configuration"), "{text}");
    assert_eq!(err.exit_code(), 3);
    // At the limit it passes.
    let at_limit = parse(json!({ "env": { "AB": "x".repeat(4087) } })).unwrap();
    assert_eq!(at_limit.table.env.unwrap()["AB"].len(), 4087);
    // Reserved names and NUL bytes are Lambda's refusals too.
    let err = parse(json!({ "env": { "AWS_REGION": "eu-west-1" } })).unwrap_err();
    assert!(
        err.to_string().contains("`AWS_REGION` is reserved"),
        "{err}"
    );
    let err = parse(json!({ "env": { "STAGE": "a\u{0}b" } })).unwrap_err();
    assert!(err.to_string().contains("NUL byte"), "{err}");
}

#[test]
fn workspace_id_is_a_workspace_key_holding_a_tag_value() {
    let manifest = Path::new("/ws/Cargo.toml");
    let read =
        |id: Value| parse_workspace(&json!({ "lambda-pack": { "workspace_id": id } }), manifest);
    assert_eq!(
        read(json!("shop-eu"))
            .unwrap()
            .deploy
            .workspace_id
            .as_deref(),
        Some("shop-eu")
    );
    for bad in [json!(""), json!("a,b"), json!("x".repeat(257)), json!(7)] {
        let err = read(bad.clone()).unwrap_err();
        assert!(
            err.message.contains(
                "key `workspace_id` in [workspace.metadata.lambda-pack] in `/ws/Cargo.toml`"
            ),
            "{bad}: {}",
            err.message
        );
        assert!(
            err.notes
                .iter()
                .any(|n| n.contains("a tag value: 1 to 256")),
            "{:?}",
            err.notes
        );
        assert!(err.help.as_deref().unwrap().contains("fix `workspace_id`"));
    }
    // It names the whole workspace: a package cannot set it.
    let err = parse(json!({ "workspace_id": "shop" })).unwrap_err();
    assert!(
        err.message.contains("unknown key `workspace_id`"),
        "{}",
        err.message
    );
}

const ADAPTER_ARN: &str = "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerX86:25";

#[test]
fn layers_take_crates_arns_and_arn_tables_in_order() {
    let parsed = parse(json!({
        "layers": ["tools", ADAPTER_ARN, { "arn": ADAPTER_ARN.replace(":25", ":26"), "zip": "layers/adapter.zip" }]
    }))
    .unwrap();
    assert_eq!(
        parsed.table.layers.unwrap(),
        vec![
            LayerEntry::krate("tools"),
            LayerEntry::Arn(ArnLayer {
                arn: ADAPTER_ARN.into(),
                zip: None
            }),
            LayerEntry::Arn(ArnLayer {
                arn: ADAPTER_ARN.replace(":25", ":26"),
                // Relative to the directory of the Cargo.toml that names it.
                zip: Some("/ws/fn-a/layers/adapter.zip".into()),
            }),
        ]
    );
}

#[test]
fn a_bad_layer_arn_names_the_file_the_key_and_the_shape() {
    for (arn, why) in [
        (
            "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerX86",
            "8",
        ),
        (
            "arn:aws:lambda:eu-west-1:753240598075:function:web:1",
            "names a `function`",
        ),
        (
            "arn:aws:lambda:eu-west-1:7532405980:layer:x:1",
            "12-digit account",
        ),
        (
            "arn:aws:lambda:eu-west-1:753240598075:layer:x:latest",
            "version number",
        ),
        (
            "arn:aws:s3:eu-west-1:753240598075:layer:x:1",
            "not `lambda`",
        ),
        ("arn:aws:lambda:EU:753240598075:layer:x:1", "region"),
    ] {
        let text = parse(json!({ "layers": [arn] })).unwrap_err().to_string();
        assert!(
            text.contains("`layers` in [package.metadata.lambda-pack] in `/ws/fn-a/Cargo.toml`")
                && text.contains(why)
                && text.contains("arn:aws:lambda:<region>:<account>:layer:<name>:<version>")
                && text.contains("help:"),
            "{arn}: {text}"
        );
    }
    let text = parse(json!({ "layers": [{ "zip": "a.zip" }] }))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("needs `arn`") && text.contains("help:"),
        "{text}"
    );
    let text = parse(json!({ "layers": [{ "arn": ADAPTER_ARN, "zipp": "a.zip" }] }))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("unknown key `zipp` in a `layers` entry"),
        "{text}"
    );
    let text = parse(json!({ "layers": [{ "arn": ADAPTER_ARN, "zip": 3 }] }))
        .unwrap_err()
        .to_string();
    assert!(text.contains("key `zip` of layer"), "{text}");
    let text = parse(json!({ "layers": [3] })).unwrap_err().to_string();
    assert!(text.contains("found a number 3"), "{text}");
}
