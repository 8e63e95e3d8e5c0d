//! The tokio driver and codec over a real loopback TCP connection.

use std::time::Duration;

use astm_frame::codec::{AstmCodec, CodecItem, Outgoing};
use astm_frame::driver::LinkDriver;
use astm_frame::{Assembly, Control, DiscardReason, Event, FrameEnd, LinkConfig, LinkState, Role};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instrument_sends_to_lis_over_tcp() {
    // LIS1-A §8.2.1.1: the computer system is the server.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let long_result = format!("R|2|^^^NOTE|{}\r", "x".repeat(1000));
    let messages = vec![
        b"H|\\^&|||ANALYZER\rP|1\rO|1|S1||^^^WBC\rR|1|^^^WBC|5.8|10^3/uL\rL|1|N\r".to_vec(),
        format!("H|\\^&|||ANALYZER\rP|1\rO|1|S2\r{long_result}L|1|N\r").into_bytes(),
    ];

    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut config = LinkConfig::new(Role::Computer);
        config.assembly = Assembly::PerTransfer;
        let mut lis = LinkDriver::new(stream, config);
        let mut received = Vec::new();
        while let Some(message) = lis.recv().await.unwrap() {
            received.push(message);
        }
        received
    });

    let stream = TcpStream::connect(addr).await.unwrap();
    let mut analyzer = LinkDriver::new(stream, LinkConfig::new(Role::Instrument));
    for m in &messages {
        tokio::time::timeout(Duration::from_secs(10), analyzer.send(m.clone()))
            .await
            .expect("sent in time")
            .expect("acknowledged");
    }
    drop(analyzer);
    let received = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(received, messages);
}

#[tokio::test]
async fn lis_answers_a_raw_instrument_through_the_codec() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut lis = LinkDriver::new(stream, LinkConfig::new(Role::Computer));
        let mut records = Vec::new();
        while let Some(m) = lis.recv().await.unwrap() {
            records.push(m);
        }
        records
    });

    // A scripted instrument: codec items in, codec items out, one reply awaited per item.
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut wire = Framed::new(stream, AstmCodec::default());
    wire.send(Outgoing::Control(Control::Enq)).await.unwrap();
    assert_eq!(
        wire.next().await.unwrap().unwrap(),
        CodecItem::Control(Control::Ack)
    );
    // A bad checksum first: NAK; then the same frame, good.
    tokio::io::AsyncWriteExt::write_all(wire.get_mut(), b"\x021H|\\^&\r\x0300\r\n")
        .await
        .unwrap();
    assert_eq!(
        wire.next().await.unwrap().unwrap(),
        CodecItem::Control(Control::Nak)
    );
    for (number, text) in [(1, &b"H|\\^&\r"[..]), (2, b"L|1|N\r")] {
        let frame = Outgoing::Frame {
            number,
            text,
            end: FrameEnd::End,
        };
        wire.send(frame).await.unwrap();
        assert_eq!(
            wire.next().await.unwrap().unwrap(),
            CodecItem::Control(Control::Ack)
        );
    }
    wire.send(Outgoing::Control(Control::Eot)).await.unwrap();
    drop(wire);
    let records = server.await.unwrap();
    assert_eq!(records, [b"H|\\^&\r".to_vec(), b"L|1|N\r".to_vec()]);
}

