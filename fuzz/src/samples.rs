//! Valid inputs for the seed corpora: protocol messages of every kind, events carrying them,
//! PROTOCOL.md §2.4's golden vectors and schema texts.
//!
//! A kind with optional parts or lists appears in a rich form (every optional part present,
//! lists of several entries, schemas of every Avro type) and a lean one, so that the fuzzer
//! starts next to both ends of every `optional` and every list length check.

use std::collections::BTreeMap;

use busline::{Event, Fingerprint, Headers, Identifier, Payload};
use bytes::Bytes;
use orbitalis_schemas::protocol::*;
use orbitalis_schemas::{Schema, SchemaSpec};
use uuid::Uuid;

use crate::hex;

/// 2026-01-01T00:00Z in µs, the instant of the golden vectors.
pub const GOLDEN_TIME_US: i64 = 1_767_225_600_000_000;

/// PROTOCOL.md §2.4, as `(name, hex)`.
pub const GOLDEN_EVENTS: &[(&str, &str)] = &[
    ("golden-no-payload", "b00b01 0190a1b2c3d47e5f8a6b7c8d9e0f1a2b 0a6c6f776572 808082e288d2a306 00 00 00"),
    (
        "golden-keepalive",
        "b00b01 0190a1b2c3d47e5f8a6b7c8d9e0f1a2c 0a6c6f776572 808082e288d2a306 00 02 4b67a6371c956250 56 \
         0a6c6f7765720190a1b2000070008000000000000001e0d403020190a1b2c3d47e5f8a6b7c8d9e0f1a2b00 00",
    ),
    (
        "golden-string",
        "b00b01 0190a1b2c3d47e5f8a6b7c8d9e0f1a2d 08686f6d65 808082e288d2a306 02 0190a1b2c3d47e5f8a6b7c8d9e0f1a2e 02 \
         c70345637248018f 06 044849 00",
    ),
];

/// The Keepalive datum inside the second golden vector.
pub const GOLDEN_KEEPALIVE_DATUM: &str =
    "0a6c6f7765720190a1b2000070008000000000000001e0d403020190a1b2c3d47e5f8a6b7c8d9e0f1a2b00";

/// Payload schema texts: every Avro type, names and namespaces, aliases, defaults, logical
/// types, and PROTOCOL.md §5.2's compatibility rows.
pub const SCHEMA_TEXTS: &[&str] = &[
    r#""string""#,
    r#""bytes""#,
    r#""int""#,
    r#""long""#,
    r#""float""#,
    r#""double""#,
    r#""boolean""#,
    r#"{"type":"long","logicalType":"timestamp-micros"}"#,
    r#"{"type":"string","logicalType":"uuid"}"#,
    r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#,
    r#"["null","int","string",{"type":"array","items":"long"},{"type":"map","values":"double"}]"#,
    r#"{"type":"array","items":{"type":"map","values":["null","bytes"]}}"#,
    r#"{"type":"enum","name":"Colour","namespace":"paint","symbols":["RED","GREEN","BLUE"],"default":"RED"}"#,
    r#"{"type":"fixed","name":"md5","namespace":"hash","size":16,"aliases":["digest"]}"#,
    r#"{"type":"record","name":"Old","fields":[{"name":"x","type":"int"}]}"#,
    r#"{"type":"record","name":"New","aliases":["Old"],"fields":[{"name":"x","type":"int"}]}"#,
    r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"fixed","name":"F","size":4}},{"name":"b","type":"F"}]}"#,
    r#"{"type":"record","name":"R","fields":[{"name":"b","type":{"type":"fixed","name":"F","size":4}},{"name":"a","type":"F"}]}"#,
    r#"{"type":"record","name":"Status","namespace":"home","doc":"a lamp","fields":[
        {"name":"lamp","type":"string","aliases":["light"]},
        {"name":"on","type":"boolean","default":false},
        {"name":"watts","type":["null","double"],"default":null},
        {"name":"history","type":{"type":"array","items":{"type":"record","name":"Change","fields":[
            {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
            {"name":"to","type":{"type":"enum","name":"State","symbols":["OFF","ON"]}}]}},"default":[]},
        {"name":"last","type":["null","Change"],"default":null},
        {"name":"meta","type":{"type":"map","values":"home.State"},"default":{}}]}"#,
    r#"{"type":"record","name":"a.b.Outer","fields":[
        {"name":"inner","type":{"type":"record","name":"Inner","namespace":"c","fields":[
            {"name":"f","type":{"type":"fixed","name":"Four","size":4}}]}},
        {"name":"again","type":"c.Inner"},
        {"name":"e","type":{"type":"error","name":"Oops","fields":[]}}]}"#,
    // Refused, each for its own rule: kept because what almost parses is a good start.
    r#""null""#,
    r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
    r#"{"type":"record","name":"X","namespace":"orbitalis.protocol","fields":[]}"#,
    r#"{"type":"fixed","name":"Huge","size":1000000000}"#,
];

