//! [`MqttBus`]: the transport over an MQTT 3.1.1 broker (tested with Mosquitto).
//!
//! **Topics.** `.`, `*`, `>` become `/`, `+`, `#`, one-to-one since tokens hold none of those.
//! Deliveries are matched again with NATS semantics, so the parent level that MQTT's `#`
//! also matches (`a/b` for `a/b/#`) never reaches a subscription to `a.b.>`.
//!
//! **Broker subscriptions.** Local subscriptions share broker subscriptions: one SUBSCRIBE per
//! distinct filter, one UNSUBSCRIBE when the last local subscription of that filter is
//! dropped. Each message is decoded once and handed to every local subscription whose pattern
//! matches its topic. MQTT 3.1.1 lets a broker send a client one copy per matching filter when
//! filters overlap (`a/+` and `a/#`; Mosquitto 2.0 sends one); such copies of one event are
//! handed over once. [`subscribe`](Transport::subscribe_with) returns once the broker
//! acknowledged the filter (SUBACK); a failure code (`0x80`) is [`Error::SubscribeRefused`].
//! (Mosquitto 2.0's `acl_file` grants every SUBSCRIBE and filters deliveries instead; its
//! dynamic-security plugin refuses with `0x80`.)
//!
//! **Queues.** One task drives the connection and never waits on a subscriber: each
//! subscription has its own queue of [`SubscribeOptions::capacity`] events, and an event for
//! a full queue is dropped, counted in `dropped` and logged. MQTT's own flow control works
//! between this client and the broker only: a broker holding more messages for a client than
//! its limits allow (Mosquitto: `max_queued_messages`, 1,000 by default, messages waiting for
//! the client) drops them without telling the client.
//!
//! **Delivery.** Clean session, `retain = false`, publishes at [`MqttBusOptions::qos`] (QoS 1
//! by default: the broker acknowledges each publish, which paces the publisher). The broker
//! delivers at the lower of the publish QoS and the subscription QoS,
//! [`MqttBusOptions::subscription_qos`], QoS 0 by default. Why: with a clean session a broker
//! forgets unacknowledged deliveries when the connection drops, so QoS 1 on that leg adds no
//! redelivery, while its in-flight window (Mosquitto: 20 messages) makes the broker queue and,
//! past `max_queued_messages`, drop messages as soon as the subscriber's connection lags a few
//! round trips. At QoS 0 the broker writes at once and the socket buffers absorb bursts:
//! flooding 10,000 events at a subscriber on a loaded machine lost events in 3 of 30 runs with
//! QoS 1 subscriptions and in none of 30 with QoS 0.
//!
//! QoS 2 publishing is refused ([`Error::Config`]): Mosquitto keeps at most
//! `max_inflight_messages` (20) unfinished incoming QoS 2 messages per client and drops the
//! ones a client pipelines beyond that after acknowledging them (PUBREC), so QoS 2 lost
//! events that QoS 1 delivers. Subscriptions may ask for QoS 2.
//!
//! **Reconnection.** The driving task reconnects with a backoff (100 ms doubling to 5 s).
//! After every CONNACK it subscribes again to every live filter before anything else is sent
//! (the broker forgot them: clean session), then sends the publishes that never left before
//! the connection dropped (QoS 1 ones up to the client's in-flight window, 100 by default;
//! the rest is lost and logged), then what was published while disconnected. Publishes sent
//! but not acknowledged on the lost connection are lost (at-least-once holds per connection,
//! PROTOCOL.md §2.5). `reconnects` counts the CONNACKs after the first.
//!
//! **Closing.** [`close`](Transport::close) sends what was queued, then DISCONNECT. Dropping
//! the last handle of the bus closes it the same way; its subscriptions then end.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use rumqttc::{
    AsyncClient, ConnectionError, EventLoop, NetworkOptions, Outgoing, Packet, Request, Subscribe, SubscribeFilter,
    SubscribeReasonCode,
};
/// rumqttc's client options and quality of service, as [`MqttBusOptions`] takes them.
pub use rumqttc::{MqttOptions, QoS};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::envelope::{DEFAULT_MAX_ENVELOPE_SIZE, Event, check_max_envelope_size};
use crate::error::Error;
use crate::receive::{Counter, CounterSnapshot, Counters, Decoder, DuplicateWindow};
use crate::routing::Routes;
use crate::topic::{MAX_TOPIC_LEN, Pattern, Topic};
use crate::transport::{Bus, ConnectionState, Delivery, SubscribeOptions, Subscription, Transport};

