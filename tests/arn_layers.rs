//! Layers attached by version ARN: an axum web application behind the real Lambda Web Adapter
//! (crates.io's `lambda_web_adapter`, packed as an extension layer whose ZIP is the ARN's local
//! copy) answers an API Gateway event through `verify`; without the local copy verify names the
//! layer it could not mount; `deploy` attaches ARNs in order with the workspace's layers (boto3
//! against moto reads the function's Layers back), and a second deploy changes nothing.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::deploy::{Packed, json_of};
use common::moto::{boto, shared};
use common::{
    api_gateway_v2_event, artifact, lambda_pack, manifest, python_entries, run, sync_tree,
    verify_functions_target_dir, verify_with,
};
use serde_json::json;

/// The adapter layer's published ARN, as `fixtures/web-adapter/web-fn` attaches it.
const ADAPTER_ARN: &str = "arn:aws:lambda:us-east-1:753240598075:layer:LambdaAdapterLayerX86:25";

/// `fixtures/web-adapter`, packed: the adapter as an extension, its ZIP copied to where web-fn's
/// `zip` names it (`layers/lambda-adapter.zip`), then web-fn.
struct WebAdapter {
    workspace: PathBuf,
    adapter_zip: PathBuf,
    out: PathBuf,
}

const PACK_ARGS: [&str; 5] = ["--compiler", "cargo", "--profile", "dev", "--locked"];

/// `cargo lambda-pack` in `workspace` with the shared fixture target directory.
fn pack(workspace: &Path, out: &Path, args: &[&str]) -> common::Run {
    let mut command = lambda_pack();
    command
        .args(PACK_ARGS)
        .args(args)
        .arg("--target-dir")
        .arg(verify_functions_target_dir())
        .arg("--out-dir")
        .arg(out)
        .current_dir(workspace);
    run(command)
}

fn web_adapter() -> &'static WebAdapter {
    static PACKED: OnceLock<WebAdapter> = OnceLock::new();
    PACKED.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-adapter");
        let workspace = root.join("workspace");
        sync_tree(&common::fixtures_dir().join("web-adapter"), &workspace);
        let adapter_out = root.join("adapter-out");
        pack(&workspace, &adapter_out, &["-p", "lambda-adapter"]).assert_success();
        let packed = adapter_out.join("x86_64/lambda-adapter.zip");
        let adapter_zip = workspace.join("layers/lambda-adapter.zip");
        std::fs::create_dir_all(adapter_zip.parent().unwrap()).unwrap();
        std::fs::copy(&packed, &adapter_zip).unwrap();
        let out = root.join("out");
        pack(&workspace, &out, &["-p", "web-fn"]).assert_success();
        WebAdapter {
            workspace,
            adapter_zip,
            out,
        }
    })
}

/// A loopback port nothing listens on now, for the web server (verify shares the host's network).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn event_file(dir: &Path) -> PathBuf {
    let path = dir.join("apigw.json");
    std::fs::write(&path, api_gateway_v2_event().to_string()).unwrap();
    path
}

#[test]
fn an_axum_function_answers_an_api_gateway_event_through_the_web_adapter_attached_by_arn() {
    let packed = web_adapter();
    // The local copy is the adapter as an extension layer: extensions/lambda-adapter, 0755.
    let entries = python_entries(&packed.adapter_zip);
    let adapter = entries
        .iter()
        .find(|e| e.name == "extensions/lambda-adapter")
        .unwrap_or_else(|| panic!("{entries:#?}"));
    assert_eq!(adapter.mode & 0o777, 0o755);
    let copy_size: u64 = entries.iter().map(|e| e.file_size).sum();

    let manifest = manifest(&packed.out);
    let web = artifact(&manifest, "web");
    assert_eq!(web["layers"], json!([]), "{web}");
    let zip = packed
        .workspace
        .join("web-fn/../layers/lambda-adapter.zip")
        .display()
        .to_string();
    assert_eq!(
        web["arn_layers"],
        json!([{ "arn": ADAPTER_ARN, "position": 0, "zip": zip, "size_unzipped": copy_size }]),
        "{web}"
    );
    // The 250 MB check counts the local copy.
    assert_eq!(
        web["size_unzipped_with_layers"].as_u64().unwrap(),
        web["size_unzipped"].as_u64().unwrap() + copy_size,
        "{web}"
    );

    let scratch = tempfile::tempdir().unwrap();
    let event = event_file(scratch.path());
    let port = format!("AWS_LWA_PORT={}", free_port());
    let args = [
        "web",
        "--event",
        event.to_str().unwrap(),
        "--env",
        &port,
        "--message-format",
        "json",
    ];
    let verified = verify_with(&packed.workspace, &packed.out, &args);
    verified.assert_code(0);
    let document = json_of(&verified);
    let result = &document["functions"][0];
    assert_eq!(result["passed"], true, "{result}");
    let adapter = &result["report"]["extensions"][0];
    assert_eq!(adapter["name"], "lambda-adapter", "{result}");
    assert_eq!(adapter["registered"], true, "{result}");
    let invoke = &result["report"]["invocations"][0];
    assert_eq!(invoke["outcome"]["kind"], "response", "{invoke}");
    let answer = &invoke["response"];
    assert_eq!(answer["statusCode"], 200, "{answer}");
    // The axum route's body, through the adapter.
    assert_eq!(answer["body"], "cat\ndog \"rex\"\n", "{answer}");

    // The human preview shows that body as text, not with JSON's escapes.
    let port = format!("AWS_LWA_PORT={}", free_port());
    let human = verify_with(
        &packed.workspace,
        &packed.out,
        &["web", "--event", event.to_str().unwrap(), "--env", &port],
    );
    human.assert_code(0);
    assert!(
        human.stderr.contains("| cat\n") && human.stderr.contains("| dog \"rex\"\n"),
        "{}",
        human.stderr
    );
    assert!(!human.stderr.contains("\\n"), "{}", human.stderr);
}

