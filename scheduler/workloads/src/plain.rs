//! The `kv` workload as a user would write it without spectree: one loop
//! over a std `HashMap`, the same events (the same key picks, salts and
//! work), the same results. What `spectree run --workload kv` compares its
//! throughput with (`speedup_vs_plain`).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use spectree::noun::Noun;
use spectree::stm::{MapKey, MapState, State};

use crate::events::{iters, spin, ITERS_PER_US};
use crate::{pick_keys, Params, Rng};

/// A plain run's time and its final state's mug (equal to spectree's for
/// the same parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlainRun {
    /// Seconds the loop took (event generation included, as in spectree's
    /// runs; building the map and the mug excluded).
    pub secs: f64,
    /// The final map's mug, computed as [`MapState`]'s.
    pub mug: u32,
}

/// Run `kv` with `params` as a plain loop; `None` when the parameters ask
/// for injected faults (a plain loop has no failing events to compare).
pub fn plain_kv(params: &Params) -> Option<PlainRun> {
    if params.faults > 0.0 {
        return None;
    }
    let work = iters(params.work_us.unwrap_or(crate::KV_WORK_US), ITERS_PER_US);
    let mut map: HashMap<u64, u64> = (0..params.keys).map(|k| (k, 0)).collect();
    let t = Instant::now();
    for i in 0..params.events {
        let mut rng = Rng::at(params.seed, i);
        let keys = pick_keys(&mut rng, params.keys, params.per_event, params.hot);
        let mut acc = rng.next();
        let mut values = Vec::with_capacity(keys.len());
        for k in &keys {
            let v = map.get(k).copied().unwrap_or(0);
            acc = acc.rotate_left(17) ^ v;
            values.push(v);
        }
        acc = spin(work, acc);
        for (k, v) in keys.iter().zip(values) {
            map.insert(*k, v.wrapping_add(acc & 0xffff) & 0xffff_ffff);
        }
        black_box(acc & 0xffff_ffff);
    }
    let secs = t.elapsed().as_secs_f64();
    let state: MapState = map
        .into_iter()
        .map(|(k, v)| (MapKey(Noun::atom(k)), Noun::atom(v)))
        .collect();
    Some(PlainRun {
        secs,
        mug: state.mug(),
    })
}
