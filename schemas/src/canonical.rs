//! Parsing Canonical Form and the CRC-64-AVRO (Rabin) fingerprint (PROTOCOL.md §2.1).
//!
//! Our own, per the Avro specification, because apache-avro 0.22's `canonical_form` keeps
//! `{"type":"long"}` where a stripped logical type must leave `"long"`, so its fingerprints of
//! such schemas differ from every other implementation's.
//!
//! The form: full names everywhere (no `namespace` attribute), every attribute but `name`,
//! `type`, `fields`, `symbols`, `items`, `values` and `size` dropped (`logicalType`, `default`,
//! `aliases` and `doc` included), `{"type":P}` written `"P"`, attributes in that order, no
//! whitespace, and each named type written in full at its first use only.

use std::collections::HashMap;

use busline::Fingerprint;

use crate::Error;
use crate::model::{DefKind, Model, Type};

/// The Parsing Canonical Form of the schema `json`.
///
/// Any valid Avro schema has one, so this accepts what payload schemas may not be (`"null"`,
/// recursive or reserved types): [`Schema::parse`](crate::Schema::parse) adds those rules.
pub fn parsing_canonical_form(json: &str) -> Result<String, Error> {
    Ok(print(&Model::parse(json)?, &Renames::new()))
}

/// Prints `model` in Parsing Canonical Form for a parser to read back: a named type in the
/// null namespace gets an empty `namespace`, since the form writes it by its bare name and a
/// parser would otherwise put it in the enclosing type's namespace (a different type, or a
/// clash with one of that name).
pub(crate) fn print_for_parser(model: &Model, renames: &Renames) -> String {
    let mut p = Printer::new(model, renames);
    p.null_namespace = true;
    p.ty(&model.root);
    p.out
}

/// Field names to print instead of the schema's own: `(definition, field) → name`.
///
/// Decoding under an evolved writer prints the writer's schema with the reader's field names
/// where the reader matched a field by alias, because apache-avro resolves fields by name only.
pub(crate) type Renames = HashMap<(usize, usize), String>;

/// Prints `model` in Parsing Canonical Form, with `renames` applied.
pub(crate) fn print(model: &Model, renames: &Renames) -> String {
    let mut p = Printer::new(model, renames);
    p.ty(&model.root);
    p.out
}

struct Printer<'a> {
    model: &'a Model,
    renames: &'a Renames,
    written: Vec<bool>,
    null_namespace: bool,
    out: String,
}

impl<'a> Printer<'a> {
    fn new(model: &'a Model, renames: &'a Renames) -> Self {
        Printer { model, renames, written: vec![false; model.defs.len()], null_namespace: false, out: String::new() }
    }

    // Names and symbols are checked against [A-Za-z0-9_.] at parse time: nothing to escape.
    fn quoted(&mut self, s: &str) {
        self.out.push('"');
        self.out.push_str(s);
        self.out.push('"');
    }

