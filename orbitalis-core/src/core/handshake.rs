//! The core's side of the handshake (PROTOCOL.md §6.3, C1-C3).

use busline::Identifier;
use orbitalis_schemas::protocol::{
    CloseReason, Confirm, Control, Offer, OfferedOperation, OperationNoLongerAvailable, Reject, RejectReason, Request,
};
use orbitalis_schemas::{negotiate_input, negotiate_output};
use tokio::time::Instant;
use uuid::Uuid;

use super::compliance::counts;
use super::role::CoreRole;
use crate::orbiter::base::Base;
use crate::orbiter::counters::Counter;
use crate::orbiter::pending::Pending;
use crate::topics::Kind;

impl CoreRole {
    fn reject(base: &mut Base, to: &Identifier, op: &OfferedOperation, reason: RejectReason) {
        tracing::debug!(target: "orbitalis", orbiter = %base.me(), plugin = %to, operation = %op.operation, ?reason, "offer rejected");
        let msg = Control::Reject(Reject {
            sender: base.sender(),
            operation: op.operation.clone(),
            offer_id: op.offer_id,
            reason,
            description: None,
        });
        base.send(to, Kind::Reply, msg);
    }

    /// C1: an Offer from `from`, one operation at a time, in order.
    pub(crate) fn on_offer(&mut self, base: &mut Base, from: &Identifier, offer: Offer) {
        if base.stopping {
            for op in &offer.operations {
                Self::reject(base, from, op, RejectReason::Stopping);
            }
            return;
        }
        if !base.acquaint(from, &offer.sender) {
            return;
        }
        for op in offer.operations {
            self.on_offered(base, from, op);
        }
    }

    fn on_offered(&mut self, base: &mut Base, from: &Identifier, op: OfferedOperation) {
        let Some(r) = self.reqs.iter().find(|r| r.operation == op.operation) else {
            return Self::reject(base, from, &op, RejectReason::NotRequired);
        };
        let req = r.req.clone();
        if !req.lists.admits(from) && !req.is_mandatory(from) {
            return Self::reject(base, from, &op, RejectReason::NotAllowed);
        }
        // d: state held for (P, O) stores an offer id; only a greater one replaces it.
        let held_pending = base.pending.find(from, &op.operation).map(|p| (p.key, p.offer_id));
        let held_conn = base.connections.find(from, &op.operation).map(|c| (c.id, c.offer_id));
        if let Some((_, stored)) = held_pending.or(held_conn) {
            if op.offer_id <= stored {
                base.drop_msg(Counter::duplicate_handshake, format_args!("offer {} from {from} again", op.offer_id));
                return;
            }
            if let Some((key, _)) = held_pending {
                base.drop_pending(&key);
            }
            if let Some((id, _)) = held_conn {
                base.close_graceless(&id, CloseReason::Stale, None);
            }
        }
        let Some(n_in) = negotiate_input(&req.inputs, &op.input) else {
            return Self::reject(base, from, &op, RejectReason::IncompatibleInput);
        };
        let Some(n_out) = negotiate_output(&op.output, &req.outputs) else {
            return Self::reject(base, from, &op, RejectReason::IncompatibleOutput);
        };
        let full = req.maximum.is_some_and(|max| counts(base, &op.operation, &req).opt_held >= max);
        if (full && !req.is_mandatory(from)) || base.pending.len() >= base.limits.max_pending {
            return Self::reject(base, from, &op, RejectReason::Saturated);
        }
        // g: accept. The pending request routes the output topic before the Request leaves,
        // so outputs sent right after the Confirm are not lost.
        let setup_data = req.setup_data.clone().or_else(|| (self.setup_hook)(&op.operation, from));
        if setup_data.as_ref().is_some_and(|d| d.len() > base.schema_limits.max_setup_data()) {
            base.drop_msg(Counter::invalid_message, format_args!("setup data for {} exceeds E/4", op.operation));
            return Self::reject(base, from, &op, RejectReason::Other);
        }
        let now = Instant::now();
        let connection_id = Uuid::new_v4();
        let deadline = now + base.timing.pending_timeout;
        base.pending.insert(Pending {
            key: connection_id,
            operation: op.operation.clone(),
            remote: from.clone(),
            offer_id: op.offer_id,
            connection_id: Some(connection_id),
            created: now,
            created_us: busline::envelope::now_us(),
            deadline,
            n_in: n_in.clone(),
            n_out: n_out.clone(),
            setup_data: setup_data.clone(),
            writer_schemas: op.output.schemas().to_vec(),
            setup_running: false,
        });
        let msg = Control::Request(Request {
            sender: base.sender(),
            operation: op.operation.clone(),
            offer_id: op.offer_id,
            connection_id,
            input: n_in,
            output: n_out,
            expires_in_ms: base.timing.pending_timeout.as_millis().max(1) as i64,
            setup_data,
        });
        tracing::debug!(target: "orbitalis", orbiter = %base.me(), plugin = %from, operation = %op.operation, connection = %connection_id, "request sent");
        if !base.send(from, Kind::Reply, msg) {
            base.pending.remove(&connection_id);
        }
    }

    /// C2: a Confirm from `from`.
    pub(crate) fn on_confirm(&mut self, base: &mut Base, from: &Identifier, m: Confirm) {
        let id = m.connection_id;
        let matching = base.pending.get(&id).is_some_and(|p| &p.remote == from && p.operation == m.operation);
        if matching && !base.stopping {
            if let Some(p) = base.pending.remove(&id) {
                base.open_pending(p, id);
            }
            return;
        }
        match base.connections.get(&id) {
            Some(c) if &c.remote == from && c.operation == m.operation => {
                base.drop_msg(Counter::duplicate_handshake, format_args!("confirm {id} from {from} again"));
            }
            Some(_) => {
                base.drop_msg(
                    Counter::unknown_connection,
                    format_args!("{from} confirmed a connection it does not share"),
                );
            }
            None if base.pending.get(&id).is_some() && !matching => {
                base.drop_msg(Counter::unknown_connection, format_args!("{from} confirmed a request it was not sent"));
            }
            None => {
                // C2c: expired, dropped or never sent: the plugin closes its side.
                if matching {
                    base.pending.remove(&id);
                }
                let reason = if base.stopping { CloseReason::Stopping } else { CloseReason::UnknownConnection };
                base.send_graceless(from, Some(m.operation), id, reason, None);
            }
        }
    }

    /// C3: an NLA removes the sender's matching pending request.
    pub(crate) fn on_nla(&mut self, base: &mut Base, from: &Identifier, m: OperationNoLongerAvailable) {
        let matching =
            base.pending.get(&m.connection_id).is_some_and(|p| &p.remote == from && p.operation == m.operation);
        if matching {
            tracing::debug!(target: "orbitalis", orbiter = %base.me(), plugin = %from, operation = %m.operation, reason = ?m.reason, "request refused");
            base.drop_pending(&m.connection_id);
        } else {
            base.counters.incr(Counter::duplicate_handshake);
        }
    }
}
