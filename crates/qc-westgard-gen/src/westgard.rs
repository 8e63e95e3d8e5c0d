//! Westgard rules, evaluated the way OpenELIS does (`WestgardRuleEvaluationServiceImpl` and the
//! `Rule*Evaluator` classes at OpenELIS-Global-2 `568f32400`).

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use crate::QcError;

/// A Westgard rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rule {
    /// One value beyond 2 SD (|z| ≥ 2).
    OneTwoS,
    /// One value beyond 3 SD (|z| ≥ 3).
    OneThreeS,
    /// Two consecutive values beyond 2 SD on the same side.
    TwoTwoS,
    /// A range of 4 SD or more: as OpenELIS has it, two consecutive results of a lot that
    /// differ by 4 SD ([`RangeScope::ConsecutiveResults`]); as Westgard has it, one control of
    /// a run beyond +2 SD and another beyond −2 SD ([`RangeScope::WithinRun`], judged by
    /// [`MultiLevelEvaluator`]).
    RFourS,
    /// Three consecutive values beyond 1 SD on the same side.
    ThreeOneS,
    /// Four consecutive values beyond 1 SD on the same side.
    FourOneS,
    /// Seven raw values strictly rising or strictly falling.
    SevenT,
    /// Ten consecutive values on the same side of the mean.
    TenX,
    /// Two of three consecutive values beyond 2 SD on the same side (across levels).
    TwoOfThreeTwoS,
    /// Six consecutive values on the same side of the mean (across levels).
    SixX,
    /// Eight consecutive values on the same side of the mean (across levels).
    EightX,
    /// Nine consecutive values on the same side of the mean (across levels).
    NineX,
    /// Twelve consecutive values on the same side of the mean (across levels).
    TwelveX,
}

impl Rule {
    /// Every rule, in the order violations are reported.
    pub const ALL: [Self; 13] = [
        Self::OneTwoS,
        Self::OneThreeS,
        Self::TwoTwoS,
        Self::RFourS,
        Self::ThreeOneS,
        Self::FourOneS,
        Self::SevenT,
        Self::TenX,
        Self::TwoOfThreeTwoS,
        Self::SixX,
        Self::EightX,
        Self::NineX,
        Self::TwelveX,
    ];

