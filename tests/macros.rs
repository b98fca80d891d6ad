//! The attribute macros: what `#[plugin]`, `#[core]` and their inner attributes declare,
//! run on the in-memory bus with paused time. Their compile errors are tested in
//! `orbitalis-macros/tests/ui`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::time::Duration;

use apache_avro::AvroSchema;
use orbitalis::prelude::*;
use orbitalis::schemas::protocol::ErrorKind;
use orbitalis::{Bytes, ConnectionInfo, Error, Identifier, RawPayload, SchemaSpec};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Upper bound of every wait; time is paused, so it costs nothing.
const WAIT: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The next value of `rx`, which must come within [`WAIT`].
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    within(what, rx.recv()).await.unwrap_or_else(|| panic!("the channel of {what} closed"))
}

fn id(s: &str) -> Identifier {
    Identifier::new(s).unwrap()
}

#[derive(AvroSchema, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[avro(namespace = "test.macros")]
struct Greeting {
    text: String,
    from: String,
    to: String,
}

/// A handler error of the user's own type.
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// One operation per signature shape the macro infers.
#[derive(Default)]
struct Kit {
    remembered: Mutex<Vec<String>>,
    counted: AtomicI64,
}

#[plugin]
impl Kit {
    #[operation(name = "lowercase")]
    async fn lower(&self, input: StringMessage) -> StringMessage {
        StringMessage(input.0.to_lowercase())
    }

    #[operation]
    async fn count(&self) -> Int64 {
        Int64(self.counted.fetch_add(1, SeqCst) + 1)
    }

    #[operation]
    async fn greet(&self, ctx: &OperationContext, name: StringMessage) -> Result<Greeting, OperationError> {
        Ok(Greeting {
            text: format!("hello {}", name.0),
            from: ctx.plugin_id().to_string(),
            to: ctx.core_id().to_string(),
        })
    }

    #[operation]
    async fn remember(&self, input: StringMessage) {
        self.remembered.lock().unwrap().push(input.0);
    }

    #[operation]
    async fn recall(&self, ctx: OperationContext) -> StringMessage {
        StringMessage(format!("{}={}", ctx.operation(), self.remembered.lock().unwrap().join(",")))
    }

    #[operation]
    async fn refuse(&self, input: StringMessage) -> Result<StringMessage, Refused> {
        Err(Refused(input.0))
    }

    #[operation]
    async fn check(&self, n: Int64) -> Result<(), OperationError> {
        if n.0 < 0 { Err(OperationError::new(format!("{} is negative", n.0))) } else { Ok(()) }
    }

    /// Not an operation: stays an ordinary method.
    fn helper(&self) -> usize {
        self.remembered.lock().unwrap().len()
    }
}

fn kit_requirements(builder: CoreBuilder) -> CoreBuilder {
    builder
        .require("lowercase", Requirement::new().input::<StringMessage>().output::<StringMessage>())
        .require("count", Requirement::new().input::<Empty>().output::<Int64>())
        .require("greet", Requirement::new().input::<StringMessage>().output::<Greeting>())
        .require("remember", Requirement::new().input::<StringMessage>())
        .require("recall", Requirement::new().input::<Empty>().output::<StringMessage>())
        .require("refuse", Requirement::new().input::<StringMessage>().output::<StringMessage>())
        .require("check", Requirement::new().input::<Int64>())
}

fn connection<'a>(connections: &'a [ConnectionInfo], operation: &str) -> &'a ConnectionInfo {
    connections.iter().find(|c| c.operation.as_str() == operation).unwrap_or_else(|| panic!("no {operation}"))
}

