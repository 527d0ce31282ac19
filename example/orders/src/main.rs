//! Quotes an order: `{"items":[{"sku":"widget","quantity":2}]}` → `{"total_cents":2500,...}`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Order {
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    sku: String,
    quantity: u32,
}

#[derive(Serialize)]
struct Quote {
    total_cents: u64,
    currency: String,
    unknown_skus: Vec<String>,
}

/// Reads `key = value` lines of the bundled pricing file.
fn load_prices() -> Vec<(String, String)> {
    let root = std::env::var("LAMBDA_TASK_ROOT").unwrap_or_else(|_| ".".into());
    let text = std::fs::read_to_string(format!("{root}/etc/pricing.toml")).unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let prices = load_prices();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Order>| {
        let prices = prices.clone();
        async move {
            let lookup = |key: &str| prices.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            let mut quote = Quote {
                total_cents: 0,
                currency: lookup("currency").unwrap_or_else(|| "EUR".into()),
                unknown_skus: Vec::new(),
            };
            for item in event.payload.items {
                match lookup(&item.sku).and_then(|p| p.parse::<u64>().ok()) {
                    Some(price) => quote.total_cents += price * u64::from(item.quantity),
                    None => quote.unknown_skus.push(item.sku),
                }
            }
            Ok::<Quote, Error>(quote)
        }
    }))
    .await
}
