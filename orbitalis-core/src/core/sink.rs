//! Sinks: where a core's uncorrelated outputs go, one bounded pool per operation, so outputs
//! are seen in publish order (concurrency 1 by default) and a sink that waits never delays
//! the orbiter task (PROTOCOL.md §7.5).

use std::fmt;
use std::sync::Arc;

use busline::{Identifier, Payload};
use futures::future::BoxFuture;
use orbitalis_schemas::{Data, Schema, SchemaSpec};
use uuid::Uuid;

use crate::orbiter::counters::{Counter, Counters};
use crate::orbiter::hooks::guarded;
use crate::orbiter::workers::{Runs, Submitted, Workers};

/// Where an output came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkContext {
    /// The operation.
    pub operation: Identifier,
    /// The plugin that sent it.
    pub plugin: Identifier,
    /// The connection it came on.
    pub connection: Uuid,
}

/// One output on its way to a sink: raw, decoded where the sink runs.
pub(crate) struct SinkItem {
    pub payload: Option<Payload>,
    pub writer: Option<Schema>,
    pub context: SinkContext,
}

type SinkFn = dyn Fn(SinkItem) -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// A consumer of one operation's outputs. Cheap to clone.
#[derive(Clone)]
pub struct Sink {
    f: Arc<SinkFn>,
    accepts: Result<SchemaSpec, String>,
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink").field("accepts", &self.accepts).finish_non_exhaustive()
    }
}

impl Sink {
    /// A sink taking outputs decoded as `T` with their origin.
    pub fn new<T, F, Fut>(f: F) -> Self
    where
        T: Data,
        F: Fn(T, SinkContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let f = Arc::new(f);
        Sink {
            accepts: T::spec().map_err(|e| e.to_string()),
            f: Arc::new(move |item: SinkItem| {
                let f = f.clone();
                Box::pin(async move {
                    let value = T::from_payload(item.payload.as_ref(), item.writer.as_ref())
                        .map_err(|e| format!("output of {} cannot be read: {e}", item.context.operation))?;
                    f(value, item.context).await;
                    Ok(())
                })
            }),
        }
    }

    /// The outputs this sink can read.
    pub fn accepts(&self) -> Result<&SchemaSpec, &str> {
        self.accepts.as_ref().map_err(String::as_str)
    }
}

/// One operation's sink runs (see [`Workers`]): the output the orbiter task takes first in a
/// turn starts on the task and goes on off it from its first wait, so a sink that waits never
/// delays the task; the ones it takes after it start on workers; at most `concurrency` run
/// off the task at once and `capacity` more queue in publish order.
pub(crate) struct SinkQueue {
    workers: Workers<SinkRuns>,
}

struct SinkRuns {
    sink: Sink,
    counters: Arc<Counters>,
    orbiter: String,
}

impl Runs for SinkRuns {
    type Job = SinkItem;
    type Ran = ();

    async fn run(&self, item: SinkItem) {
        if let Err(e) = guarded((self.sink.f)(item)).await.and_then(|r| r) {
            self.counters.drop_with(Counter::sink_errors, &self.orbiter, format_args!("sink failed: {e}"));
        }
    }

    async fn ran(&self, _: ()) {}
}

impl SinkQueue {
    /// A queue running `sink` on up to `concurrency` outputs at once.
    pub fn start(sink: Sink, capacity: usize, concurrency: usize, counters: Arc<Counters>, orbiter: String) -> Self {
        SinkQueue { workers: Workers::new(SinkRuns { sink, counters, orbiter }, capacity, concurrency) }
    }

    /// Runs (with `here`, on the calling task) or queues an output; `false` when the queue is
    /// full.
    pub fn push(&self, item: SinkItem, here: bool) -> bool {
        !matches!(self.workers.submit(item, here), Submitted::Full(_))
    }
}
