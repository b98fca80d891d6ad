//! # orbitalis-plugin
//!
//! The Orbitalis Plugin role: a plugin offers [`Operation`]s under [`Policy`]s, answers
//! Discovers from cores with Offers, and runs handlers on the inputs of its connections.
//!
//! Handlers run off the plugin's task with bounded concurrency (16 per operation by
//! default) and a bounded queue (1,024); a full queue refuses the input (a call gets
//! `OVERLOADED`), a failing or panicking handler is reported to its caller or counted, and
//! neither ever takes the plugin down.

#![warn(missing_docs)]

mod builder;
mod handle;
mod handler;
mod handshake;
mod operation;
mod policy;
mod push;
mod role;

use std::sync::Arc;

use async_trait::async_trait;
use busline::Identifier;
use bytes::Bytes;
use orbitalis_core::OrbiterEvent;

pub use builder::PluginBuilder;
pub use handle::PluginHandle;
pub use operation::{Operation, OperationContext, OperationError};
pub use policy::Policy;

/// What a plugin's type provides: its operations and hooks. `#[plugin]` writes this impl
/// from `#[operation]` and `#[hook]` methods; every method has a default.
#[async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// The operations this type declares.
    fn operations(self: Arc<Self>) -> Vec<Operation> {
        Vec::new()
    }

    /// Runs when a core sends setup data with its Request (PROTOCOL.md P2d), off the
    /// plugin's task; an error refuses the connection (`SETUP_FAILED`).
    async fn on_setup(&self, _operation: &Identifier, _core: &Identifier, _data: &Bytes) -> Result<(), OperationError> {
        Ok(())
    }

    /// Called for every event, in order.
    async fn on_event(&self, _event: OrbiterEvent) {}

    /// Called on every tick while running; skipped while the previous call goes on.
    async fn on_tick(&self) {}

    /// Whether [`Plugin::on_tick`] does anything (saves a task per tick when not).
    fn wants_tick(&self) -> bool {
        false
    }
}

/// A plugin with no operations or hooks of its own (add operations on the builder).
impl Plugin for () {}

orbitalis_core::hooks_adapter!(PluginHooks, Plugin);
