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
//!
//! **Routing.** Subscriptions live in a token trie; the subscribers of the last
//! [`RECENT_TOPICS`](crate::recent::RECENT_TOPICS) topics published are also kept in a
//! table, so a repeated publish on a topic costs one hash lookup instead of a trie walk.
//! Every subscribe, unsubscribe and close clears that table, so it never names a
//! subscription that is gone or misses a new one.

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
use crate::recent::{Recent, read, write};
use crate::routing::Routes;
use crate::topic::{Pattern, Topic};
use crate::transport::{Bus, ConnectionState, Delivery, SubscribeOptions, Subscription, Transport};

/// The in-memory bus. Cheap to clone; clones are the same bus.
#[derive(Clone, Debug)]
pub struct LocalBus {
    inner: Arc<Inner>,
}

/// One subscription's queue, as the publisher sees it.
#[derive(Clone, Debug)]
enum Route {
    /// The pattern has no wildcard, so every event it gets was published on that very topic:
    /// the queue holds the events alone and the stream supplies the topic from its own copy.
    /// (Sharing the publisher's would move the topic's reference count between the publishing
    /// and the receiving thread on every event, and make every queue entry larger.)
    Exact(mpsc::Sender<Event>),
    /// A pattern with a wildcard: each event with its topic.
    Wildcard(mpsc::Sender<(Topic, Event)>),
}

#[derive(Debug)]
struct Inner {
    /// Locked before `recent` whenever both are held.
    routes: RwLock<Routes<Route>>,
    recent: Recent<Box<[Route]>>,
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
                recent: Recent::default(),
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
        self.admit(event)?;
        self.route(topic, |routes| {
            for route in routes {
                self.send(route, topic, event.clone());
            }
        });
        Ok(())
    }

    /// [`LocalBus::publish_now`], handing the event to the last subscriber instead of a copy.
    pub(crate) fn publish_owned_now(&self, topic: &Topic, event: Event) -> Result<(), Error> {
        self.admit(&event)?;
        self.route(topic, |routes| {
            if let Some((last, others)) = routes.split_last() {
                for route in others {
                    self.send(route, topic, event.clone());
                }
                self.send(last, topic, event);
            }
        });
        Ok(())
    }

    /// Checks and counts a publish.
    fn admit(&self, event: &Event) -> Result<(), Error> {
        self.check_open()?;
        event.check_size(self.inner.max_envelope_size)?;
        self.inner.counters.incr(Counter::published);
        Ok(())
    }

    /// Calls `deliver` with the routes of `topic`.
    fn route(&self, topic: &Topic, deliver: impl FnOnce(&[Route])) {
        let Err(deliver) = self.inner.recent.with(topic, deliver) else { return };
        let table = read(&self.inner.routes);
        let mut routes = Vec::new();
        table.for_each_match(topic, |route| routes.push(route.clone()));
        deliver(&routes);
        // Under the routes' read lock, so no subscribe or unsubscribe can come in between
        // and leave a stale entry behind.
        self.inner.recent.insert(topic, routes.into());
    }

    fn send(&self, route: &Route, topic: &Topic, event: Event) {
        let full = match route {
            Route::Exact(tx) => matches!(tx.try_send(event), Err(mpsc::error::TrySendError::Full(_))),
            Route::Wildcard(tx) => {
                matches!(tx.try_send((topic.clone(), event)), Err(mpsc::error::TrySendError::Full(_)))
            }
        };
        if full {
            let counters = &self.inner.counters;
            counters.drop_event(Counter::dropped, &format_args!("a subscriber's queue is full on {topic}"));
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Relaxed) { Err(Error::Closed) } else { Ok(()) }
    }
}

impl Inner {
    /// Changes the subscriptions and forgets every remembered route.
    fn change_routes<R>(&self, f: impl FnOnce(&mut Routes<Route>) -> R) -> R {
        let mut routes = write(&self.routes);
        let out = f(&mut routes);
        self.recent.clear();
        out
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
        let capacity = options.capacity.max(1);
        // A pattern without wildcards is a valid topic.
        let (route, queue) = match Topic::new(pattern.as_str()) {
            Ok(topic) => {
                let (tx, rx) = mpsc::channel(capacity);
                (Route::Exact(tx), Queue::Exact { rx, topic })
            }
            Err(_) => {
                let (tx, rx) = mpsc::channel(capacity);
                (Route::Wildcard(tx), Queue::Wildcard(rx))
            }
        };
        let id = self.inner.next_id.fetch_add(1, Relaxed);
        self.inner.change_routes(|routes| routes.insert(pattern, id, route));
        let stream = LocalStream { queue, id, pattern: pattern.clone(), bus: Arc::downgrade(&self.inner) };
        Ok(Subscription::local(pattern.clone(), stream, options, self.inner.counters.clone()))
    }

    async fn flush(&self) -> Result<(), Error> {
        self.check_open()
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.closed.store(true, Relaxed);
        // Dropping the senders ends every subscription's stream.
        self.inner.change_routes(|routes| *routes = Routes::default());
        Ok(())
    }

