//! `simulator seed-sql`: the SQL that seeds OpenELIS with the analyzers, tests, QC lots and
//! Westgard rules of the templates, as the reference's `generate_analyzer_sql.py` does.
//!
//! The output is one PL/pgSQL `DO $$ … $$` block, idempotent like the reference's (existing
//! analyzers and tests are reused, inserts are guarded). ASTM templates produce exactly the
//! reference's statements; HL7 and FILE templates, which the reference skips, get the same
//! statements with an analyzer type and protocol of their own. Profile-backed templates get the
//! fields of their profile (the reference reads raw JSON and gives them none).

use std::collections::HashSet;
use std::fmt::Write as _;

use chrono::NaiveDateTime;
use lis_templates::{Category, Field, ProtocolKind, Template, TemplateSet};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// OpenELIS catalog names of analyzer codes, with their LOINC: the reference's
/// `CODE_TO_TEST_NAME` / `LOINC_TO_TEST_NAME`, as its output shows them. A field whose code
/// (or, failing that, LOINC) is listed maps to the catalog test of that name; any other field
/// gets a new test named after the field.
const CATALOG: &[(&str, &str, &str)] = &[
    ("WBC", "6690-2", "White Blood Cells Count (WBC)"),
    ("RBC", "789-8", "Red Blood Cells Count (RBC)"),
    ("HGB", "718-7", "Hemoglobin"),
    ("HCT", "4544-3", "Hematocrit"),
    ("MCV", "787-2", "Medium corpuscular volum"),
    ("MCH", "785-6", "TMCH"),
    ("MCHC", "786-4", "CMCH"),
    ("PLT", "777-3", "Platelets"),
    ("LYM%", "736-9", "Lymphocytes (%)"),
    ("LYM#", "731-0", "Lymphocytes (Abs)"),
    ("MON%", "5905-5", "Monocytes (%)"),
    ("MON#", "742-7", "Monocytes (Abs)"),
    ("NEU%", "770-8", "Neutrophiles (%)"),
    ("NEU#", "751-8", "Neutrophiles"),
    ("EOS%", "713-8", "Eosinophiles (%)"),
    ("EOS#", "711-2", "Eosinophiles"),
    ("BAS%", "706-2", "Basophiles (%)"),
    ("BAS#", "704-7", "Basophiles"),
];

/// The eight Westgard rules seeded per lot: code, severity, corrective action required. 4₁ₛ is
/// WARNING as in the reference's SQL (OpenELIS's evaluator treats it as a rejection).
const WESTGARD_RULES: [(&str, &str, bool); 8] = [
    ("1₂ₛ", "WARNING", false),
    ("1₃ₛ", "REJECTION", true),
    ("2₂ₛ", "REJECTION", true),
    ("R₄ₛ", "REJECTION", true),
    ("3₁ₛ", "WARNING", false),
    ("4₁ₛ", "WARNING", false),
    ("7ₜ", "WARNING", false),
    ("10ₓ", "REJECTION", true),
];

/// The OpenELIS analyzer type of a protocol family: SQL variable, name, `protocol`, plugin class.
#[derive(Debug, Clone, Copy)]
struct AnalyzerType {
    variable: &'static str,
    name: &'static str,
    protocol: &'static str,
    plugin: &'static str,
}

const ASTM_TYPE: AnalyzerType = AnalyzerType {
    variable: "v_generic_astm_type_id",
    name: "Generic ASTM",
    protocol: "ASTM_LIS2_A2",
    plugin: "org.openelisglobal.plugins.analyzer.genericastm.GenericASTMAnalyzer",
};
const HL7_TYPE: AnalyzerType = AnalyzerType {
    variable: "v_generic_hl7_type_id",
    name: "Generic HL7",
    protocol: "HL7_V2",
    plugin: "org.openelisglobal.plugins.analyzer.generichl7.GenericHL7Analyzer",
};
const FILE_TYPE: AnalyzerType = AnalyzerType {
    variable: "v_generic_file_type_id",
    name: "Generic File",
    protocol: "FILE",
    plugin: "org.openelisglobal.plugins.analyzer.genericfile.GenericFileAnalyzer",
};

