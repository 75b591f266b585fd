//! The built-in workloads of spectree, deterministic from a seed, shared by
//! the `spectree` tool, the benches, the tests and the fuzz targets (the
//! harnesses are in the `fuzzing` module, behind the `fuzzing` feature).
//!
//! Invariant: a workload's initial state and its `i`-th event depend only
//! on its [`Params`] and `i`, never on time, threads or what ran before;
//! so two runs of the same workload see the same log.
//!
//! | name | state | events |
//! |---|---|---|
//! | `independent` | noun, 256 leaf regions | event `i` reads and writes leaf `i mod 256`; about 20 µs of work (Rust) |
//! | `arvo` | noun: 16 subsystems of 8 leaves | keystroke (2 subsystems), web request (3), timer (1), read-only query (1); Zipf-skewed subsystems; half Nock, half Rust; about 20 µs |
//! | `hotspot` | noun | every event reads and writes the same leaf; about 20 µs (Rust) |
//! | `tiny` | noun, 1024 leaf regions | one random leaf; about 1 µs (Rust) |
//! | `kv` | map of `keys` keys | reads then writes `per_event` random keys (a `hot` share of picks go to key 0); about 4 µs |
//!
//! With `faults > 0`, that share of events fails instead: a Rust event that
//! panics or returns an error, a Nock event that crashes or runs out of fuel.

#![warn(missing_docs)]
#![deny(missing_debug_implementations)]

mod events;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod plain;
mod rng;

use std::sync::Arc;

use spectree::noun::Noun;
use spectree::stm::{HashRegions, MapKey, MapState, NounState, RegionMap, Regions};
use spectree::{Backend, Event, Processor, ProcessorBuilder};
use thiserror::Error;

pub use events::{
    spin, NockTouch, Touch, INJECTED_FAILURE, ITERS_PER_US, KERNEL, NOCK_ITERS_PER_US,
};
pub use plain::{plain_kv, PlainRun};
pub use rng::Rng;

/// The names of the built-in workloads.
pub const NAMES: [&str; 5] = ["independent", "arvo", "hotspot", "tiny", "kv"];

/// Events a run of workload `name` has by default: 50,000 for
/// `independent` and `hotspot`, 100,000 for `arvo`, 1,000,000 for `tiny`,
/// 10,000 for `kv`.
pub fn default_events(name: &str) -> u64 {
    match name {
        "arvo" => 100_000,
        "tiny" => 1_000_000,
        "kv" => 10_000,
        _ => 50_000,
    }
}

/// A workload's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Number of events.
    pub events: u64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Work per event in microseconds (`None`: the workload's default).
    pub work_us: Option<f64>,
    /// Share of events that fail on purpose (0 to 1).
    pub faults: f64,
    /// `kv`: number of keys.
    pub keys: u64,
    /// `kv`: keys each event reads and writes.
    pub per_event: u64,
    /// `kv`: share of key picks that go to the hot key.
    pub hot: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            events: 10_000,
            seed: 1,
            work_us: None,
            faults: 0.0,
            keys: 1000,
            per_event: 2,
            hot: 0.0,
        }
    }
}

/// Why a workload cannot be built.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// No workload has this name.
    #[error("unknown workload {0:?} (known: independent, arvo, hotspot, tiny, kv)")]
    Unknown(String),
    /// A parameter is out of range.
    #[error("bad workload parameter: {0}")]
    Param(String),
}

/// Why a logged noun is not an event of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not `[0 formula]` or `[1 index]`.
    #[error("not a logged workload event: {0}")]
    Shape(String),
    /// `[1 index]` names an event of the workload that is not a Rust event.
    #[error("event {index} of {workload} is not a Rust event")]
    NotRust {
        /// The workload.
        workload: &'static str,
        /// The index named.
        index: u64,
    },
}

/// Most keys the `kv` workload builds (about 7 s and 0.9 GB per 4 million
/// on the development machine).
pub const MAX_KEYS: u64 = 4_000_000;

