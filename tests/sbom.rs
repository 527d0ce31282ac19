//! SBOMs: each artifact's CycloneDX document lists exactly what its unit ships, passes the
//! official schema (read by cyclonedx-python-lib, an independent reader) and is reproducible.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The Python of the virtual environment `scripts/setup.sh` installs cyclonedx-python-lib into.
fn cyclonedx_python() -> PathBuf {
    let venv = std::env::var_os("LAMBDA_PACK_CYCLONEDX_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::home_dir()
                .unwrap()
                .join(".cache/lambda-pack-cyclonedx")
        });
    venv.join("bin/python")
}

/// Validates each document against CycloneDX 1.5's JSON schema (strict: no unknown fields);
/// returns the validator's error per file, `None` when valid.
fn schema_errors(files: &[PathBuf]) -> Vec<Option<String>> {
    const SCRIPT: &str = "
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
validator = JsonStrictValidator(SchemaVersion.V1_5)
for path in sys.argv[1:]:
    error = validator.validate_str(open(path).read())
    print('valid' if error is None else 'invalid: ' + repr(error).replace('\\n', ' '))
";
    let output = Command::new(cyclonedx_python())
        .arg("-c")
        .arg(SCRIPT)
        .args(files)
        .output()
        .expect("cyclonedx-python-lib's venv (scripts/setup.sh installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| (line != "valid").then(|| line.to_string()))
        .collect()
}

fn pack_copy(workspace: &Path, out: &Path) -> Run {
    let mut command = lambda_pack();
    command
        .args(["-p", "echo-fn", "-p", "http-fn"])
        .args(["--compiler", "cargo", "--profile", "dev", "--locked"])
        .arg("--target-dir")
        .arg(verify_functions_target_dir())
        .arg("--out-dir")
        .arg(out)
        .current_dir(workspace)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    run(command)
}

fn component_names(sbom: &serde_json::Value) -> Vec<String> {
    sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn each_function_sbom_lists_its_own_crates_validates_and_is_reproducible() {
    let copies: Vec<Fixture> = (0..2).map(|_| Fixture::copy("verify-functions")).collect();
    for copy in &copies {
        pack_copy(copy.path(), &copy.out_dir()).assert_success();
    }
    let out = copies[0].out_dir();
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("x86_64/{name}.cdx.json"))).unwrap(),
        )
        .unwrap()
    };
    let (echo, http) = (read("echo"), read("http-fn"));
    let (echo_names, http_names) = (component_names(&echo), component_names(&http));
    for shared in ["lambda_runtime", "tokio", "serde"] {
        assert!(
            echo_names.iter().any(|n| n == shared),
            "{shared} in {echo_names:?}"
        );
        assert!(
            http_names.iter().any(|n| n == shared),
            "{shared} in {http_names:?}"
        );
    }
    // A crate only the other function uses is absent; proc-macros never reach a binary.
    assert!(
        http_names.iter().any(|n| n == "lambda_http"),
        "{http_names:?}"
    );
    assert!(
        !echo_names.iter().any(|n| n == "lambda_http"),
        "{echo_names:?}"
    );
    for names in [&echo_names, &http_names] {
        for proc_macro in ["tokio-macros", "serde_derive", "pin-project-internal"] {
            assert!(
                !names.iter().any(|n| n == proc_macro),
                "{proc_macro} in {names:?}"
            );
        }
    }
    assert_eq!(
        echo["metadata"]["component"]["purl"],
        "pkg:cargo/echo-fn@0.1.0"
    );
    assert_eq!(echo["metadata"]["component"]["type"], "application");

    // Each registry crate carries its Cargo.lock checksum and license.
    let lock = copies[0].read("Cargo.lock");
    let tokio = echo["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tokio")
        .unwrap();
    let version = tokio["version"].as_str().unwrap();
    assert_eq!(tokio["purl"], format!("pkg:cargo/tokio@{version}"));
    assert_eq!(tokio["licenses"][0]["expression"], "MIT");
    assert_eq!(tokio["hashes"][0]["alg"], "SHA-256");
    let checksum = tokio["hashes"][0]["content"].as_str().unwrap();
    assert!(
        lock.contains(&format!(
            "name = \"tokio\"\nversion = \"{version}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{checksum}\""
        )),
        "tokio {version} {checksum} not in Cargo.lock"
    );

    // The manifest names each SBOM and counts its components; so does the summary.
    let manifest = manifest(&out);
    let entry = artifact(&manifest, "echo");
    assert_eq!(entry["sbom"], "x86_64/echo.cdx.json");
    assert_eq!(
        entry["sbom_components"],
        echo["components"].as_array().unwrap().len()
    );

    // The official schema accepts them; a document it must refuse shows the validator works.
    let mut files: Vec<PathBuf> = ["echo", "http-fn"]
        .iter()
        .map(|n| out.join(format!("x86_64/{n}.cdx.json")))
        .collect();
    let mut broken = echo.clone();
    broken["components"][0]["type"] = "crate".into();
    let broken_path = copies[0].path().join("broken.cdx.json");
    std::fs::write(&broken_path, broken.to_string()).unwrap();
    files.push(broken_path);
    let errors = schema_errors(&files);
    assert_eq!(errors[..2], [None, None], "{errors:?}");
    assert!(
        errors[2].is_some(),
        "the validator accepted an invalid type"
    );

    // Two clean builds from two copies of the workspace: the same bytes.
    for name in ["echo", "http-fn"] {
        let file = format!("x86_64/{name}.cdx.json");
        assert_eq!(
            std::fs::read(out.join(&file)).unwrap(),
            std::fs::read(copies[1].out_dir().join(&file)).unwrap(),
            "{file} differs between two builds"
        );
    }
}

#[test]
fn plan_shows_the_sbom_path_and_component_count() {
    let fixture = Fixture::copy("basic");
    let plan = fixture.pack(&["plan", "-p", "fn-x86", "--message-format", "json"]);
    plan.assert_success();
    let shown: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(
        shown["artifacts"][0]["sbom"],
        serde_json::json!({"path": "x86_64/fn-x86.cdx.json", "components": 1})
    );
    let listing = fixture.pack(&["plan", "-p", "fn-x86"]);
    assert!(
        listing.stderr.contains("SBOM -> ")
            && listing.stderr.contains("fn-x86.cdx.json (1 component(s))"),
        "{}",
        listing.stderr
    );
    let packed = fixture.pack(&["-p", "fn-x86"]);
    packed.assert_success();
    assert!(
        packed.stderr.contains("(SBOM: ")
            && packed.stderr.contains("fn-x86.cdx.json, 1 component(s))"),
        "{}",
        packed.stderr
    );
    let sbom: serde_json::Value =
        serde_json::from_str(&fixture.read("target/lambda-pack/x86_64/fn-x86.cdx.json")).unwrap();
    // `shared` is a workspace crate: an application component, without a registry hash.
    assert_eq!(sbom["components"][0]["name"], "shared");
    assert_eq!(sbom["components"][0]["type"], "application");
    assert!(sbom["components"][0].get("hashes").is_none());
}