    /// The ASCII name used in JSON output and on the command line (`1-2s`, `R-4s`, `7T`, `10x`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::OneTwoS => "1-2s",
            Self::OneThreeS => "1-3s",
            Self::TwoTwoS => "2-2s",
            Self::RFourS => "R-4s",
            Self::ThreeOneS => "3-1s",
            Self::FourOneS => "4-1s",
            Self::SevenT => "7T",
            Self::TenX => "10x",
            Self::TwoOfThreeTwoS => "2of3-2s",
            Self::SixX => "6x",
            Self::EightX => "8x",
            Self::NineX => "9x",
            Self::TwelveX => "12x",
        }
    }

    /// The rule code as OpenELIS stores it in `westgard_rule_config.rule_code` (Unicode subscripts,
    /// e.g. `1₂ₛ`); `None` for the across-level rules OpenELIS does not have.
    pub fn openelis_code(self) -> Option<&'static str> {
        Some(match self {
            Self::OneTwoS => "1₂ₛ",
            Self::OneThreeS => "1₃ₛ",
            Self::TwoTwoS => "2₂ₛ",
            Self::RFourS => "R₄ₛ",
            Self::ThreeOneS => "3₁ₛ",
            Self::FourOneS => "4₁ₛ",
            Self::SevenT => "7ₜ",
            Self::TenX => "10ₓ",
            _ => return None,
        })
    }

    /// Number of values the rule looks at (the current one included).
    pub fn points(self) -> usize {
        match self {
            Self::OneTwoS | Self::OneThreeS => 1,
            Self::TwoTwoS | Self::RFourS => 2,
            Self::ThreeOneS | Self::TwoOfThreeTwoS => 3,
            Self::FourOneS => 4,
            Self::SixX => 6,
            Self::SevenT => 7,
            Self::EightX => 8,
            Self::NineX => 9,
            Self::TenX => 10,
            Self::TwelveX => 12,
        }
    }

    /// Whether the rule fires on a window of values ending with the current one, judged with the
    /// rule set's z = 0 handling and z rounding.
    fn violated(self, window: &[Point], zero_side: ZeroSide, z_decimals: Option<u32>) -> bool {
        let n = self.points();
        if window.len() < n {
            return false; // OpenELIS: "insufficient data", not evaluated.
        }
        let last = &window[window.len() - n..];
        let z = |i: usize| last[i].z;
        match self {
            Self::OneTwoS => z(0).abs() >= 2.0,
            Self::OneThreeS => z(0).abs() >= 3.0,
            Self::TwoTwoS => (z(0) >= 2.0 && z(1) >= 2.0) || (z(0) <= -2.0 && z(1) <= -2.0),
            Self::RFourS => {
                // Rounded z-scores are decimals, and OpenELIS subtracts them exactly; the binary
                // difference of 4.0001 and 0.0001 is 3.9999999999999996. Rounding the difference
                // to the same scale gives back the exact decimal range.
                let range = (z(1) - z(0)).abs();
                z_decimals.map_or(range, |d| crate::round_to(range, d)) >= 4.0
            }
            Self::ThreeOneS | Self::FourOneS => {
                last.iter().all(|p| p.z >= 1.0) || last.iter().all(|p| p.z <= -1.0)
            }
            Self::TwoOfThreeTwoS => {
                last.iter().filter(|p| p.z >= 2.0).count() >= 2
                    || last.iter().filter(|p| p.z <= -2.0).count() >= 2
            }
            Self::SevenT => {
                last.windows(2).all(|w| w[1].value > w[0].value)
                    || last.windows(2).all(|w| w[1].value < w[0].value)
            }
            Self::TenX | Self::SixX | Self::EightX | Self::NineX | Self::TwelveX => {
                let sides: Vec<Option<bool>> = last.iter().map(|p| zero_side.side(p.z)).collect();
                sides[0].is_some() && sides.iter().all(|s| *s == sides[0])
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Rule {
    type Err = QcError;

    /// Accepts the ASCII names (`1-2s`, case-insensitive, also `1_2s`, `12s`) and the OpenELIS codes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let squash = |t: &str| t.to_ascii_lowercase().replace(['-', '_', ' '], "");
        let wanted = squash(s);
        Self::ALL
            .into_iter()
            .find(|r| squash(r.name()) == wanted || r.openelis_code() == Some(s))
            .ok_or_else(|| QcError::UnknownRule { name: s.to_owned() })
    }
}

/// What a violated rule means for the run. Displayed as serialized: `warning`, `rejection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Look again; the run may be accepted.
    Warning,
    /// Reject the run.
    Rejection,
}

impl Severity {
    /// `warning` or `rejection`, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Rejection => "rejection",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The judgement on one value. Displayed as [`as_str`](Self::as_str) writes it.
///
/// Ordered from best to worst (`Accepted < Warning < Rejected`), so the status of a run of
/// several levels is the largest of theirs:
///
/// ```
/// use qc_westgard_gen::{MultiLevelEvaluator, RuleSet, Status};
/// let mut evaluator = MultiLevelEvaluator::new(&[(100.0, 5.0), (200.0, 8.0)], RuleSet::openelis())?;
/// let run = evaluator.push_run(&[101.0, 217.0])?; // the second level is 2.1 SD high
/// let status = run.iter().map(|e| e.status).max();
/// assert_eq!(status, Some(Status::Warning));
/// assert_eq!(status.unwrap().to_string(), "warning");
/// # Ok::<(), qc_westgard_gen::QcError>(())
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No rule fired.
    Accepted,
    /// Only warning rules fired. (OpenELIS itself has no WARNING status: it stores ACCEPTED plus
    /// violation rows; see the crate docs.)
    Warning,
    /// At least one rejection rule fired.
    Rejected,
}

impl Status {
    /// `accepted`, `warning` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Warning => "warning",
            Self::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a value exactly on the mean (z = 0) counts for the "same side of the mean" rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroSide {
    /// As OpenELIS's `Rule10_xEvaluator`: `z > 0` is above, anything else (z = 0 included) below.
    #[default]
    Negative,
    /// A value on the mean is on neither side and breaks the run.
    Neither,
}

impl ZeroSide {
    fn side(self, z: f64) -> Option<bool> {
        if z > 0.0 {
            Some(true)
        } else if z < 0.0 || self == Self::Negative {
            Some(false)
        } else {
            None
        }
    }
}

/// Rules with their severities, plus evaluation options.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    rules: Vec<(Rule, Severity)>,
    /// Prior results of the same control lot taken into account (OpenELIS: the newest 15);
    /// `None` sets no limit (an evaluator then keeps only as many as its longest rule needs,
    /// which judges the same).
    pub history_limit: Option<usize>,
    /// z = 0 handling for the "same side" rules.
    pub zero_side: ZeroSide,
    /// Round z to this many decimals (half away from zero) before judging; OpenELIS stores z as a
    /// `BigDecimal` of scale 4, HALF_UP. The quotient is then computed in decimal from the shortest
    /// representations of value, mean and SD, as `BigDecimal` does, so that a z of exactly 1.99995
    /// becomes 2.0. `None` keeps the full binary precision of `(value − mean) / sd`.
    pub z_decimals: Option<u32>,
    /// Which results `R-4s` compares (OpenELIS: consecutive results of a lot, across runs).
    pub r4s_scope: RangeScope,
}

/// Which results the range rule `R-4s` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RangeScope {
    /// Each result with the lot's previous one, whichever run it came from: fires when the two
    /// z-scores differ by 4 or more (OpenELIS's `Rule4RsEvaluator`). A result back in control
    /// after a `1-3s` outlier is then rejected as well.
    ConsecutiveResults,
    /// Only the controls of one run with each other, as Westgard defines the rule (it "should
    /// only be interpreted within-run"): one beyond +2 SD and another beyond −2 SD. Only
    /// [`MultiLevelEvaluator`] sees a run's other levels, so a single-level [`Evaluator`] then
    /// never fires `R-4s`.
    WithinRun,
}

