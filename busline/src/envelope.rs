//! The event envelope of PROTOCOL.md §2.1 and its one binary codec.
//!
//! Every transport carries `B0 0B 01` followed by the Avro binary datum of
//! `orbitalis.busline.Envelope` (`busline/avro/Envelope.avsc`), nothing after it. The
//! in-memory bus hands [`Event`] values over without encoding them; its size limit is still
//! the encoded size, so a program behaves the same on every bus.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use uuid::Uuid;

use crate::codec::{self, Reader, Writer};
use crate::error::{DecodeError, DecodeErrorKind, Error};
use crate::topic::Identifier;

/// The two magic bytes every envelope starts with.
pub const MAGIC: [u8; 2] = [0xB0, 0x0B];
/// The envelope version this build writes and reads.
pub const VERSION: u8 = 1;
/// Default `max_envelope_size` (NATS's default `max_payload`).
pub const DEFAULT_MAX_ENVELOPE_SIZE: usize = 1 << 20;
/// Smallest valid `max_envelope_size`.
pub const MIN_MAX_ENVELOPE_SIZE: usize = 64 << 10;
/// Largest valid `max_envelope_size`.
pub const MAX_MAX_ENVELOPE_SIZE: usize = 64 << 20;
/// Most headers on one event.
pub const MAX_HEADERS: usize = 16;
const MAX_HEADER_KEY: usize = 64;
const MAX_HEADER_VALUE: usize = 256;
const MAX_HEADERS_TOTAL: usize = 4096;

/// Checks a `max_envelope_size` against its valid range (64 KiB - 64 MiB).
pub fn check_max_envelope_size(size: usize) -> Result<usize, Error> {
    if (MIN_MAX_ENVELOPE_SIZE..=MAX_MAX_ENVELOPE_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(Error::Config(format!("max_envelope_size {size} is outside 65536..=67108864 bytes")))
    }
}

/// The CRC-64-AVRO (Rabin) fingerprint of a writer schema's Parsing Canonical Form, in its
/// 8-byte little-endian wire form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Fingerprint(pub [u8; 8]);

impl Fingerprint {
    /// From the numeric Rabin value.
    pub const fn from_u64(v: u64) -> Self {
        Fingerprint(v.to_le_bytes())
    }

    /// The numeric Rabin value.
    pub const fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.0)
    }

    /// Parses the 16-hex-digit wire order form used in PROTOCOL.md's tables.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 16 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 8];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A typed value: the writer schema's fingerprint and the value's Avro binary datum.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Payload {
    /// Identifies the writer schema.
    pub fingerprint: Fingerprint,
    /// The Avro binary encoding of the value.
    pub datum: Bytes,
}

impl Payload {
    /// A payload of `datum` written under the schema with `fingerprint`.
    pub fn new(fingerprint: Fingerprint, datum: impl Into<Bytes>) -> Self {
        Payload { fingerprint, datum: datum.into() }
    }

    fn encoded_len(&self) -> usize {
        8 + codec::bytes_len(self.datum.len())
    }
}

/// Event headers: at most 16, keys `[a-z0-9-]{1,64}`, values up to 256 bytes, 4 KiB in all.
/// Cheap to clone; unknown keys are carried and ignored.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Option<Arc<BTreeMap<String, String>>>);

impl Headers {
    /// No headers.
    pub const fn new() -> Self {
        Headers(None)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.as_ref()?.get(key).map(String::as_str)
    }

    /// Sets `key` to `value`, checking every header rule.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Result<(), Error> {
        let mut map = self.0.as_deref().cloned().unwrap_or_default();
        map.insert(key.into(), value.into());
        check_headers(&map).map_err(Error::InvalidHeader)?;
        self.0 = Some(Arc::new(map));
        Ok(())
    }

    /// Iterates over `(key, value)` in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn encoded_len(&self) -> usize {
        let entries: usize = self.iter().map(|(k, v)| codec::bytes_len(k.len()) + codec::bytes_len(v.len())).sum();
        let n = self.len();
        if n == 0 { 1 } else { codec::long_len(n as i64) + entries + 1 }
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

