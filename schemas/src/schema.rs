//! [`Schema`]: one parsed, validated payload schema with its fingerprint.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use busline::Fingerprint;

use crate::Error;
use crate::canonical::{self, Renames};
use crate::limits::Limits;
use crate::model::{MAX_DEPTH, Model, Prim, Type};

/// Namespaces only the protocol's own schemas may use (PROTOCOL.md §4).
const RESERVED_NAMESPACES: [&str; 2] = ["orbitalis.protocol", "orbitalis.busline"];

/// An Avro schema as a payload schema: parsed, validated, fingerprinted once.
///
/// Cheap to clone (shared inside). Two schemas are equal when their fingerprints are: the
/// Parsing Canonical Form leaves out `doc`, `aliases` and `default`, so schemas differing only
/// there are equal even though they resolve differently as readers ([`Schema::text`] keeps
/// the difference).
#[derive(Clone)]
pub struct Schema(Arc<Inner>);

struct Inner {
    text: String,
    canonical: String,
    fingerprint: Fingerprint,
    name: Option<String>,
    model: Model,
    avro: apache_avro::Schema,
}

impl Schema {
    /// Parses `text` as a payload schema under the default limits.
    ///
    /// Refused: invalid Avro, `"null"`, types in the reserved namespaces `orbitalis.protocol`
    /// and `orbitalis.busline`, recursive types (PROTOCOL.md §5.4), data nesting deeper than
    /// 64 levels (arrays, maps, unions, records; through named references too), and texts over
    /// E/16 (64 KiB by default).
    pub fn parse(text: &str) -> Result<Schema, Error> {
        Schema::parse_with_limits(text, &Limits::default())
    }

    /// [`Schema::parse`] under `limits`.
    pub fn parse_with_limits(text: &str, limits: &Limits) -> Result<Schema, Error> {
        if text.len() > limits.max_schema_text() {
            return Err(Error::Limit(format!(
                "a schema text of {} bytes exceeds E/16 = {} bytes: use a smaller schema or raise max_envelope_size",
                text.len(),
                limits.max_schema_text()
            )));
        }
        Schema::build(text, false)
    }

    /// A schema from an apache-avro schema, such as `T::get_schema()` of a derived type.
    pub fn from_avro(schema: &apache_avro::Schema) -> Result<Schema, Error> {
        let text = serde_json::to_string(schema)
            .map_err(|e| Error::invalid(format!("apache-avro cannot write the schema as JSON: {e}")))?;
        Schema::build(&text, false)
    }

    /// The protocol's own schemas, which live in the reserved namespaces.
    pub(crate) fn protocol(text: &str) -> Result<Schema, Error> {
        Schema::build(text, true)
    }

    fn build(text: &str, protocol: bool) -> Result<Schema, Error> {
        let model = Model::parse(text)?;
        if matches!(model.root, Type::Prim(Prim::Null)) {
            return Err(Error::NullSchema);
        }
        if !protocol
            && let Some(def) = model.defs.iter().find(|d| {
                let ns = d.namespace();
                RESERVED_NAMESPACES
                    .iter()
                    .any(|r| ns == *r || ns.strip_prefix(r).is_some_and(|rest| rest.starts_with('.')))
            })
        {
            return Err(Error::ReservedNamespace { name: def.full_name.clone() });
        }
        if let Some(name) = model.recursive_type() {
            return Err(Error::RecursiveSchema { name: name.to_owned() });
        }
        let depth = model.datum_depth();
        if depth > MAX_DEPTH {
            return Err(Error::invalid(format!(
                "its data nest {depth} levels deep, more than {MAX_DEPTH}: apache-avro decodes without a depth limit, so flatten the schema"
            )));
        }
        let avro =
            apache_avro::Schema::parse_str(text).map_err(|e| Error::invalid(format!("apache-avro refuses it: {e}")))?;
        let canonical = canonical::print(&model, &Renames::new());
        let fingerprint = canonical::fingerprint(&canonical);
        let name = match &model.root {
            Type::Prim(p) => Some(p.name().to_owned()),
            Type::Named(i) => Some(model.def(*i).full_name.clone()),
            _ => None,
        };
        Ok(Schema(Arc::new(Inner { text: text.to_owned(), canonical, fingerprint, name, model, avro })))
    }

    /// The JSON text as given, `default` and `aliases` included (they matter to a reader).
    pub fn text(&self) -> &str {
        &self.0.text
    }

    /// The Parsing Canonical Form.
    pub fn canonical(&self) -> &str {
        &self.0.canonical
    }

    /// The fingerprint that identifies this schema on the wire.
    pub fn fingerprint(&self) -> Fingerprint {
        self.0.fingerprint
    }

    /// The apache-avro form, for encoding and decoding.
    pub fn avro(&self) -> &apache_avro::Schema {
        &self.0.avro
    }

    /// The full name of a named type, the type name of a primitive, `None` for an array, a
    /// map or a union.
    pub fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    pub(crate) fn model(&self) -> &Model {
        &self.0.model
    }
}

