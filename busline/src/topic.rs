//! Identifiers, topics and subscription patterns (PROTOCOL.md §3), validated at the boundary.
//!
//! A [`Topic`] is where an event is published: `.`-separated tokens of `[A-Za-z0-9_-]`, at
//! most 512 bytes, never a wildcard. A [`Pattern`] is what a subscription matches: a topic
//! whose tokens may also be `*` (exactly one token) or, last, `>` (one or more tokens). The
//! same pattern means the same thing on every transport; the MQTT adapter maps `.`, `*`, `>`
//! to `/`, `+`, `#` one-to-one because no token can hold those characters.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use crate::error::Error;

/// Longest identifier, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 64;
/// Longest namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 128;
/// Most tokens in a namespace.
pub const MAX_NAMESPACE_TOKENS: usize = 4;
/// Longest topic or pattern, in bytes.
pub const MAX_TOPIC_LEN: usize = 512;

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Why `s` is not an identifier, if it is not one.
pub fn identifier_error(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    if b.is_empty() {
        Some("it is empty")
    } else if b.len() > MAX_IDENTIFIER_LEN {
        Some("it is longer than 64 bytes")
    } else if !b[0].is_ascii_alphanumeric() {
        Some("it must start with an ASCII letter or digit ('_' is reserved)")
    } else if let Some(&c) = b.iter().find(|&&c| !is_token_byte(c)) {
        Some(forbidden(c))
    } else {
        None
    }
}

fn forbidden(c: u8) -> &'static str {
    match c {
        b'.' => "it contains '.', the token separator",
        b'*' | b'>' => "it contains a wildcard character",
        b'/' | b'+' | b'#' => "it contains an MQTT topic character",
        b'$' => "it contains '$', reserved by brokers",
        c if c.is_ascii_whitespace() => "it contains whitespace",
        c if c.is_ascii() => "it contains a character outside [A-Za-z0-9_-]",
        _ => "it contains a non-ASCII character",
    }
}

/// The `&str`-like traits of a validated string type with an `as_str`.
macro_rules! str_traits {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self, Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                Self::new(s)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::new(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

/// A validated string type shared by reference count.
macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        str_traits!($name);
    };
}

/// An orbiter, operation or namespace-token name: 1-64 bytes of `[A-Za-z0-9_-]`, starting
/// with a letter or digit. Cheap to clone.
///
/// One of up to [`Identifier::INLINE_LEN`] bytes is held inline, not shared: every event
/// carries its publisher's identifier from the publishing thread to the receiving one, and a
/// shared reference count would make both threads write the same cache line for every event.
/// Longer ones are shared, so that events stay small to move.
#[derive(Clone)]
pub struct Identifier(Repr);

#[derive(Clone)]
enum Repr {
    /// The text, then zeros.
    Inline {
        len: u8,
        bytes: [u8; Identifier::INLINE_LEN],
    },
    Shared(Arc<str>),
}

impl Identifier {
    /// The longest identifier held inline; longer ones share a reference-counted copy.
    pub const INLINE_LEN: usize = 22;

    /// Validates `s` as an identifier.
    pub fn new(s: impl AsRef<str>) -> Result<Self, Error> {
        let s = s.as_ref();
        if let Some(reason) = identifier_error(s) {
            return Err(Error::InvalidIdentifier { value: s.to_owned(), reason });
        }
        Ok(Identifier(if s.len() <= Self::INLINE_LEN {
            let mut bytes = [0; Self::INLINE_LEN];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Repr::Inline { len: s.len() as u8, bytes }
        } else {
            Repr::Shared(Arc::from(s))
        }))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: an inline text is a copy of the validated (ASCII) `&str` it was made
            // from, and nothing changes it afterwards. Checking it again on every read would
            // cost each event's publisher a scan.
            Repr::Inline { len, bytes } => unsafe { std::str::from_utf8_unchecked(&bytes[..usize::from(*len)]) },
            Repr::Shared(s) => s,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared(s) => s.as_bytes(),
        }
    }
}