fn analyzer_type(kind: ProtocolKind) -> AnalyzerType {
    match kind {
        ProtocolKind::Hl7 => HL7_TYPE,
        ProtocolKind::File => FILE_TYPE,
        _ => ASTM_TYPE,
    }
}

/// OpenELIS test section of a category (the reference's table); no category: hematology's.
fn test_section(category: Option<Category>) -> u32 {
    match category.map(Category::as_str) {
        Some("CHEMISTRY" | "COAGULATION") => 56,
        Some("IMMUNOLOGY") => 59,
        Some("MICROBIOLOGY") => 57,
        Some("MOLECULAR") => 136,
        _ => 36,
    }
}

/// A SQL string literal.
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Text for a `--` comment: a line break would end the comment and make the rest SQL.
fn comment(text: &str) -> String {
    text.replace(|c: char| c.is_control(), " ")
}

/// Text for the format of a `RAISE NOTICE`, where `%` is a placeholder.
fn notice(text: &str) -> String {
    text.replace('%', "%%")
}

/// `sql`, one `DO $$ ... END $$;` block, with another dollar-quote tag when `$$` occurs
/// inside it (a template's name, say), which would end the block there.
fn dollar_quoted(sql: String) -> String {
    let (open, close) = ("DO $$\n", "END $$;");
    let (Some(start), Some(end)) = (sql.find(open), sql.rfind(close)) else {
        return sql;
    };
    let body = &sql[start + open.len()..end];
    if !body.contains("$$") {
        return sql;
    }
    let tag = (0u32..)
        .map(|n| format!("$seed{n}$"))
        .find(|tag| !body.contains(tag.as_str()))
        .unwrap_or_default();
    format!(
        "{}DO {tag}\n{body}END {tag};{}",
        &sql[..start],
        &sql[end + close.len()..]
    )
}

/// A SQL string literal, or NULL.
fn lit_or_null(text: Option<&str>) -> String {
    text.filter(|t| !t.is_empty())
        .map_or_else(|| "NULL".into(), lit)
}

/// Python's `re.escape` (3.7+): a regex that matches `text` literally.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A regex for a file-name glob (`*` any run, `?` one character).
fn glob_regex(glob: &str) -> String {
    let mut out = String::new();
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c => out.push_str(&regex_escape(&c.to_string())),
        }
    }
    out
}