#[tokio::test(start_paused = true)]
async fn operations_take_and_return_what_their_signatures_say() {
    let bus = LocalBus::new();
    assert_eq!(Kit::default().helper(), 0);
    let plugin = PluginBuilder::new("kit").bus(bus.clone()).start(Kit::default()).await.unwrap();
    let core = kit_requirements(CoreBuilder::new("home").bus(bus)).start(()).await.unwrap();
    within("compliance", core.wait_compliant()).await.unwrap();

    let connections = plugin.connections().await;
    assert_eq!(connections.len(), 7);
    assert_eq!(connection(&connections, "count").input, SchemaSpec::empty(), "no argument: an EMPTY input");
    assert!(connection(&connections, "remember").output.is_none(), "no return value: a NONE output");
    assert!(connection(&connections, "check").output.is_none(), "Result<(), E>: a NONE output");
    assert_eq!(connection(&connections, "greet").output, SchemaSpec::of::<Greeting>().unwrap());

    let lower: StringMessage = core.call("lowercase", StringMessage("HeLLo".into()), Target::Any).await.unwrap();
    assert_eq!(lower.0, "hello");

    let first: Int64 = core.call("count", Empty, Target::Any).await.unwrap();
    let second: Int64 = core.call("count", Empty, Target::Any).await.unwrap();
    assert_eq!((first.0, second.0), (1, 2));

    let greeting: Greeting = core.call("greet", StringMessage("ada".into()), Target::Any).await.unwrap();
    assert_eq!(greeting, Greeting { text: "hello ada".into(), from: "kit".into(), to: "home".into() });

    for word in ["a", "b"] {
        let () = core.call("remember", StringMessage(word.into()), Target::Any).await.unwrap();
    }
    let recalled: StringMessage = core.call("recall", Empty, Target::Any).await.unwrap();
    assert_eq!(recalled.0, "recall=a,b");

    let refused = core.call::<_, StringMessage>("refuse", StringMessage("x".into()), Target::Any).await;
    match refused {
        Err(Error::Remote { kind, message }) => {
            assert_eq!(kind, ErrorKind::HandlerFailed);
            assert_eq!(message, "refused: x");
        }
        other => panic!("expected the handler's error, got {other:?}"),
    }

    let () = core.call("check", Int64(1), Target::Any).await.unwrap();
    match core.call::<_, ()>("check", Int64(-3), Target::Any).await {
        Err(Error::Remote { kind, message }) => {
            assert_eq!(kind, ErrorKind::HandlerFailed);
            assert_eq!(message, "-3 is negative");
        }
        other => panic!("expected the procedure's error, got {other:?}"),
    }

    core.stop().await;
    plugin.stop().await;
}

/// A core whose sinks report `(sink, plugin, value)`.
struct Home {
    seen: mpsc::UnboundedSender<(&'static str, String, String)>,
}

#[core]
impl Home {
    #[sink("lowercase")]
    async fn lowered(&self, out: StringMessage, ctx: &SinkContext) {
        let _ = self.seen.send(("lowered", ctx.plugin.to_string(), out.0));
    }

    #[sink(operation = "greet")]
    async fn greeted(&self, ctx: SinkContext, out: Greeting) {
        let _ = self.seen.send(("greeted", ctx.plugin.to_string(), format!("{} to {}", out.text, out.to)));
    }

    #[sink("count")]
    async fn counted(&self, n: Int64) {
        let _ = self.seen.send(("counted", String::new(), n.0.to_string()));
    }
}

#[tokio::test(start_paused = true)]
async fn sinks_receive_the_outputs_of_execute() {
    let bus = LocalBus::new();
    let plugin = PluginBuilder::new("kit").bus(bus.clone()).start(Kit::default()).await.unwrap();
    let (seen, mut rx) = mpsc::unbounded_channel();
    let core = kit_requirements(CoreBuilder::new("home").bus(bus)).start(Home { seen }).await.unwrap();
    within("compliance", core.wait_compliant()).await.unwrap();

    assert_eq!(core.execute("lowercase", StringMessage("ABC".into()), Target::Any).await.unwrap(), [id("kit")]);
    assert_eq!(next(&mut rx, "the lowercase output").await, ("lowered", "kit".into(), "abc".into()));

    core.execute("greet", StringMessage("bob".into()), Target::Any).await.unwrap();
    assert_eq!(next(&mut rx, "the greeting").await, ("greeted", "kit".into(), "hello bob to home".into()));

    core.execute("count", Empty, Target::Any).await.unwrap();
    assert_eq!(next(&mut rx, "the count").await, ("counted", String::new(), "1".into()));

    core.stop().await;
    plugin.stop().await;
}

/// Two producers: one with a period literal, one with a `Duration` expression.
#[derive(Default)]
struct Meter {
    slow: AtomicI64,
    fast: AtomicI64,
}

#[plugin]
impl Meter {
    #[operation(period = "1s")]
    async fn power(&self) -> Float64 {
        Float64((self.slow.fetch_add(1, SeqCst) + 1) as f64)
    }

    #[operation(name = "voltage", period = Duration::from_millis(250))]
    async fn sample(&self) -> Result<Int64, OperationError> {
        Ok(Int64(self.fast.fetch_add(1, SeqCst) + 1))
    }
}

struct Watcher {
    seen: mpsc::UnboundedSender<(&'static str, Instant, f64)>,
}

#[core]
impl Watcher {
    #[sink("power")]
    async fn power(&self, watts: Float64) {
        let _ = self.seen.send(("power", Instant::now(), watts.0));
    }

