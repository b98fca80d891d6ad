//! The Plugin role on the shared runtime: operations, offers, inputs to handlers, periodic
//! producers and run-time changes of operations and policies.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use busline::{Delivery, Identifier};
use orbitalis_core::orbiter::base::{Base, Closed};
use orbitalis_core::orbiter::counters::Counter;
use orbitalis_core::orbiter::events::State;
use orbitalis_core::orbiter::pending::Pending;
use orbitalis_core::orbiter::receive::Received;
use orbitalis_core::orbiter::task::Role;
use orbitalis_core::orbiter::usage::Usage;
use orbitalis_core::topics::Kind;
use orbitalis_schemas::protocol::{
    CloseReason, Control, ErrorKind, OperationNoLongerAvailable, Role as WireRole, UnavailableReason,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::handler::{Job, Pool, Route, Runner, error_reply, publish};
use crate::operation::{ConnectionContext, Invocation, OperationContext, Validated};
use crate::push::{Outlet, PushView, Pusher};

/// The user's plugin object, as the runtime holds it.
pub(crate) type PluginObject = Arc<dyn crate::Plugin>;

/// An operation and its handler queue.
pub(crate) struct Op {
    pub v: Validated,
    /// Started with the run, for operations with a handler.
    pub pool: Option<Pool>,
}

/// Completions of work the plugin runs off its task.
pub(crate) enum PluginWork {
    /// A handler run ended.
    /// A connection has no handler work left.
    Idle {
        /// The connection.
        connection: Uuid,
    },
    /// A setup hook ended (P2d).
    SetupDone {
        /// The pending request's key.
        key: Uuid,
        /// Its result.
        result: Result<(), String>,
    },
    /// Offers delayed by `offer_jitter` are due.
    SendOffers {
        /// The core.
        core: Identifier,
        /// The pending requests to offer.
        offer_ids: Vec<Uuid>,
    },
}

/// Commands only a plugin understands.
pub(crate) enum PluginCommand {
    /// Add or replace an operation (offered from the next Discover).
    SetOperation(Box<Validated>),
    /// Remove an operation, closing its connections.
    RemoveOperation(Identifier),
}

pub(crate) struct PluginRole {
    pub ops: Vec<Op>,
    pub runner: Option<Arc<Runner>>,
    pub plugin: PluginObject,
    view: watch::Sender<Arc<PushView>>,
    pusher: Arc<Pusher>,
    periodic: HashMap<Identifier, JoinHandle<()>>,
    usage: Usage,
    /// Per connection, what its inputs need.
    routes: HashMap<Uuid, Arc<Route>>,
    generation: u64,
}

impl PluginRole {
    pub(crate) fn new(
        ops: Vec<Validated>,
        plugin: PluginObject,
        view: watch::Sender<Arc<PushView>>,
        pusher: Pusher,
    ) -> Self {
        PluginRole {
            ops: ops.into_iter().map(|v| Op { v, pool: None }).collect(),
            runner: None,
            plugin,
            view,
            pusher: Arc::new(pusher),
            periodic: HashMap::new(),
            usage: Usage::default(),
            routes: HashMap::new(),
            generation: u64::MAX,
        }
    }

    fn refresh_view(&mut self, base: &Base) {
        let mut ops: HashMap<Identifier, Vec<Outlet>> = HashMap::new();
        for op in &self.ops {
            let outlets = base
                .connections
                .for_operation(&op.v.name)
                .filter(|c| c.is_open())
                .map(|c| Outlet { topic: c.output_topic.clone(), n_out: c.n_out.clone(), stats: self.usage.of(c.id) })
                .collect();
            ops.insert(op.v.name.clone(), outlets);
        }
        self.usage.retain(base);
        let view = PushView { running: !base.stopping, epoch: self.usage.epoch(), ops };
        self.view.send_replace(Arc::new(view));
    }

    /// Y5: a periodic operation runs while it has an OPEN connection.
    fn refresh_periodic(&mut self, base: &Base) {
        for op in &self.ops {
            let Some((period, producer)) = &op.v.periodic else { continue };
            let open = !base.stopping && base.connections.for_operation(&op.v.name).any(|c| c.is_open());
            let running = self.periodic.get(&op.v.name).is_some_and(|h| !h.is_finished());
            if open && !running {
                let (period, producer, pusher) = (*period, producer.clone(), self.pusher.clone());
                let (name, counters, me) = (op.v.name.clone(), base.counters.clone(), base.me().clone());
                let task = tokio::spawn(async move {
                    let mut every = tokio::time::interval(period);
                    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        every.tick().await;
                        let produced = orbitalis_core::orbiter::hooks::guarded(producer()).await;
                        match produced.map_err(|p| format!("panicked: {p}")).and_then(|r| r) {
                            Ok(payload) => {
                                if let Err(e) = pusher.push(&name, payload).await {
                                    counters.drop_with(
                                        Counter::publish_failed,
                                        &me,
                                        format_args!("periodic {name}: {e}"),
                                    );
                                }
                            }
                            Err(e) => {
                                counters.drop_with(Counter::handler_errors, &me, format_args!("periodic {name}: {e}"))
                            }
                        }
                    }
                });
                self.periodic.insert(op.v.name.clone(), task);
            } else if !open && let Some(task) = self.periodic.remove(&op.v.name) {
                task.abort();
            }
        }
    }

    /// An input on one of this plugin's input topics (check 6, §5.3, Y1, Y4).
    fn on_input(&mut self, base: &mut Base, d: Delivery) {
        let Some((sender, operation, id)) = base.data_route(&d, Kind::In) else { return };
        let now = base.now();
        let conn = match base.connections.get_mut(&id) {
            Some(c) if c.remote.as_str() == sender && c.operation.as_str() == operation => c,
            _ => return base.drop_msg(Counter::unknown_connection, format_args!("input on unknown connection {id}")),
        };
        conn.last_use = now;
        let Some(route) = route(&mut self.routes, &self.ops, &self.pusher, &mut self.usage, base, id) else { return };
        base.seen(&route.context.core, None, now);
        let Some(runner) = &self.runner else { return };
        let Some(pool) = &route.pool else {
            return base.drop_msg(Counter::invalid_input, format_args!("input for producer {operation}"));
        };
        let correlation = d.event.correlation_id;
        let reject = |kind: ErrorKind, message: &str, counter: Counter, base: &Base| match correlation {
            Some(k) => {
                let (r, t) = (runner.clone(), route.output_topic.clone());
                let reply = error_reply(&route.context.operation, kind, message);
                tokio::spawn(async move { publish(&r, &t, Some(k), Some(reply)).await });
            }
            None => base.drop_msg(counter, format_args!("{}: {message}", route.context.operation)),
        };
        let fingerprint = d.event.payload.as_ref().map(|p| p.fingerprint);
        if !route.n_in.accepts(fingerprint) {
            return reject(
                ErrorKind::InvalidInput,
                "the input is outside the negotiated input spec",
                Counter::invalid_input,
                base,
            );
        }
        let writer = fingerprint.and_then(|f| route.n_in.find(f).cloned());
        let job = Job {
            invocation: Invocation {
                payload: d.event.payload,
                writer,
                context: OperationContext { connection: route.context.clone(), call: correlation.is_some() },
            },
            correlation,
            route: route.clone(),
        };
        let admission = pool.submit(job, !base.data_backlog);
        if admission.idle {
            // A closing connection waits for its last run (G2).
            base.finish_close(&id, 0);
        }
        if !admission.accepted {
            reject(ErrorKind::Overloaded, "the handler queue is full", Counter::handler_overflow, base);
        }
    }

    fn set_operation(&mut self, base: &mut Base, v: Validated) {
        match self.ops.iter().position(|o| o.v.name == v.name) {
            Some(i) => {
                self.ops[i].pool = self.pool_for(&v);
                self.ops[i].v = v;
                self.enforce(base, i);
            }
            None => self.ops.push(Op { pool: self.pool_for(&v), v }),
        }
        base.bump();
    }

    fn remove_operation(&mut self, base: &mut Base, name: &Identifier) {
        let Some(i) = self.ops.iter().position(|o| &o.v.name == name) else { return };
        self.ops.remove(i);
        for key in base.pending.for_operation(name).map(|p| p.key).collect::<Vec<_>>() {
            self.drop_with_nla(base, &key, UnavailableReason::OperationRemoved);
        }
        for id in base.connections.for_operation(name).map(|c| c.id).collect::<Vec<_>>() {
            base.close_graceful(&id, CloseReason::OperationRemoved, None);
            let n = self.in_flight_on(&id);
            base.finish_close(&id, n);
        }
        base.bump();
    }

    /// §6.4 for a changed policy: lists now refusing a core, then a lowered maximum.
    fn enforce(&mut self, base: &mut Base, i: usize) {
        let (name, policy) = (self.ops[i].v.name.clone(), self.ops[i].v.policy.clone());
        for key in
            base.pending.for_operation(&name).filter(|p| !policy.admits(&p.remote)).map(|p| p.key).collect::<Vec<_>>()
        {
            self.drop_with_nla(base, &key, UnavailableReason::NotAllowed);
        }
        for id in base
            .connections
            .for_operation(&name)
            .filter(|c| !policy.admits(&c.remote))
            .map(|c| c.id)
            .collect::<Vec<_>>()
        {
            base.close_graceful(&id, CloseReason::PolicyChanged, None);
        }
        let Some(max) = policy.maximum else { return };
        for key in base.pending.for_operation(&name).map(|p| p.key).collect::<Vec<_>>() {
            if Self::used(base, &name) <= max {
                return;
            }
            self.drop_with_nla(base, &key, UnavailableReason::Saturated);
        }
        let mut open: Vec<(Instant, Uuid)> =
            base.connections.for_operation(&name).filter(|c| c.is_open()).map(|c| (c.created, c.id)).collect();
        open.sort_by(|a, b| b.cmp(a));
        for (_, id) in open {
            if Self::used(base, &name) - base.connections.for_operation(&name).filter(|c| !c.is_open()).count() <= max {
                return;
            }
            base.close_graceful(&id, CloseReason::PolicyChanged, None);
        }
    }

    /// Drops a pending request; an ACCEPTED one tells its core why (P2d).
    fn drop_with_nla(&mut self, base: &mut Base, key: &Uuid, reason: UnavailableReason) {
        let Some(p) = base.pending.remove(key) else { return };
        if let Some(connection_id) = p.connection_id {
            let msg = Control::OperationNoLongerAvailable(OperationNoLongerAvailable {
                sender: base.sender(),
                operation: p.operation,
                connection_id,
                reason,
                description: None,
            });
            base.send(&p.remote, Kind::Response, msg);
        }
    }

    fn in_flight_on(&self, id: &Uuid) -> usize {
        self.usage.get(id).map_or(0, |s| s.outstanding.load(std::sync::atomic::Ordering::Acquire))
    }

    /// The handler pool of an operation, once the run has started.
    fn pool_for(&self, v: &Validated) -> Option<Pool> {
        Some(Pool::new(v.handler.clone()?, self.runner.clone()?))
    }
}

