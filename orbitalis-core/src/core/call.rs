//! Outputs on the core (PROTOCOL.md §7.2 X2-X3, §5.3): call replies to their waiting call,
//! other outputs to the operation's sink.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

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
struct WaitingCall {
    connection: Uuid,
    deadline: Instant,
    reply: oneshot::Sender<CallOutcome>,
}

/// The calls of one run waiting for replies, shared by the core's handles and its task.
///
/// A caller registers here itself before it publishes its input, so its reply can never come
/// first, and the task is not woken for it; the task answers calls from here and fails those
/// of a connection that closes. Calls may wait only on the connections the task lists as
/// OPEN, under the same lock: a connection leaves the list when it starts closing, before
/// the remote can hear of it, so no call registers on a connection that is closing or whose
/// calls were already failed.
pub(crate) struct Calls {
    table: Mutex<CallTable>,
    /// Most calls waiting at once (§7.5).
    limit: usize,
}

#[derive(Default)]
struct CallTable {
    open: HashSet<Uuid>,
    by_id: HashMap<Uuid, WaitingCall>,
    per_connection: HashMap<Uuid, usize>,
}

impl CallTable {
    fn take(&mut self, id: &Uuid) -> Option<WaitingCall> {
        let call = self.by_id.remove(id)?;
        if let Some(n) = self.per_connection.get_mut(&call.connection) {
            *n -= 1;
            if *n == 0 {
                self.per_connection.remove(&call.connection);
            }
        }
        Some(call)
    }
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls").field("waiting", &self.lock().by_id.len()).finish_non_exhaustive()
    }
}

impl Calls {
    pub fn new(limit: usize) -> Self {
        Calls { table: Mutex::default(), limit }
    }

    fn lock(&self) -> MutexGuard<'_, CallTable> {
        // Nothing panics under this lock.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers call `id` on `connection`, before its input is published.
    pub fn register(
        &self,
        id: Uuid,
        connection: Uuid,
        deadline: Instant,
        reply: oneshot::Sender<CallOutcome>,
    ) -> Result<(), Error> {
        let mut t = self.lock();
        if t.by_id.len() >= self.limit {
            return Err(Error::Overloaded("too many calls are waiting for replies"));
        }
        if !t.open.contains(&connection) {
            return Err(Error::ConnectionClosed(CloseReason::Other));
        }
        *t.per_connection.entry(connection).or_default() += 1;
        t.by_id.insert(id, WaitingCall { connection, deadline, reply });
        Ok(())
    }

    /// Deregisters a call whose caller stopped waiting; returns its connection when that
    /// left the connection without waiting calls.
    pub fn forget(&self, id: &Uuid) -> Option<Uuid> {
        let mut t = self.lock();
        let call = t.take(id)?;
        (!t.per_connection.contains_key(&call.connection)).then_some(call.connection)
    }

    /// Calls waiting on `connection`.
    pub fn on(&self, connection: &Uuid) -> usize {
        self.lock().per_connection.get(connection).copied().unwrap_or(0)
    }

    /// The connections calls may wait on from now.
    pub(crate) fn set_open(&self, open: impl Iterator<Item = Uuid>) {
        let mut t = self.lock();
        t.open.clear();
        t.open.extend(open);
    }

    /// No new call may wait on `connection`, which is closing: its input could reach a plugin
    /// that already ended the connection. Calls already waiting go on waiting.
    pub(crate) fn closing(&self, connection: &Uuid) {
        self.lock().open.remove(connection);
    }

    // Replies are sent, and calls dropped, after the lock is released: waking a caller never
    // happens under it.

    /// Answers call `id` on `connection`: `None` when no such call waits, otherwise whether
    /// that left the connection without waiting calls.
    fn answer(&self, id: &Uuid, connection: &Uuid, outcome: CallOutcome) -> Option<bool> {
        let (call, idle) = {
            let mut t = self.lock();
            if t.by_id.get(id).is_none_or(|c| &c.connection != connection) {
                return None;
            }
            let call = t.take(id)?;
            (call, !t.per_connection.contains_key(connection))
        };
        let _ = call.reply.send(outcome);
        Some(idle)
    }

    /// Fails every call waiting on a closed connection; no call waits on it any more.
    fn fail(&self, connection: &Uuid, reason: CloseReason) {
        let failed: Vec<WaitingCall> = {
            let mut t = self.lock();
            t.open.remove(connection);
            let ids: Vec<Uuid> = t.by_id.iter().filter(|(_, c)| &c.connection == connection).map(|(k, _)| *k).collect();
            ids.iter().filter_map(|id| t.take(id)).collect()
        };
        for c in failed {
            let _ = c.reply.send(Err(Error::ConnectionClosed(reason)));
        }
    }

    /// Drops every call: their callers learn that the core is not running.
    pub(crate) fn abandon(&self) {
        let dropped = {
            let mut t = self.lock();
            t.open.clear();
            t.per_connection.clear();
            std::mem::take(&mut t.by_id)
        };
        drop(dropped);
    }

    /// Drops calls whose callers stopped waiting without saying so (a dropped future whose
    /// guard could not run, a deadline passed); returns the connections that left without
    /// waiting calls.
    fn purge(&self, now: Instant) -> Vec<Uuid> {
        let (purged, mut idle): (Vec<WaitingCall>, Vec<Uuid>) = {
            let mut t = self.lock();
            let ids: Vec<Uuid> =
                t.by_id.iter().filter(|(_, c)| c.deadline <= now || c.reply.is_closed()).map(|(k, _)| *k).collect();
            let purged: Vec<WaitingCall> = ids.iter().filter_map(|id| t.take(id)).collect();
            let idle = purged.iter().map(|c| c.connection).filter(|k| !t.per_connection.contains_key(k)).collect();
            (purged, idle)
        };
        drop(purged);
        idle.sort_unstable();
        idle.dedup();
        idle
    }
}

