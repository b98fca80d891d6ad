//! The Core role: requirements, compliance, discovery, executing operations and sinks.

mod builder;
mod call;
mod compliance;
mod discover;
mod execute;
mod handle;
mod handshake;
mod requirement;
mod role;
mod sink;

use std::sync::Arc;

use async_trait::async_trait;
use busline::Identifier;
use bytes::Bytes;

pub use builder::CoreBuilder;
pub use execute::{CandidateInfo, Selector, Strategy, Target};
pub use handle::CoreHandle;
pub use requirement::{Lists, Requirement};
pub use sink::{Sink, SinkContext};

use crate::orbiter::events::OrbiterEvent;

/// What a core's type provides: its sinks and hooks. `#[core]` writes this impl from
/// `#[sink]` and `#[hook]` methods; every method has a default, so `impl Core for T {}` is
/// a core with no sinks of its own.
#[async_trait]
pub trait Core: Send + Sync + 'static {
    /// The sinks this type declares, by operation.
    fn sinks(self: Arc<Self>) -> Vec<(String, Sink)> {
        Vec::new()
    }

    /// Setup data for a Request to `plugin` for `operation`, when the requirement has no
    /// default. Runs on the orbiter task: keep it quick.
    fn setup_data(&self, _operation: &Identifier, _plugin: &Identifier) -> Option<Bytes> {
        None
    }

    /// Called for every event, in order (state changes, connections, deaths, expiries).
    async fn on_event(&self, _event: OrbiterEvent) {}

    /// Called on every tick while running; skipped while the previous call goes on.
    async fn on_tick(&self) {}

    /// Whether [`Core::on_tick`] does anything (saves a task per tick when not).
    fn wants_tick(&self) -> bool {
        false
    }
}

/// A core with no sinks or hooks of its own.
impl Core for () {}

crate::hooks_adapter!(CoreHooks, Core);
