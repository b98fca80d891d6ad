//! A fault-injecting wrapper around the in-memory bus: drops, duplicates or delays chosen
//! events, so tests can lose an ack, hold back a Confirm or silence a keepalive. The real
//! bus underneath does everything else.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use orbitalis::Bus;
use orbitalis::busline::{
    CounterSnapshot, Error, Event, LocalBus, Pattern, SubscribeOptions, Subscription, Topic, Transport,
};

/// What happens to one published event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered as usual.
    Deliver,
    /// Lost.
    Drop,
    /// Delivered twice (same id: receivers must absorb it).
    Duplicate,
    /// Delivered after this long.
    Delay(Duration),
}

type Rule = Box<dyn FnMut(&Topic, &Event) -> Verdict + Send>;

/// The in-memory bus with a rule deciding each event's fate.
#[derive(Clone)]
pub struct FaultyBus {
    inner: LocalBus,
    rule: Arc<Mutex<Rule>>,
}

impl std::fmt::Debug for FaultyBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultyBus")
    }
}

impl FaultyBus {
    /// A bus delivering everything until a rule is set.
    pub fn new() -> Self {
        FaultyBus { inner: LocalBus::new(), rule: Arc::new(Mutex::new(Box::new(|_, _| Verdict::Deliver))) }
    }

    /// Replaces the rule.
    pub fn set_rule(&self, rule: impl FnMut(&Topic, &Event) -> Verdict + Send + 'static) {
        *self.rule.lock().unwrap() = Box::new(rule);
    }

    /// Delivers everything again.
    pub fn heal(&self) {
        self.set_rule(|_, _| Verdict::Deliver);
    }

    /// A handle for builders.
    pub fn bus(&self) -> Bus {
        Bus::new(self.clone())
    }
}

/// The kind token of a topic in namespace `ns` (`offer`, `response`, `close-ack`, ...).
pub fn kind_of<'a>(topic: &'a Topic, ns: &str) -> &'a str {
    topic.as_str().strip_prefix(ns).and_then(|t| t.strip_prefix('.')).and_then(|t| t.split('.').next()).unwrap_or("")
}

#[async_trait]
impl Transport for FaultyBus {
    async fn publish(&self, topic: &Topic, event: &Event) -> Result<(), Error> {
        let verdict = (self.rule.lock().unwrap())(topic, event);
        match verdict {
            Verdict::Deliver => self.inner.publish(topic, event).await,
            Verdict::Drop => event.check_size(self.inner.max_envelope_size()).map(|_| ()),
            Verdict::Duplicate => {
                self.inner.publish(topic, event).await?;
                self.inner.publish(topic, event).await
            }
            Verdict::Delay(d) => {
                let (inner, topic, event) = (self.inner.clone(), topic.clone(), event.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    let _ = inner.publish(&topic, &event).await;
                });
                Ok(())
            }
        }
    }

    async fn subscribe_with(&self, pattern: &Pattern, options: SubscribeOptions) -> Result<Subscription, Error> {
        self.inner.subscribe_with(pattern, options).await
    }

    async fn flush(&self) -> Result<(), Error> {
        self.inner.flush().await
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }

    fn counters(&self) -> CounterSnapshot {
        self.inner.counters()
    }

    fn max_envelope_size(&self) -> usize {
        self.inner.max_envelope_size()
    }

    fn subscription_count(&self) -> usize {
        self.inner.subscription_count()
    }
}
