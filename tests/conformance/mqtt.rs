//! What only `MqttBus` has: foreign bytes and topics from raw clients, broker refusals
//! (SUBACK 0x80), the QoS settings, URLs.

use busline::mqtt::{MqttBusOptions, QoS};
use busline::{Bus, Error, MqttBus, Pattern, SubscribeOptions};
use bytes::Bytes;
use rumqttc::{AsyncClient, MqttOptions, Packet};

use crate::common::broker::{free_port, mosquitto};
use crate::common::{Harness, Kind, event, mqtt_bus, mqtt_url, recv_on, within};

/// A plain rumqttc client on `host:port`, its event loop driven by a task.
async fn raw_client(host: &str, port: u16) -> AsyncClient {
    let options = MqttOptions::new(format!("raw-{}", uuid::Uuid::new_v4().simple()), host, port);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    within("the raw client's CONNACK", async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => break,
                Ok(_) => {}
                Err(e) => panic!("raw MQTT client on {host}:{port}: {e}"),
            }
        }
    })
    .await;
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    client
}

fn shared_broker() -> (String, u16) {
    let url = mqtt_url();
    let rest = url.trim_start_matches("mqtt://").trim_start_matches("tcp://").trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().expect("a port in ORBITALIS_MQTT_URL")),
        None => (rest.to_owned(), 1883),
    }
}

/// Bytes that are not an event, and MQTT topics that are not topics, are counted and
/// skipped; the subscription goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_bytes_and_topics_are_counted_and_skipped() {
    let h = Harness::new(Kind::Mqtt);
    let bus: Bus = mqtt_bus().await.into();
    let mut sub = bus.subscribe(&h.pattern("f.*")).await.expect("subscribe");
    let (host, port) = shared_broker();
    let raw = raw_client(&host, port).await;
    let good = event().encode();
    let mut wrong_version = good.to_vec();
    wrong_version[2] = 2;
    let ns = &h.ns;
    for junk in [Bytes::from_static(b"{\"json\":1}"), Bytes::from(wrong_version), good.slice(..good.len() - 1)] {
        raw.publish_bytes(format!("{ns}/f/a"), QoS::AtLeastOnce, false, junk).await.expect("raw publish");
    }
    // One MQTT level each, so `+` matches them, but none is a topic token.
    for topic in [format!("{ns}/f/a.b"), format!("{ns}/f/$x"), format!("{ns}/f/")] {
        raw.publish_bytes(topic, QoS::AtLeastOnce, false, good.clone()).await.expect("raw publish");
    }
    raw.publish_bytes(format!("{ns}/f/b"), QoS::AtLeastOnce, false, good.clone()).await.expect("raw publish");
    let d = recv_on(&bus, &mut sub).await;
    assert_eq!(d.event.encode(), good, "the valid event arrives after the rest");
    assert_eq!(d.topic, h.topic("f.b"));
    let c = bus.counters();
    assert_eq!((c.undecodable, c.bad_magic, c.unsupported_version, c.malformed), (3, 1, 1, 1), "{c:?}");
    assert_eq!(c.invalid_topic, 3, "{c:?}");
    assert_eq!(c.delivered, 1);
}

/// Mosquitto's dynamic-security plugin, the one way to make Mosquitto 2.0 refuse a
/// subscription (its `acl_file` grants every SUBSCRIBE and filters deliveries instead).
fn dynamic_security_plugin() -> std::path::PathBuf {
    ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"]
        .iter()
        .map(|dir| std::path::Path::new(dir).join("mosquitto_dynamic_security.so"))
        .find(|p| p.is_file())
        .expect("mosquitto_dynamic_security.so (Debian's mosquitto package) not found")
}

/// Anonymous clients may subscribe under `allowed/` only.
const DYNSEC: &str = r#"{
  "defaultACLAccess": {"publishClientSend": true, "publishClientReceive": true, "subscribe": false, "unsubscribe": true},
  "clients": [],
  "groups": [{"groupname": "anonymous", "roles": [{"rolename": "limited"}]}],
  "roles": [{"rolename": "limited", "acls": [{"acltype": "subscribePattern", "topic": "allowed/#", "allow": true}]}],
  "anonymousGroup": "anonymous"
}"#;

