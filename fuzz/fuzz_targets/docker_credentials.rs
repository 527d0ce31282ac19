//! Registry credentials (`image::credentials`): the bytes of a Docker `config.json` and of a
//! credential helper's answer to `get`.
//!
//! Input: byte 0 picks the registry looked up; the rest is split at the first `\n--\n` into the
//! `config.json` (in `$DOCKER_CONFIG`) and what every credential helper it names prints (the
//! helpers are not run; their answer goes through the same reader as a real helper's).
//!
//! Besides no panic: the description of where a credential came from (it goes into error
//! messages) never holds the secret, unless the secret also appears in a part of the file that
//! is not secret (a key, a helper's name, the path), and it names the config file it came from.
#![no_main]

use std::fs;

use cargo_lambda_pack::fuzzing::registry_credential;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const REGISTRIES: [&str; 4] = [
    "docker.io",
    "127.0.0.1:5000",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "public.ecr.aws",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let registry = REGISTRIES[usize::from(pick) % REGISTRIES.len()];
    let (config, helper) = match rest.windows(4).position(|w| w == b"\n--\n") {
        Some(at) => (&rest[..at], &rest[at + 4..]),
        None => (rest, &[][..]),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("config.json"), config).expect("config.json");

    let Ok((auth, source)) = registry_credential(registry, dir.path(), helper) else {
        return;
    };
    let Some((_, secret)) = auth else {
        assert!(
            source.starts_with("anonymous"),
            "no credential, yet a source: {source}"
        );
        return;
    };
    assert!(
        source.contains(&dir.path().join("config.json").display().to_string()),
        "the source does not name the config file: {source}"
    );
    if secret.chars().count() < 4 || source.matches(&secret).count() == 0 {
        return;
    }
    // The secret is in the source: fine only when it is also a non-secret part of the file.
    let mut public = vec![dir.path().display().to_string(), registry.to_string()];
    if let Ok(value) = serde_json::from_slice::<Value>(config) {
        collect_public(&value, &mut public);
    }
    assert!(
        public.iter().any(|part| part.contains(&secret)),
        "the source `{source}` holds the secret `{secret}`"
    );
});

/// Every object key, and every string under `credHelpers` or `credsStore`: what a source may
/// quote.
fn collect_public(value: &Value, out: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (key, inner) in map {
            out.push(key.clone());
            if key == "credHelpers" || key == "credsStore" {
                strings(inner, out);
            }
            collect_public(inner, out);
        }
    } else if let Value::Array(items) = value {
        for item in items {
            collect_public(item, out);
        }
    }
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        _ => {}
    }
}
