//! # orbitalis-schemas
//!
//! The typed layer of Orbitalis: Avro payloads ([`Message`], [`Data`], the [`primitives`]),
//! payload schemas with our own fingerprints ([`Schema`], [`canonical`]), compatibility and
//! negotiation ([`can_read`], [`SchemaSpec`]), and the protocol's own messages
//! ([`protocol`]), hand-encoded and validated.
//!
//! The `.avsc` files in `schemas/avro/` are the wire contract of the protocol messages; the
//! tests check the Rust types against them.
//!
//! ## Quick start
//!
//! A type deriving `AvroSchema` and serde becomes a message with [`impl_message!`] (the
//! derive needs `apache-avro` with feature `derive`, `serde` and `serde_json` in your
//! dependencies):
//!
//! ```
//! use apache_avro::AvroSchema;
//! use orbitalis_schemas::{Message, Schema, SchemaSpec, can_read, compatible, impl_message};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq)]
//! #[avro(namespace = "home")]
//! struct Status {
//!     lamp: String,
//!     on: bool,
//! }
//! impl_message!(Status);
//!
//! # fn main() -> Result<(), orbitalis_schemas::Error> {
//! let status = Status { lamp: "lamp-x".into(), on: true };
//! let payload = status.to_payload()?;
//! assert_eq!(payload.fingerprint, Status::fingerprint()?);
//! assert_eq!(Status::decode(&payload.datum)?, status);
//!
//! // A later revision adds a field with a default: it reads data of the old one.
//! let v2 = Schema::parse(
//!     r#"{"type":"record","name":"Status","namespace":"home","fields":[
//!         {"name":"lamp","type":"string"},{"name":"on","type":"boolean"},
//!         {"name":"watts","type":"double","default":0.0}]}"#,
//! )?;
//! assert!(can_read(Status::schema()?, &v2));
//! assert!(compatible(&SchemaSpec::of::<Status>()?, &SchemaSpec::from_schemas([v2])?));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod canonical;
pub mod compat;
mod error;
pub mod limits;
pub mod message;
mod model;
pub mod primitives;
pub mod protocol;
mod schema;
pub mod spec;

pub use compat::can_read;
pub use error::Error;
pub use limits::Limits;
pub use message::{Data, Message, RawPayload};
pub use primitives::{Bool, BytesMessage, Empty, Float32, Float64, Int32, Int64, StringMessage};
pub use schema::Schema;
pub use spec::{SchemaSpec, compatible, negotiate_input, negotiate_output, readable, resolve_reader, usable};

#[doc(hidden)]
pub mod __private {
    pub use apache_avro::AvroSchema;
}
