//! Statistics of the generator, series with injected errors, labels.

use chrono::NaiveDate;
use proptest::prelude::*;
use qc_westgard_gen::{
    Category, ControlId, ControlLevel, Deviation, Disturbance, Evaluator, MAX_SERIES_VALUES,
    QcGenerator, RuleSet, SampleNamePattern, Scatter, SeriesSpec, Status, round_to, sd_for,
};

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[test]
fn ten_thousand_seeded_draws_have_the_target_mean_and_sd() {
    let mut g = QcGenerator::seeded(20260101);
    let draws: Vec<f64> = (0..10_000)
        .map(|_| g.value(100.0, 5.0, Deviation::Random))
        .collect();
    let (mean, sd) = mean_sd(&draws);
    println!("10,000 draws of N(100, 5): mean {mean:.4}, sd {sd:.4}");
    // Standard error of the mean is 0.05; of the SD about 0.035. Allow 4 standard errors.
    assert!((mean - 100.0).abs() < 0.2, "mean {mean}");
    assert!((sd - 5.0).abs() < 0.15, "sd {sd}");
    // About 95.4 % within 2 SD and 99.7 % within 3 SD.
    let within2 = draws.iter().filter(|v| (*v - 100.0).abs() < 10.0).count() as f64 / 1e4;
    let within3 = draws.iter().filter(|v| (*v - 100.0).abs() < 15.0).count() as f64 / 1e4;
    println!("within 2 SD {within2:.4}, within 3 SD {within3:.4}");
    assert!((within2 - 0.9545).abs() < 0.01, "{within2}");
    assert!((within3 - 0.9973).abs() < 0.004, "{within3}");
}

#[test]
fn same_seed_same_values_other_seed_other_values() {
    let take = |seed| {
        let mut g = QcGenerator::seeded(seed);
        (0..5)
            .map(|_| g.value(10.0, 1.0, Deviation::Random))
            .collect::<Vec<_>>()
    };
    assert_eq!(take(7), take(7));
    assert_ne!(take(7), take(8));
}

#[test]
fn sd_by_category_and_explicit_sd() {
    assert_eq!(sd_for(100.0, None, Some(Category::Hematology)), 5.0);
    assert_eq!(sd_for(100.0, None, Some(Category::Chemistry)), 5.0);
    assert_eq!(sd_for(100.0, None, Some(Category::Molecular)), 10.0);
    assert_eq!(sd_for(100.0, None, Some(Category::Immunology)), 10.0);
    assert_eq!(sd_for(100.0, None, Some(Category::Coagulation)), 8.0);
    assert_eq!(sd_for(100.0, None, None), 5.0);
    assert_eq!(sd_for(-100.0, None, None), 5.0);
    assert_eq!(sd_for(32.0, Some(0.5), Some(Category::Molecular)), 0.5);
    assert_eq!(sd_for(32.0, Some(0.0), None), 1.6);
}

#[test]
fn reference_deviation_values() {
    // The OpenELIS mock's verified examples (notes §7).
    let g = &mut QcGenerator::seeded(0);
    let hiv = sd_for(1250.0, None, Some(Category::Molecular));
    assert_eq!(g.value(1250.0, hiv, Deviation::Shift(3.5)), 1687.5);
    assert_eq!(g.value(1250.0, hiv, Deviation::Shift(-2.5)), 937.5);
    let wbc = sd_for(6.2, None, Some(Category::Hematology));
    assert_eq!(round_to(g.value(6.2, wbc, Deviation::Shift(3.5)), 2), 7.29);
    assert_eq!(g.value(100.0, 5.0, Deviation::Shift(3.5)), 117.5);
    assert_eq!(g.value(32.0, 0.5, Deviation::Shift(3.0)), 33.5);
}

/// An SD that is not a finite number above 0 yields the target for a shift as for a random
/// draw: a negative SD mirrored the shift (100 − 5 × 2 = 90) and NaN made the value NaN.
#[test]
fn an_unusable_sd_yields_the_target_whatever_the_deviation() {
    let g = &mut QcGenerator::seeded(0);
    for sd in [-5.0, 0.0, f64::NAN, f64::INFINITY] {
        for deviation in [Deviation::Random, Deviation::Shift(2.0)] {
            assert_eq!(g.value(100.0, sd, deviation), 100.0, "{sd} {deviation:?}");
        }
    }
}

fn start() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 3, 1)
        .unwrap()
        .and_hms_opt(7, 30, 0)
        .unwrap()
}

