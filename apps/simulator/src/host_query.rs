//! `--host-query`: the analyzer asks the LIS for the orders of the specimens it has read, then
//! reports results for exactly the tests ordered (LIS2-A2 query mode, the workflow of cobas,
//! ARCHITECT and Immulite analyzers), over TCP (`--push tcp://`) or a serial line, once or in
//! rounds (`-c`, `-i`, `-C`).

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use astm_frame::{Event, Link};
use lis_templates::{
    AstmMessage, AstmOrders, Generator, OrderedSample, OrderedSamples, ProtocolKind,
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::app::App;
use crate::cli::Cli;
use crate::console;
use crate::link_io::LinkIo;
use crate::push::{self, Destination};

/// Host queries for some specimens, one at a time as analyzers ask (one barcode read, one
/// query), and the generator of the results.
pub(crate) struct HostQuery<'a> {
    app: &'a App,
    specimens: Vec<String>,
    wait: Duration,
    generator: Generator<'a>,
    /// The next round's queries, one message per specimen, in order; made up front so that a
    /// specimen ID the query cannot carry is refused before anything is sent. Empty once used:
    /// later rounds make new ones (new message IDs, as an analyzer's would be).
    queries: Vec<AstmMessage>,
}

/// How often the specimens are asked for: `count` rounds (`-c`; until interrupted, `-C`, when
/// `None`), `pause` apart (`-i`). A round asks for every specimen once, in turn, as an analyzer
/// does when the same rack is loaded again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rounds {
    pub(crate) count: Option<u64>,
    pub(crate) pause: Duration,
    pub(crate) after_failure: AfterFailure,
}

/// What follows a failed round in a run of several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// The next round, on a new connection.
    NextRound,
    /// Nothing: the run fails. On a serial line there is no connection to start afresh, and
    /// the line may still carry the failed round's session.
    Stop,
}

impl Rounds {
    /// The rounds of the command line: `-c` (1 by default), `-C`, `-i`; a failed round is
    /// followed by the next.
    pub(crate) fn from_cli(cli: &Cli) -> Self {
        Self {
            count: (!cli.push_continuous).then_some(cli.push_count),
            pause: Duration::from_secs_f64(cli.push_interval),
            after_failure: AfterFailure::NextRound,
        }
    }
}

/// Totals over the rounds of a run.
#[derive(Default)]
struct Tally {
    /// Rounds that finished.
    finished: u64,
    /// Rounds that failed.
    failed: u64,
    /// Failed rounds since the last one that finished.
    failed_in_a_row: u64,
    /// Specimens asked for in the rounds that finished.
    queried: u64,
    /// Specimens the LIS ordered tests for, whose results were sent (rounds that finished).
    resulted: u64,
    /// The last round's summary: the run's, when it had one round.
    last: String,
}

impl Tally {
    fn rounds(&self) -> u64 {
        self.finished + self.failed
    }

    fn add(&mut self, queried: usize, outcome: &Outcome) {
        self.finished += 1;
        self.failed_in_a_row = 0;
        self.queried += queried as u64;
        self.resulted += outcome.orders.len() as u64;
        self.last.clone_from(&outcome.summary);
    }

    fn fail(&mut self) {
        self.failed += 1;
        self.failed_in_a_row += 1;
    }

    fn summary(&self, interrupted: bool) -> String {
        let stop = if interrupted { " (interrupted)" } else { "" };
        if self.rounds() == 1 && self.failed == 0 && !interrupted {
            return self.last.clone();
        }
        let failed = match self.failed {
            0 => String::new(),
            n => format!(" ({n} failed)"),
        };
        format!(
            "{} round(s){failed}, queried {}, results sent for {}{stop}",
            self.rounds(),
            self.queried,
            self.resulted
        )
    }
}

/// What a run of host query rounds came to.
pub(crate) struct RunOutcome {
    /// The summary line, without its `summary: `.
    pub(crate) summary: String,
    /// Rounds that failed; each was reported as it failed.
    pub(crate) failed_rounds: u64,
}

