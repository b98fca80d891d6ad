//! The Rust protocol types match their `.avsc` files: our hand encoding is what apache-avro's
//! generic reader decodes, under the file's schema, into the values this file maps each
//! message to independently; and apache-avro's encoding of those values decodes, with our
//! decoder, into the same message.

mod common;

use std::collections::HashMap;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use orbitalis_schemas::SchemaSpec;
use orbitalis_schemas::limits::Limits;
use orbitalis_schemas::protocol::*;
use uuid::Uuid;

fn rec(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn uuid(u: &Uuid) -> Value {
    Value::Fixed(16, u.as_bytes().to_vec())
}

fn s(x: &str) -> Value {
    Value::String(x.to_owned())
}

fn opt<T>(o: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    match o {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(f(v))),
    }
}

fn arr<T>(items: &[T], f: impl Fn(&T) -> Value) -> Value {
    Value::Array(items.iter().map(f).collect())
}

fn en(index: usize, symbol: &str) -> Value {
    Value::Enum(index as u32, symbol.to_owned())
}

fn sender(x: &Sender) -> Value {
    rec(vec![
        ("identifier", s(&x.identifier)),
        ("incarnation", uuid(&x.incarnation)),
        ("dead_after_ms", Value::Long(x.dead_after_ms)),
    ])
}

fn spec(x: &SchemaSpec) -> Value {
    rec(vec![
        ("empty", Value::Boolean(x.empty)),
        ("any", Value::Boolean(x.any)),
        ("schemas", arr(x.schemas(), |sc| s(sc.text()))),
    ])
}

fn summary(x: &SpecSummary) -> Value {
    rec(vec![
        ("empty", Value::Boolean(x.empty)),
        ("any", Value::Boolean(x.any)),
        ("schema_names", arr(&x.schema_names, |n| s(n))),
    ])
}

fn bytes(b: &bytes::Bytes) -> Value {
    Value::Bytes(b.to_vec())
}

fn to_value(c: &Control) -> Value {
    match c {
        Control::Discover(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("protocol_version", Value::Int(m.protocol_version)),
            (
                "queries",
                arr(&m.queries, |q| {
                    rec(vec![
                        ("operation", s(&q.operation)),
                        ("inputs", arr(&q.inputs, spec)),
                        ("outputs", arr(&q.outputs, spec)),
                        ("allowlist", opt(q.allowlist.as_ref(), |l| arr(l, |i| s(i)))),
                        ("blocklist", opt(q.blocklist.as_ref(), |l| arr(l, |i| s(i)))),
                    ])
                }),
            ),
        ]),
        Control::Offer(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("protocol_version", Value::Int(m.protocol_version)),
            (
                "operations",
                arr(&m.operations, |o| {
                    rec(vec![
                        ("operation", s(&o.operation)),
                        ("offer_id", uuid(&o.offer_id)),
                        ("input", spec(&o.input)),
                        ("output", spec(&o.output)),
                    ])
                }),
            ),
        ]),
        Control::Request(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("operation", s(&m.operation)),
            ("offer_id", uuid(&m.offer_id)),
            ("connection_id", uuid(&m.connection_id)),
            ("input", spec(&m.input)),
            ("output", spec(&m.output)),
            ("expires_in_ms", Value::Long(m.expires_in_ms)),
            ("setup_data", opt(m.setup_data.as_ref(), bytes)),
        ]),
        Control::Reject(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("operation", s(&m.operation)),
            ("offer_id", uuid(&m.offer_id)),
            ("reason", en(m.reason as usize, m.reason.symbol())),
            ("description", opt(m.description.as_deref(), s)),
        ]),
        Control::Confirm(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("operation", s(&m.operation)),
            ("connection_id", uuid(&m.connection_id)),
        ]),
        Control::OperationNoLongerAvailable(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("operation", s(&m.operation)),
            ("connection_id", uuid(&m.connection_id)),
            ("reason", en(m.reason as usize, m.reason.symbol())),
            ("description", opt(m.description.as_deref(), s)),
        ]),
        Control::KeepaliveRequest(m) => rec(vec![("sender", sender(&m.sender))]),
        Control::Keepalive(m) => rec(vec![("sender", sender(&m.sender)), ("connections", arr(&m.connections, uuid))]),
        Control::GracefulClose(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("operation", s(&m.operation)),
            ("connection_id", uuid(&m.connection_id)),
            ("reason", en(m.reason as usize, m.reason.symbol())),
            ("data", opt(m.data.as_ref(), bytes)),
        ]),
        Control::GracelessClose(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("operation", s(m.operation.as_ref().map_or("", |o| o.as_str()))),
            ("connection_id", uuid(&m.connection_id)),
            ("reason", en(m.reason as usize, m.reason.symbol())),
            ("data", opt(m.data.as_ref(), bytes)),
        ]),
        Control::CloseAck(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("operation", s(&m.operation)),
            ("connection_id", uuid(&m.connection_id)),
        ]),
        Control::OperationResult(m) => rec(vec![
            ("operation", s(&m.operation)),
            (
                "output",
                opt(m.output.as_ref(), |p| {
                    rec(vec![("fingerprint", Value::Fixed(8, p.fingerprint.0.to_vec())), ("datum", bytes(&p.datum))])
                }),
            ),
            ("handler_time_us", Value::Long(m.handler_time_us)),
        ]),
        Control::OperationError(m) => rec(vec![
            ("operation", s(&m.operation)),
            ("kind", en(m.kind as usize, m.kind.symbol())),
            ("message", s(&m.message)),
        ]),
        Control::IntrospectionRequest(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("role", en(m.role as usize, m.role.symbol())),
            ("details", Value::Boolean(m.details)),
        ]),
        Control::IntrospectionResponse(m) => rec(vec![
            ("sender", sender(&m.sender)),
            ("role", en(m.role as usize, m.role.symbol())),
            ("state", en(m.state as usize, m.state.symbol())),
            ("protocol_version", Value::Int(m.protocol_version)),
            ("implementation", s(&m.implementation)),
            ("started_at_us", Value::Long(m.started_at_us)),
            (
                "operations",
                arr(&m.operations, |o| {
                    rec(vec![
                        ("operation", s(&o.operation)),
                        ("input", summary(&o.input)),
                        ("output", summary(&o.output)),
                        ("maximum", opt(o.maximum, Value::Int)),
                        ("connections", Value::Int(o.connections)),
                        ("pending", Value::Int(o.pending)),
                    ])
                }),
            ),
            (
                "requirements",
                arr(&m.requirements, |q| {
                    rec(vec![
                        ("operation", s(&q.operation)),
                        ("minimum", Value::Int(q.minimum)),
                        ("maximum", opt(q.maximum, Value::Int)),
                        ("mandatory", arr(&q.mandatory, |i| s(i))),
                        ("connections", Value::Int(q.connections)),
                        ("pending", Value::Int(q.pending)),
                        ("compliant", Value::Boolean(q.compliant)),
                    ])
                }),
            ),
            (
                "connections",
                arr(&m.connections, |k| {
                    rec(vec![
                        ("connection_id", uuid(&k.connection_id)),
                        ("operation", s(&k.operation)),
                        ("remote", s(&k.remote)),
                        ("state", en(k.state as usize, k.state.symbol())),
                        ("created_at_us", Value::Long(k.created_at_us)),
                        ("last_use_us", Value::Long(k.last_use_us)),
                        ("in_flight", Value::Int(k.in_flight)),
                        ("close_initiator", Value::Boolean(k.close_initiator)),
                    ])
                }),
            ),
            (
                "pending",
                arr(&m.pending, |p| {
                    rec(vec![
                        ("key", uuid(&p.key)),
                        ("operation", s(&p.operation)),
                        ("remote", s(&p.remote)),
                        ("created_at_us", Value::Long(p.created_at_us)),
                        ("connection_id", opt(p.connection_id.as_ref(), uuid)),
                    ])
                }),
            ),
            (
                "peers",
                arr(&m.peers, |p| {
                    rec(vec![
                        ("identifier", s(&p.identifier)),
                        ("incarnation", uuid(&p.incarnation)),
                        ("dead_after_ms", Value::Long(p.dead_after_ms)),
                        ("last_seen_us", Value::Long(p.last_seen_us)),
                    ])
                }),
            ),
            (
                "counters",
                Value::Map(m.counters.iter().map(|(k, v)| (k.clone(), Value::Long(*v))).collect::<HashMap<_, _>>()),
            ),
            ("truncated", Value::Boolean(m.truncated)),
        ]),
    }
}