#[tokio::test]
async fn codec_decodes_frames_split_across_reads() {
    let (client, server) = tokio::io::duplex(16);
    let writer = tokio::spawn(async move {
        let mut client = client;
        let bytes = b"junk\x05\x021H|\\^&\r\x03E5\r\n\x022L|1|N\r\x0305\r\n\x04".to_vec();
        for chunk in bytes.chunks(3) {
            tokio::io::AsyncWriteExt::write_all(&mut client, chunk)
                .await
                .unwrap();
        }
    });
    let items: Vec<CodecItem> = Framed::new(server, AstmCodec::default())
        .map(Result::unwrap)
        .collect()
        .await;
    writer.await.unwrap();
    // Junk is reported as it arrives, so it may come in pieces.
    let junk: Vec<u8> = items
        .iter()
        .take_while(|i| matches!(i, CodecItem::Junk(_)))
        .flat_map(|i| match i {
            CodecItem::Junk(j) => j.to_vec(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(junk, b"junk");
    assert!(items.contains(&CodecItem::Control(Control::Enq)));
    let texts: Vec<&[u8]> = items
        .iter()
        .filter_map(|i| match i {
            CodecItem::Frame(f) if f.defect.is_none() => Some(f.text.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, [&b"H|\\^&\r"[..], b"L|1|N\r"]);
    assert_eq!(items.last(), Some(&CodecItem::Control(Control::Eot)));
}

#[tokio::test]
async fn a_message_the_peer_hung_up_on_is_taken_back_from_the_driver() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        // Accepts the link, then hangs up before the first frame is acknowledged.
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut enq = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut enq)
            .await
            .unwrap();
        assert_eq!(enq, [Control::Enq.byte()]);
        tokio::io::AsyncWriteExt::write_all(&mut stream, &[Control::Ack.byte()])
            .await
            .unwrap();
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut analyzer = LinkDriver::new(stream, LinkConfig::new(Role::Instrument));
    let message = b"H|\\^&\rP|1\rL|1|N\r".to_vec();
    let sent = tokio::time::timeout(Duration::from_secs(10), analyzer.send(message.clone()))
        .await
        .expect("the hang-up ends the send");
    assert!(
        matches!(
            sent,
            Err(astm_frame::driver::DriverError::Closed | astm_frame::driver::DriverError::Io(_))
        ),
        "{sent:?}"
    );
    peer.await.unwrap();
    let taken: Vec<Vec<u8>> = analyzer
        .link_mut()
        .take_unsent()
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    assert_eq!(taken, [message], "nothing given to send is lost");
}

/// A peer that hangs up in the middle of a message: the driver reports the message cut off
/// before it reports the close, in both assemblies; it used to end with no word of the
/// records already acknowledged (the whole transfer, with per-transfer assembly).
#[tokio::test]
async fn a_hang_up_mid_message_is_reported_before_the_close() {
    for assembly in [Assembly::PerEndFrame, Assembly::PerTransfer] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let analyzer = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let mut frames = vec![Control::Enq.byte()];
            astm_frame::encode_frame(1, b"H|\\^&\r", FrameEnd::End, &mut frames);
            astm_frame::encode_frame(2, b"P|1|", FrameEnd::Intermediate, &mut frames);
            tokio::io::AsyncWriteExt::write_all(&mut stream, &frames)
                .await
                .unwrap();
            // The LIS's three ACKs, then the hang-up.
            let mut replies = [0u8; 3];
            tokio::io::AsyncReadExt::read_exact(&mut stream, &mut replies)
                .await
                .unwrap();
            assert_eq!(replies, [Control::Ack.byte(); 3]);
        });
        let (stream, _) = listener.accept().await.unwrap();
        let mut lis = LinkDriver::new(
            stream,
            LinkConfig::new(Role::Computer).with_assembly(assembly),
        );
        let mut seen = Vec::new();
        while let Some(event) = tokio::time::timeout(Duration::from_secs(10), lis.next_event())
            .await
            .expect("the close ends it")
            .unwrap()
        {
            seen.push(event);
        }
        analyzer.await.unwrap();
        let discarded = |len| Event::ReceiveDiscarded {
            reason: DiscardReason::ConnectionClosed,
            len,
        };
        let expected = match assembly {
            Assembly::PerEndFrame => {
                vec![Event::MessageReceived(b"H|\\^&\r".to_vec()), discarded(4)]
            }
            _ => vec![discarded(10)],
        };
        assert_eq!(seen, expected, "{assembly:?}");
        assert_eq!(lis.link().state(), LinkState::Neutral);
    }
}

