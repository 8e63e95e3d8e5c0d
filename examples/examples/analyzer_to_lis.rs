//! An analyzer sends a result message to a LIS over loopback TCP: `astm-frame` carries it (ENQ,
//! frames, ACKs, EOT) and `astm-records` reads it on the LIS side.
//!
//! ```text
//! cargo run -p examples --example analyzer_to_lis
//! ```

use astm_frame::driver::LinkDriver;
use astm_frame::{Assembly, LinkConfig, Role};
use astm_records::Message;
use tokio::net::{TcpListener, TcpStream};

/// Writes a line to stdout or stderr. `println!` and `eprintln!` panic when the write fails,
/// as on a pipe whose reader has gone (`... | head -0`); the line is dropped instead, and the
/// exit status still tells.
fn say(mut to: impl std::io::Write, line: std::fmt::Arguments<'_>) {
    let _ = writeln!(to, "{line}");
}

const RESULT: &[u8] = b"H|\\^&|||XN-550^00-22^11001|||||||P|LIS2-A2|20240101120000\r\
P|1||PID-0042||Doe^Jane||19800101|F\r\
O|1|DEV01240100000000001||^^^WBC\\^^^HGB|R||||||N||||||||||||||F\r\
R|1|^^^WBC|5.8|10*3/uL|4.0-10.0|N||F||||20240101120500\r\
R|2|^^^HGB|13.1|g/dL|12.0-16.0|N||F||||20240101120500\r\
L|1|N\r";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The analyzer sends [`RESULT`] to the LIS; the results the LIS read, as
/// `CODE = value units`.
async fn run() -> Result<Vec<String>, Error> {
    // LIS1-A §8.2.1.1: the computer system listens, the instrument connects.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    say(
        std::io::stdout(),
        format_args!("LIS listening on {address}"),
    );

    let lis = tokio::spawn(async move {
        let (stream, peer) = listener.accept().await?;
        // Hand over H ... L at EOT.
        let config = LinkConfig::new(Role::Computer).with_assembly(Assembly::PerTransfer);
        let mut link = LinkDriver::new(stream, config);
        let mut read = Vec::new();
        while let Some(text) = link.recv().await? {
            let message = Message::parse(&text)?;
            say(
                std::io::stdout(),
                format_args!(
                    "LIS received {} records from {peer}",
                    message.records().len()
                ),
            );
            for result in message.results() {
                let line = format!(
                    "{} = {} {}",
                    result.test_code().as_deref().unwrap_or("?"),
                    result.numeric_value().map_or(f64::NAN, |v| v.value),
                    result.units_text()
                );
                say(std::io::stdout(), format_args!("  {line}"));
                read.push(line);
            }
        }
        Ok::<_, Error>(read)
    });

    let stream = TcpStream::connect(address).await?;
    let mut analyzer = LinkDriver::new(stream, LinkConfig::new(Role::Instrument));
    analyzer.send(RESULT.to_vec()).await?;
    say(
        std::io::stdout(),
        format_args!("analyzer: every frame acknowledged"),
    );
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
    /// The result goes from the analyzer to the LIS, and the LIS reads both values with
    /// their units.
    #[test]
    fn the_lis_reads_both_results() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let read = runtime.block_on(super::run()).unwrap();
        assert_eq!(read, ["WBC = 5.8 10*3/uL", "HGB = 13.1 g/dL"]);
    }
}
