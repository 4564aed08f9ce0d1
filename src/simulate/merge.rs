//! `spoke simulate merge`: the reports of a run's shards combined into the run's report:
//! counts summed, latency histograms added (so percentiles are those of every request), and
//! the slices' exactly-once audits summed into one audit of the whole run.

use crate::simulate::report::{
    decode_histogram, encode_histogram, latency_histogram, Audit, ExactlyOnce, Latency,
    SimulateReport, SyncFigures, MAX_PROBLEMS,
};
use crate::simulate::shard::Shard;
use std::collections::BTreeMap;
use std::path::Path;

/// Why shard reports cannot be merged; each names the file(s) at fault.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No report was given.
    #[error("no shard report to merge")]
    Empty,
    /// A file could not be read.
    #[error("{file}: cannot read it: {source}")]
    Unreadable {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a `simulate` JSON report.
    #[error("{file}: not a `spoke simulate` JSON report: {message}")]
    NotAReport {
        /// The file.
        file: String,
        /// What is wrong, and where in the file.
        message: String,
    },
    /// A report of a whole run, not of a shard.
    #[error("{file}: not a shard report (it has no `shard`): run each shard with --shard I/N")]
    NotAShard {
        /// The file.
        file: String,
    },
    /// A report's latency histogram cannot be read.
    #[error("{file}: `latency_histogram` is unreadable: {message}")]
    BadHistogram {
        /// The file.
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// Two reports are not of the same run.
    #[error("{first} and {other} are not shards of one run: their {what} differ ({first_value} and {other_value})")]
    Differ {
        /// The file compared against.
        first: String,
        /// The file that differs.
        other: String,
        /// What differs.
        what: &'static str,
        /// Its value in `first`.
        first_value: String,
        /// Its value in `other`.
        other_value: String,
    },
    /// Two reports of the same shard.
    #[error("{first} and {other} are both shard {shard}")]
    Overlap {
        /// One file.
        first: String,
        /// The other.
        other: String,
        /// The shard.
        shard: Shard,
    },
    /// Shards of the run have no report.
    #[error(
        "no report of shard {missing} (of {count}; given: {given}): merge needs every shard of the run"
    )]
    Missing {
        /// The missing shards' indexes.
        missing: String,
        /// How many shards the run has.
        count: usize,
        /// The shards given.
        given: String,
    },
    /// A shard's count of deliveries is not its slice's.
    #[error("{file}: shard {shard} planned {planned} deliveries, but its slice of the run's {run_planned} holds {expected}")]
    WrongSize {
        /// The file.
        file: String,
        /// Its shard.
        shard: Shard,
        /// What it says it planned.
        planned: usize,
        /// What the whole run plans.
        run_planned: usize,
        /// What its slice holds.
        expected: usize,
    },
}

/// Reads one shard's JSON report (`spoke simulate --shard I/N --report json:PATH`).
pub fn read_shard_report(path: &Path) -> Result<SimulateReport, MergeError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| MergeError::Unreadable {
        file: file.clone(),
        source,
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let at = error.path().to_string();
        MergeError::NotAReport {
            file,
            message: if at == "." {
                error.inner().to_string()
            } else {
                format!("{} (at `{at}`)", error.inner())
            },
        }
    })
}

