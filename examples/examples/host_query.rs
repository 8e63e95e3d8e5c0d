//! An analyzer in query mode (LIS2-A2 request information, the way cobas and ARCHITECT
//! analyzers work): it reads a barcode, asks the LIS for that specimen's orders, runs them and
//! reports results for exactly the tests ordered. `astm-frame` carries the three messages on one
//! connection, each side sending and receiving; `astm-records` builds every message and reads
//! the query on the LIS side and the orders on the analyzer's.
//!
//! ```text
//! cargo run -p examples --example host_query
//! ```

use astm_frame::driver::LinkDriver;
use astm_frame::{Assembly, LinkConfig, Role};
use astm_records::{
    FieldBuf, HeaderBuilder, Message, MessageBuilder, OrderBuilder, PatientBuilder, QueryBuilder,
    ResultBuilder, TypedRecord,
};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Writes a line to stdout; a failed write (a reader that has gone) drops the line.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// The LIS's work list: the tests ordered per specimen.
const ORDERS: &[(&str, &[&str])] = &[("SPEC-1", &["WBC", "HGB"])];

/// The analyzer's measurements.
const MEASURED: &[(&str, &str, &str)] = &[("WBC", "5.8", "10^3/uL"), ("HGB", "13.1", "g/dL")];

/// The LIS: answers each host query with the specimen's orders (O.26 `Q`), or with `Y` (no
/// order on record), then takes the results; what it read, a line per query and result.
async fn lis(listener: TcpListener) -> Result<Vec<String>, Error> {
    let (stream, _) = listener.accept().await?;
    let config = LinkConfig::new(Role::Computer).with_assembly(Assembly::PerTransfer);
    let mut link = LinkDriver::new(stream, config);
    let mut read = Vec::new();
    while let Some(text) = link.recv().await? {
        let message = Message::parse(&text)?;
        let mut answer = MessageBuilder::new(HeaderBuilder::new().sender_name("LIS"))
            .push(PatientBuilder::new());
        let mut asked = false;
        for record in message.records() {
            match record.typed() {
                TypedRecord::Query(query) => {
                    asked = true;
                    let specimen = query.requested_specimen_id().unwrap_or_default();
                    read.push(format!("query for {specimen}"));
                    say(format_args!("LIS: query for {specimen}"));
                    let order = OrderBuilder::new().specimen_id(specimen.as_ref());
                    answer.add(match ORDERS.iter().find(|(s, _)| *s == specimen) {
                        Some((_, tests)) => order
                            .universal_test_id(FieldBuf::test_codes(tests.iter().copied()))
                            .report_type("Q"),
                        None => order.report_type("Y"),
                    });
                }
                TypedRecord::Result(result) => {
                    let line = format!(
                        "result {} = {} {}",
                        result.test_code().as_deref().unwrap_or("?"),
                        result.value().text(),
                        result.units_text()
                    );
                    say(format_args!("LIS: {line}"));
                    read.push(line);
                }
                _ => {}
            }
        }
        if asked {
            link.send(answer.build()?).await?;
        }
    }
    Ok(read)
}

/// One query, its orders and their results; what the LIS read (see [`lis`]).
async fn run() -> Result<Vec<String>, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let lis = tokio::spawn(lis(listener));

    let stream = TcpStream::connect(address).await?;
    let config = LinkConfig::new(Role::Instrument).with_assembly(Assembly::PerTransfer);
    let mut analyzer = LinkDriver::new(stream, config);
    let header = || HeaderBuilder::new().sender_name("ANALYZER");
    // The barcode read: Q.3 `^SPEC-1`, all tests, orders only (Q.13 `O`).
    let query = MessageBuilder::new(header())
        .push(
            QueryBuilder::new()
                .starting_range_id(FieldBuf::components(["", "SPEC-1"]))
                .universal_test_id(FieldBuf::test_code("ALL"))
                .status_code("O"),
        )
        .build()?;
    analyzer.send(query).await?;
    let orders = analyzer.recv().await?.ok_or("the LIS hung up")?;

    let mut results = MessageBuilder::new(header());
    for record in Message::parse(&orders)?.records() {
        let TypedRecord::Order(order) = record.typed() else {
            continue;
        };
        if order.report_type().text() != "Q" {
            continue;
        }
        let tests: Vec<String> = order
            .test_ids()
            .filter_map(|id| id.test_code().map(|c| c.into_owned()))
            .collect();
        say(format_args!(
            "analyzer: {} ordered: {}",
            order.specimen_id().text(),
            tests.join(", ")
        ));
        results.add(PatientBuilder::new());
        results.add(
            OrderBuilder::new()
                .specimen_id(order.specimen_id().text().as_ref())
                .universal_test_id(FieldBuf::test_codes(tests.iter().cloned()))
                .report_type("F"),
        );
        for test in &tests {
            let Some((_, value, units)) = MEASURED.iter().find(|(t, ..)| t == test) else {
                continue;
            };
            results.add(
                ResultBuilder::new()
                    .universal_test_id(FieldBuf::test_code(test.as_str()))
                    .value(*value)
                    .units(*units)
                    .status("F"),
            );
        }
    }
    analyzer.send(results.build()?).await?;
    say(format_args!("analyzer: results sent"));
    drop(analyzer);
    lis.await?
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The query reaches the LIS, and the results come back for exactly the tests it
    /// ordered, with the analyzer's values.
    #[test]
    fn the_lis_gets_results_for_the_tests_it_ordered() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let read = runtime.block_on(super::run()).unwrap();
        assert_eq!(
            read,
            [
                "query for SPEC-1",
                "result WBC = 5.8 10^3/uL",
                "result HGB = 13.1 g/dL"
            ]
        );
    }
}