fn ident(s: &str) -> Identifier {
    Identifier::new(s).expect("sample identifiers are valid")
}

/// A UUIDv7 whose low bits are `n`: incarnations and offer ids.
fn v7(n: u128) -> Uuid {
    Uuid::from_u128(0x0190a1b2_c3d4_7000_8000_000000000000 | n)
}

/// A UUIDv4 whose low bits are `n`: connection ids and keys.
fn v4(n: u128) -> Uuid {
    Uuid::from_u128(0x7d3c2b1a_0000_4000_a000_000000000000 | n)
}

fn sender(name: &str, dead_after_ms: i64) -> Sender {
    Sender { identifier: ident(name), incarnation: v7(1), dead_after_ms }
}

/// A spec holding every schema of [`SCHEMA_TEXTS`] that parses (16 at most, as a spec may).
fn rich_spec() -> SchemaSpec {
    let mut schemas: Vec<Schema> = Vec::new();
    for text in SCHEMA_TEXTS {
        if let Ok(s) = Schema::parse(text)
            && schemas.len() < 16
            && !schemas.contains(&s)
        {
            schemas.push(s);
        }
    }
    SchemaSpec::from_schemas(schemas).expect("distinct, few and small").with_empty().with_any()
}

fn string_spec() -> SchemaSpec {
    SchemaSpec::from_schemas([Schema::parse(r#""string""#).expect("a primitive")]).expect("one schema")
}

/// Protocol messages of every kind, rich then lean where the kind has both, as `(name, message)`.
pub fn controls() -> Vec<(String, Control)> {
    let rich = rich_spec();
    let core = sender("core-1", 30_000);
    let plugin = sender("plugin-1", 0);
    let out: Vec<(&str, Control)> = vec![
        (
            "discover-rich",
            Discover {
                sender: core.clone(),
                protocol_version: 1,
                queries: vec![
                    OperationQuery {
                        operation: ident("lowercase"),
                        inputs: vec![rich.clone(), SchemaSpec::empty(), SchemaSpec::none()],
                        outputs: vec![string_spec(), SchemaSpec::any()],
                        allowlist: Some(vec![ident("plugin-1"), ident("plugin-2")]),
                        blocklist: None,
                    },
                    OperationQuery {
                        operation: ident("uppercase"),
                        inputs: vec![string_spec()],
                        outputs: vec![SchemaSpec::none()],
                        allowlist: None,
                        blocklist: Some(vec![ident("rogue")]),
                    },
                ],
            }
            .into(),
        ),
        (
            "discover-lean",
            Discover {
                sender: sender("c", 1_000),
                protocol_version: 7,
                queries: vec![OperationQuery {
                    operation: ident("x"),
                    inputs: vec![SchemaSpec::none()],
                    outputs: vec![SchemaSpec::none()],
                    allowlist: None,
                    blocklist: None,
                }],
            }
            .into(),
        ),
        (
            "offer-rich",
            Offer {
                sender: plugin.clone(),
                protocol_version: 1,
                operations: vec![
                    OfferedOperation {
                        operation: ident("lowercase"),
                        offer_id: v7(2),
                        input: rich.clone(),
                        output: string_spec(),
                    },
                    OfferedOperation {
                        operation: ident("tick"),
                        offer_id: v7(3),
                        input: SchemaSpec::none(),
                        output: SchemaSpec::empty(),
                    },
                ],
            }
            .into(),
        ),
        (
            "offer-lean",
            Offer {
                sender: sender("p", 86_400_000),
                protocol_version: 1,
                operations: vec![OfferedOperation {
                    operation: ident("y"),
                    offer_id: v7(4),
                    input: SchemaSpec::any(),
                    output: SchemaSpec::none(),
                }],
            }
            .into(),
        ),
        (
            "request-rich",
            Request {
                sender: core.clone(),
                operation: ident("lowercase"),
                offer_id: v7(2),
                connection_id: v4(1),
                input: rich.clone(),
                output: string_spec().with_empty(),
                expires_in_ms: 600_000,
                setup_data: Some(Bytes::from_static(b"\x00setup\xff")),
            }
            .into(),
        ),
        (
            "request-lean",
            Request {
                sender: core.clone(),
                operation: ident("tick"),
                offer_id: v7(3),
                connection_id: v7(9),
                input: SchemaSpec::none(),
                output: SchemaSpec::empty(),
                expires_in_ms: 1,
                setup_data: Some(Bytes::new()),
            }
            .into(),
        ),
        (
            "reject-rich",
            Reject {
                sender: core.clone(),
                operation: ident("lowercase"),
                offer_id: v7(2),
                reason: RejectReason::IncompatibleOutput,
                description: Some("no output alternative reads string".into()),
            }
            .into(),
        ),
        (
            "reject-lean",
            Reject {
                sender: core.clone(),
                operation: ident("lowercase"),
                offer_id: v7(2),
                reason: RejectReason::NotRequired,
                description: None,
            }
            .into(),
        ),
        ("confirm", Confirm { sender: plugin.clone(), operation: ident("lowercase"), connection_id: v4(1) }.into()),
        (
            "nla-rich",
            OperationNoLongerAvailable {
                sender: plugin.clone(),
                operation: ident("lowercase"),
                connection_id: v4(1),
                reason: UnavailableReason::SetupFailed,
                description: Some("é".repeat(512)),
            }
            .into(),
        ),
        (
            "nla-lean",
            OperationNoLongerAvailable {
                sender: plugin.clone(),
                operation: ident("lowercase"),
                connection_id: v4(1),
                reason: UnavailableReason::Other,
                description: None,
            }
            .into(),
        ),
        ("keepalive-request", KeepaliveRequest { sender: core.clone() }.into()),
        (
            "keepalive-rich",
            Keepalive { sender: plugin.clone(), connections: (1..=5).map(v4).chain([v7(5)]).collect() }.into(),
        ),
        ("keepalive-lean", Keepalive { sender: plugin.clone(), connections: vec![] }.into()),
        (
            "graceful-close-rich",
            GracefulClose {
                sender: core.clone(),
                operation: ident("lowercase"),
                connection_id: v4(1),
                reason: CloseReason::RequirementChanged,
                data: Some(Bytes::from_static(b"bye")),
            }
            .into(),
        ),
        (
            "graceful-close-lean",
            GracefulClose {
                sender: core.clone(),
                operation: ident("lowercase"),
                connection_id: v4(1),
                reason: CloseReason::Requested,
                data: None,
            }
            .into(),
        ),
        (
            "graceless-close-rich",
            GracelessClose {
                sender: plugin.clone(),
                operation: Some(ident("lowercase")),
                connection_id: v4(2),
                reason: CloseReason::PeerRestarted,
                data: Some(Bytes::new()),
            }
            .into(),
        ),
        (
            "graceless-close-lean",
            GracelessClose {
                sender: plugin.clone(),
                operation: None,
                connection_id: v4(3),
                reason: CloseReason::UnknownConnection,
                data: None,
            }
            .into(),
        ),
        ("close-ack", CloseAck { sender: plugin.clone(), operation: ident("lowercase"), connection_id: v4(1) }.into()),
        (
            "operation-result-rich",
            OperationResult {
                operation: ident("lowercase"),
                output: Some(Payload::new(Fingerprint::from_hex("c70345637248018f").expect("hex"), hex("044849"))),
                handler_time_us: 1_234,
            }
            .into(),
        ),
        (
            "operation-result-lean",
            OperationResult { operation: ident("tick"), output: None, handler_time_us: 0 }.into(),
        ),
        (
            "operation-error",
            OperationError { operation: ident("lowercase"), kind: ErrorKind::HandlerFailed, message: "boom".into() }
                .into(),
        ),
        (
            "introspection-request",
            IntrospectionRequest { sender: sender("monitor", 0), role: Role::Monitor, details: true }.into(),
        ),
        (
            "introspection-response-rich",
            IntrospectionResponse {
                sender: plugin.clone(),
                role: Role::Plugin,
                state: OrbiterState::Compliant,
                protocol_version: 1,
                implementation: "orbitalis-rust/0.1.0".into(),
                started_at_us: GOLDEN_TIME_US,
                operations: vec![OperationInfo {
                    operation: ident("lowercase"),
                    input: SpecSummary {
                        empty: true,
                        any: false,
                        schema_names: vec!["string".into(), "home.Status".into()],
                    },
                    output: SpecSummary::default(),
                    maximum: Some(4),
                    connections: 1,
                    pending: 0,
                }],
                requirements: vec![RequirementInfo {
                    operation: ident("uppercase"),
                    minimum: 1,
                    maximum: None,
                    mandatory: vec![ident("plugin-2")],
                    connections: 0,
                    pending: 1,
                    compliant: false,
                }],
                connections: vec![ConnectionInfo {
                    connection_id: v4(1),
                    operation: ident("lowercase"),
                    remote: ident("core-1"),
                    state: ConnectionState::Closing,
                    created_at_us: GOLDEN_TIME_US,
                    last_use_us: GOLDEN_TIME_US + 1,
                    in_flight: 2,
                    close_initiator: true,
                }],
                pending: vec![PendingInfo {
                    key: v7(2),
                    operation: ident("lowercase"),
                    remote: ident("core-1"),
                    created_at_us: -1,
                    connection_id: Some(v4(1)),
                }],
                peers: vec![PeerInfo {
                    identifier: ident("core-1"),
                    incarnation: v7(1),
                    dead_after_ms: 30_000,
                    last_seen_us: GOLDEN_TIME_US,
                }],
                counters: BTreeMap::from([("duplicate".to_owned(), 3), ("malformed".to_owned(), i64::MAX)]),
                truncated: true,
            }
            .into(),
        ),
        (
            "introspection-response-lean",
            IntrospectionResponse {
                sender: core.clone(),
                role: Role::Core,
                state: OrbiterState::Created,
                protocol_version: 1,
                implementation: String::new(),
                started_at_us: 0,
                operations: vec![],
                requirements: vec![],
                connections: vec![],
                pending: vec![],
                peers: vec![],
                counters: BTreeMap::new(),
                truncated: false,
            }
            .into(),
        ),
    ];
    out.into_iter().map(|(name, c)| (name.to_owned(), c)).collect()
}

/// Encoded events: the golden vectors, then every sample message as a payload, with and
/// without correlation and headers.
pub fn events() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = GOLDEN_EVENTS.iter().map(|(n, h)| ((*n).to_owned(), hex(h))).collect();
    for (k, (name, control)) in controls().into_iter().enumerate() {
        let mut event = Event {
            id: v7(0x100 + k as u128),
            publisher: ident("core-1"),
            timestamp_us: GOLDEN_TIME_US,
            correlation_id: None,
            payload: Some(control.to_payload()),
            headers: Headers::new(),
        };
        if k % 3 == 0 {
            event.correlation_id = Some(v4(0x200 + k as u128));
            event
                .headers
                .insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
                .expect("valid");
            event.headers.insert("x-k", format!("{k}")).expect("valid");
        }
        out.push((format!("event-{name}"), event.encode().to_vec()));
    }
    out
}
