//! One simulated file (an inode, as ALICE and POSIX model it): sparse pages holding its durable contents,
//! the current contents the running system sees, and the pending (unsynced) operations between the two.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::Rng;

/// Page size of the sparse store: a page that was never written reads as zeros and costs no memory.
pub(super) const PAGE_BYTES: u64 = 4096;
/// A write may be torn by a power loss at a sector boundary (relative to the file), never inside a sector.
pub(super) const SECTOR_BYTES: u64 = 512;

type Page = Arc<[u8; PAGE_BYTES as usize]>;

/// A change to a file's data or length not yet made durable by `sync`.
#[derive(Debug, Clone)]
enum PendingOp {
    Write { offset: u64, data: WriteData },
    SetLen(u64),
}

/// The bytes of a pending write.
#[derive(Debug, Clone)]
enum WriteData {
    /// `len` bytes that still sit unchanged in the current copy at the write's offset. Kafka appends and
    /// never flushes per write (`log.flush.interval.messages`), so nearly every pending write is one of these:
    /// keeping a second copy of each would double the memory of every unsynced log.
    InPlace(u64),
    /// Bytes copied out before a later change to the current copy overwrote or cut them.
    Copied(Vec<u8>),
}

/// Sparse file contents: page index → page. Pages are shared (copy on write) between the durable and the
/// current copy, so a sync copies no data. Invariant: bytes past the file's length are zero.
#[derive(Debug, Clone, Default)]
struct Pages(BTreeMap<u64, Page>);

impl Pages {
    fn write(&mut self, offset: u64, data: &[u8], dirty: &mut BTreeSet<u64>) {
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let idx = pos / PAGE_BYTES;
            let at = (pos % PAGE_BYTES) as usize;
            let n = rest.len().min(PAGE_BYTES as usize - at);
            let page = self.0.entry(idx).or_insert_with(|| Arc::new([0; PAGE_BYTES as usize]));
            Arc::make_mut(page)[at..at + n].copy_from_slice(&rest[..n]);
            dirty.insert(idx);
            pos += n as u64;
            rest = &rest[n..];
        }
    }

    /// Reads exactly `n` bytes at `offset` (the caller clamps to the file's length).
    fn read(&self, offset: u64, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        if n == 0 {
            return out;
        }
        let end = offset + n as u64;
        for (&idx, page) in self.0.range(offset / PAGE_BYTES..=(end - 1) / PAGE_BYTES) {
            let page_start = idx * PAGE_BYTES;
            let from = offset.max(page_start);
            let to = end.min(page_start + PAGE_BYTES);
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&page[(from - page_start) as usize..(to - page_start) as usize]);
        }
        out
    }

    /// Drops everything at or past `len` (zeroing the tail of the last partial page).
    fn shrink(&mut self, len: u64, dirty: &mut BTreeSet<u64>) {
        let gone = self.0.split_off(&len.div_ceil(PAGE_BYTES));
        dirty.extend(gone.keys());
        let tail = (len % PAGE_BYTES) as usize;
        if tail != 0 {
            if let Some(page) = self.0.get_mut(&(len / PAGE_BYTES)) {
                Arc::make_mut(page)[tail..].fill(0);
                dirty.insert(len / PAGE_BYTES);
            }
        }
    }

    fn flip_bit(&mut self, offset: u64, bit: u8) {
        let page = self
            .0
            .entry(offset / PAGE_BYTES)
            .or_insert_with(|| Arc::new([0; PAGE_BYTES as usize]));
        Arc::make_mut(page)[(offset % PAGE_BYTES) as usize] ^= 1 << (bit % 8);
    }
}

/// One file. Invariant: for every page index not in `dirty`, the durable and current copies hold the same
/// bytes (both absent, or both present and equal).
#[derive(Debug, Clone, Default)]
pub(super) struct FileNode {
    durable: Pages,
    durable_len: u64,
    current: Pages,
    current_len: u64,
    pending: Vec<PendingOp>,
    /// The `InPlace` pending writes by offset: start → (end, index in `pending`). Disjoint: a change to any
    /// of their bytes copies them out first.
    in_place: BTreeMap<u64, (u64, usize)>,
    dirty: BTreeSet<u64>,
}

impl FileNode {
    /// The current length (pending changes included).
    pub(super) fn len(&self) -> u64 {
        self.current_len
    }

    /// The length as of the last sync.
    pub(super) fn durable_len(&self) -> u64 {
        self.durable_len
    }