/// A reset in the middle of a message (the analyzer's process killed, its cable pulled behind
/// a terminal server) is reported as an orderly close is: the message it cut off as
/// discarded, then the error. The error came alone, and the cut-off message went unreported.
#[tokio::test]
async fn a_reset_mid_message_is_reported_before_the_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let analyzer = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut frames = vec![Control::Enq.byte()];
        astm_frame::encode_frame(1, b"H|\\^&\r", FrameEnd::Intermediate, &mut frames);
        tokio::io::AsyncWriteExt::write_all(&mut stream, &frames)
            .await
            .unwrap();
        let mut replies = [0u8; 2];
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut replies)
            .await
            .unwrap();
        assert_eq!(replies, [Control::Ack.byte(); 2]);
        stream.set_zero_linger().unwrap();
        drop(stream);
    });
    let (stream, _) = listener.accept().await.unwrap();
    let mut lis = LinkDriver::new(stream, LinkConfig::new(Role::Computer));
    let mut seen = Vec::new();
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(10), lis.next_event())
            .await
            .expect("the reset ends it")
        {
            Ok(Some(event)) => seen.push(event),
            Ok(None) => panic!("a reset taken for an orderly close: {seen:?}"),
            Err(e) => break e,
        }
    };
    analyzer.await.unwrap();
    assert_eq!(
        seen,
        [Event::ReceiveDiscarded {
            reason: DiscardReason::ConnectionClosed,
            len: 6,
        }]
    );
    assert!(
        matches!(&error, astm_frame::DriverError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
    assert_eq!(lis.link().state(), LinkState::Neutral);
    // The end is reported once; afterwards the connection is closed.
    assert!(matches!(lis.next_event().await, Ok(None)));
}

/// An instrument (one transfer per message, `frame_reply` as its reply timer) on a pipe
/// with room for the ENQ but not for a frame, and the pipe's other end.
fn instrument_on_a_narrow_pipe(
    frame_reply: Duration,
) -> (LinkDriver<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(4);
    let timers = astm_frame::Timers {
        frame_reply,
        ..astm_frame::Timers::default()
    };
    let config = LinkConfig::new(Role::Instrument)
        .with_timers(timers)
        .with_max_transfers(1);
    (LinkDriver::new(ours, config), theirs)
}

/// A peer that stops reading leaves the driver's write waiting; the link's reply timer still
/// gives up on the transfer, so `send` returns the message as not delivered. It waited on
/// the write for ever.
#[tokio::test]
async fn send_to_a_peer_that_stops_reading_ends_at_the_reply_timer() {
    let (mut instrument, theirs) = instrument_on_a_narrow_pipe(Duration::from_millis(200));
    // The peer answers the ENQ, then reads nothing more.
    let peer = tokio::spawn(async move {
        let mut theirs = theirs;
        let mut enq = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut theirs, &mut enq)
            .await
            .unwrap();
        assert_eq!(enq, [Control::Enq.byte()]);
        tokio::io::AsyncWriteExt::write_all(&mut theirs, &[Control::Ack.byte()])
            .await
            .unwrap();
        theirs
    });
    let record = format!("R|1|^^^WBC|{}\r", "9".repeat(200));
    let message = format!("H|\\^&\r{}L|1|N\r", record.repeat(5)).into_bytes();
    let sent = tokio::time::timeout(Duration::from_secs(10), instrument.send(message.clone()))
        .await
        .expect("send came back");
    match sent {
        Err(astm_frame::DriverError::Aborted {
            reason,
            message: back,
        }) => {
            assert_eq!(
                reason,
                astm_frame::AbortReason::NoReplyToFrame { frame_number: 1 }
            );
            assert_eq!(back, message);
        }
        other => panic!("{other:?}"),
    }
    drop(peer.await.unwrap());
}

/// A frame whose write waited for a slow reader gets its whole reply timer once written
/// (§6.5.2: the timer starts on transmission). The wait used up the peer's time to reply:
/// a reader 600 ms late that answered 700 ms after reading missed a 1 s timer.
#[tokio::test(start_paused = true)]
async fn a_slow_write_does_not_use_up_the_reply_timer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut instrument, mut theirs) = instrument_on_a_narrow_pipe(Duration::from_secs(1));
    let message = b"H|\\^&\r".to_vec();
    let frame_len = {
        let mut f = Vec::new();
        astm_frame::encode_frame(1, &message, FrameEnd::End, &mut f);
        f.len()
    };
    let peer = tokio::spawn(async move {
        let mut byte = [0u8; 1];
        theirs.read_exact(&mut byte).await.unwrap();
        assert_eq!(byte, [Control::Enq.byte()]);
        theirs.write_all(&[Control::Ack.byte()]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut frame = vec![0u8; frame_len];
        theirs.read_exact(&mut frame).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        theirs.write_all(&[Control::Ack.byte()]).await.unwrap();
        theirs.read_exact(&mut byte).await.unwrap();
        assert_eq!(byte, [Control::Eot.byte()]);
    });
    instrument.send(message).await.expect("delivered");
    peer.await.unwrap();
}