fn check_headers(map: &BTreeMap<String, String>) -> Result<(), &'static str> {
    if map.len() > MAX_HEADERS {
        return Err("more than 16 headers");
    }
    let mut total = 0;
    for (k, v) in map {
        let key_ok = !k.is_empty()
            && k.len() <= MAX_HEADER_KEY
            && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !key_ok {
            return Err("a key is not [a-z0-9-]{1,64}");
        }
        if v.len() > MAX_HEADER_VALUE {
            return Err("a value is longer than 256 bytes");
        }
        total += k.len() + v.len();
    }
    if total > MAX_HEADERS_TOTAL {
        return Err("headers exceed 4 KiB in all");
    }
    Ok(())
}

/// The envelope every transport carries. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Event {
    /// Fresh per publish: UUID v4 or v7, never nil.
    pub id: Uuid,
    /// The publishing orbiter's identifier.
    pub publisher: Identifier,
    /// The publisher's wall clock, UTC microseconds since the Unix epoch; informational.
    pub timestamp_us: i64,
    /// Set on call inputs and replies and on introspection; `None` elsewhere.
    pub correlation_id: Option<Uuid>,
    /// `None` is the empty payload.
    pub payload: Option<Payload>,
    /// Optional headers, such as `traceparent`.
    pub headers: Headers,
}

/// Microseconds since the Unix epoch by the wall clock.
pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl Event {
    /// A new event from `publisher`, with a fresh random (v4) id, the current time and no
    /// payload. Random rather than v7: the uuid crate orders v7 ids through a process-wide
    /// lock, six times the cost, and nothing orders events by id.
    pub fn new(publisher: Identifier) -> Self {
        Event {
            id: Uuid::new_v4(),
            publisher,
            timestamp_us: now_us(),
            correlation_id: None,
            payload: None,
            headers: Headers::new(),
        }
    }

    /// Sets the payload.
    pub fn with_payload(mut self, payload: Payload) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Exact size of [`Event::encode`]'s output, computed without encoding.
    pub fn encoded_len(&self) -> usize {
        3 + 16
            + codec::bytes_len(self.publisher.len())
            + codec::long_len(self.timestamp_us)
            + 1
            + self.correlation_id.map_or(0, |_| 16)
            + 1
            + self.payload.as_ref().map_or(0, Payload::encoded_len)
            + self.headers.encoded_len()
    }

    /// Checks the encoded size against `max`, as every publisher does before sending.
    pub fn check_size(&self, max: usize) -> Result<usize, Error> {
        let size = self.encoded_len();
        if size > max { Err(Error::PayloadTooLarge { size, max }) } else { Ok(size) }
    }

    /// Encodes the envelope: magic, version, Avro datum.
    pub fn encode(&self) -> Bytes {
        self.encode_sized(self.encoded_len())
    }

    /// [`Event::check_size`] and [`Event::encode`], measuring the event once.
    pub fn encode_within(&self, max: usize) -> Result<Bytes, Error> {
        self.check_size(max).map(|size| self.encode_sized(size))
    }

    fn encode_sized(&self, size: usize) -> Bytes {
        let mut w = Writer::with_capacity(size);
        w.raw(&MAGIC);
        w.raw(&[VERSION]);
        w.raw(self.id.as_bytes());
        w.string(&self.publisher);
        w.long(self.timestamp_us);
        w.optional(self.correlation_id.as_ref(), |w, id| w.raw(id.as_bytes()));
        w.optional(self.payload.as_ref(), |w, p| {
            w.raw(&p.fingerprint.0);
            w.bytes(&p.datum);
        });
        let n = self.headers.len();
        if n > 0 {
            w.long(n as i64);
            for (k, v) in self.headers.iter() {
                w.string(k);
                w.string(v);
            }
        }
        w.long(0);
        Bytes::from(w.into_vec())
    }

    /// Decodes bytes from the bus, running receive checks 1-5 of PROTOCOL.md §2.3 in order.
    ///
    /// Total: any input gives an event or a [`DecodeError`] naming the failed check; nothing
    /// is allocated before its length is checked against the bytes that remain.
    pub fn decode(bytes: &Bytes, max_size: usize) -> Result<Event, DecodeError> {
        Self::decode_reusing(bytes, max_size, &mut None)
    }

    /// [`Event::decode`], taking the publisher from `last` when it is the same one (no
    /// validation or allocation), and leaving the decoded publisher there.
    pub(crate) fn decode_reusing(
        bytes: &Bytes,
        max_size: usize,
        last: &mut Option<Identifier>,
    ) -> Result<Event, DecodeError> {
        use DecodeErrorKind::*;
        if bytes.len() > max_size {
            return Err(DecodeError::new(Oversized, "larger than max_envelope_size"));
        }
        if bytes.len() < 2 || bytes[..2] != MAGIC {
            return Err(DecodeError::new(BadMagic, "does not start with B0 0B"));
        }
        match bytes.get(2) {
            Some(&VERSION) => {}
            Some(_) => return Err(DecodeError::new(UnsupportedVersion, "unknown envelope version")),
            None => return Err(DecodeError::new(UnsupportedVersion, "no version byte")),
        }
        let body = &bytes[3..];
        let mut r = Reader::new(body);
        let id = Uuid::from_bytes(r.fixed::<16>()?);
        let publisher = r.string()?;
        let timestamp_us = r.long()?;
        let correlation_id = r.optional(|r| r.fixed::<16>().map(Uuid::from_bytes))?;
        let payload = r.optional(|r| {
            let fingerprint = Fingerprint(r.fixed::<8>()?);
            let datum = r.bytes()?;
            Ok((fingerprint, datum))
        })?;
        let headers = r.array(MAX_HEADERS, |r| Ok((r.string()?, r.string()?)))?;
        r.finish()?;

        let invalid = |detail| DecodeError::new(InvalidEnvelope, detail);
        if !is_event_id(&id) {
            return Err(invalid("id is not a non-nil UUID v4 or v7"));
        }
        let publisher = match last {
            Some(p) if p.as_str() == publisher => p.clone(),
            _ => {
                let p = Identifier::new(publisher).map_err(|_| invalid("publisher is not an identifier"))?;
                last.insert(p).clone()
            }
        };
        let headers = if headers.is_empty() {
            Headers::new()
        } else {
            let map: BTreeMap<String, String> =
                headers.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            check_headers(&map).map_err(invalid)?;
            Headers(Some(Arc::new(map)))
        };
        let payload = payload.map(|(fingerprint, datum)| Payload { fingerprint, datum: bytes.slice_ref(datum) });
        Ok(Event { id, publisher, timestamp_us, correlation_id, payload, headers })
    }
}

