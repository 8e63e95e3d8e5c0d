//! The link state machine on a simulated clock: every timer, contention from both roles, the
//! six-failure abort, receiver interrupt, duplicate frames, and two links driving each other.

mod common;

use common::*;
use std::time::{Duration, Instant};

use astm_frame::{
    AbortReason, Assembly, BrokenReason, ContentionPolicy, DiscardReason, Event, FrameDefect,
    FrameEnd, Leniency, Link, LinkConfig, LinkError, LinkState, Role,
};

/// A frame with no frame number at all: STX text ETX checksum CR LF.
fn unnumbered_frame(text: &[u8]) -> Vec<u8> {
    let sum = astm_frame::checksum::checksum(None, text, 0x03);
    let mut f = vec![0x02];
    f.extend_from_slice(text);
    f.push(0x03);
    f.extend_from_slice(&astm_frame::checksum::to_hex(sum));
    f.extend_from_slice(b"\r\n");
    f
}

/// Two stations joined by a wire with a fixed latency, on a simulated clock (after quinn's
/// `Pair`).
struct Pair {
    instrument: Link,
    computer: Link,
    now: Instant,
    /// Bytes in flight: (arrival time, to the computer?, bytes).
    wire: Vec<(Instant, bool, Vec<u8>)>,
    latency: Duration,
    /// Everything sent, in order, as (from the instrument?, bytes).
    transcript: Vec<(bool, Vec<u8>)>,
    instrument_events: Vec<Event>,
    computer_events: Vec<Event>,
    /// Bytes added after everything the computer sends (a noisy or sloppy receiver).
    computer_suffix: Vec<u8>,
}

impl Pair {
    fn new(instrument: LinkConfig, computer: LinkConfig) -> Self {
        Self {
            instrument: Link::new(instrument),
            computer: Link::new(computer),
            now: Instant::now(),
            wire: Vec::new(),
            latency: Duration::from_millis(5),
            transcript: Vec::new(),
            instrument_events: Vec::new(),
            computer_events: Vec::new(),
            computer_suffix: Vec::new(),
        }
    }

    fn standard() -> Self {
        Self::new(
            LinkConfig::new(Role::Instrument),
            LinkConfig::new(Role::Computer),
        )
    }

    fn collect(&mut self) {
        for (from_instrument, link) in [(true, &mut self.instrument), (false, &mut self.computer)] {
            let mut bytes = out(link);
            if !bytes.is_empty() {
                if !from_instrument {
                    bytes.extend_from_slice(&self.computer_suffix);
                }
                self.transcript.push((from_instrument, bytes.clone()));
                self.wire
                    .push((self.now + self.latency, from_instrument, bytes));
            }
        }
        self.instrument_events.extend(events(&mut self.instrument));
        self.computer_events.extend(events(&mut self.computer));
    }

    /// Advances to the next arrival or timer; returns false when nothing is left to do.
    fn step(&mut self) -> bool {
        self.collect();
        let next_arrival = self.wire.iter().map(|w| w.0).min();
        let next_timer = [self.instrument.poll_timeout(), self.computer.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = [next_arrival, next_timer].into_iter().flatten().min() else {
            return false;
        };
        self.now = self.now.max(next);
        let (due, later): (Vec<_>, Vec<_>) = self.wire.drain(..).partition(|w| w.0 <= self.now);
        self.wire = later;
        for (_, to_computer, bytes) in due {
            if to_computer {
                self.computer.handle_input(&bytes, self.now);
            } else {
                self.instrument.handle_input(&bytes, self.now);
            }
        }
        self.instrument.handle_timeout(self.now);
        self.computer.handle_timeout(self.now);
        self.collect();
        true
    }

    /// The messages the computer received, in order.
    fn received(&self) -> Vec<Vec<u8>> {
        self.computer_events
            .iter()
            .filter_map(|e| match e {
                Event::MessageReceived(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn drive(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("did not settle");
    }
}

#[test]
fn sender_and_receiver_drive_each_other() {
    let mut pair = Pair::standard();
    let long_record = format!("R|1|^^^M|{}\r", "9".repeat(600));
    let messages = [
        b"H|\\^&\rP|1\rO|1|S1\rR|1|^^^WBC|5.8\rL|1|N\r".to_vec(),
        format!("H|\\^&\r{long_record}L|1|N\r").into_bytes(),
    ];
    let ids: Vec<_> = messages
        .iter()
        .map(|m| pair.instrument.send(m.clone(), pair.now))
        .collect();
    pair.drive();
    let sent: Vec<_> = pair
        .instrument_events
        .iter()
        .filter_map(|e| match e {
            Event::MessageSent(id) => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(sent, ids);
    let received = pair.received();
    // One record per end frame: five records, then three (the long one via ETB frames).
    assert_eq!(received.len(), 8);
    assert_eq!(received.concat(), messages.concat());
    assert_eq!(received[6], long_record.as_bytes());
    assert!(pair.instrument.is_idle() && pair.computer.is_idle());
    // Each message in its own transfer: ENQ ... EOT twice.
    let enqs: usize = pair
        .transcript
        .iter()
        .filter(|(from_instrument, _)| *from_instrument)
        .map(|(_, b)| b.iter().filter(|&&x| x == ENQ).count())
        .sum();
    assert_eq!(enqs, 2);
}

#[test]
fn per_transfer_assembly_hands_over_whole_messages() {
    let mut computer = LinkConfig::new(Role::Computer);
    computer.assembly = Assembly::PerTransfer;
    let mut pair = Pair::new(LinkConfig::new(Role::Instrument), computer);
    let message = b"H|\\^&\rP|1\rL|1|N\r".to_vec();
    pair.instrument.send(message.clone(), pair.now);
    pair.drive();
    assert_eq!(pair.computer_events, [Event::MessageReceived(message)]);
}

#[test]
fn no_reply_to_enq_times_out_retries_and_gives_up() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    let id = link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    let mut now = t0;
    for attempt in 1..=6 {
        assert_eq!(link.state(), LinkState::Establishing);
        let deadline = link.poll_timeout().unwrap();
        assert_eq!(deadline - now, secs(15), "attempt {attempt}");
        link.handle_timeout(deadline - Duration::from_millis(1));
        assert!(out(&mut link).is_empty(), "early timeout call is a no-op");
        now = deadline;
        link.handle_timeout(now);
        // §6.5.2.1: termination phase.
        assert_eq!(out(&mut link), [EOT]);
        if attempt < 6 {
            let retry = link.poll_timeout().unwrap();
            assert_eq!(retry - now, secs(10));
            now = retry;
            link.handle_timeout(now);
            assert_eq!(out(&mut link), [ENQ]);
        }
    }
    assert!(matches!(
        events(&mut link)[..],
        [Event::MessageAborted { id: i, reason: AbortReason::LinkNotEstablished { attempts: 6 }, .. }] if i == id
    ));
    assert!(link.is_idle());
    assert_eq!(link.poll_timeout(), None);
}

/// A frame that went on the wire late (a response delay, a slow write) gets its whole 15 s
/// reply timer from then (§6.5.2: the timer starts on transmission). The delay used up part
/// of the peer's time to reply: a 10 s delay left it 5 s.
#[test]
fn reply_timers_run_from_when_the_bytes_went_out() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ACK], t0);
    assert_eq!(out(&mut link)[0], STX);
    link.handle_transmitted(t0 + secs(10));
    assert_eq!(link.poll_timeout(), Some(t0 + secs(25)));
    link.handle_timeout(t0 + secs(16));
    assert!(
        out(&mut link).is_empty(),
        "the frame's timer did not run out"
    );
    assert_eq!(link.state(), LinkState::Sending);
    // Written in pieces: each call restarts it from the latest.
    link.handle_transmitted(t0 + secs(11));
    assert_eq!(link.poll_timeout(), Some(t0 + secs(26)));
    // An earlier instant does not move it back.
    link.handle_transmitted(t0 + secs(1));
    assert_eq!(link.poll_timeout(), Some(t0 + secs(26)));
    link.handle_timeout(t0 + secs(26));
    assert_eq!(out(&mut link), [EOT], "then it runs out as usual");

    // The receive timer, too: an ENQ answered 20 s late leaves the sender 30 s from then.
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    lis.handle_input(&[ENQ], t0);
    assert_eq!(out(&mut lis), [ACK]);
    lis.handle_transmitted(t0 + secs(20));
    lis.handle_timeout(t0 + secs(40));
    assert_eq!(lis.state(), LinkState::Receiving);
    lis.handle_input(&frame(1, b"H|\\^&\rL|1|N\r", FrameEnd::End), t0 + secs(40));
    assert_eq!(out(&mut lis), [ACK]);
    lis.handle_input(&[EOT], t0 + secs(40));
    assert!(
        events(&mut lis)
            .iter()
            .any(|e| matches!(e, Event::MessageReceived(_)))
    );

    // Timers not started by a transmission stay: the hold-off after a NAKed ENQ.
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    let _ = out(&mut link);
    link.handle_input(&[NAK], t0);
    link.handle_transmitted(t0 + secs(5));
    assert_eq!(link.poll_timeout(), Some(t0 + secs(10)));
}

#[test]
fn nak_to_enq_waits_ten_seconds() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[NAK], t0 + secs(1));
    assert!(out(&mut link).is_empty());
    assert_eq!(link.poll_timeout(), Some(t0 + secs(11)));
    link.handle_timeout(t0 + secs(10));
    assert!(out(&mut link).is_empty(), "no ENQ before 10 s");
    link.handle_timeout(t0 + secs(11));
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ACK], t0 + secs(12));
    assert_eq!(out(&mut link), frame(1, b"H|\\^&\r", FrameEnd::End));
}

#[test]
fn busy_receiver_naks_enq() {
    let mut link = Link::new(LinkConfig::new(Role::Computer));
    link.set_busy(true);
    link.handle_input(&[ENQ], Instant::now());
    assert_eq!(out(&mut link), [NAK]);
    assert_eq!(link.state(), LinkState::Neutral);
    link.set_busy(false);
    link.handle_input(&[ENQ], Instant::now());
    assert_eq!(out(&mut link), [ACK]);
    assert_eq!(link.state(), LinkState::Receiving);
}

#[test]
fn contention_instrument_has_priority() {
    let mut pair = Pair::standard();
    // Both want the link at the same instant: the ENQs cross on the wire.
    let from_instrument = b"H|\\^&|||INSTRUMENT\rL|1|N\r".to_vec();
    let from_computer = b"H|\\^&|||LIS\rL|1|N\r".to_vec();
    pair.instrument.send(from_instrument.clone(), pair.now);
    pair.computer.send(from_computer.clone(), pair.now);
    let t0 = pair.now;
    pair.drive();

    // The computer yielded; the instrument re-sent ENQ after at least 1 s and sent first.
    let enqs: usize = pair
        .transcript
        .iter()
        .filter(|(from_instrument, _)| *from_instrument)
        .map(|(_, b)| b.iter().filter(|&&x| x == ENQ).count())
        .sum();
    assert_eq!(
        enqs, 2,
        "the instrument's first ENQ met contention, the second got the link"
    );
    let received_by_computer = received_by(&pair.computer_events);
    assert_eq!(received_by_computer, from_instrument);
    let received_by_instrument = received_by(&pair.instrument_events);
    assert_eq!(received_by_instrument, from_computer);
    assert!(pair.now - t0 >= secs(1));
    assert!(
        pair.instrument_events
            .iter()
            .any(|e| matches!(e, Event::MessageSent(_)))
    );
    assert!(
        pair.computer_events
            .iter()
            .any(|e| matches!(e, Event::MessageSent(_)))
    );
}

