//! Fuzz the MLLP decoder and the HL7 reader: no panic on any input, bounded output,
//! the same messages whatever the read boundaries, and encode/decode round trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mllp_hl7::bytes::BytesMut;
use mllp_hl7::{
    AckBuilder, AckMessage, AckMode, Charset, Delimiters, Message, MllpConfig, MllpDecoder,
    MllpFrame, escape, unescape,
};

/// Messages, error count and every event of decoding `stream` in reads of `chunk` bytes.
fn decode(
    config: &MllpConfig,
    stream: &[u8],
    chunk: usize,
) -> (Vec<Vec<u8>>, usize, Vec<MllpFrame>) {
    let mut decoder = MllpDecoder::with_config(config.clone()).expect("valid config");
    let mut buf = BytesMut::new();
    let (mut messages, mut errors, mut events) = (Vec::new(), 0, Vec::new());
    let mut handle = |frame: MllpFrame, messages: &mut Vec<Vec<u8>>| match frame.clone() {
        MllpFrame::Message(payload) => {
            assert!(payload.len() <= config.max_message_size());
            messages.push(payload.to_vec());
        }
        MllpFrame::Commit(commit) => messages.push(vec![commit.byte()]),
        MllpFrame::Error(_) => errors += 1,
        _ => {}
    };
    for read in stream.chunks(chunk.max(1)) {
        buf.extend_from_slice(read);
        while let Some(frame) = decoder.decode(&mut buf) {
            events.push(frame.clone());
            handle(frame, &mut messages);
        }
        let bound = config.max_message_size() + chunk + config.framed_len(0);
        assert!(buf.len() <= bound, "buffer {} > {bound}", buf.len());
    }
    while let Some(frame) = decoder.decode_eof(&mut buf) {
        events.push(frame.clone());
        handle(frame, &mut messages);
    }
    assert!(buf.is_empty());
    assert_eq!(decoder.position(), stream.len() as u64);
    (messages, errors, events)
}

/// Each component and subcomponent of a raw field, decoded.
fn parts(raw: &[u8], d: &Delimiters) -> Vec<Vec<u8>> {
    let separator =
        |b: &u8| *b == d.component() || Some(*b) == d.repetition() || Some(*b) == d.subcomponent();
    raw.split(separator)
        .map(|part| unescape(part, d).into_owned())
        .collect()
}

fn walk(message: &Message<'_>) {
    for segment in message.segments() {
        for field in segment.fields() {
            for repetition in field.repetitions() {
                for component in repetition.components() {
                    let _ = component.subcomponent(2);
                    let _ = component.text(Charset::Latin9);
                }
            }
        }
    }
    let _ = (message.message_type(), message.version(), message.charset());
    let _ = message.get("OBX(2)-5(1).1.1");
    // Debug writes the bytes as escaped text: never a panic, never a raw control byte.
    let shown = format!("{message:?}");
    assert!(!shown.bytes().any(|b| b < 0x20), "{shown}");
    // The one-call ACK read agrees with parse-then-read.
    assert_eq!(
        AckMessage::parse(message.raw()).ok(),
        AckMessage::from_message(message).ok()
    );
    if let Ok(ack) = AckBuilder::new(message).text("fuzz").build() {
        let ack = Message::parse(&ack).expect("our ACK parses");
        assert!(ack.is_ack());
        // MSA-2 is the received MSH-10 (a raw LF, VT or FS in it is hex-escaped): the whole
        // field decodes as before, which is what a sender compares. Without an escape
        // character in it, every component and subcomponent does too. (With one, an escape
        // sequence a malformed field leaves open at a separator pairs differently in the two
        // readings, and the whole field's wins.)
        let msa = ack.segment(b"MSA").expect("our ACK has an MSA");
        let msa2 = msa.field_or_empty(2);
        let escape_character = message.delimiters().escape();
        if escape_character.is_some() {
            assert_eq!(msa2.decoded(), message.control_id().decoded());
        }
        let mut want = parts(message.control_id().raw(), &message.delimiters());
        if message.delimiters().escape().is_none() {
            // Nothing can be escaped: a raw LF, and the MLLP framing bytes VT and FS,
            // become spaces.
            for part in &mut want {
                part.iter_mut()
                    .filter(|b| matches!(**b, b'\n' | 0x0b | 0x1c))
                    .for_each(|b| *b = b' ');
            }
        }
        if escape_character.is_none_or(|e| !message.control_id().raw().contains(&e)) {
            assert_eq!(parts(msa2.raw(), &ack.delimiters()), want);
        }
        assert_eq!(ack.segments().filter(|s| s.id() == b"MSA").count(), 1);
    }
    // A response type other than ACK (ORL^O22 for an OML^O21) is written in MSH-9 whatever
    // the delimiters, and is read as an acknowledgement of the same message. In enhanced
    // mode the plain builder writes an accept acknowledgement (CA), which stays an `ACK`.
    let plain = AckBuilder::new(message)
        .control_id("C1")
        .timestamp("20240101");
    if let (Ok(ack), Ok(orl)) = (
        plain.build(),
        plain.clone().response_type("ORL", "O_22").build(),
    ) {
        let orl_message = Message::parse(&orl).expect("our ORL parses");
        let msh9 = orl_message.msh_field(9);
        let component = |n| msh9.component(n).map(|c| c.decoded().into_owned());
        let written = |text: &[u8]| as_written(text, &orl_message.delimiters());
        if AckMode::of(message) == AckMode::Enhanced {
            assert_eq!(component(1), Some(b"ACK".to_vec()));
        } else {
            assert_eq!(component(1), Some(written(b"ORL")));
            assert!(matches!(component(2), None) || component(2) == Some(written(b"O_22")));
        }
        assert_eq!(
            AckMessage::parse(&orl).map(|a| (a.code, a.acknowledged_id)),
            AckMessage::parse(&ack).map(|a| (a.code, a.acknowledged_id))
        );
    }
}

