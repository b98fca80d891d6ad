//! Property tests of envelope decoding (PROTOCOL.md §2.3: nothing may panic).
//!
//! Random bytes, random bytes behind a valid prefix, and valid envelopes damaged by bit
//! flips, truncations, insertions and deletions all go to `Event::decode`. It must return,
//! never panic, and whatever it accepts must encode to bytes that decode to the same event.

use busline::envelope::{DEFAULT_MAX_ENVELOPE_SIZE, MAGIC, MIN_MAX_ENVELOPE_SIZE, VERSION};
use busline::{Event, Fingerprint, Identifier, Payload};
use bytes::Bytes;
use proptest::prelude::*;
use uuid::Uuid;

fn arb_event() -> impl Strategy<Value = Event> {
    let headers = proptest::collection::btree_map("[a-z0-9-]{1,12}", "\\PC{0,24}", 0..5);
    (
        any::<[u8; 16]>(),
        "[A-Za-z0-9][A-Za-z0-9_-]{0,63}",
        any::<i64>(),
        proptest::option::of(any::<[u8; 16]>()),
        proptest::option::of((any::<u64>(), proptest::collection::vec(any::<u8>(), 0..300))),
        headers,
    )
        .prop_map(|(id, publisher, timestamp_us, correlation, payload, headers)| {
            let mut e = Event::new(Identifier::new(publisher).expect("the regex yields identifiers"));
            e.id = uuid::Builder::from_random_bytes(id).into_uuid();
            e.timestamp_us = timestamp_us;
            e.correlation_id = correlation.map(Uuid::from_bytes);
            e.payload = payload.map(|(fp, datum)| Payload::new(Fingerprint::from_u64(fp), datum));
            for (k, v) in headers {
                e.headers.insert(k, v).expect("generated headers are valid");
            }
            e
        })
}

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Overwrite(usize, u8),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..12)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Mutation::Delete(at, n)),
        // Bytes that are often lengths or counts in the Avro encoding: large, negative, zero.
        (any::<usize>(), prop_oneof![Just(0x00u8), Just(0x01), Just(0x7f), Just(0x80), Just(0xff), Just(0xfe)])
            .prop_map(|(at, b)| Mutation::Overwrite(at, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match *m {
        Mutation::FlipBit(at, bit) if len > 0 => bytes[at % len] ^= 1 << bit,
        Mutation::Truncate(at) => bytes.truncate(at % (len + 1)),
        Mutation::Insert(at, ref b) => {
            let at = at % (len + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Delete(at, n) if len > 0 => {
            let at = at % len;
            bytes.drain(at..(at + n).min(len));
        }
        Mutation::Overwrite(at, b) if len > 0 => bytes[at % len] = b,
        _ => {}
    }
}

/// Decoding returns; an accepted event re-encodes to bytes that decode to itself.
fn check(bytes: Vec<u8>, max: usize) -> Result<(), TestCaseError> {
    let bytes = Bytes::from(bytes);
    if let Ok(event) = Event::decode(&bytes, max) {
        let again = event.encode();
        prop_assert_eq!(again.len(), event.encoded_len());
        let decoded = Event::decode(&again, max.max(again.len()));
        prop_assert_eq!(decoded.as_ref(), Ok(&event), "a re-encoded event decodes to itself");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn valid_events_round_trip(e in arb_event()) {
        let bytes = e.encode();
        prop_assert_eq!(bytes.len(), e.encoded_len());
        prop_assert_eq!(Event::decode(&bytes, DEFAULT_MAX_ENVELOPE_SIZE), Ok(e));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(bytes, DEFAULT_MAX_ENVELOPE_SIZE)?;
    }

    #[test]
    fn random_bodies_behind_a_valid_prefix_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = MAGIC.to_vec();
        bytes.push(VERSION);
        bytes.extend(body);
        check(bytes, DEFAULT_MAX_ENVELOPE_SIZE)?;
    }

    #[test]
    fn damaged_envelopes_never_panic(
        e in arb_event(),
        mutations in proptest::collection::vec(arb_mutation(), 1..6),
        small_limit in any::<bool>(),
    ) {
        let mut bytes = e.encode().to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check(bytes, if small_limit { MIN_MAX_ENVELOPE_SIZE } else { DEFAULT_MAX_ENVELOPE_SIZE })?;
    }
}

#[test]
fn a_length_claiming_more_than_remains_is_refused_without_allocating() {
    // Publisher length as a huge zig-zag varint: must fail check 4, not allocate gigabytes.
    let mut bytes = MAGIC.to_vec();
    bytes.push(VERSION);
    bytes.extend(Uuid::now_v7().as_bytes());
    bytes.extend([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    let err = Event::decode(&Bytes::from(bytes), DEFAULT_MAX_ENVELOPE_SIZE).unwrap_err();
    assert_eq!(err.kind, busline::DecodeErrorKind::Malformed);
}
