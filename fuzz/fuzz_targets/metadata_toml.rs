//! Metadata validation over TOML: the bytes parsed as a Cargo.toml, converted to JSON as cargo
//! would, then `package.metadata` to `parse_package` and `workspace.metadata` to
//! `parse_workspace`. Errors are fine; panics are not.
#![no_main]

use std::path::Path;

use cargo_lambda_pack::{parse_package, parse_workspace};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return;
    };
    let Ok(manifest) = serde_json::to_value(&table) else {
        return;
    };
    let path = Path::new("/ws/crate/Cargo.toml");
    let null = Value::Null;
    let package = manifest.pointer("/package/metadata").unwrap_or(&null);
    if let Ok(parsed) = parse_package(package, path) {
        let _ = serde_json::to_string(&parsed).expect("package metadata serializes");
    }
    let workspace = manifest.pointer("/workspace/metadata").unwrap_or(&null);
    if let Ok(parsed) = parse_workspace(workspace, path) {
        let _ = serde_json::to_string(&parsed).expect("workspace metadata serializes");
    }
});