    #[sink("voltage")]
    async fn voltage(&self, volts: Int64) {
        let _ = self.seen.send(("voltage", Instant::now(), volts.0 as f64));
    }
}

#[tokio::test(start_paused = true)]
async fn periodic_operations_push_each_period_from_the_first_connection() {
    let bus = LocalBus::new();
    let plugin = PluginBuilder::new("meter").bus(bus.clone()).start(Meter::default()).await.unwrap();
    let (seen, mut rx) = mpsc::unbounded_channel();
    let core = CoreBuilder::new("home")
        .bus(bus)
        .require("power", Requirement::new().no_input().output::<Float64>())
        .require("voltage", Requirement::new().no_input().output::<Int64>())
        .start(Watcher { seen })
        .await
        .unwrap();
    within("compliance", core.wait_compliant()).await.unwrap();
    let mut got: HashMap<&str, Vec<(Instant, f64)>> = HashMap::new();
    while got.get("power").map_or(0, Vec::len) < 3 || got.get("voltage").map_or(0, Vec::len) < 3 {
        let (sink, at, value) = next(&mut rx, "periodic outputs").await;
        got.entry(sink).or_default().push((at, value));
    }
    for (sink, period) in [("power", Duration::from_secs(1)), ("voltage", Duration::from_millis(250))] {
        let values = &got[sink];
        assert_eq!(values[..3].iter().map(|v| v.1).collect::<Vec<_>>(), [1.0, 2.0, 3.0], "{sink}: the first included");
        for w in values[..3].windows(2) {
            assert_eq!(w[1].0 - w[0].0, period, "{sink}: one per period");
        }
    }
    core.stop().await;
    plugin.stop().await;
}

/// A plugin reporting its hooks.
struct Watched {
    events: mpsc::UnboundedSender<OrbiterEvent>,
    ticks: mpsc::UnboundedSender<Instant>,
    setups: mpsc::UnboundedSender<(String, String, Bytes)>,
}

#[plugin]
impl Watched {
    #[operation]
    async fn ping(&self, ctx: &OperationContext) -> StringMessage {
        StringMessage(ctx.setup_data().map(|d| String::from_utf8_lossy(d).into_owned()).unwrap_or_default())
    }

    #[hook]
    async fn on_event(&self, event: OrbiterEvent) {
        let _ = self.events.send(event);
    }

    #[hook]
    async fn on_tick(&self) {
        let _ = self.ticks.send(Instant::now());
    }

    #[hook]
    async fn on_setup(&self, operation: &Identifier, core: &Identifier, data: &Bytes) -> Result<(), OperationError> {
        let _ = self.setups.send((operation.to_string(), core.to_string(), data.clone()));
        if data.as_ref() == b"bad" { Err(OperationError::new("bad setup data")) } else { Ok(()) }
    }
}

/// A core sending setup data from its hook and reporting its events.
struct Kernel {
    events: mpsc::UnboundedSender<OrbiterEvent>,
    bad: bool,
}

#[core]
impl Kernel {
    #[hook]
    fn setup_data(&self, operation: &Identifier, plugin: &Identifier) -> Option<Bytes> {
        Some(if self.bad { Bytes::from_static(b"bad") } else { Bytes::from(format!("{operation}@{plugin}")) })
    }

