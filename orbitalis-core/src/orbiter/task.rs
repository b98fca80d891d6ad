//! The orbiter task: one per running orbiter, owning all its protocol state. Bus deliveries,
//! completions of off-task work, handle commands and the tick are merged here, control first
//! (PROTOCOL.md §3.3); nothing here awaits the bus.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use busline::{Delivery, SubscribeOptions, Subscription};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::SelectAll;
use orbitalis_schemas::protocol::{CloseReason, Control, Role as WireRole};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};
use uuid::Uuid;

use super::base::{Base, BaseConfig, Closed};
use super::connection::ConnectionInfo;
use super::counters::Counter;
use super::events::{OrbiterEvent, State};
use super::hooks::{Hooks, guarded, start_hook_worker};
use super::outbound::Outbound;
use super::pending::{Pending, PendingInfo};
use super::receive::Received;
use crate::error::Result;
use crate::topics::Kind;

/// Capacity of the queue of completions from off-task work.
const WORK_QUEUE: usize = 4096;
/// Data deliveries handled in one turn of the task's loop (see `Orbiter::more_data`); tokio's
/// cooperative budget usually ends a turn sooner.
const DATA_BATCH: usize = 64;
/// Capacity of the queue of events to hooks.
const HOOK_QUEUE: usize = 1024;

/// What a role (core or plugin) adds to the shared runtime.
pub trait Role: Send + Sized + 'static {
    /// Role-specific commands from handles.
    type Command: Send + 'static;
    /// Completions of work the role ran off the task.
    type Work: Send + 'static;
    /// The role on the wire.
    const WIRE: WireRole;
    /// Control kinds received on `{ns}.{kind}.{self}.*`.
    const CONTROL: &'static [Kind];
    /// Broadcast kinds received on `{ns}.{kind}._all.*`.
    const BROADCAST: &'static [Kind];
    /// The data kind received on `{ns}.{kind}.{self}.>`.
    const DATA: Kind;

    /// Called once the subscriptions are effective: enter the first state, discover.
    fn start(&mut self, base: &mut Base, work: mpsc::Sender<Self::Work>);
    /// A handshake message (Discover, Offer, Request, Reject, Confirm, NLA).
    fn handshake(&mut self, base: &mut Base, r: Received);
    /// A data delivery (inputs on a plugin, outputs on a core).
    fn data(&mut self, base: &mut Base, d: Delivery);
    /// A role command.
    fn command(&mut self, base: &mut Base, c: Self::Command);
    /// A completion of off-task work.
    fn work(&mut self, base: &mut Base, w: Self::Work);
    /// E2: which idle connections to close.
    fn idle(&mut self, base: &mut Base, now: Instant);
    /// The role's tick steps after the shared ones (D1 on a core).
    fn tick(&mut self, base: &mut Base, now: Instant);
    /// Reacts to closed connections and dropped pending requests.
    fn react(&mut self, base: &mut Base, closed: Vec<Closed>, dropped: Vec<Pending>);
    /// Called after every event: recompute what depends on [`Base::generation`].
    fn settle(&mut self, base: &mut Base);
    /// This side's unfinished work on connection `id` (G2/G3).
    fn in_flight(&self, id: &Uuid) -> usize;
    /// Stop begins: enter STOPPING, drop pending requests (P2d's NLAs), stop new work.
    fn begin_stop(&mut self, base: &mut Base);
}

/// Commands every orbiter understands, plus the role's own.
pub enum Command<C> {
    /// Stop gracefully; answered once stopped.
    Stop(oneshot::Sender<()>),
    /// Suspend discovery, idle closes, keepalives and the tick hook.
    Pause,
    /// Undo [`Command::Pause`].
    Resume,
    /// Plain data about the orbiter.
    Inspect(oneshot::Sender<Inspection>),
    /// Close a connection, gracefully or not.
    Close {
        /// The connection.
        id: Uuid,
        /// Graceful (with ack) or graceless.
        graceful: bool,
        /// Bytes for the remote's hook.
        data: Option<Bytes>,
        /// Whether such an OPEN connection existed.
        reply: oneshot::Sender<bool>,
    },
    /// A role command.
    Role(C),
}

/// Plain data about a running orbiter.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Inspection {
    /// Every connection.
    pub connections: Vec<ConnectionInfo>,
    /// Every pending request.
    pub pending: Vec<PendingInfo>,
    /// Remotes with a connection or pending request.
    pub remotes: Vec<busline::Identifier>,
    /// Remotes remembered (A1-A4).
    pub acquaintances: usize,
}

/// Everything a run needs to start.
pub struct Launch<R: Role> {
    /// Shared configuration.
    pub base: BaseConfig,
    /// The role's state.
    pub role: R,
    /// The user's hooks.
    pub hooks: Arc<dyn Hooks>,
    /// The handle's state cell.
    pub state: watch::Sender<State>,
}

/// A started run: its command queue and its task.
pub struct Running<C> {
    /// Commands to the task.
    pub commands: mpsc::Sender<Command<C>>,
    /// The task; ends after STOPPED.
    pub task: JoinHandle<()>,
}

