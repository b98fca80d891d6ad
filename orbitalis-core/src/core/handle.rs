//! [`CoreHandle`]: the cheap, cloneable handle of a running core.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use busline::{Bus, Event, Identifier, Payload, Topic};
use orbitalis_schemas::Data;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::execute::{Candidate, ExecView, Target, not_required};
use super::requirement::Requirement;
use super::role::CoreCommand;
use super::sink::Sink;
use crate::error::{Error, Result};
use crate::orbiter::events::State;
use crate::orbiter::runtime::Runtime;
use crate::orbiter::task::Command;

pub(crate) struct CoreShared {
    pub rt: Runtime<CoreCommand>,
    pub view: watch::Receiver<Arc<ExecView>>,
    pub bus: Bus,
    pub me: Identifier,
    pub call_timeout: Duration,
    pub schema_limits: orbitalis_schemas::Limits,
}

/// A running (or stopped) core. Cheap to clone; every clone drives the same core.
#[derive(Clone)]
pub struct CoreHandle {
    inner: Arc<CoreShared>,
}

impl std::fmt::Debug for CoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreHandle").field("id", &self.inner.me).field("state", &self.state()).finish()
    }
}

/// Deregisters a call whose future ends without its reply (timeout, or dropped), and tells
/// the task when that left the connection without waiting calls.
struct CallGuard<'a> {
    handle: &'a CoreHandle,
    view: &'a ExecView,
    id: Uuid,
    candidate: &'a Candidate,
    done: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.candidate.stats.outstanding.fetch_sub(1, Relaxed);
        if !self.done
            && let Some(connection) = self.view.calls.forget(&self.id)
        {
            // Best effort: the tick finishes closes whose deadline passed anyway.
            let _ = self.handle.inner.rt.try_send(Command::Role(CoreCommand::CallsEnded(connection)));
        }
    }
}

impl CoreHandle {
    pub(crate) fn new(shared: CoreShared) -> Self {
        CoreHandle { inner: Arc::new(shared) }
    }

    crate::orbiter_handle_methods!("core");

    /// Waits until the core is COMPLIANT; fails if it stops first.
    pub async fn wait_compliant(&self) -> Result<()> {
        match self.inner.rt.wait_for(|s| matches!(s, State::Compliant | State::Stopping | State::Stopped)).await {
            State::Compliant => Ok(()),
            _ => Err(Error::NotRunning),
        }
    }

    /// Adds or changes a requirement at run time; lowered maxima and narrowed lists close
    /// the connections they no longer allow.
    pub async fn set_requirement(&self, operation: impl AsRef<str>, requirement: Requirement) -> Result<()> {
        let op = Identifier::new(operation)?;
        let resolved = requirement.resolve(&op, &self.inner.schema_limits)?;
        self.inner.rt.send(Command::Role(CoreCommand::SetRequirement(op, Some(Box::new(resolved))))).await
    }

    /// Removes a requirement, closing its connections.
    pub async fn remove_requirement(&self, operation: impl AsRef<str>) -> Result<()> {
        let op = Identifier::new(operation)?;
        self.inner.rt.send(Command::Role(CoreCommand::SetRequirement(op, None))).await
    }

    /// Sets the sink of an operation at run time.
    pub async fn set_sink(&self, operation: impl AsRef<str>, sink: Sink) -> Result<()> {
        let op = Identifier::new(operation)?;
        self.inner.rt.send(Command::Role(CoreCommand::SetSink(op, sink))).await
    }

    fn view(&self) -> Arc<ExecView> {
        self.inner.view.borrow().clone()
    }

    async fn publish(&self, topic: &Topic, payload: Option<Payload>, correlation: Option<Uuid>) -> Result<()> {
        let mut event = Event::new(self.inner.me.clone());
        event.payload = payload;
        event.correlation_id = correlation;
        self.inner.bus.publish_owned(topic, event).await.map_err(Error::from)
    }

    fn touch(view: &ExecView, c: &Candidate) {
        c.stats.touch(view.epoch);
    }

    /// Fire-and-forget (X1): sends `input` to the target's candidates and returns their
    /// plugin ids once the bus took the events; outputs go to the operation's sink.
    pub async fn execute<I: Data>(&self, operation: &str, input: I, target: Target) -> Result<Vec<Identifier>> {
        let payload = input.to_optional_payload()?;
        let view = self.view();
        let chosen = view.select(operation, payload.as_ref().map(|p| p.fingerprint), &target)?;
        let mut sent = Vec::with_capacity(chosen.len());
        for c in chosen.iter() {
            self.publish(&c.topic, payload.clone(), None).await?;
            Self::touch(&view, c);
            sent.push(c.plugin.clone());
        }
        Ok(sent)
    }

