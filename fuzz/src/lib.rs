//! Shared by the fuzz targets and the seed generator (`examples/seed.rs`).
//!
//! Each target reads its input in a layout of its own (a selector byte in front of the datum
//! for `control` and `payload`); the layout lives here, next to the valid values the corpora
//! start from, so that the generator writes exactly what the targets parse.

pub mod control;
pub mod payload;
pub mod samples;

/// Bytes from hex text; whitespace is ignored so that PROTOCOL.md's spaced vectors paste as is.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ASCII"), 16).expect("hex digit"))
        .collect()
}
