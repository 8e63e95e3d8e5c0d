//! Rule-by-rule Westgard tests on hand-made sequences (mean 100, SD 10, so z = (v − 100) / 10).

use qc_westgard_gen::{
    Category, Evaluator, MultiLevelEvaluator, QcError, RangeScope, Rule, RuleSet, Severity, Status,
    ZeroSide,
};

fn run(rules: RuleSet, values: &[f64]) -> Vec<(Vec<&'static str>, Status)> {
    let mut e = Evaluator::new(100.0, 10.0, rules).unwrap();
    values
        .iter()
        .map(|v| {
            let r = e.push(*v).unwrap();
            (r.violation_names(), r.status)
        })
        .collect()
}

fn last(rules: RuleSet, values: &[f64]) -> (Vec<&'static str>, Status) {
    run(rules, values).pop().unwrap()
}

fn oe() -> RuleSet {
    RuleSet::openelis()
}

#[test]
fn in_control_values_are_accepted() {
    for (violations, status) in run(oe(), &[101.0, 97.0, 104.0, 99.0, 102.0, 95.0]) {
        assert!(violations.is_empty());
        assert_eq!(status, Status::Accepted);
    }
}

#[test]
fn one_2s_warns_at_exactly_2_sd_and_not_below() {
    assert_eq!(last(oe(), &[120.0]), (vec!["1-2s"], Status::Warning));
    assert_eq!(last(oe(), &[80.0]), (vec!["1-2s"], Status::Warning));
    assert_eq!(last(oe(), &[119.99]), (vec![], Status::Accepted));
    assert_eq!(last(oe(), &[111.0, 122.0]).1, Status::Warning);
}

#[test]
fn one_3s_rejects_at_exactly_3_sd() {
    assert_eq!(
        last(oe(), &[130.0]),
        (vec!["1-2s", "1-3s"], Status::Rejected)
    );
    assert_eq!(
        last(oe(), &[70.0]),
        (vec!["1-2s", "1-3s"], Status::Rejected)
    );
    assert_eq!(last(oe(), &[129.9]), (vec!["1-2s"], Status::Warning));
}

#[test]
fn two_2s_needs_two_consecutive_on_the_same_side() {
    assert_eq!(
        last(oe(), &[121.0, 122.0]),
        (vec!["1-2s", "2-2s"], Status::Rejected)
    );
    assert_eq!(
        last(oe(), &[79.0, 78.0]),
        (vec!["1-2s", "2-2s"], Status::Rejected)
    );
    // Opposite sides: no 2-2s (but R-4s, 4.3 SD apart).
    assert_eq!(last(oe(), &[121.0, 78.0]).0, vec!["1-2s", "R-4s"]);
    // Not consecutive.
    assert_eq!(last(oe(), &[121.0, 100.0, 122.0]).0, vec!["1-2s"]);
}

#[test]
fn r_4s_on_a_4_sd_range_between_consecutive_values() {
    assert_eq!(last(oe(), &[119.0, 79.0]).0, vec!["1-2s", "R-4s"]);
    assert_eq!(last(oe(), &[119.0, 79.0]).1, Status::Rejected);
    assert_eq!(last(oe(), &[115.0, 75.0]).0, vec!["1-2s", "R-4s"]);
    assert_eq!(last(oe(), &[115.0, 76.0]).0, vec!["1-2s"]);
}

#[test]
fn three_1s_warns_and_four_1s_rejects() {
    assert_eq!(
        last(oe(), &[111.0, 112.0, 113.0]),
        (vec!["3-1s"], Status::Warning)
    );
    assert_eq!(
        last(oe(), &[89.0, 88.0, 87.0]),
        (vec!["3-1s"], Status::Warning)
    );
    assert_eq!(
        last(oe(), &[111.0, 112.0, 113.0, 111.0]),
        (vec!["3-1s", "4-1s"], Status::Rejected)
    );
    // Exactly 1 SD counts; a value inside breaks the run.
    assert_eq!(last(oe(), &[110.0, 110.0, 110.0]).0, vec!["3-1s"]);
    assert_eq!(last(oe(), &[111.0, 109.0, 113.0]).0, Vec::<&str>::new());
    // Mixed sides do not count.
    assert_eq!(last(oe(), &[111.0, 89.0, 113.0]).0, Vec::<&str>::new());
}

