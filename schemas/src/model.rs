//! The parsed shape of a schema: types with every name resolved to a definition.
//!
//! One parse of the JSON serves the Parsing Canonical Form (hence the fingerprint), the
//! recursion check and compatibility, so these can never disagree about what a schema means.
//! Definitions are numbered in the order they appear in the text, which is also the order in
//! which a depth-first walk first meets them: the canonical form relies on it.

use std::collections::{HashMap, HashSet};

use busline::envelope::MAX_MAX_ENVELOPE_SIZE;
use serde_json::{Map, Value as Json};

use crate::Error;

/// Deepest nesting of types. apache-avro decodes without a depth limit, so the schema must
/// bound the depth of every datum (PROTOCOL.md §5.4).
pub(crate) const MAX_DEPTH: usize = 64;

/// The primitive types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Prim {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
}

impl Prim {
    const ALL: [Prim; 8] =
        [Prim::Null, Prim::Boolean, Prim::Int, Prim::Long, Prim::Float, Prim::Double, Prim::Bytes, Prim::String];

    pub(crate) fn from_name(s: &str) -> Option<Prim> {
        Prim::ALL.into_iter().find(|p| p.name() == s)
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Prim::Null => "null",
            Prim::Boolean => "boolean",
            Prim::Int => "int",
            Prim::Long => "long",
            Prim::Float => "float",
            Prim::Double => "double",
            Prim::Bytes => "bytes",
            Prim::String => "string",
        }
    }
}

/// A type; named types point into [`Model::defs`].
#[derive(Clone, Debug)]
pub(crate) enum Type {
    Prim(Prim),
    Named(usize),
    Array(Box<Type>),
    Map(Box<Type>),
    Union(Vec<Type>),
}

/// A named type's definition.
#[derive(Clone, Debug)]
pub(crate) struct Def {
    /// Full name, namespace included.
    pub(crate) full_name: String,
    /// Full names this type may also be known by (reader side of resolution).
    pub(crate) aliases: Vec<String>,
    pub(crate) kind: DefKind,
}

impl Def {
    /// The name without its namespace.
    pub(crate) fn short_name(&self) -> &str {
        self.full_name.rsplit('.').next().unwrap_or(&self.full_name)
    }

    /// The namespace, "" for none.
    pub(crate) fn namespace(&self) -> &str {
        self.full_name.rsplit_once('.').map_or("", |(ns, _)| ns)
    }
}

#[derive(Clone, Debug)]
pub(crate) enum DefKind {
    Record(Vec<Field>),
    Enum { symbols: Vec<String>, default: Option<String> },
    Fixed(usize),
}

#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) aliases: Vec<String>,
    pub(crate) ty: Type,
    pub(crate) default: Option<Json>,
}

/// A parsed schema.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    pub(crate) defs: Vec<Def>,
    pub(crate) root: Type,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::invalid(reason)
}

/// `[A-Za-z_][A-Za-z0-9_]*`, the Avro rule for names, symbols and namespace components.
pub(crate) fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn is_full_name(s: &str) -> bool {
    s.split('.').all(is_name)
}

impl Model {
    /// Parses schema JSON, resolving names as the Avro specification says.
    pub(crate) fn parse(text: &str) -> Result<Model, Error> {
        let json: Json = serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let mut p = Parser { defs: Vec::new(), index: HashMap::new() };
        let root = p.ty(&json, "", 0)?;
        let model = Model { defs: p.defs, root };
        model.check_defaults()?;
        Ok(model)
    }

    pub(crate) fn def(&self, i: usize) -> &Def {
        &self.defs[i]
    }

    /// The first named type found on a cycle, if the schema is recursive.
    pub(crate) fn recursive_type(&self) -> Option<&str> {
        // 0 = unvisited, 1 = on the current path, 2 = done.
        fn visit(m: &Model, t: &Type, state: &mut [u8]) -> Option<usize> {
            match t {
                Type::Prim(_) => None,
                Type::Array(t) | Type::Map(t) => visit(m, t, state),
                Type::Union(ts) => ts.iter().find_map(|t| visit(m, t, state)),
                Type::Named(i) => match state[*i] {
                    1 => Some(*i),
                    2 => None,
                    _ => {
                        state[*i] = 1;
                        let found = match &m.defs[*i].kind {
                            DefKind::Record(fields) => fields.iter().find_map(|f| visit(m, &f.ty, state)),
                            _ => None,
                        };
                        state[*i] = 2;
                        found
                    }
                },
            }
        }
        let mut state = vec![0u8; self.defs.len()];
        visit(self, &self.root, &mut state).map(|i| self.defs[i].full_name.as_str())
    }

