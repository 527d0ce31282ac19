//! A tiny templating runtime: at init it loads the template Lambda names in `_HANDLER` from the
//! function's code (`$LAMBDA_TASK_ROOT`), then answers every event with the template rendered,
//! each `{{key}}` replaced by the event's `key` field.
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

fn render(template: &str, event: &Value) -> String {
    let mut text = template.to_string();
    if let Some(fields) = event.as_object() {
        for (key, value) in fields {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            text = text.replace(&format!("{{{{{key}}}}}"), &value);
        }
    }
    text
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let handler = std::env::var("_HANDLER")?;
    let path = std::path::Path::new(&std::env::var("LAMBDA_TASK_ROOT")?).join(&handler);
    let template = std::fs::read_to_string(&path)
        .map_err(|err| format!("cannot load the template `{}`: {err}", path.display()))?;
    let template = &template;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(json!({ "body": render(template, &event.payload) }))
    }))
    .await
}
