//! Telemetry API and Logs API subscription bodies (`PUT /2022-07-01/telemetry`,
//! `PUT /2020-08-15/logs`) as an extension sends them to `verify`: the first byte picks the API,
//! the rest is the body → `fuzzing::telemetry_subscription`.
//!
//! Besides no panic: an accepted subscription has only Lambda's types, buffering within Lambda's
//! bounds, and a destination inside the sandbox on a non-zero port (verify delivers to nothing
//! else); a refusal says what is wrong (a non-empty message).
#![no_main]

use cargo_lambda_pack::fuzzing::{subscription_buffering_bounds, telemetry_subscription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&api, body)) = data.split_first() else {
        return;
    };
    match telemetry_subscription(api & 1 == 1, body) {
        Ok((types, buffering, uri, port)) => {
            for t in &types {
                assert!(
                    ["platform", "function", "extension"].contains(&t.as_str()),
                    "accepted the type `{t}`"
                );
            }
            for (value, (min, max)) in buffering.iter().zip(subscription_buffering_bounds()) {
                assert!(
                    (min..=max).contains(value),
                    "accepted buffering {buffering:?} outside Lambda's bounds"
                );
            }
            assert_ne!(port, 0, "accepted port 0 in {uri}");
            let host = uri
                .strip_prefix("http://")
                .and_then(|rest| rest.split('/').next())
                .and_then(|authority| authority.rsplit_once(':'))
                .map(|(host, _)| host)
                .unwrap_or_else(|| panic!("accepted the destination {uri}"));
            assert!(
                ["sandbox.localdomain", "sandbox", "localhost", "127.0.0.1"].contains(&host),
                "accepted a destination outside the sandbox: {uri}"
            );
        }
        Err(message) => assert!(!message.is_empty(), "a refusal that says nothing"),
    }
});
