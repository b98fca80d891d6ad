//! Orbiter states and the events an orbiter emits (PROTOCOL.md §6.1), once per occurrence.

use std::fmt;

use busline::Identifier;
use bytes::Bytes;
use orbitalis_schemas::protocol::{CloseReason, OrbiterState};

use super::connection::ConnectionInfo;
use super::pending::PendingInfo;

/// The life-cycle state of an orbiter.
///
/// ```text
/// core:   Created -start-> Compliant | NotCompliant -stop-> Stopping -> Stopped
/// plugin: Created -start-> Running -stop-> Stopping -> Stopped
///         Stopped -start-> as from Created
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Built, never started.
    Created,
    /// A started plugin.
    Running,
    /// A started core with every requirement met.
    Compliant,
    /// A started core missing some requirement.
    NotCompliant,
    /// Draining: closing connections before stopping.
    Stopping,
    /// Stopped: no subscription, no task.
    Stopped,
}

impl State {
    /// Whether the orbiter runs (started, not stopping).
    pub fn is_running(self) -> bool {
        matches!(self, State::Running | State::Compliant | State::NotCompliant)
    }
}

impl From<State> for OrbiterState {
    fn from(s: State) -> Self {
        match s {
            State::Created => OrbiterState::Created,
            State::Running => OrbiterState::Running,
            State::Compliant => OrbiterState::Compliant,
            State::NotCompliant => OrbiterState::NotCompliant,
            State::Stopping => OrbiterState::Stopping,
            State::Stopped => OrbiterState::Stopped,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Something that happened to an orbiter, delivered to its hooks and to
/// [`events`](crate::CoreHandle::events) subscribers.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum OrbiterEvent {
    /// The state changed.
    StateChanged {
        /// Before.
        old: State,
        /// After.
        new: State,
    },
    /// A connection opened.
    ConnectionOpened(ConnectionInfo),
    /// A connection closed.
    ConnectionClosed {
        /// The connection as it was.
        connection: ConnectionInfo,
        /// Why it closed.
        reason: CloseReason,
        /// Data the remote sent with its close.
        data: Option<Bytes>,
        /// Whether the remote closed it.
        by_remote: bool,
    },
    /// A connected remote went silent past its limit (K4).
    RemoteDead(Identifier),
    /// A remote came back with a new incarnation (A3).
    RemoteRestarted(Identifier),
    /// A pending request expired (E1).
    PendingExpired(PendingInfo),
}