    fn counters(&self) -> CounterSnapshot {
        self.inner.counters.snapshot()
    }

    fn max_envelope_size(&self) -> usize {
        self.inner.max_envelope_size
    }

    fn subscription_count(&self) -> usize {
        read(&self.inner.routes).len()
    }

    fn connection_state(&self) -> ConnectionState {
        if self.inner.closed.load(Relaxed) { ConnectionState::Closed } else { ConnectionState::Connected }
    }
}

pub(crate) struct LocalStream {
    queue: Queue,
    id: u64,
    pattern: Pattern,
    bus: Weak<Inner>,
}

/// One subscription's queue, as its stream sees it.
enum Queue {
    /// With the topic of every delivery.
    Exact {
        rx: mpsc::Receiver<Event>,
        topic: Topic,
    },
    Wildcard(mpsc::Receiver<(Topic, Event)>),
}

impl Stream for LocalStream {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        Poll::Ready(match &mut self.queue {
            Queue::Exact { rx, topic } => {
                std::task::ready!(rx.poll_recv(cx)).map(|event| Delivery { topic: topic.clone(), event })
            }
            Queue::Wildcard(rx) => std::task::ready!(rx.poll_recv(cx)).map(|(topic, event)| Delivery { topic, event }),
        })
    }
}

impl Drop for LocalStream {
    fn drop(&mut self) {
        if let Some(inner) = self.bus.upgrade() {
            inner.change_routes(|routes| routes.remove(&self.pattern, self.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn topic(s: &str) -> Topic {
        Topic::new(s).unwrap()
    }

    fn event() -> Event {
        Event::new(crate::Identifier::new("me").unwrap())
    }

    #[tokio::test]
    async fn both_kinds_of_queue_deliver_their_topics_count_full_queues_and_end_on_close() {
        let bus = LocalBus::new();
        let one = SubscribeOptions::default().capacity(1).duplicate_window(0);
        let mut wide = bus.subscribe_with(&Pattern::new("q.*").unwrap(), one).await.unwrap();
        let mut exact = bus.subscribe_with(&Pattern::new("q.b").unwrap(), one).await.unwrap();
        for t in ["q.a", "q.b"] {
            bus.publish_now(&topic(t), &event()).unwrap();
            assert_eq!(wide.recv().now_or_never().flatten().unwrap().topic.as_str(), t, "a wildcard delivery's topic");
        }
        assert_eq!(exact.recv().now_or_never().flatten().unwrap().topic.as_str(), "q.b");

        for _ in 0..3 {
            bus.publish_now(&topic("q.b"), &event()).unwrap();
        }
        assert_eq!(bus.counters().dropped, 4, "each queue of one kept the first and dropped two");
        for sub in [&mut wide, &mut exact] {
            assert!(sub.recv().now_or_never().flatten().is_some(), "the kept event is delivered");
        }

        bus.close().await.unwrap();
        for sub in [&mut wide, &mut exact] {
            assert!(matches!(sub.recv().now_or_never(), Some(None)), "closing ends both kinds of stream at once");
        }
    }

    // In-memory deliveries are queued by the publish itself, so receives use `now_or_never`:
    // one that is not ready at once means a lost event (rather than a hung test).
    #[tokio::test]
    async fn remembered_routes_follow_subscribe_unsubscribe_and_close() {
        let bus = LocalBus::new();
        let t = topic("a.b");
        bus.publish_now(&t, &event()).unwrap();

        let mut wide = bus.subscribe_with(&Pattern::new("a.*").unwrap(), SubscribeOptions::default()).await.unwrap();
        bus.publish_now(&t, &event()).unwrap();
        assert!(wide.recv().now_or_never().flatten().is_some(), "a subscription made after a publish is routed");

        let mut exact = bus.subscribe_with(&Pattern::new("a.b").unwrap(), SubscribeOptions::default()).await.unwrap();
        let e = event();
        bus.publish_now(&t, &e).unwrap();
        assert_eq!(wide.recv().now_or_never().flatten().unwrap().event, e);
        assert_eq!(exact.recv().now_or_never().flatten().unwrap().event, e);

        let owned = event();
        Bus::from(bus.clone()).publish_owned(&t, owned.clone()).await.unwrap();
        for sub in [&mut wide, &mut exact] {
            let got = sub.recv().now_or_never().flatten().unwrap();
            assert_eq!(
                (got.topic.as_str(), &got.event),
                ("a.b", &owned),
                "a handed-over event reaches every subscriber"
            );
        }

        drop(wide);
        bus.publish_now(&t, &event()).unwrap();
        assert!(exact.recv().now_or_never().flatten().is_some());
        assert_eq!(bus.subscription_count(), 1);
        assert_eq!(bus.counters().dropped, 0, "nothing was sent to the dropped subscription");

        bus.close().await.unwrap();
        let end = exact.recv().now_or_never();
        assert!(matches!(end, Some(None)), "closing ends the stream at once: no remembered route keeps it open");
    }
}
