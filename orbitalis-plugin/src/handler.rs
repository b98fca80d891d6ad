//! Running handlers (PROTOCOL.md Y1-Y4, §7.5): a bounded queue and bounded concurrency per
//! operation, a fair share per connection, off the orbiter task. A handler's failure or panic
//! is reported to its caller or counted; it never takes the plugin down.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use busline::{Bus, Event, Identifier, Payload, Topic};
use orbitalis_core::orbiter::counters::{Counter, Counters};
use orbitalis_core::orbiter::hooks::guarded;
use orbitalis_schemas::SchemaSpec;
use orbitalis_schemas::protocol::{ErrorKind, OperationError as WireError, OperationResult, ProtocolMessage};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::operation::{Failure, HandlerFn, Invocation, Produced};
use crate::role::PluginWork;

/// One input waiting for, or given to, a handler.
pub(crate) struct Job {
    pub invocation: Invocation,
    pub correlation: Option<Uuid>,
    pub output_topic: Topic,
    pub n_out: Arc<SchemaSpec>,
}

/// The queue and running count of one operation.
#[derive(Default)]
pub(crate) struct Pool {
    queue: VecDeque<Job>,
    running: usize,
    per_connection: HashMap<Uuid, usize>,
}

/// What a pool needs to run jobs.
#[derive(Clone)]
pub(crate) struct Runner {
    pub bus: Bus,
    pub me: Identifier,
    pub counters: Arc<Counters>,
    pub work: mpsc::Sender<PluginWork>,
    pub capacity: usize,
    pub concurrency: usize,
}

impl Pool {
    /// Jobs queued or running on `connection`: its in-flight work (G2).
    pub fn in_flight(&self, connection: &Uuid) -> usize {
        self.per_connection.get(connection).copied().unwrap_or(0)
    }

    /// Queues `job`, or refuses it (`false`) when the operation's queue or the connection's
    /// share is full.
    pub fn submit(&mut self, job: Job, handler: &Arc<HandlerFn>, r: &Runner, connections: usize) -> bool {
        let conn = job.invocation.context.connection;
        let share = 64.max(r.capacity / connections.max(1));
        let mine = self.in_flight(&conn);
        if self.queue.len() >= r.capacity || mine >= share {
            return false;
        }
        *self.per_connection.entry(conn).or_default() += 1;
        if self.running < r.concurrency {
            self.running += 1;
            spawn(job, handler.clone(), r.clone());
        } else {
            self.queue.push_back(job);
        }
        true
    }

    /// A run on `connection` ended: start the next queued job.
    pub fn done(&mut self, connection: &Uuid, handler: Option<&Arc<HandlerFn>>, r: &Runner) {
        if let Some(n) = self.per_connection.get_mut(connection) {
            *n -= 1;
            if *n == 0 {
                self.per_connection.remove(connection);
            }
        }
        self.running = self.running.saturating_sub(1);
        if let (Some(h), Some(job)) = (handler, self.queue.pop_front()) {
            self.running += 1;
            spawn(job, h.clone(), r.clone());
        }
    }
}

/// Publishes the reply of a call, or a plain output.
async fn publish(r: &Runner, topic: &Topic, correlation: Option<Uuid>, payload: Option<Payload>) {
    let mut event = Event::new(r.me.clone());
    event.correlation_id = correlation;
    event.payload = payload;
    if let Err(e) = r.bus.publish(topic, &event).await {
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

fn spawn(job: Job, handler: Arc<HandlerFn>, r: Runner) {
    tokio::spawn(async move {
        let Job { invocation, correlation, output_topic, n_out } = job;
        let operation = invocation.context.operation.clone();
        let connection = invocation.context.connection;
        let started = StdInstant::now();
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
                    handler_time_us: started.elapsed().as_micros() as i64,
                };
                let payload = Payload::new(OperationResult::fingerprint(), result.encode());
                publish(&r, &output_topic, Some(k), Some(payload)).await;
            }
            (Ok(Some(p)), None) => publish(&r, &output_topic, None, p).await,
            (Ok(None), None) => {}
            (Err((kind, m, _)), Some(k)) => reply_error(&r, &output_topic, k, &operation, kind, m).await,
            (Err((_, m, counter)), None) => r.counters.drop_with(counter, &r.me, format_args!("{operation}: {m}")),
        }
        let _ = r.work.send(PluginWork::HandlerDone { operation, connection }).await;
    });
}
