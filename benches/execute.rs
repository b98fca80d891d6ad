//! A core and an echo plugin, on the local bus and on NATS, beside the raw bus underneath in
//! the same run:
//!
//! - execute → sink: batches of [`FLOOD`] `core.execute` calls, timed until the core's sink
//!   saw every output; raw: one publish → subscribe hop (tokio mpsc; async-nats with separate
//!   publishing and subscribing connections). Also shown: "ours one hop", our bus alone, to
//!   tell the bus's share from the runtime's, and "raw echo", the raw library there and back
//!   through a task that only passes messages on (execute → sink crosses the bus twice).
//! - call: sequential round trips (criterion mean, and p50/p99 printed) and [`CALLERS`]
//!   concurrent callers; raw: a responder task behind a channel with a oneshot reply, or
//!   async-nats request/reply with a responder on its own connection.
//!
//! Payloads are 64 bytes (`BytesMessage`). The orbiters use default settings except their
//! queue bounds: a flood of [`FLOOD`] inputs needs `data_queue`, `handler_queue` and
//! `sink_queue` raised to that, as a user expecting such bursts would (the defaults, 1,024,
//! drop and count the excess).
//!
//! Run: `cargo bench --bench execute`; NATS at `ORBITALIS_NATS_URL` (default 127.0.0.1:4222).
//! `ORBITALIS_BENCH_TRANSPORTS=local` (or `nats`) measures only that bus.

mod common;

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use orbitalis::prelude::*;
use orbitalis::{Bus, Limits};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

use common::{Arrivals, BusPair, MpscPair, Pair, RawNatsPair};

/// Inputs per execute batch.
const FLOOD: u64 = 10_000;
/// Concurrent callers, and calls each makes per batch.
const CALLERS: usize = 64;
const CALLS_EACH: usize = 50;
/// Alternating rounds and calls per round of the percentile loops.
const ROUNDS: usize = 10;
const PER_ROUND: usize = 200;
/// Alternating batches of the interleaved flood comparison.
const FLOOD_ROUNDS: usize = 20;
const PAYLOAD: usize = 64;
const OPERATION: &str = "echo";
/// Far above any call's normal round trip here, so only lost replies reach it.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// A core connected to a plugin whose handler returns its input; the sink counts outputs.
struct Echo {
    core: CoreHandle,
    _plugin: PluginHandle,
    outputs: Arc<Arrivals>,
    taken: AtomicU64,
    timeouts: AtomicU64,
}

impl Echo {
    async fn start(core_bus: Bus, plugin_bus: Bus) -> Self {
        let ns = common::unique("bx");
        let limits = Limits {
            data_queue: FLOOD as usize,
            handler_queue: FLOOD as usize,
            sink_queue: FLOOD as usize,
            ..Limits::default()
        };
        let echo = Operation::new(OPERATION, |m: BytesMessage, _ctx| async move { Ok(m) });
        let plugin = PluginBuilder::new("echo")
            .bus(plugin_bus)
            .namespace(&ns)
            .limits(limits.clone())
            .operation(echo)
            .start(())
            .await
            .expect("the plugin starts");
        let outputs = Arc::new(Arrivals::default());
        let sink = {
            let outputs = outputs.clone();
            Sink::new(move |_: BytesMessage, _ctx| {
                outputs.arrive();
                std::future::ready(())
            })
        };
        let core = CoreBuilder::new("bench")
            .bus(core_bus)
            .namespace(&ns)
            .limits(limits)
            .require(OPERATION, Requirement::new().input::<BytesMessage>().output::<BytesMessage>())
            .sink(OPERATION, sink)
            .start(())
            .await
            .expect("the core starts");
        common::within("compliance", core.wait_compliant()).await.expect("the core is running");
        Echo { core, _plugin: plugin, outputs, taken: AtomicU64::new(0), timeouts: AtomicU64::new(0) }
    }
}

/// Execute → sink as a publisher → subscriber pair, so the flood driver of the bus bench
/// measures it.
impl Pair for Echo {
    async fn publish(&self, payload: &Bytes) {
        let input = BytesMessage(payload.clone());
        self.core.execute(OPERATION, input, Target::Any).await.expect("the core executes");
    }

    async fn receive(&self, n: u64) {
        let target = self.taken.fetch_add(n, SeqCst) + n;
        self.outputs.wait_for(target).await;
    }
}

/// Something answering one request at a time.
trait Service: Send + Sync + 'static {
    fn call(&self, payload: &Bytes) -> impl Future<Output = ()> + Send;
}

