//! [`PluginHandle`]: the cheap, cloneable handle of a running plugin.

use std::sync::Arc;

use busline::Identifier;
use orbitalis_core::Result;
use orbitalis_core::orbiter::runtime::Runtime;
use orbitalis_core::orbiter::task::Command;
use orbitalis_schemas::Data;

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

    orbitalis_core::orbiter_handle_methods!("plugin");

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
