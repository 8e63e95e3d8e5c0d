//! The shared record vectors (`records.jsonl`): field splitting, encoding, escapes.

mod common;

use astm_records::{Charset, Delimiters, Field, FieldBuf, Record, RecordBuf};
use serde_json::{Value, json};

fn vectors() -> Vec<Value> {
    let text = String::from_utf8(common::data("records.jsonl")).unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn text(bytes: &[u8]) -> Value {
    Value::String(Charset::Auto.decode(bytes).into_owned())
}

/// python-astm's decoded shape: empty → null, one component → string, else a list (empty → null);
/// several repeats → a list of those.
fn python_shape(field: &Field<'_>) -> Value {
    if field.is_empty() {
        return Value::Null;
    }
    let repeat_shape = |r: astm_records::Repeat<'_>| {
        let components: Vec<Value> = r
            .components()
            .map(|c| {
                if c.is_empty() {
                    Value::Null
                } else {
                    text(&c.unescaped())
                }
            })
            .collect();
        match components.as_slice() {
            [single] => single.clone(),
            _ => Value::Array(components),
        }
    };
    let repeats: Vec<Value> = field.repeats().map(repeat_shape).collect();
    match repeats.as_slice() {
        [single] => single.clone(),
        _ => Value::Array(repeats),
    }
}

/// Our own shape for the omnilab dictionaries: string, components, or repeats of components.
fn check_keyed(record: &Record<'_>, key: &str, expected: &Value) {
    let path = key.split(' ').next().unwrap();
    let numbers: Vec<usize> = path
        .split('.')
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect();
    let field = record.field(numbers[0]);
    let found = if let Some(&component) = numbers.get(1) {
        text(&field.component(component).unescaped())
    } else if key.contains("timestamp") {
        let stamp = field.timestamp().unwrap().unwrap();
        json!(
            stamp
                .to_naive_datetime()
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        )
    } else {
        match expected {
            Value::String(_) => text(&field.unescaped()),
            Value::Array(items) if items.iter().all(Value::is_string) => {
                Value::Array(field.components().map(|c| text(&c.unescaped())).collect())
            }
            _ => Value::Array(
                field
                    .repeats()
                    .map(|r| Value::Array(r.components().map(|c| text(&c.unescaped())).collect()))
                    .collect(),
            ),
        }
    };
    assert_eq!(&found, expected, "{key} of {:?}", record);
}

fn field_buf(value: &Value) -> FieldBuf {
    match value {
        Value::Null => FieldBuf::empty(),
        Value::String(s) => FieldBuf::text(s.as_str()),
        Value::Number(n) => FieldBuf::text(n.to_string()),
        Value::Array(items) => FieldBuf::components(items.iter().map(|v| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        other => panic!("unexpected field value {other}"),
    }
}

#[test]
fn all_record_vectors() {
    let d = Delimiters::STANDARD;
    let mut checked = 0;
    for vector in vectors() {
        let id = vector["id"].as_str().unwrap();
        let record = vector["record"]
            .as_str()
            .map(|r| Record::parse(r.as_bytes(), &d).unwrap());
        if let (Some(record), Some(Value::Array(expected))) =
            (&record, vector.get("expected_fields"))
        {
            let found: Vec<Value> = record.fields().map(|f| python_shape(&f)).collect();
            assert_eq!(&found, expected, "{id}");
        } else if let (Some(record), Some(Value::Object(expected))) =
            (&record, vector.get("expected_fields"))
        {
            for (key, value) in expected {
                check_keyed(record, key, value);
            }
        } else if let Some(Value::String(expected)) = vector.get("expected_encode_of_decode") {
            let record = record.unwrap();
            assert_eq!(
                RecordBuf::from_record(&record).to_bytes(&d).unwrap(),
                expected.as_bytes(),
                "{id}"
            );
            // Also through decoded values: repeats of unescaped components, escaped again on output.
            let rebuilt = RecordBuf::from_fields(record.fields().map(|f| {
                FieldBuf::repeats(f.repeats().map(|r| {
                    r.components()
                        .map(|c| c.unescaped().into_owned())
                        .collect::<Vec<_>>()
                }))
            }));
            assert_eq!(rebuilt.to_bytes(&d).unwrap(), expected.as_bytes(), "{id}");
        } else if let Some(Value::String(expected)) = vector.get("expected_record") {
            let fields = vector["fields"].as_array().unwrap().iter().map(field_buf);
            assert_eq!(
                RecordBuf::from_fields(fields).to_bytes(&d).unwrap(),
                expected.as_bytes(),
                "{id}"
            );
        } else if let Some(component) = vector.get("component") {
            let written = RecordBuf::from_fields([field_buf(component)])
                .to_bytes(&d)
                .unwrap();
            assert_eq!(
                written,
                vector["expected"].as_str().unwrap().as_bytes(),
                "{id}"
            );
        } else if let Some(Value::Array(repeats)) = vector.get("repeats") {
            let field = FieldBuf::repeats(repeats.iter().map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
            }));
            let written = RecordBuf::from_fields([field]).to_bytes(&d).unwrap();
            assert_eq!(
                written,
                vector["expected"].as_str().unwrap().as_bytes(),
                "{id}"
            );
        } else if let Some(Value::String(expected)) = vector.get("expected_comment_text") {
            let record = record.unwrap();
            let comment = astm_records::Comment::new(record).unwrap();
            assert_eq!(comment.text().text(), *expected, "{id}");
        } else {
            panic!("vector {id} has a shape this test does not know");
        }
        checked += 1;
    }
    assert_eq!(checked, 16);
}

