//! The real `filegen` binary writing into temporary folders.

use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output};

use calamine::{Data, Reader, open_workbook_auto_from_rs};

fn filegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_filegen"))
        .args(args)
        .output()
        .expect("run filegen")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `templates/acme_px.json`: a one-field FILE template (`OD`, 0.1-2.0) with `members`
/// (`"file_config":{...}` and whatever else the test needs) added.
fn write_acme_px(templates: &Path, members: &str) {
    let json = format!(
        r#"{{"analyzer":{{"name":"Plate X","model":"PX","manufacturer":"Acme"}},
        "protocol":{{"type":"FILE"}},
        "fields":[{{"code":"OD","name":"OD","type":"NUMERIC","normalRange":"0.1-2.0"}}],
        {members}}}"#
    );
    std::fs::write(templates.join("acme_px.json"), json).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sheet_rows(bytes: &[u8]) -> Vec<Vec<Data>> {
    let mut book = open_workbook_auto_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&sheet).unwrap();
    range.rows().map(<[Data]>::to_vec).collect()
}

#[test]
fn writes_count_files_of_samples_rows_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imports");
    let o = filegen(&[
        "--template",
        "quantstudio5",
        "--out",
        out.to_str().unwrap(),
        "--count",
        "12",
        "--samples",
        "7",
        "--seed",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = stdout(&o);
    assert!(
        summary.starts_with(
            "filegen: wrote 12 result file(s) for quantstudio5 (quantstudio_results) into "
        ),
        "{summary}"
    );
    assert!(
        summary.contains(": 84 samples, 24 control rows, "),
        "{summary}"
    );
    // stderr is not a terminal here: no progress bar output at all.
    assert_eq!(stderr(&o), "");
    let names = names(&out);
    assert_eq!(names.len(), 12, "{names:?}");
    let mut accessions = std::collections::BTreeSet::new();
    for name in &names {
        assert!(
            name.starts_with("QS5_") && name.ends_with(".xlsx"),
            "{name}: no temporary files left"
        );
        let rows = sheet_rows(&std::fs::read(out.join(name)).unwrap());
        // Header + (7 samples + CPOS + CNEG) × two targets: every file is complete.
        assert_eq!(rows.len(), 1 + 9 * 2, "{name}");
        assert_eq!(rows[0][4], Data::String("Task".into()));
        for row in &rows[1..15] {
            if let Data::String(id) = &row[2] {
                accessions.insert(id.clone());
            }
        }
    }
    assert_eq!(
        accessions.len(),
        12 * 7,
        "accessions are unique across the batch"
    );
}

#[test]
fn formats_and_delimiters() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_str().unwrap();
    let o = filegen(&[
        "--template",
        "wondfo_finecare",
        "--out",
        p,
        "--samples",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let name = &names(dir.path())[0];
    assert!(name.starts_with("wondfo") && name.ends_with(".csv"));
    let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("Finecare FIA Meter III Plus;")
    );
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(text.split_once('\n').unwrap().1.as_bytes());
    assert_eq!(reader.headers().unwrap().len(), 40);
    assert_eq!(reader.records().count(), 6);

    let tsv = dir.path().join("tsv");
    let o = filegen(&[
        "--template",
        "quantstudio7",
        "--out",
        tsv.to_str().unwrap(),
        "--format",
        "tsv",
        "--samples",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let name = &names(&tsv)[0];
    assert!(name.ends_with(".tsv"), "{name}");
    let text = std::fs::read_to_string(tsv.join(name)).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_reader(text.as_bytes());
    assert_eq!(reader.headers().unwrap().iter().nth(4), Some("Task"));
    assert_eq!(reader.records().count(), (2 + 2) * 2);

    let xml = dir.path().join("xml");
    let o = filegen(&[
        "--template",
        "dtprime",
        "--out",
        xml.to_str().unwrap(),
        "--samples",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(xml.join(&names(&xml)[0])).unwrap();
    let (text, _, errors) = encoding_rs::WINDOWS_1251.decode(&bytes);
    assert!(!errors);
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"windows-1251\"?>\r\n<package"));
    assert_eq!(text.matches("<cell ").count(), 4);
}

#[test]
fn qc_files_follow_the_pattern_and_the_deviation() {
    let dir = tempfile::tempdir().unwrap();
    let o = filegen(&[
        "--template",
        "quantstudio5",
        "--out",
        dir.path().to_str().unwrap(),
        "--qc",
        "--qc-deviation",
        "-2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("wrote 1 QC file(s)"));
    let name = &names(dir.path())[0];
    // Still matches the template's file_pattern (QS5_*), marked as QC inside the wildcard.
    assert!(
        name.starts_with("QS5_") && name.ends_with("-QC.xlsx"),
        "{name}"
    );
    let rows = sheet_rows(&std::fs::read(dir.path().join(name)).unwrap());
    assert_eq!(rows[1][2], Data::String("LPC-LOT-LPC-26B-001".into()));
    assert_eq!(rows[1][4], Data::String("STANDARD".into()));
    assert_eq!(rows[1][7], Data::Float(31.0)); // 32 - 2 × 0.5
    assert_eq!(rows[2][7], Data::Float(24.2)); // 25 - 2 × 0.4
}

#[test]
fn replay_fixture_rewrites_accessions() {
    let dir = tempfile::tempdir().unwrap();
    let o = filegen(&[
        "--template",
        "tecan_f50",
        "--out",
        dir.path().to_str().unwrap(),
        "--replay-fixture",
        "--count",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("6 fresh accessions"), "{}", stdout(&o));
    let names = names(dir.path());
    assert_eq!(names.len(), 2);
    let a = std::fs::read_to_string(dir.path().join(&names[0])).unwrap();
    let b = std::fs::read_to_string(dir.path().join(&names[1])).unwrap();
    assert!(a.starts_with("WellPosition,SampleID,Interpretation,TestCode\n"));
    assert!(a.contains("A4,NEG,Negative,HIV ELISA") && a.contains("A5,POS,Positive,HIV ELISA"));
    assert!(!a.contains("DEV01265100000000101"), "{a}");
    assert_ne!(a, b);
}

#[test]
fn templates_dir_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    write_acme_px(
        &templates,
        r#""file_config":{"format":"CSV","delimiter":"|"}"#,
    );
    let out = dir.path().join("out");
    let o = filegen(&[
        "--template",
        "acme_px",
        "--out",
        out.to_str().unwrap(),
        "--templates-dir",
        templates.to_str().unwrap(),
        "--samples",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join(&names(&out)[0])).unwrap();
    assert!(text.starts_with("Sample Name|Target|Result\n"), "{text}");
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn bad_input_is_a_clear_error_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_str().unwrap();
    let cases: [(&[&str], &str); 11] = [
        (
            &["--template", "nope", "--out", p],
            "unknown template \"nope\"; FILE templates: dtprime, ",
        ),
        (
            &["--template", "mindray_bs200", "--out", p],
            "template \"mindray_bs200\" is HL7, not a FILE template",
        ),
        (
            &["--template", "tecan_f50", "--out", p, "--count", "abc"],
            "invalid value 'abc' for '--count <COUNT>'",
        ),
        (
            &["--template", "tecan_f50", "--out", p, "--count", "0"],
            "invalid value '0' for '--count <COUNT>'",
        ),
        (
            &["--template", "tecan_f50", "--out", p, "--samples", "1.5"],
            "invalid value '1.5' for '--samples <SAMPLES>'",
        ),
        (
            &["--template", "quantstudio5", "--out", p, "--samples", "95"],
            "has 96 wells; 97 samples and controls do not fit",
        ),
        (
            &[
                "--template",
                "quantstudio5",
                "--out",
                p,
                "--qc",
                "--qc-deviation",
                "NaN",
            ],
            "--qc-deviation: must be a finite number",
        ),
        (
            &["--template", "tecan_f50", "--out", p, "--qc"],
            "template tecan_f50: has no qc_controls",
        ),
        (
            &[
                "--template",
                "quantstudio5",
                "--out",
                p,
                "--qc",
                "--samples",
                "4",
            ],
            "the argument '--qc' cannot be used with '--samples <SAMPLES>'",
        ),
        (
            // Replayed accessions are sequential and the rest is the fixture's: a seed
            // would change nothing, so it is refused rather than ignored.
            &[
                "--template",
                "tecan_f50",
                "--out",
                p,
                "--replay-fixture",
                "--seed",
                "7",
            ],
            "the argument '--replay-fixture' cannot be used with '--seed <SEED>'",
        ),
        (
            &[
                "--template",
                "tecan_f50_grid",
                "--out",
                p,
                "--replay-fixture",
            ],
            "has no fixture to replay",
        ),
    ];
    for (args, message) in cases {
        let o = filegen(args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{args:?}");
    }
    // An unwritable folder: its parent is a regular file.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let target = blocker.join("out");
    let o = filegen(&["--template", "tecan_f50", "--out", target.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("filegen: error: cannot create folder "),
        "{}",
        stderr(&o)
    );
    // The operating system's reason, once.
    assert_eq!(stderr(&o).matches("(os error").count(), 1, "{}", stderr(&o));
    // Nothing was written anywhere for the failed runs.
    assert_eq!(names(dir.path()), ["file"]);
}

#[test]
fn templates_dir_given_as_dot_finds_fixtures_in_its_parent() {
    // `--templates-dir .` from inside the templates folder: the folder's parent is `..`, not the
    // empty path (which would look for fixtures and profiles inside the templates folder itself).
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    write_acme_px(
        &templates,
        r#""file_config":{"format":"CSV"},
        "fixture":{"file":"fixtures/acme/run.csv","format":"CSV"}"#,
    );
    std::fs::create_dir_all(dir.path().join("fixtures/acme")).unwrap();
    std::fs::write(
        dir.path().join("fixtures/acme/run.csv"),
        "Well,Sample,OD\r\nA1,DEV01265100000000101,0.5\r\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    for templates_dir in [".", "./", "../templates"] {
        let o = Command::new(env!("CARGO_BIN_EXE_filegen"))
            .current_dir(&templates)
            .args([
                "--template",
                "acme_px",
                "--out",
                out.to_str().unwrap(),
                "--templates-dir",
                templates_dir,
                "--replay-fixture",
            ])
            .output()
            .expect("run filegen");
        assert!(o.status.success(), "{templates_dir}: {}", stderr(&o));
        assert!(stdout(&o).contains("1 fresh accessions"), "{}", stdout(&o));
    }
    assert_eq!(names(&out).len(), 3);
}

#[test]
fn a_qc_value_beyond_the_range_of_numbers_is_an_error_not_inf_in_the_file() {
    // target + 3 SD of 1e308 ± 1e308 overflows: the file would hold `inf` (CSV) or the text
    // "inf" where a number belongs (XLSX), which no importer reads as a result.
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    write_acme_px(
        &templates,
        r#""file_config":{"format":"CSV"},
        "qc_controls":[{"field_code":"OD","lot_number":"L1","level":"N","target":1e308,"sd":1e308}]"#,
    );
    let out = dir.path().join("out");
    for format in ["csv", "tsv", "xlsx"] {
        let o = filegen(&[
            "--template",
            "acme_px",
            "--out",
            out.to_str().unwrap(),
            "--templates-dir",
            templates.to_str().unwrap(),
            "--qc",
            "--qc-deviation",
            "3",
            "--format",
            format,
        ]);
        assert_eq!(o.status.code(), Some(1), "{format}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("filegen: error: template acme_px: ") && err.contains("not a finite"),
            "{format}: {err}"
        );
        assert!(err.contains("QC-L1-N"), "{format}: {err}");
    }
    assert!(!out.exists() || names(&out).is_empty(), "{:?}", names(&out));
}

#[test]
fn out_naming_a_file_says_it_is_not_a_folder() {
    // `create_dir_all` on an existing regular file fails with "File exists", which reads as if
    // the folder were there; the error must say that the path is a file, not a folder.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.csv");
    std::fs::write(&file, b"kept").unwrap();
    let o = filegen(&["--template", "tecan_f50", "--out", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(
        err,
        format!(
            "filegen: error: cannot create folder {}: it exists and is not a folder\n",
            file.display()
        )
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"kept");
    assert_eq!(names(dir.path()), ["results.csv"]);
}

/// `filegen ... | head -0`, or a stderr pipe whose reader has gone: writing there fails with
/// EPIPE (Rust ignores SIGPIPE), which `println!` / `eprintln!` turned into a panic (exit
/// 101, "failed printing to stdout: Broken pipe") after the files were written. The summary
/// or error is now dropped and the exit status is what it would be with a reader.
#[test]
fn a_closed_output_pipe_does_not_panic() {
    let run = |args: &[&str], stdout_closed: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_filegen"));
        command.args(args);
        let closed = if stdout_closed {
            test_support::ClosedStream::Stdout
        } else {
            test_support::ClosedStream::Stderr
        };
        test_support::output_into_closed_pipe(command, closed)
    };
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let out = run(&["--template", "wondfo_finecare", "--out", out_dir], true);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names(dir.path()).len(), 1);
    let out = run(&["--template", "no_such_template", "--out", out_dir], false);
    assert_eq!(out.status.code(), Some(1));
}

/// A template's `fixture.file` is confined to the folder beside the templates: `..` or an
/// absolute path is refused before anything is read. A template could make filegen replay
/// (copy into its output) any file the user can read.
#[test]
fn a_fixture_outside_the_templates_parent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("site/templates");
    std::fs::create_dir_all(&templates).unwrap();
    let outside = dir.path().join("secret.csv");
    std::fs::write(
        &outside,
        "Well,Sample,OD\r\nA1,DEV01265100000000101,0.5\r\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    for fixture in ["../secret.csv", outside.to_str().unwrap()] {
        write_acme_px(
            &templates,
            &format!(
                r#""file_config":{{"format":"CSV"}},"fixture":{{"file":{fixture:?},"format":"CSV"}}"#
            ),
        );
        let o = filegen(&[
            "--template",
            "acme_px",
            "--out",
            out.to_str().unwrap(),
            "--templates-dir",
            templates.to_str().unwrap(),
            "--replay-fixture",
        ]);
        assert_eq!(o.status.code(), Some(1), "{fixture}: {}", stdout(&o));
        assert!(
            stderr(&o).contains(&format!(
                "template \"acme_px\": fixture.file {fixture:?} must be a relative path inside \
                 the templates' parent folder (no `..`, no root)"
            )),
            "{}",
            stderr(&o)
        );
    }
    assert!(!out.exists() || names(&out).is_empty());
}

/// A templates folder without FILE templates says so; the list of FILE templates was empty.
#[test]
fn a_templates_folder_without_file_templates_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = filegen(&[
        "--template",
        "tecan_f50",
        "--out",
        dir.path().join("out").to_str().unwrap(),
        "--templates-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "unknown template \"tecan_f50\"; FILE templates: none (the templates folder holds \
             no FILE template)"
        ),
        "{}",
        stderr(&o)
    );
}

/// The SiteYearNum accessions (`DEV01` + 15 digits) in the files of `dir`.
fn accessions_in(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    for name in names(dir) {
        let text = String::from_utf8_lossy(&std::fs::read(dir.join(name)).unwrap()).into_owned();
        for (at, _) in text.match_indices("DEV01") {
            let digits = &text[at + 5..(at + 20).min(text.len())];
            if digits.len() == 15 && digits.bytes().all(|b| b.is_ascii_digit()) {
                found.insert(text[at..at + 20].to_owned());
            }
        }
    }
    found
}

/// Each run counts accessions from 1, so a second batch for the same import folder repeated
/// the first one's; `--first-sequence` says where to start.
#[test]
fn first_sequence_continues_where_an_earlier_batch_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let batch = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args = vec![
            "--template",
            "tecan_f50",
            "--out",
            out.to_str().unwrap(),
            "--count",
            "2",
            "--samples",
            "3",
        ];
        args.extend_from_slice(extra);
        let o = filegen(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        accessions_in(&out)
    };
    let first = batch("first", &[]);
    assert_eq!(first.len(), 6, "{first:?}");
    assert!(
        first
            .iter()
            .all(|a| a.ends_with(|c: char| ('1'..='6').contains(&c)))
    );
    assert_eq!(batch("again", &[]), first, "a second run repeats them");
    let second = batch("second", &["--first-sequence", "7"]);
    assert_eq!(second.len(), 6);
    assert!(first.is_disjoint(&second), "{first:?} {second:?}");
    assert!(
        second.first().unwrap().ends_with("00000000007"),
        "{second:?}"
    );

    let o = filegen(&[
        "--template",
        "tecan_f50",
        "--out",
        "x",
        "--first-sequence",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--first-sequence"), "{}", stderr(&o));
}

/// File names, run dates and accession years came from the wall clock, so two runs with the
/// same seed differed; `--now` fixes the clock and the runs write the same bytes.
#[test]
fn now_and_seed_make_runs_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str, template: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args = vec![
            "--template",
            template,
            "--out",
            out.to_str().unwrap(),
            "--count",
            "2",
            "--now",
            "2025-03-04T05:06:07",
        ];
        args.extend_from_slice(extra);
        let o = filegen(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        names(&out)
            .into_iter()
            .map(|n| {
                let bytes = std::fs::read(out.join(&n)).unwrap();
                (n, bytes)
            })
            .collect::<Vec<_>>()
    };
    for (template, extra) in [
        ("tecan_f50", &["--seed", "9"][..]),
        ("quantstudio5", &["--seed", "9"][..]),
        ("tecan_f50", &["--replay-fixture"][..]),
    ] {
        let first = run("a", template, extra);
        let second = run("b", template, extra);
        assert_eq!(first.len(), 2, "{template}");
        assert_eq!(first, second, "{template} {extra:?}");
        for (name, bytes) in &first {
            assert!(name.contains("20250304"), "{name}");
            let text = String::from_utf8_lossy(bytes);
            // xlsx is zipped: its accessions are not visible as text.
            if name.ends_with(".csv") {
                assert!(text.contains("DEV0125"), "{name}: {text}");
            }
        }
        std::fs::remove_dir_all(dir.path().join("a")).unwrap();
        std::fs::remove_dir_all(dir.path().join("b")).unwrap();
    }

    let o = filegen(&[
        "--template",
        "tecan_f50",
        "--out",
        "x",
        "--now",
        "04/03/2025",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("use a local date and time such as 2026-01-02T08:00:00"),
        "{}",
        stderr(&o)
    );
}

/// Writes the generic-layout template `acme_px` with `members` into a fresh folder, runs
/// filegen on it with `extra` arguments, which must succeed; the folder and the output.
fn acme_px_files(members: &str, extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    write_acme_px(&templates, members);
    let out = dir.path().join("out");
    let mut args = vec![
        "--template",
        "acme_px",
        "--out",
        out.to_str().unwrap(),
        "--templates-dir",
        templates.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = filegen(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    (dir, out)
}

// What an importer reads from generated files: duplicate keys unique across a batch, the
// generic layout's skipped rows and mapped columns, and a clock the files can hold.

/// The Wondfo profile's duplicate key is Serial Number (col 0) + Date/Time (col 21) + Test
/// Name (col 3). Two files of one batch must not repeat it, or the importer drops the second
/// file's results as duplicates.
#[test]
fn finecare_files_of_one_batch_do_not_repeat_the_importers_duplicate_key() {
    let dir = tempfile::tempdir().unwrap();
    let o = filegen(&[
        "--template",
        "wondfo_finecare",
        "--out",
        dir.path().to_str().unwrap(),
        "--count",
        "2",
        "--samples",
        "2",
        "--now",
        "2026-03-15T10:00:00",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = names(dir.path());
    assert_eq!(files.len(), 2);
    let keys = |name: &str| -> std::collections::BTreeSet<(String, String, String)> {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(text.split_once('\n').unwrap().1.as_bytes());
        reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_owned(), r[21].to_owned(), r[3].to_owned())
            })
            .collect()
    };
    let (a, b) = (keys(&files[0]), keys(&files[1]));
    let shared: Vec<_> = a.intersection(&b).collect();
    assert!(
        shared.is_empty(),
        "rows of the second file repeat the first file's duplicate key: {shared:?}"
    );
}

/// A generic template with `file_config.skipRows`: a reader skips that many lines before the
/// header, so they must be metadata, not the header and the first data rows.
#[test]
fn generic_layout_writes_the_skip_rows_a_reader_skips() {
    let (_dir, out) = acme_px_files(
        r#""file_config":{"format":"CSV","delimiter":";","skipRows":2}"#,
        &["--samples", "3"],
    );
    let text = std::fs::read_to_string(out.join(&names(&out)[0])).unwrap();
    // What an importer configured with skipRows = 2 reads.
    let after_skip: String = text.lines().skip(2).map(|l| format!("{l}\n")).collect();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(after_skip.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        ["Sample Name", "Target", "Result"],
        "file as written:\n{text}"
    );
    assert_eq!(reader.records().count(), 3, "file as written:\n{text}");
}

/// A generic template modelled on the GeneXpert CSV export (OpenELIS profile `genexpert-csv`:
/// `Sample ID`, `Test Type`, `Test Result`), its `column_mapping` naming those columns: the
/// mapped result column must hold the result, not the test code.
#[test]
fn generic_layout_fills_mapped_columns_before_guessing_by_name() {
    let (_dir, out) = acme_px_files(
        r#""file_config":{"format":"CSV","column_mapping":{"sample_id":"Sample ID","test_code":"Test Type","result":"Test Result"}},
        "columns":[{"index":0,"name":"Sample ID"},{"index":1,"name":"Test Type"},{"index":2,"name":"Test Result"}]"#,
        &["--samples", "2", "--seed", "1"],
    );
    let text = std::fs::read_to_string(out.join(&names(&out)[0])).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    for row in reader.records() {
        let row = row.unwrap();
        assert_eq!(&row[1], "OD", "{text}");
        let value: f64 = row[2]
            .parse()
            .unwrap_or_else(|_| panic!("Test Result holds {:?}, not a value:\n{text}", &row[2]));
        assert!((0.1..=2.0).contains(&value), "{text}");
    }
}

/// A generic template that says its files have no header (`has_header: false`): a reader
/// set up from it takes the first line as data, so the header line would be read as a
/// sample. `fileFormat.hasHeader` says the same when `file_config` is silent.
#[test]
fn generic_layout_without_a_header_writes_data_only() {
    for members in [
        r#""file_config":{"format":"CSV","has_header":false}"#,
        r#""fileFormat":{"hasHeader":false},"file_config":{"format":"CSV"}"#,
    ] {
        let (_dir, out) = acme_px_files(members, &["--samples", "3"]);
        let text = std::fs::read_to_string(out.join(&names(&out)[0])).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{members}: file as written:\n{text}");
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells[1], "OD", "{members}: file as written:\n{text}");
            assert!(cells[2].parse::<f64>().is_ok(), "{members}: {text}");
        }
    }
}

/// A generic QC file whose columns include a `Task` (as QuantStudio's do) says each row's
/// task: the control's own, else STANDARD. The column was left empty.
#[test]
fn generic_layout_fills_a_task_column() {
    let (_dir, out) = acme_px_files(
        r#""file_config":{"format":"CSV"},
        "columns":[{"index":0,"name":"Sample Name"},{"index":1,"name":"Task"},{"index":2,"name":"Target"},{"index":3,"name":"Result"}],
        "qc_controls":[{"field_code":"OD","lot_number":"L1","level":"N","target":1.0,"sd":0.1},
                       {"field_code":"OD","lot_number":"L1","level":"P","target":1.5,"sd":0.1,"task":"NTC"}]"#,
        &["--qc"],
    );
    let text = std::fs::read_to_string(out.join(&names(&out)[0])).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let tasks: Vec<String> = reader
        .records()
        .map(|row| row.unwrap()[1].to_owned())
        .collect();
    assert_eq!(tasks, ["STANDARD", "NTC"], "file as written:\n{text}");
}

/// `--format csv` of a TSV template writes a comma-separated `.csv`, not tabs under that
/// name; `--format tsv` and the template's own format keep tabs.
#[test]
fn csv_asked_of_a_tsv_template_is_comma_separated() {
    for (format, delimiter, ext) in [("csv", ',', "csv"), ("tsv", '\t', "tsv"), ("", '\t', "tsv")] {
        let extra: &[&str] = if format.is_empty() {
            &["--samples", "2"]
        } else {
            &["--samples", "2", "--format", format]
        };
        let (_dir, out) = acme_px_files(r#""file_config":{"format":"TSV"}"#, extra);
        let name = names(&out)[0].clone();
        assert!(name.ends_with(ext), "{format}: {name}");
        let text = std::fs::read_to_string(out.join(&name)).unwrap();
        for line in text.lines() {
            assert_eq!(
                line.split(delimiter).count(),
                3,
                "{format}: file as written:\n{text}"
            );
        }
    }
}

/// A batch whose accessions would run out part-way (`--first-sequence` near the end) is
/// refused before its first file, saying how many files fit: it used to write the files
/// that fitted and then fail, leaving a partial batch in the import folder.
#[test]
fn a_batch_that_would_run_out_of_accessions_writes_nothing() {
    for replay in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut args = vec![
            "--template",
            "tecan_f50",
            "--out",
            out.to_str().unwrap(),
            "--count",
            "4",
            "--first-sequence",
            "99999999990",
        ];
        args.extend_from_slice(if replay {
            &["--replay-fixture"][..]
        } else {
            &["--samples", "4"][..]
        });
        let o = filegen(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "replay {replay}: {err}");
        let per_file = if replay { 3 } else { 4 };
        assert!(
            err.contains(&format!(
                "--count 4 needs {} accessions on lane",
                4 * per_file
            )) && err.contains(&format!(
                "only 10 are left (at most {} file(s)); nothing written",
                10 / per_file
            )),
            "replay {replay}: {err}"
        );
        assert!(!out.exists() || names(&out).is_empty(), "{:?}", names(&out));
        // The files that fit are written whole.
        let fit = (10 / per_file).to_string();
        args[5] = &fit;
        let o = filegen(&args);
        assert!(o.status.success(), "replay {replay}: {}", stderr(&o));
        assert_eq!(names(&out).len(), 10 / per_file as usize);
    }
}

/// A `--now` the files cannot hold is refused as the option's error (a usage error, exit 2),
/// nothing written: far in the future Finecare's session times overflowed (a panic), and
/// before 1900 every XLSX layout failed late with rust_xlsxwriter's words, not naming `--now`.
#[test]
fn a_now_the_files_cannot_hold_is_refused_naming_the_option() {
    for (template, now) in [
        ("wondfo_finecare", "+262142-12-31T23:59:59"),
        ("quantstudio5", "0001-01-01T00:00:00"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = filegen(&[
            "--template",
            template,
            "--out",
            dir.path().to_str().unwrap(),
            "--now",
            now,
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--now") && stderr.contains("outside the years 1901 to 9998"),
            "{stderr}"
        );
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }
}

/// A `file_pattern` whose only wildcard is in its extension (`aux.*`) named every file
/// `aux.csv` (then `aux-1.csv` ...), without time, sequence or QC marker, and `aux` is a
/// Windows device name. The stem now gets the time stamp and sequence.
#[test]
fn a_pattern_wildcard_only_in_the_extension_still_gives_unique_names() {
    let (_dir, out) = acme_px_files(
        r#""identification":{"file_pattern":"aux.*"},"file_config":{"format":"CSV"}"#,
        &["--count", "2", "--now", "2026-03-15T10:00:00"],
    );
    assert_eq!(
        names(&out),
        [
            "aux-20260315-100000-0001.csv",
            "aux-20260315-100000-0002.csv"
        ]
    );
}
