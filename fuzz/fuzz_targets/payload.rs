//! User payload decoding: `Message::decode` of the primitives and of a derived record, and
//! `Message::decode_from` under evolved writer schemas, picked by the input's first byte.
//!
//! What decodes re-encodes, and that encoding decodes and re-encodes to the same bytes.
//! Bytes, not values, are compared: NaN is not equal to itself, and a first decode may
//! legitimately normalise (a non-minimal varint, say), but only once.

#![no_main]

use libfuzzer_sys::fuzz_target;
use orbitalis_fuzz::payload::{Case, Record};
use orbitalis_schemas::{BytesMessage, Float32, Float64, Int32, Int64, Message, Schema, StringMessage};

fuzz_target!(|data: &[u8]| {
    let Some((case, datum)) = Case::split(data) else { return };
    let writer = case.writer();
    match case {
        Case::String => check::<StringMessage>(writer, datum),
        Case::Bytes => check::<BytesMessage>(writer, datum),
        Case::Int32 => check::<Int32>(writer, datum),
        Case::Int64 | Case::IntAsInt64 => check::<Int64>(writer, datum),
        Case::Float32 | Case::IntAsFloat32 => check::<Float32>(writer, datum),
        Case::Float64 | Case::LongAsFloat64 | Case::FloatAsFloat64 => check::<Float64>(writer, datum),
        Case::Bool => check::<orbitalis_schemas::Bool>(writer, datum),
        Case::Record | Case::RecordFromV1 => check::<Record>(writer, datum),
        Case::BytesAsString => check::<StringMessage>(writer, datum),
        Case::StringAsBytes => check::<BytesMessage>(writer, datum),
    }
});

fn check<T: Message>(writer: Option<&Schema>, datum: &[u8]) {
    let decoded = match writer {
        Some(w) => T::decode_from(w, datum),
        None => T::decode(datum),
    };
    let Ok(value) = decoded else { return };
    let encoded = value.encode().expect("a decoded value encodes");
    let again = T::decode(&encoded).expect("a re-encoded value decodes").encode().expect("and encodes again");
    assert_eq!(again, encoded, "the encoding is not a fixed point");
}