/// A number as Python's `repr` writes it (`198.0`, `6.2`, `0.2175`, `6e-05`, `1e+16`).
fn number(value: f64) -> String {
    // Rust's `Debug` picks the same digits and switches to an exponent at the same magnitudes
    // (below 1e-4, from 1e16); Python writes the exponent signed and with two digits at least.
    let text = format!("{value:?}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = exponent
                .strip_prefix('-')
                .map_or(("+", exponent), |digits| ("-", digits));
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

/// How the template identifies itself to the bridge: the ASTM H.5 sender, the HL7 MSH-3
/// application, or the result files' name pattern.
fn identifier(t: &Template) -> Option<(String, String)> {
    let id = &t.identification;
    let text = match t.protocol.kind {
        ProtocolKind::Hl7 => id.hl7_sending_app.as_deref().or(id.msh_sender.as_deref())?,
        ProtocolKind::File => {
            let pattern = id.file_pattern.as_deref()?;
            return Some((pattern.chars().take(20).collect(), glob_regex(pattern)));
        }
        _ => id.astm_header.as_deref()?,
    };
    (!text.is_empty()).then(|| (text.chars().take(20).collect(), regex_escape(text)))
}

/// The catalog test a field maps to: `(name, known in the catalog)`.
fn catalog_name(field: &Field) -> (String, bool) {
    if let Some((_, _, name)) = CATALOG.iter().find(|(code, _, _)| *code == field.code) {
        return ((*name).to_owned(), true);
    }
    if let Some(loinc) = field.loinc.as_deref()
        && let Some((_, _, name)) = CATALOG.iter().find(|(_, l, _)| *l == loinc)
    {
        return ((*name).to_owned(), true);
    }
    (field.name.clone(), false)
}

/// The `WHERE` condition that finds a field's test: by LOINC or name.
fn test_condition(field: &Field) -> String {
    let (name, _) = catalog_name(field);
    match field.loinc.as_deref().filter(|l| !l.is_empty()) {
        Some(loinc) => format!("(loinc = {} OR name = {})", lit(loinc), lit(&name)),
        None => format!("name = {}", lit(&name)),
    }
}

/// Options of the generator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeedOptions {
    /// Time stamp written into `lastupdated` columns and the header.
    pub(crate) now: NaiveDateTime,
    /// Seed for the test GUIDs (random without).
    pub(crate) seed: Option<u64>,
}

/// The seed SQL for every template of `set`, in name order.
pub(crate) fn generate(set: &TemplateSet, options: SeedOptions) -> String {
    let mut templates: Vec<&Template> = set.iter().collect();
    templates.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rng = match options.seed {
        Some(s) => Xoshiro256PlusPlus::seed_from_u64(s),
        None => Xoshiro256PlusPlus::seed_from_u64(rand::rng().random()),
    };
    let stamp = options.now.format("%Y-%m-%d %H:%M:%S+00").to_string();
    let ts = lit(&stamp);
    let mut sql = String::new();
    let w = &mut sql;
    // Writing into a String cannot fail.
    let _ = write_prologue(w, &stamp, &templates);

    // 1. Tests missing from the catalog, once each, in order of first appearance.
    let mut new_tests: Vec<(&Template, &Field)> = Vec::new();
    let mut seen = HashSet::new();
    for t in &templates {
        for f in &t.fields {
            if !f.code.is_empty() && !catalog_name(f).1 && seen.insert(f.code.clone()) {
                new_tests.push((t, f));
            }
        }
    }
    let _ = writeln!(
        w,
        "    -- 1. New tests ({} missing from OE catalog)",
        new_tests.len()
    );
    let _ = writeln!(
        w,
        "    -- --------------------------------------------------------"
    );
    for (t, f) in &new_tests {
        let guid = uuid_v4(&mut rng);
        let _ = write_new_test(w, t, f, &ts, &guid);
    }
    let _ = writeln!(w);

    // 2-6. Analyzers.
    let mut lots = 0usize;
    for t in &templates {
        let _ = write_analyzer(w, t, &ts, &mut lots);
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "    RAISE NOTICE 'Seed complete: % analyzers, % QC control lots',"
    );
    let _ = writeln!(w, "        {}, {lots};", templates.len());
    let _ = writeln!(w);
    let _ = writeln!(w, "END $$;");
    dollar_quoted(sql)
}

fn write_prologue(w: &mut String, stamp: &str, templates: &[&Template]) -> std::fmt::Result {
    writeln!(
        w,
        "-- =========================================================="
    )?;
    writeln!(w, "-- OpenELIS Analyzer Seed SQL")?;
    writeln!(w, "-- Generated: {stamp}")?;
    writeln!(w, "-- Source: analyzer-mock-server templates")?;
    writeln!(
        w,
        "-- =========================================================="
    )?;
    writeln!(w)?;
    writeln!(w, "DO $$")?;
    writeln!(w, "DECLARE")?;
    writeln!(w, "    v_sys_user_id INTEGER := 1;")?;
    writeln!(w, "    v_generic_astm_type_id INTEGER;")?;
    writeln!(w, "    v_generic_hl7_type_id INTEGER;")?;
    writeln!(w, "    v_generic_file_type_id INTEGER;")?;
    writeln!(w, "    v_analyzer_id INTEGER;")?;
    writeln!(w, "    v_test_id INTEGER;")?;
    writeln!(w, "    v_field_id TEXT;")?;
    writeln!(w, "    v_lot_field_id TEXT;")?;
    writeln!(w, "    v_lot_id TEXT;")?;
    writeln!(w, "    v_name_loc_id NUMERIC;")?;
    writeln!(w, "    v_report_loc_id NUMERIC;")?;
    writeln!(w, "BEGIN")?;
    let mut kinds = vec![ASTM_TYPE];
    for t in templates {
        let k = analyzer_type(t.protocol.kind);
        if !kinds.iter().any(|x| x.variable == k.variable) {
            kinds.push(k);
        }
    }
    for k in kinds {
        writeln!(w)?;
        let short = k.name.trim_start_matches("Generic ");
        writeln!(w, "    -- Resolve {} analyzer type", k.name)?;
        writeln!(w, "    SELECT id INTO {}", k.variable)?;
        writeln!(w, "    FROM clinlims.analyzer_type")?;
        writeln!(w, "    WHERE plugin_class_name = {}", lit(k.plugin))?;
        writeln!(w, "    LIMIT 1;")?;
        writeln!(w)?;
        writeln!(
            w,
            "    -- Self-provision the {} type when the plugin isn't loaded.",
            k.name
        )?;
        if k.variable == ASTM_TYPE.variable {
            writeln!(
                w,
                "    -- In the bridge-mandatory flow the bridge parses ASTM->FHIR, so OE"
            )?;
            writeln!(
                w,
                "    -- needs only this row for analyzer.analyzer_type_id to resolve."
            )?;
        }
        writeln!(w, "    IF {} IS NULL THEN", k.variable)?;
        writeln!(w, "        INSERT INTO clinlims.analyzer_type")?;
        writeln!(
            w,
            "        (id, name, description, protocol, plugin_class_name, is_generic_plugin, is_active, last_updated)"
        )?;
        writeln!(
            w,
            "        VALUES (nextval('clinlims.analyzer_type_seq'), {}, 'Auto-provisioned by analyzer seed', {}, {}, TRUE, TRUE, NOW())",
            lit(k.name),
            lit(k.protocol),
            lit(k.plugin)
        )?;
        writeln!(w, "        RETURNING id INTO {};", k.variable)?;
        writeln!(
            w,
            "        RAISE NOTICE 'Provisioned Generic {short} analyzer_type (id=%)', {};",
            k.variable
        )?;
        writeln!(w, "    END IF;")?;
    }
    writeln!(w)
}

fn write_new_test(
    w: &mut String,
    t: &Template,
    f: &Field,
    ts: &str,
    guid: &str,
) -> std::fmt::Result {
    let description = format!("{}({})", f.name, f.code);
    let name = lit(&f.name);
    writeln!(
        w,
        "    -- Test: {} ({})",
        comment(&f.name),
        comment(&f.code)
    )?;
    writeln!(
        w,
        "    IF NOT EXISTS (SELECT 1 FROM clinlims.test WHERE description = {}) THEN",
        lit(&description)
    )?;
    for (var, what) in [
        ("v_name_loc_id", "test name"),
        ("v_report_loc_id", "test report name"),
    ] {
        writeln!(w, "        {var} := nextval('clinlims.localization_seq');")?;
        writeln!(
            w,
            "        INSERT INTO clinlims.localization (id, description, lastupdated) VALUES ({var}, '{what}', NOW());"
        )?;
        writeln!(
            w,
            "        INSERT INTO clinlims.localization_value (id, localization_id, locale, value, last_updated) VALUES (nextval('clinlims.localization_value_seq'), {var}, 'en', {name}, NOW());"
        )?;
    }
    writeln!(
        w,
        "        INSERT INTO clinlims.test (id, name, description, loinc, is_active, is_reportable, orderable, test_section_id, lastupdated, guid, name_localization_id, reporting_name_localization_id) VALUES (nextval('clinlims.test_seq'), {name}, {}, {}, 'Y', 'Y', TRUE, {}, {ts}, {}, v_name_loc_id, v_report_loc_id);",
        lit(&description),
        lit_or_null(f.loinc.as_deref()),
        test_section(t.analyzer.category),
        lit(guid)
    )?;
    writeln!(w, "    END IF;")?;
    writeln!(w)
}

fn write_analyzer(w: &mut String, t: &Template, ts: &str, lots: &mut usize) -> std::fmt::Result {
    let a = &t.analyzer;
    let name = lit(&a.name);
    let kind = analyzer_type(t.protocol.kind);
    let identifier = identifier(t);
    let status = if identifier.is_some() {
        "ACTIVE"
    } else {
        "SETUP"
    };
    writeln!(w)?;
    writeln!(
        w,
        "    -- ========== {} [{status}] ==========",
        comment(&a.name)
    )?;
    writeln!(
        w,
        "    -- template: {} ({})",
        comment(&t.name),
        t.protocol.kind.as_str()
    )?;
    writeln!(w)?;
    writeln!(w, "    -- 2. Analyzer")?;
    writeln!(
        w,
        "    SELECT id INTO v_analyzer_id FROM clinlims.analyzer WHERE name = {name} LIMIT 1;"
    )?;
    writeln!(w, "    IF v_analyzer_id IS NULL THEN")?;
    let (machine_id, pattern) = match &identifier {
        Some((m, p)) => (lit(m), lit(p)),
        None => ("NULL".into(), "NULL".into()),
    };
    writeln!(
        w,
        "        INSERT INTO clinlims.analyzer (id, name, machine_id, description, analyzer_type, is_active, last_updated, has_setup_page, analyzer_type_id, identifier_pattern, status, protocol_version, last_activated_date) VALUES (nextval('clinlims.analyzer_seq'), {name}, {machine_id}, {}, {}, TRUE, NOW(), FALSE, {}, {pattern}, '{status}', {}, {}) RETURNING id INTO v_analyzer_id;",
        lit(&format!("{} {}", a.manufacturer, a.model)),
        lit(a.category.map_or("", Category::as_str)),
        kind.variable,
        lit(kind.protocol),
        if identifier.is_some() {
            "NOW()"
        } else {
            "NULL"
        }
    )?;
    writeln!(
        w,
        "        RAISE NOTICE 'Created analyzer: {} (id=%)', v_analyzer_id;",
        notice(&a.name).replace('\'', "''")
    )?;
    writeln!(w, "    ELSE")?;
    writeln!(
        w,
        "        RAISE NOTICE 'Reusing existing analyzer: {} (id=%)', v_analyzer_id;",
        notice(&a.name).replace('\'', "''")
    )?;
    writeln!(w, "    END IF;")?;
    writeln!(w)?;
    writeln!(w, "    -- 3. Analyzer → test mappings")?;
    for f in t.fields.iter().filter(|f| !f.code.is_empty()) {
        writeln!(
            w,
            "    INSERT INTO clinlims.analyzer_test_map (analyzer_id, analyzer_test_name, test_id, last_updated) VALUES (v_analyzer_id, {}, (SELECT id FROM clinlims.test WHERE {} LIMIT 1), {ts}) ON CONFLICT DO NOTHING;",
            lit(&f.code),
            test_condition(f)
        )?;
    }
    writeln!(w)?;
    writeln!(w, "    -- 4. Analyzer fields (NUMERIC + CONTROL_TEST)")?;
    writeln!(w, "    -- 5. Field mappings (TEST + QC)")?;
    writeln!(w, "    -- 6. QC control lots + statistics")?;
    // Fields whose first lot is written: a second lot (another control level of the same
    // analyte) adds only its own rows.
    let mut fields_with_a_lot: Vec<&str> = Vec::new();
    for control in &t.qc_controls {
        let Some(field) = t.fields.iter().find(|f| f.code == control.field_code) else {
            writeln!(w)?;
            writeln!(
                w,
                "    -- QC {}: no such field in the template; skipped",
                comment(&control.field_code)
            )?;
            continue;
        };
        let target = control.target.or_else(|| {
            field
                .seed_value
                .as_ref()
                .and_then(serde_json::Number::as_f64)
        });
        let Some(target) = target else {
            writeln!(w)?;
            writeln!(
                w,
                "    -- QC {}: no target and no seedValue; skipped",
                comment(&control.field_code)
            )?;
            continue;
        };
        // `round(target × %, 5)` as the reference computes it, in binary, ties to even.
        let sd = qc_westgard_gen::python_round(
            qc_westgard_gen::sd_for(target, control.sd, a.category),
            5,
        );
        *lots += 1;
        let first_of_field = !fields_with_a_lot.contains(&field.code.as_str());
        fields_with_a_lot.push(&field.code);
        write_qc_lot(w, t, field, control, (target, sd), first_of_field)?;
    }
    Ok(())
}

fn write_qc_lot(
    w: &mut String,
    t: &Template,
    field: &Field,
    control: &lis_templates::QcControl,
    (target, sd): (f64, f64),
    first_of_field: bool,
) -> std::fmt::Result {
    let a = &t.analyzer;
    let code = &field.code;
    let lot = control.lot();
    let level = control.level();
    let control_level = match level {
        "L" => "LOW",
        "H" => "HIGH",
        _ => "NORMAL",
    };
    let level_name = control
        .level_name
        .clone()
        .unwrap_or_else(|| level.to_owned());
    let condition = test_condition(field);
    let (catalog, _) = catalog_name(field);
    let missing = match field.loinc.as_deref().filter(|l| !l.is_empty()) {
        Some(loinc) => format!("LOINC {loinc}"),
        None => format!("name {catalog}"),
    };
    let (target_s, sd_s) = (number(target), number(sd));
    writeln!(w)?;
    writeln!(
        w,
        "    -- {}: lot={}, target={target_s}, SD={sd_s}",
        comment(code),
        comment(&lot)
    )?;
    writeln!(
        w,
        "    SELECT id INTO v_test_id FROM clinlims.test WHERE {condition} LIMIT 1;"
    )?;
    writeln!(w, "    IF v_test_id IS NULL THEN")?;
    writeln!(
        w,
        "        RAISE NOTICE {};",
        lit(&notice(&format!(
            "Skip QC {code} on {}: no catalog test ({missing})",
            a.name
        )))
    )?;
    if first_of_field {
        // The reference's block: the field, its test mapping and its first lot, once.
        writeln!(
            w,
            "    ELSIF NOT EXISTS (SELECT 1 FROM clinlims.analyzer_field WHERE analyzer_id = v_analyzer_id AND field_name = {}) THEN",
            lit(code)
        )?;
        writeln!(w, "        v_field_id := gen_random_uuid()::text;")?;
        writeln!(
            w,
            "        INSERT INTO clinlims.analyzer_field (id, analyzer_id, field_name, field_type, unit, is_active, last_updated, sys_user_id) VALUES (v_field_id, v_analyzer_id, {}, 'NUMERIC', {}, true, NOW(), v_sys_user_id::text);",
            lit(code),
            lit(field.unit_str())
        )?;
        writeln!(
            w,
            "        INSERT INTO clinlims.analyzer_field_mapping (id, analyzer_field_id, analyzer_id, openelis_field_id, openelis_field_type, mapping_type, is_active, is_required, version, last_updated, sys_user_id) VALUES (gen_random_uuid()::text, v_field_id, v_analyzer_id, v_test_id::text, 'TEST', 'TEST_LEVEL', true, false, 0, NOW(), v_sys_user_id::text);"
        )?;
    } else {
        // Another level of a field already written: the reference's guard (the field's
        // row) would skip it, as the first lot made that row. Its own rows, once.
        writeln!(
            w,
            "    ELSIF NOT EXISTS (SELECT 1 FROM clinlims.qc_control_lot WHERE instrument_id = v_analyzer_id AND lot_number = {}) THEN",
            lit(&lot)
        )?;
    }
    writeln!(w, "        v_lot_field_id := gen_random_uuid()::text;")?;
    writeln!(
        w,
        "        INSERT INTO clinlims.analyzer_field (id, analyzer_id, field_name, field_type, is_active, last_updated, sys_user_id) VALUES (v_lot_field_id, v_analyzer_id, {}, 'CONTROL_TEST', true, NOW(), v_sys_user_id::text);",
        lit(&lot)
    )?;
    writeln!(w, "        v_lot_id := gen_random_uuid()::text;")?;
    writeln!(
        w,
        "        INSERT INTO clinlims.qc_control_lot (id, fhir_uuid, product_name, lot_number, manufacturer, control_level, test_id, instrument_id, calculation_method, initial_runs_count, manufacturer_mean, manufacturer_std_dev, activation_date, status, sys_user_id, last_updated) VALUES (v_lot_id, gen_random_uuid(), {}, {}, {}, '{control_level}', v_test_id, v_analyzer_id, 'MANUFACTURER_FIXED', 20, {target_s}, {sd_s}, NOW(), 'ACTIVE', v_sys_user_id, NOW());",
        lit(&format!("{} {code} Control {level_name}", a.name)),
        lit(&lot),
        lit(&a.manufacturer)
    )?;
    writeln!(
        w,
        "        INSERT INTO clinlims.analyzer_field_mapping (id, analyzer_field_id, analyzer_id, openelis_field_id, openelis_field_type, mapping_type, is_active, is_required, version, last_updated, sys_user_id) VALUES (gen_random_uuid()::text, v_lot_field_id, v_analyzer_id, v_lot_id, 'QC', 'TEST_LEVEL', true, false, 0, NOW(), v_sys_user_id::text);"
    )?;
    writeln!(
        w,
        "        INSERT INTO clinlims.qc_statistics (id, control_lot_id, calculation_date, mean, standard_deviation, num_values, calculation_method, validity_start, sys_user_id, last_updated) VALUES (gen_random_uuid()::text, v_lot_id, NOW(), {target_s}, {sd_s}, 20, 'MANUFACTURER_FIXED', NOW(), v_sys_user_id, NOW());"
    )?;
    writeln!(w, "    END IF;")?;
    writeln!(w, "    IF v_test_id IS NOT NULL THEN")?;
    for (rule, severity, corrective) in WESTGARD_RULES {
        writeln!(
            w,
            "        INSERT INTO clinlims.westgard_rule_config (id, test_id, instrument_id, rule_code, enabled, severity, requires_corrective_action, sys_user_id, last_updated) VALUES (gen_random_uuid()::text, v_test_id, v_analyzer_id, '{rule}', true, '{severity}', {corrective}, v_sys_user_id, NOW()) ON CONFLICT (test_id, instrument_id, rule_code) DO NOTHING;"
        )?;
    }
    writeln!(w, "    END IF;")
}

/// A random (version 4) UUID, from `rng` so a seed reproduces it.
fn uuid_v4(rng: &mut Xoshiro256PlusPlus) -> String {
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::number;

    /// As Python's `repr(float)` spells them.
    #[test]
    fn numbers_are_spelled_as_python_repr() {
        for (value, python) in [
            (198.0, "198.0"),
            (0.2175, "0.2175"),
            (0.0001, "0.0001"),
            (6e-5, "6e-05"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1.5e20, "1.5e+20"),
            (1e100, "1e+100"),
            (-2.5e-300, "-2.5e-300"),
        ] {
            assert_eq!(number(value), python);
        }
    }
}
