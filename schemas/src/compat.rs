//! Whether data written under one schema can be read under another (PROTOCOL.md §5.2).
//!
//! `can_read(w, r)` is true iff Avro 1.12 schema resolution from writer `w` to reader `r`
//! succeeds for every datum of `w`.
//!
//! Implemented here in full, over the same parsed form the fingerprint comes from, rather than
//! by delegating to apache-avro's `SchemaCompatibility`: 0.22 ignores named-type aliases and
//! trips over a named type whose first inline use moves (§5.2 rows 1 and 3), so delegating
//! would mean rewriting both schemas first, which is most of the work, and would still leave
//! its other gaps (field aliases). One parse also means equal fingerprints always imply
//! `can_read`, and the names it resolves are those the canonical form prints.
//!
//! The rules, as the Avro specification and Java's `SchemaCompatibility` state them:
//! - writer union: every branch must be readable; reader union (writer not): some branch must
//!   read the writer;
//! - primitives: equal, or promoted: int → long, float, double; long → float, double;
//!   float → double; string ↔ bytes;
//! - arrays and maps: by items and values;
//! - named types: same unqualified name, or the writer's full name among the reader's
//!   aliases; fixed: same size; enum: every writer symbol known to the reader, or a reader
//!   default; record: each reader field from the writer field of its name or of one of its
//!   aliases (readable in turn), else from its default;
//! - logical types are ignored: resolution works on the underlying types.
//!
//! Two deliberate narrowings, to say true only where this crate's decoder then succeeds:
//! a union field's default counts only when it matches the first branch (apache-avro 0.22
//! applies it there, although Avro 1.12 accepts any branch), and a writer field read by alias
//! is renamed once per writer type: the first mapping found wins.

use std::collections::{HashMap, HashSet};

use crate::Schema;
use crate::canonical::Renames;
use crate::model::{DefKind, Field, Model, Prim, Type};

/// Whether every datum written under `writer` can be read under `reader`.
pub fn can_read(writer: &Schema, reader: &Schema) -> bool {
    writer.fingerprint() == reader.fingerprint() || resolve(writer, reader).is_some()
}

/// How a writer's data maps onto a reader, when it does.
pub(crate) struct Resolution {
    /// Writer fields that the reader reads under another name (by field alias).
    ///
    /// A writer type is printed once, so when two reader types read the same writer type
    /// under different field names, the first mapping found wins.
    pub(crate) renames: Renames,
}

/// The resolution from `writer` to `reader`, if every datum resolves.
pub(crate) fn resolve(writer: &Schema, reader: &Schema) -> Option<Resolution> {
    let mut c = Checker { w: writer.model(), r: reader.model(), pairs: HashMap::new(), renames: Renames::new() };
    c.check(&writer.model().root, &reader.model().root).then_some(Resolution { renames: c.renames })
}

struct Checker<'a> {
    w: &'a Model,
    r: &'a Model,
    /// Named pairs already decided. Each pair is decided once, which keeps hostile schemas
    /// (a type used twice in each of many nested records) from costing exponential time; a
    /// pair in progress counts as readable, the usual rule for recursive types.
    pairs: HashMap<(usize, usize), bool>,
    renames: Renames,
}

fn promotes(w: Prim, r: Prim) -> bool {
    use Prim::*;
    w == r
        || matches!(
            (w, r),
            (Int, Long | Float | Double) | (Long, Float | Double) | (Float, Double) | (String, Bytes) | (Bytes, String)
        )
}

