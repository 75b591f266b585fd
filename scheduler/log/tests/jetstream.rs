//! The event log on a real 3-node NATS JetStream cluster (R3) on loopback,
//! started here from the `nats-server` binary: a writer and two followers
//! agree with serial execution; one writer at a time; a server killed
//! mid-run changes nothing.
//!
//! Without `nats-server` on the PATH the tests skip with a message, unless
//! `SPECTREE_REQUIRE_NATS` is set (CI sets it and installs the server).

#![cfg(feature = "jetstream")]

mod cluster;

use cluster::Cluster;
use spectree::noun::Noun;
use spectree::NounState;
use spectree_log::{
    run_logged, Follower, JetStreamConfig, JetStreamLog, LogBackend, LogError, LogPolicy,
};
use spectree_workloads::{AnyWorkload, Params, Workload};

fn arvo(events: u64) -> Workload<NounState> {
    let params = Params {
        events,
        ..Params::default()
    };
    match AnyWorkload::build("arvo", params).unwrap() {
        AnyWorkload::Noun(w) => w,
        AnyWorkload::Map(_) => unreachable!("arvo is a noun workload"),
    }
}

fn open_writer(config: &JetStreamConfig, w: &Workload<NounState>) -> JetStreamLog {
    JetStreamLog::create_or_open(config, &w.identity(), &w.state.0).unwrap()
}

#[test]
fn a_writer_and_two_followers_agree_with_serial_execution() {
    let Some(cluster) = Cluster::start("agree") else {
        return;
    };
    let events = 100_000;
    let w = arvo(events);
    let config = cluster.config("agree");
    let log = open_writer(&config, &w);
    let p = w.builder().threads(2).build().unwrap();
    // Followers start before the writer and follow it live.
    let followers: Vec<_> = (0..2)
        .map(|_| {
            let config = config.clone();
            let w = arvo(events);
            std::thread::spawn(move || {
                let log = JetStreamLog::open(&config).unwrap();
                let p = w.builder().threads(1).build().unwrap();
                let mut f = Follower::start(&p, &log, |n| w.decode(n)).unwrap();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
                while f.catch_up(&p, &log, |n| w.decode(n)).unwrap() < events {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the follower fell behind"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                f.state().0.mug()
            })
        })
        .collect();
    let encoded = (0..events).map(|i| {
        let e = w.event(i);
        (w.encode(i, &e), e)
    });
    let policy = LogPolicy {
        group: 1024,
        snapshot_every: 25_000,
    };
    let (live, _) = run_logged(&p, &log, w.state.clone(), encoded, policy, |_| {}).unwrap();
    let serial = p.serial().run(w.state.clone(), w.events()).state;
    assert_eq!(live, serial);
    for f in followers {
        assert_eq!(f.join().unwrap(), serial.0.mug(), "a follower diverged");
    }
    // A new replica starts from the newest snapshot, not from event 0.
    let late = JetStreamLog::open(&config).unwrap();
    let f = Follower::start(&p, &late, |n| w.decode(n)).unwrap();
    assert_eq!(f.from_snapshot(), 100_000);
    assert_eq!(f.state(), &serial);
}

#[test]
fn two_writers_racing_exactly_one_appends() {
    let Some(cluster) = Cluster::start("race") else {
        return;
    };
    let config = cluster.config("race");
    let first = JetStreamLog::create_or_open(&config, "race test", &Noun::ZERO).unwrap();
    let second = JetStreamLog::create_or_open(&config, "race test", &Noun::ZERO).unwrap();
    let batch = [Noun::atom(1), Noun::atom(2)];
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| first.append(&batch));
        let b = s.spawn(|| second.append(&batch));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (won, lost) = match (a, b) {
        (Ok(n), Err(e)) | (Err(e), Ok(n)) => (n, e),
        other => panic!("exactly one writer must succeed: {other:?}"),
    };
    assert_eq!(won, 0);
    assert!(matches!(lost, LogError::Conflict { .. }), "{lost}");
    assert!(lost.to_string().contains("deposed"), "{lost}");
    // The loser stays deposed until it catches up (a takeover).
    let loser = if first.len() == 2 { &second } else { &first };
    let again = loser.append(&batch).unwrap_err();
    assert!(matches!(again, LogError::Poisoned { .. }), "{again}");
    assert!(again.to_string().contains("deposed"), "{again}");
    assert_eq!(loser.refresh().unwrap(), 2);
    assert_eq!(loser.append(&batch).unwrap(), 2);
    let reader = JetStreamLog::open(&config).unwrap();
    assert_eq!(
        reader.read(0, 10).unwrap(),
        [&batch[..], &batch[..]].concat()
    );
    // A writer that fences the stream deposes the other at once.
    let (winner, fencer) = if first.len() == 4 {
        (&first, &second)
    } else {
        (&second, &first)
    };
    assert_eq!(fencer.refresh().unwrap(), 4);
    fencer.fence().unwrap();
    assert!(matches!(
        winner.append(&batch),
        Err(LogError::Conflict { .. })
    ));
    assert_eq!(fencer.append(&batch).unwrap(), 4);
    let reader = JetStreamLog::open(&config).unwrap();
    assert_eq!(reader.len(), 6);
    assert_eq!(
        reader.read(3, 6).unwrap(),
        [Noun::atom(2), Noun::atom(1), Noun::atom(2)]
    );
    // Another identity, or a missing stream, is a clear error.
    let other = JetStreamLog::create_or_open(&config, "another", &Noun::ZERO).unwrap_err();
    assert!(matches!(other, LogError::OtherWriter { .. }), "{other}");
    let missing = JetStreamLog::open(&cluster.config("nothing-here")).unwrap_err();
    assert!(
        matches!(missing, LogError::StreamMissing { .. }),
        "{missing}"
    );
}

