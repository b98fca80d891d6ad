//! Timing parameters and bounds of PROTOCOL.md §8 and §7.5, with their defaults and ranges.

use std::time::Duration;

use crate::error::{Error, Result};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Every timing parameter of an orbiter. Each default is PROTOCOL.md §8's, chosen so a lost
/// message or a crashed peer costs seconds, not minutes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How often the loop runs (expiry, keepalives, idle checks, discovery). 250 ms; 10 ms - 1 s.
    pub tick_interval: Duration,
    /// Least time between Discovers while an operation is needed. 2 s; tick - 1 h.
    pub discover_interval: Duration,
    /// Discover this often even when satisfied, so late plugins can join. 30 s; `None` = off;
    /// `discover_interval` - 24 h.
    pub opportunistic_discover_interval: Option<Duration>,
    /// Lifetime of a pending request. 10 s; 4 × tick - 10 min.
    pub pending_timeout: Duration,
    /// Plugins delay their Offers by a uniform random time up to this. 0; 0 - min(1 s, pending / 4).
    pub offer_jitter: Duration,
    /// A connected remote silent this long is dead. 30 s; `None` = off; max(1 s, 4 × tick) - 24 h.
    pub dead_after: Option<Duration>,
    /// Keepalives sent per remote's dead-after window. 4; 2 - 10.
    pub keepalives_per_window: u32,
    /// A Keepalive listing connections goes to each connected remote at least this often
    /// (repairs half-open connections). 30 s; tick - 1 h.
    pub reconcile_interval: Duration,
    /// A graceful close without ack becomes graceless after this. 30 s; tick - 1 h.
    pub graceful_close_timeout: Duration,
    /// Close connections unused this long. `None` (off); 1 s - 7 d.
    pub idle_timeout: Option<Duration>,
    /// Default timeout of an awaited call. 10 s; 1 ms - 1 h.
    pub call_timeout: Duration,
    /// Forget an idle remote silent this long. 120 s; 1 s - 24 h.
    pub acquaintance_ttl: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            tick_interval: 250 * MS,
            discover_interval: 2 * SEC,
            opportunistic_discover_interval: Some(30 * SEC),
            pending_timeout: 10 * SEC,
            offer_jitter: Duration::ZERO,
            dead_after: Some(30 * SEC),
            keepalives_per_window: 4,
            reconcile_interval: 30 * SEC,
            graceful_close_timeout: 30 * SEC,
            idle_timeout: None,
            call_timeout: 10 * SEC,
            acquaintance_ttl: 120 * SEC,
        }
    }
}

fn check(name: &str, v: Duration, min: Duration, max: Duration) -> Result<()> {
    if v < min || v > max {
        return Err(Error::config(format!("{name} = {v:?} is outside {min:?} ..= {max:?}")));
    }
    Ok(())
}

impl Timing {
    /// Checks every parameter against its range; the error names the first one out of range.
    pub fn validate(&self) -> Result<()> {
        let tick = self.tick_interval;
        check("tick_interval", tick, 10 * MS, SEC)?;
        check("discover_interval", self.discover_interval, tick, HOUR)?;
        if let Some(o) = self.opportunistic_discover_interval {
            check("opportunistic_discover_interval", o, self.discover_interval, DAY)?;
        }
        check("pending_timeout", self.pending_timeout, 4 * tick, 600 * SEC)?;
        check("offer_jitter", self.offer_jitter, Duration::ZERO, SEC.min(self.pending_timeout / 4))?;
        if let Some(d) = self.dead_after {
            check("dead_after", d, SEC.max(4 * tick), DAY)?;
        }
        if !(2..=10).contains(&self.keepalives_per_window) {
            return Err(Error::config(format!(
                "keepalives_per_window = {} is outside 2 ..= 10",
                self.keepalives_per_window
            )));
        }
        check("reconcile_interval", self.reconcile_interval, tick, HOUR)?;
        check("graceful_close_timeout", self.graceful_close_timeout, tick, HOUR)?;
        if let Some(i) = self.idle_timeout {
            check("idle_timeout", i, SEC, 7 * DAY)?;
        }
        check("call_timeout", self.call_timeout, MS, HOUR)?;
        check("acquaintance_ttl", self.acquaintance_ttl, SEC, DAY)?;
        Ok(())
    }

