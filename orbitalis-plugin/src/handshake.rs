//! The plugin's side of the handshake (PROTOCOL.md §6.3, P1-P3).

use busline::Identifier;
use orbitalis_core::orbiter::base::Base;
use orbitalis_core::orbiter::counters::Counter;
use orbitalis_core::orbiter::pending::Pending;
use orbitalis_core::topics::Kind;
use orbitalis_schemas::limits::MAX_ENTRIES;
use orbitalis_schemas::protocol::{
    Confirm, Control, Discover, Offer, OfferedOperation, OperationNoLongerAvailable, OperationQuery, Reject, Request,
    UnavailableReason,
};
use orbitalis_schemas::{SchemaSpec, compatible, readable};
use tokio::time::Instant;
use uuid::Uuid;

use crate::role::{PluginRole, PluginWork};

/// The protocol revision this build speaks.
const PROTOCOL_VERSION: i32 = 1;

/// Whether a query's lists admit `me` (P1b).
fn query_admits(q: &OperationQuery, me: &str) -> bool {
    q.allowlist.as_ref().is_none_or(|l| l.iter().any(|x| x.as_str() == me))
        && q.blocklist.as_ref().is_none_or(|l| !l.iter().any(|x| x.as_str() == me))
}

/// Whether the negotiated specs of a Request fit operation specs (P2c): N_in readable by the
/// operation's input, N_out's schemas and flags the operation's own.
fn request_fits(n_in: &SchemaSpec, n_out: &SchemaSpec, input: &SchemaSpec, output: &SchemaSpec) -> bool {
    let in_ok = n_in.schemas().iter().all(|w| readable(w, input))
        && (!n_in.empty || input.empty)
        && (!n_in.any || input.any)
        && (n_in.is_none() == input.is_none());
    let out_ok = n_out.schemas().iter().all(|w| output.find(w.fingerprint()).is_some())
        && (!n_out.empty || output.empty)
        && (!n_out.any || output.any)
        && (n_out.is_none() == output.is_none());
    in_ok && out_ok
}

/// Rough encoded size of an offered operation, to split Offers under the envelope size.
fn approx_len(o: &OfferedOperation) -> usize {
    let texts: usize = o.input.schemas().iter().chain(o.output.schemas()).map(|s| s.text().len() + 4).sum();
    o.operation.len() + 40 + texts
}

impl PluginRole {
    /// `used(O)`: connections in any state plus pending requests for O, over all cores.
    pub(crate) fn used(base: &Base, operation: &str) -> usize {
        base.connections.for_operation(operation).count() + base.pending.for_operation(operation).count()
    }