#[test]
fn four_1s_is_a_warning_in_the_seed_configuration() {
    let rules = RuleSet::openelis_seed_config();
    assert_eq!(rules.severity(Rule::FourOneS), Some(Severity::Warning));
    assert_eq!(
        RuleSet::openelis().severity(Rule::FourOneS),
        Some(Severity::Rejection)
    );
    assert_eq!(
        last(rules, &[111.0, 112.0, 113.0, 111.0]),
        (vec!["3-1s", "4-1s"], Status::Warning)
    );
}

#[test]
fn seven_t_on_raw_values_strictly_rising_or_falling() {
    let rising = [95.0, 96.0, 97.0, 98.0, 99.0, 100.5, 101.0];
    assert_eq!(last(oe(), &rising), (vec!["7T"], Status::Warning));
    let falling: Vec<f64> = rising.iter().rev().copied().collect();
    assert_eq!(last(oe(), &falling).0, vec!["7T"]);
    // A repeated value breaks "strictly".
    let flat = [95.0, 96.0, 97.0, 97.0, 99.0, 100.5, 101.0];
    assert_eq!(last(oe(), &flat).0, Vec::<&str>::new());
    // Six rising values are not enough.
    assert_eq!(last(oe(), &rising[1..]).0, Vec::<&str>::new());
}

#[test]
fn ten_x_on_ten_consecutive_on_one_side() {
    let above = [100.5; 10];
    assert_eq!(last(oe(), &above), (vec!["10x"], Status::Rejected));
    assert_eq!(last(oe(), &above[..9]).0, Vec::<&str>::new());
    let below = [99.5; 10];
    assert_eq!(last(oe(), &below).0, vec!["10x"]);
}

#[test]
fn ten_x_counts_the_mean_as_below_like_openelis_unless_asked_otherwise() {
    let mut values = vec![99.0; 9];
    values.insert(4, 100.0); // z = 0 in the middle
    assert_eq!(last(oe(), &values).0, vec!["10x"]);
    let mut strict = oe();
    strict.zero_side = ZeroSide::Neither;
    assert_eq!(last(strict, &values).0, Vec::<&str>::new());
}

#[test]
fn history_is_limited_to_15_prior_results_in_openelis_mode() {
    // 16 strictly rising values: the window (15 history + current) is enough for 7T every time
    // from the 7th value, so the limit must not drop needed points.
    let values: Vec<f64> = (0..20).map(|i| 90.0 + f64::from(i) * 0.5).collect();
    let results = run(oe(), &values);
    assert!(results[..6].iter().all(|(v, _)| !v.contains(&"7T")));
    assert!(results[6..].iter().all(|(v, _)| v.contains(&"7T")));
}

#[test]
fn across_level_rules_as_options_on_one_series() {
    let mut rules = RuleSet::empty();
    rules.set(Rule::TwoOfThreeTwoS, Severity::Rejection);
    rules.set(Rule::SixX, Severity::Warning);
    rules.set(Rule::EightX, Severity::Warning);
    rules.set(Rule::NineX, Severity::Warning);
    rules.set(Rule::TwelveX, Severity::Rejection);
    assert_eq!(
        last(rules.clone(), &[121.0, 100.0, 122.0]),
        (vec!["2of3-2s"], Status::Rejected)
    );
    assert_eq!(
        last(rules.clone(), &[121.0, 100.0, 78.0]).0,
        Vec::<&str>::new()
    );
    assert_eq!(last(rules.clone(), &[101.0; 6]).0, vec!["6x"]);
    assert_eq!(last(rules.clone(), &[101.0; 8]).0, vec!["6x", "8x"]);
    assert_eq!(last(rules.clone(), &[101.0; 9]).0, vec!["6x", "8x", "9x"]);
    assert_eq!(
        last(rules.clone(), &[101.0; 12]),
        (vec!["6x", "8x", "9x", "12x"], Status::Rejected)
    );
    assert_eq!(last(rules, &[101.0; 5]).0, Vec::<&str>::new());
}

