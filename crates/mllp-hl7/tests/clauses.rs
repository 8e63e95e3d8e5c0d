//! The MLLP (release 1 and 2) and HL7 v2 chapter 2 rules of hl7-mllp.md checked clause by
//! clause where no other test pinned them down: FS CR LF senders in strict mode, a start
//! block right after a start block, commit blocks with custom sequences, the size limit's
//! boundary, the escape sequences the note lists, a short MSH-2, header field numbering in
//! FHS / BHS, MSH-18 repetitions, MSH-11 / MSH-12 components in the ACK, and what the
//! server helper answers to frames without a usable MSH.

mod common;

use bytes::Bytes;
use common::decode_chunked;
use mllp_hl7::{
    AckBuilder, Charset, CommitAck, Delimiters, EncodeError, FrameError, Message, MllpConfig,
    MllpDecoder, MllpFrame, encode_frame, unescape,
};

fn message(payload: &[u8]) -> MllpFrame {
    MllpFrame::Message(Bytes::copy_from_slice(payload))
}

/// §1 / §9: `FS CR LF` senders (Mirth #510). Strict mode delivers every frame and reports
/// each LF as one byte outside a block; lenient mode skips it silently.
#[test]
fn fs_cr_lf_senders_lose_no_frame_and_the_lf_is_junk_only_in_strict_mode() {
    let stream = b"\x0bMSH|a\x1c\x0d\x0a\x0bMSH|b\x1c\x0d\x0a";
    for chunk in [1, 3, stream.len()] {
        let strict = decode_chunked(&mut MllpDecoder::new(), stream, chunk);
        assert_eq!(
            strict,
            [
                message(b"MSH|a"),
                MllpFrame::Junk { len: 1, offset: 8 },
                message(b"MSH|b"),
                MllpFrame::Junk { len: 1, offset: 17 },
            ],
            "strict, reads of {chunk}"
        );
        let mut lenient =
            MllpDecoder::with_config(MllpConfig::default().with_lenient(true)).unwrap();
        assert_eq!(
            decode_chunked(&mut lenient, stream, chunk),
            [message(b"MSH|a"), message(b"MSH|b")],
            "lenient, reads of {chunk}"
        );
    }
}

/// §1: a VT inside a block is a new start block (HL7 data carries no control characters):
/// a sender that writes VT twice loses nothing but an empty, reported partial frame.
#[test]
fn a_start_block_right_after_a_start_block_drops_an_empty_partial_frame() {
    let events = decode_chunked(&mut MllpDecoder::new(), b"\x0b\x0bMSH|a\x1c\x0d", 1);
    assert_eq!(
        events,
        [
            MllpFrame::Error(FrameError::Interrupted { offset: 0, len: 0 }),
            message(b"MSH|a"),
        ]
    );
}

/// §2: release 2 commit blocks use the connection's sequences; only a one-byte payload of
/// 0x06 or 0x15 is one (a block with more in it is a message).
#[test]
fn commit_blocks_follow_custom_sequences_and_are_exactly_one_byte() {
    let config = MllpConfig::default()
        .with_start_block(b"<SB>".to_vec())
        .with_end_block(b"<EB>".to_vec())
        .with_trailer(b"\r\n".to_vec());
    let mut wire = Vec::new();
    config.encode_commit(CommitAck::Ack, &mut wire).unwrap();
    config.encode_commit(CommitAck::Nak, &mut wire).unwrap();
    assert_eq!(wire, b"<SB>\x06<EB>\r\n<SB>\x15<EB>\r\n");
    config.encode(b"\x15\x15", &mut wire).unwrap();
    let mut decoder = MllpDecoder::with_config(config).unwrap();
    assert_eq!(
        decode_chunked(&mut decoder, &wire, 1),
        [
            MllpFrame::Commit(CommitAck::Ack),
            MllpFrame::Commit(CommitAck::Nak),
            message(b"\x15\x15"),
        ]
    );
}

