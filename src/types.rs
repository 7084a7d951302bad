//! L0: the domain's nouns, by Kafka's names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A broker's `node.id` (Kafka uses an int32).
pub type BrokerId = i32;
/// A position in a partition's log.
pub type Offset = i64;
/// The epoch of a partition's leadership (bumped on every leader change).
pub type LeaderEpoch = i32;
/// The epoch of a partition's replica set / ISR (KIP-497 partition epoch).
pub type PartitionEpoch = i32;

/// A topic name and partition index, printed as Kafka does: `orders-0`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }

    /// Parses `topic-partition`, splitting at the last dash (topic names may contain dashes).
    pub fn parse(s: &str) -> Option<Self> {
        let (topic, partition) = s.rsplit_once('-')?;
        if topic.is_empty() {
            return None;
        }
        Some(Self::new(topic, partition.parse().ok()?))
    }

    /// The partition's directory in a log dir, as Kafka names it.
    pub fn dir_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_partition_round_trips_through_its_dir_name() {
        let tp = TopicPartition::new("my-topic", 12);
        assert_eq!(tp.dir_name(), "my-topic-12");
        assert_eq!(TopicPartition::parse("my-topic-12"), Some(tp));
        assert_eq!(TopicPartition::parse("-3"), None);
        assert_eq!(TopicPartition::parse("t-x"), None);
    }
}