fn avro_schema(kind: MessageKind) -> apache_avro::Schema {
    apache_avro::Schema::parse_str(kind.schema_text()).unwrap()
}

#[test]
fn samples_cover_every_kind() {
    let kinds: Vec<MessageKind> = common::samples().iter().map(Control::kind).collect();
    for k in MessageKind::ALL {
        assert!(kinds.contains(k), "no sample of {k:?}");
    }
}

#[test]
fn apache_avro_reads_our_encoding_as_the_avsc_says() {
    for c in common::samples() {
        let schema = avro_schema(c.kind());
        let ours = c.encode();
        let mut rest = &ours[..];
        let value = GenericDatumReader::builder(&schema).build().unwrap().read_value(&mut rest).unwrap();
        assert!(rest.is_empty(), "{:?}: apache-avro left {} bytes", c.kind(), rest.len());
        assert_eq!(value, to_value(&c), "{:?}", c.kind());
    }
}

#[test]
fn we_read_apache_avro_encodings() {
    let limits = Limits::default();
    for c in common::samples() {
        let schema = avro_schema(c.kind());
        let theirs = GenericDatumWriter::builder(&schema).build().unwrap().write_value_to_vec(to_value(&c)).unwrap();
        let decoded = Control::decode_kind(c.kind(), &theirs, &limits).unwrap();
        assert_eq!(decoded, c);
        // Map entries come in hash order from apache-avro: bytes match wherever order is fixed.
        let unordered = matches!(&c, Control::IntrospectionResponse(m) if m.counters.len() > 1);
        if unordered {
            assert_eq!(theirs.len(), c.encode().len());
        } else {
            assert_eq!(theirs, c.encode().to_vec(), "{:?}", c.kind());
        }
    }
}

#[test]
fn every_sample_round_trips_through_its_payload() {
    let limits = Limits::default();
    for c in common::samples() {
        let payload = c.to_payload();
        assert_eq!(payload.fingerprint, c.kind().fingerprint());
        assert_eq!(Control::decode(&payload, &limits).unwrap(), c);
    }
}

#[test]
fn message_kinds_carry_their_files_fingerprints() {
    for k in MessageKind::ALL {
        assert_eq!(k.schema().fingerprint(), k.fingerprint(), "{k:?}");
        assert_eq!(k.schema().name(), Some(format!("orbitalis.protocol.{}", k.name()).as_str()));
        assert_eq!(MessageKind::from_fingerprint(k.fingerprint()), Some(*k));
    }
    assert_eq!(<Keepalive as ProtocolMessage>::fingerprint(), MessageKind::Keepalive.fingerprint());
    assert_eq!(Keepalive::NAME, "Keepalive");
}
