//! The deploy tests' fixture and readers: `fixtures/verify-functions` copied and packed with
//! `-p tiny-fn`, `cargo lambda-pack deploy` run against the moto server with nothing of this
//! machine's AWS settings, and the account read back with boto3.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::fault_proxy::FaultProxy;
use super::moto::{boto, moto};
use super::{
    Run, fixtures_dir, lambda_pack, manifest, run, sync_tree, verify_functions_target_dir,
};

pub fn boto_role(region: &str) -> String {
    boto(region, json!({"op": "role", "name": "lambda-exec"}))["arn"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn state(region: &str) -> Value {
    boto(
        region,
        json!({"op": "state", "functions": ["tiny", "tool-user"], "layers": ["tools-layer", "recorder"]}),
    )
}

const PACK_ARGS: [&str; 7] = [
    "--compiler",
    "cargo",
    "--profile",
    "dev",
    "--locked",
    "-p",
    "tiny-fn",
];

/// Packs share one target directory, whose uplifted binaries each build overwrites, so they take
/// turns.
fn take_turns(pack: impl FnOnce() -> Run) -> Run {
    static PACKING: Mutex<()> = Mutex::new(());
    let _turn = PACKING.lock().unwrap_or_else(|e| e.into_inner());
    pack()
}

/// A private copy of the fixture (changed by some tests), packed into `<copy>/out`.
pub struct Packed {
    pub workspace: PathBuf,
    pub out: PathBuf,
}

impl Packed {
    pub fn copy(name: &str) -> Packed {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("deploy")
            .join(name);
        let _ = std::fs::remove_dir_all(&root);
        let workspace = root.join("workspace");
        sync_tree(&fixtures_dir().join("verify-functions"), &workspace);
        Packed {
            workspace,
            out: root.join("out"),
        }
    }

    /// Packs `-p tiny-fn` (which brings in what it attaches).
    pub fn pack(&self) {
        let mut command = lambda_pack();
        command
            .args(PACK_ARGS)
            .arg("--target-dir")
            .arg(verify_functions_target_dir());
        command
            .arg("--out-dir")
            .arg(&self.out)
            .current_dir(&self.workspace);
        take_turns(|| run(command)).assert_success();
    }

    /// `deploy --build` with the pack's flags.
    pub fn build_and_deploy(&self, region: &str, args: &[&str]) -> Run {
        let mut all = vec!["--build"];
        all.extend(PACK_ARGS);
        let target_dir = verify_functions_target_dir();
        all.extend(["--target-dir", target_dir.to_str().unwrap()]);
        all.extend(args);
        take_turns(|| self.deploy(region, &all))
    }

    pub fn manifest(&self) -> Value {
        manifest(&self.out)
    }

    pub fn code_sha256(&self, name: &str) -> String {
        super::artifact(&self.manifest(), name)["code_sha256"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn deploy(&self, region: &str, args: &[&str]) -> Run {
        self.deploy_with(
            region,
            args,
            &[
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
            ],
        )
    }

    pub fn deploy_with(&self, region: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = deploy_command(&self.workspace, &self.out);
        command
            .args(args)
            .env("AWS_ENDPOINT_URL", &moto().endpoint)
            .env("AWS_REGION", region);
        for (key, value) in env {
            command.env(key, value);
        }
        run(command)
    }

    pub fn edit(&self, relative: &str, edit: impl FnOnce(String) -> String) {
        let path = self.workspace.join(relative);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(text)).unwrap();
    }
}

/// `cargo lambda-pack deploy --out-dir <out>` with no AWS settings from this machine.
pub fn deploy_command(workspace: &Path, out: &Path) -> Command {
    let mut command = lambda_pack();
    command
        .arg("deploy")
        .arg("--out-dir")
        .arg(out)
        .current_dir(workspace)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        // Never ask an instance metadata service: only loopback addresses in tests.
        .env("AWS_EC2_METADATA_DISABLED", "true");
    // As for the pack: the fixture builds for the targets the metadata names.
    command
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    for key in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ] {
        command.env_remove(key);
    }
    command
}

/// The fixture packed once, unchanged, for the tests that do not change it.
pub fn base() -> &'static Packed {
    static BASE: OnceLock<Packed> = OnceLock::new();
    BASE.get_or_init(|| {
        let packed = Packed::copy("base");
        packed.pack();
        packed
    })
}

pub fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}):\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        )
    })
}

/// The actions of a plan document (`--dry-run`) or a deploy document, as comparable lines.
pub fn actions(document: &Value) -> Vec<String> {
    let mut layers: Vec<String> = document["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            format!(
                "layer {} {} {}",
                layer["name"], layer["arch"], layer["action"]
            )
        })
        .collect();
    let mut functions: Vec<String> = document["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|function| {
            format!(
                "function {} {} {}",
                function["function_name"], function["arch"], function["actions"]
            )
        })
        .collect();
    layers.sort();
    functions.sort();
    layers.extend(functions);
    layers
}