    fn ty(&mut self, t: &Type) {
        match t {
            Type::Prim(p) => self.quoted(p.name()),
            Type::Array(items) => {
                self.out.push_str(r#"{"type":"array","items":"#);
                self.ty(items);
                self.out.push('}');
            }
            Type::Map(values) => {
                self.out.push_str(r#"{"type":"map","values":"#);
                self.ty(values);
                self.out.push('}');
            }
            Type::Union(branches) => {
                self.out.push('[');
                for (k, b) in branches.iter().enumerate() {
                    if k > 0 {
                        self.out.push(',');
                    }
                    self.ty(b);
                }
                self.out.push(']');
            }
            Type::Named(i) => self.named(*i),
        }
    }

    fn named(&mut self, i: usize) {
        let def = self.model.def(i);
        if self.written[i] {
            return self.quoted(&def.full_name);
        }
        self.written[i] = true;
        self.out.push_str(r#"{"name":"#);
        self.quoted(&def.full_name);
        if self.null_namespace && !def.full_name.contains('.') {
            self.out.push_str(r#","namespace":"""#);
        }
        match &def.kind {
            DefKind::Record(fields) => {
                self.out.push_str(r#","type":"record","fields":["#);
                for (k, f) in fields.iter().enumerate() {
                    if k > 0 {
                        self.out.push(',');
                    }
                    self.out.push_str(r#"{"name":"#);
                    let name = self.renames.get(&(i, k)).map_or(f.name.as_str(), String::as_str);
                    self.quoted(name);
                    self.out.push_str(r#","type":"#);
                    self.ty(&f.ty);
                    self.out.push('}');
                }
                self.out.push(']');
            }
            DefKind::Enum { symbols, .. } => {
                self.out.push_str(r#","type":"enum","symbols":["#);
                for (k, s) in symbols.iter().enumerate() {
                    if k > 0 {
                        self.out.push(',');
                    }
                    self.quoted(s);
                }
                self.out.push(']');
            }
            DefKind::Fixed(size) => {
                self.out.push_str(r#","type":"fixed","size":"#);
                self.out.push_str(&size.to_string());
            }
        }
        self.out.push('}');
    }
}

const EMPTY: u64 = 0xc15d_213a_a4d7_a795;

const TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut j = 0;
        while j < 8 {
            fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
            j += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
};

/// The CRC-64-AVRO (Rabin) fingerprint of `bytes`, as the Avro specification defines it.
pub fn rabin(bytes: &[u8]) -> u64 {
    bytes.iter().fold(EMPTY, |fp, &b| (fp >> 8) ^ TABLE[((fp ^ u64::from(b)) & 0xff) as usize])
}

/// The wire fingerprint (8 bytes, little-endian Rabin) of a schema's canonical form.
pub fn fingerprint(canonical: &str) -> Fingerprint {
    Fingerprint::from_u64(rabin(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(json: &str) -> String {
        fingerprint(&parsing_canonical_form(json).unwrap()).to_string()
    }

    /// A null-namespace type inside a namespaced one must come back as the same type when
    /// the printed form is parsed again, even beside a type of the same bare name.
    #[test]
    fn the_form_for_parsers_keeps_null_namespaces() {
        let json = r#"{"type":"record","name":"R","namespace":"x","fields":[
            {"name":"f","type":{"type":"record","name":"S","namespace":"","fields":[]}},
            {"name":"g","type":{"type":"record","name":"S","fields":[{"name":"a","type":"int"}]}}]}"#;
        let model = Model::parse(json).unwrap();
        let printed = print_for_parser(&model, &Renames::new());
        let reparsed = apache_avro::Schema::parse_str(&printed).expect("a parser reads it back, without a clash");
        let apache_avro::Schema::Record(r) = reparsed else { panic!("a record") };
        let names: Vec<String> = r
            .fields
            .iter()
            .map(|f| match &f.schema {
                apache_avro::Schema::Record(inner) => inner.name.fullname(None),
                other => panic!("a record field, not {other:?}"),
            })
            .collect();
        assert_eq!(names, ["S", "x.S"], "each field keeps its own type");
    }

    #[test]
    fn primitives_match_the_protocol_table() {
        for (schema, want) in [
            (r#""string""#, "c70345637248018f"),
            (r#""bytes""#, "651920c3da16c04f"),
            (r#""int""#, "8f5c393f1ad57572"),
            (r#""long""#, "b71df49344e154d0"),
            (r#""float""#, "90d7a83ecb027c4d"),
            (r#""double""#, "7e95ab32c035758e"),
            (r#""boolean""#, "64f7d4a478fc429f"),
            (r#"{"type":"long","logicalType":"timestamp-micros"}"#, "b71df49344e154d0"),
            (r#"{"type":"string"}"#, "c70345637248018f"),
        ] {
            assert_eq!(fp(schema), want, "{schema}");
        }
    }

    #[test]
    fn canonical_form_strips_and_orders() {
        let pcf = parsing_canonical_form(
            r#"{ "namespace": "a.b", "doc": "x", "type": "record", "aliases": ["Q"], "name": "R",
                 "fields": [ {"type": {"size": 4, "type": "fixed", "name": "F"}, "name": "f", "default": "abcd"},
                             {"name": "g", "type": "F", "order": "descending"},
                             {"name": "h", "type": {"type": "enum", "name": "c.E", "symbols": ["A", "B"], "default": "A"}},
                             {"name": "i", "type": ["null", {"type": "map", "values": {"type": "array", "items": "c.E"}}]} ] }"#,
        )
        .unwrap();
        assert_eq!(
            pcf,
            r#"{"name":"a.b.R","type":"record","fields":[{"name":"f","type":{"name":"a.b.F","type":"fixed","size":4}},{"name":"g","type":"a.b.F"},{"name":"h","type":{"name":"c.E","type":"enum","symbols":["A","B"]}},{"name":"i","type":["null",{"type":"map","values":{"type":"array","items":"c.E"}}]}]}"#
        );
    }

    #[test]
    fn agrees_with_apache_avro_where_apache_avro_is_right() {
        assert_eq!(rabin(b""), EMPTY);
        for s in [
            r#""int""#,
            r#"{"type":"record","name":"n.R","fields":[{"name":"a","type":{"type":"array","items":"long"}}]}"#,
        ] {
            let theirs = apache_avro::Schema::parse_str(s).unwrap().fingerprint::<apache_avro::rabin::Rabin>();
            assert_eq!(theirs.bytes, fingerprint(&parsing_canonical_form(s).unwrap()).0, "{s}");
        }
    }
}