#[test]
fn a_server_killed_mid_run_changes_nothing() {
    let Some(mut cluster) = Cluster::start("kill") else {
        return;
    };
    let events = 30_000;
    let w = arvo(events);
    let config = cluster.config("kill");
    let log = open_writer(&config, &w);
    let p = w.builder().threads(2).build().unwrap();
    let encoded = (0..events).map(|i| {
        let e = w.event(i);
        (w.encode(i, &e), e)
    });
    let policy = LogPolicy {
        group: 256,
        snapshot_every: 10_000,
    };
    let mut killed = false;
    let (live, _) = run_logged(&p, &log, w.state.clone(), encoded, policy, |c| {
        if c.index == events / 3 && !killed {
            cluster.kill(1);
            killed = true;
        }
    })
    .unwrap();
    assert!(killed);
    let serial = p.serial().run(w.state.clone(), w.events()).state;
    assert_eq!(live, serial);
    let reader = JetStreamLog::open(&config).unwrap();
    let f = Follower::start(&p, &reader, |n| w.decode(n)).unwrap();
    assert_eq!(f.applied(), events);
    assert_eq!(f.state(), &serial);
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let port = cluster::free_port();
    let config = JetStreamConfig::new(&format!("nats://127.0.0.1:{port}"), "none");
    let err = JetStreamLog::open(&config).unwrap_err();
    assert!(matches!(err, LogError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("no server answers"), "{err}");
}

#[test]
fn foreign_messages_and_damaged_snapshots_are_named() {
    let Some(cluster) = Cluster::start("damage") else {
        return;
    };
    let config = cluster.config("damage");
    let log = JetStreamLog::create_or_open(&config, "damage test", &Noun::ZERO).unwrap();
    log.append(&[Noun::atom(1), Noun::atom(2)]).unwrap();
    log.write_snapshot(2, &Noun::atom(9)).unwrap();
    // A damaged snapshot (garbage under its name) is skipped and reported;
    // the older one is used.
    let url = config.url.split(',').next().unwrap().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let js = runtime.block_on(async {
        async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap())
    });
    runtime.block_on(async {
        use futures_util::StreamExt;
        let store = js
            .get_object_store("SPECTREE_damage_SNAPSHOTS")
            .await
            .unwrap();
        let mut names = Vec::new();
        let mut list = store.list().await.unwrap();
        while let Some(info) = list.next().await {
            names.push(info.unwrap().name);
        }
        let name = names
            .iter()
            .find(|n| n.ends_with("-2"))
            .expect("snapshot 2");
        store
            .put(name.as_str(), &mut &b"not a snapshot"[..])
            .await
            .unwrap();
    });
    let (found, damaged) = log.latest_snapshot().unwrap();
    assert_eq!(found, Some((0, Noun::ZERO)));
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert!(
        damaged[0].to_string().contains("snapshots record 2"),
        "{}",
        damaged[0]
    );
    // A message that is not a batch, published behind the log's back: the
    // next read past it names it.
    runtime.block_on(async {
        js.publish("spectree.damage.log", "garbage".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    let reader = JetStreamLog::open(&config).unwrap_err();
    assert!(
        matches!(
            reader,
            LogError::Corrupt {
                table: "stream",
                ..
            }
        ),
        "{reader}"
    );
}