#[test]
fn contention_seen_from_the_computer_yields_for_twenty_seconds() {
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    let t0 = Instant::now();
    lis.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut lis), [ENQ]);
    lis.handle_input(&[ENQ], t0);
    assert_eq!(
        out(&mut lis),
        b"",
        "the computer does not answer the crossing ENQ"
    );
    assert_eq!(lis.state(), LinkState::ContentionYield);
    assert_eq!(lis.poll_timeout(), Some(t0 + secs(20)));
    // The instrument never comes back: after 20 s the line is neutral and we try again.
    lis.handle_timeout(t0 + secs(20));
    assert_eq!(out(&mut lis), [ENQ]);
    assert_eq!(lis.state(), LinkState::Establishing);

    // Same again, but this time the instrument's ENQ comes and is answered.
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    lis.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    let _ = out(&mut lis);
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&[ENQ], t0 + secs(1));
    assert_eq!(out(&mut lis), [ACK]);
    assert_eq!(lis.state(), LinkState::Receiving);
}

#[test]
fn contention_seen_from_the_instrument_waits_one_second() {
    let mut analyzer = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    analyzer.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut analyzer), [ENQ]);
    analyzer.handle_input(&[ENQ], t0);
    assert!(out(&mut analyzer).is_empty());
    assert_eq!(analyzer.poll_timeout(), Some(t0 + secs(1)));
    analyzer.handle_timeout(t0 + secs(1));
    assert_eq!(out(&mut analyzer), [ENQ]);

    // With the yielding policy (as some simulators behave) the instrument gives way instead.
    let mut config = LinkConfig::new(Role::Instrument);
    config.contention = ContentionPolicy::Yield;
    let mut analyzer = Link::new(config);
    analyzer.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    let _ = out(&mut analyzer);
    analyzer.handle_input(&[ENQ], t0);
    assert_eq!(analyzer.state(), LinkState::ContentionYield);
}

/// A yielding instrument (`ContentionPolicy::Yield`, as the OpenELIS mock behaves) against a
/// standard computer, their ENQs crossing: both yield, and 20 s later both try again at the
/// same instant. They used to do so for ever, neither message ever sent. After a yield the
/// peer did not use, the yielding side insists on the next contention, as an instrument does,
/// and the computer yields to it.
#[test]
fn a_yielding_instrument_and_a_computer_do_not_yield_to_each_other_for_ever() {
    let mut yielding = LinkConfig::new(Role::Instrument);
    yielding.contention = ContentionPolicy::Yield;
    let mut pair = Pair::new(yielding, LinkConfig::new(Role::Computer));
    let from_instrument = b"H|\\^&|||INSTRUMENT\rL|1|N\r".to_vec();
    let from_computer = b"H|\\^&|||LIS\rL|1|N\r".to_vec();
    pair.instrument.send(from_instrument.clone(), pair.now);
    pair.computer.send(from_computer.clone(), pair.now);
    let t0 = pair.now;
    for _ in 0..2_000 {
        if !pair.step() {
            break;
        }
    }
    let received_by_instrument = received_by(&pair.instrument_events);
    // One record per frame, each an E1381 message.
    assert_eq!(
        pair.received().concat(),
        from_instrument,
        "after {:?}",
        pair.now - t0
    );
    assert_eq!(received_by_instrument, from_computer);
    // One fruitless yield (20 s), then the instrument's turn after its 1 s wait.
    assert!(pair.now - t0 < secs(30), "took {:?}", pair.now - t0);
}

/// A peer that yields by acknowledging our ENQ after its own crossed it (ENQ, then ACK: the
/// OpenELIS mock's proactive-ENQ port, and the simulator's ports with `--contention yield`)
/// is receiving our frames now, whichever way we met the contention. The ACK used to be
/// ignored: a yielding sender waited 20 s for an ENQ that never came, an insisting one sent
/// ENQ again after 1 s into the peer's transfer (NAK), and the message waited for the peer's
/// 30 s receive timer, or for ever when the peer then contended again.
#[test]
fn an_ack_after_the_peers_crossing_enq_starts_our_transfer() {
    for policy in [
        ContentionPolicy::Yield,
        ContentionPolicy::ByRole,
        ContentionPolicy::Insist,
        ContentionPolicy::AckAfter(secs(1)),
    ] {
        for role in [Role::Instrument, Role::Computer] {
            let mut config = LinkConfig::new(role);
            config.contention = policy;
            let mut link = Link::new(config);
            let t0 = Instant::now();
            link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
            assert_eq!(out(&mut link), [ENQ]);
            link.handle_input(&[ENQ], t0 + Duration::from_millis(5));
            assert_eq!(out(&mut link), b"", "{policy:?} {role:?}");
            link.handle_input(&[ACK], t0 + Duration::from_millis(10));
            assert_eq!(
                out(&mut link),
                frame(1, b"H|\\^&\r", FrameEnd::End),
                "{policy:?} {role:?}: the first frame at once"
            );
            assert_eq!(link.state(), LinkState::Sending);
        }
    }
    // An ACK out of the blue, with no contention before it, is still nothing.
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    link.handle_input(&[ACK], t0);
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    assert_eq!(link.state(), LinkState::Establishing);
}

/// What a station received: the texts of the `MessageReceived` among `events`, joined.
fn received_by(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived(m) => Some(m.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat()
}

/// `AckAtOnce` (the OpenELIS mock): the peer's crossing ENQ is acknowledged at once, its message
/// received, and ours sent after it. A busy station cannot receive and insists instead.
#[test]
fn ack_at_once_acknowledges_the_crossing_enq_and_sends_afterwards() {
    let config = LinkConfig::new(Role::Instrument).with_contention(ContentionPolicy::AckAtOnce);
    let mut link = Link::new(config);
    let t0 = Instant::now();
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ENQ], t0);
    assert_eq!(out(&mut link), [ACK], "acknowledged at once");
    assert_eq!(link.state(), LinkState::Receiving);
    // The peer's ACK to our ENQ, sent before it saw ours acknowledged, changes nothing.
    link.handle_input(&[ACK], t0);
    assert_eq!(link.state(), LinkState::Receiving);
    link.handle_input(&frame(1, b"H|\\^&|||LIS\r", FrameEnd::End), t0);
    assert_eq!(out(&mut link), [ACK]);
    link.handle_input(&[EOT], t0);
    assert_eq!(out(&mut link), [ENQ], "then our own message");

    let config = LinkConfig::new(Role::Computer).with_contention(ContentionPolicy::AckAtOnce);
    let mut busy = Link::new(config);
    busy.set_busy(true);
    busy.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut busy), [ENQ]);
    busy.handle_input(&[ENQ], t0);
    assert_eq!(out(&mut busy), b"", "no ACK while busy");
    assert_eq!(busy.poll_timeout(), Some(t0 + secs(1)), "insists after 1 s");
    busy.handle_timeout(t0 + secs(1));
    assert_eq!(out(&mut busy), [ENQ]);
}

/// Two stations whose ENQs cross, one acknowledging at once (`AckAtOnce`, a simulator's
/// listening port) and one giving the peer time to do so (`AckAfter`, a simulator pushing to
/// it): the second takes the first's ACK as the line and sends, then receives the first's
/// message, without waiting for any timer.
#[test]
fn ack_after_takes_the_line_a_peer_acknowledging_at_once_gives_it() {
    let at_once = LinkConfig::new(Role::Instrument).with_contention(ContentionPolicy::AckAtOnce);
    let after =
        LinkConfig::new(Role::Instrument).with_contention(ContentionPolicy::AckAfter(secs(1)));
    let mut pair = Pair::new(after, at_once);
    let from_pusher = b"H|\\^&|||PUSHER\rL|1|N\r".to_vec();
    let from_port = b"H|\\^&|||PORT\rL|1|N\r".to_vec();
    pair.instrument.send(from_pusher.clone(), pair.now);
    pair.computer.send(from_port.clone(), pair.now);
    let t0 = pair.now;
    pair.drive();
    assert_eq!(pair.received().concat(), from_pusher);
    assert_eq!(received_by(&pair.instrument_events), from_port);
    // Two ENQs, the ACK, frames and EOTs: a few 5 ms hops, no timer.
    assert!(
        pair.now - t0 < Duration::from_millis(200),
        "took {:?}",
        pair.now - t0
    );

    // Why one side needs `AckAfter`: two stations acknowledging at once each wait for the
    // other's frames until their receive timers run out, and then contend again, for ever.
    let at_once = LinkConfig::new(Role::Instrument).with_contention(ContentionPolicy::AckAtOnce);
    let mut pair = Pair::new(at_once, at_once);
    pair.instrument.send(from_pusher, pair.now);
    pair.computer.send(from_port, pair.now);
    let t0 = pair.now;
    while pair.now - t0 < secs(100) && pair.step() {}
    assert_eq!(pair.received(), Vec::<Vec<u8>>::new());
    assert_eq!(received_by(&pair.instrument_events), b"");
}

/// Liveness: for each pair of contention policies that can settle, both stations wanting the
/// line at nearly the same moment (the second ENQ leaving before, as and just after the first
/// arrives) over wires from 1 ms to 400 ms, both messages get through. Pairs that are
/// symmetric (Insist/Insist, Yield/Yield, AckAtOnce/AckAtOnce, AckAfter/AckAfter) are left
/// out: nothing in E1381 breaks their tie.
#[test]
fn every_pair_of_contention_policies_that_can_settle_delivers_both_messages() {
    use ContentionPolicy::{AckAfter, AckAtOnce, ByRole, Insist, Yield};
    let grace = AckAfter(secs(1));
    let pairs = [
        (ByRole, Role::Instrument, ByRole, Role::Computer),
        (Yield, Role::Instrument, ByRole, Role::Computer),
        (Insist, Role::Computer, ByRole, Role::Computer),
        (grace, Role::Instrument, AckAtOnce, Role::Instrument),
        (grace, Role::Instrument, ByRole, Role::Computer),
        (grace, Role::Instrument, ByRole, Role::Instrument),
        (AckAtOnce, Role::Instrument, ByRole, Role::Computer),
        (AckAtOnce, Role::Instrument, ByRole, Role::Instrument),
        (AckAtOnce, Role::Instrument, Yield, Role::Computer),
        (AckAtOnce, Role::Computer, Insist, Role::Computer),
    ];
    let first = b"H|\\^&|||FIRST\rL|1|N\r".to_vec();
    let second = b"H|\\^&|||SECOND\rL|1|N\r".to_vec();
    for (policy_a, role_a, policy_b, role_b) in pairs {
        for latency_ms in [1, 5, 20, 100, 400] {
            let latency = Duration::from_millis(latency_ms);
            for offset in [
                Duration::ZERO,
                latency / 2,
                latency.saturating_sub(Duration::from_millis(1)),
                latency,
            ] {
                for swap in [false, true] {
                    let (a, b) = (
                        LinkConfig::new(role_a).with_contention(policy_a),
                        LinkConfig::new(role_b).with_contention(policy_b),
                    );
                    let mut pair = if swap {
                        Pair::new(b, a)
                    } else {
                        Pair::new(a, b)
                    };
                    pair.latency = latency;
                    let t0 = pair.now;
                    pair.instrument.send(first.clone(), t0);
                    while pair.now < t0 + offset && pair.step() {}
                    pair.now = pair.now.max(t0 + offset);
                    pair.computer.send(second.clone(), pair.now);
                    while (pair.received().concat() != first
                        || received_by(&pair.instrument_events) != second)
                        && pair.now - t0 < secs(300)
                        && pair.step()
                    {}
                    let context = format!(
                        "{policy_a:?} {role_a:?} / {policy_b:?} {role_b:?}, swapped {swap}, \
                         latency {latency:?}, offset {offset:?}, after {:?}",
                        pair.now - t0
                    );
                    assert_eq!(pair.received().concat(), first, "{context}");
                    assert_eq!(received_by(&pair.instrument_events), second, "{context}");
                }
            }
        }
    }
}

