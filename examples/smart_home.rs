//! The smart home of the design sketch, on the in-memory bus: two lamps (plugins) offering
//! `turn_on`, `get_status` and a periodic `power` reading, and a home (core) that requires
//! them, switches a lamp on, asks for statuses and watches the power.
//!
//! ```text
//! cargo run --example smart_home
//! ```

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use apache_avro::AvroSchema;
use orbitalis::prelude::*;
use orbitalis::{Error, Identifier};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// What a lamp reports about itself.
#[derive(AvroSchema, Serialize, Deserialize, Message, Clone, Debug)]
#[avro(namespace = "home")]
struct Status {
    lamp: String,
    on: bool,
}

#[derive(Default)]
struct Lamp {
    on: AtomicBool,
}

#[plugin]
impl Lamp {
    /// No argument: an EMPTY input; no return value: a NONE output. Only the home may
    /// switch lamps on.
    #[operation(name = "turn_on", policy = Policy::allowlist(["home"]))]
    async fn turn_on(&self) {
        self.on.store(true, Relaxed);
    }

    /// The name defaults to the method's; the context tells which lamp answers.
    #[operation]
    async fn get_status(&self, ctx: &OperationContext) -> Status {
        Status { lamp: ctx.plugin_id().to_string(), on: self.on.load(Relaxed) }
    }

    /// No input and a period: pushed to every connected core each second.
    #[operation(period = "1s")]
    async fn power(&self) -> Float64 {
        Float64(if self.on.load(Relaxed) { 9.5 } else { 0.0 })
    }
}

struct Home {
    readings: mpsc::UnboundedSender<(String, f64)>,
}

#[core]
impl Home {
    #[sink("power")]
    async fn on_power(&self, watts: Float64, ctx: &SinkContext) {
        println!("  power: {} draws {} W", ctx.plugin, watts.0);
        let _ = self.readings.send((ctx.plugin.to_string(), watts.0));
    }

    /// Receives the outputs of `execute("get_status", ...)`; awaited calls get theirs back.
    #[sink("get_status")]
    async fn on_status(&self, status: Status) {
        println!("  status (from execute): {} is {}", status.lamp, if status.on { "on" } else { "off" });
    }

    #[hook]
    async fn on_event(&self, event: OrbiterEvent) {
        match event {
            OrbiterEvent::StateChanged { old, new } => println!("  home: {old} -> {new}"),
            OrbiterEvent::ConnectionOpened(c) => println!("  home: connected to {} for {}", c.remote, c.operation),
            _ => {}
        }
    }
}

/// Bounds every wait, so that a broken setup ends with an error instead of hanging.
async fn within<T>(what: &str, f: impl Future<Output = T>) -> Result<T, Error> {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .map_err(|_| Error::InvalidArgument(format!("timed out waiting for {what}")))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let bus = LocalBus::new();
    println!("starting lamp-x and lamp-y");
    let lamp_x = PluginBuilder::new("lamp-x").bus(bus.clone()).start(Lamp::default()).await?;
    let lamp_y = PluginBuilder::new("lamp-y").bus(bus.clone()).start(Lamp::default()).await?;

    println!("starting the home");
    let (readings, mut received) = mpsc::unbounded_channel();
    let home = CoreBuilder::new("home")
        .bus(bus.clone())
        .require("turn_on", Requirement::new().mandatory(["lamp-x"]).minimum(1).input::<Empty>())
        .require("get_status", Requirement::new().minimum(2).input::<Empty>().output::<Status>())
        .require("power", Requirement::new().minimum(2).no_input().output::<Float64>())
        .start(Home { readings })
        .await?;
    within("compliance", home.wait_compliant()).await??;

    println!("calling turn_on on lamp-x");
    let () = home.call("turn_on", Empty, Target::plugin("lamp-x")?).await?;

    println!("executing get_status on every lamp");
    let sent = home.execute("get_status", Empty, Target::All).await?;
    println!("  sent to {}", sent.iter().map(Identifier::as_str).collect::<Vec<_>>().join(", "));

    println!("calling get_status on every lamp");
    let mut statuses: Vec<_> = home.call_all::<_, Status>("get_status", Empty).await?.into_iter().collect();
    statuses.sort_by(|a, b| a.0.cmp(&b.0));
    for (lamp, status) in statuses {
        println!("  {lamp}: {}", if status?.on { "on" } else { "off" });
    }

    println!("waiting for lamp-x to report its power");
    within("a reading of lamp-x", async {
        while let Some((lamp, watts)) = received.recv().await {
            if lamp == "lamp-x" && watts > 0.0 {
                return;
            }
        }
    })
    .await?;

    println!("a guest core may not switch lamps on (the allowlist says home only)");
    let guest = CoreBuilder::new("guest")
        .bus(bus)
        .require("turn_on", Requirement::new().minimum(1).input::<Empty>())
        .start(())
        .await?;
    let admitted = tokio::time::timeout(Duration::from_millis(500), guest.wait_compliant()).await.is_ok();
    println!("  guest admitted: {admitted}, state {}", guest.state());

    println!("stopping everything");
    guest.stop().await;
    home.stop().await;
    lamp_x.stop().await;
    lamp_y.stop().await;
    println!("stopped: home {}, lamp-x {}, lamp-y {}", home.state(), lamp_x.state(), lamp_y.state());
    Ok(())
}
