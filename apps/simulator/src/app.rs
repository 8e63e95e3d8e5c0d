//! State shared by every mode: templates, accession minter, options, received messages, faults.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use astm_frame::{Assembly, ContentionPolicy, LinkConfig, Role, Timers};
use lis_templates::{
    AccessionMinter, AstmMessage, GenerateOptions, Layout, Output, Profiles, Template, TemplateSet,
    ValueMode,
};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::cli::{Cli, ContentionArg, LayoutArg, PushFramingArg};
use crate::faults::FaultPlan;
use crate::push;
use crate::received::Received;

/// The clock used with `--seed` when `--now` is not given, so a seed alone gives byte-identical
/// output.
pub(crate) const SEED_CLOCK: &str = "20260101120000";

/// What a request fixes about the generated sample instead of the template or the generator.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// Accession (a valid SiteYearNum).
    pub(crate) sample_id: Option<String>,
    /// Patient ID (P.4 / PID-3).
    pub(crate) patient_id: Option<String>,
    /// Test codes to report, in this order.
    pub(crate) tests: Option<Vec<String>>,
}

/// Shared state.
#[derive(Debug)]
pub(crate) struct App {
    /// The command line.
    pub(crate) cli: Cli,
    /// Every template (embedded, then `--templates-dir`).
    pub(crate) templates: TemplateSet,
    /// SiteYearNum accessions, one counter per lane for every protocol.
    pub(crate) minter: AccessionMinter,
    /// What the LIS sent.
    pub(crate) received: Received,
    /// Fault injection.
    pub(crate) faults: FaultPlan,
    /// The origins `--user/--password` go to: `--push`'s (when http) and every `--auth-origin`.
    auth_origins: Vec<String>,
    now: Option<chrono::NaiveDateTime>,
    generation: AtomicU64,
}

impl App {
    /// Loads templates and checks the options.
    pub(crate) fn new(mut cli: Cli) -> anyhow::Result<Self> {
        // The reference tests `ASTM_TEMPLATE` / `--template` for truth: an empty value (a
        // compose file's `ASTM_TEMPLATE: ""`) means no template, not a template called "".
        if cli.template.as_deref() == Some("") {
            cli.template = None;
        }
        let mut templates = TemplateSet::embedded().context("embedded templates")?;
        if let Some(dir) = &cli.templates_dir {
            let profiles = cli
                .profiles_dir
                .clone()
                .map_or(Profiles::None, Profiles::Dir);
            let extra = TemplateSet::load_dir(dir, &profiles)
                .with_context(|| format!("--templates-dir {}", dir.display()))?;
            for template in extra.iter() {
                templates.insert(template.clone());
            }
        }
        let now = match (cli.now, cli.seed) {
            (Some(now), _) => Some(now),
            (None, Some(_)) => {
                chrono::NaiveDateTime::parse_from_str(SEED_CLOCK, "%Y%m%d%H%M%S").ok()
            }
            (None, None) => None,
        };
        let minter = match now {
            Some(t) => AccessionMinter::with(
                lis_templates::DEFAULT_PREFIX,
                u8::try_from(chrono::Datelike::year(&t).rem_euclid(100)).unwrap_or(0),
            )?,
            None => AccessionMinter::new(),
        };
        let faults = FaultPlan::parse(&cli.fault, cli.seed)?;
        for name in faults.template_scopes() {
            if templates.get(name).is_err() {
                bail!(
                    "--fault {name}:...: scope {name:?} is not a port number, `push`, `serial` or a known template"
                );
            }
        }
        let auth_origins = auth_origins(&cli)?;
        Ok(Self {
            received: Received::new(cli.received_capacity),
            auth_origins,
            cli,
            templates,
            minter,
            faults,
            now,
            generation: AtomicU64::new(0),
        })
    }

    /// Whether `--user/--password` may go with a request to `url`: only to the origins the
    /// simulator's own configuration names, never to one an API caller chose.
    pub(crate) fn may_send_credentials(&self, url: &str) -> bool {
        push::http_origin(url).is_some_and(|origin| self.auth_origins.contains(&origin))
    }