/// A `recv` dropped while a frame is only partly written (the peer is slow to read, the
/// caller's `select!` takes another branch) leaves the rest to the next call: the frame
/// reaches the peer once, intact. The whole frame used to be written again after the part
/// already sent, so the peer saw a broken frame and a second STX in the middle.
#[tokio::test]
async fn a_recv_dropped_in_the_middle_of_a_frame_does_not_write_its_start_twice() {
    use futures_util::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A small send buffer, so a 60 kB frame cannot be written at once.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut peer, _) = listener.accept().await.unwrap();

    let mut config = LinkConfig::new(Role::Instrument);
    config.framer.max_text_len = astm_frame::LIS1_A_MAX_TEXT;
    let message = format!("H|\\^&|||{}\rL|1|N\r", "X".repeat(60_000)).into_bytes();
    let wire = astm_frame::FramedMessage::new(message.clone(), config.framer).encode_all(1);
    let first_frame = &wire[..=wire.iter().position(|&b| b == b'\n').unwrap()];
    assert!(first_frame.len() > 60_000);

    let mut analyzer = LinkDriver::new(stream, config);
    analyzer
        .link_mut()
        .send(message, tokio::time::Instant::now().into_std());
    // One poll writes the ENQ and then waits for the reply: dropped there.
    assert!(analyzer.recv().now_or_never().is_none());
    let mut enq = [0; 1];
    peer.read_exact(&mut enq).await.unwrap();
    assert_eq!(enq, [0x05]);
    peer.write_all(&[0x06]).await.unwrap();
    analyzer.get_ref().readable().await.unwrap();
    // This poll reads the ACK and starts writing frame 1, which does not fit: dropped
    // with part of the frame sent.
    assert!(analyzer.recv().now_or_never().is_none());

    let rest = tokio::spawn(async move {
        let _ = analyzer.recv().await;
    });
    let mut received = vec![0; first_frame.len()];
    peer.read_exact(&mut received).await.unwrap();
    rest.abort();
    let stx: Vec<usize> = (0..received.len())
        .filter(|&i| received[i] == 0x02)
        .collect();
    assert_eq!(stx, [0], "frame 1 starts once");
    assert!(received == first_frame, "frame 1 arrives intact");
}

/// The same over a buffered transport (a `BufWriter`, as around a serial port): the frame
/// fits the buffer and the `recv` is dropped while the buffer is being flushed. The next
/// call flushes again; it used to see nothing left to write and never flush, so the rest of
/// the frame stayed in the buffer.
#[tokio::test(flavor = "current_thread")]
async fn a_recv_dropped_while_flushing_flushes_on_the_next_call() {
    use futures_util::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut peer, _) = listener.accept().await.unwrap();

    let mut config = LinkConfig::new(Role::Instrument);
    config.framer.max_text_len = astm_frame::LIS1_A_MAX_TEXT;
    let message = format!("H|\\^&|||{}\rL|1|N\r", "X".repeat(60_000)).into_bytes();
    let wire = astm_frame::FramedMessage::new(message.clone(), config.framer).encode_all(1);
    let first_frame = wire[..=wire.iter().position(|&b| b == b'\n').unwrap()].to_vec();

    let mut analyzer = LinkDriver::new(BufWriter::with_capacity(128 * 1024, stream), config);
    analyzer
        .link_mut()
        .send(message, tokio::time::Instant::now().into_std());
    assert!(analyzer.recv().now_or_never().is_none());
    let mut enq = [0; 1];
    peer.read_exact(&mut enq).await.unwrap();
    assert_eq!(enq, [0x05]);
    peer.write_all(&[0x06]).await.unwrap();
    analyzer.get_ref().get_ref().readable().await.unwrap();
    // Frame 1 goes into the buffer at once; flushing it to the socket does not finish.
    assert!(analyzer.recv().now_or_never().is_none());

    let rest = tokio::spawn(async move {
        let _ = analyzer.recv().await;
    });
    // No timer: the peer reads what comes, and gives up after many turns with nothing new.
    let mut received = Vec::new();
    let mut idle_turns = 0;
    let mut chunk = vec![0; 65_536];
    while received.len() < first_frame.len() {
        tokio::task::yield_now().await;
        match peer.try_read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                received.extend_from_slice(&chunk[..n]);
                idle_turns = 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                idle_turns += 1;
                assert!(
                    idle_turns < 10_000,
                    "the rest of frame 1 never came: {} of {} bytes",
                    received.len(),
                    first_frame.len()
                );
            }
            Err(e) => panic!("{e}"),
        }
    }
    rest.abort();
    assert!(received == first_frame, "frame 1 arrives intact");
}

