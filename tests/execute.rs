//! Executing operations (PROTOCOL.md §7): targets, sinks, awaited calls, plugin-pushed and
//! periodic outputs, setup data and back-pressure.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orbitalis::prelude::*;
use orbitalis::schemas::protocol::{CloseReason, ErrorKind};
use orbitalis::{Bus, Error, Identifier, Limits, Strategy};
use support::*;
use tokio::sync::mpsc;

/// Who ran what: plugin → inputs seen, in order.
type Log = Arc<Mutex<HashMap<String, Vec<i64>>>>;

fn counting(log: &Log) -> Operation {
    let log = log.clone();
    Operation::new("work", move |n: Int64, ctx: OperationContext| {
        let log = log.clone();
        async move {
            log.lock().unwrap().entry(ctx.plugin_id().to_string()).or_default().push(n.0);
            Ok(Int64(n.0 * 10))
        }
    })
}

/// Who ran what, each plugin's inputs sorted (handlers run concurrently).
fn ran(log: &Log) -> Vec<(String, Vec<i64>)> {
    let mut v: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            v.sort();
            (k.clone(), v)
        })
        .collect();
    v.sort();
    v
}

fn total(log: &Log) -> usize {
    log.lock().unwrap().values().map(Vec::len).sum()
}

struct Fleet {
    core: CoreHandle,
    plugins: Vec<PluginHandle>,
    log: Log,
    outputs: mpsc::UnboundedReceiver<(String, i64)>,
}

impl Fleet {
    async fn new(bus: &Bus, ns: &str, n: usize) -> Fleet {
        let log = Log::default();
        let mut plugins = Vec::new();
        for i in 1..=n {
            plugins.push(plugin(bus, ns, &format!("p{i}"), vec![counting(&log)]).await);
        }
        let (tx, outputs) = mpsc::unbounded_channel();
        let sink = Sink::new(move |out: Int64, ctx: SinkContext| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((ctx.plugin.to_string(), out.0));
            }
        });
        let core = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(ns))
            .require("work", Requirement::new().input::<Int64>().output::<Int64>().minimum(n))
            .sink("work", sink)
            .start(())
            .await
            .unwrap();
        within("compliance", core.wait_compliant()).await.unwrap();
        Fleet { core, plugins, log, outputs }
    }

    /// Waits for `n` outputs at the sink.
    async fn outputs(&mut self, n: usize) -> Vec<(String, i64)> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(within("an output at the sink", self.outputs.recv()).await.unwrap());
        }
        v.sort();
        v
    }

    async fn stop(self) {
        self.core.stop().await;
        for p in self.plugins {
            p.stop().await;
        }
    }
}

fn ids(v: &[Identifier]) -> Vec<String> {
    v.iter().map(|i| i.to_string()).collect()
}

on_buses!(targets_with_two_and_three_plugins, calls_and_their_errors, schemas_choose_the_plugins);

