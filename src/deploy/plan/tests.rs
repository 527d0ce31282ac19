use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::deploy::desired::{DesiredLayer, ZipCode};
use crate::target::Runtime;

const ROLE: &str = "arn:aws:iam::123456789012:role/lambda-exec";

fn zip(sha: &str, bucket: Option<&str>) -> ZipCode {
    ZipCode {
        path: PathBuf::from(format!("/out/{sha}.zip")),
        sha256: sha.repeat(8),
        size: 10,
        s3_bucket: bucket.map(str::to_string),
    }
}

fn layer(name: &str, code_sha256: &str) -> DesiredLayer {
    DesiredLayer {
        name: name.into(),
        arch: Arch::X86_64,
        code: zip(code_sha256, None),
        code_sha256: code_sha256.into(),
        compatible_runtimes: vec!["provided.al2023".into()],
        description: String::new(),
    }
}

fn function(name: &str, code_sha256: &str, layers: &[&str]) -> DesiredFunction {
    DesiredFunction {
        artifact: name.into(),
        function_name: name.into(),
        arch: Arch::X86_64,
        runtime: Runtime::ProvidedAl2023,
        code: FunctionCode::Zip(zip(code_sha256, None)),
        code_sha256: code_sha256.into(),
        layers: layers.iter().map(|l| l.to_string()).collect(),
        arn_layers: Vec::new(),
        handler: "bootstrap".into(),
        memory: None,
        timeout: None,
        env: None,
        iam_role: Some(ROLE.into()),
        settings: Default::default(),
    }
}

fn deployed(desired: &DesiredFunction, layers: &[&str]) -> FunctionState {
    FunctionState {
        arn: format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            desired.function_name
        ),
        package_type: "Zip".into(),
        architectures: vec!["x86_64".into()],
        code_sha256: desired.code_sha256.clone(),
        image_uri: None,
        runtime: Some("provided.al2023".into()),
        handler: Some("bootstrap".into()),
        layers: layers.iter().map(|l| l.to_string()).collect(),
        memory: Some(128),
        timeout: Some(3),
        env: BTreeMap::new(),
        settings: Default::default(),
    }
}

fn version(name: &str, number: u32, code_sha256: &str) -> LayerVersion {
    LayerVersion {
        arn: format!("arn:aws:lambda:us-east-1:123456789012:layer:{name}:{number}"),
        version: number.into(),
        code_sha256: code_sha256.into(),
        architectures: vec!["x86_64".into()],
    }
}

#[test]
fn an_empty_account_gets_every_layer_published_and_every_function_created() {
    let desired = Desired {
        layers: vec![layer("tools", "T1")],
        functions: vec![function("orders", "F1", &["tools"])],
        ..Desired::default()
    };
    let plan = plan(&desired, &Observed::default()).unwrap();
    assert_eq!(plan.layers[0].action, LayerAction::Publish);
    assert_eq!(plan.functions[0].actions, vec![FunctionAction::Create]);
    assert_eq!(
        plan.functions[0].layers,
        vec![LayerRef::Published {
            layer: "tools".into(),
            arch: Arch::X86_64
        }]
    );
    assert!(!plan.changes_nothing());
}

#[test]
fn matching_content_is_reused_and_an_up_to_date_function_is_left_alone() {
    let desired = Desired {
        layers: vec![layer("tools", "T1")],
        functions: vec![function("orders", "F1", &["tools"])],
        ..Desired::default()
    };
    let tools = version("tools", 3, "T1");
    let mut observed = Observed::default();
    observed
        .layer_matches
        .insert(("tools".into(), Arch::X86_64), tools.clone());
    observed.functions.insert(
        "orders".into(),
        deployed(&desired.functions[0], &[&tools.arn]),
    );
    let plan = plan(&desired, &observed).unwrap();
    assert_eq!(plan.layers[0].action, LayerAction::Reuse);
    assert_eq!(plan.layers[0].arn.as_deref(), Some(tools.arn.as_str()));
    assert!(
        plan.functions[0].actions.is_empty(),
        "{:?}",
        plan.functions[0]
    );
    assert!(plan.changes_nothing());
}