/// OpenELIS compares each result with the lot's previous one, so a result back in control
/// after an outlier is rejected too; Westgard's `R-4s` compares only the controls of one run
/// (`RangeScope::WithinRun`).
#[test]
fn r4s_across_runs_as_openelis_or_within_the_run_as_westgard() {
    // 141 (+4.1 SD) then 101 (+0.1 SD), both above the mean.
    assert_eq!(
        last(oe(), &[141.0, 101.0]),
        (vec!["R-4s"], Status::Rejected)
    );
    let mut westgard = RuleSet::extended();
    westgard.r4s_scope = RangeScope::WithinRun;
    assert_eq!(
        last(westgard.clone(), &[141.0, 101.0]),
        (vec![], Status::Accepted)
    );
    assert_eq!(
        last(westgard.clone(), &[125.0, 75.0]),
        (vec!["1-2s"], Status::Warning)
    );
    // Two levels (100 ± 10, 200 ± 20): +2.5 SD then -2.5 SD on level 0 in consecutive runs is
    // no range within a run; +2.5 SD and -2.5 SD in one run is.
    let mut e = MultiLevelEvaluator::new(&[(100.0, 10.0), (200.0, 20.0)], westgard).unwrap();
    e.push_run(&[125.0, 200.0]).unwrap();
    let next = e.push_run(&[75.0, 200.0]).unwrap();
    assert!(!next[0].violations.contains(&Rule::RFourS), "{next:?}");
    let run = e.push_run(&[125.0, 150.0]).unwrap();
    assert!(
        run.iter()
            .all(|level| level.violations.contains(&Rule::RFourS)),
        "{run:?}"
    );
    assert!(run.iter().all(|level| level.status == Status::Rejected));
    // OpenELIS's scope in the same multi-level evaluator: the across-run range fires.
    let mut e =
        MultiLevelEvaluator::new(&[(100.0, 10.0), (200.0, 20.0)], RuleSet::extended()).unwrap();
    e.push_run(&[125.0, 200.0]).unwrap();
    let next = e.push_run(&[75.0, 200.0]).unwrap();
    assert!(next[0].violations.contains(&Rule::RFourS), "{next:?}");
}

#[test]
fn multi_level_pools_levels_for_across_level_rules() {
    // Two levels (100 ± 10 and 200 ± 20); each level alone never has 6 in a row above the mean,
    // pooled they have 6 after three runs.
    let mut e =
        MultiLevelEvaluator::new(&[(100.0, 10.0), (200.0, 20.0)], RuleSet::extended()).unwrap();
    let r1 = e.push_run(&[101.0, 202.0]).unwrap();
    let r2 = e.push_run(&[101.0, 202.0]).unwrap();
    assert!(r1.iter().chain(&r2).all(|x| x.violations.is_empty()));
    let r3 = e.push_run(&[101.0, 202.0]).unwrap();
    assert_eq!(r3[0].violation_names(), Vec::<&str>::new());
    assert_eq!(r3[1].violation_names(), vec!["6x"]);
    assert_eq!(r3[1].status, Status::Warning);
    // 2of3-2s across levels: the low level at +2.1 SD and the high level at +2.2 SD in one run.
    let r4 = e.push_run(&[121.0, 244.0]).unwrap();
    assert!(r4[1].violations.contains(&Rule::TwoOfThreeTwoS));
    assert_eq!(r4[1].status, Status::Rejected);
    assert!(e.push_run(&[1.0]).is_err());
}

