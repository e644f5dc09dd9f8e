//! The host's background workers, each a loop that turns what it finds into
//! calls on the application core:
//!
//! - [`spawn_timer_worker`]: due timers of the durable timer table →
//!   [`App::fire_timer`] (escalation timers), [`App::fire_contact_delivery`]
//!   (contact form deliveries) or [`App::run_sync_job`] (sync
//!   schedules, [`TimerSchedules`]: a recurring one armed again first);
//! - [`run_delivery_worker`]: visible jobs of the durable notification queue
//!   → [`App::deliver`], then removed, or put back after the backoff the
//!   delivery asked for;
//! - [`run_sweeper`]: every minute, [`App::sweep`];
//! - [`run_purger`]: every few seconds, [`App::purge_deleted_environments`]
//!   (the sweep purges too, as the escalator does on AWS; this only makes a
//!   deleted environment's id free sooner on the host).
//!
//! Several hosts may run them on one table: every operation re-checks the
//! state it acts on, so a timer or job handled twice pages once.

use std::sync::Arc;
use std::time::Duration;

use quper_core::App;
use quper_core::contact::delivery::DeliveryTimer;
use quper_core::notifications::delivery::Delivered;
use quper_core::notifications::queue::TableQueue;
use quper_core::oncall::escalation::EscalationTimer;
use quper_core::ports::{Clock, Timer};
use quper_store_local::{SyncTimer, TableTimers, TimerSchedules, run_worker};
use tokio::sync::watch;

/// How often the timer worker looks for due timers.
pub const TIMER_POLL: Duration = Duration::from_millis(250);
/// How often the delivery worker looks for queued notifications it was not
/// woken for (retries coming due, jobs queued by another process).
pub const DELIVERY_POLL: Duration = Duration::from_millis(250);

/// Fires due timers until `shutdown` turns true.
pub fn spawn_timer_worker(
    app: App,
    timers: TableTimers,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let schedules = TimerSchedules::new(Arc::new(timers.clone()), clock.clone());
    let handler = move |timer: Timer| {
        let app = app.clone();
        let schedules = schedules.clone();
        async move {
            if let Some(sync) = SyncTimer::of(&timer.payload) {
                let fire = schedules.fired(&sync?).await.map_err(|err| err.to_string())?;
                return app.run_sync_job(&fire).await.map(|_| ()).map_err(|err| err.to_string());
            }
            if let Some(delivery) = DeliveryTimer::of(&timer.payload) {
                return app
                    .fire_contact_delivery(&delivery)
                    .await
                    .map(|_| ())
                    .map_err(|err| err.to_string());
            }
            let payload: EscalationTimer =
                serde_json::from_value(timer.payload).map_err(|err| format!("not an escalation timer: {err}"))?;
            app.fire_timer(&payload)
                .await
                .map(|_| ())
                .map_err(|err| err.to_string())
        }
    };
    tokio::spawn(run_worker(timers, clock, TIMER_POLL, shutdown, handler))
}

/// Delivers the visible jobs of `queue` until `shutdown` turns true. Jobs
/// that fail for now come back after their backoff; nothing is dropped.
pub async fn run_delivery_worker(app: App, queue: Arc<TableQueue>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match queue.pending(app.store().now(), 50).await {
            Ok(jobs) if !jobs.is_empty() => {
                for (key, job) in jobs {
                    let requeue = match app.deliver(&job).await {
                        Ok(Delivered::RetryAfter(wait)) => Some(wait),
                        Ok(_) => None,
                        Err(err) => {
                            tracing::error!(error = %err, job = %job.id, "delivery failed; retrying later");
                            Some(Duration::from_secs(30))
                        }
                    };
                    let done = match requeue {
                        Some(wait) => queue.requeue(&key, job, wait).await,
                        None => queue.remove(&key).await,
                    };
                    if let Err(err) = done {
                        tracing::error!(error = %err, "could not update the notification queue");
                    }
                }
                app.store().record_job_run("notification_retry").await;
                continue;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "could not read the notification queue"),
        }
        tokio::select! {
            _ = queue.wait_for_jobs(DELIVERY_POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// How often the host's purger looks for deleted environments to purge.
pub const PURGE_EVERY: Duration = Duration::from_secs(5);
/// Most purge steps (of `quper_core::identity::purge::PURGE_PAGE` items) one
/// run of the purger takes.
pub const PURGE_STEPS_PER_RUN: usize = 100;

/// [`App::purge_deleted_environments`] every `every` until `shutdown` turns
/// true. Each run resumes where the last one (of any host) stopped.
pub async fn run_purger(app: App, every: Duration, shutdown: watch::Receiver<bool>) {
    run_every(every, shutdown, || async {
        if let Err(err) = app.purge_deleted_environments(PURGE_STEPS_PER_RUN).await {
            tracing::warn!(error = %err, "purging deleted environments failed; the next run resumes");
        }
    })
    .await
}

/// [`App::sweep`] every `every` until `shutdown` turns true.
pub async fn run_sweeper(app: App, every: Duration, shutdown: watch::Receiver<bool>) {
    run_every(every, shutdown, || async {
        if let Err(err) = app.sweep().await {
            tracing::warn!(error = %err, "the sweep for stranded work failed; the next one tries again");
        }
    })
    .await
}

/// Runs `work` every `every` (the first run after one period) until
/// `shutdown` turns true; a shutdown during the wait ends it at once.
async fn run_every<F, Fut>(every: Duration, mut shutdown: watch::Receiver<bool>, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        work().await;
    }
}
