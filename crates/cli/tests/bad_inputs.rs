//! Bad inputs, as a new user meets them (issue 16). Every input is generated
//! here at test time (nothing third-party is committed), and every test is
//! named after the defect it once had. Each asserts the exit code (0 or 1:
//! never a panic, 101, or an abort), the message, and the accounting.
//!
//! `REFINERY_BIN=/path/to/refinery cargo test -p refinery-cli --test bad_inputs`
//! runs the suite against another build, e.g. an older one, to see the
//! defects there.
//!
//! New readers (Parquet) and new checkpoint kinds (classifiers, quantized,
//! pruned) add their bad inputs here as they land.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{assert_accounting, copy_sample, outputs, sample_dir, stats};

/// The binary under test: this build's, or `$REFINERY_BIN`.
fn bin() -> Command {
    match std::env::var_os("REFINERY_BIN") {
        Some(p) => Command::new(p),
        None => Command::new(env!("CARGO_BIN_EXE_refinery")),
    }
}

/// What one invocation did.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_with(cmd: &mut Command, args: &[&str]) -> Outcome {
    let out = cmd.args(args).output().expect("spawn refinery");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Outcome {
    run_with(&mut bin(), args)
}

/// Succeeds (exit 0).
fn ok(args: &[&str]) -> Outcome {
    let o = run(args);
    assert_eq!(o.code, Some(0), "refinery {args:?}: {}", o.stderr);
    o
}

/// Fails cleanly (exit 1: an error message, not a panic or an abort) with a
/// message containing every `needle`.
fn fails(args: &[&str], needles: &[&str]) -> Outcome {
    let o = run(args);
    assert_eq!(
        o.code,
        Some(1),
        "refinery {args:?} should fail with exit 1\nstderr: {}\nstdout: {}",
        o.stderr,
        o.stdout
    );
    for n in needles {
        assert!(
            o.stderr.contains(n),
            "refinery {args:?}: {n:?} not in\n{}",
            o.stderr
        );
    }
    o
}

/// [`ok`] for a run right after this process released a lock: a child that another test
/// thread is spawning holds a copy of the lock's file descriptor between its fork and its
/// exec (close-on-exec), so the lock can stay held for that moment. Retries for up to 5 s
/// while the refusal names this process.
fn ok_once_released(args: &[&str]) -> Outcome {
    let me = format!("pid {}", std::process::id());
    for _ in 0..50 {
        let o = run(args);
        if o.code == Some(1) && o.stderr.contains("in use") && o.stderr.contains(&me) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(o.code, Some(0), "refinery {args:?}: {}", o.stderr);
        return o;
    }
    panic!("refinery {args:?}: the lock this process released stayed held for 5 s");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Deterministic pseudo-random bytes (xorshift64).
fn random_bytes(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// `copies` copies of the sample crawl (WARC + JSONL) under distinct names.
fn sample_input(dir: &Path, copies: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let warc = std::fs::read(sample_dir().join("sample.warc.gz")).unwrap();
    let jsonl = std::fs::read(sample_dir().join("sample.jsonl")).unwrap();
    for i in 0..copies {
        std::fs::write(dir.join(format!("c{i:03}.warc.gz")), &warc).unwrap();
        std::fs::write(dir.join(format!("c{i:03}.jsonl")), &jsonl).unwrap();
    }
}

fn run_args<'a>(input: &'a str, out: &'a str, tasks: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--preset",
        "default",
        "-i",
        input,
        "-o",
        out,
        "--tasks",
        tasks,
        "--workers",
        "2",
        "--rejects",
        "-q",
    ]
}

// ---------------------------------------------------------------- 1. writers