/// §1 sizes: the maximum is inclusive on both sides (decoder and encoder agree).
#[test]
fn the_maximum_message_size_is_inclusive_when_decoding_and_encoding() {
    let config = MllpConfig::default().with_max_message_size(5);
    let mut wire = Vec::new();
    config.encode(b"12345", &mut wire).unwrap();
    assert_eq!(
        config.encode(b"123456", &mut Vec::new()),
        Err(EncodeError::TooLarge { len: 6, max: 5 })
    );
    encode_frame(b"123456", &mut wire).unwrap();
    let mut decoder = MllpDecoder::with_config(config).unwrap();
    assert_eq!(
        decode_chunked(&mut decoder, &wire, 2),
        [
            message(b"12345"),
            MllpFrame::Error(FrameError::TooLarge { offset: 8, max: 5 }),
        ]
    );
}

/// §4.2: the sequences the note lists. Delimiters and `\Xhh..\` (either case) decode;
/// formatting (`\.sp\`, `\.fi\`), character set switches (`\C..\`, `\M..\`) and malformed
/// or empty sequences stay verbatim; the escape character is the declared one.
#[test]
fn escape_sequences_of_the_note_decode_or_stay_verbatim() {
    let d = Delimiters::STANDARD;
    let cases: [(&[u8], &[u8]); 9] = [
        (b"\\X0a\\\\X4a4B\\", b"\nJK"),
        (b"\\X\\", b"\\X\\"),
        (b"a\\\\b", b"a\\\\b"),
        (b"\\C2842\\ABC\\C2B42\\", b"\\C2842\\ABC\\C2B42\\"),
        (b"\\M2442\\", b"\\M2442\\"),
        (b"x\\.sp2\\y\\.fi\\", b"x\\.sp2\\y\\.fi\\"),
        (b"\\X0G\\", b"\\X0G\\"),
        (b"\\E\\\\F\\", b"\\|"),
        (b"\\P\\", b"\\P\\"),
    ];
    for (raw, want) in cases {
        assert_eq!(
            &unescape(raw, &d)[..],
            want,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // Another escape character: its own `E`, and a backslash is plain data.
    let msg = Message::parse(b"MSH|^~!&|A\rNTE|1||C:\\dir !E! !F! !X41!").unwrap();
    assert_eq!(
        &msg.get("NTE-3").unwrap().unwrap().decoded()[..],
        b"C:\\dir ! | A"
    );
}

/// §4.1: an MSH-2 shorter than four characters declares only what it holds; escapes for
/// the rest stay verbatim, and without an escape character nothing is unescaped.
#[test]
fn a_short_msh_2_leaves_undeclared_escapes_verbatim() {
    let msg = Message::parse(b"MSH|^~\\|A\rNTE|1||a\\T\\b\\R\\c\\S\\d\\F\\e").unwrap();
    let d = msg.delimiters();
    assert_eq!((d.escape(), d.subcomponent()), (Some(b'\\'), None));
    assert_eq!(
        &msg.get("NTE-3").unwrap().unwrap().decoded()[..],
        b"a\\T\\b~c^d|e"
    );
    let msg = Message::parse(b"MSH|^~|A\rNTE|1||a\\F\\b&c").unwrap();
    assert_eq!(msg.delimiters().escape(), None);
    let value = msg.get("NTE-3").unwrap().unwrap();
    assert_eq!(&value.decoded()[..], b"a\\F\\b&c");
    assert_eq!(value.subcomponent(1).unwrap().raw(), b"a\\F\\b&c");
}

/// Ch. 2 field numbering: in every header segment (MSH, FHS, BHS) field 1 is the field
/// separator and field 2 the encoding characters; elsewhere field 1 follows the id.
#[test]
fn header_segments_count_the_field_separator_as_field_1() {
    let raw = b"FHS|^~\\&|FAPP|FFAC\rBHS|^~\\&|BAPP\rMSH|^~\\&|MAPP|MFAC|||||ORU^R01|1|P|2.5\rPID|1|X\rBTS|1\rFTS|1";
    let msg = Message::parse(raw).unwrap();
    for (path, want) in [
        ("FHS-1", "|"),
        ("FHS-2", "^~\\&"),
        ("FHS-3", "FAPP"),
        ("FHS-4", "FFAC"),
        ("BHS-3", "BAPP"),
        ("MSH-1", "|"),
        ("MSH-2", "^~\\&"),
        ("MSH-3", "MAPP"),
        ("MSH-10", "1"),
        ("PID-1", "1"),
        ("PID-2", "X"),
        ("BTS-1", "1"),
    ] {
        let value = msg.get(path).unwrap().unwrap();
        assert_eq!(value.as_str(), Some(want), "{path}");
    }
    // MSH-2 is never split, even by the component separator it declares.
    assert_eq!(msg.get("MSH-2.1").unwrap().unwrap().raw(), b"^~\\&");
    assert_eq!(msg.get("MSH-2.2").unwrap(), None);
    assert_eq!(msg.msh().unwrap().field_count(), 12);
}

/// §4.3: MSH-18's first repetition is the message's character set; the ACK copies the
/// whole field.
#[test]
fn the_first_msh_18_repetition_is_the_default_character_set() {
    let raw = b"MSH|^~\\&|A|B|C|D|1||ADT^A01|7|P|2.5||||||8859/1~ISO IR87\rPID|1||||M\xfcller";
    let msg = Message::parse(raw).unwrap();
    assert_eq!(msg.charset(), Ok(Charset::Latin1));
    let ack = AckBuilder::new(&msg).build().unwrap();
    let ack = Message::parse(&ack).unwrap();
    assert_eq!(ack.charset_id().raw(), b"8859/1~ISO IR87");
    assert_eq!(ack.charset(), Ok(Charset::Latin1));
    // §1 / §4.3: UTF-16 and UTF-32 bytes can equal the framing bytes and are refused by
    // name; empty means ASCII.
    for name in ["UNICODE UTF-16", "UNICODE UTF-32"] {
        let error = Charset::from_msh18(name.as_bytes()).unwrap_err();
        assert!(error.to_string().contains(name), "{error}");
    }
    assert_eq!(Charset::from_msh18(b""), Ok(Charset::Ascii));
}

/// §3.2: MSH-11 (processing ID with its mode) and MSH-12 (version with its components)
/// are copied whole.
#[test]
fn the_ack_copies_msh_11_and_msh_12_with_their_components() {
    let raw = b"MSH|^~\\&|A|B|C|D|1||ORU^R01|7|P^T|2.5.1^USA^v\rPID|1";
    let msg = Message::parse(raw).unwrap();
    let ack = AckBuilder::new(&msg).build().unwrap();
    let ack = Message::parse(&ack).unwrap();
    assert_eq!(ack.processing_id().raw(), b"P^T");
    assert_eq!(ack.version_id().raw(), b"2.5.1^USA^v");
    assert_eq!(ack.msh_field(9).raw(), b"ACK^R01^ACK");
}

/// §3.2: what the server helper answers. A frame without a usable MSH (not HL7, unusable
/// delimiters, a batch header without any MSH), an ACK, junk, a refused frame and a commit
/// block get nothing: there is no MSH-10 for MSA-2, or nothing to acknowledge.
#[cfg(feature = "tokio")]
#[test]
fn auto_ack_answers_only_an_hl7_message_with_a_usable_msh() {
    use mllp_hl7::{Response, auto_ack};
    let payload = |raw: &'static [u8]| MllpFrame::Message(Bytes::from_static(raw));
    for frame in [
        payload(b"hello"),
        payload(b"PID|1"),
        payload(b"MSH|^^\\&|A"),
        payload(b"FHS|^~\\&\rFTS|0"),
        payload(b"MSH|^~\\&|A||B||1||ACK^R01^ACK|9|P|2.5\rMSA|AA|1"),
        payload(b""),
        MllpFrame::Junk { len: 3, offset: 0 },
        MllpFrame::Error(FrameError::Truncated { offset: 0, len: 2 }),
        MllpFrame::Commit(CommitAck::Ack),
    ] {
        assert_eq!(auto_ack(&frame), None, "{frame:?}");
    }
    let Some(Response::Message(ack)) =
        auto_ack(&payload(b"MSH|^~\\&|A|B|C|D|1||ORU^R01|7|P|2.5\rPID|1"))
    else {
        panic!("an HL7 message is acknowledged");
    };
    let ack = Message::parse(&ack).unwrap();
    assert_eq!(ack.get("MSA-1").unwrap().unwrap().raw(), b"AA");
    assert_eq!(ack.get("MSA-2").unwrap().unwrap().raw(), b"7");
}