/// Makes every subscription effective, then starts the task (PROTOCOL.md §6.1 Start).
pub async fn launch<R: Role>(l: Launch<R>) -> Result<Running<R::Command>> {
    let Launch { base: cfg, mut role, hooks, state } = l;
    let bus = cfg.bus.clone();
    let control_opts = SubscribeOptions::default().capacity(cfg.limits.control_queue);
    let data_opts = SubscribeOptions::default().capacity(cfg.limits.data_queue);
    let mut control = SelectAll::new();
    for kind in R::CONTROL {
        control.push(bus.subscribe_with(&cfg.topics.control_pattern(*kind), control_opts).await?);
    }
    for kind in R::BROADCAST {
        control.push(bus.subscribe_with(&cfg.topics.broadcast_pattern(*kind), control_opts).await?);
    }
    let data = bus.subscribe_with(&cfg.topics.data_pattern(R::DATA), data_opts).await?;
    let me = cfg.topics.me().to_string();
    let (out, writer) = Outbound::start(bus, cfg.limits.outbound_queue, me.clone(), cfg.counters.clone());
    let (hook_tx, _hook_worker) = start_hook_worker(hooks.clone(), HOOK_QUEUE, cfg.counters.clone(), me);
    let (commands, rx) = mpsc::channel(cfg.limits.command_queue);
    let (work_tx, work_rx) = mpsc::channel(WORK_QUEUE);
    let mut base = Base::new(cfg, out, hook_tx, state.clone());
    role.start(&mut base, work_tx);
    react(&mut base, &mut role);
    let task = tokio::spawn(
        Orbiter { base, role, hooks, control, data, commands: rx, work: work_rx, writer, state, tick_hook: None }.run(),
    );
    Ok(Running { commands, task })
}

fn react<R: Role>(base: &mut Base, role: &mut R) {
    loop {
        while base.has_changes() {
            let closed = base.take_closed();
            let dropped = base.take_dropped_pending();
            role.react(base, closed, dropped);
        }
        role.settle(base);
        if !base.has_changes() {
            return;
        }
    }
}

struct Orbiter<R: Role> {
    base: Base,
    role: R,
    hooks: Arc<dyn Hooks>,
    control: SelectAll<Subscription>,
    data: Subscription,
    commands: mpsc::Receiver<Command<R::Command>>,
    work: mpsc::Receiver<R::Work>,
    writer: JoinHandle<()>,
    state: watch::Sender<State>,
    tick_hook: Option<JoinHandle<()>>,
}

impl<R: Role> Orbiter<R> {
    async fn run(mut self) {
        let tick = self.base.timing.tick_interval;
        // One timer for the whole run, reset only when it fires: a timer per event costs.
        let timer = tokio::time::sleep(tick);
        tokio::pin!(timer);
        let mut stop_waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut commands_open = true;
        loop {
            if self.base.stopping && self.base.connections.is_empty() {
                break;
            }
            self.base.turn_now = None;
            tokio::select! {
                biased;
                // The timer first, so a flood on any source never starves the tick; polling
                // it reads no clock.
                _ = &mut timer => {
                    self.tick();
                    timer.as_mut().reset(Instant::now() + tick);
                }
                Some(d) = self.control.next() => self.control(d),
                Some(w) = self.work.recv() => self.role.work(&mut self.base, w),
                // Commands before data, so that a flood of data never delays what handles ask.
                c = self.commands.recv(), if commands_open => match c {
                    Some(c) => self.command(c, &mut stop_waiters),
                    None => commands_open = false,
                },
                Some(d) = self.data.next() => {
                    self.base.data_backlog = false;
                    self.role.data(&mut self.base, d);
                    // Its handler or sink may have run on the task: the backlog reads the
                    // clock anew.
                    self.base.turn_now = None;
                    self.more_data(&timer);
                }
            }
            react(&mut self.base, &mut self.role);
        }
        self.teardown(stop_waiters).await;
    }

