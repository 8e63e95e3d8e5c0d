//! `--host-query --hl7`: the simulator as an analyzer in IHE LAW's query mode (LAB-27, LAB-28)
//! against a LIS played by the test over loopback MLLP: QBP^Q11, RSP^K11, the work order
//! (OML^O33) answered with ORL^O34, the results for what was ordered.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use mllp_hl7::{MllpCodec, MllpFrame};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

type Lis = Framed<TcpStream, MllpCodec>;

/// Runs an HL7 host query to the LIS `lis` listens on with `mindray_bs200`, `args` after.
async fn query(lis: &TcpListener, args: &[&str]) -> std::process::Output {
    let dest = format!("mllp://{}", lis.local_addr().unwrap());
    let mut all = vec!["--push", &dest, "--hl7", "--hl7-template", "mindray_bs200"];
    all.extend_from_slice(args);
    run_to_end(&all).await
}

async fn accept(lis: &TcpListener) -> Lis {
    let (s, _) = tokio::time::timeout(WAIT, lis.accept())
        .await
        .expect("the simulator connected")
        .unwrap();
    Framed::new(s, MllpCodec::new())
}

/// The next HL7 message from the simulator, its segments.
async fn receive(lis: &mut Lis) -> Vec<String> {
    loop {
        let frame = tokio::time::timeout(WAIT, lis.next())
            .await
            .expect("a message from the simulator")
            .expect("the connection open")
            .unwrap();
        if let MllpFrame::Message(payload) = frame {
            return String::from_utf8_lossy(&payload)
                .split('\r')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
    }
}

async fn send(lis: &mut Lis, segments: &[&str]) {
    lis.send(segments.join("\r").as_bytes()).await.unwrap();
}

/// Field `n` of the first segment `id` of `message` (MSH counted as HL7 counts it).
fn field(message: &[String], id: &str, n: usize) -> String {
    let segment = message
        .iter()
        .find(|s| s.starts_with(&format!("{id}|")))
        .unwrap_or_else(|| panic!("no {id} in {message:?}"));
    let shift = usize::from(id == "MSH");
    segment
        .split('|')
        .nth(n - shift)
        .unwrap_or_default()
        .to_owned()
}

/// The LIS's RSP^K11 accepting the query `qbp` with QAK-2 `status`.
fn rsp(qbp: &[String], status: &str) -> Vec<String> {
    let control = field(qbp, "MSH", 10);
    vec![
        format!("MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||RSP^K11^RSP_K11|R-{control}|P|2.5.1"),
        format!("MSA|AA|{control}"),
        format!("QAK|{}|{status}", field(qbp, "QPD", 2)),
        qbp.iter().find(|s| s.starts_with("QPD|")).unwrap().clone(),
    ]
}

/// The LIS's RSP^K11 refusing the query `qbp` (MSA-1 and QAK-2 `AE`) for `reason`.
fn rsp_refused(qbp: &[String], reason: &str) -> Vec<String> {
    vec![
        "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||RSP^K11^RSP_K11|R1|P|2.5.1".to_owned(),
        format!("MSA|AE|{}|{reason}", field(qbp, "MSH", 10)),
        "QAK||AE".to_owned(),
    ]
}

async fn send_owned(lis: &mut Lis, segments: &[String]) {
    let borrowed: Vec<&str> = segments.iter().map(String::as_str).collect();
    send(lis, &borrowed).await;
}

/// The LIS's ACK (`AA`) of the simulator's `results`.
async fn ack_results(lis: &mut Lis, results: &[String]) {
    let ack = format!("MSA|AA|{}", field(results, "MSH", 10));
    send(
        lis,
        &[
            "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||ACK^R01^ACK|A1|P|2.5.1",
            &ack,
        ],
    )
    .await;
}

/// Two specimens queried in turn. For the first the LIS answers RSP^K11 (QAK-2 `OK`) and a
/// work order (OML^O33: SPM, SAC, two ORC/OBR, one with a test the template does not know):
/// the simulator answers ORL^O34 `AA` and sends results for exactly those tests (the unknown
/// one not performed), the patient echoed. For the second the LIS has nothing (QAK-2 `NF`,
/// ORC-1 `DC`, LAW's negative query response): `AA`, no results. Exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_law_work_order_is_accepted_and_its_results_follow() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_side = async {
        let mut s = accept(&lis).await;
        let first = receive(&mut s).await;
        send_owned(&mut s, &rsp(&first, "OK")).await;
        send(
            &mut s,
            &[
                "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||OML^O33^OML_O33|W1|P|2.5.1",
                "PID|1||MRN-7||DOE^JANE||19700101|F",
                "SPM|1|SPEC-1&LIS||SER",
                "SAC|||SPEC-1",
                "ORC|NW|PL-1",
                "OBR|1|PL-1||GLU^Glucose^L",
                "ORC|NW|PL-2",
                "OBR|2|PL-2||XYZ^Unknown^L",
            ],
        )
        .await;
        let orl = receive(&mut s).await;
        let results = receive(&mut s).await;
        ack_results(&mut s, &results).await;
        let second = receive(&mut s).await;
        send_owned(&mut s, &rsp(&second, "NF")).await;
        send(
            &mut s,
            &[
                "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||OML^O33^OML_O33|W2|P|2.5.1",
                "SPM|1|SPEC-2",
                "ORC|DC",
            ],
        )
        .await;
        let second_orl = receive(&mut s).await;
        (first, orl, results, second, second_orl)
    };
    let (out, (first, orl, results, second, second_orl)) = tokio::join!(
        query(&lis, &["--host-query", "SPEC-1", "--host-query", "SPEC-2"]),
        lis_side
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    assert_eq!(field(&first, "MSH", 9), "QBP^Q11^QBP_Q11", "{first:?}");
    assert_eq!(field(&first, "MSH", 12), "2.5.1", "{first:?}");
    assert_eq!(field(&first, "QPD", 1), "WOS^Work Order Step^IHE_LABTF");
    assert_eq!(field(&first, "QPD", 3), "SPEC-1");
    assert_eq!(field(&first, "RCP", 1), "I");
    assert_eq!(field(&second, "QPD", 3), "SPEC-2");
    assert_ne!(field(&first, "MSH", 10), field(&second, "MSH", 10));

    assert_eq!(field(&orl, "MSH", 9), "ORL^O34^ORL_O34", "{orl:?}");
    assert_eq!(field(&orl, "MSA", 1), "AA");
    assert_eq!(field(&orl, "MSA", 2), "W1");
    assert_eq!(field(&second_orl, "MSA", 1), "AA", "{second_orl:?}");
    assert_eq!(field(&second_orl, "MSA", 2), "W2");

    assert!(
        field(&results, "MSH", 9).starts_with("ORU^R01"),
        "{results:?}"
    );
    assert_eq!(field(&results, "PID", 3), "MRN-7", "{results:?}");
    let tests: Vec<String> = results
        .iter()
        .filter(|s| s.starts_with("OBX|"))
        .map(|s| {
            s.split('|')
                .nth(3)
                .unwrap()
                .split('^')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(tests, ["GLU", "XYZ"], "{results:?}");
    let xyz = results
        .iter()
        .find(|s| s.starts_with("OBX|") && s.contains("|XYZ^"))
        .unwrap();
    assert!(xyz.contains("|TEST NOT PERFORMED|"), "{xyz}");
    assert!(
        stderr.contains("summary: queried 2, results sent for SPEC-1 (GLU, XYZ)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing found for SPEC-2 (QAK-2 NF)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ORC-1 DC: no work for specimen SPEC-2"),
        "{stderr}"
    );
}

/// Queries SPEC-1, answers with the work order `segments`, and checks that the simulator
/// refused it (ORL^O34 `AR` acknowledging it) and the run failed; returns the run's stderr.
async fn refused_work_order(segments: &[&str]) -> String {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_side = async {
        let mut s = accept(&lis).await;
        let qbp = receive(&mut s).await;
        send_owned(&mut s, &rsp(&qbp, "OK")).await;
        send(&mut s, segments).await;
        receive(&mut s).await
    };
    let (out, orl) = tokio::join!(query(&lis, &["--host-query", "SPEC-1"]), lis_side);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(field(&orl, "MSA", 1), "AR", "{orl:?}");
    assert_eq!(
        field(&orl, "MSA", 2),
        field(&[segments[0].to_owned()], "MSH", 10)
    );
    stderr
}

/// A work order naming another specimen than the one asked for (SPM-2) is refused with
/// ORL^O34 `AR`, as LAW asks, and the run fails saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_order_for_another_specimen_is_refused() {
    let stderr = refused_work_order(&[
        "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||OML^O33^OML_O33|W9|P|2.5.1",
        "SPM|1|OTHER-9",
        "ORC|NW|PL-9",
        "OBR|1|PL-9||GLU",
    ])
    .await;
    assert!(
        stderr.contains("work order for specimen OTHER-9, not for SPEC-1, the one asked for"),
        "{stderr}"
    );
}

/// A work order that holds the specimen asked for and another one besides is refused too:
/// its second specimen's orders were resulted under the first (ALT for SPEC-1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_order_with_another_specimen_besides_the_one_asked_for_is_refused() {
    let stderr = refused_work_order(&[
        "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||OML^O33^OML_O33|W2|P|2.5.1",
        "SPM|1|SPEC-1",
        "ORC|NW|PL-1",
        "OBR|1|PL-1||GLU",
        "SPM|2|S-2",
        "ORC|NW|PL-2",
        "OBR|1|PL-2||ALT",
    ])
    .await;
    assert!(
        stderr.contains("work order for specimen SPEC-1 also orders for S-2"),
        "{stderr}"
    );
}

