//! `cargo lambda-pack deploy` against a real AWS API emulator: moto in server mode (started once for
//! this test binary on a free loopback port, `AWS_ENDPOINT_URL` pointed at it), the account read
//! back with boto3, an independent client. Each test deploys into its own region, which moto
//! keeps apart, so the tests run in parallel on one server.
//!
//! The workspace is `fixtures/verify-functions` packed with `-p tiny-fn`: the functions `tiny`
//! (arm64) and `tool-user` (x86_64, attaching the layer `tools-layer` and the extension
//! `recorder`, in that order), built in the target directory the verify tests share.

mod common;

use common::deploy::{
    Packed, actions, base, big, boto_role as role, deploy_command, json_of, state,
};
use common::moto::{boto, moto, shared};
use common::run;
use serde_json::json;

#[test]
fn deploy_creates_layers_and_functions_then_a_second_run_changes_nothing() {
    let _moto = shared();
    let region = "us-east-1";
    let packed = base();
    let manifest_before = std::fs::read(packed.out.join("manifest.json")).unwrap();

    // Creating needs a role: refused before anything changes.
    let no_role = packed.deploy(region, &[]);
    no_role.assert_code(3);
    assert!(
        no_role.stderr.contains("needs an execution role"),
        "{}",
        no_role.stderr
    );
    assert!(
        no_role.stderr.contains("help: pass --iam-role"),
        "{}",
        no_role.stderr
    );
    let empty = state(region);
    assert!(empty["functions"]["tiny"].is_null(), "{empty}");
    assert_eq!(empty["layers"]["tools-layer"], json!([]), "{empty}");

    let role = role(region);
    // The dry run lists every publish and create, and changes nothing.
    let dry = packed.deploy(
        region,
        &["--iam-role", &role, "--dry-run", "--message-format", "json"],
    );
    dry.assert_success();
    let planned = json_of(&dry);
    assert_eq!(planned["dry_run"], json!(true));
    assert_eq!(
        actions(&planned),
        vec![
            r#"layer "recorder" "x86_64" "publish""#,
            r#"layer "tools-layer" "x86_64" "publish""#,
            r#"function "tiny" "arm64" ["create"]"#,
            r#"function "tool-user" "x86_64" ["create"]"#,
        ],
        "{}",
        dry.stdout
    );
    assert_eq!(state(region), empty, "--dry-run changed the account");

    let deployed = packed.deploy(region, &["--iam-role", &role, "--message-format", "json"]);
    deployed.assert_success();
    let report = json_of(&deployed);
    assert_eq!(
        actions(&report),
        actions(&planned),
        "the deploy did other than its dry run listed"
    );

    // Read back with boto3.
    let account = state(region);
    let manifest = packed.manifest();
    for name in ["tools-layer", "recorder"] {
        let versions = account["layers"][name].as_array().unwrap();
        assert_eq!(versions.len(), 1, "{account}");
        let entry = common::artifact(&manifest, name);
        assert_eq!(versions[0]["CodeSha256"], entry["code_sha256"], "{account}");
        assert_eq!(
            versions[0]["CompatibleArchitectures"],
            json!(["x86_64"]),
            "{account}"
        );
        assert_eq!(
            versions[0]["CompatibleRuntimes"], entry["compatible_runtimes"],
            "{account}"
        );
    }
    let tiny = &account["functions"]["tiny"];
    assert_eq!(tiny["CodeSha256"], json!(packed.code_sha256("tiny")));
    assert_eq!(tiny["Architectures"], json!(["arm64"]));
    assert_eq!(tiny["Runtime"], json!("provided.al2023"));
    assert_eq!(tiny["Handler"], json!("bootstrap"));
    assert_eq!(tiny["Layers"], json!([]));
    let tool_user = &account["functions"]["tool-user"];
    assert_eq!(
        tool_user["CodeSha256"],
        json!(packed.code_sha256("tool-user"))
    );
    assert_eq!(tool_user["Architectures"], json!(["x86_64"]));
    // The layer version ARNs, in merge order.
    assert_eq!(
        tool_user["Layers"],
        json!([
            account["layers"]["tools-layer"][0]["Arn"],
            account["layers"]["recorder"][0]["Arn"]
        ]),
        "{account}"
    );
    // The metadata's `env` (the workspace's, merged) is the function's environment.
    assert_eq!(
        tool_user["Environment"],
        json!({"STAGE": "dev", "REGION_HINT": "eu"})
    );
    // The JSON report names what each function got.
    let reported = report["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function_name"] == "tool-user")
        .unwrap();
    assert_eq!(reported["arn"], tool_user["FunctionArn"]);
    assert_eq!(reported["layers"], tool_user["Layers"]);
    assert_eq!(reported["code_sha256"], tool_user["CodeSha256"]);

    // Nothing changed: the dry run says so, the deploy publishes and updates nothing.
    // (`-p` selects as for a pack: the layers its functions attach come along.)
    let dry_again = packed.deploy(region, &["--dry-run", "-p", "tiny-fn"]);
    dry_again.assert_success();
    assert!(
        dry_again.stderr.contains("reuse layer"),
        "{}",
        dry_again.stderr
    );
    assert!(
        !dry_again.stderr.contains("publish layer"),
        "{}",
        dry_again.stderr
    );
    assert!(
        dry_again.stderr.contains("unchanged"),
        "{}",
        dry_again.stderr
    );
    let again = packed.deploy(region, &[]);
    again.assert_success();
    assert!(
        again.stderr.contains("nothing to change"),
        "{}",
        again.stderr
    );
    assert_eq!(
        state(region),
        account,
        "a second deploy with nothing changed changed the account"
    );

    // --publish --alias: a version, and the alias on it.
    let published = packed.deploy(
        region,
        &["tool-user", "--alias", "live", "--message-format", "json"],
    );
    published.assert_success();
    let version = json_of(&published)["functions"][0]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let alias = boto(
        region,
        json!({"op": "alias", "function": "tool-user", "name": "live"}),
    );
    assert_eq!(alias["FunctionVersion"], json!(version), "{alias}");

    // The manifest is not modified by deploy.
    assert_eq!(
        std::fs::read(packed.out.join("manifest.json")).unwrap(),
        manifest_before
    );
}

