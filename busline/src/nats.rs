//! [`NatsBus`]: the transport over NATS core (no JetStream: nothing is persisted).
//!
//! **Subjects.** A [`Topic`] is used as the subject as is; patterns keep their NATS meaning.
//!
//! **Subscribing.** `subscribe` returns once the server has processed the SUB (§2.5): it
//! sends a request to a subject nobody listens to and waits for the server's no-responders
//! answer, which comes after every earlier command of the connection. (`Client::flush` alone
//! only writes the SUB to the socket: a publish from another connection right after it can
//! still miss the subscription.) This needs a server with headers (NATS 2.2 or later) and is
//! bounded by the client's request timeout.
//!
//! **Queues.** async-nats hands each subscriber's messages over through its own bounded
//! channel (`subscription_capacity`, one value per client). When that channel is full, the
//! client drops the message and only reports [`async_nats::Event::SlowConsumer`] through its
//! event callback. `NatsBus` keeps that channel nearly empty and gives every subscription its
//! own queue of [`SubscribeOptions::capacity`] events: whenever the reader polls, and every
//! 10 ms for a reader that did not meanwhile (one sweeping task per bus), all the client holds for the
//! subscription moves into its queue, and what does not fit is lost, counted in `dropped` with
//! a warning, exactly as on the in-memory bus. The reader takes its events without a task in
//! between. The client's channel ([`NatsBusOptions::client_subscription_capacity`], default
//! 262,144) only fills when more arrives between two sweeps, or when the sweeper is starved of
//! CPU; those losses arrive as slow-consumer events and are counted in `slow_consumer` and
//! `dropped`. async-nats reports them through a channel of 128 events that it does not wait
//! on, so under a long flood some of them may go uncounted.
//!
//! **Options it sets.** [`NatsBus::connect`] and [`NatsBus::connect_with`] install their own
//! event callback (replacing any in the given options) and turn off the client's subject check
//! on publish ([`async_nats::ConnectOptions::skip_subject_validation`]): every subject the bus
//! publishes on is a [`Topic`], checked when it was made, and a second scan of it on every
//! publish costs throughput for nothing. A bus made with [`NatsBus::from_client`] leaves the
//! client as it is: forward the client's events to [`NatsBus::record_event`] to have slow
//! consumers counted.
//!
//! **Reconnection.** async-nats reconnects by itself and re-sends every live subscription
//! before anything published after the reconnection, so subscriptions survive a server
//! restart. Publishes made while disconnected wait in the client and go out afterwards.
//! `reconnects` counts the connections after the first.
//!
//! **Closing.** [`close`](Transport::close) ends every subscription of the bus, waits (5 s at
//! most) for what was published to be written, then drains and closes the connection, unless
//! the bus was made [`from_client`](NatsBus::from_client), whose connection stays open.
//! Dropping every handle of the bus without closing it leaves live subscriptions working.
//!
//! **Limits.** A SUB the server refuses for lack of permission is reported by the server as an
//! error event, not to the subscriber: `subscribe` still succeeds and the subscription stays
//! silent. async-nats logs the server's error.

mod queue;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;

use crate::envelope::{DEFAULT_MAX_ENVELOPE_SIZE, Event, check_max_envelope_size};
use crate::error::Error;
use crate::receive::{Counter, CounterSnapshot, Counters};
use crate::recent::Recent;
use crate::topic::{Pattern, Topic};
use crate::transport::{Bus, ConnectionState, SubscribeOptions, Subscription, Transport};
use queue::Registry;

/// Default for [`NatsBusOptions::client_subscription_capacity`].
pub const DEFAULT_CLIENT_SUBSCRIPTION_CAPACITY: usize = 256 * 1024;

/// How long `close` waits for what was published to leave the client.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of a [`NatsBus`]; also the builder that connects one.
///
/// ```no_run
/// # async fn demo() -> Result<(), busline::Error> {
/// use busline::nats::NatsBusOptions;
/// let bus = NatsBusOptions::new().max_envelope_size(512 * 1024).connect("nats://127.0.0.1:4222").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct NatsBusOptions {
    max_envelope_size: usize,
    client_subscription_capacity: usize,
}

impl Default for NatsBusOptions {
    fn default() -> Self {
        NatsBusOptions {
            max_envelope_size: DEFAULT_MAX_ENVELOPE_SIZE,
            client_subscription_capacity: DEFAULT_CLIENT_SUBSCRIPTION_CAPACITY,
        }
    }
}

impl NatsBusOptions {
    /// The defaults: 1 MiB envelopes, 262,144 messages of client-side buffering per subscriber.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `max_envelope_size` (64 KiB - 64 MiB, checked when connecting); the server's
    /// `max_payload` must be at least this.
    pub fn max_envelope_size(mut self, size: usize) -> Self {
        self.max_envelope_size = size;
        self
    }

