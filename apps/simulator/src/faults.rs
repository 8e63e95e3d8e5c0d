//! Fault injection for LIS robustness tests (`--fault NAME=VALUE`): the I/O loop transforms the
//! bytes the E1381 state machine sends and receives; the state machine itself stays correct.
//! Faults apply everywhere, or to one scope (`--fault 9600:drop-ack=0.5`, `--fault
//! stago_start4:nak-enq=1`, `--fault push:bad-checksum=0.1`, `--fault serial:duplicate-frame=1`).

use std::sync::{Arc, Mutex};
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

/// Where a scoped fault applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FaultScope {
    /// A server port (the local port number).
    Port(u16),
    /// Every server port of a template.
    Template(String),
    /// Push mode and order-result pushes.
    Push,
    /// Serial mode.
    Serial,
}

impl FaultScope {
    fn parse(text: &str) -> Self {
        if text == "push" {
            Self::Push
        } else if text == "serial" {
            Self::Serial
        } else if let Ok(port) = text.parse() {
            Self::Port(port)
        } else {
            Self::Template(text.to_owned())
        }
    }
}

/// The faults of every scope: `--fault NAME=VALUE` applies everywhere; `--fault
/// SCOPE:NAME=VALUE` (SCOPE a port number, a template name, `push` or `serial`) only there, on top of the
/// global ones.
#[derive(Debug)]
pub(crate) struct FaultPlan {
    global: Arc<Faults>,
    scoped: Vec<(FaultScope, Arc<Faults>)>,
}

impl FaultPlan {
    /// Parses every `--fault` value.
    pub(crate) fn parse(specs: &[String], seed: Option<u64>) -> anyhow::Result<Self> {
        let mut global = Vec::new();
        let mut by_scope: Vec<(FaultScope, Vec<String>)> = Vec::new();
        for spec in specs {
            // NAME=VALUE never holds a ':' before its '=', so a ':' there separates a scope.
            match spec.split_once(':') {
                Some((scope, rest)) if !scope.contains('=') => {
                    if scope.is_empty() {
                        bail!("--fault {spec:?}: empty scope before ':'");
                    }
                    let scope = FaultScope::parse(scope);
                    match by_scope.iter_mut().find(|(s, _)| *s == scope) {
                        Some((_, list)) => list.push(rest.to_owned()),
                        None => by_scope.push((scope, vec![rest.to_owned()])),
                    }
                }
                _ => global.push(spec.clone()),
            }
        }
        let mut scoped = Vec::new();
        for (i, (scope, list)) in by_scope.into_iter().enumerate() {
            let all: Vec<String> = global.iter().cloned().chain(list).collect();
            let seed = seed.map(|s| s.wrapping_add(i as u64 + 1));
            scoped.push((scope, Arc::new(Faults::parse(&all, seed)?)));
        }
        Ok(Self {
            global: Arc::new(Faults::parse(&global, seed)?),
            scoped,
        })
    }

    /// Template names used as scopes (checked against the known templates at start).
    pub(crate) fn template_scopes(&self) -> impl Iterator<Item = &str> {
        self.scoped.iter().filter_map(|(s, _)| match s {
            FaultScope::Template(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The faults of a server port: its port scope, else its template's, else the global ones.
    pub(crate) fn for_port(&self, port: u16, template: Option<&str>) -> Arc<Faults> {
        let by_port = self
            .scoped
            .iter()
            .find(|(s, _)| *s == FaultScope::Port(port));
        let by_template = || {
            self.scoped.iter().find(
                |(s, _)| matches!((s, template), (FaultScope::Template(a), Some(b)) if a == b),
            )
        };
        by_port
            .or_else(by_template)
            .map_or_else(|| Arc::clone(&self.global), |(_, f)| Arc::clone(f))
    }

    /// The faults of pushes.
    pub(crate) fn for_push(&self) -> Arc<Faults> {
        self.scoped_or_global(&FaultScope::Push)
    }

    /// The faults of serial mode.
    pub(crate) fn for_serial(&self) -> Arc<Faults> {
        self.scoped_or_global(&FaultScope::Serial)
    }

    fn scoped_or_global(&self, scope: &FaultScope) -> Arc<Faults> {
        self.scoped
            .iter()
            .find(|(s, _)| s == scope)
            .map_or_else(|| Arc::clone(&self.global), |(_, f)| Arc::clone(f))
    }
}
