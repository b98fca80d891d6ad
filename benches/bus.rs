//! Publish → receive on each transport beside the raw library it wraps, in the same run:
//! `LocalBus` vs a tokio mpsc channel, `NatsBus` vs async-nats, `MqttBus` vs rumqttc.
//!
//! - flood: batches of [`BATCH`] messages from one producer task to one consumer task, timed
//!   until the last one arrived (criterion's throughput is messages per second);
//! - latency: one message published, then received by the same task; criterion gives the
//!   mean, and a separate loop prints p50/p99 of ours and raw with their ratios.
//!
//! The flood comparisons also print the CPU time per message on each side (on Linux) of this
//! process and of the transport's broker when it runs on this machine, and on NATS and MQTT
//! a second comparison with the raw client sending payloads as large as our events (the
//! payload plus the envelope).
//!
//! Our side publishes a fresh event per message (new id and timestamp, the payload as its
//! datum: about 45 bytes of envelope around it); the raw side sends the bare payload.
//! Our subscriptions get a queue of one batch: a bus publisher never waits for a subscriber
//! (it drops and counts instead), so a flood needs room that a bounded channel gets from
//! back-pressure.
//!
//! Run: `cargo bench --features mqtt --bench bus` (without `mqtt` the MQTT part is skipped);
//! brokers at `ORBITALIS_NATS_URL` / `ORBITALIS_MQTT_URL`, default 127.0.0.1:4222 / :1883.
//! `ORBITALIS_BENCH_TRANSPORTS=nats` (or `local`, `mqtt`, `mqtt-qos0`...) measures only those.

mod common;

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

use common::{BusPair, MpscPair, Pair, RawNatsPair, SIZES};

/// Messages per flood batch.
const BATCH: u64 = 10_000;
/// Capacity of the raw channel, as in the figure this bench is compared with.
const MPSC_CAPACITY: usize = 1024;
/// Alternating rounds and round trips per round of the percentile loops.
const ROUNDS: usize = 10;
const PER_ROUND: usize = 300;
/// Alternating batches of the interleaved flood comparison.
const FLOOD_ROUNDS: usize = 30;

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    // Each iteration is a whole batch or a network round trip: few, long samples.
    g.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g
}

/// Flood and latency of `ours` beside `raw`, for every payload size. On a network transport
/// (one with a broker), the flood is also compared with the raw client sending payloads as
/// large as our events, which tells the cost of the envelope's bytes from the cost of our code.
fn compare<O: Pair, R: Pair>(c: &mut Criterion, rt: &Runtime, transport: &str, ours: Arc<O>, raw: Arc<R>) {
    let mut g = group(c, &format!("bus/{transport}/flood"));
    g.throughput(Throughput::Elements(BATCH));
    for (size, label) in SIZES {
        let payload = common::payload(size);
        common::bench_flood(&mut g, BenchmarkId::new("ours", label), rt, &ours, &payload, BATCH);
        common::bench_flood(&mut g, BenchmarkId::new("raw", label), rt, &raw, &payload, BATCH);
    }
    g.finish();

    let mut g = group(c, &format!("bus/{transport}/latency"));
    for (size, label) in SIZES {
        let payload = common::payload(size);
        common::bench_round_trip(&mut g, BenchmarkId::new("ours", label), rt, &ours, &payload);
        common::bench_round_trip(&mut g, BenchmarkId::new("raw", label), rt, &raw, &payload);
    }
    g.finish();

    for (size, label) in SIZES {
        let (ours, raw, payload) = (ours.clone(), raw.clone(), common::payload(size));
        let flood = format!("bus/{transport}/flood/{label}");
        let title = format!("bus/{transport}/latency/{label} publish → receive");
        let broker = common::broker_of(transport);
        common::on(rt, async move {
            common::compare_flood(&flood, FLOOD_ROUNDS, broker, &ours, &raw, &payload, BATCH).await;
            if broker.is_some() {
                let sized = common::payload(size + common::envelope_overhead(size));
                let label = format!("{flood}, raw sending {} B (our event's size)", sized.len());
                common::compare_flood_sized(&label, FLOOD_ROUNDS, broker, (&ours, &payload), (&raw, &sized), BATCH)
                    .await;
            }
            common::compare_latency(
                &title,
                ROUNDS,
                PER_ROUND,
                || common::round_trip(&*ours, &payload),
                || common::round_trip(&*raw, &payload),
            )
            .await
        });
    }
}

fn local(c: &mut Criterion) {
    if !common::selected("local") {
        return;
    }
    let rt = common::runtime();
    let ours = rt.block_on(async {
        let bus: orbitalis::Bus = orbitalis::LocalBus::new().into();
        BusPair::new(bus.clone(), bus, BATCH as usize).await
    });
    compare(c, &rt, "local", Arc::new(ours), Arc::new(MpscPair::new(MPSC_CAPACITY)));
}

fn nats(c: &mut Criterion) {
    if !common::selected("nats") {
        return;
    }
    let rt = common::runtime();
    // One connection each, publishing and subscribing on it, as one NatsBus does.
    let (ours, raw) = rt.block_on(async {
        let bus = common::nats_bus().await;
        let client = common::raw_nats_client().await;
        (BusPair::new(bus.clone(), bus, BATCH as usize).await, RawNatsPair::new(client.clone(), client).await)
    });
    compare(c, &rt, "nats", Arc::new(ours), Arc::new(raw));
}

#[cfg(feature = "mqtt")]
fn mqtt(c: &mut Criterion) {
    use common::mqtt::{RawMqttPair, mqtt_bus};
    use rumqttc::QoS;

    let rt = common::runtime();
    // QoS 1 is MqttBus's default; QoS 0 is the figure measured with rumqttc before. Both
    // sides subscribe at QoS 0 (MqttBus's default) and use separate publishing and
    // subscribing connections.
    for (qos, label) in [(QoS::AtLeastOnce, "qos1"), (QoS::AtMostOnce, "qos0")] {
        if !common::selected(&format!("mqtt-{label}")) {
            continue;
        }
        let (ours, raw) = rt.block_on(async {
            let ours = BusPair::new(mqtt_bus(qos).await, mqtt_bus(qos).await, BATCH as usize).await;
            (ours, RawMqttPair::new(qos).await)
        });
        compare(c, &rt, &format!("mqtt-{label}"), Arc::new(ours), Arc::new(raw));
    }
}

#[cfg(not(feature = "mqtt"))]
fn mqtt(_: &mut Criterion) {
    eprintln!("bus/mqtt skipped: build with `--features mqtt` to compare MqttBus with rumqttc");
}

criterion_group!(benches, local, nats, mqtt);
criterion_main!(benches);
