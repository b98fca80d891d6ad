//! Introspection (PROTOCOL.md §9): IntrospectionRequest and IntrospectionResponse with the
//! records describing an orbiter's operations, requirements, connections, pending requests
//! and peers.

use std::collections::BTreeMap;

use busline::Identifier;
use busline::codec::{Reader, Writer};
use uuid::Uuid;

use super::Sender;
use super::wire::{self, Read, Wire, wire_enum};
use crate::limits::{Limits, MAX_LIST, MAX_SCHEMAS_PER_SPEC};

wire_enum!(
    /// What an orbiter is.
    Role {
        /// A core.
        Core = "CORE",
        /// A plugin.
        Plugin = "PLUGIN",
        /// An observer that only introspects.
        Monitor = "MONITOR",
        /// A role of a later revision.
        Other = "OTHER",
    }
);

wire_enum!(
    /// An orbiter's life-cycle state (PROTOCOL.md §6.1).
    OrbiterState {
        /// Built, never started.
        Created = "CREATED",
        /// A running plugin.
        Running = "RUNNING",
        /// A running core whose requirements are met.
        Compliant = "COMPLIANT",
        /// A running core whose requirements are not met.
        NotCompliant = "NOT_COMPLIANT",
        /// Draining.
        Stopping = "STOPPING",
        /// Drained, nothing left on the bus.
        Stopped = "STOPPED",
        /// A state of a later revision.
        Other = "OTHER",
    }
);

wire_enum!(
    /// A connection's state.
    ConnectionState {
        /// In use.
        Open = "OPEN",
        /// Closing gracefully.
        Closing = "CLOSING",
        /// A state of a later revision.
        Other = "OTHER",
    }
);

/// "Describe yourself", to one orbiter or all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntrospectionRequest {
    /// The requester (any identifier; a monitor sends `dead_after_ms` 0).
    pub sender: Sender,
    /// The requester's role.
    pub role: Role,
    /// `false` asks for identity and state only.
    pub details: bool,
}

impl Wire for IntrospectionRequest {
    const MIN_LEN: usize = Sender::MIN_LEN + 2;

    fn write(&self, w: &mut Writer) {
        self.sender.write(w);
        self.role.write(w);
        w.boolean(self.details);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        Ok(IntrospectionRequest {
            sender: Sender::read(r, limits)?,
            role: Role::read(r, limits)?,
            details: r.boolean()?,
        })
    }
}

/// A schema spec as people read it: flags and schema names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecSummary {
    /// The spec's EMPTY flag.
    pub empty: bool,
    /// The spec's ANY flag.
    pub any: bool,
    /// The schemas' names (full names, or primitive type names), 16 at most.
    pub schema_names: Vec<String>,
}

/// A string of a list that is only shown (no rule reads it).
struct Name(String);

impl Wire for Name {
    const MIN_LEN: usize = 1;

    fn write(&self, w: &mut Writer) {
        w.string(&self.0);
    }

    fn read(r: &mut Reader<'_>, _: &Limits) -> Read<Self> {
        Ok(Name(r.string()?.to_owned()))
    }
}

impl Wire for SpecSummary {
    const MIN_LEN: usize = 3;

    fn write(&self, w: &mut Writer) {
        w.boolean(self.empty);
        w.boolean(self.any);
        w.array(&self.schema_names, |w, s| w.string(s));
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let empty = r.boolean()?;
        let any = r.boolean()?;
        let names: Vec<Name> = wire::list(r, limits, MAX_SCHEMAS_PER_SPEC, "schema_names")?;
        Ok(SpecSummary { empty, any, schema_names: names.into_iter().map(|n| n.0).collect() })
    }
}

/// The counts every per-operation record ends with.
fn write_counts(w: &mut Writer, connections: i32, pending: i32) {
    w.int(connections);
    w.int(pending);
}

fn read_counts(r: &mut Reader<'_>) -> Read<(i32, i32)> {
    Ok((wire::count(r, "connections")?, wire::count(r, "pending")?))
}

