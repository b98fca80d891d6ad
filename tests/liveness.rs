//! Liveness and the connection life cycle (PROTOCOL.md §6.7-§6.9): keepalives, dead
//! orbiters, closing, expiry, idleness, hostile input and clean stops. On the in-memory bus
//! with paused time unless a test says otherwise.

mod support;

use std::time::Duration;

use bytes::Bytes;
use orbitalis::busline::{Event, Topic};
use orbitalis::prelude::*;
use orbitalis::schemas::protocol::{CloseReason, Control, GracefulClose, GracelessClose, Keepalive, Sender};
use orbitalis::{Bus, Identifier};
use support::faulty::{FaultyBus, Verdict, kind_of};
use support::*;
use tokio::time::Instant;

const DEAD: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(50);

async fn live_plugin(bus: &Bus, ns: &str, name: &str) -> PluginHandle {
    fast(PluginBuilder::new(name).bus(bus.clone()).namespace(ns))
        .dead_after(Some(DEAD))
        .operation(lowercase())
        .start(())
        .await
        .unwrap()
}

async fn live_core(bus: &Bus, ns: &str, req: Requirement) -> CoreHandle {
    fast(CoreBuilder::new("home").bus(bus.clone()).namespace(ns))
        .dead_after(Some(DEAD))
        .require("lowercase", req)
        .start(())
        .await
        .unwrap()
}

/// Plugin `p` and core `home`, connected.
async fn connected(bus: &Bus, ns: &str) -> (PluginHandle, CoreHandle) {
    let p = live_plugin(bus, ns, "p").await;
    let c = live_core(bus, ns, lower_req()).await;
    within("compliance", c.wait_compliant()).await.unwrap();
    (p, c)
}