impl Checker<'_> {
    fn check(&mut self, w: &Type, r: &Type) -> bool {
        match (w, r) {
            (Type::Union(ws), _) => ws.iter().all(|w| self.check(w, r)),
            (_, Type::Union(rs)) => rs.iter().any(|r| self.check(w, r)),
            (Type::Prim(w), Type::Prim(r)) => promotes(*w, *r),
            (Type::Array(w), Type::Array(r)) | (Type::Map(w), Type::Map(r)) => self.check(w, r),
            (Type::Named(w), Type::Named(r)) => self.named(*w, *r),
            _ => false,
        }
    }

    fn named(&mut self, wi: usize, ri: usize) -> bool {
        if let Some(&known) = self.pairs.get(&(wi, ri)) {
            return known;
        }
        let (w, r) = (self.w.def(wi), self.r.def(ri));
        if w.short_name() != r.short_name() && !r.aliases.contains(&w.full_name) {
            return false;
        }
        self.pairs.insert((wi, ri), true);
        let ok = match (&w.kind, &r.kind) {
            (DefKind::Fixed(a), DefKind::Fixed(b)) => a == b,
            (DefKind::Enum { symbols: ws, .. }, DefKind::Enum { symbols: rs, default }) => {
                default.is_some() || {
                    let known: HashSet<&String> = rs.iter().collect();
                    ws.iter().all(|s| known.contains(s))
                }
            }
            (DefKind::Record(wf), DefKind::Record(rf)) => self.record(wi, wf, rf),
            _ => false,
        };
        self.pairs.insert((wi, ri), ok);
        ok
    }

    fn record(&mut self, wi: usize, writer: &[Field], reader: &[Field]) -> bool {
        let by_name: HashMap<&str, usize> = writer.iter().enumerate().map(|(k, f)| (f.name.as_str(), k)).collect();
        for rf in reader {
            let found = by_name
                .get(rf.name.as_str())
                .or_else(|| rf.aliases.iter().find_map(|a| by_name.get(a.as_str())))
                .copied();
            match found {
                Some(k) => {
                    if !self.check(&writer[k].ty, &rf.ty) {
                        return false;
                    }
                    if writer[k].name != rf.name {
                        self.renames.entry((wi, k)).or_insert_with(|| rf.name.clone());
                    }
                }
                None if self.r.default_applies(rf) => {}
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Schema {
        Schema::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn reads(w: &str, r: &str) -> bool {
        can_read(&s(w), &s(r))
    }

    const OLD: &str = r#"{"type":"record","name":"Old","fields":[{"name":"x","type":"int"}]}"#;

    #[test]
    fn protocol_table_rows() {
        // Row 1: a renamed record, read through the reader's alias.
        assert!(reads(OLD, r#"{"type":"record","name":"New","aliases":["Old"],"fields":[{"name":"x","type":"int"}]}"#));
        // Row 2: the same without the alias.
        assert!(!reads(OLD, r#"{"type":"record","name":"New","fields":[{"name":"x","type":"int"}]}"#));
        // Row 3: the first inline use of F moves from field a to field b.
        assert!(reads(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"fixed","name":"F","size":4}},{"name":"b","type":"F"}]}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"b","type":{"type":"fixed","name":"F","size":4}},{"name":"a","type":"F"}]}"#,
        ));
    }

    #[test]
    fn identical_schemas_read_each_other() {
        for t in [r#""string""#, OLD, r#"["null",{"type":"map","values":{"type":"array","items":"double"}}]"#] {
            assert!(reads(t, t), "{t}");
        }
    }

    const V1: &str = r#"{"type":"record","name":"P","fields":[{"name":"x","type":"int"}]}"#;
    const V2_DEFAULT: &str = r#"{"type":"record","name":"P","fields":[{"name":"x","type":"int"},{"name":"y","type":"string","default":"-"}]}"#;
    const V2_NO_DEFAULT: &str =
        r#"{"type":"record","name":"P","fields":[{"name":"x","type":"int"},{"name":"y","type":"string"}]}"#;

    #[test]
    fn field_added_with_a_default() {
        // New readers fill the default in for old data.
        assert!(reads(V1, V2_DEFAULT));
        // Old readers skip the field they do not know.
        assert!(reads(V2_DEFAULT, V1));
    }

    #[test]
    fn field_added_without_a_default() {
        assert!(!reads(V1, V2_NO_DEFAULT));
        assert!(reads(V2_NO_DEFAULT, V1));
    }

    #[test]
    fn field_aliases_and_removed_fields() {
        let renamed = r#"{"type":"record","name":"P","fields":[{"name":"z","aliases":["x"],"type":"long"}]}"#;
        assert!(reads(V1, renamed));
        let unrelated = r#"{"type":"record","name":"P","fields":[{"name":"z","type":"long"}]}"#;
        assert!(!reads(V1, unrelated));
        let r = resolve(&s(V1), &s(renamed)).unwrap();
        assert_eq!(r.renames.get(&(0, 0)).map(String::as_str), Some("z"));
    }

    #[test]
    fn enums_grow_and_defaults_absorb() {
        let e2 = r#"{"type":"enum","name":"E","symbols":["A","B"]}"#;
        let e3 = r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#;
        let e2_default = r#"{"type":"enum","name":"E","symbols":["A","B","OTHER"],"default":"OTHER"}"#;
        assert!(reads(e2, e3));
        assert!(!reads(e3, e2));
        assert!(reads(e3, e2_default));
        assert!(!reads(e2, r#"{"type":"enum","name":"F","symbols":["A","B"]}"#));
    }

    #[test]
    fn promotions_go_one_way() {
        for (w, r) in [
            ("int", "long"),
            ("int", "float"),
            ("int", "double"),
            ("long", "float"),
            ("long", "double"),
            ("float", "double"),
            ("string", "bytes"),
            ("bytes", "string"),
        ] {
            assert!(reads(&format!("\"{w}\""), &format!("\"{r}\"")), "{w} -> {r}");
        }
        for (w, r) in [("long", "int"), ("double", "float"), ("float", "long"), ("int", "string"), ("boolean", "int")] {
            assert!(!reads(&format!("\"{w}\""), &format!("\"{r}\"")), "{w} -> {r}");
        }
        // Logical types resolve as their underlying types.
        assert!(reads(r#"{"type":"long","logicalType":"timestamp-micros"}"#, r#""long""#));
    }

    #[test]
    fn unions_on_either_side() {
        assert!(reads(r#""int""#, r#"["null","long"]"#));
        assert!(!reads(r#""int""#, r#"["null","string"]"#));
        assert!(reads(r#"["null","int"]"#, r#"["null","int","string"]"#));
        // Partial resolution is no resolution: the null branch has no reader.
        assert!(!reads(r#"["null","int"]"#, r#""int""#));
        assert!(reads(r#"["int","long"]"#, r#""double""#));
        assert!(reads(OLD, &format!(r#"["null",{}]"#, OLD)));
    }

    #[test]
    fn fixed_needs_name_and_size() {
        let f4 = r#"{"type":"fixed","name":"F","size":4}"#;
        assert!(reads(f4, f4));
        assert!(!reads(f4, r#"{"type":"fixed","name":"F","size":5}"#));
        assert!(!reads(f4, r#"{"type":"fixed","name":"G","size":4}"#));
        assert!(reads(f4, r#"{"type":"fixed","name":"G","aliases":["F"],"size":4}"#));
        // Names compare unqualified, as Java's SchemaCompatibility does.
        assert!(reads(f4, r#"{"type":"fixed","name":"a.F","size":4}"#));
    }

    #[test]
    fn containers_recurse() {
        assert!(reads(r#"{"type":"array","items":"int"}"#, r#"{"type":"array","items":"long"}"#));
        assert!(!reads(r#"{"type":"array","items":"long"}"#, r#"{"type":"array","items":"int"}"#));
        assert!(reads(r#"{"type":"map","values":"float"}"#, r#"{"type":"map","values":"double"}"#));
        assert!(!reads(r#"{"type":"map","values":"int"}"#, r#"{"type":"array","items":"int"}"#));
    }

    #[test]
    fn shared_types_are_decided_once() {
        // T_k holds two T_(k-1): without memoising pairs this takes 2^30 steps.
        let mut text = String::from(r#"{"type":"record","name":"T0","fields":[{"name":"v","type":"int"}]}"#);
        for k in 1..=30 {
            text = format!(
                r#"{{"type":"record","name":"T{k}","fields":[{{"name":"a","type":{text}}},{{"name":"b","type":"T{}"}}]}}"#,
                k - 1
            );
        }
        let w = s(&text);
        let r = s(&text.replace(r#""type":"int""#, r#""type":"long""#));
        assert!(can_read(&w, &r));
        assert!(!can_read(&r, &w));
    }
}
