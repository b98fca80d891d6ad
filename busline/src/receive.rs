//! The receiving side shared by every transport: bus counters, rate-limited drop warnings,
//! the per-subscription duplicate window (check 7) and the decoding of network deliveries
//! (checks 1-5 of PROTOCOL.md §2.3).

use std::hash::Hasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use bytes::Bytes;
use uuid::Uuid;

use crate::envelope::Event;
use crate::error::DecodeErrorKind;
use crate::topic::{Identifier, Topic};
use crate::transport::Delivery;

/// A counter on a cache line of its own: publishers and subscribers count on different
/// threads, and sharing a line would make every delivery pay for the other side's writes.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

macro_rules! counters {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        /// Live counters of one bus, shared by its clones and subscriptions.
        #[derive(Debug, Default)]
        pub struct Counters {
            $($name: Padded,)*
            last_warn: [AtomicU64; COUNTER_COUNT],
        }

        /// A point-in-time copy of a bus's counters.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct CounterSnapshot {
            $($(#[$m])* pub $name: u64,)*
        }

        /// Which counter to bump.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        // Some counters only have a writer when a network transport is built in.
        #[allow(non_camel_case_types, dead_code)]
        #[repr(usize)]
        pub(crate) enum Counter { $($name,)* }

        const COUNTER_COUNT: usize = [$(stringify!($name)),*].len();

        impl Counters {
            /// Copies every counter.
            pub fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot { $($name: self.$name.0.load(Relaxed),)* }
            }

            fn cell(&self, c: Counter) -> &AtomicU64 {
                match c { $(Counter::$name => &self.$name.0,)* }
            }
        }

        impl CounterSnapshot {
            /// `(name, value)` of every counter.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($name), self.$name)),*].into_iter()
            }
        }
    };
}

counters! {
    /// Events accepted for sending.
    published,
    /// Events handed to a subscriber.
    delivered,
    /// Events a subscriber lost because its queue was full (NATS slow-consumer included).
    dropped,
    /// Bytes from the bus that were not an event (the sum of the five checks below).
    undecodable,
    /// Check 1: larger than `max_envelope_size`.
    oversized,
    /// Check 2: wrong magic.
    bad_magic,
    /// Check 3: unknown envelope version.
    unsupported_version,
    /// Check 4: not an Envelope datum.
    malformed,
    /// Check 5: envelope rules broken.
    invalid_envelope,
    /// A delivery whose topic is not a valid topic.
    invalid_topic,
    /// Check 7: an event id seen again within a subscription's window.
    duplicate,
    /// NATS slow-consumer events reported by the client.
    slow_consumer,
    /// Reconnections to the server after the first connection.
    reconnects,
}

impl Counters {
    pub(crate) fn add(&self, c: Counter, n: u64) {
        self.cell(c).fetch_add(n, Relaxed);
    }

    pub(crate) fn incr(&self, c: Counter) {
        self.add(c, 1);
    }

    /// Raises a counter to `value` when it is below, for counts a client library keeps itself.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn raise(&self, c: Counter, value: u64) {
        self.cell(c).fetch_max(value, Relaxed);
    }

    /// Counts a drop and logs it, at most one line per second per counter.
    pub(crate) fn drop_event(&self, c: Counter, what: &dyn std::fmt::Display) {
        self.incr(c);
        let now = monotonic_ms();
        let last = &self.last_warn[c as usize];
        let prev = last.load(Relaxed);
        if (prev == 0 || now >= prev + 1000) && last.compare_exchange(prev, now.max(1), Relaxed, Relaxed).is_ok() {
            tracing::warn!(target: "orbitalis::busline", counter = ?c, total = self.cell(c).load(Relaxed), "dropped: {what}");
        }
    }

    #[cfg_attr(not(any(feature = "nats", feature = "mqtt")), allow(dead_code))]
    pub(crate) fn undecodable(&self, kind: DecodeErrorKind, what: &dyn std::fmt::Display) {
        let c = match kind {
            DecodeErrorKind::Oversized => Counter::oversized,
            DecodeErrorKind::BadMagic => Counter::bad_magic,
            DecodeErrorKind::UnsupportedVersion => Counter::unsupported_version,
            DecodeErrorKind::Malformed => Counter::malformed,
            DecodeErrorKind::InvalidEnvelope => Counter::invalid_envelope,
        };
        self.incr(Counter::undecodable);
        self.drop_event(c, what);
    }
}

fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Decodes the network deliveries of one receiver, counting and logging what fails checks
/// 1-5 or the topic rules.
///
/// It remembers the last topic and publisher it accepted: a receiver mostly hears the same few
/// again, and reusing them skips their validation and allocation.
#[cfg_attr(not(any(feature = "nats", feature = "mqtt")), allow(dead_code))]
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    topic: Option<Topic>,
    publisher: Option<Identifier>,
}

#[cfg_attr(not(any(feature = "nats", feature = "mqtt")), allow(dead_code))]
impl Decoder {
    pub(crate) fn decode(&mut self, topic: &str, bytes: &Bytes, max: usize, counters: &Counters) -> Option<Delivery> {
        let topic = match &self.topic {
            Some(t) if t.as_str() == topic => t.clone(),
            _ => match Topic::new(topic) {
                Ok(t) => self.topic.insert(t).clone(),
                Err(e) => {
                    counters.drop_event(Counter::invalid_topic, &e);
                    return None;
                }
            },
        };
        match Event::decode_reusing(bytes, max, &mut self.publisher) {
            Ok(event) => Some(Delivery { topic, event }),
            Err(e) => {
                counters.undecodable(e.kind, &format_args!("{e} on {topic}"));
                None
            }
        }
    }
}

/// A fast hash for the per-event lookups of the bus: topic tokens matched against the bus's
/// own subscriptions, and topics published on the in-memory bus (from the program itself). It folds 8-byte words at a
/// fraction of SipHash's cost; a flood of colliding keys only slows one subscriber's lookups.
#[derive(Default, Clone, Copy)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_usize(&mut self, _: usize) {
        // Length prefixes of fixed-size ids carry nothing.
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Remembers the last `capacity` event ids of one subscription (receive check 7).
///
/// A ring of the ids in arrival order and an open-addressing index into it (linear probing,
/// backward-shift deletion): no allocation per event, and probes read only the index, whose
/// slots keep each id's hash. The hash multiplies the id's folded halves by a per-window
/// random factor, so ids chosen to collide in one window do not collide in another.
#[derive(Debug)]
pub struct DuplicateWindow {
    /// Ids in arrival order; `next` is where the next one goes (the oldest once full).
    ring: Vec<Uuid>,
    next: usize,
    slots: Vec<Slot>,
    mask: usize,
    factor: u64,
    capacity: usize,
}

/// An index entry: the id's hash and its ring position + 1 (0: the slot is empty).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    hash: u32,
    pos: u32,
}

impl DuplicateWindow {
    /// A window over the last `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize / 2);
        // At most half full, so probe runs stay short.
        let slots = (capacity * 2).next_power_of_two();
        DuplicateWindow {
            ring: Vec::with_capacity(capacity),
            next: 0,
            slots: vec![Slot::default(); slots],
            mask: slots - 1,
            factor: random_odd(),
            capacity,
        }
    }

    /// Records `id`; returns `false` when it is already in the window.
    pub fn insert(&mut self, id: Uuid) -> bool {
        let hash = self.hash(&id);
        let mut at = hash as usize & self.mask;
        while self.slots[at].pos != 0 {
            let slot = self.slots[at];
            if slot.hash == hash && self.ring[slot.pos as usize - 1] == id {
                return false;
            }
            at = (at + 1) & self.mask;
        }
        let pos = self.next;
        if pos == self.ring.len() {
            self.ring.push(id);
        } else {
            self.forget(pos);
            // Forgetting may have shifted an entry into `at`: look for a free slot again.
            at = hash as usize & self.mask;
            while self.slots[at].pos != 0 {
                at = (at + 1) & self.mask;
            }
            self.ring[pos] = id;
        }
        self.slots[at] = Slot { hash, pos: pos as u32 + 1 };
        self.next = if pos + 1 == self.capacity { 0 } else { pos + 1 };
        true
    }

    fn hash(&self, id: &Uuid) -> u32 {
        let (hi, lo) = id.as_u64_pair();
        ((hi ^ lo).wrapping_mul(self.factor) >> 32) as u32
    }

    /// Removes ring position `pos` from the index, shifting later entries of its probe run
    /// back so that every entry stays reachable from its home slot.
    fn forget(&mut self, pos: usize) {
        let mut hole = self.hash(&self.ring[pos]) as usize & self.mask;
        while self.slots[hole].pos as usize != pos + 1 {
            hole = (hole + 1) & self.mask;
        }
        let mut at = hole;
        loop {
            at = (at + 1) & self.mask;
            let slot = self.slots[at];
            if slot.pos == 0 {
                break;
            }
            let home = slot.hash as usize & self.mask;
            // The entry may move to the hole unless its home lies cyclically in (hole, at].
            let stays = if hole <= at { hole < home && home <= at } else { hole < home || home <= at };
            if !stays {
                self.slots[hole] = slot;
                hole = at;
            }
        }
        self.slots[hole] = Slot::default();
    }
}

