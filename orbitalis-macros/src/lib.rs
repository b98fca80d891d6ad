//! # orbitalis-macros
//!
//! Attribute macros that write the `Plugin` and `Core` impls of Orbitalis from ordinary
//! methods. Use them through the `orbitalis` crate (`use orbitalis::prelude::*`), which
//! re-exports them; the generated code names `::orbitalis::…` paths.
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
//!
//! use orbitalis::prelude::*;
//! use tokio::sync::mpsc;
//!
//! #[derive(Default)]
//! struct Lamp {
//!     on: AtomicBool,
//! }
//!
//! #[plugin]
//! impl Lamp {
//!     /// No argument: an EMPTY input; no return value: a NONE output.
//!     #[operation(name = "turn_on", policy = Policy::allowlist(["home"]))]
//!     async fn turn_on(&self) {
//!         self.on.store(true, Relaxed);
//!     }
//!
//!     /// The name defaults to the method's; the context tells who called.
//!     #[operation]
//!     async fn status(&self, ctx: &OperationContext) -> StringMessage {
//!         StringMessage(format!("{} is {}", ctx.plugin_id(), if self.on.load(Relaxed) { "on" } else { "off" }))
//!     }
//!
//!     /// No input and a period: pushed to every connected core each second.
//!     #[operation(period = "1s")]
//!     async fn power(&self) -> Float64 {
//!         Float64(if self.on.load(Relaxed) { 9.5 } else { 0.0 })
//!     }
//! }
//!
//! struct Home {
//!     readings: mpsc::UnboundedSender<f64>,
//! }
//!
//! #[core]
//! impl Home {
//!     #[sink("power")]
//!     async fn on_power(&self, watts: Float64) {
//!         let _ = self.readings.send(watts.0);
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), orbitalis::Error> {
//! let bus = LocalBus::new();
//! let lamp = PluginBuilder::new("lamp").bus(bus.clone()).start(Lamp::default()).await?;
//! let (readings, mut received) = mpsc::unbounded_channel();
//! let home = CoreBuilder::new("home")
//!     .bus(bus)
//!     .require("turn_on", Requirement::new().input::<Empty>())
//!     .require("status", Requirement::new().input::<Empty>().output::<StringMessage>())
//!     .require("power", Requirement::new().no_input().output::<Float64>())
//!     .start(Home { readings })
//!     .await?;
//! home.wait_compliant().await?;
//! home.call::<_, ()>("turn_on", Empty, Target::Any).await?;
//! let status: StringMessage = home.call("status", Empty, Target::Any).await?;
//! assert_eq!(status.0, "lamp is on");
//! while received.recv().await != Some(9.5) {}
//! home.stop().await;
//! lamp.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## Signatures
//!
//! An `#[operation]` method is an `async fn` taking `&self`, at most one input (any `Data`
//! type; none means an EMPTY input) and optionally an `OperationContext` (by value or by
//! reference, in any position). It returns `T`, `Result<T, E>`, `()` or `Result<(), E>`,
//! where `T: Data` and `E: Into<OperationError>`; a unit return declares a NONE output.
//!
//! A `#[sink("operation")]` method is an `async fn` taking `&self`, the output (any `Data`
//! type; none means an EMPTY output) and optionally a `SinkContext`, returning nothing.
//!
//! A `#[hook]` method is wired to the trait method of its name, whose arguments it takes:
//! `on_event(&self, event: OrbiterEvent)` and `on_tick(&self)` in both roles (`on_tick` also
//! turns the tick on); `on_setup(&self, operation: &Identifier, core: &Identifier, data:
//! &Bytes) -> Result<(), E>` in a plugin; `fn setup_data(&self, operation: &Identifier,
//! plugin: &Identifier) -> Option<Bytes>`, not `async`, in a core.
//!
//! ## What is generated
//!
//! The impl block stays as written. Beside it comes `impl Plugin for T` (or `impl Core for
//! T`) whose `operations` (or `sinks`) builds one `Operation::new`, `Operation::procedure` or
//! `Operation::periodic` per `#[operation]` (one `Sink::new` per `#[sink]`), each closure
//! holding an `Arc` of the value and calling the method; hook methods delegate to the
//! user's. Nothing in it is beyond what a hand-written impl can do.
//!
//! `#[plugin(crate = path)]` and `#[core(crate = path)]` name the `orbitalis` crate when it
//! is not reachable as `::orbitalis` (renamed, or re-exported by another crate).

#![warn(missing_docs)]

mod args;
mod block;
mod duration;
mod hooks;
mod message;
mod method;
mod role_core;
mod role_plugin;

use proc_macro::TokenStream;

/// Writes `impl Plugin` for the type of an inherent impl block, from its `#[operation]`
/// and `#[hook]` methods.
///
/// ```
/// # use orbitalis::prelude::*;
/// struct Lower;
///
/// #[plugin]
/// impl Lower {
///     #[operation(name = "lowercase")]
///     async fn lowercase(&self, input: StringMessage) -> Result<StringMessage, OperationError> {
///         Ok(StringMessage(input.0.to_lowercase()))
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn plugin(args: TokenStream, item: TokenStream) -> TokenStream {
    role_plugin::expand(args.into(), item.into()).into()
}

/// Marks a method of a `#[plugin]` impl as an operation: `#[operation]`,
/// `#[operation(name = "x", policy = <expr>, period = "1s")]`.
///
/// `name` defaults to the method's name; `policy` is a `Policy` expression; `period` (a
/// duration such as `"500ms"`, `"1s"`, `"2m"`, `"1m30s"`, or a `Duration` expression)
/// makes a producer pushed to every connected core each period, which takes no input.
#[proc_macro_attribute]
pub fn operation(args: TokenStream, item: TokenStream) -> TokenStream {
    args::inert("operation", "#[plugin]", args.into(), item.into()).into()
}

/// Writes `impl Core` for the type of an inherent impl block, from its `#[sink]` and
/// `#[hook]` methods.
///
/// ```
/// # use orbitalis::prelude::*;
/// # use std::sync::Mutex;
/// #[derive(Default)]
/// struct Home {
///     last: Mutex<Option<String>>,
/// }
///
/// #[core]
/// impl Home {
///     #[sink("lowercase")]
///     async fn on_lowercase(&self, out: StringMessage, ctx: &SinkContext) {
///         *self.last.lock().unwrap() = Some(format!("{} from {}", out.0, ctx.plugin));
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn core(args: TokenStream, item: TokenStream) -> TokenStream {
    role_core::expand(args.into(), item.into()).into()
}

/// Marks a method of a `#[core]` impl as the sink of an operation's outputs:
/// `#[sink("operation")]` or `#[sink(operation = "operation")]`.
#[proc_macro_attribute]
pub fn sink(args: TokenStream, item: TokenStream) -> TokenStream {
    args::inert("sink", "#[core]", args.into(), item.into()).into()
}

/// Marks a method of a `#[plugin]` or `#[core]` impl as the hook of its name (`on_event`,
/// `on_tick`, `on_setup` for a plugin; `on_event`, `on_tick`, `setup_data` for a core).
///
/// ```
/// # use orbitalis::prelude::*;
/// struct Quiet;
///
/// #[plugin]
/// impl Quiet {
///     #[hook]
///     async fn on_event(&self, event: OrbiterEvent) {
///         if let OrbiterEvent::ConnectionOpened(c) = event {
///             println!("{} connected for {}", c.remote, c.operation);
///         }
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn hook(args: TokenStream, item: TokenStream) -> TokenStream {
    args::inert("hook", "#[plugin] or #[core]", args.into(), item.into()).into()
}

/// Implements `Message` for a type that also derives `apache_avro::AvroSchema`,
/// `serde::Serialize` and `serde::Deserialize` (as `orbitalis::impl_message!` does). The
/// `AvroSchema` derive needs `apache-avro` (feature `derive`), `serde` and `serde_json` among
/// the user's dependencies.
///
/// ```
/// use apache_avro::AvroSchema;
/// use orbitalis::Message;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(AvroSchema, Serialize, Deserialize, Message, Debug, PartialEq)]
/// #[avro(namespace = "home")]
/// struct Status {
///     lamp: String,
///     on: bool,
/// }
///
/// let status = Status { lamp: "lamp-x".into(), on: true };
/// assert_eq!(Status::decode(&status.encode().unwrap()).unwrap(), status);
/// ```
///
/// `#[message(crate = path)]` names the `orbitalis` crate when it is not `::orbitalis`.
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(item: TokenStream) -> TokenStream {
    message::expand(item.into()).into()
}
