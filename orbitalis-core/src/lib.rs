//! # orbitalis-core
//!
//! The Orbitalis orbiter runtime and the Core role. A core states which operations it needs
//! ([`Requirement`]); plugins offering them are found over the bus with a DHCP-like
//! handshake, kept alive, and used through [`CoreHandle::execute`] and [`CoreHandle::call`].
//!
//! Runtime semantics, in one place:
//! - One tokio task per orbiter owns all protocol state; handles are cheap clones that send
//!   commands or read a published view. No lock guards protocol state.
//! - Handlers, sinks and hooks run off that task, bounded; a slow one never delays the
//!   handshake or keepalives, and a failing one is counted and logged, never fatal.
//! - All time goes through `tokio::time`: tests run on paused time.
//! - Every queue is bounded (PROTOCOL.md §7.5); what a full one does is documented on it.

#![warn(missing_docs)]

pub mod config;
pub mod core;
mod error;
#[doc(hidden)]
#[allow(missing_docs)] // the runtime behind both roles, public for orbitalis-plugin only
pub mod orbiter;
pub mod settings;
pub mod topics;

pub use busline;
pub use config::{Limits, Timing};
pub use core::{
    CandidateInfo, Core, CoreBuilder, CoreHandle, Lists, Requirement, Selector, Sink, SinkContext, Strategy, Target,
};
pub use error::{Error, Result};
pub use orbitalis_schemas;

/// Crates the exported macros name, so callers need not depend on them.
#[doc(hidden)]
pub mod __deps {
    pub use {async_trait, bytes, tokio, uuid};
}
pub use orbiter::connection::{ConnectionInfo, ConnectionState};
pub use orbiter::counters::CounterSnapshot;
pub use orbiter::events::{OrbiterEvent, State};
pub use orbiter::pending::PendingInfo;