    /// How many writes and length changes wait for the next sync.
    pub(super) fn pending_ops(&self) -> usize {
        self.pending.len()
    }

    /// Up to `len` bytes of the current contents at `offset`; short at the end, empty past it.
    pub(super) fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        if offset >= self.current_len {
            return Vec::new();
        }
        let n = (len as u64).min(self.current_len - offset) as usize;
        self.current.read(offset, n)
    }

    /// Writes `data` at `offset` (the caller checked that `offset + data.len()` fits in a u64).
    pub(super) fn write_at(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return; // pwrite of nothing changes nothing, not even the length
        }
        let end = offset + data.len() as u64;
        self.copy_out(offset, end);
        self.write_current(offset, data);
        self.in_place.insert(offset, (end, self.pending.len()));
        self.pending.push(PendingOp::Write {
            offset,
            data: WriteData::InPlace(data.len() as u64),
        });
    }

    /// Sets the length (truncate or sparse extension).
    pub(super) fn set_len(&mut self, len: u64) {
        self.copy_out(len, u64::MAX);
        self.set_current_len(len);
        self.pending.push(PendingOp::SetLen(len));
    }

    fn write_current(&mut self, offset: u64, data: &[u8]) {
        self.current.write(offset, data, &mut self.dirty);
        self.current_len = self.current_len.max(offset + data.len() as u64);
    }

    fn set_current_len(&mut self, len: u64) {
        if len < self.current_len {
            self.current.shrink(len, &mut self.dirty);
        }
        self.current_len = len;
    }

    /// Copies every `InPlace` pending write that overlaps `[from, to)` out of the current copy, which is
    /// about to change there.
    fn copy_out(&mut self, from: u64, to: u64) {
        // Disjoint ranges sorted by start are sorted by end too: walk back from the last one starting
        // before `to` while they still end past `from`.
        while let Some((&start, &(end, index))) = self.in_place.range(..to).next_back() {
            if end <= from {
                break;
            }
            self.in_place.remove(&start);
            let bytes = self.current.read(start, (end - start) as usize);
            if let PendingOp::Write { data, .. } = &mut self.pending[index] {
                *data = WriteData::Copied(bytes);
            }
        }
    }

    /// fsync: the current contents become durable. Only the pages changed since the last sync are touched.
    pub(super) fn sync(&mut self) {
        for idx in std::mem::take(&mut self.dirty) {
            match self.current.0.get(&idx) {
                Some(page) => self.durable.0.insert(idx, Arc::clone(page)),
                None => self.durable.0.remove(&idx),
            };
        }
        self.durable_len = self.current_len;
        self.pending.clear();
        self.in_place.clear();
    }

    /// Power loss: the file keeps its durable contents plus a random in-order prefix of its pending ops, the
    /// first op past the prefix possibly torn at a sector boundary. Returns how many pending ops were lost
    /// (a torn write counts as lost). Everything that survived is durable afterwards.
    pub(super) fn power_loss(&mut self, rng: &mut impl Rng) -> usize {
        if self.pending.is_empty() {
            return 0;
        }
        let ops = std::mem::take(&mut self.pending);
        self.in_place.clear();
        let kept = rng.random_range(0..=ops.len());
        // What the `InPlace` writes wrote is still in the copy the running system saw.
        let seen = std::mem::replace(&mut self.current, self.durable.clone());
        let bytes = |offset: u64, data: &WriteData| match data {
            WriteData::InPlace(len) => seen.read(offset, *len as usize),
            WriteData::Copied(bytes) => bytes.clone(),
        };
        self.current_len = self.durable_len;
        self.dirty.clear();
        for op in &ops[..kept] {
            match op {
                PendingOp::Write { offset, data } => self.write_current(*offset, &bytes(*offset, data)),
                PendingOp::SetLen(len) => self.set_current_len(*len),
            }
        }
        if let Some(PendingOp::Write { offset, data }) = ops.get(kept) {
            let data = bytes(*offset, data);
            if let Some(cut) = torn_cut(*offset, data.len() as u64, rng) {
                self.write_current(*offset, &data[..cut as usize]);
            }
        }
        self.durable = self.current.clone();
        self.durable_len = self.current_len;
        self.dirty.clear();
        ops.len() - kept
    }

    /// Flips one bit at rest, in both the durable and the current copy (where each covers `offset`).
    pub(super) fn flip_bit(&mut self, offset: u64, bit: u8) {
        // A pending write keeps the bytes it wrote: the flip hits the file, not the write in flight.
        self.copy_out(offset, offset + 1);
        self.current.flip_bit(offset, bit);
        if offset < self.durable_len {
            self.durable.flip_bit(offset, bit);
        } else {
            self.dirty.insert(offset / PAGE_BYTES);
        }
    }

    /// Pages held in memory (a page shared by the durable and current copies counts once).
    pub(super) fn resident_pages(&self) -> usize {
        let durable_only = self.durable.0.iter().filter(|(idx, page)| {
            self.current
                .0
                .get(idx)
                .is_none_or(|current| !Arc::ptr_eq(current, page))
        });
        self.current.0.len() + durable_only.count()
    }
}

