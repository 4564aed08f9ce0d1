//! A server running in the background of the current runtime, and the handle that stops it:
//! shared by the mock partner and the mock Connector API.

use std::future::Future;

/// Stops its server when told to or when dropped.
#[derive(Debug)]
pub struct StopHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl StopHandle {
    /// Spawns `serve`, which must finish once the receiver it is given resolves.
    pub fn spawn<F>(serve: impl FnOnce(tokio::sync::oneshot::Receiver<()>) -> F) -> StopHandle
    where
        F: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        StopHandle {
            stop: Some(stop),
            task: Some(tokio::spawn(serve(stopped))),
        }
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for StopHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