async fn targets_with_two_and_three_plugins(bus: Bus, ns: String) {
    for n in [2usize, 3] {
        let ns = format!("{ns}n{n}");
        let mut f = Fleet::new(&bus, &ns, n).await;
        let names: Vec<String> = (1..=n).map(|i| format!("p{i}")).collect();

        // All: every plugin once; each output reaches the sink with its origin.
        let sent = f.core.execute("work", Int64(1), Target::All).await.unwrap();
        assert_eq!(ids(&sent), names);
        let outs = f.outputs(n).await;
        assert_eq!(outs, names.iter().map(|p| (p.clone(), 10)).collect::<Vec<_>>());

        // Any: round-robin in plugin order, 2 rounds.
        let mut order = Vec::new();
        for i in 0..2 * n {
            order.extend(ids(&f.core.execute("work", Int64(100 + i as i64), Target::Any).await.unwrap()));
        }
        let expected: Vec<String> = names.iter().cycle().take(2 * n).cloned().collect();
        assert_eq!(order, expected, "round-robin visits plugins in identifier order");
        f.outputs(2 * n).await;

        // A named plugin, three times.
        for _ in 0..3 {
            let sent = f.core.execute("work", Int64(7), Target::plugin("p2").unwrap()).await.unwrap();
            assert_eq!(ids(&sent), ["p2"]);
        }
        f.outputs(3).await;

        // Distributed: input i to plugin i mod n, each exactly once.
        let batch: Vec<Int64> = (0..2 * n as i64).map(|i| Int64(1000 + i)).collect();
        let sent = f.core.execute_distributed("work", batch).await.unwrap();
        assert_eq!(ids(&sent), expected);
        f.outputs(2 * n).await;

        // Handlers run concurrently, so each plugin's inputs are compared as sets.
        let log = ran(&f.log);
        for (i, (plugin, inputs)) in log.iter().enumerate() {
            let mut want = vec![1];
            want.extend((0..2 * n as i64).filter(|k| *k as usize % n == i).map(|k| 100 + k));
            if plugin == "p2" {
                want.extend([7, 7, 7]);
            }
            want.extend((0..2 * n as i64).filter(|k| *k as usize % n == i).map(|k| 1000 + k));
            let (mut inputs, mut want) = (inputs.clone(), want);
            inputs.sort();
            want.sort();
            assert_eq!(inputs, want, "what {plugin} ran");
        }
        assert_eq!(total(&f.log), n + 2 * n + 3 + 2 * n);

        // Random and least-outstanding pick among the candidates only.
        for s in [Strategy::Random, Strategy::LeastOutstanding] {
            for _ in 0..2 * n {
                let sent = f.core.execute("work", Int64(0), Target::AnyWith(s.clone())).await.unwrap();
                assert!(names.contains(&sent[0].to_string()));
            }
            f.outputs(2 * n).await;
        }
        // Sequential calls leave nothing outstanding, so least-outstanding ties round-robin.
        let mut seen = Vec::new();
        for _ in 0..n {
            let before = ran(&f.log);
            let _: Int64 = f.core.call("work", Int64(5), Target::AnyWith(Strategy::LeastOutstanding)).await.unwrap();
            let after = ran(&f.log);
            seen.extend(after.iter().zip(&before).filter(|(a, b)| a.1.len() > b.1.len()).map(|(a, _)| a.0.clone()));
        }
        seen.sort();
        assert_eq!(seen, names, "each plugin once");

        // call_all and call_distributed answer per plugin and in input order.
        let all: HashMap<Identifier, orbitalis::Result<Int64>> = f.core.call_all("work", Int64(3)).await.unwrap();
        assert_eq!(all.len(), n);
        assert!(all.values().all(|r| r.as_ref().unwrap().0 == 30));
        let batch: Vec<Int64> = (0..5).map(Int64).collect();
        let results: Vec<orbitalis::Result<Int64>> = f.core.call_distributed("work", batch).await.unwrap();
        assert_eq!(results.into_iter().map(|r| r.unwrap().0).collect::<Vec<_>>(), [0, 10, 20, 30, 40]);
        f.stop().await;
    }
}

