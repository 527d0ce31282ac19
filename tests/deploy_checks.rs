//! `cargo lambda-pack deploy` does not trust the manifest, and deploys of one layer from two
//! output directories converge. Against moto in server mode behind a loopback proxy
//! (`common/fault_proxy.rs`) that logs every request, so "no AWS call was made" is what the
//! server side saw; the account is read back with boto3. The workspace is the one
//! `tests/deploy.rs` deploys (`fixtures/verify-functions` packed with `-p tiny-fn`); each test
//! works on copies of its output directory.

mod common;

use std::path::Path;
use std::time::Duration;

use common::deploy::{
    Packed, base, boto_role as role, edited_copy, entry_mut, hashes, proxy_to_moto, state,
};
use common::fault_proxy::{Fault, Rule};
use common::moto::shared;
use serde_json::{Value, json};

#[test]
fn what_the_manifest_should_not_hold_is_refused_before_any_call() {
    let _moto = shared();
    let region = "us-west-1";
    let (proxy, endpoint) = proxy_to_moto();
    let deploy = |packed: &Packed, args: &[&str]| {
        packed.deploy_with(
            region,
            args,
            &[
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_ENDPOINT_URL", &endpoint),
            ],
        )
    };
    // The proxy sees what a deploy asks: an untouched copy's dry run reads the account.
    let (_untouched_dir, untouched) = edited_copy(|_, _| {});
    deploy(&untouched, &["--dry-run"]).assert_success();
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.contains("/functions/tool-user")),
        "{:?}",
        proxy.requests()
    );

    let five_kb = json!({"STAGE": "dev", "BIG": "x".repeat(5 * 1024)});
    type Edit = Box<dyn FnOnce(&Path, &mut Value)>;
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            // Another valid ZIP in place of tool-user's, and only `sha256` (and the size) edited
            // to match it: the CodeSha256 the plan compares is the file's, not the manifest's.
            "swapped ZIP",
            Box::new(|out: &Path, manifest: &mut Value| {
                let tiny = entry_mut(manifest, "tiny").clone();
                std::fs::copy(out.join("arm64/tiny.zip"), out.join("x86_64/tool-user.zip"))
                    .unwrap();
                let tool_user = entry_mut(manifest, "tool-user");
                tool_user["sha256"] = tiny["sha256"].clone();
                tool_user["size_zipped"] = tiny["size_zipped"].clone();
            }),
            vec![
                "x86_64/tool-user.zip` (tool-user x86_64) changed since it was packed: its CodeSha256 is",
                "nothing was sent to AWS",
                "help: pack again",
            ],
        ),
        (
            "5 KB environment",
            Box::new(move |_: &Path, manifest: &mut Value| {
                entry_mut(manifest, "tool-user")["env"] = five_kb;
            }),
            vec![
                "function `tool-user` (x86_64) in `",
                "manifest.json` cannot be deployed: its environment: the variables take 5144 bytes as Lambda measures them (the JSON object {\"KEY\":\"value\",...}); Lambda allows 4096 bytes for all keys and values together",
                "help: the manifest is written by the pack",
            ],
        ),
        (
            "handler",
            Box::new(|_: &Path, manifest: &mut Value| {
                entry_mut(manifest, "tool-user")["handler"] = json!("a handler ".repeat(21));
            }),
            vec![
                "its handler `a handler a handler",
                "it has 210 characters; Lambda's Handler is 1 to 128 characters without whitespace",
            ],
        ),
        (
            "function name",
            Box::new(|_: &Path, manifest: &mut Value| {
                entry_mut(manifest, "tiny")["name"] = json!("bad name!/../x");
            }),
            vec![
                "function `bad name!/../x` (arm64) in `",
                "`bad name!/../x` is not a valid Lambda function name (it contains \" !/../\"): function names are 1 to 64 characters",
            ],
        ),
        (
            "layer name",
            Box::new(|_: &Path, manifest: &mut Value| {
                entry_mut(manifest, "tools-layer")["name"] = json!("tools layer");
                entry_mut(manifest, "tool-user")["layers"] = json!(["tools layer", "recorder"]);
            }),
            vec![
                "layer `tools layer` (x86_64) in `",
                "is not a valid Lambda layer name",
            ],
        ),
    ];
    let reserved = ["AWS_REGION", "_HANDLER", "AWS_LAMBDA_RUNTIME_API"].map(|key| {
        let edit: Edit = Box::new(move |_: &Path, manifest: &mut Value| {
            entry_mut(manifest, "tool-user")["env"][key] = json!("x");
        });
        (
            key,
            edit,
            vec![
                "function `tool-user` (x86_64) in `",
                "is reserved: Lambda sets it itself",
            ],
        )
    });
    for (case, edit, wanted) in cases.into_iter().chain(reserved) {
        let (dir, packed) = edited_copy(edit);
        let before = hashes(dir.path());
        proxy.clear();
        let refused = deploy(&packed, &["--iam-role", "arn:aws:iam::123456789012:role/x"]);
        refused.assert_code(3);
        for text in wanted {
            assert!(
                refused.stderr.contains(text),
                "{case}: `{text}` in\n{}",
                refused.stderr
            );
        }
        assert_eq!(
            proxy.requests(),
            Vec::<String>::new(),
            "{case}: AWS was called"
        );
        assert_eq!(
            hashes(dir.path()),
            before,
            "{case}: the output directory changed"
        );
    }

    // Memory and timeout come from the metadata, which is read before anything else: the range
    // is in the message.
    let workspace = Packed::copy("ranges");
    for (key, value, wanted) in [
        (
            "memory",
            "20000",
            "invalid value 20000 for key `memory` in [package.metadata.lambda-pack.bin.tiny] in `",
        ),
        (
            "timeout",
            "0",
            "invalid value 0 for key `timeout` in [package.metadata.lambda-pack.bin.tiny] in `",
        ),
    ] {
        let range = if key == "memory" {
            "Lambda's MemorySize is a whole number of MB from 128 to 10240"
        } else {
            "Lambda's Timeout is a whole number of seconds from 1 to 900"
        };
        workspace.edit("tiny-fn/Cargo.toml", |text| {
            let clean: String = text
                .lines()
                .filter(|l| !l.starts_with("memory =") && !l.starts_with("timeout ="))
                .map(|l| format!("{l}\n"))
                .collect();
            clean.replace(
                "[package.metadata.lambda-pack.bin.tiny]\n",
                &format!("[package.metadata.lambda-pack.bin.tiny]\n{key} = {value}\n"),
            )
        });
        let packed = Packed {
            workspace: workspace.workspace.clone(),
            out: untouched.out.clone(),
        };
        proxy.clear();
        let refused = deploy(&packed, &[]);
        refused.assert_code(3);
        assert!(refused.stderr.contains(wanted), "{}", refused.stderr);
        assert!(refused.stderr.contains(range), "{}", refused.stderr);
        assert_eq!(
            proxy.requests(),
            Vec::<String>::new(),
            "{key}: AWS was called"
        );
    }
    let account = state(region);
    assert!(account["functions"]["tool-user"].is_null(), "{account}");
    assert_eq!(account["layers"]["tools-layer"], json!([]), "{account}");
}

