//! `--host-query`: the analyzer asks the LIS for the orders of the specimens it has read, then
//! reports results for exactly the tests ordered (LIS2-A2 query mode, the workflow of cobas,
//! ARCHITECT and Immulite analyzers).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use astm_frame::{Event, Link};
use lis_templates::{AstmMessage, Generator};

use crate::app::App;
use crate::console;
use crate::link_io::LinkIo;
use crate::push::{self, Destination};
use crate::server::read_transfer;

/// Runs the query, the LIS's answer and the results on one E1381 connection.
pub(crate) async fn run(
    app: &App,
    dest: &Destination,
    dest_text: &str,
) -> anyhow::Result<ExitCode> {
    let cli = &app.cli;
    if cli.hl7 {
        bail!("--host-query asks in ASTM (a Q record); HL7 queries are not supported");
    }
    let Destination::Tcp(host_port) = dest else {
        bail!("--host-query needs a tcp:// destination (the LIS's ASTM port), not {dest_text}");
    };
    let name = cli
        .template
        .as_deref()
        .context("--host-query needs --template: the results come from it")?;
    let template = app.template(name)?;
    if !template.protocol.kind.is_astm() {
        bail!("--host-query needs an ASTM template; {name} is not one");
    }
    let specimens: Vec<&str> = cli.host_query.iter().map(String::as_str).collect();
    if specimens.iter().any(|s| s.trim().is_empty()) {
        bail!("--host-query needs a specimen ID (the barcode the analyzer read), not an empty one");
    }
    let options = app.options(true, None);
    let mut generator = Generator::new(template, &app.minter, &options)?;
    let query = generator.astm_host_query(&specimens)?;
    if cli.dry_run {
        console::output(query.to_lines().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }

    let stream = push::connect(host_port, cli.source_ip, Duration::from_secs(30)).await?;
    let local_port = stream.local_addr().map_or(0, |a| a.port());
    let mut io = LinkIo::new(
        stream,
        Link::new(app.push_link_config()),
        push::sender_options(app.faults.for_push(), format!("host query to {host_port}")),
    );
    let result = exchange(
        app,
        &mut io,
        &mut generator,
        &query,
        &specimens,
        host_port,
        local_port,
    )
    .await;
    io.shutdown().await;
    let summary = result?;
    console::report(format_args!("summary: {summary}"));
    Ok(ExitCode::SUCCESS)
}

/// Sends the query, waits for the answer and sends the results; returns the run's summary.
async fn exchange(
    app: &App,
    io: &mut LinkIo<tokio::net::TcpStream>,
    generator: &mut Generator<'_>,
    query: &AstmMessage,
    specimens: &[&str],
    host_port: &str,
    local_port: u16,
) -> anyhow::Result<String> {
    io.send(query.to_bytes())
        .await
        .with_context(|| format!("host query not accepted by {host_port}"))?;
    tracing::info!(
        "host query for {} sent to {host_port}",
        specimens.join(", ")
    );
    let wait = Duration::from_secs_f64(app.cli.host_query_timeout);
    let answer = match tokio::time::timeout(wait, next_message(io)).await {
        Ok(answer) => answer.with_context(|| format!("no answer from {host_port}"))?,
        Err(_) => {
            // cobas's rule: a query the host has not answered is withdrawn.
            let abort = generator.astm_host_query_abort(specimens)?;
            let withdrawn = io.send(abort.to_bytes()).await;
            bail!(
                "{host_port} did not answer the host query within {wait:?}; {}",
                match withdrawn {
                    Ok(()) => "query withdrawn (Q.13 A)".to_owned(),
                    Err(e) => format!("withdrawing it failed too: {e}"),
                }
            );
        }
    };
    app.received
        .push(local_port, host_port.to_owned(), "ASTM", &answer);
    let transfer = read_transfer(&answer);
    for what in &transfer.withdrawn {
        tracing::info!("{host_port}: {what}: no results");
    }
    if !transfer.terminated {
        bail!("the answer from {host_port} ended without its L record; no results sent");
    }
    if transfer.orders.is_empty() {
        return Ok(format!(
            "queried {}, no order from {host_port}, no results sent",
            specimens.len()
        ));
    }
    let results = generator.astm_order_results(&transfer.orders)?;
    io.send(results.to_bytes())
        .await
        .with_context(|| format!("results not accepted by {host_port}"))?;
    let ordered: Vec<String> = transfer
        .orders
        .iter()
        .map(|o| format!("{} ({})", o.sample_id, o.codes.join(", ")))
        .collect();
    Ok(format!(
        "queried {}, results sent for {}",
        specimens.len(),
        ordered.join("; ")
    ))
}

/// The next message the LIS sends; an error when it closes the connection first.
async fn next_message(io: &mut LinkIo<tokio::net::TcpStream>) -> anyhow::Result<Vec<u8>> {
    if let Some(text) = io.take_received().into_iter().next() {
        return Ok(text);
    }
    loop {
        match io.next_event().await? {
            Some(Event::MessageReceived(text)) => return Ok(text),
            Some(_) => {}
            None => bail!("the LIS closed the connection before answering"),
        }
    }
}
