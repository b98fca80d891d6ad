//! What a bus remembers per topic it published on lately, so that publishing again on a topic
//! costs one hash lookup instead of the work that value stands for (a trie walk, a subject
//! built for the client).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::receive::FoldHasher;
use crate::topic::Topic;

/// Topics remembered; past it the table starts again empty, which bounds its memory when a
/// program publishes on ever new topics.
pub const RECENT_TOPICS: usize = 1024;

/// A value per recently published topic, at most [`RECENT_TOPICS`] of them.
#[derive(Debug)]
pub(crate) struct Recent<V> {
    table: RwLock<HashMap<Topic, V, BuildHasherDefault<FoldHasher>>>,
}

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Recent { table: RwLock::default() }
    }
}

impl<V> Recent<V> {
    /// `f` of the value remembered for `topic`, or `f` back when there is none.
    pub(crate) fn with<T, R, F>(&self, topic: &Topic, f: F) -> Result<R, F>
    where
        T: ?Sized,
        V: Borrow<T>,
        F: FnOnce(&T) -> R,
    {
        match read(&self.table).get(topic) {
            Some(value) => Ok(f(value.borrow())),
            None => Err(f),
        }
    }

    /// Remembers `value` for `topic`, first forgetting every topic when the table is full.
    pub(crate) fn insert(&self, topic: &Topic, value: V) {
        let mut table = write(&self.table);
        if table.len() >= RECENT_TOPICS {
            table.clear();
        }
        table.insert(topic.clone(), value);
    }

    /// Forgets every topic.
    pub(crate) fn clear(&self) {
        write(&self.table).clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        read(&self.table).len()
    }
}

// A panic while a lock is held leaves the tables consistent (every change is one call), so a
// poisoned lock is used as is.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_topics_up_to_its_bound() {
        let recent = Recent::default();
        let topic = |i: usize| Topic::new(format!("t.{i}")).unwrap();
        for i in 0..RECENT_TOPICS {
            recent.insert(&topic(i), i);
        }
        let value = |t| recent.with(&topic(t), |v: &usize| *v).ok();
        assert_eq!(value(7), Some(7));
        assert_eq!(recent.len(), RECENT_TOPICS);
        recent.insert(&topic(RECENT_TOPICS), RECENT_TOPICS);
        assert_eq!(recent.len(), 1, "a full table starts again empty");
        assert_eq!(value(7), None);
        assert_eq!(value(RECENT_TOPICS), Some(RECENT_TOPICS));
        recent.clear();
        assert_eq!(recent.len(), 0);
    }
}