#[test]
fn concurrent_writers_are_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample(&input);
    let out = dir.path().join("out");
    let (i, o) = (s(&input), s(&out));
    let me = format!("pid {}", std::process::id());

    // This process holds the directory, as a running job would.
    let held = refinery_corpus::lock::lock_output(&out, None).unwrap();
    fails(&run_args(i, o, "2"), &[o, &me, "host ", "in use"]);
    fails(
        &[
            "run", "--preset", "default", "-i", i, "-o", o, "--tasks", "2", "--task", "1",
        ],
        &[&me],
    );
    fails(&["dedup", "minhash", "-i", i, "-o", o], &[&me]);
    fails(
        &["tokenize", "--tokenizer", "no-such.json", i, "-o", o],
        &[&me],
    );
    let mixture = dir.path().join("mix.toml");
    std::fs::write(
        &mixture,
        format!("[[sources]]\nname = \"a\"\npaths = [{i:?}]\nweight = 1.0\n"),
    )
    .unwrap();
    fails(&["mix", s(&mixture), "-o", o, "-q"], &[&me]);
    fails(
        &[
            "pretrain", "--preset", "gpt-tiny", "--data", i, "--out", o, "--quiet",
        ],
        &[&me],
    );
    assert!(!out.join("stats.json").exists(), "nothing ran");
    drop(held);

    // Ranks lock per rank: another rank runs, the same rank or a whole run does not.
    let rank0 = refinery_corpus::lock::lock_output(&out, Some(0)).unwrap();
    let mut rank1 = run_args(i, o, "2");
    rank1.extend(["--task", "1"]);
    ok(&rank1);
    let mut again0 = run_args(i, o, "2");
    again0.extend(["--task", "0"]);
    fails(&again0, &["rank 0", &me]);
    fails(&run_args(i, o, "2"), &["rank 0", &me]);
    drop(rank0);
    ok_once_released(&again0);
    assert_accounting(&stats(&out));
}

#[test]
fn two_runs_into_one_directory_the_second_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let out = dir.path().join("out");
    let (i, o) = (s(&input), s(&out));
    // Grow the input until the second run starts while the first one still runs.
    let mut copies = 8;
    let mut refused = None;
    for _ in 0..5 {
        let _ = std::fs::remove_dir_all(&input);
        let _ = std::fs::remove_dir_all(&out);
        sample_input(&input, copies);
        let mut first: Child = bin().args(run_args(i, o, "8")).spawn().unwrap();
        let pid = format!("\"pid\":{}", first.id());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5)
            && first.try_wait().unwrap().is_none()
            && !std::fs::read_to_string(out.join(".refinery-lock")).is_ok_and(|t| t.contains(&pid))
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let second = run(&run_args(i, o, "8"));
        let first_running = first.try_wait().unwrap().is_none();
        let status = first.wait().unwrap();
        assert!(status.success(), "the first run must finish");
        if second.code == Some(1) {
            refused = Some((second, first.id()));
            break;
        }
        assert!(
            !first_running,
            "a second run succeeded while the first was still writing:\n{}",
            second.stderr
        );
        copies *= 2;
    }
    let (second, pid) = refused.expect("could not start the second run during the first");
    assert!(
        second.stderr.contains(&format!("pid {pid}")) && second.stderr.contains("in use"),
        "{}",
        second.stderr
    );
    // The first run's output is whole; a rerun finds it complete and valid.
    assert_accounting(&stats(&out));
    let rerun = ok(&run_args(i, o, "8"));
    assert!(!rerun.stderr.contains("redone"), "{}", rerun.stderr);
}

#[test]
fn resume_redoes_a_completed_task_whose_shard_is_missing_or_cut() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    sample_input(&input, 2);
    let out = dir.path().join("out");
    let (i, o) = (s(&input), s(&out));
    ok(&run_args(i, o, "2"));
    let reference = outputs(&out);

    // A shard and stats.json deleted from a finished run.
    std::fs::remove_file(out.join("data/00001_00000.jsonl.zst")).unwrap();
    std::fs::remove_file(out.join("stats.json")).unwrap();
    let r = ok(&run_args(i, o, "2"));
    assert!(
        r.stderr
            .contains("task 1 was complete but data/00001_00000.jsonl.zst is missing: redone"),
        "{}",
        r.stderr
    );
    assert_eq!(outputs(&out), reference);
    let st = stats(&out);
    let on_disk = std::fs::read_dir(out.join("data")).unwrap().count() as u64;
    assert_eq!(st["writer"]["shards"].as_u64(), Some(on_disk));
    assert_accounting(&st);

    // A shard cut short (the marker still there).
    let shard = out.join("rejects/00000_00000.jsonl.zst");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let r = ok(&run_args(i, o, "2"));
    assert!(
        r.stderr
            .contains("task 0 was complete but rejects/00000_00000.jsonl.zst is"),
        "{}",
        r.stderr
    );
    assert_eq!(outputs(&out), reference);
}