/// A work order whose SPM-2 carries the LIS's filler ID beside the placer ID asked for
/// (`SPEC-1&LIS^F-100&LAB`), and a container ID of its own, names one specimen: accepted
/// (`AA`), not refused as "also orders for F-100".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_order_with_the_specimens_filler_and_container_ids_is_accepted() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_side = async {
        let mut s = accept(&lis).await;
        let qbp = receive(&mut s).await;
        send_owned(&mut s, &rsp(&qbp, "OK")).await;
        send(
            &mut s,
            &[
                "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||OML^O33^OML_O33|W1|P|2.5.1",
                "PID|1||MRN-7||DOE^JANE",
                "SPM|1|SPEC-1&LIS^F-100&LAB||SER",
                "SAC|||TUBE-4",
                "ORC|NW|PL-1",
                "OBR|1|PL-1||GLU^Glucose^L",
            ],
        )
        .await;
        let orl = receive(&mut s).await;
        let results = receive(&mut s).await;
        (orl, results)
    };
    let (out, (orl, results)) = tokio::join!(
        query(
            &lis,
            &["--host-query", "SPEC-1", "--host-query-timeout", "3"]
        ),
        lis_side
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(field(&orl, "MSA", 1), "AA", "ORL^O34: {orl:?}\n{stderr}");
    assert!(
        results
            .iter()
            .any(|s| s.starts_with("OBX|") && s.contains("|GLU^")),
        "{results:?}"
    );
}

