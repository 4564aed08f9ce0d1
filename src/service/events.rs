//! A run's live status as server-sent events: `status` whenever its state or step changes
//! (read from the database, so a run carried out by another instance streams too), then one
//! `done` when it has ended.

use super::api::run_json;
use super::storage::{state, RunRow};
use super::AppState;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use std::convert::Infallible;
use std::time::Duration;

/// How often the stream looks at the run.
const POLL: Duration = Duration::from_millis(300);

struct Watch {
    app: AppState,
    id: i64,
    last: Option<(String, Option<String>)>,
    ended: bool,
}

/// The event stream of run `id` (already checked visible).
pub fn stream(app: AppState, first: RunRow) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = first.id;
    let start = Watch {
        app,
        id,
        last: None,
        ended: false,
    };
    let events = stream::unfold(start, |mut watch| async move {
        if watch.ended {
            return None;
        }
        loop {
            let run = match watch.app.storage.run(watch.id).await {
                Ok(Some(run)) => run,
                Ok(None) => return None,
                Err(_) => {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            let now = (run.state.clone(), run.step.clone());
            if state::is_final(&run.state) {
                watch.ended = true;
                let event = Event::default()
                    .event("done")
                    .data(run_json(&run).to_string());
                return Some((Ok(event), watch));
            }
            if watch.last.as_ref() != Some(&now) {
                watch.last = Some(now);
                let event = Event::default()
                    .event("status")
                    .data(run_json(&run).to_string());
                return Some((Ok(event), watch));
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
