//! Every `.avsc` file parses and reproduces its fingerprint of PROTOCOL.md §4.3, computed with
//! our Parsing Canonical Form.

use std::path::{Path, PathBuf};

use orbitalis_schemas::canonical::{fingerprint, parsing_canonical_form};

const TABLE: [(&str, &str); 16] = [
    ("Discover", "210dcb9562554a60"),
    ("Offer", "2feda6c2fd4b455b"),
    ("Request", "8055bef695ef65f9"),
    ("Reject", "3c10a0a2ca4f9ff0"),
    ("Confirm", "c7239d82283553dc"),
    ("OperationNoLongerAvailable", "f6a9e8fb68fe6612"),
    ("KeepaliveRequest", "547b50c62be243df"),
    ("Keepalive", "4b67a6371c956250"),
    ("GracefulClose", "82b867cc9a08ee26"),
    ("GracelessClose", "4a1213f13fe4efd0"),
    ("CloseAck", "bc5d00b7655fa0dd"),
    ("OperationResult", "3f077d9226967b36"),
    ("OperationError", "043708100be59029"),
    ("IntrospectionRequest", "4028580c614880e6"),
    ("IntrospectionResponse", "a04439814cbcd312"),
    ("Envelope", "be0885fbc314883c"),
];

fn avsc_path(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if name == "Envelope" {
        root.join("../busline/avro/Envelope.avsc")
    } else {
        root.join("avro").join(format!("{name}.avsc"))
    }
}

fn fingerprint_of(name: &str) -> String {
    let path = avsc_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    apache_avro::Schema::parse_str(&text).unwrap_or_else(|e| panic!("apache-avro refuses {name}: {e}"));
    fingerprint(&parsing_canonical_form(&text).unwrap()).to_string()
}

#[test]
fn every_avsc_reproduces_the_protocol_table() {
    let mismatches: Vec<String> = TABLE
        .iter()
        .filter_map(|(name, want)| {
            let got = fingerprint_of(name);
            (got != *want).then(|| format!("{name}: got {got}, want {want}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn every_avsc_file_is_in_the_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("avro");
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    let mut want: Vec<String> =
        TABLE.iter().filter(|(n, _)| *n != "Envelope").map(|(n, _)| format!("{n}.avsc")).collect();
    want.sort();
    assert_eq!(files, want);
}

#[test]
fn logical_types_are_stripped() {
    let pcf = parsing_canonical_form(r#"{"type":"long","logicalType":"timestamp-micros"}"#).unwrap();
    assert_eq!(pcf, r#""long""#);
    assert_eq!(fingerprint(&pcf).to_string(), "b71df49344e154d0");
}