/// `AckAfter` against a peer that reads the reply to the ENQ that crossed ours (the OpenELIS
/// bridge sending orders) and sends nothing meanwhile: after the grace the peer's ENQ is
/// acknowledged and its message received; ours follows.
#[test]
fn ack_after_acknowledges_a_silent_peers_enq_once_the_grace_has_passed() {
    let config = LinkConfig::new(Role::Instrument)
        .with_contention(ContentionPolicy::AckAfter(Duration::from_millis(700)));
    let mut link = Link::new(config);
    let t0 = Instant::now();
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ENQ], t0);
    assert_eq!(out(&mut link), b"");
    assert_eq!(link.state(), LinkState::ContentionYield);
    assert_eq!(link.poll_timeout(), Some(t0 + Duration::from_millis(700)));
    link.handle_timeout(t0 + Duration::from_millis(699));
    assert_eq!(out(&mut link), b"");
    link.handle_timeout(t0 + Duration::from_millis(700));
    assert_eq!(out(&mut link), [ACK]);
    assert_eq!(link.state(), LinkState::Receiving);
    link.handle_input(&frame(1, b"H|\\^&|||LIS\r", FrameEnd::End), t0 + secs(1));
    assert_eq!(out(&mut link), [ACK]);
    link.handle_input(&[EOT], t0 + secs(1));
    assert_eq!(out(&mut link), [ENQ], "then our own message");
    assert_eq!(received_by(&events(&mut link)), b"H|\\^&|||LIS\r");

    // A peer that sends ENQ again within the grace (a standard instrument, after its 1 s) is
    // acknowledged then.
    let config =
        LinkConfig::new(Role::Computer).with_contention(ContentionPolicy::AckAfter(secs(2)));
    let mut link = Link::new(config);
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ENQ], t0);
    link.handle_input(&[ENQ], t0 + secs(1));
    assert_eq!(out(&mut link), [ACK]);
    assert_eq!(link.state(), LinkState::Receiving);

    // Busy when the grace runs out: the peer's ENQ gets NAK (it waits 10 s before its next)
    // and ours follows; no timer is left due (an I/O loop would call `handle_timeout` for
    // ever).
    let config =
        LinkConfig::new(Role::Instrument).with_contention(ContentionPolicy::AckAfter(secs(1)));
    let mut link = Link::new(config);
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ENQ], t0);
    link.set_busy(true);
    link.handle_timeout(t0 + secs(1));
    assert_eq!(out(&mut link), [NAK, ENQ]);
    assert_eq!(link.state(), LinkState::Establishing);
    assert!(link.poll_timeout().is_none_or(|t| t > t0 + secs(1)));
}

fn established_sender(message: &[u8]) -> (Link, Instant) {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    link.send(message.to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ACK], t0);
    (link, t0)
}

#[test]
fn sixth_failed_transmission_ends_the_transfer_with_eot() {
    let message = b"H|\\^&\rL|1|N\r";
    let (mut link, t0) = established_sender(message);
    let first = frame(1, b"H|\\^&\r", FrameEnd::End);
    assert_eq!(out(&mut link), first);
    for n in 2..=6 {
        link.handle_input(&[NAK], t0);
        assert_eq!(
            out(&mut link),
            first,
            "transmission {n} is the same frame, same FN"
        );
    }
    link.handle_input(&[NAK], t0);
    assert_eq!(out(&mut link), [EOT]);
    let evs = events(&mut link);
    let retransmissions = evs
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::LinkError(LinkError::Retransmitting { frame_number: 1 })
            )
        })
        .count();
    assert_eq!(retransmissions, 5);
    // §6.5.1.2: the message is kept for a complete repeat later.
    assert!(matches!(
        evs.last(),
        Some(Event::TransferFailed {
            reason: AbortReason::TooManyTransmissions {
                frame_number: 1,
                transmissions: 6
            },
            transfers: 1,
            ..
        })
    ));
    assert_eq!(link.queued(), 1);
}

/// §6.5.2.3: an aborted transfer keeps its message "for retransmission later". It was handed
/// back as aborted, so a simulator or driver that did not repeat it itself dropped it.
#[test]
fn a_failed_transfer_is_repeated_whole_after_the_hold_off() {
    let message = b"H|\\^&\rP|1\rL|1|N\r";
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    let id = link.send(message.to_vec(), t0);
    let later = link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ACK], t0);
    assert_eq!(out(&mut link), frame(1, b"H|\\^&\r", FrameEnd::End));
    link.handle_input(&[ACK], t0);
    assert_eq!(out(&mut link), frame(2, b"P|1\r", FrameEnd::End));
    // Frame 2 gets no reply: EOT at 15 s, and no ENQ during the 10 s hold-off.
    link.handle_timeout(t0 + secs(15));
    assert_eq!(out(&mut link), [EOT]);
    assert_eq!(
        events(&mut link),
        [Event::TransferFailed {
            id,
            reason: AbortReason::NoReplyToFrame { frame_number: 2 },
            transfers: 1,
        }]
    );
    assert_eq!(link.state(), LinkState::Neutral);
    assert_eq!(link.poll_timeout(), Some(t0 + secs(25)));
    link.handle_timeout(t0 + secs(24));
    assert_eq!(out(&mut link), []);
    // Then the same message, from its first frame, numbered from 1, before the later one.
    link.handle_timeout(t0 + secs(25));
    assert_eq!(out(&mut link), [ENQ]);
    let t1 = t0 + secs(25);
    link.handle_input(&[ACK], t1);
    assert_eq!(out(&mut link), frame(1, b"H|\\^&\r", FrameEnd::End));
    link.handle_input(&[ACK], t1);
    assert_eq!(out(&mut link), frame(2, b"P|1\r", FrameEnd::End));
    link.handle_input(&[ACK], t1);
    assert_eq!(out(&mut link), frame(3, b"L|1|N\r", FrameEnd::End));
    link.handle_input(&[ACK], t1);
    assert_eq!(out(&mut link), [EOT, ENQ]);
    assert_eq!(events(&mut link), [Event::MessageSent(id)]);
    link.handle_input(&[ACK], t1);
    link.handle_input(&[ACK], t1);
    link.handle_input(&[ACK], t1);
    assert_eq!(events(&mut link), [Event::MessageSent(later)]);
}

/// After `max_transfers` failed transfers the message is given up, its text handed back.
#[test]
fn the_last_failed_transfer_aborts_the_message() {
    let message = b"H|\\^&\rL|1|N\r";
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let mut now = Instant::now();
    let id = link.send(message.to_vec(), now);
    for transfer in 1..=3 {
        assert_eq!(out(&mut link), [ENQ], "transfer {transfer}");
        link.handle_input(&[ACK], now);
        assert_eq!(out(&mut link), frame(1, b"H|\\^&\r", FrameEnd::End));
        for _ in 0..6 {
            link.handle_input(&[NAK], now);
        }
        let _ = out(&mut link);
        let evs = events(&mut link);
        let outcome = evs.last().unwrap();
        if transfer < 3 {
            assert!(
                matches!(outcome, Event::TransferFailed { id: i, transfers, .. }
                    if *i == id && *transfers == transfer),
                "{evs:?}"
            );
            now = link.poll_timeout().unwrap();
            link.handle_timeout(now);
        } else {
            assert_eq!(
                outcome,
                &Event::MessageAborted {
                    id,
                    reason: AbortReason::TooManyTransmissions {
                        frame_number: 1,
                        transmissions: 6,
                    },
                    message: message.to_vec(),
                }
            );
        }
    }
    assert!(link.is_idle());
    assert_eq!(link.poll_timeout(), None);
}

/// The peer may send its own message during the hold-off before a repeat.
#[test]
fn the_peer_can_send_during_the_hold_off_before_a_repeat() {
    let (mut link, t0) = established_sender(b"H|\\^&\rL|1|N\r");
    let _ = out(&mut link);
    link.handle_timeout(t0 + secs(15));
    assert_eq!(out(&mut link), [EOT]);
    let t1 = t0 + secs(16);
    link.handle_input(&[ENQ], t1);
    assert_eq!(out(&mut link), [ACK]);
    link.handle_input(&frame(1, b"H|\\^&\rL|1|N\r", FrameEnd::End), t1);
    link.handle_input(&[EOT], t1);
    assert_eq!(out(&mut link), [ACK]);
    assert!(
        events(&mut link)
            .iter()
            .any(|e| matches!(e, Event::MessageReceived(_)))
    );
    // The hold-off still runs from the failure.
    assert_eq!(link.poll_timeout(), Some(t0 + secs(25)));
    link.handle_timeout(t0 + secs(25));
    assert_eq!(out(&mut link), [ENQ]);
}

#[test]
fn any_reply_other_than_ack_or_eot_means_retransmit() {
    let (mut link, t0) = established_sender(b"H|\\^&\rL|1|N\r");
    let first = out(&mut link);
    // Noise with no reply after it was the reply, garbled: a NAK, once the reply had
    // time to come.
    link.handle_input(b"garbage", t0);
    assert_eq!(out(&mut link), []);
    assert_eq!(link.poll_timeout(), Some(t0 + secs(2)));
    link.handle_timeout(t0 + secs(2));
    assert_eq!(out(&mut link), first);
    link.handle_input(&[ENQ], t0 + secs(2));
    assert_eq!(out(&mut link), first);
    link.handle_input(&[ACK], t0 + secs(2));
    assert_eq!(out(&mut link), frame(2, b"L|1|N\r", FrameEnd::End));
    let retransmissions = events(&mut link)
        .iter()
        .filter(|e| matches!(e, Event::LinkError(LinkError::Retransmitting { .. })))
        .count();
    assert_eq!(retransmissions, 2);
}

/// Noise before the reply does not stand in for it: resending at once would have the
/// reply already on its way taken for the resent frame's, and every later reply for
/// the frame before its own.
#[test]
fn noise_before_a_reply_does_not_cause_a_resend() {
    let (mut link, t0) = established_sender(b"H|\\^&\rP|1\rL|1|N\r");
    let _ = out(&mut link);
    link.handle_input(&[0x7f], t0);
    link.handle_input(&[ACK], t0 + Duration::from_millis(300));
    assert_eq!(out(&mut link), frame(2, b"P|1\r", FrameEnd::End));
    // The noise timer went with the frame it was about.
    assert_eq!(
        link.poll_timeout(),
        Some(t0 + Duration::from_millis(300) + secs(15))
    );
    // Line ends after a reply are not noise at all.
    link.handle_input(b"\x06\r\n", t0 + secs(1));
    assert_eq!(out(&mut link), frame(3, b"L|1|N\r", FrameEnd::End));
    link.handle_input(b"\r\n", t0 + secs(1));
    assert_eq!(link.poll_timeout(), Some(t0 + secs(16)));
    link.handle_input(&[ACK], t0 + secs(1));
    assert_eq!(out(&mut link), [EOT]);
    let evs = events(&mut link);
    assert!(
        !evs.iter()
            .any(|e| matches!(e, Event::LinkError(LinkError::Retransmitting { .. }))),
        "{evs:?}"
    );
    assert!(matches!(evs.last(), Some(Event::MessageSent(_))), "{evs:?}");
}

