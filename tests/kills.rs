//! Runs killed at random moments: `pack`, `pack --push`, `deploy` and `merge`, at least 50 times
//! in all, each killed (SIGKILL or SIGINT) after a random delay within its usual duration. After
//! each kill the output directory is consistent (every listed file there with its hash), the
//! registry holds no manifest whose blobs are missing, no layer has two versions of one content;
//! the next run, uninterrupted, ends in exactly the state an uninterrupted run reached (the same
//! digests, the same function configuration, the same layer versions).
//!
//! The seed is printed; `LAMBDA_PACK_KILL_SEED=<seed>` replays a run, `LAMBDA_PACK_KILL_ROUNDS`
//! changes the number of kills (default 52).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::deploy::{Packed, boto_role, deploy_command, state};
use common::moto::{moto, shared};
use common::registry::registry;
use common::surfaces::*;
use common::{Fixture, lambda_pack, run};
use serde_json::Value;

/// xorshift64*: small, and the same sequence for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Surface {
    Pack,
    Push,
    Deploy,
    Merge,
}

/// What one surface runs, and the state its uninterrupted runs reach (per variant).
struct Setup {
    fixture: Fixture,
    pack_out: PathBuf,
    push_out: PathBuf,
    shards: [PathBuf; 2],
    merged: PathBuf,
    deploys: [Packed; 2],
    region: &'static str,
    role: String,
    repository: String,
}

const PACK: [&str; 6] = ["--compiler", "cargo", "-p", "fn-x86", "-p", "fn-arm"];

impl Setup {
    fn command(&self, surface: Surface, variant: usize) -> Command {
        match surface {
            Surface::Pack | Surface::Push => {
                let readme = format!("variant {variant}\n{}", "x".repeat(40_000 * (variant + 1)));
                self.fixture.write("fn-x86/assets/readme.txt", &readme);
                self.fixture.write("fn-arm/assets/readme.txt", &readme);
                let mut command = lambda_pack();
                command.args(PACK).current_dir(self.fixture.path());
                if surface == Surface::Push {
                    command.arg("--push").arg("--out-dir").arg(&self.push_out);
                } else {
                    command.arg("--out-dir").arg(&self.pack_out);
                }
                command
            }
            Surface::Merge => {
                let mut command = lambda_pack();
                command
                    .arg("merge")
                    .args(&self.shards)
                    .arg("--out-dir")
                    .arg(&self.merged);
                command
            }
            Surface::Deploy => {
                let packed = &self.deploys[variant];
                let mut command = deploy_command(&packed.workspace, &packed.out);
                command
                    .args(["--iam-role", &self.role])
                    .env("AWS_ENDPOINT_URL", &moto().endpoint)
                    .env("AWS_REGION", self.region)
                    .env("AWS_ACCESS_KEY_ID", "testing")
                    .env("AWS_SECRET_ACCESS_KEY", "testing");
                command
            }
        }
    }

    /// Checks what must hold whatever the moment of a kill, and returns what an uninterrupted
    /// run must leave: the manifest's artifacts (hashes and digests), the registry's tags, the
    /// account. One read of each remote per call (boto3 takes a while to start).
    fn check(&self, surface: Surface) -> Value {
        match surface {
            Surface::Pack => {
                assert_out_consistent(&self.pack_out);
                summary(&self.pack_out)
            }
            Surface::Push => {
                assert_out_consistent(&self.push_out);
                let read = assert_registry_consistent(&registry().host, &self.repository);
                serde_json::json!({"out": summary(&self.push_out), "registry": read["tags"]})
            }
            Surface::Merge => {
                assert_out_consistent(&self.merged);
                for shard in &self.shards {
                    assert_out_consistent(shard);
                }
                summary(&self.merged)
            }
            Surface::Deploy => {
                let account = state(self.region);
                assert_no_duplicate_layer_versions(&account);
                // A function runs one of the two packed codes, never anything else.
                for function in ["tiny", "tool-user"] {
                    let code = &account["functions"][function]["CodeSha256"];
                    let known = self
                        .deploys
                        .iter()
                        .any(|p| code.as_str() == Some(p.code_sha256(function).as_str()));
                    assert!(known, "{function} runs unknown code: {account}");
                }
                comparable(&account)
            }
        }
    }
}

/// The manifest's artifacts as comparable facts: name, arch, hash, image digest and URI.
fn summary(out: &Path) -> Value {
    let manifest = common::manifest(out);
    manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            serde_json::json!([
                a["name"],
                a["arch"],
                a["sha256"],
                a["image_digest"],
                a["image_uri"]
            ])
        })
        .collect()
}

fn timed(mut command: Command) -> Duration {
    let started = Instant::now();
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    run(command).assert_success();
    started.elapsed()
}

