//! Raw rumqttc beside `MqttBus`, configured as `MqttBus` configures its own client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::{Arrivals, Pair, unique, within};

pub fn mqtt_url() -> String {
    std::env::var("ORBITALIS_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into())
}

/// Our MQTT transport publishing at `qos`, otherwise at its defaults.
pub async fn mqtt_bus(qos: rumqttc::QoS) -> orbitalis::Bus {
    let url = mqtt_url();
    match orbitalis::busline::mqtt::MqttBusOptions::new().qos(qos).connect(&url).await {
        Ok(bus) => bus.into(),
        Err(e) => panic!("cannot reach the MQTT broker at {url} (set ORBITALIS_MQTT_URL): {e}"),
    }
}

/// Raw rumqttc: a publishing client and a subscribing client, each with its event loop
/// polled by its own task, as a careful user would run them.
pub struct RawMqttPair {
    client: rumqttc::AsyncClient,
    topic: String,
    qos: rumqttc::QoS,
    arrivals: Arc<Arrivals>,
    taken: AtomicU64,
    loops: Vec<JoinHandle<()>>,
}

impl RawMqttPair {
    /// Publishes at `qos`; subscribes at QoS 0, as `MqttBus` does by default.
    pub async fn new(qos: rumqttc::QoS) -> Self {
        let topic = unique("bench/pair/t");
        let (sub_client, mut sub_loop) = mqtt_client("sub");
        sub_client.subscribe(topic.clone(), rumqttc::QoS::AtMostOnce).await.expect("the request is queued");
        // Effective once the broker acknowledged it.
        mqtt_poll_until(&mut sub_loop, |p| matches!(p, rumqttc::Packet::SubAck(_))).await;
        let arrivals = Arc::new(Arrivals::default());
        let counter = arrivals.clone();
        let sub_task = tokio::spawn(async move {
            loop {
                match sub_loop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(_))) => counter.arrive(),
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("raw MQTT subscriber: {e}");
                        return;
                    }
                }
            }
        });
        let (client, mut pub_loop) = mqtt_client("pub");
        mqtt_poll_until(&mut pub_loop, |p| matches!(p, rumqttc::Packet::ConnAck(_))).await;
        let pub_task = tokio::spawn(async move {
            loop {
                if let Err(e) = pub_loop.poll().await {
                    eprintln!("raw MQTT publisher: {e}");
                    return;
                }
            }
        });
        RawMqttPair { client, topic, qos, arrivals, taken: AtomicU64::new(0), loops: vec![sub_task, pub_task] }
    }
}

impl Drop for RawMqttPair {
    fn drop(&mut self) {
        for task in &self.loops {
            task.abort();
        }
    }
}

impl Pair for RawMqttPair {
    async fn publish(&self, payload: &Bytes) {
        self.client.publish_bytes(self.topic.clone(), self.qos, false, payload.clone()).await.expect("queued");
    }

    async fn receive(&self, n: u64) {
        let target = self.taken.fetch_add(n, SeqCst) + n;
        self.arrivals.wait_for(target).await;
    }
}

fn mqtt_client(role: &str) -> (rumqttc::AsyncClient, rumqttc::EventLoop) {
    let url = mqtt_url();
    let address = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://")).unwrap_or(&url);
    let (host, port) = match address.trim_end_matches('/').rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or_else(|_| panic!("bad port in {url}"))),
        None => (address, 1883),
    };
    let options = rumqttc::MqttOptions::new(unique(&format!("bench-{role}-")), host, port);
    // The request queue `MqttBus` gives its client by default.
    let (client, mut eventloop) =
        rumqttc::AsyncClient::new(options, orbitalis::busline::mqtt::DEFAULT_REQUEST_CAPACITY);
    // As `MqttBus` does: without it small packets wait for Nagle's algorithm.
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    (client, eventloop)
}

async fn mqtt_poll_until(eventloop: &mut rumqttc::EventLoop, done: impl Fn(&rumqttc::Packet) -> bool) {
    let url = mqtt_url();
    within(format!("the MQTT broker at {url}"), async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(p)) if done(&p) => return,
                Ok(_) => {}
                Err(e) => panic!("cannot reach the MQTT broker at {url} (set ORBITALIS_MQTT_URL): {e}"),
            }
        }
    })
    .await
}
