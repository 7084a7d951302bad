//! L1: the group coordinator's pure core (Kafka's classic group protocol) and the partition assignors.
//! No IO, no clock, no global RNG: `now_ms` and the RNG are passed in; responses and the records to append
//! to `__consumer_offsets` come out as data ([`coordinator::Effect`]). A coordinator that takes over a
//! partition of `__consumer_offsets` rebuilds its groups with [`GroupCoordinator::load`].

pub mod assignor;
pub mod coordinator;
mod state;
mod membership;
mod offsets;

#[cfg(test)]
mod coordinator_tests;
#[cfg(test)]
mod props;
pub mod records;
mod sticky;

pub use assignor::{Assignor, GroupAssignment, MemberSubscription, RebalanceProtocol};
pub use coordinator::{
    err, CommitOffset, Effect, FetchedOffset, GroupConfig, GroupCoordinator, GroupDescription, GroupState, GroupView,
    JoinGroupRequest, JoinGroupResponse, JoinMember, LeaveGroupResponse, MemberDescription, OffsetCommitRequest,
    OffsetFetchResponse, Response, SyncGroupRequest, SyncGroupResponse,
};
pub use records::{GroupMetadataValue, GroupRecord, MemberMetadata, OffsetCommitValue, RecordError};

/// Kafka's internal topic of committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// `offsets.topic.num.partitions` default.
pub const OFFSETS_TOPIC_NUM_PARTITIONS_DEFAULT: i32 = 50;
/// `offsets.topic.replication.factor` default.
pub const OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT: i16 = 3;

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, wrapping in i32.
pub fn java_string_hash_code(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32))
}

/// Kafka's `Utils.abs`: `Math.abs` except that `Integer.MIN_VALUE` maps to 0.
pub fn java_utils_abs(n: i32) -> i32 {
    if n == i32::MIN {
        0
    } else {
        n.abs()
    }
}

/// The `__consumer_offsets` partition that holds a group, so its leader is the group's coordinator
/// (FindCoordinator): `Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`.
pub fn partition_for(group_id: &str, offsets_topic_num_partitions: i32) -> i32 {
    assert!(
        offsets_topic_num_partitions > 0,
        "offsets_topic_num_partitions={offsets_topic_num_partitions}"
    );
    java_utils_abs(java_string_hash_code(group_id)) % offsets_topic_num_partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_code_matches_hand_computed_vectors() {
        assert_eq!(java_string_hash_code(""), 0);
        assert_eq!(java_string_hash_code("a"), 97);
        // "ab" = 97*31 + 98
        assert_eq!(java_string_hash_code("ab"), 3105);
        // "hello" is a classic Java vector.
        assert_eq!(java_string_hash_code("hello"), 99_162_322);
        // "group-1" (g=103 r=114 o=111 u=117 p=112 '-'=45 '1'=49) folded as h*31+c, wrapping in i32.
        assert_eq!(java_string_hash_code("group-1"), 293_427_299);
        assert_eq!(java_string_hash_code("group-2"), 293_427_300);
        // Wraps negative: Kafka takes Utils.abs of it.
        assert_eq!(java_string_hash_code("my-group"), -1_906_497_762);
    }

    #[test]
    fn find_coordinator_partition_is_abs_hash_mod_partition_count() {
        assert_eq!(partition_for("group-1", 50), 49);
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("a", 50), 97 % 50);
        assert_eq!(partition_for("anything", 1), 0);
    }

    #[test]
    fn utils_abs_maps_int_min_to_zero_as_kafka_does() {
        assert_eq!(java_utils_abs(i32::MIN), 0);
        assert_eq!(java_utils_abs(-5), 5);
        // "polygenelubricants" is the well-known Java string whose hashCode is Integer.MIN_VALUE.
        assert_eq!(java_string_hash_code("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
    }
}
