//! Input layout of the `control` target: one selector byte, then the datum.
//!
//! The selector picks the payload fingerprint instead of taking eight raw bytes for it:
//! random fingerprints almost never name a message, so the fuzzer would spend its time on
//! check 8 and never reach the decoders. One extra slot keeps the unknown-fingerprint path
//! covered, with the fingerprint read from the input.

use busline::Fingerprint;
use orbitalis_schemas::protocol::MessageKind;

/// What the selector byte chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// One of the protocol's fingerprints.
    Known(MessageKind),
    /// Eight bytes taken from the input, whatever they name.
    Raw(Fingerprint),
}

impl Pick {
    pub fn fingerprint(self) -> Fingerprint {
        match self {
            Pick::Known(kind) => kind.fingerprint(),
            Pick::Raw(fp) => fp,
        }
    }
}

/// Splits an input into the fingerprint to use and the datum; `None` when too short.
pub fn split(input: &[u8]) -> Option<(Pick, &[u8])> {
    let (&selector, rest) = input.split_first()?;
    let slots = MessageKind::ALL.len() + 1;
    match MessageKind::ALL.get(usize::from(selector) % slots) {
        Some(&kind) => Some((Pick::Known(kind), rest)),
        None => {
            let (fp, datum) = rest.split_first_chunk::<8>()?;
            Some((Pick::Raw(Fingerprint(*fp)), datum))
        }
    }
}

/// The input that [`split`] reads back as `kind` and `datum`.
pub fn join(kind: MessageKind, datum: &[u8]) -> Vec<u8> {
    let selector = MessageKind::ALL.iter().position(|&k| k == kind).expect("every kind is listed");
    let mut out = Vec::with_capacity(1 + datum.len());
    out.push(u8::try_from(selector).expect("fewer than 256 kinds"));
    out.extend_from_slice(datum);
    out
}

/// The input that [`split`] reads back as the raw fingerprint `fp` and `datum`.
pub fn join_raw(fp: Fingerprint, datum: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(MessageKind::ALL.len()).expect("fewer than 256 kinds")];
    out.extend_from_slice(&fp.0);
    out.extend_from_slice(datum);
    out
}
