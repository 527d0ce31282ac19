//! Faults of the network, injected by a proxy (`common/fault_proxy.rs`) between the tool and the
//! real servers: the suite's registry for pulls and pushes, moto for deploys. Each fault either
//! is recovered by a retry that says so on stderr, or ends in a typed error naming the remote and
//! the step, with nothing half-published, and a next run that completes.

mod common;

use std::time::Duration;

use common::deploy::{Packed, boto_role, state};
use common::fault_proxy::{Fault, FaultProxy, Rule, silent_listener};
use common::moto::{moto, shared};
use common::registry::registry;
use common::surfaces::*;
use common::{Fixture, Run, manifest};

const PACK: [&str; 4] = ["--compiler", "cargo", "-p", "fn-x86"];
/// A stalled read is given up after this many seconds in these tests (the default is 12).
const TIMEOUT: (&str, &str) = ("LAMBDA_PACK_REGISTRY_TIMEOUT", "2");

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
    // The build context is written all the same (a `docker build` pulls the base itself); the
    // entry that described the replaced context leaves the manifest, so every listed hash holds.
    let before: serde_json::Value = serde_json::from_slice(&out_before).unwrap();
    assert_eq!(before["artifacts"].as_array().unwrap().len(), 1);
    let after = manifest(&fixture.out_dir());
    assert_eq!(after["artifacts"], serde_json::json!([]), "{after:#}");
    assert!(
        run.stderr.contains("is written all the same, at"),
        "{}",
        run.stderr
    );
    let context = fixture.out_dir().join("x86_64/fn-x86");
    assert!(context.join("Dockerfile").is_file());
    let readme = walkdir::WalkDir::new(&context)
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name() == "readme.txt")
        .expect("the context holds the include");
    assert_eq!(
        std::fs::read_to_string(readme.path()).unwrap(),
        "changed: the image would change\n"
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
    // Both functions are created at once (`-j`, default 8), each call tried twice.
    assert_eq!(proxy.fired().len(), 4, "{:?}", proxy.fired());
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
            .contains("help: set LAMBDA_PACK_AWS_TIMEOUT to a number such as 20"),
        "{}",
        run.stderr
    );
}

/// The retry lines of `run` that start with `prefix`, in order.
fn retry_lines<'a>(run: &'a Run, prefix: &str) -> Vec<&'a str> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with(prefix) && l.contains("retrying"))
        .collect()
}

#[test]
fn a_registry_that_never_answers_is_named_at_every_retry_and_given_up() {
    let silent = silent_listener();
    let fixture = image_fixture(&format!("{silent}/lambda/provided:al2023-x86_64"), None);
    let started = std::time::Instant::now();
    let run = fixture.pack_with_env(
        &PACK,
        &[
            ("LAMBDA_PACK_REGISTRY_TIMEOUT", "1"),
            ("LAMBDA_PACK_REGISTRY_ATTEMPTS", "3"),
        ],
    );
    let elapsed = started.elapsed();
    eprintln!("given up after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    run.assert_code(11);
    let lines = retry_lines(&run, &format!("warning: registry {silent}: "));
    eprintln!("{}", lines.join("\n"));
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    for (line, attempt) in lines.iter().zip(["(attempt 2/3)", "(attempt 3/3)"]) {
        assert!(line.contains(attempt), "{line}");
        assert!(line.contains("s after the first attempt started"), "{line}");
    }
    // The wait so far grows: about 1 s (the timeout), then 1 + 1 (backoff) + 1.
    let waited = |line: &str| -> f64 {
        let end = line.rfind("s after the first attempt").unwrap();
        let start = line[..end].rfind(' ').unwrap() + 1;
        line[start..end].parse().unwrap()
    };
    assert!(waited(lines[0]) >= 0.9, "{}", lines[0]);
    assert!(waited(lines[1]) >= waited(lines[0]) + 1.9, "{}", lines[1]);
    assert!(run.stderr.contains(&silent.to_string()), "{}", run.stderr);
    assert!(!fixture.out_dir().join("manifest.json").exists());
}

#[test]
fn an_aws_endpoint_that_never_answers_is_named_at_every_retry_and_given_up() {
    let _moto = shared();
    let packed = common::deploy::base();
    let silent = silent_listener();
    let endpoint = format!("http://{silent}");
    let started = std::time::Instant::now();
    let run = packed.deploy_with(
        "ca-central-1",
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("LAMBDA_PACK_AWS_TIMEOUT", "1"),
            ("AWS_MAX_ATTEMPTS", "3"),
        ],
    );
    let elapsed = started.elapsed();
    eprintln!("given up after {elapsed:?}");
    assert_ne!(run.code(), 0, "{}", run.stderr);
    let lines = retry_lines(&run, "warning: AWS ");
    eprintln!("{}", lines.join("\n"));
    assert!(lines.len() >= 2, "{}", run.stderr);
    for (line, attempt) in lines.iter().zip(["(attempt 2/3)", "(attempt 3/3)"]) {
        assert!(
            line.contains(&format!("retrying {attempt} at {endpoint}, ")),
            "{line}"
        );
        assert!(line.contains("s after the first attempt started"), "{line}");
    }
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
}