/// Two work orders for the specimen before the RSP^K11, each answered `AA`: the tests of
/// both are resulted. The second used to replace the first, whose accepted tests were
/// never resulted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_work_order_is_resulted() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_side = async {
        let mut s = accept(&lis).await;
        let qbp = receive(&mut s).await;
        let mut orls = Vec::new();
        for (id, code) in [("W1", "GLU"), ("W2", "ALT")] {
            let oml = [
                format!("MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||OML^O33^OML_O33|{id}|P|2.5.1"),
                "SPM|1|SPEC-1".to_owned(),
                format!("ORC|NW|PL-{id}"),
                format!("OBR|1|PL-{id}||{code}"),
            ];
            send_owned(&mut s, &oml).await;
            orls.push(receive(&mut s).await);
        }
        send_owned(&mut s, &rsp(&qbp, "OK")).await;
        let results = receive(&mut s).await;
        ack_results(&mut s, &results).await;
        (orls, results)
    };
    let (out, (orls, results)) = tokio::join!(query(&lis, &["--host-query", "SPEC-1"]), lis_side);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(orls.iter().all(|o| field(o, "MSA", 1) == "AA"), "{orls:?}");
    let tests: Vec<&str> = results
        .iter()
        .filter(|s| s.starts_with("OBX|"))
        .filter_map(|s| s.split('|').nth(3)?.split('^').next())
        .collect();
    assert_eq!(tests, ["GLU", "ALT"], "results: {results:?}\n{stderr}");
    assert!(out.status.success(), "{stderr}");
}

