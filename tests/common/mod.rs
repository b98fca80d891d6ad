//! Helpers shared by the integration tests: broker URLs, fresh namespaces, bounded waits.
//!
//! Every test runs in its own namespace (`t` + a random UUID), so tests running in parallel
//! on the shared brokers never see each other's events.

#![allow(dead_code)]

pub mod broker;

use std::future::Future;
use std::time::{Duration, Instant};

use busline::{Bus, Delivery, Event, Identifier, LocalBus, Pattern, Subscription, Topic};

/// Default URL of the shared NATS server.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// Default URL of the shared MQTT broker.
pub const DEFAULT_MQTT_URL: &str = "mqtt://127.0.0.1:1883";
/// Upper bound of any wait for an event; generous because CI machines stall.
pub const WAIT: Duration = Duration::from_secs(20);

/// `ORBITALIS_NATS_URL`, or the local default.
pub fn nats_url() -> String {
    std::env::var("ORBITALIS_NATS_URL").unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned())
}

/// `ORBITALIS_MQTT_URL`, or the local default.
pub fn mqtt_url() -> String {
    std::env::var("ORBITALIS_MQTT_URL").unwrap_or_else(|_| DEFAULT_MQTT_URL.to_owned())
}

/// A namespace token no other test uses.
pub fn namespace() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// A connection to the shared NATS server; fails the test, naming the URL, when unreachable.
#[cfg(feature = "nats")]
pub async fn nats_bus() -> busline::NatsBus {
    let url = nats_url();
    busline::NatsBus::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot use the NATS server at {url} (set ORBITALIS_NATS_URL): {e}"))
}

/// A connection to the shared MQTT broker; fails the test, naming the URL, when unreachable.
#[cfg(feature = "mqtt")]
pub async fn mqtt_bus() -> busline::MqttBus {
    let url = mqtt_url();
    busline::MqttBus::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot use the MQTT broker at {url} (set ORBITALIS_MQTT_URL): {e}"))
}

/// Which transport a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The in-memory bus.
    Local,
    /// The shared NATS server.
    Nats,
    /// The shared MQTT broker.
    Mqtt,
}

/// One test's transport and namespace.
pub struct Harness {
    /// The transport under test.
    pub kind: Kind,
    /// This test's namespace token.
    pub ns: String,
    local: LocalBus,
}

impl Harness {
    /// A harness with a fresh namespace.
    pub fn new(kind: Kind) -> Self {
        Harness { kind, ns: namespace(), local: LocalBus::new() }
    }

    /// A bus handle: a new connection on a network transport, the one shared bus in memory.
    pub async fn bus(&self) -> Bus {
        match self.kind {
            Kind::Local => self.local.clone().into(),
            #[cfg(feature = "nats")]
            Kind::Nats => nats_bus().await.into(),
            #[cfg(feature = "mqtt")]
            Kind::Mqtt => mqtt_bus().await.into(),
            #[allow(unreachable_patterns)]
            other => panic!("{other:?} is not built in; enable its feature"),
        }
    }

    /// `{ns}.{rest}` as a topic.
    pub fn topic(&self, rest: &str) -> Topic {
        Topic::new(format!("{}.{rest}", self.ns)).expect("a valid test topic")
    }

    /// `{ns}.{rest}` as a pattern.
    pub fn pattern(&self, rest: &str) -> Pattern {
        Pattern::new(format!("{}.{rest}", self.ns)).expect("a valid test pattern")
    }
}

/// An event from publisher `p` with no payload.
pub fn event() -> Event {
    Event::new(Identifier::new("p").expect("a valid identifier"))
}

/// The next delivery, failing the test after `WAIT` or when the stream ends.
pub async fn recv(sub: &mut Subscription) -> Delivery {
    match tokio::time::timeout(WAIT, sub.recv()).await {
        Ok(Some(d)) => d,
        Ok(None) => panic!("subscription {} ended", sub.pattern()),
        Err(_) => panic!("no event on {} within {WAIT:?}", sub.pattern()),
    }
}

/// Like [`recv`], naming the subscriber bus's counters and state when nothing comes.
pub async fn recv_on(bus: &Bus, sub: &mut Subscription) -> Delivery {
    match tokio::time::timeout(WAIT, sub.recv()).await {
        Ok(Some(d)) => d,
        Ok(None) => panic!("subscription {} ended", sub.pattern()),
        Err(_) => panic!(
            "no event on {} within {WAIT:?}; bus {:?}, counters {:?}",
            sub.pattern(),
            bus.connection_state(),
            bus.counters()
        ),
    }
}

/// Runs `f` under the `WAIT` bound, failing the test with `what` when it takes longer.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.unwrap_or_else(|_| panic!("{what}: not done within {WAIT:?}"))
}

/// Polls `cond` until it holds, failing the test with `what` after `WAIT`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "{what}: still false after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
