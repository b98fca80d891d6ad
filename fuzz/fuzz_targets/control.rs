//! `Control::decode` (receive checks 8 and 9) on a fingerprint picked by the input's first
//! byte and the datum that follows it.
//!
//! What decodes is a valid message of the kind its fingerprint names, and survives its own
//! round trip through `to_payload` and `decode`. The datum is decoded under the smallest,
//! the default and the largest `max_envelope_size`, because the limits derived from E
//! (schema texts, setup and close data) move with it: a larger E may accept more, never less.

#![no_main]

use busline::Payload;
use busline::envelope::{MAX_MAX_ENVELOPE_SIZE, MIN_MAX_ENVELOPE_SIZE};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use orbitalis_fuzz::control::{Pick, split};
use orbitalis_schemas::limits::Limits;
use orbitalis_schemas::protocol::{Control, MessageKind, ProtocolError};

fuzz_target!(|data: &[u8]| {
    let Some((pick, datum)) = split(data) else { return };
    let payload = Payload::new(pick.fingerprint(), Bytes::copy_from_slice(datum));
    let mut smaller: Option<Control> = None;
    for e in [MIN_MAX_ENVELOPE_SIZE, Limits::default().max_envelope_size(), MAX_MAX_ENVELOPE_SIZE] {
        let limits = Limits::new(e).expect("within the valid range");
        let decoded = check(pick, &payload, &limits);
        if let Some(m) = &smaller {
            assert_eq!(decoded.as_ref(), Some(m), "accepted under a smaller E, not under E = {e}");
        }
        smaller = decoded;
    }
});

/// Decodes under `limits`, checks what came out, and returns the message if any.
fn check(pick: Pick, payload: &Payload, limits: &Limits) -> Option<Control> {
    let decoded = Control::decode(payload, limits);
    let expected_kind = match pick {
        Pick::Known(kind) => Some(kind),
        // Eight input bytes may still spell a real fingerprint.
        Pick::Raw(fp) => MessageKind::from_fingerprint(fp),
    };
    let Some(kind) = expected_kind else {
        assert_eq!(decoded, Err(ProtocolError::UnknownFingerprint(payload.fingerprint)));
        return None;
    };
    match decoded {
        Ok(message) => {
            assert_eq!(message.kind(), kind);
            let again = message.to_payload();
            assert_eq!(again.fingerprint, payload.fingerprint);
            let back = Control::decode(&again, limits).expect("a decoded message re-encodes to a valid one");
            assert_eq!(back, message);
            assert_eq!(back.encode(), again.datum, "the encoding is not a fixed point");
            Some(message)
        }
        Err(e) => {
            assert!(matches!(e, ProtocolError::Invalid { .. }), "a known fingerprint failed as {e:?}");
            None
        }
    }
}