/// Whether `id` may name an event: a non-nil UUID of version 4 or 7.
pub fn is_event_id(id: &Uuid) -> bool {
    !id.is_nil() && matches!(id.get_version_num(), 4 | 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    const T: i64 = 1_767_225_600_000_000;

    fn golden_event(last: u8, publisher: &str) -> Event {
        let mut id = *Uuid::parse_str("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b").unwrap().as_bytes();
        id[15] = last;
        Event {
            id: Uuid::from_bytes(id),
            publisher: Identifier::new(publisher).unwrap(),
            timestamp_us: T,
            correlation_id: None,
            payload: None,
            headers: Headers::new(),
        }
    }

    fn assert_golden(e: &Event, vector: &str) {
        let want = hex(vector);
        let got = e.encode();
        assert_eq!(got.as_ref(), &want[..], "encoding differs from the golden vector");
        assert_eq!(e.encoded_len(), want.len());
        assert_eq!(&Event::decode(&Bytes::from(want), DEFAULT_MAX_ENVELOPE_SIZE).unwrap(), e);
    }

    #[test]
    fn golden_vector_without_payload() {
        assert_golden(
            &golden_event(0x2b, "lower"),
            "b00b01 0190a1b2c3d47e5f8a6b7c8d9e0f1a2b 0a6c6f776572 808082e288d2a306 00 00 00",
        );
    }

    #[test]
    fn golden_vector_with_keepalive_payload() {
        let datum = hex("0a6c6f7765720190a1b2000070008000000000000001e0d403020190a1b2c3d47e5f8a6b7c8d9e0f1a2b00");
        let e = golden_event(0x2c, "lower")
            .with_payload(Payload::new(Fingerprint::from_hex("4b67a6371c956250").unwrap(), datum));
        assert_golden(
            &e,
            "b00b01 0190a1b2c3d47e5f8a6b7c8d9e0f1a2c 0a6c6f776572 808082e288d2a306 00 02 4b67a6371c956250 56 0a6c6f7765720190a1b2000070008000000000000001e0d403020190a1b2c3d47e5f8a6b7c8d9e0f1a2b00 00",
        );
    }

    #[test]
    fn golden_vector_with_correlation_and_string() {
        let e = golden_event(0x2d, "home")
            .with_correlation(Uuid::parse_str("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2e").unwrap())
            .with_payload(Payload::new(Fingerprint::from_hex("c70345637248018f").unwrap(), hex("044849")));
        assert_golden(
            &e,
            "b00b01 0190a1b2c3d47e5f8a6b7c8d9e0f1a2d 08686f6d65 808082e288d2a306 02 0190a1b2c3d47e5f8a6b7c8d9e0f1a2e 02 c70345637248018f 06 044849 00",
        );
    }

    #[test]
    fn headers_round_trip_and_count_in_the_size() {
        let mut e = Event::new(Identifier::new("p").unwrap());
        e.headers.insert("traceparent", "00-abc-def-01").unwrap();
        e.headers.insert("x-a", "").unwrap();
        let bytes = e.encode();
        assert_eq!(bytes.len(), e.encoded_len());
        assert_eq!(Event::decode(&bytes, DEFAULT_MAX_ENVELOPE_SIZE).unwrap(), e);
        assert!(e.headers.insert("Upper", "x").is_err());
        assert!(e.headers.insert("k", "v".repeat(257)).is_err());
    }

    #[test]
    fn checks_run_in_order_and_name_their_counter() {
        let good = golden_event(0x2b, "lower").encode();
        let kind = |b: &[u8], max| Event::decode(&Bytes::copy_from_slice(b), max).unwrap_err().kind;
        assert_eq!(kind(&good, good.len() - 1), DecodeErrorKind::Oversized);
        assert_eq!(kind(b"{\"json\":1}", 1 << 20), DecodeErrorKind::BadMagic);
        assert_eq!(kind(&[0xB0, 0x0B, 0x02, 0], 1 << 20), DecodeErrorKind::UnsupportedVersion);
        assert_eq!(kind(&good[..good.len() - 1], 1 << 20), DecodeErrorKind::Malformed);
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert_eq!(kind(&trailing, 1 << 20), DecodeErrorKind::Malformed);
        let mut nil = good.to_vec();
        nil[3..19].fill(0);
        assert_eq!(kind(&nil, 1 << 20), DecodeErrorKind::InvalidEnvelope);
        let mut bad_pub = good.to_vec();
        bad_pub[20] = b'.';
        assert_eq!(kind(&bad_pub, 1 << 20), DecodeErrorKind::InvalidEnvelope);
    }

    #[test]
    fn oversized_events_are_refused_at_publish() {
        let e = Event::new(Identifier::new("p").unwrap())
            .with_payload(Payload::new(Fingerprint::default(), vec![0u8; MIN_MAX_ENVELOPE_SIZE]));
        assert!(matches!(e.check_size(MIN_MAX_ENVELOPE_SIZE), Err(Error::PayloadTooLarge { .. })));
        assert!(matches!(e.encode_within(MIN_MAX_ENVELOPE_SIZE), Err(Error::PayloadTooLarge { .. })));
        let fits =
            Event::new(Identifier::new("p").unwrap()).with_payload(Payload::new(Fingerprint::default(), vec![1]));
        assert_eq!(fits.encode_within(MIN_MAX_ENVELOPE_SIZE).unwrap(), fits.encode());
    }
}