/// Noise of any shape, not only bytes outside frames, waits for the reply that may follow
/// it: an STX starts a broken frame, a CR ends a bare record (with `unframed_records`),
/// and a whole frame may come where the reply belongs. Each was a NAK at once: the frame was
/// resent and the reply already on its way taken for the resent frame's, so that every later
/// reply answered the frame before its own, and a message whose last frame the receiver
/// refused was reported sent.
#[test]
fn noise_of_any_shape_before_a_reply_does_not_cause_a_resend() {
    let noises: [(&str, Vec<u8>); 5] = [
        ("STX then LF", b"\x02\n".to_vec()),
        ("STX, text, LF", b"\x021H|x\n".to_vec()),
        ("a bare record", b"x\r".to_vec()),
        ("a frame", frame(1, b"Q|1\r", FrameEnd::End)),
        ("an over-long frame", [&[STX][..], &[b'a'; 70_000]].concat()),
    ];
    for (what, noise) in noises {
        let mut config = LinkConfig::new(Role::Instrument);
        config.decoder.leniency.unframed_records = true;
        let t0 = Instant::now();
        let mut link = Link::new(config);
        link.send(b"H|\\^&\rP|1\rL|1|N\r".to_vec(), t0);
        assert_eq!(out(&mut link), [ENQ]);
        link.handle_input(&[ACK], t0);
        let first = out(&mut link);
        link.handle_input(&noise, t0);
        assert_eq!(out(&mut link), [], "{what}: resent at once");
        // The reply on its way answers the frame it was about.
        link.handle_input(&[ACK], t0 + Duration::from_millis(300));
        assert_eq!(out(&mut link), frame(2, b"P|1\r", FrameEnd::End), "{what}");
        // Noise with no reply after it was the reply, garbled: a NAK after the grace.
        link.handle_input(&noise, t0 + secs(1));
        assert_eq!(out(&mut link), [], "{what}");
        link.handle_timeout(t0 + secs(3));
        assert_eq!(out(&mut link), frame(2, b"P|1\r", FrameEnd::End), "{what}");
        let evs = events(&mut link);
        assert_eq!(
            evs.iter()
                .filter(|e| matches!(e, Event::LinkError(LinkError::Retransmitting { .. })))
                .count(),
            1,
            "{what}: {evs:?}"
        );
        assert_ne!(first, [], "{what}");
    }
}

/// Two links, the receiver's every reply followed by a noise byte: the message arrives
/// once and whole, with no frame resent.
#[test]
fn a_receiver_that_adds_noise_to_every_reply_gets_the_message_intact() {
    let mut pair = Pair::standard();
    pair.computer_suffix = vec![0x7f];
    let message = b"H|\\^&\rP|1\rO|1|S1\rR|1|^^^WBC|5.8\rR|2|^^^RBC|4.1\rL|1|N\r".to_vec();
    pair.instrument.send(message.clone(), pair.now);
    pair.drive();
    let received = pair.received();
    let records: Vec<Vec<u8>> = message
        .split_inclusive(|&b| b == b'\r')
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(received, records);
    assert!(
        pair.instrument_events
            .iter()
            .any(|e| matches!(e, Event::MessageSent(_)))
    );
    assert!(
        !pair
            .instrument_events
            .iter()
            .any(|e| matches!(e, Event::LinkError(LinkError::Retransmitting { .. })))
    );
}

/// A reply comes after its frame: what arrived in the same input as the reply that had the
/// next frame (or the next ENQ) sent was on the wire before that left, so it cannot answer it.
/// A receiver that acknowledges every frame twice (medplum's channel with LF mapped to ACK,
/// astm-protocols.md §6) had each second ACK taken for the reply to the next frame, which
/// counted as accepted before the receiver saw it: its NAK then went to the frame after, and
/// a refused last frame was reported sent.
#[test]
fn a_reply_that_came_before_its_frame_left_is_not_its_reply() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    let id = link.send(b"H|\\^&\rP|1\rL|1|N\r".to_vec(), t0);
    let next = link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ACK, ACK], t0);
    assert_eq!(out(&mut link), frame(1, b"H|\\^&\r", FrameEnd::End));
    link.handle_input(&[ACK, ACK], t0);
    assert_eq!(out(&mut link), frame(2, b"P|1\r", FrameEnd::End));
    link.handle_input(&[ACK, ACK], t0);
    let last = frame(3, b"L|1|N\r", FrameEnd::End);
    assert_eq!(out(&mut link), last);
    // The last frame refused (twice, as this receiver says everything): sent again, once.
    link.handle_input(&[NAK, NAK], t0);
    assert_eq!(out(&mut link), last);
    // Noise with the reply is not the resent frame's garbled reply either.
    link.handle_input(&[NAK, 0x7f], t0);
    assert_eq!(out(&mut link), last);
    assert_eq!(link.poll_timeout(), Some(t0 + secs(15)));
    assert!(
        !events(&mut link)
            .iter()
            .any(|e| matches!(e, Event::MessageSent(_) | Event::MessageAborted { .. }))
    );
    // Accepted: EOT, and the next message's ENQ, which the second ACK does not answer.
    link.handle_input(&[ACK, ACK], t0);
    assert_eq!(out(&mut link), [EOT, ENQ]);
    assert_eq!(link.state(), LinkState::Establishing);
    link.handle_input(&[ACK, ACK], t0);
    assert_eq!(out(&mut link), frame(1, b"H|\\^&\r", FrameEnd::End));
    let outcomes: Vec<Event> = events(&mut link)
        .into_iter()
        .filter(|e| matches!(e, Event::MessageSent(_) | Event::MessageAborted { .. }))
        .collect();
    assert_eq!(outcomes, [Event::MessageSent(id)]);
    let _ = next;
}

#[test]
fn no_reply_to_a_frame_aborts_after_fifteen_seconds() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument).with_max_transfers(1));
    let t0 = Instant::now();
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ACK], t0);
    let _ = out(&mut link);
    assert_eq!(link.poll_timeout(), Some(t0 + secs(15)));
    link.handle_timeout(t0 + secs(15));
    assert_eq!(out(&mut link), [EOT]);
    assert!(matches!(
        events(&mut link)[..],
        [Event::MessageAborted {
            reason: AbortReason::NoReplyToFrame { frame_number: 1 },
            ..
        }]
    ));
    assert!(link.is_idle());
}

#[test]
fn receiver_discards_a_partial_message_after_thirty_seconds() {
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    let t0 = Instant::now();
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(
        &frame(1, b"R|1|^^^WBC|5", FrameEnd::Intermediate),
        t0 + secs(1),
    );
    assert_eq!(out(&mut lis), [ACK, ACK]);
    assert_eq!(lis.poll_timeout(), Some(t0 + secs(31)));
    lis.handle_timeout(t0 + secs(31));
    assert_eq!(lis.state(), LinkState::Neutral);
    assert_eq!(
        events(&mut lis),
        [Event::ReceiveDiscarded {
            reason: DiscardReason::ReceiveTimeout,
            len: 12
        }]
    );
}

#[test]
fn eot_mid_message_discards_the_partial_message() {
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    let t0 = Instant::now();
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(1, b"R|1|", FrameEnd::Intermediate), t0);
    lis.handle_input(&[EOT], t0);
    assert_eq!(
        events(&mut lis),
        [Event::ReceiveDiscarded {
            reason: DiscardReason::EndedMidMessage,
            len: 4
        }]
    );
}

#[test]
fn duplicate_frame_is_acked_and_delivered_once() {
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    let t0 = Instant::now();
    let f1 = frame(1, b"H|\\^&\r", FrameEnd::End);
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&f1, t0);
    lis.handle_input(&f1, t0);
    lis.handle_input(&frame(2, b"L|1|N\r", FrameEnd::End), t0);
    lis.handle_input(&[EOT], t0);
    assert_eq!(out(&mut lis), [ACK, ACK, ACK, ACK]);
    assert_eq!(
        events(&mut lis),
        [
            Event::MessageReceived(b"H|\\^&\r".to_vec()),
            Event::LinkError(LinkError::DuplicateFrame(1)),
            Event::MessageReceived(b"L|1|N\r".to_vec()),
        ]
    );
}

#[test]
fn receiver_naks_bad_frames() {
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    let t0 = Instant::now();
    lis.handle_input(&[ENQ], t0);
    let _ = out(&mut lis);
    // Wrong checksum.
    lis.handle_input(b"\x021H|\\^&\r\x0300\r\n", t0);
    // No frame number.
    lis.handle_input(b"\x02xH|\\^&\r\x0300\r\n", t0);
    // Frame number neither last nor next.
    lis.handle_input(&frame(3, b"H|\\^&\r", FrameEnd::End), t0);
    // An LF inside the text: the frame ends there (§6.6), and the rest is noise.
    lis.handle_input(&frame(1, b"H|\n\r", FrameEnd::End), t0);
    // Too long for a configured 64,000-byte frame.
    let mut huge = vec![0x02, b'1'];
    huge.extend(std::iter::repeat_n(b'x', 64_000));
    lis.handle_input(&huge, t0);
    assert_eq!(out(&mut lis), [NAK, NAK, NAK, NAK, NAK]);
    let mut evs = events(&mut lis);
    assert!(matches!(
        evs[0],
        Event::LinkError(LinkError::FrameRejected {
            frame_number: Some(1),
            ..
        })
    ));
    let rejected: Vec<String> = evs
        .drain(..2)
        .map(|e| match e {
            Event::LinkError(e @ LinkError::FrameRejected { .. }) => e.to_string(),
            other => panic!("not a rejected frame: {other:?}"),
        })
        .collect();
    assert_eq!(
        rejected,
        [
            "frame 1 rejected: checksum mismatch: received 00, computed E5",
            "frame without a valid number rejected: frame number 0x78 is not a digit 0-7",
        ]
    );
    assert!(matches!(
        evs[0],
        Event::LinkError(LinkError::UnexpectedFrameNumber {
            expected: 1,
            received: 3
        })
    ));
    assert!(matches!(
        evs[1],
        Event::LinkError(LinkError::BrokenFrame {
            len: 5,
            reason: BrokenReason::EndedEarly
        })
    ));
    assert!(matches!(evs[2], Event::LinkError(LinkError::Junk(6))));
    assert!(matches!(
        evs[3],
        Event::LinkError(LinkError::BrokenFrame {
            reason: BrokenReason::TooLong(_),
            ..
        })
    ));
    assert!(!evs.iter().any(|e| matches!(e, Event::MessageReceived(_))));
}

/// A frame whose ETX, or checksum, was lost on the line ends at its LF (§6.6: LF is only a
/// frame's last character) and is refused at once. The receiver used to wait for a terminator
/// the sender, waiting for its reply, would never send: no NAK until the sender's 15 s timer
/// gave up on the whole transfer. The resent frame is then accepted.
#[test]
fn a_frame_that_lost_its_terminator_or_checksum_is_refused_at_its_line_feed() {
    let good = frame(1, b"H|\\^&\r", FrameEnd::End);
    let lost_etx = [&good[..8], &good[9..]].concat();
    let lost_checksum = [&good[..9], &good[11..]].concat();
    for (what, spoilt) in [
        ("ETX lost", lost_etx),
        ("checksum lost", lost_checksum),
        ("empty", b"\x02\r\n".to_vec()),
        ("only a number", b"\x021\r\n".to_vec()),
    ] {
        let mut lis = Link::new(LinkConfig::new(Role::Computer));
        let t0 = Instant::now();
        lis.handle_input(&[ENQ], t0);
        assert_eq!(out(&mut lis), [ACK], "{what}");
        lis.handle_input(&spoilt, t0);
        assert_eq!(
            out(&mut lis),
            [NAK],
            "{what}: refused with nothing more received"
        );
        assert!(
            events(&mut lis).iter().any(|e| matches!(
                e,
                Event::LinkError(LinkError::BrokenFrame {
                    reason: BrokenReason::EndedEarly,
                    ..
                })
            )),
            "{what}"
        );
        lis.handle_input(&good, t0);
        assert_eq!(out(&mut lis), [ACK], "{what}: the resent frame");
        lis.handle_input(&[EOT], t0);
        let evs = events(&mut lis);
        assert!(
            evs.iter()
                .any(|e| matches!(e, Event::MessageReceived(m) if m.as_slice() == b"H|\\^&\r")),
            "{what}: {evs:?}"
        );
    }
}

#[test]
fn frames_without_enq_get_no_reply() {
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    lis.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), Instant::now());
    assert!(out(&mut lis).is_empty());
    assert_eq!(
        events(&mut lis),
        [Event::LinkError(LinkError::FrameOutsideTransfer)]
    );
}

