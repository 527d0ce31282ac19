//! Logs one line per invocation and one at shutdown, beside the function's own logs.

use lambda_extension::{Error, LambdaEvent, NextEvent, service_fn};

async fn on_event(event: LambdaEvent) -> Result<(), Error> {
    match event.next {
        NextEvent::Invoke(invoke) => eprintln!("[audit-log] invoke {}", invoke.request_id),
        NextEvent::Shutdown(shutdown) => eprintln!("[audit-log] shutdown: {}", shutdown.shutdown_reason),
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_extension::run(service_fn(on_event)).await
}
