//! Candidates and targets (PROTOCOL.md §7.1). The orbiter task publishes an [`ExecView`] of
//! its OPEN connections whenever they change; handles read it without a round trip to the
//! task and publish inputs themselves, so executing costs one bus publish per plugin.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use busline::{Fingerprint, Identifier, Topic};
use orbitalis_schemas::SchemaSpec;
use tokio::time::Instant;
use uuid::Uuid;

use super::call::Calls;
use crate::error::{Error, Result};
use crate::orbiter::usage::ConnStats;

/// How `Target::AnyWith` picks one candidate.
#[derive(Clone, Default)]
pub enum Strategy {
    /// A per-operation cursor `c` picks `c mod n`, then moves on. The default.
    #[default]
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// The candidate with the fewest waiting calls; ties round-robin.
    LeastOutstanding,
    /// Your own choice.
    Custom(Arc<dyn Selector>),
}

impl fmt::Debug for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::RoundRobin => f.write_str("RoundRobin"),
            Strategy::Random => f.write_str("Random"),
            Strategy::LeastOutstanding => f.write_str("LeastOutstanding"),
            Strategy::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// A pluggable choice among candidates.
pub trait Selector: Send + Sync + 'static {
    /// The index of the chosen candidate; out-of-range indexes wrap.
    fn select(&self, candidates: &[CandidateInfo]) -> usize;
}

/// What a [`Selector`] sees of a candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CandidateInfo {
    /// The plugin.
    pub plugin: Identifier,
    /// The connection.
    pub connection: Uuid,
    /// Calls waiting on it.
    pub outstanding: usize,
}

/// Which plugins an execution goes to.
#[derive(Clone, Debug, Default)]
pub enum Target {
    /// Every candidate.
    All,
    /// One candidate, round-robin.
    #[default]
    Any,
    /// One candidate, by a strategy.
    AnyWith(Strategy),
    /// That plugin's candidate.
    Plugin(Identifier),
}

impl Target {
    /// Targets one plugin, validating its identifier.
    pub fn plugin(id: impl AsRef<str>) -> Result<Target> {
        Ok(Target::Plugin(Identifier::new(id)?))
    }
}

/// An OPEN connection a handle may send on.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub plugin: Identifier,
    pub id: Uuid,
    pub topic: Topic,
    pub n_in: Arc<SchemaSpec>,
    pub stats: Arc<ConnStats>,
}

/// One required operation's candidates, ordered by plugin identifier.
#[derive(Debug, Default)]
pub(crate) struct OpView {
    pub candidates: Vec<Candidate>,
    pub cursor: Arc<AtomicUsize>,
}

/// What handles need to execute without asking the task.
#[derive(Debug)]
pub(crate) struct ExecView {
    pub running: bool,
    pub epoch: Instant,
    pub ops: HashMap<Identifier, OpView>,
    /// Waiting calls of this run (bounded, §7.5).
    pub calls: Arc<Calls>,
}

impl ExecView {
    pub fn stopped() -> Self {
        ExecView { running: false, epoch: Instant::now(), ops: HashMap::new(), calls: Arc::new(Calls::new(0)) }
    }

