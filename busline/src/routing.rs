//! A token trie from subscription patterns to subscribers, so a publish visits only the
//! subscriptions that can match instead of every one.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::receive::FoldHasher;

/// Subscribers of type `T`, keyed by an id unique per subscription.
#[derive(Debug)]
pub(crate) struct Routes<T> {
    root: Node<T>,
    len: usize,
}

#[derive(Debug)]
struct Node<T> {
    literal: HashMap<Box<str>, Node<T>, BuildHasherDefault<FoldHasher>>,
    star: Option<Box<Node<T>>>,
    /// Subscribers whose pattern ends here with `>`.
    rest: Vec<(u64, T)>,
    /// Subscribers whose pattern ends exactly here.
    here: Vec<(u64, T)>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node { literal: HashMap::default(), star: None, rest: Vec::new(), here: Vec::new() }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.star.is_none() && self.rest.is_empty() && self.here.is_empty()
    }
}

impl<T> Default for Routes<T> {
    fn default() -> Self {
        Routes { root: Node::default(), len: 0 }
    }
}

impl<T> Routes<T> {
    /// Subscriptions held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds subscriber `id` for the (valid) `pattern`.
    pub(crate) fn insert(&mut self, pattern: &str, id: u64, value: T) {
        let mut node = &mut self.root;
        for token in pattern.split('.') {
            match token {
                ">" => {
                    node.rest.push((id, value));
                    self.len += 1;
                    return;
                }
                "*" => node = node.star.get_or_insert_with(Default::default),
                t => node = node.literal.entry(t.into()).or_default(),
            }
        }
        node.here.push((id, value));
        self.len += 1;
    }

    /// Removes subscriber `id` of `pattern`, pruning nodes left empty.
    pub(crate) fn remove(&mut self, pattern: &str, id: u64) -> Option<T> {
        let tokens: Vec<&str> = pattern.split('.').collect();
        let out = Self::remove_in(&mut self.root, &tokens, id);
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    fn remove_in(node: &mut Node<T>, tokens: &[&str], id: u64) -> Option<T> {
        let take = |v: &mut Vec<(u64, T)>| v.iter().position(|(i, _)| *i == id).map(|p| v.swap_remove(p).1);
        match tokens.split_first() {
            None => take(&mut node.here),
            Some((&">", _)) => take(&mut node.rest),
            Some((&"*", rest)) => {
                let child = node.star.as_deref_mut()?;
                let out = Self::remove_in(child, rest, id);
                if child.is_empty() {
                    node.star = None;
                }
                out
            }
            Some((t, rest)) => {
                let child = node.literal.get_mut(*t)?;
                let out = Self::remove_in(child, rest, id);
                if child.is_empty() {
                    node.literal.remove(*t);
                }
                out
            }
        }
    }

    /// Calls `f` on every subscriber whose pattern matches `topic`.
    pub(crate) fn for_each_match(&self, topic: &str, mut f: impl FnMut(&T)) {
        Self::visit(&self.root, topic.split('.'), &mut f);
    }

    fn visit(node: &Node<T>, mut tokens: std::str::Split<'_, char>, f: &mut impl FnMut(&T)) {
        let Some(token) = tokens.next() else {
            node.here.iter().for_each(|(_, v)| f(v));
            return;
        };
        node.rest.iter().for_each(|(_, v)| f(v));
        if let Some(child) = node.literal.get(token) {
            Self::visit(child, tokens.clone(), f);
        }
        if let Some(child) = &node.star {
            Self::visit(child, tokens, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::Pattern;

    fn matches(routes: &Routes<u32>, topic: &str) -> Vec<u32> {
        let mut out = Vec::new();
        routes.for_each_match(topic, |v| out.push(*v));
        out.sort();
        out
    }

    #[test]
    fn trie_agrees_with_pattern_matching() {
        let patterns = ["a.b.c", "a.*.c", "a.>", "*.b.>", ">", "a.b", "*", "a.*", "b.*.*"];
        let topics = ["a", "a.b", "a.b.c", "a.x.c", "b.b.c", "b.x.y", "a.b.c.d", "c"];
        let mut routes = Routes::default();
        for (i, p) in patterns.iter().enumerate() {
            routes.insert(p, i as u64, i as u32);
        }
        for t in topics {
            let want: Vec<u32> = patterns
                .iter()
                .enumerate()
                .filter(|(_, p)| Pattern::new(p).unwrap().matches(t))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(matches(&routes, t), want, "topic {t}");
        }
        for (i, p) in patterns.iter().enumerate() {
            assert_eq!(routes.remove(p, i as u64), Some(i as u32));
        }
        assert_eq!(routes.len(), 0);
        assert!(routes.root.is_empty(), "every node is pruned");
    }
}
