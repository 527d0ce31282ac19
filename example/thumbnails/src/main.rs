//! Answers with the size a thumbnail of the given image would have: `{"width":1920,"height":1080}`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

const MAX_EDGE: f64 = 256.0;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let width = event.payload["width"].as_f64().unwrap_or(MAX_EDGE);
        let height = event.payload["height"].as_f64().unwrap_or(MAX_EDGE);
        let scale = (MAX_EDGE / width.max(height)).min(1.0);
        Ok::<Value, Error>(json!({
            "width": (width * scale).round() as u64,
            "height": (height * scale).round() as u64,
            "arch": std::env::consts::ARCH,
        }))
    }))
    .await
}
