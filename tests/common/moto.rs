//! An AWS API emulator for `tests/deploy.rs`: moto in server mode, started once per test binary on
//! a free loopback port, and boto3 (an independent AWS client) to set the account up and read it
//! back. Both come from the virtual environment scripts/setup.sh creates
//! (`$LAMBDA_PACK_MOTO_VENV`, else `~/.cache/lambda-pack-moto`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The moto server of this test binary.
pub struct Moto {
    pub endpoint: String,
    /// Tests hold it shared; the access-denied test holds it alone while IAM is enforced (moto's
    /// switch for that is server-wide).
    pub auth: RwLock<()>,
}

pub fn venv() -> PathBuf {
    match std::env::var_os("LAMBDA_PACK_MOTO_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/lambda-pack-moto")
        }
    }
}

pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let server = venv().join("bin/moto_server");
        assert!(
            server.is_file(),
            "{} is missing: run scripts/setup.sh (it installs moto[server] and boto3)",
            server.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The server is started from a thread that lives as long as the process, with
        // PR_SET_PDEATHSIG: when this test binary ends, the kernel ends the server.
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut command = Command::new(server);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            // Waiting keeps this thread (the server's parent) alive for as long as the server.
            let _ = command.spawn().expect("start moto_server").wait();
        });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server did not listen on 127.0.0.1:{port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            auth: RwLock::new(()),
        }
    })
}

/// A test that uses the server holds this for its whole run.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    moto().auth.read().unwrap_or_else(|e| e.into_inner())
}

/// boto3, run from the venv: one operation, its result as JSON.
pub const BOTO: &str = r#"
import hashlib, json, sys, urllib.request
import boto3
cmd = json.loads(sys.argv[1])
op = cmd["op"]
lam = boto3.client("lambda")
out = {}
if op == "role":
    iam = boto3.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        out["arn"] = iam.create_role(RoleName=cmd["name"], AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        out["arn"] = iam.get_role(RoleName=cmd["name"])["Role"]["Arn"]
elif op == "state":
    out["functions"] = {}
    for name in cmd["functions"]:
        try:
            c = lam.get_function(FunctionName=name)["Configuration"]
        except lam.exceptions.ResourceNotFoundException:
            out["functions"][name] = None
            continue
        f = {k: c.get(k) for k in ["FunctionArn", "CodeSha256", "Architectures", "Runtime", "Handler", "LastModified", "MemorySize", "Timeout", "PackageType"]}
        f["Layers"] = [l["Arn"] for l in c.get("Layers", [])]
        f["Environment"] = c.get("Environment", {}).get("Variables", {})
        out["functions"][name] = f
    out["layers"] = {}
    for name in cmd["layers"]:
        versions = []
        for v in lam.list_layer_versions(LayerName=name)["LayerVersions"]:
            full = lam.get_layer_version(LayerName=name, VersionNumber=v["Version"])
            versions.append({"Arn": full["LayerVersionArn"], "Version": full["Version"], "CodeSha256": full["Content"]["CodeSha256"],
                             "CompatibleArchitectures": full.get("CompatibleArchitectures", []), "CompatibleRuntimes": full.get("CompatibleRuntimes", [])})
        out["layers"][name] = sorted(versions, key=lambda v: v["Version"])
elif op == "publish_layer":
    # A layer published outside the workspace (another team's, or AWS's): one small file.
    import io, zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("share/" + cmd["name"] + ".txt", "published elsewhere\n")
    out["arn"] = lam.publish_layer_version(LayerName=cmd["name"], Content={"ZipFile": buf.getvalue()},
                                           CompatibleArchitectures=[cmd["arch"]])["LayerVersionArn"]
elif op == "alias":
    a = lam.get_alias(FunctionName=cmd["function"], Name=cmd["name"])
    out = {"FunctionVersion": a["FunctionVersion"]}
    out["versions"] = [v["Version"] for v in lam.list_versions_by_function(FunctionName=cmd["function"])["Versions"]]
elif op == "bucket":
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=cmd["name"], CreateBucketConfiguration={"LocationConstraint": cmd["region"]})
elif op == "objects":
    s3 = boto3.client("s3")
    for o in s3.list_objects_v2(Bucket=cmd["name"]).get("Contents", []):
        body = s3.get_object(Bucket=cmd["name"], Key=o["Key"])["Body"].read()
        out[o["Key"]] = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
elif op == "restricted_user":
    iam = boto3.client("iam")
    iam.create_user(UserName=cmd["name"])
    key = iam.create_access_key(UserName=cmd["name"])["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": cmd["allow"], "Resource": "*"}]}
    iam.put_user_policy(UserName=cmd["name"], PolicyName="deploy", PolicyDocument=json.dumps(policy))
    out = {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
elif op == "enforce_iam":
    # moto's own switch: after this many requests, every request is authenticated and authorized.
    body = ("inf" if cmd["after"] is None else str(cmd["after"])).encode()
    urllib.request.urlopen(urllib.request.Request(cmd["endpoint"] + "/moto-api/reset-auth", data=body, method="POST", headers={"Content-Type": "text/plain"})).read()
print(json.dumps(out))
"#;

pub fn boto(region: &str, command: Value) -> Value {
    run_boto_script(BOTO, region, command)
}

/// Runs the Python `script` with boto3 against moto in `region`, `command` (JSON) its argument;
/// the JSON it prints.
pub fn run_boto_script(script: &str, region: &str, command: Value) -> Value {
    let output = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(command.to_string())
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", region)
        .env("AWS_REGION", region)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .output()
        .expect("run boto3");
    assert!(
        output.status.success(),
        "boto3 {command} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("boto3 printed JSON")
}
