//! One small record through our `Message` codec beside apache-avro's fastest path with a
//! prebuilt writer and reader, so the cost of what `impl_message!` adds shows as a ratio.
//!
//! Run: `cargo bench --bench avro`.

use std::hint::black_box;
use std::time::Duration;

use apache_avro::reader::datum::SpecificDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{AvroSchema, Schema};
use criterion::{Criterion, criterion_group, criterion_main};
use orbitalis::{Data, Message};
use serde::{Deserialize, Serialize};

#[derive(AvroSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[avro(namespace = "bench.avro")]
struct Reading {
    sensor: String,
    count: i64,
    celsius: f64,
}
orbitalis::impl_message!(Reading);

fn reading() -> Reading {
    Reading { sensor: "kitchen-7".into(), count: 42_000, celsius: 21.5 }
}

/// apache-avro used directly, built once as a careful user would.
struct Raw {
    writer: GenericDatumWriter<'static>,
    reader: SpecificDatumReader<Reading>,
}

impl Raw {
    fn new() -> Self {
        // Leaked: the writer borrows its schema for as long as the bench runs.
        let schema: &'static Schema = Box::leak(Box::new(Reading::get_schema()));
        // Same settings as our codec, so only the code paths differ.
        let writer = GenericDatumWriter::builder(schema).human_readable(false).build().expect("the writer builds");
        let reader =
            SpecificDatumReader::<Reading>::builder().human_readable(false).build().expect("the reader builds");
        Raw { writer, reader }
    }

    fn encode(&self, r: &Reading) -> Vec<u8> {
        let mut out = Vec::new();
        self.writer.write_ser(&mut out, r).expect("the record encodes");
        out
    }

    fn decode(&self, mut datum: &[u8]) -> Reading {
        self.reader.read(&mut datum).expect("the record decodes")
    }
}

fn bench(c: &mut Criterion) {
    let raw = Raw::new();
    let value = reading();
    let ours = value.encode().expect("the record encodes");
    assert_eq!(ours.as_ref(), raw.encode(&value).as_slice(), "both paths must write the same datum");
    assert_eq!(Reading::decode(&ours).expect("the record decodes"), value);

    let mut g = c.benchmark_group("avro/encode+decode");
    g.bench_function("ours Message", |b| {
        b.iter(|| {
            let datum = black_box(&value).encode().unwrap();
            black_box(Reading::decode(&datum).unwrap())
        })
    });
    g.bench_function("raw apache-avro", |b| {
        b.iter(|| {
            let datum = raw.encode(black_box(&value));
            black_box(raw.decode(&datum))
        })
    });
    // What a handler's input and output cost in the runtime: the payload path adds the
    // fingerprint and its check.
    g.bench_function("ours Data payload", |b| {
        b.iter(|| {
            let payload = black_box(&value).to_optional_payload().unwrap();
            black_box(Reading::from_payload(payload.as_ref(), None).unwrap())
        })
    });
    g.finish();

    // Halves, to tell which side a difference comes from.
    let mut g = c.benchmark_group("avro/encode");
    g.bench_function("ours Message", |b| b.iter(|| black_box(&value).encode().unwrap()));
    g.bench_function("raw apache-avro", |b| b.iter(|| raw.encode(black_box(&value))));
    g.finish();
    let mut g = c.benchmark_group("avro/decode");
    g.bench_function("ours Message", |b| b.iter(|| Reading::decode(black_box(&ours)).unwrap()));
    g.bench_function("raw apache-avro", |b| b.iter(|| raw.decode(black_box(&ours))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