    /// Handles the data deliveries that are already queued, up to [`DATA_BATCH`] in all, as
    /// long as nothing the select takes first is waiting: the same order as going round the
    /// select for each, without registering with every source per delivery.
    ///
    /// Sources are polled with a no-op waker here; the select polls every source with the
    /// task's own waker again before the task waits, so no wake-up is lost.
    fn more_data(&mut self, timer: &Sleep) {
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 1..DATA_BATCH {
            react(&mut self.base, &mut self.role);
            if self.base.stopping || timer.is_elapsed() || !self.work.is_empty() || !self.commands.is_empty() {
                return;
            }
            if let Poll::Ready(Some(d)) = self.control.poll_next_unpin(&mut cx) {
                return self.control(d);
            }
            match self.data.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(d)) => {
                    self.base.data_backlog = true;
                    self.role.data(&mut self.base, d);
                }
                _ => return,
            }
        }
    }

    fn control(&mut self, d: Delivery) {
        let Some(r) = self.base.receive_control(d, |k| R::CONTROL.contains(&k) || R::BROADCAST.contains(&k)) else {
            return;
        };
        let from = r.from.clone();
        // One span per handshake step, close or liveness message, named by its kind.
        let _span = tracing::debug_span!(target: "orbitalis", "control", orbiter = %self.base.me(), remote = %from, message = r.msg.kind().name()).entered();
        match r.msg {
            Control::Keepalive(ka) => self.base.on_keepalive(&from, ka),
            Control::KeepaliveRequest(_) => self.base.on_keepalive_request(&from),
            Control::GracefulClose(m) => {
                let n = self.role.in_flight(&m.connection_id);
                self.base.on_graceful_close(&from, m, n);
            }
            Control::GracelessClose(m) => self.base.on_graceless_close(&from, m),
            Control::CloseAck(m) => {
                let n = self.role.in_flight(&m.connection_id);
                self.base.on_close_ack(&from, m, n);
            }
            _ => self.role.handshake(&mut self.base, r),
        }
    }

    fn command(&mut self, c: Command<R::Command>, stop_waiters: &mut Vec<oneshot::Sender<()>>) {
        match c {
            Command::Stop(reply) => {
                stop_waiters.push(reply);
                if !self.base.stopping {
                    self.begin_stop();
                }
            }
            Command::Pause => self.base.paused = true,
            Command::Resume => self.base.paused = false,
            Command::Inspect(reply) => {
                let _ = reply.send(Inspection {
                    connections: self.base.connection_infos(),
                    pending: self.base.pending_infos(),
                    remotes: self.base.remote_identifiers(),
                    acquaintances: self.base.peers.len(),
                });
            }
            Command::Close { id, graceful, data, reply } => {
                let open = self.base.connections.get(&id).is_some_and(|c| c.is_open());
                if open {
                    if graceful {
                        self.base.close_graceful(&id, CloseReason::Requested, data);
                        let n = self.role.in_flight(&id);
                        self.base.finish_close(&id, n);
                    } else {
                        self.base.close_graceless(&id, CloseReason::Requested, data);
                    }
                }
                let _ = reply.send(open);
            }
            Command::Role(c) => self.role.command(&mut self.base, c),
        }
    }

    /// PROTOCOL.md §6.1 Stop: STOPPING, pending requests dropped, every OPEN connection
    /// closed gracefully; the loop ends once none is left.
    fn begin_stop(&mut self) {
        tracing::debug!(target: "orbitalis", orbiter = %self.base.me(), "stopping");
        self.base.paused = false;
        self.base.stopping = true;
        self.role.begin_stop(&mut self.base);
        for key in self.base.pending.keys() {
            self.base.drop_pending(&key);
        }
        for id in self.base.connections.ids() {
            self.base.close_graceful(&id, CloseReason::Stopping, None);
            let n = self.role.in_flight(&id);
            self.base.finish_close(&id, n);
        }
    }

    /// PROTOCOL.md §6.9, in order.
    fn tick(&mut self) {
        let now = Instant::now();
        let b = &mut self.base;
        b.lag_guard(now);
        b.expire_pending(now);
        b.close_deadlines(now);
        if !b.paused {
            self.role.idle(b, now);
        }
        b.detect_dead(now);
        if !b.paused {
            b.send_keepalives(now);
        }
        b.prune_acquaintances(now);
        react(b, &mut self.role);
        self.role.tick(b, now);
        if !b.paused && !b.stopping && self.hooks.wants_tick() {
            if self.tick_hook.as_ref().is_some_and(|h| !h.is_finished()) {
                b.counters.incr(Counter::tick_hook_skipped);
            } else {
                let hooks = self.hooks.clone();
                let counters = b.counters.clone();
                let me = b.me().to_string();
                self.tick_hook = Some(tokio::spawn(async move {
                    if let Err(p) = guarded(hooks.on_tick()).await {
                        counters.drop_with(Counter::hook_errors, &me, format_args!("the tick hook panicked: {p}"));
                    }
                }));
            }
        }
    }

    async fn teardown(self, stop_waiters: Vec<oneshot::Sender<()>>) {
        let Orbiter { base, control, data, writer, state, tick_hook, .. } = self;
        drop((control, data));
        if let Some(h) = tick_hook {
            h.abort();
        }
        tracing::debug!(target: "orbitalis", orbiter = %base.me(), "stopped");
        base.emit(OrbiterEvent::StateChanged { old: base.state(), new: State::Stopped });
        // Dropping the base closes the writer's queue; the writer sends what is queued, then ends.
        drop(base);
        let _ = writer.await;
        state.send_replace(State::Stopped);
        for w in stop_waiters {
            let _ = w.send(());
        }
    }
}

impl Base {
    /// A4: forgets remotes with nothing shared that were silent for `acquaintance_ttl`.
    pub fn prune_acquaintances(&mut self, now: Instant) {
        let ttl = self.timing.acquaintance_ttl;
        let idle: Vec<_> = self
            .peers
            .iter()
            .filter(|(id, a)| now.saturating_duration_since(a.last_seen) > ttl && !self.shares_anything(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            self.peers.remove(&id);
        }
    }
}
