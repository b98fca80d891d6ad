//! The transport trait every bus implements, the subscription stream it returns, and [`Bus`],
//! the cheap handle orbiters hold.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::Stream;

use crate::envelope::Event;
use crate::error::Error;
use crate::local::{LocalBus, LocalStream};
use crate::receive::{Counter, CounterSnapshot, Counters, DuplicateWindow};
use crate::topic::{Pattern, Topic};

/// One event received on a subscription, with the topic it was published on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Where the event was published.
    pub topic: Topic,
    /// The event.
    pub event: Event,
}

/// Default per-subscription queue capacity (PROTOCOL.md §7.5, data subscriptions).
pub const DEFAULT_SUBSCRIPTION_CAPACITY: usize = 1024;
/// Default duplicate window (PROTOCOL.md §2.3, check 7).
pub const DEFAULT_DUPLICATE_WINDOW: usize = 1024;

/// How a subscription queues and filters what it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Events queued for this subscriber before new ones are dropped and counted
    /// (`dropped`). Default 1,024.
    pub capacity: usize,
    /// Event ids remembered to drop duplicates (`duplicate`); 0 turns the check off.
    /// Default 1,024; at most [`DuplicateWindow::MAX_CAPACITY`] (262,144), larger values
    /// are lowered to it.
    pub duplicate_window: usize,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions { capacity: DEFAULT_SUBSCRIPTION_CAPACITY, duplicate_window: DEFAULT_DUPLICATE_WINDOW }
    }
}

impl SubscribeOptions {
    /// Sets the queue capacity (at least 1).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Sets the duplicate window; 0 turns it off.
    pub fn duplicate_window(mut self, window: usize) -> Self {
        self.duplicate_window = window;
        self
    }
}

/// Whether a networked bus is connected to its server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connected; publishes go out.
    Connected,
    /// Connection lost; the client reconnects by itself and re-establishes subscriptions.
    Disconnected,
    /// The bus was closed.
    Closed,
}

/// A pub/sub transport.
///
/// Contract, the same on every implementation:
/// - `publish` refuses an event whose encoded size exceeds [`Transport::max_envelope_size`]
///   with [`Error::PayloadTooLarge`] and never truncates; it never blocks on slow subscribers.
/// - `subscribe` returns once the subscription is effective on the server, so an event
///   published afterwards by anyone reaches it.
/// - Events from one publisher on one topic arrive in publish order.
/// - Dropping a [`Subscription`] unsubscribes.
/// - A subscriber whose queue is full loses new events, counted in `dropped`.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Publishes `event` on `topic`.
    async fn publish(&self, topic: &Topic, event: &Event) -> Result<(), Error>;

    /// Publishes `event` on `topic`, taking it: what [`Bus::publish_owned`] calls. The default
    /// calls [`Transport::publish`] (one more boxed future); a transport overrides it to spare
    /// that.
    async fn publish_owned(&self, topic: &Topic, event: Event) -> Result<(), Error> {
        self.publish(topic, &event).await
    }

    /// Subscribes to `pattern`.
    async fn subscribe_with(&self, pattern: &Pattern, options: SubscribeOptions) -> Result<Subscription, Error>;

    /// Waits until what was published so far has left this client.
    async fn flush(&self) -> Result<(), Error>;

    /// Closes the bus: later publishes and subscribes fail with [`Error::Closed`].
    async fn close(&self) -> Result<(), Error>;

    /// The counters of this bus.
    fn counters(&self) -> CounterSnapshot;

    /// The largest encoded event this bus sends or accepts.
    fn max_envelope_size(&self) -> usize;

    /// Subscriptions currently alive on this bus (for leak checks).
    fn subscription_count(&self) -> usize;

    /// Whether the bus is connected.
    fn connection_state(&self) -> ConnectionState {
        ConnectionState::Connected
    }
}

/// A cheap, cloneable handle to any transport; what orbiters are given.
#[derive(Clone, Debug)]
pub struct Bus {
    local: Option<LocalBus>,
    transport: Arc<dyn Transport>,
}

impl Bus {
    /// Wraps a transport.
    pub fn new(transport: impl Transport) -> Self {
        Bus { local: None, transport: Arc::new(transport) }
    }

    /// Wraps the in-memory bus, whose publishes then skip the boxed future of the trait.
    pub(crate) fn local(bus: LocalBus) -> Self {
        Bus { local: Some(bus.clone()), transport: Arc::new(bus) }
    }

    /// Publishes `event` on `topic`.
    pub async fn publish(&self, topic: &Topic, event: &Event) -> Result<(), Error> {
        match &self.local {
            Some(local) => {
                // As in `publish_owned`.
                tokio::task::coop::consume_budget().await;
                local.publish_now(topic, event)
            }
            None => self.transport.publish(topic, event).await,
        }
    }

    /// Publishes `event` on `topic`, handing it over: the in-memory bus gives it to the last
    /// subscriber without a copy. For events made to be published once, as orbiters make them.
    ///
    /// The in-memory bus delivers when this is called (the future only reports and takes its
    /// share of the task's budget); a network bus sends when the future is awaited. The future
    /// holds the result or one boxed future, so that tasks spawned per message stay small.
    pub fn publish_owned<'a>(&'a self, topic: &'a Topic, event: Event) -> Publishing<'a> {
        Publishing(match &self.local {
            Some(local) => Step::Done(Some(local.publish_owned_now(topic, event))),
            None => Step::Sending(self.transport.publish_owned(topic, event)),
        })
    }

