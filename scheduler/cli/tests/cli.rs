//! The `spectree` binary as a user runs it: output and exit status.

use std::process::{Command, Output};

fn spectree(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spectree"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn noun_jam_cue_mug() {
    let o = spectree(&["noun", "jam", "[1 2 3]"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("0x{:x}", 3_426_417));
    let o = spectree(&["noun", "cue", "0x34.4871"]);
    assert_eq!(stdout(&o), "[1 2 3]");
    let o = spectree(&["noun", "cue", "4657"]);
    assert_eq!(stdout(&o), "[1 2]");
    let o = spectree(&["noun", "mug", "[0 0]"]);
    assert_eq!(stdout(&o), "0x192f5588");
}

#[test]
fn nock_products_and_exit_statuses() {
    let o = spectree(&["nock", "[[4 5] [6 14 15]]", "[0 7]"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "[14 15]");

    let dec = "[8 [1 0] 8 [1 6 [5 [0 7] 4 0 6] [0 6] 9 2 [0 2] [4 0 6] 0 7] 9 2 0 1]";
    let o = spectree(&["nock", "1.000", dec]);
    assert_eq!(stdout(&o), "999");

    // A crash exits 1 with a one-line reason.
    let o = spectree(&["nock", "42", "[4 1 1 2]"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("increment a cell"));

    // Out of fuel exits 3.
    let forever = "[2 [0 1] [0 1]]";
    let o = spectree(&["nock", forever, forever, "--fuel", "1000"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("out of fuel"));

    // Unparseable input exits 2 and names the position.
    let o = spectree(&["nock", "[1 2", "[0 1]"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("SUBJECT") && stderr(&o).contains("byte 4"),
        "{}",
        stderr(&o)
    );
    let o = spectree(&["nock", "1", "[0 x]"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("FORMULA") && stderr(&o).contains("byte 3"));
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["noun", "cue", "[1 2]"][..],
        &["noun", "cue", "0"],
        &["noun", "frob", "1"],
        &["nock", "1"],
        &["nock", "1", "[0 1]", "--fuel", "lots"],
    ] {
        let o = spectree(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
}

#[test]
fn deep_input_on_the_command_line() {
    // 30,000 nested brackets (one argument may hold at most 128 KiB; the
    // noun crate's own tests cover 10^6) parse, evaluate and print.
    let depth = 30_000;
    let text = format!("{}0{}", "[1 ".repeat(depth), "]".repeat(depth));
    let o = spectree(&["nock", &text, "[0 1]"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("[{}0]", "1 ".repeat(depth)));
}

#[test]
fn exponentially_large_products_are_refused_not_printed() {
    // Each [7 f [0 1] 0 1] doubles the product: 2^100 leaves.
    let mut f = String::from("[1 0]");
    for _ in 0..100 {
        f = format!("[7 {f} [0 1] 0 1]");
    }
    let o = spectree(&["nock", "0", &f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("too large to print"), "{}", stderr(&o));
}

#[test]
fn run_compares_serial_and_speculative_and_writes_json() {
    let dir = std::env::temp_dir().join(format!("spectree-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let o = spectree(&[
        "run",
        "--workload",
        "kv",
        "--events",
        "300",
        "--threads",
        "2",
        "--work",
        "1",
        "--faults",
        "0.1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for line in [
        "spectree run: workload kv, 300 events, 2 threads",
        "speedup:",
        "identical:    yes",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "workload",
        "events",
        "threads",
        "serial_secs",
        "parallel_secs",
        "speedup",
        "identical",
        "reexecutions",
        "aborts",
        "cpu_ratio",
        "available_parallelism",
        "capacity",
    ] {
        assert!(report.get(key).is_some(), "{key} missing from {report}");
    }
    assert_eq!(report["identical"], serde_json::Value::Bool(true));
    assert_eq!(report["events"], 300);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_rejects_bad_arguments() {
    for args in [
        &["run", "--workload", "nope"][..],
        &["run", "--threads", "0", "--events", "10"],
        &["run", "--faults", "2"],
        &["run", "--workload", "kv", "--keys", "1", "--per-event", "2"],
        &["run", "--events", "many"],
    ] {
        let o = spectree(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).len() > 10, "{args:?}");
    }
}

#[test]
fn trace_prints_reads_writes_and_regions() {
    // Effects: state axis 6. New state: axis 7 := copy of axis 5.
    let o = spectree(&[
        "trace",
        "--state",
        "[[1 2] 3 4]",
        "--kernel",
        "[[0 14] 10 [7 0 13] 0 3]",
        "--event",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .unwrap_or_else(|| panic!("no {key} line in {text}"))
            .trim()
            .to_string()
    };
    assert_eq!(line("product"), "3");
    assert_eq!(line("reads"), "5 6");
    assert_eq!(line("writes"), "7");
    assert_eq!(line("regions-written"), "3");

    // The gate-call pattern reads the arm only; explicit regions.
    let o = spectree(&[
        "trace",
        "--state",
        "[[4 0 6] 41 [1 2] 3 4]",
        "--kernel",
        "[[7 [0 3] 9 2 10 [6 1 7] 0 1] 0 3]",
        "--event",
        "0",
        "--regions",
        "axes:2,6,7",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("product: 8\n"), "{text}");
    assert!(text.contains("reads: 2\n"), "{text}");
    assert!(text.contains("writes: \n"), "{text}");
    assert!(text.contains("regions-read: 0 1\n"), "{text}");
}

#[test]
fn trace_errors() {
    // A crashing kernel still reports what it read; exit 1.
    let o = spectree(&[
        "trace", "--state", "[1 2]", "--kernel", "[0 28]", "--event", "0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("reads: 12"), "{}", stdout(&o));
    // Out of fuel: exit 3.
    let forever = "[2 [0 1] [0 1]]";
    let o = spectree(&[
        "trace",
        "--state",
        "0",
        "--kernel",
        &format!("[7 [1 {forever}] {forever}]"),
        "--event",
        "0",
        "--fuel",
        "100",
    ]);
    assert_eq!(o.status.code(), Some(3));
    // Bad regions and bad nouns: exit 2.
    for regions in ["depth:x", "depth:40", "axes:2,4", "axes:0", "stripes:3"] {
        let o = spectree(&[
            "trace",
            "--state",
            "0",
            "--kernel",
            "[0 1]",
            "--event",
            "0",
            "--regions",
            regions,
        ]);
        assert_eq!(o.status.code(), Some(2), "{regions}");
    }
    let o = spectree(&[
        "trace", "--state", "[0", "--kernel", "[0 1]", "--event", "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--state"));
}

#[test]
fn compare_prints_a_table_and_fails_on_regressions() {
    use spectree_cli::bench::{BenchReport as Report, Case, Header};
    let report = |spec_secs: [f64; 3]| {
        let case = |engine: &str, threads: usize, runs: [f64; 3]| Case {
            workload: "kv".into(),
            engine: engine.into(),
            threads,
            events: 1000,
            runs_secs: runs.to_vec(),
            median_secs: runs[1],
            min_secs: runs[0],
            max_secs: runs[2],
            events_per_sec: 1000.0 / runs[1],
            speedup: 1.0 / runs[1],
            reexecution_rate: 0.0,
            identical: true,
            commit_overhead_ns_per_event: 0.0,
            amdahl_bound_16: 16.0,
        };
        Report {
            header: Header {
                version: 1,
                git_commit: "0123456789abcdef".into(),
                date: "2026-11-23T00:00:00Z".into(),
                cores: 2,
                cpu_model: "test cpu".into(),
                capacity: 1.9,
                capacity_all: 1.9,
                quick: true,
                repetitions: 3,
            },
            cases: vec![
                case("serial", 1, [0.99, 1.0, 1.01]),
                case("speculative", 2, spec_secs),
            ],
        }
    };
    let dir = std::env::temp_dir().join(format!("spectree-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new, svg) = (
        dir.join("old.json"),
        dir.join("new.json"),
        dir.join("plot.svg"),
    );
    std::fs::write(
        &old,
        serde_json::to_string(&report([0.50, 0.52, 0.54])).unwrap(),
    )
    .unwrap();
    std::fs::write(
        &new,
        serde_json::to_string(&report([0.80, 0.82, 0.84])).unwrap(),
    )
    .unwrap();
    let (o, n, p) = (
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        svg.to_str().unwrap(),
    );
    let ok = spectree(&["compare", o, o, "--fail-above", "5"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("kv speculative@2"));
    let bad = spectree(&["compare", o, n, "--fail-above", "5", "--plot", p]);
    assert_eq!(bad.status.code(), Some(5), "{}", stdout(&bad));
    assert!(stderr(&bad).contains("kv speculative@2"));
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    let missing = spectree(&["compare", o, "/nonexistent/report.json"]);
    assert_eq!(missing.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

fn spectree_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_spectree"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn nouns_come_from_stdin_and_files_and_jam_goes_to_files_as_bytes() {
    let dir = std::env::temp_dir().join(format!("spectree-cli-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Raw jam bytes out, and back.
    let file = dir.join("n.jam");
    let o = spectree(&["noun", "jam", "[1 2 3]", "--out", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&file).unwrap(), vec![0x71, 0x48, 0x34]);
    let o = spectree(&["noun", "cue", "--file", file.to_str().unwrap()]);
    assert_eq!(stdout(&o), "[1 2 3]");
    let o = spectree_with_stdin(&["noun", "cue", "--file", "-"], &[0x71, 0x48, 0x34]);
    assert_eq!(stdout(&o), "[1 2 3]");
    // Noun text from a file (@FILE) and from stdin (-).
    let formula = dir.join("dec.nock");
    std::fs::write(&formula, spectree::noun::nock::DECREMENT).unwrap();
    let at = format!("@{}", formula.display());
    let o = spectree(&["nock", "10", &at]);
    assert_eq!(stdout(&o), "9", "{}", stderr(&o));
    let o = spectree_with_stdin(&["nock", "-", &at], b"20\n");
    assert_eq!(stdout(&o), "19", "{}", stderr(&o));
    // A 10^6-element noun piped in.
    let mut big = String::from("[");
    for _ in 0..1_000_000 {
        big.push_str("1 ");
    }
    big.push_str("0]");
    let o = spectree_with_stdin(&["noun", "mug", "-"], big.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    let expected: spectree::noun::Noun = big.parse().unwrap();
    assert_eq!(stdout(&o), format!("0x{:x}", expected.mug()));
    // Standard input can feed one argument only; a missing file is named.
    let o = spectree_with_stdin(&["nock", "-", "-"], b"1");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already used"), "{}", stderr(&o));
    let o = spectree(&["noun", "mug", "@/nonexistent/file"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/file"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn help_lists_the_exit_statuses() {
    let o = spectree(&["--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for line in [
        "Exit status:",
        "2  unusable input",
        "3  a computation ran out of fuel",
    ] {
        assert!(text.contains(line), "{text}");
    }
}