/// The [`Route`] of connection `id`, made at its first input since the connections or
/// operations last changed (`routes` is emptied then, which costs nothing while handshakes come
/// and go without inputs). A function of the fields it needs, so the caller keeps the others.
fn route<'a>(
    routes: &'a mut HashMap<Uuid, Arc<Route>>,
    ops: &[Op],
    pusher: &Arc<Pusher>,
    usage: &mut Usage,
    base: &Base,
    id: Uuid,
) -> Option<&'a Arc<Route>> {
    let vacant = match routes.entry(id) {
        Entry::Occupied(e) => return Some(e.into_mut()),
        Entry::Vacant(e) => e,
    };
    let c = base.connections.get(&id)?;
    let op = ops.iter().find(|o| o.v.name == c.operation)?;
    let context = ConnectionContext {
        operation: c.operation.clone(),
        plugin: base.me().clone(),
        core: c.remote.clone(),
        id,
        setup_data: c.setup_data.clone(),
        pusher: pusher.clone(),
    };
    let route = Route {
        context: Arc::new(context),
        n_in: c.n_in.clone(),
        n_out: c.n_out.clone(),
        output_topic: c.output_topic.clone(),
        stats: usage.of(id),
        pool: op.pool.clone(),
        connections: base.connections.for_operation(&c.operation).count(),
    };
    Some(vacant.insert(Arc::new(route)))
}

