//! The queue's consumer: each instance takes queued runs from the database (`SKIP LOCKED` in
//! PostgreSQL, so instances sharing one database never take the same run) and carries out up to
//! `--workers` at once. A heartbeat marks the instance and its runs alive; a sweep marks
//! interrupted what a stopped instance left running, so no run stays "running" forever and no
//! queued run is lost.

use super::storage::{now_ms, Backend, StorageError};
use super::AppState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// How often an instance says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long without a heartbeat before an instance's runs count as interrupted.
pub const STALE_AFTER: Duration = Duration::from_secs(15);

/// How often an idle worker looks for runs queued by other instances.
const POLL: Duration = Duration::from_millis(500);

/// Registers this instance and marks interrupted what stopped instances left behind. With
/// SQLite (one instance per file, kept so by a file lock) every run still marked running was
/// left by a stop.
pub async fn start_instance(app: &AppState) -> Result<Vec<i64>, StorageError> {
    let storage = &app.storage;
    let me = app.instance.as_ref();
    let stale_before = now_ms() - STALE_AFTER.as_millis() as i64;
    storage.register_instance(me).await?;
    storage
        .sweep(me, stale_before, storage.backend() == Backend::Sqlite)
        .await
}

/// Runs the heartbeat, the sweep and the workers until `stop` turns true; then marks this
/// instance's unfinished runs interrupted.
pub async fn run(app: AppState, workers: usize, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(workers.max(1)));
    let beat = {
        let app = app.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut ticks = 0u32;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(HEARTBEAT) => {}
                    _ = stop.changed() => break,
                }
                if let Err(error) = app.storage.heartbeat(&app.instance).await {
                    eprintln!("spoke serve: heartbeat: {error}");
                }
                ticks += 1;
                if ticks.is_multiple_of(3) {
                    let stale_before = now_ms() - STALE_AFTER.as_millis() as i64;
                    match app.storage.sweep(&app.instance, stale_before, false).await {
                        Ok(marked) if !marked.is_empty() => eprintln!(
                            "spoke serve: marked interrupted (their instance stopped): runs {marked:?}"
                        ),
                        Ok(_) => {}
                        Err(error) => eprintln!("spoke serve: sweep: {error}"),
                    }
                }
            }
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore stays open"),
            _ = stop.changed() => break,
        };
        let wake = app.wake.notified();
        match app.storage.claim(&app.instance).await {
            Ok(Some(id)) => {
                let app = app.clone();
                tasks.spawn(async move {
                    super::runs::execute(&app, id).await;
                    drop(permit);
                });
                // Finished tasks are let go as they end.
                while tasks.try_join_next().is_some() {}
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => break,
                }
            }
            Err(error) => {
                drop(permit);
                eprintln!("spoke serve: cannot take a run: {error}");
                tokio::select! {
                    _ = tokio::time::sleep(POLL * 4) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
    tasks.abort_all();
    beat.abort();
    match app.storage.stop_instance(&app.instance).await {
        Ok(marked) if !marked.is_empty() => {
            eprintln!("spoke serve: stopping: runs {marked:?} marked interrupted")
        }
        Ok(_) => {}
        Err(error) => eprintln!("spoke serve: stopping: {error}"),
    }
}
