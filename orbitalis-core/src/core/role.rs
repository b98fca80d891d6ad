//! The Core role on the shared runtime: requirements, compliance, discovery, the handshake,
//! outputs and calls, and the view handles execute from.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use busline::{Delivery, Identifier};
use bytes::Bytes;
use orbitalis_schemas::protocol::{CloseReason, Control, Role as WireRole};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::call::Calls;
use super::compliance::{compliant, counts};
use super::execute::{Candidate, ExecView, OpView};
use super::requirement::Resolved;
use super::sink::{Sink, SinkQueue};
use crate::orbiter::base::{Base, Closed};
use crate::orbiter::events::State;
use crate::orbiter::pending::Pending;
use crate::orbiter::receive::Received;
use crate::orbiter::task::Role;
use crate::orbiter::usage::Usage;
use crate::topics::Kind;

/// A computed setup-data hook (C1g), run on the orbiter task.
pub(crate) type SetupHook = Arc<dyn Fn(&Identifier, &Identifier) -> Option<Bytes> + Send + Sync>;

/// One required operation.
pub(crate) struct Req {
    pub operation: Identifier,
    pub req: Resolved,
    pub cursor: Arc<AtomicUsize>,
}

/// Commands only a core understands.
pub(crate) enum CoreCommand {
    /// A caller stopped waiting, which left this connection without waiting calls: its
    /// graceful close may end.
    CallsEnded(Uuid),
    /// Add, change (`Some`) or remove (`None`) a requirement.
    SetRequirement(Identifier, Option<Box<Resolved>>),
    /// Add or replace the sink of an operation.
    SetSink(Identifier, Sink),
}

pub(crate) struct CoreRole {
    pub reqs: Vec<Req>,
    pub sinks: HashMap<Identifier, Sink>,
    pub sink_queues: HashMap<Identifier, SinkQueue>,
    pub calls: Arc<Calls>,
    pub last_discover: Option<Instant>,
    pub setup_hook: SetupHook,
    view: watch::Sender<Arc<ExecView>>,
    usage: Usage,
    generation: u64,
    view_generation: u64,
}

impl CoreRole {
    pub(crate) fn new(
        reqs: Vec<(Identifier, Resolved)>,
        sinks: HashMap<Identifier, Sink>,
        setup_hook: SetupHook,
        view: watch::Sender<Arc<ExecView>>,
        max_waiting_calls: usize,
    ) -> Self {
        CoreRole {
            reqs: reqs.into_iter().map(|(operation, req)| Req { operation, req, cursor: Arc::default() }).collect(),
            sinks,
            sink_queues: HashMap::new(),
            calls: Arc::new(Calls::new(max_waiting_calls)),
            last_discover: None,
            setup_hook,
            view,
            usage: Usage::default(),
            generation: u64::MAX,
            view_generation: u64::MAX,
        }
    }

    pub(crate) fn in_flight_on(&self, id: &Uuid) -> usize {
        self.calls.on(id)
    }

    /// The sink queue of an operation, started on first use; the requirement's sink wins.
    pub(crate) fn sink_queue(&mut self, base: &Base, operation: &str) -> Option<&SinkQueue> {
        if !self.sink_queues.contains_key(operation) {
            let r = self.reqs.iter().find(|r| r.operation.as_str() == operation)?;
            let sink = r.req.sink.clone().or_else(|| self.sinks.get(operation).cloned())?;
            let q = SinkQueue::start(
                sink,
                base.limits.sink_queue,
                base.limits.sink_concurrency,
                base.counters.clone(),
                base.me().to_string(),
            );
            self.sink_queues.insert(r.operation.clone(), q);
        }
        self.sink_queues.get(operation)
    }

    /// §6.4: COMPLIANT iff every requirement is met; only changes of the value are emitted.
    fn recompute(&self, base: &Base) {
        if base.stopping {
            return;
        }
        let ok = self.reqs.iter().all(|r| compliant(base, &r.operation, &r.req));
        base.set_state(if ok { State::Compliant } else { State::NotCompliant });
    }

