//! Configuration at build time and at run time: invalid settings are typed errors; requirements,
//! policies and sinks change while running; pause and resume; raw sends.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use orbitalis::prelude::*;
use orbitalis::schemas::protocol::CloseReason;
use orbitalis::{Error, Identifier, Payload, Topic};
use support::*;

#[tokio::test]
async fn invalid_configuration_is_a_build_error() {
    let bus = local();
    let bad_core = |b: CoreBuilder| async move { b.bus(local()).start(()).await };
    let cases = vec![
        CoreBuilder::new("bad id"),
        CoreBuilder::new("home").namespace("a..b"),
        CoreBuilder::new("home").tick_interval(Duration::from_millis(1)),
        CoreBuilder::new("home").require("op", Requirement::new().allowlist(["a"]).blocklist(["b"])),
        CoreBuilder::new("home").require("op", Requirement::new().minimum(3).maximum(1)),
        CoreBuilder::new("home").require("bad op", Requirement::new()),
        CoreBuilder::new("home").require("op", Requirement::new()).require("op", Requirement::new()),
    ];
    for b in cases {
        let r = bad_core(b).await;
        assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
    }
    assert!(matches!(CoreBuilder::new("home").start(()).await, Err(Error::Config(m)) if m.contains("bus")));
    let plugin_cases = vec![
        PluginBuilder::new("p").operation(lowercase().policy(Policy::allowlist(["a"]).block(["b"]))),
        PluginBuilder::new("p").operation(lowercase()).operation(lowercase()),
        PluginBuilder::new("p").operation(Operation::producer::<Int64>("bad name")),
        PluginBuilder::new("p").policy("missing", Policy::new()),
        PluginBuilder::new("p").dead_after(Some(Duration::from_millis(10))),
    ];
    for b in plugin_cases {
        let r = b.bus(bus.clone()).start(()).await;
        assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
    }
    assert_eq!(bus.subscription_count(), 0, "nothing started");
}

