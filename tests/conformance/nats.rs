//! What only `NatsBus` has: foreign bytes from raw clients, the server's `max_payload`,
//! slow-consumer counting, buses over a caller's client.

use busline::envelope::{DEFAULT_MAX_ENVELOPE_SIZE, MIN_MAX_ENVELOPE_SIZE};
use busline::nats::NatsBusOptions;
use busline::{Bus, Error, NatsBus, SubscribeOptions};
use bytes::Bytes;

use crate::common::broker::{free_port, nats_server};
use crate::common::{Harness, Kind, event, nats_bus, nats_url, recv_on, wait_until, within};

async fn raw_client() -> async_nats::Client {
    let url = nats_url();
    async_nats::connect(&url).await.unwrap_or_else(|e| panic!("cannot reach the NATS server at {url}: {e}"))
}

/// Bytes that are not an event are counted by check and skipped; the subscription goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_bytes_are_counted_and_skipped() {
    let h = Harness::new(Kind::Nats);
    let bus: Bus = nats_bus().await.into();
    let mut sub = bus.subscribe(&h.pattern("f.*")).await.expect("subscribe");
    let raw = raw_client().await;
    let good = event().encode();
    let mut wrong_version = good.to_vec();
    wrong_version[2] = 2;
    for junk in [Bytes::from_static(b"{\"json\":1}"), Bytes::from(wrong_version), good.slice(..good.len() - 1)] {
        raw.publish(h.topic("f.a").to_string(), junk).await.expect("raw publish");
    }
    // NATS subjects allow characters topics do not: such deliveries are dropped and counted.
    for subject in [format!("{}.f.$x", h.ns), format!("{}.f.é", h.ns)] {
        raw.publish(subject, good.clone()).await.expect("raw publish");
    }
    raw.publish(h.topic("f.b").to_string(), good.clone()).await.expect("raw publish");
    raw.flush().await.expect("flush");
    let d = recv_on(&bus, &mut sub).await;
    assert_eq!(d.event.encode(), good, "the valid event arrives after the junk");
    let c = bus.counters();
    assert_eq!((c.undecodable, c.bad_magic, c.unsupported_version, c.malformed), (3, 1, 1, 1), "{c:?}");
    assert_eq!(c.invalid_topic, 2, "{c:?}");
    assert_eq!(c.delivered, 1);
}

/// A server accepting less than `max_envelope_size` per message is refused at connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_smaller_max_payload_is_refused() {
    let server = nats_server(Some("max_payload: 65536\n"));
    let url = format!("nats://127.0.0.1:{}", server.port);
    match NatsBus::connect(&url).await {
        Err(Error::ServerPayloadLimit { server, configured }) => {
            assert_eq!((server, configured), (65536, DEFAULT_MAX_ENVELOPE_SIZE))
        }
        other => panic!("expected ServerPayloadLimit, got {other:?}"),
    }
    let bus = NatsBusOptions::new()
        .max_envelope_size(MIN_MAX_ENVELOPE_SIZE)
        .connect(&url)
        .await
        .expect("a bus within the server's limit");
    assert_eq!(busline::Transport::max_envelope_size(&bus), MIN_MAX_ENVELOPE_SIZE);
    assert!(matches!(NatsBusOptions::new().max_envelope_size(1000).connect(&url).await, Err(Error::Config(_))));
}

/// An unreachable server is an error naming the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_an_error_naming_the_url() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    match NatsBus::connect(&url).await {
        Err(e @ Error::Connect { .. }) => assert!(e.to_string().contains(&url), "{e}"),
        other => panic!("expected Error::Connect, got {other:?}"),
    }
}

/// When the client's own buffer overflows, the losses arrive as slow-consumer events and are
/// counted in `slow_consumer` and `dropped`: never silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_buffer_overflows_are_counted() {
    const N: u32 = 20_000;
    let h = Harness::new(Kind::Nats);
    let url = nats_url();
    let subscriber: Bus = NatsBusOptions::new()
        .client_subscription_capacity(1)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the NATS server at {url}: {e}"))
        .into();
    let mut sub =
        subscriber.subscribe_with(&h.pattern("sc"), SubscribeOptions::default().capacity(N as usize)).await.unwrap();
    let publisher = raw_client().await;
    let bytes = event().encode();
    for _ in 0..N {
        publisher.publish(h.topic("sc").to_string(), bytes.clone()).await.expect("publish");
    }
    publisher.flush().await.expect("flush");
    wait_until("slow-consumer events counted", || subscriber.counters().slow_consumer > 0).await;
    let mut received = 0u64;
    while let Ok(Some(_)) = tokio::time::timeout(std::time::Duration::from_millis(500), sub.recv()).await {
        received += 1;
    }
    // Read once the flood is over: the two counters move one after the other.
    let c = subscriber.counters();
    assert!(c.dropped >= c.slow_consumer, "{c:?}");
    assert!(received + c.dropped <= u64::from(N), "received {received}, counters {c:?}");
}