async fn calls_and_their_errors(bus: Bus, ns: String) {
    let mut f = Fleet::new(&bus, &ns, 2).await;
    let c = &f.core;
    // 1,000 concurrent calls, each answered with its own value: no crossed replies.
    let calls = (0..1000).map(|i| async move {
        let out: Int64 = c
            .call("work", Int64(i), Target::Any)
            .await
            .unwrap_or_else(|e| panic!("call {i}: {e}; core {:?}", c.counters()));
        assert_eq!(out.0, i * 10, "call {i} got another call's reply");
    });
    futures::future::join_all(calls).await;
    assert_eq!(total(&f.log), 1000);
    assert_eq!(c.counters().late_reply, 0);

    // Typed errors, never silent no-ops.
    assert!(matches!(c.execute("nope", Int64(1), Target::Any).await, Err(Error::NotRequired(op)) if op == "nope"));
    assert!(matches!(
        c.execute("work", Int64(1), Target::plugin("p9").unwrap()).await,
        Err(Error::NoConnection { plugin: Some(p), .. }) if p == "p9"
    ));
    assert!(matches!(
        c.execute("work", StringMessage("x".into()), Target::All).await,
        Err(Error::IncompatibleInput(_))
    ));
    assert!(matches!(c.execute_distributed::<Int64>("work", vec![]).await, Err(Error::InvalidArgument(_))));
    assert!(matches!(c.call::<_, Int64>("work", Int64(1), Target::All).await, Err(Error::InvalidArgument(_))));
    let wrong: orbitalis::Result<StringMessage> = c.call("work", Int64(1), Target::Any).await;
    assert!(matches!(wrong, Err(Error::IncompatibleOutput { .. })), "{wrong:?}");
    f.outputs(0).await;
    let core = f.core.clone();
    f.stop().await;
    assert!(matches!(core.execute("work", Int64(1), Target::Any).await, Err(Error::NotRunning)));
}

async fn schemas_choose_the_plugins(bus: Bus, ns: String) {
    let saved: Log = Log::default();
    let ints = {
        let saved = saved.clone();
        Operation::procedure("save", move |n: Int64, _ctx| {
            let saved = saved.clone();
            async move {
                saved.lock().unwrap().entry("ints".into()).or_default().push(n.0);
                Ok(())
            }
        })
    };
    let strs = {
        let saved = saved.clone();
        Operation::procedure("save", move |s: StringMessage, _ctx| {
            let saved = saved.clone();
            async move {
                saved.lock().unwrap().entry("strs".into()).or_default().push(s.0.len() as i64);
                Ok(())
            }
        })
    };
    let pi = plugin(&bus, &ns, "ints", vec![ints]).await;
    let ps = plugin(&bus, &ns, "strs", vec![strs]).await;
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .require("save", Requirement::new().input::<Int64>().input::<StringMessage>().minimum(2))
        .start(())
        .await
        .unwrap();
    within("compliance", c.wait_compliant()).await.unwrap();
    let to_ints = c.execute("save", Int64(42), Target::All).await.unwrap();
    assert_eq!(ids(&to_ints), ["ints"], "only the plugin reading int64 gets an int64");
    let to_strs = c.execute("save", StringMessage("hello".into()), Target::All).await.unwrap();
    assert_eq!(ids(&to_strs), ["strs"]);
    assert!(matches!(
        c.execute("save", Int64(1), Target::plugin("strs").unwrap()).await,
        Err(Error::IncompatibleInput(_))
    ));
    // A procedure's call returns once it ran; its result is empty.
    let _: Empty = c.call("save", Int64(7), Target::Any).await.unwrap();
    eventually("both saves ran", || async { total(&saved) == 3 }).await;
    assert_eq!(ran(&saved), vec![("ints".into(), vec![7, 42]), ("strs".into(), vec![5])]);
    c.stop().await;
    pi.stop().await;
    ps.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_hanging_plugin_times_out_a_late_reply_is_dropped() {
    let (bus, ns) = (local(), ns());
    let slow = Operation::new("work", |n: Int64, _ctx| async move {
        tokio::time::sleep(Duration::from_secs(if n.0 == 0 { 3600 } else { 2 })).await;
        Ok(n)
    });
    let p = plugin(&bus, &ns, "slow", vec![slow]).await;
    let c = work_core(&bus, &ns, |b| b).await;
    let hung: orbitalis::Result<Int64> =
        c.call_with_timeout("work", Int64(0), Target::Any, Duration::from_secs(1)).await;
    assert!(matches!(hung, Err(Error::Timeout { timeout_ms: 1000, .. })), "{hung:?}");
    let late: orbitalis::Result<Int64> =
        c.call_with_timeout("work", Int64(1), Target::Any, Duration::from_secs(1)).await;
    assert!(matches!(late, Err(Error::Timeout { .. })));
    eventually("the late reply", || async { c.counters().late_reply == 1 }).await;
    c.stop().await;
    p.abort();
}

/// A core that crashes (its task aborted) leaves no caller waiting for its timeout.
#[tokio::test(start_paused = true)]
async fn an_aborted_core_fails_its_waiting_calls_at_once() {
    let (bus, ns) = (local(), ns());
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (p, c) = pair(&bus, &ns, hanging(&started), Limits::default(), Limits::default()).await;
    let caller = {
        let c = c.clone();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let r: orbitalis::Result<Int64> =
                c.call_with_timeout("work", Int64(1), Target::Any, Duration::from_secs(3600)).await;
            (r, started.elapsed())
        })
    };
    eventually("the call to reach the plugin", || async { started.load(std::sync::atomic::Ordering::SeqCst) == 1 })
        .await;
    c.abort();
    let (r, waited) = within("the caller", caller).await.unwrap();
    assert!(matches!(r, Err(Error::NotRunning)), "{r:?}");
    assert!(waited < Duration::from_secs(60), "the caller waited {waited:?}");
    p.stop().await;
}