/// Where a power loss tears a write of `len` bytes at `offset`: `None` (nothing of it survives) or the
/// number of leading bytes that did, ending on a sector boundary strictly inside the write.
fn torn_cut(offset: u64, len: u64, rng: &mut impl Rng) -> Option<u64> {
    let end = offset + len;
    let first = (offset / SECTOR_BYTES + 1) * SECTOR_BYTES;
    if first >= end {
        return None;
    }
    let boundaries = (end - 1 - first) / SECTOR_BYTES + 1;
    match rng.random_range(0..=boundaries) {
        0 => None,
        j => Some(first + (j - 1) * SECTOR_BYTES - offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn torn_cut_lands_on_a_sector_boundary_inside_the_write() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            if let Some(cut) = torn_cut(100, 2000, &mut rng) {
                assert_eq!((100 + cut) % SECTOR_BYTES, 0, "cut={cut}");
                assert!(cut > 0 && cut < 2000, "cut={cut}");
            }
        }
        assert_eq!(torn_cut(512, 512, &mut rng), None, "one whole sector cannot tear");
        assert_eq!(torn_cut(10, 100, &mut rng), None, "inside one sector cannot tear");
    }

    #[test]
    fn shrink_then_extend_reads_zeros_where_data_was() {
        let mut file = FileNode::default();
        file.write_at(0, &[7; 5000]);
        file.set_len(10);
        file.set_len(6000);
        let data = file.read(0, 6000);
        assert_eq!(&data[..10], &[7; 10]);
        assert!(data[10..].iter().all(|&b| b == 0), "extension must read as zeros");
    }

    /// Every state a power loss leaves, over many seeds: (length, contents).
    fn outcomes(build: impl Fn() -> FileNode) -> BTreeSet<Vec<u8>> {
        (0..64)
            .map(|seed| {
                let mut file = build();
                file.power_loss(&mut ChaCha8Rng::seed_from_u64(seed));
                file.read(0, 1 << 16)
            })
            .collect()
    }

    #[test]
    fn a_pending_write_keeps_its_bytes_when_a_later_write_overwrites_them() {
        let got = outcomes(|| {
            let mut file = FileNode::default();
            file.write_at(0, &[1; 100]);
            file.write_at(50, &[2; 100]);
            file
        });
        let both = [vec![1; 50], vec![2; 100]].concat();
        assert_eq!(got, BTreeSet::from([vec![], vec![1; 100], both]));
    }

    #[test]
    fn a_pending_write_keeps_its_bytes_when_a_later_truncation_cuts_them() {
        let got = outcomes(|| {
            let mut file = FileNode::default();
            file.write_at(0, &[1; 100]);
            file.set_len(10);
            file.write_at(10, &[3; 10]);
            file
        });
        let rewritten = [vec![1; 10], vec![3; 10]].concat();
        assert_eq!(got, BTreeSet::from([vec![], vec![1; 100], vec![1; 10], rewritten]));
    }

    #[test]
    fn a_bit_flip_hits_the_file_not_the_pending_write() {
        let got = outcomes(|| {
            let mut file = FileNode::default();
            file.write_at(0, &[1; 100]);
            file.flip_bit(5, 0);
            file
        });
        assert_eq!(
            got,
            BTreeSet::from([vec![], vec![1; 100]]),
            "the replayed write restores the byte"
        );
        let mut file = FileNode::default();
        file.write_at(0, &[1; 100]);
        file.flip_bit(5, 0);
        assert_eq!(file.read(5, 1), vec![0], "the running system sees the flip");
    }

    #[test]
    fn sync_shares_pages_instead_of_copying() {
        let mut file = FileNode::default();
        file.write_at(0, &[1; 3 * PAGE_BYTES as usize]);
        file.sync();
        assert_eq!(file.resident_pages(), 3);
        file.write_at(0, &[2]);
        assert_eq!(file.resident_pages(), 4, "only the written page is copied");
    }
}