impl RuleSet {
    /// OpenELIS-compatible: the eight rules with the severities hard-coded in its evaluator classes
    /// (`4-1s` is a REJECTION there), 15 results of history, z = 0 on the negative side, z rounded to
    /// 4 decimals.
    pub fn openelis() -> Self {
        Self {
            rules: vec![
                (Rule::OneTwoS, Severity::Warning),
                (Rule::OneThreeS, Severity::Rejection),
                (Rule::TwoTwoS, Severity::Rejection),
                (Rule::RFourS, Severity::Rejection),
                (Rule::ThreeOneS, Severity::Warning),
                (Rule::FourOneS, Severity::Rejection),
                (Rule::SevenT, Severity::Warning),
                (Rule::TenX, Severity::Rejection),
            ],
            history_limit: Some(15),
            zero_side: ZeroSide::Negative,
            z_decimals: Some(4),
            r4s_scope: RangeScope::ConsecutiveResults,
        }
    }

    /// As [`RuleSet::openelis`] but with the severities of the mock's seed SQL and README, which
    /// configure `4-1s` as a WARNING (OpenELIS ignores that column when it computes the status).
    pub fn openelis_seed_config() -> Self {
        let mut set = Self::openelis();
        set.set(Rule::FourOneS, Severity::Warning);
        set
    }