/// Default MQTT port.
pub const DEFAULT_PORT: u16 = 1883;
/// Default [`MqttBusOptions::request_capacity`].
pub const DEFAULT_REQUEST_CAPACITY: usize = 1024;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long `close` waits for the queued publishes and the DISCONNECT to leave.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Event ids remembered to hand over once the copies a broker sends for overlapping filters.
const OVERLAP_WINDOW: usize = 4096;
/// PUBLISH overhead beyond the topic and payload: fixed header, topic length, packet id.
const PUBLISH_OVERHEAD: usize = 5 + 2 + 2;
/// Extra room for incoming packets, so a foreign message somewhat above the limit is counted
/// as `oversized` instead of breaking the connection.
const INCOMING_SLACK: usize = 64 << 10;

/// Settings of an [`MqttBus`]; also the builder that connects one.
///
/// ```no_run
/// # async fn demo() -> Result<(), busline::Error> {
/// use busline::mqtt::{MqttBusOptions, QoS};
/// let bus = MqttBusOptions::new().qos(QoS::AtMostOnce).connect("mqtt://127.0.0.1:1883").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MqttBusOptions {
    max_envelope_size: usize,
    qos: QoS,
    subscription_qos: QoS,
    request_capacity: usize,
    connect_timeout: Duration,
}

impl Default for MqttBusOptions {
    fn default() -> Self {
        MqttBusOptions {
            max_envelope_size: DEFAULT_MAX_ENVELOPE_SIZE,
            qos: QoS::AtLeastOnce,
            subscription_qos: QoS::AtMostOnce,
            request_capacity: DEFAULT_REQUEST_CAPACITY,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl MqttBusOptions {
    /// The defaults: 1 MiB envelopes, publishes at QoS 1, subscriptions at QoS 0, 1,024 queued
    /// requests, 10 s to connect.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `max_envelope_size` (64 KiB - 64 MiB, checked when connecting).
    pub fn max_envelope_size(mut self, size: usize) -> Self {
        self.max_envelope_size = size;
        self
    }

    /// Sets the QoS of [`publish`](Transport::publish): QoS 1 (default, PROTOCOL.md §2.5) or 0;
    /// QoS 2 is refused when connecting, see the module documentation.
    pub fn qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// Sets the QoS subscriptions ask for: the highest QoS the broker delivers with (default
    /// QoS 0; see the module documentation).
    pub fn subscription_qos(mut self, qos: QoS) -> Self {
        self.subscription_qos = qos;
        self
    }

    /// Sets how many requests (publishes, subscriptions) wait for the connection before
    /// `publish` waits for room (at least 1).
    pub fn request_capacity(mut self, capacity: usize) -> Self {
        self.request_capacity = capacity.max(1);
        self
    }

    /// Sets how long the first connection may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects to `url`: `mqtt://host[:port]` (or `tcp://`), port 1883 by default.
    pub async fn connect(self, url: &str) -> Result<MqttBus, Error> {
        let (host, port) = parse_url(url)?;
        let id = format!("busline-{}", uuid::Uuid::new_v4().simple());
        self.connect_with(MqttOptions::new(id, host, port)).await
    }

    /// Connects with the caller's client options (client id, credentials, TLS, keep-alive...).
    ///
    /// The bus forces a clean session and raises the packet size limits to hold its largest
    /// envelope; everything else is kept.
    pub async fn connect_with(self, mut options: MqttOptions) -> Result<MqttBus, Error> {
        let max = check_max_envelope_size(self.max_envelope_size)?;
        check_publish_qos(self.qos)?;
        let (host, port) = options.broker_address();
        let url = format!("mqtt://{host}:{port}");
        options.set_clean_session(true);
        let outgoing = max + MAX_TOPIC_LEN + PUBLISH_OVERHEAD;
        let incoming = options.max_packet_size().max(max + INCOMING_SLACK);
        options.set_max_packet_size(incoming, outgoing.max(options.max_packet_size()));

        let (client, mut eventloop) = AsyncClient::new(options, self.request_capacity);
        let mut network = NetworkOptions::new();
        // Small control packets must not wait for Nagle's algorithm.
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(self.connect_timeout.as_secs().max(1));
        eventloop.set_network_options(network);
        let first = async {
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        };
        match tokio::time::timeout(self.connect_timeout, first).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Connect { url, source: Box::new(e) }),
            Err(_) => return Err(Error::Connect { url, source: "timed out waiting for CONNACK".into() }),
        }

        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            client,
            url,
            counters: Arc::default(),
            max_envelope_size: max,
            qos: self.qos,
            subscribe_qos: self.subscription_qos,
            closed: AtomicBool::new(false),
            state: AtomicU8::new(STATE_CONNECTED),
            table: Mutex::new(Table::default()),
            control: control_tx,
            issued: AtomicU64::new(0),
            settled: watch::channel(0).0,
            shutdown: Notify::new(),
        });
        tokio::spawn(control(shared.clone(), control_rx));
        let driver = tokio::spawn(Driver::new(shared.clone()).run(eventloop));
        Ok(MqttBus { inner: Arc::new(Handle { shared, driver: Mutex::new(Some(driver)) }) })
    }
}