    /// How deep a datum can nest: arrays, maps, unions and records count a level each.
    ///
    /// Not the text's nesting: named references let sibling definitions form a chain (each
    /// record holding the previous one), so a short text can describe deep datums.
    pub(crate) fn datum_depth(&self) -> usize {
        // Definitions come before their references in the text, and the walk follows the
        // text, so every reference meets a finished memo: the walk itself stays shallow.
        fn depth(m: &Model, t: &Type, memo: &mut [Option<usize>]) -> usize {
            match t {
                Type::Prim(_) => 0,
                Type::Array(t) | Type::Map(t) => 1 + depth(m, t, memo),
                Type::Union(ts) => 1 + ts.iter().map(|t| depth(m, t, memo)).max().unwrap_or(0),
                Type::Named(i) => {
                    if let Some(d) = memo[*i] {
                        return d;
                    }
                    // A cycle reads 0 here; recursive schemas are refused on their own.
                    memo[*i] = Some(0);
                    let d = match &m.defs[*i].kind {
                        DefKind::Record(fields) => 1 + fields.iter().map(|f| depth(m, &f.ty, memo)).max().unwrap_or(0),
                        _ => 0,
                    };
                    memo[*i] = Some(d);
                    d
                }
            }
        }
        depth(self, &self.root, &mut vec![None; self.defs.len()])
    }

