//! The handshake (PROTOCOL.md §6.3): Discover, Offer, Request or Reject, Confirm or
//! OperationNoLongerAvailable.

use busline::Identifier;
use busline::codec::{Reader, Writer};
use bytes::Bytes;
use uuid::Uuid;

use super::Sender;
use super::wire::{self, Read, Wire, wire_enum};
use crate::limits::{Limits, MAX_ALTERNATIVES, MAX_DESCRIPTION, MAX_ENTRIES, MAX_LIST};
use crate::spec::SchemaSpec;

/// One operation a core looks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationQuery {
    /// The operation's name.
    pub operation: Identifier,
    /// What the core can write (1-16 alternatives).
    pub inputs: Vec<SchemaSpec>,
    /// What the core can read (1-16 alternatives).
    pub outputs: Vec<SchemaSpec>,
    /// Only these plugins may offer (1,024 at most); never with a blocklist.
    pub allowlist: Option<Vec<Identifier>>,
    /// These plugins may not offer (1,024 at most); never with an allowlist.
    pub blocklist: Option<Vec<Identifier>>,
}

impl Wire for OperationQuery {
    const MIN_LEN: usize = 2 + 1 + 1 + 1 + 1;

    fn write(&self, w: &mut Writer) {
        self.operation.write(w);
        wire::write_list(w, &self.inputs);
        wire::write_list(w, &self.outputs);
        for list in [&self.allowlist, &self.blocklist] {
            w.optional(list.as_ref(), |w, l| wire::write_list(w, l));
        }
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let operation = wire::ident(r, "operation")?;
        let inputs = wire::bounded_list(r, limits, 1, MAX_ALTERNATIVES, "inputs")?;
        let outputs = wire::bounded_list(r, limits, 1, MAX_ALTERNATIVES, "outputs")?;
        let allowlist = wire::optional(r, |r| wire::list(r, limits, MAX_LIST, "allowlist"))?;
        let blocklist = wire::optional(r, |r| wire::list(r, limits, MAX_LIST, "blocklist"))?;
        if allowlist.is_some() && blocklist.is_some() {
            return wire::invalid(format!("query {operation} has both an allowlist and a blocklist"));
        }
        Ok(OperationQuery { operation, inputs, outputs, allowlist, blocklist })
    }
}

/// A core looking for operations (broadcast).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discover {
    /// The core.
    pub sender: Sender,
    /// The sender's protocol revision, at least 1.
    pub protocol_version: i32,
    /// 1-256 queries, for distinct operations.
    pub queries: Vec<OperationQuery>,
}

impl Wire for Discover {
    const MIN_LEN: usize = Sender::MIN_LEN + 2;

    fn write(&self, w: &mut Writer) {
        self.sender.write(w);
        w.int(self.protocol_version);
        wire::write_list(w, &self.queries);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let sender = Sender::read(r, limits)?;
        let protocol_version = wire::protocol_version(r)?;
        let queries: Vec<OperationQuery> = wire::bounded_list(r, limits, 1, MAX_ENTRIES, "queries")?;
        wire::unique_operations(queries.iter().map(|q| &q.operation), "queries")?;
        Ok(Discover { sender, protocol_version, queries })
    }
}

/// One operation a plugin offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedOperation {
    /// The operation's name.
    pub operation: Identifier,
    /// Names this offer (UUIDv7: a later offer has a greater id).
    pub offer_id: Uuid,
    /// What the operation reads.
    pub input: SchemaSpec,
    /// What the operation writes.
    pub output: SchemaSpec,
}

impl Wire for OfferedOperation {
    const MIN_LEN: usize = 2 + 16 + 2 * SchemaSpec::MIN_LEN;

    fn write(&self, w: &mut Writer) {
        self.operation.write(w);
        w.raw(self.offer_id.as_bytes());
        self.input.write(w);
        self.output.write(w);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        Ok(OfferedOperation {
            operation: wire::ident(r, "operation")?,
            offer_id: wire::id_v7(r, "offer_id")?,
            input: SchemaSpec::read(r, limits)?,
            output: SchemaSpec::read(r, limits)?,
        })
    }
}

/// A plugin's answer to a Discover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The plugin.
    pub sender: Sender,
    /// The sender's protocol revision, at least 1.
    pub protocol_version: i32,
    /// 1-256 offered operations, distinct.
    pub operations: Vec<OfferedOperation>,
}

impl Wire for Offer {
    const MIN_LEN: usize = Sender::MIN_LEN + 2;

    fn write(&self, w: &mut Writer) {
        self.sender.write(w);
        w.int(self.protocol_version);
        wire::write_list(w, &self.operations);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let sender = Sender::read(r, limits)?;
        let protocol_version = wire::protocol_version(r)?;
        let operations: Vec<OfferedOperation> = wire::bounded_list(r, limits, 1, MAX_ENTRIES, "operations")?;
        wire::unique_operations(operations.iter().map(|o| &o.operation), "operations")?;
        Ok(Offer { sender, protocol_version, operations })
    }
}

/// A core accepting an offered operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The core.
    pub sender: Sender,
    /// The operation.
    pub operation: Identifier,
    /// The offer accepted.
    pub offer_id: Uuid,
    /// The connection's id, drawn by the core.
    pub connection_id: Uuid,
    /// N_in: what the core will send (§5.2).
    pub input: SchemaSpec,
    /// N_out: what the plugin may send back.
    pub output: SchemaSpec,
    /// The core's remaining pending time, 1-600,000 ms.
    pub expires_in_ms: i64,
    /// Setup data for the plugin's setup hook (E/4 at most); empty counts as present.
    pub setup_data: Option<Bytes>,
}

