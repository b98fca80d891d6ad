//! Schema specs: what an operation reads or writes, and how two ends agree (PROTOCOL.md §5).
//!
//! A [`SchemaSpec`] combines three things: `empty` (events without payload), `any` (payloads
//! of any schema) and a list of schemas. With none of them it is NONE: nothing at all, the
//! input of a producer or the output of an operation that returns nothing.

use busline::Fingerprint;

use crate::compat::can_read;
use crate::limits::{Limits, MAX_SCHEMAS_PER_SPEC};
use crate::message::Message;
use crate::{Error, Schema};

/// What a reader accepts or a writer sends (PROTOCOL.md §5.1).
///
/// Schemas keep their declaration order and have distinct fingerprints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaSpec {
    /// Events without payload.
    pub empty: bool,
    /// Payloads of any schema.
    pub any: bool,
    schemas: Vec<Schema>,
}

impl SchemaSpec {
    /// NONE: nothing is read or written.
    pub const fn none() -> Self {
        SchemaSpec { empty: false, any: false, schemas: Vec::new() }
    }

    /// EMPTY: events without payload.
    pub const fn empty() -> Self {
        SchemaSpec { empty: true, any: false, schemas: Vec::new() }
    }

    /// ANY: payloads of any schema, decoded when known, else handed over raw.
    pub const fn any() -> Self {
        SchemaSpec { empty: false, any: true, schemas: Vec::new() }
    }

    /// The one schema of `M`; fails when `M`'s schema is not a valid payload schema.
    pub fn of<M: Message>() -> Result<Self, Error> {
        Ok(SchemaSpec { schemas: vec![M::schema()?.clone()], ..SchemaSpec::none() })
    }

    /// A spec of `schemas`, checked under the default limits: at most 16, distinct
    /// fingerprints, at most E/8 of text in all.
    pub fn from_schemas(schemas: impl IntoIterator<Item = Schema>) -> Result<Self, Error> {
        SchemaSpec::from_schemas_with_limits(schemas, &Limits::default())
    }

    /// [`SchemaSpec::from_schemas`] under `limits`.
    pub fn from_schemas_with_limits(schemas: impl IntoIterator<Item = Schema>, limits: &Limits) -> Result<Self, Error> {
        let spec = SchemaSpec { schemas: schemas.into_iter().collect(), ..SchemaSpec::none() };
        spec.check(limits)?;
        Ok(spec)
    }

    /// Adds `schema` (checked as [`SchemaSpec::from_schemas`] does).
    pub fn with_schema(mut self, schema: Schema) -> Result<Self, Error> {
        self.schemas.push(schema);
        self.check(&Limits::default())?;
        Ok(self)
    }

    /// Also accepts (or sends) events without payload.
    pub fn with_empty(mut self) -> Self {
        self.empty = true;
        self
    }

    /// Also accepts (or sends) payloads of any schema.
    pub fn with_any(mut self) -> Self {
        self.any = true;
        self
    }

    /// Checks the §2.2 rules for one spec under `limits`.
    pub fn check(&self, limits: &Limits) -> Result<(), Error> {
        if self.schemas.len() > MAX_SCHEMAS_PER_SPEC {
            return Err(Error::InvalidSpec(format!(
                "{} schemas, more than the 16 a spec may hold: declare fewer alternatives",
                self.schemas.len()
            )));
        }
        for (k, s) in self.schemas.iter().enumerate() {
            if self.schemas[..k].contains(s) {
                return Err(Error::InvalidSpec(format!("schema {s} appears twice: declare each schema once")));
            }
        }
        let text: usize = self.schemas.iter().map(|s| s.text().len()).sum();
        if text > limits.max_spec_text() {
            return Err(Error::InvalidSpec(format!(
                "{text} bytes of schema text, more than E/8 = {} bytes: use fewer or smaller schemas, or raise max_envelope_size",
                limits.max_spec_text()
            )));
        }
        Ok(())
    }

    /// Whether this is NONE.
    pub fn is_none(&self) -> bool {
        !self.empty && !self.any && self.schemas.is_empty()
    }

    /// The schemas, in declaration order.
    pub fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    /// The schema with fingerprint `fingerprint`.
    pub fn find(&self, fingerprint: Fingerprint) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.fingerprint() == fingerprint)
    }

    /// The run-time check of PROTOCOL.md §5.3: may an event with this payload fingerprint
    /// (`None`: no payload) travel under this spec?
    pub fn accepts(&self, fingerprint: Option<Fingerprint>) -> bool {
        match fingerprint {
            None => self.empty,
            Some(fp) => self.any || self.find(fp).is_some(),
        }
    }

    /// Appends `other`, skipping schemas already present and stopping at 16.
    fn merge(&mut self, other: SchemaSpec) {
        self.empty |= other.empty;
        self.any |= other.any;
        for s in other.schemas {
            if self.schemas.len() == MAX_SCHEMAS_PER_SPEC {
                break;
            }
            if !self.schemas.contains(&s) {
                self.schemas.push(s);
            }
        }
    }
}

