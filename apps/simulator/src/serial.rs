//! Serial mode (`--serial-port PATH --serial-analyzer NAME`): the template's messages go over
//! RS232 with the template's baud rate, data bits, parity and stop bits, through the same
//! `astm-frame` sender state machine as TCP pushes. The serial handle is blocking, so the sans-IO
//! [`Link`] runs in a plain loop (on a blocking thread of the runtime).

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use astm_frame::{Event, Link, MessageId};
use lis_templates::{Parity, SerialConfig};
use serialport::{DataBits, SerialPort, StopBits};

/// Longest wait for one read, so timers are checked often enough.
const POLL: Duration = Duration::from_millis(50);
/// Upper bound of a whole serial run, whatever the peer does (E1381 timers end every session
/// well before).
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// The port settings of a template (`serial_config`; 9600 8N1 without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortSettings {
    /// Baud rate.
    pub(crate) baud: u32,
    /// Data bits.
    pub(crate) data_bits: DataBits,
    /// Parity.
    pub(crate) parity: serialport::Parity,
    /// Stop bits.
    pub(crate) stop_bits: StopBits,
}

impl PortSettings {
    /// Reads `serial_config`; unsupported values are an error naming the key.
    pub(crate) fn of(template: &str, config: Option<&SerialConfig>) -> anyhow::Result<Self> {
        let Some(c) = config else {
            return Ok(Self {
                baud: 9600,
                data_bits: DataBits::Eight,
                parity: serialport::Parity::None,
                stop_bits: StopBits::One,
            });
        };
        let data_bits = match c.data_bits {
            5 => DataBits::Five,
            6 => DataBits::Six,
            7 => DataBits::Seven,
            8 => DataBits::Eight,
            n => bail!("template {template:?}: serial_config.data_bits {n} is not 5, 6, 7 or 8"),
        };
        let parity = match c.parity {
            Parity::Even => serialport::Parity::Even,
            Parity::Odd => serialport::Parity::Odd,
            _ => serialport::Parity::None,
        };
        let stop_bits = if c.stop_bits == 1.0 {
            StopBits::One
        } else if c.stop_bits == 2.0 {
            StopBits::Two
        } else {
            bail!(
                "template {template:?}: serial_config.stop_bits {} is not supported (1 or 2)",
                c.stop_bits
            );
        };
        if c.baud_rate == 0 {
            bail!("template {template:?}: serial_config.baud_rate must be above 0");
        }
        Ok(Self {
            baud: c.baud_rate,
            data_bits,
            parity,
            stop_bits,
        })
    }

    /// For log lines: `9600 8N1`.
    pub(crate) fn describe(self) -> String {
        let bits = match self.data_bits {
            DataBits::Five => 5,
            DataBits::Six => 6,
            DataBits::Seven => 7,
            DataBits::Eight => 8,
        };
        let parity = match self.parity {
            serialport::Parity::Even => 'E',
            serialport::Parity::Odd => 'O',
            serialport::Parity::None => 'N',
        };
        let stop = match self.stop_bits {
            StopBits::One => 1,
            StopBits::Two => 2,
        };
        format!("{} {bits}{parity}{stop}", self.baud)
    }
}

/// Opens `path` with `settings`.
pub(crate) fn open(path: &str, settings: PortSettings) -> anyhow::Result<Box<dyn SerialPort>> {
    serialport::new(path, settings.baud)
        .data_bits(settings.data_bits)
        .parity(settings.parity)
        .stop_bits(settings.stop_bits)
        .flow_control(serialport::FlowControl::None)
        .timeout(POLL)
        .open()
        .with_context(|| format!("cannot open {path} with {}", settings.describe()))
}

/// The settings the device reports after opening (a pseudo-terminal, for one, always reports 8
/// data bits without parity).
pub(crate) fn read_back(port: &dyn SerialPort) -> anyhow::Result<PortSettings> {
    Ok(PortSettings {
        baud: port.baud_rate()?,
        data_bits: port.data_bits()?,
        parity: port.parity()?,
        stop_bits: port.stop_bits()?,
    })
}

/// Sends every message (one E1381 session each) and waits until the peer has acknowledged them.
pub(crate) fn send(
    port: &mut dyn SerialPort,
    mut link: Link,
    messages: &[Vec<u8>],
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut pending: Vec<MessageId> = messages
        .iter()
        .map(|m| link.send(m.clone(), Instant::now()))
        .collect();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        while link.poll_transmit(&mut out).is_some() {}
        if !out.is_empty() {
            port.write_all(&out).context("serial write")?;
            port.flush().context("serial write")?;
            out.clear();
        }
        while let Some(event) = link.poll_event() {
            match event {
                Event::MessageSent(id) => pending.retain(|p| *p != id),
                Event::MessageAborted { reason, .. } => {
                    bail!("message not accepted by the serial peer: {reason}")
                }
                Event::LinkError(e) => tracing::debug!("serial link: {e}"),
                _ => {}
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if now.duration_since(started) > RUN_LIMIT {
            bail!("serial transfer not finished after {RUN_LIMIT:?}");
        }
        let wait = link
            .poll_timeout()
            .map_or(POLL, |d| d.saturating_duration_since(now))
            .clamp(Duration::from_millis(1), POLL);
        port.set_timeout(wait).context("serial timeout")?;
        match port.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => link.handle_input(&buf[..n], Instant::now()),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("serial read"),
        }
        let now = Instant::now();
        if link.poll_timeout().is_some_and(|d| d <= now) {
            link.handle_timeout(now);
        }
    }
}
