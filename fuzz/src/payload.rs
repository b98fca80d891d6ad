//! Types of the `payload` target and its input layout: one selector byte naming a [`Case`],
//! then the datum.
//!
//! [`Record`] is built to reach as much of apache-avro's reader as one type can: every
//! primitive, an enum, a fixed, nested records, arrays of records and of arrays, a map of
//! arrays, an optional field and a union of several branches. [`RECORD_V1`] is an older
//! revision of it, so that decoding under an evolved writer goes through field aliases,
//! defaults, enum growth and every promotion.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use apache_avro::AvroSchema;
use apache_avro::schema::{Name, NamespaceRef, Schema as AvroType};
use orbitalis_schemas::{Schema, impl_message};
use serde::{Deserialize, Serialize};

#[derive(AvroSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[avro(namespace = "fuzz")]
pub enum Level {
    Low,
    Mid,
    High,
}

#[derive(AvroSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[avro(namespace = "fuzz")]
pub struct Point {
    pub x: i32,
    pub y: i64,
}

/// A bare Avro union: `["null", "long", "string", Point]`.
#[derive(AvroSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[avro(namespace = "fuzz", repr = "bare_union")]
pub enum Sample {
    Missing,
    Count(i64),
    Label(String),
    At(Point),
}

/// The schema of [`Record::tags`]: the derive only knows `HashMap`, whose iteration order
/// would make re-encodings differ run to run and hide real differences.
fn int_lists(_: &mut HashSet<Name>, _: NamespaceRef) -> AvroType {
    AvroType::map(AvroType::array(AvroType::Int).build()).build()
}

#[derive(AvroSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[avro(namespace = "fuzz")]
pub struct Record {
    #[serde(alias = "title")]
    pub name: String,
    pub level: Level,
    pub origin: Point,
    pub path: Vec<Point>,
    #[avro(with = int_lists)]
    pub tags: BTreeMap<String, Vec<i32>>,
    pub note: Option<String>,
    pub sample: Sample,
    #[avro(with)]
    #[serde(with = "apache_avro::serde::bytes")]
    pub blob: Vec<u8>,
    #[avro(with = apache_avro::serde::fixed::get_schema_in_ctxt::<4>)]
    #[serde(with = "apache_avro::serde::fixed")]
    pub tag: [u8; 4],
    pub ratio: f64,
    pub scale: f32,
    pub on: bool,
    #[avro(default = "[]")]
    pub matrix: Vec<Vec<i64>>,
}
impl_message!(Record);

/// An older revision of [`Record`], as a peer would declare it: `name` still called
/// `title`, one enum symbol fewer, narrower numbers, `blob` as a string, a union with fewer
/// branches and no `matrix`.
pub const RECORD_V1: &str = r#"{"type":"record","name":"Record","namespace":"fuzz","fields":[
 {"name":"title","type":"string"},
 {"name":"level","type":{"type":"enum","name":"Level","symbols":["Low","Mid"]}},
 {"name":"origin","type":{"type":"record","name":"Point","fields":[{"name":"x","type":"int"},{"name":"y","type":"int"}]}},
 {"name":"path","type":{"type":"array","items":"Point"}},
 {"name":"tags","type":{"type":"map","values":{"type":"array","items":"int"}}},
 {"name":"note","type":["null","string"]},
 {"name":"sample","type":["null","long","string"]},
 {"name":"blob","type":"string"},
 {"name":"tag","type":{"type":"fixed","name":"serde_avro_fixed_4","size":4}},
 {"name":"ratio","type":"float"},
 {"name":"scale","type":"int"},
 {"name":"on","type":"boolean"}]}"#;