/// A core closing a connection as receiver waits for its calls on it (G2); a caller that
/// gives up ends that wait, long before the graceful-close deadline.
#[tokio::test(start_paused = true)]
async fn a_close_waiting_for_a_call_ends_when_the_caller_gives_up() {
    let (bus, ns) = (local(), ns());
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Both sides wait long for graceful closes, so only the call's end can end this one.
    let patient = Duration::from_secs(600);
    let p = fast(PluginBuilder::new("p").bus(bus.clone()).namespace(&ns))
        .graceful_close_timeout(patient)
        .operation(hanging(&started))
        .start(())
        .await
        .unwrap();
    let c = work_core(&bus, &ns, |b| b.graceful_close_timeout(patient)).await;
    let caller = {
        let c = c.clone();
        tokio::spawn(async move {
            c.call_with_timeout::<_, Int64>("work", Int64(1), Target::Any, Duration::from_secs(3)).await
        })
    };
    eventually("the call to reach the plugin", || async { started.load(std::sync::atomic::Ordering::SeqCst) == 1 })
        .await;
    let t0 = tokio::time::Instant::now();
    let id = p.connections().await[0].id;
    assert!(p.close_connection(id, true, None).await.unwrap());
    eventually("the core to close its side", || async { c.connections().await.is_empty() }).await;
    let r = within("the caller", caller).await.unwrap();
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(10), "the close took {took:?}");
    c.stop().await;
    p.abort();
}

#[tokio::test(start_paused = true)]
async fn a_dying_plugin_fails_its_calls_fast() {
    let (bus, ns) = (local(), ns());
    let hang = Operation::new("work", |n: Int64, _ctx| async move {
        std::future::pending::<()>().await;
        Ok(n)
    });
    let dead = Duration::from_secs(5);
    let p = fast(PluginBuilder::new("mortal").bus(bus.clone()).namespace(&ns)).operation(hang).start(()).await.unwrap();
    let c = work_core(&bus, &ns, |b| b.dead_after(Some(dead)).call_timeout(Duration::from_secs(600))).await;
    let call = {
        let c = c.clone();
        tokio::spawn(async move { c.call::<_, Int64>("work", Int64(1), Target::Any).await })
    };
    eventually("the call to wait", || async { p.counters().connections_opened == 1 }).await;
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    p.abort();
    let result = call.await.unwrap();
    assert!(matches!(result, Err(Error::ConnectionClosed(CloseReason::PeerDead))), "{result:?}");
    assert!(started.elapsed() <= dead + Duration::from_millis(100), "failed after {:?}", started.elapsed());
    c.stop().await;
}

