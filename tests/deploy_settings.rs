//! `deploy`'s tags and ownership, `--prune`, ephemeral storage, Managed Instances and tenancy,
//! against moto (started once for this test binary), through the fault proxy, whose request log
//! counts the write calls and whose recorded bodies show what was sent where moto keeps nothing
//! (CapacityProviderConfig, TenancyConfig). Read back with boto3.
//!
//! The workspace is `fixtures/verify-functions` packed with `-p tiny-fn` (functions `tiny` and
//! `tool-user`, the layers `tools-layer` and `recorder`), copied per test; the workspace's id in
//! the ownership tag is its root directory's name, `workspace`.

mod common;

use common::deploy::{Packed, boto_role as role, boto_settings, json_of, proxy_to_moto, writes};
use common::moto::shared;
use serde_json::{Value, json};

const OWNER: &str = "lambda-pack:workspace";

fn function(region: &str, name: &str) -> Value {
    boto_settings(region, json!({"op": "function", "name": name}))
}

/// The latest version of each layer of the fixture says, in its description, that the workspace
/// `id` published it.
fn assert_layers_owned_by(region: &str, id: &str) {
    let layers = boto_settings(
        region,
        json!({"op": "layers", "names": ["tools-layer", "recorder"]}),
    );
    for name in ["tools-layer", "recorder"] {
        let description = layers[name][0]["Description"].as_str().unwrap();
        assert!(description.ends_with(&format!(" {OWNER}={id}")), "{layers}");
    }
}

/// Adds `lines` to the tables of `tiny-fn/Cargo.toml` (`package` or `bin.<name>`).
fn add_keys(packed: &Packed, table: &str, lines: &str) {
    let header = if table == "package" {
        "[package.metadata.lambda-pack]\n".to_string()
    } else {
        format!("[package.metadata.lambda-pack.{table}]\n")
    };
    packed.edit("tiny-fn/Cargo.toml", |text| {
        assert!(text.contains(&header), "no {header}");
        text.replacen(&header, &format!("{header}{lines}\n"), 1)
    });
}

