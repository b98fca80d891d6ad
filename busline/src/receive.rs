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

impl FoldHasher {
    fn fold(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.fold(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.fold(u64::from_le_bytes(word));
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
/// A ring of the ids in arrival order, and an open-addressing index into it (linear probing)
/// whose slots record when their id arrived. An id older than the last `capacity` is dead: its
/// slot is reused by a later insert that passes it, and never deleted, so an insert is one
/// probe run with no shifting. Every `capacity` inserts the index is rebuilt from the ring,
/// which bounds it to `2 × capacity` entries (it is sized for four times that) at an amortized
/// cost of one more insert per insert. Each slot is one `u32`: a tag of the id's hash and the
/// arrival number modulo 2^20, so the default window's index is 16 KiB. The hash multiplies
/// the id's folded halves by a per-window random factor, so ids chosen to collide in one
/// window do not collide in another. Windows are at most [`DuplicateWindow::MAX_CAPACITY`].
#[derive(Debug)]
pub struct DuplicateWindow {
    /// The id that arrived `n`-th is at `n % capacity`.
    ring: Vec<Uuid>,
    /// Ids inserted so far.
    arrived: u64,
    /// `arrived % capacity`, kept to spare a division per insert.
    next: usize,
    /// `0`: never used; otherwise `(tag << SEQ_BITS) | (arrival number + 1) % 2^SEQ_BITS`.
    slots: Vec<u32>,
    mask: usize,
    factor: u64,
    capacity: usize,
}

const SEQ_BITS: u32 = 20;
const SEQ_MASK: u32 = (1 << SEQ_BITS) - 1;

impl DuplicateWindow {
    /// The largest window: an index entry is at most twice this old, which 20 bits of arrival
    /// number must tell apart.
    pub const MAX_CAPACITY: usize = 1 << (SEQ_BITS - 2);

    /// A window over the last `capacity` ids (1 to [`DuplicateWindow::MAX_CAPACITY`]).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, Self::MAX_CAPACITY);
        let slots = (capacity * 4).next_power_of_two();
        DuplicateWindow {
            ring: Vec::with_capacity(capacity),
            arrived: 0,
            next: 0,
            slots: vec![0; slots],
            mask: slots - 1,
            factor: random_odd(),
            capacity,
        }
    }

    /// Records `id`; returns `false` when it is already in the window.
    pub fn insert(&mut self, id: Uuid) -> bool {
        let hash = self.hash(&id);
        let mut at = self.home(hash);
        let mut reuse = None;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                break;
            }
            match self.live(slot) {
                Some(pos) if slot >> SEQ_BITS == tag_of(hash) && self.ring[pos] == id => return false,
                Some(_) => {}
                None => {
                    reuse.get_or_insert(at);
                }
            }
            at = (at + 1) & self.mask;
        }
        if self.next == self.ring.len() {
            self.ring.push(id);
        } else {
            self.ring[self.next] = id;
        }
        self.slots[reuse.unwrap_or(at)] = entry(hash, self.arrived);
        self.arrived += 1;
        self.next += 1;
        if self.next == self.capacity {
            self.next = 0;
            self.rebuild();
        }
        true
    }

    fn hash(&self, id: &Uuid) -> u64 {
        let (hi, lo) = id.as_u64_pair();
        (hi ^ lo).wrapping_mul(self.factor)
    }

    /// The home slot, from the hash's high bits (the best mixed).
    fn home(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.mask
    }

    /// The ring position of a used slot's id while it is among the last `capacity`.
    fn live(&self, slot: u32) -> Option<usize> {
        let seq = (slot & SEQ_MASK).wrapping_sub(1) & SEQ_MASK;
        let age = (self.arrived as u32).wrapping_sub(seq) & SEQ_MASK;
        // `age` counts from the next arrival: the last id has age 1.
        let age = age as usize;
        (age <= self.capacity).then(|| if age <= self.next { self.next - age } else { self.next + self.capacity - age })
    }

    /// Index only the live ids again, so dead entries never pile up. Runs when the ring is
    /// full and `next` is back at 0: ring position `i` holds arrival `first + i`.
    fn rebuild(&mut self) {
        self.slots.fill(0);
        let first = self.arrived - self.capacity as u64;
        for (n, id) in (first..).zip(&self.ring) {
            let hash = self.hash(id);
            let mut at = self.home(hash);
            while self.slots[at] != 0 {
                at = (at + 1) & self.mask;
            }
            self.slots[at] = entry(hash, n);
        }
    }
}

/// 11 hash bits the home slot does not use, over a set bit that keeps used slots non-zero.
fn tag_of(hash: u64) -> u32 {
    ((hash as u32) >> (SEQ_BITS + 1)) | (1 << (31 - SEQ_BITS))
}

fn entry(hash: u64, arrival: u64) -> u32 {
    (tag_of(hash) << SEQ_BITS) | ((arrival + 1) as u32 & SEQ_MASK)
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
        // Long enough to be shared rather than held inline, so reuse shows as one address.
        let me = Identifier::new("me".repeat(Identifier::INLINE_LEN)).unwrap();
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
    fn window_survives_its_arrival_numbers_wrapping() {
        let mut w = DuplicateWindow::new(5);
        let n = (1u64 << SEQ_BITS) + 17;
        for i in 0..n {
            assert!(w.insert(Uuid::from_u64_pair(i, !i)), "id {i} is new");
        }
        for i in n - 5..n {
            assert!(!w.insert(Uuid::from_u64_pair(i, !i)), "id {i} is among the last five");
        }
        assert!(w.insert(Uuid::from_u64_pair(n - 6, !(n - 6))), "the sixth last left the window");
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
