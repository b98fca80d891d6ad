//! The hand-written Avro binary layout of the protocol records, on busline's total codec, and
//! the field rules of PROTOCOL.md §4.2 that several records share.
//!
//! Every reader validates as it goes, so a message that decodes is a valid message.

use std::collections::BTreeMap;

use busline::codec::{Reader, Writer};
use busline::envelope::is_event_id;
use busline::{DecodeError, DecodeErrorKind, Identifier};
use bytes::Bytes;
use uuid::Uuid;

use super::Sender;
use crate::limits::{Limits, MAX_SCHEMAS_PER_SPEC};
use crate::{Schema, SchemaSpec};

/// Why a datum is not a valid message (receive check 9).
#[derive(Debug)]
pub(crate) struct Invalid(pub(crate) String);

impl From<DecodeError> for Invalid {
    fn from(e: DecodeError) -> Self {
        Invalid(e.detail.to_owned())
    }
}

pub(crate) type Read<T> = Result<T, Invalid>;

pub(crate) fn invalid<T>(reason: impl Into<String>) -> Read<T> {
    Err(Invalid(reason.into()))
}

/// A protocol record's binary form.
pub(crate) trait Wire: Sized {
    /// The fewest bytes one value takes, so that a list's length is checked against the bytes
    /// that remain before anything is allocated for it.
    const MIN_LEN: usize;

    fn write(&self, w: &mut Writer);

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self>;
}

/// A list of at most `max` items, each checked by `T::read`.
pub(crate) fn list<T: Wire>(r: &mut Reader<'_>, limits: &Limits, max: usize, what: &str) -> Read<Vec<T>> {
    let fit = r.remaining() / T::MIN_LEN.max(1);
    // The reader's items fail with a `DecodeError` of static text: an item's own reason is
    // kept aside and reported instead.
    let mut failure: Option<Invalid> = None;
    let items = r.array(max.min(fit), |r| {
        T::read(r, limits).map_err(|e| {
            failure = Some(e);
            DecodeError { kind: DecodeErrorKind::Malformed, detail: "invalid entry" }
        })
    });
    items.map_err(|e| Invalid(format!("{what}: {}", failure.map_or_else(|| e.detail.to_owned(), |f| f.0))))
}

/// `union { null, T }` where `T` is read (and checked) by `item`.
pub(crate) fn optional<T>(r: &mut Reader<'_>, item: impl FnOnce(&mut Reader<'_>) -> Read<T>) -> Read<Option<T>> {
    match r.index(2)? {
        0 => Ok(None),
        _ => item(r).map(Some),
    }
}

pub(crate) fn write_list<T: Wire>(w: &mut Writer, items: &[T]) {
    w.array(items, |w, it| it.write(w));
}

/// A list whose length must be within `min..=max`.
pub(crate) fn bounded_list<T: Wire>(
    r: &mut Reader<'_>,
    limits: &Limits,
    min: usize,
    max: usize,
    what: &str,
) -> Read<Vec<T>> {
    let items = list(r, limits, max, what)?;
    if items.len() < min {
        return invalid(format!("{what}: {} entries, fewer than {min}", items.len()));
    }
    Ok(items)
}

impl Wire for Identifier {
    const MIN_LEN: usize = 2;

    fn write(&self, w: &mut Writer) {
        w.string(self);
    }

    fn read(r: &mut Reader<'_>, _: &Limits) -> Read<Self> {
        ident(r, "an entry")
    }
}

impl Wire for Uuid {
    const MIN_LEN: usize = 16;

    fn write(&self, w: &mut Writer) {
        w.raw(self.as_bytes());
    }

    fn read(r: &mut Reader<'_>, _: &Limits) -> Read<Self> {
        id(r, "a connection id")
    }
}

/// An identifier (PROTOCOL.md §3.1).
pub(crate) fn ident(r: &mut Reader<'_>, what: &str) -> Read<Identifier> {
    to_ident(r.string()?, what)
}

pub(crate) fn to_ident(s: &str, what: &str) -> Read<Identifier> {
    Identifier::new(s).or_else(|_| invalid(format!("{what} {s:?} is not an identifier")))
}

pub(crate) fn raw_uuid(r: &mut Reader<'_>) -> Read<Uuid> {
    Ok(Uuid::from_bytes(r.fixed::<16>()?))
}

/// A non-nil UUID of version 4 or 7: connection ids and keys.
pub(crate) fn id(r: &mut Reader<'_>, what: &str) -> Read<Uuid> {
    let u = raw_uuid(r)?;
    if is_event_id(&u) { Ok(u) } else { invalid(format!("{what} {u} is not a non-nil UUID v4 or v7")) }
}

/// A UUIDv7: incarnations and offer ids, whose byte order is time order.
pub(crate) fn id_v7(r: &mut Reader<'_>, what: &str) -> Read<Uuid> {
    let u = raw_uuid(r)?;
    if u.get_version_num() == 7 { Ok(u) } else { invalid(format!("{what} {u} is not a UUIDv7")) }
}

/// `dead_after_ms`: 0 (no dead detection) or 1 s - 24 h.
pub(crate) fn dead_after_ms(r: &mut Reader<'_>) -> Read<i64> {
    let v = r.long()?;
    if v == 0 || (1_000..=86_400_000).contains(&v) {
        Ok(v)
    } else {
        invalid(format!("dead_after_ms {v} is neither 0 nor within 1,000-86,400,000"))
    }
}

pub(crate) fn protocol_version(r: &mut Reader<'_>) -> Read<i32> {
    let v = r.int()?;
    if v >= 1 { Ok(v) } else { invalid(format!("protocol_version {v} is below 1")) }
}