    fn check_defaults(&self) -> Result<(), Error> {
        for def in &self.defs {
            if let DefKind::Record(fields) = &def.kind {
                for f in fields {
                    if let Some(d) = &f.default
                        && !self.default_matches(&f.ty, d, true, 0)
                    {
                        return Err(invalid(format!(
                            "the default of field {}.{} does not match its type",
                            def.full_name, f.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a field of type `t` gets a value from its default when a writer lacks it.
    ///
    /// Avro 1.12 lets a union's default match any branch, but apache-avro 0.22 applies it to
    /// the first branch only; counting only those keeps `can_read` true to what decoding does.
    pub(crate) fn default_applies(&self, f: &Field) -> bool {
        f.default.as_ref().is_some_and(|d| self.default_matches(&f.ty, d, false, 0))
    }

    /// Whether the JSON default `v` is a value of `t`; `any_branch` picks the union rule.
    fn default_matches(&self, t: &Type, v: &Json, any_branch: bool, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let latin1 = |s: &str| s.chars().all(|c| u32::from(c) <= 0xff);
        match t {
            Type::Prim(p) => match p {
                Prim::Null => v.is_null(),
                Prim::Boolean => v.is_boolean(),
                Prim::Int => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                Prim::Long => v.as_i64().is_some(),
                Prim::Float | Prim::Double => v.is_number(),
                Prim::Bytes => v.as_str().is_some_and(latin1),
                Prim::String => v.is_string(),
            },
            Type::Array(item) => {
                v.as_array().is_some_and(|a| a.iter().all(|v| self.default_matches(item, v, true, depth + 1)))
            }
            Type::Map(value) => {
                v.as_object().is_some_and(|o| o.values().all(|v| self.default_matches(value, v, true, depth + 1)))
            }
            Type::Union(ts) => {
                if any_branch {
                    ts.iter().any(|t| self.default_matches(t, v, true, depth + 1))
                } else {
                    ts.first().is_some_and(|t| self.default_matches(t, v, true, depth + 1))
                }
            }
            Type::Named(i) => match &self.defs[*i].kind {
                DefKind::Fixed(size) => v.as_str().is_some_and(|s| latin1(s) && s.chars().count() == *size),
                DefKind::Enum { symbols, .. } => v.as_str().is_some_and(|s| symbols.iter().any(|x| x == s)),
                DefKind::Record(fields) => v.as_object().is_some_and(|o| {
                    fields.iter().all(|f| match o.get(&f.name) {
                        Some(v) => self.default_matches(&f.ty, v, true, depth + 1),
                        None => f.default.is_some(),
                    })
                }),
            },
        }
    }
}

struct Parser {
    defs: Vec<Def>,
    index: HashMap<String, usize>,
}

fn get_str<'a>(map: &'a Map<String, Json>, key: &str, what: &str) -> Result<&'a str, Error> {
    match map.get(key) {
        Some(Json::String(s)) => Ok(s),
        Some(_) => Err(invalid(format!("{what}: \"{key}\" must be a string"))),
        None => Err(invalid(format!("{what}: \"{key}\" is missing"))),
    }
}

fn get_names(map: &Map<String, Json>, key: &str, what: &str) -> Result<Vec<String>, Error> {
    match map.get(key) {
        None => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| invalid(format!("{what}: \"{key}\" must hold strings")))
            })
            .collect(),
        Some(_) => Err(invalid(format!("{what}: \"{key}\" must be an array of strings"))),
    }
}

impl Parser {
    fn ty(&mut self, json: &Json, ns: &str, depth: usize) -> Result<Type, Error> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!("types are nested deeper than {MAX_DEPTH} levels")));
        }
        match json {
            Json::String(s) => self.reference(s, ns),
            Json::Array(branches) => self.union(branches, ns, depth),
            Json::Object(map) => self.object(map, ns, depth),
            other => Err(invalid(format!("{other} is not a schema: use a type name, an object or a union array"))),
        }
    }

    fn reference(&self, name: &str, ns: &str) -> Result<Type, Error> {
        if let Some(p) = Prim::from_name(name) {
            return Ok(Type::Prim(p));
        }
        // Unqualified names are looked up in the enclosing namespace, then (as Java does) in
        // the null namespace.
        let qualified = (!name.contains('.') && !ns.is_empty()).then(|| format!("{ns}.{name}"));
        qualified
            .as_deref()
            .into_iter()
            .chain([name])
            .find_map(|n| self.index.get(n))
            .map(|&i| Type::Named(i))
            .ok_or_else(|| invalid(format!("unknown type {name:?}: define a named type before referring to it")))
    }

    fn union(&mut self, branches: &[Json], ns: &str, depth: usize) -> Result<Type, Error> {
        let mut out = Vec::with_capacity(branches.len());
        let mut seen: HashSet<String> = HashSet::new();
        for b in branches {
            let t = self.ty(b, ns, depth + 1)?;
            let key = match &t {
                Type::Union(_) => return Err(invalid("a union may not directly contain another union")),
                Type::Prim(p) => p.name().to_owned(),
                Type::Array(_) => "array".to_owned(),
                Type::Map(_) => "map".to_owned(),
                Type::Named(i) => self.defs[*i].full_name.clone(),
            };
            if !seen.insert(key.clone()) {
                return Err(invalid(format!("a union holds {key} twice")));
            }
            out.push(t);
        }
        Ok(Type::Union(out))
    }

    fn object(&mut self, map: &Map<String, Json>, ns: &str, depth: usize) -> Result<Type, Error> {
        let ty = get_str(map, "type", "a schema object")?;
        match ty {
            "record" | "error" => self.record(map, ns, depth),
            "enum" => {
                let i = self.define(map, ns, DefKind::Enum { symbols: Vec::new(), default: None })?;
                let what = format!("enum {}", self.defs[i].full_name);
                let symbols = match map.get("symbols") {
                    Some(Json::Array(_)) => get_names(map, "symbols", &what)?,
                    _ => return Err(invalid(format!("{what}: \"symbols\" must be an array of names"))),
                };
                // Sets, not scans: a hostile schema may hold thousands of symbols.
                let mut seen = HashSet::new();
                for s in &symbols {
                    if !is_name(s) {
                        return Err(invalid(format!("{what}: symbol {s:?} is not a valid Avro name")));
                    }
                    if !seen.insert(s.as_str()) {
                        return Err(invalid(format!("{what}: symbol {s:?} appears twice")));
                    }
                }
                let default = match map.get("default") {
                    None => None,
                    Some(Json::String(d)) if symbols.contains(d) => Some(d.clone()),
                    Some(_) => return Err(invalid(format!("{what}: \"default\" must be one of its symbols"))),
                };
                self.defs[i].kind = DefKind::Enum { symbols, default };
                Ok(Type::Named(i))
            }
            "fixed" => {
                let i = self.define(map, ns, DefKind::Fixed(0))?;
                let what = format!("fixed {}", self.defs[i].full_name);
                let size = map
                    .get("size")
                    .and_then(Json::as_u64)
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| invalid(format!("{what}: \"size\" must be a non-negative integer")))?;
                // apache-avro allocates a fixed's size before reading it: a size no envelope
                // can carry must not reach it.
                if size > MAX_MAX_ENVELOPE_SIZE {
                    return Err(invalid(format!("{what}: size {size} exceeds 64 MiB, the largest envelope")));
                }
                self.defs[i].kind = DefKind::Fixed(size);
                Ok(Type::Named(i))
            }
            "array" => {
                let items = map.get("items").ok_or_else(|| invalid("an array needs \"items\""))?;
                Ok(Type::Array(Box::new(self.ty(items, ns, depth + 1)?)))
            }
            "map" => {
                let values = map.get("values").ok_or_else(|| invalid("a map needs \"values\""))?;
                Ok(Type::Map(Box::new(self.ty(values, ns, depth + 1)?)))
            }
            // A primitive with attributes (a logical type, say) or a reference in object form.
            other => self.reference(other, ns),
        }
    }

    fn record(&mut self, map: &Map<String, Json>, ns: &str, depth: usize) -> Result<Type, Error> {
        // Registered before its fields so that a field may refer to it (and be found recursive).
        let i = self.define(map, ns, DefKind::Record(Vec::new()))?;
        let record_ns = self.defs[i].namespace().to_owned();
        let what = format!("record {}", self.defs[i].full_name);
        let Some(Json::Array(fields_json)) = map.get("fields") else {
            return Err(invalid(format!("{what}: \"fields\" must be an array")));
        };
        let mut fields: Vec<Field> = Vec::with_capacity(fields_json.len());
        let mut names = HashSet::new();
        for f in fields_json {
            let Json::Object(f) = f else {
                return Err(invalid(format!("{what}: every field must be an object")));
            };
            let name = get_str(f, "name", &what)?.to_owned();
            if !is_name(&name) {
                return Err(invalid(format!("{what}: field name {name:?} is not a valid Avro name")));
            }
            if !names.insert(name.clone()) {
                return Err(invalid(format!("{what}: field {name:?} appears twice")));
            }
            let field_what = format!("field {}.{name}", self.defs[i].full_name);
            let aliases = get_names(f, "aliases", &field_what)?;
            if let Some(a) = aliases.iter().find(|a| !is_name(a)) {
                return Err(invalid(format!("{field_what}: alias {a:?} is not a valid Avro name")));
            }
            let ty = f.get("type").ok_or_else(|| invalid(format!("{field_what}: \"type\" is missing")))?;
            let ty = self.ty(ty, &record_ns, depth + 1)?;
            fields.push(Field { name, aliases, ty, default: f.get("default").cloned() });
        }
        self.defs[i].kind = DefKind::Record(fields);
        Ok(Type::Named(i))
    }

    /// Registers a named type, resolving its full name and aliases; returns its index.
    fn define(&mut self, map: &Map<String, Json>, ns: &str, kind: DefKind) -> Result<usize, Error> {
        let name = get_str(map, "name", "a named type")?;
        let full_name = if name.contains('.') {
            name.to_owned()
        } else {
            let ns = match map.get("namespace") {
                None | Some(Json::Null) => ns,
                Some(Json::String(s)) => s.as_str(),
                Some(_) => return Err(invalid(format!("type {name:?}: \"namespace\" must be a string"))),
            };
            if ns.is_empty() { name.to_owned() } else { format!("{ns}.{name}") }
        };
        if !is_full_name(&full_name) {
            return Err(invalid(format!("{full_name:?} is not a valid Avro full name")));
        }
        if Prim::from_name(&full_name).is_some() {
            return Err(invalid(format!("a named type cannot be called {full_name:?}, a primitive type")));
        }
        if self.index.contains_key(&full_name) {
            return Err(invalid(format!("type {full_name:?} is defined twice")));
        }
        let type_ns = full_name.rsplit_once('.').map_or("", |(ns, _)| ns);
        let mut aliases = Vec::new();
        for a in get_names(map, "aliases", &format!("type {full_name}"))? {
            let full = if a.contains('.') || type_ns.is_empty() { a } else { format!("{type_ns}.{a}") };
            if !is_full_name(&full) {
                return Err(invalid(format!("type {full_name}: alias {full:?} is not a valid Avro name")));
            }
            aliases.push(full);
        }
        let i = self.defs.len();
        self.index.insert(full_name.clone(), i);
        self.defs.push(Def { full_name, aliases, kind });
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Model, Error> {
        Model::parse(s)
    }

    #[test]
    fn names_inherit_the_enclosing_namespace() {
        let m = parse(
            r#"{"type":"record","name":"A","namespace":"x.y","fields":[
                {"name":"b","type":{"type":"fixed","name":"B","size":2}},
                {"name":"c","type":{"type":"enum","name":"z.C","symbols":["P"]}},
                {"name":"d","type":{"type":"record","name":"D","namespace":"","fields":[]}},
                {"name":"e","type":"B"},
                {"name":"f","type":"x.y.B"}]}"#,
        )
        .unwrap();
        let names: Vec<_> = m.defs.iter().map(|d| d.full_name.as_str()).collect();
        assert_eq!(names, ["x.y.A", "x.y.B", "z.C", "D"]);
        assert_eq!(m.def(0).short_name(), "A");
        assert_eq!(m.def(0).namespace(), "x.y");
        assert_eq!(m.def(3).namespace(), "");
    }

    #[test]
    fn aliases_are_relative_to_the_type_namespace() {
        let m = parse(r#"{"type":"record","name":"n.R","aliases":["Old","o.P"],"fields":[]}"#).unwrap();
        assert_eq!(m.def(0).aliases, ["n.Old", "o.P"]);
    }

    #[test]
    fn malformed_schemas_are_refused() {
        for bad in [
            "",
            "nope",
            r#""Unknown""#,
            "3",
            r#"{"type":"record","name":"1x","fields":[]}"#,
            r#"{"type":"record","name":"R"}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}"#,
            r#"{"type":"enum","name":"E","symbols":["A","A"]}"#,
            r#"{"type":"enum","name":"E","symbols":["A"],"default":"B"}"#,
            r#"{"type":"fixed","name":"F","size":"4"}"#,
            r#"{"type":"fixed","name":"F","size":1000000000000}"#,
            r#"{"type":"fixed","name":"int","size":4}"#,
            r#"["int","int"]"#,
            r#"["int",["long"]]"#,
            r#"[{"type":"array","items":"int"},{"type":"array","items":"long"}]"#,
            r#"{"type":"array"}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"fixed","name":"R","size":1}}]}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":3000000000}]}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"bytes","default":"\u0100"}]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| {
            let mut s = String::from("\"int\"");
            for _ in 0..n {
                s = format!("{{\"type\":\"array\",\"items\":{s}}}");
            }
            s
        };
        assert!(parse(&deep(MAX_DEPTH)).is_ok());
        assert!(parse(&deep(MAX_DEPTH + 1)).is_err());
    }

    #[test]
    fn defaults_are_checked_against_their_types() {
        let ok = r#"{"type":"record","name":"R","fields":[
            {"name":"a","type":["null","int"],"default":null},
            {"name":"b","type":["null","int"],"default":3},
            {"name":"c","type":{"type":"fixed","name":"F","size":2},"default":"\u00ff\u0000"},
            {"name":"d","type":{"type":"map","values":"long"},"default":{"x":1}},
            {"name":"e","type":{"type":"record","name":"S","fields":[{"name":"x","type":"int","default":1}]},"default":{}}]}"#;
        let m = parse(ok).unwrap();
        let DefKind::Record(fields) = &m.def(0).kind else { panic!("a record") };
        let applies: Vec<_> = fields.iter().map(|f| m.default_applies(f)).collect();
        // A union default on a later branch is valid Avro 1.12 but not applied by apache-avro.
        assert_eq!(applies, [true, false, true, true, true]);
    }

    #[test]
    fn recursion_is_found() {
        let m = parse(r#"{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}"#).unwrap();
        assert_eq!(m.recursive_type(), Some("L"));
        let m = parse(
            r#"{"type":"record","name":"A","fields":[{"name":"b","type":{"type":"record","name":"B","fields":[{"name":"a","type":{"type":"array","items":"A"}}]}}]}"#,
        )
        .unwrap();
        assert!(m.recursive_type().is_some());
        let m = parse(r#"{"type":"record","name":"A","fields":[{"name":"x","type":{"type":"fixed","name":"F","size":1}},{"name":"y","type":"F"}]}"#).unwrap();
        assert_eq!(m.recursive_type(), None, "a type used twice is not recursive");
    }
}