    /// Republishes the view when connections changed since the last one.
    fn refresh_view(&mut self, base: &Base) {
        let mut ops: HashMap<Identifier, OpView> = HashMap::new();
        for r in &self.reqs {
            let mut candidates: Vec<Candidate> = base
                .connections
                .for_operation(&r.operation)
                .filter(|c| c.is_open())
                .map(|c| Candidate {
                    plugin: c.remote.clone(),
                    id: c.id,
                    topic: c.input_topic.clone(),
                    n_in: c.n_in.clone(),
                    stats: self.usage.of(c.id),
                })
                .collect();
            candidates.sort_by(|a, b| a.plugin.as_bytes().cmp(b.plugin.as_bytes()));
            ops.insert(r.operation.clone(), OpView { candidates, cursor: r.cursor.clone() });
        }
        self.usage.retain(base);
        self.calls.set_open(ops.values().flat_map(|op| op.candidates.iter().map(|c| c.id)));
        let running = !base.stopping;
        let epoch = self.usage.epoch();
        self.view.send_replace(Arc::new(ExecView { running, epoch, ops, calls: self.calls.clone() }));
    }

    fn set_requirement(&mut self, base: &mut Base, operation: Identifier, req: Option<Box<Resolved>>) {
        self.sink_queues.remove(&operation);
        match (self.reqs.iter().position(|r| r.operation == operation), req) {
            (Some(i), Some(req)) => {
                self.reqs[i].req = *req;
                self.enforce(base, i);
            }
            (None, Some(req)) => self.reqs.push(Req { operation, req: *req, cursor: Arc::default() }),
            (Some(i), None) => {
                self.reqs.remove(i);
                for key in base.pending.for_operation(&operation).map(|p| p.key).collect::<Vec<_>>() {
                    base.drop_pending(&key);
                }
                for id in base.connections.for_operation(&operation).map(|c| c.id).collect::<Vec<_>>() {
                    base.close_graceful(&id, CloseReason::RequirementChanged, None);
                    let n = self.in_flight_on(&id);
                    base.finish_close(&id, n);
                }
            }
            (None, None) => {}
        }
        base.bump();
    }

    /// §6.4 at run time: lists now refusing a plugin, then a lowered maximum.
    fn enforce(&mut self, base: &mut Base, i: usize) {
        let (op, req) = (self.reqs[i].operation.clone(), self.reqs[i].req.clone());
        let refused = |p: &str| !req.lists.admits(p) && !req.is_mandatory(p);
        for key in base.pending.for_operation(&op).filter(|p| refused(&p.remote)).map(|p| p.key).collect::<Vec<_>>() {
            base.drop_pending(&key);
        }
        for id in base.connections.for_operation(&op).filter(|c| refused(&c.remote)).map(|c| c.id).collect::<Vec<_>>() {
            base.close_graceful(&id, CloseReason::RequirementChanged, None);
        }
        let Some(max) = req.maximum else { return };
        let optional_pending: Vec<Uuid> =
            base.pending.for_operation(&op).filter(|p| !req.is_mandatory(&p.remote)).map(|p| p.key).collect();
        for key in optional_pending {
            if counts(base, &op, &req).opt_held <= max {
                return;
            }
            base.drop_pending(&key);
        }
        let mut open: Vec<(Instant, Uuid)> = base
            .connections
            .for_operation(&op)
            .filter(|c| c.is_open() && !req.is_mandatory(&c.remote))
            .map(|c| (c.created, c.id))
            .collect();
        open.sort_by(|a, b| b.cmp(a));
        for (_, id) in open {
            if counts(base, &op, &req).opt_held - closing_optional(base, &op, &req) <= max {
                return;
            }
            base.close_graceful(&id, CloseReason::RequirementChanged, None);
        }
    }
}

/// CLOSING optional connections, which still hold slots until they end.
fn closing_optional(base: &Base, op: &str, req: &Resolved) -> usize {
    base.connections.for_operation(op).filter(|c| !c.is_open() && !req.is_mandatory(&c.remote)).count()
}