/// No rules, and z the unrounded binary quotient.
fn unrounded() -> RuleSet {
    let mut rules = RuleSet::empty();
    rules.z_decimals = None;
    rules
}

/// A rule set built up from `RuleSet::empty()` judges a value exactly k SD out at k SD. It
/// kept z unrounded, and the binary quotient falls a hair short: 7.13 on 6.2 ± 0.31 (a
/// `Shift(3)`) was 2.999999999999999 SD, a warning instead of a 1-3s rejection.
#[test]
fn rules_built_from_empty_judge_a_value_on_a_limit_at_the_limit() {
    use qc_westgard_gen::{Deviation, QcGenerator};
    let mut rules = RuleSet::empty();
    rules
        .set(Rule::OneTwoS, Severity::Warning)
        .set(Rule::OneThreeS, Severity::Rejection)
        .set(Rule::FourOneS, Severity::Rejection);
    let shifted = |target: f64, sd: f64, k: f64| {
        QcGenerator::seeded(1).value(target, sd, Deviation::Shift(k))
    };
    let mut e = Evaluator::new(6.2, 0.31, rules.clone()).unwrap();
    let judged = e.push(shifted(6.2, 0.31, 3.0)).unwrap();
    assert_eq!(judged.z, 3.0);
    assert_eq!(judged.status, Status::Rejected, "{judged:?}");
    let mut e = Evaluator::new(1.05, 0.084, rules.clone()).unwrap();
    assert_eq!(
        e.push(shifted(1.05, 0.084, 2.0)).unwrap().violation_names(),
        vec!["1-2s"]
    );
    let mut e = Evaluator::new(1.1, 0.1, rules).unwrap();
    let judged = e.evaluate_all(&[1.2; 4]).unwrap();
    assert_eq!(judged[3].violation_names(), vec!["4-1s"]);
}

#[test]
fn z_is_rounded_to_four_decimals_in_openelis_mode() {
    let mut e = Evaluator::new(100.0, 3.0, RuleSet::openelis()).unwrap();
    assert_eq!(e.push(101.0).unwrap().z, 0.3333);
    let mut raw = Evaluator::new(100.0, 3.0, unrounded()).unwrap();
    assert!((raw.push(101.0).unwrap().z - 1.0 / 3.0).abs() < 1e-15);
}

#[test]
fn invalid_mean_or_sd_is_an_error_not_a_panic() {
    assert!(Evaluator::new(100.0, 0.0, oe()).is_err());
    assert!(Evaluator::new(100.0, -1.0, oe()).is_err());
    assert!(Evaluator::new(f64::NAN, 1.0, oe()).is_err());
    let message = Evaluator::new(100.0, 0.0, oe()).unwrap_err().to_string();
    assert!(message.contains("standard deviation"), "{message}");
}

#[test]
fn rule_names_parse_back() {
    for rule in Rule::ALL {
        assert_eq!(rule.name().parse::<Rule>().unwrap(), rule);
        if let Some(code) = rule.openelis_code() {
            assert_eq!(code.parse::<Rule>().unwrap(), rule);
        }
    }
    assert_eq!("1_2S".parse::<Rule>().unwrap(), Rule::OneTwoS);
    // The refusal lists what is known.
    let err = "1-4s".parse::<Rule>().unwrap_err();
    assert_eq!(
        err,
        QcError::UnknownRule {
            name: "1-4s".into()
        }
    );
    let err = err.to_string();
    assert!(
        err.starts_with("unknown westgard rule \"1-4s\" (known: 1-2s, 1-3s, 2-2s"),
        "{err}"
    );
    assert!(err.contains(", 12x, or OpenELIS's codes)"), "{err}");
}