#[test]
fn thirty_days_two_levels_with_a_shift_is_caught() {
    let levels = vec![
        ControlLevel::new("LOW", 50.0, 2.0),
        ControlLevel::new("HIGH", 250.0, 10.0),
    ];
    let spec = SeriesSpec::daily(30, levels, start()).with(Disturbance::shift(20, 3.0));
    let runs = QcGenerator::seeded(99).series(&spec).unwrap();
    assert_eq!(runs.len(), 30);
    assert_eq!(runs[29].timestamp, start() + chrono::Duration::days(29));
    let low: Vec<f64> = runs.iter().map(|r| r.values[0]).collect();
    let (before, _) = mean_sd(&low[..20]);
    let (after, _) = mean_sd(&low[20..]);
    assert!(
        (after - before - 6.0).abs() < 2.5,
        "before {before} after {after}"
    );
    let mut e = Evaluator::new(50.0, 2.0, RuleSet::openelis()).unwrap();
    let statuses: Vec<Status> = low.iter().map(|v| e.push(*v).unwrap().status).collect();
    assert!(statuses[20..].contains(&Status::Rejected), "{statuses:?}");
}

#[test]
fn exact_patterns_without_scatter() {
    let mut spec = SeriesSpec::daily(10, vec![ControlLevel::new("N", 100.0, 10.0)], start())
        .with(Disturbance::trend(5, 0.5))
        .with(Disturbance::shift(8, -1.0));
    spec.scatter = Scatter::None;
    let values: Vec<f64> = QcGenerator::seeded(1)
        .series(&spec)
        .unwrap()
        .iter()
        .map(|r| r.values[0])
        .collect();
    assert_eq!(
        values,
        vec![
            100.0, 100.0, 100.0, 100.0, 100.0, 105.0, 110.0, 115.0, 110.0, 115.0
        ]
    );
}

#[test]
fn imprecision_multiplies_the_sd() {
    let spec = SeriesSpec::daily(4000, vec![ControlLevel::new("N", 100.0, 5.0)], start())
        .with(Disturbance::imprecision(2000, 3.0));
    let values: Vec<f64> = QcGenerator::seeded(5)
        .series(&spec)
        .unwrap()
        .iter()
        .map(|r| r.values[0])
        .collect();
    let (_, sd_before) = mean_sd(&values[..2000]);
    let (_, sd_after) = mean_sd(&values[2000..]);
    assert!((sd_before - 5.0).abs() < 0.4, "{sd_before}");
    assert!((sd_after - 15.0).abs() < 1.2, "{sd_after}");
}

#[test]
fn outliers_appear_with_the_given_probability_on_the_chosen_level() {
    let levels = vec![
        ControlLevel::new("A", 0.0, 1.0),
        ControlLevel::new("B", 0.0, 1.0),
    ];
    let mut spec = SeriesSpec::daily(5000, levels, start())
        .with(Disturbance::outliers(0, 0.1, 6.0).on_level(1));
    spec.scatter = Scatter::None;
    let runs = QcGenerator::seeded(3).series(&spec).unwrap();
    assert!(runs.iter().all(|r| r.values[0] == 0.0));
    let outliers = runs.iter().filter(|r| r.values[1].abs() == 6.0).count() as f64 / 5000.0;
    assert!((outliers - 0.1).abs() < 0.015, "{outliers}");
    let up = runs.iter().filter(|r| r.values[1] == 6.0).count() as f64;
    let down = runs.iter().filter(|r| r.values[1] == -6.0).count() as f64;
    assert!((up / (up + down) - 0.5).abs() < 0.08);
}

/// With one seed, a series with an outlier disturbance is the undisturbed series with some
/// values moved by ±k SD, as with the other disturbances. The outlier draws came from the
/// scatter's stream, so even a probability of 0 changed every later value.
#[test]
fn outliers_leave_the_other_values_of_the_seeded_series_unchanged() {
    let spec = || SeriesSpec::daily(400, vec![ControlLevel::new("N", 100.0, 5.0)], start());
    let values = |spec: &SeriesSpec| -> Vec<f64> {
        QcGenerator::seeded(7)
            .series(spec)
            .unwrap()
            .iter()
            .map(|r| r.values[0])
            .collect()
    };
    let baseline = values(&spec());
    assert_eq!(
        values(&spec().with(Disturbance::outliers(3, 0.0, 4.0))),
        baseline
    );
    let disturbed = values(&spec().with(Disturbance::outliers(3, 0.2, 4.0)));
    let mut moved = 0;
    for (run, (d, b)) in disturbed.iter().zip(&baseline).enumerate() {
        if d != b {
            assert!(run >= 3, "run {run} is before the disturbance");
            assert!(((d - b).abs() - 20.0).abs() < 1e-9, "run {run}: {d} vs {b}");
            moved += 1;
        }
    }
    assert!(
        (40..=120).contains(&moved),
        "{moved} of 397 moved at p = 0.2"
    );
}