impl Drop for CoreRole {
    /// A run that ends, even by abort, leaves handles a view that refuses to execute, and no
    /// caller waiting for a reply it can no longer get. An aborted run's role may be dropped
    /// after the next run published its view: that one stays (each run has its own calls).
    fn drop(&mut self) {
        self.view.send_if_modified(|view| {
            let ours = Arc::ptr_eq(&view.calls, &self.calls);
            if ours {
                *view = Arc::new(ExecView::stopped());
            }
            ours
        });
        self.calls.abandon();
    }
}

impl Role for CoreRole {
    type Command = CoreCommand;
    type Work = std::convert::Infallible;
    const WIRE: WireRole = WireRole::Core;
    const CONTROL: &'static [Kind] =
        &[Kind::Offer, Kind::Response, Kind::Keepalive, Kind::KeepaliveRequest, Kind::Close, Kind::CloseAck];
    const BROADCAST: &'static [Kind] = &[];
    const DATA: Kind = Kind::Out;

    fn start(&mut self, base: &mut Base, _work: mpsc::Sender<Self::Work>) {
        let calls = self.calls.clone();
        base.on_closing = Some(Box::new(move |id| calls.closing(id)));
        self.usage = Usage::default();
        self.refresh_view(base);
        self.recompute(base);
        self.maybe_discover(base, Instant::now());
    }

    fn handshake(&mut self, base: &mut Base, r: Received) {
        match r.msg {
            Control::Offer(m) => self.on_offer(base, &r.from, m),
            Control::Confirm(m) => self.on_confirm(base, &r.from, m),
            Control::OperationNoLongerAvailable(m) => self.on_nla(base, &r.from, m),
            other => base.drop_msg(
                crate::orbiter::counters::Counter::unexpected_message,
                format_args!("a core does not handle {}", other.kind().name()),
            ),
        }
    }

    fn data(&mut self, base: &mut Base, d: Delivery) {
        self.on_output(base, d);
    }

    fn command(&mut self, base: &mut Base, c: CoreCommand) {
        match c {
            CoreCommand::CallsEnded(connection) => {
                let n = self.in_flight_on(&connection);
                base.finish_close(&connection, n);
            }
            CoreCommand::SetRequirement(op, req) => self.set_requirement(base, op, req),
            CoreCommand::SetSink(op, sink) => {
                self.sink_queues.remove(&op);
                self.sinks.insert(op, sink);
            }
        }
    }

    fn work(&mut self, _base: &mut Base, w: Self::Work) {
        match w {}
    }

    fn idle(&mut self, base: &mut Base, now: Instant) {
        self.usage.sync(base);
        for id in base.idle_connections(now) {
            let Some(c) = base.connections.get(&id) else { continue };
            let Some(r) = self.reqs.iter().find(|r| r.operation == c.operation) else { continue };
            // E2 frees slots above the minimum, never compliance or a mandatory plugin.
            if r.req.is_mandatory(&c.remote) || counts(base, &r.operation, &r.req).opt_open <= r.req.minimum {
                continue;
            }
            base.close_graceful(&id, CloseReason::Idle, None);
        }
    }

    fn tick(&mut self, base: &mut Base, now: Instant) {
        self.purge_calls(base, now);
        self.maybe_discover(base, now);
    }

    fn react(&mut self, _base: &mut Base, closed: Vec<Closed>, _dropped: Vec<Pending>) {
        for c in closed {
            self.fail_calls(&c.conn.id, c.reason);
        }
    }

    fn settle(&mut self, base: &mut Base) {
        if base.connection_generation() != self.view_generation {
            self.view_generation = base.connection_generation();
            // The view first: a caller woken by COMPLIANT must find the connections in it.
            self.refresh_view(base);
            self.recompute(base);
        }
        if base.generation() != self.generation {
            self.generation = base.generation();
            self.maybe_discover(base, Instant::now());
        }
    }

    fn in_flight(&self, id: &Uuid) -> usize {
        self.in_flight_on(id)
    }

    fn begin_stop(&mut self, base: &mut Base) {
        base.set_state(State::Stopping);
        base.bump();
    }
}
