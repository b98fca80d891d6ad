//! Per-orbiter counters (PROTOCOL.md conventions: every drop is counted and logged, at most one
//! line per second per counter). Readable from the handle at any time without asking the task.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

macro_rules! counters {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        /// Live counters of one orbiter.
        #[derive(Debug, Default)]
        pub struct Counters {
            $($name: AtomicU64,)*
            last_warn: [AtomicU64; COUNT],
        }

        /// Which counter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types, missing_docs)]
        #[repr(usize)]
        pub enum Counter { $($name,)* }

        const COUNT: usize = [$(stringify!($name)),*].len();

        /// A copy of an orbiter's counters.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct CounterSnapshot {
            $($(#[$m])* pub $name: u64,)*
        }

        impl Counter {
            /// The counter's name.
            pub const fn name(self) -> &'static str {
                match self { $(Counter::$name => stringify!($name),)* }
            }
        }

        impl Counters {
            fn cell(&self, c: Counter) -> &AtomicU64 {
                match c { $(Counter::$name => &self.$name,)* }
            }

            /// Copies every counter.
            pub fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot { $($name: self.$name.load(Relaxed),)* }
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
    /// Check 6: a topic of another namespace, kind or recipient, or a bad shape.
    unknown_topic,
    /// Checks 6 and 10: the sender token, `publisher` and `sender.identifier` disagree.
    sender_mismatch,
    /// Check 6: data naming no connection of its sender; or a close, keepalive or confirm
    /// naming a connection its sender does not share.
    unknown_connection,
    /// Check 8: a message not allowed on its topic kind (or unknown).
    unexpected_message,
    /// Check 9: a message that does not decode or breaks PROTOCOL.md §4.2.
    invalid_message,
    /// Check 11: an older incarnation of a known remote.
    stale_incarnation,
    /// A smaller incarnation long after a greater one: two orbiters share an identifier.
    identifier_collision,
    /// A new remote refused because every acquaintance slot is busy.
    acquaintance_limit,
    /// A control publish the outbound queue or the transport refused.
    publish_failed,
    /// A duplicate or out-of-order handshake message, ignored.
    duplicate_handshake,
    /// A call reply with no waiting call (timed out, or never sent).
    late_reply,
    /// An output for an operation without sink.
    no_sink,
    /// An output the negotiated output spec does not accept.
    output_rejected,
    /// Handler errors and panics not returned to a caller.
    handler_errors,
    /// Inputs that do not decode or are not in the negotiated input spec.
    invalid_input,
    /// Inputs dropped because the handler queue was full.
    handler_overflow,
    /// Outputs dropped because the sink queue was full.
    sink_overflow,
    /// Sink runs that failed or panicked.
    sink_errors,
    /// Ticks that came late (K5): remotes got the lag as grace.
    tick_lag,
    /// Tick hook runs skipped because the previous one was still running.
    tick_hook_skipped,
    /// User hooks that failed or panicked.
    hook_errors,
    /// Introspection requests not answered (rate limit).
    introspection_limited,
    /// Pending requests that expired.
    pending_expired,
    /// Remotes declared dead.
    remotes_dead,
    /// Remotes seen restarting.
    remotes_restarted,
    /// Connections opened.
    connections_opened,
    /// Connections closed.
    connections_closed,
}

fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

impl Counters {
    /// Adds one.
    pub fn incr(&self, c: Counter) {
        self.cell(c).fetch_add(1, Relaxed);
    }

    /// The current value.
    pub fn get(&self, c: Counter) -> u64 {
        self.cell(c).load(Relaxed)
    }

    /// Adds one and logs `what` as a warning, at most once per second for this counter.
    pub fn drop_with(&self, c: Counter, orbiter: &str, what: std::fmt::Arguments<'_>) {
        self.incr(c);
        let now = monotonic_ms();
        let last = &self.last_warn[c as usize];
        let prev = last.load(Relaxed);
        if (prev == 0 || now >= prev + 1000) && last.compare_exchange(prev, now, Relaxed, Relaxed).is_ok() {
            tracing::warn!(target: "orbitalis", orbiter, counter = c.name(), total = self.get(c), "{what}");
        }
    }
}
