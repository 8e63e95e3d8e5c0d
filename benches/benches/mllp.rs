//! MLLP decoding throughput: ours against the Rust peers, same input, same run.
//!
//! Group `mllp_decode`: 64 pipelined frames of a 1 KB ORU^R01 (the synthetic CBC sample,
//! exactly 1024 bytes) in one buffer, decoded into 64 messages. Throughput in bytes of
//! stream. hl7-mllp-codec runs with its `noncompliance` feature, its own setting for
//! several messages per read; without it the whole buffer comes out as one item.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::codec::Decoder;

const MESSAGE: &[u8] =
    include_bytes!("../../crates/mllp-hl7/tests/data/oru_r01_2.5.1_synthetic_cbc_1k.hl7");
const FRAMES: usize = 64;

fn stream() -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..FRAMES {
        mllp_hl7::encode_frame(MESSAGE, &mut out).expect("sample frames");
    }
    out
}

fn ours(buf: &mut BytesMut) -> usize {
    let mut codec = mllp_hl7::MllpCodec::new();
    let mut n = 0;
    while let Ok(Some(frame)) = codec.decode(buf) {
        black_box(&frame);
        n += 1;
    }
    n
}

fn ours_reads(stream: &[u8], read_size: usize) -> usize {
    let mut codec = mllp_hl7::MllpCodec::new();
    let mut buf = BytesMut::with_capacity(4096);
    let mut n = 0;
    for read in stream.chunks(read_size) {
        buf.extend_from_slice(read);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            black_box(&frame);
            n += 1;
        }
    }
    n
}

fn hl7_mllp_codec(buf: &mut BytesMut) -> usize {
    let mut codec = hl7_mllp_codec::MllpCodec::new();
    let mut n = 0;
    while let Ok(Some(frame)) = codec.decode(buf) {
        black_box(&frame);
        n += 1;
    }
    n
}

/// A decoder holding `stream`, as the others' buffers hold it before they are timed.
fn mllp_crate_loaded(stream: &[u8]) -> mllp::Decoder {
    let mut decoder = mllp::Decoder::new();
    decoder.push(stream);
    decoder
}

fn mllp_crate(decoder: &mut mllp::Decoder) -> usize {
    let mut n = 0;
    while let Some(frame) = decoder.next_frame() {
        black_box(&frame);
        n += 1;
    }
    n
}

fn mllp_decode(c: &mut Criterion) {
    let stream = stream();
    // Every contender must produce all the messages, or its figure means nothing.
    assert_eq!(ours(&mut BytesMut::from(&stream[..])), FRAMES);
    assert_eq!(ours_reads(&stream, 1460), FRAMES);
    assert_eq!(hl7_mllp_codec(&mut BytesMut::from(&stream[..])), FRAMES);
    assert_eq!(mllp_crate(&mut mllp_crate_loaded(&stream)), FRAMES);

    let mut group = c.benchmark_group("mllp_decode");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("ours", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| ours(black_box(buf)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("hl7_mllp_codec", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| hl7_mllp_codec(black_box(buf)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("mllp_crate", |b| {
        b.iter_batched_ref(
            || mllp_crate_loaded(&stream),
            |decoder| mllp_crate(black_box(decoder)),
            BatchSize::SmallInput,
        );
    });
    // Ours again, fed in TCP-segment-sized reads (copy into the buffer included): the
    // resumable scan keeps this close to the single-buffer figure.
    group.bench_function("ours_reads_1460", |b| {
        b.iter(|| ours_reads(black_box(&stream), 1460));
    });
    group.finish();
}

criterion_group!(benches, mllp_decode);
criterion_main!(benches);