#[test]
fn a_new_layer_version_repoints_the_function_without_touching_its_code() {
    let desired = Desired {
        layers: vec![layer("tools", "T2")],
        functions: vec![function("orders", "F1", &["tools"])],
        ..Desired::default()
    };
    let old = version("tools", 1, "T1");
    let mut observed = Observed::default();
    observed.functions.insert(
        "orders".into(),
        deployed(&desired.functions[0], &[&old.arn]),
    );
    let plan = plan(&desired, &observed).unwrap();
    assert_eq!(plan.layers[0].action, LayerAction::Publish);
    assert_eq!(
        plan.functions[0].actions,
        vec![FunctionAction::UpdateConfiguration]
    );
    assert!(
        plan.functions[0].reasons[0].starts_with(
            "layers: [arn:aws:lambda:us-east-1:123456789012:layer:tools:1] → [tools:<new version>]"
        ),
        "{:?}",
        plan.functions[0].reasons
    );
}

#[test]
fn the_manifests_handler_is_sent_and_a_different_one_updates_the_configuration() {
    let mut wanted = function("hello-script", "F1", &[]);
    let state = deployed(&wanted, &[]);
    assert!(
        function_step(&wanted, Some(&state), Vec::new())
            .unwrap()
            .actions
            .is_empty()
    );
    wanted.handler = "hello.txt".into();
    let step = function_step(&wanted, Some(&state), Vec::new()).unwrap();
    assert_eq!(step.actions, vec![FunctionAction::UpdateConfiguration]);
    assert_eq!(
        step.reasons,
        vec!["handler: bootstrap → hello.txt".to_string()]
    );
}

#[test]
fn owned_settings_are_compared_only_when_set_and_environment_values_are_not_shown() {
    let mut wanted = function("orders", "F2", &[]);
    let mut state = deployed(&wanted, &[]);
    state.code_sha256 = "F1".into();
    state.env = BTreeMap::from([("TOKEN".to_string(), "old-secret".to_string())]);
    // Nothing owned beyond code: memory 128 and the environment are left as they are.
    let plan1 = function_step(&wanted, Some(&state), Vec::new()).unwrap();
    assert_eq!(plan1.actions, vec![FunctionAction::UpdateCode]);
    assert_eq!(plan1.reasons, vec!["code: CodeSha256 F1 → F2".to_string()]);

    wanted.memory = Some(512);
    wanted.env = Some(BTreeMap::from([(
        "TOKEN".to_string(),
        "new-secret".to_string(),
    )]));
    let plan2 = function_step(&wanted, Some(&state), Vec::new()).unwrap();
    assert_eq!(
        plan2.actions,
        vec![
            FunctionAction::UpdateCode,
            FunctionAction::UpdateConfiguration
        ]
    );
    let text = plan2.reasons.join("\n");
    assert!(text.contains("memory: 128 → 512 MB"), "{text}");
    assert!(text.contains("environment: TOKEN differ"), "{text}");
    assert!(
        !text.contains("secret"),
        "an environment value was shown: {text}"
    );
}

#[test]
fn another_architecture_or_package_type_is_refused() {
    let wanted = function("orders", "F1", &[]);
    let mut arm = deployed(&wanted, &[]);
    arm.architectures = vec!["arm64".into()];
    let error = function_step(&wanted, Some(&arm), Vec::new()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Aws);
    assert!(error.message.contains("runs on arm64"), "{}", error.message);
    assert!(error.help.unwrap().contains("function_name"));

    let mut image = deployed(&wanted, &[]);
    image.package_type = "Image".into();
    let error = function_step(&wanted, Some(&image), Vec::new()).unwrap_err();
    assert!(
        error
            .message
            .contains("has PackageType Image, but `orders` is a Zip function"),
        "{}",
        error.message
    );
}

#[test]
fn image_functions_compare_the_image_uri_and_own_no_runtime_handler_or_layers() {
    let uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/big@sha256:abc";
    let mut wanted = function("big", "sha-of-context", &[]);
    wanted.code = FunctionCode::Image(uri.into());
    let mut state = deployed(&wanted, &[]);
    state.package_type = "Image".into();
    state.runtime = None;
    state.handler = None;
    state.image_uri = Some(uri.into());
    assert!(
        function_step(&wanted, Some(&state), Vec::new())
            .unwrap()
            .actions
            .is_empty()
    );
    state.image_uri = Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/big@sha256:old".into());
    assert_eq!(
        function_step(&wanted, Some(&state), Vec::new())
            .unwrap()
            .actions,
        vec![FunctionAction::UpdateCode]
    );
}

