//! [`PluginBuilder`]: configure and start a plugin.

use std::sync::Arc;

use futures::FutureExt;
use orbitalis_core::orbiter::base::BaseConfig;
use orbitalis_core::orbiter::counters::Counters;
use orbitalis_core::orbiter::runtime::{EVENT_CAPACITY, Runtime};
use orbitalis_core::orbiter::task::{Launch, launch};
use orbitalis_core::settings::Settings;
use orbitalis_core::topics::Topics;
use orbitalis_core::{Error, Result};
use tokio::sync::{broadcast, watch};

use crate::handle::{PluginHandle, PluginShared};
use crate::operation::Operation;
use crate::push::{PushView, Pusher};
use crate::role::{PluginObject, PluginRole};
use crate::{Plugin, PluginHooks};

/// Configures a plugin. Every setting is checked when [`PluginBuilder::start`] runs; a bad
/// one is an [`Error::Config`] and nothing starts.
#[must_use = "a builder does nothing until started"]
pub struct PluginBuilder {
    settings: Settings,
    operations: Vec<Operation>,
    policies: Vec<(String, crate::Policy)>,
}

impl PluginBuilder {
    /// A plugin named `id`.
    pub fn new(id: impl AsRef<str>) -> Self {
        PluginBuilder { settings: Settings::new(id), operations: Vec::new(), policies: Vec::new() }
    }

    orbitalis_core::settings_methods!();

    /// Plugins delay Offers by a uniform random time up to this (default 0).
    pub fn offer_jitter(mut self, d: std::time::Duration) -> Self {
        self.settings.timing.offer_jitter = d;
        self
    }

    /// Adds an operation besides those the plugin type declares.
    pub fn operation(mut self, operation: Operation) -> Self {
        self.operations.push(operation);
        self
    }

    /// Overrides the policy of an operation.
    pub fn policy(mut self, operation: impl Into<String>, policy: crate::Policy) -> Self {
        self.policies.push((operation.into(), policy));
        self
    }

    /// Validates the configuration and starts `plugin`.
    pub async fn start<P: Plugin>(self, plugin: P) -> Result<PluginHandle> {
        let v = self.settings.validate()?;
        let plugin = Arc::new(plugin);
        let mut ops = Vec::new();
        for op in plugin.clone().operations().into_iter().chain(self.operations) {
            let op = op.validate(&v.schema_limits)?;
            if ops.iter().any(|o: &crate::operation::Validated| o.name == op.name) {
                return Err(Error::Config(format!("operation {} is declared twice", op.name)));
            }
            ops.push(op);
        }
        for (name, policy) in self.policies {
            policy.validate().map_err(|e| Error::Config(format!("policy of {name}: {e}")))?;
            let op = ops
                .iter_mut()
                .find(|o| o.name.as_str() == name)
                .ok_or_else(|| Error::Config(format!("a policy for {name}, which is not an operation")))?;
            op.policy = policy;
        }
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let counters = Arc::new(Counters::default());
        let (view_tx, view_rx) = watch::channel(Arc::new(PushView::default()));
        let pusher = Pusher { me: v.id.clone(), bus: v.bus.clone(), view: view_rx };
        let object: PluginObject = plugin.clone();
        let hooks = Arc::new(PluginHooks(plugin));
        let launcher = {
            let (v, events, counters, pusher) = (v.clone(), events.clone(), counters.clone(), pusher.clone());
            Box::new(move |state| {
                let base = BaseConfig {
                    topics: Topics::new(v.namespace.clone(), v.id.clone()),
                    role: orbitalis_schemas::protocol::Role::Plugin,
                    timing: v.timing.clone(),
                    limits: v.limits.clone(),
                    bus: v.bus.clone(),
                    counters: counters.clone(),
                    events: events.clone(),
                };
                let role = PluginRole::new(ops.clone(), object.clone(), view_tx.clone(), pusher.clone());
                launch(Launch { base, role, hooks: hooks.clone(), state }).boxed()
            })
        };
        let rt = Runtime::new(v.id.clone(), events, counters, launcher);
        rt.start().await?;
        Ok(PluginHandle::new(PluginShared { rt, pusher, schema_limits: v.schema_limits }))
    }
}