    /// [`RuleSet::openelis`] plus the across-level rules `2of3-2s` (rejection), `6x`, `8x`, `9x`
    /// and `12x` (warnings), and no history limit, for use with [`MultiLevelEvaluator`].
    pub fn extended() -> Self {
        let mut set = Self::openelis();
        set.history_limit = None;
        set.set(Rule::TwoOfThreeTwoS, Severity::Rejection);
        for rule in [Rule::SixX, Rule::EightX, Rule::NineX, Rule::TwelveX] {
            set.set(rule, Severity::Warning);
        }
        set
    }

    /// No rules; add them with [`RuleSet::set`]. z is rounded to 4 decimals as in
    /// [`RuleSet::openelis`], so a value exactly k SD from the mean is judged at k SD (the
    /// binary quotient of `7.13 − 6.2` by `0.31` is 2.999999999999999); set
    /// [`z_decimals`](Self::z_decimals) to `None` for the unrounded quotient.
    pub fn empty() -> Self {
        Self {
            rules: Vec::new(),
            history_limit: None,
            zero_side: ZeroSide::Negative,
            z_decimals: Some(4),
            r4s_scope: RangeScope::ConsecutiveResults,
        }
    }

    /// Enables `rule` with `severity` (replacing an earlier severity).
    pub fn set(&mut self, rule: Rule, severity: Severity) -> &mut Self {
        match self.rules.iter_mut().find(|(r, _)| *r == rule) {
            Some(entry) => entry.1 = severity,
            None => {
                self.rules.push((rule, severity));
                self.rules.sort_by_key(|(r, _)| *r);
            }
        }
        self
    }

    /// Disables `rule`.
    pub fn remove(&mut self, rule: Rule) -> &mut Self {
        self.rules.retain(|(r, _)| *r != rule);
        self
    }

    /// The enabled rules and severities.
    pub fn rules(&self) -> &[(Rule, Severity)] {
        &self.rules
    }

    /// The severity of `rule`, if enabled.
    pub fn severity(&self, rule: Rule) -> Option<Severity> {
        self.rules.iter().find(|(r, _)| *r == rule).map(|(_, s)| *s)
    }

    fn longest_window(&self) -> usize {
        self.rules
            .iter()
            .map(|(r, _)| r.points())
            .max()
            .unwrap_or(1)
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        Self::openelis()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    value: f64,
    z: f64,
}

/// The judgement on one value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// The value.
    pub value: f64,
    /// `(value − mean) / sd` (rounded as the rule set says).
    pub z: f64,
    /// Rules that fired, in [`Rule::ALL`] order.
    #[serde(serialize_with = "serialize_rules")]
    pub violations: Vec<Rule>,
    /// Rejected if a rejection rule fired, else warning if a warning rule fired, else accepted.
    pub status: Status,
}

fn serialize_rules<S: serde::Serializer>(rules: &[Rule], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(rules.iter().map(|r| r.name()))
}

impl Evaluation {
    /// The names of the violated rules (`["1-2s", "1-3s"]`).
    pub fn violation_names(&self) -> Vec<&'static str> {
        self.violations.iter().map(|r| r.name()).collect()
    }
}

fn status_of(violations: &[Rule], rules: &RuleSet) -> Status {
    let severities = violations.iter().filter_map(|r| rules.severity(*r));
    severities.fold(Status::Accepted, |status, severity| {
        match (status, severity) {
            (Status::Rejected, _) | (_, Severity::Rejection) => Status::Rejected,
            _ => Status::Warning,
        }
    })
}

fn check_mean_sd(mean: f64, sd: f64, what: &str) -> Result<(), QcError> {
    if !mean.is_finite() {
        return Err(QcError::InvalidMean {
            what: what.to_owned(),
            mean,
        });
    }
    if !(sd.is_finite() && sd > 0.0) {
        return Err(QcError::InvalidSd {
            what: what.to_owned(),
            sd,
        });
    }
    Ok(())
}