#[test]
fn one_function_change_updates_only_it_and_one_layer_change_repoints_its_functions() {
    let _moto = shared();
    let region = "us-east-2";
    let packed = Packed::copy("changes");
    packed.pack();
    let role = role(region);
    packed
        .deploy(region, &["--iam-role", &role])
        .assert_success();
    let first = state(region);

    // A new include for tool-user only: its code changes, nothing else.
    std::fs::write(packed.workspace.join("tiny-fn/extra.txt"), "more\n").unwrap();
    packed.edit("tiny-fn/Cargo.toml", |text| {
        text.replace(
            "[package.metadata.lambda-pack.bin.tool-user]\n",
            "[package.metadata.lambda-pack.bin.tool-user]\ninclude = [\"extra.txt\"]\n",
        )
    });
    packed.pack();
    let dry = packed.deploy(region, &["--dry-run", "--message-format", "json"]);
    dry.assert_success();
    let deployed = packed.deploy(region, &["--message-format", "json"]);
    deployed.assert_success();
    assert_eq!(
        actions(&json_of(&deployed)),
        vec![
            r#"layer "recorder" "x86_64" "reuse""#,
            r#"layer "tools-layer" "x86_64" "reuse""#,
            r#"function "tiny" "arm64" []"#,
            r#"function "tool-user" "x86_64" ["update-code"]"#,
        ]
    );
    assert_eq!(actions(&json_of(&dry)), actions(&json_of(&deployed)));
    let second = state(region);
    assert_eq!(
        second["functions"]["tiny"], first["functions"]["tiny"],
        "tiny changed"
    );
    assert_eq!(second["layers"], first["layers"], "a layer was published");
    assert_eq!(
        second["functions"]["tool-user"]["CodeSha256"],
        json!(packed.code_sha256("tool-user"))
    );
    assert_ne!(
        second["functions"]["tool-user"]["CodeSha256"],
        first["functions"]["tool-user"]["CodeSha256"]
    );
    assert_eq!(
        second["functions"]["tool-user"]["Layers"],
        first["functions"]["tool-user"]["Layers"]
    );

    // A change to the layer: one new version of it, and only its function repointed.
    std::fs::write(packed.workspace.join("tools-layer/notes.txt"), "v2\n").unwrap();
    packed.edit("tools-layer/Cargo.toml", |text| {
        text.replace(
            "role = \"layer\"\n",
            "role = \"layer\"\ninclude = [\"notes.txt:share/notes.txt\"]\n",
        )
    });
    packed.pack();
    let deployed = packed.deploy(region, &["--message-format", "json"]);
    deployed.assert_success();
    assert_eq!(
        actions(&json_of(&deployed)),
        vec![
            r#"layer "recorder" "x86_64" "reuse""#,
            r#"layer "tools-layer" "x86_64" "publish""#,
            r#"function "tiny" "arm64" []"#,
            r#"function "tool-user" "x86_64" ["update-configuration"]"#,
        ]
    );
    let third = state(region);
    let tools = third["layers"]["tools-layer"].as_array().unwrap();
    assert_eq!(tools.len(), 2, "{third}");
    assert_eq!(
        tools[1]["CodeSha256"],
        json!(packed.code_sha256("tools-layer"))
    );
    assert_eq!(third["layers"]["recorder"], second["layers"]["recorder"]);
    assert_eq!(third["functions"]["tiny"], first["functions"]["tiny"]);
    assert_eq!(
        third["functions"]["tool-user"]["Layers"],
        json!([tools[1]["Arn"], third["layers"]["recorder"][0]["Arn"]])
    );
    assert_eq!(
        third["functions"]["tool-user"]["CodeSha256"],
        second["functions"]["tool-user"]["CodeSha256"]
    );

    // Owned settings from the new keys: memory and timeout, nothing else touched.
    packed.edit("tiny-fn/Cargo.toml", |text| {
        text.replace(
            "[package.metadata.lambda-pack.bin.tiny]\n",
            "[package.metadata.lambda-pack.bin.tiny]\nmemory = 512\ntimeout = 30\n",
        )
    });
    let deployed = packed.deploy(region, &["--dry-run"]);
    deployed.assert_success();
    assert!(
        deployed.stderr.contains("memory: 128 → 512 MB"),
        "{}",
        deployed.stderr
    );
    // --build packs first (nothing to rebuild), then deploys.
    let built = packed.build_and_deploy(region, &[]);
    built.assert_success();
    assert!(
        built
            .stderr
            .contains("Updating configuration of tiny (arm64)"),
        "{}",
        built.stderr
    );
    let fourth = state(region);
    assert_eq!(fourth["functions"]["tiny"]["MemorySize"], json!(512));
    assert_eq!(fourth["functions"]["tiny"]["Timeout"], json!(30));
    assert_eq!(
        fourth["functions"]["tiny"]["CodeSha256"],
        first["functions"]["tiny"]["CodeSha256"]
    );
    assert_eq!(
        fourth["functions"]["tool-user"],
        third["functions"]["tool-user"]
    );

    // Packed for both architectures, one function would be deployed twice: refused, and --arch
    // chooses.
    packed.edit("tiny-fn/Cargo.toml", |text| {
        text.replace("arch = \"arm64\"", "arch = [\"x86_64\", \"arm64\"]")
    });
    packed.pack();
    let both = packed.deploy(region, &[]);
    both.assert_code(3);
    assert!(
        both.stderr
            .contains("would both deploy as the function `tiny`"),
        "{}",
        both.stderr
    );
    assert!(
        both.stderr
            .contains("help: deploy one architecture with --arch"),
        "{}",
        both.stderr
    );
    let arm = packed.deploy(
        region,
        &["--arch", "arm64", "--dry-run", "--message-format", "json"],
    );
    arm.assert_success();
    assert_eq!(
        actions(&json_of(&arm)),
        vec![r#"function "tiny" "arm64" []"#]
    );
}

#[test]
fn a_zip_over_50_mb_goes_through_the_s3_bucket() {
    let _moto = shared();
    let region = "eu-west-1";
    let packed = big();
    let manifest = packed.manifest();
    let entry = common::artifact(&manifest, "tool-user");
    assert_eq!(entry["upload"], json!("s3"), "{entry}");
    let role = role(region);

    // Without a bucket: refused before anything changes.
    let refused = packed.deploy(region, &["--iam-role", &role]);
    refused.assert_code(3);
    assert!(
        refused.stderr.contains("no bucket is set"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("help: pass --s3-bucket"),
        "{}",
        refused.stderr
    );
    assert!(state(region)["functions"]["tool-user"].is_null());

    boto(
        region,
        json!({"op": "bucket", "name": "lambda-pack-test-artifacts", "region": region}),
    );
    let dry = packed.deploy(
        region,
        &[
            "--iam-role",
            &role,
            "--s3-bucket",
            "lambda-pack-test-artifacts",
            "--dry-run",
        ],
    );
    dry.assert_success();
    let key = format!("lambda-pack/{}.zip", entry["sha256"].as_str().unwrap());
    assert!(
        dry.stderr.contains(&format!(
            "upload                 s3://lambda-pack-test-artifacts/{key}"
        )),
        "{}",
        dry.stderr
    );
    let deployed = packed.deploy(
        region,
        &[
            "--iam-role",
            &role,
            "--s3-bucket",
            "lambda-pack-test-artifacts",
        ],
    );
    deployed.assert_success();
    assert!(deployed.stderr.contains("Uploading"), "{}", deployed.stderr);
    let objects = boto(
        region,
        json!({"op": "objects", "name": "lambda-pack-test-artifacts"}),
    );
    assert_eq!(
        objects,
        json!({ key.clone(): {"size": entry["size_zipped"], "sha256": entry["sha256"]} }),
        "the bucket holds exactly the ZIP, under its hash"
    );
    let account = state(region);
    assert_eq!(
        account["functions"]["tool-user"]["CodeSha256"],
        entry["code_sha256"]
    );

    // Unchanged: no upload, no update.
    let again = packed.deploy(region, &["--s3-bucket", "lambda-pack-test-artifacts"]);
    again.assert_success();
    assert!(!again.stderr.contains("Uploading"), "{}", again.stderr);
    assert!(
        again.stderr.contains("nothing to change"),
        "{}",
        again.stderr
    );
    assert_eq!(state(region), account);
}

/// Turns moto's IAM enforcement back off, also when the test fails half way.
struct Enforced<'a> {
    region: &'a str,
}

impl Drop for Enforced<'_> {
    fn drop(&mut self) {
        boto(
            self.region,
            json!({"op": "enforce_iam", "after": null, "endpoint": moto().endpoint}),
        );
    }
}