/// A core requiring `work` (int64 → int64) from `op`'s plugin, with bounds.
async fn pair(
    bus: &Bus,
    ns: &str,
    op: Operation,
    plugin_limits: Limits,
    core_limits: Limits,
) -> (PluginHandle, CoreHandle) {
    let p = fast(PluginBuilder::new("p").bus(bus.clone()).namespace(ns))
        .limits(plugin_limits)
        .operation(op)
        .start(())
        .await
        .unwrap();
    (p, work_core(bus, ns, |b| b.limits(core_limits)).await)
}

/// A core needing `work` (int64 in and out), shaped by `f`, started and compliant.
async fn work_core(bus: &Bus, ns: &str, f: impl FnOnce(CoreBuilder) -> CoreBuilder) -> CoreHandle {
    let builder = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(ns))
        .require("work", Requirement::new().input::<Int64>().output::<Int64>());
    let c = f(builder).start(()).await.unwrap();
    within("compliance", c.wait_compliant()).await.unwrap();
    c
}

/// A handler that never returns, counting its starts.
fn hanging(started: &Arc<std::sync::atomic::AtomicUsize>) -> Operation {
    let started = started.clone();
    Operation::new("work", move |n: Int64, _ctx| {
        started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            std::future::pending::<()>().await;
            Ok(n)
        }
    })
}

/// On paused time, returns once every task has run until it waits: nothing is left to do.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn handler_errors_reach_the_caller() {
    let (bus, ns) = (local(), ns());
    let picky = Operation::new("work", |n: Int64, _ctx| async move {
        match n.0 {
            0 => Err(OperationError::new("zero is not allowed")),
            1 => panic!("one makes the handler panic"),
            _ => Ok(n),
        }
    });
    let (p, c) = pair(&bus, &ns, picky, Limits::default(), Limits::default()).await;
    let r: orbitalis::Result<Int64> = c.call("work", Int64(0), Target::Any).await;
    assert!(
        matches!(&r, Err(Error::Remote { kind: ErrorKind::HandlerFailed, message }) if message == "zero is not allowed"),
        "{r:?}"
    );
    let r: orbitalis::Result<Int64> = c.call("work", Int64(1), Target::Any).await;
    assert!(
        matches!(&r, Err(Error::Remote { kind: ErrorKind::HandlerFailed, message }) if message.contains("one makes the handler panic")),
        "{r:?}"
    );
    let r: Int64 = c.call("work", Int64(2), Target::Any).await.unwrap();
    assert_eq!(r.0, 2, "the plugin survived its handler's panic");
    c.execute("work", Int64(0), Target::Any).await.unwrap();
    eventually("the uncalled failure counted", || async { p.counters().handler_errors == 1 }).await;
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_handler_queue_refuses_inputs() {
    let (bus, ns) = (local(), ns());
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let limits = Limits { handler_queue: 1, handler_concurrency: 1, ..Limits::default() };
    let (p, c) = pair(&bus, &ns, hanging(&started), limits, Limits::default()).await;
    // One input runs (and hangs), one waits in the queue of capacity 1.
    c.execute("work", Int64(1), Target::Any).await.unwrap();
    c.execute("work", Int64(2), Target::Any).await.unwrap();
    settle().await;
    assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A third execution is dropped and counted; a call is answered OVERLOADED.
    c.execute("work", Int64(3), Target::Any).await.unwrap();
    eventually("the dropped input counted", || async { p.counters().handler_overflow == 1 }).await;
    let r: orbitalis::Result<Int64> = c.call("work", Int64(4), Target::Any).await;
    assert!(matches!(&r, Err(Error::Remote { kind: ErrorKind::Overloaded, .. })), "{r:?}");
    p.abort();
    c.stop().await;
}