    /// `dead_after` in wire form: milliseconds, 0 = off.
    pub fn dead_after_ms(&self) -> i64 {
        self.dead_after.map_or(0, |d| d.as_millis() as i64)
    }
}

/// Bounds of every queue and table (PROTOCOL.md §7.5, §6.2, A4). All queues are bounded; each
/// bound says what happens when it is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Handle → orbiter commands (callers wait; `try_` variants fail `Overloaded`). 256.
    pub command_queue: usize,
    /// Control publishes waiting for the writer (full: the publish fails, counted). 4,096.
    pub outbound_queue: usize,
    /// Control subscription queue (≥ 1,000 simultaneous Offers). 4,096.
    pub control_queue: usize,
    /// Data subscription queue. 1,024.
    pub data_queue: usize,
    /// Pending requests held at once. 4,096.
    pub max_pending: usize,
    /// Remotes remembered at once. 10,000.
    pub max_acquaintances: usize,
    /// Inputs queued per operation before dropping (`handler_overflow`). 1,024.
    pub handler_queue: usize,
    /// Handler runs at once per operation. 16.
    pub handler_concurrency: usize,
    /// Outputs queued per sink before dropping (`sink_overflow`). 1,024.
    pub sink_queue: usize,
    /// Sink runs at once per operation; 1 keeps publish order. 1.
    pub sink_concurrency: usize,
    /// Calls awaiting a reply per core (`call` fails `Overloaded` past it). 10,000.
    pub max_waiting_calls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            command_queue: 256,
            outbound_queue: 4096,
            control_queue: 4096,
            data_queue: 1024,
            max_pending: 4096,
            max_acquaintances: 10_000,
            handler_queue: 1024,
            handler_concurrency: 16,
            sink_queue: 1024,
            sink_concurrency: 1,
            max_waiting_calls: 10_000,
        }
    }
}

impl Limits {
    /// Every bound must be at least 1.
    pub fn validate(&self) -> Result<()> {
        let all = [
            ("command_queue", self.command_queue),
            ("outbound_queue", self.outbound_queue),
            ("control_queue", self.control_queue),
            ("data_queue", self.data_queue),
            ("max_pending", self.max_pending),
            ("max_acquaintances", self.max_acquaintances),
            ("handler_queue", self.handler_queue),
            ("handler_concurrency", self.handler_concurrency),
            ("sink_queue", self.sink_queue),
            ("sink_concurrency", self.sink_concurrency),
            ("max_waiting_calls", self.max_waiting_calls),
        ];
        match all.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(Error::config(format!("{name} must be at least 1"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_are_enforced() {
        Timing::default().validate().unwrap();
        Limits::default().validate().unwrap();
        let bad = [
            Timing { tick_interval: 5 * MS, ..Default::default() },
            Timing { pending_timeout: 500 * MS, ..Default::default() },
            Timing { dead_after: Some(500 * MS), ..Default::default() },
            Timing { keepalives_per_window: 1, ..Default::default() },
            Timing { opportunistic_discover_interval: Some(SEC), ..Default::default() },
            Timing { offer_jitter: 2 * SEC, ..Default::default() },
        ];
        for t in bad {
            assert!(matches!(t.validate(), Err(Error::Config(_))), "{t:?}");
        }
        assert!(Timing { dead_after: None, idle_timeout: None, ..Default::default() }.validate().is_ok());
        assert_eq!(Timing { dead_after: None, ..Default::default() }.dead_after_ms(), 0);
    }
}