impl PartialEq for Schema {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint() == other.fingerprint()
    }
}

impl Eq for Schema {}

impl Hash for Schema {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.fingerprint().hash(state);
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schema({}, {})", self.name().unwrap_or("<anonymous>"), self.fingerprint())
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name().unwrap_or("<anonymous>"), self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_describe_the_schema() {
        let text = r#"{"type":"record","name":"P","namespace":"demo","aliases":["Q"],"fields":[{"name":"x","type":"int","default":1}]}"#;
        let s = Schema::parse(text).unwrap();
        assert_eq!(s.text(), text);
        assert_eq!(s.canonical(), r#"{"name":"demo.P","type":"record","fields":[{"name":"x","type":"int"}]}"#);
        assert_eq!(s.name(), Some("demo.P"));
        assert!(matches!(s.avro(), apache_avro::Schema::Record(_)));
        assert_eq!(format!("{s:?}"), format!("Schema(demo.P, {})", s.fingerprint()));
        assert_eq!(Schema::parse(r#""string""#).unwrap().name(), Some("string"));
        assert_eq!(Schema::parse(r#"["int","string"]"#).unwrap().name(), None);
    }

    #[test]
    fn equality_is_by_fingerprint() {
        let a = Schema::parse(r#"{"type":"record","name":"R","fields":[{"name":"x","type":"int"}]}"#).unwrap();
        let b =
            Schema::parse(r#"{"type":"record","name":"R","doc":"d","fields":[{"name":"x","type":"int","default":0}]}"#)
                .unwrap();
        let c = Schema::parse(r#"{"type":"record","name":"R","fields":[{"name":"x","type":"long"}]}"#).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let set: std::collections::HashSet<_> = [a, b, c].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn payload_rules_are_enforced() {
        assert_eq!(Schema::parse(r#""null""#).unwrap_err(), Error::NullSchema);
        assert_eq!(Schema::parse(r#"{"type":"null"}"#).unwrap_err(), Error::NullSchema);
        for reserved in [
            r#"{"type":"record","name":"Offer","namespace":"orbitalis.protocol","fields":[]}"#,
            r#"{"type":"fixed","name":"orbitalis.busline.X","size":1}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"e","type":{"type":"enum","name":"orbitalis.protocol.sub.E","symbols":["A"]}}]}"#,
        ] {
            assert!(matches!(Schema::parse(reserved), Err(Error::ReservedNamespace { .. })), "{reserved}");
        }
        assert!(Schema::parse(r#"{"type":"fixed","name":"orbitalis.protocolx.X","size":1}"#).is_ok());
        let e = Schema::parse(
            r#"{"type":"record","name":"Node","fields":[{"name":"kids","type":{"type":"array","items":"Node"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e, Error::RecursiveSchema { name: "Node".into() });
        assert!(
            Schema::protocol(r#"{"type":"record","name":"X","namespace":"orbitalis.protocol","fields":[]}"#).is_ok()
        );
    }

    #[test]
    fn datum_depth_is_bounded_through_references() {
        // Sibling definitions, each record holding the previous one: shallow text, deep data.
        let chain = |n: usize| {
            let mut fields = vec![r#"{"name":"f0","type":{"type":"record","name":"R0","fields":[]}}"#.to_owned()];
            for k in 1..n {
                fields.push(format!(
                    r#"{{"name":"f{k}","type":{{"type":"record","name":"R{k}","fields":[{{"name":"x","type":"R{}"}}]}}}}"#,
                    k - 1
                ));
            }
            format!(r#"{{"type":"record","name":"Top","fields":[{}]}}"#, fields.join(","))
        };
        assert!(Schema::parse(&chain(MAX_DEPTH - 1)).is_ok());
        let e = Schema::parse(&chain(MAX_DEPTH)).unwrap_err();
        assert!(matches!(&e, Error::InvalidSchema { reason } if reason.contains("nest")), "{e}");
        assert!(Schema::parse(&chain(1000)).is_err());
        // The canonical form itself has no such bound.
        assert!(crate::canonical::parsing_canonical_form(&chain(1000)).is_ok());
    }

    #[test]
    fn text_size_is_bounded_by_e_over_16() {
        let limits = Limits::new(64 << 10).unwrap();
        let doc = "d".repeat(4096);
        let text = format!(r#"{{"type":"string","doc":"{doc}"}}"#);
        assert!(matches!(Schema::parse_with_limits(&text, &limits), Err(Error::Limit(_))));
        assert!(Schema::parse(&text).is_ok());
    }

    #[test]
    fn from_avro_round_trips() {
        let avro = apache_avro::Schema::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"t","type":{"type":"long","logicalType":"timestamp-micros"}}]}"#)
            .unwrap();
        let s = Schema::from_avro(&avro).unwrap();
        assert_eq!(s.canonical(), r#"{"name":"R","type":"record","fields":[{"name":"t","type":"long"}]}"#);
    }
}
