//! Closing connections (PROTOCOL.md §6.8, G1-G7): graceful with ack and deadline, graceless,
//! and the remote's closes. A remote only ever closes connections it shares (§10).

use busline::Identifier;
use bytes::Bytes;
use orbitalis_schemas::protocol::{CloseAck, CloseReason, Control, GracefulClose, GracelessClose};
use tokio::time::Instant;
use uuid::Uuid;

use super::base::Base;
use super::connection::Closing;
use super::counters::Counter;
use crate::topics::Kind;

impl Base {
    /// G1: starts a graceful close of an OPEN connection. Returns `false` if there is none.
    pub fn close_graceful(&mut self, id: &Uuid, reason: CloseReason, data: Option<Bytes>) -> bool {
        let deadline = Instant::now() + self.timing.graceful_close_timeout;
        let sender = self.sender();
        let Some(conn) = self.connections.get_mut(id).filter(|c| c.is_open()) else {
            return false;
        };
        conn.closing =
            Some(Closing { initiator: true, receiver: false, acked: false, deadline, reason, remote_data: None });
        let (remote, operation) = (conn.remote.clone(), conn.operation.clone());
        self.closing_began(id);
        tracing::debug!(target: "orbitalis", orbiter = %self.me(), connection = %id, ?reason, "graceful close");
        let msg = Control::GracefulClose(GracefulClose { sender, operation, connection_id: *id, reason, data });
        self.send(&remote, Kind::Close, msg);
        true
    }

    /// G5: closes now and tells the remote.
    pub fn close_graceless(&mut self, id: &Uuid, reason: CloseReason, data: Option<Bytes>) -> bool {
        let Some(conn) = self.connections.get(id) else { return false };
        let (remote, operation) = (conn.remote.clone(), conn.operation.clone());
        self.close_local(id, reason, false);
        self.send_graceless(&remote, Some(operation), *id, reason, data);
        true
    }

    /// A connection left OPEN for CLOSING.
    fn closing_began(&mut self, id: &Uuid) {
        if let Some(tell) = &self.on_closing {
            tell(id);
        }
        self.bump();
    }

    /// G7: a close naming a pending request of its sender removes the request.
    fn close_names_pending(&mut self, from: &Identifier, id: &Uuid) -> bool {
        let key = match self.pending.get(id) {
            Some(p) if &p.remote == from => Some(p.key),
            _ => self.pending.by_connection(id).filter(|p| &p.remote == from).map(|p| p.key),
        };
        key.is_some_and(|k| self.drop_pending(&k).is_some())
    }

    fn count_foreign(&self, from: &Identifier, id: &Uuid, what: &str) {
        if self.connections.get(id).is_some() {
            self.drop_msg(
                Counter::unknown_connection,
                format_args!("{from} sent {what} for a connection it does not share"),
            );
        }
    }

    /// G2 (and G7): a GracefulClose from `from`. `in_flight` is this side's unfinished work on it.
    pub fn on_graceful_close(&mut self, from: &Identifier, msg: GracefulClose, in_flight: usize) {
        let id = msg.connection_id;
        let shared = self.connections.get(&id).is_some_and(|c| &c.remote == from && c.operation == msg.operation);
        if !shared {
            self.count_foreign(from, &id, "a graceful close");
            self.close_names_pending(from, &id);
            self.send_ack(from, msg.operation, id);
            return;
        }
        let deadline = Instant::now() + self.timing.graceful_close_timeout;
        let Some(conn) = self.connections.get_mut(&id) else { return };
        match &mut conn.closing {
            None => {
                conn.closing = Some(Closing {
                    initiator: false,
                    receiver: true,
                    acked: false,
                    deadline,
                    reason: msg.reason,
                    remote_data: msg.data,
                });
                self.closing_began(&id);
            }
            Some(c) if c.receiver => {
                self.counters.incr(Counter::duplicate_handshake);
                return;
            }
            Some(c) => {
                c.receiver = true;
                c.remote_data = msg.data;
            }
        }
        self.finish_close(&id, in_flight);
    }

    /// G3: a CloseAck for a connection this side is closing as initiator.
    pub fn on_close_ack(&mut self, from: &Identifier, msg: CloseAck, in_flight: usize) {
        let id = msg.connection_id;
        match self.connections.get_mut(&id) {
            Some(c) if &c.remote == from && c.operation == msg.operation => match &mut c.closing {
                Some(cl) if cl.initiator => cl.acked = true,
                _ => return,
            },
            _ => {
                self.count_foreign(from, &id, "a close ack");
                return;
            }
        }
        self.finish_close(&id, in_flight);
    }

    /// G6 (and G7): a GracelessClose from `from` closes the connection it names, in any state.
    pub fn on_graceless_close(&mut self, from: &Identifier, msg: GracelessClose) {
        let id = msg.connection_id;
        let shared = self
            .connections
            .get(&id)
            .is_some_and(|c| &c.remote == from && msg.operation.as_ref().is_none_or(|op| op == &c.operation));
        if shared {
            if let Some(c) = self.connections.get_mut(&id) {
                let closing = c.closing.get_or_insert(Closing {
                    initiator: false,
                    receiver: false,
                    acked: false,
                    deadline: Instant::now(),
                    reason: msg.reason,
                    remote_data: None,
                });
                closing.remote_data = msg.data;
            }
            self.close_local(&id, msg.reason, true);
        } else if !self.close_names_pending(from, &id) {
            self.count_foreign(from, &id, "a graceless close");
        }
    }

    fn send_ack(&mut self, to: &Identifier, operation: Identifier, id: Uuid) {
        let msg = Control::CloseAck(CloseAck { sender: self.sender(), operation, connection_id: id });
        self.send(to, Kind::CloseAck, msg);
    }

    /// Ends a CLOSING connection once its conditions hold: a receiver when its work is done
    /// (then acks), an initiator once acked and done. Call whenever in-flight work may have
    /// reached zero.
    pub fn finish_close(&mut self, id: &Uuid, in_flight: usize) {
        if in_flight == 0 {
            self.conclude(id, false);
        }
    }

    /// G2/G3/G4 deadlines: receivers ack, unacked initiators go graceless (CLOSE_TIMEOUT),
    /// acked initiators close.
    pub fn close_deadlines(&mut self, now: Instant) {
        let due: Vec<Uuid> = self
            .connections
            .iter()
            .filter(|c| c.closing.as_ref().is_some_and(|cl| cl.deadline <= now))
            .map(|c| c.id)
            .collect();
        for id in due {
            self.conclude(&id, true);
        }
    }

    fn conclude(&mut self, id: &Uuid, deadline_passed: bool) {
        let Some(conn) = self.connections.get(id) else { return };
        let Some(c) = &conn.closing else { return };
        let (remote, operation, reason) = (conn.remote.clone(), conn.operation.clone(), c.reason);
        if c.receiver {
            let by_remote = !c.initiator;
            self.close_local(id, reason, by_remote);
            self.send_ack(&remote, operation, *id);
        } else if c.acked {
            self.close_local(id, reason, false);
        } else if deadline_passed {
            self.close_local(id, CloseReason::CloseTimeout, false);
            self.send_graceless(&remote, Some(operation), *id, CloseReason::CloseTimeout, None);
        }
    }
}
