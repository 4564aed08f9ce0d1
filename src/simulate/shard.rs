//! `--shard I/N`: which of N disjoint slices of a run's deliveries one process delivers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The `index`-th (from 0) of `count` slices of a run: the deliveries whose position in the
/// run's plan is `index` modulo `count`, so every slice holds prospects and members alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    /// From 0 (as a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`).
    pub index: usize,
    /// How many shards the run has.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N`; the error says what is wrong with the value.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}`: expected I/N, e.g. 0/4 (shards count from 0)"))?;
        let number = |part: &str, what: &str| {
            part.trim().parse::<usize>().map_err(|_| {
                format!(
                    "`{text}`: the {what} `{part}` is not a whole number (expected I/N, e.g. 0/4)"
                )
            })
        };
        let index = number(index, "shard index")?;
        let count = number(count, "shard count")?;
        if count == 0 {
            return Err(format!("`{text}`: the shard count must be at least 1"));
        }
        if index >= count {
            return Err(format!(
                "`{text}`: the shard index must be below the count (shards count from 0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether the delivery at `position` of the run's plan is this shard's.
    pub fn holds(&self, position: usize) -> bool {
        position % self.count == self.index
    }

    /// How many of `run_planned` deliveries this shard holds.
    pub fn size_of(&self, run_planned: usize) -> usize {
        run_planned / self.count + usize::from(self.index < run_planned % self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn parses_an_index_below_the_count() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(Shard::parse("0/1"), Ok(Shard { index: 0, count: 1 }));
    }

    #[test]
    fn refuses_values_that_name_no_shard() {
        for (value, says) in [
            ("4/4", "below the count"),
            ("1/0", "at least 1"),
            ("a/4", "shard index `a`"),
            ("1/x", "shard count `x`"),
            ("-1/4", "not a whole number"),
            ("3", "expected I/N"),
        ] {
            let error = Shard::parse(value).unwrap_err();
            assert!(error.contains(says), "{value}: {error}");
        }
    }

    #[test]
    fn shards_hold_every_position_exactly_once_and_know_their_size() {
        for count in 1..6 {
            for run_planned in [0, 1, 7, 12, 13] {
                let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
                for position in 0..run_planned {
                    assert_eq!(shards.iter().filter(|s| s.holds(position)).count(), 1);
                }
                for shard in &shards {
                    let held = (0..run_planned).filter(|p| shard.holds(*p)).count();
                    assert_eq!(shard.size_of(run_planned), held, "{shard} of {run_planned}");
                }
            }
        }
    }
}
