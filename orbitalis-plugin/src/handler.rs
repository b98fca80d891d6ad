//! Running handlers (PROTOCOL.md Y1-Y4, §7.5): a bounded queue and bounded concurrency per
//! operation, a fair share per connection, off the orbiter task. A handler's failure or panic
//! is reported to its caller or counted; it never takes the plugin down.

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

/// Publishes the reply of a call, or a plain output.
async fn publish(r: &Runner, topic: &Topic, correlation: Option<Uuid>, payload: Option<Payload>) {
    let mut event = Event::new(r.me.clone());
    event.correlation_id = correlation;
    event.payload = payload;
    if let Err(e) = r.bus.publish_owned(topic, event).await {
        r.counters.drop_with(Counter::publish_failed, &r.me, format_args!("output on {topic}: {e}"));
    }
}

/// Answers a call with an OperationError (Y2-Y4).
pub(crate) async fn reply_error(
    r: &Runner,
    topic: &Topic,
    correlation: Uuid,
    operation: &Identifier,
    kind: ErrorKind,
    message: String,
) {
    let err = WireError {
        operation: operation.clone(),
        kind,
        message: orbitalis_schemas::limits::truncate_utf8(&message, orbitalis_schemas::limits::MAX_ERROR_MESSAGE)
            .to_owned(),
    };
    publish(r, topic, Some(correlation), Some(Payload::new(WireError::fingerprint(), err.encode()))).await;
}

/// One handler run, holding one of its operation's permits.
async fn run(job: Job, handler: Arc<HandlerFn>, r: Arc<Runner>, permit: OwnedSemaphorePermit) {
    let Job { invocation, correlation, output_topic, n_out, stats } = job;
    let operation = invocation.context.operation.clone();
    let connection = invocation.context.connection;
    let started = correlation.map(|_| StdInstant::now());
    let outcome = match guarded(handler(invocation)).await {
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
            let payload = Payload::new(OperationResult::fingerprint(), result.encode());
            publish(&r, &output_topic, Some(k), Some(payload)).await;
        }
        (Ok(Some(p)), None) => publish(&r, &output_topic, None, p).await,
        (Ok(None), None) => {}
        (Err((kind, m, _)), Some(k)) => reply_error(&r, &output_topic, k, &operation, kind, m).await,
        (Err((_, m, counter)), None) => r.counters.drop_with(counter, &r.me, format_args!("{operation}: {m}")),
    }
    drop(permit);
    // The output or reply went out on the connection: a use (§7.4).
    stats.touch(r.epoch);
    if stats.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
        let _ = r.work.send(PluginWork::Idle { connection }).await;
    }
}
