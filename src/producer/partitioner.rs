//! Kafka's default partitioning (`BuiltInPartitioner`, KIP-794).
//!
//! - A keyed record goes to `(murmur2(key) & 0x7fffffff) % num_partitions` (Java's `Utils.murmur2` and
//!   `Utils.toPositive`), so keys land where a Java producer would put them.
//! - A record without a key sticks to one partition until about `batch.size` bytes were sent to it, then
//!   another partition is drawn uniformly (KIP-794's uniform sticky partitioner).

use rand::Rng;

/// Kafka's `batch.size` default (16 KiB).
pub const BATCH_SIZE_DEFAULT: usize = 16_384;

const MURMUR2_SEED: u32 = 0x9747_b28c;
const MURMUR2_M: u32 = 0x5bd1_e995;
const MURMUR2_R: u32 = 24;

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with Kafka's seed, as a Java `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    let mut h: u32 = MURMUR2_SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        // Java reads each 4-byte group little-endian.
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(MURMUR2_M);
        k ^= k >> MURMUR2_R;
        k = k.wrapping_mul(MURMUR2_M);
        h = h.wrapping_mul(MURMUR2_M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(MURMUR2_M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(MURMUR2_M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's producer picks for a keyed record: `toPositive(murmur2(key)) % num_partitions`.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    assert!(num_partitions > 0, "num_partitions={num_partitions}");
    (murmur2(key) & 0x7fff_ffff) % num_partitions
}

/// KIP-794's sticky choice for records without a key: one partition until about `batch.size` bytes were
/// sent to it, then a uniformly drawn one (which may be the same partition again, as in Kafka).
#[derive(Debug, Clone)]
pub struct StickyPartitioner {
    batch_size: usize,
    current: Option<i32>,
    produced_bytes: usize,
}

impl StickyPartitioner {
    /// `batch_size` is Kafka's `batch.size` (see [`BATCH_SIZE_DEFAULT`]).
    pub fn new(batch_size: usize) -> Self {
        Self {
            batch_size: batch_size.max(1),
            current: None,
            produced_bytes: 0,
        }
    }

    /// The partition for the next record without a key.
    pub fn partition(&mut self, num_partitions: i32, rng: &mut impl Rng) -> i32 {
        assert!(num_partitions > 0, "num_partitions={num_partitions}");
        match self.current {
            Some(p) if p < num_partitions && self.produced_bytes < self.batch_size => p,
            _ => {
                let p = rng.random_range(0..num_partitions);
                self.current = Some(p);
                self.produced_bytes = 0;
                p
            }
        }
    }

    /// Reports `bytes` sent to the current sticky partition; past `batch.size` the next call to
    /// [`partition`](Self::partition) switches.
    pub fn on_batch_sent(&mut self, bytes: usize) {
        self.produced_bytes = self.produced_bytes.saturating_add(bytes);
    }

    /// The partition records currently stick to, if one was chosen.
    pub fn current(&self) -> Option<i32> {
        self.current
    }
}

impl Default for StickyPartitioner {
    fn default() -> Self {
        Self::new(BATCH_SIZE_DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn murmur2_matches_kafka_utils_test_vectors() {
        // clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java `testMurmur2`.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
            (b"", 275_646_681),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), *expected, "key={:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn partition_for_key_masks_the_sign_bit_then_takes_the_remainder() {
        // murmur2("21") = -973932308; & 0x7fffffff = 1173551340.
        assert_eq!(partition_for_key(b"21", 10), 1_173_551_340 % 10);
        assert_eq!(partition_for_key(b"foobar", 1), 0);
        for n in 1..20 {
            let p = partition_for_key(b"some-key", n);
            assert!((0..n).contains(&p), "p={p} n={n}");
            assert_eq!(p, partition_for_key(b"some-key", n), "stable for n={n}");
        }
    }

    #[test]
    fn sticky_partitioner_sticks_until_batch_size_bytes_then_draws_again() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut sticky = StickyPartitioner::new(100);
        let first = sticky.partition(8, &mut rng);
        for _ in 0..9 {
            sticky.on_batch_sent(10);
            assert_eq!(sticky.partition(8, &mut rng), first, "still under batch.size");
        }
        sticky.on_batch_sent(10);
        // batch.size reached: the next record draws again, and the byte count starts over.
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let p = sticky.partition(8, &mut rng);
            assert!((0..8).contains(&p), "p={p}");
            assert_eq!(sticky.current(), Some(p));
            sticky.on_batch_sent(99);
            assert_eq!(sticky.partition(8, &mut rng), p, "99 of 100 bytes: still sticky");
            sticky.on_batch_sent(1);
            seen.insert(p);
        }
        assert!(seen.len() > 4, "50 draws over 8 partitions reached only {seen:?}");
    }

    #[test]
    fn sticky_partitioner_draws_every_partition_about_uniformly() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut sticky = StickyPartitioner::new(1);
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            let p = sticky.partition(4, &mut rng);
            counts[p as usize] += 1;
            sticky.on_batch_sent(1);
        }
        for (p, c) in counts.iter().enumerate() {
            assert!((800..1200).contains(c), "partition {p} drawn {c} times of 4000");
        }
    }

    #[test]
    fn sticky_partitioner_redraws_when_partitions_shrink_below_its_choice() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut sticky = StickyPartitioner::new(1 << 20);
        let mut p = sticky.partition(64, &mut rng);
        while p < 2 {
            sticky.on_batch_sent(1 << 20);
            p = sticky.partition(64, &mut rng);
        }
        let q = sticky.partition(2, &mut rng);
        assert!(q < 2, "q={q}");
        assert_eq!(sticky.partition(2, &mut rng), q, "sticks to the new choice");
    }

    #[test]
    fn same_seed_gives_the_same_sticky_sequence() {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut sticky = StickyPartitioner::new(10);
            (0..50)
                .map(|_| {
                    let p = sticky.partition(16, &mut rng);
                    sticky.on_batch_sent(5);
                    p
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
    }
}