/// The names a caller reads from its own configuration convert with `?` into the crate's
/// error, which names what is known.
#[test]
fn unknown_names_are_qc_errors() {
    fn parse(rule: &str, category: &str) -> Result<(Rule, Category), QcError> {
        Ok((rule.parse()?, category.parse()?))
    }
    assert_eq!(
        parse("2of3-2s", "CHEMISTRY"),
        Ok((Rule::TwoOfThreeTwoS, Category::Chemistry))
    );
    let err = parse("1-2s", "urology").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown analyzer category \"urology\" (known: HEMATOLOGY, CHEMISTRY, IMMUNOLOGY, \
         MICROBIOLOGY, MOLECULAR, COAGULATION; any case)"
    );
    let source: &dyn std::error::Error = &err;
    assert!(source.source().is_none());
}

#[test]
fn issue_example_line() {
    let mut e = Evaluator::new(100.0, 5.0, oe()).unwrap();
    let json = serde_json::to_string(&e.push(111.0).unwrap()).unwrap();
    assert_eq!(
        json,
        r#"{"value":111.0,"z":2.2,"violations":["1-2s"],"status":"warning"}"#
    );
}

#[test]
fn non_finite_results_are_refused_and_leave_the_history_alone() {
    let mut e = Evaluator::new(100.0, 10.0, RuleSet::openelis()).unwrap();
    for _ in 0..9 {
        assert!(e.push(99.0).unwrap().violations.is_empty());
    }
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = e.push(bad).unwrap_err();
        assert!(
            matches!(err, QcError::InvalidValue { value } if value.to_bits() == bad.to_bits()),
            "{err}"
        );
    }
    // The tenth real value below the mean is what makes 10x, not a NaN before it.
    assert!(e.push(99.0).unwrap().violations.contains(&Rule::TenX));

    let mut levels =
        MultiLevelEvaluator::new(&[(100.0, 10.0), (200.0, 20.0)], RuleSet::openelis()).unwrap();
    let err = levels.push_run(&[121.0, f64::NAN]).unwrap_err();
    // Which level it was: the message did not say.
    assert_eq!(
        err.to_string(),
        "invalid result NaN for level 1 (counting from 0): must be a finite number"
    );
    // All or nothing: the first level's 121 was not recorded, so this is no 2-2s.
    let run = levels.push_run(&[121.0, 200.0]).unwrap();
    assert!(!run[0].violations.contains(&Rule::TwoTwoS), "{run:?}");
    assert!(e.evaluate_all(&[1.0, f64::NAN]).is_err());
}

#[test]
fn a_value_a_hair_below_the_mean_has_z_zero_not_minus_zero() {
    // z = -0.000002 rounds to zero; OpenELIS's BigDecimal has no negative zero, and the
    // example's JSON must not print `"z":-0.0`.
    let mut e = Evaluator::new(100.0, 5.0, oe()).unwrap();
    let json = serde_json::to_string(&e.push(99.99999).unwrap()).unwrap();
    assert_eq!(
        json,
        r#"{"value":99.99999,"z":0.0,"violations":[],"status":"accepted"}"#
    );
    let mut raw = Evaluator::new(0.0, 1.0, unrounded()).unwrap();
    assert!(raw.push(-0.0).unwrap().z.is_sign_positive());
}

