//! ASTM ports against hand-written byte scripts and the astm-frame state machines.

mod common;

use astm_frame::FrameEnd;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STAGO: &[&str] = &[
    "--listen",
    "0=stago_start4",
    "-d",
    "0",
    "--seed",
    "1",
    "--api-port",
    "0",
];

fn stago(extra: &[&str]) -> Sim {
    let mut args = STAGO.to_vec();
    args.extend_from_slice(extra);
    Sim::start(&args)
}

async fn received(sim: &Sim) -> serde_json::Value {
    http()
        .get(sim.api_url("/received?limit=50"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_query_is_answered_with_the_template_message() {
    let sim = stago(&[]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(&mut s, &["H|\\^&|||LIS", "L|1|N"]).await;
    let records = receive_records(&mut s).await;
    assert!(records[0].starts_with("H|\\^&|"), "{records:?}");
    assert!(records[0].contains("|STAGO^START4^V1.0|"), "{records:?}");
    assert!(
        records.iter().any(|r| r.starts_with("R|1|^^^PT|12.5|sec|")),
        "{records:?}"
    );
    assert_eq!(records.last().unwrap(), "L|1|N");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_download_answers_exactly_the_ordered_tests_on_the_link() {
    let sim = stago(&["--order-results", "link", "--layout", "openelis"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(
        &mut s,
        &[
            "H|\\^&|||LIS",
            "P|1",
            "O|1|DEV01260000000000123||^^^PT\\^^^XYZ|R",
            "L|1|N",
        ],
    )
    .await;
    let records = receive_records(&mut s).await;
    assert_eq!(
        records,
        vec![
            "H|\\^&|||STAGO^START4^V1.0|||||||LIS2-A2",
            "P|1|PAT-2026-003||Razafy^Sophie^C",
            "O|1|DEV01260000000000123|||^^^|R",
            "R|1|^^^PT|12.5|sec||||F",
            "R|2|^^^XYZ|TEST NOT PERFORMED|||||X",
            "L|1|N",
        ]
    );
}

/// The records of the results a `--order-results link` simulator sends back for `orders`.
async fn results_on_the_link(orders: &[&str]) -> Vec<String> {
    let sim = stago(&["--order-results", "link"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(&mut s, orders).await;
    receive_records(&mut s).await
}

/// The records of one type (`"P|"`).
fn of_type<'r>(records: &'r [String], prefix: &str) -> Vec<&'r String> {
    records.iter().filter(|r| r.starts_with(prefix)).collect()
}

/// Results for an order name the patient the LIS ordered for (each O under its P record), as
/// an analyzer echoes it, byte for byte in UTF-8; they named the template's patient, whatever
/// was ordered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_results_echo_the_patient_of_each_order() {
    let records = results_on_the_link(&[
        "H|\\^&|||LIS",
        "P|1|MRN-1|LAB-1||O'BRIEN^ANNÉ&F&X||19700101|F",
        "O|1|S-É1||^^^PT|R",
        "P|2|MRN-2|||DOE^JOHN",
        "O|1|S-2||^^^INR|R",
        "L|1|N",
    ])
    .await;
    assert_eq!(
        of_type(&records, "P|"),
        [
            "P|1|MRN-1|LAB-1||O'BRIEN^ANNÉ&F&X||19700101|F",
            "P|2|MRN-2|||DOE^JOHN"
        ],
        "{records:?}"
    );
    let orders = of_type(&records, "O|");
    assert!(orders[0].starts_with("O|1|S-É1|"), "{records:?}");
    assert!(orders[1].starts_with("O|1|S-2|"), "{records:?}");
}

/// Two messages in one transfer (E1381 allows it): an O record in the second, which has no P
/// record, belongs to no patient of the first; its results name the template's patient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_message_in_one_transfer_does_not_inherit_the_patient() {
    let records = results_on_the_link(&[
        "H|\\^&|||LIS",
        "P|1|MRN-1|||DOE^JANE",
        "O|1|S-1||^^^PT|R",
        "L|1|N",
        "H|\\^&|||LIS",
        "O|1|S-2||^^^PT|R",
        "L|1|N",
    ])
    .await;
    assert_eq!(
        of_type(&records, "P|"),
        ["P|1|MRN-1|||DOE^JANE", "P|2||PAT-2026-003||Razafy^Sophie^C"],
        "{records:?}"
    );
}

/// `--charset latin-1`: results are written as many instruments write them, `É` as the one
/// byte 0xC9 (checksums summed over those bytes), whether the LIS ordered in UTF-8 or in
/// Latin-1; `GET /received` shows the Latin-1 order as text (it showed U+FFFD).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latin1_results_write_one_byte_per_letter() {
    let sim = stago(&["--order-results", "link", "--charset", "latin-1"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    let header: &[u8] = b"H|\\^&|||LIS";
    send_record_bytes(
        &mut s,
        &[
            header,
            "P|1|MRN-1|||O'BRIEN^ANNÉ".as_bytes(),
            "O|1|S-É1||^^^PT|R".as_bytes(),
            b"L|1|N",
        ],
    )
    .await;
    let from_utf8 = receive_bytes(&mut s).await;
    let shown = String::from_utf8_lossy(&from_utf8).into_owned();
    assert!(contains(&from_utf8, b"|O'BRIEN^ANN\xC9\r"), "{shown:?}");
    assert!(contains(&from_utf8, b"\rO|1|S-\xC91|"), "{shown:?}");
    assert!(!contains(&from_utf8, "É".as_bytes()), "{shown:?}");

    send_record_bytes(
        &mut s,
        &[header, b"P|1|MRN-2|||L\xC9A", b"O|1|S-2||^^^PT|R", b"L|1|N"],
    )
    .await;
    let from_latin1 = receive_bytes(&mut s).await;
    let shown = String::from_utf8_lossy(&from_latin1).into_owned();
    assert!(contains(&from_latin1, b"|L\xC9A\r"), "{shown:?}");

    let texts = received(&sim).await;
    let texts: Vec<&str> = texts
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(texts.iter().any(|t| t.contains("|||LÉA\r")), "{texts:?}");
    assert!(texts.iter().all(|t| !t.contains('\u{FFFD}')), "{texts:?}");
}

/// `--charset` (or `SIMULATOR_CHARSET`) covers the legacy `fields.json` messages too: their
/// `10^3/μL` (a Greek mu) is written in Latin-1 as its micro sign, 0xB5, and in ASCII as `?`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_field_query_reply_follows_the_charset() {
    for (charset, unit) in [("latin-1", &b"10^3/\xB5L"[..]), ("ascii", b"10^3/?L")] {
        let mut cmd = command(&["-d", "0"]);
        cmd.env("PORT_TEMPLATES", "{}")
            .env("ASTM_PORT", "0")
            .env("SIMULATOR_CHARSET", charset);
        let sim = Sim::start_with(cmd);
        let mut s = connect(sim.port_of("-")).await;
        send_records(&mut s, &["H|\\^&|||LIS", "L|1|N"]).await;
        let reply = receive_bytes(&mut s).await;
        let expected = [&b"\rR|1|^^^WBC||"[..], unit, b"|||NUMERIC\r"].concat();
        assert!(
            contains(&reply, &expected),
            "{charset}: {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_results_are_pushed_to_the_order_result_host() {
    let lis = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = lis.local_addr().unwrap().port().to_string();
    let mut cmd = command(STAGO);
    cmd.env("ORDER_RESULT_PUSH_HOST", "127.0.0.1")
        .env("ORDER_RESULT_PUSH_ASTM_PORT", &port);
    let sim = Sim::start_with(cmd);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(
        &mut s,
        &["H|\\^&|||LIS", "P|1", "O|1|S-9||^^^INR|R", "L|1|N"],
    )
    .await;
    let text = receive_pushed_transfer(&lis).await;
    let records: Vec<&str> = text.split('\r').filter(|r| !r.is_empty()).collect();
    assert!(
        records.iter().any(|r| r.starts_with("O|1|S-9|")),
        "{records:?}"
    );
    let results: Vec<&&str> = records.iter().filter(|r| r.starts_with("R|")).collect();
    assert_eq!(results.len(), 1, "{records:?}");
    assert!(results[0].starts_with("R|1|^^^INR|1.05|"), "{records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_query_answers_the_requested_specimen_and_tests() {
    let sim = stago(&[]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(
        &mut s,
        &["H|\\^&|||LIS", "Q|1|^SPEC-É42||^^^APTT|||||||O", "L|1|N"],
    )
    .await;
    let records = receive_records(&mut s).await;
    assert!(
        records.iter().any(|r| r.starts_with("O|1|SPEC-É42|")),
        "{records:?}"
    );
    let results: Vec<&String> = records.iter().filter(|r| r.starts_with("R|")).collect();
    assert_eq!(results.len(), 1, "{records:?}");
    assert!(results[0].starts_with("R|1|^^^APTT|28.5|"), "{records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_nak_case_and_the_duplicate_frame() {
    let sim = stago(&["--order-results", "off"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    // Bad checksum.
    let mut bad = frame(1, b"H|\\^&|||LIS\r", FrameEnd::End);
    let n = bad.len();
    bad[n - 4] = if bad[n - 4] == b'0' { b'1' } else { b'0' };
    write(&mut s, &bad).await;
    assert_eq!(read_byte(&mut s).await, NAK, "bad checksum");
    // Restricted character in the text (checksum computed over it, so only the character is wrong).
    write(&mut s, &frame(1, b"H|\\^&|||L\x11IS\r", FrameEnd::End)).await;
    assert_eq!(read_byte(&mut s).await, NAK, "restricted character");
    // Good frame; then a wrong frame number (after the first frame, which may have any number
    // 0-7 as in the reference); then the good frame again (a lost ACK): ACKed, delivered once.
    let good = frame(1, b"H|\\^&|||LIS\r", FrameEnd::End);
    write(&mut s, &good).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    write(&mut s, &frame(3, b"P|1\r", FrameEnd::End)).await;
    assert_eq!(read_byte(&mut s).await, NAK, "wrong FN");
    write(&mut s, &good).await;
    assert_eq!(read_byte(&mut s).await, ACK, "repeated last frame");
    // A record split over ETB frames is reassembled.
    write(&mut s, &frame(2, b"P|1||PAT-", FrameEnd::Intermediate)).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    write(&mut s, &frame(3, b"SPLIT\r", FrameEnd::End)).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    write(&mut s, &frame(4, b"L|1|N\r", FrameEnd::End)).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    write(&mut s, &[EOT]).await;
    // The transfer is visible once, records whole.
    let mut entries = serde_json::Value::Null;
    for _ in 0..100 {
        entries = received(&sim).await;
        if entries.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let entry = &entries[0];
    assert_eq!(entry["protocol"], "ASTM");
    assert_eq!(
        entry["records"],
        serde_json::json!(["H|\\^&|||LIS", "P|1||PAT-SPLIT", "L|1|N"])
    );
    assert!(entry["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(entry["time"].is_string() && entry["port"].is_u64() && entry["text"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_bad_frames_end_in_eot_and_close() {
    let sim = stago(&[]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    // Six bad checksums, as the reference's own test_retransmission_abort_after_six_failures.
    let mut bad = frame(1, b"H|\\^&\r", FrameEnd::End);
    let n = bad.len();
    bad[n - 4] = if bad[n - 4] == b'0' { b'1' } else { b'0' };
    for i in 0..6 {
        write(&mut s, &bad).await;
        assert_eq!(read_byte(&mut s).await, NAK, "NAK {i}");
    }
    assert_eq!(read_byte(&mut s).await, EOT);
    let mut rest = Vec::new();
    let n = tokio::time::timeout(WAIT, s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "connection closed after EOT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_record_switches_the_template_of_the_connection() {
    let sim = stago(&[]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(&mut s, &["H|\\^&|||LIS", "X|1|horiba_micros60|", "L|1|N"]).await;
    let records = receive_records(&mut s).await;
    assert!(records[0].contains("ABX^MICROS60"), "{records:?}");
    // It stays in force for the rest of the connection (the reference's rule)...
    send_records(&mut s, &["H|\\^&|||LIS", "L|1|N"]).await;
    let records = receive_records(&mut s).await;
    assert!(records[0].contains("ABX^MICROS60"), "{records:?}");
    // ... and an unknown or non-ASTM template leaves the template as it is.
    send_records(&mut s, &["H|\\^&|||LIS", "X|1|mindray_bc5380|", "L|1|N"]).await;
    let records = receive_records(&mut s).await;
    assert!(records[0].contains("ABX^MICROS60"), "{records:?}");
    // A new connection starts with the port's template.
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(&mut s, &["H|\\^&|||LIS", "L|1|N"]).await;
    let records = receive_records(&mut s).await;
    assert!(records[0].contains("STAGO^START4"), "{records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proactive_enq_and_contention() {
    // By role (`--contention by-role`): the instrument insists; after the LIS's contending ENQ
    // it sends ENQ again.
    let sim = Sim::start(&[
        "--listen",
        "0=genexpert_astm",
        "-d",
        "0",
        "--link-timer-ms",
        "300",
        "--contention",
        "by-role",
    ]);
    let mut s = connect(sim.port_of("genexpert_astm")).await;
    assert_eq!(read_byte(&mut s).await, ENQ, "proactive ENQ on connect");
    write(&mut s, &[ENQ]).await;
    assert_eq!(
        read_byte(&mut s).await,
        ENQ,
        "instrument re-sends ENQ after contention"
    );
    write(&mut s, &[ACK]).await;
    assert_eq!(read_byte(&mut s).await, STX, "then sends its frames");
    drop(sim);

    // Yield (the reference): the contending ENQ is acknowledged and the LIS sends first.
    let sim = Sim::start(&[
        "--listen",
        "0=genexpert_astm",
        "-d",
        "0",
        "--contention",
        "yield",
    ]);
    let mut s = connect(sim.port_of("genexpert_astm")).await;
    assert_eq!(read_byte(&mut s).await, ENQ);
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK, "yields to the LIS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_delay_applies_to_control_bytes() {
    let sim = Sim::start(&["--listen", "0=stago_start4", "-d", "300"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    let started = std::time::Instant::now();
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

/// The response delay does not use up the LIS's time to send: the receive timer runs from
/// the ACK the simulator sent, not from the ENQ it answered. With a 1 s timer and an 800 ms
/// delay, a LIS sending its frame 700 ms after the ACK found the transfer given up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_delay_does_not_use_up_the_receive_timer() {
    let sim = Sim::start(&[
        "--listen",
        "0=stago_start4",
        "-d",
        "800",
        "--link-timer-ms",
        "1000",
    ]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    write(&mut s, &frame(1, b"H|\\^&|||LIS\r", FrameEnd::End)).await;
    assert_eq!(read_byte(&mut s).await, ACK, "the frame is taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_nak_enq_and_drop_ack() {
    let sim = Sim::start(&[
        "--listen",
        "0=stago_start4",
        "-d",
        "0",
        "--fault",
        "nak-enq=1",
    ]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, NAK, "nak-enq fault");
    drop(sim);

    let sim = Sim::start(&[
        "--listen",
        "0=stago_start4",
        "-d",
        "0",
        "--fault",
        "drop-ack=1",
    ]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    write(&mut s, &[ENQ]).await;
    // The ACK to ENQ is dropped too: nothing comes back.
    let r = tokio::time::timeout(std::time::Duration::from_millis(700), s.read_u8()).await;
    assert!(r.is_err(), "no ACK with drop-ack=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_message_is_sent_again_after_the_lis_message() {
    let sim = stago(&[]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(&mut s, &["H|\\^&|||LIS", "L|1|N"]).await;
    assert_eq!(read_byte(&mut s).await, ENQ, "the field-query reply");
    write(&mut s, &[ACK]).await;
    assert_eq!(read_byte(&mut s).await, STX);
    let first = read_frame_rest(&mut s).await;
    // Receiver interrupt: frame 1 accepted, and the LIS wants the link.
    write(&mut s, &[EOT]).await;
    assert_eq!(
        read_byte(&mut s).await,
        EOT,
        "the simulator ends its transfer"
    );
    send_records(
        &mut s,
        &["H|\\^&|||LIS", "Q|1|^SPEC-42||^^^APTT|||||||O", "L|1|N"],
    )
    .await;
    // The interrupted message again, whole, then the answer to the LIS's query.
    let again = receive_records(&mut s).await;
    let first_text = String::from_utf8_lossy(&first[2..first.len() - 5]).into_owned();
    assert_eq!(
        format!("{}\r", again[0]),
        first_text,
        "the interrupted message starts again at its first record: {again:?}"
    );
    assert!(
        !again.iter().any(|r| r.contains("SPEC-42")),
        "the interrupted message comes first: {again:?}"
    );
    assert_eq!(again.last().unwrap(), "L|1|N");
    let answer = receive_records(&mut s).await;
    assert!(
        answer.iter().any(|r| r.starts_with("O|1|SPEC-42|")),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_query_with_several_q_records_answers_each() {
    let sim = stago(&[]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(
        &mut s,
        &[
            "H|\\^&|||LIS",
            "Q|1|^SPEC-41||^^^PT|||||||O",
            "Q|2|^SPEC-42||^^^APTT|||||||O",
            "L|1|N",
        ],
    )
    .await;
    let records = receive_records(&mut s).await;
    let orders: Vec<&String> = records.iter().filter(|r| r.starts_with("O|")).collect();
    assert_eq!(orders.len(), 2, "{records:?}");
    assert!(orders[0].starts_with("O|1|SPEC-41|"), "{records:?}");
    assert!(orders[1].starts_with("O|1|SPEC-42|"), "{records:?}");
    let results: Vec<&String> = records.iter().filter(|r| r.starts_with("R|")).collect();
    assert_eq!(results.len(), 2, "{records:?}");
    assert!(results[0].starts_with("R|1|^^^PT|"), "{records:?}");
    assert!(results[1].starts_with("R|1|^^^APTT|"), "{records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_case_checksum_is_accepted_as_the_reference_does_a_wrong_one_is_not() {
    let sim = stago(&["--order-results", "off"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    let lower = |mut f: Vec<u8>| {
        let n = f.len();
        f[n - 4..n - 2].make_ascii_lowercase();
        f
    };
    // Checksum AF, sent as "af".
    let header = frame(1, b"H|\\^&|||LIS-A\r", FrameEnd::End);
    assert_eq!(&header[header.len() - 4..header.len() - 2], b"AF");
    write(&mut s, &lower(header)).await;
    assert_eq!(read_byte(&mut s).await, ACK, "lower-case checksum");
    // Checksum FD, sent as "fc": still wrong.
    let mut wrong = frame(2, b"L|1|F\r", FrameEnd::End);
    let n = wrong.len();
    assert_eq!(&wrong[n - 4..n - 2], b"FD");
    wrong[n - 3] = b'C';
    write(&mut s, &lower(wrong)).await;
    assert_eq!(read_byte(&mut s).await, NAK, "wrong checksum in lower case");
}

/// A LIS that hangs up after sending its order (as the OpenELIS bridge's forwarder does
/// after EOT) never gets the results queued on the link: the simulator says so with the
/// specimens, rather than dropping them with a debug line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_results_lost_with_the_connection_are_logged_with_their_specimens() {
    let mut args = STAGO.to_vec();
    args.extend_from_slice(&["--order-results", "link"]);
    let sim = LoggedSim::start(&args);
    let mut s = connect(sim.sim.port_of("stago_start4")).await;
    send_records(
        &mut s,
        &["H|\\^&|||LIS", "P|1", "O|1|LOST-2||^^^PT|R", "L|1|N"],
    )
    .await;
    // The simulator bids for the line to send the results; the LIS leaves instead.
    assert_eq!(read_byte(&mut s).await, ENQ);
    drop(s);
    let log = sim.log_holding(&["ended with 1 order result message(s) not sent"]);
    assert!(
        log.contains("ended with 1 order result message(s) not sent on it (specimens LOST-2)"),
        "{log}"
    );
}

/// A transfer that ends without its L record (the LIS gave up after six refusals of a
/// frame, or was cut off) is an incomplete message: it is kept in `/received` but not acted
/// on, so a half-sent order list gets no results for the half that arrived. The next,
/// complete order is answered as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_transfer_without_its_terminator_is_not_acted_on() {
    let sim = stago(&["--order-results", "link"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(&mut s, &["H|\\^&|||LIS", "P|1", "O|1|CUT-1||^^^PT|R"]).await;
    send_records(
        &mut s,
        &["H|\\^&|||LIS", "P|1", "O|1|WHOLE-2||^^^PT|R", "L|1|N"],
    )
    .await;
    let records = receive_records(&mut s).await;
    assert!(
        records.iter().any(|r| r.starts_with("O|1|WHOLE-2|")),
        "the first answer is for the complete order: {records:?}"
    );
    let texts = received(&sim).await;
    assert!(
        texts
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"].as_str().unwrap().contains("CUT-1")),
        "{texts}"
    );
}

/// An order the LIS cancels (O.12 `C`) or a request it aborts (Q.13 `A`) gets no results: a
/// cancel without a P record was answered as a field query with the template's whole message,
/// and a cancelled order with results for its tests. Each transfer is answered in turn, so
/// the first answer being the live order's shows the others got none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_orders_and_aborted_queries_get_no_results() {
    let sim = stago(&["--order-results", "link"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(
        &mut s,
        &["H|\\^&|||LIS", "O|1|CANCEL-1||^^^PT|R||||||C", "L|1|N"],
    )
    .await;
    send_records(&mut s, &["H|\\^&|||LIS", "Q|1|^Q-2||ALL||||||||A", "L|1|N"]).await;
    send_records(
        &mut s,
        &[
            "H|\\^&|||LIS",
            "P|1",
            "O|1|GONE-3||^^^PT|R||||||C",
            "O|2|KEEP-4||^^^INR|R",
            "L|1|N",
        ],
    )
    .await;
    let records = receive_records(&mut s).await;
    let orders: Vec<&String> = records.iter().filter(|r| r.starts_with("O|")).collect();
    assert_eq!(orders.len(), 1, "{records:?}");
    assert!(orders[0].starts_with("O|1|KEEP-4|"), "{records:?}");
    let results: Vec<&String> = records.iter().filter(|r| r.starts_with("R|")).collect();
    assert_eq!(results.len(), 1, "{records:?}");
    assert!(results[0].starts_with("R|1|^^^INR|"), "{records:?}");
}

/// An O record whose report type (O.26) says it reports results (`F` final, `P`, `C`, `X`,
/// `I`) or that no order exists (`Y`, `Z`) is no order: a result message sent to a port (by
/// another simulator, or a LIS echoing it) was answered with results for its tests. An order
/// sent in answer to a host query (O.26 `Q`) or marked `O` still is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_reports_are_not_taken_for_orders() {
    let sim = stago(&["--order-results", "link"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(
        &mut s,
        &[
            "H|\\^&|||OTHER-ANALYZER",
            "P|1",
            "O|1|RESULT-1||^^^PT|R||||||||||||||||||||F",
            "R|1|^^^PT|12.5|sec||||F",
            "O|2|NONE-2||^^^INR|R||||||||||||||||||||Y",
            "L|1|N",
        ],
    )
    .await;
    send_records(
        &mut s,
        &[
            "H|\\^&|||LIS",
            "P|1",
            "O|1|QUERIED-3||^^^PT|R||||||||||||||||||||Q",
            "O|2|ORDER-4||^^^INR|R||||||||||||||||||||O",
            "L|1|N",
        ],
    )
    .await;
    let records = receive_records(&mut s).await;
    let orders: Vec<&str> = records
        .iter()
        .filter(|r| r.starts_with("O|"))
        .map(|r| r.split('|').nth(2).unwrap_or_default())
        .collect();
    assert_eq!(orders, ["QUERIED-3", "ORDER-4"], "{records:?}");
}

/// The OpenELIS bridge sending an order to a proactive-ENQ port (GeneXpert on 5000/9600 in the
/// default map): it sends its ENQ, consumes the simulator's contending ENQ and reads the ACK
/// (mock commit 093db5d); the reference yields and acknowledges at once, so by default the
/// simulator must too, and then answer the order with its results pushed as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lis_meeting_the_proactive_enq_with_its_own_gets_ack_by_default() {
    let lis = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = lis.local_addr().unwrap().port().to_string();
    let mut cmd = command(&["--listen", "0=genexpert_astm", "-d", "0"]);
    cmd.env("ORDER_RESULT_PUSH_HOST", "127.0.0.1")
        .env("ORDER_RESULT_PUSH_ASTM_PORT", &port);
    let sim = Sim::start_with(cmd);
    let mut s = connect(sim.port_of("genexpert_astm")).await;
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ENQ, "the proactive ENQ");
    let started = std::time::Instant::now();
    assert_eq!(read_byte(&mut s).await, ACK, "the simulator yields");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(900),
        "acknowledged at once, not after the 1 s wait of a retry"
    );
    for (i, record) in ["H|\\^&|||LIS", "O|1|S-1||^^^NOPE|R", "L|1|N"]
        .iter()
        .enumerate()
    {
        let n = u8::try_from(i + 1).unwrap();
        write(
            &mut s,
            &frame(n, format!("{record}\r").as_bytes(), FrameEnd::End),
        )
        .await;
        assert_eq!(read_byte(&mut s).await, ACK, "{record}");
    }
    write(&mut s, &[EOT]).await;
    let text = receive_pushed_transfer(&lis).await;
    assert!(text.contains("O|1|S-1|"), "{text}");
    assert!(text.contains("^^^NOPE|TEST NOT PERFORMED|"), "{text}");
}

/// The field-query reply of a port without a template (the legacy `fields.json` one) has the
/// reference's records, as its verified wire shows them: `R|1|^^^WBC||10^3/μL|||NUMERIC`, the
/// `astmRef` as it is, without the display name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_field_query_reply_has_the_reference_records() {
    let mut cmd = command(&["-d", "0"]);
    cmd.env("PORT_TEMPLATES", "{}").env("ASTM_PORT", "0");
    let sim = Sim::start_with(cmd);
    let records = field_query_reply(sim.port_of("-")).await;
    assert_eq!(records.len(), 12, "H, 10 HEMATOLOGY fields, L: {records:?}");
    assert_eq!(records[0], LEGACY_HEADER);
    assert_eq!(records[1], "R|1|^^^WBC||10^3/\u{3bc}L|||NUMERIC");
    assert_eq!(records[4], "R|4|^^^HCT||%|||NUMERIC");
    assert_eq!(records[10], "R|10|^^^MPV||fL|||NUMERIC");
    assert_eq!(records[11], "L|1|N");
}

/// A results query (H + Q + L) on a port without a template gets the reference's fixed
/// legacy reply; an H + P + L transfer (neither query nor order) gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_results_query_reply_and_a_transfer_that_asks_nothing() {
    let mut cmd = command(&["-d", "0"]);
    cmd.env("PORT_TEMPLATES", "{}").env("ASTM_PORT", "0");
    let sim = Sim::start_with(cmd);
    let mut s = connect(sim.port_of("-")).await;
    send_records(
        &mut s,
        &[
            "H|\\^&|||OpenELIS^ResultsQuery^1.0",
            "Q|1|ACC-RESULTS||ALL",
            "L|1|N",
        ],
    )
    .await;
    let records = receive_records(&mut s).await;
    assert_eq!(
        records,
        [
            LEGACY_HEADER,
            "P|1|PAT-RESULTS||DOE^JANE",
            "O|1|ACC-RESULTS",
            "R|1|^^^GLUCOSE|102.5|mg/dL",
            "L|1|N"
        ]
    );
    // The connection stays open for further sessions; H + P + L asks for nothing.
    send_records(&mut s, &["H|\\^&|||LIS", "P|1", "L|1|N"]).await;
    let mut byte = [0u8; 1];
    let quiet =
        tokio::time::timeout(std::time::Duration::from_millis(700), s.read(&mut byte)).await;
    assert!(quiet.is_err(), "no reply: {byte:?}");
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK, "still open");
}

/// Results of an order are pushed on a new connection bound to the address the order came in
/// on (the analyzer's interface; the bridge tells analyzers apart by source address), from
/// ASTM and HL7 ports alike. With `--bind ::` an IPv4 order arrives on `::ffff:127.0.0.1`,
/// which an IPv4 socket cannot bind: every push failed until the address was taken as IPv4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_results_are_pushed_from_the_address_the_order_came_in_on() {
    use tokio::io::AsyncWriteExt;
    for (bind, source) in [("127.0.0.2", "127.0.0.2"), ("::", "127.0.0.1")] {
        let astm_lis = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hl7_lis = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut cmd = command(&[
            "--bind",
            bind,
            "--listen",
            "0=stago_start4",
            "--listen",
            "0=mindray_bc5380",
            "-d",
            "0",
        ]);
        cmd.env("ORDER_RESULT_PUSH_HOST", "127.0.0.1")
            .env(
                "ORDER_RESULT_PUSH_ASTM_PORT",
                astm_lis.local_addr().unwrap().port().to_string(),
            )
            .env(
                "ORDER_RESULT_PUSH_PORT",
                hl7_lis.local_addr().unwrap().port().to_string(),
            );
        let sim = Sim::start_with(cmd);
        // The order comes in over IPv4 on the port's address (any address for `::`).
        let reach = |template: &str| {
            let port = sim.port_of(template);
            std::net::SocketAddr::new(source.parse().unwrap(), port.port())
        };
        let mut s = connect(reach("stago_start4")).await;
        send_records(&mut s, &["H|\\^&|||LIS", "O|1|S-9||^^^INR|R", "L|1|N"]).await;
        let (_, peer) = tokio::time::timeout(WAIT, astm_lis.accept())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            peer.ip().to_string(),
            source,
            "--bind {bind}: ASTM result push"
        );

        let mut s = connect(reach("mindray_bc5380")).await;
        s.write_all(
            b"\x0bMSH|^~\\&|LIS|LAB|BC5380|DEV|20260101||ORM^O01|C1|P|2.3.1\rPID|1||P1\r\
              ORC|NW|PL1|FL1\rOBR|1|PL1|FL1|^^^WBC^WBC\r\x1c\r",
        )
        .await
        .unwrap();
        let (_, peer) = tokio::time::timeout(WAIT, hl7_lis.accept())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            peer.ip().to_string(),
            source,
            "--bind {bind}: HL7 result push"
        );
    }
}

/// The NAK cases of the reference's frame check (section 2.4 of the reference notes) that
/// `every_nak_case_and_the_duplicate_frame` does not cover: each restricted character in the
/// text, a frame number that is not a digit, a one-character checksum; and the frame number
/// wraps 7 -> 0 (7 -> 1 is refused, as in the reference).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_characters_bad_frame_numbers_and_the_wrap() {
    let sim = stago(&["--order-results", "off"]);
    let restricted = [
        0x01u8, 0x02, 0x03, 0x05, 0x06, 0x0A, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    ];
    // Five refusals in a row at most per connection: the sixth would end the session.
    for chunk in restricted.chunks(5) {
        let mut s = connect(sim.port_of("stago_start4")).await;
        write(&mut s, &[ENQ]).await;
        assert_eq!(read_byte(&mut s).await, ACK);
        for &c in chunk {
            let mut text = b"H|\\^&|||L".to_vec();
            text.push(c);
            text.extend_from_slice(b"IS\r");
            write(&mut s, &frame(1, &text, FrameEnd::End)).await;
            assert_eq!(read_byte(&mut s).await, NAK, "restricted {c:#04x}");
        }
    }
    let mut s = connect(sim.port_of("stago_start4")).await;
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    // FN not a digit.
    let mut bad = frame(1, b"H|\\^&|||LIS\r", FrameEnd::End);
    bad[1] = b'A';
    write(&mut s, &bad).await;
    assert_eq!(read_byte(&mut s).await, NAK, "FN not a digit");
    // One checksum character.
    let mut short = frame(1, b"H|\\^&|||LIS\r", FrameEnd::End);
    let n = short.len();
    short.remove(n - 3);
    write(&mut s, &short).await;
    assert_eq!(read_byte(&mut s).await, NAK, "one checksum character");
    // Frames 1..7, then 0 is the next; 1 after 7 is refused.
    for n in 1..=7u8 {
        write(
            &mut s,
            &frame(n, format!("R|{n}\r").as_bytes(), FrameEnd::End),
        )
        .await;
        assert_eq!(read_byte(&mut s).await, ACK, "FN {n}");
    }
    write(&mut s, &frame(1, b"R|8\r", FrameEnd::End)).await;
    assert_eq!(read_byte(&mut s).await, NAK, "7 -> 1");
    write(&mut s, &frame(0, b"R|8\r", FrameEnd::End)).await;
    assert_eq!(read_byte(&mut s).await, ACK, "7 -> 0");
}

/// The reference takes any frame number 0-7 on the first frame of a transfer (the standard
/// wants 1), so a LIS or harness that numbers its frames from 0 works with it; the frames
/// after the first are checked as usual, and a first number outside 0-7 is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_frame_may_have_any_number_from_0_to_7_as_in_the_reference() {
    let sim = stago(&["--order-results", "off"]);
    for first in [0u8, 5] {
        let mut s = connect(sim.port_of("stago_start4")).await;
        write(&mut s, &[ENQ]).await;
        assert_eq!(read_byte(&mut s).await, ACK);
        let records = ["H|\\^&|||LIS\r", "P|1\r", "O|1|S-1||^^^PT|R\r", "L|1|N\r"];
        for (i, record) in records.iter().enumerate() {
            let n = (first + u8::try_from(i).unwrap()) % 8;
            write(&mut s, &frame(n, record.as_bytes(), FrameEnd::End)).await;
            assert_eq!(read_byte(&mut s).await, ACK, "first {first}: FN {n}");
        }
        write(&mut s, &[EOT]).await;
    }
    let mut entries = serde_json::Value::Null;
    for _ in 0..100 {
        entries = received(&sim).await;
        if entries.as_array().is_some_and(|a| a.len() == 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        entries[0]["records"],
        serde_json::json!(["H|\\^&|||LIS", "P|1", "O|1|S-1||^^^PT|R", "L|1|N"]),
        "{entries}"
    );
    // A gap after an accepted first frame is still refused.
    let mut s = connect(sim.port_of("stago_start4")).await;
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    write(&mut s, &frame(3, b"H|\\^&|||LIS\r", FrameEnd::End)).await;
    assert_eq!(read_byte(&mut s).await, ACK, "first FN 3");
    write(&mut s, &frame(5, b"L|1|N\r", FrameEnd::End)).await;
    assert_eq!(read_byte(&mut s).await, NAK, "3 then 5");
    // A first frame numbered 8 is no frame number at all.
    let mut s = connect(sim.port_of("stago_start4")).await;
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    // (`frame` numbers modulo 8: write the digit 8 by hand, its checksum 8 more.)
    let mut eight = frame(0, b"H|\\^&|||LIS\r", FrameEnd::End);
    let n = eight.len();
    let sum = u8::from_str_radix(std::str::from_utf8(&eight[n - 4..n - 2]).unwrap(), 16).unwrap();
    eight[1] = b'8';
    eight.splice(
        n - 4..n - 2,
        format!("{:02X}", sum.wrapping_add(8)).into_bytes(),
    );
    write(&mut s, &eight).await;
    assert_eq!(read_byte(&mut s).await, NAK, "first FN 8");
}

/// Sends `text` as one transfer in frames of up to 60,000 bytes (intermediate ETB frames, the
/// last ETX): how a LIS hands over a long work list without a frame per record.
async fn send_long_transfer(s: &mut tokio::net::TcpStream, text: &[u8]) {
    write(s, &[ENQ]).await;
    assert_eq!(read_byte(s).await, ACK, "ENQ not acknowledged");
    let chunks: Vec<&[u8]> = text.chunks(60_000).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let n = u8::try_from((i + 1) % 8).unwrap();
        let end = if i + 1 == chunks.len() {
            FrameEnd::End
        } else {
            FrameEnd::Intermediate
        };
        write(s, &frame(n, chunk, end)).await;
        assert_eq!(read_byte(s).await, ACK, "frame {i} not acknowledged");
    }
    write(s, &[EOT]).await;
}

/// O records naming one specimen again are one order with each test once, in order of first
/// appearance; a long work list is read with an index (a search per record made 50,000 O
/// records stall every port for 25 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_for_one_specimen_are_merged_with_each_test_once() {
    let records = results_on_the_link(&[
        "H|\\^&|||LIS",
        "P|1",
        "O|1|S1||^^^PT\\^^^PT|R",
        "O|2|S2||^^^PT|R",
        "O|3|S1||^^^XYZ\\^^^PT|R",
        "L|1|N",
    ])
    .await;
    let orders: Vec<&String> = of_type(&records, "O|");
    assert_eq!(orders.len(), 2, "{records:?}");
    assert!(orders[0].starts_with("O|1|S1|"), "{records:?}");
    assert!(orders[1].starts_with("O|1|S2|"), "{records:?}");
    let results: Vec<&String> = of_type(&records, "R|");
    let codes: Vec<&str> = results
        .iter()
        .map(|r| r.split('|').nth(2).unwrap())
        .collect();
    assert_eq!(codes, ["^^^PT", "^^^XYZ", "^^^PT"], "{records:?}");
}

/// A transfer is read into one record list with about 175 bytes of bookkeeping per record, so
/// one of 16 MiB of tiny records took 1.4 GB: over 100,000 records it is logged, kept in
/// /received and not read. A header-less transfer was dropped without a word; it is logged.
/// The port goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_too_long_or_without_a_header_is_logged_and_not_answered() {
    let sim = LoggedSim::start(&[
        "--listen",
        "0=stago_start4",
        "-d",
        "0",
        "--order-results",
        "link",
        "--api-port",
        "0",
    ]);
    let mut s = connect(sim.sim.port_of("stago_start4")).await;
    let mut text = b"H|\\^&|||LIS\rP|1\r".to_vec();
    for n in 1..=100_000 {
        text.extend_from_slice(format!("O|{n}|S{n}||^^^PT|R\r").as_bytes());
    }
    text.extend_from_slice(b"L|1|N\r");
    send_long_transfer(&mut s, &text).await;
    send_records(&mut s, &["P|1", "O|1|NO-HEADER||^^^PT|R", "L|1|N"]).await;
    send_records(
        &mut s,
        &["H|\\^&|||LIS", "P|1", "O|1|AFTER-1||^^^PT|R", "L|1|N"],
    )
    .await;
    let records = receive_records(&mut s).await;
    assert!(
        records.iter().any(|r| r.starts_with("O|1|AFTER-1|")),
        "the first answer is for the order after them: {records:?}"
    );
    let log = sim.log_holding(&["100003 records, more than the 100000", "must be a header"]);
    assert!(
        log.contains("not read (100003 records, more than the 100000 a transfer may hold)"),
        "{log}"
    );
    assert!(
        log.contains("not read (record 1 must be a header (H), found type \"P\")"),
        "{log}"
    );
}

/// A LIS that hangs up in the middle of a message (its first frame acknowledged, the rest
/// never sent) is logged with what was lost; the port goes on answering. The cut-off
/// message used to vanish without a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_cut_off_by_a_hang_up_is_logged() {
    let sim = LoggedSim::start(&["--listen", "0=stago_start4", "-d", "0"]);
    let addr = sim.sim.port_of("stago_start4");
    let mut s = connect(addr).await;
    s.write_all(&[ENQ]).await.unwrap();
    assert_eq!(read_byte(&mut s).await, ACK);
    s.write_all(&frame(
        1,
        b"H|\\^&|||LIS\rP|1\rO|1|",
        FrameEnd::Intermediate,
    ))
    .await
    .unwrap();
    assert_eq!(read_byte(&mut s).await, ACK);
    drop(s);
    let log = sim.log_holding(&["connection closed in the middle of a message"]);
    assert!(
        log.contains("bytes discarded: connection closed in the middle of a message"),
        "{log}"
    );
    // The next LIS is answered as usual.
    let mut s = connect(addr).await;
    s.write_all(&[ENQ]).await.unwrap();
    assert_eq!(read_byte(&mut s).await, ACK);
}

/// A LIS whose connection is reset in the middle of a message (its process killed) is logged
/// as a hang-up is: with what was lost, then the reset. The reset was logged alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_cut_off_by_a_reset_is_logged() {
    let sim = LoggedSim::start(&["--listen", "0=stago_start4", "-d", "0"]);
    let addr = sim.sim.port_of("stago_start4");
    let mut s = connect(addr).await;
    s.write_all(&[ENQ]).await.unwrap();
    assert_eq!(read_byte(&mut s).await, ACK);
    s.write_all(&frame(1, b"H|\\^&|||LIS\rP|1\r", FrameEnd::Intermediate))
        .await
        .unwrap();
    assert_eq!(read_byte(&mut s).await, ACK);
    s.set_zero_linger().unwrap();
    drop(s);
    let log = sim.log_holding(&["bytes discarded", "reset"]);
    assert!(
        log.contains("16 bytes discarded: connection closed in the middle of a message"),
        "{log}"
    );
    let discarded = log.find("bytes discarded").unwrap();
    let reset = log.find("reset").unwrap();
    assert!(
        discarded < reset,
        "the loss is logged before the reset: {log}"
    );
    // The next LIS is answered as usual.
    let mut s = connect(addr).await;
    s.write_all(&[ENQ]).await.unwrap();
    assert_eq!(read_byte(&mut s).await, ACK);
}
