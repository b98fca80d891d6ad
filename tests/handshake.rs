//! The handshake, policies, constraints and compliance (PROTOCOL.md §6.1-§6.6), each on the
//! in-memory bus with paused time and on NATS.

mod support;

use orbitalis::Bus;
use orbitalis::prelude::*;
use support::*;

on_buses!(one_core_one_plugin, plugin_maximum_one_two_cores);

async fn one_core_one_plugin(bus: Bus, ns: String) {
    let p = plugin(&bus, &ns, "lower", vec![lowercase()]).await;
    let c = core(&bus, &ns, "home", lower_req()).await;
    within("compliance", c.wait_compliant()).await.unwrap();
    assert_eq!(c.state(), State::Compliant);
    let (cc, pc) = (c.connections().await, p.connections().await);
    assert_eq!(pairs(&cc), vec![("lowercase".into(), "lower".into())]);
    assert_eq!(pairs(&pc), vec![("lowercase".into(), "home".into())]);
    assert_eq!(cc[0].id, pc[0].id, "both sides name the same connection");
    assert_eq!(cc[0].input_topic, pc[0].input_topic);
    assert!(c.pending_requests().await.is_empty() && p.pending_requests().await.is_empty());
    assert_eq!(c.remote_identifiers().await, vec![id("lower")]);
    assert_eq!(p.remote_identifiers().await, vec![id("home")]);
    let out: StringMessage = c.call("lowercase", StringMessage("HeLLo".into()), Target::Any).await.unwrap();
    assert_eq!(out.0, "hello");
    c.stop().await;
    p.stop().await;
    assert_eq!(c.state(), State::Stopped);
    assert_eq!(p.state(), State::Stopped);
}

async fn plugin_maximum_one_two_cores(bus: Bus, ns: String) {
    let op = lowercase().policy(Policy::new().maximum(1));
    let p = plugin(&bus, &ns, "lower", vec![op]).await;
    let a = core(&bus, &ns, "a", lower_req()).await;
    within("a compliant", a.wait_compliant()).await.unwrap();
    let b = core(&bus, &ns, "b", lower_req()).await;
    // b discovers repeatedly but the plugin's only slot is taken.
    discovers(&bus, &ns, "b", 3).await;
    assert_eq!(b.state(), State::NotCompliant);
    assert_eq!(p.connections().await.len(), 1);
    a.stop().await;
    within("b takes the freed slot", b.wait_compliant()).await.unwrap();
    assert_eq!(pairs(&p.connections().await), vec![("lowercase".into(), "b".into())]);
    b.stop().await;
    p.stop().await;
}

on_buses!(
    plugin_maximum_two_serves_two_cores,
    core_maximum_one_three_plugins,
    lists_on_both_sides,
    mandatory_plugins_are_required,
    core_before_plugins,
    operations_added_and_removed,
    schemas_incompatible_and_evolved,
);

async fn plugin_maximum_two_serves_two_cores(bus: Bus, ns: String) {
    let p = plugin(&bus, &ns, "lower", vec![lowercase().policy(Policy::new().maximum(2))]).await;
    let a = core(&bus, &ns, "a", lower_req()).await;
    let b = core(&bus, &ns, "b", lower_req()).await;
    within("a compliant", a.wait_compliant()).await.unwrap();
    within("b compliant", b.wait_compliant()).await.unwrap();
    assert_eq!(pairs(&p.connections().await), vec![("lowercase".into(), "a".into()), ("lowercase".into(), "b".into())]);
    let c = core(&bus, &ns, "c", lower_req()).await;
    discovers(&bus, &ns, "c", 3).await;
    assert_eq!(c.state(), State::NotCompliant, "a third core finds the plugin saturated");
    assert_eq!(p.connections().await.len(), 2);
    for h in [a, b, c] {
        h.stop().await;
    }
    p.stop().await;
}