fn check_publish_qos(qos: QoS) -> Result<(), Error> {
    if qos == QoS::ExactlyOnce {
        return Err(Error::Config(
            "MqttBus does not publish at QoS 2: brokers such as Mosquitto drop QoS 2 messages past their in-flight limit; use QoS 1 (duplicates are dropped by id)".to_owned(),
        ));
    }
    Ok(())
}

fn parse_url(url: &str) -> Result<(String, u16), Error> {
    let bad = |why: &str| Error::Config(format!("invalid MQTT URL {url:?}: {why}; use mqtt://host:port"));
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| bad("the scheme must be mqtt:// or tcp://"))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return Err(bad("the host is missing or holds a path, user or query"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse().map_err(|_| bad("the port is not a number up to 65535"))?,
    };
    Ok((host.to_owned(), port))
}

/// The MQTT filter of a pattern.
fn to_filter(pattern: &Pattern) -> String {
    pattern
        .tokens()
        .map(|t| {
            if t == "*" {
                "+"
            } else if t == ">" {
                "#"
            } else {
                t
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// MQTT's own matching, to know when a broker may send one copy per filter.
fn mqtt_matches(filter: &str, topic: &str) -> bool {
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match f {
            "#" => return true,
            "+" => {
                if t.next().is_none() {
                    return false;
                }
            }
            f => {
                if t.next() != Some(f) {
                    return false;
                }
            }
        }
    }
    t.next().is_none()
}

const STATE_CONNECTED: u8 = 0;
const STATE_DISCONNECTED: u8 = 1;
const STATE_CLOSED: u8 = 2;

/// The MQTT transport. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct MqttBus {
    inner: Arc<Handle>,
}

/// Closes the bus when the last [`MqttBus`] clone goes.
struct Handle {
    shared: Arc<Shared>,
    driver: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    client: AsyncClient,
    url: String,
    counters: Arc<Counters>,
    max_envelope_size: usize,
    qos: QoS,
    subscribe_qos: QoS,
    closed: AtomicBool,
    state: AtomicU8,
    table: Mutex<Table>,
    control: mpsc::UnboundedSender<Control>,
    /// Publishes handed to the client.
    issued: AtomicU64,
    /// Publishes acknowledged by the broker (QoS 1: PUBACK), written (QoS 0),
    /// or lost with a connection.
    settled: watch::Sender<u64>,
    /// Wakes the driver out of its reconnection backoff when the bus closes.
    shutdown: Notify,
}

#[derive(Default)]
struct Table {
    closed: bool,
    next_id: u64,
    next_generation: u64,
    routes: Routes<mpsc::Sender<Delivery>>,
    filters: HashMap<String, Filter>,
    /// Filters of each SUBSCRIBE handed to the client, in order, until it goes out.
    unsent: VecDeque<Vec<(String, u64)>>,
    /// Filters of each SUBSCRIBE sent, by packet id, until its SUBACK.
    sent: HashMap<u16, VecDeque<Vec<(String, u64)>>>,
}

struct Filter {
    /// Local subscriptions using it.
    refs: usize,
    /// Tells apart successive broker subscriptions of one filter.
    generation: u64,
    /// Whether the broker acknowledged it on the current connection.
    acked: bool,
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
}

enum Control {
    Subscribe(String, u64),
    Unsubscribe(String),
    Stop,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed.load(Relaxed) { Err(Error::Closed) } else { Ok(()) }
    }

    /// Refuses new work and ends every subscription; returns whether this call closed it.
    fn begin_close(&self) -> bool {
        if self.closed.swap(true, Relaxed) {
            return false;
        }
        self.state.store(STATE_CLOSED, Relaxed);
        {
            let mut table = self.table();
            table.closed = true;
            // Dropping the senders ends the streams; dropping the waiters fails pending subscribes.
            table.routes = Routes::default();
            table.filters.clear();
        }
        let _ = self.control.send(Control::Stop);
        // Releases any flush waiting for acknowledgements that will not come.
        self.settled.send_replace(u64::MAX);
        self.shutdown.notify_one();
        true
    }

    fn settle(&self, n: u64) {
        if n > 0 {
            self.settled.send_modify(|v| *v = v.saturating_add(n));
        }
    }

    async fn publish_qos(&self, topic: &Topic, event: &Event, qos: QoS) -> Result<(), Error> {
        self.check_open()?;
        check_publish_qos(qos)?;
        let bytes = event.encode_within(self.max_envelope_size)?;
        let topic = topic.as_str().replace('.', "/");
        self.client.publish_bytes(topic, qos, false, bytes).await.map_err(|_| Error::Closed)?;
        self.issued.fetch_add(1, Relaxed);
        self.counters.incr(Counter::published);
        Ok(())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.shared.begin_close() && self.shared.client.try_disconnect().is_err() {
            let client = self.shared.client.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { client.disconnect().await });
            }
        }
    }
}

