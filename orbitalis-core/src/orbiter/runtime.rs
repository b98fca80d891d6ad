//! What both handles share: the current run's command queue, the state cell, events and
//! counters, and the launcher that starts a new run (restart).

use std::sync::{Arc, Mutex};

use busline::Identifier;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::counters::{CounterSnapshot, Counters};
use super::events::{OrbiterEvent, State};
use super::task::{Command, Inspection, Running};
use crate::error::{Error, Result};

/// Capacity of the event broadcast; slow watchers see `Lagged` past it.
pub const EVENT_CAPACITY: usize = 1024;

/// The current run: its command queue and a way to kill its task.
struct Slot<C> {
    commands: mpsc::Sender<Command<C>>,
    task: tokio::task::AbortHandle,
}

type Launcher<C> = Box<dyn Fn(watch::Sender<State>) -> BoxFuture<'static, Result<Running<C>>> + Send + Sync>;

/// The shared core of a handle.
pub struct Runtime<C: Send + 'static> {
    id: Identifier,
    state: watch::Sender<State>,
    events: broadcast::Sender<OrbiterEvent>,
    counters: Arc<Counters>,
    run: Mutex<Option<Slot<C>>>,
    start_lock: tokio::sync::Mutex<()>,
    launcher: Launcher<C>,
}

impl<C: Send + 'static> Runtime<C> {
    /// A runtime in state CREATED.
    pub fn new(
        id: Identifier,
        events: broadcast::Sender<OrbiterEvent>,
        counters: Arc<Counters>,
        launcher: Launcher<C>,
    ) -> Self {
        Runtime {
            id,
            state: watch::Sender::new(State::Created),
            events,
            counters,
            run: Mutex::new(None),
            start_lock: tokio::sync::Mutex::new(()),
            launcher,
        }
    }

    /// The orbiter's identifier.
    pub fn id(&self) -> &Identifier {
        &self.id
    }

    /// Starts a run: from CREATED or STOPPED only.
    pub async fn start(&self) -> Result<()> {
        let _guard = self.start_lock.lock().await;
        if !matches!(*self.state.borrow(), State::Created | State::Stopped) {
            return Err(Error::AlreadyRunning);
        }
        let running = (self.launcher)(self.state.clone()).await?;
        let slot = Slot { commands: running.commands, task: running.task.abort_handle() };
        *self.run.lock().unwrap_or_else(|e| e.into_inner()) = Some(slot);
        Ok(())
    }

    /// Stops the run gracefully; returns at once when not running.
    pub async fn stop(&self) {
        let Some(tx) = self.sender() else { return };
        let (reply, done) = oneshot::channel();
        if tx.send(Command::Stop(reply)).await.is_ok() {
            let _ = done.await;
        }
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        if run.as_ref().is_some_and(|r| r.commands.same_channel(&tx)) {
            *run = None;
        }
    }

    /// Kills the run at once, as a crash would: nothing is sent, remotes find out by
    /// liveness (PROTOCOL.md §6.7). For failure drills and tests; use `stop` otherwise.
    pub fn abort(&self) {
        if let Some(slot) = self.run.lock().unwrap_or_else(|e| e.into_inner()).take() {
            slot.task.abort();
            self.state.send_replace(State::Stopped);
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<Command<C>>> {
        self.run.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|s| s.commands.clone())
    }

    /// Sends a command, waiting for room.
    pub async fn send(&self, c: Command<C>) -> Result<()> {
        let tx = self.sender().ok_or(Error::NotRunning)?;
        tx.send(c).await.map_err(|_| Error::NotRunning)
    }

    /// Sends a command without waiting (`Overloaded` when the queue is full).
    pub fn try_send(&self, c: Command<C>) -> Result<()> {
        let tx = self.sender().ok_or(Error::NotRunning)?;
        tx.try_send(c).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Overloaded("the orbiter's command queue is full"),
            mpsc::error::TrySendError::Closed(_) => Error::NotRunning,
        })
    }

    /// Sends a command carrying a reply channel and awaits the reply.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command<C>) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| Error::NotRunning)
    }

    /// Plain data about the run (empty when not running).
    pub async fn inspect(&self) -> Inspection {
        self.ask(Command::Inspect).await.unwrap_or_default()
    }

    /// The current state.
    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    /// A receiver of state changes.
    pub fn watch(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    /// Waits until `pred` holds for the state.
    pub async fn wait_for(&self, pred: impl FnMut(&State) -> bool) -> State {
        let mut rx = self.state.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        rx.wait_for(pred).await.map(|s| *s).unwrap_or(State::Stopped)
    }

    /// A receiver of every event from now on.
    pub fn events(&self) -> broadcast::Receiver<OrbiterEvent> {
        self.events.subscribe()
    }

    /// A copy of the counters.
    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }
}