#[test]
fn receiver_interrupt_is_honoured() {
    let mut pair = Pair::standard();
    let long = b"H|\\^&\rP|1\rO|1\rR|1\rL|1|N\r".to_vec();
    pair.instrument.send(long.clone(), pair.now);
    // Let the first frame through, then the computer wants the line.
    for _ in 0..3 {
        pair.step();
    }
    assert!(pair.computer.request_interrupt());
    pair.computer
        .send(b"H|\\^&|||LIS\rQ|1|^S1||ALL\rL|1|N\r".to_vec(), pair.now);
    pair.drive();

    // The instrument ended its transfer, kept nothing back (the text came back in the event)...
    let aborted = pair
        .instrument_events
        .iter()
        .find_map(|e| match e {
            Event::MessageAborted {
                reason, message, ..
            } => Some((*reason, message.clone())),
            _ => None,
        })
        .expect("aborted by the interrupt");
    assert_eq!(aborted, (AbortReason::ReceiverInterrupt, long));
    // ...and received the computer's message.
    assert!(
        pair.instrument_events
            .iter()
            .any(|e| matches!(e, Event::MessageReceived(m) if m.starts_with(b"Q|1|")))
    );
    assert!(
        pair.computer_events
            .iter()
            .any(|e| matches!(e, Event::MessageSent(_)))
    );
}

/// `send_first` queues a message ahead of the messages not yet started, behind the one whose
/// transfer is under way: how a message the receiver interrupted goes out again before the
/// later ones (§6.3.5.3).
#[test]
fn send_first_goes_ahead_of_the_messages_not_yet_started() {
    let mut pair = Pair::standard();
    let message = |name: &str| format!("H|\\^&|||{name}\rL|1|N\r").into_bytes();
    pair.instrument.send(message("X"), pair.now);
    pair.step();
    pair.instrument.send(message("B"), pair.now);
    pair.instrument.send_first(message("A"), pair.now);
    pair.drive();
    // Delivered a record at a time (the default assembly): compare the whole stream.
    let received: Vec<u8> = pair
        .computer_events
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived(m) => Some(m.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        received,
        [message("X"), message("A"), message("B")].concat()
    );
}

/// A request made while nothing is being received does nothing, and one the transfer's end
/// overtakes lapses with it: neither interrupts a later transfer (before, the flag waited,
/// possibly for hours, and broke off the next message at its first frame).
#[test]
fn an_interrupt_request_never_outlives_its_transfer() {
    let mut pair = Pair::standard();
    assert!(!pair.computer.request_interrupt(), "nothing to interrupt");
    let message = b"H|\\^&\rP|1\rL|1|N\r".to_vec();
    pair.instrument.send(message.clone(), pair.now);
    pair.drive();
    // Overtaken: asked while receiving, but the last frame was already acknowledged.
    pair.instrument.send(message.clone(), pair.now);
    // Until the computer has acknowledged the second transfer's ENQ and its three frames.
    let acks = |pair: &Pair| {
        pair.transcript
            .iter()
            .filter(|(i, b)| !i && b == &[ACK])
            .count()
    };
    while acks(&pair) < 8 {
        assert!(pair.step());
    }
    assert_eq!(pair.computer.state(), LinkState::Receiving);
    assert!(pair.computer.request_interrupt());
    pair.drive();
    pair.instrument.send(message, pair.now);
    pair.drive();
    let received = pair
        .computer_events
        .iter()
        .filter(|e| matches!(e, Event::MessageReceived(m) if m.starts_with(b"H|")))
        .count();
    assert_eq!(received, 3, "{:?}", pair.computer_events);
    assert!(
        !pair
            .instrument_events
            .iter()
            .any(|e| matches!(e, Event::MessageAborted { .. })),
        "{:?}",
        pair.instrument_events
    );
}

#[test]
fn interrupt_hold_off_is_fifteen_seconds() {
    let (mut link, t0) = established_sender(b"H|\\^&\rP|1\rL|1|N\r");
    let _ = out(&mut link);
    link.handle_input(&[EOT], t0);
    assert_eq!(out(&mut link), [EOT]);
    let _ = events(&mut link);
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert!(out(&mut link).is_empty(), "no ENQ within the hold-off");
    assert_eq!(link.poll_timeout(), Some(t0 + secs(15)));
    link.handle_timeout(t0 + secs(15));
    assert_eq!(out(&mut link), [ENQ]);
}

#[test]
fn interrupt_can_be_treated_as_ack() {
    let mut config = LinkConfig::new(Role::Instrument);
    config.honor_interrupt = false;
    let mut link = Link::new(config);
    let t0 = Instant::now();
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    link.handle_input(&[ACK], t0);
    let _ = out(&mut link);
    link.handle_input(&[EOT], t0);
    assert_eq!(out(&mut link), frame(2, b"L|1|N\r", FrameEnd::End));
}

/// An ENQ in the middle of a transfer gets NAK, never ACK: the sender is waiting for the
/// reply to a frame, and an ACK would accept a frame that never arrived. The transfer goes
/// on.
#[test]
fn enq_during_transfer_is_refused_and_the_transfer_goes_on() {
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    let t0 = Instant::now();
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(1, b"R|1|", FrameEnd::Intermediate), t0);
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(2, b"X\r", FrameEnd::End), t0);
    lis.handle_input(&[EOT], t0);
    assert_eq!(out(&mut lis), [ACK, ACK, NAK, ACK]);
    assert_eq!(
        events(&mut lis),
        [
            Event::LinkError(LinkError::EnqDuringTransfer),
            Event::MessageReceived(b"R|1|X\r".to_vec())
        ]
    );
}

/// Noise that turns a byte of a frame into ENQ (in the text or the checksum) makes the
/// receiver NAK the frame once; the retransmission is accepted and delivered once.
#[test]
fn enq_inside_a_frame_gets_one_nak() {
    let good = frame(1, b"R|1|ab\r", FrameEnd::End);
    let mut in_text = good.clone();
    in_text[6] = ENQ;
    let mut in_checksum = good.clone();
    in_checksum[good.len() - 3] = ENQ;
    for spoilt in [in_text, in_checksum] {
        let mut lis = Link::new(LinkConfig::new(Role::Computer));
        let t0 = Instant::now();
        lis.handle_input(&[ENQ], t0);
        lis.handle_input(&spoilt, t0);
        assert_eq!(out(&mut lis), [ACK, NAK], "{spoilt:?}");
        lis.handle_input(&good, t0);
        lis.handle_input(&[EOT], t0);
        assert_eq!(out(&mut lis), [ACK]);
        let received: Vec<Event> = events(&mut lis)
            .into_iter()
            .filter(|e| matches!(e, Event::MessageReceived(_)))
            .collect();
        assert_eq!(received, [Event::MessageReceived(b"R|1|ab\r".to_vec())]);
    }
}

/// An ACK or NAK byte inside a frame is noise: one NAK.
#[test]
fn ack_or_nak_byte_inside_a_frame_gets_one_nak() {
    for noise in [ACK, NAK] {
        let mut spoilt = frame(1, b"R|1|ab\r", FrameEnd::End);
        spoilt[5] = noise;
        let mut lis = Link::new(LinkConfig::new(Role::Computer));
        let t0 = Instant::now();
        lis.handle_input(&[ENQ], t0);
        lis.handle_input(&spoilt, t0);
        assert_eq!(out(&mut lis), [ACK, NAK]);
    }
}

/// A stray STX on the line must not hide the control byte after it.
#[test]
fn stray_stx_does_not_swallow_the_next_control_byte() {
    // The sender waiting for its frame's reply sees the ACK at once.
    let (mut link, t0) = established_sender(b"H|\\^&\rL|1|N\r");
    let _ = out(&mut link);
    link.handle_input(&[0x02, ACK], t0 + secs(1));
    assert_eq!(out(&mut link), frame(2, b"L|1|N\r", FrameEnd::End));
    // A neutral receiver answers the ENQ at once.
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    lis.handle_input(&[0x02, ENQ], t0);
    assert_eq!(out(&mut lis), [ACK]);
    assert_eq!(lis.state(), LinkState::Receiving);
}

/// Only replies to frames restart the receive timer: ENQs (or noise) every 10 s do not keep
/// a transfer open for ever, and a sender that really started over gets ACK after 30 s.
#[test]
fn noise_does_not_restart_the_receive_timer() {
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    let t0 = Instant::now();
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(1, b"R|1|", FrameEnd::Intermediate), t0);
    for s in [10, 20] {
        lis.handle_input(&[ENQ], t0 + secs(s));
        lis.handle_input(b"junk", t0 + secs(s));
    }
    assert_eq!(out(&mut lis), [ACK, ACK, NAK, NAK]);
    assert_eq!(lis.poll_timeout(), Some(t0 + secs(30)));
    lis.handle_timeout(t0 + secs(30));
    assert_eq!(lis.state(), LinkState::Neutral);
    lis.handle_input(&[ENQ], t0 + secs(31));
    assert_eq!(out(&mut lis), [ACK]);
}

/// An empty message is refused at once instead of opening a transfer with no frame.
#[test]
fn empty_message_is_refused_at_once() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    let id = link.send(b"\r\n".to_vec(), t0);
    assert!(out(&mut link).is_empty());
    assert!(matches!(
        events(&mut link)[..],
        [Event::MessageAborted { id: i, reason: AbortReason::Empty, .. }] if i == id
    ));
    assert!(link.is_idle());
}

/// A message holding a restricted character (here ETX inside a result) is refused at once,
/// handed back whole with where the character is; it used to be framed and sent, and the
/// receiver refused the frame six times. LF separates records and is not refused.
#[test]
fn a_message_with_a_restricted_character_is_refused_at_once() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    let text = b"H|\\^&\rR|1|^^^GLU|5\x03.5\rL|1|N\r".to_vec();
    let id = link.send(text.clone(), t0);
    assert!(out(&mut link).is_empty(), "nothing goes on the wire");
    let events = events(&mut link);
    assert!(
        matches!(
            &events[..],
            [Event::MessageAborted {
                id: i,
                reason: AbortReason::RestrictedCharacter { offset: 18, byte: 0x03 },
                message,
            }] if *i == id && *message == text
        ),
        "{events:?}"
    );
    assert!(link.is_idle());
    // LF between records is a separator, not a restricted character.
    link.send(b"H|\\^&\nL|1|N\n".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
}

/// After a message is given up because every ENQ was refused, the next message's ENQ still
/// waits 10 s (§6.2.6).
#[test]
fn next_message_waits_ten_seconds_after_a_refused_enq() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    let mut now = t0;
    for _ in 0..6 {
        assert_eq!(out(&mut link), [ENQ]);
        link.handle_input(&[NAK], now);
        now = link.poll_timeout().unwrap();
        assert_eq!(now, link.poll_timeout().unwrap());
        if link.queued() == 1 {
            break;
        }
        link.handle_timeout(now);
    }
    assert_eq!(link.queued(), 1, "first message given up");
    let resume = link.poll_timeout().unwrap();
    link.handle_timeout(resume - Duration::from_millis(1));
    assert!(out(&mut link).is_empty(), "no ENQ before 10 s");
    link.handle_timeout(resume);
    assert_eq!(out(&mut link), [ENQ]);
}

#[test]
fn oversized_messages_are_discarded_and_reported() {
    let mut config = LinkConfig::new(Role::Computer);
    config.max_message_len = 10;
    let mut lis = Link::new(config);
    let t0 = Instant::now();
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(1, b"R|1|12345", FrameEnd::Intermediate), t0);
    lis.handle_input(&frame(2, b"67890\r", FrameEnd::End), t0);
    lis.handle_input(&frame(3, b"L|1\r", FrameEnd::End), t0);
    assert_eq!(out(&mut lis), [ACK, ACK, ACK, ACK]);
    assert_eq!(
        events(&mut lis),
        [
            Event::ReceiveDiscarded {
                reason: DiscardReason::TooLong(10),
                len: 15
            },
            Event::MessageReceived(b"L|1\r".to_vec())
        ]
    );
}

