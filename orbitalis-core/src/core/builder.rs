//! [`CoreBuilder`]: configure and start a core.

use std::collections::HashMap;
use std::sync::Arc;

use busline::Identifier;
use futures::FutureExt;
use tokio::sync::{broadcast, watch};

use super::execute::ExecView;
use super::handle::{CoreHandle, CoreShared};
use super::requirement::{Requirement, Resolved};
use super::role::{CoreRole, SetupHook};
use super::sink::Sink;
use super::{Core, CoreHooks};
use crate::error::{Error, Result};
use crate::orbiter::base::BaseConfig;
use crate::orbiter::counters::Counters;
use crate::orbiter::runtime::{EVENT_CAPACITY, Runtime};
use crate::orbiter::task::{Launch, launch};
use crate::settings::Settings;
use crate::topics::Topics;

/// Configures a core. Every setting is checked when [`CoreBuilder::start`] runs; a bad one
/// is an [`Error::Config`] and nothing starts.
///
/// ```
/// # use orbitalis_core::{CoreBuilder, Requirement};
/// # use orbitalis_schemas::StringMessage;
/// # async fn demo(bus: busline::LocalBus) -> Result<(), orbitalis_core::Error> {
/// let core = CoreBuilder::new("home")
///     .bus(bus)
///     .require("lowercase", Requirement::new().input::<StringMessage>().output::<StringMessage>())
///     .start(())
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until started"]
pub struct CoreBuilder {
    settings: Settings,
    requirements: Vec<(String, Requirement)>,
    sinks: Vec<(String, Sink)>,
}

impl CoreBuilder {
    /// A core named `id`.
    pub fn new(id: impl AsRef<str>) -> Self {
        CoreBuilder { settings: Settings::new(id), requirements: Vec::new(), sinks: Vec::new() }
    }

    crate::settings_methods!();

    /// Least time between Discovers while something is needed (default 2 s).
    pub fn discover_interval(mut self, d: std::time::Duration) -> Self {
        self.settings.timing.discover_interval = d;
        self
    }

    /// Discover this often even when satisfied (default 30 s; `None` = off).
    pub fn opportunistic_discover_interval(mut self, d: Option<std::time::Duration>) -> Self {
        self.settings.timing.opportunistic_discover_interval = d;
        self
    }

    /// Default timeout of awaited calls (default 10 s).
    pub fn call_timeout(mut self, d: std::time::Duration) -> Self {
        self.settings.timing.call_timeout = d;
        self
    }

    /// Requires an operation; the order of `require` calls is the order of queries.
    pub fn require(mut self, operation: impl Into<String>, requirement: Requirement) -> Self {
        self.requirements.push((operation.into(), requirement));
        self
    }

    /// Sets the sink of an operation (a requirement's own sink wins).
    pub fn sink(mut self, operation: impl Into<String>, sink: Sink) -> Self {
        self.sinks.push((operation.into(), sink));
        self
    }

    /// Validates the configuration and starts `core`.
    pub async fn start<C: Core>(self, core: C) -> Result<CoreHandle> {
        let v = self.settings.validate()?;
        let core = Arc::new(core);
        let mut reqs: Vec<(Identifier, Resolved)> = Vec::new();
        for (op, r) in self.requirements {
            let id = Identifier::new(&op).map_err(|e| Error::config(e.to_string()))?;
            if reqs.iter().any(|(o, _)| o == &id) {
                return Err(Error::config(format!("operation {op} is required twice")));
            }
            reqs.push((id.clone(), r.resolve(&id, &v.schema_limits)?));
        }
        let mut sinks: HashMap<Identifier, Sink> = HashMap::new();
        let declared = core.clone().sinks().into_iter();
        for (op, sink) in declared.chain(self.sinks) {
            let id = Identifier::new(&op).map_err(|e| Error::config(e.to_string()))?;
            sink.accepts().map_err(|e| Error::config(format!("sink of {op}: {e}")))?;
            sinks.insert(id, sink);
        }
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let counters = Arc::new(Counters::default());
        let (view_tx, view_rx) = watch::channel(Arc::new(ExecView::stopped()));
        let setup_hook: SetupHook = {
            let core = core.clone();
            Arc::new(move |op: &Identifier, plugin: &Identifier| core.setup_data(op, plugin))
        };
        let hooks = Arc::new(CoreHooks(core));
        let cfg = {
            let (v, events, counters) = (v.clone(), events.clone(), counters.clone());
            move || BaseConfig {
                topics: Topics::new(v.namespace.clone(), v.id.clone()),
                role: orbitalis_schemas::protocol::Role::Core,
                timing: v.timing.clone(),
                limits: v.limits.clone(),
                bus: v.bus.clone(),
                counters: counters.clone(),
                events: events.clone(),
            }
        };
        let max_waiting_calls = v.limits.max_waiting_calls;
        let launcher = Box::new(move |state| {
            let role =
                CoreRole::new(reqs.clone(), sinks.clone(), setup_hook.clone(), view_tx.clone(), max_waiting_calls);
            launch(Launch { base: cfg(), role, hooks: hooks.clone(), state }).boxed()
        });
        let rt = Runtime::new(v.id.clone(), events, counters, launcher);
        rt.start().await?;
        Ok(CoreHandle::new(CoreShared {
            rt,
            view: view_rx,
            bus: v.bus,
            me: v.id,
            call_timeout: v.timing.call_timeout,
            schema_limits: v.schema_limits,
        }))
    }
}
