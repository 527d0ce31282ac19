//! Races: two packs pushing the same image, two deploys of one workspace at once, a merge while
//! a shard is still writing. Each either waits (the output directory's lock, the deploy lock) or
//! completes alongside; the final state is one run's.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::deploy::{Packed, boto_role};
use common::moto::{moto, shared};
use common::registry::registry;
use common::surfaces::*;
use common::{Fixture, Run, lambda_pack, run};

const PACK: [&str; 4] = ["--compiler", "cargo", "-p", "fn-x86"];

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
