//! Requirements (PROTOCOL.md §1, §6.2): what a core needs of one operation.

use std::collections::HashSet;

use busline::Identifier;
use bytes::Bytes;
use orbitalis_schemas::{Data, SchemaSpec};

use super::sink::Sink;
use crate::error::{Error, Result};

/// Who may (allowlist) or may not (blocklist) take part; never both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Lists {
    /// Everybody.
    #[default]
    Open,
    /// Only these (an empty allowlist admits nobody).
    Allow(Vec<Identifier>),
    /// Everybody but these.
    Block(Vec<Identifier>),
}

impl Lists {
    /// Whether `id` is admitted.
    pub fn admits(&self, id: &str) -> bool {
        match self {
            Lists::Open => true,
            Lists::Allow(l) => l.iter().any(|x| x.as_str() == id),
            Lists::Block(l) => !l.iter().any(|x| x.as_str() == id),
        }
    }

    /// `(allowlist, blocklist)` as on the wire.
    pub fn wire(&self) -> (Option<Vec<Identifier>>, Option<Vec<Identifier>>) {
        match self {
            Lists::Open => (None, None),
            Lists::Allow(l) => (Some(l.clone()), None),
            Lists::Block(l) => (None, Some(l.clone())),
        }
    }
}

/// Parses identifiers, keeping the first error for build time.
pub(crate) fn identifiers<I, S>(ids: I, errors: &mut Vec<String>) -> Vec<Identifier>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    ids.into_iter().filter_map(|s| Identifier::new(s.as_ref()).map_err(|e| errors.push(e.to_string())).ok()).collect()
}

/// What a core needs of one operation: a constraint, and optionally a sink override and
/// default setup data. Invalid settings surface as [`Error::Config`] when the core is built.
///
/// By default one plugin is needed (`minimum = 1`), or, when mandatory plugins are listed,
/// only those (`minimum = 0`); an explicit [`Requirement::minimum`] always wins. Without
/// [`Requirement::input`] the core sends events without payload or nothing (EMPTY or NONE
/// inputs fit); without [`Requirement::output`] it expects no output (NONE).
#[derive(Clone, Default)]
pub struct Requirement {
    pub(crate) mandatory: Vec<Identifier>,
    pub(crate) minimum: Option<usize>,
    pub(crate) maximum: Option<usize>,
    pub(crate) lists: Option<Lists>,
    pub(crate) inputs: Vec<SchemaSpec>,
    pub(crate) outputs: Vec<SchemaSpec>,
    pub(crate) sink: Option<Sink>,
    pub(crate) setup_data: Option<Bytes>,
    errors: Vec<String>,
}

