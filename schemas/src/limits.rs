//! The size limits of PROTOCOL.md §2.2 and the decoding bound of §5.4.
//!
//! Every limit that scales derives from `E`, the `max_envelope_size` every orbiter of a
//! deployment shares, so that a message that fits one orbiter fits all of them.

use busline::envelope::{DEFAULT_MAX_ENVELOPE_SIZE, check_max_envelope_size};

use crate::Error;

/// Longest `description` of a Reject or an NLA, in bytes.
pub const MAX_DESCRIPTION: usize = 1024;
/// Longest error `message` of an OperationError, in bytes.
pub const MAX_ERROR_MESSAGE: usize = 4096;
/// Most entries in an allowlist or blocklist, and most connection ids in one Keepalive.
pub const MAX_LIST: usize = 1024;
/// Most queries in one Discover, and most operations in one Offer.
pub const MAX_ENTRIES: usize = 256;
/// Most schemas in one schema spec (N_in and N_out included).
pub const MAX_SCHEMAS_PER_SPEC: usize = 16;
/// Most input (or output) alternatives in one query.
pub const MAX_ALTERNATIVES: usize = 16;

/// The limits that follow from one `max_envelope_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    max_envelope_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_envelope_size: DEFAULT_MAX_ENVELOPE_SIZE }
    }
}

impl Limits {
    /// The limits for `max_envelope_size` (64 KiB - 64 MiB).
    pub fn new(max_envelope_size: usize) -> Result<Self, Error> {
        check_max_envelope_size(max_envelope_size).map_err(|e| Error::Limit(e.to_string()))?;
        Ok(Limits { max_envelope_size })
    }

    /// `E`, the largest encoded envelope.
    pub const fn max_envelope_size(&self) -> usize {
        self.max_envelope_size
    }

    /// Longest schema text: E/16.
    pub const fn max_schema_text(&self) -> usize {
        self.max_envelope_size / 16
    }

    /// Most text over all schemas of one spec: E/8.
    pub const fn max_spec_text(&self) -> usize {
        self.max_envelope_size / 8
    }

    /// Largest setup data: E/4.
    pub const fn max_setup_data(&self) -> usize {
        self.max_envelope_size / 4
    }

    /// Largest close data: E/16.
    pub const fn max_close_data(&self) -> usize {
        self.max_envelope_size / 16
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a UTF-8 boundary.
///
/// Senders use it for descriptions and error messages, which §2.2 truncates rather than refuses.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Bounds apache-avro's pre-allocations to `max_envelope_size` bytes for the whole process
/// (PROTOCOL.md §5.4).
///
/// apache-avro keeps the first value it is given for the life of the process, so this fails
/// when another value is already in force: call it once at start, before anything is decoded.
/// Without it, the first decode through [`Message`](crate::Message) fixes the default E
/// (1 MiB), which is still far below apache-avro's own default of 512 MiB.
pub fn init_decoding(max_envelope_size: usize) -> Result<(), Error> {
    let limits = Limits::new(max_envelope_size)?;
    let in_force = apache_avro::util::max_allocation_bytes(limits.max_envelope_size);
    if in_force == max_envelope_size {
        Ok(())
    } else {
        Err(Error::Limit(format!(
            "apache-avro already bounds allocations to {in_force} bytes in this process, not {max_envelope_size}: call init_decoding before the first decode, with the same max_envelope_size on every orbiter of the process"
        )))
    }
}

/// Fixes the default bound when nothing set one: any allocation above E is garbage anyway.
pub(crate) fn ensure_decoding_bound() {
    apache_avro::util::max_allocation_bytes(DEFAULT_MAX_ENVELOPE_SIZE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_limits_follow_e() {
        let l = Limits::default();
        assert_eq!(l.max_envelope_size(), 1 << 20);
        assert_eq!(l.max_schema_text(), 64 << 10);
        assert_eq!(l.max_spec_text(), 128 << 10);
        assert_eq!(l.max_setup_data(), 256 << 10);
        assert_eq!(l.max_close_data(), 64 << 10);
        assert_eq!(Limits::new(64 << 10).unwrap().max_schema_text(), 4096);
        assert!(Limits::new((64 << 10) - 1).is_err());
        assert!(Limits::new((64 << 20) + 1).is_err());
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_utf8("hello", 10), "hello");
        assert_eq!(truncate_utf8("hello", 3), "hel");
        // 'é' is two bytes: cutting inside it drops it whole.
        assert_eq!(truncate_utf8("aé", 2), "a");
        assert_eq!(truncate_utf8("aé", 3), "aé");
        assert_eq!(truncate_utf8("€", 2), "");
    }

    #[test]
    fn decoding_bound_is_set_once() {
        ensure_decoding_bound();
        assert!(init_decoding(DEFAULT_MAX_ENVELOPE_SIZE).is_ok());
        let e = init_decoding(2 << 20).unwrap_err();
        assert!(matches!(e, Error::Limit(_)), "{e}");
        assert!(init_decoding(1).is_err(), "out of range");
    }
}
