//! The transport contract, written once and run on every bus (see `tests/conformance.rs`).
//!
//! A case gets a [`Harness`]: `h.bus()` is a new connection on NATS and MQTT (so publisher and
//! subscriber really talk through the broker) and the one shared bus in memory. Negative
//! checks ("this subscription got nothing else") publish a fence event afterwards from the
//! same connection and require that the fences are all that arrive before it.

use std::collections::{BTreeSet, HashMap};

use busline::envelope::DEFAULT_MAX_ENVELOPE_SIZE;
use busline::{
    Bus, ConnectionState, Error, Event, Fingerprint, Identifier, Pattern, Payload, SubscribeOptions, Subscription,
    Topic,
};
use bytes::Bytes;
use uuid::Uuid;

use crate::common::{Harness, Kind, WAIT, event, recv, recv_on, wait_until, within};

const FINGERPRINT: Fingerprint = Fingerprint::from_u64(0x0123_4567_89ab_cdef);

/// An event carrying `i` as its payload.
fn numbered(i: u32) -> Event {
    event().with_payload(Payload::new(FINGERPRINT, Bytes::copy_from_slice(&i.to_le_bytes())))
}

fn number(e: &Event) -> u32 {
    let datum = &e.payload.as_ref().expect("a numbered event has a payload").datum;
    u32::from_le_bytes(datum[..].try_into().expect("a 4-byte number"))
}

/// Options that keep transport duplicates visible instead of filtering them by id.
fn raw(capacity: usize) -> SubscribeOptions {
    SubscribeOptions::default().capacity(capacity).duplicate_window(0)
}

async fn subscribe(bus: &Bus, pattern: &Pattern, options: SubscribeOptions) -> Subscription {
    within(&format!("subscribing to {pattern}"), bus.subscribe_with(pattern, options))
        .await
        .unwrap_or_else(|e| panic!("subscribing to {pattern}: {e}"))
}

async fn publish(bus: &Bus, topic: &Topic, event: &Event) {
    within(&format!("publishing on {topic}"), bus.publish(topic, event))
        .await
        .unwrap_or_else(|e| panic!("publishing on {topic}: {e}"));
}

/// Publishes one fence per subscription (on the given topics) and checks that each
/// subscription receives nothing but fences up to its own.
async fn expect_only_fences(publisher: &Bus, subs: &mut [(&mut Subscription, Topic)]) {
    let mut fences = HashMap::new();
    let mut own = Vec::new();
    for (_, topic) in subs.iter() {
        let fence = event();
        publish(publisher, topic, &fence).await;
        fences.insert(fence.id, topic.clone());
        own.push(fence.id);
    }
    for ((sub, _), own) in subs.iter_mut().zip(own) {
        loop {
            let d = recv(sub).await;
            assert!(
                fences.contains_key(&d.event.id),
                "{} received an unexpected event on {} before its fence",
                sub.pattern(),
                d.topic
            );
            if d.event.id == own {
                break;
            }
        }
    }
}

/// Topic, publisher, id, timestamp, correlation, payload bytes and headers arrive intact.
pub async fn round_trip(h: Harness) {
    let (subscriber, publisher) = (h.bus().await, h.bus().await);
    assert_eq!(subscriber.connection_state(), ConnectionState::Connected);
    let mut sub = subscribe(&subscriber, &h.pattern("rt.x"), SubscribeOptions::default()).await;
    let datum: Vec<u8> = (0..=255u8).chain([0, 0xB0, 0x0B, 0x01]).collect();
    let mut sent = Event::new(Identifier::new("sender-1").unwrap())
        .with_correlation(Uuid::new_v4())
        .with_payload(Payload::new(FINGERPRINT, datum));
    sent.headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    sent.headers.insert("x-empty", "").unwrap();
    let topic = h.topic("rt.x");
    publish(&publisher, &topic, &sent).await;
    let got = recv_on(&subscriber, &mut sub).await;
    assert_eq!(got.topic, topic);
    assert_eq!(got.event, sent);
    assert_eq!(got.event.headers.get("traceparent"), sent.headers.get("traceparent"));
    assert!(publisher.counters().published >= 1);
    assert_eq!(subscriber.counters().delivered, 1);
    assert_eq!(subscriber.counters().undecodable, 0);
}