/// Work per `kv` event by default, in microseconds.
pub const KV_WORK_US: f64 = 4.0;

/// Most keys one `kv` event touches.
pub const MAX_PER_EVENT: u64 = 1024;

/// A workload over state `S`: its initial state, regions, kernel, fuel and
/// events.
#[derive(Clone)]
pub struct Workload<S: Backend> {
    /// The workload's name.
    pub name: &'static str,
    /// Its parameters.
    pub params: Params,
    /// The initial state.
    pub state: S,
    /// The state's regions.
    pub regions: Arc<dyn Regions<S::Key>>,
    /// The kernel for Nock events.
    pub kernel: Option<Noun>,
    /// Fuel per Nock event the workload needs (its out-of-fuel faults use
    /// more).
    pub fuel: u64,
    generate: Arc<dyn Fn(u64) -> Event<S> + Send + Sync>,
}

impl<S: Backend> std::fmt::Debug for Workload<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl<S: Backend> Workload<S> {
    /// A processor builder set up for this workload: its regions, kernel
    /// and fuel.
    pub fn builder(&self) -> ProcessorBuilder<S> {
        let b = Processor::builder(self.regions.clone()).fuel(self.fuel);
        match &self.kernel {
            Some(k) => b.kernel(k.clone()),
            None => b,
        }
    }

    /// Event `i`.
    pub fn event(&self, i: u64) -> Event<S> {
        (self.generate)(i)
    }

    /// The events, lazily.
    pub fn events(&self) -> impl Iterator<Item = Event<S>> + '_ {
        (0..self.params.events).map(|i| self.event(i))
    }

    /// Event `i` as a noun for the log: a Nock event is `[0 formula]`; a
    /// Rust event (code, which has no noun form) is `[1 i]`, regenerated
    /// from the workload's seed by [`decode`](Self::decode).
    pub fn encode(&self, i: u64, event: &Event<S>) -> Noun {
        match event {
            Event::Nock(f) => Noun::cell(Noun::ZERO, S::nock_noun(f)),
            Event::Rust(_) => Noun::cell(Noun::atom(1), Noun::atom(i)),
        }
    }

    /// What a log written by this workload records as its writer: the
    /// name and every parameter, from which [`AnyWorkload::from_identity`]
    /// rebuilds it.
    pub fn identity(&self) -> String {
        format!("workload {} {}", self.name, self.params.to_text())
    }

    /// The event a logged noun stands for.
    ///
    /// # Errors
    /// [`DecodeError`] when the noun is not one [`encode`](Self::encode)
    /// makes.
    pub fn decode(&self, noun: &Noun) -> Result<Event<S>, DecodeError> {
        let bad = || DecodeError::Shape(short(noun));
        let Noun::Cell(c) = noun else {
            return Err(bad());
        };
        match c.head().as_atom().and_then(|a| a.as_u64()) {
            Some(0) => S::nock_event(c.tail().clone())
                .map(Event::Nock)
                .ok_or_else(bad),
            Some(1) => {
                let i = c
                    .tail()
                    .as_atom()
                    .and_then(|a| a.as_u64())
                    .ok_or_else(bad)?;
                match self.event(i) {
                    e @ Event::Rust(_) => Ok(e),
                    Event::Nock(_) => Err(DecodeError::NotRust {
                        workload: self.name,
                        index: i,
                    }),
                }
            }
            _ => Err(bad()),
        }
    }
}

fn short(n: &Noun) -> String {
    spectree::noun::to_text_within(n, 80).unwrap_or_else(|| "(too large)".into())
}

impl Params {
    /// The parameters as `key=value` words (what [`Params::from_text`]
    /// reads); floats in a form that reads back exactly.
    pub fn to_text(&self) -> String {
        let work = match self.work_us {
            Some(w) => format!("{:e}", w),
            None => "default".into(),
        };
        format!(
            "events={} seed={} work={work} faults={:e} keys={} per-event={} hot={:e}",
            self.events, self.seed, self.faults, self.keys, self.per_event, self.hot
        )
    }