impl RunOutcome {
    /// Prints the summary; exit 1 when a round failed, as a push with failed messages does.
    pub(crate) fn report(&self) -> ExitCode {
        console::report(format_args!("summary: {}", self.summary));
        if self.failed_rounds > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// What the host queries came to.
#[derive(Default)]
pub(crate) struct Outcome {
    /// The orders the LIS sent, one entry per specimen.
    pub(crate) orders: Vec<OrderedSample>,
    /// Its O records that were no orders (O.26 `Y`, `Z`, ...), and why.
    pub(crate) not_orders: Vec<String>,
    /// One line for the log or the summary.
    pub(crate) summary: String,
}

/// The LIS did not answer within the wait; the query was withdrawn (or that failed too).
#[derive(Debug, thiserror::Error)]
#[error("{peer} did not answer the host query for {specimen} within {wait:?}; {withdrawal}")]
pub(crate) struct NoAnswer {
    peer: String,
    specimen: String,
    wait: Duration,
    withdrawal: String,
}

impl NoAnswer {
    /// `peer` did not answer the query for `specimen` within `wait`; `withdrawal` says what
    /// was done about it (or what was missing).
    pub(crate) fn new(peer: &str, specimen: &str, wait: Duration, withdrawal: &str) -> Self {
        Self {
            peer: peer.to_owned(),
            specimen: specimen.to_owned(),
            wait,
            withdrawal: withdrawal.to_owned(),
        }
    }
}

impl<'a> HostQuery<'a> {
    /// The queries for `specimens`, each answered within `wait`, of the ASTM template `name`,
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
            ProtocolKind::is_astm,
            "a host query needs an ASTM template",
            &specimens,
        )?;
        let queries = specimens
            .iter()
            .map(|s| generator.astm_host_query(&[s.as_str()]))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            app,
            specimens,
            wait,
            generator,
            queries,
        })
    }

    /// The first round's queries, one record per line (`--dry-run`).
    pub(crate) fn text(&self) -> String {
        self.queries.iter().map(AstmMessage::to_lines).collect()
    }

    /// For each specimen in turn: sends its query on `io`, waits for the LIS's answer and
    /// sends the results. `peer` names the LIS in messages, `port` is the local port kept with
    /// each answer in `GET /received`. A LIS that does not answer in time is a [`NoAnswer`]
    /// error, and the specimens after it are not queried.
    pub(crate) async fn exchange<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut LinkIo<T>,
        peer: &str,
        port: u16,
    ) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome::default();
        let queries = if self.queries.is_empty() {
            self.specimens
                .iter()
                .map(|s| self.generator.astm_host_query(&[s.as_str()]))
                .collect::<Result<_, _>>()?
        } else {
            std::mem::take(&mut self.queries)
        };
        for (specimen, query) in self.specimens.iter().zip(&queries) {
            // A message the LIS sent before this query went out (it interrupted the previous
            // specimen's results to send it) cannot answer the query: kept for `GET
            // /received`, and not taken for the answer, which the LIS has yet to send.
            for early in io.take_received() {
                tracing::info!(
                    "{peer}: a message sent before the host query for {specimen} went out; \
                     kept, not taken as its answer"
                );
                self.app
                    .received
                    .push(port, peer.to_owned(), "ASTM", &early);
            }
            io.send(query.to_bytes())
                .await
                .with_context(|| format!("host query for {specimen} not accepted by {peer}"))?;
            tracing::info!("host query for {specimen} sent to {peer}");
            let answers = match tokio::time::timeout(self.wait, next_messages(io)).await {
                Ok(answers) => answers.with_context(|| format!("no answer from {peer}"))?,
                Err(_) => {
                    // cobas's rule: a query the host has not answered is withdrawn.
                    let abort = self.generator.astm_host_query_abort(&[specimen.as_str()])?;
                    let withdrawal = match io.send(abort.to_bytes()).await {
                        Ok(()) => "query withdrawn (Q.13 A)".to_owned(),
                        Err(e) => format!("withdrawing it failed too: {e}"),
                    };
                    return Err(NoAnswer::new(peer, specimen, self.wait, &withdrawal).into());
                }
            };
            if answers.len() > 1 {
                tracing::info!(
                    "{peer}: {} messages in answer to the host query for {specimen} (sent while \
                     the query was interrupted); their orders are taken together",
                    answers.len()
                );
            }
            let mut orders = OrderedSamples::default();
            let mut cut_off = false;
            for answer in &answers {
                self.app
                    .received
                    .push(port, peer.to_owned(), "ASTM", answer);
                let (mut not_orders, ordered) = match AstmOrders::read(answer) {
                    Ok(read) => {
                        cut_off |= !read.terminated;
                        (read.withdrawn, read.orders)
                    }
                    Err(why) => (
                        vec![format!("an answer that cannot be read ({why})")],
                        Vec::new(),
                    ),
                };
                for order in ordered {
                    if order.sample_id != *specimen {
                        // Not on board: an analyzer has nothing to measure it in.
                        not_orders.push(format!(
                            "order for specimen {}, not for {specimen}, the one asked for",
                            order.sample_id
                        ));
                    } else {
                        orders.add(order.sample_id, order.codes, || order.patient);
                    }
                }
                for what in &not_orders {
                    tracing::info!("{peer}: {what}: no results");
                }
                outcome.not_orders.extend(not_orders);
            }
            let orders = orders.into_samples();
            if cut_off {
                bail!(
                    "the answer from {peer} for {specimen} ended without its L record; no \
                     results sent"
                );
            }
            if !orders.is_empty() {
                let results = self.generator.astm_order_results(&orders)?;
                io.send(results.to_bytes())
                    .await
                    .with_context(|| format!("results not accepted by {peer}"))?;
            }
            outcome.orders.extend(orders);
        }
        outcome.summarize(self.specimens.len(), peer);
        Ok(outcome)
    }
}

