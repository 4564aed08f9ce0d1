//! The benchmark's request bodies: the prospect creates `spoke simulate` sends to the built-in
//! partner, one JSON document per line, each lead's external id replaced by `@EXTERNAL@` so that
//! a load generator can make every request a new lead.

use spoke::connector::ClientLimits;
use spoke::partner::{Faults, Sandbox};
use spoke::profile::Profile;
use spoke::simulate::{delivery_bodies, SimulateOptions};
use std::io::Write;

#[tokio::main]
async fn main() {
    let count = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .expect("usage: simulate_bodies COUNT");
    let options = SimulateOptions {
        profile: Profile::reference(),
        base_url: None,
        mock: true,
        sandbox: Sandbox::default_seed(),
        faults: Faults::none(),
        seed: 1,
        leads: count,
        members: 0,
        concurrency: 1,
        rate: None,
        duration: None,
        limits: ClientLimits::default(),
        retries: 0,
        shard: None,
    };
    let bodies = delivery_bodies(options)
        .await
        .expect("the built-in partner syncs");
    let mut out = std::io::stdout().lock();
    for (external_id, body) in bodies {
        let text = String::from_utf8_lossy(&body);
        let line = match external_id {
            Some(id) => text.replace(&id, "@EXTERNAL@"),
            None => text.into_owned(),
        };
        writeln!(out, "{line}").expect("writing to stdout");
    }
}