/// `*` matches exactly one token, `>` one or more trailing ones; nothing else matches, not
/// the parent level of `x.>` (which MQTT's `#` would match) nor a token sharing a prefix.
pub async fn wildcards(h: Harness) {
    let (subscriber, publisher) = (h.bus().await, h.bus().await);
    let cases: [(&str, &[&str]); 5] = [
        ("w.*.c", &["w.a.c", "w.b.c", "w.ab.c"]),
        ("w.a.>", &["w.a.c", "w.a.b", "w.a.c.d", "w.a.d"]),
        ("w.*", &["w.a", "w.b"]),
        ("w.a.c", &["w.a.c"]),
        ("w.*.*.d", &["w.a.c.d", "w.b.c.d"]),
    ];
    let topics = ["w", "w.a", "w.b", "w.a.c", "w.b.c", "w.a.b", "w.a.c.d", "w.b.c.d", "w.a.d", "w.ab.c", "x.a.c"];
    let mut subs = Vec::new();
    for (pattern, _) in cases {
        subs.push(subscribe(&subscriber, &h.pattern(pattern), raw(64)).await);
    }
    let mut by_id = HashMap::new();
    for t in topics {
        let e = event();
        by_id.insert(e.id, t);
        publish(&publisher, &h.topic(t), &e).await;
    }
    for ((pattern, expected), sub) in cases.iter().zip(subs.iter_mut()) {
        let mut got = BTreeSet::new();
        for _ in 0..expected.len() {
            let d = recv_on(&subscriber, sub).await;
            let t = by_id.get(&d.event.id).expect("an event of this test");
            assert_eq!(d.topic, h.topic(t), "the delivery names the topic it was published on");
            assert!(got.insert(*t), "{pattern} received {t} twice");
        }
        let want: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(got, want, "what {pattern} matched");
    }
    let mut fenced: Vec<(&mut Subscription, Topic)> =
        subs.iter_mut().zip(cases).map(|(s, (_, expected))| (s, h.topic(expected[0]))).collect();
    expect_only_fences(&publisher, &mut fenced).await;
}

/// Events from one publisher on one topic arrive in publish order.
pub async fn ordering(h: Harness) {
    const N: u32 = 1000;
    let (subscriber, publisher) = (h.bus().await, h.bus().await);
    let mut sub = subscribe(&subscriber, &h.pattern("ord"), raw(2 * N as usize)).await;
    let topic = h.topic("ord");
    for i in 0..N {
        publish(&publisher, &topic, &numbered(i)).await;
    }
    for i in 0..N {
        assert_eq!(number(&recv_on(&subscriber, &mut sub).await.event), i, "event {i} out of order");
    }
}

/// Every subscription matching a topic gets each event once, including several on one
/// connection with equal and overlapping patterns.
pub async fn many_subscribers(h: Harness) {
    const N: u32 = 200;
    let (first, second, publisher) = (h.bus().await, h.bus().await, h.bus().await);
    let mut subs = [
        subscribe(&first, &h.pattern("m.x"), raw(1024)).await,
        subscribe(&first, &h.pattern("m.x"), raw(1024)).await,
        subscribe(&first, &h.pattern("m.*"), raw(1024)).await,
        subscribe(&first, &h.pattern("m.>"), raw(1024)).await,
        subscribe(&second, &h.pattern("m.x"), raw(1024)).await,
        subscribe(&second, &h.pattern("m.*"), raw(1024)).await,
    ];
    let topic = h.topic("m.x");
    for i in 0..N {
        publish(&publisher, &topic, &numbered(i)).await;
    }
    for (k, sub) in subs.iter_mut().enumerate() {
        for i in 0..N {
            let d = recv_on(if k < 4 { &first } else { &second }, sub).await;
            assert_eq!(number(&d.event), i, "subscriber {k} ({}): event {i}", sub.pattern());
        }
    }
    let mut fenced: Vec<(&mut Subscription, Topic)> = subs.iter_mut().map(|s| (s, topic.clone())).collect();
    expect_only_fences(&publisher, &mut fenced).await;
    assert_eq!(first.counters().dropped + second.counters().dropped, 0);
}