#[test]
fn invalid_specs_are_errors() {
    let level = || vec![ControlLevel::new("N", 100.0, 5.0)];
    let bad = [
        SeriesSpec::daily(3, vec![ControlLevel::new("N", 100.0, 0.0)], start()),
        SeriesSpec::daily(3, vec![ControlLevel::new("N", f64::INFINITY, 1.0)], start()),
        SeriesSpec::daily(3, level(), start()).with(Disturbance::imprecision(0, 0.0)),
        SeriesSpec::daily(3, level(), start()).with(Disturbance::outliers(0, 1.5, 3.0)),
        SeriesSpec::daily(3, level(), start()).with(Disturbance::shift(0, f64::NAN)),
        SeriesSpec::daily(3, level(), start()).with(Disturbance::shift(0, 1.0).on_level(1)),
    ];
    for spec in bad {
        let err = QcGenerator::seeded(1).series(&spec).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    // A level without a name is named by its position ("for level : " named nothing).
    let unnamed = vec![
        ControlLevel::new("N", 100.0, 5.0),
        ControlLevel::new("", 100.0, -1.0),
    ];
    let err = QcGenerator::seeded(1)
        .series(&SeriesSpec::daily(3, unnamed, start()))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid standard deviation -1 for level 1 (counting from 0):"),
        "{err}"
    );
    // A series too large to hold is refused before anything is allocated (it aborted the
    // process: `memory allocation of 103079215056 bytes failed`).
    let mut huge = SeriesSpec::daily(i32::MAX as usize, level(), start());
    huge.interval = chrono::Duration::seconds(1);
    let err = QcGenerator::seeded(1).series(&huge).unwrap_err();
    assert!(
        err.to_string().contains(
            "2147483647 runs of 1 level(s) are 2147483647 values, more than the 10000000"
        ),
        "{err}"
    );
    // Runs times levels: half the limit in runs, at two levels and one more run, is over it.
    let mut wide = SeriesSpec::daily(MAX_SERIES_VALUES / 2 + 1, level(), start());
    wide.levels.push(ControlLevel::new("H", 200.0, 10.0));
    wide.interval = chrono::Duration::seconds(1);
    let err = QcGenerator::seeded(1).series(&wide).unwrap_err();
    assert!(err.to_string().contains("of 2 level(s)"), "{err}");
}

#[test]
fn labels() {
    let c = ControlId::new("HIV-VL", "LOT-HIVVL-N", "N");
    assert_eq!(c.astm_q3(), "HIV-VL^LOT-HIVVL-N^N");
    assert_eq!(c.hl7_specimen_id(), "QC-LOT-HIVVL-N-N");
    let p = SampleNamePattern::default();
    assert_eq!(p.render(&c, "STANDARD"), "QC-LOT-HIVVL-N-N");
    let p = SampleNamePattern::parse("{field_code}_{task}_{level}").unwrap();
    assert_eq!(p.render(&c, "STANDARD"), "HIV-VL_STANDARD_N");
    // Substituted text is not scanned again; delimiters in a lot cannot add Q.3 components.
    let odd = ControlId::new("GLU", "LOT{level}", "N");
    assert_eq!(
        SampleNamePattern::default().render(&odd, "STANDARD"),
        "QC-LOT{level}-N"
    );
    assert_eq!(
        ControlId::new("GLU", "LOT^2026|&\\", "NORMAL").astm_q3(),
        "GLU^LOT&S&2026&F&&E&&R&^NORMAL"
    );
    for bad in ["{lot", "lot}", "{}", "{LOT}", "QC-{sample}"] {
        let err = SampleNamePattern::parse(bad).unwrap_err().to_string();
        assert!(err.contains(bad), "{err}");
    }
}

