//! Expiry and idleness (PROTOCOL.md §6.8, E1-E2).

use tokio::time::Instant;
use uuid::Uuid;

use super::base::Base;
use super::counters::Counter;
use super::events::OrbiterEvent;
use super::pending::PendingInfo;

impl Base {
    /// E1: removes pending requests past their deadline, silently (late messages are
    /// answered by P2a and C2c), and emits `PendingExpired`.
    pub fn expire_pending(&mut self, now: Instant) {
        let due: Vec<Uuid> = self.pending.iter().filter(|p| p.deadline <= now).map(|p| p.key).collect();
        for key in due {
            if let Some(p) = self.drop_pending(&key) {
                let info = PendingInfo::from(p);
                tracing::debug!(target: "orbitalis", orbiter = %self.me(), operation = %info.operation, remote = %info.remote, "pending request expired");
                self.counters.incr(Counter::pending_expired);
                self.emit(OrbiterEvent::PendingExpired(info));
            }
        }
    }

    /// E2: OPEN connections unused for `idle_timeout`, least recently used first. The role
    /// decides which of them may close.
    pub fn idle_connections(&self, now: Instant) -> Vec<Uuid> {
        let Some(idle) = self.timing.idle_timeout else { return Vec::new() };
        let mut v: Vec<(Instant, Uuid)> = self
            .connections
            .iter()
            .filter(|c| c.is_open() && now.saturating_duration_since(c.last_use) > idle)
            .map(|c| (c.last_use, c.id))
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }
}
