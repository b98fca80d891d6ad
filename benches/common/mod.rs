//! What the benches share: the runtime, the brokers' addresses, arrival counting, latency
//! percentiles, and one publisher → subscriber pair per transport, ours and the raw library's,
//! driven by the same code so that only the transport differs between two figures.

// Each bench uses a different part of this module.
#![allow(dead_code)]

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId};
use futures::StreamExt;
use orbitalis::busline::{Fingerprint, Pattern, SubscribeOptions, Subscription};
use orbitalis::{Bus, Event, Identifier, Payload, Topic};
use tokio::runtime::Runtime;
use tokio::sync::{Mutex, Notify, mpsc};

#[cfg(feature = "mqtt")]
pub mod mqtt;

/// Longest wait for anything: a batch still incomplete after this lost messages.
pub const WAIT: Duration = Duration::from_secs(30);

/// Payload sizes every transport is measured with.
pub const SIZES: [(usize, &str); 2] = [(64, "64B"), (1024, "1KiB")];

/// Whether to measure `transport`: all of them unless `ORBITALIS_BENCH_TRANSPORTS` lists
/// some (comma-separated, for example `nats` or `local,nats`), to profile one alone.
pub fn selected(transport: &str) -> bool {
    match std::env::var("ORBITALIS_BENCH_TRANSPORTS") {
        Ok(list) => list.split(',').any(|t| transport.starts_with(t.trim())),
        Err(_) => true,
    }
}

pub fn runtime() -> Runtime {
    // Two workers: the machine has two cores, which the brokers share.
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("the runtime starts")
}

