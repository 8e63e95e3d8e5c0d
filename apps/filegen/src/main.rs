//! `filegen`: writes instrument result files from the FILE templates so LIS import pipelines can
//! be tested at volume. The layouts, values, QC and accessions come from `lis-templates`; this is
//! the command line around `lis_templates::files`.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lis_templates::chrono::{Datelike as _, NaiveDateTime};
use lis_templates::files::{self, FileLayout, FileOptions};
use lis_templates::{
    AccessionMinter, DEFAULT_PREFIX, FileKind, GenerateOptions, Lane, Profiles, ProtocolKind,
    Template, TemplateSet,
};

/// Reference fixtures compiled in, under the paths the templates' `fixture.file` names.
const FIXTURES: [(&str, &[u8]); 6] = [
    (
        "fixtures/quantstudio5/results.xls",
        include_bytes!("../fixtures/quantstudio5/results.xls"),
    ),
    (
        "fixtures/quantstudio7/results.xlsx",
        include_bytes!("../fixtures/quantstudio7/results.xlsx"),
    ),
    (
        "fixtures/fluorocycler-xt/results.xlsx",
        include_bytes!("../fixtures/fluorocycler-xt/results.xlsx"),
    ),
    (
        "fixtures/tecan-f50/results.csv",
        include_bytes!("../fixtures/tecan-f50/results.csv"),
    ),
    (
        "fixtures/multiskan-fc/results.csv",
        include_bytes!("../fixtures/multiskan-fc/results.csv"),
    ),
    (
        "fixtures/wondfo-finecare/results.csv",
        include_bytes!("../fixtures/wondfo-finecare/results.csv"),
    ),
];

/// Progress bars appear from this many files on, and only on a terminal.
const PROGRESS_FROM: u32 = 10;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Tsv,
    Xlsx,
}

/// Instrument result files from the FILE templates.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// FILE template name (e.g. quantstudio5, wondfo_finecare).
    #[arg(long)]
    template: String,
    /// Folder to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Number of files.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    count: u32,
    /// Patient samples per file (controls come on top); default 8. Not with `--qc`, whose
    /// rows are the template's QC controls.
    #[arg(long, conflicts_with = "qc", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    samples: Option<u32>,
    /// Container instead of what the instrument exports.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// RNG seed (file i uses seed + i): reproducible values.
    #[arg(long)]
    seed: Option<u64>,
    /// QC files: one row per qc_controls entry, names from qc_sample_id_pattern.
    #[arg(long)]
    qc: bool,
    /// Shift every QC value by exactly this many SD (target + k × SD).
    #[arg(long, requires = "qc", allow_hyphen_values = true)]
    qc_deviation: Option<f64>,
    /// Rewrite the template's real fixture with fresh accessions instead of generating
    /// (sequential accessions, everything else kept: no seed, QC, format or sample count).
    #[arg(long, conflicts_with_all = ["qc", "format", "samples", "seed"])]
    replay_fixture: bool,
    /// Load templates from this folder instead of the compiled-in set (fixtures are looked up
    /// in its parent folder first).
    #[arg(long)]
    templates_dir: Option<PathBuf>,
    /// Sequence number of the first accession on each lane (the last 11 digits): each run
    /// starts at 1, so give the next free number when an earlier batch went into the same
    /// import folder (the LIS refuses accessions it already has).
    #[arg(
        long,
        default_value_t = 1,
        value_parser = clap::value_parser!(u64).range(1..=lis_templates::MAX_SEQUENCE)
    )]
    first_sequence: u64,
    /// Clock for the run (`2026-01-02T08:00:00` or `2026-01-02 08:00:00`, local time): file
    /// names, run dates and times in the files. With `--seed`, two runs write the same bytes.
    #[arg(long, value_parser = parse_now)]
    now: Option<NaiveDateTime>,
}

/// `--now`: an ISO 8601 local date and time, `T` or a space between them, seconds optional.
fn parse_now(text: &str) -> Result<NaiveDateTime, String> {
    [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .ok_or_else(|| "use a local date and time such as 2026-01-02T08:00:00".to_owned())
    .and_then(|now| {
        // Files carry dates a year around the clock, and XLSX dates stop at 1900 and 9999.
        if (1901..=9998).contains(&now.year()) {
            Ok(now)
        } else {
            Err(format!("{now} is outside the years 1901 to 9998"))
        }
    })
}

/// The folder holding `--templates-dir`, where fixtures and `analyzer-profiles` are looked up.
/// A path ending in `.` or `..` (`--templates-dir .` from inside the folder) has no lexical
/// parent worth the name (`Path::parent` of `.` is the empty path, i.e. the templates folder
/// itself), so such a path is resolved first.
fn templates_root(dir: &Path) -> Option<PathBuf> {
    if dir.file_name().is_some() {
        return dir.parent().map(Path::to_path_buf);
    }
    std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.parent().map(Path::to_path_buf))
}

