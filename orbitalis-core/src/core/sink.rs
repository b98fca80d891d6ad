//! Sinks: where a core's uncorrelated outputs go, one queue and worker per operation, so
//! outputs are seen in publish order (concurrency 1 by default) and a slow sink never delays
//! the orbiter task (PROTOCOL.md §7.5).

use std::fmt;
use std::sync::Arc;

use busline::{Identifier, Payload};
use futures::future::BoxFuture;
use orbitalis_schemas::{Data, Schema, SchemaSpec};
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

use crate::orbiter::counters::{Counter, Counters};
use crate::orbiter::hooks::guarded;

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

/// One output on its way to a sink: raw, decoded in the sink's worker.
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

/// The sending end of one operation's sink worker.
pub(crate) struct SinkQueue {
    tx: mpsc::Sender<SinkItem>,
}

/// Counts and logs a sink run that failed or panicked.
fn report(counters: &Counters, orbiter: &str, r: Result<Result<(), String>, String>) {
    if let Err(e) = r.and_then(|r| r) {
        counters.drop_with(Counter::sink_errors, orbiter, format_args!("sink failed: {e}"));
    }
}

impl SinkQueue {
    /// Starts a worker running `sink` on up to `concurrency` outputs at once.
    pub fn start(sink: Sink, capacity: usize, concurrency: usize, counters: Arc<Counters>, orbiter: String) -> Self {
        let (tx, mut rx) = mpsc::channel::<SinkItem>(capacity);
        let orbiter: Arc<str> = orbiter.into();
        tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(concurrency));
            while let Some(item) = rx.recv().await {
                let run = (sink.f)(item);
                if concurrency == 1 {
                    report(&counters, &orbiter, guarded(run).await);
                } else if let Ok(permit) = permits.clone().acquire_owned().await {
                    let (counters, orbiter) = (counters.clone(), orbiter.clone());
                    tokio::spawn(async move {
                        report(&counters, &orbiter, guarded(run).await);
                        drop(permit);
                    });
                }
            }
        });
        SinkQueue { tx }
    }

    /// Queues an output; `false` when the queue is full.
    pub fn push(&self, item: SinkItem) -> bool {
        self.tx.try_send(item).is_ok()
    }
}