/// Bytes no compressor can shrink (xorshift), so the ZIP ends up about as large as they are.
pub fn incompressible(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// The fixture with a 53 MB incompressible include on `tool-user`, whose ZIP is then flagged
/// `upload: "s3"`; packed once, deployed by two tests into their own regions.
pub fn big() -> &'static Packed {
    static BIG: OnceLock<Packed> = OnceLock::new();
    BIG.get_or_init(|| {
        let packed = Packed::copy("s3");
        std::fs::write(
            packed.workspace.join("tiny-fn/big.bin"),
            incompressible(53 * 1024 * 1024),
        )
        .unwrap();
        packed.edit("tiny-fn/Cargo.toml", |text| {
            text.replace(
                "[package.metadata.lambda-pack.bin.tool-user]\n",
                "[package.metadata.lambda-pack.bin.tool-user]\ninclude = [\"big.bin\"]\n",
            )
        });
        packed.pack();
        packed
    })
}

/// A copy of the base pack's output directory, its manifest edited by `edit` (which may change
/// files too), deployed from the base workspace.
pub fn edited_copy(edit: impl FnOnce(&Path, &mut Value)) -> (tempfile::TempDir, Packed) {
    let dir = tempfile::tempdir().unwrap();
    super::copy_tree(&base().out, dir.path());
    let path = dir.path().join("manifest.json");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(dir.path(), &mut manifest);
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    let packed = Packed {
        workspace: base().workspace.clone(),
        out: dir.path().to_path_buf(),
    };
    (dir, packed)
}

/// The manifest entry named `name`, to edit.
pub fn entry_mut<'a>(manifest: &'a mut Value, name: &str) -> &'a mut Value {
    manifest["artifacts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no artifact {name}"))
}

/// The SHA-256 of every file under `dir` but the tool's lock files, to show that a refused
/// deploy left the output directory byte-identical.
pub fn hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.file_name().to_string_lossy().starts_with(".lambda-pack"))
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            (
                e.path().to_path_buf(),
                Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            )
        })
        .collect()
}

/// A fault proxy in front of this test binary's moto server, and the endpoint to give the tool.
pub fn proxy_to_moto() -> (FaultProxy, String) {
    let proxy = FaultProxy::start(moto().endpoint.strip_prefix("http://").unwrap());
    let endpoint = format!("http://{}", proxy.addr);
    (proxy, endpoint)
}

/// boto3 reads and writes the settings tests need beyond `moto.rs`'s (tags, ephemeral storage,
/// layer descriptions, functions made by others).
const BOTO_SETTINGS: &str = r##"
import io, json, sys, zipfile
import boto3
cmd = json.loads(sys.argv[1])
op = cmd["op"]
lam = boto3.client("lambda")
out = {}
if op == "function":
    try:
        got = lam.get_function(FunctionName=cmd["name"])
    except lam.exceptions.ResourceNotFoundException:
        got = None
    if got is not None:
        c = got["Configuration"]
        out = {"Tags": lam.list_tags(Resource=c["FunctionArn"])["Tags"], "EphemeralStorage": c.get("EphemeralStorage"),
               "MemorySize": c.get("MemorySize"), "FunctionArn": c["FunctionArn"]}
elif op == "create":
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, "#!/bin/sh\n")
    out["arn"] = lam.create_function(FunctionName=cmd["name"], Role=cmd["role"], Runtime="provided.al2023", Handler="bootstrap",
        Code={"ZipFile": data.getvalue()}, Tags=cmd.get("tags", {}))["FunctionArn"]
elif op == "tag":
    lam.tag_resource(Resource=cmd["arn"], Tags=cmd["tags"])
elif op == "delete":
    lam.delete_function(FunctionName=cmd["name"])
elif op == "publish":
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        z.writestr("bin/tool", cmd["content"])
    v = lam.publish_layer_version(LayerName=cmd["name"], Description=cmd["description"], Content={"ZipFile": data.getvalue()},
        CompatibleArchitectures=["x86_64"])
    out = {"arn": v["LayerVersionArn"], "version": v["Version"]}
elif op == "url":
    try:
        c = lam.get_function_url_config(FunctionName=cmd["name"])
        out = {"FunctionUrl": c["FunctionUrl"], "AuthType": c["AuthType"], "InvokeMode": c.get("InvokeMode")}
    except lam.exceptions.ResourceNotFoundException:
        out = {}
    try:
        policy = json.loads(lam.get_policy(FunctionName=cmd["name"])["Policy"])
        out["Sids"] = sorted(s["Sid"] for s in policy["Statement"])
    except lam.exceptions.ResourceNotFoundException:
        out["Sids"] = []
elif op == "make_url":
    out = {"FunctionUrl": lam.create_function_url_config(FunctionName=cmd["name"], AuthType="AWS_IAM")["FunctionUrl"]}
elif op == "layers":
    for name in cmd["names"]:
        out[name] = [{"Version": v["Version"], "Description": v.get("Description", "")}
                     for v in lam.list_layer_versions(LayerName=name)["LayerVersions"]]
print(json.dumps(out))
"##;

pub fn boto_settings(region: &str, command: Value) -> Value {
    super::moto::run_boto_script(BOTO_SETTINGS, region, command)
}

/// The requests of `proxy`'s log that change something (not GET or HEAD).
pub fn writes(proxy: &FaultProxy) -> Vec<String> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET ") && !r.starts_with("HEAD "))
        .collect()
}
