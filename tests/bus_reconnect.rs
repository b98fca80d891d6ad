//! Reconnection (PROTOCOL.md §2.6): a bus survives its broker restarting. Each test runs its
//! own broker on a free port (never the shared ones), kills it, starts it again on the same
//! port, and checks that subscriptions made before the restart, and one made during it,
//! receive what is published afterwards.
//!
//! Needs `nats-server` and `mosquitto` on the PATH or in /usr/sbin (`scripts/test.sh`
//! installs them); a missing binary fails the test.

#![cfg(any(feature = "nats", feature = "mqtt"))]

mod common;

use busline::{Bus, ConnectionState, SubscribeOptions};

use common::broker::Broker;
use common::{Harness, Kind, event, recv_on, wait_until, within};

/// The scenario shared by both transports; `connect` opens a bus on the test's broker.
async fn survives_restart<F, Fut>(mut broker: Broker, kind: Kind, connect: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Bus>,
{
    let h = Harness::new(kind);
    let bus = connect().await;
    assert_eq!(bus.connection_state(), ConnectionState::Connected);
    let options = SubscribeOptions::default();
    let mut old = within("subscribing", bus.subscribe_with(&h.pattern("r.*"), options)).await.expect("subscribe");
    let before = event();
    within("publishing", bus.publish(&h.topic("r.a"), &before)).await.expect("publish");
    assert_eq!(recv_on(&bus, &mut old).await.event.id, before.id);

    broker.kill();
    wait_until("the bus notices the broker is gone", || bus.connection_state() == ConnectionState::Disconnected).await;
    // Queued while disconnected: it must go out after the subscriptions are re-established.
    let during = event();
    within("publishing while disconnected", bus.publish(&h.topic("r.b"), &during)).await.expect("publish");
    // A subscription asked for while disconnected completes once it is effective again.
    let late = tokio::spawn({
        let bus = bus.clone();
        let pattern = h.pattern("late.>");
        async move { bus.subscribe(&pattern).await }
    });

    broker.restart();
    wait_until("the bus reconnects", || bus.connection_state() == ConnectionState::Connected).await;
    assert_eq!(recv_on(&bus, &mut old).await.event.id, during.id, "the publish made while disconnected");
    let after = event();
    within("publishing", bus.publish(&h.topic("r.c"), &after)).await.expect("publish");
    assert_eq!(recv_on(&bus, &mut old).await.event.id, after.id, "the old subscription works again");

    // Another connection made after the restart reaches the old subscription too, so it is
    // registered on the server, not only in the client.
    let other = connect().await;
    let from_other = event();
    within("publishing", other.publish(&h.topic("r.d"), &from_other)).await.expect("publish");
    assert_eq!(recv_on(&bus, &mut old).await.event.id, from_other.id);

    let mut late = within("the subscription made while disconnected", late)
        .await
        .expect("the subscribing task")
        .expect("subscribe while disconnected");
    let for_late = event();
    within("publishing", other.publish(&h.topic("late.x.y"), &for_late)).await.expect("publish");
    assert_eq!(recv_on(&bus, &mut late).await.event.id, for_late.id);

    assert!(bus.counters().reconnects >= 1, "reconnects counted: {:?}", bus.counters());
    assert_eq!(bus.counters().dropped, 0);
    within("closing", bus.close()).await.expect("close");
    within("closing", other.close()).await.expect("close");
}

#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_subscriptions_survive_a_server_restart() {
    let broker = common::broker::nats_server(None);
    let url = format!("nats://127.0.0.1:{}", broker.port);
    survives_restart(broker, Kind::Nats, || async {
        busline::NatsBus::connect(&url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}")).into()
    })
    .await;
}

#[cfg(feature = "mqtt")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_subscriptions_survive_a_broker_restart() {
    let broker = common::broker::mosquitto("");
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    survives_restart(broker, Kind::Mqtt, || async {
        busline::MqttBus::connect(&url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}")).into()
    })
    .await;
}
