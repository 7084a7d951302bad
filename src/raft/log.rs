//! The replicated log of the KRaft core, in memory: entries `{ epoch, offset, data }` starting at offset 0
//! (no snapshots yet). The node shell backs it with `src/log` on the simulated disk; this type is the
//! core's view of what it has appended (flushed or not).
//!
//! `end_offset_for_epoch` is Kafka's `LeaderEpochFileCache.endOffsetFor` over the entries' epochs, and
//! `validate_offset_and_epoch` is `ReplicatedLog.validateOffsetAndEpoch` (KIP-595: the leader checks a
//! Fetch's `fetchOffset`/`lastFetchedEpoch` and answers `divergingEpoch` when they do not match its log).

use std::fmt;

/// One entry of the replicated log. An entry with empty `data` at the start of an epoch is the leader's
/// `LeaderChangeMessage` control record (KIP-595): it lets a new leader commit an entry of its own epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub epoch: i32,
    pub offset: u64,
    pub data: Vec<u8>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.data.is_empty() {
            write!(f, "{}@{}:<lc>", self.epoch, self.offset)
        } else {
            write!(
                f,
                "{}@{}:{}",
                self.epoch,
                self.offset,
                String::from_utf8_lossy(&self.data)
            )
        }
    }
}

/// Epoch and end offset (exclusive) of the largest epoch at or below a requested one, as in KIP-595's
/// `DivergingEpoch { Epoch, EndOffset }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetAndEpoch {
    pub epoch: i32,
    pub end_offset: u64,
}

#[derive(Clone, Debug, Default)]
pub struct RaftLog {
    entries: Vec<Entry>,
}

impl RaftLog {
    /// A log holding `entries`, which must be contiguous from offset 0 with non-decreasing epochs.
    pub fn from_entries(entries: Vec<Entry>) -> Self {
        let mut log = RaftLog::default();
        for e in entries {
            log.append(e);
        }
        log
    }

    pub fn log_end_offset(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Epoch of the last entry, 0 for an empty log (epochs start at 1).
    pub fn last_fetched_epoch(&self) -> i32 {
        self.entries.last().map_or(0, |e| e.epoch)
    }

    pub fn get(&self, offset: u64) -> Option<&Entry> {
        self.entries.get(usize::try_from(offset).ok()?)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entries in `[from, to)`, clamped to the log.
    pub fn slice(&self, from: u64, to: u64) -> &[Entry] {
        let end = to.min(self.log_end_offset()) as usize;
        let start = (from as usize).min(end);
        &self.entries[start..end]
    }

    pub fn append(&mut self, entry: Entry) {
        let leo = self.log_end_offset();
        let last = self.last_fetched_epoch();
        assert!(
            entry.offset == leo,
            "append at offset={} but log_end_offset={leo}",
            entry.offset
        );
        assert!(
            entry.epoch >= last,
            "append epoch={} below last epoch={last}",
            entry.epoch
        );
        self.entries.push(entry);
    }

    /// Removes every entry at or above `offset`.
    pub fn truncate_to(&mut self, offset: u64) {
        self.entries.truncate(offset as usize);
    }

    /// The largest epoch `<= epoch` present in the log and its end offset (the start of the next epoch, or
    /// the log end offset). `(0, 0)` when no entry has such an epoch.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> OffsetAndEpoch {
        // Entries are sorted by epoch: the first entry with a larger epoch ends the answer.
        let next = self.entries.partition_point(|e| e.epoch <= epoch);
        if next == 0 {
            return OffsetAndEpoch {
                epoch: 0,
                end_offset: 0,
            };
        }
        OffsetAndEpoch {
            epoch: self.entries[next - 1].epoch,
            end_offset: next as u64,
        }
    }

    /// `None` when a follower whose log ends at `fetch_offset` with last epoch `last_fetched_epoch` agrees
    /// with this log; otherwise the diverging epoch and end offset it must truncate to.
    pub fn validate_offset_and_epoch(&self, fetch_offset: u64, last_fetched_epoch: i32) -> Option<OffsetAndEpoch> {
        if fetch_offset == 0 && last_fetched_epoch == 0 {
            return None;
        }
        let end = self.end_offset_for_epoch(last_fetched_epoch);
        if end.epoch != last_fetched_epoch || end.end_offset < fetch_offset {
            return Some(end);
        }
        None
    }

    /// Kafka's `ReplicatedLog.truncateToEndOffset`: the offset a follower truncates to when the leader
    /// answers `divergingEpoch`: its own end of that epoch, capped by the leader's when the epochs match.
    pub fn truncation_offset_for(&self, diverging: OffsetAndEpoch) -> u64 {
        let local = self.end_offset_for_epoch(diverging.epoch);
        if local.epoch == diverging.epoch {
            local.end_offset.min(diverging.end_offset)
        } else {
            local.end_offset
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(epochs: &[i32]) -> RaftLog {
        let entries = epochs
            .iter()
            .enumerate()
            .map(|(i, &epoch)| Entry {
                epoch,
                offset: i as u64,
                data: vec![b'x'],
            })
            .collect();
        RaftLog::from_entries(entries)
    }

    #[test]
    fn end_offset_for_epoch_answers_the_largest_epoch_at_or_below() {
        let l = log(&[1, 1, 3, 3, 3, 5]);
        assert_eq!(
            l.end_offset_for_epoch(0),
            OffsetAndEpoch {
                epoch: 0,
                end_offset: 0
            }
        );
        assert_eq!(
            l.end_offset_for_epoch(1),
            OffsetAndEpoch {
                epoch: 1,
                end_offset: 2
            }
        );
        assert_eq!(
            l.end_offset_for_epoch(2),
            OffsetAndEpoch {
                epoch: 1,
                end_offset: 2
            }
        );
        assert_eq!(
            l.end_offset_for_epoch(4),
            OffsetAndEpoch {
                epoch: 3,
                end_offset: 5
            }
        );
        assert_eq!(
            l.end_offset_for_epoch(9),
            OffsetAndEpoch {
                epoch: 5,
                end_offset: 6
            }
        );
    }

    #[test]
    fn a_fetch_past_the_end_of_its_epoch_diverges_at_that_end() {
        let leader = log(&[1, 1, 3, 3]);
        assert_eq!(leader.validate_offset_and_epoch(2, 1), None);
        assert_eq!(leader.validate_offset_and_epoch(4, 3), None);
        assert_eq!(
            leader.validate_offset_and_epoch(3, 1),
            Some(OffsetAndEpoch {
                epoch: 1,
                end_offset: 2
            })
        );
        assert_eq!(
            leader.validate_offset_and_epoch(3, 2),
            Some(OffsetAndEpoch {
                epoch: 1,
                end_offset: 2
            })
        );
        assert_eq!(
            leader.validate_offset_and_epoch(5, 3),
            Some(OffsetAndEpoch {
                epoch: 3,
                end_offset: 4
            })
        );
    }

    #[test]
    fn follower_truncates_to_its_own_end_of_the_diverging_epoch() {
        let follower = log(&[1, 1, 2, 2, 2]);
        assert_eq!(
            follower.truncation_offset_for(OffsetAndEpoch {
                epoch: 1,
                end_offset: 2
            }),
            2
        );
        assert_eq!(
            follower.truncation_offset_for(OffsetAndEpoch {
                epoch: 2,
                end_offset: 3
            }),
            3
        );
        assert_eq!(
            follower.truncation_offset_for(OffsetAndEpoch {
                epoch: 1,
                end_offset: 9
            }),
            2
        );
    }
}
