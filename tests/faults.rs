//! Faults of the network, injected by a proxy (`common/fault_proxy.rs`) between the tool and the
//! real servers: the suite's registry for pulls and pushes, moto for deploys. Each fault either
//! is recovered by a retry that says so on stderr, or ends in a typed error naming the remote and
//! the step, with nothing half-published, and a next run that completes. Also the races: two
//! pushes, two deploys, a merge while a shard is packing.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::deploy::{Packed, boto_role, state};
use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::moto::{moto, shared};
use common::registry::registry;
use common::surfaces::*;
use common::{Fixture, Run, lambda_pack, manifest, run};
use serde_json::Value;

const PACK: [&str; 4] = ["--compiler", "cargo", "-p", "fn-x86"];
/// A stalled read is given up after this many seconds in these tests (the default is 120).
const TIMEOUT: (&str, &str) = ("LAMBDA_PACK_REGISTRY_TIMEOUT", "2");

fn image_digest(fixture: &Fixture) -> String {
    common::artifact(&manifest(&fixture.out_dir()), "fn-x86")["image_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The largest blob of the image's base (its biggest layer), by its cache file.
fn largest_cached_blob(fixture: &Fixture) -> String {
    let blobs = fixture
        .path()
        .join("target/lambda-pack-cache/oci/blobs/sha256");
    let largest = std::fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap();
    format!("sha256:{}", largest.file_name().to_string_lossy())
}

fn forget_cache(fixture: &Fixture) {
    let _ = std::fs::remove_dir_all(fixture.path().join("target/lambda-pack-cache/oci"));
}

fn assert_retried(run: &Run, step: &str, attempt: &str) {
    let said = run
        .stderr
        .lines()
        .any(|l| l.starts_with("warning: ") && l.contains(step) && l.contains(attempt));
    assert!(
        said,
        "a retry of `{step}` ({attempt}) is said:\n{}",
        run.stderr
    );
}

#[test]
fn pull_faults_are_retried_and_a_lasting_one_names_the_registry_and_the_step() {
    let registry = registry();
    let proxy = FaultProxy::start(&registry.host);
    let base = format!("{}/lambda/provided:al2023-x86_64", proxy.addr);
    let fixture = image_fixture(&base, None);
    fixture.pack(&PACK).assert_success();
    let reference = image_digest(&fixture);
    let layer = largest_cached_blob(&fixture);
    let blob_path = format!("/blobs/{layer}");
    let faults = [
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Status(429),
        Fault::CutAfter(4096),
        Fault::Stall(Duration::from_secs(5)),
        Fault::Truncate(1000),
        Fault::CorruptResponse,
    ];
    for fault in faults {
        forget_cache(&fixture);
        proxy.clear();
        proxy.inject(Rule::new("GET", &blob_path, fault.clone(), 1));
        let run = fixture.pack_with_env(&PACK, &[TIMEOUT]);
        run.assert_success();
        assert_eq!(
            proxy.fired().len(),
            1,
            "{fault:?} fired once: {:?}",
            proxy.fired()
        );
        assert_retried(
            &run,
            &format!("while pulling blob {layer}"),
            "(attempt 2/5)",
        );
        assert!(
            run.stderr.contains(&format!("registry {}", proxy.addr)),
            "{}",
            run.stderr
        );
        assert_eq!(
            image_digest(&fixture),
            reference,
            "{fault:?}: the same image"
        );
        let cached = fixture
            .path()
            .join("target/lambda-pack-cache/oci/blobs/sha256")
            .join(layer.strip_prefix("sha256:").unwrap());
        assert_eq!(
            format!("sha256:{}", sha256_file(&cached)),
            layer,
            "{fault:?}: the cached blob is whole"
        );
    }

    // A registry that keeps failing: a typed error after the attempts, nothing written.
    forget_cache(&fixture);
    proxy.clear();
    proxy.inject(Rule::new("GET", &blob_path, Fault::Status(503), 100));
    let out_before = std::fs::read(fixture.out_dir().join("manifest.json")).unwrap();
    fixture.write(
        "fn-x86/assets/readme.txt",
        "changed: the image would change\n",
    );
    let run = fixture.pack_with_env(&PACK, &[TIMEOUT, ("LAMBDA_PACK_REGISTRY_ATTEMPTS", "2")]);
    run.assert_code(11);
    assert_eq!(proxy.fired().len(), 2, "{:?}", proxy.fired());
    assert!(
        run.stderr.contains(&format!(
            "error: registry {} failed for `{base}`",
            proxy.addr
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("while pulling blob {layer} (2 attempt(s))")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("help: the registry or the network failed; run again"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(fixture.out_dir().join("manifest.json")).unwrap(),
        out_before
    );
    let cache = fixture.path().join("target/lambda-pack-cache/oci");
    assert!(
        !cache
            .join("blobs/sha256")
            .join(layer.strip_prefix("sha256:").unwrap())
            .exists(),
        "no blob is kept from a failed download"
    );
    assert_eq!(temporaries(&cache), Vec::<String>::new());
    // The next run completes.
    proxy.clear();
    fixture.pack_with_env(&PACK, &[TIMEOUT]).assert_success();
    assert_out_consistent(&fixture.out_dir());
    assert_ne!(
        image_digest(&fixture),
        reference,
        "the changed include is in"
    );
}

#[test]
fn push_faults_are_retried_and_never_leave_a_manifest_without_its_blobs() {
    let registry = registry();
    let proxy = FaultProxy::start(&registry.host);
    let fixture = image_fixture(&registry.base("x86_64"), None);
    fixture.pack(&PACK).assert_success();
    let digest = image_digest(&fixture);
    let mut push = vec!["--push"];
    push.extend(PACK);
    let cases = [
        (
            "PATCH",
            "/blobs/uploads/",
            Fault::Status(500),
            "while uploading blob",
        ),
        (
            "PUT",
            "/manifests/",
            Fault::Status(503),
            "while pushing the manifest",
        ),
        (
            "HEAD",
            "/blobs/sha256:",
            Fault::Status(429),
            "while asking for blob",
        ),
        (
            "POST",
            "/blobs/uploads/",
            Fault::Status(502),
            "while uploading blob",
        ),
        (
            "PATCH",
            "/blobs/uploads/",
            Fault::CutAfter(10),
            "while uploading blob",
        ),
        (
            "PUT",
            "/blobs/uploads/",
            Fault::Stall(Duration::from_secs(5)),
            "while uploading blob",
        ),
        (
            "PATCH",
            "/blobs/uploads/",
            Fault::CorruptRequest,
            "while uploading blob",
        ),
        (
            "PUT",
            "/blobs/uploads/",
            Fault::Status(500),
            "while uploading blob",
        ),
    ];
    for (round, (method, path, fault, step)) in cases.into_iter().enumerate() {
        let repository = format!("faults/push-{round}");
        set_repository(&fixture, &format!("{}/{repository}", proxy.addr));
        proxy.clear();
        proxy.inject(Rule::new(method, path, fault.clone(), 1));
        let run = fixture.pack_with_env(&push, &[TIMEOUT]);
        run.assert_success();
        assert_eq!(
            proxy.fired().len(),
            1,
            "{fault:?} fired once: {:?}",
            proxy.fired()
        );
        assert_retried(&run, step, "(attempt 2/5)");
        let read = assert_registry_consistent(&registry.host, &repository);
        assert_eq!(
            read["tags"]["0.1.0-x86_64"],
            digest.as_str(),
            "{fault:?}: {read}"
        );
        let entry = common::artifact(&manifest(&fixture.out_dir()), "fn-x86").clone();
        assert_eq!(
            entry["image_uri"],
            format!("{}/{repository}@{digest}", proxy.addr),
            "{fault:?}"
        );
    }

    // A manifest upload that keeps failing: the blobs may be there, no manifest is, the
    // output directory is as it was; the next run publishes it.
    let repository = "faults/push-lasting";
    set_repository(&fixture, &format!("{}/{repository}", proxy.addr));
    proxy.clear();
    proxy.inject(Rule::new("PUT", "/manifests/", Fault::Status(503), 100));
    let before = std::fs::read(fixture.out_dir().join("manifest.json")).unwrap();
    let run = fixture.pack_with_env(&push, &[TIMEOUT, ("LAMBDA_PACK_REGISTRY_ATTEMPTS", "3")]);
    run.assert_code(11);
    assert_eq!(proxy.fired().len(), 3, "{:?}", proxy.fired());
    assert!(
        run.stderr.contains(&format!(
            "error: registry {} failed for `{}/{repository}:0.1.0-x86_64`",
            proxy.addr, proxy.addr
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "while pushing the manifest {digest} (3 attempt(s))"
        )),
        "{}",
        run.stderr
    );
    let read = assert_registry_consistent(&registry.host, repository);
    assert_eq!(read["tags"], serde_json::json!({}), "no manifest: {read}");
    assert_eq!(
        std::fs::read(fixture.out_dir().join("manifest.json")).unwrap(),
        before
    );
    proxy.clear();
    fixture.pack_with_env(&push, &[TIMEOUT]).assert_success();
    let read = assert_registry_consistent(&registry.host, repository);
    assert_eq!(read["tags"]["0.1.0-x86_64"], digest.as_str());
}

/// Deploys `packed` into `region` through `proxy`, with a short attempt timeout.
fn deploy_through(
    packed: &Packed,
    proxy: &FaultProxy,
    region: &str,
    role: &str,
    env: &[(&str, &str)],
) -> Run {
    let endpoint = format!("http://{}", proxy.addr);
    let mut all = vec![
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("LAMBDA_PACK_AWS_TIMEOUT", "3"),
    ];
    all.extend(env);
    packed.deploy_with(region, &["--iam-role", role], &all)
}

fn upstream(endpoint: &str) -> &str {
    endpoint.strip_prefix("http://").unwrap()
}

/// After a deploy: both functions run the packed code, each layer has exactly one version.
fn assert_deployed(packed: &Packed, region: &str) -> Value {
    let account = state(region);
    assert_no_duplicate_layer_versions(&account);
    for layer in ["tools-layer", "recorder"] {
        assert_eq!(
            account["layers"][layer].as_array().unwrap().len(),
            1,
            "{layer}: {account}"
        );
    }
    for function in ["tiny", "tool-user"] {
        assert_eq!(
            account["functions"][function]["CodeSha256"].as_str(),
            Some(packed.code_sha256(function).as_str()),
            "{function}: {account}"
        );
    }
    account
}

#[test]
fn deploy_faults_are_retried_without_publishing_a_layer_twice() {
    let _moto = shared();
    let packed = Packed::copy("faults");
    packed.pack();
    let proxy = FaultProxy::start(upstream(&moto().endpoint));
    let cases = [
        (
            "eu-west-1",
            "GET",
            "/2015-03-31/functions/tiny",
            Fault::Status(500),
            "AWS lambda:GetFunction: HTTP 500; retrying (attempt 2/3)",
        ),
        (
            "eu-west-2",
            "POST",
            "/layers/tools-layer/versions",
            Fault::Status(429),
            "AWS lambda:PublishLayerVersion of layer tools-layer",
        ),
        (
            "eu-west-3",
            "POST",
            "/layers/recorder/versions",
            Fault::CutAfter(12),
            "AWS lambda:PublishLayerVersion of layer recorder",
        ),
        (
            "eu-central-1",
            "POST",
            "/2015-03-31/functions",
            Fault::Stall(Duration::from_secs(6)),
            "AWS lambda:CreateFunction",
        ),
        (
            "eu-north-1",
            "GET",
            "/2015-03-31/functions/tool-user",
            Fault::Truncate(5),
            "AWS lambda:GetFunction",
        ),
        (
            "ap-south-1",
            "POST",
            "/layers/tools-layer/versions",
            Fault::CorruptRequest,
            "damaged on the way); version 1 was deleted; retrying in 1s (attempt 2/3)",
        ),
        (
            "ap-northeast-1",
            "GET",
            "/layers/recorder/versions",
            Fault::Status(502),
            "AWS lambda:ListLayerVersions: HTTP 502; retrying (attempt 2/3)",
        ),
        (
            "ap-southeast-1",
            "POST",
            "/2015-03-31/functions",
            Fault::Status(503),
            "AWS lambda:CreateFunction: HTTP 503; retrying (attempt 2/3)",
        ),
    ];
    for (region, method, path, fault, said) in cases {
        let role = boto_role(region);
        proxy.clear();
        proxy.inject(Rule::new(method, path, fault.clone(), 1));
        let run = deploy_through(&packed, &proxy, region, &role, &[]);
        run.assert_success();
        assert_eq!(
            proxy.fired().len(),
            1,
            "{fault:?} fired once: {:?}",
            proxy.fired()
        );
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with("warning: ") && l.contains(said)),
            "{fault:?}: `{said}` in:\n{}",
            run.stderr
        );
        let deployed = assert_deployed(&packed, region);
        // The next run finds everything done.
        proxy.clear();
        let again = deploy_through(&packed, &proxy, region, &role, &[]);
        again.assert_success();
        assert!(
            again.stderr.contains("nothing to change"),
            "{}",
            again.stderr
        );
        assert_eq!(comparable(&state(region)), comparable(&deployed));
    }

    // Lambda keeps failing to create a function: a typed error naming the call and the
    // function, what was done before it; the next run completes the rest, publishing nothing twice.
    let region = "ca-central-1";
    let role = boto_role(region);
    proxy.clear();
    proxy.inject(Rule::new(
        "POST",
        "/2015-03-31/functions",
        Fault::Status(503),
        100,
    ));
    let run = deploy_through(&packed, &proxy, region, &role, &[("AWS_MAX_ATTEMPTS", "2")]);
    run.assert_code(12);
    assert_eq!(proxy.fired().len(), 2, "{:?}", proxy.fired());
    assert!(
        run.stderr.contains("error: CreateFunction on `"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("done before the failure: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("run deploy again") || run.stderr.contains("deploy is idempotent"),
        "{}",
        run.stderr
    );
    let partial = state(region);
    assert!(
        partial["functions"]["tiny"].is_null() || partial["functions"]["tool-user"].is_null(),
        "{partial}"
    );
    proxy.clear();
    deploy_through(&packed, &proxy, region, &role, &[]).assert_success();
    assert_deployed(&packed, region);
}

#[test]
fn an_aws_timeout_that_is_not_a_number_is_refused_before_any_call() {
    let _moto = shared();
    let packed = common::deploy::base();
    let run = packed.deploy_with(
        "sa-east-1",
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("LAMBDA_PACK_AWS_TIMEOUT", "soon"),
        ],
    );
    run.assert_code(3);
    assert!(
        run.stderr
            .contains("LAMBDA_PACK_AWS_TIMEOUT=`soon` is not a positive whole number"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("help: set LAMBDA_PACK_AWS_TIMEOUT to a number such as 300"),
        "{}",
        run.stderr
    );
}

/// Starts `command` with stderr piped, as a second contender.
fn spawn(mut command: std::process::Command) -> std::process::Child {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: std::process::Child) -> Run {
    Run::new_from(child.wait_with_output().unwrap())
}

#[test]
fn two_packs_pushing_the_same_image_give_one_image() {
    let registry = registry();
    let repository = "races/push";
    let fixture = image_fixture(
        &registry.base("x86_64"),
        Some(&registry.reference(repository)),
    );
    fixture.pack(&PACK).assert_success();
    let digest = image_digest(&fixture);
    let second = image_fixture(
        &registry.base("x86_64"),
        Some(&registry.reference(repository)),
    );
    let pack = |f: &Fixture| {
        let mut command = lambda_pack();
        command.args(PACK).arg("--push").current_dir(f.path());
        command
    };
    // Two output directories (they do not wait for each other), one repository and tag.
    let (a, b) = (spawn(pack(&fixture)), spawn(pack(&second)));
    let (a, b) = (finish(a), finish(b));
    a.assert_success();
    b.assert_success();
    let read = assert_registry_consistent(&registry.host, repository);
    assert_eq!(read["tags"]["0.1.0-x86_64"], digest.as_str(), "{read}");
    for f in [&fixture, &second] {
        assert_eq!(image_digest(f), digest);
        assert_out_consistent(&f.out_dir());
    }
    // One output directory: the second waits for the first's lock.
    let (a, b) = (spawn(pack(&fixture)), spawn(pack(&fixture)));
    let (a, b) = (finish(a), finish(b));
    a.assert_success();
    b.assert_success();
    assert!(
        a.stderr.contains("waiting for file lock") || b.stderr.contains("waiting for file lock"),
        "one waited:\n{}\n---\n{}",
        a.stderr,
        b.stderr
    );
    assert_eq!(image_digest(&fixture), digest);
    assert_out_consistent(&fixture.out_dir());
    assert_eq!(temporaries(&fixture.out_dir()), Vec::<String>::new());
}

#[test]
fn two_deploys_at_once_take_turns_and_publish_each_layer_once() {
    let _moto = shared();
    let packed = Packed::copy("race");
    packed.pack();
    let region = "us-west-1";
    let role = boto_role(region);
    let deploy = || {
        let mut command = common::deploy::deploy_command(&packed.workspace, &packed.out);
        command
            .args(["--iam-role", &role])
            .env("AWS_ENDPOINT_URL", &moto().endpoint)
            .env("AWS_REGION", region)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
        command
    };
    let (a, b) = (spawn(deploy()), spawn(deploy()));
    let (a, b) = (finish(a), finish(b));
    a.assert_success();
    b.assert_success();
    let waited = [&a, &b]
        .into_iter()
        .filter(|r| r.stderr.contains("waiting for another deploy of"))
        .count();
    assert_eq!(waited, 1, "one waited:\n{}\n---\n{}", a.stderr, b.stderr);
    let changed_nothing = [&a, &b]
        .into_iter()
        .filter(|r| r.stderr.contains("nothing to change"))
        .count();
    assert_eq!(
        changed_nothing, 1,
        "the second found it done:\n{}\n---\n{}",
        a.stderr, b.stderr
    );
    assert_deployed(&packed, region);
}

#[test]
fn a_merge_waits_for_a_shard_still_packing_and_takes_its_finished_output() {
    let fixture = Fixture::copy("basic");
    let shard = |k: &str, out: &Path| {
        let mut command = lambda_pack();
        command
            .args(["--compiler", "cargo", "--shard", k, "--out-dir"])
            .arg(out)
            .current_dir(fixture.path());
        command
    };
    let (one, two) = (
        fixture.path().join("shard-1"),
        fixture.path().join("shard-2"),
    );
    run(shard("1/2", &one)).assert_success();
    run(shard("2/2", &two)).assert_success();
    let merged = fixture.path().join("merged");
    let merge = || {
        let mut command = lambda_pack();
        command
            .arg("merge")
            .arg(&one)
            .arg(&two)
            .arg("--out-dir")
            .arg(&merged);
        command
    };
    run(merge()).assert_success();
    let reference = std::fs::read(merged.join("manifest.json")).unwrap();

    // A shard holds its output directory's lock (as a pack writing it does): the merge started
    // meanwhile waits for it, then merges what it finished.
    let (line, rest) = {
        let lock = std::fs::File::open(one.join(".lambda-pack.lock")).unwrap();
        lock.lock().unwrap();
        let mut command = merge();
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let line = common::read_until_line(&mut stderr, "Blocking", "the merge did not wait");
        drop(lock);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
        assert!(child.wait().unwrap().success(), "{rest}");
        (line, rest)
    };
    assert!(
        line.contains(&format!(
            "waiting for a pack to finish in {}",
            one.display()
        )),
        "{line}"
    );
    assert!(rest.contains("Merged"), "{rest}");
    assert_out_consistent(&merged);
    assert_eq!(
        std::fs::read(merged.join("manifest.json")).unwrap(),
        reference
    );

    // A shard that really is packing (a changed include) while merge runs: merge copies either
    // the old or the new output, whole, never a mix.
    fixture.write("fn-x86/assets/readme.txt", "repacked\n");
    let mut packing = shard("1/2", &one)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    run(merge()).assert_success();
    assert!(packing.wait().unwrap().success());
    assert_out_consistent(&merged);
    run(merge()).assert_success();
    assert_out_consistent(&merged);
    // A merge into a directory another run holds waits for it; the directory it leaves has the
    // same lock file (inode), so whoever waits on it before or after the swap waits alike.
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(merged.join(".lambda-pack.lock"))
        .unwrap()
        .ino();
    let lock = std::fs::File::open(merged.join(".lambda-pack.lock")).unwrap();
    lock.lock().unwrap();
    let mut command = merge();
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let line = common::read_until_line(&mut stderr, "Blocking", "the merge did not wait");
    assert!(
        line.contains(&format!("waiting for file lock on {}", merged.display())),
        "{line}"
    );
    drop(lock);
    assert!(child.wait().unwrap().success());
    assert_eq!(
        std::fs::metadata(merged.join(".lambda-pack.lock"))
            .unwrap()
            .ino(),
        inode
    );
    assert_out_consistent(&merged);
}