    /// Parameters from [`Params::to_text`]'s form; `None` if it is not that.
    pub fn from_text(text: &str) -> Option<Params> {
        let mut p = Params::default();
        let mut seen = 0;
        for word in text.split(' ') {
            let (k, v) = word.split_once('=')?;
            match k {
                "events" => p.events = v.parse().ok()?,
                "seed" => p.seed = v.parse().ok()?,
                "work" if v == "default" => p.work_us = None,
                "work" => p.work_us = Some(v.parse().ok()?),
                "faults" => p.faults = v.parse().ok()?,
                "keys" => p.keys = v.parse().ok()?,
                "per-event" => p.per_event = v.parse().ok()?,
                "hot" => p.hot = v.parse().ok()?,
                _ => return None,
            }
            seen += 1;
        }
        (seen == 7).then_some(p)
    }
}

/// A workload of either state kind.
#[derive(Clone, Debug)]
pub enum AnyWorkload {
    /// Over a noun state.
    Noun(Workload<NounState>),
    /// Over a map state.
    Map(Workload<MapState>),
}

impl AnyWorkload {
    /// Build the workload called `name`.
    ///
    /// # Errors
    /// [`WorkloadError`] for an unknown name or out-of-range parameters.
    pub fn build(name: &str, params: Params) -> Result<AnyWorkload, WorkloadError> {
        if !(0.0..=1.0).contains(&params.faults) {
            return Err(WorkloadError::Param(format!(
                "faults {} is not in 0..=1",
                params.faults
            )));
        }
        if !(0.0..=1.0).contains(&params.hot) {
            return Err(WorkloadError::Param(format!(
                "hot {} is not in 0..=1",
                params.hot
            )));
        }
        if let Some(w) = params.work_us {
            if !(0.0..=1e6).contains(&w) {
                return Err(WorkloadError::Param(format!(
                    "work {w} µs is not in 0..=1000000"
                )));
            }
        }
        Ok(match name {
            "independent" => AnyWorkload::Noun(leaves("independent", params, 8, 20.0, Pick::Own)),
            "hotspot" => AnyWorkload::Noun(leaves("hotspot", params, 4, 20.0, Pick::Same)),
            "tiny" => AnyWorkload::Noun(leaves("tiny", params, 10, 1.0, Pick::Random)),
            "arvo" => AnyWorkload::Noun(arvo(params)),
            "kv" => AnyWorkload::Map(kv(params)?),
            other => return Err(WorkloadError::Unknown(other.into())),
        })
    }

    /// Rebuild the workload a log's identity names (see
    /// [`Workload::identity`]); `None` if the identity is not a workload's.
    ///
    /// # Errors
    /// [`WorkloadError`] if it names a workload that cannot be built.
    pub fn from_identity(identity: &str) -> Option<Result<AnyWorkload, WorkloadError>> {
        let rest = identity.strip_prefix("workload ")?;
        let (name, params) = rest.split_once(' ')?;
        let params = Params::from_text(params)?;
        Some(AnyWorkload::build(name, params))
    }

    /// The workload's identity (see [`Workload::identity`]).
    pub fn identity(&self) -> String {
        match self {
            AnyWorkload::Noun(w) => w.identity(),
            AnyWorkload::Map(w) => w.identity(),
        }
    }

    /// The workload's name.
    pub fn name(&self) -> &'static str {
        match self {
            AnyWorkload::Noun(w) => w.name,
            AnyWorkload::Map(w) => w.name,
        }
    }
}

/// A balanced noun of `2^depth` leaves, all 0.
fn tree(depth: u32) -> Noun {
    let mut level = Noun::ZERO;
    for _ in 0..depth {
        level = Noun::cell(level.clone(), level);
    }
    level
}

fn leaf(depth: u32, i: u64) -> spectree::noun::Axis {
    spectree::noun::Axis::new((1u64 << depth) + i).expect("nonzero")
}