impl Outcome {
    /// Sets the summary of a round that asked for `queried` specimens at `peer`.
    pub(crate) fn summarize(&mut self, queried: usize, peer: &str) {
        self.summary = if self.orders.is_empty() {
            format!("queried {queried}, no order from {peer}, no results sent")
        } else {
            let ordered: Vec<String> = self
                .orders
                .iter()
                .map(|o| format!("{} ({})", o.sample_id, o.codes.join(", ")))
                .collect();
            format!("queried {queried}, results sent for {}", ordered.join("; "))
        };
    }
}

/// The generator of a host query for `specimens` with the template `name`, whose protocol
/// must `fit` (else the error `needs`): it makes the queries and the results.
pub(crate) fn query_generator<'a>(
    app: &'a App,
    name: &str,
    fits: fn(ProtocolKind) -> bool,
    needs: &str,
    specimens: &[String],
) -> anyhow::Result<Generator<'a>> {
    let template = app.template(name)?;
    if !fits(template.protocol.kind) {
        bail!("{needs}; {name} is not one");
    }
    check_specimens(specimens)?;
    let options = app.options(true, None);
    Ok(Generator::new(template, &app.minter, &options)?)
}

/// Refuses a host query without specimens, or with an empty one.
fn check_specimens(specimens: &[String]) -> anyhow::Result<()> {
    if specimens.is_empty() || specimens.iter().any(|s| s.trim().is_empty()) {
        bail!("a host query needs specimen IDs (the barcodes the analyzer read), none empty");
    }
    Ok(())
}

/// Runs `round` (one host query per specimen, `specimens` of them) round after round as
/// `rounds` says, until the rounds are done or `stop` completes (Ctrl-C: the round under way is
/// cut short, and is not counted). `round` is given the pause to keep before it (zero for the
/// first), so that it can keep its link running meanwhile (see [`push::serve_during`]). Each
/// round must finish within `round_limit` after its pause, if any.
///
/// A run of one round fails as its round does. In a run of several, a failed round is
/// reported and, with [`AfterFailure::NextRound`], the next one follows, as a push goes on
/// after a failed message: `round` must start the next one afresh (a new connection). In a `-C`
/// run the pause after failed rounds grows as a push's does, so a LIS that is down is not
/// asked in a tight loop. With [`AfterFailure::Stop`] the run fails, the error naming the
/// round and what the rounds before it came to.
pub(crate) async fn repeat(
    specimens: usize,
    rounds: Rounds,
    round_limit: Option<Duration>,
    stop: impl Future<Output = ()>,
    mut round: impl AsyncFnMut(Duration) -> anyhow::Result<Outcome>,
) -> anyhow::Result<RunOutcome> {
    tokio::pin!(stop);
    let mut tally = Tally::default();
    let mut failure_pause = push::FailurePause::default();
    let pause = |failure_pause: &push::FailurePause| match rounds.count {
        None => rounds.pause.max(failure_pause.current()),
        Some(_) => rounds.pause,
    };
    let mut interrupted = false;
    while rounds.count.is_none_or(|n| tally.rounds() < n) {
        let wait = if tally.rounds() > 0 {
            pause(&failure_pause)
        } else {
            Duration::ZERO
        };
        let number = tally.rounds() + 1;
        let limited = async {
            match round_limit {
                Some(limit) => tokio::time::timeout(limit + wait, round(wait))
                    .await
                    .unwrap_or_else(|_| Err(anyhow!("host query not finished after {limit:?}"))),
                None => round(wait).await,
            }
        };
        let result = tokio::select! {
            r = limited => r,
            () = &mut stop => { interrupted = true; break; }
        };
        match result {
            Ok(outcome) => {
                failure_pause.reset();
                if tally.failed_in_a_row > 0 {
                    tracing::info!(
                        "round {number}: {}, after {} failed round(s) in a row",
                        outcome.summary,
                        tally.failed_in_a_row
                    );
                } else if rounds.count != Some(1) {
                    tracing::info!("round {number}: {}", outcome.summary);
                }
                tally.add(specimens, &outcome);
            }
            Err(e) if rounds.count == Some(1) => return Err(e),
            Err(e) if rounds.after_failure == AfterFailure::Stop => {
                let before = if tally.rounds() == 0 {
                    String::new()
                } else {
                    format!(" (before it: {})", tally.summary(false))
                };
                return Err(e.context(format!("host query round {number}{before}")));
            }
            Err(e) => {
                tally.fail();
                failure_pause.grow();
                let next = if rounds.count.is_none_or(|n| tally.rounds() < n) {
                    format!(
                        "; next round in {:.1} s",
                        pause(&failure_pause).as_secs_f64()
                    )
                } else {
                    String::new()
                };
                console::report(format_args!("round {number} failed: {e:#}{next}"));
            }
        }
    }
    Ok(RunOutcome {
        summary: tally.summary(interrupted),
        failed_rounds: tally.failed,
    })
}

