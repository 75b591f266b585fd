//! The node's lifecycle: open (create or recover), submit, close, reopen;
//! refusals of another kernel, another initial state and a second writer;
//! outputs recomputed from the log equal the ones delivered live.

use std::path::PathBuf;

use spectree::noun::Noun;
use spectree::stm::RegionMap;
use spectree::{Event, NounState, Outcome, Processor};
use spectree_log::{EventLog, LogError, Node, NodeConfig, NodeError};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spectree-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A kernel over a state of 16 counters (a depth-4 tree): event `[k n]`
/// adds `n` to counter `k mod 16`... written as Nock, it replaces the
/// state's head with `[event head]` and returns the old head as effects,
/// so every outcome depends on the order of the events before it.
fn kernel() -> Noun {
    // [effects new-state] = [[0 6] [[0 2] [0 7]]]: effects are the old
    // head of the state, the new state is [event old-tail].
    "[[0 6] [0 2] 0 7]".parse().unwrap()
}

fn config(snapshot_every: u64) -> NodeConfig {
    let mut c = NodeConfig::default();
    c.processor.threads = 2;
    c.log.snapshot_every = snapshot_every;
    c
}

fn open(dir: &std::path::Path, every: u64) -> Result<Node, NodeError> {
    Node::open(
        dir,
        kernel(),
        RegionMap::depth(2).unwrap(),
        Some("[0 0]".parse().unwrap()),
        config(every),
    )
}

fn events(from: u64, to: u64) -> Vec<Noun> {
    (from..to)
        .map(|i| Noun::cell(Noun::atom(i), Noun::atom(i * 3)))
        .collect()
}

/// Serial execution of `events` from the initial state: final state and
/// every outcome.
fn serial(events: &[Noun]) -> (Noun, Vec<Outcome>) {
    let p = Processor::<NounState>::builder(RegionMap::depth(2).unwrap())
        .kernel(kernel())
        .build_serial();
    let mut outcomes = Vec::new();
    let state = p.stream(
        NounState("[0 0]".parse().unwrap()),
        events.iter().cloned().map(Event::nock),
        |c| outcomes.push(c.outcome),
    );
    (state.0, outcomes)
}

#[test]
fn a_node_recovers_what_it_logged_and_continues_the_numbering() {
    let dir = scratch("lifecycle");
    let all = events(0, 700);
    let mut delivered: Vec<(u64, Outcome)> = Vec::new();
    {
        let mut node = open(&dir, 250).unwrap();
        assert_eq!(node.events(), 0);
        for chunk in all[..400].chunks(64) {
            let first = node.submit(chunk.to_vec(), |c| delivered.push((c.index, c.outcome)));
            assert_eq!(first.unwrap() + chunk.len() as u64, node.events());
        }
        // Dropped without close: like a crash after the last append.
    }
    {
        let mut node = open(&dir, 250).unwrap();
        assert_eq!(node.events(), 400);
        // Snapshots are taken after the group that passes the interval.
        assert_eq!(node.recovered_from(), 256, "the newest snapshot");
        assert_eq!(node.state(), &serial(&all[..400]).0);
        node.submit(all[400..].to_vec(), |c| {
            delivered.push((c.index, c.outcome))
        })
        .unwrap();
        node.close().unwrap();
    }
    let node = open(&dir, 250).unwrap();
    assert_eq!(node.recovered_from(), 700, "close wrote a snapshot");
    let (state, outcomes) = serial(&all);
    assert_eq!(node.state(), &state);
    let numbers: Vec<u64> = delivered.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        numbers,
        (0..700).collect::<Vec<_>>(),
        "in log order, once each"
    );
    let live: Vec<Outcome> = delivered.into_iter().map(|(_, o)| o).collect();
    assert_eq!(live, outcomes);
    // Outputs recomputed from the log equal the live ones, from any point
    // (snapshots at 256 and 700 lie on either side of 300).
    let mut again = Vec::new();
    node.replay_outputs(300, |c| again.push((c.index, c.outcome)))
        .unwrap();
    assert_eq!(again.len(), 400);
    assert_eq!(again[0].0, 300);
    assert!(again.iter().all(|(i, o)| *o == outcomes[*i as usize]));
    assert!(matches!(
        node.replay_outputs(701, |_| {}),
        Err(NodeError::Beyond { events: 700, .. })
    ));
    drop(node);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn another_kernel_another_state_or_a_second_writer_is_refused() {
    let dir = scratch("refusals");
    let node = open(&dir, 0).unwrap();
    let second = open(&dir, 0).unwrap_err();
    assert!(
        matches!(second, NodeError::Log(LogError::Locked { .. })),
        "{second}"
    );
    drop(node);
    let other = Node::open(
        &dir,
        "[[0 2] 0 3]".parse().unwrap(),
        RegionMap::depth(2).unwrap(),
        None,
        config(0),
    )
    .unwrap_err();
    assert!(matches!(other, NodeError::OtherKernel { .. }), "{other}");
    assert!(other.to_string().contains("not by this kernel"), "{other}");
    let state = Node::open(
        &dir,
        kernel(),
        RegionMap::depth(2).unwrap(),
        Some(Noun::atom(5)),
        config(0),
    )
    .unwrap_err();
    assert!(matches!(state, NodeError::OtherState { .. }), "{state}");
    // A workload's log is not a node's.
    let wdir = scratch("workload-log");
    drop(EventLog::create(&wdir, "workload tiny", &Noun::ZERO).unwrap());
    let e = open(&wdir, 0).unwrap_err();
    assert!(matches!(e, NodeError::OtherKernel { .. }), "{e}");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&wdir).ok();
}