#[derive(Clone, Copy)]
enum Pick {
    Own,
    Same,
    Random,
}

/// Rust events each touching one leaf of a balanced tree of depth `depth`.
fn leaves(
    name: &'static str,
    params: Params,
    depth: u32,
    work: f64,
    pick: Pick,
) -> Workload<NounState> {
    let work_us = params.work_us.unwrap_or(work);
    let (seed, faults) = (params.seed, params.faults);
    let n = 1u64 << depth;
    Workload {
        name,
        state: NounState(tree(depth)),
        regions: Arc::new(RegionMap::depth(u64::from(depth)).expect("depth <= 16")),
        kernel: Some(KERNEL.parse().expect("kernel parses")),
        fuel: 200_000,
        params,
        generate: Arc::new(move |i| {
            let mut rng = Rng::at(seed, i);
            let at = match pick {
                Pick::Own => i % n,
                Pick::Same => 0,
                Pick::Random => rng.below(n),
            };
            let touch = Touch::rmw(vec![leaf(depth, at)], work_us, rng.next());
            events::with_fault(Event::rust(touch), &mut rng, faults, false)
        }),
    }
}

/// 16 subsystems (axes 16 to 31) of 8 leaves each; regions are the leaves.
fn arvo(params: Params) -> Workload<NounState> {
    let work_us = params.work_us.unwrap_or(20.0);
    let (seed, faults) = (params.seed, params.faults);
    // Zipf(1) over the 16 subsystems.
    let weights: Vec<f64> = (1..=16).map(|r| 1.0 / r as f64).collect();
    Workload {
        name: "arvo",
        state: NounState(tree(7)),
        regions: Arc::new(RegionMap::depth(7).expect("depth <= 16")),
        kernel: Some(KERNEL.parse().expect("kernel parses")),
        fuel: 200_000,
        params,
        generate: Arc::new(move |i| {
            let mut rng = Rng::at(seed, i);
            // keystroke 40%, web request 20%, timer 25%, query 15%
            let (touched, writes) = match rng.below(100) {
                0..40 => (2, true),
                40..60 => (3, true),
                60..85 => (1, true),
                _ => (1, false),
            };
            let mut subsystems: Vec<u64> = Vec::new();
            while (subsystems.len() as u64) < touched {
                let s = rng.weighted(&weights);
                if !subsystems.contains(&s) {
                    subsystems.push(s);
                }
            }
            let axes: Vec<_> = subsystems
                .iter()
                .map(|&s| leaf(7, s * 8 + rng.below(8)))
                .collect();
            let nock = rng.below(2) == 0;
            let event = match (nock, writes) {
                (true, true) => Event::nock(NockTouch::rmw(&axes, work_us).formula()),
                (true, false) => Event::nock(NockTouch::read(&axes, work_us).formula()),
                (false, true) => Event::rust(Touch::rmw(axes, work_us, rng.next())),
                (false, false) => Event::rust(Touch::read(axes, work_us, rng.next())),
            };
            events::with_fault(event, &mut rng, faults, nock)
        }),
    }
}

fn kv(params: Params) -> Result<Workload<MapState>, WorkloadError> {
    if params.keys == 0 || params.per_event == 0 || params.per_event > params.keys {
        return Err(WorkloadError::Param(format!(
            "kv needs 1 <= per-event keys ({}) <= keys ({})",
            params.per_event, params.keys
        )));
    }
    if params.keys > MAX_KEYS {
        return Err(WorkloadError::Param(format!(
            "{} keys is more than {MAX_KEYS} (building the state takes about 2 s per million keys)",
            params.keys
        )));
    }
    if params.per_event > MAX_PER_EVENT {
        return Err(WorkloadError::Param(format!(
            "{} keys per event is more than {MAX_PER_EVENT}",
            params.per_event
        )));
    }
    let work_us = params.work_us.unwrap_or(KV_WORK_US);
    let (seed, faults, keys, per, hot) = (
        params.seed,
        params.faults,
        params.keys,
        params.per_event,
        params.hot,
    );
    let state: MapState = (0..keys)
        .map(|k| (MapKey(Noun::atom(k)), Noun::ZERO))
        .collect();
    Ok(Workload {
        name: "kv",
        state,
        regions: Arc::new(HashRegions(4096)),
        kernel: None,
        fuel: 200_000,
        params,
        generate: Arc::new(move |i| {
            let mut rng = Rng::at(seed, i);
            let picked = pick_keys(&mut rng, keys, per, hot);
            let keys = picked.into_iter().map(|k| MapKey(Noun::atom(k))).collect();
            let touch = Touch::rmw(keys, work_us, rng.next());
            events::with_fault(Event::rust(touch), &mut rng, faults, false)
        }),
    })
}