/// The methods both handles share, written once; `$what` names the role in their docs.
/// The handle must hold `inner.rt: Runtime<_>` and `inner.schema_limits`.
#[doc(hidden)]
#[macro_export]
macro_rules! orbiter_handle_methods {
    ($what:literal) => {
        #[doc = concat!("This ", $what, "'s identifier.")]
        pub fn id(&self) -> &$crate::busline::Identifier {
            self.inner.rt.id()
        }

        /// The current state.
        pub fn state(&self) -> $crate::State {
            self.inner.rt.state()
        }

        /// A receiver of state changes.
        pub fn watch(&self) -> $crate::__deps::tokio::sync::watch::Receiver<$crate::State> {
            self.inner.rt.watch()
        }

        /// Every event from now on (state changes, connections, deaths, expiries).
        pub fn events(&self) -> $crate::__deps::tokio::sync::broadcast::Receiver<$crate::OrbiterEvent> {
            self.inner.rt.events()
        }

        /// Waits until the state satisfies `pred`, returning it.
        pub async fn wait_for(&self, pred: impl FnMut(&$crate::State) -> bool) -> $crate::State {
            self.inner.rt.wait_for(pred).await
        }

        /// The counters.
        pub fn counters(&self) -> $crate::CounterSnapshot {
            self.inner.rt.counters()
        }

        /// Every connection (empty when stopped).
        pub async fn connections(&self) -> Vec<$crate::ConnectionInfo> {
            self.inner.rt.inspect().await.connections
        }

        /// Every pending request (empty when stopped).
        pub async fn pending_requests(&self) -> Vec<$crate::PendingInfo> {
            self.inner.rt.inspect().await.pending
        }

        /// Remotes with a connection or pending request.
        pub async fn remote_identifiers(&self) -> Vec<$crate::busline::Identifier> {
            self.inner.rt.inspect().await.remotes
        }

        /// Remotes remembered (acquaintances, bounded and pruned).
        pub async fn acquaintance_count(&self) -> usize {
            self.inner.rt.inspect().await.acquaintances
        }

        #[doc = concat!("Starts the ", $what, " again after `stop`, as a new incarnation.")]
        pub async fn start(&self) -> $crate::Result<()> {
            self.inner.rt.start().await
        }

        /// Stops gracefully: new work is refused, every connection closes once the other side
        /// finished its in-flight work (bounded by `graceful_close_timeout`), then no task and
        /// no subscription is left. Returns at once when not running.
        pub async fn stop(&self) {
            self.inner.rt.stop().await
        }

        #[doc = concat!("Kills the ", $what, " at once, as a crash would: its task ends without telling")]
        /// anyone, and remotes find out by liveness (PROTOCOL.md §6.7). For failure drills and
        /// tests.
        pub fn abort(&self) {
            self.inner.rt.abort()
        }

        /// Suspends discovery, idle closes, keepalives and the tick hook (remotes eventually
        /// consider a paused orbiter dead).
        pub async fn pause(&self) -> $crate::Result<()> {
            self.inner.rt.send($crate::orbiter::task::Command::Pause).await
        }

        /// Undoes `pause`.
        pub async fn resume(&self) -> $crate::Result<()> {
            self.inner.rt.send($crate::orbiter::task::Command::Resume).await
        }

        /// Closes a connection: gracefully (the other side finishes its work first) or at
        /// once, with optional data for the other side (at most E/16). Returns whether such
        /// an OPEN connection existed.
        pub async fn close_connection(
            &self,
            id: $crate::__deps::uuid::Uuid,
            graceful: bool,
            data: Option<$crate::__deps::bytes::Bytes>,
        ) -> $crate::Result<bool> {
            let max = self.inner.schema_limits.max_close_data();
            if data.as_ref().is_some_and(|d| d.len() > max) {
                return Err($crate::Error::InvalidArgument(format!("close data is limited to {max} bytes (E/16)")));
            }
            self.inner.rt.ask(|reply| $crate::orbiter::task::Command::Close { id, graceful, data, reply }).await
        }
    };
}