/// With [`Assembly::PerTransfer`] the message is the whole transfer: one part too long
/// spoils all of it, rather than a message being delivered with a record missing.
#[test]
fn per_transfer_oversize_discards_the_whole_transfer() {
    let mut config = LinkConfig::new(Role::Computer);
    config.assembly = Assembly::PerTransfer;
    config.max_message_len = 40;
    let mut lis = Link::new(config);
    let t0 = Instant::now();
    lis.handle_input(&[ENQ], t0);
    let records: [&[u8]; 5] = [
        b"H|\\^&\r",
        b"P|1\r",
        b"O|1|S1\r",
        b"R|1|^^^GLU|123456789012345678901234567\r",
        b"L|1|N\r",
    ];
    for (number, record) in (1..).zip(records) {
        lis.handle_input(&frame(number, record, FrameEnd::End), t0);
    }
    lis.handle_input(&[EOT], t0);
    assert_eq!(out(&mut lis), [ACK; 6]);
    assert_eq!(
        events(&mut lis),
        [Event::ReceiveDiscarded {
            reason: DiscardReason::TooLong(40),
            len: 56
        }]
    );
    // The next transfer starts afresh.
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), t0);
    lis.handle_input(&frame(2, b"L|1|N\r", FrameEnd::End), t0);
    lis.handle_input(&[EOT], t0);
    assert_eq!(
        events(&mut lis),
        [Event::MessageReceived(b"H|\\^&\rL|1|N\r".to_vec())]
    );
}

/// Noise between the last frame and the EOT (a broken frame: STX, a byte, LF) is refused,
/// but the transfer is complete and is delivered; it was discarded as given up by its
/// sender, which had every frame acknowledged and reported the message sent. A frame broken
/// six times in a row is still a sender giving up.
#[test]
fn noise_before_the_eot_does_not_discard_a_complete_transfer() {
    let t0 = Instant::now();
    let mut lis = Link::new(LinkConfig::new(Role::Computer).with_assembly(Assembly::PerTransfer));
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), t0);
    lis.handle_input(&frame(2, b"L|1|N\r", FrameEnd::End), t0);
    lis.handle_input(b"\x02\x7f\n", t0);
    lis.handle_input(&[EOT], t0);
    assert_eq!(out(&mut lis), [ACK, ACK, ACK, NAK]);
    let evs = events(&mut lis);
    assert!(
        evs.contains(&Event::MessageReceived(b"H|\\^&\rL|1|N\r".to_vec())),
        "{evs:?}"
    );

    let mut lis = Link::new(LinkConfig::new(Role::Computer).with_assembly(Assembly::PerTransfer));
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), t0);
    // Frame 2 cut by an LF before its checksum, six times: the sender gave up.
    let mut cut = frame(2, b"L|1|N\r", FrameEnd::End);
    let at = cut.len() - 4;
    cut[at] = b'\n';
    cut.truncate(at + 1);
    for _ in 0..6 {
        lis.handle_input(&cut, t0);
    }
    lis.handle_input(&[EOT], t0);
    let evs = events(&mut lis);
    assert!(
        evs.contains(&Event::ReceiveDiscarded {
            reason: DiscardReason::SenderAborted,
            len: 6
        }),
        "{evs:?}"
    );
    assert!(
        !evs.iter().any(|e| matches!(e, Event::MessageReceived(_))),
        "{evs:?}"
    );
}

/// A transfer that ends right after a refused frame was given up by the sender (six
/// failures): with [`Assembly::PerTransfer`] its message is incomplete and is not
/// delivered (the sender repeats it whole); per end frame, the complete messages before
/// it were delivered already.
#[test]
fn a_transfer_ending_after_a_refused_frame_is_not_delivered_whole() {
    for assembly in [Assembly::PerTransfer, Assembly::PerEndFrame] {
        let mut config = LinkConfig::new(Role::Computer);
        config.assembly = assembly;
        let mut lis = Link::new(config);
        let t0 = Instant::now();
        lis.handle_input(&[ENQ], t0);
        lis.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), t0);
        lis.handle_input(&frame(2, b"P|1\r", FrameEnd::End), t0);
        let mut spoilt = frame(3, b"O|1|S1\r", FrameEnd::End);
        let at = spoilt.len() - 4;
        spoilt[at] ^= 1; // checksum digit
        for _ in 0..6 {
            lis.handle_input(&spoilt, t0);
        }
        lis.handle_input(&[EOT], t0);
        let mut replies = vec![ACK; 3];
        replies.extend([NAK; 6]);
        assert_eq!(out(&mut lis), replies);
        let evs: Vec<Event> = events(&mut lis)
            .into_iter()
            .filter(|e| !matches!(e, Event::LinkError(_)))
            .collect();
        match assembly {
            Assembly::PerTransfer => assert_eq!(
                evs,
                [Event::ReceiveDiscarded {
                    reason: DiscardReason::SenderAborted,
                    len: 10
                }]
            ),
            _ => assert_eq!(
                evs,
                [
                    Event::MessageReceived(b"H|\\^&\r".to_vec()),
                    Event::MessageReceived(b"P|1\r".to_vec())
                ]
            ),
        }
    }
}

#[test]
fn unframed_records_end_with_the_l_record() {
    let mut config = LinkConfig::new(Role::Computer);
    config.decoder.leniency = Leniency {
        unframed_records: true,
        ..Leniency::STRICT
    };
    let mut lis = Link::new(config);
    let t0 = Instant::now();
    lis.handle_input(b"\x05H|\\^&\r\nP|1\r\nR|1|^^^GLU|5.5\r\n", t0);
    assert!(events(&mut lis).is_empty());
    lis.handle_input(b"L|1|N\r\n\x04", t0);
    assert_eq!(out(&mut lis), [ACK]);
    assert_eq!(
        events(&mut lis),
        [Event::MessageReceived(
            b"H|\\^&\rP|1\rR|1|^^^GLU|5.5\rL|1|N\r".to_vec()
        )]
    );
}

/// Bare records of a message cut short (the sender gave up, or restarted) are not glued to
/// the next message: EOT or the next header ends them, reported as discarded.
#[test]
fn unframed_records_of_a_cut_message_are_not_glued_to_the_next() {
    let mut config = LinkConfig::new(Role::Computer);
    config.decoder.leniency = Leniency {
        unframed_records: true,
        ..Leniency::STRICT
    };
    let mut lis = Link::new(config);
    let t0 = Instant::now();
    let cut = Event::ReceiveDiscarded {
        reason: DiscardReason::EndedMidMessage,
        len: 10,
    };
    let whole = Event::MessageReceived(b"H|\\^&\rP|2\rL|1|N\r".to_vec());
    // Restarted: a new header before the L record.
    lis.handle_input(b"H|\\^&\r\nP|1\r\nH|\\^&\r\nP|2\r\nL|1|N\r\n", t0);
    assert_eq!(events(&mut lis), [cut.clone(), whole.clone()]);
    // Given up: EOT before the L record; the repeat comes in the next transfer.
    lis.handle_input(b"\x05H|\\^&\r\nP|1\r\n\x04", t0);
    assert_eq!(out(&mut lis), [ACK]);
    assert_eq!(events(&mut lis), [cut]);
    lis.handle_input(b"\x05H|\\^&\r\nP|2\r\nL|1|N\r\n\x04", t0);
    assert_eq!(out(&mut lis), [ACK]);
    assert_eq!(events(&mut lis), [whole]);
}

/// A bare-record message over the size limit is dropped whole: the records after the one
/// that overflowed are not delivered as a message of their own at the L record.
#[test]
fn an_oversized_unframed_message_leaves_no_tail() {
    let mut config = LinkConfig::new(Role::Computer);
    config.decoder.leniency = Leniency {
        unframed_records: true,
        ..Leniency::STRICT
    };
    config.max_message_len = 16;
    let mut lis = Link::new(config);
    let t0 = Instant::now();
    lis.handle_input(b"H|\\^&\r\nP|1||0123456789\r\nO|1\r\nL|1|N\r\n", t0);
    assert_eq!(
        events(&mut lis),
        [Event::ReceiveDiscarded {
            reason: DiscardReason::TooLong(16),
            len: 21,
        }]
    );
    // The next message is received as usual.
    lis.handle_input(b"H|\\^&\r\nL|1|N\r\n", t0);
    assert_eq!(
        events(&mut lis),
        [Event::MessageReceived(b"H|\\^&\rL|1|N\r".to_vec())]
    );
}

#[test]
fn unchecked_frame_numbers_accept_any_sequence() {
    let mut config = LinkConfig::new(Role::Computer);
    config.decoder.leniency.unchecked_frame_numbers = true;
    let mut lis = Link::new(config);
    let t0 = Instant::now();
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(5, b"H|\\^&\r", FrameEnd::End), t0);
    lis.handle_input(&unnumbered_frame(b"L|1|N\r"), t0);
    assert_eq!(out(&mut lis), [ACK, ACK, ACK]);
    assert_eq!(events(&mut lis).len(), 2);
}

#[test]
fn unchecked_frame_numbers_still_deliver_a_retransmission_once() {
    let mut config = LinkConfig::new(Role::Computer);
    config.decoder.leniency.unchecked_frame_numbers = true;
    let mut lis = Link::new(config);
    let t0 = Instant::now();
    let header = frame(1, b"H|\\^&\r", FrameEnd::End);
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&header, t0);
    // Our ACK was lost: the sender sends the same frame again.
    lis.handle_input(&header, t0);
    // A sender that numbers every frame 1 still gets its next frame delivered: the bytes
    // differ.
    lis.handle_input(&frame(1, b"P|1\r", FrameEnd::End), t0);
    // Without an FN digit there is no telling a resend from a repeated record: delivered.
    let comment = unnumbered_frame(b"C|1\r");
    lis.handle_input(&comment, t0);
    lis.handle_input(&comment, t0);
    lis.handle_input(&[EOT], t0);
    assert_eq!(out(&mut lis), [ACK; 6]);
    assert_eq!(
        events(&mut lis),
        [
            Event::MessageReceived(b"H|\\^&\r".to_vec()),
            Event::LinkError(LinkError::DuplicateFrame(1)),
            Event::MessageReceived(b"P|1\r".to_vec()),
            Event::MessageReceived(b"C|1\r".to_vec()),
            Event::MessageReceived(b"C|1\r".to_vec()),
        ]
    );
}

