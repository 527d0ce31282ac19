//! The image configuration: the base's, with this tool's layers, `CMD` and Lambda's variables.
//!
//! The base's configuration is kept as JSON rather than parsed into typed structs and written
//! back: fields this tool does not know survive, and `serde_json`'s maps are sorted, so labels
//! and other maps serialize the same way on every run (a `HashMap` would not).

use serde_json::{Map, Value, json};

use crate::target::Arch;

use super::layer::{LayerBlob, LayerSpec};

/// The entrypoint of an image on `scratch`: the bootstrap, where `COPY bootstrap` puts it.
pub const SCRATCH_ENTRYPOINT: &str = "/var/runtime/bootstrap";

/// The OCI name of an architecture.
pub fn oci_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "amd64",
        Arch::Arm64 => "arm64",
    }
}

/// RFC 3339 UTC time of `epoch` seconds, as OCI's `created` wants it.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let seconds = epoch % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Sets `key=value` in a Docker-style env list, replacing an earlier value of `key`.
fn set_env(env: &mut Vec<Value>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    env.retain(|item| !item.as_str().is_some_and(|s| s.starts_with(&prefix)));
    env.push(Value::String(format!("{key}={value}")));
}

/// The configuration JSON of the image: `base` (the base image's configuration, or `None` for
/// `scratch`) plus `layers`, with `CMD [<handler>]` as the Dockerfile has it (the entrypoint
/// passes it to the runtime as `_HANDLER`; `bootstrap` unless the function sets `handler`).
pub fn image_config(
    base: Option<&Value>,
    arch: Arch,
    created: u64,
    layers: &[(LayerSpec, LayerBlob)],
    handler: &str,
) -> Vec<u8> {
    let mut config = base.cloned().unwrap_or_else(|| json!({}));
    let object = config.as_object_mut().expect("a config is a JSON object");
    let created = rfc3339(created);
    object.insert("architecture".into(), oci_arch(arch).into());
    object.insert("os".into(), "linux".into());
    object.insert("created".into(), created.clone().into());
    object.remove("variant");
    // `"config": null` is how some images say "no settings"; a `history` that is not a list
    // describes no layer. (`base::load` refuses other shapes.)
    if object.get("config").is_some_and(Value::is_null) {
        object.remove("config");
    }
    if object.get("history").is_some_and(|h| !h.is_array()) {
        object.remove("history");
    }
    let inner = object
        .entry("config")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("config.config is an object");
    let mut env = inner
        .get("Env")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    set_env(&mut env, "LAMBDA_TASK_ROOT", "/var/task");
    set_env(&mut env, "LAMBDA_RUNTIME_DIR", "/var/runtime");
    inner.insert("Env".into(), Value::Array(env));
    inner.insert("Cmd".into(), json!([handler]));
    if base.is_none() {
        // `scratch`: no /lambda-entrypoint.sh to hand over to the runtime; the runtime is the
        // entrypoint, as the Dockerfile for scratch has it.
        inner.insert("Entrypoint".into(), json!([SCRATCH_ENTRYPOINT]));
    }
    let rootfs = object
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    let diff_ids = rootfs
        .as_object_mut()
        .expect("rootfs is an object")
        .entry("diff_ids")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("diff_ids is an array");
    for (_, blob) in layers {
        diff_ids.push(blob.diff_id.clone().into());
    }
    // History lines up with the layers; a base without history gets none (a partial history would
    // misdescribe the base's layers).
    let base_layers = base
        .and_then(|b| b["rootfs"]["diff_ids"].as_array())
        .map_or(0, Vec::len);
    let has_history = object
        .get("history")
        .and_then(Value::as_array)
        .is_some_and(|h| !h.is_empty());
    if has_history || base_layers == 0 {
        let history = object
            .entry("history")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("history is an array");
        for (spec, _) in layers {
            let mut line = Map::new();
            line.insert("created".into(), created.clone().into());
            line.insert("created_by".into(), spec.created_by.clone().into());
            line.insert("comment".into(), "cargo-lambda-pack".into());
            history.push(Value::Object(line));
        }
        let mut cmd = Map::new();
        cmd.insert("created".into(), created.into());
        cmd.insert(
            "created_by".into(),
            format!("CMD {}", json!([handler])).into(),
        );
        cmd.insert("comment".into(), "cargo-lambda-pack".into());
        cmd.insert("empty_layer".into(), true.into());
        history.push(Value::Object(cmd));
    }
    serde_json::to_vec(&config).expect("JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn lambda_variables_replace_the_bases_and_keep_the_rest() {
        let base = json!({"config": {"Env": ["PATH=/bin", "LAMBDA_TASK_ROOT=/old"],
            "Entrypoint": ["/lambda-entrypoint.sh"], "Labels": {"b": "2", "a": "1"}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]}});
        let bytes = image_config(Some(&base), Arch::Arm64, 0, &[], "bootstrap");
        let config: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            config["config"]["Env"],
            json!([
                "PATH=/bin",
                "LAMBDA_TASK_ROOT=/var/task",
                "LAMBDA_RUNTIME_DIR=/var/runtime"
            ])
        );
        assert_eq!(
            config["config"]["Entrypoint"],
            json!(["/lambda-entrypoint.sh"])
        );
        assert_eq!(config["config"]["Cmd"], json!(["bootstrap"]));
        assert_eq!(config["architecture"], "arm64");
        assert!(config.get("history").is_none(), "{config}");
        // Labels come out sorted whatever the base's order.
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.find("\"a\"").unwrap() < text.find("\"b\"").unwrap());
    }
}
