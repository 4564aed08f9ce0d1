//! The figures of one `simulate` run (or of shards merged into one): counts, latency with the
//! histogram behind it, the exactly-once audit, and their summary for a terminal.

use crate::simulate::shard::Shard;
use base64::Engine;
use chrono::{DateTime, Utc};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// The percentiles of a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        if histogram.is_empty() {
            return Latency::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// How many problems an audit lists (the counts hold them all).
pub(crate) const MAX_PROBLEMS: usize = 20;

/// A new histogram of request latencies: 1 µs to 10 minutes, 3 significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// A histogram in the report's text form: HdrHistogram's V2 compressed format in base64, which
/// HdrHistogram's own tools read too.
pub(crate) fn encode_histogram(histogram: &Histogram<u64>) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|error| format!("cannot write the latency histogram: {error}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A histogram back from [`encode_histogram`]'s form; the error says what is wrong with it.
pub(crate) fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|error| format!("not base64: {error}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|error| format!("not an HdrHistogram: {error}"))
}

/// The exactly-once audit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    /// How the records were counted.
    pub method: String,
    /// Leads checked.
    pub checked: usize,
    /// Delivered leads missing in the partner.
    pub lost: usize,
    /// Leads held more than once (`None` when the profile gives no way to count).
    pub duplicated: Option<usize>,
    /// How duplicates were counted, or why they could not be.
    #[serde(default)]
    pub duplicates: String,
    /// Leads with the wrong owner or source.
    pub wrong: usize,
    /// The first problems found, one line each.
    pub problems: Vec<String>,
}

/// The sync before delivery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncFigures {
    /// Partner staff read.
    pub staff: usize,
    /// Partner lead sources read.
    pub sources: usize,
    /// Wall time of the sync.
    pub duration_ms: u64,
}

/// The result of a simulation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimulateReport {
    /// `spoke <version>`.
    pub tool: String,
    /// The partner's name.
    pub partner: String,
    /// The base URL.
    pub base_url: String,
    /// Whether this was the in-process mock partner.
    pub mock: bool,
    /// Mock faults on.
    pub faults: Vec<String>,
    /// The seed.
    pub seed: u64,
    /// Which slice of the run's deliveries this report covers (`--shard I/N`); `None` for a
    /// whole run.
    #[serde(default)]
    pub shard: Option<Shard>,
    /// How many shard reports were merged into this one (`spoke simulate merge`).
    #[serde(default)]
    pub merged_shards: Option<usize>,
    /// The sync.
    pub sync: SyncFigures,
    /// Deliveries the whole run plans, all shards together.
    pub run_planned: usize,
    /// Deliveries planned here (prospects + members): this shard's slice of `run_planned`.
    pub planned: usize,
    /// Deliveries started.
    pub started: usize,
    /// Deliveries saved with an id.
    pub delivered: usize,
    /// Deliveries that needed at least one resend.
    pub retried: usize,
    /// Resends in all.
    pub resends: usize,
    /// Failed deliveries by class.
    pub failed: BTreeMap<String, usize>,
    /// When the delivery phase started (UTC): merged shards span from the first start to the
    /// last end.
    pub started_at: DateTime<Utc>,
    /// Wall time of the delivery phase.
    pub duration_ms: u64,
    /// Deliveries saved per second.
    pub throughput_per_s: f64,
    /// Latency of every request of the delivery phase.
    pub latency: Latency,
    /// Every request's latency in microseconds, as an HdrHistogram (V2 compressed format,
    /// base64): shards' histograms add up exactly, so merged percentiles are true ones.
    pub latency_histogram: String,
    /// CPU time of this process during the delivery phase, when the partner runs elsewhere
    /// (so it is the client's alone) and the platform tells it.
    pub client_cpu_ms: Option<u64>,
    /// `client_cpu_ms` per delivery ended (saved or failed), in microseconds.
    pub client_cpu_us_per_delivery: Option<f64>,
    /// The exactly-once audit, where the records can be counted.
    pub audit: Option<Audit>,
    /// What the run shows of exactly-once delivery, and so its exit code.
    pub exactly_once: ExactlyOnce,
}

/// What a simulation shows of exactly-once delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExactlyOnce {
    /// Every delivery was saved, and the audit checked each one: none lost, duplicated or
    /// wrong.
    Verified,
    /// A delivery failed, or the audit found a lead lost, duplicated or wrong.
    Broken,
    /// Nothing failed or was found wrong, but the audit could not count duplicates or could
    /// not check every delivery: exactly once is not shown.
    NotVerified,
}

impl ExactlyOnce {
    /// Judges a run from its failed deliveries, its saved count and its audit.
    pub(crate) fn judge(
        failed: &BTreeMap<String, usize>,
        delivered: usize,
        audit: Option<&Audit>,
    ) -> Self {
        let failures = failed.values().sum::<usize>();
        // A run that saved nothing (a sync alone) holds nothing to verify.
        if failures == 0 && delivered == 0 {
            return ExactlyOnce::Verified;
        }
        let Some(audit) = audit else {
            return if failures > 0 {
                ExactlyOnce::Broken
            } else {
                ExactlyOnce::NotVerified
            };
        };
        if failures > 0 || audit.lost > 0 || audit.wrong > 0 || audit.duplicated.unwrap_or(0) > 0 {
            ExactlyOnce::Broken
        } else if audit.duplicated.is_none() || audit.checked < delivered {
            ExactlyOnce::NotVerified
        } else {
            ExactlyOnce::Verified
        }
    }