    /// The template called `name`.
    pub(crate) fn template(&self, name: &str) -> anyhow::Result<&Template> {
        self.templates.get(name).map_err(|_| {
            anyhow::anyhow!(
                "unknown template {name:?} (known: {})",
                self.templates.names().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The layout of generated messages.
    pub(crate) fn layout(&self) -> Layout {
        match self.cli.layout {
            LayoutArg::Standard => Layout::Standard,
            LayoutArg::Openelis => Layout::OpenElis,
        }
    }

    /// Options for the next generation: each gets its own seed (`--seed` + n), so a run is
    /// reproducible and its messages still differ.
    pub(crate) fn options(
        &self,
        template_values: bool,
        qc_deviation: Option<f64>,
    ) -> GenerateOptions {
        let n = self.generation.fetch_add(1, Ordering::Relaxed);
        GenerateOptions {
            seed: self.cli.seed.map(|s| s.wrapping_add(n)),
            now: self.now,
            layout: self.layout(),
            values: template_values.then_some(ValueMode::Template),
            qc_deviation,
            encoding: self.cli.charset,
            ..GenerateOptions::default()
        }
    }

    /// Options for the next generation with a request's accession, patient and tests.
    pub(crate) fn options_for(
        &self,
        template_values: bool,
        qc_deviation: Option<f64>,
        overrides: &Overrides,
    ) -> GenerateOptions {
        GenerateOptions {
            sample_id: overrides.sample_id.clone(),
            patient_id: overrides.patient_id.clone(),
            tests: overrides.tests.clone(),
            ..self.options(template_values, qc_deviation)
        }
    }

    /// Records of the `fields.json` generator as a message in `--charset` (UTF-8 by default;
    /// `?` for what it cannot write), as lis-templates hands its own messages over.
    pub(crate) fn legacy_message(&self, records: Vec<String>) -> AstmMessage {
        AstmMessage::new(records, self.cli.charset.unwrap_or_default())
    }

    /// The clock: `--now`, the seed clock, or local time.
    pub(crate) fn now(&self) -> chrono::NaiveDateTime {
        self.now
            .unwrap_or_else(|| chrono::Local::now().naive_local())
    }

    /// A seeded RNG for the legacy generator.
    pub(crate) fn rng(&self) -> Xoshiro256PlusPlus {
        let n = self.generation.fetch_add(1, Ordering::Relaxed);
        match self.cli.seed {
            Some(s) => Xoshiro256PlusPlus::seed_from_u64(s.wrapping_add(n)),
            None => Xoshiro256PlusPlus::seed_from_u64(rand::RngExt::random(&mut rand::rng())),
        }
    }

    /// ASTM messages from an ASTM/RS232 template (patient or QC).
    pub(crate) fn astm_messages(
        &self,
        template: &Template,
        qc: bool,
        qc_deviation: Option<f64>,
        overrides: &Overrides,
        template_values: bool,
    ) -> anyhow::Result<Vec<AstmMessage>> {
        if !template.protocol.kind.is_astm() {
            bail!(
                "template {:?} is not an ASTM template (protocol {})",
                template.name,
                template.protocol.kind.as_str()
            );
        }
        if qc && template.qc_controls.is_empty() {
            bail!("template {:?} has no qc_controls defined", template.name);
        }
        let options = self.options_for(template_values, qc_deviation, overrides);
        match lis_templates::generate(template, &self.minter, &options, qc)? {
            Output::Astm(messages) => Ok(messages),
            _ => bail!("template {:?} did not produce ASTM", template.name),
        }
    }

    /// The E1381 configuration of a push connection: framed per `--push-framing`.
    pub(crate) fn push_link_config(&self) -> LinkConfig {
        let mut config = self.sender_link_config();
        config.framer.packing = match self.cli.push_framing {
            PushFramingArg::Reference => astm_frame::Packing::RecordPerFrameEtb,
            PushFramingArg::PerRecord => astm_frame::Packing::RecordPerFrame,
        };
        config
    }

    /// The E1381 configuration of an instrument that opens the line (a push, a serial line).
    /// With `--contention yield` it yields as listening ports do, but only once the peer has
    /// had the contention retry time (1 s) to acknowledge its ENQ: the peer may be a port that
    /// yields at once (another simulator's), and two of those would each wait to receive.
    pub(crate) fn sender_link_config(&self) -> LinkConfig {
        let mut config = self.link_config(Role::Instrument);
        if self.cli.contention == ContentionArg::Yield {
            config.contention = ContentionPolicy::AckAfter(config.timers.contention_retry);
        }
        config
    }

    /// The E1381 configuration of a station.
    pub(crate) fn link_config(&self, role: Role) -> LinkConfig {
        let mut config = LinkConfig::new(role);
        config.assembly = Assembly::PerTransfer;
        // The reference compares checksums case-insensitively; LIS senders that write lower-case
        // hex (`af`) are common enough. The value itself is still checked.
        config.decoder.leniency.lowercase_checksum = true;
        // The reference takes any frame number 0-7 on the first frame of a transfer; a LIS
        // that numbers its frames from 0 works with it.
        config.decoder.leniency.any_first_frame_number = true;
        config.contention = match self.cli.contention {
            ContentionArg::ByRole => ContentionPolicy::ByRole,
            // The reference: the OpenELIS bridge, sending orders to a proactive-ENQ port,
            // takes the port's ENQ for contention and then reads the ACK.
            ContentionArg::Yield => ContentionPolicy::AckAtOnce,
        };
        if let Some(ms) = self.cli.link_timer_ms {
            let d = Duration::from_millis(ms);
            config.timers = Timers {
                enq_reply: d,
                frame_reply: d,
                receive: d,
                enq_retry: d,
                interrupt_hold_off: d,
                contention_retry: d,
                contention_yield: d,
                reply_after_noise: d,
            };
        }
        config
    }
}

/// The origins `--user/--password` go to. An `--auth-origin` that is no http(s) URL is refused
/// here; credentials that can go nowhere are warned about.
fn auth_origins(cli: &Cli) -> anyhow::Result<Vec<String>> {
    let mut origins = Vec::new();
    // An empty entry (`SIMULATOR_PUSH_AUTH_ORIGINS=`, as compose files define unset
    // variables, or a trailing comma) names nothing.
    for given in cli.auth_origin.iter().filter(|o| !o.trim().is_empty()) {
        if let Some(reason) = push::http_url_problem(given) {
            bail!("--auth-origin {given:?} is not an http(s) URL: {reason}");
        }
        origins.extend(push::http_origin(given));
    }
    // A bare `--push host:port` is an https base, as `Destination::parse` reads it.
    if let Some(Ok(push::Destination::Http(base))) =
        cli.push.as_deref().map(push::Destination::parse)
    {
        origins.extend(push::http_origin(&base));
    }
    if cli.user.is_some() && origins.is_empty() {
        tracing::warn!(
            "--user/--password are sent to no destination: they go only to an http(s) --push \
             URL's origin and to each --auth-origin"
        );
    }
    Ok(origins)
}
