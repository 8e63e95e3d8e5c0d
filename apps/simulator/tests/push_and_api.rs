//! Push mode (tcp://, mllp://, http(s)://), the MLLP listener, the HTTP API and the default map.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::*;
use futures_util::{SinkExt, StreamExt};
use mllp_hl7::{MllpCodec, MllpFrame};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

fn run(args: &[&str]) -> std::process::Output {
    let mut cmd = command(args);
    cmd.output().expect("run simulator")
}

/// Runs the simulator to the end off the async workers (the test's servers keep running) and
/// checks that it succeeded.
async fn run_ok(args: &[&str]) -> std::process::Output {
    let out = run_to_end(args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One request an HTTP recorder saw.
struct Recorded {
    path: String,
    content_type: Option<String>,
    authorized: bool,
    body: Vec<u8>,
}

/// An HTTP server on loopback that answers 200 to anything and records each request; its
/// base URL and the record.
async fn http_recorder() -> (String, Arc<Mutex<Vec<Recorded>>>) {
    use axum::http::{HeaderMap, Uri};
    let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let seen = Arc::clone(&requests);
    let app = axum::Router::new().fallback(
        move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(Recorded {
                    path: uri.path().to_owned(),
                    content_type: headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    authorized: headers.contains_key("authorization"),
                    body: body.to_vec(),
                });
                "ok"
            }
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app).into_future());
    (base, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_push_is_a_full_sender_that_retransmits_after_nak() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = lis.local_addr().unwrap();
    let receiver = tokio::spawn(async move {
        let (mut s, _) = lis.accept().await.unwrap();
        assert_eq!(read_byte(&mut s).await, ENQ);
        write(&mut s, &[ACK]).await;
        assert_eq!(read_byte(&mut s).await, STX);
        let first = read_frame_rest(&mut s).await;
        write(&mut s, &[NAK]).await;
        assert_eq!(read_byte(&mut s).await, STX);
        let again = read_frame_rest(&mut s).await;
        assert_eq!(first, again, "same frame retransmitted");
        write(&mut s, &[ACK]).await;
        let mut frames = vec![first];
        loop {
            match read_byte(&mut s).await {
                STX => {
                    frames.push(read_frame_rest(&mut s).await);
                    write(&mut s, &[ACK]).await;
                }
                EOT => break,
                b => panic!("unexpected {b:#04x}"),
            }
        }
        frames
    });
    let dest = format!("tcp://{addr}");
    let out = run_ok(&["--push", &dest, "--template", "stago_start4", "--seed", "1"]).await;
    let frames = receiver.await.unwrap();
    // One record per frame, ETB on each but the last (the reference's push framer), H first,
    // L last.
    assert_eq!(frames.len(), 9, "H, P, O, 5 R, L");
    assert!(frames[0].starts_with(b"\x021H|\\^&|"));
    assert!(frames[..8].iter().all(|f| f[f.len() - 5] == 0x17));
    assert_eq!(frames[8][frames[8].len() - 5], 0x03);
    assert_eq!(frames[7][1], b'0', "FN wraps 7 -> 0");
    assert!(frames[8].starts_with(b"\x021L|1|N\r"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("summary: sent 1, failed 0"), "{stderr}");
}

#[test]
fn failed_pushes_give_a_summary_and_a_non_zero_exit() {
    let out = run(&[
        "--push",
        "tcp://127.0.0.1:1",
        "--template",
        "stago_start4",
        "-c",
        "2",
        "-i",
        "0",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("summary: sent 0, failed 2"), "{stderr}");
    assert!(
        stderr.contains("connection refused by 127.0.0.1:1"),
        "{stderr}"
    );
}

#[test]
fn dry_run_is_byte_identical_for_a_seed() {
    let args = [
        "--push",
        "tcp://127.0.0.1:1",
        "--template",
        "horiba_pentra60",
        "--seed",
        "5",
        "--dry-run",
    ];
    let a = run(&args);
    let b = run(&args);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8(a.stdout).unwrap();
    assert!(
        text.starts_with("H|\\^&|") && text.ends_with("L|1|N\n"),
        "{text}"
    );
    // Without --push, -c counts too.
    let three = run(&["--template", "horiba_pentra60", "--dry-run", "-c", "3"]);
    assert!(three.status.success());
    let three = String::from_utf8(three.stdout).unwrap();
    assert_eq!(three.matches("H|\\^&|").count(), 3, "{three}");
    assert_eq!(three.matches("L|1|N\n").count(), 3, "{three}");
    let qc = run(&[
        "--template",
        "horiba_micros60",
        "--qc",
        "--qc-deviation",
        "3.5",
        "--dry-run",
        "--layout",
        "openelis",
        "--seed",
        "1",
    ]);
    let qc = String::from_utf8(qc.stdout).unwrap();
    assert!(qc.contains("R|1|^^^WBC|7.29|"), "{qc}");
    assert!(qc.contains("Q|1|WBC^LOT-WBC-N^N|7.29|"), "{qc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_push_waits_for_an_accepting_ack() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = lis.local_addr().unwrap();
    tokio::spawn(mllp_hl7::serve(
        lis,
        MllpCodec::new(),
        |frame: MllpFrame| async move { mllp_hl7::auto_ack(&frame) },
    ));
    let dest = format!("mllp://{addr}");
    run_ok(&[
        "--hl7",
        "--hl7-template",
        "mindray_bs200",
        "--push",
        &dest,
        "--qc",
        "--qc-deviation",
        "3.5",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_listener_acks_pipelined_messages_and_turns_orm_into_oru() {
    let results = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = results.local_addr().unwrap().port().to_string();
    let mut cmd = command(&["--listen", "0=mindray_bc5380", "-d", "0"]);
    cmd.env("ORDER_RESULT_PUSH_HOST", "127.0.0.1")
        .env("ORDER_RESULT_PUSH_PORT", &port);
    let sim = Sim::start_with(cmd);
    let stream = connect(sim.port_of("mindray_bc5380")).await;
    let mut framed = Framed::new(stream, MllpCodec::new());
    let orm = |id: &str| {
        format!(
            "MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||ORM^O01|{id}|P|2.3.1\rPID|1||P1\rORC|NW|PL-{id}|\rOBR|1|PL-{id}|FI-{id}|^^^WBC^White cells\r"
        )
    };
    // Two messages in one write (pipelining).
    let mut both = Vec::new();
    for id in ["C1", "C2"] {
        both.push(0x0b);
        both.extend_from_slice(orm(id).as_bytes());
        both.extend_from_slice(b"\x1c\r");
    }
    let inner = framed.get_mut();
    tokio::io::AsyncWriteExt::write_all(inner, &both)
        .await
        .unwrap();
    for id in ["C1", "C2"] {
        let frame = tokio::time::timeout(WAIT, framed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let MllpFrame::Message(ack) = frame else {
            panic!("{frame:?}")
        };
        let ack = String::from_utf8_lossy(&ack).into_owned();
        assert!(ack.contains(&format!("MSA|AA|{id}")), "{ack}");
    }
    let (s, _) = tokio::time::timeout(WAIT, results.accept())
        .await
        .unwrap()
        .unwrap();
    let mut lis = Framed::new(s, MllpCodec::new());
    let frame = tokio::time::timeout(WAIT, lis.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let MllpFrame::Message(oru) = frame.clone() else {
        panic!("{frame:?}")
    };
    let text = String::from_utf8_lossy(&oru).into_owned();
    assert!(text.contains("ORU^R01"), "{text}");
    assert!(text.contains("OBR|1|PL-C"), "{text}");
    let obx: Vec<&str> = text.split('\r').filter(|s| s.starts_with("OBX|")).collect();
    assert_eq!(obx.len(), 1, "{text}");
    assert!(obx[0].starts_with("OBX|1|NM|WBC^"), "{text}");
    if let Some(mllp_hl7::Response::Message(m)) = mllp_hl7::auto_ack(&frame) {
        lis.send(&m[..]).await.unwrap();
    }
}

/// A BC-5380 port with `--order-results link` (and `extra`), and an MLLP connection to it.
async fn bc5380_on_the_link(extra: &[&str]) -> (Sim, Framed<tokio::net::TcpStream, MllpCodec>) {
    let mut args = vec![
        "--listen",
        "0=mindray_bc5380",
        "-d",
        "0",
        "--order-results",
        "link",
    ];
    args.extend_from_slice(extra);
    let sim = Sim::start(&args);
    let stream = connect(sim.port_of("mindray_bc5380")).await;
    (sim, Framed::new(stream, MllpCodec::new()))
}

/// Sends `orm` to a BC-5380 port with `--order-results link` and returns the ACK and the ORU
/// that come back on the same connection (the ORU must be UTF-8).
async fn orm_on_the_link(orm: &[u8], extra: &[&str]) -> (String, String) {
    let (_sim, mut framed) = bc5380_on_the_link(extra).await;
    framed.send(orm).await.unwrap();
    let ack = String::from_utf8_lossy(&next_message(&mut framed).await).into_owned();
    let oru = String::from_utf8(next_message(&mut framed).await.to_vec()).unwrap();
    (ack, oru)
}

/// The fields of the first `id` segment of `message` (`|` separated).
fn segment_fields(message: &str, id: &str) -> Vec<String> {
    message
        .split('\r')
        .find(|s| s.starts_with(id))
        .unwrap_or_else(|| panic!("no {id} in {message}"))
        .split('|')
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orm_placer_filler_and_patient_are_echoed_by_value() {
    // Placer "PL&7" (escaped as the standard says) with a namespace component, filler with
    // the message's own delimiters: `#` fields, `:` components. The patient likewise.
    let orm = "MSH#:~\\&#LIS#LAB#MINDRAY#BC-5380#20260101##ORM:O01#C9#P#2.3.1\r\
               PID#1##P1:::LIS:MR~P2##O\\T\\BRIEN:ANNÉ##19700101#F\r\
               ORC#NW#PL\\T\\7:OE#\rOBR#1#PL\\T\\7:OE#FI-9:OE#:::WBC:White cells\r";
    let (ack, oru) = orm_on_the_link(orm.as_bytes(), &[]).await;
    assert!(ack.contains("MSA#AA#C9"), "{ack}");
    let segment = |id: &str| segment_fields(&oru, id);
    // The ORU uses `|^~\&`: the entity identifiers whole, namespace included (the LIS
    // matches on both), "PL&7" escaped once.
    assert_eq!(segment("ORC|")[2..4], ["PL\\T\\7^OE", "FI-9^OE"], "{oru}");
    assert_eq!(segment("OBR|")[2..4], ["PL\\T\\7^OE", "FI-9^OE"], "{oru}");
    // OBR-4 is the service ordered, in the ORU's delimiters (it was the template's panel).
    assert_eq!(segment("OBR|")[4], "^^^WBC^White cells", "{oru}");
    assert!(segment("OBX|")[3].starts_with("WBC^"), "{oru}");
    // The ORU names the patient ordered for (the first identifier's ID); it used to name the
    // template's.
    assert_eq!(
        segment("PID|")[..9],
        [
            "PID",
            "1",
            "",
            "P1",
            "",
            "O\\T\\BRIEN^ANNÉ",
            "",
            "19700101",
            "F"
        ],
        "{oru}"
    );
}

/// An OBR-4 in the standard CE form, the analyzer's code first and a LOINC code as the
/// alternate identifier, orders the analyzer's test. The code was taken from component 4
/// whatever it held, so the LOINC code was reported as a test not performed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_obr_4_naming_the_test_in_component_1_orders_it() {
    let orm = b"MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||ORM^O01|C8|P|2.3.1\r\
        PID|1||P8\rORC|NW|PL-8|\rOBR|1|PL-8|FI-8|WBC^White cells^L^6690-2^Leukocytes^LN\r";
    let (ack, oru) = orm_on_the_link(orm, &[]).await;
    assert!(ack.contains("MSA|AA|C8"), "{ack}");
    let obx: Vec<&str> = oru.split('\r').filter(|s| s.starts_with("OBX|")).collect();
    assert_eq!(obx.len(), 1, "{oru}");
    assert!(obx[0].starts_with("OBX|1|NM|WBC^"), "{oru}");
    assert!(!oru.contains("NOT PERFORMED"), "{oru}");
}

/// An ORM in Latin-1 (MSH-18 `8859/1`) gets its patient's name back as text in the UTF-8 ORU:
/// `É` was read as invalid UTF-8 and came back as U+FFFD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latin1_orm_patient_is_echoed_as_text() {
    let orm: &[u8] =
        b"MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||ORM^O01|C7|P|2.3.1||||||8859/1\r\
        PID|1||P7||REN\xc9^L\xc9A\rORC|NW|PL-7|\rOBR|1|PL-7|FI-7|^^^WBC^White cells\r";
    let (_, oru) = orm_on_the_link(orm, &[]).await;
    assert_eq!(
        segment_fields(&oru, "PID|")[..6],
        ["PID", "1", "", "P7", "", "RENÉ^LÉA"],
        "{oru}"
    );
}

/// Enhanced mode (HL7 v2.5 §2.9.3.2): an accept ACK (CA) as MSH-15 asks, then the application
/// ACK as MSH-16 asks. Only the CA was sent, so a LIS asking for the application ACK (MSH-16
/// `AL`) never got it, and one sending `NE|AL` or `ER|AL` got nothing and waited for its
/// timeout. Each message's replies come before the next message's: the original-mode message
/// at the end is answered next, so no reply was left over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_mode_senders_get_the_acknowledgements_msh15_and_msh16_ask_for() {
    let (_sim, mut framed) = bc5380_on_the_link(&[]).await;
    for (modes, replies) in [
        (
            "AL|AL",
            &["ACK^R01^ACK|*|MSA|CA", "ACK^R01^ACK|*|MSA|AA"][..],
        ),
        ("NE|AL", &["ACK^R01^ACK|*|MSA|AA"][..]),
        ("ER|AL", &["ACK^R01^ACK|*|MSA|AA"][..]),
        ("AL|NE", &["ACK^R01^ACK|*|MSA|CA"][..]),
        ("AL|ER", &["ACK^R01^ACK|*|MSA|CA"][..]),
        ("|", &["ACK^R01^ACK|*|MSA|AA"][..]),
    ] {
        let id = format!("M-{}", modes.replace('|', "-"));
        let oru = format!(
            "MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||ORU^R01^ORU_R01|{id}|P|2.5.1|||{modes}\r\
             PID|1||P1\rOBR|1|PL-1||WBC\rOBX|1|NM|WBC||5.0\r"
        );
        framed.send(oru.as_bytes()).await.unwrap();
        for expected in replies {
            let (kind, msa) = expected.split_once("|*|").unwrap();
            let ack = String::from_utf8_lossy(&next_message(&mut framed).await).into_owned();
            assert!(ack.contains(&format!("||{kind}|")), "{modes}: {ack}");
            assert!(ack.contains(&format!("{msa}|{id}|")), "{modes}: {ack}");
        }
    }
}

/// In enhanced mode (MSH-15/16 valued) an OML gets the accept ACK (CA, a plain ACK) as MSH-15
/// asks, then its ORL^O34 (the application ACK) as MSH-16 asks; in original mode the ORL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enhanced_mode_oml_gets_a_commit_ack() {
    let (_sim, mut framed) = bc5380_on_the_link(&[]).await;
    let oml = "MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||OML^O33^OML_O33|E1|P|2.5.1|||AL|NE\r\
               PID|1||P1\rORC|NW|PL-1|\rOBR|1|PL-1||WBC^White cells\r";
    framed.send(oml.as_bytes()).await.unwrap();
    let ack = String::from_utf8_lossy(&next_message(&mut framed).await).into_owned();
    assert!(ack.contains("||ACK^O33^ACK|"), "{ack}");
    assert!(ack.contains("MSA|CA|E1"), "{ack}");
    let oru = String::from_utf8_lossy(&next_message(&mut framed).await).into_owned();
    assert!(oru.contains("||ORU^R01|"), "{oru}");
    let both = oml.replace("|E1|P|2.5.1|||AL|NE", "|E3|P|2.5.1|||AL|AL");
    framed.send(both.as_bytes()).await.unwrap();
    let ack = String::from_utf8_lossy(&next_message(&mut framed).await).into_owned();
    assert!(ack.contains("||ACK^O33^ACK|"), "{ack}");
    assert!(ack.contains("MSA|CA|E3"), "{ack}");
    let orl = String::from_utf8_lossy(&next_message(&mut framed).await).into_owned();
    assert!(orl.contains("||ORL^O34^ORL_O34|"), "{orl}");
    assert!(orl.contains("MSA|AA|E3"), "{orl}");
    let oru = String::from_utf8_lossy(&next_message(&mut framed).await).into_owned();
    assert!(oru.contains("||ORU^R01|"), "{oru}");
    let oml = oml.replace("|E1|P|2.5.1|||AL|NE", "|E2|P|2.5.1");
    framed.send(oml.as_bytes()).await.unwrap();
    let ack = String::from_utf8_lossy(&next_message(&mut framed).await).into_owned();
    assert!(ack.contains("||ORL^O34^ORL_O34|"), "{ack}");
    assert!(ack.contains("MSA|AA|E2"), "{ack}");
}

/// `--charset latin-1`: the ORU echoes the patient in Latin-1 bytes and says so in MSH-18
/// (`8859/1`), so the LIS decodes `ZOË` from 0xCB; a character Latin-1 lacks is sent as `?`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latin1_oru_says_8859_1_in_msh18() {
    let (_sim, mut framed) = bc5380_on_the_link(&["--charset", "latin-1"]).await;
    let orm = "MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||ORM^O01|C8|P|2.5.1||||||UNICODE UTF-8\r\
               PID|1||P8||ZOË^ΑΘΗΝΑ\rORC|NW|PL-8|\rOBR|1|PL-8|FI-8|^^^WBC^White cells\r";
    framed.send(orm.as_bytes()).await.unwrap();
    let ack = next_message(&mut framed).await;
    assert!(contains(&ack, b"MSA|AA|C8"), "{ack:?}");
    let oru = next_message(&mut framed).await;
    assert!(contains(&oru, b"|ZO\xCB^?????|"), "{oru:?}");
    let message = mllp_hl7::Message::parse(&oru).unwrap();
    assert_eq!(message.charset(), Ok(mllp_hl7::Charset::Latin1));
    let pid = message.segment(b"PID").unwrap();
    let name = pid
        .field(5)
        .unwrap()
        .text(mllp_hl7::Charset::Latin1)
        .unwrap();
    assert_eq!(name, "ZOË^?????");
}

/// An HTTP push in `--charset latin-1` sends Latin-1 bytes (the legacy messages' `μL` as
/// 0xB5) and says so: `text/plain; charset=iso-8859-1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_push_names_its_charset() {
    let (base, requests) = http_recorder().await;
    run_ok(&["--push", &base, "--charset", "latin-1", "--seed", "1"]).await;
    let requests = requests.lock().unwrap();
    let Recorded {
        content_type, body, ..
    } = &requests[0];
    assert_eq!(
        content_type.as_deref(),
        Some("text/plain; charset=iso-8859-1")
    );
    assert!(
        contains(body, b"|10^3/\xB5L|"),
        "{:?}",
        String::from_utf8_lossy(body)
    );
    assert!(!contains(body, b"\r"), "LF-separated records");
}

/// A template names the encoding its instrument writes (`protocol.encoding`): pushes of it
/// are Latin-1 without any option, and `--charset` overrides the template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_sets_the_encoding_and_charset_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let stago = include_str!("../../../templates/stago_start4.json");
    let mut template: serde_json::Value = serde_json::from_str(stago).unwrap();
    template["protocol"]["encoding"] = "ISO-8859-1".into();
    template["testPatient"]["name"] = "RENÉ^ZOË".into();
    let file = dir.path().join("stago_start4.json");
    std::fs::write(&file, template.to_string()).unwrap();
    let templates = dir.path().display().to_string();
    let (base, requests) = http_recorder().await;
    for extra in [&[][..], &["--charset", "utf-8"]] {
        let mut args = vec![
            "--push",
            &base,
            "--templates-dir",
            &templates,
            "--template",
            "stago_start4",
        ];
        args.extend_from_slice(extra);
        run_ok(&args).await;
    }
    let requests = requests.lock().unwrap();
    let latin1 = &requests[0];
    assert_eq!(
        latin1.content_type.as_deref(),
        Some("text/plain; charset=iso-8859-1")
    );
    assert!(
        contains(&latin1.body, b"|REN\xC9^ZO\xCB"),
        "{:?}",
        String::from_utf8_lossy(&latin1.body)
    );
    let utf8 = &requests[1];
    assert_eq!(
        utf8.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        contains(&utf8.body, "|RENÉ^ZOË".as_bytes()),
        "{:?}",
        String::from_utf8_lossy(&utf8.body)
    );
}

/// An unknown `--charset` is refused before anything starts, naming the ones there are.
#[test]
fn an_unknown_charset_is_refused() {
    let out = run(&["--charset", "ebcdic", "--dry-run"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--charset") && stderr.contains("utf-8, latin-1, latin-9, ascii"),
        "{stderr}"
    );
}

/// An order group whose ORC-1 withdraws it (CA cancel, DC discontinue, HD hold, ...) gets
/// no results: an ORM cancelling its only order was answered with an ORU, and a message
/// mixing a cancelled and a new order reported both. OML^O21 (the v2.5 lab order) is an
/// order too, acknowledged with ORL^O22 (it got ACK^O21).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawn_order_groups_get_no_results() {
    let (_sim, mut framed) = bc5380_on_the_link(&[]).await;
    let cancel = "MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||ORM^O01|C1|P|2.3.1\r\
                  PID|1||P1\rORC|CA|PL-1|\rOBR|1|PL-1||^^^WBC^White cells\r";
    framed.send(cancel.as_bytes()).await.unwrap();
    let ack = String::from_utf8_lossy(&next_message(&mut framed).await).into_owned();
    assert!(ack.contains("MSA|AA|C1"), "{ack}");
    // An ORM gets the reference's ACK^O01.
    assert!(ack.contains("||ACK^O01|"), "{ack}");
    let mixed = "MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||OML^O21^OML_O21|C2|P|2.5.1\r\
                 PID|1||P2\r\
                 ORC|CA|PL-2A|\rOBR|1|PL-2A||RBC^Red cells\r\
                 ORC|NW|PL-2B|\rOBR|2|PL-2B||WBC^White cells\r";
    framed.send(mixed.as_bytes()).await.unwrap();
    // The next message is the second ACK: the cancel got no ORU.
    let ack = String::from_utf8_lossy(&next_message(&mut framed).await).into_owned();
    assert!(ack.contains("MSA|AA|C2"), "{ack}");
    // An OML^O21 is answered by the ORL^O22 its trigger defines.
    assert!(ack.contains("||ORL^O22^ORL_O22|"), "{ack}");
    let oru = String::from_utf8(next_message(&mut framed).await.to_vec()).unwrap();
    assert_eq!(segment_fields(&oru, "ORC|")[2], "PL-2B", "{oru}");
    let obx: Vec<&str> = oru.split('\r').filter(|s| s.starts_with("OBX|")).collect();
    assert_eq!(obx.len(), 1, "{oru}");
    assert!(obx[0].starts_with("OBX|1|NM|WBC^"), "{oru}");
}

/// An ORM placing two orders gets each order's results under its own ORC/OBR (its placer
/// number, OBX-1 from 1 under each OBR), so the LIS files each result under the order that
/// asked for it: every OBX came under the first order's numbers. With `--layout openelis`
/// the reference's single group stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_order_of_an_orm_gets_its_own_group() {
    let orm = b"MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||ORM^O01|C3|P|2.3.1\r\
        PID|1||P3\r\
        ORC|NW|PL-A|\rOBR|1|PL-A||^^^WBC^White cells\r\
        ORC|NW|PL-B|\rOBR|2|PL-B||^^^RBC^Red cells\r\
        OBR|3|PL-B||^^^HGB^Haemoglobin\r";
    let (_, oru) = orm_on_the_link(orm, &[]).await;
    let groups: Vec<(String, String)> = oru
        .split('\r')
        .filter(|s| s.starts_with("OBR|") || s.starts_with("OBX|"))
        .map(|s| {
            let f: Vec<&str> = s.split('|').collect();
            (
                f[0..3].join("|"),
                f[3].split('^').next().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("OBR|1|PL-A", ""),
        ("OBX|1|NM", "WBC"),
        ("OBR|2|PL-B", ""),
        ("OBX|1|NM", "RBC"),
        ("OBX|2|NM", "HGB"),
    ];
    let got: Vec<(&str, &str)> = groups
        .iter()
        .map(|(a, b)| {
            (
                a.as_str(),
                if a.starts_with("OBR") { "" } else { b.as_str() },
            )
        })
        .collect();
    assert_eq!(got, expected, "{oru}");
    let orcs: Vec<String> = oru
        .split('\r')
        .filter(|s| s.starts_with("ORC|"))
        .map(|s| s.split('|').nth(2).unwrap().to_owned())
        .collect();
    assert_eq!(orcs, ["PL-A", "PL-B"], "{oru}");
    let (_, reference) = orm_on_the_link(orm, &["--layout", "openelis"]).await;
    let obr: Vec<&str> = reference
        .split('\r')
        .filter(|s| s.starts_with("ORC|") || s.starts_with("OBR|"))
        .collect();
    assert_eq!(obr.len(), 2, "{reference}");
    assert!(obr[1].starts_with("OBR|1|PL-A|"), "{reference}");
    assert_eq!(reference.matches("\rOBX|").count(), 3, "{reference}");
}

/// What the HTTP stub saw.
type Seen = Arc<Mutex<Vec<(Option<String>, String, String)>>>;

/// Serves [`stub`] on a fresh loopback port, recording into `seen`; its base URL.
async fn serve_stub(seen: &Seen) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, stub(Arc::clone(seen))).into_future());
    format!("http://{addr}")
}

fn stub(seen: Seen) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode, Uri};
    axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
        let seen = Arc::clone(&seen);
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let ok = auth.as_deref() == Some("Basic dXNlcjpwYXNz");
            seen.lock()
                .unwrap()
                .push((auth, uri.path().to_owned(), body));
            if ok {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_push_with_basic_auth() {
    let seen: Seen = Arc::default();
    let base = serve_stub(&seen).await;
    run_ok(&[
        "--push",
        &base,
        "--template",
        "stago_start4",
        "--user",
        "user",
        "--password",
        "pass",
    ])
    .await;
    let out = run_to_end(&["--push", &base, "--template", "stago_start4"]).await;
    assert!(!out.status.success(), "no credentials -> 401 -> failure");
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].1, "/api/OpenELIS-Global/analyzer/astm");
    assert!(
        seen[0].2.starts_with("H|\\^&|") && seen[0].2.contains("\nL|1|N\n"),
        "{}",
        seen[0].2
    );
}

