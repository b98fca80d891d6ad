//! The protocol state both roles share, owned by the orbiter task: connections, pending
//! requests, acquaintances, the writer queue, events. Role-independent rules live in the
//! sibling modules named after them (keepalive, close, expiry, receive).

use std::sync::Arc;

use busline::{Bus, Event, Identifier, Topic};
use bytes::Bytes;
use orbitalis_schemas::protocol::{CloseReason, Control, GracelessClose, Role as WireRole, Sender};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::acquaintance::Acquaintances;
use super::connection::{Connection, ConnectionInfo, Connections};
use super::counters::{Counter, Counters};
use super::events::{OrbiterEvent, State};
use super::keepalive::ReconcileLimiter;
use super::outbound::Outbound;
use super::pending::{Pending, PendingInfo, PendingTable};
use crate::config::{Limits, Timing};
use crate::topics::{Kind, Topics};

/// A connection closed locally, waiting for its role to react (fail calls, recompute).
#[derive(Debug)]
pub struct Closed {
    pub conn: Connection,
    pub reason: CloseReason,
    pub by_remote: bool,
}

/// See [`Base::on_closing`].
pub type OnClosing = Box<dyn Fn(&Uuid) + Send>;

/// Shared protocol state of one orbiter run.
pub struct Base {
    pub topics: Topics,
    pub role: WireRole,
    pub incarnation: Uuid,
    pub started_us: i64,
    pub timing: Timing,
    pub limits: Limits,
    pub schema_limits: orbitalis_schemas::Limits,
    pub bus: Bus,
    pub connections: Connections,
    pub pending: PendingTable,
    pub peers: Acquaintances,
    pub counters: Arc<Counters>,
    pub paused: bool,
    pub stopping: bool,
    /// Whether the data delivery being handled was taken after another in the same turn,
    /// from a backlog: its handler or sink then starts on a worker, beside the task, instead
    /// of on the task (see `workers`).
    pub data_backlog: bool,
    /// The time of the task's current turn, read at most once per turn (see [`Base::now`]).
    pub turn_now: Option<Instant>,
    /// Told of a connection that starts closing, before the remote can hear of it (a core's
    /// calls may no longer wait on it).
    pub on_closing: Option<OnClosing>,
    pub last_tick: Instant,
    pub k6: ReconcileLimiter,
    pub(super) last_data_route: std::cell::Cell<Option<super::receive::DataRoute>>,
    changes: u64,
    out: Outbound,
    events: broadcast::Sender<OrbiterEvent>,
    hooks: mpsc::Sender<OrbiterEvent>,
    state: watch::Sender<State>,
    closed: Vec<Closed>,
    dropped_pending: Vec<Pending>,
}

/// Everything a run needs from the handle's configuration.
pub struct BaseConfig {
    pub topics: Topics,
    pub role: WireRole,
    pub timing: Timing,
    pub limits: Limits,
    pub bus: Bus,
    pub counters: Arc<Counters>,
    pub events: broadcast::Sender<OrbiterEvent>,
}

impl Base {
    pub fn new(cfg: BaseConfig, out: Outbound, hooks: mpsc::Sender<OrbiterEvent>, state: watch::Sender<State>) -> Self {
        let schema_limits = orbitalis_schemas::Limits::new(cfg.bus.max_envelope_size()).unwrap_or_default();
        Base {
            peers: Acquaintances::new(cfg.limits.max_acquaintances),
            topics: cfg.topics,
            role: cfg.role,
            incarnation: Uuid::now_v7(),
            started_us: busline::envelope::now_us(),
            timing: cfg.timing,
            limits: cfg.limits,
            schema_limits,
            bus: cfg.bus,
            connections: Connections::default(),
            pending: PendingTable::default(),
            counters: cfg.counters,
            paused: false,
            stopping: false,
            data_backlog: false,
            turn_now: None,
            on_closing: None,
            last_tick: Instant::now(),
            k6: ReconcileLimiter::default(),
            last_data_route: std::cell::Cell::default(),
            changes: 0,
            out,
            events: cfg.events,
            hooks,
            state,
            closed: Vec::new(),
            dropped_pending: Vec::new(),
        }
    }

