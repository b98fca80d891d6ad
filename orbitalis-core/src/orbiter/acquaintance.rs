//! Acquaintances and incarnations (PROTOCOL.md §6.7, A1-A4): what an orbiter keeps about each
//! remote, bounded in number and pruned when idle.

use std::collections::HashMap;
use std::time::Duration;

use busline::Identifier;
use tokio::time::Instant;
use uuid::Uuid;

/// What this orbiter knows about one remote.
#[derive(Clone, Debug)]
pub struct Acquaintance {
    pub incarnation: Uuid,
    /// When `incarnation` was first seen (collision detection, A3).
    pub incarnation_since: Instant,
    /// An incarnation replaced by a smaller one after a long silence; its messages are stale.
    pub replaced: Option<Uuid>,
    /// `D_R`: after how long of silence the remote declares us dead; `None` = never.
    pub dead_after: Option<Duration>,
    pub last_seen: Instant,
    /// Last control message sent to it (K2).
    pub last_control_sent: Option<Instant>,
    /// Last Keepalive sent to it (K2, reconciliation).
    pub last_keepalive_sent: Option<Instant>,
    /// `last_seen` at the time of the last probe (K3: one probe per silence).
    pub probed_at_seen: Option<Instant>,
}

/// The verdict of A3 on a message's incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incarnation {
    /// No acquaintance with this remote.
    Unknown,
    /// The recorded incarnation.
    Same,
    /// A newer one (or an older one after a long silence): the remote restarted.
    Restarted,
    /// An older one: drop the message.
    Stale {
        /// Arrived long after the newer one: two orbiters share an identifier.
        collision: bool,
    },
}

/// All acquaintances, at most `max` of them.
#[derive(Debug)]
pub struct Acquaintances {
    map: HashMap<Identifier, Acquaintance>,
    max: usize,
}

impl Acquaintances {
    pub fn new(max: usize) -> Self {
        Acquaintances { map: HashMap::new(), max }
    }

    pub fn get(&self, id: &str) -> Option<&Acquaintance> {
        self.map.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Acquaintance> {
        self.map.get_mut(id)
    }

    pub fn remove(&mut self, id: &str) -> Option<Acquaintance> {
        self.map.remove(id)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Identifier, &Acquaintance)> {
        self.map.iter()
    }

    pub fn ids(&self) -> Vec<Identifier> {
        self.map.keys().cloned().collect()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Identifier, &mut Acquaintance)> {
        self.map.iter_mut()
    }

    /// A3: classifies `incarnation` from `id` and records a restart.
    pub fn check(
        &mut self,
        id: &str,
        incarnation: Uuid,
        now: Instant,
        silence_for_replacement: Duration,
        collision_after: Duration,
    ) -> Incarnation {
        let Some(a) = self.map.get_mut(id) else {
            return Incarnation::Unknown;
        };
        if incarnation == a.incarnation {
            return Incarnation::Same;
        }
        if Some(incarnation) == a.replaced {
            return Incarnation::Stale { collision: false };
        }
        if incarnation > a.incarnation {
            a.incarnation = incarnation;
            a.incarnation_since = now;
            return Incarnation::Restarted;
        }
        if now.saturating_duration_since(a.last_seen) > silence_for_replacement {
            a.replaced = Some(a.incarnation);
            a.incarnation = incarnation;
            a.incarnation_since = now;
            return Incarnation::Restarted;
        }
        Incarnation::Stale { collision: now.saturating_duration_since(a.incarnation_since) > collision_after }
    }

    /// A1: makes room for and records a new acquaintance. `busy` tells whether a remote still
    /// holds connections or pending requests; only idle ones are evicted. Returns `false` when
    /// no slot can be freed (`acquaintance_limit`).
    pub fn create(&mut self, id: &Identifier, incarnation: Uuid, now: Instant, busy: impl Fn(&str) -> bool) -> bool {
        if self.map.len() >= self.max {
            // Evict the least recently seen idle sixty-fourth at once: a full table then
            // costs one scan per many new remotes, not one per remote.
            let mut idle: Vec<(Instant, Identifier)> =
                self.map.iter().filter(|(k, _)| !busy(k)).map(|(k, a)| (a.last_seen, k.clone())).collect();
            if idle.is_empty() {
                return false;
            }
            let n = (self.max / 64).clamp(1, idle.len());
            if n < idle.len() {
                idle.select_nth_unstable(n - 1);
            }
            for (_, k) in idle.into_iter().take(n) {
                self.map.remove(&k);
            }
        }
        self.map.insert(
            id.clone(),
            Acquaintance {
                incarnation,
                incarnation_since: now,
                replaced: None,
                dead_after: None,
                last_seen: now,
                last_control_sent: None,
                last_keepalive_sent: None,
                probed_at_seen: None,
            },
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v7(n: u64) -> Uuid {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&n.to_be_bytes());
        b[6] = 0x70;
        b[8] = 0x80;
        Uuid::from_bytes(b)
    }

    #[tokio::test(start_paused = true)]
    async fn incarnations_order_restarts_and_stale_messages() {
        let mut a = Acquaintances::new(2);
        let id = Identifier::new("p").unwrap();
        let now = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(a.check("p", v7(2 << 16), now, s(120), s(10)), Incarnation::Unknown);
        assert!(a.create(&id, v7(2 << 16), now, |_| false));
        assert_eq!(a.check("p", v7(2 << 16), now, s(120), s(10)), Incarnation::Same);
        assert_eq!(a.check("p", v7(1 << 16), now, s(120), s(10)), Incarnation::Stale { collision: false });
        assert_eq!(a.check("p", v7(1 << 16), now + s(11), s(120), s(10)), Incarnation::Stale { collision: true });
        assert_eq!(a.check("p", v7(3 << 16), now, s(120), s(10)), Incarnation::Restarted);
        // After a long silence a smaller incarnation replaces it; the replaced one is stale.
        assert_eq!(a.check("p", v7(1 << 16), now + s(121), s(120), s(10)), Incarnation::Restarted);
        assert_eq!(a.check("p", v7(3 << 16), now + s(121), s(120), s(10)), Incarnation::Stale { collision: false });
    }

    #[tokio::test(start_paused = true)]
    async fn only_idle_acquaintances_are_evicted() {
        let mut a = Acquaintances::new(1);
        let now = Instant::now();
        assert!(a.create(&Identifier::new("a").unwrap(), v7(1), now, |_| false));
        assert!(!a.create(&Identifier::new("b").unwrap(), v7(1), now, |_| true));
        assert!(a.create(&Identifier::new("b").unwrap(), v7(1), now, |_| false));
        assert!(a.get("a").is_none() && a.get("b").is_some());
    }
}