/// `x` (finite) as `digits × 10^exponent`, the digits being those of its shortest decimal
/// representation (the number a person typed: 119.9995, not 119.99950000000000471…).
fn decimal_parts(x: f64) -> Option<(i128, i32)> {
    // `{:e}` prints the shortest representation, e.g. `-1.199995e2` or `5e-324`.
    let text = format!("{x:e}");
    let (mantissa, exponent) = text.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    Some((
        digits,
        exponent.checked_sub(i32::try_from(fraction.len()).ok()?)?,
    ))
}

fn pow10(n: i32) -> Option<i128> {
    10i128.checked_pow(n.unsigned_abs())
}

/// `(value − mean) / sd` rounded half-up (away from zero) to `decimals` places, computed exactly
/// on the shortest decimal representations of the three numbers, as OpenELIS's
/// `BigDecimal` subtraction and `divide(sd, 4, HALF_UP)` do. `None` when the numbers are too far
/// apart in magnitude for 128-bit integers. `sd` must be positive.
fn decimal_z(value: f64, mean: f64, sd: f64, decimals: u32) -> Option<f64> {
    let (v, ev) = decimal_parts(value)?;
    let (m, em) = decimal_parts(mean)?;
    let (s, es) = decimal_parts(sd)?;
    let e = ev.min(em);
    let diff = v
        .checked_mul(pow10(ev - e)?)?
        .checked_sub(m.checked_mul(pow10(em - e)?)?)?;
    // z × 10^decimals = diff × 10^(e + decimals − es) / s
    let shift = e
        .checked_add(i32::try_from(decimals).ok()?)?
        .checked_sub(es)?;
    let (num, den) = if shift >= 0 {
        (diff.checked_mul(pow10(shift)?)?, s)
    } else {
        (diff, s.checked_mul(pow10(shift)?)?)
    };
    if den <= 0 {
        return None;
    }
    let (quotient, remainder) = (num / den, num % den);
    let half_or_more = remainder.unsigned_abs() >= den.unsigned_abs() - remainder.unsigned_abs();
    let rounded = if half_or_more {
        quotient + num.signum()
    } else {
        quotient
    };
    // Reading the decimal text back gives the double nearest to it.
    format!("{rounded}e-{decimals}").parse().ok()
}

fn z_score(value: f64, mean: f64, sd: f64, decimals: Option<u32>) -> f64 {
    let z = match decimals {
        // The binary quotient can fall on the wrong side of a half: (119.9995 − 100) / 10 is
        // 1.99994999… in binary, 1.99995 in decimal, which OpenELIS rounds to 2.0000.
        Some(d) => {
            decimal_z(value, mean, sd, d).unwrap_or_else(|| crate::round_to((value - mean) / sd, d))
        }
        None => (value - mean) / sd,
    };
    // A value a hair below the mean rounds to -0.0; OpenELIS's BigDecimal has no negative
    // zero, and `"z":-0.0` is no way to print "on the mean". Adding +0.0 turns -0.0 into 0.0
    // and leaves every other value alone.
    z + 0.0
}

/// Westgard evaluation of one control lot: each pushed value is judged against the lot's history.
#[derive(Debug, Clone)]
pub struct Evaluator {
    mean: f64,
    sd: f64,
    rules: RuleSet,
    history: VecDeque<Point>,
}

impl Evaluator {
    /// An evaluator for a lot with this mean and SD. The SD must be finite and positive (OpenELIS
    /// would store z = 0 for SD 0, which hides every error; we refuse it instead).
    ///
    /// # Errors
    ///
    /// [`QcError::InvalidMean`] for a mean that is NaN or infinite, [`QcError::InvalidSd`] for
    /// an SD that is not a finite number greater than 0.
    pub fn new(mean: f64, sd: f64, rules: RuleSet) -> Result<Self, QcError> {
        check_mean_sd(mean, sd, "evaluator")?;
        Ok(Self {
            mean,
            sd,
            rules,
            history: VecDeque::new(),
        })
    }

