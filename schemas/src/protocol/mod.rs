//! The protocol's own messages (PROTOCOL.md §4), as Rust types with a hand-written codec.
//!
//! Each message is a record of namespace `orbitalis.protocol` whose schema is the file
//! `schemas/avro/<Name>.avsc`; it travels as an envelope payload identified by its
//! fingerprint alone. Encoding and decoding are written by hand on busline's total codec
//! (never a panic, lengths checked before allocating, nesting bounded) and follow the `.avsc`
//! layout exactly, which the tests check against apache-avro's generic reader and writer.
//!
//! Decoding validates (PROTOCOL.md §4.2): a value that decodes is a valid message. Two rules
//! need more than the message and stay with the runtime: `operation` must equal the topic's
//! operation token where the topic has one, and `correlation_id` rules (§2.3 check 9).
//!
//! A receiver runs check 8 with [`MessageKind::from_fingerprint`] (or lets
//! [`Control::decode`] tell [`ProtocolError::UnknownFingerprint`]), then check 9 with
//! [`Control::decode`].

use busline::codec::{Reader, Writer};
use busline::{Fingerprint, Identifier, Payload};
use bytes::Bytes;
use std::sync::OnceLock;
use uuid::Uuid;

use crate::limits::Limits;
use crate::{Error, Schema};

mod call;
mod close;
mod handshake;
mod introspect;
mod liveness;
pub(crate) mod wire;

pub use crate::spec::SchemaSpec;
pub use call::{ErrorKind, OperationError, OperationResult};
pub use close::{CloseAck, CloseReason, GracefulClose, GracelessClose};
pub use handshake::{
    Confirm, Discover, Offer, OfferedOperation, OperationNoLongerAvailable, OperationQuery, Reject, RejectReason,
    Request, UnavailableReason,
};
pub use introspect::{
    ConnectionInfo, ConnectionState, IntrospectionRequest, IntrospectionResponse, OperationInfo, OrbiterState,
    PeerInfo, PendingInfo, RequirementInfo, Role, SpecSummary,
};
pub use liveness::{Keepalive, KeepaliveRequest};

use wire::{Read, Wire};

/// The protocol revision this build writes (PROTOCOL.md §4.4).
pub const PROTOCOL_VERSION: i32 = 1;

/// Why a payload is not a protocol message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Receive check 8: the fingerprint names no message of this revision.
    #[error(
        "fingerprint {0} is not a protocol message of revision 1: the sender runs another revision or sent user data on a control topic"
    )]
    UnknownFingerprint(Fingerprint),
    /// Receive check 9: the datum does not decode, has trailing bytes, or breaks §4.2.
    #[error("invalid {message}: {reason}")]
    Invalid {
        /// The message's name.
        message: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl ProtocolError {
    /// The counter a receiver increments for this drop (PROTOCOL.md §2.3).
    pub const fn counter(&self) -> &'static str {
        match self {
            ProtocolError::UnknownFingerprint(_) => "unexpected_message",
            ProtocolError::Invalid { .. } => "invalid_message",
        }
    }
}

/// A message of PROTOCOL.md §4.1.
pub trait ProtocolMessage: Sized {
    /// The record's name, as in its `.avsc` file.
    const NAME: &'static str;
    /// Which message this is.
    const KIND: MessageKind;

    /// The fingerprint that identifies the message on the wire (§4.3).
    fn fingerprint() -> Fingerprint {
        Self::KIND.fingerprint()
    }

    /// The Avro binary datum.
    fn encode(&self) -> Bytes;

    /// Decodes and validates a datum (receive check 9): fails on trailing bytes and on any
    /// rule of §4.2, sizes measured against `limits`.
    fn decode(datum: &[u8], limits: &Limits) -> Result<Self, ProtocolError>;

    /// The message as an envelope payload.
    fn to_payload(&self) -> Payload {
        Payload::new(Self::fingerprint(), self.encode())
    }
}

/// Who sent a message, and when to declare it dead.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sender {
    /// The orbiter's identifier.
    pub identifier: Identifier,
    /// The orbiter's incarnation, a UUIDv7 drawn at each start.
    pub incarnation: Uuid,
    /// "I declare you dead after this silence", in ms; 0 turns dead detection off.
    pub dead_after_ms: i64,
}

impl Wire for Sender {
    const MIN_LEN: usize = 2 + 16 + 1;

    fn write(&self, w: &mut Writer) {
        write_sender(w, &self.identifier, &self.incarnation, self.dead_after_ms);
    }

    fn read(r: &mut Reader<'_>, _: &Limits) -> Read<Self> {
        Ok(Sender {
            identifier: wire::ident(r, "sender.identifier")?,
            incarnation: wire::id_v7(r, "sender.incarnation")?,
            dead_after_ms: wire::dead_after_ms(r)?,
        })
    }
}

/// Sender's layout, which PeerInfo's first fields share.
fn write_sender(w: &mut Writer, identifier: &str, incarnation: &Uuid, dead_after_ms: i64) {
    w.string(identifier);
    w.raw(incarnation.as_bytes());
    w.long(dead_after_ms);
}

const fn hex_fingerprint(hex: &str) -> Fingerprint {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("fingerprints are written in lowercase hex"),
        }
    }
    let b = hex.as_bytes();
    let mut out = [0u8; 8];
    let mut i = 0;
    while i < 8 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    Fingerprint(out)
}

