//! `Control::decode` never panics, whatever the bytes: random datums of every kind, and
//! valid datums of every kind with bytes overwritten, inserted or cut. What decodes is valid:
//! it survives its own round trip.

mod common;

use std::sync::LazyLock;

use busline::{Fingerprint, Payload};
use bytes::Bytes;
use orbitalis_schemas::limits::Limits;
use orbitalis_schemas::protocol::{Control, MessageKind};
use proptest::prelude::*;

static SAMPLES: LazyLock<Vec<Control>> = LazyLock::new(common::samples);

#[derive(Clone, Debug)]
enum Mutation {
    Overwrite(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Remove),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(datum: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Overwrite(i, b) if !datum.is_empty() => {
            let i = i.index(datum.len());
            datum[i] = *b;
        }
        Mutation::Insert(i, b) => datum.insert(i.index(datum.len() + 1), *b),
        Mutation::Remove(i) if !datum.is_empty() => {
            datum.remove(i.index(datum.len()));
        }
        Mutation::Truncate(i) => datum.truncate(i.index(datum.len() + 1)),
        _ => {}
    }
}

fn check(kind: MessageKind, datum: &[u8]) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    if let Ok(m) = Control::decode(&Payload::new(kind.fingerprint(), Bytes::copy_from_slice(datum)), &limits) {
        prop_assert_eq!(m.kind(), kind);
        let again = Control::decode_kind(kind, &m.encode(), &limits);
        prop_assert_eq!(again.as_ref(), Ok(&m));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_datums_never_panic(kind in prop::sample::select(MessageKind::ALL), datum in prop::collection::vec(any::<u8>(), 0..400)) {
        check(kind, &datum)?;
    }

    #[test]
    fn mutated_datums_never_panic(sample in any::<prop::sample::Index>(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let c = &SAMPLES[sample.index(SAMPLES.len())];
        let mut datum = c.encode().to_vec();
        for m in &mutations {
            apply(&mut datum, m);
        }
        check(c.kind(), &datum)?;
    }

    #[test]
    fn any_fingerprint_is_dispatched_or_refused(fp in any::<[u8; 8]>(), datum in prop::collection::vec(any::<u8>(), 0..64)) {
        let payload = Payload::new(Fingerprint(fp), Bytes::from(datum));
        match Control::decode(&payload, &Limits::default()) {
            Err(e) if MessageKind::from_fingerprint(payload.fingerprint).is_none() => prop_assert_eq!(e.counter(), "unexpected_message"),
            _ => prop_assert!(MessageKind::from_fingerprint(payload.fingerprint).is_some()),
        }
    }
}