#[test]
fn an_s3_upload_is_planned_only_for_code_that_is_sent_and_skipped_when_present() {
    let mut big = function("big", "F2", &[]);
    big.code = FunctionCode::Zip(zip("F2", Some("bucket")));
    let desired = Desired {
        layers: Vec::new(),
        functions: vec![big.clone()],
        ..Desired::default()
    };
    let key = zip("F2", Some("bucket")).s3_key();
    // Up to date: nothing to upload.
    let mut observed = Observed::default();
    observed.functions.insert("big".into(), deployed(&big, &[]));
    assert!(plan(&desired, &observed).unwrap().uploads.is_empty());
    // New code: one upload, skipped when the object is already there.
    observed.functions.get_mut("big").unwrap().code_sha256 = "F1".into();
    let planned = plan(&desired, &observed).unwrap();
    assert_eq!(planned.uploads.len(), 1);
    assert_eq!(planned.uploads[0].key, key);
    assert!(!planned.uploads[0].present);
    observed.objects.insert(("bucket".into(), key));
    assert!(plan(&desired, &observed).unwrap().uploads[0].present);
}

#[test]
fn managed_instances_and_ephemeral_storage_update_only_when_the_account_differs() {
    use crate::deploy::settings::Capacity;
    let mut wanted = function("orders", "F1", &[]);
    let capacity = Capacity {
        arn: "arn:aws:lambda:us-east-1:123456789012:capacity-provider:fleet".into(),
        max_concurrency: Some(64),
        memory_per_vcpu_milli: Some(4000),
    };
    wanted.settings.capacity = Some(capacity.clone());
    wanted.settings.ephemeral_storage = Some(2048);
    let desired = Desired {
        functions: vec![wanted.clone()],
        ..Desired::default()
    };
    let mut state = deployed(&wanted, &[]);
    state.settings.capacity = Some(capacity.clone());
    state.settings.ephemeral_storage = Some(2048);
    let mut observed = Observed::default();
    observed.functions.insert("orders".into(), state.clone());
    let same = plan(&desired, &observed).unwrap();
    assert!(same.changes_nothing(), "{:?}", same.functions[0].reasons);

    state.settings.capacity = Some(Capacity {
        max_concurrency: Some(32),
        ..capacity
    });
    state.settings.ephemeral_storage = Some(512);
    observed.functions.insert("orders".into(), state);
    let differs = plan(&desired, &observed).unwrap();
    assert_eq!(
        differs.functions[0].actions,
        vec![FunctionAction::UpdateConfiguration]
    );
    let reasons = differs.functions[0].reasons.join("\n");
    assert!(
        reasons.contains("ephemeral storage: 512 → 2048 MB"),
        "{reasons}"
    );
    assert!(reasons.contains("max concurrency 64"), "{reasons}");
}

#[test]
fn arn_layers_keep_their_places_and_an_up_to_date_function_is_left_alone() {
    let adapter = "arn:aws:lambda:us-east-1:753240598075:layer:LambdaAdapterLayerX86:25";
    let mut function = function("web", "F1", &["tools"]);
    function.arn_layers = vec![(0, adapter.to_string())];
    let desired = Desired {
        layers: vec![layer("tools", "T1")],
        functions: vec![function],
        ..Desired::default()
    };
    let fresh = plan(&desired, &Observed::default()).unwrap();
    assert_eq!(
        fresh.functions[0].layers,
        vec![
            LayerRef::Existing(adapter.into()),
            LayerRef::Published {
                layer: "tools".into(),
                arch: Arch::X86_64
            }
        ]
    );
    let tools = version("tools", 3, "T1");
    let mut observed = Observed::default();
    observed
        .layer_matches
        .insert(("tools".into(), Arch::X86_64), tools.clone());
    observed.functions.insert(
        "web".into(),
        deployed(&desired.functions[0], &[adapter, &tools.arn]),
    );
    assert!(plan(&desired, &observed).unwrap().changes_nothing());
    // The same layers in another order are a configuration change.
    observed.functions.insert(
        "web".into(),
        deployed(&desired.functions[0], &[&tools.arn, adapter]),
    );
    let reordered = plan(&desired, &observed).unwrap();
    assert_eq!(
        reordered.functions[0].actions,
        vec![FunctionAction::UpdateConfiguration]
    );
}
