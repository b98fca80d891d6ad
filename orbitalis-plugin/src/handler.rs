//! Running handlers (PROTOCOL.md Y1-Y4, §7.5): a bounded queue and bounded concurrency per
//! operation, a fair share per connection. A handler starts on the orbiter task and goes on
//! off it from its first wait; a handler's failure or panic is reported to its caller or
//! counted; it never takes the plugin down.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant as StdInstant;

use busline::{Bus, Event, Identifier, Payload, Topic};
use orbitalis_core::orbiter::counters::{Counter, Counters};
use orbitalis_core::orbiter::hooks::guarded;
use orbitalis_core::orbiter::usage::ConnStats;
use orbitalis_core::orbiter::workers::{Runs, Submitted, Workers};
use orbitalis_schemas::SchemaSpec;
use orbitalis_schemas::protocol::{ErrorKind, OperationError as WireError, OperationResult, ProtocolMessage};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::operation::{ConnectionContext, Failure, HandlerFn, Invocation, Produced};
use crate::role::PluginWork;

/// One input waiting for, or given to, a handler.
pub(crate) struct Job {
    pub invocation: Invocation,
    pub correlation: Option<Uuid>,
    pub route: Arc<Route>,
}

/// What the inputs of one connection share, made once per connection (and again whenever the
/// plugin's connections or operations change), so that an input costs one reference count.
pub(crate) struct Route {
    pub context: Arc<ConnectionContext>,
    pub n_in: Arc<SchemaSpec>,
    pub n_out: Arc<SchemaSpec>,
    pub output_topic: Topic,
    /// The connection's shared figures: its in-flight count and last use.
    pub stats: Arc<ConnStats>,
    /// The operation's handler pool; `None` for a producer or before the run started.
    pub pool: Option<Pool>,
    /// The operation's connections, for each one's share of the queue.
    pub connections: usize,
}

/// What runs need besides their job; shared, so a run costs one reference count.
pub(crate) struct Runner {
    pub bus: Bus,
    pub me: Identifier,
    pub counters: Arc<Counters>,
    pub work: mpsc::Sender<PluginWork>,
    pub capacity: usize,
    pub concurrency: usize,
    /// The run's epoch, for last uses.
    pub epoch: Instant,
}

/// One operation's handler runs (see [`Workers`]): the input the orbiter task takes first in a
/// turn starts on the task and goes on off it from its first wait, the ones it takes after it
/// start on workers; at most `concurrency` run off the task at once and `capacity` more queue
/// in arrival order. The orbiter task hears back only when a connection has no work left (G2).
#[derive(Clone)]
pub(crate) struct Pool {
    workers: Workers<Handler>,
}

/// What an operation's pool runs: its handler, with what runs need besides their job.
struct Handler {
    handler: Arc<HandlerFn>,
    runner: Arc<Runner>,
}

impl Runs for Handler {
    type Job = Job;
    type Ran = Arc<Route>;

    fn run(&self, job: Job) -> impl Future<Output = Arc<Route>> + Send + '_ {
        run(job, &*self.handler, &self.runner)
    }

    /// The output or reply went out on the connection, a use (§7.4); the orbiter task hears
    /// when the connection has no work left (G2).
    async fn ran(&self, route: Arc<Route>) {
        let r = &*self.runner;
        route.stats.touch(r.epoch);
        if release(&route) {
            let connection = route.context.id;
            // Waiting for room is rare; its future is boxed to keep this one small.
            if let Err(mpsc::error::TrySendError::Full(idle)) = r.work.try_send(PluginWork::Idle { connection }) {
                let _ = Box::pin(r.work.send(idle)).await;
            }
        }
    }
}

/// What became of an input given to [`Pool::submit`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Admission {
    /// Started, queued or run to its end; `false`: the operation's queue or the connection's
    /// share of it is full.
    pub accepted: bool,
    /// The input's run ended here, or it was refused, and either left its connection without
    /// work in flight: a closing connection may end now (G2).
    pub idle: bool,
}

impl Pool {
    pub fn new(handler: Arc<HandlerFn>, runner: Arc<Runner>) -> Self {
        let (capacity, concurrency) = (runner.capacity, runner.concurrency);
        Pool { workers: Workers::new(Handler { handler, runner }, capacity, concurrency) }
    }

    /// Starts (with `here`, on the calling task) or queues `job`, or refuses it when the
    /// operation's queue or the connection's share of it (`max(64, capacity / connections)`)
    /// is full. An input counts as in flight on its connection from here until its run ends.
    pub fn submit(&self, job: Job, here: bool) -> Admission {
        let share = 64.max(self.workers.capacity() / job.route.connections.max(1));
        // Counted before it can run, so that no run ends before it was counted.
        if job.route.stats.outstanding.fetch_add(1, Ordering::AcqRel) >= share {
            return Admission { accepted: false, idle: release(&job.route) };
        }
        match self.workers.submit(job, here) {
            Submitted::Started | Submitted::Queued => Admission { accepted: true, idle: false },
            Submitted::Finished(route) => Admission { accepted: true, idle: release(&route) },
            Submitted::Full(job) => Admission { accepted: false, idle: release(&job.route) },
        }
    }
}