    /// P1: a Discover from `core`.
    pub(crate) fn on_discover(&mut self, base: &mut Base, core: &Identifier, d: Discover) {
        if base.stopping {
            return;
        }
        let now = Instant::now();
        let mut offered = Vec::new();
        for q in &d.queries {
            let Some(op) = self.ops.iter().find(|o| o.v.name == q.operation) else { continue };
            let v = &op.v;
            let offerable = query_admits(q, base.me())
                && v.policy.admits(core)
                && base.connections.find(core, &v.name).is_none()
                && base.pending.find(core, &v.name).is_none()
                && v.policy.maximum.is_none_or(|max| Self::used(base, &v.name) < max)
                && base.pending.len() < base.limits.max_pending
                && q.inputs.iter().any(|alt| compatible(alt, &v.input))
                && q.outputs.iter().any(|alt| compatible(&v.output, alt));
            if !offerable {
                continue;
            }
            let offer_id = Uuid::now_v7();
            base.pending.insert(Pending {
                key: offer_id,
                operation: v.name.clone(),
                remote: core.clone(),
                offer_id,
                connection_id: None,
                created: now,
                created_us: busline::envelope::now_us(),
                deadline: now + base.timing.pending_timeout,
                n_in: SchemaSpec::none(),
                n_out: SchemaSpec::none(),
                setup_data: None,
                writer_schemas: Vec::new(),
                setup_running: false,
            });
            offered.push(offer_id);
        }
        if offered.is_empty() {
            return;
        }
        let jitter = base.timing.offer_jitter;
        match (&self.runner, jitter.is_zero()) {
            (Some(r), false) => {
                let delay = jitter.mul_f64(rand::random::<f64>());
                let (work, core) = (r.work.clone(), core.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = work.send(PluginWork::SendOffers { core, offer_ids: offered }).await;
                });
            }
            _ => self.send_offers(base, core, &offered),
        }
    }

    /// Publishes Offers for the pending requests `offer_ids` still held, in as few messages
    /// as fit; undoes those whose publish fails.
    pub(crate) fn send_offers(&mut self, base: &mut Base, core: &Identifier, offer_ids: &[Uuid]) {
        let entries: Vec<OfferedOperation> = offer_ids
            .iter()
            .filter_map(|id| base.pending.get(id))
            .filter_map(|p| {
                let op = self.ops.iter().find(|o| o.v.name == p.operation)?;
                Some(OfferedOperation {
                    operation: p.operation.clone(),
                    offer_id: p.offer_id,
                    input: op.v.input.clone(),
                    output: op.v.output.clone(),
                })
            })
            .collect();
        let budget = base.schema_limits.max_envelope_size() / 2;
        let mut batches: Vec<Vec<OfferedOperation>> = Vec::new();
        let mut size = 0;
        for e in entries {
            let len = approx_len(&e);
            if batches.last().is_none_or(|b| b.len() >= MAX_ENTRIES || size + len > budget) {
                batches.push(Vec::new());
                size = 0;
            }
            size += len;
            if let Some(b) = batches.last_mut() {
                b.push(e);
            }
        }
        for operations in batches {
            let ids: Vec<Uuid> = operations.iter().map(|o| o.offer_id).collect();
            let msg = Control::Offer(Offer { sender: base.sender(), protocol_version: PROTOCOL_VERSION, operations });
            if !base.send(core, Kind::Offer, msg) {
                for id in ids {
                    base.pending.remove(&id);
                }
            }
        }
    }

    fn nla(base: &mut Base, to: &Identifier, r: &Request, reason: UnavailableReason) {
        tracing::debug!(target: "orbitalis", orbiter = %base.me(), core = %to, operation = %r.operation, ?reason, "request refused");
        let msg = Control::OperationNoLongerAvailable(OperationNoLongerAvailable {
            sender: base.sender(),
            operation: r.operation.clone(),
            connection_id: r.connection_id,
            reason,
            description: None,
        });
        base.send(to, Kind::Response, msg);
    }

    /// P2: a Request from `core`.
    pub(crate) fn on_request(&mut self, base: &mut Base, core: &Identifier, r: Request) {
        // a: only a Request matching its own pending request acts.
        let pending = base.pending.get(&r.offer_id).filter(|p| &p.remote == core && p.operation == r.operation);
        match pending.map(|p| p.connection_id) {
            None => {
                let dup = base.connections.get(&r.connection_id).is_some_and(|c| &c.remote == core);
                if dup {
                    base.drop_msg(Counter::duplicate_handshake, format_args!("request {} again", r.connection_id));
                } else {
                    Self::nla(base, core, &r, UnavailableReason::UnknownOffer);
                }
                return;
            }
            Some(Some(bound)) => {
                if bound == r.connection_id {
                    base.drop_msg(Counter::duplicate_handshake, format_args!("request {} again", r.connection_id));
                } else {
                    Self::nla(base, core, &r, UnavailableReason::UnknownOffer);
                }
                return;
            }
            Some(None) => {}
        }
        // b, c: re-check everything; each refusal removes the pending request.
        let refusal = if base.stopping {
            Some(UnavailableReason::Stopping)
        } else {
            match self.ops.iter().find(|o| o.v.name == r.operation) {
                None => Some(UnavailableReason::OperationRemoved),
                Some(op) if !op.v.policy.admits(core) => Some(UnavailableReason::NotAllowed),
                Some(op) if op.v.policy.maximum.is_some_and(|max| Self::used(base, &op.v.name) > max) => {
                    Some(UnavailableReason::Saturated)
                }
                Some(op) if !request_fits(&r.input, &r.output, &op.v.input, &op.v.output) => {
                    Some(UnavailableReason::Incompatible)
                }
                Some(_) => None,
            }
        };
        if let Some(reason) = refusal {
            base.pending.remove(&r.offer_id);
            return Self::nla(base, core, &r, reason);
        }
        if !base.acquaint(core, &r.sender) {
            base.pending.remove(&r.offer_id);
            return;
        }
        // d: ACCEPTED, bound to the connection id, until the core's own deadline.
        let deadline = Instant::now() + std::time::Duration::from_millis(r.expires_in_ms.max(1) as u64);
        let Some(p) = base.pending.get_mut(&r.offer_id) else { return };
        p.connection_id = Some(r.connection_id);
        p.deadline = deadline;
        p.n_in = r.input.clone();
        p.n_out = r.output.clone();
        p.setup_data = r.setup_data.clone();
        match (&r.setup_data, &self.runner) {
            (Some(data), Some(runner)) => {
                p.setup_running = true;
                let (plugin, work, key) = (self.plugin.clone(), runner.work.clone(), r.offer_id);
                let (op, core, data) = (r.operation.clone(), core.clone(), data.clone());
                tokio::spawn(async move {
                    let result = orbitalis_core::orbiter::hooks::guarded(plugin.on_setup(&op, &core, &data))
                        .await
                        .map_err(|p| format!("the setup hook panicked: {p}"))
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    let _ = work.send(PluginWork::SetupDone { key, result }).await;
                });
            }
            _ => self.confirm(base, &r.offer_id),
        }
    }

    /// P2d: the setup hook ended.
    pub(crate) fn on_setup_done(&mut self, base: &mut Base, key: Uuid, result: Result<(), String>) {
        let Some(p) = base.pending.get(&key).filter(|p| p.setup_running) else {
            base.drop_msg(Counter::duplicate_handshake, format_args!("a setup ended after its request was gone"));
            return;
        };
        match result {
            Ok(()) => self.confirm(base, &key),
            Err(e) => {
                let (core, operation, connection_id) = (p.remote.clone(), p.operation.clone(), p.connection_id);
                base.pending.remove(&key);
                tracing::info!(target: "orbitalis", orbiter = %base.me(), %core, %operation, error = %e, "setup failed");
                if let Some(connection_id) = connection_id {
                    let msg = Control::OperationNoLongerAvailable(OperationNoLongerAvailable {
                        sender: base.sender(),
                        operation,
                        connection_id,
                        reason: UnavailableReason::SetupFailed,
                        description: Some(
                            orbitalis_schemas::limits::truncate_utf8(&e, orbitalis_schemas::limits::MAX_DESCRIPTION)
                                .to_owned(),
                        ),
                    });
                    base.send(&core, Kind::Response, msg);
                }
            }
        }
    }

    /// P2e: the connection first (so no input can precede it), then the Confirm.
    fn confirm(&mut self, base: &mut Base, key: &Uuid) {
        let Some(p) = base.pending.remove(key) else { return };
        let Some(id) = p.connection_id else { return };
        let (core, operation) = (p.remote.clone(), p.operation.clone());
        base.open_pending(p, id);
        let msg = Control::Confirm(Confirm { sender: base.sender(), operation, connection_id: id });
        if !base.send(&core, Kind::Response, msg) {
            base.close_local(&id, orbitalis_schemas::protocol::CloseReason::Other, false);
        }
    }

    /// P3: a Reject removes the matching pending request.
    pub(crate) fn on_reject(&mut self, base: &mut Base, core: &Identifier, r: Reject) {
        let matching = base.pending.get(&r.offer_id).is_some_and(|p| &p.remote == core && p.operation == r.operation);
        if matching {
            tracing::debug!(target: "orbitalis", orbiter = %base.me(), %core, operation = %r.operation, reason = ?r.reason, "offer rejected");
            base.pending.remove(&r.offer_id);
        } else {
            base.counters.incr(Counter::duplicate_handshake);
        }
    }
}