/// Runs `f` as a task on `rt`'s workers (not on the calling thread, which would add a
/// thread hop to every wake-up) and returns its output.
pub fn on<F>(rt: &Runtime, f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match rt.block_on(rt.spawn(f)) {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Awaits `f` for at most [`WAIT`], panicking with `what` otherwise.
pub async fn within<T>(what: impl fmt::Display, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// A name no other run uses, so benches on shared brokers never hear each other.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

pub fn payload(size: usize) -> Bytes {
    Bytes::from((0..size).map(|i| i as u8).collect::<Vec<u8>>())
}

pub fn nats_url() -> String {
    std::env::var("ORBITALIS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Our NATS transport at its default settings.
pub async fn nats_bus() -> Bus {
    let url = nats_url();
    match orbitalis::NatsBus::connect(&url).await {
        Ok(bus) => bus.into(),
        Err(e) => panic!("cannot reach the NATS server at {url} (set ORBITALIS_NATS_URL): {e}"),
    }
}

/// A plain async-nats client whose per-subscriber buffer is as large as the one `NatsBus`
/// gives its client, so neither side loses messages the other would keep.
pub async fn raw_nats_client() -> async_nats::Client {
    let url = nats_url();
    let capacity = orbitalis::busline::nats::DEFAULT_CLIENT_SUBSCRIPTION_CAPACITY;
    match async_nats::ConnectOptions::new().subscription_capacity(capacity).connect(&url).await {
        Ok(client) => client,
        Err(e) => panic!("cannot reach the NATS server at {url} (set ORBITALIS_NATS_URL): {e}"),
    }
}

/// Counts arrivals and wakes the one waiter when its target is reached, not on every arrival
/// (which would cost the measured path a wake-up per message).
pub struct Arrivals {
    count: AtomicU64,
    target: AtomicU64,
    notify: Notify,
}

impl Default for Arrivals {
    fn default() -> Self {
        Arrivals { count: AtomicU64::new(0), target: AtomicU64::new(u64::MAX), notify: Notify::new() }
    }
}

impl Arrivals {
    pub fn arrive(&self) {
        // SeqCst on both sides: `wait_for` stores the target then reads the count, this adds
        // to the count then reads the target; one of the two must see the other.
        let n = self.count.fetch_add(1, SeqCst) + 1;
        if n >= self.target.load(SeqCst) {
            self.notify.notify_one();
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(SeqCst)
    }

    /// Returns once `target` arrivals were counted in all.
    pub async fn wait_for(&self, target: u64) {
        self.target.store(target, SeqCst);
        let waited = tokio::time::timeout(WAIT, async {
            // `notify_one` leaves a permit when nobody waits yet, so no arrival is missed.
            while self.count.load(SeqCst) < target {
                self.notify.notified().await;
            }
        })
        .await;
        self.target.store(u64::MAX, SeqCst);
        if waited.is_err() {
            panic!("only {} of {target} messages arrived after {WAIT:?}: messages were lost", self.count());
        }
    }
}

/// n, mean, p50 and p99 of a set of timings.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub n: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Summary {
    pub fn of(mut samples: Vec<Duration>) -> Summary {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        // Nearest rank.
        let rank = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
        let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
        Summary { n: samples.len(), mean, p50: rank(0.50), p99: rank(0.99) }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p50 {:>9.1?}  p99 {:>9.1?}  mean {:>9.1?}  (n {})", self.p50, self.p99, self.mean, self.n)
    }
}

fn ratio(ours: Duration, raw: Duration) -> f64 {
    ours.as_secs_f64() / raw.as_secs_f64()
}

/// Times `ours` and `raw` one after the other in `rounds` alternating rounds of `per_round`
/// runs each, so drift on a shared machine weighs on both alike, and prints both summaries
/// and their ratios.
pub async fn compare_latency<A, FA, B, FB>(label: &str, rounds: usize, per_round: usize, mut ours: A, mut raw: B)
where
    A: FnMut() -> FA,
    FA: Future<Output = ()>,
    B: FnMut() -> FB,
    FB: Future<Output = ()>,
{
    let (mut a, mut b) = (Vec::with_capacity(rounds * per_round), Vec::with_capacity(rounds * per_round));
    for _ in 0..rounds {
        for _ in 0..per_round {
            let t = Instant::now();
            ours().await;
            a.push(t.elapsed());
        }
        for _ in 0..per_round {
            let t = Instant::now();
            raw().await;
            b.push(t.elapsed());
        }
    }
    let (a, b) = (Summary::of(a), Summary::of(b));
    println!("{label}");
    println!("  ours  {a}");
    println!("  raw   {b}");
    println!(
        "  ratio ours/raw: p50 {:.2}  p99 {:.2}  mean {:.2}",
        ratio(a.p50, b.p50),
        ratio(a.p99, b.p99),
        ratio(a.mean, b.mean)
    );
}

/// Floods `ours` and `raw` with batches of `n` in `rounds` alternating rounds and prints the
/// median rate of each and their ratio: criterion measures one after the other, which on a
/// shared machine can put them under different loads.
pub async fn compare_flood<O: Pair, R: Pair>(
    label: &str,
    rounds: usize,
    broker: Option<&str>,
    ours: &Arc<O>,
    raw: &Arc<R>,
    payload: &Bytes,
    n: u64,
) {
    compare_flood_sized(label, rounds, broker, (ours, payload), (raw, payload), n).await
}

/// [`compare_flood`] with a payload of its own for each side. Also prints, where Linux tells
/// it, the CPU time spent per message on each side by this process and by the `broker`
/// process (see [`broker_of`]) when it runs on this machine.
pub async fn compare_flood_sized<O: Pair, R: Pair>(
    label: &str,
    rounds: usize,
    broker: Option<&str>,
    (ours, ours_payload): (&Arc<O>, &Bytes),
    (raw, raw_payload): (&Arc<R>, &Bytes),
    n: u64,
) {
    let (mut a, mut b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let (mut cpu_a, mut cpu_b) = (Cpu::zero(), Cpu::zero());
    for _ in 0..rounds {
        let start = Cpu::now(broker);
        a.push(flood(ours.clone(), ours_payload.clone(), n).await);
        let middle = Cpu::now(broker);
        b.push(flood(raw.clone(), raw_payload.clone(), n).await);
        let end = Cpu::now(broker);
        cpu_a.add(&start, &middle);
        cpu_b.add(&middle, &end);
    }
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let (a, b) = (rate(Summary::of(a).p50), rate(Summary::of(b).p50));
    println!("{label}");
    println!("  median over {rounds} alternating batches of {n}: ours {a:.0}/s  raw {b:.0}/s  ours/raw {:.2}", a / b);
    let messages = rounds as u64 * n;
    if let (Some(ours), Some(raw)) = (cpu_a.process, cpu_b.process) {
        println!("  CPU per message, this process: ours {}  raw {}", per(ours, messages), per(raw, messages));
    }
    if let (Some(ours), Some(raw), Some(broker)) = (cpu_a.broker, cpu_b.broker, broker) {
        println!("  CPU per message, {broker}: ours {}  raw {}", per(ours, messages), per(raw, messages));
    }
}

fn per(cpu: Duration, messages: u64) -> String {
    format!("{:.2} µs", cpu.as_secs_f64() * 1e6 / messages as f64)
}

/// The broker process `transport` (a bench's transport name) talks to, whose CPU time the
/// flood comparisons count when it runs on this machine.
pub fn broker_of(transport: &str) -> Option<&'static str> {
    if transport.starts_with("nats") {
        Some("nats-server")
    } else if transport.starts_with("mqtt") {
        Some("mosquitto")
    } else {
        None
    }
}

/// CPU time from Linux's scheduler statistics (nanoseconds, unlike the clock ticks of
/// `/proc/<pid>/stat`), summed over the threads alive when read: a thread that ends between
/// two readings takes its time with it (the benches' threads live for the whole run).
/// `None` where it cannot be read, or when the broker is not found on this machine.
struct Cpu {
    process: Option<Duration>,
    broker: Option<Duration>,
}

impl Cpu {
    fn zero() -> Cpu {
        Cpu { process: Some(Duration::ZERO), broker: Some(Duration::ZERO) }
    }

    /// The time used so far by this process and by every process named `broker`.
    fn now(broker: Option<&str>) -> Cpu {
        let process = tasks_cpu(std::path::Path::new("/proc/self"));
        let Some(broker) = broker else { return Cpu { process, broker: None } };
        let brokers: Vec<_> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .map(|p| p.path())
            .filter(|p| std::fs::read_to_string(p.join("comm")).is_ok_and(|comm| comm.trim() == broker))
            .collect();
        // One unreadable broker makes the sum unknown, not smaller.
        let broker = if brokers.is_empty() { None } else { brokers.iter().map(|p| tasks_cpu(p)).sum() };
        Cpu { process, broker }
    }

    /// Adds what was used between `start` and `end`; a part unknown once stays unknown.
    fn add(&mut self, start: &Cpu, end: &Cpu) {
        let spent =
            |sum: Option<Duration>, s: Option<Duration>, e: Option<Duration>| Some(sum? + e?.saturating_sub(s?));
        self.process = spent(self.process, start.process, end.process);
        self.broker = spent(self.broker, start.broker, end.broker);
    }
}

/// The CPU time of the threads of the process at `proc_dir` (a `/proc/<pid>` directory); a
/// thread that ended while they were read is left out.
fn tasks_cpu(proc_dir: &std::path::Path) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(proc_dir.join("task")).ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// The bytes an event adds around a payload of `size` bytes: what a raw client sends more
/// per message to carry the same payload.
pub fn envelope_overhead(size: usize) -> usize {
    let event = Event::new(Identifier::new("bench").expect("an identifier"))
        .with_payload(Payload::new(Fingerprint::from_u64(1), payload(size)));
    event.encoded_len() - size
}

/// A publisher and a subscriber joined by one transport.
pub trait Pair: Send + Sync + 'static {
    /// Publishes one message carrying `payload`.
    fn publish(&self, payload: &Bytes) -> impl Future<Output = ()> + Send;
    /// Returns once `n` more messages reached the subscriber.
    fn receive(&self, n: u64) -> impl Future<Output = ()> + Send;
}

/// Publishes `n` messages from one task while another receives them; the time until the
/// last one arrived.
pub async fn flood<P: Pair>(pair: Arc<P>, payload: Bytes, n: u64) -> Duration {
    let start = Instant::now();
    let consumer = tokio::spawn({
        let pair = pair.clone();
        async move { pair.receive(n).await }
    });
    let producer = tokio::spawn(async move {
        for _ in 0..n {
            pair.publish(&payload).await;
        }
    });
    for task in [producer, consumer] {
        if let Err(e) = task.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    start.elapsed()
}

/// One message published and received.
pub async fn round_trip<P: Pair>(pair: &P, payload: &Bytes) {
    pair.publish(payload).await;
    pair.receive(1).await;
}

/// Measures batches of `n` messages through `pair`; `g` should count `n` elements.
pub fn bench_flood<P: Pair>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    rt: &Runtime,
    pair: &Arc<P>,
    payload: &Bytes,
    n: u64,
) {
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let (pair, payload) = (pair.clone(), payload.clone());
            on(rt, async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += flood(pair.clone(), payload.clone(), n).await;
                }
                total
            })
        })
    });
}