impl Service for Echo {
    async fn call(&self, payload: &Bytes) {
        let input = BytesMessage(payload.clone());
        match self.core.call_with_timeout::<_, BytesMessage>(OPERATION, input, Target::Any, CALL_TIMEOUT).await {
            Ok(out) => {
                black_box(out);
            }
            // Counted rather than fatal, so that one lost reply does not void the whole run;
            // every one stalls its caller for CALL_TIMEOUT and is reported after its group.
            Err(orbitalis::Error::Timeout { .. }) => {
                self.timeouts.fetch_add(1, SeqCst);
            }
            Err(e) => panic!("a call failed: {e}; core counters {:?}", self.core.counters()),
        }
    }
}

impl Echo {
    /// Prints the calls that timed out since the last report, with the core's count of
    /// replies that found no waiting call.
    fn report_timeouts(&self, what: &str) {
        let n = self.timeouts.swap(0, SeqCst);
        if n > 0 {
            println!(
                "{what}: {n} calls timed out after {CALL_TIMEOUT:?} (core late_reply total {}): their replies \
                 arrived before the core had registered the call",
                self.core.counters().late_reply
            );
        }
    }
}

/// Raw tokio: requests over a channel to a responder task, replies on a oneshot.
struct MpscService {
    tx: mpsc::Sender<(Bytes, oneshot::Sender<Bytes>)>,
}

impl MpscService {
    fn start() -> Self {
        let (tx, mut rx) = mpsc::channel::<(Bytes, oneshot::Sender<Bytes>)>(1024);
        tokio::spawn(async move {
            while let Some((payload, reply)) = rx.recv().await {
                let _ = reply.send(payload);
            }
        });
        MpscService { tx }
    }
}

impl Service for MpscService {
    async fn call(&self, payload: &Bytes) {
        let (reply, answer) = oneshot::channel();
        self.tx.send((payload.clone(), reply)).await.expect("the responder is alive");
        black_box(answer.await.expect("the responder answers"));
    }
}

/// Raw async-nats request/reply, the responder on its own connection.
struct RawNatsService {
    requester: async_nats::Client,
    subject: async_nats::Subject,
}

impl RawNatsService {
    async fn start() -> Self {
        let responder = common::raw_nats_client().await;
        let subject = async_nats::Subject::from(common::unique("bench.echo.s"));
        let mut requests = responder.subscribe(subject.clone()).await.expect("the responder subscribes");
        responder.flush().await.expect("the responder flushes");
        tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                if let Some(reply) = msg.reply {
                    responder.publish(reply, msg.payload).await.expect("the responder replies");
                }
            }
        });
        let requester = common::raw_nats_client().await;
        // Until the responder's subscription is effective the server says nobody listens.
        common::within("the raw responder", async {
            while requester.request(subject.clone(), Bytes::new()).await.is_err() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        RawNatsService { requester, subject }
    }
}

impl Service for RawNatsService {
    async fn call(&self, payload: &Bytes) {
        black_box(self.requester.request(self.subject.clone(), payload.clone()).await.expect("the request succeeds"));
    }
}

/// [`CALLERS`] tasks each making [`CALLS_EACH`] calls one after the other.
async fn call_flood<S: Service>(service: Arc<S>, payload: Bytes) -> Duration {
    let start = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (service, payload) = (service.clone(), payload.clone());
            tokio::spawn(async move {
                for _ in 0..CALLS_EACH {
                    service.call(&payload).await;
                }
            })
        })
        .collect();
    for caller in callers {
        if let Err(e) = caller.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    start.elapsed()
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g
}

fn bench_calls<S: Service>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, rt: &Runtime, service: &Arc<S>) {
    let payload = common::payload(PAYLOAD);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let (service, payload) = (service.clone(), payload.clone());
            common::on(rt, async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += call_flood(service.clone(), payload.clone()).await;
                }
                total
            })
        })
    });
}

fn bench_sequential_calls<S: Service>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, rt: &Runtime, service: &Arc<S>) {
    let payload = common::payload(PAYLOAD);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let (service, payload) = (service.clone(), payload.clone());
            common::on(rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    service.call(&payload).await;
                }
                start.elapsed()
            })
        })
    });
}

/// What the orbiters are compared with on one bus.
struct Baselines<H, R, E, S> {
    /// Our bus alone, one publish → subscribe hop.
    one_hop: Arc<H>,
    /// The raw library, one hop.
    raw_hop: Arc<R>,
    /// The raw library, there and back through a task that only passes messages on: the
    /// least any execute → sink can cost, as it crosses the bus twice.
    raw_echo: Arc<E>,
    /// The raw library answering requests.
    raw_service: Arc<S>,
}

