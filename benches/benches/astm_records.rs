//! `astm_records_parse`: splitting E1394 message text into records and fields, and building the message
//! hierarchy, on a real capture (Horiba Yumizen H500) and on a synthetic message of 1,000 R records.
//! Baseline in the same run: one `memchr` pass counting field delimiters over the same bytes.

use std::hint::black_box;

use astm_records::{Message, parse_records};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const HORIBA_RAW: &[u8] =
    include_bytes!("../../crates/astm-records/tests/data/captures/horiba_yumizen_h500_raw.bin");

/// The capture's record text: frame texts (between STX + FN and ETX/ETB) joined. Setup, not measured.
fn horiba_message() -> Vec<u8> {
    let mut text = Vec::new();
    let mut at = 0;
    while let Some(start) = memchr::memchr(0x02, &HORIBA_RAW[at..]).map(|n| at + n) {
        let Some(end) = memchr::memchr2(0x03, 0x17, &HORIBA_RAW[start..]).map(|n| start + n) else {
            break;
        };
        text.extend_from_slice(&HORIBA_RAW[start + 2..end]);
        at = end + 1;
    }
    text
}

fn synthetic_message(results: usize) -> Vec<u8> {
    let mut text = b"H|\\^&|||Bench^1.0|||||||P|LIS2-A2|20240101120000\rP|1||PID-0001||Doe^Jane||19800101|F\rO|1|S-0001||^^^CBC|R|20240101115500|||||N||||Blood\r".to_vec();
    for n in 1..=results {
        text.extend_from_slice(
            format!("R|{n}|^^^WBC^{n}|5.8|10*3/uL|4.0-10.0|N||F||OPER^One|20240101115900|20240101120000|INSTR-1\r")
                .as_bytes(),
        );
    }
    text.extend_from_slice(b"L|1|N\r");
    text
}

/// Every field of every record: the "split into fields" figure.
fn split_fields(text: &[u8]) -> usize {
    let mut total = 0;
    for record in parse_records(text).flatten() {
        for field in record.fields() {
            total += field.raw().len();
        }
    }
    total
}

/// Down to components.
fn split_components(text: &[u8]) -> usize {
    let mut total = 0;
    for record in parse_records(text).flatten() {
        for field in record.fields() {
            for repeat in field.repeats() {
                total += repeat.components().count();
            }
        }
    }
    total
}

fn typed_results(text: &[u8]) -> f64 {
    let message = Message::parse(text).expect("bench input parses");
    message
        .results()
        .filter(|r| r.test_code().is_some())
        .filter_map(|r| r.numeric_value())
        .map(|v| v.value)
        .sum()
}

fn bench(c: &mut Criterion) {
    let inputs = [
        ("horiba_h500", horiba_message()),
        ("synthetic_1000R", synthetic_message(1000)),
    ];
    let mut group = c.benchmark_group("astm_records_parse");
    for (name, text) in &inputs {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("baseline_memchr_count/{name}"), |b| {
            b.iter(|| memchr::memchr_iter(b'|', black_box(text)).count())
        });
        group.bench_function(format!("split_fields/{name}"), |b| {
            b.iter(|| split_fields(black_box(text)))
        });
        group.bench_function(format!("split_components/{name}"), |b| {
            b.iter(|| split_components(black_box(text)))
        });
        group.bench_function(format!("message_parse/{name}"), |b| {
            b.iter(|| Message::parse(black_box(text)).map(|m| m.records().len()))
        });
        group.bench_function(format!("typed_results/{name}"), |b| {
            b.iter(|| typed_results(black_box(text)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