/// At most `handler_concurrency` inputs run at once; the others wait in the queue and start
/// in arrival order as runs end, and the pool takes inputs again after it ran dry.
#[tokio::test(start_paused = true)]
async fn handlers_run_concurrency_at_a_time_in_arrival_order() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let (bus, ns) = (local(), ns());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (starts, running, peak) =
        (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let op = {
        let (gate, starts, running, peak) = (gate.clone(), starts.clone(), running.clone(), peak.clone());
        Operation::new("work", move |n: Int64, _ctx| {
            let (gate, starts, running, peak) = (gate.clone(), starts.clone(), running.clone(), peak.clone());
            async move {
                starts.lock().unwrap().push(n.0);
                peak.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                gate.acquire().await.expect("the gate stays open").forget();
                running.fetch_sub(1, SeqCst);
                Ok(n)
            }
        })
    };
    let limits = Limits { handler_queue: 5, handler_concurrency: 3, ..Limits::default() };
    let (p, c) = pair(&bus, &ns, op, limits, Limits::default()).await;
    for i in 0..8 {
        c.execute("work", Int64(i), Target::Any).await.unwrap();
    }
    settle().await;
    assert_eq!(*starts.lock().unwrap(), [0, 1, 2], "three run, five wait");
    c.execute("work", Int64(8), Target::Any).await.unwrap();
    eventually("the ninth input refused", || async { p.counters().handler_overflow == 1 }).await;

    gate.add_permits(8);
    eventually("every accepted input ran", || async { running.load(SeqCst) == 0 && starts.lock().unwrap().len() == 8 })
        .await;
    assert_eq!(*starts.lock().unwrap(), (0..8).collect::<Vec<_>>(), "queued inputs start in arrival order");
    assert_eq!(peak.load(SeqCst), 3, "never more than three at once");

    gate.add_permits(3);
    for i in 0..3 {
        c.execute("work", Int64(100 + i), Target::Any).await.unwrap();
        eventually("the pool runs inputs again after it ran dry", || async {
            running.load(SeqCst) == 0 && starts.lock().unwrap().len() == 9 + i as usize
        })
        .await;
    }
    assert_eq!(p.counters().handler_overflow, 1);
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn waiting_calls_are_bounded() {
    let (bus, ns) = (local(), ns());
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (p, c) =
        pair(&bus, &ns, hanging(&started), Limits::default(), Limits { max_waiting_calls: 3, ..Limits::default() })
            .await;
    let waiting: Vec<_> = (0..3)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.call::<_, Int64>("work", Int64(i), Target::Any).await })
        })
        .collect();
    eventually("three calls running", || async { started.load(std::sync::atomic::Ordering::SeqCst) == 3 }).await;
    let r: orbitalis::Result<Int64> = c.call("work", Int64(9), Target::Any).await;
    assert!(matches!(r, Err(Error::Overloaded(_))), "the fourth waiting call is refused at once: {r:?}");
    assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 3, "and never sent");
    p.abort();
    c.stop().await;
    for h in waiting {
        let r = h.await.unwrap();
        assert!(matches!(r, Err(Error::ConnectionClosed(_) | Error::NotRunning)), "{r:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn periodic_outputs_reach_the_sink_at_their_rate_from_the_first() {
    let (bus, ns) = (local(), ns());
    let period = Duration::from_secs(1);
    let ticks = Arc::new(Mutex::new(0.0f64));
    let power = {
        let ticks = ticks.clone();
        Operation::periodic("power", period, move || {
            let ticks = ticks.clone();
            async move {
                let mut t = ticks.lock().unwrap();
                *t += 1.0;
                Ok(Float64(*t))
            }
        })
    };
    let p = plugin(&bus, &ns, "meter", vec![power]).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sink = Sink::new(move |v: Float64, _ctx| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((tokio::time::Instant::now(), v.0));
        }
    });
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .require("power", Requirement::new().no_input().output::<Float64>())
        .sink("power", sink)
        .start(())
        .await
        .unwrap();
    let mut events = c.events();
    let opened = wait_event(&mut events, "the connection", |e| matches!(e, OrbiterEvent::ConnectionOpened(_))).await;
    let OrbiterEvent::ConnectionOpened(info) = opened else { unreachable!() };
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(within("a periodic output", rx.recv()).await.unwrap());
    }
    assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), [1.0, 2.0, 3.0, 4.0, 5.0], "none lost, the first included");
    assert!(got[0].0.saturating_duration_since(info.created) < Duration::from_millis(100), "the first comes at once");
    for w in got.windows(2) {
        assert_eq!(w[1].0 - w[0].0, period, "one per period");
    }
    c.stop().await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn setup_data_reaches_the_plugin_and_send_to_all_pushes() {
    let (bus, ns) = (local(), ns());
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let echo = {
        let seen = seen.clone();
        Operation::new("work", move |n: Int64, ctx: OperationContext| {
            let seen = seen.clone();
            async move {
                let data = ctx.setup_data().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                seen.lock().unwrap().push(data);
                Ok(n)
            }
        })
    };
    let p = plugin(&bus, &ns, "p", vec![echo]).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let c = fast(CoreBuilder::new("home").bus(bus.clone()).namespace(&ns))
        .require("work", Requirement::new().input::<Int64>().output::<Int64>().setup_data(&b"cfg-1"[..]))
        .sink(
            "work",
            Sink::new(move |v: Int64, _ctx| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(v.0);
                }
            }),
        )
        .start(())
        .await
        .unwrap();
    within("compliance", c.wait_compliant()).await.unwrap();
    assert_eq!(p.connections().await[0].setup_data.as_deref(), Some(&b"cfg-1"[..]));
    let _: Int64 = c.call("work", Int64(1), Target::Any).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["cfg-1"]);
    assert_eq!(p.send_to_all("work", Int64(99)).await.unwrap(), 1);
    assert_eq!(within("the pushed output", rx.recv()).await, Some(99));
    assert_eq!(p.send_to_all("work", StringMessage("no".into())).await.unwrap(), 0, "outside the negotiated output");
    assert!(matches!(p.send_to_all("nope", Int64(1)).await, Err(Error::UnknownOperation(_))));
    c.stop().await;
    p.stop().await;
}

