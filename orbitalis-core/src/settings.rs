//! What both builders share: identifier, bus, namespace, timing and bounds, validated once
//! at build time so a running orbiter never meets a bad setting.

use busline::{Bus, Identifier, Namespace};

use crate::config::{Limits, Timing};
use crate::error::{Error, Result};

/// Builder settings common to cores and plugins.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    id: Option<Result<Identifier, String>>,
    namespace: Option<Result<Namespace, String>>,
    /// The bus.
    pub bus: Option<Bus>,
    /// Timing parameters.
    pub timing: Timing,
    /// Queue and table bounds.
    pub limits: Limits,
}

/// Settings after validation.
#[derive(Clone, Debug)]
pub struct Validated {
    /// The orbiter's identifier.
    pub id: Identifier,
    /// The namespace.
    pub namespace: Namespace,
    /// The bus.
    pub bus: Bus,
    /// Timing parameters.
    pub timing: Timing,
    /// Queue and table bounds.
    pub limits: Limits,
    /// Size limits from the bus's `max_envelope_size`.
    pub schema_limits: orbitalis_schemas::Limits,
}

impl Settings {
    /// Settings for orbiter `id` (validated at build time).
    pub fn new(id: impl AsRef<str>) -> Self {
        Settings { id: Some(Identifier::new(id).map_err(|e| e.to_string())), ..Default::default() }
    }

    /// Sets the namespace (validated at build time).
    pub fn set_namespace(&mut self, ns: impl AsRef<str>) {
        self.namespace = Some(Namespace::new(ns).map_err(|e| e.to_string()));
    }

    /// Checks everything.
    pub fn validate(&self) -> Result<Validated> {
        let id = match &self.id {
            Some(Ok(id)) => id.clone(),
            Some(Err(e)) => return Err(Error::config(e.clone())),
            None => return Err(Error::config("no identifier")),
        };
        let namespace = match &self.namespace {
            None => Namespace::default(),
            Some(Ok(ns)) => ns.clone(),
            Some(Err(e)) => return Err(Error::config(e.clone())),
        };
        let bus = self.bus.clone().ok_or_else(|| Error::config(format!("{id}: no bus: call .bus(...)")))?;
        self.timing.validate()?;
        self.limits.validate()?;
        let schema_limits = orbitalis_schemas::Limits::new(bus.max_envelope_size())?;
        orbitalis_schemas::limits::init_decoding(bus.max_envelope_size())?;
        Ok(Validated { id, namespace, bus, timing: self.timing.clone(), limits: self.limits.clone(), schema_limits })
    }
}

/// Builder methods every orbiter builder has, over its `settings` field.
#[doc(hidden)]
#[macro_export]
macro_rules! settings_methods {
    () => {
        /// The bus to run on (required).
        pub fn bus(mut self, bus: impl Into<$crate::busline::Bus>) -> Self {
            self.settings.bus = Some(bus.into());
            self
        }

        /// The namespace shared by a deployment (default `orbitalis`).
        pub fn namespace(mut self, ns: impl AsRef<str>) -> Self {
            self.settings.set_namespace(ns);
            self
        }

        /// Every timing parameter at once.
        pub fn timing(mut self, timing: $crate::Timing) -> Self {
            self.settings.timing = timing;
            self
        }

        /// Every queue bound at once.
        pub fn limits(mut self, limits: $crate::Limits) -> Self {
            self.settings.limits = limits;
            self
        }

        /// How often the loop runs (default 250 ms).
        pub fn tick_interval(mut self, d: std::time::Duration) -> Self {
            self.settings.timing.tick_interval = d;
            self
        }

        /// Lifetime of a pending request (default 10 s).
        pub fn pending_timeout(mut self, d: std::time::Duration) -> Self {
            self.settings.timing.pending_timeout = d;
            self
        }

        /// Silence after which a connected remote is dead (default 30 s; `None` = never).
        pub fn dead_after(mut self, d: Option<std::time::Duration>) -> Self {
            self.settings.timing.dead_after = d;
            self
        }

        /// Keepalives per remote's window (default 4).
        pub fn keepalives_per_window(mut self, k: u32) -> Self {
            self.settings.timing.keepalives_per_window = k;
            self
        }

        /// Reconciliation keepalive interval (default 30 s).
        pub fn reconcile_interval(mut self, d: std::time::Duration) -> Self {
            self.settings.timing.reconcile_interval = d;
            self
        }

        /// Graceful close timeout (default 30 s).
        pub fn graceful_close_timeout(mut self, d: std::time::Duration) -> Self {
            self.settings.timing.graceful_close_timeout = d;
            self
        }

        /// Close connections unused this long (default off).
        pub fn idle_timeout(mut self, d: Option<std::time::Duration>) -> Self {
            self.settings.timing.idle_timeout = d;
            self
        }

        /// Forget idle remotes silent this long (default 120 s).
        pub fn acquaintance_ttl(mut self, d: std::time::Duration) -> Self {
            self.settings.timing.acquaintance_ttl = d;
            self
        }
    };
}