    /// Sets async-nats' `subscription_capacity`: messages the client buffers per subscriber
    /// before the subscription's own queue (at least 1). Ignored by
    /// [`from_client`](Self::from_client), whose client is already built.
    pub fn client_subscription_capacity(mut self, capacity: usize) -> Self {
        self.client_subscription_capacity = capacity.max(1);
        self
    }

    /// Connects to `url` (for example `nats://127.0.0.1:4222`) with default client options.
    pub async fn connect(self, url: &str) -> Result<NatsBus, Error> {
        self.connect_with(url, async_nats::ConnectOptions::new()).await
    }

    /// Connects to `url` with the caller's client options (credentials, TLS, name...).
    ///
    /// The bus sets `subscription_capacity` and installs its own `event_callback`, replacing
    /// any set in `options`; to keep yours, build the client yourself and use
    /// [`from_client`](Self::from_client).
    pub async fn connect_with(self, url: &str, options: async_nats::ConnectOptions) -> Result<NatsBus, Error> {
        let max = check_max_envelope_size(self.max_envelope_size)?;
        let counters = Arc::new(Counters::default());
        let events = counters.clone();
        let options = options
            .subscription_capacity(self.client_subscription_capacity)
            .skip_subject_validation(true)
            .event_callback(move |event| {
                let counters = events.clone();
                async move { count_event(&counters, &event) }
            });
        let client =
            options.connect(url).await.map_err(|e| Error::Connect { url: url.to_owned(), source: Box::new(e) })?;
        NatsBus::start(client, counters, max, true).await
    }

    /// Uses a client the caller connected; see the module documentation about its events.
    ///
    /// Waits until the client has talked to a server, to check the server's `max_payload`.
    /// `close` then leaves the client's connection open (the caller may share the client).
    pub async fn from_client(self, client: async_nats::Client) -> Result<NatsBus, Error> {
        let max = check_max_envelope_size(self.max_envelope_size)?;
        NatsBus::start(client, Arc::new(Counters::default()), max, false).await
    }
}

fn count_event(counters: &Counters, event: &async_nats::Event) {
    if let async_nats::Event::SlowConsumer(sid) = event {
        counters.drop_event(Counter::dropped, &format_args!("the NATS client dropped a message for subscriber {sid}"));
        counters.incr(Counter::slow_consumer);
    }
}

/// The NATS transport. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    /// A subject nobody subscribes to, for [`NatsBus::round_trip`].
    probe_subject: String,
    counters: Arc<Counters>,
    max_envelope_size: usize,
    owns_client: bool,
    closed: AtomicBool,
    /// The live subscriptions; it refuses new ones once `close` ended the others.
    subscriptions: Arc<Registry>,
    /// The client's subject of each topic published on lately: cloning one is a reference
    /// count, where building one is an allocation and a copy.
    subjects: Recent<async_nats::Subject>,
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("server", &self.inner.client.server_info().server_name)
            .field("max_envelope_size", &self.inner.max_envelope_size)
            .field("subscriptions", &self.subscription_count())
            .field("closed", &self.inner.closed.load(Relaxed))
            .finish()
    }
}

impl From<NatsBus> for Bus {
    fn from(bus: NatsBus) -> Bus {
        Bus::new(bus)
    }
}

