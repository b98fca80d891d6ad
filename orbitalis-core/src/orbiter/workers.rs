//! Bounded worker pools for work an orbiter hands off: a plugin's handler runs and a core's
//! sink runs (PROTOCOL.md Y1, §7.5).
//!
//! A job the orbiter task takes when it turns to its data starts on the task and goes on off
//! it from its first wait. Most handlers and sinks finish at their first poll (they compute a
//! little and publish or store), so a trickle of inputs, and every call waited on in turn, is
//! spared a task hop and a wake-up per job. One that waits (I/O, a timer, `spawn_blocking`)
//! moves to a worker task at once, so it never holds the orbiter task up; only a job that
//! computes for long without awaiting would, which is why such handlers are declared
//! blocking. The jobs the task takes after it in the same turn, from a backlog, start on
//! workers instead, so that under a flood the runs go on beside the orbiter task, on another
//! thread, rather than after it on the same one.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

/// What one pool runs.
pub trait Runs: Send + Sync + 'static {
    /// One piece of work.
    type Job: Send + 'static;
    /// What a run gives back for [`Runs::ran`].
    type Ran: Send + 'static;
    /// Runs `job`.
    fn run(&self, job: Self::Job) -> impl Future<Output = Self::Ran> + Send + '_;
    /// Follows every run a worker ended (queued, started on a worker, or moved to one when
    /// it waited).
    fn ran(&self, ran: Self::Ran) -> impl Future<Output = ()> + Send + '_;
}

/// What [`Workers::submit`] did with a job.
#[derive(Debug)]
pub enum Submitted<J, R> {
    /// It ran to its end on the calling task; [`Runs::ran`] is not called for it.
    Finished(R),
    /// A new worker runs it: from the start, or from its first wait.
    Started,
    /// Every worker is busy: it waits in the queue.
    Queued,
    /// The queue is full: given back.
    Full(J),
}

/// Up to `concurrency` workers taking jobs in arrival order from a queue of `capacity`.
/// Cheap to clone; the queue runs out once every clone is dropped.
pub struct Workers<R: Runs> {
    shared: Arc<Shared<R>>,
}

impl<R: Runs> Clone for Workers<R> {
    fn clone(&self) -> Self {
        Workers { shared: self.shared.clone() }
    }
}

struct Shared<R: Runs> {
    runs: R,
    capacity: usize,
    concurrency: usize,
    state: Mutex<Queue<R::Job>>,
}

/// Under one lock, so that no job is queued just as the last worker leaves: while fewer than
/// `concurrency` workers live, the queue is empty.
struct Queue<J> {
    waiting: VecDeque<J>,
    workers: usize,
}

impl<R: Runs> Shared<R> {
    fn lock(&self) -> MutexGuard<'_, Queue<R::Job>> {
        // Nothing panics under this lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<R: Runs> Workers<R> {
    /// A pool running `runs`' jobs, at most `concurrency` at once (at least one) and
    /// `capacity` waiting.
    pub fn new(runs: R, capacity: usize, concurrency: usize) -> Self {
        let state = Mutex::new(Queue { waiting: VecDeque::new(), workers: 0 });
        Workers { shared: Arc::new(Shared { runs, capacity, concurrency: concurrency.max(1), state }) }
    }

    /// What the pool runs.
    pub fn runs(&self) -> &R {
        &self.shared.runs
    }

    /// How many jobs may wait.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Starts `job` when a worker's place is free, else queues it. With `here`, the job runs
    /// on the calling task up to its first wait; otherwise a new worker runs it from the start.
    ///
    /// Call it from one task only (the orbiter's): while a place is free the queue is empty
    /// and only that task adds to it, so starting at once keeps arrival order.
    pub fn submit(&self, job: R::Job, here: bool) -> Submitted<R::Job, R::Ran> {
        let mut queue = self.shared.lock();
        if queue.workers < self.shared.concurrency {
            drop(queue);
            return self.start(job, here);
        }
        if queue.waiting.len() >= self.shared.capacity {
            return Submitted::Full(job);
        }
        queue.waiting.push_back(job);
        Submitted::Queued
    }

    /// Runs `job` (with `here`, up to its first wait) then hands it to a new worker. The
    /// worker polls it again, which registers the worker's waker (futures register the waker
    /// of their latest poll), so the no-op waker of a first poll here loses no wake-up.
    fn start(&self, job: R::Job, here: bool) -> Submitted<R::Job, R::Ran> {
        let shared = self.shared.clone();
        let run = async move { shared.runs.run(job).await };
        if !here {
            self.spawn(run);
            return Submitted::Started;
        }
        // Pinned where it stays, since a run polled here may go on on a worker.
        let mut first = Box::pin(run);
        if let std::task::Poll::Ready(ran) = first.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return Submitted::Finished(ran);
        }
        self.spawn(first);
        Submitted::Started
    }

    /// A new worker that finishes `first`, then takes queued jobs.
    fn spawn(&self, first: impl Future<Output = R::Ran> + Send + 'static) {
        self.shared.lock().workers += 1;
        tokio::spawn(work(Place { shared: self.shared.clone(), held: true }, first));
    }
}