#[test]
fn runs_killed_at_random_moments_lose_nothing_and_the_next_run_converges() {
    let seed: u64 = match std::env::var("LAMBDA_PACK_KILL_SEED") {
        Ok(seed) => seed.parse().expect("LAMBDA_PACK_KILL_SEED is a number"),
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        }
    };
    let rounds: usize = std::env::var("LAMBDA_PACK_KILL_ROUNDS")
        .map(|r| r.parse().expect("LAMBDA_PACK_KILL_ROUNDS is a number"))
        .unwrap_or(52);
    eprintln!("kill test seed: {seed} (replay with LAMBDA_PACK_KILL_SEED={seed})");
    let _moto = shared();
    let registry = registry();
    let repository = "kills/fn-x86".to_string();
    let fixture = image_fixture(
        &registry.base("x86_64"),
        Some(&registry.reference(&repository)),
    );
    let root = fixture.path().to_path_buf();
    let deploys = [Packed::copy("kills-a"), Packed::copy("kills-b")];
    // Variant 1 changes a layer (tools-layer gets an include) and a function's ZIP.
    std::fs::write(
        deploys[1].workspace.join("tools-layer/note.txt"),
        "variant 1\n",
    )
    .unwrap();
    deploys[1].edit("tools-layer/Cargo.toml", |t| {
        t.replace(
            "role = \"layer\"\n",
            "role = \"layer\"\ninclude = [\"note.txt\"]\n",
        )
    });
    std::fs::write(deploys[1].workspace.join("tiny-fn/note.txt"), "variant 1\n").unwrap();
    deploys[1].edit("tiny-fn/Cargo.toml", |t| {
        t.replace(
            "[package.metadata.lambda-pack.bin.tool-user]\n",
            "[package.metadata.lambda-pack.bin.tool-user]\ninclude = [\"note.txt\"]\n",
        )
    });
    for packed in &deploys {
        packed.pack();
    }
    assert_ne!(
        deploys[0].code_sha256("tool-user"),
        deploys[1].code_sha256("tool-user")
    );
    let region = "us-east-2";
    let setup = Setup {
        pack_out: root.join("out-pack"),
        push_out: root.join("out-push"),
        shards: [root.join("shard-1"), root.join("shard-2")],
        merged: root.join("merged"),
        role: boto_role(region),
        region,
        deploys,
        repository,
        fixture,
    };
    for (k, shard) in ["1/2", "2/2"].iter().zip(&setup.shards) {
        let mut command = lambda_pack();
        command
            .args(PACK)
            .args(["--shard", k, "--out-dir"])
            .arg(shard)
            .current_dir(&root);
        run(command).assert_success();
    }

    // Uninterrupted runs: how long each takes (kills land within that), and the state each
    // variant reaches.
    let surfaces = [
        Surface::Pack,
        Surface::Push,
        Surface::Deploy,
        Surface::Merge,
    ];
    let mut duration = std::collections::BTreeMap::new();
    let mut reached = std::collections::BTreeMap::new();
    // Push and deploy twice: the first round leaves what stays from then on (both layer
    // versions, the tag's history).
    for warm in [true, false] {
        for surface in surfaces {
            if warm && matches!(surface, Surface::Pack | Surface::Merge) {
                continue;
            }
            for variant in [0, 1] {
                let took = timed(setup.command(surface, variant));
                duration.insert(format!("{surface:?}"), took);
                reached.insert((format!("{surface:?}"), variant), setup.check(surface));
            }
        }
    }
    eprintln!("uninterrupted durations: {duration:?}");

    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut current = std::collections::BTreeMap::new();
    let mut tally = std::collections::BTreeMap::new();
    let mut spent = std::collections::BTreeMap::new();
    for round in 0..rounds {
        // Weighted to the cheaper rounds, so 52 kills fit the suite's time: a pack or push takes
        // seconds, a deploy under one (and its checks read the account with boto3), a merge a
        // tenth.
        let surface = match rng.below(100) {
            0..11 => Surface::Pack,
            11..22 => Surface::Push,
            22..47 => Surface::Deploy,
            _ => Surface::Merge,
        };
        let name = format!("{surface:?}");
        // Alternate the variant so every run has work to do (merge has one).
        let variant = 1 - *current.get(&name).unwrap_or(&1);
        current.insert(name.clone(), variant);
        let took = duration[&name].as_millis() as u64;
        // Within the run: a kill after it ended would test nothing.
        let delay = Duration::from_millis(rng.below(took * 9 / 10));
        let signal = if rng.below(3) == 0 {
            libc::SIGINT
        } else {
            libc::SIGKILL
        };
        let round_started = Instant::now();
        let mut child = setup
            .command(surface, variant)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // SAFETY: a signal to our own child (already reaped only after `wait` below).
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        *tally.entry(name.clone()).or_insert(0) += 1;
        let context = format!(
            "round {round}: {name} (variant {variant}) killed after {delay:?} by signal {signal} ({status}); seed {seed}"
        );
        eprintln!("{context}");
        setup.check(surface);
        // The next run converges on what an uninterrupted run reached.
        let next = run(setup.command(surface, variant));
        assert!(
            next.code() == 0,
            "{context}: the next run failed:\n{}",
            next.stderr
        );
        assert_eq!(
            setup.check(surface),
            reached[&(name.clone(), variant)],
            "{context}: the next run reached another state"
        );
        *spent.entry(name.clone()).or_insert(Duration::ZERO) += round_started.elapsed();
        for dir in [&setup.pack_out, &setup.push_out] {
            assert_eq!(temporaries(dir), Vec::<String>::new(), "{context}");
        }
        let merge_leftovers: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".merged."))
            .collect();
        assert_eq!(merge_leftovers, Vec::<String>::new(), "{context}");
    }
    eprintln!(
        "{rounds} kills ({tally:?}) in {:?} ({spent:?}); seed {seed}",
        started.elapsed()
    );
    assert!(
        tally.len() == 4 || rounds < 20,
        "every surface was killed: {tally:?}"
    );
}