/// Text as the ACK builder writes it: escaped, which decodes back to the text, or, for a
/// message without an escape character, with every delimiter (and CR, LF) as a space.
fn as_written(text: &[u8], d: &Delimiters) -> Vec<u8> {
    if d.escape().is_some() {
        return text.to_vec();
    }
    let delimiters = [
        Some(d.field()),
        Some(d.component()),
        d.repetition(),
        d.subcomponent(),
        d.truncation(),
        Some(b'\r'),
        Some(b'\n'),
        Some(0x0b),
        Some(0x1c),
    ];
    text.iter()
        .map(|&b| {
            if delimiters.contains(&Some(b)) {
                b' '
            } else {
                b
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&size, stream)) = rest.split_first() else {
        return;
    };
    let mut config = MllpConfig::default()
        .with_lenient(flags & 1 != 0)
        .with_max_message_size(usize::from(size) * 4 + 1);
    if flags & 2 != 0 {
        config = config
            .with_start_block(b"<SB>".to_vec())
            .with_end_block(b"<EB>".to_vec())
            .with_trailer(if flags & 4 != 0 {
                b"\r".to_vec()
            } else {
                Vec::new()
            });
    }
    let chunk = usize::from(flags >> 3) + 1;

    // The same events (messages, junk, refused frames) whatever the read size.
    let whole = decode(&config, stream, stream.len().max(1));
    let chunked = decode(&config, stream, chunk);
    assert_eq!(whole, chunked);

    // Round trip: cut the input into payloads, frame what can be framed, decode.
    let payloads: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for payload in payloads {
        if config.encode(payload, &mut wire).is_ok() {
            sent.push(payload.to_vec());
        }
    }
    let (received, errors, _) = decode(&config, &wire, chunk);
    assert_eq!(errors, 0);
    assert_eq!(received, sent);

    // The HL7 reader and ACK builder on the raw input and on a valid header + input.
    if let Ok(message) = Message::parse(stream) {
        walk(&message);
    }
    let mut with_header = b"MSH|^~\\&|A|B|C|D|1||ORU^R01|".to_vec();
    with_header.extend_from_slice(stream);
    if let Ok(message) = Message::parse(&with_header) {
        walk(&message);
    }
    let d = Delimiters::STANDARD;
    assert_eq!(&unescape(&escape(stream, &d), &d)[..], stream);
});