impl fmt::Debug for MqttBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttBus")
            .field("broker", &self.inner.shared.url)
            .field("max_envelope_size", &self.inner.shared.max_envelope_size)
            .field("subscriptions", &self.subscription_count())
            .field("state", &self.connection_state())
            .finish()
    }
}

impl From<MqttBus> for Bus {
    fn from(bus: MqttBus) -> Bus {
        Bus::new(bus)
    }
}

impl MqttBus {
    /// Connects to `url` (`mqtt://host:port`) with default settings.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        MqttBusOptions::new().connect(url).await
    }

    /// Connects with the caller's client options; see [`MqttBusOptions::connect_with`].
    pub async fn connect_with(options: MqttOptions, bus_options: MqttBusOptions) -> Result<Self, Error> {
        bus_options.connect_with(options).await
    }

    /// Settings for a bus other than the defaults.
    pub fn options() -> MqttBusOptions {
        MqttBusOptions::new()
    }

    /// Publishes at a given QoS instead of the bus's default (for example control at QoS 1
    /// and data at QoS 0); QoS 2 is [`Error::Config`].
    pub async fn publish_with_qos(&self, topic: &Topic, event: &Event, qos: QoS) -> Result<(), Error> {
        self.inner.shared.publish_qos(topic, event, qos).await
    }
}

#[async_trait]
impl Transport for MqttBus {
    async fn publish(&self, topic: &Topic, event: &Event) -> Result<(), Error> {
        let shared = &self.inner.shared;
        shared.publish_qos(topic, event, shared.qos).await
    }

    async fn publish_owned(&self, topic: &Topic, event: Event) -> Result<(), Error> {
        self.publish_with_qos(topic, &event, self.inner.shared.qos).await
    }

    async fn subscribe_with(&self, pattern: &Pattern, options: SubscribeOptions) -> Result<Subscription, Error> {
        let shared = &self.inner.shared;
        shared.check_open()?;
        let filter = to_filter(pattern);
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let (wait_tx, wait_rx) = oneshot::channel();
        let (guard, wait) = {
            let mut table = shared.table();
            if table.closed {
                return Err(Error::Closed);
            }
            let id = table.next_id;
            table.next_id += 1;
            table.routes.insert(pattern, id, tx);
            let next_generation = table.next_generation;
            let entry = table.filters.entry(filter.clone()).or_insert_with(|| Filter {
                refs: 0,
                generation: next_generation,
                acked: false,
                waiters: Vec::new(),
            });
            entry.refs += 1;
            let generation = entry.generation;
            let wait = if entry.acked {
                None
            } else {
                entry.waiters.push(wait_tx);
                Some(wait_rx)
            };
            if entry.refs == 1 {
                table.next_generation += 1;
                // Sent under the lock so subscribes and unsubscribes of one filter stay in order.
                let _ = shared.control.send(Control::Subscribe(filter.clone(), generation));
            }
            let guard = Guard { id, pattern: pattern.clone(), filter, generation, shared: shared.clone() };
            (guard, wait)
        };
        if let Some(wait) = wait {
            match wait.await {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => return Err(Error::SubscribeRefused { pattern: pattern.to_string(), reason }),
                Err(_) => return Err(Error::Closed),
            }
        }
        let stream = MqttStream { rx, _guard: guard };
        Ok(Subscription::new(pattern.clone(), stream, options, shared.counters.clone()))
    }

