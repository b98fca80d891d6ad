//! Time from a core's start to COMPLIANT with plugins already running: 1, 50 and 1,000
//! plugins on the local bus, 50 on NATS (each plugin on its own connection, as separate
//! processes would be).
//!
//! The plugins start once per configuration, in a namespace of their own; each iteration
//! starts a core with a fresh identifier, waits until it is compliant, and stops it (the
//! stop is not timed). Two requirements: the default (one plugin needed: the first
//! connection makes the core compliant while the others still answer), and one needing
//! every plugin (the whole crowd handshaken).
//!
//! So many cores in so little time would fill the plugins' memory of remotes, so the plugins
//! forget departed cores after 1 s; `handshake/local-full-table` measures one plugin with the
//! defaults after it met 10,000 cores.
//!
//! Run: `cargo bench --bench handshake`; NATS at `ORBITALIS_NATS_URL` (default 127.0.0.1:4222).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use orbitalis::prelude::*;
use orbitalis::{Bus, Limits, Timing};

const OPERATION: &str = "echo";

/// Plugins offering [`OPERATION`] and a bus for the cores that come and go.
struct Crowd {
    core_bus: Bus,
    namespace: String,
    plugins: Vec<PluginHandle>,
    next_core: AtomicU64,
}

impl Crowd {
    /// `n` plugins, each on the bus `plugin_bus` returns for it; `defaults`: with the default
    /// memory of remotes, else see below.
    async fn start<F, Fut>(n: usize, core_bus: Bus, plugin_bus: F, defaults: bool) -> Self
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Bus>,
    {
        let namespace = common::unique("hs");
        let mut plugins = Vec::with_capacity(n);
        // A bench starts thousands of cores a second against the same plugins: with the
        // defaults (remembered 120 s, at most 10,000) a plugin's table fills within seconds and
        // every new core then pays for an eviction, which `local_full_table` measures apart.
        // Forgetting departed cores after 1 s, with room for more, keeps the rest on the
        // handshake itself.
        let (limits, ttl) = if defaults {
            (Limits::default(), Timing::default().acquaintance_ttl)
        } else {
            (Limits { max_acquaintances: 100_000, ..Limits::default() }, Duration::from_secs(1))
        };
        for i in 0..n {
            let echo = Operation::new(OPERATION, |m: BytesMessage, _ctx| async move { Ok(m) });
            let plugin = PluginBuilder::new(format!("p{i}"))
                .bus(plugin_bus().await)
                .namespace(&namespace)
                .limits(limits.clone())
                .acquaintance_ttl(ttl)
                .operation(echo)
                .start(())
                .await
                .expect("the plugin starts");
            plugins.push(plugin);
        }
        Crowd { core_bus, namespace, plugins, next_core: AtomicU64::new(0) }
    }

    /// Starts a new core needing `minimum` plugins and returns how long it took to become
    /// compliant; the core is stopped before returning.
    async fn cycle(&self, minimum: usize) -> Duration {
        let id = format!("core{}", self.next_core.fetch_add(1, Relaxed));
        let requirement = Requirement::new().input::<BytesMessage>().output::<BytesMessage>().minimum(minimum);
        let start = Instant::now();
        let core = CoreBuilder::new(&id)
            .bus(self.core_bus.clone())
            .namespace(&self.namespace)
            .require(OPERATION, requirement)
            .start(())
            .await
            .expect("the core starts");
        common::within(format!("{id} to be compliant"), core.wait_compliant()).await.expect("the core runs");
        let took = start.elapsed();
        common::within(format!("{id} to stop"), core.stop()).await;
        took
    }
}

/// Criterion's run of one configuration: `measurement` bounds the timed part only, and each
/// iteration also pays an untimed stop, so large crowds get less.
fn measure(c: &mut Criterion, rt: &tokio::runtime::Runtime, bus: &str, crowd: Crowd, measurement: Duration) {
    let n = crowd.plugins.len();
    let crowd = Arc::new(crowd);
    let mut g = c.benchmark_group(format!("handshake/{bus}"));
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.warm_up_time(measurement / 4).measurement_time(measurement);
    let needs = [("first", 1), ("all", n)];
    for (label, minimum) in needs.into_iter().take(if n > 1 { 2 } else { 1 }) {
        g.bench_function(BenchmarkId::new(format!("{label} of"), n), |b| {
            b.iter_custom(|iters| {
                let crowd = crowd.clone();
                common::on(rt, async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += crowd.cycle(minimum).await;
                    }
                    total
                })
            })
        });
    }
    g.finish();
    let crowd = Arc::into_inner(crowd).expect("the benches are done with the crowd");
    rt.block_on(async {
        for p in crowd.plugins {
            p.stop().await;
        }
    });
}

fn local(c: &mut Criterion) {
    for (n, measurement) in [(1, 2), (50, 2), (1000, 3)] {
        let rt = common::runtime();
        let bus: Bus = LocalBus::new().into();
        let crowd = rt.block_on(Crowd::start(n, bus.clone(), || std::future::ready(bus.clone()), false));
        measure(c, &rt, "local", crowd, Duration::from_secs(measurement));
    }
}

/// One plugin with the default memory of remotes, after it met as many cores as it may
/// remember: from then on each new core makes it evict one.
fn local_full_table(c: &mut Criterion) {
    let rt = common::runtime();
    let bus: Bus = LocalBus::new().into();
    let crowd = rt.block_on(async {
        let crowd = Crowd::start(1, bus.clone(), || std::future::ready(bus.clone()), true).await;
        for _ in 0..Limits::default().max_acquaintances {
            crowd.cycle(1).await;
        }
        crowd
    });
    measure(c, &rt, "local-full-table", crowd, Duration::from_secs(2));
}

fn nats(c: &mut Criterion) {
    let rt = common::runtime();
    let crowd = rt.block_on(async { Crowd::start(50, common::nats_bus().await, common::nats_bus, false).await });
    measure(c, &rt, "nats", crowd, Duration::from_secs(2));
}

criterion_group!(benches, local, local_full_table, nats);
criterion_main!(benches);