impl NatsBus {
    /// Connects to `url` (for example `nats://127.0.0.1:4222`) with default settings.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        NatsBusOptions::new().connect(url).await
    }

    /// Connects to `url` with the caller's client options; see [`NatsBusOptions::connect_with`].
    pub async fn connect_with(url: &str, options: async_nats::ConnectOptions) -> Result<Self, Error> {
        NatsBusOptions::new().connect_with(url, options).await
    }

    /// Uses a client the caller connected; see [`NatsBusOptions::from_client`].
    pub async fn from_client(client: async_nats::Client) -> Result<Self, Error> {
        NatsBusOptions::new().from_client(client).await
    }

    /// Settings for a bus other than the defaults.
    pub fn options() -> NatsBusOptions {
        NatsBusOptions::new()
    }

    async fn start(
        client: async_nats::Client,
        counters: Arc<Counters>,
        max_envelope_size: usize,
        owns_client: bool,
    ) -> Result<Self, Error> {
        if client.try_server_info().is_none() {
            // A client built with `retry_on_initial_connect` may not have met a server yet; a
            // flush completes once it has.
            client.flush().await.map_err(Error::transport)?;
        }
        let server = client.server_info().max_payload;
        if server < max_envelope_size {
            return Err(Error::ServerPayloadLimit { server, configured: max_envelope_size });
        }
        Ok(NatsBus {
            inner: Arc::new(Inner {
                probe_subject: client.new_inbox(),
                client,
                counters,
                max_envelope_size,
                owns_client,
                closed: AtomicBool::new(false),
                subscriptions: Arc::default(),
                subjects: Recent::default(),
            }),
        })
    }

    /// The underlying client, for what the bus does not offer (requests, JetStream...).
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// Counts a client event the bus could not observe itself (a bus made with
    /// [`from_client`](Self::from_client)): call it from the client's `event_callback`.
    /// Only [`async_nats::Event::SlowConsumer`] changes a counter.
    pub fn record_event(&self, event: &async_nats::Event) {
        count_event(&self.inner.counters, event);
    }

    /// Returns once the server has processed every command this client sent before.
    ///
    /// The server handles one connection's commands in order and answers a request nobody
    /// listens to with a no-responders status, so that answer is the proof. Unlike an echo
    /// of our own message it also works on a client with `no_echo`. Bounded by the client's
    /// request timeout (10 s by default), including while reconnecting.
    async fn round_trip(&self) -> Result<(), Error> {
        match self.inner.client.request(self.inner.probe_subject.clone(), bytes::Bytes::new()).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => Ok(()),
            Err(e) => Err(Error::transport(e)),
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Relaxed) { Err(Error::Closed) } else { Ok(()) }
    }

    fn subject(&self, topic: &Topic) -> async_nats::Subject {
        self.inner.subjects.with(topic, async_nats::Subject::clone).unwrap_or_else(|_| {
            let subject = async_nats::Subject::from(topic.as_str());
            self.inner.subjects.insert(topic, subject.clone());
            subject
        })
    }

    /// Both publishes; not boxed, so each of them costs one boxed future.
    async fn send(&self, topic: &Topic, event: &Event) -> Result<(), Error> {
        self.check_open()?;
        let bytes = event.encode_within(self.inner.max_envelope_size)?;
        let subject = self.subject(topic);
        self.inner.client.publish(subject, bytes).await.map_err(Error::transport)?;
        self.inner.counters.incr(Counter::published);
        Ok(())
    }
}

#[async_trait]
impl Transport for NatsBus {
    async fn publish(&self, topic: &Topic, event: &Event) -> Result<(), Error> {
        self.send(topic, event).await
    }

    async fn publish_owned(&self, topic: &Topic, event: Event) -> Result<(), Error> {
        self.send(topic, &event).await
    }

    async fn subscribe_with(&self, pattern: &Pattern, options: SubscribeOptions) -> Result<Subscription, Error> {
        self.check_open()?;
        let mut subscriber =
            self.inner.client.subscribe(pattern.as_str().to_owned()).await.map_err(Error::transport)?;
        // §2.5: effective once the server has processed the SUB. `Client::flush` only writes
        // it to the socket, so go round the server instead.
        if let Err(e) = self.round_trip().await {
            let _ = subscriber.unsubscribe().await;
            return Err(e);
        }

        let inner = &self.inner;
        // Dropping the subscriber, when the bus closed meanwhile, unsubscribes.
        let stream = inner
            .subscriptions
            .add(subscriber, pattern.clone(), options.capacity.max(1), inner.max_envelope_size, inner.counters.clone())
            .ok_or(Error::Closed)?;
        Ok(Subscription::new(pattern.clone(), stream, options, inner.counters.clone()))
    }

    async fn flush(&self) -> Result<(), Error> {
        self.check_open()?;
        self.inner.client.flush().await.map_err(Error::transport)
    }

    async fn close(&self) -> Result<(), Error> {
        if self.inner.closed.swap(true, Relaxed) {
            return Ok(());
        }
        // Outside the cooperative budget, which would leave messages in the client uncounted.
        tokio::task::coop::unconstrained(async { self.inner.subscriptions.close() }).await;
        // Flushing waits for a connection; a closed bus should not hang on a lost server.
        let flushed = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, self.inner.client.flush()).await;
        if self.inner.owns_client {
            self.inner.client.drain().await.map_err(Error::transport)?;
        }
        match flushed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::transport(e)),
            Err(_) => Err(Error::transport("timed out flushing to the server while closing")),
        }
    }

    fn counters(&self) -> CounterSnapshot {
        // The client counts every connection, the first included.
        let connects = self.inner.client.statistics().connects.load(Relaxed);
        self.inner.counters.raise(Counter::reconnects, connects.saturating_sub(1));
        self.inner.counters.snapshot()
    }

    fn max_envelope_size(&self) -> usize {
        self.inner.max_envelope_size
    }

    fn subscription_count(&self) -> usize {
        self.inner.subscriptions.len()
    }

    fn connection_state(&self) -> ConnectionState {
        if self.inner.closed.load(Relaxed) {
            return ConnectionState::Closed;
        }
        match self.inner.client.connection_state() {
            async_nats::connection::State::Connected => ConnectionState::Connected,
            _ => ConnectionState::Disconnected,
        }
    }
}