macro_rules! messages {
    ($($name:ident = $fingerprint:literal,)*) => {
        /// Which protocol message a payload is.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum MessageKind {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                $name,
            )*
        }

        impl MessageKind {
            /// Every message of revision 1.
            pub const ALL: &'static [MessageKind] = &[$(MessageKind::$name),*];

            /// The record's name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(MessageKind::$name => stringify!($name),)*
                }
            }

            /// The fingerprint of PROTOCOL.md §4.3.
            pub const fn fingerprint(self) -> Fingerprint {
                match self {
                    $(MessageKind::$name => const { hex_fingerprint($fingerprint) },)*
                }
            }

            /// The `.avsc` text.
            pub const fn schema_text(self) -> &'static str {
                match self {
                    $(MessageKind::$name => include_str!(concat!("../../avro/", stringify!($name), ".avsc")),)*
                }
            }
        }

        /// Any protocol message.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[allow(clippy::large_enum_variant)] // decoded once and dispatched at once: boxing buys nothing
        pub enum Control {
            $(
                #[doc = concat!("A [`", stringify!($name), "`].")]
                $name($name),
            )*
        }

        impl Control {
            /// Which message this is.
            pub fn kind(&self) -> MessageKind {
                match self {
                    $(Control::$name(_) => MessageKind::$name,)*
                }
            }

            /// Decodes a datum known to be of `kind` (check 9).
            pub fn decode_kind(kind: MessageKind, datum: &[u8], limits: &Limits) -> Result<Control, ProtocolError> {
                match kind {
                    $(MessageKind::$name => $name::decode(datum, limits).map(Control::$name),)*
                }
            }

            /// The Avro binary datum.
            pub fn encode(&self) -> Bytes {
                match self {
                    $(Control::$name(m) => m.encode(),)*
                }
            }
        }

        $(
            impl ProtocolMessage for $name {
                const NAME: &'static str = stringify!($name);
                const KIND: MessageKind = MessageKind::$name;

                fn encode(&self) -> Bytes {
                    let mut w = Writer::default();
                    Wire::write(self, &mut w);
                    Bytes::from(w.into_vec())
                }

                fn decode(datum: &[u8], limits: &Limits) -> Result<Self, ProtocolError> {
                    let mut r = Reader::new(datum);
                    <Self as Wire>::read(&mut r, limits)
                        .and_then(|m| Ok(r.finish().map(|()| m)?))
                        .map_err(|e| ProtocolError::Invalid { message: stringify!($name), reason: e.0 })
                }
            }

            impl From<$name> for Control {
                fn from(m: $name) -> Self {
                    Control::$name(m)
                }
            }
        )*
    };
}

messages! {
    Discover = "210dcb9562554a60",
    Offer = "2feda6c2fd4b455b",
    Request = "8055bef695ef65f9",
    Reject = "3c10a0a2ca4f9ff0",
    Confirm = "c7239d82283553dc",
    OperationNoLongerAvailable = "f6a9e8fb68fe6612",
    KeepaliveRequest = "547b50c62be243df",
    Keepalive = "4b67a6371c956250",
    GracefulClose = "82b867cc9a08ee26",
    GracelessClose = "4a1213f13fe4efd0",
    CloseAck = "bc5d00b7655fa0dd",
    OperationResult = "3f077d9226967b36",
    OperationError = "043708100be59029",
    IntrospectionRequest = "4028580c614880e6",
    IntrospectionResponse = "a04439814cbcd312",
}

impl MessageKind {
    /// The message a payload fingerprint names (receive check 8).
    pub fn from_fingerprint(fingerprint: Fingerprint) -> Option<MessageKind> {
        MessageKind::ALL.iter().copied().find(|k| k.fingerprint() == fingerprint)
    }

    /// The message's schema, parsed once.
    pub fn schema(self) -> &'static Schema {
        static SCHEMAS: OnceLock<Vec<Schema>> = OnceLock::new();
        let schemas = SCHEMAS.get_or_init(|| {
            MessageKind::ALL
                .iter()
                .map(|k| Schema::protocol(k.schema_text()).expect("the embedded .avsc files are valid (tested)"))
                .collect()
        });
        &schemas[self as usize]
    }
}

impl Control {
    /// Decodes a payload from a control topic: check 8 (the fingerprint names a message),
    /// then check 9 (it decodes, with nothing after it, and passes §4.2).
    pub fn decode(payload: &Payload, limits: &Limits) -> Result<Control, ProtocolError> {
        let kind = MessageKind::from_fingerprint(payload.fingerprint)
            .ok_or(ProtocolError::UnknownFingerprint(payload.fingerprint))?;
        Control::decode_kind(kind, &payload.datum, limits)
    }

    /// The message as an envelope payload.
    pub fn to_payload(&self) -> Payload {
        Payload::new(self.kind().fingerprint(), self.encode())
    }

    /// The sender, for the messages that name one (all but call replies).
    pub fn sender(&self) -> Option<&Sender> {
        match self {
            Control::Discover(m) => Some(&m.sender),
            Control::Offer(m) => Some(&m.sender),
            Control::Request(m) => Some(&m.sender),
            Control::Reject(m) => Some(&m.sender),
            Control::Confirm(m) => Some(&m.sender),
            Control::OperationNoLongerAvailable(m) => Some(&m.sender),
            Control::KeepaliveRequest(m) => Some(&m.sender),
            Control::Keepalive(m) => Some(&m.sender),
            Control::GracefulClose(m) => Some(&m.sender),
            Control::GracelessClose(m) => Some(&m.sender),
            Control::CloseAck(m) => Some(&m.sender),
            Control::IntrospectionRequest(m) => Some(&m.sender),
            Control::IntrospectionResponse(m) => Some(&m.sender),
            Control::OperationResult(_) | Control::OperationError(_) => None,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Decode(e.to_string())
    }
}