/// A flag or status read from a result can be written back with the builders: every variant
/// with a code goes through `ResultBuilder` and parses back to itself.
#[test]
fn flags_and_statuses_write_back_through_the_builder() {
    use astm_records::{
        AbnormalFlag, Delimiters, Record, ResultBuilder, ResultRecord, ResultStatus,
    };
    let flags = [
        AbnormalFlag::Low,
        AbnormalFlag::High,
        AbnormalFlag::PanicLow,
        AbnormalFlag::PanicHigh,
        AbnormalFlag::BelowScale,
        AbnormalFlag::AboveScale,
        AbnormalFlag::Normal,
        AbnormalFlag::Abnormal,
        AbnormalFlag::ChangeUp,
        AbnormalFlag::ChangeDown,
        AbnormalFlag::Better,
        AbnormalFlag::Worse,
    ];
    let statuses = [
        ResultStatus::Correction,
        ResultStatus::Preliminary,
        ResultStatus::Final,
        ResultStatus::CannotBeDone,
        ResultStatus::Pending,
        ResultStatus::Partial,
        ResultStatus::MicLevel,
        ResultStatus::Retransmitted,
        ResultStatus::NewOrderInformation,
        ResultStatus::QueryResponse,
        ResultStatus::Verified,
        ResultStatus::Warning,
    ];
    for (flag, status) in flags.into_iter().zip(statuses) {
        let bytes = ResultBuilder::new()
            .sequence(1)
            .value("1")
            .abnormal_flags(flag)
            .status(status)
            .build()
            .to_bytes(&Delimiters::STANDARD)
            .unwrap();
        let record = Record::parse(&bytes, &Delimiters::STANDARD).unwrap();
        let result = ResultRecord::new(record).unwrap();
        assert_eq!(result.abnormal_flag_list().collect::<Vec<_>>(), [flag]);
        assert_eq!(result.result_status(), Some(status));
        assert_eq!(AbnormalFlag::parse(flag.code().unwrap().as_bytes()), flag);
    }
    assert_eq!(AbnormalFlag::Other.code(), None);
    assert_eq!(ResultStatus::Other.code(), None);
    let bytes = ResultBuilder::new()
        .abnormal_flags(AbnormalFlag::Other)
        .status(ResultStatus::Other)
        .build()
        .to_bytes(&Delimiters::STANDARD)
        .unwrap();
    assert_eq!(bytes, b"R||||||||", "R.7 and R.9 empty");
}

#[test]
fn typed_text_helpers_decode_with_the_links_character_set() {
    use astm_records::{Query, ResultRecord};
    let raw = "R|1|^Gr\u{fc}n^^Xpert^^^S\u{e4}ule^Ct|n\u{e9}g&S&atif^|\u{b5}mol/L";
    let record = Record::parse(raw.as_bytes(), &Delimiters::STANDARD).unwrap();
    let result = ResultRecord::new(record).unwrap();
    for charset in [Charset::Auto, Charset::Utf8Lossy] {
        assert_eq!(result.test_code_as(charset).as_deref(), Some("Gr\u{fc}n"));
        assert_eq!(
            result.test_id().result_name_as(charset).as_deref(),
            Some("S\u{e4}ule")
        );
        assert_eq!(
            result
                .test_id()
                .complementary_result_name_as(charset)
                .as_deref(),
            Some("Ct")
        );
        assert_eq!(result.value_text_as(charset), "n\u{e9}g^atif");
        assert_eq!(result.units_text_as(charset), "\u{b5}mol/L");
    }
    // The plain helpers stay Latin-1: each UTF-8 byte becomes one character.
    assert_eq!(result.test_code().as_deref(), Some("Gr\u{c3}\u{bc}n"));
    assert_eq!(result.value_text(), "n\u{c3}\u{a9}g^atif");
    assert_eq!(result.units_text(), "\u{c2}\u{b5}mol/L");
    // Latin-1 bytes read as Auto fall back to Latin-1 rather than U+FFFD.
    let latin = Record::parse(b"R|1|^^^GL\xdc|5|\xb5mol/L", &Delimiters::STANDARD).unwrap();
    let latin = ResultRecord::new(latin).unwrap();
    assert_eq!(
        latin.test_code_as(Charset::Auto).as_deref(),
        Some("GL\u{dc}")
    );
    assert_eq!(latin.units_text_as(Charset::Utf8Lossy), "\u{fffd}mol/L");

    let raw = "Q|1|J\u{f6}rg^S-\u{e9}1||ALL||||||||O";
    let query = Query::new(Record::parse(raw.as_bytes(), &Delimiters::STANDARD).unwrap()).unwrap();
    assert_eq!(
        query.requested_patient_id_as(Charset::Auto).as_deref(),
        Some("J\u{f6}rg")
    );
    assert_eq!(
        query.requested_specimen_id_as(Charset::Auto).as_deref(),
        Some("S-\u{e9}1")
    );
}
