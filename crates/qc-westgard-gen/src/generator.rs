//! QC values: Gaussian scatter from a seeded RNG, or an exact shift of k SD.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardNormal};

/// How far from the target a generated value lies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Deviation {
    /// A draw from N(target, sd).
    Random,
    /// Exactly `target + k × sd` (no scatter): what `--qc-deviation k` asks for.
    Shift(f64),
}

/// A source of QC values.
///
/// Seeded generators use Xoshiro256++, whose output is specified and portable, so a seed gives the same
/// values on every platform and release of this crate.
#[derive(Debug, Clone)]
pub struct QcGenerator {
    rng: Xoshiro256PlusPlus,
    /// Whether a series value is an outlier is drawn from its own stream, so that adding an
    /// outlier disturbance leaves every other value as the undisturbed series has it.
    outlier_rng: Xoshiro256PlusPlus,
}

/// Mixed into the seed of the outlier stream (any constant: it only has to differ from 0).
const OUTLIER_STREAM: u64 = 0x6f75_746c_6965_7273;

impl QcGenerator {
    /// A reproducible generator.
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            outlier_rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ OUTLIER_STREAM),
        }
    }

    /// A generator seeded from the operating system.
    pub fn from_entropy() -> Self {
        Self {
            rng: rand::make_rng(),
            outlier_rng: rand::make_rng(),
        }
    }

    /// Seeded when `seed` is given, else from entropy.
    pub fn new(seed: Option<u64>) -> Self {
        seed.map_or_else(Self::from_entropy, Self::seeded)
    }

    /// The underlying RNG, for callers that draw other random things (IDs, choices) from the same
    /// stream so that one seed fixes everything.
    pub fn rng(&mut self) -> &mut Xoshiro256PlusPlus {
        &mut self.rng
    }

    /// The stream outlier disturbances draw from.
    pub(crate) fn outlier_rng(&mut self) -> &mut Xoshiro256PlusPlus {
        &mut self.outlier_rng
    }

    /// One standard-normal draw.
    pub fn standard_normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.rng)
    }

    /// One QC value. `Shift(k)` is exact: `target + k × sd`. `Random` draws from N(target, sd).
    /// With either, an SD that is zero, negative or not finite yields the target (a negative
    /// SD mirrored a shift, and NaN made the value NaN). The value is not finite when `target`
    /// or `k` is not, or when `target + k × sd` (or the draw) exceeds the range of an `f64`:
    /// callers that take these from outside check [`f64::is_finite`].
    pub fn value(&mut self, target: f64, sd: f64, deviation: Deviation) -> f64 {
        if !(sd.is_finite() && sd > 0.0) {
            return target;
        }
        match deviation {
            Deviation::Shift(k) => target + k * sd,
            Deviation::Random => target + sd * self.standard_normal(),
        }
    }
}

/// Decimal places that show two significant digits of `sd`, within `min..=12`: values written
/// to that many places read back within 0.05 SD of what was drawn, whatever the scale.
/// `min` for an SD that is zero, negative or not finite.
///
/// ```
/// # use qc_westgard_gen::decimals_for_sd;
/// assert_eq!(decimals_for_sd(5.0, 2), 2);
/// assert_eq!(decimals_for_sd(0.5, 2), 2);
/// assert_eq!(decimals_for_sd(0.004, 2), 4);
/// assert_eq!(decimals_for_sd(0.0, 2), 2);
/// ```
pub fn decimals_for_sd(sd: f64, min: u32) -> u32 {
    if !(sd.is_finite() && sd > 0.0) {
        return min;
    }
    let max = 12.max(min);
    // Clamped to a small whole number first, so the cast is exact.
    (1.0 - sd.log10().floor()).clamp(f64::from(min), f64::from(max)) as u32
}

/// Python's `round(value, decimals)`: the binary value correctly rounded, ties to even. What the
/// OpenELIS mock computes, so a reference's figures are reproduced digit for digit where the
/// decimal rounding of [`round_to`] would differ: 0.0013 × 5 % is 6.4999…e-5 in binary.
///
/// ```
/// # use qc_westgard_gen::{python_round, round_to};
/// assert_eq!(python_round(0.0013 * 0.05, 5), 0.00006);
/// assert_eq!(round_to(0.0013 * 0.05, 5), 0.00007);
/// assert_eq!(python_round(5.8 + 3.5 * 0.29, 2), 6.81); // 6.81499…
/// assert_eq!(python_round(2.5, 0), 2.0);
/// ```
pub fn python_round(value: f64, decimals: u32) -> f64 {
    // Rust formats the exact binary value correctly rounded, ties to even, as Python rounds.
    let decimals = decimals as usize;
    format!("{value:.decimals$}").parse().unwrap_or(value)
}

/// Rounds to `decimals` places, halves away from zero, working on the shortest decimal
/// representation so that 1.005 rounds to 1.01 as a person expects (not to 1.00 as `f64` would).
///
/// ```
/// # use qc_westgard_gen::round_to;
/// assert_eq!(round_to(7.285, 2), 7.29);
/// assert_eq!(round_to(1.005, 2), 1.01);
/// assert_eq!(round_to(-2.5, 0), -3.0);
/// ```
pub fn round_to(value: f64, decimals: u32) -> f64 {
    if !value.is_finite() {
        return value;
    }
    // Rust prints the shortest decimal that reads back as `value`, never in exponent form,
    // so rounding that text is exact decimal rounding (no scaling that could overflow, and
    // no second rounding of an intermediate product).
    let text = format!("{}", value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let keep = (decimals as usize).min(fraction.len());
    let round_up = fraction.as_bytes().get(keep).is_some_and(|d| *d >= b'5');
    let mut digits: Vec<u8> = whole.bytes().chain(fraction.bytes().take(keep)).collect();
    if round_up {
        // Add one unit in the last kept place, carrying leftwards.
        let mut carry = true;
        for d in digits.iter_mut().rev() {
            if *d == b'9' {
                *d = b'0';
            } else {
                *d += 1;
                carry = false;
                break;
            }
        }
        if carry {
            digits.insert(0, b'1');
        }
    }
    let split = digits.len() - keep;
    let (int_part, frac_part) = digits.split_at(split);
    let rounded = format!(
        "{}.{}",
        String::from_utf8_lossy(int_part),
        String::from_utf8_lossy(frac_part)
    );
    let magnitude: f64 = rounded
        .trim_end_matches('.')
        .parse()
        .unwrap_or_else(|_| value.abs());
    magnitude.copysign(value)
}