fn random_odd() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_the_oldest() {
        let mut w = DuplicateWindow::new(2);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        assert!(w.insert(ids[0]));
        assert!(!w.insert(ids[0]));
        assert!(w.insert(ids[1]));
        assert!(w.insert(ids[2]));
        assert!(w.insert(ids[0]), "the oldest id left the window");
        assert!(!w.insert(ids[2]));
    }

    proptest::proptest! {
        /// Against a plain model: ids drawn from a small set, so duplicates, evictions and
        /// shared probe runs are all frequent.
        #[test]
        fn window_agrees_with_a_queue_and_a_set(
            capacity in 1usize..40,
            ids in proptest::collection::vec(0u64..64, 0..600),
        ) {
            let mut window = DuplicateWindow::new(capacity);
            let mut order = std::collections::VecDeque::new();
            for n in ids {
                // Equal halves fold to 0: many ids share a home slot.
                let id = Uuid::from_u64_pair(n % 8, n);
                let fresh = !order.contains(&id);
                if fresh {
                    if order.len() == capacity {
                        order.pop_front();
                    }
                    order.push_back(id);
                }
                proptest::prop_assert_eq!(window.insert(id), fresh, "id {}", n);
            }
        }
    }

    #[test]
    fn a_decoder_reuses_what_it_heard_last_and_still_checks_the_rest() {
        let (c, mut d) = (Counters::default(), Decoder::default());
        let me = Identifier::new("me").unwrap();
        let bytes = Event::new(me.clone()).encode();
        let first = d.decode("a.b", &bytes, 1 << 20, &c).unwrap();
        let again = d.decode("a.b", &Event::new(me.clone()).encode(), 1 << 20, &c).unwrap();
        assert!(std::ptr::eq(first.topic.as_str(), again.topic.as_str()), "the topic is shared");
        assert!(std::ptr::eq(first.event.publisher.as_str(), again.event.publisher.as_str()));
        let other = d.decode("a.c", &Event::new(Identifier::new("you").unwrap()).encode(), 1 << 20, &c).unwrap();
        assert_eq!((other.topic.as_str(), other.event.publisher.as_str()), ("a.c", "you"));
        assert!(d.decode("a.c.", &bytes, 1 << 20, &c).is_none(), "a new topic is validated");
        assert_eq!(c.snapshot().invalid_topic, 1);
    }

    #[test]
    fn undecodable_bytes_are_counted_by_check() {
        let (c, mut d) = (Counters::default(), Decoder::default());
        assert!(d.decode("a.b", &Bytes::from_static(b"{}"), 1 << 20, &c).is_none());
        assert!(d.decode("a..b", &Bytes::from_static(b"{}"), 1 << 20, &c).is_none());
        let s = c.snapshot();
        assert_eq!((s.undecodable, s.bad_magic, s.invalid_topic), (1, 1, 1));
    }
}
