//! Serial mode (`--serial-port PATH --serial-analyzer NAME`): the template's messages go over
//! RS232 with the template's baud rate, data bits, parity and stop bits, through the same
//! `astm-frame` sender state machine and I/O loop as TCP pushes, faults included.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use lis_templates::{Parity, SerialConfig};
use serialport::{DataBits, SerialPort, StopBits};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Longest wait for one read, so the reading thread sees a stop soon.
const POLL: Duration = Duration::from_millis(50);

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

/// A process other than this one that has the port's device open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Its process ID.
    pub(crate) pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub(crate) command: String,
}

/// Other processes with `path`'s device open, as far as this user may see their open files
/// (Linux: `/proc/PID/fd`; elsewhere none are found).
///
/// The kernel lets two programs open a terminal at once unless the first asked for exclusive
/// use, and a terminal program (minicom, screen) usually does not. Both then read from the
/// line and each byte goes to one of them, so replies meant for the simulator vanish and the
/// run ends in a reply timeout that names no cause.
pub(crate) fn other_holders(path: &str) -> Vec<Holder> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let Ok(device) = std::fs::metadata(path) else {
            return Vec::new();
        };
        if !device.file_type().is_char_device() {
            return Vec::new();
        }
        let own = std::process::id();
        let Ok(processes) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut holders = Vec::new();
        for process in processes.flatten() {
            let Some(pid) = process
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == own {
                continue;
            }
            // Another user's processes are not readable: skipped.
            let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
                continue;
            };
            let holds = fds.flatten().any(|fd| {
                // Only device files are looked at more closely (sockets and pipes are most).
                std::fs::read_link(fd.path()).is_ok_and(|target| target.starts_with("/dev"))
                    && std::fs::metadata(fd.path())
                        .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == device.rdev())
            });
            if holds {
                let command = std::fs::read_to_string(process.path().join("comm"))
                    .map(|c| c.trim_end().to_owned())
                    .unwrap_or_default();
                holders.push(Holder { pid, command });
            }
        }
        holders.sort_by_key(|h| h.pid);
        holders
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Vec::new()
    }
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

/// Bridges the open port to an async byte stream, so that the E1381 link runs in the same I/O
/// loop (`LinkIo`: response delay, fault injection) as on TCP. The serial handle is blocking and
/// portable, so two threads pump bytes between it and an in-memory pipe; they stop once the
/// returned stream is dropped.
pub(crate) fn bridge(port: Box<dyn SerialPort>) -> anyhow::Result<(DuplexStream, Pumps)> {
    let mut reader = port.try_clone().context("cannot clone the serial handle")?;
    let mut writer = port;
    let (stream, pipe) = tokio::io::duplex(64 * 1024);
    let (mut from_link, mut to_link) = tokio::io::split(pipe);
    let runtime = tokio::runtime::Handle::current();
    let failure = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let inbound = {
        let (runtime, failure, stop) = (runtime.clone(), Arc::clone(&failure), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("serial-read".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                // Reads time out after `POLL`, so a stop is seen soon.
                while !stop.load(Ordering::Relaxed) {
                    match reader.read(&mut buf) {
                        Ok(0) => {
                            record(&failure, "serial port closed".into());
                            break;
                        }
                        Ok(n) => {
                            if runtime.block_on(to_link.write_all(&buf[..n])).is_err() {
                                break;
                            }
                        }
                        Err(e) if is_transient(&e) => {}
                        Err(e) => {
                            record(&failure, format!("serial read: {e}"));
                            break;
                        }
                    }
                }
                // The link reads the end of its stream at once, rather than waiting for a
                // timer to find the device gone (the writer thread keeps the pipe open).
                let _ = runtime.block_on(to_link.shutdown());
            })
            .context("cannot start the serial reader")?
    };
    let outbound = {
        let failure = Arc::clone(&failure);
        std::thread::Builder::new()
            .name("serial-write".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                // Ends when the link's stream is dropped, after writing all it sent.
                while let Ok(n @ 1..) = runtime.block_on(from_link.read(&mut buf)) {
                    if let Err(e) = writer.write_all(&buf[..n]).and_then(|()| writer.flush()) {
                        record(&failure, format!("serial write: {e}"));
                        break;
                    }
                }
                stop.store(true, Ordering::Relaxed);
            })
            .context("cannot start the serial writer")?
    };
    Ok((
        stream,
        Pumps {
            failure,
            threads: vec![inbound, outbound],
        },
    ))
}

/// The threads of a [`bridge`].
#[derive(Debug)]
pub(crate) struct Pumps {
    failure: Arc<Mutex<Option<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pumps {
    /// Waits until both threads have stopped (drop the stream first) and returns the port's
    /// I/O error, if one stopped them: it says more than the link's "closed".
    pub(crate) fn finish(self) -> Option<String> {
        for thread in self.threads {
            let _ = thread.join();
        }
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

fn record(failure: &Mutex<Option<String>>, what: String) {
    failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert(what);
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
    )
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A process that has the port open is named; once it is gone it is not. This process
    /// holds both ends too, and is never named.
    #[test]
    fn other_holders_names_the_processes_with_the_port_open() {
        // `pair` opens both ends inheritable, so a child started now holds the port as well.
        let (_master, slave) = serialport::TTYPort::pair().expect("pseudo-terminal pair");
        let path = slave.name().expect("slave path");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("start sleep");
        let holders = other_holders(&path);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            holders.contains(&Holder {
                pid: child.id(),
                command: "sleep".into()
            }),
            "{holders:?}"
        );
        assert!(
            holders.iter().all(|h| h.pid != std::process::id()),
            "{holders:?}"
        );
        let after = other_holders(&path);
        assert!(after.iter().all(|h| h.pid != child.id()), "{after:?}");
    }

    #[test]
    fn a_path_that_is_no_device_has_no_holders() {
        assert_eq!(other_holders("/proc/self/status"), Vec::new());
        assert_eq!(other_holders("/no/such/port"), Vec::new());
    }
}
