//! The receiving side shared by every transport: bus counters, rate-limited drop warnings,
//! the per-subscription duplicate window (check 7) and the decoding of network deliveries
//! (checks 1-5 of PROTOCOL.md §2.3).

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use bytes::Bytes;
use uuid::Uuid;

use crate::envelope::Event;
use crate::error::DecodeErrorKind;
use crate::topic::Topic;
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

/// Decodes one network delivery, counting and logging what fails checks 1-5 or the topic rules.
#[cfg_attr(not(any(feature = "nats", feature = "mqtt")), allow(dead_code))]
pub(crate) fn decode_delivery(topic: &str, bytes: &Bytes, max: usize, counters: &Counters) -> Option<Delivery> {
    let topic = match Topic::new(topic) {
        Ok(t) => t,
        Err(e) => {
            counters.drop_event(Counter::invalid_topic, &e);
            return None;
        }
    };
    match Event::decode(bytes, max) {
        Ok(event) => Some(Delivery { topic, event }),
        Err(e) => {
            counters.undecodable(e.kind, &format_args!("{e} on {topic}"));
            None
        }
    }
}

/// A fast hash for the per-event lookups of the bus: event ids (random, or time plus random)
/// and topic tokens (matched against the bus's own subscriptions). It folds 8-byte words at a
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
#[derive(Debug)]
pub struct DuplicateWindow {
    seen: HashSet<Uuid, BuildHasherDefault<FoldHasher>>,
    order: VecDeque<Uuid>,
    capacity: usize,
}

impl DuplicateWindow {
    /// A window over the last `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        DuplicateWindow {
            seen: HashSet::with_capacity_and_hasher(capacity, BuildHasherDefault::default()),
            order: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Records `id`; returns `false` when it is already in the window.
    pub fn insert(&mut self, id: Uuid) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(id);
        true
    }
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

    #[test]
    fn undecodable_bytes_are_counted_by_check() {
        let c = Counters::default();
        assert!(decode_delivery("a.b", &Bytes::from_static(b"{}"), 1 << 20, &c).is_none());
        assert!(decode_delivery("a..b", &Bytes::from_static(b"{}"), 1 << 20, &c).is_none());
        let s = c.snapshot();
        assert_eq!((s.undecodable, s.bad_magic, s.invalid_topic), (1, 1, 1));
    }
}
