//! Simulator throughput: messages generated per second (what `--dry-run` does) for three templates,
//! and ASTM messages pushed per second over loopback through the E1381 sender (what
//! `--push tcp://` does: one session per message on a new connection), and orders read per
//! second from an HL7 ORM (what an HL7 port does with a LIS's work list, 1,000 and 20,000
//! orders: the rate stays flat when reading is linear), each with a baseline measured in the
//! same run.

use std::hint::black_box;
use std::time::Instant;

use astm_frame::driver::LinkDriver;
use astm_frame::{Assembly, FramedMessage, FramerConfig, LinkConfig, Role};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lis_templates::{AccessionMinter, GenerateOptions, Output, TemplateSet, generate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn generation(c: &mut Criterion) {
    let templates = TemplateSet::embedded().expect("templates");
    let minter = AccessionMinter::new();
    let mut group = c.benchmark_group("simulator_generate");
    group.throughput(Throughput::Elements(1));
    for name in ["horiba_pentra60", "genexpert_astm", "mindray_bc5380"] {
        let template = templates.get(name).expect("template");
        let options = GenerateOptions {
            seed: Some(1),
            ..GenerateOptions::default()
        };
        let sample = generate(template, &minter, &options, false).expect("generate");
        // Baseline: printing an already generated message (the floor of a dry run).
        group.bench_function(format!("{name}/baseline_display"), |b| {
            b.iter(|| black_box(sample.to_display_text()));
        });
        group.bench_function(format!("{name}/generate_and_display"), |b| {
            b.iter(|| {
                let output = generate(template, &minter, &options, false).expect("generate");
                black_box(output.to_display_text())
            });
        });
    }
    group.finish();
}

async fn receiver(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let config = LinkConfig {
                assembly: Assembly::PerTransfer,
                ..LinkConfig::new(Role::Computer)
            };
            let mut link = LinkDriver::new(stream, config);
            while let Ok(Some(_)) = link.recv().await {}
        });
    }
}

async fn raw_sink(listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            // Closing tells the sender everything was read: its round trip.
            let _ = stream.shutdown().await;
        });
    }
}

fn push(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let templates = TemplateSet::embedded().expect("templates");
    let minter = AccessionMinter::new();
    let options = GenerateOptions {
        seed: Some(1),
        ..GenerateOptions::default()
    };
    let Ok(Output::Astm(messages)) = generate(
        templates.get("horiba_pentra60").expect("template"),
        &minter,
        &options,
        false,
    ) else {
        panic!("ASTM expected");
    };
    let message = messages[0].to_bytes();
    // What the E1381 sender puts on the wire for it: the frames, without ENQ and EOT.
    let wire = FramedMessage::new(message.clone(), FramerConfig::default()).encode_all(1);
    let (link_addr, raw_addr) = runtime.block_on(async {
        let a = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let b = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addrs = (a.local_addr().expect("addr"), b.local_addr().expect("addr"));
        tokio::spawn(receiver(a));
        tokio::spawn(raw_sink(b));
        addrs
    });
    let mut group = c.benchmark_group("simulator_push");
    group.throughput(Throughput::Elements(1));
    // Baseline: the same frames written on a fresh connection without the link protocol
    // (no ENQ, no ACK per frame, no EOT), until the peer has read them all and closed: one
    // round trip, where the E1381 session makes one per frame plus the ENQ's.
    group.bench_function("pentra60/baseline_raw_tcp", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut s = TcpStream::connect(raw_addr).await.expect("connect");
                    s.set_nodelay(true).expect("nodelay");
                    s.write_all(&wire).await.expect("write");
                    s.shutdown().await.expect("shutdown");
                    let mut rest = Vec::new();
                    s.read_to_end(&mut rest).await.expect("the sink's close");
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("pentra60/e1381_session_per_connection", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let s = TcpStream::connect(link_addr).await.expect("connect");
                    s.set_nodelay(true).expect("nodelay");
                    let mut link = LinkDriver::new(s, LinkConfig::new(Role::Instrument));
                    link.send(message.clone()).await.expect("send");
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

/// An ORM^O01 with `orders` ORC/OBR pairs, each its own placer number.
fn work_list(orders: usize) -> Vec<u8> {
    let mut text = b"MSH|^~\\&|LIS||LAB||20260101||ORM^O01|1|P|2.3.1\rPID|1||MRN-1\r".to_vec();
    for n in 1..=orders {
        text.extend_from_slice(format!("ORC|NW|PL-{n}\rOBR|{n}|PL-{n}||^^^PT\r").as_bytes());
    }
    text
}

fn order_reading(c: &mut Criterion) {
    let templates = TemplateSet::embedded().expect("templates");
    let template = templates.get("mindray_bc5380").expect("template");
    let mut group = c.benchmark_group("simulator_read_orders");
    for orders in [1_000, 20_000] {
        let text = work_list(orders);
        group.throughput(Throughput::Elements(orders as u64));
        // Baseline: parsing the ORM and walking its segments, which reading needs anyway.
        group.bench_function(format!("{orders}/baseline_parse_and_walk"), |b| {
            b.iter(|| {
                let message = mllp_hl7::Message::parse(&text).expect("parse");
                black_box(message.segments().count())
            });
        });
        group.bench_function(format!("{orders}/read_orders"), |b| {
            b.iter(|| {
                let message = mllp_hl7::Message::parse(&text).expect("parse");
                let read = lis_templates::Hl7Orders::read_for(&message, template);
                assert_eq!(read.orders.len(), orders);
                black_box(read)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, generation, push, order_reading);
criterion_main!(benches);
