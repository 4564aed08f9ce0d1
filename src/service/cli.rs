//! `spoke serve` on the command line: starts the service, prints where it listens (and, on the
//! first start, the admin's sign-in link), and stops cleanly on Ctrl-C or SIGTERM, marking the
//! runs it was carrying out interrupted.

use super::{start, ServeOptions, ADMIN_TOKEN_ENV};
use crate::cli::{Failure, ServeArgs};
use crate::exit_codes;
use crate::output::Output;

/// Runs `spoke serve` until it is stopped.
pub fn run(args: ServeArgs, out: &Output) -> Result<i32, Failure> {
    let admin_token = std::env::var(ADMIN_TOKEN_ENV)
        .ok()
        .filter(|token| !token.trim().is_empty());
    if admin_token.as_ref().is_some_and(|token| token.len() < 16) {
        return Err(Failure {
            code: exit_codes::INVALID_INPUT,
            error: anyhow::anyhow!("{ADMIN_TOKEN_ENV}: at least 16 characters"),
        });
    }
    if let Some(token) = &admin_token {
        out.redactor().learn(token);
    }
    let options = ServeOptions {
        db: args.db.clone(),
        host: args.host,
        port: args.port,
        workers: usize::from(args.workers),
        secret_env: args.secret_env.clone(),
        admin_token,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure {
            code: exit_codes::RUN_FAILED,
            error: error.into(),
        })?;
    let result = runtime.block_on(async {
        let running = start(options).await.map_err(|error| Failure {
            code: exit_codes::RUN_FAILED,
            error: error.into(),
        })?;
        let url = format!("http://{}", running.addr);
        let database = match running.backend {
            super::storage::Backend::Sqlite => format!("SQLite file {}", args.db),
            super::storage::Backend::Postgres => {
                "PostgreSQL (queue shared with other instances)".to_owned()
            }
        };
        if !running.interrupted.is_empty() {
            out.print(&format!(
                "marked interrupted (left running by a stop): runs {:?}\n",
                running.interrupted
            ));
        }
        out.print(&format!("spoke serve listening on {url}\n"));
        out.print(&format!(
            "database: {database}; {} worker(s)\n",
            args.workers
        ));
        match &running.new_admin_token {
            // Shown once, on the terminal of whoever started the service; never logged again.
            Some(token) => out.print(&format!(
                "first start: the admin's token is {token}\n  sign in: {url}/login?token={token}\n"
            )),
            None => out.print(&format!("sign in: {url}/login\n")),
        }
        out.print("Ctrl-C stops\n");
        wait_for_stop().await;
        out.print("spoke serve stopping\n");
        running.stop().await;
        out.print("spoke serve stopped\n");
        Ok(exit_codes::CONFORMANT)
    });
    // A session cut short may still be waiting on its partner in a blocking thread: the
    // runs are marked interrupted already, so nothing waits for it.
    runtime.shutdown_background();
    result
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