impl Drop for PluginRole {
    /// A run that ends, even by abort, leaves no producer running and no stale view.
    fn drop(&mut self) {
        for (_, task) in self.periodic.drain() {
            task.abort();
        }
        self.view.send_replace(Arc::new(PushView::default()));
    }
}

impl Role for PluginRole {
    type Command = PluginCommand;
    type Work = PluginWork;
    const WIRE: WireRole = WireRole::Plugin;
    const CONTROL: &'static [Kind] =
        &[Kind::Reply, Kind::Keepalive, Kind::KeepaliveRequest, Kind::Close, Kind::CloseAck];
    const BROADCAST: &'static [Kind] = &[Kind::Discover];
    const DATA: Kind = Kind::In;

    fn start(&mut self, base: &mut Base, work: mpsc::Sender<PluginWork>) {
        self.usage = Usage::default();
        // The routes hold the last run's pools and figures: make them again.
        self.generation = u64::MAX;
        self.runner = Some(Arc::new(Runner {
            bus: base.bus.clone(),
            me: base.me().clone(),
            counters: base.counters.clone(),
            work,
            capacity: base.limits.handler_queue,
            concurrency: base.limits.handler_concurrency,
            epoch: self.usage.epoch(),
        }));
        for i in 0..self.ops.len() {
            self.ops[i].pool = self.pool_for(&self.ops[i].v);
        }
        base.set_state(State::Running);
        self.refresh_view(base);
    }