impl CoreRole {
    /// Fails every call waiting on a closed connection.
    pub(crate) fn fail_calls(&mut self, connection: &Uuid, reason: CloseReason) {
        self.calls.fail(connection, reason);
    }

    /// Drops calls whose callers stopped waiting without saying so; a graceful close that
    /// waited for them may end (G2/G3).
    pub(crate) fn purge_calls(&mut self, base: &mut Base, now: Instant) {
        for connection in self.calls.purge(now) {
            let n = self.in_flight_on(&connection);
            base.finish_close(&connection, n);
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
        match self.calls.answer(&k, &connection, outcome) {
            None => base.drop_msg(Counter::late_reply, format_args!("a reply nobody waits for")),
            Some(idle) => {
                if idle {
                    base.finish_close(&connection, 0);
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> (oneshot::Sender<CallOutcome>, oneshot::Receiver<CallOutcome>) {
        oneshot::channel()
    }

    #[tokio::test(start_paused = true)]
    async fn calls_wait_only_on_open_connections_and_within_the_limit() {
        let calls = Calls::new(2);
        let (k, other) = (Uuid::new_v4(), Uuid::new_v4());
        let deadline = Instant::now() + std::time::Duration::from_secs(1);
        let closed = calls.register(Uuid::new_v4(), k, deadline, waiting().0);
        assert!(matches!(closed, Err(Error::ConnectionClosed(_))), "{closed:?}");
        calls.set_open([k, other].into_iter());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (tx_a, rx_a) = waiting();
        calls.register(a, k, deadline, tx_a).unwrap();
        calls.register(b, other, deadline, waiting().0).unwrap();
        let full = calls.register(Uuid::new_v4(), k, deadline, waiting().0);
        assert!(matches!(full, Err(Error::Overloaded(_))), "{full:?}");
        assert_eq!((calls.on(&k), calls.on(&other)), (1, 1));

        assert_eq!(calls.answer(&a, &other, Ok((None, None))), None, "a reply on another connection answers nothing");
        assert_eq!(calls.answer(&a, &k, Ok((None, None))), Some(true), "the last call on its connection");
        assert!(matches!(rx_a.await, Ok(Ok((None, None)))));
        assert_eq!(calls.answer(&a, &k, Ok((None, None))), None, "answered once");
        assert_eq!(calls.forget(&b), Some(other), "the last call on its connection");
        assert_eq!(calls.forget(&b), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_connection_fails_its_calls_and_takes_no_more() {
        let calls = Calls::new(10);
        let (k, other) = (Uuid::new_v4(), Uuid::new_v4());
        let deadline = Instant::now() + std::time::Duration::from_secs(1);
        calls.set_open([k, other].into_iter());
        let (tx, rx) = waiting();
        calls.register(Uuid::new_v4(), k, deadline, tx).unwrap();
        let (tx_other, mut rx_other) = waiting();
        calls.register(Uuid::new_v4(), other, deadline, tx_other).unwrap();
        calls.fail(&k, CloseReason::Requested);
        assert!(matches!(rx.await, Ok(Err(Error::ConnectionClosed(CloseReason::Requested)))));
        assert!(rx_other.try_recv().is_err(), "other connections' calls go on waiting");
        let late = calls.register(Uuid::new_v4(), k, deadline, waiting().0);
        assert!(matches!(late, Err(Error::ConnectionClosed(_))), "{late:?}");

        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert_eq!(calls.purge(Instant::now()), [other], "a call past its deadline is purged");
        assert_eq!(calls.on(&other), 0);
    }

    #[tokio::test]
    async fn a_closing_connection_takes_no_new_call_and_keeps_its_waiting_ones() {
        let calls = Calls::new(10);
        let k = Uuid::new_v4();
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        calls.set_open(std::iter::once(k));
        let (a, (tx, rx)) = (Uuid::new_v4(), waiting());
        let (b, (tx_b, _rx_b)) = (Uuid::new_v4(), waiting());
        calls.register(a, k, deadline, tx).unwrap();
        calls.register(b, k, deadline, tx_b).unwrap();
        calls.closing(&k);
        let late = calls.register(Uuid::new_v4(), k, deadline, waiting().0);
        assert!(matches!(late, Err(Error::ConnectionClosed(_))), "{late:?}");
        assert_eq!(calls.on(&k), 2);
        assert_eq!(calls.answer(&a, &k, Ok((None, None))), Some(false), "another call still waits on it");
        assert!(matches!(rx.await, Ok(Ok(_))));
        assert_eq!(calls.answer(&b, &k, Ok((None, None))), Some(true), "a call already waiting still gets its reply");
    }

    #[tokio::test]
    async fn abandoned_calls_learn_it_at_once() {
        let calls = Calls::new(10);
        let k = Uuid::new_v4();
        calls.set_open(std::iter::once(k));
        let (tx, rx) = waiting();
        calls.register(Uuid::new_v4(), k, Instant::now() + std::time::Duration::from_secs(60), tx).unwrap();
        calls.abandon();
        assert!(rx.await.is_err(), "the reply's sender is gone");
        let again = calls.register(Uuid::new_v4(), k, Instant::now(), waiting().0);
        assert!(matches!(again, Err(Error::ConnectionClosed(_))), "{again:?}");
    }
}