    /// Waits until every publish made before the call is acknowledged by the broker (QoS 1:
    /// PUBACK), written to the connection (QoS 0), or lost with a dropped
    /// connection. While the broker is unreachable this waits for the reconnection.
    async fn flush(&self) -> Result<(), Error> {
        let shared = &self.inner.shared;
        shared.check_open()?;
        let target = shared.issued.load(Relaxed);
        let mut settled = shared.settled.subscribe();
        let _ = settled.wait_for(|v| *v >= target).await;
        shared.check_open()
    }

    async fn close(&self) -> Result<(), Error> {
        let shared = &self.inner.shared;
        if !shared.begin_close() {
            return Ok(());
        }
        // Queued behind every publish already handed to the client, so those go out first.
        let _ = shared.client.disconnect().await;
        let driver = self.inner.driver.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut driver) = driver
            && tokio::time::timeout(CLOSE_TIMEOUT, &mut driver).await.is_err()
        {
            driver.abort();
            return Err(Error::transport("timed out sending DISCONNECT while closing"));
        }
        Ok(())
    }

    fn counters(&self) -> CounterSnapshot {
        self.inner.shared.counters.snapshot()
    }

    fn max_envelope_size(&self) -> usize {
        self.inner.shared.max_envelope_size
    }

    fn subscription_count(&self) -> usize {
        self.inner.shared.table().routes.len()
    }

    fn connection_state(&self) -> ConnectionState {
        match self.inner.shared.state.load(Relaxed) {
            STATE_CONNECTED => ConnectionState::Connected,
            STATE_DISCONNECTED => ConnectionState::Disconnected,
            _ => ConnectionState::Closed,
        }
    }
}

struct MqttStream {
    rx: mpsc::Receiver<Delivery>,
    _guard: Guard,
}

impl Stream for MqttStream {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.rx.poll_recv(cx)
    }
}

/// Removes a local subscription; the last one of a filter unsubscribes it at the broker.
struct Guard {
    id: u64,
    pattern: Pattern,
    filter: String,
    generation: u64,
    shared: Arc<Shared>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut table = self.shared.table();
        table.routes.remove(&self.pattern, self.id);
        let Some(entry) = table.filters.get_mut(&self.filter) else { return };
        if entry.generation != self.generation {
            return;
        }
        entry.refs -= 1;
        if entry.refs == 0 {
            table.filters.remove(&self.filter);
            let _ = self.shared.control.send(Control::Unsubscribe(self.filter.clone()));
        }
    }
}

/// Hands SUBSCRIBE and UNSUBSCRIBE requests to the client one at a time, so the order of
/// SUBSCRIBE packets is the order of `Table::unsent`.
async fn control(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Control>) {
    while let Some(command) = rx.recv().await {
        let sent = match command {
            Control::Subscribe(filter, generation) => {
                {
                    let mut table = shared.table();
                    let live = table.filters.get(&filter).is_some_and(|f| f.generation == generation);
                    if !live {
                        continue;
                    }
                    table.unsent.push_back(vec![(filter.clone(), generation)]);
                }
                shared.client.subscribe(filter, shared.subscribe_qos).await
            }
            Control::Unsubscribe(filter) => shared.client.unsubscribe(filter).await,
            Control::Stop => break,
        };
        if sent.is_err() {
            // The event loop is gone: the bus is closed.
            break;
        }
    }
}

struct Driver {
    shared: Arc<Shared>,
    overlap: DuplicateWindow,
    decoder: Decoder,
    backoff: Duration,
    /// Publishes that never left before a connection dropped, sent again after the next CONNACK.
    unsent_publishes: Vec<Request>,
    last_error: Option<String>,
}

impl Driver {
    fn new(shared: Arc<Shared>) -> Self {
        Driver {
            shared,
            overlap: DuplicateWindow::new(OVERLAP_WINDOW),
            decoder: Decoder::default(),
            backoff: FIRST_BACKOFF,
            unsent_publishes: Vec::new(),
            last_error: None,
        }
    }

