//! Counting and compliance (PROTOCOL.md §6.2, §6.4): mandatory plugins apart, optional ones
//! against `minimum` and a strict `maximum`.

use crate::orbiter::base::Base;

use super::requirement::Resolved;

/// The counts of one required operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// OPEN connections with optional plugins.
    pub opt_open: usize,
    /// Connections in any state plus pending requests, with optional plugins.
    pub opt_held: usize,
    /// Mandatory plugins without an OPEN connection.
    pub mandatory_missing: usize,
}

pub(crate) fn counts(base: &Base, operation: &str, req: &Resolved) -> Counts {
    let mut c = Counts::default();
    for conn in base.connections.for_operation(operation) {
        if !req.is_mandatory(&conn.remote) {
            c.opt_held += 1;
            if conn.is_open() {
                c.opt_open += 1;
            }
        }
    }
    c.opt_held += base.pending.for_operation(operation).filter(|p| !req.is_mandatory(&p.remote)).count();
    c.mandatory_missing =
        req.mandatory.iter().filter(|m| base.connections.find(m, operation).is_none_or(|conn| !conn.is_open())).count();
    c
}

/// `compliant(O)`: every mandatory plugin OPEN and `opt_open ≥ minimum`.
pub(crate) fn compliant(base: &Base, operation: &str, req: &Resolved) -> bool {
    let c = counts(base, operation, req);
    c.mandatory_missing == 0 && c.opt_open >= req.minimum
}

/// Mandatory plugins holding neither connection nor pending request for the operation.
pub(crate) fn mandatory_absent<'a>(base: &Base, operation: &str, req: &'a Resolved) -> Vec<&'a busline::Identifier> {
    req.mandatory
        .iter()
        .filter(|m| base.connections.find(m, operation).is_none() && base.pending.find(m, operation).is_none())
        .collect()
}

/// Whether an optional slot is free (no maximum, or `opt_held < maximum`).
pub(crate) fn optional_slot_free(base: &Base, operation: &str, req: &Resolved) -> bool {
    req.maximum.is_none_or(|max| counts(base, operation, req).opt_held < max)
}

/// `unsaturated(O)` of §6.6.
pub(crate) fn unsaturated(base: &Base, operation: &str, req: &Resolved) -> bool {
    !mandatory_absent(base, operation, req).is_empty() || optional_slot_free(base, operation, req)
}