    #[hook]
    async fn on_event(&self, event: OrbiterEvent) {
        let _ = self.events.send(event);
    }
}

async fn opened(rx: &mut mpsc::UnboundedReceiver<OrbiterEvent>, what: &str) -> ConnectionInfo {
    loop {
        if let OrbiterEvent::ConnectionOpened(info) = next(rx, what).await {
            return info;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn hooks_see_events_ticks_and_setup_data() {
    let bus = LocalBus::new();
    let (events, mut plugin_events) = mpsc::unbounded_channel();
    let (ticks, mut tick_rx) = mpsc::unbounded_channel();
    let (setups, mut setup_rx) = mpsc::unbounded_channel();
    let plugin = PluginBuilder::new("watched")
        .bus(bus.clone())
        .tick_interval(Duration::from_millis(100))
        .start(Watched { events, ticks, setups })
        .await
        .unwrap();
    let first = next(&mut tick_rx, "a tick").await;
    let second = next(&mut tick_rx, "another tick").await;
    assert_eq!(second - first, Duration::from_millis(100), "on_tick runs each tick");

    let (events, mut core_events) = mpsc::unbounded_channel();
    let core = CoreBuilder::new("home")
        .bus(bus.clone())
        .require("ping", Requirement::new().input::<Empty>().output::<StringMessage>())
        .start(Kernel { events, bad: false })
        .await
        .unwrap();
    within("compliance", core.wait_compliant()).await.unwrap();
    let seen_by_plugin = opened(&mut plugin_events, "the plugin's ConnectionOpened").await;
    assert_eq!((seen_by_plugin.operation.as_str(), seen_by_plugin.remote.as_str()), ("ping", "home"));
    let seen_by_core = opened(&mut core_events, "the core's ConnectionOpened").await;
    assert_eq!((seen_by_core.operation.as_str(), seen_by_core.remote.as_str()), ("ping", "watched"));
    assert_eq!(seen_by_core.id, seen_by_plugin.id);

    let setup = next(&mut setup_rx, "on_setup").await;
    assert_eq!(setup, ("ping".into(), "home".into(), Bytes::from_static(b"ping@watched")));
    let echoed: StringMessage = core.call("ping", Empty, Target::Any).await.unwrap();
    assert_eq!(echoed.0, "ping@watched", "the core's setup_data reached the handler");

    // on_setup's error refuses the connection: the second core never becomes compliant.
    let (events, _stranger_events) = mpsc::unbounded_channel();
    let stranger = CoreBuilder::new("stranger")
        .bus(bus)
        .require("ping", Requirement::new().input::<Empty>().output::<StringMessage>())
        .start(Kernel { events, bad: true })
        .await
        .unwrap();
    let refused = next(&mut setup_rx, "the stranger's setup").await;
    assert_eq!(refused, ("ping".into(), "stranger".into(), Bytes::from_static(b"bad")));
    let compliant = tokio::time::timeout(Duration::from_secs(10), stranger.wait_compliant()).await;
    assert!(compliant.is_err(), "a refused setup opens no connection");
    assert_eq!(plugin.remote_identifiers().await, [id("home")]);

    stranger.stop().await;
    core.stop().await;
    plugin.stop().await;
}

/// The facade under another name, as a crate re-exporting it would have it.
mod renamed {
    use std::marker::PhantomData;

    use ::orbitalis as orb;

    /// Echoes values of any message type, to cores on its allowlist.
    pub struct Echo<T>(PhantomData<fn() -> T>);

    impl<T> Echo<T> {
        pub fn new() -> Self {
            Echo(PhantomData)
        }
    }

    #[orb::plugin(crate = orb)]
    impl<T: orb::Data> Echo<T> {
        #[orb::operation(policy = orb::Policy::allowlist(["home"]))]
        async fn echo(&self, value: T) -> T {
            value
        }
    }
}

#[tokio::test(start_paused = true)]
async fn generic_impls_policies_and_a_renamed_crate() {
    let bus = LocalBus::new();
    let plugin = PluginBuilder::new("echo").bus(bus.clone()).start(renamed::Echo::<Int64>::new()).await.unwrap();
    let requirement = || Requirement::new().input::<Int64>().output::<Int64>();
    let home = CoreBuilder::new("home").bus(bus.clone()).require("echo", requirement()).start(()).await.unwrap();
    within("compliance", home.wait_compliant()).await.unwrap();
    let out: Int64 = home.call("echo", Int64(7), Target::Any).await.unwrap();
    assert_eq!(out.0, 7);

    let other = CoreBuilder::new("other").bus(bus).require("echo", requirement()).start(()).await.unwrap();
    let compliant = tokio::time::timeout(Duration::from_secs(10), other.wait_compliant()).await;
    assert!(compliant.is_err(), "the allowlist keeps other cores out");
    assert_eq!(plugin.remote_identifiers().await, [id("home")]);

    other.stop().await;
    home.stop().await;
    plugin.stop().await;
}

/// Reads raw payloads, but declares which schemas it accepts.
struct Raw;

#[plugin]
impl Raw {
    #[operation(accepts = [Int64])]
    async fn double(&self, raw: RawPayload) -> Result<Int64, OperationError> {
        let n = <Int64 as Message>::decode(&raw.datum).map_err(|e| OperationError::new(e.to_string()))?;
        Ok(Int64(n.0 * 2))
    }
}

#[tokio::test(start_paused = true)]
async fn accepts_overrides_the_inferred_input_schemas() {
    let bus = LocalBus::new();
    let p = PluginBuilder::new("raw").bus(bus.clone()).start(Raw).await.unwrap();
    let ints = CoreBuilder::new("ints")
        .bus(bus.clone())
        .require("double", Requirement::new().input::<Int64>().output::<Int64>())
        .start(())
        .await
        .unwrap();
    within("the int64 core connects", ints.wait_compliant()).await.unwrap();
    let offered = &p.connections().await[0].input;
    assert_eq!(offered, &SchemaSpec::of::<Int64>().unwrap(), "the declared schema, not ANY");
    let out: Int64 = ints.call("double", Int64(21), Target::Any).await.unwrap();
    assert_eq!(out.0, 42);
    // Without `accepts` a RawPayload handler would take anything; with it, strings are refused.
    let strings = CoreBuilder::new("strings")
        .bus(bus.clone())
        .require("double", Requirement::new().input::<StringMessage>().output::<Int64>())
        .start(())
        .await
        .unwrap();
    // Paused time: ten seconds are five Discovers of the string core, all left unanswered.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(strings.state(), State::NotCompliant);
    assert_eq!(p.remote_identifiers().await, vec![id("ints")]);
    for c in [ints, strings] {
        c.stop().await;
    }
    p.stop().await;
}