/// moto authenticates and authorizes every request after the first N once its switch is on
/// (INITIAL_NO_AUTH_ACTION_COUNT, reset through its API). Its Lambda cannot check signatures in
/// server mode (it signs over the headers instead of the body), but its IAM and S3 can, so the
/// refusal tested is S3's: N is the deploy's requests before its upload, which come first and
/// pass unchecked. In a fresh region the deploy reads (ListLayerVersions for `recorder` and
/// `tools-layer`, GetFunction and HeadObject for `tool-user`, GetFunction for `tiny`: 5), then
/// publishes the two layers (7), then uploads `tool-user`'s ZIP: the 8th request, refused.
const REQUESTS_BEFORE_THE_UPLOAD: u32 = 7;

#[test]
fn access_denied_names_the_action_and_the_next_run_completes_the_rest() {
    // Alone on the server: moto's switch is server-wide.
    let _alone = moto().auth.write().unwrap_or_else(|e| e.into_inner());
    let region = "ap-northeast-1";
    let bucket = "lambda-pack-test-denied";
    let packed = big();
    let role = role(region);
    boto(
        region,
        json!({"op": "bucket", "name": bucket, "region": region}),
    );
    // A user that may read the bucket but not write to it.
    let user = boto(
        region,
        json!({"op": "restricted_user", "name": "deployer-without-put", "allow": ["s3:GetObject", "s3:ListBucket"]}),
    );
    let (id, secret) = (
        user["id"].as_str().unwrap(),
        user["secret"].as_str().unwrap(),
    );
    let failed = {
        boto(
            region,
            json!({"op": "enforce_iam", "after": REQUESTS_BEFORE_THE_UPLOAD, "endpoint": moto().endpoint}),
        );
        let _enforced = Enforced { region };
        packed.deploy_with(
            region,
            &["--iam-role", &role, "--s3-bucket", bucket],
            &[("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret)],
        )
    };
    failed.assert_code(12);
    assert!(
        failed
            .stderr
            .contains("s3:PutObject on `s3://lambda-pack-test-denied/lambda-pack/"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("AccessDenied"), "{}", failed.stderr);
    assert!(
        failed.stderr.contains("help: allow `s3:PutObject`"),
        "{}",
        failed.stderr
    );
    // What was done before the failure is reported.
    for layer in ["tools-layer", "recorder"] {
        let line = format!(
            "done before the failure: published arn:aws:lambda:{region}:123456789012:layer:{layer}:1"
        );
        assert!(failed.stderr.contains(&line), "{}", failed.stderr);
    }
    assert!(
        failed.stderr.contains("deploy is idempotent"),
        "{}",
        failed.stderr
    );
    assert!(
        !failed.stderr.contains(secret) && !failed.stdout.contains(secret),
        "the secret key was printed"
    );
    let half = state(region);
    assert!(half["functions"]["tool-user"].is_null(), "{half}");
    assert_eq!(
        half["layers"]["tools-layer"].as_array().unwrap().len(),
        1,
        "{half}"
    );

    // The next run, allowed, completes the rest and publishes no layer again.
    let completed = packed.deploy(
        region,
        &[
            "--iam-role",
            &role,
            "--s3-bucket",
            bucket,
            "--message-format",
            "json",
        ],
    );
    completed.assert_success();
    assert_eq!(
        actions(&json_of(&completed)),
        vec![
            r#"layer "recorder" "x86_64" "reuse""#,
            r#"layer "tools-layer" "x86_64" "reuse""#,
            r#"function "tiny" "arm64" ["create"]"#,
            r#"function "tool-user" "x86_64" ["create"]"#,
        ]
    );
    let done = state(region);
    assert_eq!(done["layers"], half["layers"]);
    assert_eq!(
        done["functions"]["tool-user"]["Layers"],
        json!([
            half["layers"]["tools-layer"][0]["Arn"],
            half["layers"]["recorder"][0]["Arn"]
        ])
    );
}

#[test]
fn missing_credentials_and_region_are_reported_before_any_call() {
    let packed = base();
    let mut command = deploy_command(&packed.workspace, &packed.out);
    command.env("AWS_REGION", "us-west-2");
    let no_credentials = run(command);
    no_credentials.assert_code(12);
    assert!(
        no_credentials
            .stderr
            .contains("no AWS credentials were found"),
        "{}",
        no_credentials.stderr
    );
    assert!(
        no_credentials.stderr.contains("help: run `aws configure`"),
        "{}",
        no_credentials.stderr
    );

    let mut command = deploy_command(&packed.workspace, &packed.out);
    command
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    let no_region = run(command);
    no_region.assert_code(12);
    assert!(
        no_region.stderr.contains("no AWS region is configured"),
        "{}",
        no_region.stderr
    );
    assert!(
        no_region.stderr.contains("help: set AWS_REGION"),
        "{}",
        no_region.stderr
    );
}

#[test]
fn a_changed_zip_or_a_path_leaving_the_output_directory_is_refused_before_any_call() {
    let packed = base();
    let out = tempfile::tempdir().unwrap();
    common::copy_tree(&packed.out, out.path());
    let deploy = |out: &std::path::Path| {
        // No credentials and no region: a refusal must come before AWS is needed at all.
        run(deploy_command(&packed.workspace, out))
    };
    // A ZIP that is not what was packed.
    let zip = out.path().join("x86_64/tool-user.zip");
    let mut bytes = std::fs::read(&zip).unwrap();
    bytes.push(0);
    std::fs::write(&zip, &bytes).unwrap();
    let changed = deploy(out.path());
    changed.assert_code(3);
    assert!(
        changed.stderr.contains("changed since it was packed"),
        "{}",
        changed.stderr
    );
    assert!(
        changed.stderr.contains("help: pack again"),
        "{}",
        changed.stderr
    );

    // A manifest path leading out of the output directory.
    let manifest_path = out.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(
        &manifest_path,
        text.replace("\"x86_64/tool-user.zip\"", "\"../tool-user.zip\""),
    )
    .unwrap();
    let escaped = deploy(out.path());
    escaped.assert_code(3);
    assert!(
        escaped
            .stderr
            .contains("has path `../tool-user.zip`, which is refused"),
        "{}",
        escaped.stderr
    );
}

#[test]
fn a_role_lambda_cannot_assume_is_named_with_what_was_done_before() {
    let _moto = shared();
    let region = "sa-east-1";
    let packed = base();
    let missing = "arn:aws:iam::123456789012:role/no-such-role";
    let failed = packed.deploy(region, &["--iam-role", missing]);
    failed.assert_code(12);
    assert!(
        failed
            .stderr
            .contains("CreateFunction on `tool-user` failed: InvalidParameterValueException"),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains("help: pass an existing execution role"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("done before the failure: published"),
        "{}",
        failed.stderr
    );
    let account = state(region);
    assert!(account["functions"]["tool-user"].is_null(), "{account}");
}
