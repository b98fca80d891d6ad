//! Avro-typed payloads: the [`Message`] trait for typed values and the [`Data`] trait for
//! what handlers take and return.
//!
//! A type becomes a message with `#[derive(AvroSchema, Serialize, Deserialize)]` and
//! [`impl_message!`](crate::impl_message). Its schema, writer and reader are built once, on
//! first use, and kept in statics inside the impl: encoding and decoding look nothing up.
//!
//! The type's schema must be a valid payload schema ([`Schema::parse`]): a recursive type or
//! one in a reserved namespace makes [`Message::schema`], and every call that needs it, fail
//! with the same error, every time, instead of panicking. A runtime learns it when the
//! operation is declared, through [`Data::spec`].

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::writer::datum::GenericDatumWriter;
use busline::{Fingerprint, Payload};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::canonical;
use crate::compat::resolve;
use crate::limits::ensure_decoding_bound;
use crate::primitives::Empty;
use crate::spec::SchemaSpec;
use crate::{Error, Schema};

/// A value with an Avro schema, sent as a payload.
///
/// Implement it with [`impl_message!`](crate::impl_message) for a type deriving
/// `apache_avro::AvroSchema`, `serde::Serialize` and `serde::Deserialize`.
pub trait Message: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The type's codec, built on first use.
    #[doc(hidden)]
    fn codec() -> Result<&'static Codec<Self>, Error>;

    /// The type's schema; fails when it is not a valid payload schema.
    fn schema() -> Result<&'static Schema, Error> {
        Self::codec().map(Codec::schema)
    }

    /// The fingerprint of [`Message::schema`].
    fn fingerprint() -> Result<Fingerprint, Error> {
        Self::schema().map(Schema::fingerprint)
    }

    /// The Avro binary datum of `self`.
    fn encode(&self) -> Result<Bytes, Error> {
        Self::codec()?.encode(self)
    }

    /// Decodes a datum written under [`Message::schema`], with nothing after it.
    fn decode(datum: &[u8]) -> Result<Self, Error> {
        Self::codec()?.decode(datum)
    }

    /// [`Message::decode`] of a datum held in shared bytes: a type that keeps bytes of it
    /// (`BytesMessage`) takes a view of them instead of a copy.
    fn decode_shared(datum: &Bytes) -> Result<Self, Error> {
        Self::decode(datum)
    }

    /// Decodes a datum written under `writer`, resolving it into this type's schema.
    ///
    /// Slower than [`Message::decode`] (it goes through apache-avro's generic values), so it
    /// is meant for data from evolved writers; under this type's own schema it is `decode`.
    fn decode_from(writer: &Schema, datum: &[u8]) -> Result<Self, Error> {
        Self::codec()?.decode_from(writer, datum)
    }

    /// `self` as a payload: fingerprint and datum.
    fn to_payload(&self) -> Result<Payload, Error> {
        Ok(Payload::new(Self::fingerprint()?, self.encode()?))
    }
}

/// Implements [`Message`] for a type deriving `AvroSchema`, `Serialize` and `Deserialize`.
///
/// ```
/// use apache_avro::AvroSchema;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq)]
/// #[avro(namespace = "demo")]
/// struct Reading {
///     sensor: String,
///     celsius: f64,
/// }
/// orbitalis_schemas::impl_message!(Reading);
/// ```
#[macro_export]
macro_rules! impl_message {
    ($t:ty) => {
        impl $crate::Message for $t {
            $crate::impl_message!(@codec $t);
        }
    };
    (@codec $t:ty) => {
        fn codec() -> ::core::result::Result<&'static $crate::message::Codec<Self>, $crate::Error> {
            static SCHEMA: ::std::sync::OnceLock<::core::result::Result<$crate::Schema, $crate::Error>> =
                ::std::sync::OnceLock::new();
            static CODEC: ::std::sync::OnceLock<::core::result::Result<$crate::message::Codec<$t>, $crate::Error>> =
                ::std::sync::OnceLock::new();
            $crate::message::Codec::get(&SCHEMA, &CODEC, <$t as $crate::__private::AvroSchema>::get_schema)
        }
    };
}

/// Most evolved writer schemas whose resolution one type keeps; beyond, each decode resolves
/// again (peers choose writer schemas, so the cache must not grow with them).
const MAX_CACHED_WRITERS: usize = 64;

