//! User hooks, run off the orbiter task so a slow or failing hook never delays the protocol.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::counters::{Counter, Counters};
use super::events::OrbiterEvent;

/// What the runtime calls on the user's side; the `Core` and `Plugin` traits provide it.
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    /// Called for every event, in order, one at a time.
    async fn on_event(&self, event: OrbiterEvent);
    /// Called on every tick (spawned, skipped while the previous run goes on).
    async fn on_tick(&self);
    /// Whether [`Hooks::on_tick`] does anything (saves a spawn per tick when not).
    fn wants_tick(&self) -> bool;
}

/// Runs `f`, turning a panic into an error message.
pub async fn guarded<T>(f: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(f).catch_unwind().await.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}

/// Starts the worker that feeds events to `hooks` in order; it ends when the sender drops.
pub fn start_hook_worker(
    hooks: Arc<dyn Hooks>,
    capacity: usize,
    counters: Arc<Counters>,
    orbiter: String,
) -> (mpsc::Sender<OrbiterEvent>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<OrbiterEvent>(capacity);
    let worker = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if let Err(p) = guarded(hooks.on_event(ev)).await {
                counters.drop_with(Counter::hook_errors, &orbiter, format_args!("an event hook panicked: {p}"));
            }
        }
    });
    (tx, worker)
}

/// Hooks that do nothing.
#[derive(Debug, Default)]
pub struct NoHooks;

#[async_trait]
impl Hooks for NoHooks {
    async fn on_event(&self, _: OrbiterEvent) {}
    async fn on_tick(&self) {}
    fn wants_tick(&self) -> bool {
        false
    }
}

/// Writes the adapter from a role's user trait (`Core`, `Plugin`: both have `on_event`,
/// `on_tick` and `wants_tick`) to [`Hooks`], once for both roles.
#[doc(hidden)]
#[macro_export]
macro_rules! hooks_adapter {
    ($adapter:ident, $user:path) => {
        struct $adapter<T>(::std::sync::Arc<T>);

        #[$crate::__deps::async_trait::async_trait]
        impl<T: $user> $crate::orbiter::hooks::Hooks for $adapter<T> {
            async fn on_event(&self, event: $crate::OrbiterEvent) {
                self.0.on_event(event).await
            }

            async fn on_tick(&self) {
                self.0.on_tick().await
            }

            fn wants_tick(&self) -> bool {
                self.0.wants_tick()
            }
        }
    };
}