    /// The rule set.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Judges `value` (the newest result of the lot) and adds it to the history.
    ///
    /// # Errors
    ///
    /// [`QcError::InvalidValue`] for NaN or an infinity; the history is left as it was.
    pub fn push(&mut self, value: f64) -> Result<Evaluation, QcError> {
        if !value.is_finite() {
            return Err(QcError::InvalidValue { value });
        }
        Ok(self.judge(value))
    }

    /// [`Evaluator::push`] without the check (the pooled z-scores of
    /// [`MultiLevelEvaluator`] may be infinite for huge finite results, which is a real
    /// violation, not a bad input).
    fn judge(&mut self, value: f64) -> Evaluation {
        let z = z_score(value, self.mean, self.sd, self.rules.z_decimals);
        self.history.push_back(Point { value, z });
        let window: Vec<Point> = self.history.iter().copied().collect();
        let violations: Vec<Rule> = self
            .rules
            .rules()
            .iter()
            .map(|(r, _)| *r)
            .filter(|r| {
                !(*r == Rule::RFourS && self.rules.r4s_scope == RangeScope::WithinRun)
                    && r.violated(&window, self.rules.zero_side, self.rules.z_decimals)
            })
            .collect();
        let keep = self
            .rules
            .history_limit
            .unwrap_or_else(|| self.rules.longest_window().saturating_sub(1));
        while self.history.len() > keep {
            self.history.pop_front();
        }
        let status = status_of(&violations, &self.rules);
        Evaluation {
            value,
            z,
            violations,
            status,
        }
    }

    /// Judges a whole sequence, oldest first.
    ///
    /// # Errors
    ///
    /// [`QcError::InvalidValue`] for the first value that is not finite; the values before it
    /// have been judged and added to the history.
    pub fn evaluate_all(&mut self, values: &[f64]) -> Result<Vec<Evaluation>, QcError> {
        values.iter().map(|v| self.push(*v)).collect()
    }
}

/// The rules [`MultiLevelEvaluator`] also applies to the z-scores of all levels pooled in run
/// order: Westgard applies the rules on consecutive results within one control material and
/// across materials. Not `1-2s`/`1-3s` (one value: the per-level verdict), `2-2s`/`R-4s` (compared
/// within the run instead), nor `7T` (a trend is a trend of one material).
const POOLED_RULES: [Rule; 8] = [
    Rule::ThreeOneS,
    Rule::FourOneS,
    Rule::TenX,
    Rule::TwoOfThreeTwoS,
    Rule::SixX,
    Rule::EightX,
    Rule::NineX,
    Rule::TwelveX,
];

/// Westgard evaluation of several control levels measured together in each run.
///
/// Every rule is applied to each level's own history (one control material across runs). The
/// rules on consecutive results (`3-1s`, `4-1s`, `10x`, `2of3-2s`, `6x`, `8x`, `9x`, `12x`) are
/// also applied to the z-scores of all levels pooled in run order (level order within a run), so
/// that three levels of one run beyond +1 SD are a `3-1s`, and two runs of two levels all beyond
/// +1 SD a `4-1s`. Within each run, `2-2s` and `R-4s` (if enabled) also compare the levels with
/// each other, as Westgard defines them: two levels beyond 2 SD on the same side are a `2-2s`,
/// one beyond +2 SD and another beyond −2 SD an `R-4s`; the levels involved get the violation.
/// With [`RangeScope::WithinRun`] that is the only `R-4s` (Westgard's); with OpenELIS's
/// [`RangeScope::ConsecutiveResults`] each level's consecutive results are compared as well.
#[derive(Debug, Clone)]
pub struct MultiLevelEvaluator {
    per_level: Vec<Evaluator>,
    pooled: Evaluator,
}

