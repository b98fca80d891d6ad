//! Operations (PROTOCOL.md §1): a plugin's named capability with its input and output specs,
//! policy and handler. The macros build these; everything they do is possible by hand.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use busline::{Identifier, Payload};
use bytes::Bytes;
use futures::future::BoxFuture;
use orbitalis_core::Error;
use orbitalis_schemas::{Data, Schema, SchemaSpec};
use uuid::Uuid;

use crate::policy::Policy;
use crate::push::Pusher;

/// Why a handler failed; travels back to a caller as `OperationError(HANDLER_FAILED)`.
///
/// Any `std::error::Error` converts into it, so handlers can use `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationError {
    message: String,
}

impl OperationError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        OperationError { message: message.into() }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for OperationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for OperationError {
    fn from(e: E) -> Self {
        OperationError::new(e.to_string())
    }
}

/// What a handler run knows about its call.
#[derive(Clone)]
pub struct OperationContext {
    pub(crate) connection: Arc<ConnectionContext>,
    pub(crate) call: bool,
}

/// What every input of one connection shares: made once per connection, so that an input
/// costs one reference count instead of one per field.
pub(crate) struct ConnectionContext {
    pub operation: Identifier,
    pub plugin: Identifier,
    pub core: Identifier,
    pub id: Uuid,
    pub setup_data: Option<Bytes>,
    pub pusher: Arc<Pusher>,
}

impl fmt::Debug for OperationContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.connection;
        f.debug_struct("OperationContext")
            .field("operation", &c.operation)
            .field("plugin", &c.plugin)
            .field("core", &c.core)
            .field("connection", &c.id)
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl OperationContext {
    /// The operation.
    pub fn operation(&self) -> &Identifier {
        &self.connection.operation
    }

    /// This plugin's identifier.
    pub fn plugin_id(&self) -> &Identifier {
        &self.connection.plugin
    }

    /// The calling core's identifier.
    pub fn core_id(&self) -> &Identifier {
        &self.connection.core
    }

    /// The connection the input came on.
    pub fn connection_id(&self) -> Uuid {
        self.connection.id
    }

    /// Setup data the core sent with its request.
    pub fn setup_data(&self) -> Option<&Bytes> {
        self.connection.setup_data.as_ref()
    }

    /// Whether the core awaits this run's output (a call).
    pub fn is_call(&self) -> bool {
        self.call
    }

    /// Pushes `value` to every core connected for `operation` (see
    /// [`PluginHandle::send_to_all`](crate::PluginHandle::send_to_all)).
    pub async fn send_to_all<T: Data>(&self, operation: &str, value: T) -> Result<usize, Error> {
        self.connection.pusher.send_to_all(operation, value).await
    }
}

/// One input on its way to a handler.
pub(crate) struct Invocation {
    pub payload: Option<Payload>,
    pub writer: Option<Schema>,
    pub context: OperationContext,
}

/// What a handler run produced.
pub(crate) enum Produced {
    /// A NONE-output operation: nothing to send (a call gets a null result).
    Nothing,
    /// A value (`None`: an event without payload).
    Value(Option<Payload>),
}

/// How a handler run failed.
pub(crate) enum Failure {
    /// The input did not decode (Y4).
    InvalidInput(String),
    /// The handler returned an error (Y3).
    Handler(String),
    /// The output did not encode.
    Output(String),
}

pub(crate) type HandlerFn = dyn Fn(Invocation) -> BoxFuture<'static, Result<Produced, Failure>> + Send + Sync;

/// A periodic producer: one value per period.
pub(crate) type ProducerFn = dyn Fn() -> BoxFuture<'static, Result<Option<Payload>, String>> + Send + Sync;

/// A plugin operation, built by hand or by `#[operation]`.
#[derive(Clone)]
pub struct Operation {
    pub(crate) name: Result<Identifier, String>,
    pub(crate) input: Result<SchemaSpec, String>,
    pub(crate) output: Result<SchemaSpec, String>,
    pub(crate) policy: Policy,
    pub(crate) handler: Option<Arc<HandlerFn>>,
    pub(crate) periodic: Option<(Duration, Arc<ProducerFn>)>,
    accepts_declared: bool,
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("name", &self.name)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("policy", &self.policy)
            .field("period", &self.periodic.as_ref().map(|p| p.0))
            .finish_non_exhaustive()
    }
}

fn spec_of<T: Data>() -> Result<SchemaSpec, String> {
    T::spec().map_err(|e| e.to_string())
}

/// What `a` or `b` reads: flags or'ed, schemas in order without repeats.
fn union(mut a: SchemaSpec, b: SchemaSpec) -> Result<SchemaSpec, String> {
    a.empty |= b.empty;
    a.any |= b.any;
    for s in b.schemas() {
        if a.find(s.fingerprint()).is_none() {
            a = a.with_schema(s.clone()).map_err(|e| e.to_string())?;
        }
    }
    Ok(a)
}

impl Operation {
    fn base(name: &str) -> Self {
        Operation {
            name: Identifier::new(name).map_err(|e| e.to_string()),
            input: Ok(SchemaSpec::none()),
            output: Ok(SchemaSpec::none()),
            policy: Policy::default(),
            handler: None,
            periodic: None,
            accepts_declared: false,
        }
    }

