//! Reconnection (PROTOCOL.md §2.6): a bus survives its broker restarting. Each test runs its
//! own broker on a free port (never the shared ones), kills it, starts it again on the same
//! port, and checks that subscriptions made before the restart, and one made during it,
//! receive what is published afterwards.
//!
//! Needs `nats-server` and `mosquitto` on the PATH or in /usr/sbin (`scripts/test.sh`
//! installs them); a missing binary fails the test.

#![cfg(any(feature = "nats", feature = "mqtt"))]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use busline::{Bus, ConnectionState, SubscribeOptions};

use common::{Harness, Kind, WAIT, event, recv_on, wait_until, within};

/// A broker process, killed when the test ends however it ends.
struct Broker {
    child: Child,
    program: PathBuf,
    args: Vec<String>,
    port: u16,
}

impl Broker {
    fn start(name: &str, args: Vec<String>, port: u16) -> Broker {
        let program = find(name);
        let child = spawn(&program, &args);
        let broker = Broker { child, program, args, port };
        broker.wait_listening();
        broker
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.program, &self.args);
        self.wait_listening();
    }

    fn wait_listening(&self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(start.elapsed() < WAIT, "{} does not listen on {addr} after {WAIT:?}", self.program.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(program: &Path, args: &[String]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

fn find(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found on PATH or in /usr/sbin; run scripts/test.sh, which installs it"))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

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
    let port = free_port();
    let broker =
        Broker::start("nats-server", vec!["-a".into(), "127.0.0.1".into(), "-p".into(), port.to_string()], port);
    let url = format!("nats://127.0.0.1:{port}");
    survives_restart(broker, Kind::Nats, || async {
        busline::NatsBus::connect(&url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}")).into()
    })
    .await;
}

#[cfg(feature = "mqtt")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_subscriptions_survive_a_broker_restart() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("busline-mosquitto-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("mosquitto.conf");
    std::fs::write(&config, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"))
        .expect("write mosquitto.conf");
    let broker = Broker::start("mosquitto", vec!["-c".into(), config.display().to_string()], port);
    let url = format!("mqtt://127.0.0.1:{port}");
    survives_restart(broker, Kind::Mqtt, || async {
        busline::MqttBus::connect(&url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}")).into()
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