fn load_templates(dir: Option<&Path>) -> Result<TemplateSet> {
    let Some(dir) = dir else {
        return TemplateSet::embedded().context("compiled-in templates");
    };
    let profiles = templates_root(dir)
        .map(|p| p.join("analyzer-profiles"))
        .filter(|p| p.is_dir())
        .map_or(Profiles::None, Profiles::Dir);
    TemplateSet::load_dir(dir, &profiles)
        .with_context(|| format!("--templates-dir {}", dir.display()))
}

fn find_template<'a>(set: &'a TemplateSet, name: &str) -> Result<&'a Template> {
    match set.get(name) {
        Ok(t) if t.protocol.kind == ProtocolKind::File => Ok(t),
        Ok(t) => bail!(
            "template {name:?} is {}, not a FILE template; FILE templates: {}",
            t.protocol.kind.as_str(),
            file_templates(set)
        ),
        Err(_) => bail!(
            "unknown template {name:?}; FILE templates: {}",
            file_templates(set)
        ),
    }
}

fn file_templates(set: &TemplateSet) -> String {
    let names: Vec<&str> = set
        .iter()
        .filter(|t| t.protocol.kind == ProtocolKind::File)
        .map(|t| t.name.as_str())
        .collect();
    if names.is_empty() {
        "none (the templates folder holds no FILE template)".to_owned()
    } else {
        names.join(", ")
    }
}

fn fixture_bytes(template: &Template, templates_dir: Option<&Path>) -> Result<(String, Vec<u8>)> {
    let Some(file) = template
        .extra
        .get("fixture")
        .and_then(|f| f.get("file"))
        .and_then(|f| f.as_str())
    else {
        bail!("template {:?} has no fixture to replay", template.name);
    };
    // A fixture lives beside the templates; a template must not make filegen read (and copy
    // into its output) any file of the machine.
    let confined = Path::new(file).components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if !confined {
        bail!(
            "template {:?}: fixture.file {file:?} must be a relative path inside the templates' \
             parent folder (no `..`, no root)",
            template.name
        );
    }
    if let Some(root) = templates_dir.and_then(templates_root) {
        let path = root.join(file);
        if path.is_file() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            return Ok((file.to_owned(), bytes));
        }
    }
    match FIXTURES.iter().find(|(name, _)| *name == file) {
        Some((_, bytes)) => Ok((file.to_owned(), bytes.to_vec())),
        None => bail!(
            "fixture {file:?} of template {:?} not found (looked next to --templates-dir and in the compiled-in fixtures)",
            template.name
        ),
    }
}

fn progress(count: u32) -> ProgressBar {
    if count < PROGRESS_FROM || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::from(count));
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Says how far a batch got when a file after the first fails (the files before it are
/// written and stay).
fn batch_progress(error: anyhow::Error, done: u32, count: u32) -> anyhow::Error {
    if done == 0 {
        error
    } else {
        error.context(format!(
            "file {} of {count}; {done} written before it",
            done + 1
        ))
    }
}

/// Refuses, before anything is written, a batch whose accessions would run past the last
/// sequence number of a lane part-way: `first` is the first file's. Every file of a batch
/// mints as many per lane as the first.
fn check_sequences_last<'a>(
    first: impl IntoIterator<Item = &'a str>,
    minter: &AccessionMinter,
    args: &Args,
) -> Result<()> {
    let mut per_lane: std::collections::BTreeMap<Lane, u64> = std::collections::BTreeMap::new();
    for lane in first.into_iter().filter_map(|a| minter.lane_of(a)) {
        *per_lane.entry(lane).or_default() += 1;
    }
    let room = minter.sequences_per_lane();
    for (lane, per_file) in per_lane {
        let fit = room / per_file;
        if u64::from(args.count) > fit {
            bail!(
                "--count {} needs {} accessions on lane {lane} ({per_file} per file), but from \
                 --first-sequence {} only {room} are left (at most {fit} file(s)); nothing written",
                args.count,
                u64::from(args.count) * per_file,
                args.first_sequence,
            );
        }
    }
    Ok(())
}

