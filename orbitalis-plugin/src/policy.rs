//! Policies (PROTOCOL.md §1, P1c): who may borrow an operation, and how many at once.

use orbitalis_core::Lists;

/// A plugin operation's policy: an optional strict `maximum` of connections plus pending
/// requests over all cores, and an allowlist **or** a blocklist of cores.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub(crate) maximum: Option<usize>,
    pub(crate) lists: Lists,
    errors: Vec<String>,
}

impl Policy {
    /// No limit, every core admitted.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` cores at once (connections plus pending requests).
    pub fn maximum(mut self, n: usize) -> Self {
        self.maximum = Some(n);
        self
    }

    /// Only these cores (an empty list admits nobody).
    pub fn allowlist<I, S>(ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new().with_lists(ids, Lists::Allow)
    }

    /// Every core but these.
    pub fn blocklist<I, S>(ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new().with_lists(ids, Lists::Block)
    }

    /// Adds an allowlist to this policy (an error at build time if it has a blocklist).
    pub fn allow<I, S>(self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.with_lists(ids, Lists::Allow)
    }

    /// Adds a blocklist to this policy (an error at build time if it has an allowlist).
    pub fn block<I, S>(self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.with_lists(ids, Lists::Block)
    }

    fn with_lists<I, S>(mut self, ids: I, make: fn(Vec<busline::Identifier>) -> Lists) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for id in ids {
            match busline::Identifier::new(id.as_ref()) {
                Ok(i) => list.push(i),
                Err(e) => self.errors.push(e.to_string()),
            }
        }
        if self.lists != Lists::Open {
            self.errors.push("an allowlist and a blocklist cannot be combined".into());
        }
        self.lists = make(list);
        self
    }

    /// Whether `core` is admitted.
    pub fn admits(&self, core: &str) -> bool {
        self.lists.admits(core)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match self.errors.first() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_admit_and_refuse() {
        assert!(Policy::new().admits("x"));
        assert!(Policy::allowlist(["a"]).admits("a") && !Policy::allowlist(["a"]).admits("b"));
        assert!(!Policy::allowlist(Vec::<String>::new()).admits("a"));
        assert!(!Policy::blocklist(["a"]).admits("a") && Policy::blocklist(["a"]).admits("b"));
        assert!(Policy::allowlist(["a"]).block(["b"]).validate().is_err());
        assert!(Policy::allowlist(["not valid"]).validate().is_err());
    }
}