/// Dropping a subscription unsubscribes it; the others on the same topic keep receiving, and
/// a topic can be subscribed again after its last subscription went.
pub async fn unsubscribe_on_drop(h: Harness) {
    let (bus, publisher) = (h.bus().await, h.bus().await);
    let base = bus.subscription_count();
    let a = subscribe(&bus, &h.pattern("u.x"), raw(16)).await;
    let mut b = subscribe(&bus, &h.pattern("u.x"), raw(16)).await;
    let c = subscribe(&bus, &h.pattern("u.*"), raw(16)).await;
    assert_eq!(bus.subscription_count(), base + 3);
    drop(a);
    assert_eq!(bus.subscription_count(), base + 2, "a dropped subscription is gone at once");
    let topic = h.topic("u.x");
    let first = event();
    publish(&publisher, &topic, &first).await;
    assert_eq!(recv_on(&bus, &mut b).await.event.id, first.id, "the remaining subscription still receives");
    drop(c);
    drop(b);
    assert_eq!(bus.subscription_count(), base);

    let mut again = subscribe(&bus, &h.pattern("u.x"), raw(16)).await;
    assert_eq!(bus.subscription_count(), base + 1);
    let second = event();
    publish(&publisher, &topic, &second).await;
    assert_eq!(recv_on(&bus, &mut again).await.event.id, second.id, "a new subscription gets later events only");
    drop(again);
    assert_eq!(bus.subscription_count(), base);
    assert_eq!(bus.counters().dropped, 0, "events for dropped subscriptions are not counted as losses");
}

/// An event without payload or headers round trips.
pub async fn empty_payload(h: Harness) {
    let (subscriber, publisher) = (h.bus().await, h.bus().await);
    let mut sub = subscribe(&subscriber, &h.pattern("e"), SubscribeOptions::default()).await;
    let sent = event();
    assert!(sent.payload.is_none() && sent.headers.is_empty());
    publish(&publisher, &h.topic("e"), &sent).await;
    assert_eq!(recv_on(&subscriber, &mut sub).await.event, sent);

    let zero = event().with_payload(Payload::new(FINGERPRINT, Bytes::new()));
    publish(&publisher, &h.topic("e"), &zero).await;
    assert_eq!(recv_on(&subscriber, &mut sub).await.event, zero, "a zero-length datum is not an absent payload");
}

/// An event of exactly `max_envelope_size` bytes round trips intact; one byte more is refused
/// before sending.
pub async fn max_size(h: Harness) {
    let (subscriber, publisher) = (h.bus().await, h.bus().await);
    let max = publisher.max_envelope_size();
    assert_eq!(max, DEFAULT_MAX_ENVELOPE_SIZE);
    let sized = |n: usize| {
        let datum: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
        event().with_payload(Payload::new(FINGERPRINT, datum))
    };
    let overhead = sized(0).encoded_len() - 1;
    let n = (max - overhead - 4..max - overhead)
        .find(|&n| sized(n).encoded_len() == max)
        .expect("a datum length giving exactly max_envelope_size");
    let largest = sized(n);
    assert_eq!(largest.encoded_len(), max);

    let mut sub = subscribe(&subscriber, &h.pattern("big"), SubscribeOptions::default()).await;
    let topic = h.topic("big");
    let over = sized(n + 1);
    match publisher.publish(&topic, &over).await {
        Err(Error::PayloadTooLarge { size, max: m }) => assert_eq!((size, m), (max + 1, max)),
        other => panic!("an event one byte over the limit gave {other:?}"),
    }
    publish(&publisher, &topic, &largest).await;
    let got = recv_on(&subscriber, &mut sub).await;
    assert!(got.event == largest, "the largest event arrives intact");
    let mut fenced = [(&mut sub, topic)];
    expect_only_fences(&publisher, &mut fenced).await;
    assert_eq!(subscriber.counters().undecodable, 0);
}

/// 10,000 events reach a subscriber with room for them, none lost, none reordered.
pub async fn ten_thousand(h: Harness) {
    const N: u32 = 10_000;
    let (subscriber, publisher) = (h.bus().await, h.bus().await);
    let mut sub = subscribe(&subscriber, &h.pattern("many"), raw(16_384)).await;
    let topic = h.topic("many");
    within("publishing 10,000 events", async {
        for i in 0..N {
            publisher.publish(&topic, &numbered(i)).await.expect("publish");
        }
    })
    .await;
    for i in 0..N {
        assert_eq!(number(&recv_on(&subscriber, &mut sub).await.event), i, "event {i}");
    }
    assert_eq!(subscriber.counters().dropped, 0);
}