/// A type's schema with its prebuilt writer and reader.
#[doc(hidden)]
pub struct Codec<T> {
    schema: &'static Schema,
    writer: GenericDatumWriter<'static>,
    reader: GenericDatumReader<'static>,
    reader_names: ResolvedSchema<'static>,
    /// Evolved writers, by fingerprint: the writer schema to decode with, or why none fits.
    writers: Mutex<HashMap<Fingerprint, Arc<Result<apache_avro::Schema, Error>>>>,
    _type: PhantomData<fn() -> T>,
}

fn encode_error(e: apache_avro::Error) -> Error {
    Error::Encode(e.to_string())
}

fn decode_error(e: apache_avro::Error) -> Error {
    Error::Decode(e.to_string())
}

fn finished(rest: &[u8]) -> Result<(), Error> {
    if rest.is_empty() { Ok(()) } else { Err(Error::Decode(format!("{} bytes follow the datum", rest.len()))) }
}

impl<T: Serialize + DeserializeOwned> Codec<T> {
    /// Builds the codec on first use; used by [`impl_message!`](crate::impl_message).
    #[doc(hidden)]
    pub fn get(
        schema: &'static OnceLock<Result<Schema, Error>>,
        codec: &'static OnceLock<Result<Codec<T>, Error>>,
        avro_schema: fn() -> apache_avro::Schema,
    ) -> Result<&'static Codec<T>, Error> {
        codec
            .get_or_init(|| {
                let schema = schema.get_or_init(|| Schema::from_avro(&avro_schema())).as_ref().map_err(Clone::clone)?;
                Codec::new(schema)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn new(schema: &'static Schema) -> Result<Self, Error> {
        let writer = GenericDatumWriter::builder(schema.avro()).human_readable(false).build().map_err(encode_error)?;
        let reader = GenericDatumReader::builder(schema.avro()).human_readable(false).build().map_err(decode_error)?;
        let reader_names = ResolvedSchema::new(schema.avro()).map_err(decode_error)?;
        Ok(Codec { schema, writer, reader, reader_names, writers: Mutex::new(HashMap::new()), _type: PhantomData })
    }

    /// The type's schema.
    pub fn schema(&self) -> &'static Schema {
        self.schema
    }

    pub(crate) fn encode(&self, value: &T) -> Result<Bytes, Error> {
        let mut out = Vec::new();
        self.writer.write_ser(&mut out, value).map_err(encode_error)?;
        Ok(Bytes::from(out))
    }

    pub(crate) fn decode(&self, datum: &[u8]) -> Result<T, Error> {
        ensure_decoding_bound();
        let mut rest = datum;
        let value = self.reader.read_deser(&mut rest).map_err(decode_error)?;
        finished(rest)?;
        Ok(value)
    }

    fn decode_from(&self, writer: &Schema, datum: &[u8]) -> Result<T, Error> {
        if writer.fingerprint() == self.schema.fingerprint() {
            return self.decode(datum);
        }
        let resolved = self.writer_schema(writer);
        let writer_schema = resolved.as_ref().as_ref().map_err(Clone::clone)?;
        ensure_decoding_bound();
        let mut rest = datum;
        let value = GenericDatumReader::builder(writer_schema)
            .human_readable(false)
            .build()
            .and_then(|r| r.read_value(&mut rest))
            .map_err(decode_error)?;
        finished(rest)?;
        let value =
            value.resolve_with_names(self.schema.avro(), self.reader_names.get_names()).map_err(decode_error)?;
        apache_avro::from_value(&value).map_err(decode_error)
    }

    /// The schema to decode `writer`'s data with before resolving it into ours.
    ///
    /// It is the writer's canonical form with the fields our schema reads by alias renamed to
    /// our names (apache-avro matches fields by name only) and logical types left out
    /// (apache-avro refuses, for instance, a timestamp value where a plain long is read).
    fn writer_schema(&self, writer: &Schema) -> Arc<Result<apache_avro::Schema, Error>> {
        let key = writer.fingerprint();
        // A poisoned lock only means another decode panicked; the map itself stays valid.
        let mut cache = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = cache.get(&key) {
            return Arc::clone(found);
        }
        let built = Arc::new(match resolve(writer, self.schema) {
            None => Err(Error::IncompatibleSchema { writer: writer.to_string(), reader: self.schema.to_string() }),
            Some(resolution) => {
                let text = canonical::print_for_parser(writer.model(), &resolution.renames);
                apache_avro::Schema::parse_str(&text).map_err(decode_error)
            }
        });
        if cache.len() < MAX_CACHED_WRITERS {
            cache.insert(key, Arc::clone(&built));
        }
        built
    }
}

/// What a handler takes or returns: a [`Message`], [`Empty`] or a [`RawPayload`].
pub trait Data: Sized + Send + 'static {
    /// What this type reads or writes.
    fn spec() -> Result<SchemaSpec, Error>;

