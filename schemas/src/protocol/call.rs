//! Call replies (PROTOCOL.md §7.2): OperationResult, OperationError.

use busline::codec::{Reader, Writer};
use busline::{Fingerprint, Identifier, Payload};
use bytes::Bytes;

use super::wire::{self, Read, Wire, wire_enum};
use crate::limits::{Limits, MAX_ERROR_MESSAGE};

/// A call's successful reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationResult {
    /// The operation called.
    pub operation: Identifier,
    /// The handler's value; `None` when it returned nothing (or the empty payload).
    pub output: Option<Payload>,
    /// How long the handler ran, in µs (0 when not measured).
    pub handler_time_us: i64,
}

impl Wire for OperationResult {
    const MIN_LEN: usize = 2 + 1 + 1;

    fn write(&self, w: &mut Writer) {
        self.operation.write(w);
        w.optional(self.output.as_ref(), |w, p| {
            w.raw(&p.fingerprint.0);
            w.bytes(&p.datum);
        });
        w.long(self.handler_time_us);
    }

    fn read(r: &mut Reader<'_>, _: &Limits) -> Read<Self> {
        let operation = wire::ident(r, "operation")?;
        let output =
            r.optional(|r| Ok(Payload::new(Fingerprint(r.fixed::<8>()?), Bytes::copy_from_slice(r.bytes()?))))?;
        let handler_time_us = r.long()?;
        if handler_time_us < 0 {
            return wire::invalid(format!("handler_time_us {handler_time_us} is negative"));
        }
        Ok(OperationResult { operation, output, handler_time_us })
    }
}

wire_enum!(
    /// What went wrong with a call.
    ErrorKind {
        /// The handler returned an error or panicked (Y3).
        HandlerFailed = "HANDLER_FAILED",
        /// The input was undecodable or not in N_in (Y4).
        InvalidInput = "INVALID_INPUT",
        /// N_out does not accept the handler's value (Y2).
        OutputNotAccepted = "OUTPUT_NOT_ACCEPTED",
        /// The handler queue is full (§7.5).
        Overloaded = "OVERLOADED",
        /// The connection is closing.
        Closing = "CLOSING",
        /// The operation has no handler.
        NoHandler = "NO_HANDLER",
        /// The plugin failed on its own.
        Internal = "INTERNAL",
        /// Another reason, or one of a later revision.
        Other = "OTHER",
    }
);

/// A call's failed reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationError {
    /// The operation called.
    pub operation: Identifier,
    /// What went wrong.
    pub kind: ErrorKind,
    /// Details for people, 4 KiB at most (senders truncate with
    /// [`truncate_utf8`](crate::limits::truncate_utf8)).
    pub message: String,
}

impl Wire for OperationError {
    const MIN_LEN: usize = 2 + 1 + 1;

    fn write(&self, w: &mut Writer) {
        self.operation.write(w);
        self.kind.write(w);
        w.string(&self.message);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        Ok(OperationError {
            operation: wire::ident(r, "operation")?,
            kind: ErrorKind::read(r, limits)?,
            message: wire::bounded_string(r, MAX_ERROR_MESSAGE, "message")?,
        })
    }
}
