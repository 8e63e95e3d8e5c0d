//! `--host-query`: the simulator as an analyzer in query mode against a LIS played by the test
//! over loopback: the query, the LIS's order download, the results for what was ordered.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::net::{TcpListener, TcpStream};

/// The LIS's answer to a query: header, patient, `orders`, terminator.
fn orders<'a>(orders: &[&'a str]) -> Vec<&'a str> {
    let mut records = vec!["H|\\^&|||LIS", "P|1"];
    records.extend_from_slice(orders);
    records.push("L|1|N");
    records
}

/// A LIS listening on loopback, and the destination naming it.
async fn lis() -> (TcpListener, String) {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dest = format!("tcp://{}", lis.local_addr().unwrap());
    (lis, dest)
}

/// Runs a host query to `dest` with `stago_start4`, `args` after.
async fn query(dest: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--push", dest, "--template", "stago_start4"];
    all.extend_from_slice(args);
    run_to_end(&all).await
}

/// Runs a `-C -i 0` host query for `specimen` to `dest` with `stago_start4` until `ready`,
/// then stops it with Ctrl-C (SIGINT). Its output, and when the signal was sent.
async fn query_until_ctrl_c(
    dest: &str,
    specimen: &str,
    ready: tokio::sync::oneshot::Receiver<()>,
) -> (std::process::Output, Instant) {
    let child = command(&[
        "--push",
        dest,
        "--template",
        "stago_start4",
        "--host-query",
        specimen,
        "-C",
        "-i",
        "0",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn simulator");
    tokio::time::timeout(WAIT, ready)
        .await
        .expect("the LIS side got as far as it should")
        .unwrap();
    let stopped = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .expect("SIGINT");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    (out, stopped)
}

/// Accepts the simulator's connection and reads its query as the LIS.
async fn accept_query(lis: &TcpListener) -> (TcpStream, Vec<String>) {
    let (mut s, _) = tokio::time::timeout(WAIT, lis.accept())
        .await
        .expect("the simulator connected")
        .unwrap();
    let query = receive_records(&mut s).await;
    (s, query)
}

/// Plays the LIS for one host query per answer on the simulator's connection: receives the
/// query, sends the answer and, when the answer orders something (an O record ending in
/// O.26 `Q`), receives the results. Each query, and its results (empty when none were due).
fn lis_answering(
    lis: TcpListener,
    answers: Vec<Vec<&'static str>>,
) -> tokio::task::JoinHandle<Vec<(Vec<String>, Vec<String>)>> {
    tokio::spawn(async move {
        let (mut s, _) = tokio::time::timeout(WAIT, lis.accept())
            .await
            .expect("the simulator connected")
            .unwrap();
        let mut exchanges = Vec::new();
        for answer in answers {
            let query = receive_records(&mut s).await;
            send_records(&mut s, &answer).await;
            let orders = answer
                .iter()
                .any(|r| r.starts_with("O|") && r.ends_with("|Q"));
            let results = if orders {
                receive_records(&mut s).await
            } else {
                Vec::new()
            };
            exchanges.push((query, results));
        }
        exchanges
    })
}

/// Two specimens, queried one at a time as analyzers do (one barcode read, one query): the LIS
/// downloads each one's orders (O.26 `Q`), one with a test the template does not know, and the
/// simulator sends results for exactly those tests after each answer, on the same connection,
/// and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lis_orders_and_the_results_follow_on_the_same_connection() {
    let (lis, dest) = lis().await;
    let lis_side = lis_answering(
        lis,
        vec![
            vec![
                "H|\\^&|||LIS",
                "P|1||PID-9||Doe^Jane",
                "O|1|SPEC-1|SPEC-1^R1^2|^^^PT\\^^^XYZ|R||||||A||||||||||||||Q",
                "L|1|N",
            ],
            orders(&["O|1|SPEC-2||^^^INR|R||||||N||||||||||||||Q"]),
        ],
    );
    let out = query(
        &dest,
        &[
            "--host-query",
            "SPEC-1",
            "--host-query",
            "SPEC-2",
            "--seed",
            "1",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut exchanges = lis_side.await.unwrap().into_iter();
    let (first_query, first_results) = exchanges.next().unwrap();
    let (second_query, second_results) = exchanges.next().unwrap();
    assert_eq!(first_query.len(), 3, "{first_query:?}");
    assert!(first_query[0].starts_with("H|\\^&|"), "{first_query:?}");
    assert_eq!(first_query[1], "Q|1|^SPEC-1||^^^ALL||||||||O");
    assert_eq!(first_query[2], "L|1|N");
    assert_eq!(second_query[1], "Q|1|^SPEC-2||^^^ALL||||||||O");

    let tests = |results: &[String]| -> Vec<String> {
        results
            .iter()
            .filter(|r| r.starts_with("R|"))
            .map(|r| r.split('|').nth(2).unwrap().to_owned())
            .collect()
    };
    assert!(
        first_results.iter().any(|r| r.starts_with("O|1|SPEC-1|")),
        "{first_results:?}"
    );
    assert_eq!(
        tests(&first_results),
        ["^^^PT", "^^^XYZ"],
        "{first_results:?}"
    );
    let xyz = first_results
        .iter()
        .find(|r| r.starts_with("R|") && r.contains("^^^XYZ"))
        .unwrap();
    assert!(xyz.contains("|TEST NOT PERFORMED|"), "{xyz}");
    // The patient the LIS sent the order under comes back with its results.
    assert!(
        first_results
            .iter()
            .any(|r| r.starts_with("P|1||PID-9||Doe^Jane")),
        "{first_results:?}"
    );
    assert!(
        second_results.iter().any(|r| r.starts_with("O|1|SPEC-2|")),
        "{second_results:?}"
    );
    assert_eq!(tests(&second_results), ["^^^INR"], "{second_results:?}");
    assert!(
        stderr.contains("summary: queried 2, results sent for SPEC-1 (PT, XYZ); SPEC-2 (INR)"),
        "{stderr}"
    );
}

/// The order download an IMMULITE 2500 expects after `Q|1|^123ABC||ALL||||||||O` (a public
/// LIS's feature file: one O record per test, all numbered 1, no O.26), sent as the LIS's
/// answer: the six tests come back as one specimen's results, in the order downloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immulite_order_download_is_answered_test_by_test() {
    let download = include_str!("data/siemens-immulite/order_download_expected_lines.txt");
    // Each line is the frame number, then the record.
    let records: Vec<&str> = download.lines().map(|l| &l[1..]).collect();
    let (lis, dest) = lis().await;
    let lis_side = tokio::spawn(async move {
        let (mut s, query) = accept_query(&lis).await;
        send_records(&mut s, &records).await;
        (query, receive_records(&mut s).await)
    });
    let out = query(&dest, &["--host-query", "123ABC"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (query, results) = lis_side.await.unwrap();
    assert_eq!(query[1], "Q|1|^123ABC||^^^ALL||||||||O");
    let orders: Vec<&String> = results.iter().filter(|r| r.starts_with("O|")).collect();
    assert_eq!(orders.len(), 1, "{results:?}");
    assert!(orders[0].starts_with("O|1|123ABC|"), "{results:?}");
    let tests: Vec<&str> = results
        .iter()
        .filter(|r| r.starts_with("R|"))
        .map(|r| r.split('|').nth(2).unwrap())
        .collect();
    assert_eq!(
        tests,
        ["^^^TSH", "^^^FT3", "^^^FT4", "^^^FOO", "^^^BAR", "^^^BAZ"],
        "{results:?}"
    );
}

/// A LIS with nothing to do for the specimen answers O.26 `Z` (no record of the patient) or
/// `Y`: no results are sent, the run says so and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_order_on_record_gets_no_results() {
    let (lis, dest) = lis().await;
    let lis_side = tokio::spawn(async move {
        let (mut s, _) = accept_query(&lis).await;
        send_records(
            &mut s,
            &orders(&["O|1|SPEC-9||^^^ALL|R||||||||||||||||||||Z"]),
        )
        .await;
        // Nothing more: the simulator closes the connection.
        let mut rest = Vec::new();
        tokio::time::timeout(
            WAIT,
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut rest),
        )
        .await
        .expect("the simulator closed the connection")
        .unwrap();
        rest
    });
    let out = query(&dest, &["--host-query", "SPEC-9"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(lis_side.await.unwrap(), b"", "nothing after the answer");
    assert!(
        stderr.contains("O.26 Z (no order on record, not an order) for specimen SPEC-9"),
        "{stderr}"
    );
    assert!(stderr.contains("no results sent"), "{stderr}");
}

/// A LIS that accepts the query and then says nothing: after `--host-query-timeout` the
/// simulator withdraws the query (the same Q records with Q.13 `A`, as cobas analyzers do) and
/// the run fails, naming the LIS and the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_query_is_withdrawn_and_the_run_fails() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = lis.local_addr().unwrap();
    let dest = format!("tcp://{addr}");
    let lis_side = tokio::spawn(async move {
        let (mut s, _) = accept_query(&lis).await;
        let started = Instant::now();
        let withdrawal = receive_records(&mut s).await;
        (started.elapsed(), withdrawal)
    });
    let out = query(
        &dest,
        &["--host-query", "SPEC-5", "--host-query-timeout", "1"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let (waited, withdrawal) = lis_side.await.unwrap();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert_eq!(
        withdrawal[1], "Q|1|^SPEC-5||^^^ALL||||||||A",
        "{withdrawal:?}"
    );
    assert!(
        stderr.contains(&format!(
            "{addr} did not answer the host query for SPEC-5 within 1s; query withdrawn (Q.13 A)"
        )),
        "{stderr}"
    );
}

/// `--dry-run` prints the query; a destination or template that cannot carry it is refused
/// before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_query_and_bad_setups_are_refused() {
    let out = run_to_end(&[
        "--push",
        "tcp://127.0.0.1:1",
        "--template",
        "stago_start4",
        "--host-query",
        "A|B",
        "--dry-run",
    ])
    .await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // The specimen's `|` is escaped (`&` is the escape character), not a field separator.
    assert!(text.contains("\nQ|1|^A&F&B||^^^ALL||||||||O\n"), "{text}");

    let cases: &[(&[&str], &str)] = &[
        (
            &["--push", "mllp://127.0.0.1:1", "--template", "stago_start4"][..],
            "--host-query needs a tcp:// destination",
        ),
        (
            &["--push", "http://127.0.0.1:1", "--template", "stago_start4"][..],
            "--host-query needs a tcp:// destination",
        ),
        (
            &["--push", "tcp://127.0.0.1:1"][..],
            "--host-query needs --template",
        ),
        (
            &["--push", "tcp://127.0.0.1:1", "--template", "mindray_bs200"][..],
            "--host-query: a host query needs an ASTM template",
        ),
        (
            &["--template", "stago_start4"][..],
            "--host-query needs --push",
        ),
        (
            &[
                "--push",
                "tcp://127.0.0.1:1",
                "--template",
                "stago_start4",
                "--host-query",
                " ",
            ][..],
            "--host-query: a host query needs specimen IDs",
        ),
    ];
    assert_refused(cases, &["--host-query", "S1"]).await;
}

/// `POST /simulate/astm/{name}/host-query`: the same exchange driven over HTTP, as a harness
/// does; the reply lists the orders received. A LIS that does not answer in time is a 504,
/// one that is not there a 502, and a body that cannot work a 400, each with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_runs_a_host_query() {
    let sim = api_sim(&[]);
    let url = sim.api_url("/simulate/astm/stago_start4/host-query");
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = lis.local_addr().unwrap();
    let lis_side = lis_answering(
        lis,
        vec![
            orders(&["O|1|SPEC-1||^^^PT|R||||||||||||||||||||Q"]),
            orders(&["O|1|SPEC-2||^^^ALL|R||||||||||||||||||||Y"]),
        ],
    );
    let body = format!(r#"{{"destination": "tcp://{addr}", "specimens": ["SPEC-1", "SPEC-2"]}}"#);
    let (status, v) = post_json(&url, body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["orders"],
        serde_json::json!([{"sample_id": "SPEC-1", "tests": ["PT"]}])
    );
    assert_eq!(v["results_sent"], true, "{v}");
    assert!(
        v["not_orders"][0].as_str().unwrap().contains("O.26 Y"),
        "{v}"
    );
    let exchanges = lis_side.await.unwrap();
    let (results, second_query) = (&exchanges[0].1, &exchanges[1].0);
    assert_eq!(
        second_query[1], "Q|1|^SPEC-2||^^^ALL||||||||O",
        "{second_query:?}"
    );
    assert!(
        results.iter().any(|r| r.starts_with("O|1|SPEC-1|")),
        "{results:?}"
    );

    // A LIS that takes the query and says nothing.
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = lis.local_addr().unwrap();
    let lis_side = tokio::spawn(async move {
        let (mut s, _) = accept_query(&lis).await;
        receive_records(&mut s).await
    });
    let body = format!(r#"{{"destination": "tcp://{addr}", "sample_id": "S9", "timeout": 0.5}}"#);
    let (status, v) = post_json(&url, body).await;
    assert_eq!(status, 504, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("query withdrawn (Q.13 A)"),
        "{v}"
    );
    assert_eq!(lis_side.await.unwrap()[1], "Q|1|^S9||^^^ALL||||||||A");

    // Nobody listening.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let (status, v) = post_json(
        &url,
        format!(r#"{{"destination": "tcp://{addr}", "sample_id": "S1"}}"#),
    )
    .await;
    assert_eq!(status, 502, "{v}");

    for (body, error) in [
        (r#"{"sample_id": "S1"}"#, "destination is required"),
        (
            r#"{"destination": "mllp://127.0.0.1:1", "sample_id": "S1"}"#,
            "must be tcp://",
        ),
        (
            r#"{"destination": "tcp://127.0.0.1:1"}"#,
            "needs specimen IDs",
        ),
        (
            r#"{"destination": "tcp://127.0.0.1:1", "specimens": [1]}"#,
            "must hold strings",
        ),
        (
            r#"{"destination": "tcp://127.0.0.1:1", "sample_id": "S1", "timeout": -1}"#,
            "timeout must be",
        ),
    ] {
        let (status, v) = post_json(&url, body.to_owned()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(error), "{body}: {v}");
    }
    // Each specimen is a query message built before the exchange: half a million in a
    // 2 MiB body took 200 MB. At most 1000, of at most 256 bytes each.
    let many = vec!["a"; 1001];
    let long = "x".repeat(257);
    for (body, error) in [
        (
            serde_json::json!({"destination": "tcp://127.0.0.1:1", "specimens": many}),
            "specimens: 1001 given, at most 1000 per request",
        ),
        (
            serde_json::json!({"destination": "tcp://127.0.0.1:1", "specimens": [long]}),
            "specimens: an ID of 257 bytes, at most 256",
        ),
    ] {
        let (status, v) = post_json(&url, body.to_string()).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"], error, "{v}");
    }
    let (status, _) = post_json(
        &sim.api_url("/simulate/astm/mindray_bs200/host-query"),
        r#"{"destination": "tcp://127.0.0.1:1", "sample_id": "S1"}"#.to_owned(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post_json(
        &sim.api_url("/simulate/astm/nope/host-query"),
        r#"{"destination": "tcp://127.0.0.1:1", "sample_id": "S1"}"#.to_owned(),
    )
    .await;
    assert_eq!(status, 404);
}

/// A LIS that hangs up after taking the query: the run fails at once with the reason, without
/// waiting for the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lis_hanging_up_after_the_query_fails_the_run_with_the_reason() {
    let (lis, dest) = lis().await;
    tokio::spawn(async move {
        let (s, _) = accept_query(&lis).await;
        drop(s);
    });
    let started = Instant::now();
    let out = query(
        &dest,
        &["--host-query", "SPEC-7", "--host-query-timeout", "10"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the LIS closed the connection before answering"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// `-c 2 -i 0.3`: every specimen is asked for again in a second round, 0.3 s after the first
/// ends, on the same connection, each query a new message (its own H.3 message ID); the
/// summary adds the rounds up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_ask_for_every_specimen_again_after_the_pause() {
    let (lis, dest) = lis().await;
    let order = |specimen: &'static str| orders(&[specimen]);
    let no_order = "O|1|SPEC-2||^^^ALL|R||||||||||||||||||||Y";
    let lis_side = tokio::spawn(async move {
        let (mut s, _) = tokio::time::timeout(WAIT, lis.accept())
            .await
            .expect("the simulator connected")
            .unwrap();
        let mut queries = Vec::new();
        let mut pause = Duration::ZERO;
        for (i, answer) in [
            order("O|1|SPEC-1||^^^PT|R||||||N||||||||||||||Q"),
            order(no_order),
            order("O|1|SPEC-1||^^^INR|R||||||N||||||||||||||Q"),
            order("O|1|SPEC-2||^^^PT|R||||||N||||||||||||||Q"),
        ]
        .into_iter()
        .enumerate()
        {
            let idle = Instant::now();
            queries.push(receive_records(&mut s).await);
            if i == 2 {
                pause = idle.elapsed();
            }
            send_records(&mut s, &answer).await;
            if answer[2] != no_order {
                receive_records(&mut s).await;
            }
        }
        (queries, pause)
    });
    let out = query(
        &dest,
        &[
            "--host-query",
            "SPEC-1",
            "--host-query",
            "SPEC-2",
            "-c",
            "2",
            "-i",
            "0.3",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (queries, pause) = lis_side.await.unwrap();
    let asked: Vec<&str> = queries.iter().map(|q| q[1].as_str()).collect();
    assert_eq!(
        asked,
        [
            "Q|1|^SPEC-1||^^^ALL||||||||O",
            "Q|1|^SPEC-2||^^^ALL||||||||O",
            "Q|1|^SPEC-1||^^^ALL||||||||O",
            "Q|1|^SPEC-2||^^^ALL||||||||O",
        ]
    );
    let mut message_ids: Vec<&str> = queries
        .iter()
        .map(|q| q[0].split('|').nth(2).unwrap())
        .collect();
    message_ids.sort_unstable();
    message_ids.dedup();
    assert_eq!(message_ids.len(), 4, "{queries:?}");
    assert!(pause >= Duration::from_millis(250), "{pause:?}");
    assert!(
        stderr.contains("round 2: queried 2, results sent for SPEC-1 (INR); SPEC-2 (PT)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("summary: 2 round(s), queried 4, results sent for 3\n"),
        "{stderr}"
    );
}

/// The LIS may open the line between two rounds (`-i`): its ENQ is answered at once and its
/// message kept. The link was not read during the pause, so the ENQ went unanswered until the
/// next round's query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lis_can_send_between_rounds() {
    let (lis, dest) = lis().await;
    let no_order = orders(&["O|1|SPEC-1||^^^ALL|R||||||||||||||||||||Y"]);
    let lis_side = tokio::spawn(async move {
        let (mut s, first) = accept_query(&lis).await;
        send_records(&mut s, &no_order).await;
        write(&mut s, &[ENQ]).await;
        let reply = tokio::time::timeout(Duration::from_millis(1500), read_byte(&mut s)).await;
        assert_eq!(
            reply.ok(),
            Some(ACK),
            "no ACK to the LIS's ENQ between rounds"
        );
        write(
            &mut s,
            &frame(1, b"H|\\^&|||LIS\rL|1|N\r", astm_frame::FrameEnd::End),
        )
        .await;
        assert_eq!(read_byte(&mut s).await, ACK);
        write(&mut s, &[EOT]).await;
        let second = receive_records(&mut s).await;
        send_records(&mut s, &no_order).await;
        (first, second)
    });
    let out = query(&dest, &["--host-query", "SPEC-1", "-c", "2", "-i", "3"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (first, second) = lis_side.await.unwrap();
    assert_eq!(first[1], "Q|1|^SPEC-1||^^^ALL||||||||O");
    assert_eq!(second[1], "Q|1|^SPEC-1||^^^ALL||||||||O");
    assert!(
        stderr.contains("18 bytes received from the LIS"),
        "{stderr}"
    );
}

/// A LIS closing the connection after each round's results (as the OpenELIS bridge closes
/// after EOT): the next round opens a new one. It reused the closed one and failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_round_reconnects_to_a_lis_that_closed_the_connection() {
    let (lis, dest) = lis().await;
    let lis_side = tokio::spawn(async move {
        let mut results = Vec::new();
        for test in ["PT", "INR"] {
            let (mut s, query) = accept_query(&lis).await;
            assert_eq!(query[1], "Q|1|^SPEC-1||^^^ALL||||||||O");
            let order = format!("O|1|SPEC-1||^^^{test}|R||||||N||||||||||||||Q");
            send_records(&mut s, &orders(&[&order])).await;
            results.push(receive_records(&mut s).await);
            drop(s); // closes the connection after the round
        }
        results
    });
    let out = query(&dest, &["--host-query", "SPEC-1", "-c", "2", "-i", "0.3"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("summary: 2 round(s), queried 2, results sent for 2\n"),
        "{stderr}"
    );
    let results = lis_side.await.unwrap();
    assert!(
        results[0].iter().any(|r| r.starts_with("R|1|^^^PT|")),
        "{results:?}"
    );
    assert!(
        results[1].iter().any(|r| r.starts_with("R|1|^^^INR|")),
        "{results:?}"
    );
}

/// `-C`: rounds until Ctrl-C. Interrupted while waiting for the LIS's fourth answer, the run
/// stops at once, counts the three rounds done (not the one cut short) and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_rounds_stop_on_ctrl_c_with_the_rounds_done() {
    let (lis, dest) = lis().await;
    let (answered, answered_three) = tokio::sync::oneshot::channel();
    let lis_side = tokio::spawn(async move {
        let (mut s, _) = tokio::time::timeout(WAIT, lis.accept())
            .await
            .expect("the simulator connected")
            .unwrap();
        for _ in 0..3 {
            receive_records(&mut s).await;
            send_records(
                &mut s,
                &orders(&["O|1|SPEC-3||^^^ALL|R||||||||||||||||||||Z"]),
            )
            .await;
        }
        // The fourth query is left unanswered.
        let fourth = receive_records(&mut s).await;
        answered.send(()).unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(
            WAIT,
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut rest),
        )
        .await
        .expect("the simulator closed the connection")
        .unwrap();
        fourth
    });
    let (out, stopped) = query_until_ctrl_c(&dest, "SPEC-3", answered_three).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Well before the 15 s the LIS had to answer.
    assert!(stopped.elapsed() < Duration::from_secs(10), "{stderr}");
    assert_eq!(lis_side.await.unwrap()[1], "Q|1|^SPEC-3||^^^ALL||||||||O");
    assert!(
        stderr.contains("summary: 3 round(s), queried 3, results sent for 0 (interrupted)"),
        "{stderr}"
    );
}

/// `-c 2`: a failed round does not end the run. The LIS closes the first connection without
/// answering; the failure is reported with the pause before the next round, which asks again
/// on a new connection and gets its results. The exit code is 1, as for a push with a failed
/// message, and the summary counts the failed round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_round_is_reported_and_the_next_asks_again_on_a_new_connection() {
    let (lis, dest) = lis().await;
    let lis_side = tokio::spawn(async move {
        let (first, _) = accept_query(&lis).await;
        drop(first);
        let (mut second, query) = accept_query(&lis).await;
        send_records(
            &mut second,
            &orders(&["O|1|SPEC-1||^^^PT|R||||||N||||||||||||||Q"]),
        )
        .await;
        (query, receive_records(&mut second).await)
    });
    let out = query(&dest, &["--host-query", "SPEC-1", "-c", "2", "-i", "0.2"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let (query, results) = lis_side.await.unwrap();
    assert_eq!(query[1], "Q|1|^SPEC-1||^^^ALL||||||||O");
    assert!(
        results.iter().any(|r| r.starts_with("R|1|^^^PT")),
        "{results:?}"
    );
    assert!(stderr.contains("round 1 failed: "), "{stderr}");
    assert!(stderr.contains("; next round in 0.2 s\n"), "{stderr}");
    assert!(
        stderr.contains(
            "round 2: queried 1, results sent for SPEC-1 (PT), after 1 failed round(s) in a row"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("summary: 2 round(s) (1 failed), queried 1, results sent for 1\n"),
        "{stderr}"
    );
}

/// `-C -i 0`: a LIS that keeps dropping the connection is asked again after a pause that
/// doubles from 0.1 s (a push's backoff), not in a tight loop; the first round it answers
/// resets the pause. Ctrl-C ends the run with exit 1, a round having failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_rounds_back_off_while_the_lis_fails_them() {
    let (lis, dest) = lis().await;
    let (answered, answered_rx) = tokio::sync::oneshot::channel();
    let lis_side = tokio::spawn(async move {
        let mut gaps = Vec::new();
        let mut last = None::<Instant>;
        for _ in 0..3 {
            let (s, _) = accept_query(&lis).await;
            if let Some(at) = last {
                gaps.push(at.elapsed());
            }
            drop(s);
            last = Some(Instant::now());
        }
        let (mut s, _) = accept_query(&lis).await;
        gaps.push(last.unwrap().elapsed());
        send_records(
            &mut s,
            &orders(&["O|1|SPEC-1||^^^ALL|R||||||||||||||||||||Y"]),
        )
        .await;
        // The next round comes at once (-i 0): the pause was reset.
        let next = Instant::now();
        receive_records(&mut s).await;
        gaps.push(next.elapsed());
        answered.send(()).unwrap();
        // Held open until the run is over: round 5 is the one Ctrl-C cuts short.
        (gaps, s)
    });
    let (out, _) = query_until_ctrl_c(&dest, "SPEC-1", answered_rx).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let (gaps, _s) = lis_side.await.unwrap();
    for (gap, least) in gaps.iter().zip([100, 200, 400]) {
        assert!(*gap >= Duration::from_millis(least), "{gaps:?}");
    }
    assert!(gaps[3] < Duration::from_millis(400), "{gaps:?}");
    for (round, pause) in [(1, "0.1"), (2, "0.2"), (3, "0.4")] {
        assert!(
            stderr.contains(&format!("round {round} failed: ")),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("; next round in {pause} s\n")),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("round 4: queried 1, no order from "),
        "{stderr}"
    );
    assert!(
        stderr.contains("after 3 failed round(s) in a row"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "summary: 4 round(s) (3 failed), queried 1, results sent for 0 (interrupted)"
        ),
        "{stderr}"
    );
}

/// Plays a LIS that interrupts the transfer under way (§6.3.5.3): the first frame is answered
/// with EOT in place of its ACK.
async fn interrupt_the_query(s: &mut TcpStream) {
    assert_eq!(read_byte(s).await, ENQ);
    write(s, &[ACK]).await;
    assert_eq!(read_byte(s).await, STX);
    read_frame_rest(s).await;
    write(s, &[EOT]).await;
    assert_eq!(read_byte(s).await, EOT);
}

/// The LIS interrupts the query's transfer twice, sending a message each time: a "no order"
/// (O.26 `Z`) and then its order download. Both are taken as the answer, neither dropped: the
/// results follow for the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_the_lis_sent_while_the_query_went_out_is_read() {
    let (lis, dest) = lis().await;
    let lis_side = tokio::spawn(async move {
        let (mut s, _) = tokio::time::timeout(WAIT, lis.accept())
            .await
            .expect("the simulator connected")
            .unwrap();
        interrupt_the_query(&mut s).await;
        send_records(
            &mut s,
            &orders(&["O|1|SPEC-1||^^^ALL|R||||||||||||||||||||Z"]),
        )
        .await;
        interrupt_the_query(&mut s).await;
        send_records(
            &mut s,
            &orders(&["O|1|SPEC-1||^^^PT|R||||||A||||||||||||||Q"]),
        )
        .await;
        let query = receive_records(&mut s).await;
        (query, receive_records(&mut s).await)
    });
    let out = query(&dest, &["--host-query", "SPEC-1", "--seed", "1"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (query, results) = lis_side.await.unwrap();
    assert_eq!(query[1], "Q|1|^SPEC-1||^^^ALL||||||||O");
    assert!(
        results.iter().any(|r| r.starts_with("R|1|^^^PT")),
        "{results:?}"
    );
    assert!(
        stderr.contains("2 messages in answer to the host query for SPEC-1"),
        "{stderr}"
    );
    assert!(stderr.contains("O.26 Z (no order on record"), "{stderr}");
    assert!(
        stderr.contains("summary: queried 1, results sent for SPEC-1 (PT)"),
        "{stderr}"
    );
}

/// An answer that orders tests for another specimen than the one asked for gets no results
/// for it (the analyzer does not have it on board), with a log line; the specimen asked for
/// gets its results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_for_a_specimen_not_asked_for_get_no_results() {
    let (lis, dest) = lis().await;
    let lis_side = lis_answering(
        lis,
        vec![orders(&[
            "O|1|OTHER-9||^^^INR|R||||||N||||||||||||||Q",
            "O|2|SPEC-1||^^^PT|R||||||N||||||||||||||Q",
        ])],
    );
    let out = query(&dest, &["--host-query", "SPEC-1", "--seed", "1"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (_, results) = lis_side.await.unwrap().remove(0);
    let orders: Vec<&String> = results.iter().filter(|r| r.starts_with("O|")).collect();
    assert_eq!(orders.len(), 1, "{results:?}");
    assert!(orders[0].starts_with("O|1|SPEC-1|"), "{results:?}");
    assert!(
        results.iter().any(|r| r.starts_with("R|1|^^^PT")),
        "{results:?}"
    );
    assert!(!results.iter().any(|r| r.contains("^^^INR")), "{results:?}");
    assert!(
        stderr
            .contains("order for specimen OTHER-9, not for SPEC-1, the one asked for: no results"),
        "{stderr}"
    );
    assert!(
        stderr.contains("summary: queried 1, results sent for SPEC-1 (PT)"),
        "{stderr}"
    );
}

/// As `send_records`, but says whether the simulator took the message instead of panicking.
async fn try_send_records(s: &mut TcpStream, records: &[&str]) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    async fn reply(s: &mut TcpStream) -> Option<u8> {
        tokio::time::timeout(Duration::from_secs(5), s.read_u8())
            .await
            .ok()?
            .ok()
    }
    if s.write_all(&[ENQ]).await.is_err() || reply(s).await != Some(ACK) {
        return false;
    }
    for (i, r) in records.iter().enumerate() {
        let text = format!("{r}\r");
        let n = u8::try_from((i + 1) % 8).unwrap();
        let sent = s
            .write_all(&frame(n, text.as_bytes(), astm_frame::FrameEnd::End))
            .await;
        if sent.is_err() || reply(s).await != Some(ACK) {
            return false;
        }
    }
    s.write_all(&[EOT]).await.is_ok()
}

/// The LIS interrupts SPEC-1's results to send a message of its own (an order for
/// OTHER-9). That message came before SPEC-2's query went out, so it is not SPEC-2's
/// answer: it was taken for it, SPEC-2 got "order for OTHER-9" and no results, and the
/// simulator hung up while the LIS sent SPEC-2's real order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_during_the_previous_results_is_not_the_next_querys_answer() {
    let (lis, dest) = lis().await;
    let lis_side = tokio::spawn(async move {
        let (mut s, _) = lis.accept().await.unwrap();
        let _q1 = receive_records(&mut s).await;
        send_records(
            &mut s,
            &orders(&["O|1|SPEC-1||^^^PT|R||||||N||||||||||||||Q"]),
        )
        .await;
        interrupt_the_query(&mut s).await;
        send_records(
            &mut s,
            &orders(&["O|1|OTHER-9||^^^APTT|R||||||N||||||||||||||O"]),
        )
        .await;
        let r1 = receive_records(&mut s).await;
        let q2 = receive_records(&mut s).await;
        let answered = try_send_records(
            &mut s,
            &orders(&["O|1|SPEC-2||^^^INR|R||||||N||||||||||||||Q"]),
        )
        .await;
        let r2 = if answered {
            receive_records(&mut s).await
        } else {
            Vec::new()
        };
        (r1, q2, answered, r2)
    });
    let out = query(
        &dest,
        &[
            "--seed",
            "1",
            "--host-query",
            "SPEC-1",
            "--host-query",
            "SPEC-2",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (r1, q2, answered, r2) = lis_side.await.unwrap();
    assert!(r1.iter().any(|r| r.starts_with("O|1|SPEC-1|")), "{r1:?}");
    assert_eq!(q2[1], "Q|1|^SPEC-2||^^^ALL||||||||O");
    assert!(answered, "SPEC-2's answer was not taken:\n{stderr}");
    assert!(r2.iter().any(|r| r.starts_with("O|1|SPEC-2|")), "{r2:?}");
    assert!(
        stderr.contains("summary: queried 2, results sent for SPEC-1 (PT); SPEC-2 (INR)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("a message sent before the host query for SPEC-2 went out; kept, not taken as its answer"),
        "{stderr}"
    );
}