/// Merges the reports of every shard of one run, each named by its file, into the run's
/// report. Refuses reports of different runs (tool, partner, seed, mock faults, shard count or
/// run size), two reports of one shard, and a run with shards missing.
pub fn merge(reports: Vec<(String, SimulateReport)>) -> Result<SimulateReport, MergeError> {
    let mut by_shard: BTreeMap<usize, (String, Shard, SimulateReport)> = BTreeMap::new();
    for (file, report) in reports {
        let shard = report
            .shard
            .ok_or_else(|| MergeError::NotAShard { file: file.clone() })?;
        if let Some((first, ..)) = by_shard.get(&shard.index) {
            return Err(MergeError::Overlap {
                first: first.clone(),
                other: file,
                shard,
            });
        }
        by_shard.insert(shard.index, (file, shard, report));
    }
    let mut shards = by_shard.into_values();
    let (first_file, first_shard, first) = shards.next().ok_or(MergeError::Empty)?;
    let rest: Vec<(String, Shard, SimulateReport)> = shards.collect();
    for (file, shard, report) in &rest {
        same_run(&first_file, &first, first_shard, file, report, *shard)?;
    }
    let all: Vec<(String, Shard, SimulateReport)> =
        std::iter::once((first_file, first_shard, first))
            .chain(rest)
            .collect();
    let count = first_shard.count;
    let given: Vec<usize> = all.iter().map(|(_, shard, _)| shard.index).collect();
    let missing: Vec<String> = (0..count)
        .filter(|index| !given.contains(index))
        .map(|index| index.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing: missing.join(", "),
            count,
            given: given
                .iter()
                .map(|index| index.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    for (file, shard, report) in &all {
        let expected = shard.size_of(report.run_planned);
        if report.planned != expected {
            return Err(MergeError::WrongSize {
                file: file.clone(),
                shard: *shard,
                planned: report.planned,
                run_planned: report.run_planned,
                expected,
            });
        }
    }
    combine(all)
}

/// Refuses `other` unless it is another shard of `first`'s run.
fn same_run(
    first_file: &str,
    first: &SimulateReport,
    first_shard: Shard,
    file: &str,
    other: &SimulateReport,
    shard: Shard,
) -> Result<(), MergeError> {
    let audit_method = |report: &SimulateReport| {
        report
            .audit
            .as_ref()
            .map_or_else(|| "none".to_owned(), |audit| audit.method.clone())
    };
    let compared: [(&'static str, String, String); 7] = [
        ("tool versions", first.tool.clone(), other.tool.clone()),
        ("partners", first.partner.clone(), other.partner.clone()),
        ("seeds", first.seed.to_string(), other.seed.to_string()),
        (
            "shard counts",
            first_shard.count.to_string(),
            shard.count.to_string(),
        ),
        (
            "run sizes (deliveries of the whole run)",
            first.run_planned.to_string(),
            other.run_planned.to_string(),
        ),
        (
            "partner kinds (mock or not) and mock faults",
            format!("mock {} {:?}", first.mock, first.faults),
            format!("mock {} {:?}", other.mock, other.faults),
        ),
        ("audit methods", audit_method(first), audit_method(other)),
    ];
    for (what, first_value, other_value) in compared {
        if first_value != other_value {
            return Err(MergeError::Differ {
                first: first_file.to_owned(),
                other: file.to_owned(),
                what,
                first_value,
                other_value,
            });
        }
    }
    Ok(())
}

/// The run's report from every shard's, checked to be one run's.
fn combine(all: Vec<(String, Shard, SimulateReport)>) -> Result<SimulateReport, MergeError> {
    let mut histogram = latency_histogram();
    histogram.auto(true);
    for (file, _, report) in &all {
        let shard_histogram = decode_histogram(&report.latency_histogram).map_err(|message| {
            MergeError::BadHistogram {
                file: file.clone(),
                message,
            }
        })?;
        histogram
            .add(&shard_histogram)
            .map_err(|error| MergeError::BadHistogram {
                file: file.clone(),
                message: format!("{error:?}"),
            })?;
    }
    let (first_file, _, first) = &all[0];
    let latency_histogram =
        encode_histogram(&histogram).map_err(|message| MergeError::BadHistogram {
            file: first_file.clone(),
            message,
        })?;

    let reports: Vec<&SimulateReport> = all.iter().map(|(_, _, report)| report).collect();
    let sum = |count: fn(&SimulateReport) -> usize| reports.iter().map(|r| count(r)).sum();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for report in &reports {
        for (class, count) in &report.failed {
            *failed.entry(class.clone()).or_default() += count;
        }
    }
    let delivered: usize = sum(|r| r.delivered);
    let ended = delivered + failed.values().sum::<usize>();
    // Shards run side by side, maybe on several machines: the run lasts from the first
    // shard's start to the last one's end.
    let start = reports
        .iter()
        .map(|r| r.started_at)
        .min()
        .unwrap_or(first.started_at);
    let end = reports
        .iter()
        .map(|r| r.started_at + chrono::Duration::milliseconds(r.duration_ms as i64))
        .max()
        .unwrap_or(start);
    let span_ms = (end - start).num_milliseconds().max(0) as u64;
    let client_cpu_ms: Option<u64> = reports.iter().map(|r| r.client_cpu_ms).sum();
    let mut base_urls: Vec<String> = Vec::new();
    for report in &reports {
        if !base_urls.contains(&report.base_url) {
            base_urls.push(report.base_url.clone());
        }
    }

    let audit = merge_audits(&all);
    let exactly_once = ExactlyOnce::judge(&failed, delivered, audit.as_ref());
    Ok(SimulateReport {
        tool: first.tool.clone(),
        partner: first.partner.clone(),
        base_url: base_urls.join(", "),
        mock: first.mock,
        faults: first.faults.clone(),
        seed: first.seed,
        shard: None,
        merged_shards: Some(all.len()),
        sync: SyncFigures {
            staff: reports.iter().map(|r| r.sync.staff).max().unwrap_or(0),
            sources: reports.iter().map(|r| r.sync.sources).max().unwrap_or(0),
            duration_ms: reports
                .iter()
                .map(|r| r.sync.duration_ms)
                .max()
                .unwrap_or(0),
        },
        run_planned: first.run_planned,
        planned: sum(|r| r.planned),
        started: sum(|r| r.started),
        delivered,
        retried: sum(|r| r.retried),
        resends: sum(|r| r.resends),
        failed,
        started_at: start,
        duration_ms: span_ms,
        throughput_per_s: delivered as f64 / (span_ms as f64 / 1000.0).max(1e-9),
        latency: Latency::of(&histogram),
        latency_histogram,
        client_cpu_ms,
        client_cpu_us_per_delivery: client_cpu_ms
            .filter(|_| ended > 0)
            .map(|cpu| cpu as f64 * 1000.0 / ended as f64),
        audit,
        exactly_once,
    })
}

/// One audit of the run from the slices': every lead is in exactly one slice, so counts add
/// up; duplicates are countable only where every shard could count them.
fn merge_audits(all: &[(String, Shard, SimulateReport)]) -> Option<Audit> {
    let mut merged: Option<Audit> = None;
    for (_, shard, report) in all {
        let audit = report.audit.as_ref()?;
        let into = merged.get_or_insert_with(|| Audit {
            method: audit.method.clone(),
            duplicated: Some(0),
            duplicates: audit.duplicates.clone(),
            ..Audit::default()
        });
        // Shards of one run count duplicates the same way; should one say otherwise, keep it.
        if !into.duplicates.contains(&audit.duplicates) {
            into.duplicates = format!("{}; shard {shard}: {}", into.duplicates, audit.duplicates);
        }
        into.checked += audit.checked;
        into.lost += audit.lost;
        into.wrong += audit.wrong;
        into.duplicated = into.duplicated.zip(audit.duplicated).map(|(a, b)| a + b);
        for problem in &audit.problems {
            if into.problems.len() < MAX_PROBLEMS {
                into.problems.push(format!("shard {shard}: {problem}"));
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shard `index` of `count` of a run of `run_planned`, with every request taking
    /// `latency_ms` (each of `requests`), and an audit with `lost` leads.
    fn shard_report(
        index: usize,
        count: usize,
        run_planned: usize,
        requests: u64,
        latency_ms: u64,
        lost: usize,
    ) -> (String, SimulateReport) {
        let shard = Shard { index, count };
        let planned = shard.size_of(run_planned);
        let mut histogram = latency_histogram();
        histogram.record_n(latency_ms * 1000, requests).unwrap();
        let report = SimulateReport {
            tool: "spoke test".into(),
            partner: "Partner".into(),
            base_url: "http://partner".into(),
            mock: false,
            faults: Vec::new(),
            seed: 7,
            shard: Some(shard),
            merged_shards: None,
            sync: SyncFigures::default(),
            run_planned,
            planned,
            started: planned,
            delivered: planned,
            retried: 0,
            resends: 0,
            failed: BTreeMap::new(),
            started_at: chrono::DateTime::from_timestamp(1_000 + index as i64, 0).unwrap(),
            duration_ms: 2_000,
            throughput_per_s: 0.0,
            latency: Latency::of(&histogram),
            latency_histogram: encode_histogram(&histogram).unwrap(),
            client_cpu_ms: Some(10),
            client_cpu_us_per_delivery: None,
            audit: Some(Audit {
                method: "read back".into(),
                checked: planned,
                lost,
                duplicated: None,
                duplicates: "not counted".into(),
                wrong: 0,
                problems: (0..lost).map(|n| format!("lost: lead {n}")).collect(),
            }),
            exactly_once: if lost > 0 {
                ExactlyOnce::Broken
            } else {
                ExactlyOnce::NotVerified
            },
        };
        (format!("shard-{index}.json"), report)
    }

    #[test]
    fn merged_percentiles_come_from_every_request_not_from_averaging_shards() {
        // 99 fast requests in one shard, one slow request in the other: the median of the run
        // is fast, though the mean of the shards' medians would be half a second.
        let merged = merge(vec![
            shard_report(0, 2, 10, 99, 1, 0),
            shard_report(1, 2, 10, 1, 1000, 0),
        ])
        .unwrap();
        assert!(
            (merged.latency.p50_ms - 1.0).abs() < 0.01,
            "{:?}",
            merged.latency
        );
        assert!(
            (merged.latency.max_ms - 1000.0).abs() < 1.0,
            "{:?}",
            merged.latency
        );
        assert_eq!(merged.histogram().unwrap().len(), 100);
        assert_eq!(merged.merged_shards, Some(2));
        assert_eq!(merged.shard, None);
    }

    #[test]
    fn merged_counts_and_audits_are_sums_over_the_shards() {
        let merged = merge(vec![
            shard_report(2, 3, 11, 5, 2, 1),
            shard_report(0, 3, 11, 5, 2, 0),
            shard_report(1, 3, 11, 5, 2, 2),
        ])
        .unwrap();
        assert_eq!(
            (merged.planned, merged.delivered, merged.run_planned),
            (11, 11, 11)
        );
        let audit = merged.audit.as_ref().unwrap();
        assert_eq!((audit.checked, audit.lost, audit.duplicated), (11, 3, None));
        assert_eq!(audit.problems[0], "shard 1/3: lost: lead 0");
        assert!(!merged.clean());
        // From the first start (second 1000) to the last end (second 1002 + 2 s).
        assert_eq!(merged.duration_ms, 4_000);
        assert_eq!(merged.client_cpu_ms, Some(30));
    }

    #[test]
    fn duplicates_are_counted_only_where_every_shard_counted_them() {
        let mut first = shard_report(0, 2, 4, 1, 1, 0);
        let mut second = shard_report(1, 2, 4, 1, 1, 0);
        first.1.audit.as_mut().unwrap().duplicated = Some(1);
        second.1.audit.as_mut().unwrap().duplicated = Some(2);
        let both = merge(vec![first.clone(), second.clone()]).unwrap();
        assert_eq!(both.audit.unwrap().duplicated, Some(3));
        second.1.audit.as_mut().unwrap().duplicated = None;
        let one = merge(vec![first, second]).unwrap();
        assert_eq!(one.audit.unwrap().duplicated, None);
    }

    #[test]
    fn refuses_shards_of_different_runs_naming_both_files() {
        let mut other = shard_report(1, 2, 10, 1, 1, 0);
        other.1.seed = 8;
        let error = merge(vec![shard_report(0, 2, 10, 1, 1, 0), other])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "shard-0.json and shard-1.json are not shards of one run: their seeds differ (7 and 8)"
        );
        let mut other = shard_report(1, 2, 10, 1, 1, 0);
        other.1.partner = "Another".into();
        let error = merge(vec![shard_report(0, 2, 10, 1, 1, 0), other]).unwrap_err();
        assert!(error.to_string().contains("partners differ"), "{error}");
        let error = merge(vec![
            shard_report(0, 2, 10, 1, 1, 0),
            shard_report(1, 2, 12, 1, 1, 0),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("run sizes"), "{error}");
    }

    #[test]
    fn refuses_overlapping_and_missing_shards() {
        let error = merge(vec![
            shard_report(1, 3, 10, 1, 1, 0),
            ("again.json".into(), shard_report(1, 3, 10, 1, 1, 0).1),
        ])
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "shard-1.json and again.json are both shard 1/3"
        );
        let error = merge(vec![shard_report(1, 3, 10, 1, 1, 0)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no report of shard 0, 2 (of 3; given: 1): merge needs every shard of the run"
        );
        let error = merge(vec![
            shard_report(0, 2, 10, 1, 1, 0),
            shard_report(1, 3, 10, 1, 1, 0),
        ])
        .unwrap_err();
        assert!(
            error.to_string().contains("shard counts differ (2 and 3)"),
            "{error}"
        );
        assert!(matches!(merge(Vec::new()), Err(MergeError::Empty)));
    }

    #[test]
    fn refuses_a_whole_run_a_wrong_slice_and_a_broken_histogram() {
        let mut whole = shard_report(0, 1, 10, 1, 1, 0);
        whole.1.shard = None;
        let error = merge(vec![whole]).unwrap_err();
        assert!(matches!(error, MergeError::NotAShard { .. }), "{error}");
        let mut short = shard_report(0, 1, 10, 1, 1, 0);
        short.1.planned = 9;
        let error = merge(vec![short]).unwrap_err().to_string();
        assert!(error.contains("planned 9 deliveries"), "{error}");
        let mut broken = shard_report(0, 1, 10, 1, 1, 0);
        broken.1.latency_histogram = "not*base64".into();
        let error = merge(vec![broken]).unwrap_err().to_string();
        assert!(
            error.starts_with("shard-0.json: `latency_histogram` is unreadable"),
            "{error}"
        );
    }

    #[test]
    fn reading_names_the_file_and_the_field_at_fault() {
        let dir = std::env::temp_dir().join(format!("spoke-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.json");
        let mut report = serde_json::to_value(shard_report(0, 1, 1, 1, 1, 0).1).unwrap();
        report["planned"] = serde_json::json!("many");
        std::fs::write(&path, report.to_string()).unwrap();
        let error = read_shard_report(&path).unwrap_err().to_string();
        assert!(error.starts_with(&path.display().to_string()), "{error}");
        assert!(error.contains("at `planned`"), "{error}");
        let missing = read_shard_report(&dir.join("none.json")).unwrap_err();
        assert!(
            matches!(missing, MergeError::Unreadable { .. }),
            "{missing}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
