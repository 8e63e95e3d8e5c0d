//! Fuzzes the E1394 record layer: splitting, typed views, escapes, timestamps and message validation
//! must never panic, and every accepted record must serialise back to its exact bytes.
#![no_main]

use astm_records::{Message, RecordBuf, TypedRecord, parse_records, split_messages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rebuilt = Vec::new();
    let mut all_ok = true;
    for record in parse_records(data) {
        let Ok(record) = record else {
            all_ok = false;
            continue;
        };
        // serialise(parse(x)) == x, field by field.
        let written = RecordBuf::from_record(&record)
            .to_bytes(record.delimiters())
            .expect("a parsed record can always be written back");
        assert_eq!(written, record.raw());
        rebuilt.extend_from_slice(record.raw());
        rebuilt.extend_from_slice(record.terminator());

        for field in record.fields() {
            let _ = field.text();
            let _ = field.timestamp();
            for repeat in field.repeats() {
                for component in repeat.components() {
                    let _ = component.unescaped();
                }
            }
        }
        if let TypedRecord::Result(result) = record.typed() {
            let _ = result.test_code();
            let _ = result.numeric_value();
            let _ = result.reference_range();
            let _ = result.abnormal_flag_list().count();
            let _ = result.result_status();
        }
    }
    if all_ok {
        // Nothing lost: only leading blank lines are skipped.
        let start = data
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(data.len());
        assert_eq!(&rebuilt[..], &data[start..]);
    }
    for text in split_messages(data) {
        if let Ok(message) = Message::parse(text) {
            let _ = message.header();
            for patient in message.patients() {
                for order in patient.children() {
                    let _ = order.children().count() + order.attachments().count();
                }
            }
        }
    }
});