/// Many callers on many threads, registering calls and answered by the core's task at once:
/// each reply reaches its own call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_on_many_threads_get_every_reply() {
    let (bus, ns) = (local(), ns());
    let echo = Operation::new("work", |n: Int64, _ctx| async move { Ok(n) });
    let limits = Limits { data_queue: 10_000, handler_queue: 10_000, ..Limits::default() };
    let (p, c) = pair(&bus, &ns, echo, limits.clone(), limits).await;
    let callers: Vec<_> = (0..64)
        .map(|k| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in 0..200 {
                    let n = k * 1000 + i;
                    let out: Int64 = c.call("work", Int64(n), Target::Any).await.unwrap();
                    assert_eq!(out.0, n);
                }
            })
        })
        .collect();
    for h in callers {
        h.await.unwrap();
    }
    assert_eq!(c.counters().late_reply, 0);
    c.stop().await;
    p.stop().await;
}

/// A sink that panics or cannot read an output is counted (`sink_errors`) and keeps taking
/// the outputs after it, in order.
#[tokio::test(start_paused = true)]
async fn sink_failures_are_counted_and_the_sink_goes_on() {
    let (bus, ns) = (local(), ns());
    let echo = Operation::new("work", |n: Int64, _ctx| async move { Ok(n) });
    let p = plugin(&bus, &ns, "p", vec![echo]).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sink = Sink::new(move |n: Int64, _ctx| {
        assert_ne!(n.0, 2, "two makes the sink panic");
        let _ = tx.send(n.0);
        std::future::ready(())
    });
    let c = work_core(&bus, &ns, |b| b.sink("work", sink)).await;
    for i in 1..=3 {
        c.execute("work", Int64(i), Target::Any).await.unwrap();
    }
    assert_eq!(within("an output", rx.recv()).await, Some(1));
    assert_eq!(within("the output after the panic", rx.recv()).await, Some(3));
    eventually("the panic counted", || async { c.counters().sink_errors == 1 }).await;
    c.stop().await;
    p.stop().await;
}
