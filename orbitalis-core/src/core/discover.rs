//! Discovery (PROTOCOL.md §6.6, D1-D3): Discovers while something is needed, opportunistic
//! ones when satisfied, asking only for unsaturated operations.

use orbitalis_schemas::limits::MAX_ENTRIES;
use orbitalis_schemas::protocol::{Control, Discover, OperationQuery};
use tokio::time::Instant;

use super::compliance::{compliant, mandatory_absent, optional_slot_free, unsaturated};
use super::role::CoreRole;
use crate::orbiter::base::Base;

/// The protocol revision this build speaks.
pub(crate) const PROTOCOL_VERSION: i32 = 1;

impl CoreRole {
    /// D2: one query per unsaturated operation, in declaration order.
    fn queries(&self, base: &Base) -> Vec<OperationQuery> {
        let mut out = Vec::new();
        for r in &self.reqs {
            if !unsaturated(base, &r.operation, &r.req) {
                continue;
            }
            let (allowlist, blocklist) = if optional_slot_free(base, &r.operation, &r.req) {
                r.req.lists.wire()
            } else {
                (Some(mandatory_absent(base, &r.operation, &r.req).into_iter().cloned().collect()), None)
            };
            out.push(OperationQuery {
                operation: r.operation.clone(),
                inputs: r.req.inputs.clone(),
                outputs: r.req.outputs.clone(),
                allowlist,
                blocklist,
            });
        }
        out
    }

    /// D1: sends Discovers when due. Call at start, each tick and after every change.
    pub(crate) fn maybe_discover(&mut self, base: &mut Base, now: Instant) {
        if base.stopping || base.paused {
            return;
        }
        let since = self.last_discover.map(|t| now.saturating_duration_since(t));
        let interval_passed = since.is_none_or(|s| s >= base.timing.discover_interval);
        let due_opportunistic =
            base.timing.opportunistic_discover_interval.is_some_and(|o| since.is_none_or(|s| s >= o));
        // Timers first: they rule most calls out without looking at any requirement.
        if !interval_passed && !due_opportunistic {
            return;
        }
        let needed = self.reqs.iter().any(|r| !compliant(base, &r.operation, &r.req));
        if !(needed || due_opportunistic) {
            return;
        }
        let queries = self.queries(base);
        if queries.is_empty() {
            return;
        }
        let topic = base.topics.discover();
        let mut all_sent = true;
        for batch in split(queries, base) {
            let msg = Control::Discover(Discover {
                sender: base.sender(),
                protocol_version: PROTOCOL_VERSION,
                queries: batch,
            });
            all_sent &= base.broadcast(topic.clone(), msg);
        }
        // D3: the timer moves only when every Discover went out.
        if all_sent {
            tracing::trace!(target: "orbitalis", orbiter = %base.me(), "discover sent");
            self.last_discover = Some(now);
        }
    }
}

/// Splits queries into as few Discovers as fit 256 entries and the envelope (§2.2).
fn split(queries: Vec<OperationQuery>, base: &Base) -> Vec<Vec<OperationQuery>> {
    let budget = base.schema_limits.max_envelope_size() / 2;
    let mut out: Vec<Vec<OperationQuery>> = Vec::new();
    let mut size = 0;
    for q in queries {
        let q_size = approx_len(&q);
        let full = out.last().is_none_or(|b| b.len() >= MAX_ENTRIES || size + q_size > budget);
        if full {
            out.push(Vec::new());
            size = 0;
        }
        size += q_size;
        if let Some(b) = out.last_mut() {
            b.push(q);
        }
    }
    out
}

/// A generous estimate of a query's encoded size, to split Discovers under the envelope size.
fn approx_len(q: &OperationQuery) -> usize {
    let texts: usize = q.inputs.iter().chain(&q.outputs).flat_map(|s| s.schemas()).map(|s| s.text().len() + 4).sum();
    let lists: usize = q.allowlist.iter().chain(&q.blocklist).flatten().map(|id| id.len() + 2).sum();
    q.operation.len() + 16 + 4 * (q.inputs.len() + q.outputs.len()) + texts + lists
}