    /// Sends input `i` of `inputs` to candidate `i mod n`, each exactly once; returns the
    /// plugin of each input, in order.
    pub async fn execute_distributed<I: Data>(&self, operation: &str, inputs: Vec<I>) -> Result<Vec<Identifier>> {
        let payloads = inputs.iter().map(Data::to_optional_payload).collect::<Result<Vec<_>, _>>()?;
        let fps: Vec<_> = payloads.iter().map(|p| p.as_ref().map(|p| p.fingerprint)).collect();
        let view = self.view();
        let chosen = view.distribute(operation, &fps)?;
        let mut sent = Vec::with_capacity(chosen.len());
        for (c, p) in chosen.into_iter().zip(payloads) {
            self.publish(&c.topic, p, None).await?;
            Self::touch(&view, c);
            sent.push(c.plugin.clone());
        }
        Ok(sent)
    }

    /// Publishes `payload` raw on `topic`, bypassing connections, checks and sinks. Broker
    /// permissions are the only limit (PROTOCOL.md §10).
    pub async fn sudo_execute(&self, topic: &Topic, payload: Option<Payload>) -> Result<()> {
        self.publish(topic, payload, None).await
    }

    /// Awaits the output of one execution (X2) on one candidate (`Target::Any`,
    /// `Target::AnyWith` or `Target::Plugin`), within the core's `call_timeout`.
    pub async fn call<I: Data, O: Data>(&self, operation: &str, input: I, target: Target) -> Result<O> {
        self.call_with_timeout(operation, input, target, self.inner.call_timeout).await
    }

    /// [`CoreHandle::call`] with its own timeout.
    pub async fn call_with_timeout<I: Data, O: Data>(
        &self,
        operation: &str,
        input: I,
        target: Target,
        timeout: Duration,
    ) -> Result<O> {
        if matches!(target, Target::All) {
            return Err(Error::InvalidArgument("call awaits one reply: use call_all for Target::All".into()));
        }
        let payload = input.to_optional_payload()?;
        let view = self.view();
        let chosen = view.select(operation, payload.as_ref().map(|p| p.fingerprint), &target)?;
        self.call_on(&view, operation, chosen.first(), payload, timeout).await
    }

    /// Calls every candidate; the replies keyed by plugin.
    pub async fn call_all<I: Data, O: Data>(
        &self,
        operation: &str,
        input: I,
    ) -> Result<HashMap<Identifier, Result<O>>> {
        let payload = input.to_optional_payload()?;
        let view = self.view();
        let chosen = view.select(operation, payload.as_ref().map(|p| p.fingerprint), &Target::All)?;
        let timeout = self.inner.call_timeout;
        let calls = chosen.iter().map(|c: &Candidate| {
            let p = payload.clone();
            let view = &view;
            async move { (c.plugin.clone(), self.call_on(view, operation, c, p, timeout).await) }
        });
        Ok(futures::future::join_all(calls).await.into_iter().collect())
    }

    /// Calls input `i` on candidate `i mod n`; the results in input order.
    pub async fn call_distributed<I: Data, O: Data>(&self, operation: &str, inputs: Vec<I>) -> Result<Vec<Result<O>>> {
        let payloads = inputs.iter().map(Data::to_optional_payload).collect::<Result<Vec<_>, _>>()?;
        let fps: Vec<_> = payloads.iter().map(|p| p.as_ref().map(|p| p.fingerprint)).collect();
        let view = self.view();
        let chosen = view.distribute(operation, &fps)?;
        let timeout = self.inner.call_timeout;
        let calls = chosen.into_iter().zip(payloads).map(|(c, p)| self.call_on(&view, operation, c, p, timeout));
        Ok(futures::future::join_all(calls).await)
    }

    async fn call_on<O: Data>(
        &self,
        view: &ExecView,
        operation: &str,
        c: &Candidate,
        payload: Option<Payload>,
        timeout: Duration,
    ) -> Result<O> {
        let id = Uuid::new_v4();
        let deadline = Instant::now() + timeout;
        let (reply, outcome) = oneshot::channel();
        view.calls.register(id, c.id, deadline, reply)?;
        c.stats.outstanding.fetch_add(1, Relaxed);
        let mut guard = CallGuard { handle: self, view, id, candidate: c, done: false };
        self.publish(&c.topic, payload, Some(id)).await?;
        Self::touch(view, c);
        let result = tokio::time::timeout_at(deadline, outcome).await;
        guard.done = result.is_ok();
        let (payload, writer) = match result {
            Ok(Ok(outcome)) => outcome?,
            Ok(Err(_)) => return Err(Error::NotRunning),
            Err(_) => {
                let operation = Identifier::new(operation).map_err(|_| not_required(operation))?;
                return Err(Error::Timeout { operation, timeout_ms: timeout.as_millis() as u64 });
            }
        };
        O::from_payload(payload.as_ref(), writer.as_ref()).map_err(|e| Error::IncompatibleOutput {
            operation: Identifier::new(operation).expect("selected operations are identifiers"),
            reason: e.to_string(),
        })
    }
}
