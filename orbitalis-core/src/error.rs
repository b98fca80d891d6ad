//! The one error type of the Orbitalis runtime, shared by cores and plugins.

use busline::Identifier;
use orbitalis_schemas::protocol::{CloseReason, ErrorKind};

/// Everything building, starting or using an orbiter can fail with.
///
/// Variants are stable and meant to be matched on; messages say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder setting is invalid (PROTOCOL.md §6.2, §8); nothing was started.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// `start` on an orbiter that is already running.
    #[error("the orbiter is already running: stop it before starting it again")]
    AlreadyRunning,
    /// The orbiter is not running (never started, stopping or stopped).
    #[error("the orbiter is not running: start it first (or it is stopping)")]
    NotRunning,
    /// The core has no requirement for this operation.
    #[error("operation {0} is not required by this core: add a requirement for it first")]
    NotRequired(Identifier),
    /// The plugin has no such operation.
    #[error("operation {0} is not offered by this plugin")]
    UnknownOperation(Identifier),
    /// No open connection can take the execution.
    #[error("no open connection for operation {operation}{}: wait for compliance or check the target", plugin.as_ref().map(|p| format!(" with plugin {p}")).unwrap_or_default())]
    NoConnection {
        /// The operation.
        operation: Identifier,
        /// The plugin the target named, if any.
        plugin: Option<Identifier>,
    },
    /// Connections exist but none accepts the value's schema.
    #[error("no connection of operation {0} accepts this input's schema: send a type the plugin reads")]
    IncompatibleInput(Identifier),
    /// The output could not be decoded into the caller's type.
    #[error("the output of operation {operation} cannot be read as the requested type: {reason}")]
    IncompatibleOutput {
        /// The operation.
        operation: Identifier,
        /// Why decoding failed.
        reason: String,
    },
    /// An argument was invalid, such as an empty batch.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The encoded event would exceed `max_envelope_size`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A bounded queue is full (PROTOCOL.md §7.5); retry later or raise the bound.
    #[error("overloaded: {0}; retry later or raise the bound")]
    Overloaded(&'static str),
    /// An awaited call got no reply in time.
    #[error("operation {operation} got no reply within {timeout_ms} ms: the plugin may be slow or gone")]
    Timeout {
        /// The operation.
        operation: Identifier,
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// The connection closed while the call waited.
    #[error("the connection closed while waiting ({0:?})")]
    ConnectionClosed(CloseReason),
    /// The plugin answered with an error.
    #[error("the plugin failed the operation ({kind:?}): {message}")]
    Remote {
        /// What kind of failure.
        kind: ErrorKind,
        /// The plugin's message.
        message: String,
    },
    /// A schema or value could not be encoded or decoded.
    #[error(transparent)]
    Schema(#[from] orbitalis_schemas::Error),
    /// The bus failed.
    #[error(transparent)]
    Transport(#[from] busline::Error),
}

impl Error {
    pub(crate) fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}

/// A `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