/// `--user/--password` go to `--push`'s origin and to each `--auth-origin`, never to an origin
/// an API caller names: the API (on 0.0.0.0 in the container image) must not hand them out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_only_to_the_configured_origins() {
    let seen: Seen = Arc::default();
    let base = serve_stub(&seen).await;
    let body = format!(r#"{{"destination":"{base}"}}"#);
    let credentials = ["--user", "user", "--password", "pass"];

    // No origin configured: the API's destination gets no credentials, and the failure
    // says why and what to add.
    let sim = api_sim(&credentials);
    let (status, v) = post_json(&sim.api_url("/simulate/astm/stago_start4"), body.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["pushed"], 0, "{v}");
    let error = v["results"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("status 401")
            && error.contains(&format!(
                "--user was not sent: {base} is not --push's origin nor an --auth-origin \
                 (add --auth-origin {base} to send it there)"
            )),
        "{error}"
    );
    drop(sim);
    assert_eq!(seen.lock().unwrap().last().unwrap().0, None);

    // The same origin named by --auth-origin (with a path and a trailing slash: only the
    // origin counts) gets them.
    let origin = format!("{base}/api/");
    let mut args = credentials.to_vec();
    args.extend([
        "--auth-origin",
        "http://other.invalid:1",
        "--auth-origin",
        &origin,
    ]);
    let sim = api_sim(&args);
    let (status, v) = post_json(&sim.api_url("/simulate/astm/stago_start4"), body.clone()).await;
    assert_eq!((status, v["pushed"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(
        seen.lock().unwrap().last().unwrap().0.as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
    // Another port of the same host is another origin.
    let elsewhere_base = serve_stub(&seen).await;
    let (_, v) = post_json(
        &sim.api_url("/simulate/astm/stago_start4"),
        format!(r#"{{"destination":"{elsewhere_base}"}}"#),
    )
    .await;
    assert_eq!(v["pushed"], 0, "{v}");
    assert_eq!(seen.lock().unwrap().last().unwrap().0, None);
    drop(sim);

    // The legacy push API: `--push`'s origin is in scope without --auth-origin.
    let mut legacy = command(&["--push", &base, "--api-port", "0", "-d", "0"]);
    legacy.args(credentials);
    let sim = Sim::start_with(legacy);
    let (status, v) = post_json(&sim.api_url("/push"), r#"{"count":1}"#.to_owned()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        seen.lock().unwrap().last().unwrap().0.as_deref(),
        Some("Basic dXNlcjpwYXNz"),
        "{v}"
    );
    drop(sim);

    // An empty variable (a compose file's `VAR=${X:-}`) or a trailing comma names nothing.
    let mut empty = command(&["--dry-run", "--template", "stago_start4"]);
    empty.env("SIMULATOR_PUSH_AUTH_ORIGINS", "");
    assert!(empty.output().unwrap().status.success());
    let mut trailing = command(&["--dry-run", "--template", "stago_start4"]);
    trailing.env("SIMULATOR_PUSH_AUTH_ORIGINS", "https://oe.example:8443,");
    assert!(trailing.output().unwrap().status.success());
    assert_refused(
        &[(
            &["--auth-origin", "oe.example:8443"],
            "--auth-origin \"oe.example:8443\" is not an http(s) URL: scheme oe.example:// is not http:// or https://",
        )],
        &["--dry-run", "--template", "stago_start4"],
    )
    .await;
}

struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((s, a)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(s).await {
                return (tls, a);
            }
        }
    }
    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An HTTPS stub serving `cert` on a free port; returns its base URL and what it received.
async fn https_stub(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> (String, Seen) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(axum::serve(listener, stub(Arc::clone(&seen))).into_future());
    (format!("https://{addr}"), seen)
}

/// Pushes one stago_start4 message to `base` with Basic auth and `extra` flags.
async fn https_push(base: &str, extra: &[&str]) -> std::process::Output {
    let args: Vec<String> = [
        "--push",
        base,
        "--user",
        "user",
        "--password",
        "pass",
        "--template",
        "stago_start4",
    ]
    .iter()
    .chain(extra)
    .map(|s| (*s).to_owned())
    .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_to_end(&refs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_push_verifies_the_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("lis.pem");
    std::fs::write(&pem, cert.cert.pem()).unwrap();
    let pem = pem.display().to_string();
    let (base, seen) = https_stub(&cert.cert, &cert.signing_key).await;

    let rejected = https_push(&base, &[]).await;
    assert!(!rejected.status.success());
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(
        stderr.contains("pass --ca-cert") && stderr.contains("--insecure"),
        "{stderr}"
    );
    let pinned = https_push(&base, &["--ca-cert", &pem]).await;
    assert!(
        pinned.status.success(),
        "{}",
        String::from_utf8_lossy(&pinned.stderr)
    );
    let insecure = https_push(&base, &["--insecure"]).await;
    assert!(
        insecure.status.success(),
        "{}",
        String::from_utf8_lossy(&insecure.stderr)
    );
    assert_eq!(seen.lock().unwrap().len(), 2);

    // A --ca-cert that is some other certificate: the hint does not tell the user to pass
    // the --ca-cert they passed.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other_pem = dir.path().join("other.pem");
    std::fs::write(&other_pem, other.cert.pem()).unwrap();
    let wrong = https_push(&base, &["--ca-cert", &other_pem.display().to_string()]).await;
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("the --ca-cert file must hold the server's certificate"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_push_to_a_server_with_a_ca_certificate_says_to_use_ca_false() {
    // What `openssl req -x509` makes by default: self-signed and CA:TRUE.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("lis.pem");
    std::fs::write(&pem, cert.pem()).unwrap();
    let (base, seen) = https_stub(&cert, &key).await;

    let out = https_push(&base, &["--ca-cert", &pem.display().to_string()]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CA certificate (CA:TRUE)") && stderr.contains("CA:FALSE"),
        "{stderr}"
    );
    assert!(seen.lock().unwrap().is_empty());
}

/// A simulator with its API on a free port (one ASTM port, stago_start4), plus `extra`.
async fn call(
    method: reqwest::Method,
    url: String,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = http().request(method, url);
    if let Some(b) = body {
        request = request
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_with_good_and_bad_input() {
    use reqwest::Method;
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_addr = lis.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = lis.accept().await else {
                break;
            };
            tokio::spawn(async move {
                let mut link = astm_frame::driver::LinkDriver::new(
                    s,
                    astm_frame::LinkConfig::new(astm_frame::Role::Computer),
                );
                while let Ok(Some(_)) = link.recv().await {}
            });
        }
    });
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().display().to_string();
    let sim = api_sim(&["--file-root", &root_path]);
    let u = |p: &str| sim.api_url(p);

    let (s, v) = call(Method::GET, u("/health"), None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")));
    let (s, v) = call(Method::GET, u("/"), None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")));

    let (s, v) = call(Method::GET, u("/simulate/astm/stago_start4"), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "generated");
    assert!(v["message"].as_str().unwrap().ends_with("L|1|N\n"));
    let (s, _) = call(Method::GET, u("/simulate/astm/nope"), None).await;
    assert_eq!(s, 404);
    let (s, _) = call(Method::GET, u("/simulate/astm/mindray_bc5380"), None).await;
    assert_eq!(s, 400, "HL7 template on the ASTM route");

    let body = format!(
        r#"{{"destination":"tcp://{lis_addr}","count":2,"sample_id":"DEV01269900000000042"}}"#
    );
    let (s, v) = call(Method::POST, u("/simulate/astm/stago_start4"), Some(&body)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["pushed"], 2, "{v}");
    assert_eq!(v["results"][0]["sample_id"], "DEV01269900000000042");
    assert_eq!(v["results"][0]["pushed"], true);
    for bad in [
        r#"{"count":"abc"}"#,
        r#"{"count":true}"#,
        r#"{"sample_id":"BAD"}"#,
        "{not json",
        r#"{"qc":true}"#,
    ] {
        let (s, v) = call(Method::POST, u("/simulate/astm/mindray_ba88a"), Some(bad)).await;
        if bad.contains("qc") {
            // mindray_ba88a has qc_controls: QC works; use a template without them.
            assert_eq!(s, 200, "{bad}: {v}");
            let (s, v) = call(
                Method::POST,
                u("/simulate/astm/genexpert_astm"),
                Some(r#"{"qc":true,"destination":"tcp://127.0.0.1:1"}"#),
            )
            .await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["results"][0]["pushed"], false);
            continue;
        }
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(v["error"].is_string());
    }

    let (s, v) = call(
        Method::GET,
        u("/simulate/hl7/mindray_bc5380?sampleId=DEV01264000000000007"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["sample_id"], "DEV01264000000000007");
    assert!(v["messageId"].as_str().unwrap().starts_with("MSG-SIM"));
    let (s, _) = call(
        Method::GET,
        u("/simulate/hl7/mindray_bc5380?sampleId=BAD"),
        None,
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(Method::GET, u("/simulate/hl7/stago_start4"), None).await;
    assert_eq!(s, 400);
    let (s, v) = call(
        Method::POST,
        u("/simulate/hl7/mindray_bs200"),
        Some(r#"{"qc":true,"qc_deviation":3.5,"count":2}"#),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    assert_eq!(v["qc_deviation"], 3.5);
    // As the reference: a deviation without QC is not echoed.
    let (s, v) = call(
        Method::POST,
        u("/simulate/hl7/mindray_bs200"),
        Some(r#"{"qc":false,"qc_deviation":3.5,"count":2}"#),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["qc"], false);
    assert!(v["qc_deviation"].is_null(), "{v}");
    let (s, _) = call(
        Method::POST,
        u("/simulate/hl7/mindray_bs200"),
        Some(r#"{"count":"abc"}"#),
    )
    .await;
    assert_eq!(s, 400);

    let (s, v) = call(Method::GET, u("/simulate/file/quantstudio7"), None).await;
    assert_eq!(s, 200, "{v}");
    let body = format!(r#"{{"target_dir":"{root_path}","filename":"run1.csv"}}"#);
    let (s, v) = call(Method::POST, u("/simulate/file/tecan_f50"), Some(&body)).await;
    assert_eq!(s, 200, "{v}");
    assert!(std::path::Path::new(v["written_path"].as_str().unwrap()).exists());
    let (s, _) = call(
        Method::POST,
        u("/simulate/file/tecan_f50"),
        Some(r#"{"target_dir":"/etc"}"#),
    )
    .await;
    assert_eq!(s, 400, "outside the roots");
    // As the reference: a name with a path is written under its last component, in
    // target_dir; a name that is no file name is refused.
    let body = format!(r#"{{"target_dir":"{root_path}","filename":"../evil.csv"}}"#);
    let (s, w) = call(Method::POST, u("/simulate/file/tecan_f50"), Some(&body)).await;
    assert_eq!(s, 200, "{w}");
    assert_eq!(
        std::path::Path::new(w["written_path"].as_str().unwrap()),
        root.path().canonicalize().unwrap().join("evil.csv")
    );
    for name in ["..", "sub/", "a\u{0}b"] {
        let body = serde_json::json!({"target_dir": root_path, "filename": name}).to_string();
        let (s, w) = call(Method::POST, u("/simulate/file/tecan_f50"), Some(&body)).await;
        assert_eq!(s, 400, "{name:?}: {w}");
    }
    // A target_dir under the roots that is a file: it used to be told to be under the roots.
    let file = v["written_path"].as_str().unwrap().to_owned();
    let body = format!(r#"{{"target_dir":"{file}"}}"#);
    let (s, v) = call(Method::POST, u("/simulate/file/tecan_f50"), Some(&body)).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        v["error"],
        format!("target_dir {file:?} is not a directory"),
        "{v}"
    );
    let (s, _) = call(
        Method::GET,
        u("/simulate/file/..%2F..%2Fetc%2Fpasswd"),
        None,
    )
    .await;
    assert_eq!(s, 400);

    let (s, v) = call(
        Method::POST,
        u(&format!(
            "/push?template=stago_start4&count=2&destination=tcp://{lis_addr}"
        )),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["total"].as_u64(), v["successful"].as_u64()),
        (Some(2), Some(2))
    );

    let (s, v) = call(Method::GET, u("/nowhere"), None).await;
    assert_eq!(s, 404);
    assert!(v["error"].is_string());
    // A known route with the wrong method, or a route without its template name: JSON too.
    let (s, v) = call(Method::DELETE, u("/simulate/astm/stago_start4"), None).await;
    assert_eq!(s, 405);
    assert_eq!(
        v["error"],
        "Method not allowed: DELETE /simulate/astm/stago_start4"
    );
    let (s, v) = call(Method::GET, u("/push"), None).await;
    assert_eq!(s, 405);
    assert!(v["error"].is_string());
    for (route, error) in [
        ("/simulate/astm/", "Missing template name"),
        ("/simulate/hl7/", "Missing analyzer name"),
        ("/simulate/file/", "Missing template name"),
    ] {
        let (s, v) = call(Method::GET, u(route), None).await;
        assert_eq!((s, v["error"].as_str()), (400, Some(error)), "{route}");
    }
    let (s, v) = call(Method::GET, u("/received?limit=5"), None).await;
    assert_eq!(s, 200);
    assert!(v.is_array());
    let (s, _) = call(Method::GET, u("/received?limit=x"), None).await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_from_the_environment_that_cannot_be_one_is_an_error_naming_the_variable() {
    // A bad QC_DEFAULT_HL7_DESTINATION was a per-message error quoting a URL the client never
    // sent; a bad BRIDGE_URL a 502 "Bridge upload failed ... builder error"; a bad OE_URL a 400
    // blaming the analyzer name.
    let mut cmd = api_command(&[]);
    cmd.env("QC_DEFAULT_HL7_DESTINATION", "mllp://bridge")
        .env("BRIDGE_URL", "bridge:8443")
        .env("OE_URL", "oe url");
    let sim = Sim::start_with(cmd);
    let cases = [
        (
            "/simulate/hl7/mindray_bs200",
            r#"{"qc": true}"#,
            "QC_DEFAULT_HL7_DESTINATION: invalid MLLP destination (missing port): mllp://bridge; \
             fix the simulator's environment",
        ),
        (
            "/simulate/file/tecan_f50",
            r#"{"bridge_upload": {"analyzer_id": "3"}}"#,
            "BRIDGE_URL \"bridge:8443\" is not an http(s) URL: scheme bridge:// is not http:// \
             or https://; fix the simulator's environment or pass bridge_upload.bridge_url",
        ),
        (
            "/simulate/file/tecan_f50",
            r#"{"bridge_upload": {"bridge_url": "http://127.0.0.1:1"}}"#,
            "OE_URL \"oe url\" is not an http(s) URL: relative URL without a base; fix the \
             simulator's environment or pass bridge_upload.oe_url",
        ),
    ];
    for (route, body, expected) in cases {
        let response = http()
            .post(sim.api_url(route))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let v: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!((status, v["error"].as_str()), (500, Some(expected)), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qc_default_source_ip_that_is_no_address_is_an_error_naming_the_variable() {
    // It was dropped without a word, and the QC message went out from whatever address the
    // host picked: the bridge, which tells analyzers apart by source IP, would misattribute it.
    let mut cmd = api_command(&[]);
    cmd.env("QC_DEFAULT_ASTM_SOURCE_IP", "10.42.20")
        .env("QC_DEFAULT_ASTM_DESTINATION", "tcp://127.0.0.1:1")
        .env("QC_DEFAULT_HL7_SOURCE_IP", " 127.0.0.1 ")
        .env("QC_DEFAULT_HL7_DESTINATION", "mllp://127.0.0.1:1");
    let sim = Sim::start_with(cmd);
    let post = |route: &'static str| {
        let url = sim.api_url(route);
        async move {
            let response = http()
                .post(url)
                .header("content-type", "application/json")
                .body(r#"{"qc": true}"#)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let v: serde_json::Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap();
            (status, v)
        }
    };
    let (s, v) = post("/simulate/astm/genexpert_astm").await;
    assert_eq!(s, 500, "{v}");
    assert_eq!(
        v["error"],
        "QC_DEFAULT_ASTM_SOURCE_IP \"10.42.20\" is not an IP address; fix the simulator's environment"
    );
    // Surrounding spaces (a compose file's) are not a mistake.
    let (s, v) = post("/simulate/hl7/mindray_bs200").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["destination"], "mllp://127.0.0.1:1", "{v}");
    assert!(
        v["results"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1:1")),
        "{v}"
    );
}

/// An empty `destination` is no destination, as the reference's `if destination:` reads it
/// (a form or a harness that sends every key, empty ones included): nothing is pushed, and a
/// QC message goes to the QC default. It was taken for an HTTP URL and failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_destination_is_no_destination() {
    let mut cmd = api_command(&[]);
    cmd.env("QC_DEFAULT_HL7_DESTINATION", "mllp://127.0.0.1:1")
        .env("QC_DEFAULT_HL7_SOURCE_IP", "127.0.0.1");
    let sim = Sim::start_with(cmd);
    let (s, v) = post_json(
        &sim.api_url("/simulate/astm/stago_start4"),
        r#"{"destination": "", "count": 2}"#.to_owned(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["pushed"], serde_json::Value::Null, "{v}");
    assert_eq!(v["destination"], serde_json::Value::Null, "{v}");
    assert!(v["results"][0]["error"].is_null(), "{v}");
    let (s, v) = post_json(
        &sim.api_url("/simulate/hl7/mindray_bs200"),
        r#"{"destination": "", "qc": true}"#.to_owned(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["destination"], "mllp://127.0.0.1:1", "{v}");
}

/// An empty `sampleId` / `sample_id` or `patientId` is none, as the reference reads them
/// (`get("sampleId") or get("sample_id")`; `parse_qs` drops blank query values): an accession
/// is minted. A harness that sends every key, empty ones included, got a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_sample_id_or_patient_id_is_none_as_in_the_reference() {
    let sim = api_sim(&[]);
    for (url, body) in [
        ("/simulate/astm/stago_start4", r#"{"sample_id": ""}"#),
        (
            "/simulate/hl7/mindray_bs200",
            r#"{"sampleId": "", "patientId": "", "count": 2}"#,
        ),
    ] {
        let (s, v) = post_json(sim.api_url(url), body).await;
        assert_eq!(s, 200, "POST {url} {body}: {v}");
        let minted = v["results"][0]["sample_id"].as_str().unwrap_or_default();
        assert!(minted.starts_with("DEV01") && minted.len() == 20, "{v}");
    }
    // An empty `sampleId` falls through to `sample_id`, as Python's `or` does.
    let (s, v) = post_json(
        sim.api_url("/simulate/hl7/mindray_bs200"),
        r#"{"sampleId": "", "sample_id": "DEV01260000000000042"}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sample_id"], "DEV01260000000000042", "{v}");
    for url in [
        "/simulate/astm/stago_start4?sampleId=",
        "/simulate/hl7/mindray_bs200?sampleId=&patientId=",
    ] {
        let reply = http().get(sim.api_url(url)).send().await.unwrap();
        let status = reply.status().as_u16();
        let text = reply.text().await.unwrap();
        assert_eq!(status, 200, "GET {url}: {text}");
    }
    // A sample id that is there but wrong is still refused.
    let (s, v) = post_json(
        sim.api_url("/simulate/astm/stago_start4"),
        r#"{"sample_id": "BAD"}"#,
    )
    .await;
    assert_eq!(s, 400, "{v}");
}

/// `qc_deviation` is read as the reference reads it, with `float()`: `"3.5"` is 3.5 SD (as
/// `count` is read with `int()`). Text that is no number is still a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_numeric_string_qc_deviation_is_read_as_a_number() {
    let sim = api_sim(&[]);
    let url = sim.api_url("/simulate/hl7/mindray_bs200");
    let (s, v) = post_json(url.clone(), r#"{"qc": true, "qc_deviation": "3.5"}"#).await;
    assert_eq!(s, 200, "{v}");
    let (_, number) = post_json(url.clone(), r#"{"qc": true, "qc_deviation": 3.5}"#).await;
    assert_eq!(v["qc_deviation"], number["qc_deviation"], "{v} {number}");
    let (s, v) = post_json(url, r#"{"qc": true, "qc_deviation": "lots"}"#).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("qc_deviation"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_key_the_route_does_not_read_is_logged_not_dropped_silently() {
    // `sampleID` for `sampleId` used to be ignored without a word: the message went out with
    // a generated accession. It is still ignored (the reference ignores unknown keys, and a
    // harness may send some), but the log says so.
    let sim = LoggedSim::start_with(api_command(&[]));
    let api = sim.sim.api.expect("API address");
    for (route, body) in [
        (
            "/simulate/astm/stago_start4",
            r#"{"sampleID": "DEV01266200000000042", "colour": 1}"#,
        ),
        ("/simulate/file/tecan_f50", r#"{"targetDir": "/tmp"}"#),
    ] {
        let response = http()
            .post(format!("http://{api}{route}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{route}");
    }
    let response = http()
        .get(format!(
            "http://{api}/simulate/astm/stago_start4?sampleid=DEV01266200000000042"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let stderr = sim.log_holding(&["query parameter \"sampleid\""]);
    for expected in [
        "POST /simulate/astm/stago_start4: body key \"sampleID\" is not one this route reads; ignored (did you mean \"sampleId\"?)",
        "POST /simulate/astm/stago_start4: body key \"colour\" is not one this route reads (known: count, destination,",
        "POST /simulate/file/tecan_f50: body key \"targetDir\" is not one this route reads; ignored (did you mean \"target_dir\"?)",
        "GET /simulate/astm/stago_start4: query parameter \"sampleid\" is not one this route reads; ignored (did you mean \"sampleId\"?)",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_a_json_object_says_why_and_where() {
    // It used to be a bare `Invalid JSON body`, whatever the mistake and wherever it was.
    let sim = api_sim(&[]);
    let cases: [(&str, &[&str]); 4] = [
        (
            "{\"count\": 2,}",
            &["Invalid JSON body: ", "trailing comma", "line 1 column 13"],
        ),
        (
            "{\"count\": 2,\n \"qc\": tru}",
            &["Invalid JSON body: ", "line 2"],
        ),
        (
            "[1, 2]",
            &["Invalid JSON body: expected an object", "got an array"],
        ),
        ("\"stago\"", &["Invalid JSON body: ", "got a string"]),
    ];
    for route in [
        "/simulate/astm/stago_start4",
        "/simulate/hl7/mindray_bc5380",
    ] {
        for (body, wanted) in cases {
            let response = http()
                .post(sim.api_url(route))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 400, "{route} {body}");
            let v: serde_json::Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap();
            let error = v["error"].as_str().unwrap_or_default();
            for part in wanted {
                assert!(error.contains(part), "{route} {body}: {error}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_router_cannot_extract_get_json_errors_too() {
    let sim = api_sim(&[]);
    let check = |response: reqwest::Response, status: u16, what: &'static str| async move {
        assert_eq!(response.status().as_u16(), status, "{what}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = response.text().await.unwrap();
        assert_eq!(content_type, "application/json", "{what}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["error"].as_str().unwrap().to_owned()
    };
    // A template name that is not UTF-8 once percent-decoded.
    let response = http()
        .get(sim.api_url("/simulate/astm/%FF"))
        .send()
        .await
        .unwrap();
    let error = check(response, 400, "invalid UTF-8 in the name").await;
    assert!(error.contains("UTF-8"), "{error}");
    // A body over the limit (3 MB).
    let response = http()
        .post(sim.api_url("/simulate/astm/stago_start4"))
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    let error = check(response, 413, "body too large").await;
    assert!(error.contains("length limit"), "{error}");
    assert!(
        error.ends_with("the request body may be at most 2097152 bytes"),
        "{error}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_writes_stay_inside_the_roots_when_the_name_is_a_symlink() {
    use reqwest::Method;
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.csv");
    std::fs::write(&victim, "original\n").unwrap();
    // Someone else who can write in the root (it may be /tmp) plants a link under the name.
    let link = root.path().join("run1.csv");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let root_path = root.path().display().to_string();
    let sim = api_sim(&["--file-root", &root_path]);
    let body = format!(r#"{{"target_dir":"{root_path}","filename":"run1.csv"}}"#);
    let (s, v) = call(
        Method::POST,
        sim.api_url("/simulate/file/tecan_f50"),
        Some(&body),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original\n");
    let written = std::path::PathBuf::from(v["written_path"].as_str().unwrap());
    assert_eq!(
        written,
        root.path().canonicalize().unwrap().join("run1.csv")
    );
    let meta = std::fs::symlink_metadata(&written).unwrap();
    assert!(meta.is_file(), "a regular file replaced the link");
    assert_eq!(
        std::fs::read_to_string(&written).unwrap(),
        v["content"].as_str().unwrap()
    );
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["run1.csv".to_owned()]);
}

/// Segments (HL7, CR-separated) or records (ASTM, LF-separated) starting with `tag`.
fn lines_starting<'a>(text: &'a str, tag: &str) -> Vec<&'a str> {
    text.split(['\r', '\n'])
        .filter(|l| l.starts_with(tag))
        .collect()
}

/// The `message` of a successful generation.
async fn generated(method: reqwest::Method, url: String, body: Option<&str>) -> String {
    let (s, v) = call(method, url, body).await;
    assert_eq!(s, 200, "{v}");
    v["message"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_id_and_tests_choose_the_patient_and_results() {
    use reqwest::Method;
    let sim = api_sim(&[]);
    let u = |p: &str| sim.api_url(p);

    // The reference's GET query keys with `tests` as a comma list; the README's POST example
    // (`tests` as an array, which the reference answers with 500); the ASTM routes (P.4 and
    // R records).
    for (method, route, body, patient_tag, patient, result_tag, codes) in [
        (
            Method::GET,
            "/simulate/hl7/mindray_bc5380?patientId=MRN-77&tests=HGB,WBC",
            None,
            "PID|",
            "MRN-77^^^HOSPITAL",
            "OBX|",
            &["HGB", "WBC"][..],
        ),
        (
            Method::POST,
            "/simulate/hl7/mindray_bc5380",
            Some(r#"{"patientId":"P-9","tests":["PLT"]}"#),
            "PID|",
            "P-9^^^HOSPITAL",
            "OBX|",
            &["PLT"],
        ),
        (
            Method::GET,
            "/simulate/astm/stago_start4?patient_id=MRN-5&tests=INR",
            None,
            "P|",
            "MRN-5",
            "R|",
            &["INR"],
        ),
    ] {
        let message = generated(method, u(route), body).await;
        let patient_line = lines_starting(&message, patient_tag)[0];
        assert_eq!(patient_line.split('|').nth(3), Some(patient), "{message}");
        let results = lines_starting(&message, result_tag);
        assert_eq!(results.len(), codes.len(), "{message}");
        for (n, (result, code)) in results.iter().zip(codes).enumerate() {
            let id = result
                .split('|')
                .nth(if result_tag == "R|" { 2 } else { 3 });
            assert!(
                result.starts_with(&format!("{result_tag}{}|", n + 1)),
                "{result}"
            );
            assert!(id.unwrap().contains(code), "{result}");
        }
    }
    let (s, v) = call(
        Method::POST,
        u("/simulate/hl7/mindray_bc5380"),
        Some(r#"{"patient_id":"P-9","tests":["PLT"],"count":2}"#),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 2);

    // Mistakes are 400s that say what is wrong.
    for (route, body, expected) in [
        (
            "/simulate/hl7/mindray_bc5380",
            r#"{"tests":["WBC","GLU"]}"#,
            r#"has no test "GLU"; its tests are WBC, RBC"#,
        ),
        (
            "/simulate/hl7/mindray_bc5380",
            r#"{"tests":["WBC","WBC"]}"#,
            "listed twice",
        ),
        (
            "/simulate/hl7/mindray_bc5380",
            r#"{"tests":[]}"#,
            "the list is empty",
        ),
        (
            "/simulate/hl7/mindray_bc5380",
            r#"{"tests":[1]}"#,
            "array of test codes",
        ),
        (
            "/simulate/astm/stago_start4",
            r#"{"patientId":" "}"#,
            "patient_id",
        ),
        (
            "/simulate/astm/stago_start4",
            r#"{"patientId":7}"#,
            "patientId must be a string",
        ),
    ] {
        let (s, v) = call(Method::POST, u(route), Some(body)).await;
        assert_eq!(s, 400, "{body}: {v}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(expected), "{body}: {error}");
    }
}

#[test]
fn generate_files_writes_the_filegen_file_through_a_temporary_name() {
    use lis_templates::files::{self, FileOptions};
    use lis_templates::{AccessionMinter, GenerateOptions, TemplateSet, ValueMode};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = run(&[
        "--generate-files",
        &d,
        "--generate-files-analyzer",
        "tecan_f50",
        "--seed",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(path.parent(), Some(dir.path()));
    // Published by a link/rename from a hidden temporary name: nothing else is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "only the published file: {names:?}");
    let name = &names[0];
    assert!(
        name.starts_with("tecan") && name.ends_with(".csv") && !name.starts_with('.'),
        "the template's file_pattern tecan*.csv: {name}"
    );
    // Byte for byte what the filegen code renders for the same seed and clock.
    let templates = TemplateSet::embedded().unwrap();
    let options = FileOptions {
        generate: GenerateOptions {
            seed: Some(1),
            now: chrono::NaiveDateTime::parse_from_str("20260101120000", "%Y%m%d%H%M%S").ok(),
            values: Some(ValueMode::Template),
            ..GenerateOptions::default()
        },
        sequence: 1,
        ..FileOptions::default()
    };
    let minter = AccessionMinter::with(lis_templates::DEFAULT_PREFIX, 26).unwrap();
    let expected = files::render(templates.get("tecan_f50").unwrap(), &minter, &options).unwrap();
    assert_eq!(name, &expected.file.file_name);
    assert_eq!(std::fs::read(&path).unwrap(), expected.file.bytes);
    // The instrument layout: Tecan F50 metadata before the column header.
    assert!(expected.header_row > 0 || !expected.columns.is_empty());
}

#[test]
fn default_port_map_starts_and_stops_on_sigterm() {
    let ports = [5000u16, 5380, 9600, 9601, 9602, 9603, 9604];
    for p in ports {
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_err() {
            eprintln!("skipped: port {p} is busy on this machine");
            return;
        }
    }
    let mut sim = Sim::start(&[]);
    let listed: Vec<u16> = sim.listeners.iter().map(|(_, a, _)| a.port()).collect();
    assert_eq!(listed, ports);
    assert!(sim.listeners.iter().all(|(_, a, _)| a.ip().is_loopback()));
    let hl7: Vec<&str> = sim
        .listeners
        .iter()
        .filter(|(p, _, _)| p == "HL7")
        .map(|(_, _, t)| t.as_str())
        .collect();
    assert_eq!(hl7, ["mindray_bc5380"]);
    for p in ports {
        std::net::TcpStream::connect(("127.0.0.1", p)).expect("port accepts");
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&sim.child),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = sim.child.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGTERM: {status}");
            break;
        }
        assert!(started.elapsed() < WAIT, "did not stop on SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test]
async fn mllp_listener_answers_a_payload_that_is_not_hl7_with_a_nak_block() {
    let sim = Sim::start(&["--listen", "0=mindray_bc5380", "-d", "0"]);
    let stream = connect(sim.port_of("mindray_bc5380")).await;
    let mut framed = Framed::new(stream, MllpCodec::new());
    // Garbage, then a commit ACK block (an answer itself: never answered), then a real message.
    for payload in [&b"hello, not HL7"[..], &[0x06][..]] {
        framed.send(payload).await.unwrap();
    }
    framed
        .send(&b"MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||ORU^R01|Q7|P|2.3.1\r"[..])
        .await
        .unwrap();
    let nak = tokio::time::timeout(WAIT, framed.next()).await;
    assert!(
        matches!(
            nak,
            Ok(Some(Ok(MllpFrame::Commit(mllp_hl7::CommitAck::Nak))))
        ),
        "a NAK block for the garbage: {nak:?}"
    );
    let ack = match tokio::time::timeout(WAIT, framed.next()).await {
        Ok(Some(Ok(MllpFrame::Message(payload)))) => payload,
        other => panic!("{other:?}"),
    };
    assert!(
        String::from_utf8_lossy(&ack).contains("MSA|AA|Q7"),
        "the next reply is the HL7 ACK, nothing for the commit block: {ack:?}"
    );
}

/// Accepts one E1381 connection on `lis` and returns the records it carried.
async fn receive_one_push(lis: &TcpListener) -> Vec<String> {
    let (mut s, _) = tokio::time::timeout(WAIT, lis.accept())
        .await
        .expect("no push arrived")
        .unwrap();
    // The simulator sends ENQ first; `receive_records` answers it.
    receive_records(&mut s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_pushes_carry_the_template_seed_values_as_the_reference() {
    use reqwest::Method;
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_addr = lis.local_addr().unwrap();
    let sim = api_sim(&[]);
    let expected = [
        ("PT", "12.5"),
        ("INR", "1.05"),
        ("APTT", "28.5"),
        ("FIB", "3.2"),
        ("TT", "15.2"),
    ];
    let check = |records: Vec<String>| {
        let values: Vec<(String, String)> = records
            .iter()
            .filter(|r| r.starts_with("R|"))
            .map(|r| {
                let f: Vec<&str> = r.split('|').collect();
                (f[2].trim_start_matches('^').to_owned(), f[3].to_owned())
            })
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(c, v)| ((*c).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(values, expected, "{records:?}");
    };
    for route in [
        "/simulate/astm/stago_start4".to_owned(),
        format!("/push?template=stago_start4&destination=tcp://{lis_addr}"),
    ] {
        let body = format!(r#"{{"destination":"tcp://{lis_addr}"}}"#);
        let url = sim.api_url(&route);
        let posting = tokio::spawn(async move { call(Method::POST, url, Some(&body)).await });
        check(receive_one_push(&lis).await);
        let (s, v) = posting.await.unwrap();
        assert_eq!(s, 200, "{route}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_push_api_answers_in_its_own_shapes() {
    let sim = api_sim(&[]);
    let post = |route: &str, body: &'static str| {
        let request = http().post(sim.api_url(route)).body(body);
        async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let text = response.text().await.expect("body");
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
            (status, v)
        }
    };
    // Errors: {"status":"error","message":...} as the push API wrote them.
    let (s, v) = post("/push?template=nope&destination=tcp://127.0.0.1:1", "").await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["message"], "Template not found: nope", "{v}");
    // A body that is not JSON is ignored; a failed push keeps its template and says why.
    let (s, v) = post(
        "/push?template=stago_start4&destination=tcp://127.0.0.1:1",
        "not json",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let result = &v["results"][0];
    assert_eq!(result["success"], false, "{v}");
    assert_eq!(result["template"], "stago_start4", "{v}");
    assert!(result["error"].as_str().unwrap().contains("refused"), "{v}");
    // count is read with int(): a numeric string counts.
    let (s, v) = post(
        "/push?destination=tcp://127.0.0.1:1",
        r#"{"count":"2","analyzer_type":"chemistry"}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["total"].as_u64(), v["failed"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(v["results"][1]["analyzer_type"], "CHEMISTRY", "{v}");
    // So does a number written with a fraction (JSON has one kind of number): int(2.0) is 2.
    let (s, v) = post("/push?destination=tcp://127.0.0.1:1", r#"{"count":2.0}"#).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["total"].as_u64(), Some(2), "{v}");
    let (s, v) = post("/push?destination=tcp://127.0.0.1:1", r#"{"count":0.5}"#).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        v["message"], "count must be an integer from 1 to 1000; got 0.5",
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_names_may_have_spaces_as_instrument_exports_do() {
    use reqwest::Method;
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().display().to_string();
    let sim = api_sim(&["--file-root", &root_path]);
    let name = "QS5 run 2026-01-15 1435.csv";
    let body = serde_json::json!({"target_dir": root_path, "filename": name}).to_string();
    let (s, v) = call(
        Method::POST,
        sim.api_url("/simulate/file/tecan_f50"),
        Some(&body),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let written = root.path().join(name);
    assert_eq!(v["written_path"], written.display().to_string(), "{v}");
    assert!(written.is_file());
    for bad in [
        "..\\x.csv",
        ".hidden.csv",
        " x.csv",
        "x.csv ",
        "a\u{1}b.csv",
    ] {
        let body = serde_json::json!({"target_dir": root_path, "filename": bad}).to_string();
        let (s, v) = call(
            Method::POST,
            sim.api_url("/simulate/file/tecan_f50"),
            Some(&body),
        )
        .await;
        assert_eq!(s, 400, "{bad:?}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailing_slash_after_the_template_name_is_the_same_route() {
    use reqwest::Method;
    let sim = api_sim(&[]);
    for (method, route, status) in [
        (Method::GET, "/simulate/astm/stago_start4/", "generated"),
        (Method::POST, "/simulate/astm/stago_start4/", "completed"),
        (Method::GET, "/simulate/hl7/mindray_bs200/", "sent"),
        (Method::POST, "/simulate/hl7/mindray_bs200/", "sent"),
        (Method::GET, "/simulate/file/tecan_f50/", "generated"),
        (Method::POST, "/simulate/file/tecan_f50/", "completed"),
    ] {
        let (s, v) = call(method.clone(), sim.api_url(route), Some("{}")).await;
        assert_eq!(
            (s, v["status"].as_str()),
            (200, Some(status)),
            "{method} {route}: {v}"
        );
    }
    let (s, _) = call(Method::GET, sim.api_url("/simulate/astm/nope/"), None).await;
    assert_eq!(s, 404);
}

/// A LIS that interrupts an API push (EOT in place of the frame's ACK) to send its own
/// message: that message is kept in `GET /received` like one sent to a listening port,
/// and the push still completes with its message sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_lis_sends_on_a_push_connection_is_kept_in_received() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_addr = lis.local_addr().unwrap();
    let lis_task = tokio::spawn(async move {
        let (mut s, _) = lis.accept().await.unwrap();
        assert_eq!(read_byte(&mut s).await, ENQ);
        write(&mut s, &[ACK]).await;
        assert_eq!(read_byte(&mut s).await, STX);
        read_frame_rest(&mut s).await;
        write(&mut s, &[EOT]).await;
        assert_eq!(
            read_byte(&mut s).await,
            EOT,
            "the simulator ends its transfer"
        );
        send_records(&mut s, &["H|\\^&|||LIS", "O|1|SPEC-77||^^^PT|R", "L|1|N"]).await;
        receive_records(&mut s).await
    });
    let sim = api_sim(&[]);
    let body = format!(r#"{{"destination":"tcp://{lis_addr}"}}"#);
    let (s, v) = call(
        reqwest::Method::POST,
        sim.api_url("/simulate/astm/stago_start4"),
        Some(&body),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["pushed"], 1, "{v}");
    let resent = lis_task.await.unwrap();
    assert_eq!(
        resent.last().map(String::as_str),
        Some("L|1|N"),
        "{resent:?}"
    );

    let (s, v) = call(reqwest::Method::GET, sim.api_url("/received"), None).await;
    assert_eq!(s, 200);
    let entries = v.as_array().unwrap();
    let order = entries
        .iter()
        .find(|e| e["text"].as_str().unwrap_or("").contains("SPEC-77"))
        .unwrap_or_else(|| panic!("the LIS's order is not in /received: {v}"));
    assert_eq!(order["protocol"], "ASTM");
    assert_eq!(order["peer"], lis_addr.to_string());
    assert_eq!(order["records"][1], "O|1|SPEC-77||^^^PT|R");
}

/// Contention on a push: the LIS answers the simulator's ENQ with its own ENQ. With
/// `--contention by-role` the instrument insists and sends ENQ again; with `--contention yield`
/// (the default) it acknowledges the LIS's ENQ, as on listening ports, once the LIS has had the
/// contention retry time to acknowledge the simulator's (300 ms here), takes the LIS's message
/// and then sends its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_push_contention_by_role_and_yield() {
    for policy in ["by-role", "yield"] {
        let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = lis.local_addr().unwrap();
        let receiver = tokio::spawn(async move {
            let (mut s, _) = lis.accept().await.unwrap();
            assert_eq!(read_byte(&mut s).await, ENQ);
            write(&mut s, &[ENQ]).await;
            let contended = std::time::Instant::now();
            if policy == "by-role" {
                assert_eq!(read_byte(&mut s).await, ENQ, "the instrument insists");
                write(&mut s, &[ACK]).await;
            } else {
                assert_eq!(read_byte(&mut s).await, ACK, "the simulator yields");
                assert!(
                    contended.elapsed() >= std::time::Duration::from_millis(300),
                    "yielded before the LIS could acknowledge: {:?}",
                    contended.elapsed()
                );
                for (n, record) in [(1, "H|\\^&|||LIS\r"), (2, "L|1|N\r")] {
                    write(
                        &mut s,
                        &frame(n, record.as_bytes(), astm_frame::FrameEnd::End),
                    )
                    .await;
                    assert_eq!(read_byte(&mut s).await, ACK);
                }
                write(&mut s, &[EOT]).await;
                assert_eq!(read_byte(&mut s).await, ENQ, "then sends its own message");
                write(&mut s, &[ACK]).await;
            }
            let mut frames = 0;
            loop {
                match read_byte(&mut s).await {
                    STX => {
                        read_frame_rest(&mut s).await;
                        frames += 1;
                        write(&mut s, &[ACK]).await;
                    }
                    EOT => break frames,
                    b => panic!("unexpected {b:#04x}"),
                }
            }
        });
        let dest = format!("tcp://{addr}");
        let out = run_to_end(&[
            "--push",
            &dest,
            "--template",
            "stago_start4",
            "--seed",
            "1",
            "--contention",
            policy,
            "--link-timer-ms",
            "300",
        ])
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{policy}: {stderr}");
        assert_eq!(receiver.await.unwrap(), 9, "{policy}: H, P, O, 5 R, L");
    }
}

/// One simulator pushing to another's proactive-ENQ port, both on their defaults
/// (`--contention yield`): the two ENQs cross, the listening port acknowledges the pusher's
/// at once (as the reference does), and the pusher, which yields only when the peer has not,
/// takes that ACK and sends. Both yielding at once left each waiting for the other's frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_another_simulators_proactive_enq_port_is_delivered() {
    let listener = Sim::start(&[
        "--listen",
        "0=genexpert_astm",
        "-d",
        "0",
        "--simulate-api-port",
        "0",
    ]);
    let dest = format!("tcp://{}", listener.port_of("genexpert_astm"));
    let started = std::time::Instant::now();
    run_ok(&[
        "--push",
        &dest,
        "--template",
        "stago_start4",
        "--seed",
        "1",
        "--link-timer-ms",
        "2000",
    ])
    .await;
    // A yield the peer leaves unused costs a receive timeout (2 s here, 30 s by default).
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the push waited for a timer: {:?}",
        started.elapsed()
    );
    let (s, v) = call(reqwest::Method::GET, listener.api_url("/received"), None).await;
    assert_eq!(s, 200);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"].as_str().unwrap_or("").contains("STAGO")),
        "the push is not in the listener's /received: {v}"
    );
}

/// `--keep-connection` on an MLLP push: every message on one connection, each ACKed
/// before the next; without it, one connection per message (as the reference does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_push_keeps_one_connection_with_keep_connection() {
    for (keep, connections) in [(true, 1), (false, 3)] {
        let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = lis.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::<(usize, String)>::new()));
        let seen_by_lis = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((stream, _)) = lis.accept().await {
                n += 1;
                let seen = Arc::clone(&seen_by_lis);
                tokio::spawn(mllp_hl7::serve_connection(
                    stream,
                    MllpCodec::new(),
                    move |frame: MllpFrame| {
                        if let MllpFrame::Message(payload) = &frame {
                            let text = String::from_utf8_lossy(payload).into_owned();
                            seen.lock().unwrap().push((n, text));
                        }
                        async move { mllp_hl7::auto_ack(&frame) }
                    },
                ));
            }
        });
        let dest = format!("mllp://{addr}");
        let mut args = vec![
            "--hl7",
            "--hl7-template",
            "mindray_bs200",
            "--push",
            &dest,
            "-c",
            "3",
        ];
        if keep {
            args.push("--keep-connection");
        }
        let out = run_to_end(&args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("summary: sent 3, failed 0"), "{stderr}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "{seen:?}");
        let used: std::collections::BTreeSet<usize> = seen.iter().map(|(c, _)| *c).collect();
        assert_eq!(used.len(), connections, "keep {keep}: connections {used:?}");
    }
}

/// A push whose destination is down, on a port inside the host's ephemeral range
/// (32768-60999 on Linux), can connect to itself: the kernel may give the connection that
/// very port as its local one, and the SYN meets itself (a TCP self-connect). Pushing
/// with `-C -i 0` at a router that was restarting made thousands of attempts a second, so
/// one did: the simulator sent the message into its own socket, waited 30 s for an ACK,
/// and the connection's TIME_WAIT then kept the router from listening on its port again
/// for a minute ("Address already in use"). Now such a connection is closed at once,
/// without TIME_WAIT, and the push fails saying why. Run in a network namespace of its
/// own whose ephemeral range is that port alone, so that the first attempt reaches
/// itself; skipped where such a namespace cannot be made.
#[test]
fn a_push_that_connects_to_itself_fails_at_once_and_leaves_the_port_free() {
    let namespace = std::process::Command::new("unshare")
        .args(["-rn", "sh", "-c", "ip link set lo up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !namespace {
        eprintln!("skipped: unshare -rn is not available here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Then the LIS (here a simulator listening) starts on the port the push was aimed at.
    let script = r#"set -u
ip link set lo up
echo "40000 40001" > /proc/sys/net/ipv4/ip_local_port_range
"$0" --hl7 --hl7-template mindray_bs200 --push mllp://127.0.0.1:40000 -c 1 -i 0 2> push.log
echo "push exit $?" >> push.log
"$0" --listen 40000=mindray_bs200 > listen.log 2>&1 &
L=$!
for i in $(seq 1 50); do
  grep -q ready listen.log && break
  sleep 0.1
done
kill $L 2>/dev/null
wait
"#;
    let status = std::process::Command::new("unshare")
        .args(["-rn", "sh", "-c", script, env!("CARGO_BIN_EXE_simulator")])
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let push = std::fs::read_to_string(dir.path().join("push.log")).unwrap();
    let listen = std::fs::read_to_string(dir.path().join("listen.log")).unwrap();
    assert!(push.contains("push exit 1"), "{push}");
    assert!(push.contains("reached itself"), "{push}");
    assert!(
        listen.contains("listening HL7 127.0.0.1:40000"),
        "the port was not free for the LIS after the push:\n{listen}"
    );
}

/// `--keep-connection` ("push every message on one TCP connection") did nothing for
/// `mllp://`: every HL7 message had a connection of its own. An analyzer keeps its MLLP
/// connection, and so must the simulator when it stands in for one (a router's
/// `maxconnections`, a LIS's idle timeout). Now every message goes on one connection,
/// and one the LIS closed between messages (an idle timeout) is opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_push_keeps_its_connection_with_keep_connection() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = lis.local_addr().unwrap();
    // Per connection, the control ids it carried; the LIS closes the connection after the
    // third message, as an idle timeout would.
    let connections: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let seen = Arc::clone(&connections);
    tokio::spawn(async move {
        loop {
            let (stream, _) = lis.accept().await.unwrap();
            let index = {
                let mut all = seen.lock().unwrap();
                all.push(Vec::new());
                all.len() - 1
            };
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut framed = Framed::new(stream, MllpCodec::new());
                while let Some(Ok(frame)) = framed.next().await {
                    let MllpFrame::Message(payload) = &frame else {
                        continue;
                    };
                    let message = mllp_hl7::Message::parse(payload).unwrap();
                    let id = String::from_utf8_lossy(message.control_id().raw()).into_owned();
                    let count = {
                        let mut all = seen.lock().unwrap();
                        all[index].push(id);
                        all.iter().map(Vec::len).sum::<usize>()
                    };
                    let ack = mllp_hl7::auto_ack(&frame).unwrap();
                    let mllp_hl7::Response::Message(ack) = ack else {
                        panic!("{ack:?}");
                    };
                    framed.send(&ack[..]).await.unwrap();
                    if count == 3 {
                        break; // closes the connection after the third message
                    }
                }
            });
        }
    });
    let dest = format!("mllp://{addr}");
    let out = run_to_end(&[
        "--hl7",
        "--hl7-template",
        "mindray_bs200",
        "--push",
        &dest,
        "-c",
        "5",
        "-i",
        "0.3",
        "--keep-connection",
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("summary: sent 5, failed 0"), "{stderr}");
    let connections = connections.lock().unwrap().clone();
    let sizes: Vec<usize> = connections.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 2], "messages per connection: {connections:?}");
}

/// `--keep-connection` on a `tcp://` push to a LIS that closes after each EOT, as the OpenELIS
/// bridge does: the kept connection was reused without a look, so every other session failed
/// ("connection closed by the peer") and its message was not sent again. A closed connection
/// is now opened afresh; one the LIS keeps still carries every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn astm_push_with_keep_connection_reconnects_to_a_lis_closing_after_eot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for closes_after_eot in [true, false] {
        let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = lis.local_addr().unwrap();
        // Per connection, the messages (EOTs) it carried.
        let connections: Arc<Mutex<Vec<usize>>> = Arc::default();
        let seen = Arc::clone(&connections);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = lis.accept().await.unwrap();
                let index = {
                    let mut all = seen.lock().unwrap();
                    all.push(0);
                    all.len() - 1
                };
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut in_frame = false;
                    let mut byte = [0u8; 1];
                    while stream.read_exact(&mut byte).await.is_ok() {
                        match byte[0] {
                            ENQ => stream.write_all(&[ACK]).await.unwrap(),
                            STX => in_frame = true,
                            b'\n' if in_frame => {
                                in_frame = false;
                                stream.write_all(&[ACK]).await.unwrap();
                            }
                            EOT if !in_frame => {
                                seen.lock().unwrap()[index] += 1;
                                if closes_after_eot {
                                    return;
                                }
                            }
                            _ => {}
                        }
                    }
                });
            }
        });
        let dest = format!("tcp://{addr}");
        let out = run_to_end(&[
            "--template",
            "stago_start4",
            "--push",
            &dest,
            "-c",
            "3",
            "-i",
            "0.3",
            "--keep-connection",
        ])
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("summary: sent 3, failed 0"), "{stderr}");
        // The simulator may exit before this test's reader has taken its last EOT.
        let counted = || connections.lock().unwrap().iter().sum::<usize>();
        let deadline = std::time::Instant::now() + WAIT;
        while counted() < 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let per_connection = connections.lock().unwrap().clone();
        let expected: &[usize] = if closes_after_eot { &[1, 1, 1] } else { &[3] };
        assert_eq!(
            per_connection, expected,
            "closes after EOT: {closes_after_eot}"
        );
    }
}

/// A LIS that opens the line on a kept connection during the `-i` pause gets its ACK at once
/// and its message is taken. The link was not read during the pause, so the LIS's ENQ went
/// unanswered until the next message went out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn astm_push_with_keep_connection_answers_the_lis_during_the_pause() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dest = format!("tcp://{}", lis.local_addr().unwrap());
    let run = tokio::spawn(async move {
        run_to_end(&[
            "--template",
            "stago_start4",
            "--push",
            &dest,
            "-c",
            "2",
            "-i",
            "3",
            "--keep-connection",
        ])
        .await
    });
    let (mut s, _) = tokio::time::timeout(WAIT, lis.accept())
        .await
        .unwrap()
        .unwrap();
    let first = receive_bytes(&mut s).await;
    assert!(first.starts_with(b"H|"), "{first:?}");
    // The pause has begun: the LIS opens the line and sends an order.
    write(&mut s, &[ENQ]).await;
    let reply =
        tokio::time::timeout(std::time::Duration::from_millis(1500), read_byte(&mut s)).await;
    assert_eq!(
        reply.ok(),
        Some(ACK),
        "no ACK to the LIS's ENQ during the pause"
    );
    write(
        &mut s,
        &frame(
            1,
            b"H|\\^&|||LIS\rO|1|SPEC-7||^^^PT|R\rL|1|N\r",
            astm_frame::FrameEnd::End,
        ),
    )
    .await;
    assert_eq!(read_byte(&mut s).await, ACK);
    write(&mut s, &[EOT]).await;
    // The second message still comes, on the same connection.
    let second = receive_bytes(&mut s).await;
    assert!(second.starts_with(b"H|"), "{second:?}");
    let out = run.await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("summary: sent 2, failed 0"), "{stderr}");
    assert!(stderr.contains("bytes received from the LIS"), "{stderr}");
}

async fn next_message(framed: &mut Framed<tokio::net::TcpStream, MllpCodec>) -> bytes::Bytes {
    let frame = tokio::time::timeout(WAIT, framed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let MllpFrame::Message(payload) = frame else {
        panic!("{frame:?}")
    };
    payload
}

/// With `--order-results link` the ORU goes back on the connection the order came in on,
/// and what became of it was never looked at: the LIS's ACK (or refusal) was only kept in
/// `GET /received`, and a peer that never answers it (a router's socket output, which
/// only sends and does not route what it receives) lost the results without a word. Now
/// the ACK is matched to the ORU by control id and logged, a refusal as a warning, and
/// results never acknowledged when the connection ends are warned about by control id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_results_on_the_link_are_followed_to_their_ack() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec "$0" "$@" 2> "$LOG""#)
        .arg(env!("CARGO_BIN_EXE_simulator"))
        .args([
            "--listen",
            "0=mindray_bs200",
            "-d",
            "0",
            "--order-results",
            "link",
        ])
        .env("LOG", &log)
        .env("RUST_LOG", "info");
    let sim = Sim::start_with(cmd);
    let stream = connect(sim.port_of("mindray_bs200")).await;
    let mut framed = Framed::new(stream, MllpCodec::new());
    let mut results = Vec::new();
    let mut acks = Vec::new();
    for id in ["L1", "L2"] {
        let orm = format!(
            "MSH|^~\\&|LIS|LAB|MINDRAY|BS-200|20260101||ORM^O01|{id}|P|2.3.1\rPID|1||P1\rORC|NW|PL-{id}\rOBR|1|PL-{id}|FI-{id}|GLU^Glucose\r"
        );
        let mut wire = vec![0x0b];
        wire.extend_from_slice(orm.as_bytes());
        wire.extend_from_slice(b"\x1c\r");
        tokio::io::AsyncWriteExt::write_all(framed.get_mut(), &wire)
            .await
            .unwrap();
        let ack = next_message(&mut framed).await;
        assert!(
            String::from_utf8_lossy(&ack).contains(&format!("MSA|AA|{id}")),
            "{ack:?}"
        );
        let oru = next_message(&mut framed).await;
        let message = mllp_hl7::Message::parse(&oru).unwrap();
        assert_eq!(message.message_type().code, b"ORU");
        results.push(String::from_utf8_lossy(message.control_id().raw()).into_owned());
        acks.push(
            mllp_hl7::AckBuilder::new(&message)
                .code(mllp_hl7::AckCode::ApplicationError)
                .text("unknown patient")
                .build()
                .unwrap(),
        );
    }
    // The first ORU is refused, the second never answered.
    framed.send(&acks[0][..]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(framed);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let refused = format!("order results {} refused by", results[0]);
        let missing = format!("never acknowledged: {}", results[1]);
        if text.contains(&refused) && text.contains("AE unknown patient") && text.contains(&missing)
        {
            assert!(
                !text.contains(&format!("never acknowledged: {}", results[0])),
                "{text}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log lines about the order results:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Asserts that `keys` appear in `text` as JSON keys in this order.
fn assert_key_order(text: &str, keys: &[&str]) {
    let mut at = 0;
    for key in keys {
        let pattern = format!("\"{key}\":");
        match text[at..].find(&pattern) {
            Some(p) => at += p + pattern.len(),
            None => panic!("key {key:?} not after the ones before it ({keys:?}) in {text}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_replies_keep_the_reference_key_order() {
    // The reference writes its JSON keys in a fixed order (Python dicts); a harness comparing
    // reply text, or reading `{"status":...` first, must see the same order, not sorted keys.
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().display().to_string();
    let sim = api_sim(&["--file-root", &root_path]);
    use reqwest::Method;
    let request = |method: Method, path: &str, body: Option<String>| {
        let mut r = http().request(method, sim.api_url(path));
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b);
        }
        async move { r.send().await.unwrap().text().await.unwrap() }
    };
    let text = request(Method::GET, "/health", None).await;
    assert!(text.starts_with(r#"{"status":"ok","service":"#), "{text}");
    assert_key_order(
        &text,
        &[
            "status",
            "service",
            "endpoints",
            "GET /health",
            "GET /simulate/hl7/{template}",
            "POST /simulate/hl7/{template}",
            "GET /simulate/astm/{template}",
            "POST /simulate/astm/{template}",
            "GET /simulate/file/{template}",
            "POST /simulate/file/{template}",
        ],
    );
    // The reference's own entries, word for word.
    for entry in [
        r#""GET /health":"Health check""#,
        r#""GET /simulate/hl7/{template}":"Generate HL7 ORU^R01""#,
        r#""POST /simulate/hl7/{template}":"Generate + push HL7 (body: destination, count, qc, qc_deviation)""#,
        r#""GET /simulate/astm/{template}":"Generate ASTM message""#,
        r#""POST /simulate/astm/{template}":"Generate + push ASTM (body: destination, count, sample_id, source_ip, qc, qc_deviation)""#,
        r#""GET /simulate/file/{template}":"Generate FILE payload""#,
        r#""POST /simulate/file/{template}":"Generate + write FILE (body: target_dir, bridge_upload, filename, qc, qc_deviation)""#,
    ] {
        assert!(text.contains(entry), "{entry} in {text}");
    }
    let text = request(Method::GET, "/simulate/astm/stago_start4", None).await;
    assert_key_order(&text, &["status", "template", "message"]);
    let body = r#"{"destination":"tcp://127.0.0.1:1"}"#.to_owned();
    let text = request(Method::POST, "/simulate/astm/stago_start4", Some(body)).await;
    assert_key_order(
        &text,
        &[
            "status",
            "template",
            "count",
            "qc",
            "pushed",
            "destination",
            "source_ip",
            "results",
            "message_number",
            "pushed",
            "error",
            "sample_id",
            "preview",
        ],
    );
    let text = request(Method::GET, "/simulate/hl7/mindray_bs200", None).await;
    assert_key_order(
        &text,
        &[
            "status",
            "messageId",
            "qc",
            "qc_deviation",
            "sample_id",
            "message",
        ],
    );
    let body = r#"{"count":2}"#.to_owned();
    let text = request(Method::POST, "/simulate/hl7/mindray_bs200", Some(body)).await;
    assert_key_order(
        &text,
        &[
            "status",
            "analyzer",
            "count",
            "qc",
            "qc_deviation",
            "destination",
            "pushed",
            "results",
            "message_number",
            "pushed",
            "error",
            "sample_id",
            "preview",
        ],
    );
    let text = request(Method::GET, "/simulate/file/tecan_f50", None).await;
    assert_key_order(&text, &["status", "template", "content"]);
    let body = format!(r#"{{"target_dir":"{root_path}"}}"#);
    let text = request(Method::POST, "/simulate/file/tecan_f50", Some(body)).await;
    assert_key_order(
        &text,
        &[
            "status",
            "template",
            "qc",
            "qc_deviation",
            "written_path",
            "format",
            "content",
        ],
    );
    let text = request(
        Method::POST,
        "/push?template=stago_start4&destination=tcp://127.0.0.1:1",
        None,
    )
    .await;
    assert_key_order(
        &text,
        &[
            "status",
            "total",
            "successful",
            "failed",
            "results",
            "message_number",
            "success",
            "template",
            "error",
        ],
    );
    let text = request(Method::POST, "/push?template=nope", None).await;
    assert_key_order(&text, &["status", "message"]);
}

/// The MLLP listener's ACK carries the reference's MSA: `MSA|AA|{MSH-10}|Message accepted`
/// (sender and receiver swapped and the version echoed, as section 12 allows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mllp_ack_says_message_accepted_as_the_reference() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // -d applies before each MLLP ACK too (section 2.9 of the reference notes).
    let sim = Sim::start(&[
        "--listen",
        "0=mindray_bc5380",
        "-d",
        "300",
        "--order-results",
        "off",
    ]);
    let mut s = connect(sim.port_of("mindray_bc5380")).await;
    let message = "MSH|^~\\&|LIS|LAB|BC5380|DEV|20260101120000||ORM^O01|CTRL123|P|2.3.1\r\
                   PID|1||P1\rORC|NW|PL1|FL1\rOBR|1|PL1|FL1|^^^WBC^WBC\r";
    let started = std::time::Instant::now();
    s.write_all(format!("\x0b{message}\x1c\r").as_bytes())
        .await
        .unwrap();
    let mut reply = Vec::new();
    while !reply.ends_with(b"\x1c\r") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .expect("ACK in time")
            .unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&reply));
        reply.extend_from_slice(&buf[..n]);
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    let reply = String::from_utf8(reply).unwrap();
    assert!(
        reply.contains("\rMSA|AA|CTRL123|Message accepted\r"),
        "{reply:?}"
    );
}

/// The legacy push API's command line, `--push URL --api-port PORT` (the reference up to
/// 33c8d62, still in its README): the API is served and `POST /push` without a destination
/// pushes to URL. Before, the simulator pushed one message and exited, so the route's
/// fallback to `--push` could never be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_with_api_port_serves_the_legacy_push_api() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dest = format!("tcp://{}", lis.local_addr().unwrap());
    let receiver = tokio::spawn(async move { receive_pushed_transfer(&lis).await });
    let sim = Sim::start(&["--push", &dest, "--api-port", "0", "-d", "0"]);
    assert!(sim.listeners.is_empty(), "{:?}", sim.listeners);
    let response = http()
        .post(sim.api_url("/push?template=stago_start4"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let v: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(v["successful"], 1, "{v}");
    assert_eq!(v["results"][0]["template"], "stago_start4", "{v}");
    let text = tokio::time::timeout(WAIT, receiver).await.unwrap().unwrap();
    assert!(text.contains("STAGO^START4"), "{text}");
}

/// HTTP pushes as the reference sends them (section 11 of the reference notes): ASTM to
/// `{base}/api/OpenELIS-Global/analyzer/astm` as LF-separated records with a trailing LF;
/// HL7 to a base ending in `/hl7` or containing `/analyzer/` as it is, else to
/// `{base}/api/OpenELIS-Global/analyzer/hl7`, as CR-separated segments; both
/// `text/plain; charset=utf-8`, without an Authorization header unless one is configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_pushes_use_the_reference_paths_and_payloads() {
    let (base, requests) = http_recorder().await;
    let runs: Vec<Vec<String>> = vec![
        vec![
            "--push".into(),
            base.clone(),
            "--template".into(),
            "stago_start4".into(),
        ],
        vec![
            "--hl7".into(),
            "--hl7-template".into(),
            "mindray_bs200".into(),
            "--push".into(),
            base.clone(),
        ],
        vec![
            "--hl7".into(),
            "--hl7-template".into(),
            "mindray_bs200".into(),
            "--push".into(),
            format!("{base}/custom/hl7"),
        ],
        vec![
            "--hl7".into(),
            "--hl7-template".into(),
            "mindray_bs200".into(),
            "--push".into(),
            format!("{base}/x/analyzer/in"),
        ],
    ];
    for args in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok(&args).await;
    }
    let requests = requests.lock().unwrap();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/OpenELIS-Global/analyzer/astm",
            "/api/OpenELIS-Global/analyzer/hl7",
            "/custom/hl7",
            "/x/analyzer/in"
        ]
    );
    for request in requests.iter() {
        let path = &request.path;
        let body = String::from_utf8(request.body.clone()).unwrap();
        assert_eq!(
            request.content_type.as_deref(),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
        assert!(
            !request.authorized,
            "{path}: no Authorization header without --user"
        );
        if path.ends_with("/astm") {
            assert!(
                body.starts_with("H|\\^&|") && body.ends_with("\nL|1|N\n"),
                "{body:?}"
            );
            assert!(!body.contains('\r'), "{body:?}");
        } else {
            assert!(body.starts_with("MSH|^~\\&|MINDRAY|BS-200|"), "{body:?}");
            assert!(body.contains("\rPID|") && !body.contains('\n'), "{body:?}");
        }
    }
}

/// A LIS that acknowledges everything and returns the bytes of one session (ENQ ... EOT).
async fn capture_session(lis: TcpListener) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut s, _) = lis.accept().await.unwrap();
    let mut wire = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed before EOT: {:?}",
            String::from_utf8_lossy(&wire)
        );
        wire.extend_from_slice(&buf[..n]);
        for &b in &buf[..n] {
            if b == ENQ || b == b'\n' {
                s.write_all(&[ACK]).await.unwrap();
            }
        }
        if wire.ends_with(&[EOT]) {
            return wire;
        }
    }
}

/// The push framer's bytes, which section 12 of the reference notes says to keep because the
/// bridge was built against them: one record per frame with its CR, ETB on every frame but
/// the message's last. The reference's verified wire for Pentra 60 begins with H, P and O
/// frames ending `0D 17 '63'`, `0D 17 'AD'` and `0D 17 'A8'`; `--push-framing per-record`
/// ends every record's frame with ETX instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_pushes_frame_records_as_the_reference_push_framer() {
    for framing in [None, Some("per-record")] {
        let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dest = format!("tcp://{}", lis.local_addr().unwrap());
        let capture = tokio::spawn(capture_session(lis));
        let mut args = vec![
            "--push",
            &dest,
            "--template",
            "horiba_pentra60",
            "--layout",
            "openelis",
            "--seed",
            "1",
            "--now",
            "20260101120000",
        ];
        if let Some(f) = framing {
            args.extend(["--push-framing", f]);
        }
        run_ok(&args).await;
        let wire = tokio::time::timeout(WAIT, capture).await.unwrap().unwrap();
        let frames: Vec<&[u8]> = wire[1..wire.len() - 1]
            .split_inclusive(|&b| b == b'\n')
            .collect();
        assert_eq!(wire[0], ENQ);
        assert!(frames.len() > 4, "{:?}", String::from_utf8_lossy(&wire));
        let terminator = |f: &[u8]| f[f.len() - 5];
        let text_end = |f: &[u8]| f[f.len() - 6];
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(text_end(f), b'\r', "frame {i}: the record keeps its CR");
            let last = i == frames.len() - 1;
            let expected = if last || framing.is_some() {
                0x03
            } else {
                0x17
            };
            assert_eq!(terminator(f), expected, "{framing:?} frame {i}");
        }
        if framing.is_none() {
            let head: Vec<u8> = frames[..3].concat();
            assert_eq!(
                String::from_utf8(head).unwrap(),
                "\x021H|\\^&|||ABX^PENTRA60^V2.0|||||||LIS2-A2|20260101120000\r\x1763\r\n\
                 \x022P|1||PAT-2026-001|Rakoto^Jean^A||M|19850315\r\x17AD\r\n\
                 \x023O|1|DEV01266000000000001^LAB|Pentra 60 C+^Pentra 60 C+ Panel||20260101120000\r\x17A8\r\n"
            );
        }
    }
}

/// `count` is read as the reference reads it (`int()`: a number, truncated, or a numeric
/// string) and clamped to 1..=1000 as the reference clamps it, so a count the reference
/// takes is never refused: 0 and negative counts give one message, 5000 gives 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_counts_are_clamped_as_the_reference_does() {
    let sim = api_sim(&[]);
    let u = |p: &str| sim.api_url(p);
    use reqwest::Method;
    for (body, expected) in [
        (r#"{"count":0}"#, 1),
        (r#"{"count":-3}"#, 1),
        (r#"{"count":"2"}"#, 2),
        (r#"{"count":2.7}"#, 2),
        (r#"{"count":5000}"#, 1000),
        // Python's int() takes these: twenty digits, spaces, a sign, underscores.
        (r#"{"count":"99999999999999999999"}"#, 1000),
        (r#"{"count":" -7 "}"#, 1),
        (r#"{"count":"+1_0"}"#, 10),
    ] {
        let (s, v) = call(Method::POST, u("/simulate/hl7/mindray_bs200"), Some(body)).await;
        assert_eq!(s, 200, "{body}: {v}");
        if expected > 1 {
            assert_eq!(v["count"], expected, "{body}");
            assert_eq!(v["results"].as_array().unwrap().len(), expected, "{body}");
        } else {
            assert_eq!(
                v["status"], "sent",
                "{body}: one message, the GET shape: {v}"
            );
        }
    }
    let (s, v) = call(
        Method::POST,
        u("/simulate/astm/stago_start4"),
        Some(r#"{"count":0}"#),
    )
    .await;
    assert_eq!((s, v["count"].as_u64()), (200, Some(1)), "{v}");
}

/// An OpenELIS that wants a login answers a push with a redirect to its login page. The
/// redirect was followed, and the page's 200 counted the message as pushed (exit 0,
/// `sent 1, failed 0`) while its body never arrived. A redirect is a failed push, named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_push_answered_with_a_redirect_failed() {
    let posts: Arc<Mutex<Vec<String>>> = Arc::default();
    let gets: Arc<Mutex<Vec<String>>> = Arc::default();
    let (seen_posts, seen_gets) = (Arc::clone(&posts), Arc::clone(&gets));
    let app = axum::Router::new()
        .route(
            "/login",
            axum::routing::get(move || {
                seen_gets.lock().unwrap().push("/login".into());
                async { "<html>login page</html>" }
            }),
        )
        .fallback(move |uri: axum::http::Uri| {
            seen_posts.lock().unwrap().push(uri.path().to_owned());
            async { axum::response::Redirect::to("/login") }
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app).into_future());
    let out = run_to_end(&["--push", &base, "--template", "stago_start4"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("a redirect to \"/login\" (not followed"),
        "{stderr}"
    );
    assert_eq!(
        *posts.lock().unwrap(),
        ["/api/OpenELIS-Global/analyzer/astm"]
    );
    assert!(gets.lock().unwrap().is_empty(), "the redirect was followed");
}