    async fn run(mut self, mut eventloop: EventLoop) {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(packet)) => self.incoming(packet, &mut eventloop),
                Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect)) if self.shared.closed.load(Relaxed) => break,
                Ok(rumqttc::Event::Outgoing(outgoing)) => self.outgoing(outgoing),
                Err(e) => {
                    if self.shared.closed.load(Relaxed) {
                        break;
                    }
                    self.disconnected(&e, &mut eventloop);
                    tokio::select! {
                        _ = tokio::time::sleep(self.backoff) => {}
                        _ = self.shared.shutdown.notified() => break,
                    }
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn incoming(&mut self, packet: Packet, eventloop: &mut EventLoop) {
        match packet {
            Packet::Publish(publish) => self.deliver(&publish.topic, &publish.payload),
            Packet::SubAck(ack) => self.suback(ack.pkid, &ack.return_codes),
            Packet::PubAck(_) => self.shared.settle(1),
            Packet::ConnAck(_) => self.connected(eventloop),
            _ => {}
        }
    }

    fn outgoing(&mut self, outgoing: Outgoing) {
        match outgoing {
            Outgoing::Subscribe(pkid) => {
                let mut table = self.shared.table();
                if let Some(filters) = table.unsent.pop_front() {
                    table.sent.entry(pkid).or_default().push_back(filters);
                }
            }
            // QoS 0 publishes carry packet id 0 and are done once written.
            Outgoing::Publish(0) => self.shared.settle(1),
            _ => {}
        }
    }

    fn deliver(&mut self, mqtt_topic: &str, payload: &bytes::Bytes) {
        let counters = &self.shared.counters;
        if mqtt_topic.contains('.') {
            counters.drop_event(Counter::invalid_topic, &format_args!("MQTT topic {mqtt_topic:?} holds a '.'"));
            return;
        }
        let topic = mqtt_topic.replace('/', ".");
        let Some(delivery) = self.decoder.decode(&topic, payload, self.shared.max_envelope_size, counters) else {
            return;
        };
        let table = self.shared.table();
        let overlapping = table.filters.keys().filter(|f| mqtt_matches(f, mqtt_topic)).take(2).count() > 1;
        if overlapping && !self.overlap.insert(delivery.event.id) {
            return;
        }
        table.routes.for_each_match(&delivery.topic, |tx| match tx.try_send(delivery.clone()) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => counters
                .drop_event(Counter::dropped, &format_args!("a subscriber's queue is full on {}", delivery.topic)),
        });
    }

    fn suback(&mut self, pkid: u16, codes: &[SubscribeReasonCode]) {
        let mut table = self.shared.table();
        let Some(filters) = table.sent.get_mut(&pkid).and_then(VecDeque::pop_front) else {
            tracing::debug!(target: "orbitalis::busline", pkid, "SUBACK for no SUBSCRIBE of this bus");
            return;
        };
        if table.sent.get(&pkid).is_some_and(VecDeque::is_empty) {
            table.sent.remove(&pkid);
        }
        for (i, (filter, generation)) in filters.into_iter().enumerate() {
            let Some(entry) = table.filters.get_mut(&filter) else { continue };
            if entry.generation != generation {
                continue;
            }
            match codes.get(i) {
                Some(SubscribeReasonCode::Success(_)) => {
                    entry.acked = true;
                    for w in entry.waiters.drain(..) {
                        let _ = w.send(Ok(()));
                    }
                }
                code => {
                    let reason = match code {
                        Some(_) => "SUBACK failure code 0x80".to_owned(),
                        None => "SUBACK without a code for this filter".to_owned(),
                    };
                    tracing::warn!(target: "orbitalis::busline", filter, reason, "the broker refused a subscription");
                    // Forgotten so that a later subscribe to this filter asks the broker again.
                    if let Some(entry) = table.filters.remove(&filter) {
                        for w in entry.waiters {
                            let _ = w.send(Err(reason.clone()));
                        }
                    }
                }
            }
        }
    }

    fn connected(&mut self, eventloop: &mut EventLoop) {
        let shared = &self.shared;
        shared.counters.incr(Counter::reconnects);
        self.backoff = FIRST_BACKOFF;
        if let Some(error) = self.last_error.take() {
            tracing::info!(target: "orbitalis::busline", broker = shared.url, after = error, "reconnected");
        }
        let mut table = shared.table();
        let filters: Vec<(String, u64)> = table.filters.iter().map(|(f, e)| (f.clone(), e.generation)).collect();
        if !filters.is_empty() {
            let request =
                Subscribe::new_many(filters.iter().map(|(f, _)| SubscribeFilter::new(f.clone(), shared.subscribe_qos)));
            // `pending` goes out before the client's queue, so the SUBSCRIBE comes first.
            eventloop.pending.push_front(Request::Subscribe(request));
            table.unsent.push_front(filters);
        }
        drop(table);
        self.resend_unsent(eventloop);
        self.shared.state.store(STATE_CONNECTED, Relaxed);
    }

    /// Queues the publishes that never left, ahead of the client's queue so order holds.
    ///
    /// rumqttc sends `pending` without checking its in-flight window, and past the window
    /// packet ids collide and a publish can be lost inside the client; so at most a window's
    /// worth of QoS 1 publishes goes back, and the rest counts as lost (at-most-once across a
    /// reconnection, PROTOCOL.md §2.5).
    fn resend_unsent(&mut self, eventloop: &mut EventLoop) {
        let mut room = usize::from(eventloop.mqtt_options.inflight()).saturating_sub(1);
        let mut lost = 0u64;
        for request in self.unsent_publishes.drain(..) {
            match &request {
                Request::Publish(p) if p.qos != QoS::AtMostOnce => {
                    if room == 0 {
                        lost += 1;
                        continue;
                    }
                    room -= 1;
                }
                _ => {}
            }
            eventloop.pending.push_back(request);
        }
        if lost > 0 {
            self.shared.settle(lost);
            tracing::warn!(
                target: "orbitalis::busline",
                broker = self.shared.url,
                lost,
                "publishes queued when the connection dropped were not sent"
            );
        }
    }

    fn disconnected(&mut self, error: &ConnectionError, eventloop: &mut EventLoop) {
        let shared = &self.shared;
        shared.state.store(STATE_DISCONNECTED, Relaxed);
        if self.last_error.is_none() {
            tracing::warn!(target: "orbitalis::busline", broker = shared.url, %error, "MQTT connection lost; reconnecting");
        }
        self.last_error = Some(error.to_string());
        // The event loop moved what it had not finished into `pending`, which a clean-session
        // CONNACK discards: sort it out here instead.
        let mut subscribes = 0;
        let mut lost = 0;
        for request in eventloop.pending.drain(..) {
            match request {
                Request::Subscribe(_) => subscribes += 1,
                // A packet id means it was sent and not acknowledged on the lost connection.
                Request::Publish(p) if p.pkid != 0 => lost += 1,
                Request::Publish(p) => self.unsent_publishes.push(Request::Publish(p)),
                _ => {}
            }
        }
        shared.settle(lost);
        let mut table = shared.table();
        for _ in 0..subscribes {
            table.unsent.pop_front();
        }
        table.sent.clear();
        for entry in table.filters.values_mut() {
            entry.acked = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(parse_url("mqtt://127.0.0.1:1883").unwrap(), ("127.0.0.1".to_owned(), 1883));
        assert_eq!(parse_url("tcp://broker").unwrap(), ("broker".to_owned(), 1883));
        assert_eq!(parse_url("mqtt://[::1]:1884/").unwrap(), ("::1".to_owned(), 1884));
        for bad in ["http://x:1", "mqtt://", "mqtt://x:port", "mqtt://x:70000", "mqtt://u@x:1", "x:1"] {
            assert!(matches!(parse_url(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn patterns_map_to_filters() {
        let f = |p| to_filter(&Pattern::new(p).unwrap());
        assert_eq!(f("a.b.c"), "a/b/c");
        assert_eq!(f("a.*.c"), "a/+/c");
        assert_eq!(f("a.>"), "a/#");
        assert_eq!(f(">"), "#");
    }

    #[test]
    fn mqtt_matching_includes_the_parent_level() {
        assert!(mqtt_matches("a/#", "a"), "MQTT's '#' matches the parent level");
        assert!(!Pattern::new("a.>").unwrap().matches("a"), "NATS' '>' does not");
        assert!(mqtt_matches("a/+/c", "a/b/c"));
        assert!(!mqtt_matches("a/+", "a/b/c"));
        assert!(!mqtt_matches("a/b", "a/b/c"));
        assert!(mqtt_matches("#", "x/y"));
    }
}