fn run(args: &Args) -> Result<String> {
    if let Some(k) = args.qc_deviation
        && !k.is_finite()
    {
        bail!("invalid value {k} for --qc-deviation: must be a finite number of SD");
    }
    let set = load_templates(args.templates_dir.as_deref())?;
    let template = find_template(&set, &args.template)?;
    // Accessions carry the year: that of `--now` when given, so they too repeat run to run.
    let minter = match args.now {
        Some(now) => {
            let year = u8::try_from(now.year().rem_euclid(100)).unwrap_or_default();
            AccessionMinter::with(DEFAULT_PREFIX, year)?
        }
        None => AccessionMinter::new(),
    }
    .first_sequence(args.first_sequence)?;
    let started = Instant::now();
    let bar = progress(args.count);
    let mut bytes = 0usize;
    let mut samples = 0usize;
    let mut controls = 0usize;
    if args.replay_fixture {
        let (name, fixture) = fixture_bytes(template, args.templates_dir.as_deref())?;
        for i in 0..args.count {
            let replayed =
                files::replay_fixture(template, &name, &fixture, &minter, i + 1, args.now)
                    .with_context(|| format!("replaying {name}"))
                    .map_err(|e| batch_progress(e, i, args.count))?;
            if i == 0 {
                check_sequences_last(
                    replayed.replaced.iter().map(|(_, new)| new.as_str()),
                    &minter,
                    args,
                )?;
            }
            files::write_output(&replayed.file, &args.out)
                .map_err(|e| batch_progress(e.into(), i, args.count))?;
            bytes += replayed.file.bytes.len();
            samples += replayed.replaced.len();
            bar.inc(1);
        }
        bar.finish_and_clear();
        return Ok(format!(
            "filegen: replayed {name} {} time(s) for {} into {}: {samples} fresh accessions, {bytes} bytes, {:.2}s",
            args.count,
            template.name,
            args.out.display(),
            started.elapsed().as_secs_f64()
        ));
    }
    for i in 0..args.count {
        let options = FileOptions {
            generate: GenerateOptions {
                seed: args.seed.map(|s| s.wrapping_add(u64::from(i))),
                qc_deviation: args.qc_deviation,
                now: args.now,
                ..GenerateOptions::default()
            },
            samples: args.samples.map(|n| n as usize),
            format: args.format.map(|f| match f {
                Format::Csv => FileKind::Csv,
                Format::Tsv => FileKind::Tsv,
                Format::Xlsx => FileKind::Xlsx,
            }),
            qc: args.qc,
            sequence: i + 1,
        };
        let file = files::render(template, &minter, &options)
            .map_err(|e| batch_progress(e.into(), i, args.count))?;
        if i == 0 {
            check_sequences_last(file.accessions.iter().map(String::as_str), &minter, args)?;
        }
        files::write_output(&file.file, &args.out)
            .map_err(|e| batch_progress(e.into(), i, args.count))?;
        bytes += file.file.bytes.len();
        samples += file.accessions.len();
        controls += file.controls.len();
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(format!(
        "filegen: wrote {} {} file(s) for {} ({}) into {}: {samples} samples, {controls} control rows, {bytes} bytes, {:.2}s",
        args.count,
        if args.qc { "QC" } else { "result" },
        template.name,
        FileLayout::of(template).name(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    ))
}

fn main() {
    let args = Args::parse();
    // Written with errors ignored: `println!` / `eprintln!` panic when the write fails, as it
    // does on a pipe whose reader has gone (`filegen ... | head -0`). The files are written by
    // then; the exit status still tells how the run went.
    match run(&args) {
        Ok(summary) => {
            let _ = writeln!(std::io::stdout(), "{summary}");
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "filegen: error: {e:#}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::batch_progress;

    /// A full disk part-way cannot be staged for the binary (the tests run as root), so the
    /// message is checked here: the first file's error reads as it is, a later one's says
    /// how many files stay written.
    #[test]
    fn a_later_files_error_says_how_many_were_written() {
        let error = || anyhow::anyhow!("writing x.csv: No space left on device");
        assert_eq!(
            format!("{:#}", batch_progress(error(), 0, 10)),
            "writing x.csv: No space left on device"
        );
        assert_eq!(
            format!("{:#}", batch_progress(error(), 3, 10)),
            "file 4 of 10; 3 written before it: writing x.csv: No space left on device"
        );
    }
}