async fn core_maximum_one_three_plugins(bus: Bus, ns: String) {
    let plugins = [
        plugin(&bus, &ns, "p1", vec![lowercase()]).await,
        plugin(&bus, &ns, "p2", vec![lowercase()]).await,
        plugin(&bus, &ns, "p3", vec![lowercase()]).await,
    ];
    let c = core(&bus, &ns, "home", lower_req().maximum(1)).await;
    within("compliance", c.wait_compliant()).await.unwrap();
    // Every offer is settled once no plugin holds a pending request.
    eventually("the other offers to be refused", || async {
        let mut pending = 0;
        for p in &plugins {
            pending += p.pending_requests().await.len();
        }
        pending == 0
    })
    .await;
    assert_eq!(c.connections().await.len(), 1, "a strict maximum of one");
    assert!(c.pending_requests().await.is_empty());
    let mut total = 0;
    for p in &plugins {
        total += p.connections().await.len();
    }
    assert_eq!(total, 1, "no plugin holds a connection the core does not");
    c.stop().await;
    for p in plugins {
        p.stop().await;
    }
}

async fn lists_on_both_sides(bus: Bus, ns: String) {
    // The plugin admits only "friend"; the core admits only "good" of the two plugins.
    let picky = plugin(&bus, &ns, "picky", vec![lowercase().policy(Policy::allowlist(["friend"]))]).await;
    let good = plugin(&bus, &ns, "good", vec![lowercase().policy(Policy::blocklist(["stranger"]))]).await;
    let bad = plugin(&bus, &ns, "bad", vec![lowercase()]).await;
    let friend = core(&bus, &ns, "friend", lower_req().minimum(0).blocklist(["bad"])).await;
    let stranger = core(&bus, &ns, "stranger", lower_req().minimum(0).allowlist(["bad", "good"])).await;
    let remotes = |v: Vec<orbitalis::Identifier>| v.into_iter().map(|i| i.to_string()).collect::<Vec<_>>();
    eventually("friend's two connections", || async { friend.connections().await.len() == 2 }).await;
    eventually("stranger's connection", || async { !stranger.connections().await.is_empty() }).await;
    eventually("no pending requests", || async {
        picky.pending_requests().await.is_empty()
            && good.pending_requests().await.is_empty()
            && bad.pending_requests().await.is_empty()
    })
    .await;
    assert_eq!(remotes(friend.remote_identifiers().await), ["good", "picky"]);
    assert_eq!(remotes(stranger.remote_identifiers().await), ["bad"]);
    assert_eq!(remotes(picky.remote_identifiers().await), ["friend"]);
    for c in [friend, stranger] {
        c.stop().await;
    }
    for p in [picky, good, bad] {
        p.stop().await;
    }
}

async fn mandatory_plugins_are_required(bus: Bus, ns: String) {
    let others = [plugin(&bus, &ns, "o1", vec![lowercase()]).await, plugin(&bus, &ns, "o2", vec![lowercase()]).await];
    let c = core(&bus, &ns, "home", lower_req().mandatory(["must"]).minimum(1)).await;
    wait_event(&mut c.events(), "a first connection", |e| matches!(e, OrbiterEvent::ConnectionOpened(_))).await;
    discovers(&bus, &ns, "home", 2).await;
    assert_eq!(c.state(), State::NotCompliant, "the minimum is met but the mandatory plugin is missing");
    let must = plugin(&bus, &ns, "must", vec![lowercase()]).await;
    within("compliance", c.wait_compliant()).await.unwrap();
    assert!(c.remote_identifiers().await.contains(&id("must")));
    c.stop().await;
    for p in others {
        p.stop().await;
    }
    must.stop().await;
}

async fn core_before_plugins(bus: Bus, ns: String) {
    let c = core(&bus, &ns, "home", lower_req().minimum(2)).await;
    discovers(&bus, &ns, "home", 2).await;
    assert_eq!(c.state(), State::NotCompliant);
    let p1 = plugin(&bus, &ns, "p1", vec![lowercase()]).await;
    discovers(&bus, &ns, "home", 2).await;
    assert_eq!(c.state(), State::NotCompliant, "one of two plugins");
    let p2 = plugin(&bus, &ns, "p2", vec![lowercase()]).await;
    within("compliance", c.wait_compliant()).await.unwrap();
    c.stop().await;
    p1.stop().await;
    p2.stop().await;
}