/// Measures single publish → receive round trips through `pair`.
pub fn bench_round_trip<P: Pair>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    rt: &Runtime,
    pair: &Arc<P>,
    payload: &Bytes,
) {
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let (pair, payload) = (pair.clone(), payload.clone());
            on(rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    round_trip(&*pair, &payload).await;
                }
                start.elapsed()
            })
        })
    });
}

/// Raw tokio: a bounded channel.
pub struct MpscPair {
    tx: mpsc::Sender<Bytes>,
    rx: Mutex<mpsc::Receiver<Bytes>>,
}

impl MpscPair {
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity);
        MpscPair { tx, rx: Mutex::new(rx) }
    }

    /// Two channels with a task passing each message from the first to the second: the
    /// shape of a request and its answer, without any work in between.
    pub fn echo(capacity: usize) -> Self {
        let (tx, mut middle) = mpsc::channel::<Bytes>(capacity);
        let (back, rx) = mpsc::channel(capacity);
        tokio::spawn(async move {
            while let Some(m) = middle.recv().await {
                if back.send(m).await.is_err() {
                    return;
                }
            }
        });
        MpscPair { tx, rx: Mutex::new(rx) }
    }
}

impl Pair for MpscPair {
    async fn publish(&self, payload: &Bytes) {
        self.tx.send(payload.clone()).await.expect("the receiver is alive");
    }

