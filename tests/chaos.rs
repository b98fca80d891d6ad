//! A property test of the handshake under loss, duplication and reordering (PROTOCOL.md
//! §6.5): whatever happens to the messages, no maximum is ever exceeded and, once the bus
//! heals, no connection is left on one side only.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orbitalis::prelude::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use support::faulty::{FaultyBus, Verdict, kind_of};
use support::*;

const CORE_MAX: usize = 2;
const PLUGIN_MAX: usize = 1;

/// Probabilities, in percent, of what happens to a control message during the storm.
#[derive(Debug, Clone, Copy)]
struct Storm {
    drop: u32,
    duplicate: u32,
    delay: u32,
}

fn faults(storm: Storm, seed: u64, ns: String) -> impl FnMut(&orbitalis::Topic, &orbitalis::Event) -> Verdict + Send {
    let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
    move |topic, _| {
        if matches!(kind_of(topic, &ns), "in" | "out") {
            return Verdict::Deliver;
        }
        let mut rng = rng.lock().unwrap();
        let roll = rng.random_range(0..100);
        if roll < storm.drop {
            Verdict::Drop
        } else if roll < storm.drop + storm.duplicate {
            Verdict::Duplicate
        } else if roll < storm.drop + storm.duplicate + storm.delay {
            Verdict::Delay(Duration::from_millis(rng.random_range(1..15_000)))
        } else {
            Verdict::Deliver
        }
    }
}

async fn maxima_hold(core: &CoreHandle, plugins: &[PluginHandle]) {
    let held = core.connections().await.len() + core.pending_requests().await.len();
    assert!(held <= CORE_MAX, "the core holds {held} slots, above its maximum {CORE_MAX}");
    for p in plugins {
        let used = p.connections().await.len() + p.pending_requests().await.len();
        assert!(used <= PLUGIN_MAX, "{} uses {used} slots, above its maximum {PLUGIN_MAX}", p.id());
    }
}

async fn storm_then_heal(storm: Storm, seed: u64) {
    let (faulty, ns) = (FaultyBus::new(), ns());
    let bus = faulty.bus();
    faulty.set_rule(faults(storm, seed, ns.clone()));
    let mut plugins = Vec::new();
    for name in ["p1", "p2", "p3"] {
        let op = lowercase().policy(Policy::new().maximum(PLUGIN_MAX));
        plugins.push(
            fast(PluginBuilder::new(name).bus(bus.clone()).namespace(&ns)).operation(op).start(()).await.unwrap(),
        );
    }
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .require("lowercase", lower_req().minimum(CORE_MAX).maximum(CORE_MAX))
        .start(())
        .await
        .unwrap();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        maxima_hold(&c, &plugins).await;
    }
    faulty.heal();
    // Delayed messages land, pending requests expire, keepalives reconcile (K6).
    tokio::time::sleep(Duration::from_secs(90)).await;
    maxima_hold(&c, &plugins).await;
    let mut core_side: Vec<_> = c.connections().await.into_iter().map(|k| (k.remote.to_string(), k.id)).collect();
    core_side.sort();
    let mut plugin_side = Vec::new();
    for p in &plugins {
        plugin_side.extend(p.connections().await.into_iter().map(|k| (p.id().to_string(), k.id)));
    }
    plugin_side.sort();
    assert_eq!(core_side, plugin_side, "after healing, both sides hold the same connections");
    assert_eq!(c.state(), State::Compliant, "and the core got its two plugins");
    c.stop().await;
    for p in plugins {
        p.stop().await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_storm_breaks_a_maximum_or_leaves_half_a_connection(
        drop in 0u32..30, duplicate in 0u32..30, delay in 0u32..30, seed in any::<u64>()
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        rt.block_on(storm_then_heal(Storm { drop, duplicate, delay }, seed));
    }
}