/// A plugin's operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationInfo {
    /// The operation.
    pub operation: Identifier,
    /// What it reads.
    pub input: SpecSummary,
    /// What it writes.
    pub output: SpecSummary,
    /// Its policy's maximum, if any.
    pub maximum: Option<i32>,
    /// Its connections, OPEN or CLOSING.
    pub connections: i32,
    /// Its pending requests.
    pub pending: i32,
}

impl Wire for OperationInfo {
    const MIN_LEN: usize = 2 + 2 * SpecSummary::MIN_LEN + 3;

    fn write(&self, w: &mut Writer) {
        self.operation.write(w);
        self.input.write(w);
        self.output.write(w);
        wire::write_optional_count(w, self.maximum);
        write_counts(w, self.connections, self.pending);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let operation = wire::ident(r, "operation")?;
        let input = SpecSummary::read(r, limits)?;
        let output = SpecSummary::read(r, limits)?;
        let maximum = wire::optional_count(r, "maximum")?;
        let (connections, pending) = read_counts(r)?;
        Ok(OperationInfo { operation, input, output, maximum, connections, pending })
    }
}

/// A core's requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequirementInfo {
    /// The operation.
    pub operation: Identifier,
    /// Non-mandatory connections needed.
    pub minimum: i32,
    /// Non-mandatory connections allowed, if bounded.
    pub maximum: Option<i32>,
    /// The mandatory plugins (1,024 at most).
    pub mandatory: Vec<Identifier>,
    /// Its connections, OPEN or CLOSING.
    pub connections: i32,
    /// Its pending requests.
    pub pending: i32,
    /// Whether the requirement is met.
    pub compliant: bool,
}

impl Wire for RequirementInfo {
    const MIN_LEN: usize = 2 + 6;

    fn write(&self, w: &mut Writer) {
        self.operation.write(w);
        w.int(self.minimum);
        wire::write_optional_count(w, self.maximum);
        wire::write_list(w, &self.mandatory);
        write_counts(w, self.connections, self.pending);
        w.boolean(self.compliant);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let operation = wire::ident(r, "operation")?;
        let minimum = wire::count(r, "minimum")?;
        let maximum = wire::optional_count(r, "maximum")?;
        let mandatory = wire::list(r, limits, MAX_LIST, "mandatory")?;
        let (connections, pending) = read_counts(r)?;
        let compliant = r.boolean()?;
        Ok(RequirementInfo { operation, minimum, maximum, mandatory, connections, pending, compliant })
    }
}

/// One connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The connection.
    pub connection_id: Uuid,
    /// Its operation.
    pub operation: Identifier,
    /// The orbiter at the other end.
    pub remote: Identifier,
    /// OPEN or CLOSING.
    pub state: ConnectionState,
    /// When it opened (wall clock, µs).
    pub created_at_us: i64,
    /// Its last use (§7.4; wall clock, µs).
    pub last_use_us: i64,
    /// Handler runs or waiting calls on it.
    pub in_flight: i32,
    /// Whether this end started its graceful close (G1).
    pub close_initiator: bool,
}

impl Wire for ConnectionInfo {
    const MIN_LEN: usize = 16 + 2 + 2 + 5;

    fn write(&self, w: &mut Writer) {
        w.raw(self.connection_id.as_bytes());
        self.operation.write(w);
        self.remote.write(w);
        self.state.write(w);
        w.long(self.created_at_us);
        w.long(self.last_use_us);
        w.int(self.in_flight);
        w.boolean(self.close_initiator);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        Ok(ConnectionInfo {
            connection_id: wire::id(r, "connection_id")?,
            operation: wire::ident(r, "operation")?,
            remote: wire::ident(r, "remote")?,
            state: ConnectionState::read(r, limits)?,
            created_at_us: r.long()?,
            last_use_us: r.long()?,
            in_flight: wire::count(r, "in_flight")?,
            close_initiator: r.boolean()?,
        })
    }
}

/// One pending request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingInfo {
    /// The offer id (plugin) or the connection id (core).
    pub key: Uuid,
    /// Its operation.
    pub operation: Identifier,
    /// The orbiter at the other end.
    pub remote: Identifier,
    /// When it was made (wall clock, µs).
    pub created_at_us: i64,
    /// A plugin's ACCEPTED request: the connection id it is bound to.
    pub connection_id: Option<Uuid>,
}