fn closed_event(e: &OrbiterEvent) -> Option<(CloseReason, Option<Bytes>, bool)> {
    match e {
        OrbiterEvent::ConnectionClosed { reason, data, by_remote, .. } => Some((*reason, data.clone(), *by_remote)),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn an_aborted_plugin_is_dead_within_its_limit_and_replaced() {
    let (bus, ns) = (local(), ns());
    let p = live_plugin(&bus, &ns, "p1").await;
    let c = live_core(&bus, &ns, lower_req()).await;
    within("compliance", c.wait_compliant()).await.unwrap();
    // Several keepalive windows pass: a healthy plugin stays connected.
    tokio::time::sleep(3 * DEAD).await;
    assert_eq!(c.state(), State::Compliant);
    assert_eq!(c.counters().remotes_dead, 0);
    let mut events = c.events();
    let aborted = Instant::now();
    p.abort();
    wait_event(&mut events, "the plugin declared dead", |e| matches!(e, OrbiterEvent::RemoteDead(id) if id == "p1"))
        .await;
    let took = aborted.elapsed();
    assert!(took <= DEAD + TICK, "dead after {took:?}, beyond {DEAD:?} + one tick");
    assert!(took > DEAD - DEAD / 4 - TICK, "dead after only {took:?}: keepalives came every {:?}", DEAD / 4);
    assert_eq!(c.state(), State::NotCompliant);
    assert!(c.connections().await.is_empty());
    let replacement = live_plugin(&bus, &ns, "p2").await;
    within("compliance again", c.wait_compliant()).await.unwrap();
    assert_eq!(c.remote_identifiers().await, vec![id("p2")]);
    c.stop().await;
    replacement.stop().await;
}

/// Real time: a handler blocking for twice the dead limit runs on the blocking pool, so the
/// plugin keeps sending keepalives and nobody is declared dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_busy_handler_does_not_make_its_plugin_dead() {
    let (bus, ns) = (local(), ns());
    let dead = Duration::from_secs(2);
    let busy = Operation::blocking("lowercase", |s: StringMessage, _ctx| {
        std::thread::sleep(Duration::from_millis(4500));
        Ok(StringMessage(s.0.to_lowercase()))
    });
    let p = fast(PluginBuilder::new("busy").bus(bus.clone()).namespace(&ns))
        .dead_after(Some(dead))
        .operation(busy)
        .start(())
        .await
        .unwrap();
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .dead_after(Some(dead))
        .require("lowercase", lower_req())
        .start(())
        .await
        .unwrap();
    within("compliance", c.wait_compliant()).await.unwrap();
    let out: StringMessage = c.call("lowercase", StringMessage("SLOW".into()), Target::Any).await.unwrap();
    assert_eq!(out.0, "slow");
    assert_eq!(c.counters().remotes_dead, 0);
    assert_eq!(p.counters().remotes_dead, 0);
    assert_eq!(c.state(), State::Compliant);
    assert_eq!(c.connections().await.len(), 1);
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn graceful_close_with_ack_delivers_the_data() {
    let (bus, ns) = (local(), ns());
    let (p, c) = connected(&bus, &ns).await;
    let id = c.connections().await[0].id;
    let (mut pe, mut ce) = (p.events(), c.events());
    assert!(c.close_connection(id, true, Some(Bytes::from_static(b"bye"))).await.unwrap());
    let on_plugin = wait_event(&mut pe, "closed on the plugin", |e| closed_event(e).is_some()).await;
    assert_eq!(closed_event(&on_plugin), Some((CloseReason::Requested, Some(Bytes::from_static(b"bye")), true)));
    let on_core = wait_event(&mut ce, "closed on the core", |e| closed_event(e).is_some()).await;
    assert_eq!(closed_event(&on_core), Some((CloseReason::Requested, None, false)));
    assert!(c.connections().await.is_empty() && p.connections().await.is_empty());
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn graceful_close_finishes_in_flight_work_first() {
    let (bus, ns) = (local(), ns());
    let slow = Operation::new("lowercase", |s: StringMessage, _ctx| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(StringMessage(s.0.to_lowercase()))
    });
    let p = fast(PluginBuilder::new("p").bus(bus.clone()).namespace(&ns)).operation(slow).start(()).await.unwrap();
    let c = live_core(&bus, &ns, lower_req()).await;
    within("compliance", c.wait_compliant()).await.unwrap();
    let id = c.connections().await[0].id;
    let call = {
        let c = c.clone();
        tokio::spawn(
            async move { c.call::<_, StringMessage>("lowercase", StringMessage("A".into()), Target::Any).await },
        )
    };
    eventually("the call reached the plugin", || async {
        p.counters().connections_opened == 1 && c.counters().connections_opened == 1
    })
    .await;
    tokio::task::yield_now().await;
    let mut pe = p.events();
    c.close_connection(id, true, None).await.unwrap();
    assert_eq!(call.await.unwrap().unwrap().0, "a", "the handler finished before the close");
    wait_event(&mut pe, "closed on the plugin", |e| closed_event(e).is_some()).await;
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn graceful_close_without_ack_falls_back_to_graceless_in_time() {
    let (faulty, ns) = (FaultyBus::new(), ns());
    let bus = faulty.bus();
    let p = live_plugin(&bus, &ns, "p").await;
    // No rediscovery meanwhile: a new Offer would replace the closing connection as STALE.
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .discover_interval(Duration::from_secs(60))
        .opportunistic_discover_interval(None)
        .require("lowercase", lower_req())
        .start(())
        .await
        .unwrap();
    within("compliance", c.wait_compliant()).await.unwrap();
    let id = c.connections().await[0].id;
    let ns2 = ns.clone();
    // The plugin's ack is lost, and so is its K6 answer to the core's keepalives, which would
    // otherwise end the connection before the timeout.
    faulty.set_rule(move |t, e| match kind_of(t, &ns2) {
        "close-ack" => Verdict::Drop,
        "close" if e.publisher == "p" => Verdict::Drop,
        _ => Verdict::Deliver,
    });
    let mut ce = c.events();
    let started = Instant::now();
    c.close_connection(id, true, None).await.unwrap();
    let ev = wait_event(&mut ce, "the fallback", |e| closed_event(e).is_some()).await;
    let timeout = Duration::from_secs(2);
    assert_eq!(closed_event(&ev).map(|e| e.0), Some(CloseReason::CloseTimeout));
    let took = started.elapsed();
    assert!(took >= timeout && took <= timeout + TICK, "fell back after {took:?}");
    assert!(p.connections().await.is_empty(), "the plugin closed when it acked");
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn graceless_close_is_immediate_and_carries_data() {
    let (bus, ns) = (local(), ns());
    let (p, c) = connected(&bus, &ns).await;
    let id = p.connections().await[0].id;
    let mut ce = c.events();
    assert!(p.close_connection(id, false, Some(Bytes::from_static(b"now"))).await.unwrap());
    assert!(p.connections().await.is_empty(), "closed locally at once");
    let ev = wait_event(&mut ce, "closed on the core", |e| closed_event(e).is_some()).await;
    assert_eq!(closed_event(&ev), Some((CloseReason::Requested, Some(Bytes::from_static(b"now")), true)));
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn idle_connections_close_by_last_use() {
    let (bus, ns) = (local(), ns());
    let p = live_plugin(&bus, &ns, "p").await;
    let idle = Duration::from_secs(10);
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .idle_timeout(Some(idle))
        .require("lowercase", lower_req().minimum(0))
        .start(())
        .await
        .unwrap();
    wait_event(&mut c.events(), "a connection", |e| matches!(e, OrbiterEvent::ConnectionOpened(_))).await;
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    c.execute("lowercase", StringMessage("keep".into()), Target::Any).await.unwrap();
    let used = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(c.connections().await.len(), 1, "used 8 s ago: still open at {:?}", opened.elapsed());
    let ev = wait_event(&mut c.events(), "the idle close", |e| closed_event(e).is_some()).await;
    assert_eq!(closed_event(&ev).map(|e| e.0), Some(CloseReason::Idle));
    let after = used.elapsed();
    assert!(after > idle && after <= idle + 2 * TICK, "closed {after:?} after its last use");
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_late_confirm_leaves_no_connection_anywhere() {
    let (faulty, ns) = (FaultyBus::new(), ns());
    let bus = faulty.bus();
    let ns2 = ns.clone();
    // Confirms arrive after the core's pending requests expired (2 s).
    faulty.set_rule(move |t, _| {
        if kind_of(t, &ns2) == "response" { Verdict::Delay(Duration::from_secs(3)) } else { Verdict::Deliver }
    });
    let p = live_plugin(&bus, &ns, "p").await;
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .discover_interval(Duration::from_secs(60))
        .opportunistic_discover_interval(None)
        .require("lowercase", lower_req())
        .start(())
        .await
        .unwrap();
    let mut pe = p.events();
    wait_event(&mut pe, "the plugin's side opens", |e| matches!(e, OrbiterEvent::ConnectionOpened(_))).await;
    let ev = wait_event(&mut pe, "the plugin's side closes", |e| closed_event(e).is_some()).await;
    assert_eq!(closed_event(&ev).map(|e| (e.0, e.2)), Some((CloseReason::UnknownConnection, true)));
    assert!(p.connections().await.is_empty() && p.pending_requests().await.is_empty());
    assert!(c.connections().await.is_empty() && c.pending_requests().await.is_empty());
    assert_eq!(c.counters().pending_expired, 1);
    assert_eq!(c.state(), State::NotCompliant);
    c.stop().await;
    p.stop().await;
}

fn forged(ns: &str, kind: &str, to: &str, from: &str, msg: Control) -> (Topic, Event) {
    let topic = Topic::new(format!("{ns}.{kind}.{to}.{from}")).unwrap();
    let event = Event::new(Identifier::new(from).unwrap()).with_payload(msg.to_payload());
    (topic, event)
}

#[tokio::test(start_paused = true)]
async fn spoofed_closes_and_keepalives_change_nothing() {
    let (bus, ns) = (local(), ns());
    let (p, c) = connected(&bus, &ns).await;
    let conn = c.connections().await[0].clone();
    let mallory = Sender { identifier: id("mallory"), incarnation: uuid::Uuid::now_v7(), dead_after_ms: 0 };
    let mut answers =
        bus.subscribe(&orbitalis::busline::Pattern::new(format!("{ns}.close.mallory.home")).unwrap()).await.unwrap();
    let msgs = [
        (
            "close",
            Control::GracefulClose(GracefulClose {
                sender: mallory.clone(),
                operation: conn.operation.clone(),
                connection_id: conn.id,
                reason: CloseReason::Requested,
                data: None,
            }),
        ),
        (
            "close",
            Control::GracelessClose(GracelessClose {
                sender: mallory.clone(),
                operation: Some(conn.operation.clone()),
                connection_id: conn.id,
                reason: CloseReason::Requested,
                data: None,
            }),
        ),
        ("keepalive", Control::Keepalive(Keepalive { sender: mallory.clone(), connections: vec![conn.id] })),
    ];
    for (kind, msg) in msgs {
        let (t, e) = forged(&ns, kind, "home", "mallory", msg);
        bus.publish(&t, &e).await.unwrap();
    }
    // A message claiming to come from the plugin, published by mallory, is dropped at once.
    let (t, mut e) = forged(
        &ns,
        "close",
        "home",
        "p",
        Control::GracelessClose(GracelessClose {
            sender: Sender { identifier: id("p"), ..mallory.clone() },
            operation: None,
            connection_id: conn.id,
            reason: CloseReason::Requested,
            data: None,
        }),
    );
    e.publisher = id("mallory");
    bus.publish(&t, &e).await.unwrap();
    // K6 answers mallory's keepalive about a connection mallory does not hold: that answer
    // is the evidence the core processed everything above.
    let answer = within("the K6 answer to mallory", answers.recv()).await.unwrap();
    let decoded = Control::decode(answer.event.payload.as_ref().unwrap(), &Default::default()).unwrap();
    assert!(
        matches!(decoded, Control::GracelessClose(ref g) if g.connection_id == conn.id && g.reason == CloseReason::UnknownConnection)
    );
    assert_eq!(pairs(&c.connections().await), vec![("lowercase".into(), "p".into())]);
    assert_eq!(c.state(), State::Compliant);
    let counters = c.counters();
    assert_eq!(counters.unknown_connection, 3, "the two forged closes and the forged keepalive");
    assert_eq!(counters.sender_mismatch, 1, "the close published under another name");
    let out: StringMessage = c.call("lowercase", StringMessage("STILL".into()), Target::Any).await.unwrap();
    assert_eq!(out.0, "still");
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn after_stop_nothing_is_left() {
    let (bus, ns) = (local(), ns());
    let plugins = [live_plugin(&bus, &ns, "p1").await, live_plugin(&bus, &ns, "p2").await];
    let c = live_core(&bus, &ns, lower_req().minimum(2)).await;
    within("compliance", c.wait_compliant()).await.unwrap();
    c.execute("lowercase", StringMessage("X".into()), Target::All).await.unwrap();
    c.stop().await;
    for p in &plugins {
        p.stop().await;
    }
    assert_eq!(bus.subscription_count(), 0, "no subscription is left on the bus");
    let metrics = tokio::runtime::Handle::current().metrics();
    eventually("every task to end", || async { metrics.num_alive_tasks() == 0 }).await;
    assert!(c.connections().await.is_empty());
    assert_eq!(c.state(), State::Stopped);
    // Restartable: a new incarnation connects again.
    for p in &plugins {
        p.start().await.unwrap();
    }
    c.start().await.unwrap();
    within("compliance after restart", c.wait_compliant()).await.unwrap();
    c.stop().await;
    for p in &plugins {
        p.stop().await;
    }
    assert_eq!(bus.subscription_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stopped_plugin_frees_its_slot_and_the_core_sees_it() {
    let (bus, ns) = (local(), ns());
    let (p, c) = connected(&bus, &ns).await;
    let mut ce = c.events();
    p.stop().await;
    let ev = wait_event(&mut ce, "the close", |e| closed_event(e).is_some()).await;
    assert_eq!(closed_event(&ev).map(|e| (e.0, e.2)), Some((CloseReason::Stopping, true)));
    assert_eq!(c.state(), State::NotCompliant);
    c.stop().await;
}