#[test]
fn z_is_the_exact_decimal_quotient_rounded_half_up_like_bigdecimal() {
    // (119.9995 − 100) / 10 is exactly 1.99995, which BigDecimal's HALF_UP at scale 4 makes
    // 2.0000: a 1-2s in OpenELIS. The binary quotient 1.99994999… must not round it down.
    assert_eq!(last(oe(), &[119.9995]), (vec!["1-2s"], Status::Warning));
    assert_eq!(last(oe(), &[80.0005]), (vec!["1-2s"], Status::Warning));
    assert_eq!(
        last(oe(), &[129.9995]),
        (vec!["1-2s", "1-3s"], Status::Rejected)
    );
    assert_eq!(last(oe(), &[119.9994]), (vec![], Status::Accepted));
    let mut e = Evaluator::new(100.0, 1.0, oe()).unwrap();
    assert_eq!(e.push(101.23445).unwrap().z, 1.2345);
    assert_eq!(e.push(98.76555).unwrap().z, -1.2345);
    // Mean and SD with decimals of their own (SD = 5 % of 6.2 as the mock computes it).
    let mut e = Evaluator::new(6.2, 0.31, oe()).unwrap();
    assert_eq!(e.push(6.82).unwrap().z, 2.0);
    assert_eq!(e.push(5.27).unwrap().z, -3.0);
    // Other scales of the rule set round the same way.
    let mut two = oe();
    two.z_decimals = Some(2);
    let mut e = Evaluator::new(100.0, 10.0, two).unwrap();
    assert_eq!(e.push(119.95).unwrap().z, 2.0);
    // Magnitudes too far apart for exact integers still give a z (from binary arithmetic).
    let mut e = Evaluator::new(-1e300, 1e-300, oe()).unwrap();
    assert_eq!(e.push(1e300).unwrap().z, f64::INFINITY);
}

proptest::proptest! {
    #[test]
    fn z_matches_integer_decimal_arithmetic(
        c in -10_000_000i64..10_000_000,
        a in -1_000_000i64..1_000_000,
        b in 1i64..100_000,
    ) {
        // value c/100, mean a/100, SD b/1000: z × 10^4 = (c − a) × 10^5 / b, half away from zero.
        let num = i128::from(c - a) * 100_000;
        let den = i128::from(b);
        let (q, r) = (num / den, num % den);
        let q = if 2 * r.abs() >= den { q + num.signum() } else { q };
        let expected: f64 = format!("{q}e-4").parse().unwrap();
        let (value, mean, sd) = (c as f64 / 100.0, a as f64 / 100.0, b as f64 / 1000.0);
        let mut e = Evaluator::new(mean, sd, RuleSet::openelis()).unwrap();
        proptest::prop_assert_eq!(e.push(value).unwrap().z, expected);
    }
}

#[test]
fn r_4s_compares_the_decimal_range_not_a_binary_difference() {
    // z 4.0001 then 0.0001: exactly 4 SD apart, which OpenELIS's BigDecimal subtraction sees;
    // in binary 4.0001 − 0.0001 is 3.9999999999999996.
    assert_eq!(
        last(oe(), &[140.001, 100.001]),
        (vec!["R-4s"], Status::Rejected)
    );
    assert_eq!(
        last(oe(), &[59.999, 99.999]),
        (vec!["R-4s"], Status::Rejected)
    );
    assert_eq!(last(oe(), &[140.001, 100.002]).0, Vec::<&str>::new());
}