/// The host query of the command line (`--host-query`, `--host-query-timeout`) for template
/// `name`.
pub(crate) fn from_cli<'a>(app: &'a App, name: &str) -> anyhow::Result<HostQuery<'a>> {
    HostQuery::new(
        app,
        name,
        app.cli.host_query.clone(),
        Duration::from_secs_f64(app.cli.host_query_timeout),
    )
    .context("--host-query")
}

/// Opens an E1381 connection to a LIS for a host query.
pub(crate) async fn connect(
    app: &App,
    host_port: &str,
    source: Option<std::net::IpAddr>,
) -> anyhow::Result<LinkIo<tokio::net::TcpStream>> {
    let stream = push::connect(host_port, source, Duration::from_secs(30)).await?;
    Ok(LinkIo::new(
        stream,
        Link::new(app.push_link_config()),
        push::sender_options(app.faults.for_push(), format!("host query to {host_port}")),
    ))
}

/// `--push tcp://... --host-query`: the queries, the answers and the results on one
/// connection, in the command line's rounds, until `stop` completes.
pub(crate) async fn run_tcp(
    app: &App,
    dest: &Destination,
    dest_text: &str,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    let cli = &app.cli;
    let Destination::Tcp(host_port) = dest else {
        bail!("--host-query needs a tcp:// destination (the LIS's ASTM port), not {dest_text}");
    };
    let name = cli
        .template
        .as_deref()
        .context("--host-query needs --template: the results come from it")?;
    let mut host_query = from_cli(app, name)?;
    if cli.dry_run {
        console::output(host_query.text().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    // Opened for the first round, and again for the round after a failed one: a failed
    // session leaves the link in an unknown state.
    let mut connection: Option<LinkIo<tokio::net::TcpStream>> = None;
    let specimens = host_query.specimens.len();
    let run = repeat(
        specimens,
        Rounds::from_cli(cli),
        None,
        stop,
        async |pause| {
            // A LIS may close the connection between rounds (after EOT, an idle timeout).
            push::pause_on_kept(app, &mut connection, host_port, pause).await;
            if connection
                .as_ref()
                .is_some_and(|io| push::peer_closed(io.get_ref()))
            {
                connection = None;
            }
            let io = match &mut connection {
                Some(io) => io,
                None => connection.insert(connect(app, host_port, cli.source_ip).await?),
            };
            let local_port = io.get_ref().local_addr().map_or(0, |a| a.port());
            let outcome = host_query.exchange(io, host_port, local_port).await;
            if outcome.is_err()
                && let Some(mut broken) = connection.take()
            {
                broken.shutdown().await;
            }
            outcome
        },
    )
    .await;
    if let Some(mut io) = connection {
        io.shutdown().await;
    }
    Ok(run?.report())
}

/// The messages the LIS has sent: those that came while the query went out (a LIS that
/// interrupted it, §6.3.5.3, may have sent more than one), else the next one; an error when it
/// closes the connection first.
async fn next_messages<T: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LinkIo<T>,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let received = io.take_received();
    if !received.is_empty() {
        return Ok(received);
    }
    loop {
        match io.next_event().await? {
            Some(Event::MessageReceived(text)) => return Ok(vec![text]),
            Some(_) => {}
            None => bail!("the LIS closed the connection before answering"),
        }
    }
}
