//! Outputs on the core (PROTOCOL.md §7.2 X2-X3, §5.3): call replies to their waiting call,
//! other outputs to the operation's sink.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use busline::{Delivery, Identifier, Payload};
use orbitalis_schemas::protocol::{CloseReason, ErrorKind, OperationError, OperationResult, ProtocolMessage};
use orbitalis_schemas::{Schema, SchemaSpec};
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::role::CoreRole;
use super::sink::{SinkContext, SinkItem};
use crate::error::Error;
use crate::orbiter::base::Base;
use crate::orbiter::counters::Counter;
use crate::topics::Kind;

/// What a waiting call receives: the output and its writer schema, or an error.
pub(crate) type CallOutcome = Result<(Option<Payload>, Option<Schema>), Error>;

/// A call waiting for its reply (X2).
pub(crate) struct WaitingCall {
    pub connection: Uuid,
    pub deadline: Instant,
    pub reply: oneshot::Sender<CallOutcome>,
}

/// How long a reply may wait for its call's registration.
///
/// A caller registers, then publishes, so the registration is queued before the reply can
/// exist; but a queue with many senders delivers in the order they claimed their slots, so one
/// caller's unfinished send can hide another's registration for a moment while its reply is
/// already here. Such a reply waits here briefly instead of being dropped.
const EARLY_REPLY_TTL: Duration = Duration::from_secs(1);
/// Most replies waiting for their registration.
const EARLY_REPLIES: usize = 1024;

/// A reply that came before its call's registration.
pub(crate) struct EarlyReply {
    connection: Uuid,
    outcome: CallOutcome,
    at: Instant,
}

/// Replies waiting for their registration, oldest first.
#[derive(Default)]
pub(crate) struct EarlyReplies {
    by_id: HashMap<Uuid, EarlyReply>,
    order: VecDeque<Uuid>,
}

impl EarlyReplies {
    /// Keeps a reply; returns one it pushed out, now late.
    fn keep(&mut self, id: Uuid, reply: EarlyReply) -> Option<Uuid> {
        let evicted = (self.order.len() >= EARLY_REPLIES).then(|| self.order.pop_front()).flatten();
        if let Some(old) = evicted {
            self.by_id.remove(&old);
        }
        self.by_id.insert(id, reply);
        self.order.push_back(id);
        evicted
    }

    /// The reply of call `id` on `connection`, if it came first.
    fn take(&mut self, id: &Uuid, connection: &Uuid) -> Option<CallOutcome> {
        if self.by_id.get(id).is_none_or(|r| &r.connection != connection) {
            return None;
        }
        self.order.retain(|x| x != id);
        self.by_id.remove(id).map(|r| r.outcome)
    }

    /// Forgets replies that waited too long; returns how many.
    fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(id) = self.order.front() {
            match self.by_id.get(id) {
                Some(r) if now.saturating_duration_since(r.at) < EARLY_REPLY_TTL => break,
                _ => {
                    let id = *id;
                    self.order.pop_front();
                    n += usize::from(self.by_id.remove(&id).is_some());
                }
            }
        }
        n
    }
}

impl CoreRole {
    /// Registers a call before its input is published; answers it at once if its reply
    /// came first.
    pub(crate) fn register_call(
        &mut self,
        id: Uuid,
        connection: Uuid,
        deadline: Instant,
        reply: oneshot::Sender<CallOutcome>,
    ) {
        if let Some(outcome) = self.early.take(&id, &connection) {
            self.waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let _ = reply.send(outcome);
            return;
        }
        *self.calls_per_conn.entry(connection).or_default() += 1;
        self.calls.insert(id, WaitingCall { connection, deadline, reply });
    }

    /// Deregisters a call; returns it if it was waiting.
    pub(crate) fn take_call(&mut self, id: &Uuid) -> Option<WaitingCall> {
        let call = self.calls.remove(id)?;
        if let Some(n) = self.calls_per_conn.get_mut(&call.connection) {
            *n -= 1;
            if *n == 0 {
                self.calls_per_conn.remove(&call.connection);
            }
        }
        self.waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        Some(call)
    }

    /// Fails every call waiting on a closed connection.
    pub(crate) fn fail_calls(&mut self, connection: &Uuid, reason: CloseReason) {
        let ids: Vec<Uuid> = self.calls.iter().filter(|(_, c)| &c.connection == connection).map(|(k, _)| *k).collect();
        for id in ids {
            if let Some(c) = self.take_call(&id) {
                let _ = c.reply.send(Err(Error::ConnectionClosed(reason)));
            }
        }
    }

    /// Drops calls whose callers stopped waiting without saying so, and replies whose call
    /// never registered.
    pub(crate) fn purge_calls(&mut self, base: &Base, now: Instant) {
        for _ in 0..self.early.expire(now) {
            base.drop_msg(Counter::late_reply, format_args!("a reply nobody waits for"));
        }
        let ids: Vec<Uuid> =
            self.calls.iter().filter(|(_, c)| c.deadline <= now || c.reply.is_closed()).map(|(k, _)| *k).collect();
        for id in ids {
            self.take_call(&id);
        }
    }