/// A bus over the caller's client: events forwarded by hand are counted, and `close` leaves
/// the client's connection open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_over_a_callers_client() {
    let h = Harness::new(Kind::Nats);
    let client = raw_client().await;
    let bus = NatsBus::from_client(client.clone()).await.expect("from_client");
    bus.record_event(&async_nats::Event::SlowConsumer(7));
    bus.record_event(&async_nats::Event::Connected);
    let bus: Bus = bus.into();
    let c = bus.counters();
    assert_eq!((c.slow_consumer, c.dropped), (1, 1));
    let mut sub = bus.subscribe(&h.pattern("own")).await.expect("subscribe");
    let e = event();
    bus.publish(&h.topic("own"), &e).await.expect("publish");
    assert_eq!(recv_on(&bus, &mut sub).await.event, e);
    within("closing", bus.close()).await.expect("close");
    assert!(sub.recv().await.is_none(), "the bus's subscriptions end");
    assert_eq!(client.connection_state(), async_nats::connection::State::Connected);
    client.publish(h.topic("own").to_string(), Bytes::new()).await.expect("the client still publishes");
    client.flush().await.expect("the client still flushes");
}

/// Subscriptions of a `NatsBus` outlive its handles (the connection stays while they live).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_outlive_the_bus_handles() {
    let h = Harness::new(Kind::Nats);
    let bus: Bus = nats_bus().await.into();
    let mut sub = bus.subscribe(&h.pattern("d")).await.expect("subscribe");
    drop(bus);
    let publisher: Bus = nats_bus().await.into();
    let e = event();
    publisher.publish(&h.topic("d"), &e).await.expect("publish");
    assert_eq!(recv_on(&publisher, &mut sub).await.event, e);
}

/// The task that counts the losses of subscriptions nobody reads runs only while the bus has
/// subscriptions: a bus that only publishes, or whose subscriptions are gone, keeps no task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_runs_only_while_there_are_subscriptions() {
    let h = Harness::new(Kind::Nats);
    let bus: Bus = nats_bus().await.into();
    let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let idle = tasks();
    for round in 0..2 {
        let mut sub = bus.subscribe(&h.pattern("sweep")).await.expect("subscribe");
        assert_eq!(tasks(), idle + 1, "round {round}: one sweeper for the bus");
        let more = bus.subscribe(&h.pattern("sweep.more")).await.expect("subscribe");
        assert_eq!(tasks(), idle + 1, "round {round}: still one sweeper with two subscriptions");
        let e = event();
        bus.publish(&h.topic("sweep"), &e).await.expect("publish");
        assert_eq!(recv_on(&bus, &mut sub).await.event, e);
        drop((sub, more));
        wait_until("the sweeper ended with the last subscription", || tasks() == idle).await;
    }
}

/// A reader that read, then stopped reading, still has its losses counted without reading
/// again: the sweeper takes over from the first interval it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losses_are_counted_after_the_reader_stops_reading() {
    const CAPACITY: usize = 4;
    const N: u64 = 100;
    let h = Harness::new(Kind::Nats);
    let (subscriber, publisher): (Bus, Bus) = (nats_bus().await.into(), nats_bus().await.into());
    let mut sub = subscriber
        .subscribe_with(&h.pattern("paused"), SubscribeOptions::default().capacity(CAPACITY))
        .await
        .expect("subscribe");
    let first = event();
    publisher.publish(&h.topic("paused"), &first).await.expect("publish");
    assert_eq!(recv_on(&subscriber, &mut sub).await.event, first);
    for _ in 0..N {
        publisher.publish(&h.topic("paused"), &event()).await.expect("publish");
    }
    publisher.flush().await.expect("flush");
    let lost = N - CAPACITY as u64;
    wait_until("the losses counted while nobody reads", || subscriber.counters().dropped >= lost).await;
    assert_eq!(subscriber.counters().dropped, lost, "{:?}", subscriber.counters());
    for _ in 0..CAPACITY {
        recv_on(&subscriber, &mut sub).await;
    }
}
