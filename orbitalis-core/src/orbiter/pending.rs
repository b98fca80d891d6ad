//! Pending requests (PROTOCOL.md §1): half-built connections that hold a slot until they
//! become connections, are refused, or expire (E1).

use std::collections::HashMap;

use busline::Identifier;

use super::connection::PairIndex;
use bytes::Bytes;
use orbitalis_schemas::{Schema, SchemaSpec};
use tokio::time::Instant;
use uuid::Uuid;

/// A pending request. Plugins key it by offer id, cores by connection id.
#[derive(Clone, Debug)]
pub struct Pending {
    pub key: Uuid,
    pub operation: Identifier,
    pub remote: Identifier,
    pub offer_id: Uuid,
    /// Core: always the key. Plugin: set once ACCEPTED (P2d).
    pub connection_id: Option<Uuid>,
    pub created: Instant,
    pub created_us: i64,
    pub deadline: Instant,
    pub n_in: SchemaSpec,
    pub n_out: SchemaSpec,
    pub setup_data: Option<Bytes>,
    /// Core: the plugin's output writer schemas from its Offer (§5.3).
    pub writer_schemas: Vec<Schema>,
    /// Plugin: a setup hook runs for it (P2d).
    pub setup_running: bool,
}

/// Plain data about a pending request, for inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingInfo {
    /// Offer id (plugin) or connection id (core).
    pub key: Uuid,
    /// The operation.
    pub operation: Identifier,
    /// The other end.
    pub remote: Identifier,
    /// The connection id once known.
    pub connection_id: Option<Uuid>,
    /// When it was made.
    pub created: Instant,
    /// When it was made, UTC microseconds.
    pub created_at_us: i64,
}

impl From<&Pending> for PendingInfo {
    fn from(p: &Pending) -> Self {
        PendingInfo {
            key: p.key,
            operation: p.operation.clone(),
            remote: p.remote.clone(),
            connection_id: p.connection_id,
            created: p.created,
            created_at_us: p.created_us,
        }
    }
}

/// All pending requests of one orbiter.
#[derive(Debug, Default)]
pub struct PendingTable {
    by_key: HashMap<Uuid, Pending>,
    by_pair: PairIndex,
    generation: u64,
}

impl PendingTable {
    pub fn get(&self, key: &Uuid) -> Option<&Pending> {
        self.by_key.get(key)
    }

    pub fn get_mut(&mut self, key: &Uuid) -> Option<&mut Pending> {
        self.by_key.get_mut(key)
    }

    pub fn insert(&mut self, p: Pending) {
        self.generation += 1;
        self.by_pair.insert(&p.remote, &p.operation, p.key);
        self.by_key.insert(p.key, p);
    }

    pub fn remove(&mut self, key: &Uuid) -> Option<Pending> {
        let p = self.by_key.remove(key)?;
        self.generation += 1;
        self.by_pair.remove(&p.remote, &p.operation);
        Some(p)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Changes with every insert and removal.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn iter(&self) -> impl Iterator<Item = &Pending> {
        self.by_key.values()
    }

    /// The pending request with `remote` for `operation`, if any.
    pub fn find(&self, remote: &str, operation: &str) -> Option<&Pending> {
        self.by_key.get(self.by_pair.get(remote, operation)?)
    }

    /// The pending request bound to connection id `id` (plugin, ACCEPTED).
    pub fn by_connection(&self, id: &Uuid) -> Option<&Pending> {
        self.by_key.values().find(|p| p.connection_id.as_ref() == Some(id))
    }

    pub fn with_remote(&self, remote: &str) -> Vec<Uuid> {
        self.by_pair.with_remote(remote)
    }

    /// Whether any pending request is with `remote`.
    pub fn has_remote(&self, remote: &str) -> bool {
        self.by_pair.has_remote(remote)
    }

    pub fn for_operation<'a>(&'a self, operation: &'a str) -> impl Iterator<Item = &'a Pending> + 'a {
        self.by_key.values().filter(move |p| p.operation.as_str() == operation)
    }

    pub fn keys(&self) -> Vec<Uuid> {
        self.by_key.keys().copied().collect()
    }
}