/// A count (connections, pending, in-flight work, minimum, maximum): never negative.
pub(crate) fn count(r: &mut Reader<'_>, what: &str) -> Read<i32> {
    let v = r.int()?;
    if v >= 0 { Ok(v) } else { invalid(format!("{what} {v} is negative")) }
}

pub(crate) fn optional_count(r: &mut Reader<'_>, what: &str) -> Read<Option<i32>> {
    r.optional(|r| r.int())?
        .map_or(Ok(None), |v| if v >= 0 { Ok(Some(v)) } else { invalid(format!("{what} {v} is negative")) })
}

pub(crate) fn write_optional_count(w: &mut Writer, v: Option<i32>) {
    w.optional(v.as_ref(), |w, v| w.int(*v));
}

/// A string of at most `max` bytes.
pub(crate) fn bounded_string(r: &mut Reader<'_>, max: usize, what: &str) -> Read<String> {
    let s = r.string()?;
    if s.len() <= max { Ok(s.to_owned()) } else { invalid(format!("{what} of {} bytes exceeds {max}", s.len())) }
}

pub(crate) fn optional_string(r: &mut Reader<'_>, max: usize, what: &str) -> Read<Option<String>> {
    match r.optional(|r| r.string())? {
        Some(s) if s.len() > max => invalid(format!("{what} of {} bytes exceeds {max}", s.len())),
        s => Ok(s.map(str::to_owned)),
    }
}

pub(crate) fn write_optional_string(w: &mut Writer, v: Option<&String>) {
    w.optional(v, |w, s| w.string(s));
}

/// `union { null, bytes }` of at most `max` bytes.
pub(crate) fn optional_bytes(r: &mut Reader<'_>, max: usize, what: &str) -> Read<Option<Bytes>> {
    match r.optional(|r| r.bytes())? {
        Some(b) if b.len() > max => invalid(format!("{what} of {} bytes exceeds {max}", b.len())),
        b => Ok(b.map(Bytes::copy_from_slice)),
    }
}

pub(crate) fn write_optional_bytes(w: &mut Writer, v: Option<&Bytes>) {
    w.optional(v, |w, b| w.bytes(b));
}

/// `map<long>`, keys unique.
pub(crate) fn counters(r: &mut Reader<'_>) -> Read<BTreeMap<String, i64>> {
    // A key and a value take at least a byte each.
    let fit = r.remaining() / 2;
    let entries = r.array(fit, |r| Ok((r.string()?, r.long()?)))?;
    let mut out = BTreeMap::new();
    for (k, v) in entries {
        if out.insert(k.to_owned(), v).is_some() {
            return invalid(format!("counter {k:?} appears twice"));
        }
    }
    Ok(out)
}

pub(crate) fn write_counters(w: &mut Writer, counters: &BTreeMap<String, i64>) {
    if !counters.is_empty() {
        w.long(counters.len() as i64);
        for (k, v) in counters {
            w.string(k);
            w.long(*v);
        }
    }
    w.long(0);
}

/// Entries of a list must name distinct operations.
pub(crate) fn unique_operations<'a>(names: impl Iterator<Item = &'a Identifier>, what: &str) -> Read<()> {
    let mut seen: Vec<&Identifier> = Vec::new();
    for n in names {
        if seen.contains(&n) {
            return invalid(format!("{what}: operation {n} appears twice"));
        }
        seen.push(n);
    }
    Ok(())
}

/// The `sender, operation, connection_id` that messages about one connection start with.
pub(crate) fn connection_head(r: &mut Reader<'_>, limits: &Limits) -> Read<(Sender, Identifier, Uuid)> {
    Ok((Sender::read(r, limits)?, ident(r, "operation")?, id(r, "connection_id")?))
}

pub(crate) fn write_connection_head(w: &mut Writer, sender: &Sender, operation: &str, connection_id: &Uuid) {
    sender.write(w);
    w.string(operation);
    w.raw(connection_id.as_bytes());
}

/// A protocol enum: Rust variants in symbol order, the last one `Other`, which is also what a
/// symbol index beyond the known ones decodes to (the enum default of the schema).
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $symbol:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
        }

        impl $name {
            /// Every variant, in the schema's symbol order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The Avro symbol.
            pub const fn symbol(self) -> &'static str {
                match self {
                    $($name::$variant => $symbol,)*
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::Other
            }
        }

        impl $crate::protocol::wire::Wire for $name {
            const MIN_LEN: usize = 1;

            fn write(&self, w: &mut busline::codec::Writer) {
                w.index(*self as usize);
            }

            fn read(r: &mut busline::codec::Reader<'_>, _: &$crate::Limits) -> $crate::protocol::wire::Read<Self> {
                let i = r.long()?;
                match usize::try_from(i) {
                    Ok(i) => Ok($name::ALL.get(i).copied().unwrap_or($name::Other)),
                    Err(_) => $crate::protocol::wire::invalid(format!("{} symbol index {i} is negative", stringify!($name))),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

impl Wire for SchemaSpec {
    const MIN_LEN: usize = 3;

    fn write(&self, w: &mut Writer) {
        w.boolean(self.empty);
        w.boolean(self.any);
        w.array(self.schemas(), |w, s| w.string(s.text()));
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let empty = r.boolean()?;
        let any = r.boolean()?;
        let fit = r.remaining();
        let texts = r.array(MAX_SCHEMAS_PER_SPEC.min(fit), |r| r.string())?;
        let mut schemas = Vec::with_capacity(texts.len());
        for text in texts {
            let s = Schema::parse_with_limits(text, limits).or_else(|e| invalid(format!("schema {text:?}: {e}")))?;
            schemas.push(s);
        }
        let mut spec = SchemaSpec::from_schemas_with_limits(schemas, limits).or_else(|e| invalid(e.to_string()))?;
        spec.empty = empty;
        spec.any = any;
        Ok(spec)
    }
}