/// A timer set to `Duration::MAX` (a caller's "never") must not panic when it is started:
/// `Instant + Duration::MAX` overflows. Such a timer simply never runs out.
#[test]
fn timers_too_long_for_the_clock_never_run_out() {
    let mut config = LinkConfig::new(Role::Computer);
    config.timers = astm_frame::Timers {
        enq_reply: Duration::MAX,
        frame_reply: Duration::MAX,
        receive: Duration::MAX,
        enq_retry: Duration::MAX,
        interrupt_hold_off: Duration::MAX,
        contention_retry: Duration::MAX,
        contention_yield: Duration::MAX,
        reply_after_noise: Duration::MAX,
    };
    let t0 = Instant::now();
    let later = t0 + secs(1_000_000_000);

    // Receiving: the receive timer.
    let mut lis = Link::new(config);
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(1, b"R|1|", FrameEnd::Intermediate), t0);
    assert_eq!(out(&mut lis), [ACK, ACK]);
    lis.handle_timeout(later);
    assert_eq!(lis.state(), LinkState::Receiving);

    // Sending: the ENQ reply, frame reply and noise timers.
    let mut link = Link::new(config);
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_timeout(later);
    assert_eq!(link.state(), LinkState::Establishing);
    link.handle_input(&[ACK], t0);
    link.handle_input(b"x", t0);
    assert_eq!(out(&mut link), frame(1, b"H|\\^&\r", FrameEnd::End));
    link.handle_timeout(later);
    assert_eq!(link.state(), LinkState::Sending);
    assert!(out(&mut link).is_empty());

    // The hold-off after a refused ENQ, and the computer's wait after contention.
    let mut link = Link::new(config);
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[NAK], t0);
    link.handle_timeout(later);
    assert!(out(&mut link).is_empty(), "no ENQ before the hold-off ends");
    let mut link = Link::new(config);
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ENQ], t0);
    link.handle_timeout(later);
    assert_eq!(link.state(), LinkState::ContentionYield);

    // The instrument's wait after contention, and the hold-off after a receiver interrupt.
    config.role = Role::Instrument;
    let mut link = Link::new(config);
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ENQ], t0);
    link.handle_timeout(later);
    assert!(out(&mut link).is_empty(), "no ENQ before the wait ends");
    let mut link = Link::new(config);
    link.send(b"H|\\^&\rP|1\rL|1|N\r".to_vec(), t0);
    link.handle_input(&[ACK], t0);
    link.handle_input(&[EOT], t0);
    let _ = out(&mut link);
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    link.handle_timeout(later);
    assert!(out(&mut link).is_empty(), "no ENQ before the hold-off ends");
}

/// An ENQ that meets contention was answered (by the peer's ENQ), so it does not count
/// toward `max_enq_attempts` (ENQs answered by NAK or nothing), for the computer that yields
/// as for the instrument that insists. A busy instrument whose next ENQ keeps crossing the
/// LIS's must not cost the LIS its message at the first refusal.
#[test]
fn contention_does_not_use_up_enq_attempts() {
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    let t0 = Instant::now();
    lis.send(b"H|\\^&|||LIS\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut lis), [ENQ]);
    for _ in 0..5 {
        // Contention, then the instrument's transfer; then our ENQ again.
        lis.handle_input(&[ENQ], t0);
        lis.handle_input(&[ENQ], t0);
        lis.handle_input(&frame(1, b"R|1\r", FrameEnd::End), t0);
        lis.handle_input(&[EOT], t0);
        assert_eq!(out(&mut lis), [ACK, ACK, ENQ]);
    }
    // The first ENQ of the message that is refused.
    lis.handle_input(&[NAK], t0);
    assert!(
        !events(&mut lis)
            .iter()
            .any(|e| matches!(e, Event::MessageAborted { .. })),
        "one refused ENQ does not abort the message"
    );
    assert_eq!(lis.queued(), 1);
    assert_eq!(lis.poll_timeout(), Some(t0 + secs(10)));
}

/// With [`Assembly::PerTransfer`] the message is the whole transfer: ended in the middle
/// of an ETB chain (a sender that gave up after a lost ACK, §6.5.2.3), it is incomplete,
/// so none of it is delivered; the sender repeats it whole, and a partial copy delivered
/// first would make the records before the break arrive twice.
#[test]
fn per_transfer_ended_mid_message_is_not_delivered() {
    let mut config = LinkConfig::new(Role::Computer);
    config.assembly = Assembly::PerTransfer;
    let mut lis = Link::new(config);
    let t0 = Instant::now();
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), t0);
    lis.handle_input(&frame(2, b"R|1|", FrameEnd::Intermediate), t0);
    lis.handle_input(&[EOT], t0);
    assert_eq!(out(&mut lis), [ACK, ACK, ACK]);
    assert_eq!(
        events(&mut lis),
        [Event::ReceiveDiscarded {
            reason: DiscardReason::EndedMidMessage,
            len: 10
        }]
    );
}

/// Receiving the peer's transfer ends the receiver-interrupt hold-off (§6.3.5.3), but not
/// the 10 s wait after a NAK to ENQ (§6.2.6): a receiver that refused our ENQ because it
/// was busy may still be busy after sending its own message.
#[test]
fn nak_hold_off_outlasts_the_peers_transfer() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[NAK], t0);
    link.handle_input(&[ENQ], t0 + secs(1));
    link.handle_input(&frame(1, b"H|\\^&|||LIS\r", FrameEnd::End), t0 + secs(1));
    link.handle_input(&[EOT], t0 + secs(2));
    assert_eq!(out(&mut link), [ACK, ACK], "no ENQ within 10 s of the NAK");
    assert_eq!(link.poll_timeout(), Some(t0 + secs(10)));
    link.handle_timeout(t0 + secs(10));
    assert_eq!(out(&mut link), [ENQ]);
}

/// With [`Assembly::PerTransfer`] a receive timeout drops one message, the whole transfer,
/// and reports it once (not once for the ETB chain and once for the records before it).
#[test]
fn per_transfer_receive_timeout_reports_one_discard() {
    let mut config = LinkConfig::new(Role::Computer);
    config.assembly = Assembly::PerTransfer;
    let mut lis = Link::new(config);
    let t0 = Instant::now();
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), t0);
    lis.handle_input(&frame(2, b"R|1|", FrameEnd::Intermediate), t0);
    assert_eq!(out(&mut lis), [ACK, ACK, ACK]);
    lis.handle_timeout(t0 + secs(30));
    assert_eq!(lis.state(), LinkState::Neutral);
    assert_eq!(
        events(&mut lis),
        [Event::ReceiveDiscarded {
            reason: DiscardReason::ReceiveTimeout,
            len: 10
        }]
    );
}

#[test]
fn unsent_messages_are_taken_back_with_the_one_in_flight() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let now = Instant::now();
    let first = link.send(b"H|\\^&\rL|1|N\r".to_vec(), now);
    let second = link.send(b"H|\\^&\rP|1\rL|1|N\r".to_vec(), now);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ACK], now);
    assert_eq!(out(&mut link)[0], 0x02, "the first frame is out");
    assert_eq!(link.state(), LinkState::Sending);

    let taken = link.take_unsent();
    assert_eq!(
        taken,
        [
            (first, b"H|\\^&\rL|1|N\r".to_vec()),
            (second, b"H|\\^&\rP|1\rL|1|N\r".to_vec()),
        ]
    );
    // A message queued now waits: the frame's reply is still to come, and must not be taken
    // for the answer to a new ENQ.
    let third = link.send(b"H|\\^&\rL|1|N\r".to_vec(), now);
    assert!(out(&mut link).is_empty(), "nothing until the frame's reply");
    link.handle_input(&[ACK], now + secs(1));
    assert_eq!(
        out(&mut link),
        [EOT, ENQ],
        "the transfer ends, the next begins"
    );
    link.handle_input(&[ACK], now + secs(1));
    let frame_out = out(&mut link);
    assert_eq!(
        frame_out,
        frame(1, b"H|\\^&\r", FrameEnd::End),
        "the new message from its first frame"
    );
    let sent: Vec<Event> = events(&mut link)
        .into_iter()
        .filter(|e| matches!(e, Event::MessageSent(_) | Event::MessageAborted { .. }))
        .collect();
    assert!(
        sent.is_empty(),
        "no event for the messages taken back: {sent:?}"
    );
    let _ = third;
}

#[test]
fn taking_back_during_establishment_ends_the_transfer_at_the_answer() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let now = Instant::now();
    let id = link.send(b"H|\\^&\rL|1|N\r".to_vec(), now);
    assert_eq!(out(&mut link), [ENQ]);
    assert_eq!(link.take_unsent(), [(id, b"H|\\^&\rL|1|N\r".to_vec())]);
    assert!(out(&mut link).is_empty());
    link.handle_input(&[ACK], now);
    assert_eq!(out(&mut link), [EOT], "an empty transfer");
    assert!(link.is_idle());

    // Unanswered, the ENQ's timer ends it the usual way.
    let id = link.send(b"H|\\^&\rL|1|N\r".to_vec(), now + secs(1));
    assert_eq!(out(&mut link), [ENQ]);
    assert_eq!(link.take_unsent().len(), 1, "{id:?}");
    link.handle_timeout(now + secs(16));
    assert_eq!(out(&mut link), [EOT]);
    assert!(link.is_idle());
    assert!(
        events(&mut link)
            .iter()
            .all(|e| !matches!(e, Event::MessageAborted { .. }))
    );
}

#[test]
fn taking_unsent_messages_leaves_a_transfer_from_the_peer_alone() {
    let mut link = Link::new(LinkConfig::new(Role::Computer));
    let now = Instant::now();
    link.handle_input(&[ENQ], now);
    assert_eq!(out(&mut link), [ACK]);
    let queued = link.send(b"H|\\^&\rL|1|N\r".to_vec(), now);
    assert_eq!(link.take_unsent(), [(queued, b"H|\\^&\rL|1|N\r".to_vec())]);
    assert!(out(&mut link).is_empty(), "no EOT into the peer's transfer");
    link.handle_input(&frame(1, b"H|\\^&\rL|1|N\r", FrameEnd::End), now);
    link.handle_input(&[EOT], now);
    assert_eq!(out(&mut link), [ACK]);
    assert!(events(&mut link).iter().any(|e| matches!(
        e,
        Event::MessageReceived(m) if m == b"H|\\^&\rL|1|N\r"
    )));
    assert!(link.is_idle(), "nothing is sent after the peer's EOT");
}

/// A message already over the limit is reported as too long, with every byte dropped of it,
/// however its transfer ends.
#[test]
fn an_oversized_message_cut_short_is_still_reported_as_too_long() {
    let mut config = LinkConfig::new(Role::Computer);
    config.max_message_len = 10;
    let t0 = Instant::now();
    let start = |lis: &mut Link| {
        lis.handle_input(&[ENQ], t0);
        lis.handle_input(&frame(1, b"R|1|12345", FrameEnd::Intermediate), t0);
        lis.handle_input(&frame(2, b"67890", FrameEnd::Intermediate), t0);
        lis.handle_input(&frame(3, b"abcde", FrameEnd::Intermediate), t0);
    };
    let too_long = [Event::ReceiveDiscarded {
        reason: DiscardReason::TooLong(10),
        len: 19,
    }];

    let mut ended = Link::new(config);
    start(&mut ended);
    ended.handle_input(&[EOT], t0);
    assert_eq!(events(&mut ended), too_long, "EOT inside the chain");

    let mut timed_out = Link::new(config);
    start(&mut timed_out);
    timed_out.handle_timeout(t0 + secs(30));
    assert_eq!(timed_out.state(), LinkState::Neutral);
    assert_eq!(events(&mut timed_out), too_long, "receive timeout");

    let mut finished = Link::new(config);
    start(&mut finished);
    finished.handle_input(&frame(4, b"\r", FrameEnd::End), t0);
    assert_eq!(
        events(&mut finished),
        [Event::ReceiveDiscarded {
            reason: DiscardReason::TooLong(10),
            len: 20,
        }],
        "end frame: all four frames counted"
    );
}

/// Line ends between transfers or between frames (an EOT followed by CR LF, a frame with an
/// extra LF) are not noise worth an error event: a receiver ignores them, as a sender does
/// after a reply. Other bytes outside frames still are.
#[test]
fn line_ends_outside_frames_are_not_reported_as_junk() {
    let now = Instant::now();
    let mut computer = Link::new(LinkConfig::new(Role::Computer));
    let mut input = vec![ENQ];
    input.extend(frame(1, b"H|\\^&\r", FrameEnd::End));
    input.extend(b"\n");
    input.extend(frame(2, b"L|1|N\r", FrameEnd::End));
    input.extend([EOT, b'\r', b'\n']);
    computer.handle_input(&input, now);
    let seen = events(&mut computer);
    assert!(
        !seen.iter().any(|e| matches!(e, Event::LinkError(_))),
        "{seen:?}"
    );
    let received: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived(m) => Some(m.as_slice()),
            _ => None,
        })
        .collect();
    assert_eq!(received.concat(), b"H|\\^&\rL|1|N\r");
    computer.handle_input(b"x\r\n", now);
    assert!(
        matches!(
            events(&mut computer).as_slice(),
            [Event::LinkError(LinkError::Junk(3))]
        ),
        "other bytes are still reported"
    );
}