#[test]
fn multi_level_applies_2_2s_and_r_4s_within_a_run_across_levels() {
    // Westgard: 2-2s also fires when two control levels of the same run are beyond 2 SD on the
    // same side, and R-4s is defined within a run: one level beyond +2 SD, another beyond -2 SD.
    // The first run of a lot has no history, so only the within-run comparison can see it.
    let levels = [(100.0, 10.0), (200.0, 20.0)];
    for rules in [RuleSet::openelis(), RuleSet::extended()] {
        let rules_are_openelis = rules == RuleSet::openelis();
        let mut e = MultiLevelEvaluator::new(&levels, rules.clone()).unwrap();
        let run = e.push_run(&[121.0, 244.0]).unwrap();
        for level in &run {
            assert!(level.violations.contains(&Rule::TwoTwoS), "{run:?}");
            assert_eq!(level.status, Status::Rejected, "{run:?}");
        }

        let mut e = MultiLevelEvaluator::new(&levels, rules.clone()).unwrap();
        let run = e.push_run(&[125.0, 150.0]).unwrap();
        for level in &run {
            assert!(level.violations.contains(&Rule::RFourS), "{run:?}");
            assert!(!level.violations.contains(&Rule::TwoTwoS), "{run:?}");
            assert_eq!(level.status, Status::Rejected, "{run:?}");
        }

        // Exactly at +2 and -2 SD counts, as for 1-2s.
        let mut e = MultiLevelEvaluator::new(&levels, rules.clone()).unwrap();
        let run = e.push_run(&[120.0, 160.0]).unwrap();
        assert!(
            run.iter().all(|l| l.violations.contains(&Rule::RFourS)),
            "{run:?}"
        );

        // Below 2 SD on one level: neither rule, only the other level's 1-2s warning.
        let mut e = MultiLevelEvaluator::new(&levels, rules.clone()).unwrap();
        let run = e.push_run(&[119.0, 156.0]).unwrap();
        assert_eq!(run[0].violation_names(), Vec::<&str>::new());
        assert_eq!(run[1].violation_names(), vec!["1-2s"]);
        assert_eq!(run[1].status, Status::Warning);

        // Three levels: the two beyond +2 SD make the 2-2s; the in-control level is not part of it.
        let mut e =
            MultiLevelEvaluator::new(&[(100.0, 10.0), (200.0, 20.0), (50.0, 5.0)], rules).unwrap();
        let run = e.push_run(&[125.0, 245.0, 50.0]).unwrap();
        assert!(run[0].violations.contains(&Rule::TwoTwoS), "{run:?}");
        assert!(run[1].violations.contains(&Rule::TwoTwoS), "{run:?}");
        assert!(!run[2].violations.contains(&Rule::TwoTwoS), "{run:?}");
        if rules_are_openelis {
            assert_eq!(run[2].status, Status::Accepted);
        }
    }

    // Rules that are not enabled are not applied within the run either.
    let mut rules = RuleSet::openelis();
    rules.remove(Rule::TwoTwoS).remove(Rule::RFourS);
    let mut e = MultiLevelEvaluator::new(&levels, rules).unwrap();
    let run = e.push_run(&[125.0, 150.0]).unwrap();
    assert!(
        run.iter().all(|l| l.violation_names() == vec!["1-2s"]),
        "{run:?}"
    );
    let run = e.push_run(&[125.0, 250.0]).unwrap();
    assert!(run.iter().all(|l| l.status == Status::Warning), "{run:?}");
}

#[test]
fn multi_level_applies_4_1s_and_10x_across_levels() {
    // Westgard: 4-1s and 10x apply within one control material or across materials. With two
    // levels, two runs with both levels beyond +1 SD are four consecutive control values beyond
    // +1 SD (4-1s), and five runs with both levels above the mean are ten on one side (10x).
    let levels = [(100.0, 10.0), (200.0, 20.0)];
    let mut e = MultiLevelEvaluator::new(&levels, RuleSet::openelis()).unwrap();
    let first = e.push_run(&[115.0, 230.0]).unwrap();
    assert!(first.iter().all(|l| l.violations.is_empty()), "{first:?}");
    let second = e.push_run(&[112.0, 226.0]).unwrap();
    // The third value beyond +1 SD in a row is a 3-1s (a warning in OpenELIS's rule set).
    assert_eq!(second[0].violation_names(), vec!["3-1s"]);
    assert_eq!(second[0].status, Status::Warning);
    assert_eq!(second[1].violation_names(), vec!["3-1s", "4-1s"]);
    assert_eq!(second[1].status, Status::Rejected);

    // One level below +1 SD breaks it.
    let mut e = MultiLevelEvaluator::new(&levels, RuleSet::openelis()).unwrap();
    e.push_run(&[115.0, 230.0]).unwrap();
    let run = e.push_run(&[109.0, 226.0]).unwrap();
    assert!(run.iter().all(|l| l.violations.is_empty()), "{run:?}");

    let mut e = MultiLevelEvaluator::new(&levels, RuleSet::openelis()).unwrap();
    let mut runs = Vec::new();
    for _ in 0..5 {
        runs.push(e.push_run(&[102.0, 203.0]).unwrap());
    }
    assert!(
        runs[..4].iter().flatten().all(|l| l.violations.is_empty()),
        "{runs:?}"
    );
    assert_eq!(runs[4][0].violation_names(), Vec::<&str>::new());
    assert_eq!(runs[4][1].violation_names(), vec!["10x"]);
    assert_eq!(runs[4][1].status, Status::Rejected);

    // Disabled rules stay disabled across levels too.
    let mut rules = RuleSet::openelis();
    rules.remove(Rule::FourOneS).remove(Rule::TenX);
    let mut e = MultiLevelEvaluator::new(&levels, rules).unwrap();
    for _ in 0..5 {
        let run = e.push_run(&[115.0, 230.0]).unwrap();
        assert!(
            run.iter()
                .all(|l| !l.violations.contains(&Rule::FourOneS)
                    && !l.violations.contains(&Rule::TenX)),
            "{run:?}"
        );
    }
}

