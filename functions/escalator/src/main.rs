//! Lambda function: EventBridge Scheduler invokes it when an escalation,
//! acknowledgement-timeout or notification-rule timer is due (the engine
//! re-checks the incident and pages only if the timer is still current), and
//! every minute for the sweep of work lost on its way.

use quper_lambda::events::scheduler;

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_events(quper_lambda::app_from_env().await?, |app, event| async move {
        Ok(scheduler::fire(&app, event).await?)
    })
    .await
}