/// A filter the broker refuses (SUBACK 0x80) is `Error::SubscribeRefused`, again on a retry,
/// and the bus keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_is_an_error() {
    let config = crate::common::broker::write_temp("dynsec.json", DYNSEC);
    let broker = mosquitto(&format!(
        "plugin {}\nplugin_opt_config_file {}\n",
        dynamic_security_plugin().display(),
        config.display()
    ));
    let bus: Bus = MqttBus::connect(&format!("mqtt://127.0.0.1:{}", broker.port)).await.expect("connect").into();
    let denied = Pattern::new("denied.x").unwrap();
    for attempt in 0..2 {
        match within("a refused subscribe", bus.subscribe(&denied)).await {
            Err(Error::SubscribeRefused { pattern, .. }) => assert_eq!(pattern, "denied.x"),
            other => panic!("attempt {attempt}: expected SubscribeRefused, got {other:?}"),
        }
    }
    assert_eq!(bus.subscription_count(), 0, "a refused subscription leaves nothing behind");
    let mut ok =
        within("an allowed subscribe", bus.subscribe(&Pattern::new("allowed.>").unwrap())).await.expect("allowed");
    let e = event();
    bus.publish(&busline::Topic::new("allowed.x").unwrap(), &e).await.expect("publish");
    assert_eq!(recv_on(&bus, &mut ok).await.event, e);
    let _ = std::fs::remove_dir_all(config.parent().expect("a temp dir"));
}

/// An unreachable broker or a bad URL is an error naming the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_an_error_naming_the_url() {
    let url = format!("mqtt://127.0.0.1:{}", free_port());
    match MqttBus::connect(&url).await {
        Err(e @ Error::Connect { .. }) => assert!(e.to_string().contains(&url), "{e}"),
        other => panic!("expected Error::Connect, got {other:?}"),
    }
    for bad in ["nats://127.0.0.1:4222", "mqtt://:1883", "mqtt://host:http"] {
        match MqttBus::connect(bad).await {
            Err(e @ Error::Config(_)) => assert!(e.to_string().contains(bad), "{e}"),
            other => panic!("{bad}: expected Error::Config, got {other:?}"),
        }
    }
}

/// Every supported publish and subscription QoS delivers, and `flush` returns once the broker
/// has acknowledged each publish (QoS 1: PUBACK) or it is written (QoS 0). Publishing at QoS 2
/// is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_qos_delivers_and_flushes() {
    let url = mqtt_url();
    for (publish, subscription) in [
        (QoS::AtMostOnce, QoS::AtMostOnce),
        (QoS::AtMostOnce, QoS::AtLeastOnce),
        (QoS::AtLeastOnce, QoS::AtMostOnce),
        (QoS::AtLeastOnce, QoS::AtLeastOnce),
        (QoS::AtLeastOnce, QoS::ExactlyOnce),
    ] {
        let h = Harness::new(Kind::Mqtt);
        let bus =
            MqttBusOptions::new().qos(publish).subscription_qos(subscription).connect(&url).await.expect("connect");
        let handle: Bus = bus.clone().into();
        let mut sub = handle.subscribe_with(&h.pattern("q"), SubscribeOptions::default()).await.expect("subscribe");
        let sent: Vec<_> = (0..100).map(|_| event()).collect();
        for e in &sent {
            handle.publish(&h.topic("q"), e).await.expect("publish");
        }
        within(&format!("flushing at {publish:?}"), handle.flush()).await.expect("flush");
        let extra = event();
        bus.publish_with_qos(&h.topic("q"), &extra, QoS::AtMostOnce).await.expect("publish_with_qos");
        within("flushing", handle.flush()).await.expect("flush");
        for e in sent.iter().chain([&extra]) {
            assert_eq!(&recv_on(&handle, &mut sub).await.event, e, "{publish:?}/{subscription:?}");
        }
        assert!(matches!(bus.publish_with_qos(&h.topic("q"), &extra, QoS::ExactlyOnce).await, Err(Error::Config(_))));
        within("closing", handle.close()).await.expect("close");
    }
    assert!(matches!(MqttBusOptions::new().qos(QoS::ExactlyOnce).connect(&url).await, Err(Error::Config(_))));
}

/// Dropping the last handle of an `MqttBus` closes it: its subscriptions end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_closes_the_bus() {
    let h = Harness::new(Kind::Mqtt);
    let bus: Bus = mqtt_bus().await.into();
    let mut sub = bus.subscribe(&h.pattern("d")).await.expect("subscribe");
    let clone = bus.clone();
    drop(bus);
    assert_eq!(clone.connection_state(), busline::ConnectionState::Connected, "a clone keeps it open");
    drop(clone);
    match tokio::time::timeout(crate::common::WAIT, sub.recv()).await {
        Ok(None) => {}
        other => panic!("the subscription of a dropped bus gave {other:?}"),
    }
}