#[test]
fn relative_then_absolute_input_path_resumes_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    sample_input(&dir.path().join("in"), 2);
    // The first run names its input relative to its working directory.
    let first = run_with(bin().current_dir(dir.path()), &run_args("in", "out", "2"));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let out = dir.path().join("out");
    let reference = outputs(&out);
    // Interrupted before task 1 finished …
    std::fs::remove_file(out.join("completions/00001")).unwrap();
    std::fs::remove_file(out.join("stats.json")).unwrap();
    // … and resumed with the absolute path of the same directory.
    let abs = dir.path().canonicalize().unwrap().join("in");
    ok(&run_args(s(&abs), s(&out), "2"));
    assert_eq!(outputs(&out), reference, "same bytes, same source names");
    let st = stats(&out);
    assert!(
        st["files"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k.starts_with("in/")),
        "{st}"
    );
    assert_accounting(&st);
}

// ------------------------------------------------------------- 2. token ids

/// A shard directory with one shard of `docs` (separator 0) whose header
/// claims vocabulary `claimed` (written with `real`, then patched).
fn token_dir(dir: &Path, docs: &[Vec<u32>], real: usize, claimed: u64) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("00000_00000.tok");
    let mut w = refinery_tokenize::ShardWriter::create(&p, real, Some(0)).unwrap();
    for d in docs {
        w.push_doc(d).unwrap();
    }
    w.finish().unwrap();
    let mut b = std::fs::read(&p).unwrap();
    b[40..48].copy_from_slice(&claimed.to_le_bytes());
    std::fs::write(&p, b).unwrap();
    dir.to_path_buf()
}

fn docs_below(vocab: u32, n: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|d| {
            (0..40)
                .map(|k| 1 + (d as u32 * 7 + k * 3) % (vocab - 1))
                .collect()
        })
        .collect()
}

#[test]
fn out_of_range_token_ids_are_an_error_naming_shard_and_offset_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("train.toml");
    std::fs::write(
        &config,
        "[task]\nkind = \"gpt-clm\"\n[model]\ndropout = 0.0\n\
         hf = { n_layer = 1, n_embd = 16, n_head = 2, n_positions = 16 }\n\
         [data]\nseq_len = 8\nbatch_size = 2\n[optim]\nwarmup_steps = 0\n\
         [run]\ntotal_steps = 1\neval_every = 0\nsave_every = 1\nkeep = 1\n",
    )
    .unwrap();
    let pretrain = |data: &Path, out: &Path| {
        run(&[
            "pretrain",
            "--config",
            s(&config),
            "--data",
            s(data),
            "--out",
            s(out),
            "--quiet",
        ])
    };

    // A shard whose ids run past its own (and so the model's) vocabulary.
    let mut docs = docs_below(100, 20);
    docs[3][5] = 150;
    let bad = token_dir(&d.join("bad"), &docs, 200, 100);
    let r = pretrain(&bad, &d.join("run-bad"));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("00000_00000.tok")
            && r.stderr.contains("token 150 at position 128 (document 3)"),
        "{}",
        r.stderr
    );

    // A model of vocabulary 100, evaluated on shards of a larger tokenizer.
    let good = token_dir(&d.join("good"), &docs_below(100, 20), 100, 100);
    let r = pretrain(&good, &d.join("run"));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let mut wide = docs_below(100, 20);
    wide[7][0] = 250;
    let wide = token_dir(&d.join("wide"), &wide, 300, 300);
    let ckpt = d.join("run/checkpoint-1");
    let r = run(&[
        "eval-lm",
        "--model",
        s(&ckpt),
        "--data",
        s(&wide),
        "--seq-len",
        "8",
        "--batch-size",
        "2",
    ]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("token 250 at position 287 (document 7)")
            && r.stderr.contains("vocab size 100")
            && r.stderr.contains("re-tokenize"),
        "{}",
        r.stderr
    );
    // The same checkpoint on its own shards evaluates.
    ok(&[
        "eval-lm",
        "--model",
        s(&ckpt),
        "--data",
        s(&good),
        "--seq-len",
        "8",
        "--batch-size",
        "2",
        "--max-batches",
        "1",
    ]);
}

// ------------------------------------------------------------------ 5. lower

