//! Throughput of the ASTM E1381 frame decoder and encoder, against the physical floor (finding
//! the frame delimiters with memchr and summing every byte) measured in the same run.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use astm_frame::{
    DecoderConfig, FrameDecoder, FrameEnd, FrameScanner, FramedMessage, FramerConfig, Item,
    LIS1_A_MAX_TEXT, encode_frame,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const HORIBA: &[u8] = include_bytes!("../data/horiba_yumizen_h500_raw.bin");

/// The Horiba capture, then 1,000 synthetic 240-byte frames and 8 frames of 63,993 bytes.
fn stream() -> Vec<u8> {
    let mut buf = HORIBA.to_vec();
    let record: Vec<u8> = (0..240).map(|i| b"0123456789|^&ABCDEF"[i % 19]).collect();
    for n in 0..1000u32 {
        encode_frame((n % 8) as u8, &record, FrameEnd::Intermediate, &mut buf);
    }
    let big: Vec<u8> = (0..LIS1_A_MAX_TEXT)
        .map(|i| b"R|1|^^^WBC|5.8\r"[i % 15])
        .collect();
    for n in 0..8u8 {
        encode_frame(n, &big, FrameEnd::End, &mut buf);
    }
    buf
}

/// What a decoder must at least do: find every STX/ETX/ETB and sum every byte.
fn floor(buf: &[u8]) -> (usize, u8) {
    let delimiters = memchr::memchr3_iter(0x02, 0x03, 0x17, buf).count();
    let sum = buf.iter().fold(0u8, |acc, &b| acc.wrapping_add(b));
    (delimiters, sum)
}

fn count(item: Item<'_>, valid: &mut usize) {
    if let Item::Frame(f) = item {
        *valid += usize::from(f.is_valid());
    }
}

fn decode_whole(buf: &[u8]) -> usize {
    let mut scanner = FrameScanner::new(DecoderConfig::default());
    let mut valid = 0;
    for item in scanner.iter(buf) {
        count(item, &mut valid);
    }
    valid
}

fn decode_chunked(buf: &[u8], chunk: usize) -> usize {
    let mut decoder = FrameDecoder::new(DecoderConfig::default());
    let mut valid = 0;
    for piece in buf.chunks(chunk) {
        decoder.push(piece);
        while let Some(item) = decoder.next_item() {
            count(item, &mut valid);
        }
    }
    valid
}

fn decode(c: &mut Criterion) {
    let buf = stream();
    let frames = decode_whole(&buf);
    assert_eq!(
        frames,
        125 + 1000 + 8,
        "every frame in the bench stream is valid"
    );
    assert_eq!(decode_chunked(&buf, 64), frames);
    assert_eq!(decode_chunked(&buf, 1), frames);

    let mut group = c.benchmark_group("astm_frame_decode");
    group.throughput(Throughput::Bytes(buf.len() as u64));
    group.bench_function("floor", |b| b.iter(|| floor(black_box(&buf))));
    group.bench_function("whole", |b| b.iter(|| decode_whole(black_box(&buf))));
    group.bench_function("chunked_64", |b| {
        b.iter(|| decode_chunked(black_box(&buf), 64))
    });
    group.bench_function("chunked_1", |b| {
        b.iter(|| decode_chunked(black_box(&buf), 1))
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    // A 100-record result message; one record is long enough to need ETB frames.
    let mut message = b"H|\\^&|||BENCH|||||||P|LIS2-A2|20240101120000\rP|1\rO|1|S1\r".to_vec();
    for i in 0..97 {
        message
            .extend_from_slice(format!("R|{i}|^^^T{i}|{i}.5|mmol/L|3.5 to 5.1|N||F\r").as_bytes());
    }
    message.extend_from_slice(format!("C|1|I|{}|G\r", "x".repeat(600)).as_bytes());
    message.extend_from_slice(b"L|1|N\r");
    let wire = FramedMessage::new(message.clone(), FramerConfig::default()).encode_all(1);

    let mut group = c.benchmark_group("astm_frame_encode");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("message_240", |b| {
        // The message is copied outside the timed part: the framer takes it by value.
        b.iter_batched(
            || message.clone(),
            |message| FramedMessage::new(black_box(message), FramerConfig::default()).encode_all(1),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("copy_baseline", |b| b.iter(|| black_box(&wire).to_vec()));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = decode, encode
}
criterion_main!(benches);
