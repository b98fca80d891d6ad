//! Running handlers (PROTOCOL.md Y1-Y4, §7.5): a bounded queue and bounded concurrency per
//! operation, a fair share per connection, off the orbiter task. A handler's failure or panic
//! is reported to its caller or counted; it never takes the plugin down.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant as StdInstant;

use busline::{Bus, Event, Identifier, Payload, Topic};
use orbitalis_core::orbiter::counters::{Counter, Counters};
use orbitalis_core::orbiter::hooks::guarded;
use orbitalis_core::orbiter::usage::ConnStats;
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

/// One operation's handler runs: up to `concurrency` worker tasks taking inputs in arrival
/// order from a queue of `capacity` waiting inputs. A worker is started for an input only
/// when fewer than `concurrency` run, and runs queued inputs one after the other until the
/// queue stays empty (see `work`), so a flood costs a task per worker, not one per input.
/// The orbiter task only queues; it hears back only when a connection has no work left (G2).
#[derive(Clone)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    handler: Arc<HandlerFn>,
    runner: Arc<Runner>,
    state: Mutex<Queue>,
}

/// Under one lock, so that no input is queued just as the last worker leaves: while fewer
/// than `concurrency` workers live, the queue is empty.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Job>,
    workers: usize,
}

impl Pool {
    pub fn new(handler: Arc<HandlerFn>, runner: Arc<Runner>) -> Self {
        Pool { shared: Arc::new(Shared { handler, runner, state: Mutex::default() }) }
    }

    /// Queues `job`, or refuses it (`false`) when the operation's queue or the connection's
    /// share of it (`max(64, capacity / connections)`) is full.
    pub fn submit(&self, job: Job) -> bool {
        let capacity = self.shared.runner.capacity;
        let share = 64.max(capacity / job.route.connections.max(1));
        let outstanding = &job.route.stats.outstanding;
        if outstanding.load(Ordering::Acquire) >= share {
            return false;
        }
        let mut queue = self.shared.lock();
        if queue.workers < self.shared.runner.concurrency {
            queue.workers += 1;
            drop(queue);
            outstanding.fetch_add(1, Ordering::AcqRel);
            tokio::spawn(work(self.shared.clone(), job));
            return true;
        }
        if queue.waiting.len() >= capacity {
            return false;
        }
        outstanding.fetch_add(1, Ordering::AcqRel);
        queue.waiting.push_back(job);
        true
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics under this lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A worker's place in its pool: given back under the pool's lock when the worker finds the
/// queue empty, or when it is dropped otherwise (a panic outside the handler, the runtime
/// shutting down), so that a lost worker never keeps its place.
struct Place {
    shared: Arc<Shared>,
    held: bool,
}

impl Place {
    /// The next queued input; with `leave`, gives the place back when there is none.
    fn next(&mut self, leave: bool) -> Option<Job> {
        let mut queue = self.shared.lock();
        let job = queue.waiting.pop_front();
        if job.is_none() && leave {
            queue.workers -= 1;
            self.held = false;
        }
        job
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.held {
            self.shared.lock().workers -= 1;
        }
    }
}

/// A worker: runs `job`, then whatever is queued, until the queue stays empty across one
/// yield (so that a stream of inputs a little slower than the handlers keeps its workers
/// instead of starting a task per input). Dropping the pool (the operation replaced or
/// removed, the plugin stopping) lets the queue run out.
async fn work(shared: Arc<Shared>, mut job: Job) {
    let mut place = Place { shared, held: true };
    loop {
        run(job, &*place.shared.handler, &place.shared.runner).await;
        job = match place.next(false) {
            Some(next) => next,
            None => {
                tokio::task::yield_now().await;
                match place.next(true) {
                    Some(next) => next,
                    None => return,
                }
            }
        };
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

/// One handler run.
///
/// Kept small (a worker awaits one per input): the handler's future is made before the
/// run's, so the run holds only what it needs after it; the reply is decided by a plain
/// function and sent by one publish.
fn run<'a>(job: Job, handler: &HandlerFn, r: &'a Runner) -> impl Future<Output = ()> + Send + 'a {
    let Job { invocation, correlation, route } = job;
    let started = correlation.map(|_| StdInstant::now());
    let handled = guarded(handler(invocation));
    async move {
        let outcome = handled.await;
        let Route { context, n_out, output_topic, stats, .. } = &*route;
        if let Some((correlation, payload)) = reply(r, outcome, correlation, &context.operation, started, n_out) {
            publish(r, output_topic, correlation, payload).await;
        }
        // The output or reply went out on the connection: a use (§7.4).
        stats.touch(r.epoch);
        let connection = context.id;
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
