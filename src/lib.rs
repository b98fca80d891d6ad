//! # Orbitalis
//!
//! A distributed, event-based micro-kernel framework. A **core** states which operations it
//! needs; **plugins** offer operations. They find each other over a pub/sub bus with a
//! DHCP-like handshake, keep each other alive, and exchange Avro-typed values. The same
//! program runs on the in-memory [`LocalBus`] and, unchanged but for the bus, on NATS or MQTT.
//!
//! ```
//! use orbitalis::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), orbitalis::Error> {
//! let bus = LocalBus::new();
//! let lower = Operation::new("lowercase", |s: StringMessage, _ctx| async move {
//!     Ok(StringMessage(s.0.to_lowercase()))
//! });
//! let plugin = PluginBuilder::new("lower").bus(bus.clone()).operation(lower).start(()).await?;
//! let core = CoreBuilder::new("home")
//!     .bus(bus.clone())
//!     .require("lowercase", Requirement::new().input::<StringMessage>().output::<StringMessage>())
//!     .start(())
//!     .await?;
//! core.wait_compliant().await?;
//! let out: StringMessage = core.call("lowercase", StringMessage("HELLO".into()), Target::Any).await?;
//! assert_eq!(out.0, "hello");
//! core.stop().await;
//! plugin.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! Plugins and cores are usually ordinary types whose methods the attribute macros turn into
//! operations, sinks and hooks: [`macro@plugin`] with [`macro@operation`], [`macro@core`] with
//! [`macro@sink`], and [`macro@hook`] for both. `examples/smart_home.rs` uses them all.
//!
//! Cargo features: `nats` (default) adds `NatsBus`; `mqtt` adds `MqttBus`; `mqtt-tls`
//! adds TLS to MQTT.

#![warn(missing_docs)]

#[cfg(feature = "mqtt")]
pub use busline::MqttBus;
#[cfg(feature = "nats")]
pub use busline::NatsBus;
pub use busline::{self, Bus, Event, Identifier, LocalBus, Namespace, Payload, Topic};
pub use bytes::Bytes;
pub use orbitalis_core::{
    CandidateInfo, ConnectionInfo, ConnectionState, Core, CoreBuilder, CoreHandle, CounterSnapshot, Error, Limits,
    Lists, OrbiterEvent, PendingInfo, Requirement, Result, Selector, Sink, SinkContext, State, Strategy, Target,
    Timing,
};
pub use orbitalis_macros::{Message, core, hook, operation, plugin, sink};
pub use orbitalis_plugin::{Operation, OperationContext, OperationError, Plugin, PluginBuilder, PluginHandle, Policy};
pub use orbitalis_schemas::{
    self as schemas, Bool, BytesMessage, Data, Empty, Float32, Float64, Int32, Int64, Message, RawPayload, Schema,
    SchemaSpec, StringMessage, impl_message,
};

/// Everything a typical program uses.
pub mod prelude {
    pub use crate::{
        Bool, Bus, Bytes, BytesMessage, Core, CoreBuilder, CoreHandle, Data, Empty, Float32, Float64, Identifier,
        Int32, Int64, LocalBus, Message, Operation, OperationContext, OperationError, OrbiterEvent, Plugin,
        PluginBuilder, PluginHandle, Policy, Requirement, Sink, SinkContext, State, StringMessage, Target, core, hook,
        operation, plugin, sink,
    };
}

/// What the macros' expansions name besides the public API; not part of it.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
}