    /// The exit code of `spoke simulate` (and of `simulate merge`) for it.
    pub fn exit_code(self) -> i32 {
        match self {
            ExactlyOnce::Verified => crate::exit_codes::CONFORMANT,
            ExactlyOnce::Broken => crate::exit_codes::NOT_CONFORMANT,
            ExactlyOnce::NotVerified => crate::exit_codes::NOT_VERIFIED,
        }
    }
}

impl SimulateReport {
    /// The latency histogram (microseconds) behind `latency`.
    pub fn histogram(&self) -> Result<Histogram<u64>, String> {
        decode_histogram(&self.latency_histogram)
    }

    /// Whether the run delivered everything exactly once, and showed it.
    pub fn clean(&self) -> bool {
        self.exactly_once == ExactlyOnce::Verified
    }

    /// The summary for a terminal or a log.
    pub fn render(&self) -> String {
        let mut out = format!(
            "spoke simulate: {} at {}{}\n",
            self.partner,
            self.base_url,
            if self.mock {
                " [built-in mock partner]"
            } else {
                ""
            }
        );
        if !self.faults.is_empty() {
            out.push_str(&format!("mock faults: {}\n", self.faults.join(", ")));
        }
        if let Some(shard) = &self.shard {
            out.push_str(&format!(
                "shard {shard}: {} of the run's {} deliveries (seed {})\n",
                self.planned, self.run_planned, self.seed
            ));
        }
        if let Some(count) = self.merged_shards {
            out.push_str(&format!(
                "merged {count} shards of the run (seed {}); the sync is the slowest shard's\n",
                self.seed
            ));
        }
        out.push_str(&format!(
            "sync: {} staff, {} lead sources in {} ms\n",
            self.sync.staff, self.sync.sources, self.sync.duration_ms
        ));
        out.push_str(&format!(
            "delivered {} of {} planned ({} started) in {:.2} s: {:.0} per second\n",
            self.delivered,
            self.planned,
            self.started,
            self.duration_ms as f64 / 1000.0,
            self.throughput_per_s
        ));
        out.push_str(&format!(
            "retried {} deliveries ({} resends); failed: {}\n",
            self.retried,
            self.resends,
            if self.failed.is_empty() {
                "none".to_owned()
            } else {
                self.failed
                    .iter()
                    .map(|(class, count)| format!("{count} {class}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
        out.push_str(&format!(
            "latency per request: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
            self.latency.p50_ms, self.latency.p90_ms, self.latency.p99_ms, self.latency.max_ms
        ));
        if let (Some(cpu_ms), Some(per_delivery)) =
            (self.client_cpu_ms, self.client_cpu_us_per_delivery)
        {
            out.push_str(&format!(
                "client CPU: {cpu_ms} ms, {per_delivery:.1} µs per delivery\n"
            ));
        }
        match &self.audit {
            Some(audit) => {
                out.push_str(&format!(
                    "exactly-once audit ({}): {} checked, lost = {}, duplicated = {}, wrong = {}\n",
                    audit.method,
                    audit.checked,
                    audit.lost,
                    audit
                        .duplicated
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "not counted".into()),
                    audit.wrong
                ));
                out.push_str(&format!("  duplicates: {}\n", audit.duplicates));
                for problem in &audit.problems {
                    out.push_str(&format!("  {problem}\n"));
                }
            }
            None => {
                out.push_str("exactly-once audit: not possible (the profile reads nothing back)\n")
            }
        }
        out.push_str(&match self.exactly_once {
            ExactlyOnce::Verified => {
                "exactly once: verified (every delivery saved and checked)\n".to_owned()
            }
            ExactlyOnce::Broken => "exactly once: no (see the failures and the audit)\n".to_owned(),
            ExactlyOnce::NotVerified => format!(
                "exactly once: not verified (exit {}): nothing failed or was found wrong, but {}\n",
                crate::exit_codes::NOT_VERIFIED,
                match &self.audit {
                    None => "nothing could be read back".to_owned(),
                    Some(audit) if audit.duplicated.is_none() => {
                        "duplicates could not be counted".to_owned()
                    }
                    Some(audit) => format!(
                        "only {} of {} deliveries could be checked",
                        audit.checked, self.delivered
                    ),
                }
            ),
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(checked: usize, duplicated: Option<usize>) -> Audit {
        Audit {
            checked,
            duplicated,
            ..Audit::default()
        }
    }

    #[test]
    fn exactly_once_is_verified_only_when_every_delivery_was_checked_and_duplicates_counted() {
        let none_failed = BTreeMap::new();
        let judge = |delivered, audit: Option<Audit>| {
            ExactlyOnce::judge(&none_failed, delivered, audit.as_ref())
        };
        assert_eq!(judge(10, Some(audit(10, Some(0)))), ExactlyOnce::Verified);
        assert_eq!(judge(10, Some(audit(10, None))), ExactlyOnce::NotVerified);
        assert_eq!(judge(10, Some(audit(4, Some(0)))), ExactlyOnce::NotVerified);
        assert_eq!(judge(10, None), ExactlyOnce::NotVerified);
        assert_eq!(judge(10, Some(audit(10, Some(1)))), ExactlyOnce::Broken);
        // A sync alone saved nothing: nothing to verify.
        assert_eq!(judge(0, None), ExactlyOnce::Verified);
        let one_failed = BTreeMap::from([("rejected".to_owned(), 1)]);
        assert_eq!(
            ExactlyOnce::judge(&one_failed, 0, None),
            ExactlyOnce::Broken
        );
        assert_eq!(
            ExactlyOnce::NotVerified.exit_code(),
            crate::exit_codes::NOT_VERIFIED
        );
    }
}
