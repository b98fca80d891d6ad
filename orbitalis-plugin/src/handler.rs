//! Running handlers (PROTOCOL.md Y1-Y4, §7.5): a bounded queue and bounded concurrency per
//! operation, a fair share per connection, off the orbiter task. A handler's failure or panic
//! is reported to its caller or counted; it never takes the plugin down.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant as StdInstant;

use busline::{Bus, Event, Identifier, Payload, Topic};
use orbitalis_core::orbiter::counters::{Counter, Counters};
use orbitalis_core::orbiter::hooks::guarded;
use orbitalis_core::orbiter::usage::ConnStats;
use orbitalis_schemas::SchemaSpec;
use orbitalis_schemas::protocol::{ErrorKind, OperationError as WireError, OperationResult, ProtocolMessage};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use uuid::Uuid;

use crate::operation::{Failure, HandlerFn, Invocation, Produced};
use crate::role::PluginWork;

/// One input waiting for, or given to, a handler.
pub(crate) struct Job {
    pub invocation: Invocation,
    pub correlation: Option<Uuid>,
    pub output_topic: Topic,
    pub n_out: Arc<SchemaSpec>,
    /// The connection's shared figures: its in-flight count and last use.
    pub stats: Arc<ConnStats>,
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

/// One operation's handler runs: a queue of `capacity` inputs feeding a dispatcher that
/// starts them in arrival order, `concurrency` at a time, each in its own task. The orbiter
/// task only queues; it hears back only when a connection has no work left (G2).
pub(crate) struct Pool {
    tx: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    handler: Arc<HandlerFn>,
    runner: Arc<Runner>,
}

impl Pool {
    /// Starts the dispatcher; it ends once the pool is dropped and its queue is empty.
    pub fn start(handler: Arc<HandlerFn>, r: Arc<Runner>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(r.capacity);
        let permits = Arc::new(Semaphore::new(r.concurrency));
        let (h, runner, p) = (handler.clone(), r.clone(), permits.clone());
        tokio::spawn(async move {
            // The permit first: a job leaves the queue only to run, so the queue holds
            // exactly `capacity` waiting inputs.
            while let Ok(permit) = p.clone().acquire_owned().await {
                let Some(job) = rx.recv().await else { break };
                tokio::spawn(run(job, h.clone(), runner.clone(), permit));
            }
        });
        Pool { tx, permits, handler, runner: r }
    }

    /// Queues `job`, or refuses it (`false`) when the operation's queue or the connection's
    /// share of it (`max(64, capacity / connections)`) is full.
    pub fn submit(&self, job: Job, connections: usize) -> bool {
        let capacity = self.runner.capacity;
        let share = 64.max(capacity / connections.max(1));
        let outstanding = &job.stats.outstanding;
        if outstanding.load(Ordering::Acquire) >= share {
            return false;
        }
        outstanding.fetch_add(1, Ordering::AcqRel);
        // With nothing queued and a permit free, start at once: no hop through the
        // dispatcher, and no input overtakes a queued one.
        if self.tx.capacity() == self.tx.max_capacity()
            && let Ok(permit) = self.permits.clone().try_acquire_owned()
        {
            tokio::spawn(run(job, self.handler.clone(), self.runner.clone(), permit));
            return true;
        }
        match self.tx.try_send(job) {
            Ok(()) => true,
            Err(e) => {
                e.into_inner().stats.outstanding.fetch_sub(1, Ordering::AcqRel);
                false
            }
        }
    }
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

/// One handler run, holding one of its operation's permits.
///
/// Kept small (it is spawned once per input): the handler's future is made before the run's,
/// so the run holds only what it needs after it; the reply is decided by a plain function and
/// sent by one publish.
fn run(
    job: Job,
    handler: Arc<HandlerFn>,
    r: Arc<Runner>,
    permit: OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send + 'static {
    let Job { invocation, correlation, output_topic, n_out, stats } = job;
    let operation = invocation.context.operation.clone();
    let connection = invocation.context.connection;
    let started = correlation.map(|_| StdInstant::now());
    let handled = guarded(handler(invocation));
    async move {
        let outcome = handled.await;
        drop(permit);
        if let Some((correlation, payload)) = reply(&r, outcome, correlation, &operation, started, &n_out) {
            publish(&r, &output_topic, correlation, payload).await;
        }
        // The output or reply went out on the connection: a use (§7.4).
        stats.touch(r.epoch);
        if stats.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Waiting for room is rare; its future is boxed to keep this one small.
            if let Err(mpsc::error::TrySendError::Full(idle)) = r.work.try_send(PluginWork::Idle { connection }) {
                let _ = Box::pin(r.work.send(idle)).await;
            }
        }
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
