//! `--host-query` with `--hl7`: the analyzer asks the LIS for a specimen's work in HL7, as IHE
//! LAW's query mode has it (LAB-27, then LAB-28): `QBP^Q11` out, `RSP^K11` back, then the work
//! as `OML^O33`, answered `ORL^O34`; then results (the template's ORU^R01) for exactly the tests
//! ordered, all on one MLLP connection.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use lis_templates::{
    Generator, Hl7Message, Hl7Orders, OrderGroup, OrderedPatient, OrderedSample, ProtocolKind,
};
use mllp_hl7::{AckBuilder, AckCode, AckMessage, Message, MllpCodec, MllpFrame};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::Framed;

use crate::app::App;
use crate::console;
use crate::host_query::{NoAnswer, Outcome, Rounds, query_generator, repeat};
use crate::push::{self, Destination};

/// An MLLP connection to the LIS.
pub(crate) type Connection = Framed<TcpStream, MllpCodec>;

/// HL7 host queries for some specimens, one at a time, and the generator of the results.
pub(crate) struct Hl7HostQuery<'a> {
    app: &'a App,
    specimens: Vec<String>,
    wait: Duration,
    generator: Generator<'a>,
    /// The first round's queries (see `HostQuery`'s); later rounds make new ones.
    queries: Vec<Hl7Message>,
}

/// What the LIS's `OML^O33` asked for.
struct Work {
    orders: Vec<OrderGroup>,
    withdrawn: Vec<String>,
    patient: Option<OrderedPatient>,
}

impl Work {
    /// The work of two work orders for one specimen: every order of both; the later one's
    /// patient, else the earlier one's.
    fn merged(mut earlier: Self, later: Self) -> Self {
        earlier.orders.extend(later.orders);
        earlier.withdrawn.extend(later.withdrawn);
        Self {
            orders: earlier.orders,
            withdrawn: earlier.withdrawn,
            patient: later.patient.or(earlier.patient),
        }
    }
}

impl<'a> Hl7HostQuery<'a> {
    /// The queries for `specimens`, each answered within `wait`, of the HL7 template `name`,
    /// which also gives the results.
    pub(crate) fn new(
        app: &'a App,
        name: &str,
        specimens: Vec<String>,
        wait: Duration,
    ) -> anyhow::Result<Self> {
        let mut generator = query_generator(
            app,
            name,
            |kind| kind == ProtocolKind::Hl7,
            "an HL7 host query needs an HL7 template",
            &specimens,
        )?;
        let queries = specimens
            .iter()
            .map(|s| generator.hl7_host_query(s))
            .collect();
        Ok(Self {
            app,
            specimens,
            wait,
            generator,
            queries,
        })
    }

    /// The first round's queries, one segment per line (`--dry-run`).
    pub(crate) fn text(&self) -> String {
        self.queries.iter().map(Hl7Message::to_lines).collect()
    }

