//! Helpers for the orbiter integration tests: one test body runs on the in-memory bus with
//! paused time and on the shared NATS server with real time.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use orbitalis::prelude::*;
use orbitalis::{Bus, ConnectionInfo, Identifier};
use tokio::sync::broadcast;

/// Upper bound of every wait; generous, since CI machines stall. On the local bus time is
/// paused, so waiting costs nothing.
pub const WAIT: Duration = Duration::from_secs(30);

/// Fast timings so the NATS variants finish in seconds: every rule still runs, only sooner.
pub fn fast<B>(b: B) -> B
where
    B: Fast,
{
    b.fast()
}

/// Builders whose timings the tests shorten.
pub trait Fast {
    /// Shorter timings.
    fn fast(self) -> Self;
}

impl Fast for CoreBuilder {
    fn fast(self) -> Self {
        self.tick_interval(Duration::from_millis(50))
            .discover_interval(Duration::from_millis(200))
            .pending_timeout(Duration::from_secs(2))
            .graceful_close_timeout(Duration::from_secs(2))
    }
}

impl Fast for PluginBuilder {
    fn fast(self) -> Self {
        self.tick_interval(Duration::from_millis(50))
            .pending_timeout(Duration::from_secs(2))
            .graceful_close_timeout(Duration::from_secs(2))
    }
}

/// Awaits `f` for at most [`WAIT`], failing the test with `what`.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Polls `cond` until it holds, for at most [`WAIT`]: for states no event announces.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Waits for an event satisfying `pred`.
pub async fn wait_event(
    rx: &mut broadcast::Receiver<OrbiterEvent>,
    what: &str,
    mut pred: impl FnMut(&OrbiterEvent) -> bool,
) -> OrbiterEvent {
    within(what, async {
        loop {
            match rx.recv().await {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => panic!("missed {n} events waiting for {what}"),
                Err(broadcast::error::RecvError::Closed) => panic!("events ended waiting for {what}"),
            }
        }
    })
    .await
}

/// Waits until `state` satisfies `pred`.
pub async fn wait_state(core: &CoreHandle, what: &str, pred: impl FnMut(&State) -> bool) -> State {
    within(what, core.wait_for(pred)).await
}

/// Waits until `core` has published `n` more Discovers: evidence that time passed with it
/// looking for plugins.
pub async fn discovers(bus: &Bus, ns: &str, core: &str, n: usize) {
    let pattern = orbitalis::busline::Pattern::new(format!("{ns}.discover._all.{core}")).unwrap();
    let mut sub = bus.subscribe(&pattern).await.unwrap();
    within("discovers", async {
        for _ in 0..n {
            sub.recv().await.expect("the bus is open");
        }
    })
    .await;
}

/// The in-memory bus.
pub fn local() -> Bus {
    LocalBus::new().into()
}

/// A connection to the shared NATS server (the test fails, naming the URL, without it).
pub async fn nats() -> Bus {
    let url = std::env::var("ORBITALIS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    orbitalis::NatsBus::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot use the NATS server at {url} (set ORBITALIS_NATS_URL): {e}"))
        .into()
}

/// A namespace no other test uses.
pub fn ns() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// `lowercase`: string in, string out.
pub fn lowercase() -> Operation {
    Operation::new("lowercase", |s: StringMessage, _ctx| async move { Ok(StringMessage(s.0.to_lowercase())) })
}

/// A plugin offering `ops` on `bus`.
pub async fn plugin(bus: &Bus, ns: &str, id: &str, ops: Vec<Operation>) -> PluginHandle {
    let mut b = fast(PluginBuilder::new(id).bus(bus.clone()).namespace(ns));
    for op in ops {
        b = b.operation(op);
    }
    b.start(()).await.expect("the plugin starts")
}

/// A core requiring `lowercase` as `req`.
pub async fn core(bus: &Bus, ns: &str, id: &str, req: Requirement) -> CoreHandle {
    fast(CoreBuilder::new(id).bus(bus.clone()).namespace(ns))
        .require("lowercase", req)
        .start(())
        .await
        .expect("the core starts")
}

/// The string requirement of `lowercase`.
pub fn lower_req() -> Requirement {
    Requirement::new().input::<StringMessage>().output::<StringMessage>()
}

/// `(operation, remote)` of each connection, sorted.
pub fn pairs(conns: &[ConnectionInfo]) -> Vec<(String, String)> {
    let mut v: Vec<_> = conns.iter().map(|c| (c.operation.to_string(), c.remote.to_string())).collect();
    v.sort();
    v
}

/// An identifier.
pub fn id(s: &str) -> Identifier {
    Identifier::new(s).unwrap()
}

/// Runs a test body `async fn name(bus: Bus, ns: String)` on the local bus (paused time)
/// and on NATS.
#[macro_export]
macro_rules! on_buses {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(start_paused = true)]
                async fn local() {
                    super::$name(super::support::local(), super::support::ns()).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn nats() {
                    super::$name(super::support::nats().await, super::support::ns()).await
                }
            }
        )*
    };
}
pub mod faulty;

/// A connection to the shared MQTT broker (the test fails, naming the URL, without it).
#[cfg(feature = "mqtt")]
pub async fn mqtt() -> Bus {
    let url = std::env::var("ORBITALIS_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    orbitalis::busline::MqttBus::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot use the MQTT broker at {url} (set ORBITALIS_MQTT_URL): {e}"))
        .into()
}
