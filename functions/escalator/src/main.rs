//! Lambda function: EventBridge Scheduler invokes it when an escalation
//! timer is due; the engine re-checks the incident and pages the next level
//! only if the timer is still current.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    quper_http::lambda::init_tracing();
    let escalator = quper_lambda::escalator_from_env(quper_lambda::table_from_env().await?).await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let escalator = escalator.clone();
            async move {
                let outcome = quper_core::oncall::escalation::handle_scheduler_event(&escalator, event.payload).await?;
                Ok::<_, lambda_runtime::Error>(outcome)
            }
        },
    ))
    .await
}
