//! Property tests: framing round trips for any content and any chunking.

use std::time::Instant;

use astm_frame::{
    Assembly, DecoderConfig, Event, FrameDecoder, FramedMessage, FramerConfig, Item, Link,
    LinkConfig, Packing, Role, control,
};
use proptest::prelude::*;

/// Record text: any byte that may appear in frame text, except the CR that ends records.
fn record() -> impl Strategy<Value = Vec<u8>> {
    let allowed: Vec<u8> = (0..=255u8)
        .filter(|b| !control::is_restricted(*b) && *b != b'\r')
        .collect();
    prop::collection::vec(prop::sample::select(allowed), 1..700)
}

fn text_byte() -> impl Strategy<Value = u8> {
    let allowed: Vec<u8> = (0..=255u8)
        .filter(|b| !control::is_restricted(*b))
        .collect();
    prop::sample::select(allowed)
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(record(), 1..6).prop_map(|records| {
        let mut m = Vec::new();
        for r in records {
            m.extend(r);
            m.push(b'\r');
        }
        m
    })
}

fn framer() -> impl Strategy<Value = FramerConfig> {
    (1usize..300, prop::bool::ANY).prop_map(|(max_text_len, packed)| FramerConfig {
        max_text_len,
        packing: if packed {
            Packing::Packed
        } else {
            Packing::RecordPerFrame
        },
    })
}

/// Cut points for splitting a byte stream into chunks.
fn chunks(len: usize, cuts: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Items as owned values, with adjacent junk merged (junk is reported as it arrives).
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Control(u8),
    Frame(Vec<u8>, bool),
    Broken(Vec<u8>),
    Junk(Vec<u8>),
}

fn push_owned(out: &mut Vec<Owned>, item: Item<'_>) {
    let owned = match item {
        Item::Control(c) => Owned::Control(c.byte()),
        Item::Frame(f) => Owned::Frame(f.raw().to_vec(), f.is_valid()),
        Item::Broken { bytes, .. } => Owned::Broken(bytes.to_vec()),
        Item::Junk(j) | Item::Record(j) => {
            if let Some(Owned::Junk(prev)) = out.last_mut() {
                prev.extend_from_slice(j);
                return;
            }
            Owned::Junk(j.to_vec())
        }
    };
    out.push(owned);
}

fn decode_in_chunks(bytes: &[u8], cuts: &[usize], config: DecoderConfig) -> Vec<Owned> {
    let mut decoder = FrameDecoder::new(config);
    let mut out = Vec::new();
    for range in chunks(bytes.len(), cuts) {
        decoder.push(&bytes[range]);
        while let Some(item) = decoder.next_item() {
            push_owned(&mut out, item);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// message -> frames -> receiver gives the message back, whatever the chunking.
    #[test]
    fn message_survives_framing_and_any_chunking(
        message in message(),
        framer in framer(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let framed = FramedMessage::new(message.clone(), framer);
        let mut wire = vec![control::ENQ];
        wire.extend(framed.encode_all(1));
        wire.push(control::EOT);

        let mut config = LinkConfig::new(Role::Computer);
        config.assembly = Assembly::PerTransfer;
        let mut link = Link::new(config);
        let now = Instant::now();
        for range in chunks(wire.len(), &cuts) {
            link.handle_input(&wire[range], now);
        }
        let mut replies = Vec::new();
        while link.poll_transmit(&mut replies).is_some() {}
        prop_assert_eq!(replies.len(), framed.len() + 1);
        prop_assert!(replies.iter().all(|&b| b == control::ACK));
        let events: Vec<Event> = std::iter::from_fn(|| link.poll_event()).collect();
        prop_assert_eq!(events, vec![Event::MessageReceived(message)]);
    }

    /// Any bytes, any chunking: the same items as one buffer (strict mode).
    #[test]
    fn decoding_does_not_depend_on_chunking(
        bytes in prop::collection::vec(
            prop_oneof![
                4 => any::<u8>(),
                1 => Just(control::STX),
                1 => Just(control::ETX),
                1 => Just(b'\r'),
            ],
            0..400,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        max_frame_len in 8usize..300,
    ) {
        let config = DecoderConfig { max_frame_len, ..DecoderConfig::default() };
        let whole = decode_in_chunks(&bytes, &[], config);
        let chunked = decode_in_chunks(&bytes, &cuts, config);
        prop_assert_eq!(whole, chunked);
    }

    /// Lenient mode too: the same frame texts and bare records whatever the chunking.
    #[test]
    fn lenient_decoding_does_not_depend_on_chunking(
        bytes in prop::collection::vec(
            prop_oneof![
                4 => any::<u8>(),
                1 => Just(control::STX),
                1 => Just(control::ETX),
                1 => Just(b'\r'),
                1 => Just(b'L'),
            ],
            0..400,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        max_frame_len in 8usize..300,
    ) {
        let config = DecoderConfig {
            max_frame_len,
            leniency: astm_frame::Leniency::ALL,
        };
        let texts = |cuts: &[usize]| {
            let mut decoder = FrameDecoder::new(config);
            let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
            for range in chunks(bytes.len(), cuts) {
                decoder.push(&bytes[range]);
                while let Some(item) = decoder.next_item() {
                    match item {
                        Item::Frame(f) => out.push((u8::from(f.is_valid()), f.text().to_vec())),
                        Item::Record(r) => out.push((2, r.to_vec())),
                        Item::Control(c) => out.push((3, vec![c.byte()])),
                        _ => {}
                    }
                }
            }
            out
        };
        prop_assert_eq!(texts(&[]), texts(&cuts));
    }

    /// Every valid frame re-encodes to exactly its bytes.
    #[test]
    fn valid_frames_reencode_exactly(
        text in prop::collection::vec(text_byte(), 0..300),
        number in 0u8..8,
        etb in prop::bool::ANY,
    ) {
        let end = if etb { astm_frame::FrameEnd::Intermediate } else { astm_frame::FrameEnd::End };
        let mut wire = Vec::new();
        astm_frame::encode_frame(number, &text, end, &mut wire);
        let mut scanner = astm_frame::FrameScanner::new(DecoderConfig::default());
        let items: Vec<Item<'_>> = scanner.iter(&wire).collect();
        prop_assert_eq!(items.len(), 1);
        let Item::Frame(f) = items[0] else { panic!("not a frame: {:?}", items[0]) };
        prop_assert!(f.is_valid());
        prop_assert_eq!(f.number(), Some(number));
        prop_assert_eq!(f.text(), &text[..]);
        prop_assert_eq!(f.raw(), &wire[..]);
    }
}