macro_rules! cases {
    ($($(#[$m:meta])* $case:ident = $writer:expr,)*) => {
        /// What one `payload` input decodes: a type, and the writer schema it was written
        /// under when that is not the type's own.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Case {
            $($(#[$m])* $case,)*
        }

        impl Case {
            pub const ALL: &'static [Case] = &[$(Case::$case),*];

            /// The writer schema's text; `None` for the type's own schema.
            pub const fn writer_text(self) -> Option<&'static str> {
                match self {
                    $(Case::$case => $writer,)*
                }
            }
        }
    };
}

cases! {
    String = None,
    Bytes = None,
    Int32 = None,
    Int64 = None,
    Float32 = None,
    Float64 = None,
    Bool = None,
    Record = None,
    /// An `int` read as a `long`.
    IntAsInt64 = Some(r#""int""#),
    /// An `int` read as a `float`.
    IntAsFloat32 = Some(r#""int""#),
    /// A `long` read as a `double`.
    LongAsFloat64 = Some(r#""long""#),
    /// A `float` read as a `double`.
    FloatAsFloat64 = Some(r#""float""#),
    /// `bytes` read as a `string`: the bytes need not be UTF-8.
    BytesAsString = Some(r#""bytes""#),
    /// A `string` read as `bytes`.
    StringAsBytes = Some(r#""string""#),
    /// [`RECORD_V1`] read as [`Record`].
    RecordFromV1 = Some(RECORD_V1),
}

impl Case {
    /// The writer schema, parsed once: the targets run it for every input.
    pub fn writer(self) -> Option<&'static Schema> {
        static WRITERS: OnceLock<Vec<Option<Schema>>> = OnceLock::new();
        let writers = WRITERS.get_or_init(|| {
            Case::ALL
                .iter()
                .map(|c| c.writer_text().map(|t| Schema::parse(t).expect("the evolved writers are valid schemas")))
                .collect()
        });
        writers[self as usize].as_ref()
    }

    /// Splits an input into its case and datum; `None` when empty.
    pub fn split(input: &[u8]) -> Option<(Case, &[u8])> {
        let (&selector, datum) = input.split_first()?;
        Some((Case::ALL[usize::from(selector) % Case::ALL.len()], datum))
    }

    /// The input that [`Case::split`] reads back as `self` and `datum`.
    pub fn join(self, datum: &[u8]) -> Vec<u8> {
        let mut out = vec![self as u8];
        out.extend_from_slice(datum);
        out
    }
}

/// A value of every shape [`Record`] allows, for the corpus and the tests.
pub fn records() -> Vec<Record> {
    let full = Record {
        name: "kitchen".into(),
        level: Level::High,
        origin: Point { x: -7, y: i64::MAX },
        path: vec![Point { x: 1, y: 2 }, Point { x: i32::MIN, y: -1 }],
        tags: BTreeMap::from([("a".to_owned(), vec![1, -2, 300]), ("empty".to_owned(), vec![])]),
        note: Some("calibrated".into()),
        sample: Sample::At(Point { x: 3, y: 4 }),
        blob: vec![0, 0xff, 0x80],
        tag: *b"\x00\x01\xfe\xff",
        ratio: -0.5,
        scale: f32::INFINITY,
        on: true,
        matrix: vec![vec![], vec![1, i64::MIN]],
    };
    let bare = Record {
        name: String::new(),
        level: Level::Low,
        origin: Point { x: 0, y: 0 },
        path: vec![],
        tags: BTreeMap::new(),
        note: None,
        sample: Sample::Missing,
        blob: vec![],
        tag: [0; 4],
        ratio: f64::NAN,
        scale: 0.0,
        on: false,
        matrix: vec![],
    };
    let mut counted = bare.clone();
    counted.sample = Sample::Count(-1);
    let mut labelled = full.clone();
    labelled.sample = Sample::Label("ünïcode".into());
    vec![full, bare, counted, labelled]
}

#[cfg(test)]
mod tests {
    use orbitalis_schemas::{Message, can_read};

    use super::*;

    #[test]
    fn records_round_trip() {
        for r in records() {
            let datum = r.encode().unwrap();
            let back = Record::decode(&datum).unwrap();
            assert_eq!(back.encode().unwrap(), datum);
        }
    }

    #[test]
    fn every_evolved_writer_is_readable() {
        fn reader(case: Case) -> &'static Schema {
            use orbitalis_schemas::{BytesMessage, Float32, Float64, Int64, StringMessage};
            match case {
                Case::IntAsInt64 => Int64::schema(),
                Case::IntAsFloat32 => Float32::schema(),
                Case::LongAsFloat64 | Case::FloatAsFloat64 => Float64::schema(),
                Case::BytesAsString => StringMessage::schema(),
                Case::StringAsBytes => BytesMessage::schema(),
                Case::RecordFromV1 => Record::schema(),
                other => unreachable!("{other:?} has no evolved writer"),
            }
            .unwrap()
        }
        for &case in Case::ALL {
            if let Some(w) = case.writer() {
                assert!(can_read(w, reader(case)), "{case:?}");
            }
        }
    }

    #[test]
    fn layouts_read_back() {
        for &case in Case::ALL {
            assert_eq!(Case::split(&case.join(b"xy")), Some((case, &b"xy"[..])));
        }
    }
}
