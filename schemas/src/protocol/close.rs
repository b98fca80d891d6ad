//! Closing connections (PROTOCOL.md §6.8): GracefulClose, GracelessClose, CloseAck.

use busline::Identifier;
use busline::codec::{Reader, Writer};
use bytes::Bytes;
use uuid::Uuid;

use super::Sender;
use super::wire::{self, Read, Wire, wire_enum};
use crate::limits::Limits;

wire_enum!(
    /// Why a connection closes.
    CloseReason {
        /// A user asked for it.
        Requested = "REQUESTED",
        /// Unused for `idle_timeout` (E2).
        Idle = "IDLE",
        /// The sender is stopping.
        Stopping = "STOPPING",
        /// The remote was declared dead (K4).
        PeerDead = "PEER_DEAD",
        /// The remote restarted (A3).
        PeerRestarted = "PEER_RESTARTED",
        /// A graceful close got no CloseAck in time (G4).
        CloseTimeout = "CLOSE_TIMEOUT",
        /// The receiver holds no such connection (C2c, K6).
        UnknownConnection = "UNKNOWN_CONNECTION",
        /// A newer offer replaced the connection (C1d).
        Stale = "STALE",
        /// The plugin removed the operation.
        OperationRemoved = "OPERATION_REMOVED",
        /// The core changed the requirement.
        RequirementChanged = "REQUIREMENT_CHANGED",
        /// The plugin changed the operation's policy.
        PolicyChanged = "POLICY_CHANGED",
        /// Another reason, or one of a later revision.
        Other = "OTHER",
    }
);

/// The fields both close messages carry; `operation` may be empty only in a graceless one.
struct Close {
    sender: Sender,
    operation: Option<Identifier>,
    connection_id: Uuid,
    reason: CloseReason,
    data: Option<Bytes>,
}

impl Close {
    fn read(r: &mut Reader<'_>, limits: &Limits, empty_operation: bool) -> Read<Self> {
        let sender = Sender::read(r, limits)?;
        let operation = match r.string()? {
            "" if empty_operation => None,
            s => Some(wire::to_ident(s, "operation")?),
        };
        Ok(Close {
            sender,
            operation,
            connection_id: wire::id(r, "connection_id")?,
            reason: CloseReason::read(r, limits)?,
            data: wire::optional_bytes(r, limits.max_close_data(), "data")?,
        })
    }
}

fn write_close(
    w: &mut Writer,
    sender: &Sender,
    operation: &str,
    connection_id: &Uuid,
    reason: CloseReason,
    data: Option<&Bytes>,
) {
    wire::write_connection_head(w, sender, operation, connection_id);
    reason.write(w);
    wire::write_optional_bytes(w, data);
}

/// "Finish your work on this connection, then acknowledge" (G1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulClose {
    /// The initiator.
    pub sender: Sender,
    /// The connection's operation.
    pub operation: Identifier,
    /// The connection.
    pub connection_id: Uuid,
    /// Why.
    pub reason: CloseReason,
    /// Close data for the remote (E/16 at most).
    pub data: Option<Bytes>,
}

impl Wire for GracefulClose {
    const MIN_LEN: usize = Sender::MIN_LEN + 2 + 16 + 2;

    fn write(&self, w: &mut Writer) {
        write_close(w, &self.sender, &self.operation, &self.connection_id, self.reason, self.data.as_ref());
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let Close { sender, operation, connection_id, reason, data } = Close::read(r, limits, false)?;
        let operation = operation.ok_or_else(|| wire::Invalid("operation is empty".into()))?;
        Ok(GracefulClose { sender, operation, connection_id, reason, data })
    }
}

/// "This connection is closed" (G5): the receiver closes its side at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracelessClose {
    /// The closing end.
    pub sender: Sender,
    /// The connection's operation; `None` (sent as `""`) when the sender does not know it
    /// (a K6 reconciliation close).
    pub operation: Option<Identifier>,
    /// The connection.
    pub connection_id: Uuid,
    /// Why.
    pub reason: CloseReason,
    /// Close data for the remote (E/16 at most).
    pub data: Option<Bytes>,
}

impl Wire for GracelessClose {
    const MIN_LEN: usize = Sender::MIN_LEN + 1 + 16 + 2;

    fn write(&self, w: &mut Writer) {
        let operation = self.operation.as_ref().map_or("", |o| o.as_str());
        write_close(w, &self.sender, operation, &self.connection_id, self.reason, self.data.as_ref());
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let Close { sender, operation, connection_id, reason, data } = Close::read(r, limits, true)?;
        Ok(GracelessClose { sender, operation, connection_id, reason, data })
    }
}

/// "Closed on my side" (G2), answering a GracefulClose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseAck {
    /// The receiver of the GracefulClose.
    pub sender: Sender,
    /// The connection's operation.
    pub operation: Identifier,
    /// The connection.
    pub connection_id: Uuid,
}

impl Wire for CloseAck {
    const MIN_LEN: usize = Sender::MIN_LEN + 2 + 16;

    fn write(&self, w: &mut Writer) {
        wire::write_connection_head(w, &self.sender, &self.operation, &self.connection_id);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        let (sender, operation, connection_id) = wire::connection_head(r, limits)?;
        Ok(CloseAck { sender, operation, connection_id })
    }
}