impl std::fmt::Debug for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requirement")
            .field("mandatory", &self.mandatory)
            .field("minimum", &self.minimum)
            .field("maximum", &self.maximum)
            .field("lists", &self.lists)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("sink", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl Requirement {
    /// A requirement with the defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plugins that must be connected, counted apart from `minimum` and `maximum`.
    pub fn mandatory<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.mandatory = identifiers(ids, &mut self.errors);
        self
    }

    /// Non-mandatory plugins needed for compliance.
    pub fn minimum(mut self, n: usize) -> Self {
        self.minimum = Some(n);
        self
    }

    /// Most non-mandatory plugins connected or pending at once (strict).
    pub fn maximum(mut self, n: usize) -> Self {
        self.maximum = Some(n);
        self
    }

    /// Only these plugins may serve.
    pub fn allowlist<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let l = identifiers(ids, &mut self.errors);
        self.set_lists(Lists::Allow(l));
        self
    }

    /// These plugins may not serve.
    pub fn blocklist<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let l = identifiers(ids, &mut self.errors);
        self.set_lists(Lists::Block(l));
        self
    }

    fn set_lists(&mut self, l: Lists) {
        if self.lists.is_some() {
            self.errors.push("an allowlist and a blocklist cannot be combined".into());
        }
        self.lists = Some(l);
    }

    /// Adds an input alternative: the core may send `T` (or an empty event for
    /// [`Empty`](orbitalis_schemas::Empty)).
    pub fn input<T: Data>(self) -> Self {
        self.input_spec_result(T::spec())
    }

    /// Adds an input alternative given as a spec.
    pub fn input_spec(mut self, spec: SchemaSpec) -> Self {
        self.inputs.push(spec);
        self
    }

    fn input_spec_result(mut self, spec: Result<SchemaSpec, orbitalis_schemas::Error>) -> Self {
        match spec {
            Ok(s) => self.inputs.push(s),
            Err(e) => self.errors.push(e.to_string()),
        }
        self
    }

    /// Declares that the core sends nothing (a producer operation): a NONE input alternative.
    pub fn no_input(self) -> Self {
        self.input_spec(SchemaSpec::none())
    }

    /// Adds an output alternative: the core reads `T`.
    pub fn output<T: Data>(mut self) -> Self {
        match T::spec() {
            Ok(s) => self.outputs.push(s),
            Err(e) => self.errors.push(e.to_string()),
        }
        self
    }

    /// Adds an output alternative given as a spec.
    pub fn output_spec(mut self, spec: SchemaSpec) -> Self {
        self.outputs.push(spec);
        self
    }

    /// The sink for this operation's outputs, overriding the core's own.
    pub fn sink(mut self, sink: Sink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Setup data sent with every Request for this operation.
    pub fn setup_data(mut self, data: impl Into<Bytes>) -> Self {
        self.setup_data = Some(data.into());
        self
    }

    /// Checks §6.2's build-time rules and fills the defaults.
    pub(crate) fn resolve(mut self, operation: &str, limits: &orbitalis_schemas::Limits) -> Result<Resolved> {
        let fail = |m: String| Err(Error::config(format!("requirement {operation}: {m}")));
        if let Some(e) = self.errors.first() {
            return fail(e.clone());
        }
        if self.inputs.is_empty() {
            self.inputs = vec![SchemaSpec::empty(), SchemaSpec::none()];
        }
        if self.outputs.is_empty() {
            self.outputs = vec![SchemaSpec::none()];
        }
        let minimum = self.minimum.unwrap_or(if self.mandatory.is_empty() { 1 } else { 0 });
        if let Some(max) = self.maximum {
            if minimum > max {
                return fail(format!("minimum {minimum} is above maximum {max}"));
            }
            if max == 0 && self.mandatory.is_empty() {
                return fail("maximum 0 without mandatory plugins admits nobody".into());
            }
        }
        let mut seen = HashSet::new();
        let lists = self.lists.clone().unwrap_or_default();
        for m in &self.mandatory {
            if !seen.insert(m.clone()) {
                return fail(format!("mandatory plugin {m} is listed twice"));
            }
            if !lists.admits(m) {
                return fail(format!("mandatory plugin {m} is refused by the lists"));
            }
        }
        for (name, alts) in [("input", &self.inputs), ("output", &self.outputs)] {
            let n = alts.len();
            if !(1..=orbitalis_schemas::limits::MAX_ALTERNATIVES).contains(&n) {
                return fail(format!("{n} {name} alternatives; use 1 to 16"));
            }
            for spec in alts {
                spec.check(limits).map_err(|e| Error::config(format!("requirement {operation}: {e}")))?;
            }
        }
        let distinct: HashSet<_> =
            self.inputs.iter().flat_map(|s| s.schemas().iter().map(|x| x.fingerprint())).collect();
        if distinct.len() > orbitalis_schemas::limits::MAX_SCHEMAS_PER_SPEC {
            return fail("input alternatives hold more than 16 distinct schemas".into());
        }
        let text: usize = self.inputs.iter().flat_map(|s| s.schemas().iter().map(|x| x.text().len())).sum();
        if text > limits.max_spec_text() {
            return fail("input alternatives hold more schema text than fits a Request".into());
        }
        if let Some(d) = &self.setup_data
            && d.len() > limits.max_setup_data()
        {
            return fail(format!("setup data of {} bytes exceeds {}", d.len(), limits.max_setup_data()));
        }
        Ok(Resolved {
            mandatory: self.mandatory,
            minimum,
            maximum: self.maximum,
            lists,
            inputs: self.inputs,
            outputs: self.outputs,
            sink: self.sink,
            setup_data: self.setup_data,
        })
    }
}

/// A validated requirement.
#[derive(Clone)]
pub(crate) struct Resolved {
    pub mandatory: Vec<Identifier>,
    pub minimum: usize,
    pub maximum: Option<usize>,
    pub lists: Lists,
    pub inputs: Vec<SchemaSpec>,
    pub outputs: Vec<SchemaSpec>,
    pub sink: Option<Sink>,
    pub setup_data: Option<Bytes>,
}

impl Resolved {
    pub fn is_mandatory(&self, plugin: &str) -> bool {
        self.mandatory.iter().any(|m| m.as_str() == plugin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(r: Requirement) -> Result<Resolved> {
        r.resolve("op", &orbitalis_schemas::Limits::default())
    }

    #[test]
    fn invalid_constraints_are_build_errors() {
        for r in [
            Requirement::new().allowlist(["a"]).blocklist(["b"]),
            Requirement::new().minimum(3).maximum(2),
            Requirement::new().maximum(0),
            Requirement::new().mandatory(["a", "a"]),
            Requirement::new().mandatory(["a"]).blocklist(["a"]),
            Requirement::new().mandatory(["bad id"]),
        ] {
            assert!(matches!(resolve(r), Err(Error::Config(_))));
        }
        assert!(resolve(Requirement::new().mandatory(["a"]).maximum(0)).is_ok());
    }

    #[test]
    fn defaults_follow_the_documentation() {
        let r = resolve(Requirement::new()).unwrap();
        assert_eq!(r.minimum, 1);
        assert_eq!(r.inputs, vec![SchemaSpec::empty(), SchemaSpec::none()]);
        assert_eq!(r.outputs, vec![SchemaSpec::none()]);
        assert_eq!(resolve(Requirement::new().mandatory(["x"])).unwrap().minimum, 0);
        assert_eq!(resolve(Requirement::new().mandatory(["x"]).minimum(2)).unwrap().minimum, 2);
    }
}
