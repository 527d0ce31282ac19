//! Many functions, deployed `-j1` and at the default concurrency, against moto behind the fault
//! proxy adding 100 ms to every call (a stand-in for Lambda's latency): the first deploy, a
//! deploy with nothing changed, and one changing 20 functions. The base fixture's output
//! directory gets N more function entries (copies of `tiny` under other names; N is
//! `LAMBDA_PACK_DEPLOY_BENCH_FUNCTIONS`, default 24, 200 for BENCHMARKS.md). Each run's account
//! is checked (every function created; the no-change run writes nothing; the report in the
//! manifest's order) and its wall time printed.

mod common;

use std::time::{Duration, Instant};

use common::deploy::{boto_role as role, edited_copy, json_of, proxy_to_moto, writes};
use common::fault_proxy::{Fault, Rule};
use common::moto::shared;
use serde_json::{Value, json};

fn functions() -> usize {
    std::env::var("LAMBDA_PACK_DEPLOY_BENCH_FUNCTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24)
}

#[test]
fn many_functions_deploy_concurrently_in_a_stable_order() {
    let _moto = shared();
    let count = functions();
    let names: Vec<String> = (1..=count).map(|i| format!("bench-{i:03}")).collect();
    let (_dir, packed) = edited_copy(|_, manifest| {
        let tiny = common::deploy::entry_mut(manifest, "tiny").clone();
        let artifacts = manifest["artifacts"].as_array_mut().unwrap();
        for name in &names {
            let mut entry = tiny.clone();
            entry["name"] = json!(name);
            artifacts.push(entry);
        }
    });
    let (proxy, endpoint) = proxy_to_moto();
    proxy.inject(Rule::new(
        "",
        "",
        Fault::Delay(Duration::from_millis(100)),
        usize::MAX,
    ));
    let mut timings = Vec::new();
    for (jobs, region) in [("1", "us-west-1"), ("8", "us-west-2")] {
        let role = role(region);
        let env = [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ];
        let deploy = |what: &str, timings: &mut Vec<String>| {
            let mut args = vec!["--iam-role", role.as_str(), "--message-format", "json"];
            if jobs == "1" {
                args.extend(["-j", "1"]);
            }
            let started = Instant::now();
            let run = packed.deploy_with(region, &args, &env);
            let took = started.elapsed();
            run.assert_success();
            timings.push(format!(
                "{count} functions, {what}, -j{jobs}: {:.1} s",
                took.as_secs_f64()
            ));
            json_of(&run)
        };
        let first = deploy("first deploy", &mut timings);
        let reported: Vec<&str> = first["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function_name"].as_str().unwrap())
            .collect();
        let mut expected = vec!["tiny", "tool-user"];
        expected.extend(names.iter().map(String::as_str));
        let mut sorted_reported = reported.clone();
        sorted_reported.sort();
        let mut sorted_expected = expected.clone();
        sorted_expected.sort();
        assert_eq!(sorted_reported, sorted_expected);
        assert!(
            first["functions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["actions"] == json!(["create"])),
            "{first}"
        );
        // The report follows the plan's order, whatever finished first.
        let planned = packed.deploy_with(region, &["--dry-run", "--message-format", "json"], &env);
        planned.assert_success();
        let planned_order: Vec<String> = json_of(&planned)["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function_name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(reported, planned_order);

        proxy.clear();
        proxy.inject(Rule::new(
            "",
            "",
            Fault::Delay(Duration::from_millis(100)),
            usize::MAX,
        ));
        let unchanged = deploy("no change", &mut timings);
        assert!(
            unchanged["functions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["actions"] == json!([])),
            "{unchanged}"
        );
        assert_eq!(writes(&proxy), Vec::<String>::new());

        // 20 functions get another environment.
        let path = packed.out.join("manifest.json");
        let mut manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for name in names.iter().take(20) {
            common::deploy::entry_mut(&mut manifest, name)["env"] =
                json!({"STAGE": format!("run-{jobs}")});
        }
        std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
        let changed = deploy("20 changed", &mut timings);
        let updated = changed["functions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["actions"] == json!(["update-configuration"]))
            .count();
        assert_eq!(updated, names.len().min(20), "{changed}");
    }
    for line in &timings {
        eprintln!("{line}");
    }
}
