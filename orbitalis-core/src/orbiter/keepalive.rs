//! Liveness (PROTOCOL.md §6.7, K1-K6): keepalives to connected remotes, probes, dead
//! detection, the lag guard and reconciliation of half-open connections.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use busline::Identifier;
use orbitalis_schemas::protocol::{CloseReason, Control, Keepalive, KeepaliveRequest};
use tokio::time::Instant;
use uuid::Uuid;

use super::base::Base;
use super::counters::Counter;
use super::events::OrbiterEvent;
use crate::topics::Kind;

const K6_TABLE: usize = 4096;
const K6_SPACING: Duration = Duration::from_secs(1);

/// K6's "at most once per (sender, id) per second" table, 4,096 entries, oldest evicted.
#[derive(Debug, Default)]
pub struct ReconcileLimiter {
    sent: HashMap<(Identifier, Uuid), Instant>,
    order: VecDeque<(Identifier, Uuid)>,
}

impl ReconcileLimiter {
    /// Whether a GracelessClose for `id` may go to `to` now; records it if so.
    fn allow(&mut self, to: &Identifier, id: Uuid, now: Instant) -> bool {
        let key = (to.clone(), id);
        if let Some(t) = self.sent.get(&key)
            && now.saturating_duration_since(*t) < K6_SPACING
        {
            return false;
        }
        if self.sent.insert(key.clone(), now).is_none() {
            self.order.push_back(key);
            if self.order.len() > K6_TABLE
                && let Some(old) = self.order.pop_front()
            {
                self.sent.remove(&old);
            }
        }
        true
    }
}

impl Base {
    /// Remotes with a connection in any state (K1: the only ones liveness covers).
    fn connected_remotes(&self) -> Vec<Identifier> {
        let mut v: Vec<Identifier> = self.connections.iter().map(|c| c.remote.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// K5: a late tick gives every remote the lag as grace, so a stall kills no peer.
    pub fn lag_guard(&mut self, now: Instant) {
        let gap = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        let tick = self.timing.tick_interval;
        if gap > 2 * tick {
            let grace = gap - tick;
            self.drop_msg(Counter::tick_lag, format_args!("the loop ran {gap:?} late; remotes get {grace:?} of grace"));
            for (_, a) in self.peers.iter_mut() {
                a.last_seen += grace;
            }
        }
    }

    /// K4 then K3: declares silent remotes dead, probes the half-silent ones.
    pub fn detect_dead(&mut self, now: Instant) {
        let Some(d) = self.timing.dead_after else { return };
        for remote in self.connected_remotes() {
            let Some(a) = self.peers.get_mut(&remote) else { continue };
            let silence = now.saturating_duration_since(a.last_seen);
            if silence > d {
                self.remote_dead(&remote);
            } else if silence > d / 2 && a.probed_at_seen != Some(a.last_seen) {
                a.probed_at_seen = Some(a.last_seen);
                let msg = Control::KeepaliveRequest(KeepaliveRequest { sender: self.sender() });
                self.send(&remote, Kind::KeepaliveRequest, msg);
            }
        }
    }

    /// K4: closes everything shared with a dead remote, telling it best effort, and forgets it.
    pub fn remote_dead(&mut self, remote: &Identifier) {
        let _span = tracing::info_span!(target: "orbitalis", "death", orbiter = %self.me(), %remote).entered();
        tracing::info!(target: "orbitalis", "remote dead");
        self.counters.incr(Counter::remotes_dead);
        self.remote_gone(remote, CloseReason::PeerDead, true);
        self.peers.remove(remote);
        self.emit(OrbiterEvent::RemoteDead(remote.clone()));
    }

    /// K2: a Keepalive to each connected remote in time for its limit, and at least every
    /// `reconcile_interval`.
    pub fn send_keepalives(&mut self, now: Instant) {
        let k = self.timing.keepalives_per_window;
        let reconcile = self.timing.reconcile_interval;
        for remote in self.connected_remotes() {
            let Some(a) = self.peers.get(&remote) else { continue };
            let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
            let for_limit = a.dead_after.is_some_and(|dr| since(a.last_control_sent).is_none_or(|s| s >= dr / k));
            let for_reconcile = since(a.last_keepalive_sent).is_none_or(|s| s >= reconcile);
            if for_limit || for_reconcile {
                self.send_keepalive(&remote, now);
            }
        }
    }

    /// Sends a Keepalive listing this side's connections with `to` (K6), in turns of 1,024.
    fn send_keepalive(&mut self, to: &Identifier, now: Instant) {
        let ids: Vec<Uuid> = self
            .connections
            .with_remote(to)
            .into_iter()
            .filter(|id| self.connections.get(id).and_then(|c| c.closing.as_ref()).is_none_or(|c| !c.acked))
            .collect();
        let max = orbitalis_schemas::limits::MAX_LIST;
        let chunks: Vec<Vec<Uuid>> =
            if ids.is_empty() { vec![Vec::new()] } else { ids.chunks(max).map(<[Uuid]>::to_vec).collect() };
        for connections in chunks {
            let msg = Control::Keepalive(Keepalive { sender: self.sender(), connections });
            self.send(to, Kind::Keepalive, msg);
        }
        if let Some(a) = self.peers.get_mut(to) {
            a.last_keepalive_sent = Some(now);
        }
    }

    /// K6: answers listed ids this side does not hold with the sender.
    pub fn on_keepalive(&mut self, from: &Identifier, ka: Keepalive) {
        let now = Instant::now();
        for id in ka.connections {
            let held = self.connections.get(&id).is_some_and(|c| &c.remote == from)
                || self.pending.get(&id).is_some_and(|p| &p.remote == from)
                || self.pending.by_connection(&id).is_some_and(|p| &p.remote == from);
            if !held && self.connections.get(&id).is_some() {
                self.drop_msg(
                    Counter::unknown_connection,
                    format_args!("{from} listed a connection it does not share"),
                );
            }
            if !held && self.k6.allow(from, id, now) {
                self.send_graceless(from, None, id, CloseReason::UnknownConnection, None);
            }
        }
    }

    /// K6: a KeepaliveRequest gets a Keepalive at once, only from a remote sharing something.
    pub fn on_keepalive_request(&mut self, from: &Identifier) {
        if self.shares_anything(from) {
            self.send_keepalive(from, Instant::now());
        }
    }
}
