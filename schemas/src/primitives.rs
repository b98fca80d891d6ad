//! Bare Avro primitives as messages, and [`Empty`] (PROTOCOL.md §5.1).
//!
//! Each message's schema is the bare primitive (`"string"`, `"long"`...), so any Avro
//! implementation reads it, and promotions apply: an [`Int32`] payload can be read as an
//! [`Int64`] or a [`Float64`].

use std::collections::HashSet;

use apache_avro::schema::{Name, NamespaceRef, RecordField};
use apache_avro::{AvroSchemaComponent, Schema as AvroSchema};
use busline::codec::{Reader, Writer};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The message impl of a primitive, its datum written and read by hand: a bare primitive is a
/// few bytes, and apache-avro's serde path costs several times the value itself. The schema
/// and the codec for evolved writers stay apache-avro's; a test holds both encodings equal.
macro_rules! primitive_message {
    ($name:ident, len($v:ident) $len:expr, write($w:ident) $write:expr, read($r:ident) $read:expr
     $(, read_shared($d:ident) $read_shared:expr)?) => {
        impl crate::Message for $name {
            crate::impl_message!(@codec $name);

            fn encode(&self) -> Result<Bytes, Error> {
                let $v = &self.0;
                // At most: the value's bytes and a 10-byte length or varint.
                let mut $w = Writer::with_capacity($len + 10);
                $write;
                Ok(Bytes::from($w.into_vec()))
            }

            fn decode(datum: &[u8]) -> Result<Self, Error> {
                let mut $r = Reader::new(datum);
                let value = $read.map_err(|e| Error::Decode(e.to_string()))?;
                whole(&$r)?;
                Ok($name(value))
            }

            $(
            fn decode_shared($d: &Bytes) -> Result<Self, Error> {
                let mut $r = Reader::new($d);
                let value = $read_shared.map_err(|e| Error::Decode(e.to_string()))?;
                whole(&$r)?;
                Ok($name(value))
            }
            )?
        }
    };
}

/// Nothing may follow a datum.
fn whole(r: &Reader<'_>) -> Result<(), Error> {
    match r.remaining() {
        0 => Ok(()),
        n => Err(Error::Decode(format!("{n} bytes follow the datum"))),
    }
}

macro_rules! primitive {
    ($(#[$m:meta])* $name:ident($inner:ty) = $schema:ident, derive($($d:ident),*),
     len($v:ident) $len:expr, write($w:ident) $write:expr, read($r:ident) $read:expr) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize $(, $d)*)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl AvroSchemaComponent for $name {
            fn get_schema_in_ctxt(_: &mut HashSet<Name>, _: NamespaceRef) -> AvroSchema {
                AvroSchema::$schema
            }

            fn get_record_fields_in_ctxt(_: &mut HashSet<Name>, _: NamespaceRef) -> Option<Vec<RecordField>> {
                None
            }
        }

        primitive_message!($name, len($v) $len, write($w) $write, read($r) $read);

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                $name(v)
            }
        }
    };
}

primitive!(
    /// A UTF-8 string, schema `"string"`.
    StringMessage(String) = String, derive(Eq, Hash, Ord),
    len(v) v.len(), write(w) w.string(v), read(r) r.string().map(str::to_owned)
);
primitive!(
    /// A 32-bit signed integer, schema `"int"`.
    Int32(i32) = Int, derive(Eq, Hash, Ord, Copy),
    len(v) 0, write(w) w.int(*v), read(r) r.int()
);
primitive!(
    /// A 64-bit signed integer, schema `"long"`.
    Int64(i64) = Long, derive(Eq, Hash, Ord, Copy),
    len(v) 0, write(w) w.long(*v), read(r) r.long()
);
primitive!(
    /// A 32-bit float, schema `"float"`.
    Float32(f32) = Float, derive(Copy),
    len(v) 0, write(w) w.float(*v), read(r) r.float()
);
primitive!(
    /// A 64-bit float, schema `"double"`.
    Float64(f64) = Double, derive(Copy),
    len(v) 0, write(w) w.double(*v), read(r) r.double()
);
primitive!(
    /// A boolean, schema `"boolean"`.
    Bool(bool) = Boolean, derive(Eq, Hash, Ord, Copy),
    len(v) 0, write(w) w.boolean(*v), read(r) r.boolean()
);