#[test]
fn two_deploys_of_one_layer_from_two_output_directories_leave_one_version() {
    let _moto = shared();
    let region = "ap-southeast-2";
    let role = role(region);
    let (proxy, endpoint) = proxy_to_moto();
    // Each PublishLayerVersion is held 3 s before it goes on, so both runs have read the
    // account (no version yet) before either publishes: both publish, as two CI runners would.
    proxy.inject(Rule::new(
        "POST",
        "/versions",
        Fault::Delay(Duration::from_secs(3)),
        4,
    ));
    let (_a_dir, a) = edited_copy(|_, _| {});
    let (_b_dir, b) = edited_copy(|_, _| {});
    let deploy = |packed: &Packed| {
        packed.deploy_with(
            region,
            &["--iam-role", &role],
            &[
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_ENDPOINT_URL", &endpoint),
            ],
        )
    };
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| deploy(&a));
        let second = scope.spawn(|| deploy(&b));
        (first.join().unwrap(), second.join().unwrap())
    });
    first.assert_success();
    second.assert_success();
    let publishes = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST ") && r.ends_with("/versions"))
        .count();
    assert_eq!(
        publishes,
        4,
        "both runs published both layers: {:?}",
        proxy.requests()
    );
    let stderr = format!("{}{}", first.stderr, second.stderr);
    for layer in ["tools-layer", "recorder"] {
        let said =
            format!("note: layer {layer} (x86_64): another deploy published the same content");
        assert_eq!(stderr.matches(&said).count(), 1, "{said} in:\n{stderr}");
    }
    assert!(
        stderr.contains("kept version 1, deleted this deploy's version 2"),
        "{stderr}"
    );

    // Read back with boto3: one version of each layer, the first, and the function uses them.
    let account = state(region);
    for layer in ["tools-layer", "recorder"] {
        let versions = account["layers"][layer].as_array().unwrap();
        assert_eq!(versions.len(), 1, "{layer}: {account}");
        assert_eq!(versions[0]["Version"], json!(1), "{account}");
        assert_eq!(
            versions[0]["CodeSha256"],
            json!(base().code_sha256(layer)),
            "{account}"
        );
    }
    assert_eq!(
        account["functions"]["tool-user"]["Layers"],
        json!([
            account["layers"]["tools-layer"][0]["Arn"],
            account["layers"]["recorder"][0]["Arn"]
        ]),
        "{account}"
    );
    // And a third run finds nothing to do.
    proxy.clear();
    let again = deploy(&a);
    again.assert_success();
    assert!(
        again.stderr.contains("nothing to change"),
        "{}",
        again.stderr
    );
}
