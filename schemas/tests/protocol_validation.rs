//! Decoding rejects every case PROTOCOL.md §4.2 lists, one test per rule, and names the rule.

mod common;

use std::fmt::Debug;

use busline::codec::Writer;
use busline::{Fingerprint, Payload};
use bytes::Bytes;
use common::{id, sender, v4, v7};
use orbitalis_schemas::limits::Limits;
use orbitalis_schemas::protocol::*;
use orbitalis_schemas::{Schema, SchemaSpec};
use uuid::Uuid;

fn rejects_bytes<M: ProtocolMessage + Debug>(datum: &[u8], limits: &Limits, needle: &str) {
    match M::decode(datum, limits) {
        Err(ProtocolError::Invalid { message, reason }) => {
            assert_eq!(message, M::NAME);
            assert!(reason.contains(needle), "{reason:?} does not mention {needle:?}");
        }
        other => panic!("expected an invalid {}, got {other:?}", M::NAME),
    }
}

fn rejects<M: ProtocolMessage + Debug>(m: &M, needle: &str) {
    rejects_bytes::<M>(&m.encode(), &Limits::default(), needle);
}

fn accepts<M: ProtocolMessage + Debug + PartialEq>(m: &M) {
    assert_eq!(&M::decode(&m.encode(), &Limits::default()).unwrap(), m);
}

/// Replaces the first occurrence of `from` by `to` (same length) in `m`'s datum.
fn patched<M: ProtocolMessage>(m: &M, from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut datum = m.encode().to_vec();
    let at = datum.windows(from.len()).position(|w| w == from).expect("the pattern occurs");
    datum[at..at + to.len()].copy_from_slice(to);
    datum
}

fn confirm() -> Confirm {
    Confirm { sender: sender("lower"), operation: id("lowercase"), connection_id: v4(9) }
}

fn keepalive(connections: Vec<Uuid>) -> Keepalive {
    Keepalive { sender: sender("lower"), connections }
}

fn spec(texts: &[&str]) -> SchemaSpec {
    SchemaSpec::from_schemas(texts.iter().map(|t| Schema::parse(t).unwrap())).unwrap()
}