/// Takes an input off its connection's work in flight; `true` when it was the last.
fn release(route: &Route) -> bool {
    route.stats.outstanding.fetch_sub(1, Ordering::AcqRel) == 1
}

/// Publishes the reply of a call, or a plain output, counting a failure. The event is made
/// at once, so the future holds only the publish's own (it is part of every handler run).
pub(crate) fn publish<'a>(
    r: &'a Runner,
    topic: &'a Topic,
    correlation: Option<Uuid>,
    payload: Option<Payload>,
) -> impl Future<Output = ()> + Send + 'a {
    let mut event = Event::new(r.me.clone());
    event.correlation_id = correlation;
    event.payload = payload;
    let sending = r.bus.publish_owned(topic, event);
    async move {
        if let Err(e) = sending.await {
            r.counters.drop_with(Counter::publish_failed, &r.me, format_args!("output on {topic}: {e}"));
        }
    }
}

/// An OperationError answering a call (Y2-Y4).
pub(crate) fn error_reply(operation: &Identifier, kind: ErrorKind, message: &str) -> Payload {
    let err = WireError {
        operation: operation.clone(),
        kind,
        message: orbitalis_schemas::limits::truncate_utf8(message, orbitalis_schemas::limits::MAX_ERROR_MESSAGE)
            .to_owned(),
    };
    Payload::new(WireError::fingerprint(), err.encode())
}

/// One handler run; gives back the job's route.
///
/// Kept small (a worker awaits one per input): the handler's future is made before the
/// run's, so the run holds only what it needs after it; the reply is decided by a plain
/// function and sent by one publish.
fn run<'a>(job: Job, handler: &HandlerFn, r: &'a Runner) -> impl Future<Output = Arc<Route>> + Send + 'a {
    let Job { invocation, correlation, route } = job;
    let started = correlation.map(|_| StdInstant::now());
    let handled = guarded(handler(invocation));
    async move {
        let outcome = handled.await;
        let Route { context, n_out, output_topic, .. } = &*route;
        if let Some((correlation, payload)) = reply(r, outcome, correlation, &context.operation, started, n_out) {
            publish(r, output_topic, correlation, payload).await;
        }
        route
    }
}

/// What a run sends, as correlation and payload: a call's OperationResult or OperationError,
/// a plain output, or nothing (a failure of a plain execution is counted instead).
fn reply(
    r: &Runner,
    outcome: Result<Result<Produced, Failure>, String>,
    correlation: Option<Uuid>,
    operation: &Identifier,
    started: Option<StdInstant>,
    n_out: &SchemaSpec,
) -> Option<(Option<Uuid>, Option<Payload>)> {
    let outcome = match outcome {
        Ok(Ok(Produced::Nothing)) => Ok(None),
        Ok(Ok(Produced::Value(p))) if n_out.accepts(p.as_ref().map(|p| p.fingerprint)) => Ok(Some(p)),
        Ok(Ok(Produced::Value(_))) => Err((
            ErrorKind::OutputNotAccepted,
            "the handler's output is outside the negotiated output spec".to_owned(),
            Counter::output_rejected,
        )),
        Ok(Err(Failure::InvalidInput(m))) => Err((ErrorKind::InvalidInput, m, Counter::invalid_input)),
        Ok(Err(Failure::Handler(m) | Failure::Output(m))) => {
            Err((ErrorKind::HandlerFailed, m, Counter::handler_errors))
        }
        Err(panic) => {
            Err((ErrorKind::HandlerFailed, format!("the handler panicked: {panic}"), Counter::handler_errors))
        }
    };
    match (outcome, correlation) {
        (Ok(value), Some(k)) => {
            let result = OperationResult {
                operation: operation.clone(),
                output: value.flatten(),
                handler_time_us: started.map_or(0, |t| t.elapsed().as_micros() as i64),
            };
            Some((Some(k), Some(Payload::new(OperationResult::fingerprint(), result.encode()))))
        }
        (Ok(Some(p)), None) => Some((None, p)),
        (Ok(None), None) => None,
        (Err((kind, m, _)), Some(k)) => Some((Some(k), Some(error_reply(operation, kind, &m)))),
        (Err((_, m, counter)), None) => {
            r.counters.drop_with(counter, &r.me, format_args!("{operation}: {m}"));
            None
        }
    }
}