#[tokio::test(start_paused = true)]
async fn start_twice_fails_and_stop_twice_returns() {
    let (bus, ns) = (local(), ns());
    let p = plugin(&bus, &ns, "p", vec![lowercase()]).await;
    assert!(matches!(p.start().await, Err(Error::AlreadyRunning)));
    p.stop().await;
    p.stop().await;
    assert_eq!(p.state(), State::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_lowered_maximum_and_a_narrowed_list_close_connections() {
    let (bus, ns) = (local(), ns());
    let plugins = [
        plugin(&bus, &ns, "p1", vec![lowercase()]).await,
        plugin(&bus, &ns, "p2", vec![lowercase()]).await,
        plugin(&bus, &ns, "p3", vec![lowercase()]).await,
    ];
    let c = core(&bus, &ns, "home", lower_req().minimum(3)).await;
    within("three connections", c.wait_compliant()).await.unwrap();
    let mut events = c.events();
    c.set_requirement("lowercase", lower_req().minimum(1).maximum(2)).await.unwrap();
    let ev = wait_event(&mut events, "one closed", |e| matches!(e, OrbiterEvent::ConnectionClosed { .. })).await;
    assert!(matches!(ev, OrbiterEvent::ConnectionClosed { reason: CloseReason::RequirementChanged, .. }));
    eventually("two left", || async { c.connections().await.len() == 2 }).await;
    c.set_requirement("lowercase", lower_req().minimum(1).blocklist(["p1", "p2"])).await.unwrap();
    eventually("only p3 left", || async {
        c.connections().await.iter().map(|k| k.remote.to_string()).collect::<Vec<_>>() == ["p3"]
    })
    .await;
    assert_eq!(c.state(), State::Compliant);
    c.remove_requirement("lowercase").await.unwrap();
    eventually("no connection", || async { c.connections().await.is_empty() }).await;
    assert_eq!(c.state(), State::Compliant, "no requirement left: trivially compliant");
    for p in &plugins {
        assert!(p.connections().await.is_empty());
    }
    c.stop().await;
    for p in plugins {
        p.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_narrowed_policy_closes_the_refused_core() {
    let (bus, ns) = (local(), ns());
    let p = plugin(&bus, &ns, "p", vec![lowercase()]).await;
    let a = core(&bus, &ns, "a", lower_req()).await;
    let b = core(&bus, &ns, "b", lower_req()).await;
    within("a", a.wait_compliant()).await.unwrap();
    within("b", b.wait_compliant()).await.unwrap();
    p.add_operation(lowercase().policy(Policy::allowlist(["a"]))).await.unwrap();
    within("b loses it", b.wait_for(|s| *s == State::NotCompliant)).await;
    assert_eq!(p.remote_identifiers().await, vec![id("a")]);
    assert_eq!(a.state(), State::Compliant);
    for c in [a, b] {
        c.stop().await;
    }
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn sinks_per_requirement_setup_hook_and_raw_sends() {
    struct Home {
        outputs: Arc<Mutex<Vec<String>>>,
    }
    impl Core for Home {
        fn sinks(self: Arc<Self>) -> Vec<(String, Sink)> {
            let outputs = self.outputs.clone();
            let sink = Sink::new(move |s: StringMessage, _ctx| {
                let outputs = outputs.clone();
                async move { outputs.lock().unwrap().push(format!("core sink: {}", s.0)) }
            });
            vec![("lowercase".into(), sink)]
        }

        fn setup_data(&self, operation: &Identifier, plugin: &Identifier) -> Option<Bytes> {
            Some(Bytes::from(format!("{operation} for {plugin}")))
        }
    }
    let (bus, ns) = (local(), ns());
    let p = plugin(&bus, &ns, "p", vec![lowercase()]).await;
    let outputs = Arc::new(Mutex::new(Vec::new()));
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .require("lowercase", lower_req())
        .start(Home { outputs: outputs.clone() })
        .await
        .unwrap();
    within("compliance", c.wait_compliant()).await.unwrap();
    let conn = &p.connections().await[0];
    assert_eq!(conn.setup_data.as_deref(), Some(&b"lowercase for p"[..]), "computed by the core's hook");
    c.execute("lowercase", StringMessage("A".into()), Target::Any).await.unwrap();
    eventually("the core's sink", || async { outputs.lock().unwrap().len() == 1 }).await;
    // A requirement's own sink replaces the core's.
    let o2 = outputs.clone();
    let override_sink = Sink::new(move |s: StringMessage, ctx: SinkContext| {
        let o2 = o2.clone();
        async move { o2.lock().unwrap().push(format!("override from {}: {}", ctx.plugin, s.0)) }
    });
    c.set_requirement("lowercase", lower_req().sink(override_sink)).await.unwrap();
    within("compliance", c.wait_compliant()).await.unwrap();
    c.execute("lowercase", StringMessage("B".into()), Target::Any).await.unwrap();
    eventually("the override", || async { outputs.lock().unwrap().len() == 2 }).await;
    assert_eq!(*outputs.lock().unwrap(), ["core sink: a", "override from p: b"]);
    // sudo_execute publishes raw, bypassing connections: here onto the plugin's input topic.
    let input_topic: Topic = c.connections().await[0].input_topic.clone();
    let payload: Payload = orbitalis::Message::to_payload(&StringMessage("RAW".into())).unwrap();
    c.sudo_execute(&input_topic, Some(payload)).await.unwrap();
    eventually("the raw input's output", || async { outputs.lock().unwrap().len() == 3 }).await;
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_paused_core_stops_discovering_and_keepalives_until_resumed() {
    let (bus, ns) = (local(), ns());
    let c = core(&bus, &ns, "home", lower_req()).await;
    discovers(&bus, &ns, "home", 1).await;
    c.pause().await.unwrap();
    let p = plugin(&bus, &ns, "p", vec![lowercase()]).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(c.state(), State::NotCompliant, "no discovery while paused");
    assert!(p.connections().await.is_empty());
    c.resume().await.unwrap();
    within("compliance after resume", c.wait_compliant()).await.unwrap();
    c.stop().await;
    p.stop().await;
}