    /// The time of the task's current turn. The deliveries of one turn (a data batch at
    /// most) are taken within microseconds of each other, so they share one clock read. The
    /// task reads it anew after a turn's first delivery, whose handler or sink may have run
    /// on the task.
    pub fn now(&mut self) -> Instant {
        *self.turn_now.get_or_insert_with(Instant::now)
    }

    pub fn me(&self) -> &Identifier {
        self.topics.me()
    }

    /// This orbiter as the sender of a protocol message.
    pub fn sender(&self) -> Sender {
        Sender {
            identifier: self.me().clone(),
            incarnation: self.incarnation,
            dead_after_ms: self.timing.dead_after_ms(),
        }
    }

    /// Logs and counts a dropped message.
    pub fn drop_msg(&self, c: Counter, what: std::fmt::Arguments<'_>) {
        self.counters.drop_with(c, self.me(), what);
    }

    fn publish(&self, topic: Topic, msg: &Control) -> bool {
        let event = Event::new(self.me().clone()).with_payload(msg.to_payload());
        if !self.out.send(topic, event) {
            self.drop_msg(Counter::publish_failed, format_args!("outbound queue full or closed"));
            return false;
        }
        true
    }

    /// Publishes a control message to `to` on its kind's topic; resets K2's timer for `to`.
    pub fn send(&mut self, to: &Identifier, kind: Kind, msg: Control) -> bool {
        let ok = self.publish(self.topics.control(kind, to), &msg);
        if ok && let Some(a) = self.peers.get_mut(to) {
            a.last_control_sent = Some(Instant::now());
        }
        ok
    }

    /// Publishes a broadcast (Discover).
    pub fn broadcast(&self, topic: Topic, msg: Control) -> bool {
        self.publish(topic, &msg)
    }

    /// Publishes a GracelessClose for connection `id` to `to` (G5, C2c, K4, K6).
    pub fn send_graceless(
        &mut self,
        to: &Identifier,
        operation: Option<Identifier>,
        id: Uuid,
        reason: CloseReason,
        data: Option<Bytes>,
    ) {
        let msg = Control::GracelessClose(GracelessClose {
            sender: self.sender(),
            operation,
            connection_id: id,
            reason,
            data,
        });
        self.send(to, Kind::Close, msg);
    }

    /// Emits an event to watchers and hooks.
    pub fn emit(&self, ev: OrbiterEvent) {
        let _ = self.events.send(ev.clone());
        if self.hooks.try_send(ev).is_err() {
            self.drop_msg(Counter::hook_errors, format_args!("hook queue full: an event was not passed to hooks"));
        }
    }

    /// Changes whenever connections (or their states), pending requests or requirements
    /// change: roles recompute what depends on them only then.
    pub fn generation(&self) -> u64 {
        self.connections.generation() + self.pending.generation() + self.changes
    }

    /// Changes whenever connections (or their states) or requirements change; unlike
    /// [`Base::generation`], not with pending requests, so views of connections are not
    /// rebuilt at every step of a handshake.
    pub fn connection_generation(&self) -> u64 {
        self.connections.generation() + self.changes
    }

    /// Marks a change the tables do not see (a connection entering CLOSING, a requirement).
    pub fn bump(&mut self) {
        self.changes += 1;
    }

    /// The current state.
    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    /// Changes the state, emitting `StateChanged` when it really changes.
    pub fn set_state(&self, new: State) {
        let old = self.state.send_replace(new);
        if old != new {
            tracing::debug!(target: "orbitalis", orbiter = %self.me(), %old, %new, "state changed");
            self.emit(OrbiterEvent::StateChanged { old, new });
        }
    }

    /// Records a new OPEN connection and emits `ConnectionOpened`.
    pub fn open(&mut self, conn: Connection) {
        tracing::debug!(target: "orbitalis", orbiter = %self.me(), connection = %conn.id, operation = %conn.operation, remote = %conn.remote, "connection opened");
        self.counters.incr(Counter::connections_opened);
        let info = ConnectionInfo::from(&conn);
        self.connections.insert(conn);
        self.emit(OrbiterEvent::ConnectionOpened(info));
    }