    /// An operation taking `I` and returning `O` (or an error).
    pub fn new<I, O, F, Fut>(name: &str, handler: F) -> Self
    where
        I: Data,
        O: Data,
        F: Fn(I, OperationContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, OperationError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Operation {
            input: spec_of::<I>(),
            output: spec_of::<O>(),
            handler: Some(Arc::new(move |inv: Invocation| {
                let handler = handler.clone();
                Box::pin(async move {
                    let input = I::from_payload(inv.payload.as_ref(), inv.writer.as_ref())
                        .map_err(|e| Failure::InvalidInput(e.to_string()))?;
                    let out = handler(input, inv.context).await.map_err(|e| Failure::Handler(e.message))?;
                    out.to_optional_payload().map(Produced::Value).map_err(|e| Failure::Output(e.to_string()))
                })
            })),
            ..Self::base(name)
        }
    }

    /// An operation taking `I` and returning nothing (NONE output; a call gets a null result).
    pub fn procedure<I, F, Fut>(name: &str, handler: F) -> Self
    where
        I: Data,
        F: Fn(I, OperationContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), OperationError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Operation {
            input: spec_of::<I>(),
            handler: Some(Arc::new(move |inv: Invocation| {
                let handler = handler.clone();
                Box::pin(async move {
                    let input = I::from_payload(inv.payload.as_ref(), inv.writer.as_ref())
                        .map_err(|e| Failure::InvalidInput(e.to_string()))?;
                    handler(input, inv.context).await.map_err(|e| Failure::Handler(e.message))?;
                    Ok(Produced::Nothing)
                })
            })),
            ..Self::base(name)
        }
    }

    /// An operation whose handler blocks or burns CPU: it runs on tokio's blocking pool
    /// (`spawn_blocking`, PROTOCOL.md Y1), so it never stalls the runtime's workers, the
    /// plugin's task or its keepalives.
    pub fn blocking<I, O, F>(name: &str, handler: F) -> Self
    where
        I: Data,
        O: Data,
        F: Fn(I, OperationContext) -> Result<O, OperationError> + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        Self::new(name, move |input: I, ctx: OperationContext| {
            let handler = handler.clone();
            async move {
                tokio::task::spawn_blocking(move || handler(input, ctx))
                    .await
                    .unwrap_or_else(|e| Err(OperationError::new(format!("the blocking handler failed: {e}"))))
            }
        })
    }

    /// A producer (NONE input) pushing `O` to every connected core each `period`, the first
    /// time when its first connection opens (PROTOCOL.md Y5).
    pub fn periodic<O, F, Fut>(name: &str, period: Duration, producer: F) -> Self
    where
        O: Data,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, OperationError>> + Send + 'static,
    {
        let producer = Arc::new(producer);
        let run: Arc<ProducerFn> = Arc::new(move || {
            let producer = producer.clone();
            Box::pin(async move {
                let out = producer().await.map_err(|e| e.message)?;
                out.to_optional_payload().map_err(|e| e.to_string())
            })
        });
        Operation { output: spec_of::<O>(), periodic: Some((period, run)), ..Self::base(name) }
    }

    /// A producer (NONE input) whose outputs the plugin pushes with `send_to_all`.
    pub fn producer<O: Data>(name: &str) -> Self {
        Operation { output: spec_of::<O>(), ..Self::base(name) }
    }

    /// Sets the policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Declares an input type this operation accepts: the first call replaces the spec
    /// inferred from the handler, later ones add to it. Inputs are resolved into the
    /// handler's type (PROTOCOL.md §5.3), so each must be readable as it: an older version of
    /// the handler's record, or any schema for a [`RawPayload`](orbitalis_schemas::RawPayload)
    /// handler that should see only some. An error surfaces when the plugin is built.
    pub fn accepts<T: Data>(mut self) -> Self {
        let declared = if self.accepts_declared { self.input } else { Ok(SchemaSpec::none()) };
        self.accepts_declared = true;
        self.input = match (declared, spec_of::<T>()) {
            (Ok(mine), Ok(more)) => union(mine, more),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        self
    }

    /// Overrides the input spec (e.g. to accept several schemas or ANY).
    pub fn input_spec(mut self, spec: SchemaSpec) -> Self {
        self.input = Ok(spec);
        self
    }

    /// Overrides the output spec.
    pub fn output_spec(mut self, spec: SchemaSpec) -> Self {
        self.output = Ok(spec);
        self
    }

    /// The operation's name.
    pub fn name(&self) -> Result<&Identifier, &str> {
        self.name.as_ref().map_err(String::as_str)
    }

    /// Checks §6.2's rules for an operation.
    pub(crate) fn validate(self, limits: &orbitalis_schemas::Limits) -> Result<Validated, Error> {
        let name = self.name.map_err(Error::Config)?;
        let fail = |m: String| Error::Config(format!("operation {name}: {m}"));
        let input = self.input.map_err(fail)?;
        let output = self.output.map_err(fail)?;
        input.check(limits).map_err(|e| fail(e.to_string()))?;
        output.check(limits).map_err(|e| fail(e.to_string()))?;
        if !input.is_none() && self.handler.is_none() {
            return Err(fail("an input but no handler: give a handler, or no input for a producer".into()));
        }
        if self.periodic.as_ref().is_some_and(|p| p.0.is_zero()) {
            return Err(fail("a period of zero".into()));
        }
        self.policy.validate().map_err(fail)?;
        Ok(Validated { name, input, output, policy: self.policy, handler: self.handler, periodic: self.periodic })
    }
}

/// A checked operation.
#[derive(Clone)]
pub(crate) struct Validated {
    pub name: Identifier,
    pub input: SchemaSpec,
    pub output: SchemaSpec,
    pub policy: Policy,
    pub handler: Option<Arc<HandlerFn>>,
    pub periodic: Option<(Duration, Arc<ProducerFn>)>,
}
