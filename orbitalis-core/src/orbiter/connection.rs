//! Connections (PROTOCOL.md §1): one core, one plugin, one operation, named by a UUID;
//! OPEN or CLOSING; at most one per triple.

use std::collections::HashMap;
use std::sync::Arc;

use busline::{Identifier, Topic};
use bytes::Bytes;
use orbitalis_schemas::SchemaSpec;
use orbitalis_schemas::protocol::CloseReason;
use tokio::time::Instant;
use uuid::Uuid;

/// Whether a connection takes new work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Usable.
    Open,
    /// Being closed gracefully: in-flight work finishes, nothing new starts.
    Closing,
}

/// The graceful-close progress of a CLOSING connection (G1-G4).
#[derive(Clone, Debug)]
pub struct Closing {
    /// This side sent the GracefulClose (G1).
    pub initiator: bool,
    /// The remote sent a GracefulClose this side must ack (G2).
    pub receiver: bool,
    /// The remote acked our GracefulClose (G3).
    pub acked: bool,
    pub deadline: Instant,
    pub reason: CloseReason,
    /// What the remote sent with its close, for the closed event.
    pub remote_data: Option<Bytes>,
}

/// One connection as this side holds it.
#[derive(Clone, Debug)]
pub struct Connection {
    pub id: Uuid,
    pub operation: Identifier,
    pub remote: Identifier,
    pub offer_id: Uuid,
    /// Shared: the hot paths clone it per event.
    pub n_in: Arc<SchemaSpec>,
    pub n_out: Arc<SchemaSpec>,
    pub setup_data: Option<Bytes>,
    pub created: Instant,
    pub created_us: i64,
    pub last_use: Instant,
    pub input_topic: Topic,
    pub output_topic: Topic,
    pub closing: Option<Closing>,
}

impl Connection {
    pub fn state(&self) -> ConnectionState {
        if self.closing.is_some() { ConnectionState::Closing } else { ConnectionState::Open }
    }

    pub fn is_open(&self) -> bool {
        self.closing.is_none()
    }
}

/// Plain data about a connection, for inspection and events.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection id.
    pub id: Uuid,
    /// The operation.
    pub operation: Identifier,
    /// The other end's identifier.
    pub remote: Identifier,
    /// OPEN or CLOSING.
    pub state: ConnectionState,
    /// Negotiated input spec (what the core may send).
    pub input: SchemaSpec,
    /// Negotiated output spec (what the plugin may send).
    pub output: SchemaSpec,
    /// Where inputs travel.
    pub input_topic: Topic,
    /// Where outputs travel.
    pub output_topic: Topic,
    /// Setup data sent with the request.
    pub setup_data: Option<Bytes>,
    /// When it opened (monotonic).
    pub created: Instant,
    /// When it opened, UTC microseconds.
    pub created_at_us: i64,
    /// Its last use on this side (§7.4).
    pub last_use: Instant,
    /// Whether this side started a graceful close.
    pub close_initiator: bool,
}

impl From<&Connection> for ConnectionInfo {
    fn from(c: &Connection) -> Self {
        ConnectionInfo {
            id: c.id,
            operation: c.operation.clone(),
            remote: c.remote.clone(),
            state: c.state(),
            input: (*c.n_in).clone(),
            output: (*c.n_out).clone(),
            input_topic: c.input_topic.clone(),
            output_topic: c.output_topic.clone(),
            setup_data: c.setup_data.clone(),
            created: c.created,
            created_at_us: c.created_us,
            last_use: c.last_use,
            close_initiator: c.closing.as_ref().is_some_and(|c| c.initiator),
        }
    }
}

/// An index from (remote, operation) to a key, looked up by `&str` without allocating.
#[derive(Debug, Default)]
pub struct PairIndex(HashMap<Identifier, HashMap<Identifier, Uuid>>);

impl PairIndex {
    pub fn get(&self, remote: &str, operation: &str) -> Option<&Uuid> {
        self.0.get(remote)?.get(operation)
    }

    pub fn insert(&mut self, remote: &Identifier, operation: &Identifier, key: Uuid) {
        self.0.entry(remote.clone()).or_default().insert(operation.clone(), key);
    }

    pub fn remove(&mut self, remote: &Identifier, operation: &Identifier) {
        if let Some(m) = self.0.get_mut(remote.as_str()) {
            m.remove(operation.as_str());
            if m.is_empty() {
                self.0.remove(remote.as_str());
            }
        }
    }

    /// Whether any entry has `remote`.
    pub fn has_remote(&self, remote: &str) -> bool {
        self.0.contains_key(remote)
    }

    /// Keys of every entry with `remote`.
    pub fn with_remote(&self, remote: &str) -> Vec<Uuid> {
        self.0.get(remote).map(|m| m.values().copied().collect()).unwrap_or_default()
    }
}

/// All connections of one orbiter, indexed by id and by (remote, operation).
#[derive(Debug, Default)]
pub struct Connections {
    by_id: HashMap<Uuid, Connection>,
    by_pair: PairIndex,
    generation: u64,
}

impl Connections {
    pub fn get(&self, id: &Uuid) -> Option<&Connection> {
        self.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &Uuid) -> Option<&mut Connection> {
        self.by_id.get_mut(id)
    }

    /// The connection with `remote` for `operation`, in any state.
    pub fn find(&self, remote: &str, operation: &str) -> Option<&Connection> {
        self.by_id.get(self.by_pair.get(remote, operation)?)
    }

    pub fn insert(&mut self, c: Connection) {
        self.generation += 1;
        self.by_pair.insert(&c.remote, &c.operation, c.id);
        self.by_id.insert(c.id, c);
    }

    pub fn remove(&mut self, id: &Uuid) -> Option<Connection> {
        let c = self.by_id.remove(id)?;
        self.generation += 1;
        self.by_pair.remove(&c.remote, &c.operation);
        Some(c)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Changes with every insert and removal.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Connection> {
        self.by_id.values()
    }

    pub fn ids(&self) -> Vec<Uuid> {
        self.by_id.keys().copied().collect()
    }

    /// Ids of connections with `remote`.
    pub fn with_remote(&self, remote: &str) -> Vec<Uuid> {
        self.by_pair.with_remote(remote)
    }

    /// Whether any connection is with `remote`.
    pub fn has_remote(&self, remote: &str) -> bool {
        self.by_pair.has_remote(remote)
    }

    /// Connections (any state) for `operation`.
    pub fn for_operation<'a>(&'a self, operation: &'a str) -> impl Iterator<Item = &'a Connection> + 'a {
        self.by_id.values().filter(move |c| c.operation.as_str() == operation)
    }
}
