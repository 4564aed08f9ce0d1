//! The mock partner's accept loop: HTTP/1.1 connections whose request headers must arrive within
//! a time limit, stopped gracefully (no new connections, open ones finish their request).

use axum::Router;
use std::future::Future;
use std::time::Duration;

/// Serves `app` on every connection `listener` accepts until `stop` resolves, then waits for
/// the open connections to finish. A client that takes longer than `header_timeout` to send a
/// request's headers (a trickle, or nothing on an idle connection) is disconnected.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    // Closed (its sender dropped) when the server stops: each connection then shuts down.
    let (stopping, stop_seen) = tokio::sync::watch::channel(());
    // Every connection holds a receiver; the server is done once none is left.
    let (all_closed, open) = tokio::sync::watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        let (io, _peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
        let mut stop_seen = stop_seen.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                // A failed connection (a header timeout, a reset) is the client's to see.
                _ = connection.as_mut() => {}
                _ = stop_seen.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(stopping);
    drop(open);
    all_closed.closed().await;
    Ok(())
}