impl Wire for PendingInfo {
    const MIN_LEN: usize = 16 + 2 + 2 + 2;

    fn write(&self, w: &mut Writer) {
        w.raw(self.key.as_bytes());
        self.operation.write(w);
        self.remote.write(w);
        w.long(self.created_at_us);
        w.optional(self.connection_id.as_ref(), |w, id| w.raw(id.as_bytes()));
    }

    fn read(r: &mut Reader<'_>, _: &Limits) -> Read<Self> {
        Ok(PendingInfo {
            key: wire::id(r, "key")?,
            operation: wire::ident(r, "operation")?,
            remote: wire::ident(r, "remote")?,
            created_at_us: r.long()?,
            connection_id: wire::optional(r, |r| wire::id(r, "connection_id"))?,
        })
    }
}

/// One acquaintance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer.
    pub identifier: Identifier,
    /// Its incarnation.
    pub incarnation: Uuid,
    /// The dead-after it announced, in ms.
    pub dead_after_ms: i64,
    /// When it was last heard from (wall clock, µs).
    pub last_seen_us: i64,
}

impl Wire for PeerInfo {
    const MIN_LEN: usize = Sender::MIN_LEN + 1;

    fn write(&self, w: &mut Writer) {
        super::write_sender(w, &self.identifier, &self.incarnation, self.dead_after_ms);
        w.long(self.last_seen_us);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        // The first three fields have Sender's layout and rules.
        let Sender { identifier, incarnation, dead_after_ms } = Sender::read(r, limits)?;
        Ok(PeerInfo { identifier, incarnation, dead_after_ms, last_seen_us: r.long()? })
    }
}

/// An orbiter describing itself (PROTOCOL.md §9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntrospectionResponse {
    /// The responder.
    pub sender: Sender,
    /// Its role.
    pub role: Role,
    /// Its state.
    pub state: OrbiterState,
    /// Its protocol revision, at least 1.
    pub protocol_version: i32,
    /// The implementation, such as `orbitalis-rust/0.1.0`.
    pub implementation: String,
    /// When it started (wall clock, µs).
    pub started_at_us: i64,
    /// A plugin's operations.
    pub operations: Vec<OperationInfo>,
    /// A core's requirements.
    pub requirements: Vec<RequirementInfo>,
    /// Its connections.
    pub connections: Vec<ConnectionInfo>,
    /// Its pending requests.
    pub pending: Vec<PendingInfo>,
    /// Its acquaintances.
    pub peers: Vec<PeerInfo>,
    /// Its counters, by name.
    pub counters: BTreeMap<String, i64>,
    /// Whether entries were left out to fit E.
    pub truncated: bool,
}

impl Wire for IntrospectionResponse {
    const MIN_LEN: usize = Sender::MIN_LEN + 13;

    fn write(&self, w: &mut Writer) {
        self.sender.write(w);
        self.role.write(w);
        self.state.write(w);
        w.int(self.protocol_version);
        w.string(&self.implementation);
        w.long(self.started_at_us);
        wire::write_list(w, &self.operations);
        wire::write_list(w, &self.requirements);
        wire::write_list(w, &self.connections);
        wire::write_list(w, &self.pending);
        wire::write_list(w, &self.peers);
        wire::write_counters(w, &self.counters);
        w.boolean(self.truncated);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        // The entry lists have no limit of their own: E bounds them, and `list` bounds each
        // by the bytes that remain.
        Ok(IntrospectionResponse {
            sender: Sender::read(r, limits)?,
            role: Role::read(r, limits)?,
            state: OrbiterState::read(r, limits)?,
            protocol_version: wire::protocol_version(r)?,
            implementation: r.string()?.to_owned(),
            started_at_us: r.long()?,
            operations: wire::list(r, limits, usize::MAX, "operations")?,
            requirements: wire::list(r, limits, usize::MAX, "requirements")?,
            connections: wire::list(r, limits, usize::MAX, "connections")?,
            pending: wire::list(r, limits, usize::MAX, "pending")?,
            peers: wire::list(r, limits, usize::MAX, "peers")?,
            counters: wire::counters(r)?,
            truncated: r.boolean()?,
        })
    }
}