    /// An event on this core's output topics.
    pub(crate) fn on_output(&mut self, base: &mut Base, d: Delivery) {
        let Some((sender, operation, id)) = base.data_route(&d, Kind::Out) else { return };
        // Check 6: a connection of that operation with that sender, or a pending request (C1g).
        let now = base.now();
        let (n_out, routed_pending, operation, plugin) = match base.connections.get_mut(&id) {
            Some(c) if c.remote.as_str() == sender && c.operation.as_str() == operation => {
                c.last_use = now;
                (c.n_out.clone(), false, c.operation.clone(), c.remote.clone())
            }
            _ => match base.pending.get(&id) {
                Some(p) if p.remote.as_str() == sender && p.operation.as_str() == operation => {
                    (Arc::new(p.n_out.clone()), true, p.operation.clone(), p.remote.clone())
                }
                _ => {
                    return base.drop_msg(
                        Counter::unknown_connection,
                        format_args!("output on unknown connection {id} from {sender}"),
                    );
                }
            },
        };
        base.seen(&plugin, None, now);
        match d.event.correlation_id {
            Some(k) => self.on_reply(base, k, id, routed_pending, &n_out, d.event.payload),
            None => self.deliver_to_sink(base, &n_out, d.event.payload, operation, plugin, id),
        }
    }

    fn on_reply(
        &mut self,
        base: &mut Base,
        k: Uuid,
        connection: Uuid,
        routed_pending: bool,
        n_out: &SchemaSpec,
        payload: Option<Payload>,
    ) {
        // X3: a correlated event is an OperationResult or an OperationError.
        let Some(p) = payload else {
            return base.drop_msg(Counter::invalid_message, format_args!("a call reply without payload"));
        };
        let outcome: CallOutcome = if p.fingerprint == OperationResult::fingerprint() {
            match OperationResult::decode(&p.datum, &base.schema_limits) {
                Ok(r) => match r.output {
                    Some(out) if !n_out.accepts(Some(out.fingerprint)) => {
                        base.drop_msg(Counter::output_rejected, format_args!("a reply outside the negotiated output"));
                        Err(Error::Remote {
                            kind: ErrorKind::OutputNotAccepted,
                            message: "reply outside the negotiated output".into(),
                        })
                    }
                    Some(out) => {
                        let writer = n_out.find(out.fingerprint).cloned();
                        Ok((Some(out), writer))
                    }
                    None => Ok((None, None)),
                },
                Err(e) => return base.drop_msg(Counter::invalid_message, format_args!("bad OperationResult: {e}")),
            }
        } else if p.fingerprint == OperationError::fingerprint() {
            match OperationError::decode(&p.datum, &base.schema_limits) {
                Ok(e) => Err(Error::Remote { kind: e.kind, message: e.message }),
                Err(e) => return base.drop_msg(Counter::invalid_message, format_args!("bad OperationError: {e}")),
            }
        } else {
            return base.drop_msg(Counter::invalid_message, format_args!("a correlated output that is not a reply"));
        };
        if routed_pending {
            return base.drop_msg(Counter::late_reply, format_args!("a reply on a connection not yet open"));
        }
        if self.calls.get(&k).is_none_or(|c| c.connection != connection) {
            let early = EarlyReply { connection, outcome, at: Instant::now() };
            if self.early.keep(k, early).is_some() {
                base.drop_msg(Counter::late_reply, format_args!("a reply nobody waits for"));
            }
            return;
        }
        if let Some(call) = self.take_call(&k) {
            let _ = call.reply.send(outcome);
        }
        let n = self.in_flight_on(&connection);
        base.finish_close(&connection, n);
    }

    fn deliver_to_sink(
        &mut self,
        base: &mut Base,
        n_out: &SchemaSpec,
        payload: Option<Payload>,
        operation: Identifier,
        plugin: Identifier,
        connection: Uuid,
    ) {
        if !n_out.accepts(payload.as_ref().map(|p| p.fingerprint)) {
            return base.drop_msg(
                Counter::output_rejected,
                format_args!("an output of {operation} outside the negotiated spec"),
            );
        }
        let Some(queue) = self.sink_queue(base, &operation) else {
            return base.drop_msg(Counter::no_sink, format_args!("an output of {operation} and no sink for it"));
        };
        let writer = payload.as_ref().and_then(|p| n_out.find(p.fingerprint).cloned());
        let item =
            SinkItem { payload, writer, context: SinkContext { operation: operation.clone(), plugin, connection } };
        if !queue.push(item, !base.data_backlog) {
            base.drop_msg(Counter::sink_overflow, format_args!("the sink of {operation} is full"));
        }
    }
}