/// Each `LinkConfig::with_*` method sets the field it names and no other: the chain of all
/// of them equals the struct literal with the same values, and each one alone equals the
/// standard configuration with that one field changed.
#[test]
fn config_builders_set_the_field_they_name() {
    use astm_frame::{DecoderConfig, FramerConfig, Packing, Timers};

    let timers = Timers {
        receive: Duration::from_secs(61),
        contention_retry: Duration::from_millis(1500),
        ..Timers::default()
    };
    let framer = FramerConfig {
        max_text_len: 1000,
        packing: Packing::Packed,
    };
    let decoder = DecoderConfig {
        max_frame_len: 4096,
        leniency: Leniency::ALL,
    };
    let literal = LinkConfig {
        role: Role::Instrument,
        timers,
        framer,
        decoder,
        contention: ContentionPolicy::Insist,
        assembly: Assembly::PerTransfer,
        max_transmissions: 3,
        max_enq_attempts: 9,
        max_transfers: 1,
        honor_interrupt: false,
        max_message_len: 12_345,
    };
    // Every value differs from the computer's standard configuration, so a builder that
    // set the wrong field (or none) would show.
    let standard = LinkConfig::new(Role::Computer);
    assert_ne!(standard.role, literal.role);
    assert_ne!(standard.timers, literal.timers);
    assert_ne!(standard.framer, literal.framer);
    assert_ne!(standard.decoder, literal.decoder);
    assert_ne!(standard.contention, literal.contention);
    assert_ne!(standard.assembly, literal.assembly);
    assert_ne!(standard.max_transmissions, literal.max_transmissions);
    assert_ne!(standard.max_enq_attempts, literal.max_enq_attempts);
    assert_ne!(standard.max_transfers, literal.max_transfers);
    assert_ne!(standard.honor_interrupt, literal.honor_interrupt);
    assert_ne!(standard.max_message_len, literal.max_message_len);

    let chained = LinkConfig::new(Role::Computer)
        .with_role(Role::Instrument)
        .with_timers(timers)
        .with_framer(framer)
        .with_decoder(decoder)
        .with_contention(ContentionPolicy::Insist)
        .with_assembly(Assembly::PerTransfer)
        .with_max_transmissions(3)
        .with_max_enq_attempts(9)
        .with_max_transfers(1)
        .with_honor_interrupt(false)
        .with_max_message_len(12_345);
    assert_eq!(chained, literal);

    let one_at_a_time = [
        (
            standard.with_role(Role::Instrument),
            LinkConfig {
                role: Role::Instrument,
                ..standard
            },
        ),
        (
            standard.with_timers(timers),
            LinkConfig { timers, ..standard },
        ),
        (
            standard.with_framer(framer),
            LinkConfig { framer, ..standard },
        ),
        (
            standard.with_decoder(decoder),
            LinkConfig {
                decoder,
                ..standard
            },
        ),
        (
            standard.with_contention(ContentionPolicy::Insist),
            LinkConfig {
                contention: ContentionPolicy::Insist,
                ..standard
            },
        ),
        (
            standard.with_assembly(Assembly::PerTransfer),
            LinkConfig {
                assembly: Assembly::PerTransfer,
                ..standard
            },
        ),
        (
            standard.with_max_transmissions(3),
            LinkConfig {
                max_transmissions: 3,
                ..standard
            },
        ),
        (
            standard.with_max_enq_attempts(9),
            LinkConfig {
                max_enq_attempts: 9,
                ..standard
            },
        ),
        (
            standard.with_max_transfers(1),
            LinkConfig {
                max_transfers: 1,
                ..standard
            },
        ),
        (
            standard.with_honor_interrupt(false),
            LinkConfig {
                honor_interrupt: false,
                ..standard
            },
        ),
        (
            standard.with_max_message_len(12_345),
            LinkConfig {
                max_message_len: 12_345,
                ..standard
            },
        ),
    ];
    for (i, (built, expected)) in one_at_a_time.iter().enumerate() {
        assert_eq!(built, expected, "builder {i}");
        assert_ne!(built, &standard, "builder {i} changed nothing");
    }
}

/// A frame whose CR LF never comes (here the LF is lost) is ended by the sender's EOT when
/// its reply timer runs out. The receiver NAKed the frame on seeing that EOT, on a line
/// already back to neutral: the instrument took the NAK for a refusal of its next ENQ and
/// waited 10 s more, ignored the real ACK, and its next transfer went out 10 s late.
#[test]
fn a_frame_cut_by_eot_where_its_trailer_belongs_gets_no_reply() {
    let mut pair = Pair::standard();
    let start = pair.now;
    let first = pair.instrument.send(b"H|\\^&\rL|1|N\r".to_vec(), pair.now);
    let second = pair
        .instrument
        .send(b"H|\\^&\rP|1\rL|1|N\r".to_vec(), pair.now);
    let mut lf_dropped = false;
    for _ in 0..10_000 {
        if !pair.step() {
            break;
        }
        for (_, to_computer, bytes) in &mut pair.wire {
            if *to_computer && !lf_dropped && bytes.first() == Some(&0x02) {
                assert_eq!(bytes.pop(), Some(b'\n'));
                lf_dropped = true;
            }
        }
    }
    assert!(lf_dropped);
    let computer_sent: Vec<u8> = pair
        .transcript
        .iter()
        .filter(|(from_instrument, _)| !*from_instrument)
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert!(!computer_sent.contains(&NAK), "{computer_sent:?}");
    for id in [first, second] {
        assert!(
            pair.instrument_events.contains(&Event::MessageSent(id)),
            "{:?}",
            pair.instrument_events
        );
    }
    // The first message's repeat started right after the 15 s reply timeout and the 10 s
    // hold-off, and the second message followed it.
    assert_eq!(pair.received().last().unwrap(), b"L|1|N\r");
    assert!(pair.now - start < secs(30), "{:?}", pair.now - start);
}

/// Lenient checksums are accepted but not silently: each accepted frame whose checksum
/// deviates is reported, so a deployment can count them (the note's "count each deviation").
#[test]
fn checksum_deviations_the_leniency_accepts_are_reported() {
    let mut config = LinkConfig::new(Role::Computer);
    config.decoder.leniency = Leniency {
        unverified_checksum: true,
        lowercase_checksum: true,
        ..Leniency::STRICT
    };
    let mut lis = Link::new(config);
    let t0 = Instant::now();
    let mut wrong = frame(1, b"H|\\^&\r", FrameEnd::End);
    let at = wrong.len() - 4;
    wrong[at..at + 2].copy_from_slice(b"00");
    let mut lower = frame(2, b"P|1\r", FrameEnd::End);
    let at = lower.len() - 4;
    lower[at..at + 2].make_ascii_lowercase();
    let lowered = lower[at..at + 2].to_vec();
    let standard = frame(3, b"L|1|N\r", FrameEnd::End);
    lis.handle_input(&[ENQ], t0);
    for f in [&wrong, &lower, &standard] {
        lis.handle_input(f, t0);
    }
    lis.handle_input(&[EOT], t0);
    assert_eq!(out(&mut lis), [ACK, ACK, ACK, ACK]);
    let computed = astm_frame::checksum::checksum(Some(b'1'), b"H|\\^&\r", ETX);
    let lower_value = u8::from_str_radix(std::str::from_utf8(&lowered).unwrap(), 16).unwrap();
    assert_eq!(
        events(&mut lis),
        [
            Event::LinkError(LinkError::Tolerated(FrameDefect::ChecksumMismatch {
                received: 0,
                computed,
            })),
            Event::MessageReceived(b"H|\\^&\r".to_vec()),
            Event::LinkError(LinkError::Tolerated(FrameDefect::LowercaseChecksum(
                lower_value
            ))),
            Event::MessageReceived(b"P|1\r".to_vec()),
            Event::MessageReceived(b"L|1|N\r".to_vec()),
        ]
    );
    assert_eq!(
        LinkError::Tolerated(FrameDefect::ChecksumMismatch {
            received: 0,
            computed: 0xE5
        })
        .to_string(),
        "frame accepted despite checksum mismatch: received 00, computed E5 (allowed by the \
         link's leniency)"
    );
}

/// A hang-up in the middle of a message is reported, in both assemblies, and leaves the
/// link neutral; an unfinished frame's bytes are reported, line ends after a frame are not.
#[test]
fn a_hang_up_mid_message_discards_it_with_a_report() {
    let t0 = Instant::now();
    let header = frame(1, b"H|\\^&\r", FrameEnd::End);
    let patient_start = frame(2, b"P|1|", FrameEnd::Intermediate);
    for assembly in [Assembly::PerEndFrame, Assembly::PerTransfer] {
        let mut lis = Link::new(LinkConfig::new(Role::Computer).with_assembly(assembly));
        lis.handle_input(&[ENQ], t0);
        lis.handle_input(&header, t0);
        lis.handle_input(&patient_start, t0);
        // Half of the next frame arrives before the hang-up.
        lis.handle_input(b"\x023|2\r", t0);
        assert_eq!(out(&mut lis), [ACK, ACK, ACK], "{assembly:?}");
        lis.handle_eof(t0);
        assert_eq!(lis.state(), LinkState::Neutral, "{assembly:?}");
        let unfinished = Event::LinkError(LinkError::BrokenFrame {
            len: 5,
            reason: BrokenReason::Unfinished,
        });
        let expected = match assembly {
            Assembly::PerEndFrame => vec![
                Event::MessageReceived(b"H|\\^&\r".to_vec()),
                unfinished,
                Event::ReceiveDiscarded {
                    reason: DiscardReason::ConnectionClosed,
                    len: 4,
                },
            ],
            // The message is the transfer: the header received whole goes with it.
            _ => vec![
                unfinished,
                Event::ReceiveDiscarded {
                    reason: DiscardReason::ConnectionClosed,
                    len: 10,
                },
            ],
        };
        assert_eq!(events(&mut lis), expected, "{assembly:?}");
        assert_eq!(lis.poll_timeout(), None);
    }

    // Line ends after the last frame are not a broken frame; nothing was cut off.
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    lis.handle_input(&[ENQ], t0);
    lis.handle_input(&header, t0);
    lis.handle_input(&[EOT], t0);
    lis.handle_input(b"\r\n", t0);
    lis.handle_eof(t0);
    assert_eq!(
        events(&mut lis),
        [Event::MessageReceived(b"H|\\^&\r".to_vec())]
    );
}

/// A hang-up while sending keeps the message queued and sends nothing on the closed line;
/// on the next connection it goes out from its first frame.
#[test]
fn a_hang_up_while_sending_keeps_the_message_for_the_next_connection() {
    let t0 = Instant::now();
    let mut analyzer = Link::new(LinkConfig::new(Role::Instrument));
    analyzer.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut analyzer), [ENQ]);
    analyzer.handle_input(&[ACK], t0);
    assert_eq!(
        out(&mut analyzer),
        frame(1, b"H|\\^&\r", FrameEnd::End),
        "the first frame is in flight"
    );
    analyzer.handle_eof(t0);
    assert!(out(&mut analyzer).is_empty());
    assert!(events(&mut analyzer).is_empty());
    assert_eq!(analyzer.state(), LinkState::Neutral);
    assert_eq!(analyzer.queued(), 1);
    // The next connection.
    assert_eq!(analyzer.poll_timeout(), Some(t0));
    analyzer.handle_timeout(t0);
    assert_eq!(out(&mut analyzer), [ENQ]);
    analyzer.handle_input(&[ACK], t0);
    assert_eq!(out(&mut analyzer), frame(1, b"H|\\^&\r", FrameEnd::End));
}
