//! Fault injection for LIS robustness tests (`--fault NAME=VALUE`): the I/O loop transforms the
//! bytes the E1381 state machine sends and receives; the state machine itself stays correct.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// A fault that fires with a probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Corrupt the checksum of a sent frame.
    BadChecksum,
    /// Do not send the ACK for a received frame.
    DropAck,
    /// Send half a frame, then close the connection.
    DisconnectMidFrame,
    /// Send a frame twice (the peer must acknowledge again and deliver once).
    DuplicateFrame,
    /// Answer the peer's ENQ with NAK (busy).
    NakEnq,
}

impl Fault {
    /// The name used on the command line and in logs.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::BadChecksum => "bad-checksum",
            Self::DropAck => "drop-ack",
            Self::DisconnectMidFrame => "disconnect-mid-frame",
            Self::DuplicateFrame => "duplicate-frame",
            Self::NakEnq => "nak-enq",
        }
    }

    const ALL: [Self; 5] = [
        Self::BadChecksum,
        Self::DropAck,
        Self::DisconnectMidFrame,
        Self::DuplicateFrame,
        Self::NakEnq,
    ];
}

/// The configured faults, shared by every connection of the process.
#[derive(Debug)]
pub(crate) struct Faults {
    probabilities: [f64; 5],
    delay: Duration,
    rng: Mutex<Xoshiro256PlusPlus>,
}

impl Faults {
    /// No faults.
    pub(crate) fn none() -> Self {
        Self {
            probabilities: [0.0; 5],
            delay: Duration::ZERO,
            rng: Mutex::new(Xoshiro256PlusPlus::seed_from_u64(0)),
        }
    }

    /// Parses `--fault` values; `seed` makes the firing sequence reproducible.
    pub(crate) fn parse(specs: &[String], seed: Option<u64>) -> anyhow::Result<Self> {
        let mut faults = Self::none();
        let seed = seed.unwrap_or_else(|| rand::rng().random());
        faults.rng = Mutex::new(Xoshiro256PlusPlus::seed_from_u64(seed));
        for spec in specs {
            let (name, value) = spec
                .split_once('=')
                .with_context(|| format!("--fault {spec:?}: expected NAME=VALUE"))?;
            if name == "delay-ms" {
                let ms: u64 = value.parse().with_context(|| {
                    format!("--fault {spec:?}: {value:?} is not a number of milliseconds")
                })?;
                faults.delay = Duration::from_millis(ms);
                continue;
            }
            let Some(i) = Fault::ALL.iter().position(|f| f.name() == name) else {
                bail!(
                    "--fault {spec:?}: unknown fault {name:?} (known: bad-checksum, drop-ack, delay-ms, disconnect-mid-frame, duplicate-frame, nak-enq)"
                );
            };
            let p: f64 = value
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .with_context(|| {
                    format!("--fault {spec:?}: {value:?} is not a probability between 0 and 1")
                })?;
            faults.probabilities[i] = p;
        }
        Ok(faults)
    }

    /// The delay before every transmission (`delay-ms`).
    pub(crate) fn delay(&self) -> Duration {
        self.delay
    }

    /// Rolls the dice for `fault`; logs when it fires.
    pub(crate) fn fires(&self, fault: Fault, context: &str) -> bool {
        let p = self.probabilities[fault as usize];
        if p <= 0.0 {
            return false;
        }
        let hit = {
            let mut rng = self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            rng.random_bool(p)
        };
        if hit {
            tracing::warn!(
                fault = fault.name(),
                "fault injected: {} ({context})",
                fault.name()
            );
        }
        hit
    }
}