    /// For each specimen in turn: sends its query, takes the LIS's `RSP^K11` and `OML^O33`
    /// (answering the latter), and sends results for the tests ordered. `peer` names the LIS in
    /// messages, `port` is the local port kept with each message received in `GET /received`.
    pub(crate) async fn exchange(
        &mut self,
        connection: &mut Connection,
        peer: &str,
        port: u16,
    ) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome::default();
        let queries = if self.queries.is_empty() {
            self.specimens
                .iter()
                .map(|s| self.generator.hl7_host_query(s))
                .collect()
        } else {
            std::mem::take(&mut self.queries)
        };
        for (specimen, query) in self.specimens.iter().zip(&queries) {
            let bytes = query.to_bytes();
            let control = control_id(&bytes);
            connection
                .send(&bytes[..])
                .await
                .with_context(|| format!("sending the host query for {specimen} to {peer}"))?;
            tracing::info!("host query for {specimen} sent to {peer} (QBP^Q11, MSH-10 {control})");
            let work = self
                .answer(connection, specimen, &control, peer, port)
                .await?;
            for code in &work.withdrawn {
                tracing::info!("{peer}: ORC-1 {code}: no work for specimen {specimen}");
            }
            if !work.orders.is_empty() {
                let results = self
                    .generator
                    .hl7_order_results_for(work.patient.as_ref(), &work.orders)?
                    .to_bytes();
                let results_id = control_id(&results);
                connection
                    .send(&results[..])
                    .await
                    .with_context(|| format!("sending results to {peer}"))?;
                let ack = self
                    .next_message(connection, Instant::now() + self.wait, peer, port)
                    .await?
                    .with_context(|| {
                        format!(
                            "no ACK from {peer} for the results of {specimen} within {:?}",
                            self.wait
                        )
                    })?;
                match AckMessage::parse(&ack) {
                    Ok(ack) if !ack.acknowledges(results_id.as_bytes()) => bail!(
                        "{peer} answered the results for {specimen} (MSH-10 {results_id}) with \
                         an ACK of another message (MSA-2 {})",
                        String::from_utf8_lossy(&ack.acknowledged_id.decoded())
                    ),
                    Ok(ack) if ack.code.is_success() => {}
                    Ok(ack) => bail!(
                        "{peer} did not accept the results for {specimen}: MSA-1 {} {}",
                        ack.code.as_str(),
                        String::from_utf8_lossy(&ack.text.decoded())
                    ),
                    Err(e) => bail!("{peer} answered the results for {specimen} with no ACK: {e}"),
                }
                outcome.orders.push(OrderedSample {
                    sample_id: specimen.clone(),
                    codes: work.orders.iter().flat_map(|o| o.codes.clone()).collect(),
                    patient: work.patient,
                });
            }
            outcome.not_orders.extend(
                work.withdrawn
                    .iter()
                    .map(|c| format!("ORC-1 {c} for {specimen}")),
            );
        }
        outcome.summarize(self.specimens.len(), peer);
        Ok(outcome)
    }

    /// Waits out `pause` before a round, reading the connection kept from the last round as
    /// a listening port would. A message the LIS sends unasked is logged and kept for `GET
    /// /received`, not answered (it answers no query), as within a round. A connection the
    /// LIS closes (an idle timeout, a restart) or breaks is dropped, so that the round opens
    /// a new one instead of failing on it. With no pause, what has arrived already is read.
    async fn pause_on_kept(
        &self,
        connection: &mut Option<Connection>,
        pause: Duration,
        peer: &str,
    ) {
        let deadline = Instant::now() + pause;
        while let Some(open) = connection {
            let port = open.get_ref().local_addr().map_or(0, |a| a.port());
            let frame = tokio::select! {
                biased;
                frame = open.next() => frame,
                () = tokio::time::sleep_until(deadline) => break,
            };
            let lost = match frame {
                Some(Ok(MllpFrame::Message(payload))) => {
                    self.app
                        .received
                        .push(port, peer.to_owned(), "HL7", &payload);
                    match Message::parse(&payload) {
                        Ok(message) => tracing::warn!(
                            "{peer} sent {} (MSH-10 {}) between host-query rounds, unasked; \
                             not answered",
                            message.message_type(),
                            text(&message.control_id())
                        ),
                        Err(e) => tracing::warn!(
                            "{peer} sent a frame that is no HL7 message between host-query \
                             rounds ({e}); not answered"
                        ),
                    }
                    continue;
                }
                // A commit ACK block or a stray byte outside frames: nothing to keep.
                Some(Ok(MllpFrame::Error(e))) => format!("sent a frame that cannot be read ({e})"),
                Some(Ok(_)) => continue,
                None => "closed the connection".to_owned(),
                Some(Err(e)) => format!("broke the connection ({e})"),
            };
            tracing::info!(
                "{peer} {lost} between host-query rounds; the next round opens a new one"
            );
            *connection = None;
        }
        tokio::time::sleep_until(deadline).await;
    }

    /// The LIS's answer to the query `control` for `specimen`: its `RSP^K11` (a query it
    /// refuses, MSA-1 or QAK-2 `AE`/`AR`, is an error) and its `OML^O33`, in either order,
    /// both within the wait.
    async fn answer(
        &self,
        connection: &mut Connection,
        specimen: &str,
        control: &str,
        peer: &str,
        port: u16,
    ) -> anyhow::Result<Work> {
        let deadline = Instant::now() + self.wait;
        let mut acknowledged = false;
        let mut work = None;
        loop {
            if acknowledged && let Some(work) = work.take() {
                return Ok(work);
            }
            let Some(payload) = self.next_message(connection, deadline, peer, port).await? else {
                let missing = match (acknowledged, work.is_some()) {
                    (false, false) => "neither RSP^K11 nor OML^O33 received",
                    (false, true) => "OML^O33 received, no RSP^K11",
                    _ => "RSP^K11 received, no OML^O33 (its work order)",
                };
                return Err(NoAnswer::new(peer, specimen, self.wait, missing).into());
            };
            let message = match Message::parse(&payload) {
                Ok(message) => message,
                Err(e) => {
                    let _ = connection
                        .send(&[mllp_hl7::CommitAck::Nak.byte()][..])
                        .await;
                    bail!("{peer} answered the host query for {specimen} with no HL7 message: {e}");
                }
            };
            let kind = message.message_type();
            if kind.code == b"OML" {
                let (replies, accepted) =
                    accept_work(&message, specimen, self.generator.template());
                for reply in replies {
                    connection
                        .send(&reply[..])
                        .await
                        .with_context(|| format!("answering {peer}'s {kind}"))?;
                }
                let accepted = accepted.with_context(|| format!("{peer}'s {kind} refused"))?;
                // Each work order accepted (AA) is resulted: a second one before the RSP^K11
                // adds to the first.
                work = Some(match work.take() {
                    Some(earlier) => Work::merged(earlier, accepted),
                    None => accepted,
                });
                continue;
            }
            match AckMessage::from_message(&message) {
                Ok(ack) if ack.acknowledges(control.as_bytes()) => {
                    let status = message
                        .segment(b"QAK")
                        .map(|qak| text(&qak.field_or_empty(2)))
                        .unwrap_or_default();
                    if !ack.code.is_success() || matches!(status.as_str(), "AE" | "AR") {
                        bail!(
                            "{peer} refused the host query for {specimen}: MSA-1 {}, QAK-2 {} {}",
                            ack.code.as_str(),
                            if status.is_empty() { "empty" } else { &status },
                            text(&ack.text)
                        );
                    }
                    if status == "NF" {
                        tracing::info!("{peer}: nothing found for {specimen} (QAK-2 NF)");
                    }
                    acknowledged = true;
                }
                _ => tracing::warn!(
                    "{peer}: {kind} while waiting for the answer to the host query for \
                     {specimen}; skipped"
                ),
            }
        }
    }

    /// The next HL7 message on `connection` (commit ACK blocks skipped), kept for `GET
    /// /received`; `None` at `deadline`.
    async fn next_message(
        &self,
        connection: &mut Connection,
        deadline: Instant,
        peer: &str,
        port: u16,
    ) -> anyhow::Result<Option<Bytes>> {
        loop {
            let frame = match tokio::time::timeout_at(deadline, connection.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => bail!("{peer} closed the connection"),
                Ok(Some(frame)) => frame.with_context(|| format!("reading from {peer}"))?,
            };
            match frame {
                MllpFrame::Message(payload) => {
                    self.app
                        .received
                        .push(port, peer.to_owned(), "HL7", &payload);
                    return Ok(Some(payload));
                }
                MllpFrame::Error(e) => bail!("{peer} sent a frame that cannot be read: {e}"),
                _ => {}
            }
        }
    }
}