#[test]
fn tasks_far_beyond_the_input_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("one.jsonl");
    std::fs::write(&input, "{\"text\": \"only one document here\"}\n").unwrap();
    let (i, o) = (s(&input), dir.path().join("out"));
    for tasks in ["99999999999", "1000000"] {
        let start = Instant::now();
        fails(
            &[
                "run",
                "--preset",
                "default",
                "-i",
                i,
                "-o",
                s(&o),
                "--tasks",
                tasks,
                "-q",
            ],
            &[
                &format!("{tasks} tasks for 1 input file(s)"),
                "use at most 1024",
            ],
        );
        assert!(start.elapsed() < Duration::from_secs(20));
    }
    fails(
        &[
            "dedup",
            "minhash",
            "-i",
            i,
            "-o",
            s(&dir.path().join("mh")),
            "--tasks",
            "1000000",
        ],
        &["1000000 tasks for 1 input file(s)"],
    );
    // Up to 1024 tasks are allowed whatever the number of files.
    ok(&[
        "run",
        "--preset",
        "default",
        "-i",
        i,
        "-o",
        s(&dir.path().join("ok")),
        "--tasks",
        "3",
        "-q",
    ]);
}

#[test]
fn random_bytes_named_warc_gz_fail_as_read_binary_not_a_document() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut bytes = random_bytes(200_000, 0x5EED);
    if bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(&[0x28, 0xb5]) {
        bytes[0] = b'x';
    }
    std::fs::write(input.join("random.warc.gz"), &bytes).unwrap();
    let out = dir.path().join("out");
    ok(&run_args(s(&input), s(&out), "1"));
    let st = stats(&out);
    assert_eq!(st["input_docs"], 1);
    assert_eq!(st["kept_docs"], 0);
    assert_eq!(st["failed"]["read:binary"], 1, "{st}");
    assert_accounting(&st);
    let log = std::fs::read_to_string(out.join("failures/00000.jsonl")).unwrap();
    assert!(
        log.contains("read:binary") && log.contains("random.warc.gz"),
        "{log}"
    );
}

/// One WARC response record with an HTML page.
fn warc_response(n: usize, extra_length: usize) -> Vec<u8> {
    let body = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body><p>{}</p></body></html>",
        format!("Page number {n} has a paragraph of ordinary words in it. ").repeat(8)
    );
    let mut r = format!(
        "WARC/1.1\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:rec-{n}>\r\n\
         WARC-Target-URI: http://example.com/{n}\r\nWARC-Date: 2024-01-02T03:04:05Z\r\n\
         Content-Type: application/http; msgtype=response\r\nContent-Length: {}\r\n\r\n",
        body.len() + extra_length
    )
    .into_bytes();
    r.extend_from_slice(body.as_bytes());
    r.extend_from_slice(b"\r\n\r\n");
    r
}

#[test]
fn warc_content_length_300_bytes_too_long_swallows_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut warc = Vec::new();
    for n in 0..4 {
        warc.extend(warc_response(n, if n == 1 { 300 } else { 0 }));
    }
    std::fs::write(input.join("lengths.warc"), &warc).unwrap();
    let out = dir.path().join("out");
    ok(&run_args(s(&input), s(&out), "1"));
    let st = stats(&out);
    assert_eq!(st["input_docs"], 4, "every record is counted: {st}");
    assert!(st["failed"].as_object().unwrap().is_empty(), "{st}");
    assert_eq!(st["warnings"]["warc:length_mismatch"], 1, "{st}");
    assert_accounting(&st);
    let log = std::fs::read_to_string(out.join("failures/00000.jsonl")).unwrap();
    assert!(
        log.contains("warc:length_mismatch") && log.contains("Content-Length"),
        "{log}"
    );
}

#[test]
fn invalid_utf8_in_jsonl_is_counted_as_lossy_utf8_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut f = std::fs::File::create(input.join("docs.jsonl")).unwrap();
    let text = "A plain sentence of ordinary words. ".repeat(10);
    writeln!(f, "{{\"text\": \"{text}\"}}").unwrap();
    f.write_all(b"{\"text\": \"caf\xe9 ").unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.write_all(b"\"}\n").unwrap();
    drop(f);
    let out = dir.path().join("out");
    ok(&run_args(s(&input), s(&out), "1"));
    let st = stats(&out);
    assert_eq!(st["input_docs"], 2);
    assert_eq!(st["warnings"]["jsonl:lossy_utf8"], 1, "{st}");
    assert_accounting(&st);
    let log = std::fs::read_to_string(out.join("failures/00000.jsonl")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("jsonl:lossy_utf8"))
        .unwrap_or_else(|| panic!("no lossy_utf8 entry in {log}"));
    assert!(
        line.contains("docs.jsonl") && line.contains("line 2: 1 invalid"),
        "{line}"
    );
}

#[test]
fn io_error_messages_do_not_repeat_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample(&input);
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let o = fails(
        &run_args(s(&input), s(&file.join("out")), "1"),
        &["Not a directory"],
    );
    assert_eq!(o.stderr.matches("os error 20").count(), 1, "{}", o.stderr);
}

