//! `simulator seed-sql` against the reference's `generate_analyzer_sql.py` output.

mod common;

use std::collections::HashMap;

use common::command;
use lis_templates::{ProtocolKind, TemplateSet};

const REFERENCE: &str = include_str!("data/seed_analyzers.reference.sql");

fn seed_sql() -> String {
    seed_sql_with(&["--now", "20261121090004"])
}

/// `seed-sql --seed 1`, `args` after; its output, which must have been a success.
fn seed_sql_with(args: &[&str]) -> String {
    let mut all = vec!["seed-sql", "--seed", "1"];
    all.extend_from_slice(args);
    let out = command(&all).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_timestamp(s: &str) -> bool {
    // 2026-11-21 09:00:04+00
    let b = s.as_bytes();
    b.len() == 22
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            19 => *c == b'+',
            _ => c.is_ascii_digit(),
        })
}

/// Replaces GUID and time stamp literals, which differ from run to run.
fn normalise(line: &str) -> String {
    let parts: Vec<&str> = line.split('\'').collect();
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 && is_uuid(p) {
                "GUID"
            } else if i % 2 == 1 && is_timestamp(p) {
                "TS"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join("'")
}

/// Statement lines per analyzer section (`-- ========== NAME [STATUS] ==========`).
fn sections(sql: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in sql.lines() {
        if let Some(rest) = line.strip_prefix("    -- ========== ") {
            let name = rest.split(" [").next().unwrap().to_owned();
            out.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if line.contains("Seed complete") {
            current = None;
        }
        if line.trim().is_empty() || line.starts_with("    -- template: ") {
            continue;
        }
        if let Some(name) = &current {
            out.get_mut(name).unwrap().push(normalise(line));
        }
    }
    out
}

#[test]
fn seed_sql_matches_the_reference_statements() {
    let ours = seed_sql();
    let ours_sections = sections(&ours);
    let reference = sections(REFERENCE);
    // Analyzers whose templates are the reference's: the same statements, line for line.
    for name in [
        "Horiba ABX Micros 60",
        "Horiba ABX Pentra 60",
        "Stago STart 4",
    ] {
        let expected = &reference[name];
        assert!(expected.len() > 100, "{name}: reference section too short");
        assert_eq!(&ours_sections[name], expected, "section {name}");
    }
    // The Generic ASTM type resolution and the new-test blocks of the reference appear as is.
    let ours_lines: std::collections::HashSet<String> = ours.lines().map(normalise).collect();
    let prologue_end = REFERENCE.find("    -- 1. New tests").unwrap();
    let new_tests_end = REFERENCE.find("    -- ========== ").unwrap();
    for line in REFERENCE[..new_tests_end].lines().map(normalise) {
        if line.contains("-- 1. New tests (") || line.contains("v_generic_hl7") {
            continue;
        }
        assert!(ours_lines.contains(&line), "missing reference line: {line}");
    }
    assert!(prologue_end < new_tests_end);
    assert!(ours.starts_with("-- =====") && ours.trim_end().ends_with("END $$;"));
    // One lot row, one statistics row and eight Westgard rules per QC lot, as announced.
    let lots = ours.matches("INSERT INTO clinlims.qc_control_lot").count();
    assert_eq!(
        ours.matches("INSERT INTO clinlims.qc_statistics").count(),
        lots
    );
    assert_eq!(
        ours.matches("INSERT INTO clinlims.westgard_rule_config")
            .count(),
        8 * lots
    );
    for rule in [
        "'1₂ₛ'",
        "'1₃ₛ'",
        "'2₂ₛ'",
        "'R₄ₛ'",
        "'3₁ₛ'",
        "'4₁ₛ'",
        "'7ₜ'",
        "'10ₓ'",
    ] {
        assert_eq!(ours.matches(rule).count(), lots, "rule {rule}");
    }
    assert!(
        ours.contains(&format!(", {lots};")),
        "final notice counts the lots"
    );
    // A seed makes the output reproducible.
    assert_eq!(seed_sql(), ours);
}

#[test]
fn seed_sql_covers_every_embedded_template_of_every_protocol() {
    let ours = seed_sql();
    let set = TemplateSet::embedded().unwrap();
    let sections = sections(&ours);
    let mut protocols = std::collections::HashSet::new();
    for t in set.iter() {
        let kind = t.protocol.kind;
        protocols.insert(kind.as_str());
        assert!(
            ours.contains(&format!(
                "    -- template: {} ({})\n",
                t.name,
                kind.as_str()
            )),
            "template {} missing",
            t.name
        );
        let section = &sections[&t.analyzer.name];
        let type_variable = match kind {
            ProtocolKind::Hl7 => "v_generic_hl7_type_id",
            ProtocolKind::File => "v_generic_file_type_id",
            _ => "v_generic_astm_type_id",
        };
        assert!(
            section
                .iter()
                .any(|l| l.contains("INSERT INTO clinlims.analyzer (") && l.contains(type_variable)),
            "{}: analyzer of type {type_variable}",
            t.name
        );
        for f in &t.fields {
            assert!(
                ours.contains(&format!(
                    "(v_analyzer_id, '{}', (SELECT id",
                    f.code.replace('\'', "''")
                )),
                "{}: test map for {}",
                t.name,
                f.code
            );
        }
    }
    for p in ["ASTM", "HL7", "FILE"] {
        assert!(protocols.contains(p), "no {p} template embedded");
    }
    assert!(ours.contains(&format!("        {}, ", set.iter().count())));
}

/// Names from a template are data wherever they land in the SQL: a `%` in a `RAISE NOTICE`
/// format is doubled (PL/pgSQL took it for a placeholder and refused to compile the block),
/// a `$$` in a literal gets the block another dollar-quote tag (it ended the block), and a
/// line break in a comment is a space (the rest of the line was SQL).
#[test]
fn template_names_cannot_break_the_seed_sql() {
    let dir = tempfile::tempdir().unwrap();
    let stago = include_str!("../../../templates/stago_start4.json");
    let mut template: serde_json::Value = serde_json::from_str(stago).unwrap();
    template["analyzer"]["name"] = "Stago 100% $$ Lab\nDROP TABLE clinlims.analyzer; --".into();
    template["fields"][0]["name"] = "PT\nDELETE FROM clinlims.test; --".into();
    template["qc_controls"][0]["lot_number"] = "LOT\r\nTRUNCATE clinlims.test; --".into();
    std::fs::write(dir.path().join("stago_start4.json"), template.to_string()).unwrap();
    let sql = seed_sql_with(&["--templates-dir", &dir.path().display().to_string()]);
    let code = outside_literals_and_comments(&sql);
    for statement in ["DROP TABLE", "DELETE FROM", "TRUNCATE"] {
        assert!(!code.contains(statement), "a name became SQL: {statement}");
    }
    // One block, its tag found nowhere inside it.
    let open = sql.lines().find(|l| l.starts_with("DO $")).unwrap();
    let tag = open.strip_prefix("DO ").unwrap();
    assert!(
        tag.starts_with('$') && tag.ends_with('$') && tag != "$$",
        "{open}"
    );
    let body = &sql[sql.find(open).unwrap() + open.len()..];
    let end = format!("END {tag};");
    assert_eq!(body.matches(tag).count(), 1, "{tag} inside the block");
    assert!(
        body.trim_end().ends_with(&end),
        "{}",
        &body[body.len() - 40..]
    );
    // Each RAISE NOTICE has as many placeholders as arguments.
    for line in sql.lines().filter(|l| l.contains("RAISE NOTICE")) {
        let format = line.split('\'').nth(1).unwrap_or_default();
        let placeholders = format.replace("%%", "").matches('%').count();
        let arguments = line.rsplit('\'').next().unwrap().matches(',').count();
        if line.trim_end().ends_with(';') {
            assert_eq!(placeholders, arguments, "{line}");
        }
    }
    assert!(
        sql.contains("Created analyzer: Stago 100%% $$ Lab\nDROP TABLE"),
        "{sql}"
    );
}

/// The SQL text outside its string literals (`'...'`, `''` inside) and `--` comments.
fn outside_literals_and_comments(sql: &str) -> String {
    let mut code = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                while let Some(inner) = chars.next() {
                    if inner == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                code.push_str("''");
            }
            '-' if chars.peek() == Some(&'-') => {
                for inner in chars.by_ref() {
                    if inner == '\n' {
                        code.push('\n');
                        break;
                    }
                }
            }
            other => code.push(other),
        }
    }
    code
}

