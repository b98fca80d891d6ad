//! The one error type of `busline`.

use std::fmt;

/// A boxed error from a transport's client library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a bus operation can fail with.
///
/// Variants are stable and meant to be matched on; messages say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An identifier (orbiter, operation, namespace token) broke the rules of PROTOCOL.md §3.1.
    #[error("invalid identifier {value:?}: {reason}; use 1-64 bytes of [A-Za-z0-9_-] starting with a letter or digit")]
    InvalidIdentifier {
        /// The rejected text.
        value: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// A topic to publish on broke the topic rules (PROTOCOL.md §3).
    #[error("invalid topic {value:?}: {reason}; a topic is up to 512 bytes of '.'-separated tokens of [A-Za-z0-9_-]")]
    InvalidTopic {
        /// The rejected text.
        value: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// A subscription pattern broke the pattern rules.
    #[error(
        "invalid pattern {value:?}: {reason}; a pattern is a topic whose tokens may be '*' (one token) or a final '>' (the rest)"
    )]
    InvalidPattern {
        /// The rejected text.
        value: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// A header broke the header rules of PROTOCOL.md §2.1.
    #[error(
        "invalid header: {0}; use at most 16 headers, keys of [a-z0-9-]{{1,64}}, values up to 256 bytes, 4 KiB in all"
    )]
    InvalidHeader(&'static str),
    /// The encoded event is larger than the bus accepts; publishers never truncate.
    #[error(
        "event of {size} bytes exceeds max_envelope_size ({max} bytes): send less data, or raise max_envelope_size on every orbiter"
    )]
    PayloadTooLarge {
        /// Encoded size of the refused event.
        size: usize,
        /// The bus's `max_envelope_size`.
        max: usize,
    },
    /// The bus was closed; nothing more can be published or subscribed on it.
    #[error("the bus is closed: create a new bus to publish or subscribe again")]
    Closed,
    /// A configuration value is out of its valid range.
    #[error("invalid bus configuration: {0}")]
    Config(String),
    /// The client could not reach its server.
    #[error("cannot connect to {url}: {source}; check that the broker runs and the URL is right")]
    Connect {
        /// What was dialled.
        url: String,
        /// Why it failed.
        #[source]
        source: BoxError,
    },
    /// The server announced a `max_payload` below the configured envelope size.
    #[error(
        "the server accepts at most {server} bytes per message, below max_envelope_size ({configured} bytes): raise the server's max_payload or lower max_envelope_size"
    )]
    ServerPayloadLimit {
        /// The server's limit.
        server: usize,
        /// The bus's `max_envelope_size`.
        configured: usize,
    },
    /// The broker refused a subscription (for example an ACL refusal).
    #[error("the broker refused the subscription to {pattern}: {reason}; check the broker's permissions")]
    SubscribeRefused {
        /// The refused pattern.
        pattern: String,
        /// What the broker said.
        reason: String,
    },
    /// The transport's client library failed.
    #[error("transport error: {0}")]
    Transport(#[source] BoxError),
}

impl Error {
    #[cfg_attr(not(any(feature = "nats", feature = "mqtt")), allow(dead_code))]
    pub(crate) fn transport(e: impl Into<BoxError>) -> Self {
        Error::Transport(e.into())
    }
}

/// Why bytes from the bus could not be taken as an [`Event`](crate::Event)
/// (receive checks 1-5 of PROTOCOL.md §2.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct DecodeError {
    /// Which check failed; each kind has its own counter.
    pub kind: DecodeErrorKind,
    /// What exactly was wrong.
    pub detail: &'static str,
}

impl DecodeError {
    pub(crate) const fn new(kind: DecodeErrorKind, detail: &'static str) -> Self {
        DecodeError { kind, detail }
    }

    pub(crate) const fn malformed(detail: &'static str) -> Self {
        Self::new(DecodeErrorKind::Malformed, detail)
    }
}

/// The receive check an undecodable event failed, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Check 1: larger than `max_envelope_size`.
    Oversized,
    /// Check 2: does not start with `B0 0B`.
    BadMagic,
    /// Check 3: an envelope version this build does not read.
    UnsupportedVersion,
    /// Check 4: the body is not an Envelope datum, or bytes follow it.
    Malformed,
    /// Check 5: the fields decode but break the envelope rules.
    InvalidEnvelope,
}

impl DecodeErrorKind {
    /// The counter name of this check.
    pub const fn counter(self) -> &'static str {
        match self {
            DecodeErrorKind::Oversized => "oversized",
            DecodeErrorKind::BadMagic => "bad_magic",
            DecodeErrorKind::UnsupportedVersion => "unsupported_version",
            DecodeErrorKind::Malformed => "malformed",
            DecodeErrorKind::InvalidEnvelope => "invalid_envelope",
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.counter())
    }
}