fn query(op: &str) -> OperationQuery {
    OperationQuery {
        operation: id(op),
        inputs: vec![spec(&[r#""string""#])],
        outputs: vec![SchemaSpec::none()],
        allowlist: None,
        blocklist: None,
    }
}

fn discover(queries: Vec<OperationQuery>) -> Discover {
    Discover { sender: sender("home"), protocol_version: 1, queries }
}

fn offered(op: &str, offer_id: Uuid) -> OfferedOperation {
    OfferedOperation { operation: id(op), offer_id, input: SchemaSpec::empty(), output: SchemaSpec::none() }
}

fn request() -> Request {
    Request {
        sender: sender("home"),
        operation: id("lowercase"),
        offer_id: v7(2),
        connection_id: v4(9),
        input: SchemaSpec::empty(),
        output: SchemaSpec::none(),
        expires_in_ms: 10_000,
        setup_data: None,
    }
}

/// A Request datum whose input spec is written by hand: `empty`, `any`, then these texts.
fn request_with_input_texts(texts: &[&str]) -> Vec<u8> {
    let r = request();
    let mut w = Writer::default();
    w.string(&r.sender.identifier);
    w.raw(r.sender.incarnation.as_bytes());
    w.long(r.sender.dead_after_ms);
    w.string(&r.operation);
    w.raw(r.offer_id.as_bytes());
    w.raw(r.connection_id.as_bytes());
    w.boolean(false);
    w.boolean(false);
    w.array(texts, |w, t| w.string(t));
    w.raw(&[0, 0, 0]); // output: NONE
    w.long(r.expires_in_ms);
    w.index(0); // no setup data
    w.into_vec()
}

fn small() -> Limits {
    Limits::new(64 << 10).unwrap()
}

#[test]
fn identifiers_follow_the_identifier_rules() {
    let c = confirm();
    rejects_bytes::<Confirm>(&patched(&c, b"lower", b"lo.er"), &Limits::default(), "sender.identifier");
    rejects_bytes::<Confirm>(&patched(&c, b"lowercase", b"_owercase"), &Limits::default(), "operation");
    let r = OperationResult { operation: id("lowercase"), output: None, handler_time_us: 0 };
    rejects_bytes::<OperationResult>(&patched(&r, b"lowercase", b"lower cas"), &Limits::default(), "operation");
    let info = IntrospectionResponse {
        sender: sender("lower"),
        role: Role::Plugin,
        state: OrbiterState::Running,
        protocol_version: 1,
        implementation: "x".into(),
        started_at_us: 0,
        operations: vec![],
        requirements: vec![],
        connections: vec![],
        pending: vec![],
        peers: vec![PeerInfo { identifier: id("remote"), incarnation: v7(3), dead_after_ms: 0, last_seen_us: 0 }],
        counters: Default::default(),
        truncated: false,
    };
    rejects_bytes::<IntrospectionResponse>(&patched(&info, b"remote", b"rem/te"), &Limits::default(), "identifier");
}

#[test]
fn only_a_graceless_close_may_leave_the_operation_empty() {
    let graceless = GracelessClose {
        sender: sender("lower"),
        operation: None,
        connection_id: v4(9),
        reason: CloseReason::UnknownConnection,
        data: None,
    };
    accepts(&graceless);
    // GracefulClose has the same layout: the same bytes with an empty operation are refused.
    rejects_bytes::<GracefulClose>(&graceless.encode(), &Limits::default(), "operation");
    // Without its reason and data, the same datum is a CloseAck head: refused as well.
    let datum = graceless.encode();
    rejects_bytes::<CloseAck>(&datum[..datum.len() - 2], &Limits::default(), "operation");
}

#[test]
fn incarnations_and_offer_ids_are_uuid_v7() {
    let mut c = confirm();
    c.sender.incarnation = v4(1);
    rejects(&c, "sender.incarnation");
    let mut r = request();
    r.offer_id = v4(2);
    rejects(&r, "offer_id");
    let reject = Reject {
        sender: sender("home"),
        operation: id("o"),
        offer_id: v4(2),
        reason: RejectReason::Other,
        description: None,
    };
    rejects(&reject, "offer_id");
    rejects(&Offer { sender: sender("lower"), protocol_version: 1, operations: vec![offered("o", v4(2))] }, "offer_id");
    let peer = PeerInfo { identifier: id("p"), incarnation: v4(1), dead_after_ms: 0, last_seen_us: 0 };
    let mut info = sample_response();
    info.peers = vec![peer];
    rejects(&info, "incarnation");
}

#[test]
fn other_ids_are_non_nil_v4_or_v7() {
    for bad in [Uuid::nil(), Uuid::from_u128(0x0190a1b2_0000_1000_8000_000000000001), Uuid::max()] {
        let mut c = confirm();
        c.connection_id = bad;
        rejects(&c, "connection_id");
        rejects(&keepalive(vec![v4(1), bad]), "connections");
        let mut info = sample_response();
        info.pending =
            vec![PendingInfo { key: bad, operation: id("o"), remote: id("r"), created_at_us: 0, connection_id: None }];
        rejects(&info, "key");
    }
    accepts(&keepalive(vec![v4(1), v7(2)]));
}

#[test]
fn dead_after_is_zero_or_one_second_to_a_day() {
    for ok in [0, 1_000, 86_400_000] {
        let mut c = confirm();
        c.sender.dead_after_ms = ok;
        accepts(&c);
    }
    for bad in [-1, 1, 999, 86_400_001, i64::MAX] {
        let mut c = confirm();
        c.sender.dead_after_ms = bad;
        rejects(&c, "dead_after_ms");
    }
}

#[test]
fn expires_in_is_one_ms_to_ten_minutes() {
    for (v, ok) in [(1, true), (600_000, true), (0, false), (-5, false), (600_001, false)] {
        let mut r = request();
        r.expires_in_ms = v;
        if ok { accepts(&r) } else { rejects(&r, "expires_in_ms") }
    }
}

#[test]
fn protocol_version_is_at_least_one() {
    let mut d = discover(vec![query("a")]);
    d.protocol_version = 0;
    rejects(&d, "protocol_version");
    let offer = Offer { sender: sender("lower"), protocol_version: -1, operations: vec![offered("o", v7(2))] };
    rejects(&offer, "protocol_version");
    let mut info = sample_response();
    info.protocol_version = 0;
    rejects(&info, "protocol_version");
}

#[test]
fn discover_holds_one_to_256_distinct_queries() {
    accepts(&discover((0..256).map(|k| query(&format!("op{k}"))).collect()));
    rejects(&discover(vec![]), "queries");
    rejects(&discover((0..257).map(|k| query(&format!("op{k}"))).collect()), "queries");
    rejects(&discover(vec![query("a"), query("b"), query("a")]), "appears twice");
}

#[test]
fn offer_holds_one_to_256_distinct_operations() {
    let offer = |ops: Vec<OfferedOperation>| Offer { sender: sender("lower"), protocol_version: 1, operations: ops };
    accepts(&offer((0..256).map(|k| offered(&format!("op{k}"), v7(k))).collect()));
    rejects(&offer(vec![]), "operations");
    rejects(&offer((0..257).map(|k| offered(&format!("op{k}"), v7(k))).collect()), "operations");
    rejects(&offer(vec![offered("a", v7(1)), offered("a", v7(2))]), "appears twice");
}

#[test]
fn a_query_has_not_both_lists() {
    let mut q = query("a");
    q.allowlist = Some(vec![id("p")]);
    q.blocklist = Some(vec![]);
    rejects(&discover(vec![q]), "both an allowlist and a blocklist");
}

#[test]
fn a_query_has_one_to_sixteen_alternatives_each_way() {
    let alternatives = |n: usize| {
        (0..n).map(|k| spec(&[&format!(r#"{{"type":"fixed","name":"F{k}","size":1}}"#)])).collect::<Vec<_>>()
    };
    let mut q = query("a");
    q.inputs = alternatives(16);
    q.outputs = alternatives(16);
    accepts(&discover(vec![q.clone()]));
    let mut bad = q.clone();
    bad.inputs = vec![];
    rejects(&discover(vec![bad]), "inputs");
    let mut bad = q.clone();
    bad.inputs = alternatives(17);
    rejects(&discover(vec![bad]), "inputs");
    let mut bad = q.clone();
    bad.outputs = vec![];
    rejects(&discover(vec![bad]), "outputs");
    let mut bad = q;
    bad.outputs = alternatives(17);
    rejects(&discover(vec![bad]), "outputs");
}

#[test]
fn list_entries_are_identifiers() {
    let mut q = query("a");
    q.allowlist = Some(vec![id("good"), id("ok-x")]);
    let d = discover(vec![q]);
    rejects_bytes::<Discover>(&patched(&d, b"ok-x", b"ok x"), &Limits::default(), "allowlist");
    let mut q = query("a");
    q.blocklist = Some(vec![id("zz")]);
    rejects_bytes::<Discover>(&patched(&discover(vec![q]), b"zz", b"z*"), &Limits::default(), "blocklist");
    let mut info = sample_response();
    info.requirements = vec![RequirementInfo {
        operation: id("o"),
        minimum: 0,
        maximum: None,
        mandatory: vec![id("mand")],
        connections: 0,
        pending: 0,
        compliant: true,
    }];
    rejects_bytes::<IntrospectionResponse>(&patched(&info, b"mand", b"$and"), &Limits::default(), "mandatory");
}

#[test]
fn lists_are_bounded() {
    let ids: Vec<_> = (0..1025).map(|k| id(&format!("p{k}"))).collect();
    let mut q = query("a");
    q.allowlist = Some(ids[..1024].to_vec());
    accepts(&discover(vec![q.clone()]));
    q.allowlist = Some(ids.clone());
    rejects(&discover(vec![q]), "allowlist");
    let mut q = query("a");
    q.blocklist = Some(ids);
    rejects(&discover(vec![q]), "blocklist");
    accepts(&keepalive((0..1024).map(v4).collect()));
    rejects(&keepalive((0..1025).map(v4).collect()), "connections");
}

#[test]
fn sizes_follow_the_limits() {
    let limits = small();
    let mut r = request();
    r.setup_data = Some(Bytes::from(vec![7; limits.max_setup_data()]));
    assert!(Request::decode(&r.encode(), &limits).is_ok());
    r.setup_data = Some(Bytes::from(vec![7; limits.max_setup_data() + 1]));
    rejects_bytes::<Request>(&r.encode(), &limits, "setup_data");

    let close = |n: usize| GracefulClose {
        sender: sender("home"),
        operation: id("o"),
        connection_id: v4(1),
        reason: CloseReason::Requested,
        data: Some(Bytes::from(vec![1; n])),
    };
    assert!(GracefulClose::decode(&close(limits.max_close_data()).encode(), &limits).is_ok());
    rejects_bytes::<GracefulClose>(&close(limits.max_close_data() + 1).encode(), &limits, "data");

    let reject = |n: usize| Reject {
        sender: sender("home"),
        operation: id("o"),
        offer_id: v7(1),
        reason: RejectReason::Saturated,
        description: Some("d".repeat(n)),
    };
    accepts(&reject(1024));
    rejects(&reject(1025), "description");
    let error = |n: usize| OperationError { operation: id("o"), kind: ErrorKind::Internal, message: "m".repeat(n) };
    accepts(&error(4096));
    rejects(&error(4097), "message");
}

#[test]
fn schema_texts_must_be_payload_schemas() {
    let limits = Limits::default();
    assert!(Request::decode(&request_with_input_texts(&[r#""string""#]), &limits).is_ok());
    for (text, needle) in [
        ("nope", "not JSON"),
        (r#""null""#, "null"),
        (r#"{"type":"record","name":"X","namespace":"orbitalis.protocol","fields":[]}"#, "reserved"),
        (r#"{"type":"record","name":"L","fields":[{"name":"n","type":["null","L"]}]}"#, "recursive"),
        (r#"{"type":"record","name":"R","fields":[{"name":"a","type":"Missing"}]}"#, "unknown type"),
    ] {
        rejects_bytes::<Request>(&request_with_input_texts(&[text]), &limits, needle);
    }
}

#[test]
fn a_spec_has_distinct_fingerprints() {
    rejects_bytes::<Request>(
        &request_with_input_texts(&[r#""string""#, r#"{"type":"string"}"#]),
        &Limits::default(),
        "appears twice",
    );
}

#[test]
fn a_spec_holds_sixteen_schemas_within_e_over_8() {
    let texts: Vec<String> = (0..17).map(|k| format!(r#"{{"type":"fixed","name":"F{k}","size":1}}"#)).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert!(Request::decode(&request_with_input_texts(&refs[..16]), &Limits::default()).is_ok());
    rejects_bytes::<Request>(&request_with_input_texts(&refs), &Limits::default(), "too many");

    let limits = small();
    let doc = |k: usize, n: usize| format!(r#"{{"type":"fixed","name":"F{k}","size":1,"doc":"{}"}}"#, "d".repeat(n));
    let one_too_long = doc(0, limits.max_schema_text());
    rejects_bytes::<Request>(&request_with_input_texts(&[&one_too_long]), &limits, "E/16");
    let three: Vec<String> = (0..3).map(|k| doc(k, limits.max_schema_text() - 100)).collect();
    let refs: Vec<&str> = three.iter().map(String::as_str).collect();
    rejects_bytes::<Request>(&request_with_input_texts(&refs), &limits, "E/8");
}

#[test]
fn counts_are_never_negative() {
    let mut info = sample_response();
    info.connections = vec![ConnectionInfo {
        connection_id: v4(1),
        operation: id("o"),
        remote: id("r"),
        state: ConnectionState::Open,
        created_at_us: 0,
        last_use_us: 0,
        in_flight: -1,
        close_initiator: false,
    }];
    rejects(&info, "in_flight");
    let result = OperationResult { operation: id("o"), output: None, handler_time_us: -1 };
    rejects(&result, "handler_time_us");
}

#[test]
fn counters_are_unique() {
    let mut info = sample_response();
    info.counters.insert("aa".into(), 1);
    info.counters.insert("ab".into(), 2);
    rejects_bytes::<IntrospectionResponse>(&patched(&info, b"\x04ab", b"\x04aa"), &Limits::default(), "twice");
}

#[test]
fn nothing_may_follow_the_datum_nor_be_missing() {
    let mut datum = confirm().encode().to_vec();
    datum.push(0);
    rejects_bytes::<Confirm>(&datum, &Limits::default(), "trailing");
    let datum = confirm().encode();
    for cut in 0..datum.len() {
        assert!(Confirm::decode(&datum[..cut], &Limits::default()).is_err(), "cut at {cut}");
    }
}

/// A Reject with the reason written as a raw symbol index.
fn reject_with_reason_index(index: i64) -> Vec<u8> {
    let m = Reject {
        sender: sender("home"),
        operation: id("o"),
        offer_id: v7(1),
        reason: RejectReason::Other,
        description: None,
    };
    let mut datum = m.encode().to_vec();
    datum.truncate(datum.len() - 2); // reason and the null description
    let mut w = Writer::default();
    w.long(index);
    w.index(0);
    datum.extend(w.into_vec());
    datum
}

#[test]
fn unknown_enum_symbols_read_as_other() {
    let limits = Limits::default();
    let known = Reject::decode(&reject_with_reason_index(4), &limits).unwrap();
    assert_eq!(known.reason, RejectReason::Saturated);
    let later = Reject::decode(&reject_with_reason_index(40), &limits).unwrap();
    assert_eq!(later.reason, RejectReason::Other);
    rejects_bytes::<Reject>(&reject_with_reason_index(-1), &limits, "negative");
}

#[test]
fn unknown_fingerprints_are_unexpected_not_invalid() {
    let payload = Payload::new(Fingerprint::from_hex("c70345637248018f").unwrap(), Bytes::from_static(b"\x02a"));
    let e = Control::decode(&payload, &Limits::default()).unwrap_err();
    assert_eq!(e, ProtocolError::UnknownFingerprint(payload.fingerprint));
    assert_eq!(e.counter(), "unexpected_message");
    let bad = Payload::new(MessageKind::Confirm.fingerprint(), Bytes::from_static(b"\x00"));
    assert_eq!(Control::decode(&bad, &Limits::default()).unwrap_err().counter(), "invalid_message");
}

fn sample_response() -> IntrospectionResponse {
    IntrospectionResponse {
        sender: sender("lower"),
        role: Role::Plugin,
        state: OrbiterState::Running,
        protocol_version: 1,
        implementation: "orbitalis-rust/0.1.0".into(),
        started_at_us: 0,
        operations: vec![],
        requirements: vec![],
        connections: vec![],
        pending: vec![],
        peers: vec![],
        counters: Default::default(),
        truncated: false,
    }
}
