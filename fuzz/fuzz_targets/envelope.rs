//! `busline::Event::decode` (receive checks 1-5) on arbitrary bytes.
//!
//! Beyond "never panics": the size limit decides check 1 alone and changes nothing else, and
//! what decodes is an event whose own encoding is canonical, no longer than the input (so it
//! fits wherever the input did) and decodes back to the same event.

#![no_main]

use busline::envelope::{DEFAULT_MAX_ENVELOPE_SIZE, MAX_MAX_ENVELOPE_SIZE, MIN_MAX_ENVELOPE_SIZE};
use busline::{DecodeErrorKind, Event};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let len = bytes.len();
    let unlimited = Event::decode(&bytes, usize::MAX);

    // The input's own length and its neighbour probe check 1's boundary; the configured
    // range's ends show whether anything past check 1 depends on the limit.
    for max in [0, len.saturating_sub(1), len, MIN_MAX_ENVELOPE_SIZE, DEFAULT_MAX_ENVELOPE_SIZE, MAX_MAX_ENVELOPE_SIZE]
    {
        let limited = Event::decode(&bytes, max);
        if len > max {
            assert_eq!(limited.map_err(|e| e.kind), Err(DecodeErrorKind::Oversized), "max {max}");
        } else {
            assert_eq!(limited, unlimited, "max {max}");
        }
    }

    if let Ok(event) = unlimited {
        let encoded = event.encode();
        assert_eq!(encoded.len(), event.encoded_len(), "encoded_len disagrees with encode");
        assert!(encoded.len() <= len, "re-encoding grew from {len} to {} bytes", encoded.len());
        let back = Event::decode(&encoded, len).expect("a decoded event re-encodes to a valid envelope");
        assert_eq!(back, event);
        assert_eq!(back.encode(), encoded, "the encoding is not a fixed point");
    }
});
