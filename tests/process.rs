//! Death across processes on NATS: a plugin in its own OS process is killed with SIGKILL.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use orbitalis::prelude::*;
use support::*;
use tokio::time::Instant;

const DEAD: Duration = Duration::from_secs(2);
const CHILD_NS: &str = "ORBITALIS_CHILD_NS";

/// Kills the child however the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Not a test of its own: the plugin process that
/// `a_killed_plugin_process_is_dead_and_replaced_on_nats` starts (it re-runs this test
/// binary with `--ignored --exact child_plugin_process`) and kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_killed_plugin_process_is_dead_and_replaced_on_nats"]
async fn child_plugin_process() {
    let ns = std::env::var(CHILD_NS).expect("started by the parent test with ORBITALIS_CHILD_NS");
    let _plugin = fast(PluginBuilder::new("doomed").bus(nats().await).namespace(&ns))
        .dead_after(Some(DEAD))
        .operation(lowercase())
        .start(())
        .await
        .expect("the child plugin starts");
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_plugin_process_is_dead_and_replaced_on_nats() {
    let (bus, ns) = (nats().await, ns());
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args(["--ignored", "--exact", "child_plugin_process", "--nocapture"])
        .env(CHILD_NS, &ns)
        .stdout(Stdio::null())
        .spawn()
        .expect("the child process starts");
    let mut child = Killed(child);
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .dead_after(Some(DEAD))
        .require("lowercase", lower_req())
        .start(())
        .await
        .unwrap();
    within("compliance with the child's plugin", c.wait_compliant()).await.unwrap();
    assert_eq!(c.remote_identifiers().await, vec![id("doomed")]);
    let out: StringMessage = c.call("lowercase", StringMessage("ACROSS".into()), Target::Any).await.unwrap();
    assert_eq!(out.0, "across");
    let mut events = c.events();
    let killed = Instant::now();
    child.0.kill().expect("SIGKILL");
    child.0.wait().unwrap();
    wait_event(&mut events, "the killed plugin declared dead", |e| matches!(e, OrbiterEvent::RemoteDead(_))).await;
    let took = killed.elapsed();
    // Its limit plus one tick, plus slack for a loaded machine's scheduling.
    assert!(took <= DEAD + Duration::from_millis(50) + Duration::from_millis(500), "dead after {took:?}");
    // The event comes as the core closes the connection; the state follows at once.
    wait_state(&c, "NOT_COMPLIANT", |s| *s == State::NotCompliant).await;
    let replacement = plugin(&bus, &ns, "replacement", vec![lowercase()]).await;
    within("compliance with the replacement", c.wait_compliant()).await.unwrap();
    assert_eq!(c.remote_identifiers().await, vec![id("replacement")]);
    c.stop().await;
    replacement.stop().await;
}