    /// The candidates for a value with `fingerprint` (None: no payload) under `target`.
    pub fn select(&self, operation: &str, fingerprint: Option<Fingerprint>, target: &Target) -> Result<Chosen<'_>> {
        if !self.running {
            return Err(Error::NotRunning);
        }
        let op = self.ops.get(operation).ok_or_else(|| not_required(operation))?;
        let plugin = match target {
            Target::Plugin(p) => Some(p),
            _ => None,
        };
        let named = |c: &&Candidate| plugin.is_none_or(|p| p == &c.plugin);
        let fits = |c: &&Candidate| c.n_in.accepts(fingerprint);
        let fitting = || op.candidates.iter().filter(named).filter(fits);
        // A pick by position counts the candidates and takes one, without collecting them.
        let nth = |i: usize| Chosen::One(fitting().nth(i).expect("fewer than counted fit"));
        let all = || Some(fitting().collect::<Vec<_>>()).filter(|all| !all.is_empty());
        let chosen = match target {
            Target::All => all().map(Chosen::All),
            Target::Plugin(_) => fitting().next().map(Chosen::One),
            Target::Any | Target::AnyWith(Strategy::RoundRobin) => {
                let n = fitting().count();
                (n > 0).then(|| nth(next(&op.cursor) % n))
            }
            Target::AnyWith(Strategy::Random) => {
                let n = fitting().count();
                (n > 0).then(|| nth(rand::random_range(0..n)))
            }
            Target::AnyWith(Strategy::LeastOutstanding) => {
                all().map(|all| Chosen::One(least_outstanding(&op.cursor, &all)))
            }
            Target::AnyWith(Strategy::Custom(selector)) => all().map(|all| Chosen::One(custom(&**selector, &all))),
        };
        chosen.ok_or_else(|| {
            let operation = Identifier::new(operation).expect("required operations are identifiers");
            if op.candidates.iter().any(|c| named(&c)) {
                Error::IncompatibleInput(operation)
            } else {
                Error::NoConnection { operation, plugin: plugin.cloned() }
            }
        })
    }

    /// Candidates for a batch: input `i` goes to candidate `i mod n` (§7.1 Distributed).
    pub fn distribute<'a>(
        &'a self,
        operation: &str,
        fingerprints: &[Option<Fingerprint>],
    ) -> Result<Vec<&'a Candidate>> {
        if fingerprints.is_empty() {
            return Err(Error::InvalidArgument("an empty batch: give at least one input".into()));
        }
        let first = fingerprints[0];
        if fingerprints.iter().any(|f| *f != first) {
            return Err(Error::InvalidArgument("a batch mixes schemas: send one type per batch".into()));
        }
        let all = self.select(operation, first, &Target::All)?.into_vec();
        Ok((0..fingerprints.len()).map(|i| all[i % all.len()]).collect())
    }
}

/// The candidates an execution goes to: most often one, chosen without a list.
pub(crate) enum Chosen<'a> {
    One(&'a Candidate),
    All(Vec<&'a Candidate>),
}

impl<'a> Chosen<'a> {
    pub fn into_vec(self) -> Vec<&'a Candidate> {
        match self {
            Chosen::One(c) => vec![c],
            Chosen::All(all) => all,
        }
    }

    /// The one candidate, or the first of all.
    pub fn first(&self) -> &'a Candidate {
        self.as_slice()[0]
    }

    fn as_slice(&self) -> &[&'a Candidate] {
        match self {
            Chosen::One(c) => std::slice::from_ref(c),
            Chosen::All(all) => all,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a Candidate> + '_ {
        self.as_slice().iter().copied()
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }
}

pub(crate) fn not_required(operation: &str) -> Error {
    match Identifier::new(operation) {
        Ok(id) => Error::NotRequired(id),
        Err(e) => Error::Transport(e),
    }
}

/// The next turn of a round robin; taken modulo the number of candidates.
fn next(cursor: &AtomicUsize) -> usize {
    cursor.fetch_add(1, Relaxed)
}

fn round_robin<'a>(cursor: &AtomicUsize, c: &[&'a Candidate]) -> &'a Candidate {
    c[next(cursor) % c.len()]
}

/// The candidates with the fewest waiting calls, round-robin among them.
fn least_outstanding<'a>(cursor: &AtomicUsize, c: &[&'a Candidate]) -> &'a Candidate {
    let least = c.iter().map(|x| x.stats.outstanding.load(Relaxed)).min().unwrap_or(0);
    let tied: Vec<&Candidate> = c.iter().copied().filter(|x| x.stats.outstanding.load(Relaxed) == least).collect();
    round_robin(cursor, &tied)
}

fn custom<'a>(selector: &dyn Selector, c: &[&'a Candidate]) -> &'a Candidate {
    let infos: Vec<CandidateInfo> = c
        .iter()
        .map(|x| CandidateInfo {
            plugin: x.plugin.clone(),
            connection: x.id,
            outstanding: x.stats.outstanding.load(Relaxed),
        })
        .collect();
    c[selector.select(&infos) % c.len()]
}