    /// Turns a pending request into the OPEN connection `id` (C2a, P2e), its topics derived
    /// from which end this orbiter is.
    pub fn open_pending(&mut self, p: Pending, id: Uuid) {
        let (core, plugin) = match self.role {
            WireRole::Core => (self.me().clone(), p.remote.clone()),
            _ => (p.remote.clone(), self.me().clone()),
        };
        let now = Instant::now();
        let conn = Connection {
            id,
            input_topic: self.topics.input(&plugin, &core, &p.operation, &id),
            output_topic: self.topics.output(&core, &plugin, &p.operation, &id),
            operation: p.operation,
            remote: p.remote,
            offer_id: p.offer_id,
            n_in: Arc::new(p.n_in),
            n_out: Arc::new(p.n_out),
            setup_data: p.setup_data,
            created: now,
            created_us: busline::envelope::now_us(),
            last_use: now,
            closing: None,
        };
        self.open(conn);
    }

    /// A local close (§6.8): removes the connection and emits `ConnectionClosed` once; the
    /// role reacts in [`Base::take_closed`].
    pub fn close_local(&mut self, id: &Uuid, reason: CloseReason, by_remote: bool) -> bool {
        let Some(conn) = self.connections.remove(id) else {
            return false;
        };
        let _span = tracing::debug_span!(target: "orbitalis", "close", connection = %id).entered();
        tracing::debug!(target: "orbitalis", orbiter = %self.me(), connection = %conn.id, operation = %conn.operation, remote = %conn.remote, ?reason, by_remote, "connection closed");
        self.counters.incr(Counter::connections_closed);
        let data = conn.closing.as_ref().and_then(|c| c.remote_data.clone());
        self.emit(OrbiterEvent::ConnectionClosed { connection: ConnectionInfo::from(&conn), reason, data, by_remote });
        self.closed.push(Closed { conn, reason, by_remote });
        true
    }

    /// Removes a pending request; the role reacts in [`Base::take_dropped_pending`].
    pub fn drop_pending(&mut self, key: &Uuid) -> Option<&Pending> {
        let p = self.pending.remove(key)?;
        self.dropped_pending.push(p);
        self.dropped_pending.last()
    }

    /// Connections closed since the last call.
    pub fn take_closed(&mut self) -> Vec<Closed> {
        std::mem::take(&mut self.closed)
    }

    /// Pending requests removed since the last call.
    pub fn take_dropped_pending(&mut self) -> Vec<Pending> {
        std::mem::take(&mut self.dropped_pending)
    }

    /// Whether anything changed that a role must react to.
    pub fn has_changes(&self) -> bool {
        !self.closed.is_empty() || !self.dropped_pending.is_empty()
    }

    /// Whether `remote` holds a connection or pending request with this orbiter.
    pub fn shares_anything(&self, remote: &str) -> bool {
        self.connections.has_remote(remote) || self.pending.has_remote(remote)
    }

    /// A remote is gone (A3 restart, K4 death): closes its connections locally, optionally
    /// telling it, and drops its pending requests.
    pub fn remote_gone(&mut self, remote: &Identifier, reason: CloseReason, tell: bool) {
        for id in self.connections.with_remote(remote) {
            let op = self.connections.get(&id).map(|c| c.operation.clone());
            if self.close_local(&id, reason, false) && tell {
                self.send_graceless(remote, op, id, reason, None);
            }
        }
        for key in self.pending.with_remote(remote) {
            self.drop_pending(&key);
        }
    }

    /// Plain data of every connection.
    pub fn connection_infos(&self) -> Vec<ConnectionInfo> {
        let mut v: Vec<_> = self.connections.iter().map(ConnectionInfo::from).collect();
        v.sort_by(|a, b| (&a.operation, &a.remote).cmp(&(&b.operation, &b.remote)));
        v
    }

    /// Plain data of every pending request.
    pub fn pending_infos(&self) -> Vec<PendingInfo> {
        let mut v: Vec<_> = self.pending.iter().map(PendingInfo::from).collect();
        v.sort_by(|a, b| (&a.operation, &a.remote).cmp(&(&b.operation, &b.remote)));
        v
    }

    /// Identifiers of every remote with a connection or pending request.
    pub fn remote_identifiers(&self) -> Vec<Identifier> {
        let mut v: Vec<Identifier> = self
            .connections
            .iter()
            .map(|c| c.remote.clone())
            .chain(self.pending.iter().map(|p| p.remote.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}
