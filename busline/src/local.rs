//! [`LocalBus`]: the in-memory transport for tests and embedded use.
//!
//! Each `LocalBus::new()` is its own bus (there is no process-global one); clones share it.
//! Events are handed over as values, never encoded, but the encoded-size limit still holds so
//! a program behaves the same as on a network bus.
//!
//! **Full queues.** Every subscription has a bounded queue ([`SubscribeOptions::capacity`]).
//! A publisher never waits for a subscriber: when a subscriber's queue is full, the event is
//! not queued for that subscriber, the bus's `dropped` counter and the subscription's own
//! [`Subscription`] loss are counted, and a warning is logged (at most once per second).
//! Other subscribers still get it.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::Stream;
use tokio::sync::mpsc;

use crate::envelope::{DEFAULT_MAX_ENVELOPE_SIZE, Event, check_max_envelope_size};
use crate::error::Error;
use crate::receive::{Counter, CounterSnapshot, Counters};
use crate::routing::Routes;
use crate::topic::{Pattern, Topic};
use crate::transport::{Bus, ConnectionState, Delivery, SubscribeOptions, Subscription, Transport};

/// The in-memory bus. Cheap to clone; clones are the same bus.
#[derive(Clone, Debug)]
pub struct LocalBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    routes: RwLock<Routes<mpsc::Sender<Delivery>>>,
    counters: Arc<Counters>,
    next_id: AtomicU64,
    closed: AtomicBool,
    max_envelope_size: usize,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBus {
    /// A new, empty bus with the default `max_envelope_size` (1 MiB).
    pub fn new() -> Self {
        LocalBus {
            inner: Arc::new(Inner {
                routes: RwLock::new(Routes::default()),
                counters: Arc::default(),
                next_id: AtomicU64::new(1),
                closed: AtomicBool::new(false),
                max_envelope_size: DEFAULT_MAX_ENVELOPE_SIZE,
            }),
        }
    }

    /// A new bus with another `max_envelope_size` (64 KiB - 64 MiB).
    pub fn with_max_envelope_size(size: usize) -> Result<Self, Error> {
        let size = check_max_envelope_size(size)?;
        let bus = Self::new();
        let mut inner = Arc::try_unwrap(bus.inner).expect("a new bus has one owner");
        inner.max_envelope_size = size;
        Ok(LocalBus { inner: Arc::new(inner) })
    }

    /// Publishes without awaiting anything: delivering in memory never waits.
    pub(crate) fn publish_now(&self, topic: &Topic, event: &Event) -> Result<(), Error> {
        self.check_open()?;
        event.check_size(self.inner.max_envelope_size)?;
        let counters = &self.inner.counters;
        counters.incr(Counter::published);
        let routes = self.inner.routes.read().unwrap_or_else(|e| e.into_inner());
        routes.for_each_match(topic, |tx| {
            let delivery = Delivery { topic: topic.clone(), event: event.clone() };
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(delivery) {
                counters.drop_event(Counter::dropped, &format_args!("a subscriber's queue is full on {topic}"));
            }
        });
        Ok(())
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Relaxed) { Err(Error::Closed) } else { Ok(()) }
    }
}

impl From<LocalBus> for Bus {
    fn from(bus: LocalBus) -> Bus {
        Bus::local(bus)
    }
}

#[async_trait]
impl Transport for LocalBus {
    async fn publish(&self, topic: &Topic, event: &Event) -> Result<(), Error> {
        self.publish_now(topic, event)
    }

    async fn subscribe_with(&self, pattern: &Pattern, options: SubscribeOptions) -> Result<Subscription, Error> {
        self.check_open()?;
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let id = self.inner.next_id.fetch_add(1, Relaxed);
        self.inner.routes.write().unwrap_or_else(|e| e.into_inner()).insert(pattern, id, tx);
        let stream = LocalStream { rx, id, pattern: pattern.clone(), bus: Arc::downgrade(&self.inner) };
        Ok(Subscription::new(pattern.clone(), stream, options, self.inner.counters.clone()))
    }

    async fn flush(&self) -> Result<(), Error> {
        self.check_open()
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.closed.store(true, Relaxed);
        // Dropping the senders ends every subscription's stream.
        *self.inner.routes.write().unwrap_or_else(|e| e.into_inner()) = Routes::default();
        Ok(())
    }

    fn counters(&self) -> CounterSnapshot {
        self.inner.counters.snapshot()
    }

    fn max_envelope_size(&self) -> usize {
        self.inner.max_envelope_size
    }

    fn subscription_count(&self) -> usize {
        self.inner.routes.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn connection_state(&self) -> ConnectionState {
        if self.inner.closed.load(Relaxed) { ConnectionState::Closed } else { ConnectionState::Connected }
    }
}

struct LocalStream {
    rx: mpsc::Receiver<Delivery>,
    id: u64,
    pattern: Pattern,
    bus: Weak<Inner>,
}

impl Stream for LocalStream {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for LocalStream {
    fn drop(&mut self) {
        if let Some(inner) = self.bus.upgrade() {
            inner.routes.write().unwrap_or_else(|e| e.into_inner()).remove(&self.pattern, self.id);
        }
    }
}
