//! `Schema::parse` on arbitrary text: the schemas of Discover, Offer and Request messages.
//!
//! What parses has a Parsing Canonical Form that is itself a schema with the same
//! fingerprint: peers fingerprint the text they receive, so a form that re-parses to
//! another fingerprint would make two ends disagree about one schema.

#![no_main]

use libfuzzer_sys::fuzz_target;
use orbitalis_schemas::Schema;
use orbitalis_schemas::canonical::parsing_canonical_form;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(schema) = Schema::parse(text) else { return };
    let canonical = schema.canonical();
    assert_eq!(parsing_canonical_form(text).as_deref(), Ok(canonical), "two canonical forms of one text");
    let reparsed = match Schema::parse(canonical) {
        Ok(s) => s,
        Err(e) => panic!("the canonical form {canonical} of {text} does not parse: {e}"),
    };
    assert_eq!(
        reparsed.fingerprint(),
        schema.fingerprint(),
        "the canonical form {canonical} of {text} re-parses as {}",
        reparsed.canonical()
    );
    assert_eq!(reparsed.canonical(), canonical, "the canonical form is not a fixed point");
});