    /// Subscribes to `pattern` with default options.
    pub async fn subscribe(&self, pattern: &Pattern) -> Result<Subscription, Error> {
        self.transport.subscribe_with(pattern, SubscribeOptions::default()).await
    }

    /// Subscribes to `pattern`.
    pub async fn subscribe_with(&self, pattern: &Pattern, options: SubscribeOptions) -> Result<Subscription, Error> {
        self.transport.subscribe_with(pattern, options).await
    }

    /// See [`Transport::flush`].
    pub async fn flush(&self) -> Result<(), Error> {
        self.transport.flush().await
    }

    /// See [`Transport::close`].
    pub async fn close(&self) -> Result<(), Error> {
        self.transport.close().await
    }

    /// See [`Transport::counters`].
    pub fn counters(&self) -> CounterSnapshot {
        self.transport.counters()
    }

    /// See [`Transport::max_envelope_size`].
    pub fn max_envelope_size(&self) -> usize {
        self.transport.max_envelope_size()
    }

    /// See [`Transport::subscription_count`].
    pub fn subscription_count(&self) -> usize {
        self.transport.subscription_count()
    }

    /// See [`Transport::connection_state`].
    pub fn connection_state(&self) -> ConnectionState {
        self.transport.connection_state()
    }
}

/// The future of [`Bus::publish_owned`].
#[must_use = "a publish does nothing on a network bus unless awaited"]
pub struct Publishing<'a>(Step<'a>);

enum Step<'a> {
    Done(Option<Result<(), Error>>),
    Sending(Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>),
}

impl fmt::Debug for Publishing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Publishing")
    }
}

impl Future for Publishing<'_> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Step::Done(result) => {
                // The publish is done, but it takes its share of the task's budget as tokio's
                // channels do, so that a loop of in-memory publishes yields now and then to
                // the tasks it feeds instead of starving them.
                std::task::ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
                // Polled again after it finished: it has nothing more to say.
                Poll::Ready(result.take().unwrap_or(Ok(())))
            }
            Step::Sending(fut) => fut.as_mut().poll(cx),
        }
    }
}

/// The transport's stream: the in-memory bus's own, polled without a virtual call, or any
/// other.
enum Inner {
    Local(LocalStream),
    // Only the network buses make these.
    #[cfg_attr(not(any(feature = "nats", feature = "mqtt")), allow(dead_code))]
    Boxed(Pin<Box<dyn Stream<Item = Delivery> + Send>>),
}

impl Inner {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        match self {
            Inner::Local(s) => Pin::new(s).poll_next(cx),
            Inner::Boxed(s) => s.as_mut().poll_next(cx),
        }
    }
}

/// A stream of [`Delivery`]s matching one pattern; dropping it unsubscribes.
///
/// The stream ends only when the bus is closed.
pub struct Subscription {
    pattern: Pattern,
    inner: Inner,
    window: Option<DuplicateWindow>,
    counters: Arc<Counters>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("pattern", &self.pattern).finish_non_exhaustive()
    }
}

impl Subscription {
    /// Wraps a transport's stream; dropping `inner` must unsubscribe.
    #[cfg_attr(not(any(feature = "nats", feature = "mqtt")), allow(dead_code))]
    pub(crate) fn new(
        pattern: Pattern,
        inner: impl Stream<Item = Delivery> + Send + 'static,
        options: SubscribeOptions,
        counters: Arc<Counters>,
    ) -> Self {
        Self::with(pattern, Inner::Boxed(Box::pin(inner)), options, counters)
    }

    /// Wraps the in-memory bus's stream.
    pub(crate) fn local(
        pattern: Pattern,
        inner: LocalStream,
        options: SubscribeOptions,
        counters: Arc<Counters>,
    ) -> Self {
        Self::with(pattern, Inner::Local(inner), options, counters)
    }

    fn with(pattern: Pattern, inner: Inner, options: SubscribeOptions, counters: Arc<Counters>) -> Self {
        Subscription {
            pattern,
            inner,
            window: (options.duplicate_window > 0).then(|| DuplicateWindow::new(options.duplicate_window)),
            counters,
        }
    }

    /// The pattern this subscription matches.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// The next delivery, or `None` once the bus is closed.
    pub async fn recv(&mut self) -> Option<Delivery> {
        futures::StreamExt::next(self).await
    }
}

impl Stream for Subscription {
    type Item = Delivery;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let this = self.get_mut();
        loop {
            match this.inner.poll_next(cx) {
                Poll::Ready(Some(d)) => {
                    if let Some(w) = &mut this.window
                        && !w.insert(d.event.id)
                    {
                        this.counters
                            .drop_event(Counter::duplicate, &format_args!("event {} again on {}", d.event.id, d.topic));
                        continue;
                    }
                    this.counters.incr(Counter::delivered);
                    return Poll::Ready(Some(d));
                }
                other => return other,
            }
        }
    }
}
