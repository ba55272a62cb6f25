//! A fixed-capacity table of distinct stacks with a count and a byte total each, filled from
//! a signal handler: allocated before sampling starts, then no allocation and no lock; a full
//! table counts what it could not keep instead of growing.

#![cfg(target_os = "linux")]

use crate::unwind::{MAX_DEPTH, Stack};

pub(crate) struct StackTable {
    slots: Box<[Slot]>,
    pub(crate) dropped: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    hash: u64,
    count: u64,
    stack: Stack,
}

const EMPTY: Slot = Slot {
    hash: 0,
    count: 0,
    stack: Stack::empty(),
};

/// How far an insert probes before giving up (the table then counts a dropped sample).
const PROBES: usize = 64;

impl StackTable {
    pub(crate) fn with_capacity(slots: usize) -> Self {
        Self {
            slots: vec![EMPTY; slots.next_power_of_two()].into_boxed_slice(),
            dropped: 0,
        }
    }

    /// Adds one sample of `stack`. Async-signal-safe.
    pub(crate) fn add(&mut self, stack: &Stack) {
        let hash = fnv(stack.as_slice()) | 1;
        let mask = self.slots.len() - 1;
        for probe in 0..PROBES {
            let slot = &mut self.slots[(hash as usize).wrapping_add(probe) & mask];
            if slot.hash == 0 {
                *slot = Slot {
                    hash,
                    count: 1,
                    stack: *stack,
                };
                return;
            }
            if slot.hash == hash && slot.stack.as_slice() == stack.as_slice() {
                slot.count += 1;
                return;
            }
        }
        self.dropped += 1;
    }

    /// Each distinct stack with its sample count.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u64], u64)> {
        self.slots
            .iter()
            .filter(|s| s.hash != 0)
            .map(|s| (s.stack.as_slice(), s.count))
    }

    pub(crate) fn total(&self) -> u64 {
        self.iter().map(|(_, n)| n).sum()
    }
}

fn fnv(frames: &[u64]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for f in frames {
        h = (h ^ f).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const _: () = assert!(MAX_DEPTH <= 128);

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(frames: &[u64]) -> Stack {
        let mut s = Stack::empty();
        s.frames[..frames.len()].copy_from_slice(frames);
        s.len = frames.len();
        s
    }

    #[test]
    fn counts_distinct_stacks_and_drops_when_full() {
        let mut t = StackTable::with_capacity(4);
        t.add(&stack(&[1, 2, 3]));
        t.add(&stack(&[1, 2, 3]));
        t.add(&stack(&[1, 2]));
        let mut all: Vec<_> = t.iter().map(|(s, n)| (s.to_vec(), n)).collect();
        all.sort();
        assert_eq!(all, vec![(vec![1, 2], 1), (vec![1, 2, 3], 2)]);
        for i in 10..20 {
            t.add(&stack(&[i]));
        }
        assert_eq!(t.iter().count(), 4);
        assert_eq!(t.dropped, 8);
        assert_eq!(t.total() + t.dropped, 13);
    }
}