/// A worker's place in its pool: given back under the pool's lock when the worker finds the
/// queue empty, or when it is dropped otherwise (a panic outside the job, the runtime
/// shutting down), so that a lost worker never keeps its place.
struct Place<R: Runs> {
    shared: Arc<Shared<R>>,
    held: bool,
}

impl<R: Runs> Place<R> {
    /// The next queued job; with `leave`, gives the place back when there is none.
    fn next(&mut self, leave: bool) -> Option<R::Job> {
        let mut queue = self.shared.lock();
        let job = queue.waiting.pop_front();
        if job.is_none() && leave {
            queue.workers -= 1;
            self.held = false;
        }
        job
    }
}

impl<R: Runs> Drop for Place<R> {
    fn drop(&mut self) {
        if self.held {
            self.shared.lock().workers -= 1;
        }
    }
}

/// A worker: finishes `first`, a run that waited, then runs whatever is queued, until the
/// queue stays empty across one yield (so that a stream of jobs a little slower than the runs
/// keeps its workers instead of starting a task per job).
async fn work<R: Runs>(mut place: Place<R>, first: impl Future<Output = R::Ran>) {
    let mut ran = first.await;
    loop {
        place.shared.runs.ran(ran).await;
        let job = match place.next(false) {
            Some(next) => next,
            None => {
                tokio::task::yield_now().await;
                match place.next(true) {
                    Some(next) => next,
                    None => return,
                }
            }
        };
        ran = place.shared.runs.run(job).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use tokio::sync::Notify;

    use super::*;

    /// Jobs that finish at once, or wait for `gate` when they are odd.
    #[derive(Default)]
    struct Record {
        order: Mutex<Vec<u32>>,
        ran: AtomicUsize,
        gate: Notify,
    }

    impl Runs for Record {
        type Job = u32;
        type Ran = u32;

        async fn run(&self, job: u32) -> u32 {
            if job % 2 == 1 {
                self.gate.notified().await;
            }
            self.order.lock().unwrap().push(job);
            job
        }

        async fn ran(&self, _: u32) {
            self.ran.fetch_add(1, SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_finish_here_until_one_waits_then_queue_in_order_behind_it() {
        let pool = Workers::new(Record::default(), 2, 1);
        assert!(matches!(pool.submit(0, true), Submitted::Finished(0)));
        assert!(matches!(pool.submit(2, true), Submitted::Finished(2)));
        assert!(matches!(pool.submit(1, true), Submitted::Started));
        assert!(matches!(pool.submit(4, true), Submitted::Queued));
        assert!(matches!(pool.submit(6, true), Submitted::Queued));
        assert!(matches!(pool.submit(8, true), Submitted::Full(8)));
        let runs = pool.runs();
        tokio::task::yield_now().await;
        assert_eq!(*runs.order.lock().unwrap(), [0, 2], "the waiting job holds the only place");
        runs.gate.notify_one();
        while runs.ran.load(SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*runs.order.lock().unwrap(), [0, 2, 1, 4, 6], "arrival order at concurrency 1");
        // The worker leaves once the queue stays empty; the place is free again.
        while pool.shared.lock().workers > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(pool.submit(10, true), Submitted::Finished(10)));
        assert_eq!(runs.ran.load(SeqCst), 3, "only runs that went on off the calling task are followed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_with_more_behind_it_starts_on_a_worker() {
        let pool = Workers::new(Record::default(), 4, 1);
        assert!(matches!(pool.submit(0, false), Submitted::Started));
        assert!(matches!(pool.submit(2, true), Submitted::Queued), "the worker holds the only place");
        let runs = pool.runs();
        assert!(runs.order.lock().unwrap().is_empty(), "nothing ran on the calling task");
        while runs.ran.load(SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*runs.order.lock().unwrap(), [0, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_jobs_take_at_most_concurrency_places() {
        let pool = Workers::new(Record::default(), 1, 2);
        assert!(matches!(pool.submit(1, true), Submitted::Started));
        assert!(matches!(pool.submit(3, true), Submitted::Started));
        assert!(matches!(pool.submit(5, true), Submitted::Queued));
        assert!(matches!(pool.submit(7, true), Submitted::Full(7)));
        let runs = pool.runs();
        for _ in 0..3 {
            // Each permit wakes one waiting run; the queued one starts after a run ends.
            runs.gate.notify_one();
            tokio::task::yield_now().await;
        }
        while runs.ran.load(SeqCst) < 3 {
            runs.gate.notify_one();
            tokio::task::yield_now().await;
        }
        let mut order = runs.order.lock().unwrap().clone();
        order.sort_unstable();
        assert_eq!(order, [1, 3, 5]);
    }
}