/// `per` distinct keys of `0..keys` (`per <= keys`), each pick going to
/// key 0 with probability `hot` while key 0 is not yet picked. Always ends:
/// a hot pick after key 0 is taken goes to a uniform key instead, and when
/// most keys are wanted, the rest are chosen by Floyd's algorithm (exactly
/// `per` draws).
pub(crate) fn pick_keys(rng: &mut Rng, keys: u64, per: u64, hot: f64) -> Vec<u64> {
    let mut picked: Vec<u64> = Vec::with_capacity(per as usize);
    let mut seen = Seen::default();
    if per.saturating_mul(2) > keys {
        // Floyd: for j in keys-per..keys, add a uniform t <= j, or j if t
        // is taken.
        for j in keys - per..keys {
            let t = rng.below(j + 1);
            let k = if seen.contains(&t) { j } else { t };
            seen.insert(k);
            picked.push(k);
        }
        return picked;
    }
    while (picked.len() as u64) < per {
        let k = if rng.chance(hot) && !seen.contains(&0) {
            0
        } else {
            rng.below(keys)
        };
        if seen.insert(k) {
            picked.push(k);
        }
    }
    picked
}

/// The keys picked so far: a scan while few (no hashing per event), a set
/// beyond.
#[derive(Default)]
struct Seen {
    few: Vec<u64>,
    many: std::collections::HashSet<u64>,
}

impl Seen {
    const FEW: usize = 16;

    fn contains(&self, k: &u64) -> bool {
        self.few.contains(k) || self.many.contains(k)
    }

    /// Whether `k` was new.
    fn insert(&mut self, k: u64) -> bool {
        if self.contains(&k) {
            return false;
        }
        if self.few.len() < Self::FEW {
            self.few.push(k);
        } else {
            self.many.insert(k);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_picks_end_and_are_distinct_whatever_the_parameters() {
        for (keys, per, hot) in [
            (1000, 2, 1.0),
            (2, 2, 1.0),
            (5, 5, 0.5),
            (1000, 999, 0.0),
            (10, 3, 0.9999),
        ] {
            for i in 0..50 {
                let mut rng = Rng::at(1, i);
                let mut picked = pick_keys(&mut rng, keys, per, hot);
                assert_eq!(picked.len() as u64, per);
                assert!(picked.iter().all(|&k| k < keys));
                picked.sort_unstable();
                picked.dedup();
                assert_eq!(picked.len() as u64, per, "{keys} {per} {hot}");
            }
        }
        // The hot key is picked first whenever the hot share is 1.
        let mut rng = Rng::at(1, 0);
        assert_eq!(pick_keys(&mut rng, 1000, 2, 1.0)[0], 0);
    }

    #[test]
    fn identities_rebuild_their_workload() {
        let w = AnyWorkload::build(
            "kv",
            Params {
                keys: 77,
                ..Params::default()
            },
        )
        .unwrap();
        let back = AnyWorkload::from_identity(&w.identity()).unwrap().unwrap();
        assert_eq!(back.identity(), w.identity());
        assert!(AnyWorkload::from_identity("kernel 0x1234").is_none());
    }
}