/// The replies to the LIS's work order `message`: the `ORL^O34` (in enhanced mode after the
/// accept ACK, each as MSH-15 and MSH-16 ask), and the work it orders. A work order for
/// another specimen than the one asked for, or for others besides it, is refused with `AR`,
/// as LAW asks of an analyzer.
fn accept_work(
    message: &Message<'_>,
    specimen: &str,
    template: &lis_templates::Template,
) -> (Vec<Vec<u8>>, anyhow::Result<Work>) {
    let read = Hl7Orders::read_for(message, template);
    let mut reply = AckBuilder::new(message).code(AckCode::ApplicationAccept);
    let kind = message.message_type();
    if let Some((code, trigger)) = kind.order_response() {
        reply = reply.response_type(code, trigger);
    }
    // Every specimen it names must be the one asked for: its order groups carry no specimen
    // of their own, so work for another specimen in the same message would be resulted
    // under this one (LAW: the answer to a query for one specimen holds its work only). A
    // specimen is the one asked for when any of its IDs is: the LIS's filler ID or a
    // container ID beside the placer ID name the same specimen.
    let others: Vec<&str> = read
        .specimens
        .iter()
        .filter(|ids| !ids.iter().any(|id| id == specimen))
        .filter_map(|ids| ids.first().map(String::as_str))
        .collect();
    let accepted = if others.is_empty() {
        reply = reply.text("Work order accepted");
        Ok(Work {
            orders: read.orders,
            withdrawn: read.withdrawn,
            patient: OrderedPatient::from_hl7(message),
        })
    } else {
        let why = if others.len() < read.specimens.len() {
            format!(
                "work order for specimen {specimen} also orders for {}; a work order answering \
                 the query for one specimen holds that specimen's work only",
                others.join(", ")
            )
        } else {
            format!(
                "work order for specimen {}, not for {specimen}, the one asked for",
                others.join(", ")
            )
        };
        reply = reply.code(AckCode::ApplicationReject).text(why.clone());
        Err(anyhow::anyhow!(why))
    };
    // A reply that cannot be built (no MSH-10 to acknowledge) still leaves the LIS waiting:
    // an MLLP NAK block tells it the message was not taken.
    let bytes = reply
        .build_all_required()
        .unwrap_or_else(|_| vec![vec![mllp_hl7::CommitAck::Nak.byte()]]);
    (bytes, accepted)
}

