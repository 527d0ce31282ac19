//! Metadata validation over JSON: the bytes parsed as JSON (the shape `cargo metadata` hands us)
//! go to `parse_package` and `parse_workspace`, both as the whole `metadata` value and wrapped as
//! its `lambda-pack` table. Errors are fine; panics are not.
#![no_main]

use std::path::Path;

use cargo_lambda_pack::{parse_package, parse_workspace};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let manifest = Path::new("/ws/crate/Cargo.toml");
    let wrapped = json!({ "lambda-pack": value.clone() });
    for metadata in [&value, &wrapped] {
        if let Ok(package) = parse_package(metadata, manifest) {
            let _ = serde_json::to_string(&package).expect("package metadata serializes");
        }
        if let Ok(table) = parse_workspace(metadata, manifest) {
            let _ = serde_json::to_string(&table).expect("workspace metadata serializes");
        }
    }
});