impl MultiLevelEvaluator {
    /// One `(mean, sd)` per level and a rule set, applied per level and, for the rules on
    /// consecutive results, to the pooled sequence (see [`MultiLevelEvaluator`]).
    ///
    /// # Errors
    ///
    /// [`QcError::InvalidMean`] or [`QcError::InvalidSd`] (naming the level, `level 0` first)
    /// as [`Evaluator::new`] for any level.
    pub fn new(levels: &[(f64, f64)], rules: RuleSet) -> Result<Self, QcError> {
        let within = rules.clone();
        let mut pooled = rules;
        for rule in Rule::ALL {
            if !POOLED_RULES.contains(&rule) {
                pooled.remove(rule);
            }
        }
        pooled.history_limit = None;
        let per_level = levels
            .iter()
            .enumerate()
            .map(|(i, (mean, sd))| {
                check_mean_sd(*mean, *sd, &format!("level {i}"))?;
                Evaluator::new(*mean, *sd, within.clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The pooled evaluator sees z-scores directly: mean 0, SD 1.
        let pooled = Evaluator::new(0.0, 1.0, pooled)?;
        Ok(Self { per_level, pooled })
    }

    /// Judges one run (one value per level, in level order); one evaluation per level, in the
    /// same order.
    ///
    /// # Errors
    ///
    /// [`QcError::LevelCount`] when `values` does not hold one value per level, and
    /// [`QcError::InvalidLevelValue`] for NaN or an infinity (naming the first such level); in
    /// both cases no history changes.
    pub fn push_run(&mut self, values: &[f64]) -> Result<Vec<Evaluation>, QcError> {
        if values.len() != self.per_level.len() {
            return Err(QcError::LevelCount {
                expected: self.per_level.len(),
                got: values.len(),
            });
        }
        // All or nothing: a run with one bad value leaves every history untouched.
        if let Some((level, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(QcError::InvalidLevelValue { level, value });
        }
        let mut out = Vec::with_capacity(values.len());
        for (evaluator, value) in self.per_level.iter_mut().zip(values) {
            let mut evaluation = evaluator.judge(*value);
            let across = self.pooled.judge(evaluation.z);
            evaluation.violations.extend(across.violations);
            out.push(evaluation);
        }
        // Westgard's within-run rules across levels: 2-2s when two levels of the run are beyond
        // 2 SD on the same side, R-4s when one is beyond +2 SD and another beyond -2 SD. The
        // per-level evaluators only compare a level with its own previous runs.
        let within = self.per_level.first().map(|e| &e.rules);
        let enabled = |rule| within.is_some_and(|r| r.severity(rule).is_some());
        let high: Vec<bool> = out.iter().map(|e| e.z >= 2.0).collect();
        let low: Vec<bool> = out.iter().map(|e| e.z <= -2.0).collect();
        let count = |flags: &[bool]| flags.iter().filter(|f| **f).count();
        for (i, evaluation) in out.iter_mut().enumerate() {
            let same_side = (high[i] && count(&high) >= 2) || (low[i] && count(&low) >= 2);
            if enabled(Rule::TwoTwoS) && same_side {
                evaluation.violations.push(Rule::TwoTwoS);
            }
            let range = (high[i] && count(&low) >= 1) || (low[i] && count(&high) >= 1);
            if enabled(Rule::RFourS) && range {
                evaluation.violations.push(Rule::RFourS);
            }
        }
        for (evaluation, evaluator) in out.iter_mut().zip(&self.per_level) {
            evaluation.violations.sort();
            evaluation.violations.dedup();
            let mut merged = evaluator.rules.clone();
            for (rule, severity) in self.pooled.rules.rules() {
                merged.set(*rule, *severity);
            }
            evaluation.status = status_of(&evaluation.violations, &merged);
        }
        Ok(out)
    }
}
