//! A fixed workload for profilers (callgrind, perf), where criterion's
//! repetitions would get in the way.
//!
//! `cargo run --release -p spectree-benches --example profile -- decrement 1000000`
//! `cargo run --release -p spectree-benches --example profile -- jam|cue|mug 19`

use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use spectree_benches::{balanced_tree, decrement_formula};
use spectree_noun::nock::{nock, Limits};
use spectree_noun::{cue_bytes, jam_bytes, Noun};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("decrement", String::as_str);
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let start = Instant::now();
    match what {
        "decrement" => {
            let product = nock(Noun::atom(n), &decrement_formula(), &Limits::default());
            assert_eq!(product, Ok(Noun::atom(n - 1)));
        }
        "tracked" | "untracked" => {
            let kernel: Noun = format!("[[7 [0 2] {}] 0 3]", spectree_benches::DECREMENT)
                .parse()
                .unwrap();
            let state = spectree_stm::NounState(balanced_tree(1 << 10));
            if what == "tracked" {
                let regions = spectree_stm::RegionMap::depth(4).unwrap();
                let run = spectree_stm::execute_nock(
                    &kernel,
                    &Noun::atom(n),
                    &state,
                    &regions,
                    &spectree_stm::Options::tracked(Limits::default()),
                );
                assert_eq!(run.outcome, Ok(Noun::atom(n - 1)));
            } else {
                let subject = Noun::cell(Noun::atom(n), state.0.clone());
                let product = nock(subject, &kernel, &Limits::default()).unwrap();
                assert!(product.is_cell());
            }
        }
        "jam" | "cue" | "mug" => {
            let tree = balanced_tree(1 << n);
            let built = Instant::now();
            match what {
                "jam" => {
                    let t = Instant::now();
                    let f = tree.fingerprint();
                    println!("fingerprint {f:x} in {:?}", t.elapsed());
                    let t = Instant::now();
                    println!("{} bytes, jam in {:?}", jam_bytes(&tree).len(), t.elapsed());
                }
                "cue" => {
                    let bytes = jam_bytes(&tree);
                    let t = Instant::now();
                    let back = cue_bytes(&bytes).expect("round trip");
                    println!("cue {} bytes in {:?}", bytes.len(), t.elapsed());
                    drop(back);
                }
                _ => println!("mug {:x}", tree.mug()),
            }
            println!("after building: {:?}", built.elapsed());
        }
        other => panic!("unknown workload {other}"),
    }
    println!("{what} {n}: {:?}", start.elapsed());
}