/// A subscriber that does not read never slows the publisher down: its queue keeps the first
/// `capacity` events and every other one is counted in `dropped`.
///
/// Exact on every transport: the NATS and MQTT buses move each message from the client to the
/// subscription's queue at once and count what does not fit. (A broker that drops messages
/// itself, such as Mosquitto past `max_queued_messages`, would break the count; with these
/// numbers it does not.)
pub async fn slow_subscriber(h: Harness) {
    const N: u32 = 2000;
    const CAPACITY: usize = 8;
    let (subscriber, publisher) = (h.bus().await, h.bus().await);
    let mut slow = subscribe(&subscriber, &h.pattern("slow"), SubscribeOptions::default().capacity(CAPACITY)).await;
    let topic = h.topic("slow");
    within("publishing while a subscriber does not read", async {
        for i in 0..N {
            publisher.publish(&topic, &numbered(i)).await.expect("publish");
        }
        publisher.flush().await.expect("flush");
    })
    .await;
    let lost = u64::from(N) - CAPACITY as u64;
    wait_until("every event beyond the queue counted as dropped", || subscriber.counters().dropped >= lost).await;
    for i in 0..CAPACITY as u32 {
        assert_eq!(number(&recv_on(&subscriber, &mut slow).await.event), i, "the queue keeps the oldest events");
    }
    let mut fenced = [(&mut slow, topic)];
    expect_only_fences(&publisher, &mut fenced).await;
    assert_eq!(subscriber.counters().dropped, lost, "received + dropped = published");
    if h.kind == Kind::Nats {
        assert_eq!(subscriber.counters().slow_consumer, 0, "the client's own buffer never overflowed");
    }
}

/// Bad topics, patterns and identifiers are refused with typed errors before any bus sees them.
pub async fn invalid_names(h: Harness) {
    let ns = &h.ns;
    for bad in [String::new(), format!("{ns}..a"), format!("{ns}.*"), format!("{ns}.>"), format!("{ns}.a b")] {
        assert!(matches!(Topic::new(&bad), Err(Error::InvalidTopic { .. })), "topic {bad:?}");
    }
    for bad in [format!("{ns}.>.a"), format!("{ns}.a*"), format!("{ns}.#"), format!("{ns}.+"), "$SYS.>".to_owned()] {
        assert!(matches!(Pattern::new(&bad), Err(Error::InvalidPattern { .. })), "pattern {bad:?}");
    }
    for bad in ["", "a.b", "_all", "a/b", "é"] {
        assert!(matches!(Identifier::new(bad), Err(Error::InvalidIdentifier { .. })), "identifier {bad:?}");
    }
    // A valid pattern still works on this bus after the refusals.
    let bus = h.bus().await;
    let mut sub = subscribe(&bus, &h.pattern("ok.*"), SubscribeOptions::default()).await;
    let e = event();
    publish(&bus, &h.topic("ok.fine"), &e).await;
    assert_eq!(recv_on(&bus, &mut sub).await.event.id, e.id);
}

/// After `close`, every operation fails with `Error::Closed` and open subscriptions end.
pub async fn closed(h: Harness) {
    let bus = h.bus().await;
    let mut sub = subscribe(&bus, &h.pattern("c.x"), SubscribeOptions::default()).await;
    within("closing", bus.close()).await.expect("close");
    assert_eq!(bus.connection_state(), ConnectionState::Closed);
    assert!(matches!(bus.publish(&h.topic("c.x"), &event()).await, Err(Error::Closed)));
    assert!(matches!(bus.subscribe(&h.pattern("c.y")).await, Err(Error::Closed)));
    assert!(matches!(bus.flush().await, Err(Error::Closed)));
    match tokio::time::timeout(WAIT, sub.recv()).await {
        Ok(None) => {}
        Ok(Some(d)) => panic!("a closed bus delivered {d:?}"),
        Err(_) => panic!("the subscription did not end within {WAIT:?} of close"),
    }
    within("closing again", bus.close()).await.expect("closing twice is harmless");
}
