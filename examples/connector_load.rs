//! A load generator for `spoke connector` (used by scripts/connector-state-bench.sh): SENDERS
//! concurrent senders saving new prospects, each waiting for its answer before the next save;
//! prints saves per second over windows of the run, and can SIGKILL the server midway.
//!
//! Usage: connector_load API_URL SAVES [--senders N] [--window N] [--at N]... [--prefix P]
//!        [--kill-pid PID --kill-after N] [--acked FILE]
//! `--at N` reports the window of saves starting at the Nth (default: 0); `--acked FILE`
//! writes `record-id uuid` for every acknowledged save.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    api: String,
    saves: usize,
    senders: usize,
    window: usize,
    at: Vec<usize>,
    prefix: String,
    kill: Option<(u32, usize)>,
    acked: Option<std::path::PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut words = std::env::args().skip(1);
    let api = words.next().ok_or("the API URL is missing")?;
    let number = |word: Option<String>, what: &str| -> Result<usize, String> {
        word.ok_or(format!("{what} needs a value"))?
            .parse()
            .map_err(|error| format!("{what}: {error}"))
    };
    let saves = number(words.next(), "SAVES")?;
    let mut args = Args {
        api,
        saves,
        senders: 8,
        window: 10_000,
        at: Vec::new(),
        prefix: "L".into(),
        kill: None,
        acked: None,
    };
    let mut kill_pid = None;
    let mut kill_after = None;
    while let Some(word) = words.next() {
        match word.as_str() {
            "--senders" => args.senders = number(words.next(), "--senders")?.max(1),
            "--window" => args.window = number(words.next(), "--window")?.max(1),
            "--at" => args.at.push(number(words.next(), "--at")?),
            "--prefix" => args.prefix = words.next().ok_or("--prefix needs a value")?,
            "--kill-pid" => kill_pid = Some(number(words.next(), "--kill-pid")? as u32),
            "--kill-after" => kill_after = Some(number(words.next(), "--kill-after")?),
            "--acked" => args.acked = Some(words.next().ok_or("--acked needs a value")?.into()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if let (Some(pid), Some(after)) = (kill_pid, kill_after) {
        args.kill = Some((pid, after));
    }
    if args.at.is_empty() {
        args.at.push(0);
    }
    Ok(args)
}

fn prospect(record: &str) -> String {
    format!(
        "<user><providerInfo><identifier>SPOKE-PROVIDER</identifier><clientID>CLIENT-1</clientID><clubID>CLUB-1</clubID><recordID>{record}</recordID></providerInfo>\
         <userInfo><firstname>Ana</firstname><lastname>Silva {record}</lastname><email>{record}@example.com</email>\
         <userType>PROSPECT</userType><userStatus>ACTIVE</userStatus></userInfo></user>"
    )
}

#[tokio::main]
async fn main() {
    let args = match parse() {
        Ok(args) => Arc::new(args),
        Err(error) => {
            eprintln!("connector_load: {error}");
            std::process::exit(2);
        }
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client");
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    // When the nth acknowledgement arrived, for every window edge.
    let edges: Arc<Mutex<Vec<(usize, Instant)>>> = Default::default();
    let wanted: Arc<Vec<usize>> = Arc::new(
        args.at
            .iter()
            .flat_map(|&at| [at, at + args.window])
            .collect(),
    );
    let acked: Arc<Mutex<Vec<(String, String)>>> = Default::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.senders {
        let (http, args, next, done) = (http.clone(), args.clone(), next.clone(), done.clone());
        let (edges, wanted, acked) = (edges.clone(), wanted.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= args.saves {
                    return Ok(());
                }
                let record = format!("{}-{n}", args.prefix);
                let response = http
                    .post(format!("{}/user", args.api))
                    .header("content-type", "application/xml")
                    .body(prospect(&record))
                    .send()
                    .await
                    .map_err(|error| error.to_string())?;
                let status = response.status().as_u16();
                let body = response.text().await.map_err(|error| error.to_string())?;
                if status != 200 {
                    return Err(format!("{record}: status {status}: {body}"));
                }
                let uuid = body
                    .split("<uuid>")
                    .nth(1)
                    .and_then(|rest| rest.split("</uuid>").next())
                    .unwrap_or_default()
                    .to_owned();
                if args.acked.is_some() {
                    acked.lock().unwrap().push((record, uuid));
                }
                let count = done.fetch_add(1, Ordering::Relaxed) + 1;
                if wanted.contains(&count) {
                    edges.lock().unwrap().push((count, Instant::now()));
                }
                if let Some((pid, after)) = args.kill {
                    if count == after {
                        let _ = std::process::Command::new("kill")
                            .args(["-9", &pid.to_string()])
                            .status();
                    }
                }
            }
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failures.push(error),
            Err(error) => failures.push(error.to_string()),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    let edges = edges.lock().unwrap().clone();
    let time_of = |count: usize| {
        if count == 0 {
            Some(started)
        } else {
            edges.iter().find(|(n, _)| *n == count).map(|(_, at)| *at)
        }
    };
    for &at in &args.at {
        if let (Some(from), Some(to)) = (time_of(at), time_of(at + args.window)) {
            let seconds = to.duration_since(from).as_secs_f64();
            println!(
                "saves {at:>7}..{:<7} {:>8.0} saves/s ({} senders)",
                at + args.window,
                args.window as f64 / seconds,
                args.senders
            );
        }
    }
    println!(
        "{total} saves acknowledged in {elapsed:.1} s ({:.0} saves/s overall)",
        total as f64 / elapsed
    );
    if let Some(path) = &args.acked {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("--acked FILE"));
        for (record, uuid) in acked.lock().unwrap().iter() {
            let _ = writeln!(file, "{record} {uuid}");
        }
    }
    if !failures.is_empty() && args.kill.is_none() {
        eprintln!(
            "connector_load: {} senders failed: {}",
            failures.len(),
            failures[0]
        );
        std::process::exit(1);
    }
}