    fn handshake(&mut self, base: &mut Base, r: Received) {
        match r.msg {
            Control::Discover(m) => self.on_discover(base, &r.from, m),
            Control::Request(m) => self.on_request(base, &r.from, m),
            Control::Reject(m) => self.on_reject(base, &r.from, m),
            other => base.drop_msg(
                Counter::unexpected_message,
                format_args!("a plugin does not handle {}", other.kind().name()),
            ),
        }
    }

    fn data(&mut self, base: &mut Base, d: Delivery) {
        self.on_input(base, d);
    }

    fn command(&mut self, base: &mut Base, c: PluginCommand) {
        match c {
            PluginCommand::SetOperation(v) => self.set_operation(base, *v),
            PluginCommand::RemoveOperation(name) => self.remove_operation(base, &name),
        }
    }

    fn work(&mut self, base: &mut Base, w: PluginWork) {
        match w {
            PluginWork::Idle { connection } => {
                let n = self.in_flight_on(&connection);
                base.finish_close(&connection, n);
            }
            PluginWork::SetupDone { key, result } => self.on_setup_done(base, key, result),
            PluginWork::SendOffers { core, offer_ids } => {
                if !base.stopping {
                    self.send_offers(base, &core, &offer_ids);
                }
            }
        }
    }

    fn idle(&mut self, base: &mut Base, now: Instant) {
        self.usage.sync(base);
        for id in base.idle_connections(now) {
            base.close_graceful(&id, CloseReason::Idle, None);
        }
    }

    fn tick(&mut self, _base: &mut Base, _now: Instant) {}

    fn react(&mut self, _base: &mut Base, _closed: Vec<Closed>, _dropped: Vec<Pending>) {}

    fn settle(&mut self, base: &mut Base) {
        if base.connection_generation() != self.generation {
            self.generation = base.connection_generation();
            self.refresh_view(base);
            self.routes.clear();
            self.refresh_periodic(base);
        }
    }

    fn in_flight(&self, id: &Uuid) -> usize {
        self.in_flight_on(id)
    }

    fn begin_stop(&mut self, base: &mut Base) {
        base.set_state(State::Stopping);
        for key in base.pending.keys() {
            self.drop_with_nla(base, &key, UnavailableReason::Stopping);
        }
        for (_, task) in self.periodic.drain() {
            task.abort();
        }
        base.bump();
    }
}