proptest! {
    #[test]
    fn a_shift_of_k_sd_always_yields_z_k(
        mean in -1e6f64..1e6,
        sd in 1e-3f64..1e4,
        k in -6.0f64..6.0,
        seed in any::<u64>(),
    ) {
        let value = QcGenerator::seeded(seed).value(mean, sd, Deviation::Shift(k));
        let mut unrounded = RuleSet::empty();
        unrounded.z_decimals = None;
        let mut raw = Evaluator::new(mean, sd, unrounded).unwrap();
        let z = raw.push(value).unwrap().z;
        prop_assert!((z - k).abs() <= 1e-9 * (1.0 + mean.abs() / sd), "z {z} k {k}");
        let mut oe = Evaluator::new(mean, sd, RuleSet::openelis()).unwrap();
        let rounded = oe.push(value).unwrap().z;
        prop_assert!((rounded - round_to(k, 4)).abs() <= 1e-4 + 1e-9 * mean.abs() / sd);
    }

    #[test]
    fn evaluator_never_panics(values in proptest::collection::vec(any::<f64>(), 0..40)) {
        let mut e = Evaluator::new(0.0, 1.0, RuleSet::extended()).unwrap();
        for v in values {
            prop_assert_eq!(e.push(v).is_ok(), v.is_finite());
        }
    }
}

#[test]
fn rounding_is_decimal_half_up_on_the_shortest_representation() {
    for (value, decimals, expected) in [
        (7.285, 2, 7.29),
        (1.005, 2, 1.01),
        (-2.5, 0, -3.0),
        (9.995, 2, 10.0),
        (0.00005, 4, 0.0001),
        (-0.00004, 4, -0.0),
        (123.0, 2, 123.0),
        // No second rounding of an intermediate product: OpenELIS's HALF_UP at scale 4.
        (1.99994999999, 4, 1.9999),
        // No overflow for large values (was infinity).
        (1e306, 4, 1e306),
        (f64::MAX, 2, f64::MAX),
        (5e-324, 2, 0.0),
    ] {
        assert_eq!(round_to(value, decimals), expected, "{value} to {decimals}");
    }
    assert!(round_to(f64::NAN, 2).is_nan());
}

#[test]
fn a_series_beyond_the_calendar_is_an_error() {
    let level = vec![ControlLevel::new("N", 100.0, 5.0)];
    let mut spec = SeriesSpec::daily(3, level, start());
    spec.interval = chrono::Duration::days(200_000 * 365);
    let err = QcGenerator::seeded(1).series(&spec).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid series: run 2 would be"),
        "{err}"
    );
    spec.runs = 2;
    let runs = QcGenerator::seeded(1).series(&spec).unwrap();
    assert!(runs[1].timestamp > runs[0].timestamp);
}

/// Disturbances each finite may overflow together: the series is refused, naming the run and
/// level, rather than holding infinities (it held `[inf, inf, NaN, inf]`).
#[test]
fn a_series_whose_values_overflow_is_an_error() {
    let level = vec![ControlLevel::new("HIGH", 1e308, 1e308)];
    let mut spec = SeriesSpec::daily(3, level, start()).with(Disturbance::shift(1, 1.0));
    spec.scatter = Scatter::None;
    let err = QcGenerator::seeded(1).series(&spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid series: run 1, level 0 (HIGH): the disturbances give inf, not a finite number"
    );
    let level = vec![ControlLevel::new("N", 100.0, 5.0)];
    let spec = SeriesSpec::daily(4, level, start())
        .with(Disturbance::shift(0, 1e308))
        .with(Disturbance::shift(0, 1e308));
    assert!(QcGenerator::seeded(1).series(&spec).is_err());
}

proptest! {
    #[test]
    fn rounding_moves_a_value_by_at_most_half_a_unit(
        value in -1e12f64..1e12,
        decimals in 0u32..8,
    ) {
        let rounded = round_to(value, decimals);
        let unit = 10f64.powi(-(decimals as i32));
        prop_assert!((rounded - value).abs() <= unit / 2.0 + value.abs() * 1e-15, "{value} -> {rounded}");
        prop_assert_eq!(round_to(rounded, decimals), rounded);
    }
}

#[test]
fn seeded_values_are_pinned() {
    // The docs promise the same values for a seed on every platform and release: any change of
    // RNG or normal-sampling algorithm (a rand or rand_distr upgrade) must show up here.
    let mut g = QcGenerator::seeded(42);
    let values: Vec<f64> = (0..3)
        .map(|_| g.value(100.0, 5.0, Deviation::Random))
        .collect();
    assert_eq!(
        values,
        [104.17198773421897, 97.42518535926352, 107.03863786559874]
    );
}