async fn operations_added_and_removed(bus: Bus, ns: String) {
    let p = plugin(&bus, &ns, "multi", vec![lowercase()]).await;
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .require("lowercase", lower_req())
        .require("uppercase", lower_req())
        .start(())
        .await
        .unwrap();
    wait_event(&mut c.events(), "lowercase connected", |e| matches!(e, OrbiterEvent::ConnectionOpened(_))).await;
    assert_eq!(c.state(), State::NotCompliant);
    let upper =
        Operation::new("uppercase", |s: StringMessage, _ctx| async move { Ok(StringMessage(s.0.to_uppercase())) });
    p.add_operation(upper).await.unwrap();
    within("compliance once uppercase is offered", c.wait_compliant()).await.unwrap();
    let out: StringMessage = c.call("uppercase", StringMessage("abc".into()), Target::Any).await.unwrap();
    assert_eq!(out.0, "ABC");
    let mut core_events = c.events();
    let mut plugin_events = p.events();
    p.remove_operation("uppercase").await.unwrap();
    let closed = |e: &OrbiterEvent| matches!(e, OrbiterEvent::ConnectionClosed { connection, .. } if connection.operation == "uppercase");
    wait_event(&mut plugin_events, "closed on the plugin", closed).await;
    wait_event(&mut core_events, "closed on the core", closed).await;
    wait_state(&c, "NOT_COMPLIANT", |s| *s == State::NotCompliant).await;
    assert_eq!(pairs(&p.connections().await), vec![("lowercase".into(), "home".into())]);
    assert_eq!(pairs(&c.connections().await), vec![("lowercase".into(), "multi".into())]);
    c.stop().await;
    p.stop().await;
}

mod v1 {
    use apache_avro::AvroSchema;
    use serde::{Deserialize, Serialize};

    #[derive(AvroSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[avro(namespace = "test")]
    pub struct Person {
        #[avro(default = false)]
        pub name: String,
    }
    orbitalis::impl_message!(Person);
}

mod v2 {
    use apache_avro::AvroSchema;
    use serde::{Deserialize, Serialize};

    /// `v1::Person` with a field added with a default: it reads what v1 wrote.
    #[derive(AvroSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[avro(namespace = "test")]
    pub struct Person {
        #[avro(default = false)]
        pub name: String,
        #[avro(default = "7")]
        pub age: i32,
    }
    orbitalis::impl_message!(Person);
}

mod other {
    use apache_avro::AvroSchema;
    use serde::{Deserialize, Serialize};

    #[derive(AvroSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[avro(namespace = "test")]
    pub struct Animal {
        #[avro(default = false)]
        pub legs: i64,
    }
    orbitalis::impl_message!(Animal);
}

async fn schemas_incompatible_and_evolved(bus: Bus, ns: String) {
    let greet =
        Operation::new(
            "greet",
            |p: v2::Person, _ctx| async move { Ok(StringMessage(format!("{} is {}", p.name, p.age))) },
        );
    let count = Operation::new("greet", |a: other::Animal, _ctx| async move { Ok(StringMessage(a.legs.to_string())) });
    let wrong = plugin(&bus, &ns, "wrong", vec![count]).await;
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .require("greet", Requirement::new().input::<v1::Person>().output::<StringMessage>())
        .start(())
        .await
        .unwrap();
    discovers(&bus, &ns, "home", 3).await;
    assert_eq!(c.state(), State::NotCompliant, "an offer reading another record is not taken");
    assert!(wrong.connections().await.is_empty());
    let evolved = plugin(&bus, &ns, "evolved", vec![greet]).await;
    within("compliance with the evolved reader", c.wait_compliant()).await.unwrap();
    assert_eq!(c.remote_identifiers().await, vec![id("evolved")]);
    let out: StringMessage = c.call("greet", v1::Person { name: "Ada".into() }, Target::Any).await.unwrap();
    assert_eq!(out.0, "Ada is 7", "the plugin resolved v1 into v2 with the default");
    c.stop().await;
    wrong.stop().await;
    evolved.stop().await;
}

/// The same program on MQTT: only the bus changes.
#[cfg(feature = "mqtt")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_core_one_plugin_on_mqtt() {
    one_core_one_plugin(mqtt().await, ns()).await
}
