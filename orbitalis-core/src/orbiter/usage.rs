//! Uses of connections recorded off the orbiter task: handles publish inputs (core) or
//! pushed outputs (plugin) directly on the bus, so they note the time here and the task
//! merges it into each connection's last use before idle checks (PROTOCOL.md §7.4, E2).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::base::Base;

/// Figures of one connection shared by the task and handles.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Milliseconds since the run's epoch of the last use off the task.
    last_use_ms: AtomicU64,
    /// Calls waiting on it (cores: least-outstanding selection).
    pub outstanding: AtomicUsize,
}

impl ConnStats {
    /// Records a use now.
    pub fn touch(&self, epoch: Instant) {
        let ms = Instant::now().saturating_duration_since(epoch).as_millis() as u64;
        self.last_use_ms.fetch_max(ms, Relaxed);
    }
}

/// The stats of every connection of one run.
#[derive(Debug)]
pub struct Usage {
    epoch: Instant,
    stats: HashMap<Uuid, Arc<ConnStats>>,
}

impl Default for Usage {
    fn default() -> Self {
        Usage { epoch: Instant::now(), stats: HashMap::new() }
    }
}

impl Usage {
    /// The instant uses are measured from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The stats of connection `id`, created on first use.
    pub fn of(&mut self, id: Uuid) -> Arc<ConnStats> {
        self.stats.entry(id).or_default().clone()
    }

    /// The stats of connection `id`, if it has any.
    pub fn get(&self, id: &Uuid) -> Option<&Arc<ConnStats>> {
        self.stats.get(id)
    }

    /// Forgets connections that are gone.
    pub fn retain(&mut self, base: &Base) {
        self.stats.retain(|id, _| base.connections.get(id).is_some());
    }

    /// Merges recorded uses into the connections' last use.
    pub fn sync(&self, base: &mut Base) {
        for (id, s) in &self.stats {
            let t = self.epoch + Duration::from_millis(s.last_use_ms.load(Relaxed));
            if let Some(c) = base.connections.get_mut(id)
                && t > c.last_use
            {
                c.last_use = t;
            }
        }
    }
}