/// A LIS that refuses the query (MSA-1 `AE`) fails the run at once with its reason; one that
/// acknowledges it but never sends the work order fails it after `--host-query-timeout`,
/// saying what was missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_or_unanswered_hl7_query_fails_the_run_with_the_reason() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refusing = async {
        let mut s = accept(&lis).await;
        let qbp = receive(&mut s).await;
        send_owned(&mut s, &rsp_refused(&qbp, "unknown query name")).await;
        s
    };
    let (out, _s) = tokio::join!(query(&lis, &["--host-query", "SPEC-1"]), refusing);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("refused the host query for SPEC-1: MSA-1 AE, QAK-2 AE unknown query name"),
        "{stderr}"
    );

    let silent = async {
        let mut s = accept(&lis).await;
        let qbp = receive(&mut s).await;
        send_owned(&mut s, &rsp(&qbp, "OK")).await;
        s
    };
    let (out, _s) = tokio::join!(
        query(
            &lis,
            &["--host-query", "SPEC-1", "--host-query-timeout", "1"]
        ),
        silent
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "did not answer the host query for SPEC-1 within 1s; RSP^K11 received, no OML^O33"
        ),
        "{stderr}"
    );
}

/// `--dry-run` prints the QBP^Q11; a destination or template that cannot carry it is refused
/// before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hl7_dry_run_prints_the_query_and_bad_setups_are_refused() {
    let out = run_to_end(&[
        "--push",
        "mllp://127.0.0.1:1",
        "--hl7",
        "--hl7-template",
        "mindray_bs200",
        "--host-query",
        "A|B",
        "--dry-run",
    ])
    .await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("|QBP^Q11^QBP_Q11|"), "{text}");
    // The specimen's `|` is escaped, not a field separator.
    assert!(text.contains("|A\\F\\B\nRCP|I\n"), "{text}");

    let cases: &[(&[&str], &str)] = &[
        (
            &["--push", "tcp://127.0.0.1:1", "--hl7"][..],
            "--host-query with --hl7 needs an mllp:// destination",
        ),
        (
            &[
                "--push",
                "mllp://127.0.0.1:1",
                "--hl7",
                "--hl7-template",
                "stago_start4",
            ][..],
            "--host-query: an HL7 host query needs an HL7 template",
        ),
        (
            // Once a panic: the deadline overflowed the clock.
            &[
                "--push",
                "mllp://127.0.0.1:1",
                "--hl7",
                "--hl7-template",
                "mindray_bs200",
                "--host-query-timeout",
                "1e19",
            ][..],
            "invalid value '1e19' for '--host-query-timeout <SECONDS>': \"1e19\" is more than 3600 seconds",
        ),
    ];
    assert_refused(cases, &["--host-query", "S1"]).await;
}

/// `POST /simulate/hl7/{name}/host-query`: the same exchange driven over HTTP; the reply lists
/// the work ordered. An `mllp://` destination is required, and a LIS that does not send its
/// work order in time is a 504 naming what was missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_runs_an_hl7_host_query() {
    let sim = api_sim(&[]);
    let url = sim.api_url("/simulate/hl7/mindray_bs200/host-query");
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = lis.local_addr().unwrap();
    let lis_side = async {
        let mut s = accept(&lis).await;
        let qbp = receive(&mut s).await;
        send_owned(&mut s, &rsp(&qbp, "OK")).await;
        send(
            &mut s,
            &[
                "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||OML^O33^OML_O33|W1|P|2.5.1",
                "SPM|1|SPEC-1",
                "ORC|NW|PL-1",
                "OBR|1|PL-1||ALT",
            ],
        )
        .await;
        receive(&mut s).await;
        let results = receive(&mut s).await;
        ack_results(&mut s, &results).await;
        (qbp, results)
    };
    let body = format!(r#"{{"destination": "mllp://{addr}", "sample_id": "SPEC-1"}}"#);
    let ((status, v), (qbp, results)) = tokio::join!(post_json(&url, body), lis_side);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["orders"],
        serde_json::json!([{"sample_id": "SPEC-1", "tests": ["ALT"]}])
    );
    assert_eq!(v["results_sent"], true, "{v}");
    assert_eq!(field(&qbp, "QPD", 3), "SPEC-1");
    assert!(
        results.iter().any(|s| s.starts_with("OBX|1|NM|ALT^")),
        "{results:?}"
    );

    let silent = async {
        let mut s = accept(&lis).await;
        let qbp = receive(&mut s).await;
        send_owned(&mut s, &rsp(&qbp, "OK")).await;
        s
    };
    let body = format!(r#"{{"destination": "mllp://{addr}", "sample_id": "S9", "timeout": 0.5}}"#);
    let ((status, v), _s) = tokio::join!(post_json(&url, body), silent);
    assert_eq!(status, 504, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("RSP^K11 received, no OML^O33"),
        "{v}"
    );

    let (status, v) = post_json(
        &url,
        r#"{"destination": "tcp://127.0.0.1:1", "sample_id": "S"}"#,
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("destination must be mllp://host:port"),
        "{v}"
    );
}