#[test]
fn an_arn_layer_without_a_local_copy_is_left_out_of_the_size_check_and_named_when_init_times_out() {
    let packed = web_adapter();
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("workspace");
    sync_tree(&packed.workspace, &workspace);
    let manifest_path = workspace.join("web-fn/Cargo.toml");
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    let edited = text.replace(", zip = \"../layers/lambda-adapter.zip\"", "");
    assert_ne!(edited, text);
    std::fs::write(&manifest_path, edited).unwrap();

    let mut plan = lambda_pack();
    plan.arg("plan")
        .args(PACK_ARGS)
        .args(["-p", "web-fn", "--target-dir"])
        .arg(verify_functions_target_dir())
        .current_dir(&workspace);
    let planned = run(plan);
    planned.assert_success();
    assert!(
        planned.stdout.contains(&format!(
            "the size check left out {ADAPTER_ARN} (no local copy"
        )) || planned.stderr.contains("the size check left out"),
        "{}\n{}",
        planned.stdout,
        planned.stderr
    );

    let out = root.path().join("out");
    pack(&workspace, &out, &["-p", "web-fn"]).assert_success();
    let web = artifact(&manifest(&out), "web").clone();
    assert_eq!(
        web["arn_layers"],
        json!([{ "arn": ADAPTER_ARN, "position": 0 }])
    );
    assert_eq!(web["size_unzipped_with_layers"], web["size_unzipped"]);

    // The web server never calls the Runtime API: without the adapter, init times out.
    let event = event_file(root.path());
    let port = format!("AWS_LWA_PORT={}", free_port());
    let verified = verify_with(
        &workspace,
        &out,
        &["web", "--event", event.to_str().unwrap(), "--env", &port],
    );
    verified.assert_code(10);
    let stderr = &verified.stderr;
    assert!(
        stderr.contains(&format!(
            "warning: web (x86_64) attaches layer {ADAPTER_ARN} by ARN without a local copy: verify could not mount it"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Init timed out"), "{stderr}");
    let help = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("help:"))
        .unwrap_or_default();
    assert!(
        help.contains("could not mount") && help.contains(ADAPTER_ARN) && help.contains("zip ="),
        "{stderr}"
    );
}

#[test]
fn deploy_attaches_arn_layers_in_order_with_the_workspace_layers_and_a_second_run_changes_nothing()
{
    let _moto = shared();
    let region = "eu-north-1";
    // Layers published outside this workspace (moto checks that attached versions exist).
    let publish = |name: &str| {
        boto(
            region,
            json!({"op": "publish_layer", "name": name, "arch": "x86_64"}),
        )["arn"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = publish("observability");
    let second = publish("secrets-cache");
    let packed = Packed::copy("arn-layers");
    packed.edit("tiny-fn/Cargo.toml", |text| {
        let from = "layers = [\"tools-layer\", \"recorder-ext\"]";
        assert!(text.contains(from));
        text.replace(
            from,
            &format!("layers = [\"{first}\", \"tools-layer\", {{ arn = \"{second}\" }}, \"recorder-ext\"]"),
        )
    });
    packed.pack();
    let user = artifact(&packed.manifest(), "tool-user").clone();
    assert_eq!(user["layers"], json!(["tools-layer", "recorder"]), "{user}");
    assert_eq!(
        user["arn_layers"],
        json!([{ "arn": first, "position": 0 }, { "arn": second, "position": 2 }])
    );

    let role = common::deploy::boto_role(region);
    let deployed = packed.deploy(region, &["--iam-role", &role, "--message-format", "json"]);
    deployed.assert_success();
    let read = || {
        boto(
            region,
            json!({"op": "state", "functions": ["tool-user"], "layers": ["tools-layer", "recorder"]}),
        )
    };
    let account = read();
    let own = |name: &str| {
        account["layers"][name][0]["Arn"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let function = &account["functions"]["tool-user"];
    assert_eq!(
        function["Layers"],
        json!([first, own("tools-layer"), second, own("recorder")]),
        "{account}"
    );

    let again = packed.deploy(region, &["--iam-role", &role, "--message-format", "json"]);
    again.assert_success();
    let report = json_of(&again);
    let user_step = report["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "tool-user")
        .unwrap();
    assert_eq!(user_step["actions"], json!([]), "{report}");
    let after = read();
    assert_eq!(
        after["functions"]["tool-user"]["LastModified"],
        function["LastModified"]
    );
    assert_eq!(
        after["functions"]["tool-user"]["Layers"],
        function["Layers"]
    );
}

#[test]
fn merge_carries_the_arn_layers_of_a_function_through() {
    let packed = web_adapter();
    let root = tempfile::tempdir().unwrap();
    let merged = root.path().join("merged");
    let mut command = lambda_pack();
    command
        .arg("merge")
        .arg(&packed.out)
        .arg("--out-dir")
        .arg(&merged);
    run(command).assert_success();
    let before = artifact(&manifest(&packed.out), "web").clone();
    let after = artifact(&manifest(&merged), "web").clone();
    assert_eq!(after["arn_layers"], before["arn_layers"], "{after}");
    assert_eq!(after["arn_layers"][0]["arn"], ADAPTER_ARN);
    assert_eq!(
        after["size_unzipped_with_layers"],
        before["size_unzipped_with_layers"]
    );
}