#[test]
fn tags_and_settings_are_applied_changed_in_place_and_a_second_run_writes_nothing() {
    let _moto = shared();
    let region = "eu-west-3";
    let packed = Packed::copy("settings");
    packed.edit("Cargo.toml", |text| {
        text.replace(
            "[workspace.metadata.lambda-pack]\n",
            "[workspace.metadata.lambda-pack]\ntags = { org = \"shop\", stage = \"dev\" }\n",
        )
    });
    add_keys(
        &packed,
        "package",
        "tags = { team = \"orders\" }\nephemeral_storage = 1024",
    );
    add_keys(
        &packed,
        "bin.tiny",
        "tags = { stage = \"prod\" }\ntenancy = \"per-tenant\"",
    );
    packed.pack();
    let (proxy, endpoint) = proxy_to_moto();
    proxy.record_bodies();
    let role = role(region);
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    packed
        .deploy_with(region, &["--iam-role", &role], &env)
        .assert_success();

    // Tags merged workspace → package → bin, with the ownership tags.
    let tiny = function(region, "tiny");
    assert_eq!(
        tiny["Tags"],
        json!({"org": "shop", "stage": "prod", "team": "orders", OWNER: "workspace",
               "lambda-pack:tags": "org stage team"}),
        "{tiny}"
    );
    assert_eq!(tiny["EphemeralStorage"], json!({"Size": 1024}), "{tiny}");
    let tool_user = function(region, "tool-user");
    assert_eq!(tool_user["Tags"]["stage"], json!("dev"), "{tool_user}");
    assert_eq!(tool_user["Tags"][OWNER], json!("workspace"), "{tool_user}");
    // Layer versions cannot be tagged: their description names the owner.
    assert_layers_owned_by(region, "workspace");
    // moto keeps no TenancyConfig: what was sent, field by field.
    let creates = proxy.json_bodies("POST /2015-03-31/functions");
    let tiny_create = creates
        .iter()
        .find(|b| b["FunctionName"] == "tiny")
        .expect("a CreateFunction for tiny");
    assert_eq!(
        tiny_create["TenancyConfig"],
        json!({"TenantIsolationMode": "PER_TENANT"})
    );
    assert_eq!(tiny_create["EphemeralStorage"], json!({"Size": 1024}));
    assert_eq!(tiny_create["Tags"]["stage"], json!("prod"));
    let tool_user_create = creates
        .iter()
        .find(|b| b["FunctionName"] == "tool-user")
        .expect("a CreateFunction for tool-user");
    assert!(
        tool_user_create.get("TenancyConfig").is_none(),
        "{tool_user_create}"
    );

    // Nothing changed: no write call at all.
    proxy.clear();
    packed
        .deploy_with(region, &["--iam-role", &role], &env)
        .assert_success();
    assert_eq!(
        writes(&proxy),
        Vec::<String>::new(),
        "{:?}",
        proxy.requests()
    );

    // A tag changed and one removed: TagResource and UntagResource on tiny only, nothing else.
    packed.edit("tiny-fn/Cargo.toml", |text| {
        text.replace("tags = { team = \"orders\" }\n", "").replace(
            "tags = { stage = \"prod\" }",
            "tags = { stage = \"staging\" }",
        )
    });
    // A tag someone else set is left alone.
    boto_settings(
        region,
        json!({"op": "tag", "arn": tiny["FunctionArn"], "tags": {"cost": "42"}}),
    );
    proxy.clear();
    let changed = packed.deploy_with(
        region,
        &["--iam-role", &role, "--message-format", "json"],
        &env,
    );
    changed.assert_success();
    let report = json_of(&changed);
    let mut actions: Vec<(String, Value)> = report["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function_name"].as_str().unwrap().to_string(),
                f["actions"].clone(),
            )
        })
        .collect();
    actions.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        actions,
        vec![
            ("tiny".to_string(), json!(["tag", "untag"])),
            ("tool-user".to_string(), json!(["tag", "untag"])),
        ]
    );
    let tiny = function(region, "tiny");
    assert_eq!(
        tiny["Tags"],
        json!({"org": "shop", "stage": "staging", "cost": "42", OWNER: "workspace",
               "lambda-pack:tags": "org stage"}),
        "{tiny}"
    );
    let written = writes(&proxy);
    assert_eq!(written.len(), 4, "{written:?}");
    assert!(
        written.iter().all(|w| w.contains("/2017-03-31/tags/")
            && (w.starts_with("POST ") || w.starts_with("DELETE "))),
        "{written:?}"
    );
    let untagged = written
        .iter()
        .filter(|w| w.starts_with("DELETE "))
        .collect::<Vec<_>>();
    assert!(
        untagged
            .iter()
            .all(|w| w.contains("tagKeys=team") && !w.contains("org")),
        "{untagged:?}"
    );

    // Ephemeral storage changed: sent in UpdateFunctionConfiguration (moto does not apply it).
    packed.edit("tiny-fn/Cargo.toml", |text| {
        text.replace("ephemeral_storage = 1024", "ephemeral_storage = 2048")
    });
    proxy.clear();
    packed
        .deploy_with(region, &["--iam-role", &role], &env)
        .assert_success();
    let updates = proxy.json_bodies("PUT /2015-03-31/functions/tiny/configuration");
    assert_eq!(updates.len(), 1, "{:?}", proxy.requests());
    assert_eq!(updates[0]["EphemeralStorage"], json!({"Size": 2048}));
    // UpdateFunctionConfiguration has no TenancyConfig (Lambda sets it on create only).
    assert!(updates[0].get("TenancyConfig").is_none(), "{}", updates[0]);
}

#[test]
fn managed_instances_settings_are_sent_and_out_of_range_values_refused_before_any_call() {
    let _moto = shared();
    let region = "eu-south-1";
    let packed = Packed::copy("managed");
    packed.pack();
    let (proxy, endpoint) = proxy_to_moto();
    let role = role(region);
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    let provider = "arn:aws:lambda:eu-south-1:123456789012:capacity-provider:fleet";

    // Out of Lambda's ranges: refused naming the key and the range; no call made.
    for (lines, expected) in [
        ("max_concurrency = 1601", "from 1 to 1600"),
        ("ephemeral_storage = 511", "from 512 to 10240"),
        ("memory_per_vcpu = 1.5", "from 2.0 to 8.0"),
        (
            "capacity_provider = \"arn:aws:lambda:eu-south-1:123:capacity-provider:x\"",
            "capacity provider ARN",
        ),
        ("tenancy = \"shared\"", "per-tenant"),
        ("max_concurrency = 4", "no `capacity_provider`"),
    ] {
        let cargo_toml = packed.workspace.join("tiny-fn/Cargo.toml");
        let original = std::fs::read_to_string(&cargo_toml).unwrap();
        add_keys(&packed, "bin.tiny", lines);
        proxy.clear();
        let refused = packed.deploy_with(region, &["--iam-role", &role], &env);
        std::fs::write(&cargo_toml, original).unwrap();
        refused.assert_code(3);
        assert!(
            refused.stderr.contains(expected),
            "{lines}: {}",
            refused.stderr
        );
        assert!(refused.stderr.contains("help:"), "{}", refused.stderr);
        assert_eq!(proxy.requests(), Vec::<String>::new(), "{lines}");
    }

    add_keys(
        &packed,
        "bin.tiny",
        &format!("capacity_provider = \"{provider}\"\nmax_concurrency = 64\nmemory_per_vcpu = 4.0"),
    );
    proxy.record_bodies();
    packed
        .deploy_with(region, &["--iam-role", &role], &env)
        .assert_success();
    let creates = proxy.json_bodies("POST /2015-03-31/functions");
    let tiny = creates
        .iter()
        .find(|b| b["FunctionName"] == "tiny")
        .expect("a CreateFunction for tiny");
    let managed = &tiny["CapacityProviderConfig"]["LambdaManagedInstancesCapacityProviderConfig"];
    assert_eq!(managed["CapacityProviderArn"], json!(provider), "{tiny}");
    assert_eq!(
        managed["PerExecutionEnvironmentMaxConcurrency"],
        json!(64),
        "{tiny}"
    );
    assert_eq!(
        managed["ExecutionEnvironmentMemoryGiBPerVCpu"],
        json!(4.0),
        "{tiny}"
    );
    let tool_user = creates
        .iter()
        .find(|b| b["FunctionName"] == "tool-user")
        .expect("a CreateFunction for tool-user");
    assert!(
        tool_user.get("CapacityProviderConfig").is_none(),
        "{tool_user}"
    );
}