/// Bytes, schema `"bytes"`. Received bytes are a view of the event's payload, not a copy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BytesMessage(#[serde(with = "avro_bytes")] pub Bytes);

/// `Bytes` as Avro `bytes` through apache-avro's serde path.
mod avro_bytes {
    use bytes::Bytes;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        apache_avro::serde::bytes::serialize(v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        apache_avro::serde::bytes::deserialize(d).map(Bytes::from)
    }
}

impl AvroSchemaComponent for BytesMessage {
    fn get_schema_in_ctxt(_: &mut HashSet<Name>, _: NamespaceRef) -> AvroSchema {
        AvroSchema::Bytes
    }

    fn get_record_fields_in_ctxt(_: &mut HashSet<Name>, _: NamespaceRef) -> Option<Vec<RecordField>> {
        None
    }
}

primitive_message!(BytesMessage, len(v) v.len(), write(w) w.bytes(v), read(r) r.bytes().map(Bytes::copy_from_slice),
    read_shared(datum) r.bytes().map(|v| datum.slice_ref(v)));

impl From<Vec<u8>> for BytesMessage {
    fn from(v: Vec<u8>) -> Self {
        BytesMessage(v.into())
    }
}

impl From<Bytes> for BytesMessage {
    fn from(v: Bytes) -> Self {
        BytesMessage(v)
    }
}

impl From<&str> for StringMessage {
    fn from(v: &str) -> Self {
        StringMessage(v.to_owned())
    }
}