/// Whether data written under `writer` can be read by `reader` (PROTOCOL.md §5.2).
pub fn readable(writer: &Schema, reader: &SchemaSpec) -> bool {
    reader.any || reader.schemas.iter().any(|r| r.fingerprint() == writer.fingerprint() || can_read(writer, r))
}

/// What of `writer` can reach `reader`: the readable schemas, EMPTY if both have it, ANY if
/// both have it.
pub fn usable(writer: &SchemaSpec, reader: &SchemaSpec) -> SchemaSpec {
    SchemaSpec {
        empty: writer.empty && reader.empty,
        any: writer.any && reader.any,
        schemas: writer.schemas.iter().filter(|w| readable(w, reader)).cloned().collect(),
    }
}

/// Whether `writer` and `reader` fit: both NONE, or neither NONE and something usable.
pub fn compatible(writer: &SchemaSpec, reader: &SchemaSpec) -> bool {
    match (writer.is_none(), reader.is_none()) {
        (true, true) => true,
        (false, false) => !usable(writer, reader).is_none(),
        _ => false,
    }
}

fn negotiate(parts: impl Iterator<Item = SchemaSpec>) -> Option<SchemaSpec> {
    let mut out: Option<SchemaSpec> = None;
    for part in parts {
        out.get_or_insert_with(SchemaSpec::none).merge(part);
    }
    out
}

/// N_in: what the core may send on a connection, from the core's input `alternatives` (the
/// writers) and the operation's input (the reader); `None` when no alternative is compatible.
pub fn negotiate_input(alternatives: &[SchemaSpec], op_input: &SchemaSpec) -> Option<SchemaSpec> {
    negotiate(alternatives.iter().filter(|alt| compatible(alt, op_input)).map(|alt| usable(alt, op_input)))
}

/// N_out: what the plugin may send back, from the operation's output (the writer) and the
/// core's output `alternatives` (the readers); `None` when no alternative is compatible.
pub fn negotiate_output(op_output: &SchemaSpec, alternatives: &[SchemaSpec]) -> Option<SchemaSpec> {
    negotiate(alternatives.iter().filter(|alt| compatible(op_output, alt)).map(|alt| usable(op_output, alt)))
}

