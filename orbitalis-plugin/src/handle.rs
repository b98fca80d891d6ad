//! [`PluginHandle`]: the cheap, cloneable handle of a running plugin.

use std::sync::Arc;

use busline::Identifier;
use bytes::Bytes;
use orbitalis_core::orbiter::runtime::Runtime;
use orbitalis_core::orbiter::task::Command;
use orbitalis_core::{ConnectionInfo, CounterSnapshot, Error, OrbiterEvent, PendingInfo, Result, State};
use orbitalis_schemas::Data;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::operation::Operation;
use crate::push::Pusher;
use crate::role::PluginCommand;

pub(crate) struct PluginShared {
    pub rt: Runtime<PluginCommand>,
    pub pusher: Pusher,
    pub schema_limits: orbitalis_schemas::Limits,
}

/// A running (or stopped) plugin. Cheap to clone; every clone drives the same plugin.
#[derive(Clone)]
pub struct PluginHandle {
    inner: Arc<PluginShared>,
}

impl std::fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHandle").field("id", self.id()).field("state", &self.state()).finish()
    }
}

impl PluginHandle {
    pub(crate) fn new(shared: PluginShared) -> Self {
        PluginHandle { inner: Arc::new(shared) }
    }

    /// This plugin's identifier.
    pub fn id(&self) -> &Identifier {
        self.inner.rt.id()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner.rt.state()
    }

    /// A receiver of state changes.
    pub fn watch(&self) -> watch::Receiver<State> {
        self.inner.rt.watch()
    }

    /// Every event from now on.
    pub fn events(&self) -> broadcast::Receiver<OrbiterEvent> {
        self.inner.rt.events()
    }

    /// Waits until the state satisfies `pred`, returning it.
    pub async fn wait_for(&self, pred: impl FnMut(&State) -> bool) -> State {
        self.inner.rt.wait_for(pred).await
    }

    /// The counters.
    pub fn counters(&self) -> CounterSnapshot {
        self.inner.rt.counters()
    }

    /// Every connection (empty when stopped).
    pub async fn connections(&self) -> Vec<ConnectionInfo> {
        self.inner.rt.inspect().await.connections
    }

    /// Every pending request (empty when stopped).
    pub async fn pending_requests(&self) -> Vec<PendingInfo> {
        self.inner.rt.inspect().await.pending
    }

    /// Cores with a connection or pending request.
    pub async fn remote_identifiers(&self) -> Vec<Identifier> {
        self.inner.rt.inspect().await.remotes
    }

    /// Remotes remembered (acquaintances, bounded and pruned).
    pub async fn acquaintance_count(&self) -> usize {
        self.inner.rt.inspect().await.acquaintances
    }

    /// Starts the plugin again after [`PluginHandle::stop`], as a new incarnation.
    pub async fn start(&self) -> Result<()> {
        self.inner.rt.start().await
    }

    /// Stops gracefully: in-flight handlers finish, every connection closes (bounded by
    /// `graceful_close_timeout`), then nothing is left running. Returns at once when not
    /// running.
    pub async fn stop(&self) {
        self.inner.rt.stop().await
    }

    /// Kills the plugin at once, as a crash would: its task ends without telling anyone, and
    /// remotes find out by liveness (PROTOCOL.md §6.7). For failure drills and tests.
    pub fn abort(&self) {
        self.inner.rt.abort()
    }

    /// Suspends idle closes, keepalives and the tick hook.
    pub async fn pause(&self) -> Result<()> {
        self.inner.rt.send(Command::Pause).await
    }

    /// Undoes [`PluginHandle::pause`].
    pub async fn resume(&self) -> Result<()> {
        self.inner.rt.send(Command::Resume).await
    }

    /// Closes a connection, gracefully or at once; whether such an OPEN one existed.
    pub async fn close_connection(&self, id: Uuid, graceful: bool, data: Option<Bytes>) -> Result<bool> {
        let max = self.inner.schema_limits.max_close_data();
        if data.as_ref().is_some_and(|d| d.len() > max) {
            return Err(Error::InvalidArgument(format!("close data is limited to {max} bytes (E/16)")));
        }
        self.inner.rt.ask(|reply| Command::Close { id, graceful, data, reply }).await
    }

    /// Adds an operation (offered from the next Discover) or replaces one of the same name
    /// (a narrower policy closes the connections it no longer allows).
    pub async fn add_operation(&self, operation: Operation) -> Result<()> {
        let v = operation.validate(&self.inner.schema_limits)?;
        self.inner.rt.send(Command::Role(PluginCommand::SetOperation(Box::new(v)))).await
    }

    /// Removes an operation, closing its connections (OPERATION_REMOVED).
    pub async fn remove_operation(&self, name: impl AsRef<str>) -> Result<()> {
        let name = Identifier::new(name)?;
        self.inner.rt.send(Command::Role(PluginCommand::RemoveOperation(name))).await
    }

    /// Pushes `value` uncorrelated on every OPEN connection of `operation` whose negotiated
    /// output accepts it; returns how many (0 is no error). PROTOCOL.md Y5.
    pub async fn send_to_all<T: Data>(&self, operation: &str, value: T) -> Result<usize> {
        self.inner.pusher.send_to_all(operation, value).await
    }
}
