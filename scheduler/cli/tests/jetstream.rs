//! `spectree serve --jetstream` on a real 3-node NATS cluster: a writer
//! killed with SIGKILL mid-stream is taken over and the stream continues
//! with nothing acknowledged lost; a follower answers queries from the
//! state the writer's events give; a paused writer that comes back after a
//! takeover is refused. Skips without `nats-server` (see the cluster
//! module), unless `SPECTREE_REQUIRE_NATS` is set.

#[path = "../../log/tests/cluster/mod.rs"]
mod cluster;
mod common;

use std::ffi::OsStr;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cluster::Cluster;
use common::{lines, ready};
use spectree::noun::Noun;
use spectree::stm::RegionMap;
use spectree::{Event, NounState, Processor};

/// As in the serve tests: event `n`'s output is event `n - 1`.
const KERNEL: &str = "[[0 6] [0 2] 0 7]";
const STATE: &str = "[0 0]";

fn serve(url: &str, node: &str, extra: &[&str]) -> Child {
    let mut args = vec!["serve", node, "--jetstream", url, "--kernel", KERNEL];
    args.extend(["--threads", "2", "--snapshot-every", "2000"]);
    args.extend(extra);
    common::spawn(&args.iter().map(OsStr::new).collect::<Vec<_>>())
}

fn event(i: u64) -> u64 {
    7 + i
}

fn number(line: &str) -> u64 {
    line.split(' ').next().unwrap().parse().unwrap()
}

/// Serial execution of events `0..n`: the final state's mug.
fn serial_mug(n: u64) -> u32 {
    let p = Processor::<NounState>::builder(RegionMap::depth(2).unwrap())
        .kernel(KERNEL.parse().unwrap())
        .build_serial();
    let events = (0..n).map(|i| Event::nock(Noun::atom(event(i))));
    p.run(NounState(STATE.parse().unwrap()), events)
        .state
        .0
        .mug()
}

#[test]
fn a_killed_writer_is_taken_over_and_nothing_acknowledged_is_lost() {
    let Some(cluster) = Cluster::start("cli-takeover") else {
        return;
    };
    let url = cluster.config("x").url;
    let first_batch = 30_000u64;
    let more = 50_000u64;
    // The writer: all of the first batch offered, killed mid-stream.
    let mut writer = serve(&url, "takeover", &["--state", STATE, "--group", "128"]);
    let mut stdin = writer.stdin.take().unwrap();
    std::thread::spawn(move || {
        for i in 0..first_batch {
            if writeln!(stdin, "{}", event(i)).is_err() {
                return;
            }
        }
    });
    let outputs = lines(&mut writer);
    let mut seen = 0;
    while seen < 5_000 {
        seen = number(&outputs.recv().unwrap()) + 1;
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    while let Ok(line) = outputs.recv_timeout(Duration::from_millis(200)) {
        seen = number(&line) + 1;
    }
    // A follower meanwhile sees the stream as the writer left it.
    let mut follower = serve(&url, "takeover", &["--follow"]);
    let answers = lines(&mut follower);
    let mut queries = follower.stdin.take().unwrap();
    writeln!(queries, "mug").unwrap();
    let answer = answers.recv().unwrap();
    let applied = number(&answer);
    assert!(
        applied >= seen,
        "acknowledged {seen}, the stream has {applied}"
    );
    assert_eq!(answer, format!("{applied} mug {:#x}", serial_mug(applied)));
    writeln!(queries, "peek 2").unwrap();
    assert_eq!(
        answers.recv().unwrap(),
        format!("{applied} peek 2 {}", event(applied - 1)),
        "the state's head is the last event"
    );
    // Without --take-over a second writer is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_spectree"))
        .args(["serve", "takeover", "--jetstream", &url, "--kernel", KERNEL])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--take-over"));
    // The takeover: catches up, then continues with the rest and 50,000 more.
    let mut next = serve(&url, "takeover", &["--take-over", "--group", "256"]);
    let outputs = lines(&mut next);
    let resume = ready(&mut next);
    assert_eq!(resume, applied);
    let total = first_batch + more;
    let mut stdin = next.stdin.take().unwrap();
    std::thread::spawn(move || {
        for i in resume..total {
            writeln!(stdin, "{}", event(i)).unwrap();
        }
    });
    let mut expected = resume;
    while expected < total {
        let line = outputs.recv().unwrap();
        assert_eq!(number(&line), expected, "outputs in order, none repeated");
        expected += 1;
    }
    assert_eq!(next.wait().unwrap().code(), Some(0));
    // The follower, still running, reaches the same final state.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        writeln!(queries, "mug").unwrap();
        let answer = answers.recv().unwrap();
        if number(&answer) == total {
            assert_eq!(answer, format!("{total} mug {:#x}", serial_mug(total)));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the follower lags: {answer}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(queries);
    assert_eq!(follower.wait().unwrap().code(), Some(0));
}

#[test]
fn a_paused_writer_that_comes_back_after_a_takeover_is_refused() {
    let Some(cluster) = Cluster::start("cli-deposed") else {
        return;
    };
    let url = cluster.config("x").url;
    let mut old = serve(&url, "deposed", &["--state", STATE]);
    let old_outputs = lines(&mut old);
    let mut old_in = old.stdin.take().unwrap();
    writeln!(old_in, "{}", event(0)).unwrap();
    assert_eq!(number(&old_outputs.recv().unwrap()), 0);
    // Pause it, take over, append.
    let pid = old.id().to_string();
    let signal = |s: &str| {
        assert!(Command::new("kill")
            .args([s, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let mut new = serve(&url, "deposed", &["--take-over"]);
    let new_outputs = lines(&mut new);
    let mut new_in = new.stdin.take().unwrap();
    writeln!(new_in, "{}", event(1)).unwrap();
    assert_eq!(number(&new_outputs.recv().unwrap()), 1);
    // The old writer wakes and tries to append: refused, and it stops.
    signal("-CONT");
    writeln!(old_in, "{}", event(99)).unwrap();
    let status = old.wait().unwrap();
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut old.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("deposed"), "{err}");
    assert!(old_outputs
        .recv_timeout(Duration::from_millis(500))
        .is_err());
    drop(new_in);
    assert_eq!(new.wait().unwrap().code(), Some(0));
}