impl PartialEq for Identifier {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Identifier {}

impl std::hash::Hash for Identifier {
    /// As the text hashes, so maps keyed by identifiers can be searched by `&str`.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for Identifier {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Identifier {
    /// Bytewise, as the text orders.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

str_traits!(Identifier);

string_newtype!(
    /// The first 1-4 tokens of every topic, separating deployments on one broker
    /// (PROTOCOL.md §3.1). Default `orbitalis`.
    Namespace
);

impl Namespace {
    /// Validates `s` as a namespace: 1-4 identifiers joined by `.`, at most 128 bytes.
    pub fn new(s: impl AsRef<str>) -> Result<Self, Error> {
        let s = s.as_ref();
        let err = |reason| Error::InvalidIdentifier { value: s.to_owned(), reason };
        if s.len() > MAX_NAMESPACE_LEN {
            return Err(err("a namespace is at most 128 bytes"));
        }
        let mut n = 0;
        for token in s.split('.') {
            n += 1;
            if let Some(reason) = identifier_error(token) {
                return Err(err(reason));
            }
        }
        if n > MAX_NAMESPACE_TOKENS {
            return Err(err("a namespace has at most 4 tokens"));
        }
        Ok(Namespace(Arc::from(s)))
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace(Arc::from("orbitalis"))
    }
}

fn check_tokens(s: &str, wildcards: bool) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("it is empty");
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err("it is longer than 512 bytes");
    }
    if s.starts_with('$') {
        return Err("topics starting with '$' are reserved by brokers");
    }
    let mut tokens = s.split('.').peekable();
    while let Some(token) = tokens.next() {
        if token.is_empty() {
            return Err("it has an empty token");
        }
        if token == "*" || token == ">" {
            if !wildcards {
                return Err("a publish topic cannot hold a wildcard");
            }
            if token == ">" && tokens.peek().is_some() {
                return Err("'>' must be the last token");
            }
            continue;
        }
        if let Some(&c) = token.as_bytes().iter().find(|&&c| !is_token_byte(c)) {
            return Err(forbidden(c));
        }
    }
    Ok(())
}

string_newtype!(
    /// A concrete topic to publish on. Cheap to clone.
    Topic
);

impl Topic {
    /// Validates `s` as a publish topic.
    pub fn new(s: impl AsRef<str>) -> Result<Self, Error> {
        let s = s.as_ref();
        check_tokens(s, false).map_err(|reason| Error::InvalidTopic { value: s.to_owned(), reason })?;
        Ok(Topic(Arc::from(s)))
    }

    /// Builds a topic from tokens that are each valid, joined with `.`.
    pub fn join<I, S>(tokens: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut s = String::with_capacity(96);
        for (i, t) in tokens.into_iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            s.push_str(t.as_ref());
        }
        Topic::new(s)
    }

    /// The `.`-separated tokens.
    pub fn tokens(&self) -> std::str::Split<'_, char> {
        self.0.split('.')
    }
}

string_newtype!(
    /// A subscription pattern: a topic whose tokens may be `*` or a final `>`.
    Pattern
);

impl Pattern {
    /// Validates `s` as a pattern.
    pub fn new(s: impl AsRef<str>) -> Result<Self, Error> {
        let s = s.as_ref();
        check_tokens(s, true).map_err(|reason| Error::InvalidPattern { value: s.to_owned(), reason })?;
        Ok(Pattern(Arc::from(s)))
    }

    /// Whether `topic` matches, with NATS semantics on every transport.
    pub fn matches(&self, topic: &str) -> bool {
        let mut t = topic.split('.');
        for p in self.0.split('.') {
            match p {
                ">" => return t.next().is_some(),
                "*" => {
                    if t.next().is_none() {
                        return false;
                    }
                }
                p => {
                    if t.next() != Some(p) {
                        return false;
                    }
                }
            }
        }
        t.next().is_none()
    }

    /// The `.`-separated tokens.
    pub fn tokens(&self) -> std::str::Split<'_, char> {
        self.0.split('.')
    }
}