/// A control's SD is `round(target × %, 5)` computed as the reference's Python does: on the
/// binary value, ties to even. 0.0013 × 5 % is 6.4999…e-5 in binary, so 0.00006; the decimal
/// half-up rounding wrote 0.00007, and Rust's spelling `7e-5` where Python's `repr` writes
/// `7e-05`.
#[test]
fn control_sds_are_rounded_as_python_rounds_them() {
    let dir = tempfile::tempdir().unwrap();
    let micros = include_str!("../../../templates/horiba_micros60.json");
    let mut template: serde_json::Value = serde_json::from_str(micros).unwrap();
    template["qc_controls"][0]["target"] = 0.0013.into();
    std::fs::write(
        dir.path().join("horiba_micros60.json"),
        template.to_string(),
    )
    .unwrap();
    let sql = seed_sql_with(&["--templates-dir", &dir.path().display().to_string()]);
    let lot = sql
        .lines()
        .find(|l| l.contains("INSERT INTO clinlims.qc_control_lot") && l.contains("'LOT-WBC-N'"))
        .unwrap();
    // In Python's spelling: `6e-05` (Rust's own is `6e-5`).
    assert!(lot.contains(", 20, 0.0013, 6e-05, NOW()"), "{lot}");
}

/// Every control lot of a field is created, also when the SQL runs twice. Each lot was
/// guarded by "no analyzer_field named after the field code yet", and a field's first
/// lot makes that row, so its second control level (QuantStudio 5's LOT-HPC-26B) never
/// was. Run against a real PostgreSQL (a throwaway cluster on a Unix socket), where one
/// is installed.
#[test]
fn seed_sql_creates_every_control_lot_of_a_field() {
    let Some(pg) = Postgres::start() else {
        eprintln!("PostgreSQL (initdb, pg_ctl, psql) not found; skipped");
        return;
    };
    let out = command(&["seed-sql", "--seed", "1", "--now", "20260101120000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let seed = pg.dir.path().join("seed.sql");
    std::fs::write(&seed, &out.stdout).unwrap();
    let schema = pg.dir.path().join("schema.sql");
    std::fs::write(&schema, SCHEMA).unwrap();
    pg.psql_file(&schema);
    let lots = "SELECT string_agg(l.lot_number, ',' ORDER BY l.lot_number) FROM clinlims.qc_control_lot l \
         JOIN clinlims.analyzer a ON a.id = l.instrument_id WHERE a.name = 'QuantStudio 5'";
    pg.psql_file(&seed);
    assert_eq!(pg.query(lots).trim(), "LOT-HPC-26B,LOT-LPC-26B");
    // Again, as on a database seeded before: nothing twice.
    pg.psql_file(&seed);
    assert_eq!(pg.query(lots).trim(), "LOT-HPC-26B,LOT-LPC-26B");
    let per_lot = pg.query(
        "SELECT count(*) FROM clinlims.qc_statistics s JOIN clinlims.qc_control_lot l \
         ON l.id = s.control_lot_id GROUP BY l.id HAVING count(*) <> 1",
    );
    assert_eq!(
        per_lot.trim(),
        "",
        "lots without exactly one statistics row"
    );
}

/// The tables and sequences the seed SQL writes, as OpenELIS has them (columns it names).
const SCHEMA: &str = "
CREATE SCHEMA clinlims;
CREATE SEQUENCE clinlims.analyzer_type_seq; CREATE SEQUENCE clinlims.test_seq;
CREATE SEQUENCE clinlims.localization_seq; CREATE SEQUENCE clinlims.localization_value_seq;
CREATE SEQUENCE clinlims.analyzer_seq;
CREATE TABLE clinlims.analyzer_type (id int primary key, name text, description text, protocol text, plugin_class_name text, is_generic_plugin bool, is_active bool, last_updated timestamptz);
CREATE TABLE clinlims.localization (id numeric primary key, description text, lastupdated timestamptz);
CREATE TABLE clinlims.localization_value (id numeric primary key, localization_id numeric, locale text, value text, last_updated timestamptz);
CREATE TABLE clinlims.test (id int primary key, name text, description text, loinc text, is_active text, is_reportable text, orderable bool, test_section_id int, lastupdated timestamptz, guid text, name_localization_id numeric, reporting_name_localization_id numeric);
CREATE TABLE clinlims.analyzer (id int primary key, name text, machine_id text, description text, analyzer_type text, is_active bool, last_updated timestamptz, has_setup_page bool, analyzer_type_id int, identifier_pattern text, status text, protocol_version text, last_activated_date timestamptz);
CREATE TABLE clinlims.analyzer_test_map (analyzer_id int, analyzer_test_name text, test_id int, last_updated timestamptz, primary key (analyzer_id, analyzer_test_name));
CREATE TABLE clinlims.analyzer_field (id text primary key, analyzer_id int, field_name text, field_type text, unit text, is_active bool, last_updated timestamptz, sys_user_id text);
CREATE TABLE clinlims.analyzer_field_mapping (id text primary key, analyzer_field_id text, analyzer_id int, openelis_field_id text, openelis_field_type text, mapping_type text, is_active bool, is_required bool, version int, last_updated timestamptz, sys_user_id text);
CREATE TABLE clinlims.qc_control_lot (id text primary key, fhir_uuid uuid, product_name text, lot_number text, manufacturer text, control_level text, test_id int, instrument_id int, calculation_method text, initial_runs_count int, manufacturer_mean numeric, manufacturer_std_dev numeric, activation_date timestamptz, status text, sys_user_id int, last_updated timestamptz);
CREATE TABLE clinlims.qc_statistics (id text primary key, control_lot_id text, calculation_date timestamptz, mean numeric, standard_deviation numeric, num_values int, calculation_method text, validity_start timestamptz, sys_user_id int, last_updated timestamptz);
CREATE TABLE clinlims.westgard_rule_config (id text primary key, test_id int, instrument_id int, rule_code text, enabled bool, severity text, requires_corrective_action bool, sys_user_id int, last_updated timestamptz, unique (test_id, instrument_id, rule_code));
";

/// A throwaway PostgreSQL cluster on a Unix socket in a temporary directory (no TCP), run as
/// `postgres` when the test runs as root (initdb refuses root).
struct Postgres {
    dir: tempfile::TempDir,
    as_postgres: bool,
}

impl Postgres {
    const PORT: &'static str = "55439";

    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let mut cmd = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            std::process::Command::new(program)
        };
        cmd.args(args).output().expect(program)
    }

    fn start() -> Option<Self> {
        let found = |p: &str| {
            std::process::Command::new(p)
                .arg("--version")
                .output()
                .is_ok()
        };
        if !(found("initdb") && found("pg_ctl") && found("psql")) {
            return None;
        }
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let dir = tempfile::tempdir().unwrap();
        if root {
            assert!(
                std::process::Command::new("chown")
                    .args(["postgres", &dir.path().display().to_string()])
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let pg = Self {
            dir,
            as_postgres: root,
        };
        let data = pg.dir.path().join("data").display().to_string();
        let sock = pg.dir.path().display().to_string();
        let init = pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres"]);
        assert!(init.status.success(), "{init:?}");
        let opts = format!("-p {} -k {sock} -c listen_addresses=''", Self::PORT);
        let log = pg.dir.path().join("log").display().to_string();
        let up = pg.run(
            "pg_ctl",
            &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"],
        );
        assert!(up.status.success(), "{up:?}");
        Some(pg)
    }

    fn psql(&self, args: &[&str]) -> String {
        let sock = self.dir.path().display().to_string();
        let mut all = vec![
            "-h",
            &sock,
            "-p",
            Self::PORT,
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
        ];
        all.extend_from_slice(args);
        let out = self.run("psql", &all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn psql_file(&self, file: &std::path::Path) {
        let path = file.display().to_string();
        if self.as_postgres {
            // The file must be readable by postgres.
            let _ = std::process::Command::new("chmod")
                .args(["a+r", &path])
                .status();
        }
        self.psql(&["-f", &path]);
    }

    fn query(&self, sql: &str) -> String {
        self.psql(&["-c", sql])
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}
