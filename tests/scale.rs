//! Scale and endurance on the in-memory bus with paused time: a thousand plugins, and a
//! long random life of a hundred.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use orbitalis::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use support::*;

#[tokio::test(start_paused = true)]
async fn a_thousand_plugins_and_one_core_reach_compliance() {
    let (bus, ns) = (local(), ns());
    let mut plugins = Vec::new();
    for i in 0..1000 {
        plugins.push(plugin(&bus, &ns, &format!("p{i:04}"), vec![lowercase()]).await);
    }
    let c = core(&bus, &ns, "home", lower_req().minimum(1000)).await;
    within("compliance with 1,000 plugins", c.wait_compliant()).await.unwrap();
    assert_eq!(c.connections().await.len(), 1000);
    assert!(c.pending_requests().await.is_empty());
    let sent = c.execute("lowercase", StringMessage("ALL".into()), Target::All).await.unwrap();
    assert_eq!(sent.len(), 1000);
    c.stop().await;
    for p in plugins {
        p.stop().await;
    }
    assert_eq!(bus.subscription_count(), 0);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Running,
    Crashed,
    Stopped,
}

const DEAD: Duration = Duration::from_secs(10);
/// The slowest valid tick: 10,000 simulated seconds of 101 orbiters cost fewer ticks.
const TICK: Duration = Duration::from_secs(1);

/// What the core reported about crashes.
#[derive(Debug, Default)]
struct Tally {
    crashes_connected: u64,
    dead: u64,
    restarted_after_crash: u64,
}

impl Tally {
    /// Accounts the core's events: a death only ever follows a crash, and a crash is noticed
    /// once, as a death or (restarted in time) as a restart.
    fn drain(
        &mut self,
        events: &mut tokio::sync::broadcast::Receiver<OrbiterEvent>,
        unnoticed: &mut HashMap<String, bool>,
    ) {
        while let Ok(ev) = events.try_recv() {
            match ev {
                OrbiterEvent::RemoteDead(id) => {
                    let crashed = unnoticed.insert(id.to_string(), false).unwrap_or(false);
                    assert!(crashed, "{id} declared dead without having crashed");
                    self.dead += 1;
                }
                OrbiterEvent::RemoteRestarted(id) => {
                    let crashed = unnoticed.insert(id.to_string(), false).unwrap_or(false);
                    self.restarted_after_crash += u64::from(crashed);
                }
                OrbiterEvent::StateChanged { new: State::Stopped, .. } => panic!("the core stopped"),
                _ => {}
            }
        }
    }
}

async fn mortal(bus: &orbitalis::Bus, ns: &str, name: &str) -> PluginHandle {
    PluginBuilder::new(name)
        .bus(bus.clone())
        .namespace(ns)
        .dead_after(Some(DEAD))
        .operation(lowercase())
        .start(())
        .await
        .unwrap()
}

/// 100 plugins start, crash and stop at random for 10,000 simulated seconds; the core ends
/// consistent, with exactly the deaths and restarts the test caused.
#[tokio::test(start_paused = true)]
async fn a_hundred_plugins_live_and_die_for_ten_thousand_seconds() {
    let (bus, ns) = (local(), ns());
    let mut rng = StdRng::seed_from_u64(0x0b17_a115);
    let c = CoreBuilder::new("home")
        .bus(bus.clone())
        .namespace(&ns)
        .tick_interval(TICK)
        .dead_after(Some(DEAD))
        .require("lowercase", lower_req())
        .start(())
        .await
        .unwrap();
    let mut plugins: Vec<(PluginHandle, Life)> = Vec::new();
    for i in 0..100 {
        plugins.push((mortal(&bus, &ns, &format!("p{i:03}")).await, Life::Running));
    }
    let mut events = c.events();
    // Per plugin, a crash of it while connected that the core has not noticed yet.
    let mut unnoticed: HashMap<String, bool> = HashMap::new();
    let mut tally = Tally::default();
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10_000) {
        tokio::time::sleep(Duration::from_secs(rng.random_range(1..=6))).await;
        tally.drain(&mut events, &mut unnoticed);
        let (p, life) = &mut plugins[rng.random_range(0..100)];
        match *life {
            Life::Running => {
                if rng.random_bool(0.5) {
                    let connected = c.connections().await.iter().any(|k| k.remote == *p.id());
                    if connected {
                        tally.crashes_connected += 1;
                        unnoticed.insert(p.id().to_string(), true);
                    }
                    p.abort();
                    *life = Life::Crashed;
                } else {
                    p.stop().await;
                    *life = Life::Stopped;
                }
            }
            Life::Crashed | Life::Stopped => {
                p.start().await.unwrap();
                *life = Life::Running;
            }
        }
    }
    // Let every crash be noticed, every handshake finish and idle remotes be forgotten.
    tokio::time::sleep(DEAD + Duration::from_secs(150)).await;
    let running: Vec<_> =
        plugins.iter().filter(|(_, l)| *l == Life::Running).map(|(p, _)| p.id().to_string()).collect();
    let core_side: HashMap<String, uuid::Uuid> =
        c.connections().await.into_iter().map(|k| (k.remote.to_string(), k.id)).collect();
    let mut connected: Vec<_> = core_side.keys().cloned().collect();
    connected.sort();
    assert_eq!(connected, running, "exactly the running plugins are connected");
    for (p, life) in &plugins {
        if *life == Life::Running {
            let theirs = p.connections().await;
            assert_eq!(theirs.len(), 1, "{} holds one connection", p.id());
            assert_eq!(Some(&theirs[0].id), core_side.get(p.id().as_str()), "both sides name it alike");
            assert!(p.pending_requests().await.is_empty());
        }
    }
    assert!(c.pending_requests().await.is_empty(), "no leaked pending request");
    assert_eq!(c.acquaintance_count().await, running.len(), "no per-remote entry beyond the running plugins");
    tally.drain(&mut events, &mut unnoticed);
    assert!(unnoticed.values().all(|u| !u), "every crash of a connected plugin was noticed");
    assert_eq!(tally.dead + tally.restarted_after_crash, tally.crashes_connected, "each exactly once");
    let k = c.counters();
    assert_eq!(k.remotes_dead, tally.dead);
    assert!(tally.dead > 0 && tally.restarted_after_crash > 0, "both ways of noticing happened: {tally:?}");
    assert_eq!(k.connections_opened - k.connections_closed, running.len() as u64);
    assert_eq!(c.state(), State::Compliant);
    c.stop().await;
    for (p, life) in plugins {
        if life == Life::Running {
            p.stop().await;
        }
    }
    assert_eq!(bus.subscription_count(), 0);
}
