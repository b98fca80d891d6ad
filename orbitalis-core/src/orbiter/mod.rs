//! The orbiter runtime both roles share: one task per orbiter owning connections, pending
//! requests and acquaintances; liveness, closing, expiry and the tick.
//!
//! Public for `orbitalis-plugin`, which builds the plugin role on it; users reach what they
//! need through the crate root.

pub mod acquaintance;
pub mod base;
pub mod close;
pub mod connection;
pub mod counters;
pub mod events;
pub mod expiry;
pub mod hooks;
pub mod keepalive;
pub mod outbound;
pub mod pending;
pub mod receive;
pub mod runtime;
pub mod task;
pub mod usage;
pub mod workers;
