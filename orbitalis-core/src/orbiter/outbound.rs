//! The writer queue: the orbiter task never awaits the bus (PROTOCOL.md §7.5). Control
//! publishes go into a bounded queue drained, in order, by one writer task.

use std::sync::Arc;

use busline::{Bus, Event, Topic};

use super::counters::{Counter, Counters};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The sending end, held by the orbiter task.
#[derive(Debug)]
pub struct Outbound {
    tx: mpsc::Sender<(Topic, Event)>,
}

impl Outbound {
    /// Starts the writer task on `bus` with a queue of `capacity`.
    pub fn start(bus: Bus, capacity: usize, orbiter: String, counters: Arc<Counters>) -> (Self, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<(Topic, Event)>(capacity);
        let writer = tokio::spawn(async move {
            while let Some((topic, event)) = rx.recv().await {
                if let Err(e) = bus.publish_owned(&topic, event).await {
                    counters.drop_with(
                        Counter::publish_failed,
                        &orbiter,
                        format_args!("publish on {topic} failed: {e}"),
                    );
                }
            }
        });
        (Outbound { tx }, writer)
    }

    /// Queues a publish; `false` at once when the queue is full or the writer is gone.
    pub fn send(&self, topic: Topic, event: Event) -> bool {
        self.tx.try_send((topic, event)).is_ok()
    }
}