/// No payload at all: the EMPTY form. Not a message: an event carries it as a missing payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Empty;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Data, Message, SchemaSpec};

    fn fp<M: Message>() -> String {
        M::fingerprint().unwrap().to_string()
    }

    /// The hand-written datum equals apache-avro's for `v`, and each side reads the other's.
    fn same_as_apache_avro<M: Message + PartialEq + std::fmt::Debug>(v: M) {
        let codec = M::codec().unwrap();
        let ours = v.encode().unwrap();
        assert_eq!(ours, codec.encode(&v).unwrap(), "datum of {v:?}");
        assert_eq!(codec.decode(&ours).unwrap(), v);
        assert_eq!(M::decode(&ours).unwrap(), v);
    }

    /// On any bytes, the hand-written reader never panics, and what it accepts apache-avro
    /// reads as the same value.
    fn reads_like_apache_avro<M: Message + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
        if let Ok(v) = M::decode(bytes) {
            assert_eq!(M::codec().unwrap().decode(bytes).unwrap(), v, "bytes {bytes:02x?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn hand_written_primitives_match_apache_avro(
            s in ".{0,40}",
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            i in proptest::num::i32::ANY,
            l in proptest::num::i64::ANY,
            f in proptest::num::f32::NORMAL,
            d in proptest::num::f64::NORMAL,
            t in proptest::bool::ANY,
            garbage in proptest::collection::vec(proptest::num::u8::ANY, 0..12),
        ) {
            same_as_apache_avro(StringMessage(s));
            same_as_apache_avro(BytesMessage(b.into()));
            same_as_apache_avro(Int32(i));
            same_as_apache_avro(Int64(l));
            same_as_apache_avro(Float32(f));
            same_as_apache_avro(Float64(d));
            same_as_apache_avro(Bool(t));
            reads_like_apache_avro::<StringMessage>(&garbage);
            reads_like_apache_avro::<BytesMessage>(&garbage);
            reads_like_apache_avro::<Int32>(&garbage);
            reads_like_apache_avro::<Int64>(&garbage);
            reads_like_apache_avro::<Bool>(&garbage);
        }
    }

    #[test]
    fn received_bytes_are_a_view_of_the_payload() {
        let payload = BytesMessage(Bytes::from_static(b"abc")).to_payload().unwrap();
        let got = BytesMessage::from_payload(Some(&payload), None).unwrap();
        assert_eq!(got.0, &b"abc"[..]);
        let within = payload.datum.as_ptr_range();
        assert!(within.contains(&got.0.as_ptr()), "the value points into the payload's datum");
        let trailing = Bytes::from_static(&[0x02, 0x09, 0x00]);
        assert!(BytesMessage::decode_shared(&trailing).is_err(), "nothing may follow the datum");
        assert!(BytesMessage::decode_shared(&Bytes::from_static(&[0x00])).unwrap().0.is_empty());
    }

    #[test]
    fn fingerprints_match_the_protocol_table() {
        assert_eq!(fp::<StringMessage>(), "c70345637248018f");
        assert_eq!(fp::<BytesMessage>(), "651920c3da16c04f");
        assert_eq!(fp::<Int32>(), "8f5c393f1ad57572");
        assert_eq!(fp::<Int64>(), "b71df49344e154d0");
        assert_eq!(fp::<Float32>(), "90d7a83ecb027c4d");
        assert_eq!(fp::<Float64>(), "7e95ab32c035758e");
        assert_eq!(fp::<Bool>(), "64f7d4a478fc429f");
        assert_eq!(StringMessage::schema().unwrap().text(), r#""string""#);
    }

    fn round_trip<M: Message + PartialEq + std::fmt::Debug>(v: M) {
        let datum = v.encode().unwrap();
        assert_eq!(M::decode(&datum).unwrap(), v);
        let payload = Message::to_payload(&v).unwrap();
        assert_eq!(payload.fingerprint, M::fingerprint().unwrap());
        assert_eq!(M::from_payload(Some(&payload), None).unwrap(), v);
    }

    #[test]
    fn primitives_round_trip() {
        round_trip(StringMessage("héllo".into()));
        round_trip(BytesMessage(vec![0, 255, 7].into()));
        round_trip(Int32(i32::MIN));
        round_trip(Int64(i64::MAX));
        round_trip(Float32(1.5));
        round_trip(Float64(-0.25));
        round_trip(Bool(true));
    }

    #[test]
    fn encodings_are_plain_avro() {
        // PROTOCOL.md §2.4's third golden vector: "HI" under "string".
        assert_eq!(StringMessage::from("HI").encode().unwrap().as_ref(), [0x04, 0x48, 0x49]);
        assert_eq!(Int64(-1).encode().unwrap().as_ref(), [0x01]);
        assert_eq!(Bool(true).encode().unwrap().as_ref(), [0x01]);
        assert_eq!(BytesMessage(vec![9].into()).encode().unwrap().as_ref(), [0x02, 0x09]);
    }

    #[test]
    fn promotions_decode_through_the_writer_schema() {
        let int = Int32(7).encode().unwrap();
        let writer = Int32::schema().unwrap();
        assert_eq!(Int64::decode_from(writer, &int).unwrap(), Int64(7));
        assert_eq!(Float64::decode_from(writer, &int).unwrap(), Float64(7.0));
        let bytes = StringMessage::from("ok").encode().unwrap();
        assert_eq!(
            BytesMessage::decode_from(StringMessage::schema().unwrap(), &bytes).unwrap(),
            BytesMessage(Bytes::from_static(b"ok"))
        );
        let long = Int64(1).encode().unwrap();
        assert!(matches!(
            Int32::decode_from(Int64::schema().unwrap(), &long),
            Err(crate::Error::IncompatibleSchema { .. })
        ));
    }

    #[test]
    fn empty_has_no_payload() {
        assert_eq!(Empty::spec().unwrap(), SchemaSpec::empty());
        assert_eq!(Empty.to_optional_payload().unwrap(), None);
        assert_eq!(Empty::from_payload(None, None).unwrap(), Empty);
        let p = Message::to_payload(&Int32(1)).unwrap();
        assert!(Empty::from_payload(Some(&p), None).is_err());
        assert!(Int32::from_payload(None, None).is_err());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert!(Int32::decode(&[0x02, 0x00]).is_err());
        assert!(Int32::decode(&[]).is_err());
    }
}
