//! Typed payloads: derived records as messages, evolution through decode_from, invalid type
//! schemas surfacing as errors, and decoding that never panics on garbage.

use std::collections::HashMap;

use apache_avro::AvroSchema;
use orbitalis_schemas::{
    BytesMessage, Data, Error, Float64, Int64, Message, RawPayload, SchemaSpec, StringMessage, can_read, impl_message,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
#[avro(namespace = "test")]
enum Mode {
    Idle,
    Busy,
}

#[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq, Clone)]
#[avro(namespace = "test")]
struct Reading {
    sensor: String,
    celsius: f64,
    tags: Vec<String>,
    extra: HashMap<String, i64>,
    note: Option<String>,
    mode: Mode,
}
impl_message!(Reading);

fn reading() -> Reading {
    Reading {
        sensor: "kitchen".into(),
        celsius: 21.5,
        tags: vec!["a".into(), "b".into()],
        extra: HashMap::from([("x".to_owned(), -3)]),
        note: Some("calibrated".into()),
        mode: Mode::Busy,
    }
}

#[test]
fn a_derived_record_round_trips() {
    let r = reading();
    let payload = r.to_payload().unwrap();
    assert_eq!(payload.fingerprint, Reading::fingerprint().unwrap());
    assert_eq!(Reading::decode(&payload.datum).unwrap(), r);
    assert_eq!(<Reading as Data>::from_payload(Some(&payload), None).unwrap(), r);
    assert_eq!(Reading::schema().unwrap().name(), Some("test.Reading"));
    assert_eq!(<Reading as Data>::spec().unwrap(), SchemaSpec::of::<Reading>().unwrap());
}

#[test]
fn the_codec_is_built_once() {
    let a = Reading::schema().unwrap();
    let b = Reading::schema().unwrap();
    assert!(std::ptr::eq(a, b));
}

mod v1 {
    use super::*;

    /// The record as an older peer declares it.
    #[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq)]
    #[avro(namespace = "test")]
    pub struct Probe {
        pub sensor: String,
        pub celsius: f32,
    }
    impl_message!(Probe);
}

mod v2 {
    use super::*;

    /// A later revision: a renamed field (with the old name as alias), a wider type and a new
    /// field with a default.
    #[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq)]
    #[avro(namespace = "test")]
    pub struct Probe {
        #[serde(alias = "sensor")]
        pub name: String,
        pub celsius: f64,
        #[avro(default = r#""C""#)]
        pub unit: String,
    }
    impl_message!(Probe);
}

mod v3 {
    use super::*;

    /// v1 with one more field, with a default.
    #[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq)]
    #[avro(namespace = "test")]
    pub struct Probe {
        pub sensor: String,
        pub celsius: f32,
        #[avro(default = "0")]
        pub battery: i32,
    }
    impl_message!(Probe);
}

#[test]
fn decode_from_an_older_writer_fills_defaults_promotes_and_follows_aliases() {
    let old = v1::Probe { sensor: "s1".into(), celsius: 20.5 };
    let writer = v1::Probe::schema().unwrap();
    assert!(can_read(writer, v2::Probe::schema().unwrap()));
    let new = v2::Probe::decode_from(writer, &old.encode().unwrap()).unwrap();
    assert_eq!(new, v2::Probe { name: "s1".into(), celsius: 20.5, unit: "C".into() });

    let payload = old.to_payload().unwrap();
    let via_data = <v2::Probe as Data>::from_payload(Some(&payload), Some(writer)).unwrap();
    assert_eq!(via_data, new);
    // Without the writer's schema, a foreign fingerprint cannot be read.
    assert!(matches!(<v2::Probe as Data>::from_payload(Some(&payload), None), Err(Error::IncompatibleSchema { .. })));
}

#[test]
fn decode_from_the_reverse_direction_follows_the_analysis() {
    // v2 narrows nothing back: double cannot be read as float.
    let newer = v2::Probe { name: "n".into(), celsius: 1.0, unit: "K".into() };
    let writer = v2::Probe::schema().unwrap();
    assert!(!can_read(writer, v1::Probe::schema().unwrap()));
    assert!(matches!(v1::Probe::decode_from(writer, &newer.encode().unwrap()), Err(Error::IncompatibleSchema { .. })));

    // A field added with a default is simply skipped by older readers.
    let v3 = v3::Probe { sensor: "s".into(), celsius: 3.5, battery: 80 };
    let writer = v3::Probe::schema().unwrap();
    assert!(can_read(writer, v1::Probe::schema().unwrap()));
    assert_eq!(
        v1::Probe::decode_from(writer, &v3.encode().unwrap()).unwrap(),
        v1::Probe { sensor: "s".into(), celsius: 3.5 }
    );
    assert!(can_read(v1::Probe::schema().unwrap(), writer));
}

#[test]
fn decode_from_under_the_own_schema_is_decode() {
    let r = reading();
    assert_eq!(Reading::decode_from(Reading::schema().unwrap(), &r.encode().unwrap()).unwrap(), r);
}

#[derive(AvroSchema, Serialize, Deserialize, Debug)]
struct Tree {
    value: i32,
    kids: Vec<Tree>,
}
impl_message!(Tree);

#[derive(AvroSchema, Serialize, Deserialize, Debug)]
#[avro(namespace = "orbitalis.protocol")]
struct Sneaky {
    x: i32,
}
impl_message!(Sneaky);

#[test]
fn invalid_type_schemas_are_errors_not_panics() {
    let tree = Tree { value: 1, kids: vec![] };
    assert_eq!(Tree::schema().unwrap_err(), Error::RecursiveSchema { name: "Tree".into() });
    assert!(matches!(tree.encode(), Err(Error::RecursiveSchema { .. })));
    assert!(matches!(Tree::decode(&[2, 0]), Err(Error::RecursiveSchema { .. })));
    assert!(<Tree as Data>::spec().is_err());
    // The same error every time: it is cached, not recomputed into a panic.
    assert_eq!(Tree::fingerprint().unwrap_err(), Error::RecursiveSchema { name: "Tree".into() });
    assert!(matches!(Sneaky::schema(), Err(Error::ReservedNamespace { .. })));
    assert!(matches!(Sneaky { x: 1 }.to_payload(), Err(Error::ReservedNamespace { .. })));
}

#[test]
fn raw_payloads_pass_through() {
    assert_eq!(RawPayload::spec().unwrap(), SchemaSpec::any());
    let p = Int64(5).to_payload().unwrap();
    assert_eq!(Int64(5).to_optional_payload().unwrap(), Some(p.clone()));
    let raw = RawPayload::from_payload(Some(&p), None).unwrap();
    assert_eq!(raw.fingerprint, p.fingerprint);
    assert_eq!(raw.to_optional_payload().unwrap(), Some(p));
    assert!(RawPayload::from_payload(None, None).is_err());
}

#[test]
fn unit_is_none() {
    assert!(<() as Data>::spec().unwrap().is_none());
    assert_eq!(().to_optional_payload().unwrap(), None);
    assert!(<() as Data>::from_payload(None, None).is_ok());
    let p = Int64(1).to_payload().unwrap();
    assert!(matches!(<() as Data>::from_payload(Some(&p), None), Err(Error::PayloadShape(_))));
}

#[test]
fn garbage_in_the_trailing_position_is_refused() {
    let mut datum = reading().encode().unwrap().to_vec();
    datum.push(0);
    assert!(matches!(Reading::decode(&datum), Err(Error::Decode(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Reading::decode(&bytes);
        let _ = StringMessage::decode(&bytes);
        let _ = BytesMessage::decode(&bytes);
        let _ = Float64::decode(&bytes);
        let _ = v2::Probe::decode_from(v1::Probe::schema().unwrap(), &bytes);
        let _ = v1::Probe::decode_from(v3::Probe::schema().unwrap(), &bytes);
    }

    #[test]
    fn decoding_mutated_datums_never_panics(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut datum = reading().encode().unwrap().to_vec();
        let i = at.index(datum.len());
        datum[i] = byte;
        let _ = Reading::decode(&datum);
        datum.truncate(cut.index(datum.len() + 1));
        let _ = Reading::decode(&datum);
        let _ = v2::Probe::decode_from(v1::Probe::schema().unwrap(), &datum);
    }
}