/// Westgard applies the rules on consecutive results within one control material as well as
/// across materials. The multi-level evaluator applied `2of3-2s` and the x-rules only to the
/// pooled levels and `3-1s` only per level, so a level drifting alone (or three levels of one
/// run beyond +1 SD) went unflagged.
#[test]
fn multi_level_applies_the_consecutive_rules_per_level_and_across_levels() {
    // One level 0.5 SD high every run, the other alternating around its mean: the pooled
    // sequence never has six in a row on one side, level 0 alone does.
    let levels = [(100.0, 10.0), (200.0, 10.0)];
    let mut e = MultiLevelEvaluator::new(&levels, RuleSet::extended()).unwrap();
    let mut first_flags = Vec::new();
    for run in 1..=9 {
        let other = if run % 2 == 0 { 205.0 } else { 195.0 };
        let judged = e.push_run(&[105.0, other]).unwrap();
        if !judged[0].violations.is_empty() && first_flags.is_empty() {
            first_flags = judged[0].violation_names();
            assert_eq!(run, 6, "{judged:?}");
        }
        assert!(judged[1].violations.is_empty(), "run {run}: {judged:?}");
        if run == 8 {
            assert!(judged[0].violations.contains(&Rule::EightX), "{judged:?}");
        }
        if run == 9 {
            assert!(judged[0].violations.contains(&Rule::NineX), "{judged:?}");
        }
    }
    assert_eq!(first_flags, vec!["6x"]);

    // 2of3-2s within one level: 121, 100, 121 on level 0 while level 1 sits on its mean.
    let mut e = MultiLevelEvaluator::new(&levels, RuleSet::extended()).unwrap();
    let mut last = Vec::new();
    for value in [121.0, 100.0, 121.0] {
        last = e.push_run(&[value, 200.0]).unwrap();
    }
    assert!(
        last[0].violations.contains(&Rule::TwoOfThreeTwoS),
        "{last:?}"
    );
    assert!(last[1].violations.is_empty(), "{last:?}");

    // 3-1s across three levels of one run, in OpenELIS's rule set as in the extended one.
    for rules in [RuleSet::openelis(), RuleSet::extended()] {
        let three = [(100.0, 10.0), (200.0, 10.0), (300.0, 10.0)];
        let mut e = MultiLevelEvaluator::new(&three, rules).unwrap();
        let run = e.push_run(&[115.0, 215.0, 315.0]).unwrap();
        assert!(run[2].violations.contains(&Rule::ThreeOneS), "{run:?}");
    }
}

#[test]
fn status_and_severity_display_as_serialized_and_status_orders_by_gravity() {
    for status in [Status::Accepted, Status::Warning, Status::Rejected] {
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(json, format!("\"{status}\""));
        assert_eq!(status.to_string(), status.as_str());
    }
    for severity in [Severity::Warning, Severity::Rejection] {
        let json = serde_json::to_string(&severity).unwrap();
        assert_eq!(json, format!("\"{severity}\""));
        assert_eq!(severity.to_string(), severity.as_str());
    }
    assert!(Status::Accepted < Status::Warning && Status::Warning < Status::Rejected);
}