    async fn receive(&self, n: u64) {
        // Locked once per batch, not per message.
        let mut rx = self.rx.lock().await;
        // Bounded like every other pair's batch, so that the guard costs both sides alike.
        within("raw channel messages", async {
            for _ in 0..n {
                rx.recv().await.expect("the sender is alive");
            }
        })
        .await;
    }
}

/// Ours: any [`Bus`], each message a fresh event as an orbiter publishes it.
pub struct BusPair {
    publisher: Bus,
    subscriber: Bus,
    topic: Topic,
    me: Identifier,
    sub: Mutex<Subscription>,
}

impl BusPair {
    /// Subscribes on `subscriber` with a queue of `capacity`; publishes go through `publisher`
    /// (the same bus or another connection to the same broker).
    pub async fn new(publisher: Bus, subscriber: Bus, capacity: usize) -> Self {
        let name = unique("bench.pair.t");
        let topic = Topic::new(&name).expect("a valid topic");
        let pattern = Pattern::new(&name).expect("a valid pattern");
        let options = SubscribeOptions::default().capacity(capacity);
        let sub = subscriber.subscribe_with(&pattern, options).await.expect("the bus subscribes");
        BusPair {
            publisher,
            subscriber,
            topic,
            me: Identifier::new("bench").expect("an identifier"),
            sub: Mutex::new(sub),
        }
    }
}

impl Pair for BusPair {
    async fn publish(&self, payload: &Bytes) {
        let event = Event::new(self.me.clone()).with_payload(Payload::new(Fingerprint::from_u64(1), payload.clone()));
        self.publisher.publish_owned(&self.topic, event).await.expect("the bus publishes");
    }

    async fn receive(&self, n: u64) {
        let mut sub = self.sub.lock().await;
        let got = tokio::time::timeout(WAIT, async {
            for _ in 0..n {
                sub.recv().await.expect("the bus is open");
            }
        })
        .await;
        if got.is_err() {
            panic!("a batch did not arrive within {WAIT:?}; subscriber counters: {:?}", self.subscriber.counters());
        }
    }
}

/// Raw async-nats publish/subscribe.
pub struct RawNatsPair {
    publisher: async_nats::Client,
    subject: async_nats::Subject,
    sub: Mutex<async_nats::Subscriber>,
}

impl RawNatsPair {
    /// Subscribes with `subscriber` (the same client as `publisher` or another connection).
    pub async fn new(publisher: async_nats::Client, subscriber: async_nats::Client) -> Self {
        let subject = async_nats::Subject::from(unique("bench.pair.t"));
        let sub = effective_subscription(&subscriber, &subject).await;
        RawNatsPair { publisher, subject, sub: Mutex::new(sub) }
    }

    /// Publishes with `near` to a task on `far`, which publishes each message back to a
    /// subscription of `near`: the shape of a request and its answer, without any work.
    pub async fn echo(near: async_nats::Client, far: async_nats::Client) -> Self {
        let (there, back) = (async_nats::Subject::from(unique("bench.echo.in")), unique("bench.echo.out"));
        let back = async_nats::Subject::from(back);
        let mut inputs = effective_subscription(&far, &there).await;
        let sub = effective_subscription(&near, &back).await;
        tokio::spawn(async move {
            while let Some(m) = inputs.next().await {
                if far.publish(back.clone(), m.payload).await.is_err() {
                    return;
                }
            }
        });
        RawNatsPair { publisher: near, subject: there, sub: Mutex::new(sub) }
    }
}

async fn effective_subscription(client: &async_nats::Client, subject: &async_nats::Subject) -> async_nats::Subscriber {
    let sub = client.subscribe(subject.clone()).await.expect("the client subscribes");
    // The server answers a request nobody listens to only after it processed every earlier
    // command of the connection, the SUB included: then a publish from anywhere reaches it.
    let probe = client.request(client.new_inbox(), Bytes::new()).await;
    assert!(
        matches!(&probe, Err(e) if e.kind() == async_nats::client::RequestErrorKind::NoResponders),
        "expected the server's no-responders answer, got {probe:?}"
    );
    sub
}

impl Pair for RawNatsPair {
    async fn publish(&self, payload: &Bytes) {
        self.publisher.publish(self.subject.clone(), payload.clone()).await.expect("the client publishes");
    }

    async fn receive(&self, n: u64) {
        let mut sub = self.sub.lock().await;
        within("raw NATS messages", async {
            for _ in 0..n {
                sub.next().await.expect("the subscription is open");
            }
        })
        .await;
    }
}