/// The tokio items are reachable from the crate root, as the other crates' are.
#[tokio::test]
async fn the_tokio_items_are_re_exported_at_the_crate_root() {
    use astm_frame::{AstmCodec, CodecItem, DriverError, LinkDriver};

    let (instrument_io, lis_io) = tokio::io::duplex(4096);
    let lis = tokio::spawn(async move {
        let mut config = LinkConfig::new(Role::Computer);
        config.assembly = Assembly::PerTransfer;
        let mut lis = LinkDriver::new(lis_io, config);
        lis.recv().await
    });
    let mut instrument = LinkDriver::new(instrument_io, LinkConfig::new(Role::Instrument));
    instrument.send(b"H|\\^&\rL|1|N\r".to_vec()).await.unwrap();
    let received = lis.await.unwrap().unwrap();
    assert_eq!(received.as_deref(), Some(&b"H|\\^&\rL|1|N\r"[..]));
    drop(instrument);

    let (mut near, far) = tokio::io::duplex(64);
    tokio::io::AsyncWriteExt::write_all(&mut near, b"\x05")
        .await
        .unwrap();
    let mut framed = Framed::new(far, AstmCodec::default());
    let item = framed.next().await.unwrap().unwrap();
    assert_eq!(item, CodecItem::Control(Control::Enq));
    drop(near);
    let closed: DriverError = DriverError::Closed;
    assert_eq!(closed.to_string(), "connection closed by the peer");
}

/// `get_ref` and `get_mut` reach the transport itself: its addresses and options, and a
/// shutdown that the peer sees as the end of the connection; the link still works in
/// between.
#[tokio::test(flavor = "current_thread")]
async fn get_ref_and_get_mut_reach_the_transport() {
    use tokio::io::AsyncWriteExt;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (accepted, _) = listener.accept().await.unwrap();
    let mut analyzer = LinkDriver::new(stream, LinkConfig::new(Role::Instrument));
    let mut lis = LinkDriver::new(accepted, LinkConfig::new(Role::Computer));

    assert_eq!(analyzer.get_ref().peer_addr().unwrap(), addr);
    assert_eq!(
        lis.get_ref().peer_addr().unwrap(),
        analyzer.get_ref().local_addr().unwrap()
    );
    for nodelay in [true, false, true] {
        analyzer.get_mut().set_nodelay(nodelay).unwrap();
        assert_eq!(analyzer.get_ref().nodelay().unwrap(), nodelay);
    }

    let message = b"H|\\^&\rL|1|N\r".to_vec();
    let (sent, received) = tokio::join!(analyzer.send(message.clone()), async {
        let mut records = Vec::new();
        while records.len() < 2 {
            records.push(lis.recv().await.unwrap().unwrap());
        }
        records.concat()
    });
    sent.unwrap();
    assert_eq!(received, message);

    // The link is idle (EOT sent): shutting the transport down ends the connection.
    analyzer.get_mut().shutdown().await.unwrap();
    assert_eq!(lis.recv().await.unwrap(), None);
}
