//! # busline
//!
//! Transport-agnostic pub/sub for Orbitalis. One binary [`Event`] envelope travels on every
//! transport: [`LocalBus`] (in memory), `NatsBus` (feature `nats`) and `MqttBus` (feature
//! `mqtt`). Topics are `.`-separated tokens; subscriptions take NATS-style patterns (`*` one
//! token, `>` the rest) with the same meaning everywhere.
//!
//! ```
//! use busline::{Bus, Event, Identifier, LocalBus, Pattern, Topic};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), busline::Error> {
//! let bus: Bus = LocalBus::new().into();
//! let mut sub = bus.subscribe(&Pattern::new("demo.greetings.*")?).await?;
//! let event = Event::new(Identifier::new("alice")?);
//! bus.publish(&Topic::new("demo.greetings.bob")?, &event).await?;
//! let delivery = sub.recv().await.expect("the bus is open");
//! assert_eq!(delivery.event.publisher, "alice");
//! assert_eq!(delivery.topic.as_str(), "demo.greetings.bob");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod codec;
pub mod envelope;
mod error;
mod local;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "nats")]
pub mod nats;
mod receive;
mod recent;
mod routing;
pub mod topic;
mod transport;

pub use envelope::{Event, Fingerprint, Headers, Payload};
pub use error::{BoxError, DecodeError, DecodeErrorKind, Error};
pub use local::LocalBus;
#[cfg(feature = "mqtt")]
pub use mqtt::MqttBus;
#[cfg(feature = "nats")]
pub use nats::NatsBus;
pub use receive::{CounterSnapshot, Counters, DuplicateWindow};
pub use topic::{Identifier, Namespace, Pattern, Topic};
pub use transport::{
    Bus, ConnectionState, DEFAULT_DUPLICATE_WINDOW, DEFAULT_SUBSCRIPTION_CAPACITY, Delivery, Publishing,
    SubscribeOptions, Subscription, Transport,
};
