use serde_json::json;

use super::{Api, Buffering, parse_subscription, sandbox_port};

fn subscription(buffering: serde_json::Value) -> serde_json::Value {
    json!({
        "schemaVersion": "2022-07-01",
        "types": ["platform", "function"],
        "buffering": buffering,
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:9003"},
    })
}

#[test]
fn the_lambda_extension_crates_subscription_is_accepted_with_its_buffering() {
    let body = subscription(json!({"timeoutMs": 1000, "maxBytes": 262144, "maxItems": 10000}));
    let (types, buffering, destination, port) = parse_subscription(Api::Telemetry, &body).unwrap();
    assert_eq!(types, ["platform", "function"]);
    assert_eq!(
        buffering,
        Buffering {
            timeout_ms: 1000,
            max_bytes: 262_144,
            max_items: 10_000
        }
    );
    assert_eq!(destination, "http://sandbox.localdomain:9003");
    assert_eq!(port, 9003);
}

#[test]
fn buffering_outside_lambdas_bounds_is_a_validation_error_naming_the_field() {
    for (buffering, field) in [
        (json!({"timeoutMs": 24}), "buffering.timeoutMs 24"),
        (json!({"timeoutMs": 30001}), "buffering.timeoutMs 30001"),
        (json!({"maxBytes": 262143}), "buffering.maxBytes 262143"),
        (json!({"maxBytes": 1048577}), "buffering.maxBytes 1048577"),
        (json!({"maxItems": 999}), "buffering.maxItems 999"),
        (json!({"maxItems": 10001}), "buffering.maxItems 10001"),
    ] {
        let error = parse_subscription(Api::Telemetry, &subscription(buffering)).unwrap_err();
        assert!(error.starts_with(field), "{error}");
        assert!(error.contains("out of range"), "{error}");
    }
    // The bounds themselves are accepted; absent fields take Lambda's defaults.
    let (_, buffering, _, _) = parse_subscription(
        Api::Telemetry,
        &subscription(json!({"timeoutMs": 25, "maxItems": 1000})),
    )
    .unwrap();
    assert_eq!(buffering.timeout_ms, 25);
    assert_eq!(buffering.max_items, 1000);
    assert_eq!(buffering.max_bytes, 262_144);
}

#[test]
fn destinations_outside_the_sandbox_and_unknown_types_are_refused() {
    let mut body = subscription(json!({}));
    body["destination"]["URI"] = json!("http://example.com:9003");
    assert!(
        parse_subscription(Api::Telemetry, &body)
            .unwrap_err()
            .contains("not in the sandbox")
    );
    let mut body = subscription(json!({}));
    body["types"] = json!(["platform", "metrics"]);
    assert!(
        parse_subscription(Api::Telemetry, &body)
            .unwrap_err()
            .contains("unknown type metrics")
    );
    let mut body = subscription(json!({}));
    body["schemaVersion"] = json!("2021-03-18");
    assert!(parse_subscription(Api::Telemetry, &body).is_err());
    assert!(parse_subscription(Api::Logs, &body).is_ok());
    assert_eq!(sandbox_port("http://sandbox.localdomain:8080/"), Some(8080));
    assert_eq!(sandbox_port("http://sandbox.localdomain"), None);
}
