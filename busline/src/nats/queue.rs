//! The queue of each NATS subscription, filled without a task of its own.
//!
//! async-nats hands a subscriber's messages over through a channel whose capacity is set once
//! per client, while every subscription of a bus has its own capacity. Whoever takes messages
//! out of that channel (the reader, whenever it polls, or the bus's sweeper, for a reader
//! that did not poll for a whole [`SWEEP_INTERVAL`]) moves all of them at once into the
//! subscription's queue and counts in `dropped` what does not fit. The reader then takes
//! events from the queue. Since the queue only grows between two polls of the reader, the
//! events kept and dropped are exactly those a task moving each message on arrival would have
//! kept and dropped; only the moment a loss is counted differs, by at most two sweep
//! intervals. The reader pays no task hop per event.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::Stream;

use crate::receive::{Counter, Counters, Decoder};
use crate::topic::Pattern;
use crate::transport::Delivery;

/// How often the sweeper empties the client's channels of subscriptions whose reader is away:
/// a bound on how late a loss is counted and on how much waits in the client meanwhile.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_millis(10);

/// Messages one poll of the reader moves at most: a reader outside tokio's cooperative budget
/// still returns during a flood.
const READER_BATCH: usize = 1024;

/// Messages one sweep moves at most per subscription: 1.6 million a second keep up with any
/// flood the client takes in; beyond that the client's own channel overflows, and its losses
/// are counted as slow-consumer events.
const SWEEP_BATCH: usize = 16 * 1024;

/// The live subscriptions of one bus, shared by the bus, each subscription and the sweeper.
#[derive(Default)]
pub(super) struct Registry {
    state: Mutex<Subscriptions>,
}

#[derive(Default)]
struct Subscriptions {
    closed: bool,
    sweeping: bool,
    next_id: u64,
    queues: HashMap<u64, Arc<Queue>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Subscriptions> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new subscription reading `subscriber`; `None` (and the subscriber dropped,
    /// which unsubscribes) once the bus is closed.
    pub(super) fn add(
        self: &Arc<Self>,
        subscriber: async_nats::Subscriber,
        pattern: Pattern,
        capacity: usize,
        max_envelope_size: usize,
        counters: Arc<Counters>,
    ) -> Option<NatsStream> {
        let mut subs = self.lock();
        if subs.closed {
            return None;
        }
        let queue = Arc::new(Queue {
            pattern,
            capacity,
            max_envelope_size,
            counters,
            state: Mutex::new(State {
                subscriber: Some(subscriber),
                events: VecDeque::new(),
                decoder: Decoder::default(),
                reader: None,
                read: false,
            }),
        });
        subs.next_id += 1;
        let id = subs.next_id;
        subs.queues.insert(id, queue.clone());
        if !subs.sweeping {
            subs.sweeping = true;
            // Unconstrained: the cooperative budget would stop it after 128 messages a sweep.
            tokio::spawn(tokio::task::coop::unconstrained(sweep(Arc::downgrade(self))));
        }
        Some(NatsStream { queue, id, registry: self.clone() })
    }

    /// Ends every subscription: what the client holds for them is queued (or counted as
    /// dropped), their server subscriptions end, and their streams end once read.
    pub(super) fn close(&self) {
        let queues = {
            let mut subs = self.lock();
            subs.closed = true;
            std::mem::take(&mut subs.queues)
        };
        for queue in queues.into_values() {
            queue.end();
        }
    }

    pub(super) fn len(&self) -> usize {
        self.lock().queues.len()
    }
}

/// Empties the client's channel of every subscription now and then, so that a reader that
/// stopped reading has its losses counted and the client does not keep what it will lose.
/// Ends when the bus is closed, or gone with all its subscriptions, or has none left.
async fn sweep(registry: Weak<Registry>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(registry) = registry.upgrade() else { return };
        let mut subs = registry.lock();
        if subs.closed || subs.queues.is_empty() {
            subs.sweeping = false;
            return;
        }
        for queue in subs.queues.values() {
            queue.sweep();
        }
    }
}

/// One subscription's queue and the client subscriber that feeds it.
struct Queue {
    pattern: Pattern,
    capacity: usize,
    max_envelope_size: usize,
    counters: Arc<Counters>,
    state: Mutex<State>,
}

struct State {
    /// `None` once the bus was closed or the client ended the subscription.
    subscriber: Option<async_nats::Subscriber>,
    events: VecDeque<Delivery>,
    decoder: Decoder,
    /// The waker of the reader's last unanswered poll, so the sweeper leaves it registered.
    reader: Option<Waker>,
    /// The reader polled since the last sweep: it fills the queue itself.
    read: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves what the client holds, `limit` messages at most, into the queue; registers
    /// `cx`'s waker with the client when it found it empty.
    fn fill(&self, state: &mut State, cx: &mut Context<'_>, limit: usize) {
        let State { subscriber, events, decoder, .. } = state;
        let Some(sub) = subscriber else { return };
        for _ in 0..limit {
            match Pin::new(&mut *sub).poll_next(cx) {
                Poll::Ready(Some(msg)) => {
                    let Some(d) =
                        decoder.decode(msg.subject.as_str(), &msg.payload, self.max_envelope_size, &self.counters)
                    else {
                        continue;
                    };
                    if events.len() < self.capacity {
                        events.push_back(d);
                    } else {
                        self.counters.drop_event(
                            Counter::dropped,
                            &format_args!("the queue of subscription {} is full; event on {}", self.pattern, d.topic),
                        );
                    }
                }
                Poll::Ready(None) => {
                    *subscriber = None;
                    return;
                }
                Poll::Pending => return,
            }
        }
    }

    /// The sweeper's turn: fills the queue unless the reader is at it, or was since the last
    /// sweep (a reader that keeps reading counts its own losses, and contends with nobody).
    fn sweep(&self) {
        let Ok(mut state) = self.state.try_lock() else { return };
        if std::mem::take(&mut state.read) {
            return;
        }
        let waker = state.reader.clone().unwrap_or_else(|| Waker::noop().clone());
        self.fill(&mut state, &mut Context::from_waker(&waker), SWEEP_BATCH);
    }

    fn end(&self) {
        let mut state = self.lock();
        self.fill(&mut state, &mut Context::from_waker(Waker::noop()), SWEEP_BATCH);
        // Dropping the subscriber unsubscribes.
        state.subscriber = None;
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }
}

/// The stream of a NATS subscription; dropping it unsubscribes.
pub(super) struct NatsStream {
    queue: Arc<Queue>,
    id: u64,
    registry: Arc<Registry>,
}

impl Stream for NatsStream {
    type Item = Delivery;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let queue = &self.queue;
        let mut state = queue.lock();
        state.read = true;
        queue.fill(&mut state, cx, READER_BATCH);
        if let Some(d) = state.events.pop_front() {
            return Poll::Ready(Some(d));
        }
        if state.subscriber.is_none() {
            return Poll::Ready(None);
        }
        match &state.reader {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.reader = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for NatsStream {
    fn drop(&mut self) {
        // The sweeper holds queues only under the registry's lock, so the subscriber goes (and
        // unsubscribes) when this stream's reference does.
        self.registry.lock().queues.remove(&self.id);
    }
}