/// The unescaped text of an HL7 value.
fn text(value: &mllp_hl7::Value<'_>) -> String {
    String::from_utf8_lossy(&value.decoded()).into_owned()
}

/// MSH-10 of a message the simulator made.
fn control_id(bytes: &[u8]) -> String {
    Message::parse(bytes)
        .map(|m| text(&m.control_id()))
        .unwrap_or_default()
}

/// The HL7 host query of the command line (`--host-query`, `--host-query-timeout`) for
/// `--hl7-template`.
fn from_cli(app: &App) -> anyhow::Result<Hl7HostQuery<'_>> {
    Hl7HostQuery::new(
        app,
        &app.cli.hl7_template,
        app.cli.host_query.clone(),
        Duration::from_secs_f64(app.cli.host_query_timeout),
    )
    .context("--host-query")
}

/// Opens an MLLP connection to a LIS for a host query.
pub(crate) async fn connect(
    host_port: &str,
    source: Option<std::net::IpAddr>,
) -> anyhow::Result<Connection> {
    let stream = push::connect(host_port, source, Duration::from_secs(30)).await?;
    Ok(Framed::new(stream, MllpCodec::new()))
}

/// Flushes and closes a host query's connection; the LIS may have closed it first.
pub(crate) async fn close(mut connection: Connection) {
    let _ = SinkExt::<&[u8]>::close(&mut connection).await;
}

/// `--push mllp://... --hl7 --host-query`: the queries, the answers and the results on one
/// connection, in the command line's rounds, until `stop` completes.
pub(crate) async fn run_mllp(
    app: &App,
    dest: &Destination,
    dest_text: &str,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    let cli = &app.cli;
    let Destination::Mllp(host_port) = dest else {
        bail!(
            "--host-query with --hl7 needs an mllp:// destination (the LIS's HL7 port), not \
             {dest_text}"
        );
    };
    let mut host_query = from_cli(app)?;
    if cli.dry_run {
        console::output(host_query.text().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    // Opened for the first round, and again for the round after a failed one: the stream may
    // hold a late reply.
    let mut connection = None;
    let specimens = host_query.specimens.len();
    let run = repeat(
        specimens,
        Rounds::from_cli(cli),
        None,
        stop,
        async |pause| {
            host_query
                .pause_on_kept(&mut connection, pause, host_port)
                .await;
            let open = match &mut connection {
                Some(open) => open,
                None => connection.insert(connect(host_port, cli.source_ip).await?),
            };
            let local_port = open.get_ref().local_addr().map_or(0, |a| a.port());
            let outcome = host_query.exchange(open, host_port, local_port).await;
            if outcome.is_err()
                && let Some(broken) = connection.take()
            {
                close(broken).await;
            }
            outcome
        },
    )
    .await;
    if let Some(open) = connection {
        close(open).await;
    }
    Ok(run?.report())
}