/// Makes `dir` refuse new entries: read-only for a normal user, immutable
/// (`chattr +i`) for root; `false` when neither works here.
fn forbid_writes(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::File::create(dir.join(".probe")).is_err() {
        return true;
    }
    let _ = std::fs::remove_file(dir.join(".probe"));
    let chattr = Command::new("chattr").arg("+i").arg(dir).output();
    chattr.is_ok_and(|o| o.status.success()) && std::fs::File::create(dir.join(".probe")).is_err()
}

fn allow_writes(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = Command::new("chattr").arg("-i").arg(dir).output();
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
}

#[test]
fn overwrite_that_cannot_delete_everything_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    sample_input(&input, 1);
    let out = dir.path().join("out");
    let (i, o) = (s(&input), s(&out));
    ok(&run_args(i, o, "1"));
    let before = outputs(&out);
    // The directory deletion meets last (so an unchecked delete would have
    // removed everything else first).
    let last = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .last()
        .unwrap()
        .path();
    if !forbid_writes(&last) {
        allow_writes(&last);
        eprintln!("skipping: cannot make a directory unwritable here");
        return;
    }
    let mut args = run_args(i, o, "1");
    args.push("--overwrite");
    let r = run(&args);
    allow_writes(&last);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was deleted"), "{}", r.stderr);
    assert!(out.join("stats.json").exists() && out.join("run.json").exists());
    assert_eq!(outputs(&out), before);
}

#[test]
fn tokenizer_train_on_zero_documents_fails() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("empty.jsonl");
    std::fs::write(&input, "{\"no_text_field\": 1}\nnot json\n").unwrap();
    let tok = dir.path().join("tok.json");
    fails(
        &[
            "tokenizer",
            "train",
            "--vocab-size",
            "300",
            s(&input),
            "-o",
            s(&tok),
            "-q",
        ],
        &["no documents"],
    );
    assert!(!tok.exists());
}

#[test]
fn filter_fractions_above_one_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample(&input);
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        format!(
            "[input]\npaths = [{:?}]\n[output]\npath = {:?}\n\
             [[stages]]\ntype = \"gopher_repetition\"\ndup_line_frac = 7.0\n",
            s(&input),
            s(&dir.path().join("out"))
        ),
    )
    .unwrap();
    fails(
        &["run", s(&p), "-q"],
        &["p.toml", "stages[0].dup_line_frac", "[0, 1]", "7"],
    );
}

#[test]
fn tokens_inspect_refuses_a_separator_that_does_not_fit_the_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let shards = token_dir(&dir.path().join("tok"), &docs_below(100, 2), 100, 100);
    let p = shards.join("00000_00000.tok");
    let mut b = std::fs::read(&p).unwrap();
    b[48..52].copy_from_slice(&70_000u32.to_le_bytes());
    std::fs::write(&p, b).unwrap();
    fails(
        &["tokens", "inspect", s(&shards)],
        &["00000_00000.tok", "separator id 70000"],
    );
}

/// A tiny GPT-2 checkpoint (with an empty tokenizer file: the model is loaded first).
fn tiny_gpt(dir: &Path) {
    let device = refinery_model::device::parse_device("cpu").unwrap();
    let config = refinery_model::GptConfig::new(50, 16, 32, 2, 4);
    let model = config.init(&device).unwrap();
    refinery_model::hf::save_gpt(&model, &config, dir).unwrap();
    std::fs::write(dir.join("tokenizer.json"), "").unwrap();
}

#[test]
fn absurd_sizes_in_config_json_are_refused_before_allocating() {
    for (key, value) in [
        ("n_embd", 5_000_000_000u64),
        ("vocab_size", 3_000_000_000),
        ("n_positions", 9_000_000_000),
    ] {
        let dir = tempfile::tempdir().unwrap();
        tiny_gpt(dir.path());
        let cfg = dir.path().join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        v[key] = serde_json::json!(value);
        std::fs::write(&cfg, v.to_string()).unwrap();
        // Exit 1 with the key named: not an abort (134) on an 8 TB allocation.
        fails(
            &["generate", "--model", s(dir.path()), "--prompt", "a"],
            &["config.json", key],
        );
    }
}

#[test]
fn model_safetensors_is_written_with_the_mode_of_the_other_checkpoint_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    tiny_gpt(dir.path());
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("model.safetensors"), mode("config.json"));
}
