//! Writes the seed corpora: valid inputs of every target, in the layout each reads.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seed [-- <corpus dir>]
//! ```
//!
//! The directory defaults to `fuzz/corpus`; each target gets `<dir>/<target>/`. Files are
//! named after what they hold and overwritten on every run, so re-seeding never piles up
//! copies next to what the fuzzer found.

use std::fs;
use std::path::{Path, PathBuf};

use busline::Event;
use orbitalis_fuzz::control::{join, join_raw};
use orbitalis_fuzz::hex;
use orbitalis_fuzz::payload::{Case, RECORD_V1, Record, records};
use orbitalis_fuzz::samples::{self, GOLDEN_KEEPALIVE_DATUM, SCHEMA_TEXTS};
use orbitalis_schemas::protocol::{Control, MessageKind, ProtocolMessage, Request};
use orbitalis_schemas::{
    Bool, BytesMessage, Float32, Float64, Int32, Int64, Message, Schema, StringMessage, limits::Limits,
};

struct Corpus {
    dir: PathBuf,
    written: usize,
}

impl Corpus {
    fn new(root: &Path, target: &str) -> Corpus {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Corpus { dir, written: 0 }
    }

    fn put(&mut self, name: &str, bytes: &[u8]) {
        let path = self.dir.join(format!("seed-{name}"));
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        self.written += 1;
    }

    fn done(self) {
        println!("{:>4} seeds in {}", self.written, self.dir.display());
    }
}

fn main() {
    let root =
        std::env::args_os().nth(1).map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"), PathBuf::from);
    let controls = samples::controls();
    // A seed that does not decode would start the fuzzer somewhere else than intended.
    for (name, c) in &controls {
        let back = Control::decode(&c.to_payload(), &Limits::default());
        assert_eq!(back.as_ref(), Ok(c), "sample {name} does not round-trip");
    }

    let mut envelope = Corpus::new(&root, "envelope");
    for (name, bytes) in samples::events() {
        Event::decode(&bytes.clone().into(), usize::MAX).unwrap_or_else(|e| panic!("event {name}: {e}"));
        envelope.put(&name, &bytes);
    }
    envelope.done();

    let mut control = Corpus::new(&root, "control");
    for (name, c) in &controls {
        control.put(name, &join(c.kind(), &c.encode()));
    }
    control.put("golden-keepalive", &join(MessageKind::Keepalive, &hex(GOLDEN_KEEPALIVE_DATUM)));
    // The Keepalive's datum under a fingerprint that names nothing: check 8's refusal.
    control.put("unknown-fingerprint", &join_raw(busline::Fingerprint([0xee; 8]), &hex(GOLDEN_KEEPALIVE_DATUM)));
    // A valid datum of another kind under Request's fingerprint: a sender's likely mistake.
    let keepalive = controls.iter().find(|(n, _)| n == "keepalive-rich").expect("sampled");
    control.put("kind-mismatch", &join(Request::KIND, &keepalive.1.encode()));
    control.done();

    let mut schema = Corpus::new(&root, "schema");
    for (k, text) in SCHEMA_TEXTS.iter().enumerate() {
        schema.put(&format!("text-{k:02}"), text.as_bytes());
    }
    for kind in MessageKind::ALL {
        schema.put(&format!("avsc-{}", kind.name()), kind.schema_text().as_bytes());
    }
    schema.put("record-v1", RECORD_V1.as_bytes());
    for (name, s) in [("record", Record::schema()), ("int64", Int64::schema())] {
        schema.put(&format!("derived-{name}"), s.expect("valid").text().as_bytes());
    }
    schema.done();

    let mut payload = Corpus::new(&root, "payload");
    let mut put = |case: Case, name: &str, datum: Vec<u8>| payload.put(&format!("{case:?}-{name}"), &case.join(&datum));
    for (k, s) in ["", "HI", "ünïcode", "\u{10ffff}"].into_iter().enumerate() {
        put(Case::String, &k.to_string(), encode(StringMessage(s.into())));
        put(Case::StringAsBytes, &k.to_string(), encode(StringMessage(s.into())));
    }
    for (k, b) in [vec![], vec![0, 0xff], vec![0xc3, 0x28]].into_iter().enumerate() {
        put(Case::Bytes, &k.to_string(), encode(BytesMessage(b.clone().into())));
        put(Case::BytesAsString, &k.to_string(), encode(BytesMessage(b.into())));
    }
    for v in [0, -1, i32::MIN, i32::MAX] {
        put(Case::Int32, &v.to_string(), encode(Int32(v)));
        put(Case::IntAsInt64, &v.to_string(), encode(Int32(v)));
        put(Case::IntAsFloat32, &v.to_string(), encode(Int32(v)));
    }
    for v in [0, i64::MIN, i64::MAX] {
        put(Case::Int64, &v.to_string(), encode(Int64(v)));
        put(Case::LongAsFloat64, &v.to_string(), encode(Int64(v)));
    }
    for v in [0.0, -1.5, f32::NAN, f32::NEG_INFINITY] {
        put(Case::Float32, &format!("{v:?}"), encode(Float32(v)));
        put(Case::FloatAsFloat64, &format!("{v:?}"), encode(Float32(v)));
    }
    for v in [0.0, f64::MIN_POSITIVE, f64::NAN] {
        put(Case::Float64, &format!("{v:?}"), encode(Float64(v)));
    }
    for v in [false, true] {
        put(Case::Bool, &v.to_string(), encode(Bool(v)));
    }
    for (k, r) in records().into_iter().enumerate() {
        put(Case::Record, &k.to_string(), encode(r));
    }
    let v1 = Schema::parse(RECORD_V1).expect("valid");
    for (k, datum) in v1_datums().into_iter().enumerate() {
        Record::decode_from(&v1, &datum).unwrap_or_else(|e| panic!("v1 datum {k}: {e}"));
        put(Case::RecordFromV1, &k.to_string(), datum);
    }
    payload.done();
}

fn encode<T: Message>(value: T) -> Vec<u8> {
    value.encode().expect("sample values encode").to_vec()
}

/// Datums of [`RECORD_V1`], written field by field: no Rust type has that schema.
fn v1_datums() -> Vec<Vec<u8>> {
    use busline::codec::Writer;
    let mut out = Vec::new();
    for rich in [true, false] {
        let mut w = Writer::default();
        w.string(if rich { "kitchen" } else { "" });
        w.index(usize::from(rich)); // level: Mid or Low
        w.int(-3); // origin.x
        w.int(i32::MAX); // origin.y, an int the reader widens
        let path: &[(i32, i32)] = if rich { &[(1, 2), (3, 4)] } else { &[] };
        w.array(path, |w, &(x, y)| {
            w.int(x);
            w.int(y);
        });
        let tags: &[(&str, &[i32])] = if rich { &[("a", &[1, 2]), ("b", &[])] } else { &[] };
        w.array(tags, |w, (k, v)| {
            w.string(k);
            w.array(v, |w, &i| w.int(i));
        });
        w.optional(rich.then_some(&"note"), |w, s| w.string(s));
        if rich {
            w.index(2); // sample: the string branch
            w.string("label");
        } else {
            w.index(0);
        }
        w.string(if rich { "blob" } else { "" });
        w.raw(b"\x01\x02\x03\x04");
        w.float(if rich { 2.5 } else { 0.0 });
        w.int(if rich { -7 } else { 0 });
        w.boolean(rich);
        out.push(w.into_vec());
    }
    out
}
