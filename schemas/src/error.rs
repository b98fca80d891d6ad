//! The one error type of `orbitalis-schemas`.

/// Everything this crate can fail with.
///
/// Variants are stable and meant to be matched on; messages say what to do. Causes from
/// apache-avro are kept as text so that the error stays `Clone` (a type's schema error is
/// cached and returned on every use).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The schema text is not a valid Avro schema.
    #[error("invalid Avro schema: {reason}; fix the schema JSON (see the Avro 1.12 specification)")]
    InvalidSchema {
        /// What is wrong with it.
        reason: String,
    },
    /// A named type is reachable from its own definition (PROTOCOL.md §5.4).
    #[error(
        "schema type {name:?} is recursive (reachable from its own definition): revision 1 refuses recursive payload schemas; bound the nesting (for example a list of children instead of a tree)"
    )]
    RecursiveSchema {
        /// Full name of a type on the cycle.
        name: String,
    },
    /// A user schema defines a type in `orbitalis.protocol` or `orbitalis.busline`.
    #[error(
        "schema type {name:?} is in a namespace reserved for the protocol (orbitalis.protocol, orbitalis.busline): choose another namespace"
    )]
    ReservedNamespace {
        /// Full name of the offending type.
        name: String,
    },
    /// `"null"` was given as a payload schema.
    #[error("\"null\" is not a payload schema: declare the empty payload (SchemaSpec::empty, the Empty type) instead")]
    NullSchema,
    /// A value could not be encoded under its schema.
    #[error(
        "cannot encode the value under its Avro schema: {0}; check that the type's Serialize matches its AvroSchema"
    )]
    Encode(String),
    /// A datum could not be decoded.
    #[error("cannot decode the datum: {0}; the sender used another schema or the bytes are corrupt")]
    Decode(String),
    /// No resolution exists from the writer schema to the reader schema.
    #[error(
        "schema {writer} cannot be read as {reader}: evolve schemas compatibly (new fields need defaults, enums only grow) or declare the writer's schema"
    )]
    IncompatibleSchema {
        /// Name and fingerprint of the writer schema.
        writer: String,
        /// Name and fingerprint of the reader schema.
        reader: String,
    },
    /// A payload was expected and there was none, or the reverse.
    #[error("{0}")]
    PayloadShape(&'static str),
    /// A limit of PROTOCOL.md §2.2 or §5.4 was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// A schema spec breaks the rules of PROTOCOL.md §5.1 and §2.2.
    #[error("invalid schema spec: {0}")]
    InvalidSpec(String),
}

impl Error {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidSchema { reason: reason.into() }
    }
}