impl From<Topic> for Pattern {
    fn from(t: Topic) -> Self {
        Pattern(t.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_rules() {
        for ok in ["a", "lower", "Lamp-X_2", "0", &"a".repeat(64)] {
            assert!(Identifier::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_all", "-a", "a.b", "a b", "a*", "a>", "a/b", "a+", "a#", "a$", "é", &"a".repeat(65)] {
            let e = Identifier::new(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidIdentifier { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn identifiers_compare_order_and_hash_as_their_text() {
        use std::collections::{BTreeSet, HashSet};
        let (short, long) = ("y".repeat(Identifier::INLINE_LEN), "y".repeat(Identifier::INLINE_LEN + 1));
        let texts = ["b", "a", "ab", "a-1", &"z".repeat(64), "B", &short, &long];
        let ids: Vec<_> = texts.iter().map(|t| Identifier::new(t).unwrap()).collect();
        for (id, text) in ids.iter().zip(texts) {
            assert_eq!(id.as_str(), text);
            assert_eq!(id, &Identifier::new(text).unwrap());
        }
        assert_ne!(ids[1], ids[2], "a prefix is another identifier");
        assert_ne!(ids[6], ids[7], "an inline identifier is not its shared extension");
        assert!(ids[6] < ids[7] && ids[7] < ids[4]);
        assert_eq!(std::mem::size_of::<Identifier>(), 24, "events stay small to move");
        let by_id: Vec<_> = ids.iter().collect::<BTreeSet<_>>().into_iter().map(Identifier::as_str).collect();
        let by_text: Vec<_> = texts.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
        assert_eq!(by_id, by_text);
        let set: HashSet<_> = ids.iter().cloned().collect();
        assert!(texts.iter().all(|t| set.contains(*t)), "a set of identifiers is searched by text");
        assert!(!set.contains("c"));
    }

    #[test]
    fn namespaces_hold_one_to_four_identifiers() {
        assert!(Namespace::new("orbitalis").is_ok());
        assert!(Namespace::new("a.b.c.d").is_ok());
        assert!(Namespace::new("a.b.c.d.e").is_err());
        assert!(Namespace::new("a..b").is_err());
        assert!(Namespace::new("_x").is_err());
        assert_eq!(Namespace::default().as_str(), "orbitalis");
    }

    #[test]
    fn topics_refuse_wildcards_and_bad_tokens() {
        assert!(Topic::new("orbitalis.in.lower.home.lowercase.0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b").is_ok());
        assert!(Topic::new("orbitalis.discover._all.home").is_ok());
        let reasons: Vec<_> = ["", "a..b", ".a", "a.", "a.*", "a.>", "a b", "a.b\t", "$SYS.x", "a/b", &"a".repeat(513)]
            .iter()
            .map(|t| match Topic::new(t) {
                Err(Error::InvalidTopic { reason, .. }) => reason,
                other => panic!("{t:?} gave {other:?}"),
            })
            .collect();
        assert_eq!(reasons[0], "it is empty");
        assert_eq!(reasons[1], "it has an empty token");
        assert_eq!(reasons[4], "a publish topic cannot hold a wildcard");
        assert_eq!(reasons[6], "it contains whitespace");
        assert_eq!(reasons[8], "topics starting with '$' are reserved by brokers");
    }

    #[test]
    fn patterns_match_with_nats_semantics() {
        let p = Pattern::new("ns.in.lower.>").unwrap();
        assert!(p.matches("ns.in.lower.home"));
        assert!(p.matches("ns.in.lower.home.op.id"));
        assert!(!p.matches("ns.in.lower"), "'>' needs at least one token");
        assert!(!p.matches("ns.in.upper.home"));
        let p = Pattern::new("ns.*.lower.*").unwrap();
        assert!(p.matches("ns.offer.lower.x"));
        assert!(!p.matches("ns.offer.lower"));
        assert!(!p.matches("ns.offer.lower.x.y"));
        assert!(!p.matches("ns.offer.upper.x"));
        assert!(Pattern::new("a.>.b").is_err());
        assert!(Pattern::new("a.b*").is_err());
        assert!(Pattern::new("a.>").unwrap().matches("a.b"));
        assert!(Pattern::new(">").unwrap().matches("a"));
    }
}
