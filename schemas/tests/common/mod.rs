//! Sample protocol messages: each kind twice, once with every optional part filled and once
//! with the least it can hold.

#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;

use busline::{Fingerprint, Identifier, Payload};
use bytes::Bytes;
use orbitalis_schemas::protocol::*;
use orbitalis_schemas::{Schema, SchemaSpec};
use uuid::Uuid;

pub fn id(s: &str) -> Identifier {
    Identifier::new(s).unwrap()
}

pub fn v7(n: u128) -> Uuid {
    Uuid::from_u128(0x0190a1b2_0000_7000_8000_000000000000 | n)
}

pub fn v4(n: u128) -> Uuid {
    Uuid::from_u128(0x5a1b2c3d_0000_4000_8000_000000000000 | n)
}

pub fn sender(name: &str) -> Sender {
    Sender { identifier: id(name), incarnation: v7(1), dead_after_ms: 30_000 }
}

pub fn schema(text: &str) -> Schema {
    Schema::parse(text).unwrap()
}

pub const RECORD: &str =
    r#"{"type":"record","name":"Status","namespace":"home","fields":[{"name":"on","type":"boolean","default":false}]}"#;

pub fn specs() -> (SchemaSpec, SchemaSpec) {
    let full = SchemaSpec::from_schemas([schema(r#""string""#), schema(RECORD)]).unwrap().with_empty().with_any();
    (full, SchemaSpec::none())
}

/// Every message kind, full then minimal.
pub fn samples() -> Vec<Control> {
    let (full, none) = specs();
    let query = OperationQuery {
        operation: id("lowercase"),
        inputs: vec![full.clone(), SchemaSpec::empty()],
        outputs: vec![none.clone()],
        allowlist: Some(vec![id("lower"), id("upper")]),
        blocklist: None,
    };
    let query_min = OperationQuery {
        operation: id("x"),
        inputs: vec![none.clone()],
        outputs: vec![none.clone()],
        allowlist: None,
        blocklist: Some(vec![]),
    };
    let offered = |op: &str, n| OfferedOperation {
        operation: id(op),
        offer_id: v7(n),
        input: full.clone(),
        output: none.clone(),
    };
    let mut counters = BTreeMap::new();
    counters.insert("invalid_message".to_owned(), 3);
    counters.insert("late_reply".to_owned(), -1);
    vec![
        Discover { sender: sender("home"), protocol_version: 1, queries: vec![query, query_min.clone()] }.into(),
        Discover { sender: sender("h"), protocol_version: 7, queries: vec![query_min] }.into(),
        Offer { sender: sender("lower"), protocol_version: 1, operations: vec![offered("a", 2), offered("b", 3)] }
            .into(),
        Offer { sender: sender("lower"), protocol_version: 1, operations: vec![offered("a", 2)] }.into(),
        Request {
            sender: sender("home"),
            operation: id("lowercase"),
            offer_id: v7(2),
            connection_id: v4(9),
            input: full.clone(),
            output: SchemaSpec::empty(),
            expires_in_ms: 9_750,
            setup_data: Some(Bytes::from_static(b"\x00setup\xff")),
        }
        .into(),
        Request {
            sender: sender("home"),
            operation: id("o"),
            offer_id: v7(2),
            connection_id: v7(9),
            input: none.clone(),
            output: none.clone(),
            expires_in_ms: 1,
            setup_data: Some(Bytes::new()),
        }
        .into(),
        Reject {
            sender: sender("home"),
            operation: id("lowercase"),
            offer_id: v7(4),
            reason: RejectReason::IncompatibleOutput,
            description: Some("no output alternative reads \"string\"".into()),
        }
        .into(),
        Reject {
            sender: sender("home"),
            operation: id("o"),
            offer_id: v7(4),
            reason: RejectReason::Other,
            description: None,
        }
        .into(),
        Confirm { sender: sender("lower"), operation: id("lowercase"), connection_id: v4(9) }.into(),
        OperationNoLongerAvailable {
            sender: sender("lower"),
            operation: id("lowercase"),
            connection_id: v4(9),
            reason: UnavailableReason::SetupFailed,
            description: Some("é".into()),
        }
        .into(),
        OperationNoLongerAvailable {
            sender: sender("lower"),
            operation: id("o"),
            connection_id: v4(9),
            reason: UnavailableReason::UnknownOffer,
            description: None,
        }
        .into(),
        KeepaliveRequest { sender: Sender { identifier: id("m"), incarnation: v7(5), dead_after_ms: 0 } }.into(),
        Keepalive { sender: sender("lower"), connections: vec![v4(1), v7(2)] }.into(),
        Keepalive { sender: sender("lower"), connections: vec![] }.into(),
        GracefulClose {
            sender: sender("home"),
            operation: id("lowercase"),
            connection_id: v4(9),
            reason: CloseReason::RequirementChanged,
            data: Some(Bytes::from_static(b"bye")),
        }
        .into(),
        GracefulClose {
            sender: sender("home"),
            operation: id("o"),
            connection_id: v4(9),
            reason: CloseReason::Idle,
            data: None,
        }
        .into(),
        GracelessClose {
            sender: sender("lower"),
            operation: None,
            connection_id: v4(9),
            reason: CloseReason::UnknownConnection,
            data: None,
        }
        .into(),
        GracelessClose {
            sender: sender("lower"),
            operation: Some(id("lowercase")),
            connection_id: v7(9),
            reason: CloseReason::PeerDead,
            data: Some(Bytes::from_static(b"\x01")),
        }
        .into(),
        CloseAck { sender: sender("lower"), operation: id("lowercase"), connection_id: v4(9) }.into(),
        OperationResult {
            operation: id("lowercase"),
            output: Some(Payload::new(
                Fingerprint::from_hex("c70345637248018f").unwrap(),
                Bytes::from_static(b"\x04hi"),
            )),
            handler_time_us: 1_234,
        }
        .into(),
        OperationResult { operation: id("o"), output: None, handler_time_us: 0 }.into(),
        OperationError { operation: id("lowercase"), kind: ErrorKind::HandlerFailed, message: "boom".into() }.into(),
        OperationError { operation: id("o"), kind: ErrorKind::Other, message: String::new() }.into(),
        IntrospectionRequest {
            sender: Sender { identifier: id("mon"), incarnation: v7(8), dead_after_ms: 0 },
            role: Role::Monitor,
            details: true,
        }
        .into(),
        IntrospectionRequest { sender: sender("home"), role: Role::Core, details: false }.into(),
        IntrospectionResponse {
            sender: sender("lower"),
            role: Role::Plugin,
            state: OrbiterState::Running,
            protocol_version: 1,
            implementation: "orbitalis-rust/0.1.0".into(),
            started_at_us: 1_767_225_600_000_000,
            operations: vec![OperationInfo {
                operation: id("lowercase"),
                input: SpecSummary {
                    empty: false,
                    any: true,
                    schema_names: vec!["string".into(), "home.Status".into()],
                },
                output: SpecSummary::default(),
                maximum: Some(4),
                connections: 1,
                pending: 0,
            }],
            requirements: vec![RequirementInfo {
                operation: id("lowercase"),
                minimum: 1,
                maximum: None,
                mandatory: vec![id("lower")],
                connections: 1,
                pending: 2,
                compliant: true,
            }],
            connections: vec![ConnectionInfo {
                connection_id: v4(9),
                operation: id("lowercase"),
                remote: id("home"),
                state: ConnectionState::Closing,
                created_at_us: 1,
                last_use_us: -1,
                in_flight: 3,
                close_initiator: true,
            }],
            pending: vec![
                PendingInfo {
                    key: v7(2),
                    operation: id("lowercase"),
                    remote: id("home"),
                    created_at_us: 5,
                    connection_id: Some(v4(9)),
                },
                PendingInfo {
                    key: v4(3),
                    operation: id("x"),
                    remote: id("core2"),
                    created_at_us: 6,
                    connection_id: None,
                },
            ],
            peers: vec![PeerInfo {
                identifier: id("home"),
                incarnation: v7(1),
                dead_after_ms: 1_000,
                last_seen_us: 77,
            }],
            counters,
            truncated: true,
        }
        .into(),
        IntrospectionResponse {
            sender: sender("home"),
            role: Role::Core,
            state: OrbiterState::NotCompliant,
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
    ]
}