/// `-c 2`: a refused query fails its round, not the run. The next round asks again on a new
/// connection; the run exits 1 and the summary counts the failed round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_round_is_followed_by_the_next_on_a_new_connection() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_side = async {
        let mut first = accept(&lis).await;
        let qbp = receive(&mut first).await;
        send_owned(&mut first, &rsp_refused(&qbp, "database busy")).await;
        let mut second = accept(&lis).await;
        let again = receive(&mut second).await;
        send_owned(&mut second, &rsp(&again, "NF")).await;
        send(
            &mut second,
            &[
                "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||OML^O33^OML_O33|W2|P|2.5.1",
                "SPM|1|SPEC-1",
                "ORC|DC",
            ],
        )
        .await;
        let orl = receive(&mut second).await;
        (qbp, again, orl)
    };
    let (out, (qbp, again, orl)) = tokio::join!(
        query(&lis, &["--host-query", "SPEC-1", "-c", "2", "-i", "0"]),
        lis_side
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(field(&again, "QPD", 3), "SPEC-1");
    assert_ne!(field(&qbp, "MSH", 10), field(&again, "MSH", 10));
    assert_eq!(field(&orl, "MSA", 1), "AA", "{orl:?}");
    assert!(
        stderr.contains("round 1 failed: ") && stderr.contains("MSA-1 AE, QAK-2 AE database busy"),
        "{stderr}"
    );
    assert!(
        stderr.contains("summary: 2 round(s) (1 failed), queried 1, results sent for 0\n"),
        "{stderr}"
    );
}

/// The LIS's answer when it has no work for the query `qbp` (RSP^K11 QAK-2 `NF`, a work
/// order with ORC-1 `DC`); returns the simulator's ORL^O34.
async fn answer_no_work(lis: &mut Lis, qbp: &[String]) -> Vec<String> {
    send_owned(lis, &rsp(qbp, "NF")).await;
    send(
        lis,
        &[
            "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||OML^O33^OML_O33|W1|P|2.5.1",
            "SPM|1|SPEC-1",
            "ORC|DC",
        ],
    )
    .await;
    receive(lis).await
}

/// `-c 2 -i 1`: between the rounds the LIS sends a message nobody asked for and closes the
/// connection (an idle timeout, a restart). The simulator reads the connection while it
/// pauses, as a listening port would: the message is logged, and the second round asks
/// again on a new connection, instead of failing on the closed one. Exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_lis_closes_between_rounds_is_opened_again() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_side = async {
        let mut first = accept(&lis).await;
        let qbp = receive(&mut first).await;
        let orl = answer_no_work(&mut first, &qbp).await;
        send(
            &mut first,
            &[
                "MSH|^~\\&|LIS|LAB|MINDRAY|BS200|20261122||ADT^A08^ADT_A01|U1|P|2.5.1",
                "PID|1||PAT-1",
            ],
        )
        .await;
        drop(first);
        let mut second = accept(&lis).await;
        let again = receive(&mut second).await;
        answer_no_work(&mut second, &again).await;
        (qbp, orl, again)
    };
    let (out, (qbp, orl, again)) = tokio::join!(
        query(&lis, &["--host-query", "SPEC-1", "-c", "2", "-i", "1"]),
        lis_side
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(field(&orl, "MSA", 1), "AA", "{orl:?}");
    assert_eq!(field(&again, "QPD", 3), "SPEC-1");
    assert_ne!(field(&qbp, "MSH", 10), field(&again, "MSH", 10));
    assert!(
        stderr.contains("ADT^A08^ADT_A01 (MSH-10 U1) between host-query rounds"),
        "{stderr}"
    );
    assert!(
        stderr.contains("closed the connection between host-query rounds"),
        "{stderr}"
    );
    assert!(
        stderr.contains("summary: 2 round(s), queried 2, results sent for 0\n"),
        "{stderr}"
    );
}