impl Wire for Request {
    const MIN_LEN: usize = Sender::MIN_LEN + 2 + 32 + 2 * SchemaSpec::MIN_LEN + 2;

    fn write(&self, w: &mut Writer) {
        self.sender.write(w);
        self.operation.write(w);
        w.raw(self.offer_id.as_bytes());
        w.raw(self.connection_id.as_bytes());
        self.input.write(w);
        self.output.write(w);
        w.long(self.expires_in_ms);
        wire::write_optional_bytes(w, self.setup_data.as_ref());
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let sender = Sender::read(r, limits)?;
        let operation = wire::ident(r, "operation")?;
        let offer_id = wire::id_v7(r, "offer_id")?;
        let connection_id = wire::id(r, "connection_id")?;
        let input = SchemaSpec::read(r, limits)?;
        let output = SchemaSpec::read(r, limits)?;
        let expires_in_ms = r.long()?;
        if !(1..=600_000).contains(&expires_in_ms) {
            return wire::invalid(format!("expires_in_ms {expires_in_ms} is outside 1-600,000"));
        }
        let setup_data = wire::optional_bytes(r, limits.max_setup_data(), "setup_data")?;
        Ok(Request { sender, operation, offer_id, connection_id, input, output, expires_in_ms, setup_data })
    }
}

wire_enum!(
    /// Why a core refused an offered operation.
    RejectReason {
        /// The core does not require this operation.
        NotRequired = "NOT_REQUIRED",
        /// The constraint's lists refuse the plugin.
        NotAllowed = "NOT_ALLOWED",
        /// No input alternative is compatible.
        IncompatibleInput = "INCOMPATIBLE_INPUT",
        /// No output alternative is compatible.
        IncompatibleOutput = "INCOMPATIBLE_OUTPUT",
        /// The requirement's maximum is reached.
        Saturated = "SATURATED",
        /// The offer duplicates one the core holds.
        Duplicate = "DUPLICATE",
        /// The core is stopping.
        Stopping = "STOPPING",
        /// Another reason, or one of a later revision.
        Other = "OTHER",
    }
);

/// A core refusing an offered operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// The core.
    pub sender: Sender,
    /// The operation.
    pub operation: Identifier,
    /// The offer refused.
    pub offer_id: Uuid,
    /// Why.
    pub reason: RejectReason,
    /// Details for people, 1 KiB at most.
    pub description: Option<String>,
}

impl Wire for Reject {
    const MIN_LEN: usize = Sender::MIN_LEN + 2 + 16 + 2;

    fn write(&self, w: &mut Writer) {
        self.sender.write(w);
        self.operation.write(w);
        w.raw(self.offer_id.as_bytes());
        self.reason.write(w);
        wire::write_optional_string(w, self.description.as_ref());
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        Ok(Reject {
            sender: Sender::read(r, limits)?,
            operation: wire::ident(r, "operation")?,
            offer_id: wire::id_v7(r, "offer_id")?,
            reason: RejectReason::read(r, limits)?,
            description: wire::optional_string(r, MAX_DESCRIPTION, "description")?,
        })
    }
}

/// A plugin confirming a connection: it is open on the plugin's side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// The plugin.
    pub sender: Sender,
    /// The operation.
    pub operation: Identifier,
    /// The connection, as the Request named it.
    pub connection_id: Uuid,
}

impl Wire for Confirm {
    const MIN_LEN: usize = Sender::MIN_LEN + 2 + 16;

    fn write(&self, w: &mut Writer) {
        wire::write_connection_head(w, &self.sender, &self.operation, &self.connection_id);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let (sender, operation, connection_id) = wire::connection_head(r, limits)?;
        Ok(Confirm { sender, operation, connection_id })
    }
}

wire_enum!(
    /// Why a plugin withdrew an operation it had offered.
    UnavailableReason {
        /// No such offer (expired, rejected, never made, or bound to another connection).
        UnknownOffer = "UNKNOWN_OFFER",
        /// The operation's policy refuses the core.
        NotAllowed = "NOT_ALLOWED",
        /// The operation's maximum is reached.
        Saturated = "SATURATED",
        /// The negotiated specs no longer fit the operation.
        Incompatible = "INCOMPATIBLE",
        /// The setup hook failed.
        SetupFailed = "SETUP_FAILED",
        /// The operation was removed.
        OperationRemoved = "OPERATION_REMOVED",
        /// The plugin is stopping.
        Stopping = "STOPPING",
        /// Another reason, or one of a later revision.
        Other = "OTHER",
    }
);

/// A plugin answering a Request with a refusal (NLA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationNoLongerAvailable {
    /// The plugin.
    pub sender: Sender,
    /// The operation.
    pub operation: Identifier,
    /// The connection the Request named.
    pub connection_id: Uuid,
    /// Why.
    pub reason: UnavailableReason,
    /// Details for people, 1 KiB at most.
    pub description: Option<String>,
}

impl Wire for OperationNoLongerAvailable {
    const MIN_LEN: usize = Sender::MIN_LEN + 2 + 16 + 2;

    fn write(&self, w: &mut Writer) {
        wire::write_connection_head(w, &self.sender, &self.operation, &self.connection_id);
        self.reason.write(w);
        wire::write_optional_string(w, self.description.as_ref());
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let (sender, operation, connection_id) = wire::connection_head(r, limits)?;
        Ok(OperationNoLongerAvailable {
            sender,
            operation,
            connection_id,
            reason: UnavailableReason::read(r, limits)?,
            description: wire::optional_string(r, MAX_DESCRIPTION, "description")?,
        })
    }
}