    /// `self` as an event payload (`None`: an event without payload).
    ///
    /// Not `to_payload`, so that it never clashes with [`Message::to_payload`] when both
    /// traits are in scope.
    fn to_optional_payload(&self) -> Result<Option<Payload>, Error>;

    /// The value of an event's payload; `writer` is the schema the sender declared for the
    /// payload's fingerprint (from the negotiated spec), needed when it is not this type's.
    fn from_payload(payload: Option<&Payload>, writer: Option<&Schema>) -> Result<Self, Error>;
}

impl<T: Message> Data for T {
    fn spec() -> Result<SchemaSpec, Error> {
        SchemaSpec::of::<T>()
    }

    fn to_optional_payload(&self) -> Result<Option<Payload>, Error> {
        Message::to_payload(self).map(Some)
    }

    fn from_payload(payload: Option<&Payload>, writer: Option<&Schema>) -> Result<Self, Error> {
        let payload = payload.ok_or(Error::PayloadShape(
            "the event has no payload where a typed value was expected: the sender must send a value",
        ))?;
        let own = T::schema()?;
        if payload.fingerprint == own.fingerprint() {
            return T::decode_shared(&payload.datum);
        }
        match writer {
            Some(w) if w.fingerprint() == payload.fingerprint => T::decode_from(w, &payload.datum),
            Some(_) => Err(Error::PayloadShape(
                "the writer schema given does not have the payload's fingerprint: pass the schema the fingerprint names",
            )),
            None => Err(Error::IncompatibleSchema { writer: payload.fingerprint.to_string(), reader: own.to_string() }),
        }
    }
}

impl Data for Empty {
    fn spec() -> Result<SchemaSpec, Error> {
        Ok(SchemaSpec::empty())
    }

    fn to_optional_payload(&self) -> Result<Option<Payload>, Error> {
        Ok(None)
    }

    fn from_payload(payload: Option<&Payload>, _writer: Option<&Schema>) -> Result<Self, Error> {
        match payload {
            None => Ok(Empty),
            Some(_) => Err(Error::PayloadShape(
                "the event has a payload where none was expected: the sender must send an empty event",
            )),
        }
    }
}

/// Nothing at all, the NONE form: the output of a handler that returns nothing (no event is
/// sent; a call's reply carries no output) or the input of a producer.
impl Data for () {
    fn spec() -> Result<SchemaSpec, Error> {
        Ok(SchemaSpec::none())
    }

    fn to_optional_payload(&self) -> Result<Option<Payload>, Error> {
        Ok(None)
    }

    fn from_payload(payload: Option<&Payload>, _writer: Option<&Schema>) -> Result<Self, Error> {
        match payload {
            None => Ok(()),
            Some(_) => Err(Error::PayloadShape(
                "a payload came where nothing was declared: the operation's spec is NONE on this side",
            )),
        }
    }
}

/// A payload handed over undecoded: the ANY form of PROTOCOL.md §5.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawPayload {
    /// The writer schema's fingerprint.
    pub fingerprint: Fingerprint,
    /// The Avro binary datum.
    pub datum: Bytes,
}

impl From<Payload> for RawPayload {
    fn from(p: Payload) -> Self {
        RawPayload { fingerprint: p.fingerprint, datum: p.datum }
    }
}

impl From<RawPayload> for Payload {
    fn from(r: RawPayload) -> Self {
        Payload { fingerprint: r.fingerprint, datum: r.datum }
    }
}

impl Data for RawPayload {
    fn spec() -> Result<SchemaSpec, Error> {
        Ok(SchemaSpec::any())
    }

    fn to_optional_payload(&self) -> Result<Option<Payload>, Error> {
        Ok(Some(Payload::from(self.clone())))
    }

    fn from_payload(payload: Option<&Payload>, _writer: Option<&Schema>) -> Result<Self, Error> {
        payload.cloned().map(RawPayload::from).ok_or(Error::PayloadShape(
            "the event has no payload where a raw payload was expected: the sender must send a value",
        ))
    }
}