#[test]
fn prune_deletes_only_this_workspaces_functions_and_layer_versions_no_longer_used() {
    let _moto = shared();
    let region = "ca-central-1";
    let packed = Packed::copy("prune");
    packed.pack();
    let role = role(region);
    packed
        .deploy(region, &["--iam-role", &role])
        .assert_success();
    // Functions of others: one untagged, one of another workspace.
    boto_settings(
        region,
        json!({"op": "create", "name": "stray", "role": role}),
    );
    boto_settings(
        region,
        json!({"op": "create", "name": "elsewhere-fn", "role": role, "tags": {OWNER: "elsewhere"}}),
    );
    // `tool-user` is deployed under another name from now on: the manifest no longer lists it.
    add_keys(&packed, "bin.tool-user", "function_name = \"tool-user-v2\"");

    let dry = packed.deploy(
        region,
        &[
            "--iam-role",
            &role,
            "--prune",
            "--dry-run",
            "--message-format",
            "json",
        ],
    );
    dry.assert_success();
    let planned = json_of(&dry);
    let deletions = planned["deletions"].as_array().unwrap();
    assert_eq!(deletions.len(), 1, "{planned}");
    assert_eq!(deletions[0]["kind"], json!("function"));
    assert_eq!(deletions[0]["name"], json!("tool-user"));
    assert!(function(region, "tool-user")["FunctionArn"].is_string());

    let pruned = packed.deploy(region, &["--iam-role", &role, "--prune"]);
    pruned.assert_success();
    assert!(
        pruned.stderr.contains("Deleting function tool-user"),
        "{}",
        pruned.stderr
    );
    assert_eq!(function(region, "tool-user"), json!({}));
    for kept in ["stray", "elsewhere-fn", "tiny", "tool-user-v2"] {
        assert!(
            function(region, kept)["FunctionArn"].is_string(),
            "{kept} was deleted"
        );
    }

    // Layer versions: ours unattached goes with --prune-layers; another's and attached ones stay.
    let description =
        |owner: &str| format!("cargo-lambda-pack tools-layer (x86_64) {OWNER}={owner}");
    let ours = boto_settings(
        region,
        json!({"op": "publish", "name": "tools-layer", "content": "old", "description": description("workspace")}),
    );
    let theirs = boto_settings(
        region,
        json!({"op": "publish", "name": "tools-layer", "content": "theirs", "description": description("elsewhere")}),
    );
    let before = boto_settings(
        region,
        json!({"op": "layers", "names": ["tools-layer", "recorder"]}),
    );
    // Without --prune-layers, no layer version is a candidate.
    let dry = packed.deploy(
        region,
        &["--prune", "--dry-run", "--message-format", "json"],
    );
    dry.assert_success();
    assert_eq!(json_of(&dry)["deletions"], json!([]));
    let dry = packed.deploy(
        region,
        &[
            "--prune",
            "--prune-layers",
            "--dry-run",
            "--message-format",
            "json",
        ],
    );
    dry.assert_success();
    let deletions = json_of(&dry)["deletions"].clone();
    assert_eq!(
        deletions,
        json!([{"kind": "layer-version", "name": "tools-layer", "version": ours["version"],
                "arn": ours["arn"], "reason": deletions[0]["reason"]}]),
    );
    assert_eq!(
        boto_settings(
            region,
            json!({"op": "layers", "names": ["tools-layer", "recorder"]})
        ),
        before,
        "--dry-run changed the account"
    );
    packed
        .deploy(region, &["--prune", "--prune-layers"])
        .assert_success();
    let after = boto_settings(
        region,
        json!({"op": "layers", "names": ["tools-layer", "recorder"]}),
    );
    let versions: Vec<&Value> = after["tools-layer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["Version"])
        .collect();
    assert!(!versions.contains(&&ours["version"]), "{after}");
    assert!(versions.contains(&&theirs["version"]), "{after}");
    assert_eq!(after["tools-layer"].as_array().unwrap().len(), 2, "{after}");
    assert_eq!(after["recorder"], before["recorder"]);
}

#[test]
fn creating_a_provided_al2_function_is_refused_unless_allowed() {
    let _moto = shared();
    let region = "ap-southeast-3";
    let role = role(region);
    let (_dir, packed) = common::deploy::edited_copy(|_, manifest| {
        common::deploy::entry_mut(manifest, "tiny")["runtime"] = json!("provided.al2");
    });
    let refused = packed.deploy(region, &["--iam-role", &role]);
    refused.assert_code(3);
    assert!(
        refused.stderr.contains("`tiny` would be created on provided.al2")
            && refused.stderr.contains("which Lambda deprecated on 2026-07-31")
            && refused.stderr.contains("Lambda blocks creating functions on provided.al2 from 2026-08-31 and updating them from 2026-09-30")
            && refused.stderr.contains("help: pack for provided.al2023 (--runtime provided.al2023), or pass --allow deprecated-runtime"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        function(region, "tiny"),
        json!({}),
        "a refused deploy created it"
    );
    assert_eq!(
        function(region, "tool-user"),
        json!({}),
        "nothing is created"
    );
    // The dry run shows the plan and says the same as a warning.
    let dry = packed.deploy(region, &["--iam-role", &role, "--dry-run"]);
    dry.assert_success();
    assert!(dry.stderr.contains("provided.al2"), "{}", dry.stderr);

    packed
        .deploy(
            region,
            &["--iam-role", &role, "--allow", "deprecated-runtime"],
        )
        .assert_success();
    let state = common::deploy::state(region);
    assert_eq!(state["functions"]["tiny"]["Runtime"], json!("provided.al2"));
    // Existing provided.al2 functions are updated without --allow.
    packed
        .deploy(region, &["--iam-role", &role])
        .assert_success();
}

#[test]
fn a_public_function_url_gets_both_statements_once_is_updated_and_removed_only_when_ours() {
    let _moto = shared();
    let region = "sa-east-1";
    let packed = Packed::copy("url");
    add_keys(&packed, "bin.tiny", "function_url = { auth = \"NONE\" }");
    packed.pack();
    let (proxy, endpoint) = proxy_to_moto();
    proxy.record_bodies();
    let role = role(region);
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    let url = |name: &str| boto_settings(region, json!({"op": "url", "name": name}));
    let first = packed.deploy_with(
        region,
        &["--iam-role", &role, "--message-format", "json"],
        &env,
    );
    first.assert_success();
    let tiny_url = url("tiny");
    assert_eq!(tiny_url["AuthType"], json!("NONE"), "{tiny_url}");
    assert_eq!(
        tiny_url["Sids"],
        json!([
            "lambda-pack-url-invoke-function",
            "lambda-pack-url-invoke-function-url"
        ])
    );
    // The URL is printed and in the JSON report.
    let report = json_of(&first);
    let reported = report["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function_name"] == "tiny")
        .unwrap();
    assert_eq!(reported["function_url"], tiny_url["FunctionUrl"]);
    assert!(
        first
            .stderr
            .contains(tiny_url["FunctionUrl"].as_str().unwrap()),
        "{}",
        first.stderr
    );
    // Both statements, as sent.
    let permissions = proxy.json_bodies("/functions/tiny/policy");
    assert_eq!(permissions.len(), 2, "{permissions:?}");
    let by_action = |action: &str| {
        permissions
            .iter()
            .find(|p| p["Action"] == action)
            .unwrap_or_else(|| panic!("no {action} statement: {permissions:?}"))
            .clone()
    };
    let invoke_url = by_action("lambda:InvokeFunctionUrl");
    assert_eq!(invoke_url["Principal"], json!("*"));
    assert_eq!(invoke_url["FunctionUrlAuthType"], json!("NONE"));
    assert_eq!(
        invoke_url["StatementId"],
        json!("lambda-pack-url-invoke-function-url")
    );
    let invoke = by_action("lambda:InvokeFunction");
    assert_eq!(invoke["Principal"], json!("*"));
    assert_eq!(invoke["InvokedViaFunctionUrl"], json!(true));
    assert_eq!(
        invoke["StatementId"],
        json!("lambda-pack-url-invoke-function")
    );
    // tool-user has no URL; one made by someone else is left alone throughout.
    assert_eq!(url("tool-user"), json!({"Sids": []}));
    let theirs = boto_settings(region, json!({"op": "make_url", "name": "tool-user"}));

    // A second run adds nothing.
    proxy.clear();
    packed
        .deploy_with(region, &["--iam-role", &role], &env)
        .assert_success();
    assert_eq!(writes(&proxy), Vec::<String>::new());

    // Switching auth and invoke mode updates the URL and takes the public statements away.
    packed.edit("tiny-fn/Cargo.toml", |text| {
        text.replace(
            "function_url = { auth = \"NONE\" }",
            "function_url = { auth = \"AWS_IAM\", invoke_mode = \"RESPONSE_STREAM\" }",
        )
    });
    proxy.clear();
    packed
        .deploy_with(region, &["--iam-role", &role], &env)
        .assert_success();
    let updates = proxy.json_bodies("PUT /2021-10-31/functions/tiny/url");
    assert_eq!(updates.len(), 1, "{:?}", proxy.requests());
    assert_eq!(updates[0]["AuthType"], json!("AWS_IAM"));
    assert_eq!(updates[0]["InvokeMode"], json!("RESPONSE_STREAM"));
    let switched = url("tiny");
    assert_eq!(switched["AuthType"], json!("AWS_IAM"));
    assert_eq!(switched["FunctionUrl"], tiny_url["FunctionUrl"]);
    assert_eq!(switched["Sids"], json!([]));

    // Removing the key removes our URL; tool-user's, not ours, stays.
    packed.edit("tiny-fn/Cargo.toml", |text| {
        text.replace(
            "function_url = { auth = \"AWS_IAM\", invoke_mode = \"RESPONSE_STREAM\" }\n",
            "",
        )
    });
    packed
        .deploy_with(region, &["--iam-role", &role], &env)
        .assert_success();
    assert_eq!(url("tiny"), json!({"Sids": []}));
    assert!(
        function(region, "tiny")["Tags"]
            .get("lambda-pack:function-url")
            .is_none()
    );
    assert_eq!(url("tool-user")["FunctionUrl"], theirs["FunctionUrl"]);
}

/// `workspace_id` replaces the directory's name in the ownership tag: two workspaces checked out
/// under the same directory name (both `workspace` here) no longer own each other's functions.
#[test]
fn workspace_id_names_the_owner_in_tags_and_descriptions_and_prune_follows_it() {
    let _moto = shared();
    let region = "eu-north-1";
    let packed = Packed::copy("workspace-id");
    packed.edit("Cargo.toml", |text| {
        text.replace(
            "[workspace.metadata.lambda-pack]\n",
            "[workspace.metadata.lambda-pack]\nworkspace_id = \"shop-eu\"\n",
        )
    });
    packed.pack();
    let role = role(region);
    packed
        .deploy(region, &["--iam-role", &role])
        .assert_success();
    for name in ["tiny", "tool-user"] {
        let found = function(region, name);
        assert_eq!(found["Tags"][OWNER], json!("shop-eu"), "{found}");
    }
    assert_layers_owned_by(region, "shop-eu");

    // A function of another workspace whose directory has the same name, and one of ours that
    // the manifest no longer lists.
    boto_settings(
        region,
        json!({"op": "create", "name": "same-dir-fn", "role": role, "tags": {OWNER: "workspace"}}),
    );
    boto_settings(
        region,
        json!({"op": "create", "name": "ours-gone", "role": role, "tags": {OWNER: "shop-eu"}}),
    );
    let dry = packed.deploy(
        region,
        &["--prune", "--dry-run", "--message-format", "json"],
    );
    dry.assert_success();
    let planned = json_of(&dry);
    let deleted: Vec<&Value> = planned["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["name"])
        .collect();
    assert_eq!(deleted, [&json!("ours-gone")], "{planned}");
    packed.deploy(region, &["--prune"]).assert_success();
    assert_eq!(function(region, "ours-gone"), json!({}));
    for kept in ["same-dir-fn", "tiny", "tool-user"] {
        assert!(
            function(region, kept)["FunctionArn"].is_string(),
            "{kept} was deleted"
        );
    }
}