/// The reader schema for data written under `writer` (PROTOCOL.md §5.3 item 2): the one with
/// the same fingerprint, else the first that can read it.
pub fn resolve_reader<'a>(writer: &Schema, readers: &'a SchemaSpec) -> Option<&'a Schema> {
    readers.find(writer.fingerprint()).or_else(|| readers.schemas.iter().find(|r| can_read(writer, r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Schema {
        Schema::parse(text).unwrap()
    }

    fn spec(texts: &[&str]) -> SchemaSpec {
        SchemaSpec::from_schemas(texts.iter().map(|t| s(t))).unwrap()
    }

    fn fps(spec: &SchemaSpec) -> Vec<String> {
        spec.schemas().iter().map(|s| s.name().unwrap_or("?").to_owned()).collect()
    }

    const INT: &str = r#""int""#;
    const LONG: &str = r#""long""#;
    const STRING: &str = r#""string""#;
    const DOUBLE: &str = r#""double""#;

    #[test]
    fn forms() {
        assert!(SchemaSpec::none().is_none());
        assert_eq!(SchemaSpec::default(), SchemaSpec::none());
        assert!(!SchemaSpec::empty().is_none());
        assert!(!SchemaSpec::any().is_none());
        assert!(SchemaSpec::none().with_empty().with_any().any);
        let long = s(LONG);
        assert!(spec(&[INT]).with_schema(long.clone()).is_ok());
        assert!(spec(&[LONG]).with_schema(long).is_err(), "duplicate fingerprint");
    }

    #[test]
    fn from_schemas_enforces_the_limits() {
        let many: Vec<Schema> = (0..17).map(|k| s(&format!(r#"{{"type":"fixed","name":"F{k}","size":1}}"#))).collect();
        assert!(SchemaSpec::from_schemas(many[..16].to_vec()).is_ok());
        assert!(matches!(SchemaSpec::from_schemas(many), Err(Error::InvalidSpec(_))));
        assert!(SchemaSpec::from_schemas([s(INT), s(INT)]).is_err());
        let limits = Limits::new(64 << 10).unwrap();
        let big = |k: usize| s(&format!(r#"{{"type":"fixed","name":"F{k}","size":1,"doc":"{}"}}"#, "d".repeat(3000)));
        assert!(SchemaSpec::from_schemas_with_limits([big(0), big(1)], &limits).is_ok());
        assert!(SchemaSpec::from_schemas_with_limits([big(0), big(1), big(2)], &limits).is_err(), "over E/8");
    }

    #[test]
    fn accepts_is_the_run_time_check() {
        let sp = spec(&[INT]);
        let int = s(INT).fingerprint();
        let long = s(LONG).fingerprint();
        assert!(sp.accepts(Some(int)));
        assert!(!sp.accepts(Some(long)));
        assert!(!sp.accepts(None));
        assert!(sp.clone().with_empty().accepts(None));
        assert!(sp.with_any().accepts(Some(long)));
        assert!(!SchemaSpec::none().accepts(None));
        assert_eq!(spec(&[INT, LONG]).find(long).map(|s| s.name()), Some(Some("long")));
    }

    #[test]
    fn readable_and_usable() {
        let int = s(INT);
        assert!(readable(&int, &spec(&[LONG])));
        assert!(!readable(&s(LONG), &spec(&[INT])));
        assert!(readable(&s(LONG), &SchemaSpec::any()));
        let u = usable(&spec(&[INT, STRING, DOUBLE]).with_empty(), &spec(&[DOUBLE]).with_empty());
        assert_eq!(fps(&u), ["int", "double"]);
        assert!(u.empty && !u.any);
        let u = usable(&SchemaSpec::any().with_empty(), &SchemaSpec::any());
        assert!(u.any && !u.empty && u.schemas().is_empty());
    }

    #[test]
    fn compatible_needs_both_none_or_something_usable() {
        assert!(compatible(&SchemaSpec::none(), &SchemaSpec::none()));
        assert!(!compatible(&SchemaSpec::none(), &SchemaSpec::empty()));
        assert!(!compatible(&SchemaSpec::empty(), &SchemaSpec::none()));
        assert!(compatible(&SchemaSpec::empty(), &SchemaSpec::empty()));
        assert!(!compatible(&SchemaSpec::empty(), &SchemaSpec::any()), "EMPTY needs EMPTY on both sides");
        assert!(compatible(&spec(&[INT]), &SchemaSpec::any()));
        assert!(!compatible(&SchemaSpec::any(), &spec(&[INT])), "an ANY writer has no schema for a SCHEMAS reader");
        assert!(compatible(&spec(&[STRING, INT]), &spec(&[LONG])));
        assert!(!compatible(&spec(&[STRING]), &spec(&[LONG])));
    }

    #[test]
    fn negotiation_keeps_order_drops_duplicates_and_caps() {
        let alternatives = [spec(&[STRING]), spec(&[INT, DOUBLE]), spec(&[DOUBLE, LONG]).with_empty()];
        let op_input = spec(&[DOUBLE]).with_empty();
        let n_in = negotiate_input(&alternatives, &op_input).unwrap();
        assert_eq!(fps(&n_in), ["int", "double", "long"]);
        assert!(n_in.empty && !n_in.any);
        assert_eq!(negotiate_input(&alternatives[..1], &op_input), None);
        assert_eq!(negotiate_input(&[SchemaSpec::none()], &SchemaSpec::none()), Some(SchemaSpec::none()));
        assert_eq!(negotiate_input(&[], &op_input), None);

        let op_output = spec(&[INT, STRING]);
        let n_out =
            negotiate_output(&op_output, &[spec(&[DOUBLE]), spec(&[STRING, LONG]), spec(&[r#""boolean""#])]).unwrap();
        assert_eq!(fps(&n_out), ["int", "string"]);
        assert_eq!(negotiate_output(&op_output, &[spec(&[r#""boolean""#])]), None);

        let fixed: Vec<SchemaSpec> =
            (0..20).map(|k| spec(&[&format!(r#"{{"type":"fixed","name":"F{k}","size":1}}"#)])).collect();
        assert_eq!(negotiate_input(&fixed, &SchemaSpec::any()).unwrap().schemas().len(), 16);
    }

    #[test]
    fn resolve_reader_prefers_the_same_fingerprint() {
        let readers = spec(&[DOUBLE, LONG, INT]);
        assert_eq!(resolve_reader(&s(INT), &readers).and_then(Schema::name), Some("int"));
        assert_eq!(resolve_reader(&s(r#""float""#), &readers).and_then(Schema::name), Some("double"));
        assert_eq!(resolve_reader(&s(STRING), &readers), None);
    }
}