fn compare<H: Pair, R: Pair, E: Pair, S: Service>(
    c: &mut Criterion,
    rt: &Runtime,
    bus: &str,
    echo: Arc<Echo>,
    base: Baselines<H, R, E, S>,
) {
    let Baselines { one_hop, raw_hop, raw_echo, raw_service } = base;
    let payload = common::payload(PAYLOAD);
    let mut g = group(c, &format!("execute/{bus}/flood"));
    g.throughput(Throughput::Elements(FLOOD));
    common::bench_flood(&mut g, BenchmarkId::from_parameter("ours execute→sink"), rt, &echo, &payload, FLOOD);
    common::bench_flood(&mut g, BenchmarkId::from_parameter("ours one hop"), rt, &one_hop, &payload, FLOOD);
    common::bench_flood(&mut g, BenchmarkId::from_parameter("raw one hop"), rt, &raw_hop, &payload, FLOOD);
    common::bench_flood(&mut g, BenchmarkId::from_parameter("raw echo"), rt, &raw_echo, &payload, FLOOD);
    g.finish();

    let mut g = group(c, &format!("execute/{bus}/call"));
    bench_sequential_calls(&mut g, "ours call", rt, &echo);
    bench_sequential_calls(&mut g, "raw request", rt, &raw_service);
    g.finish();
    echo.report_timeouts(&format!("execute/{bus}/call"));

    let mut g = group(c, &format!("execute/{bus}/call-{CALLERS}-callers"));
    g.throughput(Throughput::Elements((CALLERS * CALLS_EACH) as u64));
    bench_calls(&mut g, "ours call", rt, &echo);
    bench_calls(&mut g, "raw request", rt, &raw_service);
    g.finish();
    echo.report_timeouts(&format!("execute/{bus}/call-{CALLERS}-callers"));

    let flood = format!("execute/{bus}/flood: execute→sink (ours) vs one raw hop");
    let echoed = format!("execute/{bus}/flood: execute→sink (ours) vs the raw echo");
    let title = format!("execute/{bus}/call round trip, {PAYLOAD} B");
    let broker = common::broker_of(bus);
    common::on(rt, async move {
        common::compare_flood(&flood, FLOOD_ROUNDS, broker, &echo, &raw_hop, &payload, FLOOD).await;
        common::compare_flood(&echoed, FLOOD_ROUNDS, broker, &echo, &raw_echo, &payload, FLOOD).await;
        common::compare_latency(&title, ROUNDS, PER_ROUND, || echo.call(&payload), || raw_service.call(&payload)).await;
        echo.report_timeouts(&title);
    });
}

fn local(c: &mut Criterion) {
    if !common::selected("local") {
        return;
    }
    let rt = common::runtime();
    let (echo, base) = rt.block_on(async {
        let bus: Bus = LocalBus::new().into();
        let echo = Echo::start(bus.clone(), bus.clone()).await;
        let base = Baselines {
            one_hop: Arc::new(BusPair::new(bus.clone(), bus, FLOOD as usize).await),
            raw_hop: Arc::new(MpscPair::new(1024)),
            raw_echo: Arc::new(MpscPair::echo(1024)),
            raw_service: Arc::new(MpscService::start()),
        };
        (echo, base)
    });
    compare(c, &rt, "local", Arc::new(echo), base);
}

fn nats(c: &mut Criterion) {
    if !common::selected("nats") {
        return;
    }
    let rt = common::runtime();
    // Core and plugin on separate connections, as separate processes would be; the raw
    // sides likewise.
    let (echo, base) = rt.block_on(async {
        let (core_bus, plugin_bus) = (common::nats_bus().await, common::nats_bus().await);
        let echo = Echo::start(core_bus.clone(), plugin_bus.clone()).await;
        let (near, far) = (common::raw_nats_client().await, common::raw_nats_client().await);
        let base = Baselines {
            one_hop: Arc::new(BusPair::new(core_bus, plugin_bus, FLOOD as usize).await),
            raw_hop: Arc::new(RawNatsPair::new(near.clone(), far.clone()).await),
            raw_echo: Arc::new(RawNatsPair::echo(near, far).await),
            raw_service: Arc::new(RawNatsService::start().await),
        };
        (echo, base)
    });
    compare(c, &rt, "nats", Arc::new(echo), base);
}

criterion_group!(benches, local, nats);
criterion_main!(benches);
