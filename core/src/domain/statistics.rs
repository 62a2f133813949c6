//! Intervals for the evaluation report: Wilson for shares, a percentile bootstrap with a fixed
//! seed for means and for the ratio of two means. Pure: the same input and seed give the same
//! interval on every run and every machine.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// z for a two-sided 95 % interval.
const Z_95: f64 = 1.959_963_984_540_054;
/// Resamples per bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2_000;
/// The seed every report's bootstrap starts from.
pub const BOOTSTRAP_SEED: u64 = 0x6d69_6372_6f63_6f68;

/// A figure with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// The Wilson score interval of `successes` out of `n` (none for `n` = 0).
pub fn wilson(successes: u32, n: u32) -> Option<Estimate> {
    if n == 0 {
        return None;
    }
    let (n, p) = (f64::from(n), f64::from(successes.min(n)) / f64::from(n));
    let z2 = Z_95 * Z_95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some(Estimate { value: p, low: (centre - half).max(0.0), high: (centre + half).min(1.0) })
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn resample_mean(values: &[f64], rng: &mut StdRng) -> f64 {
    (0..values.len()).map(|_| values[rng.random_range(0..values.len())]).sum::<f64>() / values.len() as f64
}

/// The 2.5th and 97.5th percentiles of sorted samples.
fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

/// The mean with a percentile bootstrap interval (none for no values).
pub fn mean_estimate(values: &[f64], seed: u64) -> Option<Estimate> {
    if values.is_empty() {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let samples = (0..BOOTSTRAP_RESAMPLES).map(|_| resample_mean(values, &mut rng)).collect();
    let (low, high) = percentiles(samples);
    Some(Estimate { value: mean(values), low, high })
}

/// `mean(group) / mean(baseline) − 1`, the uplift, with a percentile bootstrap interval that
/// resamples both groups; none when either is empty or the baseline's mean is 0.
pub fn uplift_estimate(group: &[f64], baseline: &[f64], seed: u64) -> Option<Estimate> {
    if group.is_empty() || baseline.is_empty() || mean(baseline) <= 0.0 {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let samples = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let (g, b) = (resample_mean(group, &mut rng), resample_mean(baseline, &mut rng));
            // A resample whose baseline is all zeros has no ratio: count it as no uplift.
            if b > 0.0 { g / b - 1.0 } else { 0.0 }
        })
        .collect();
    let (low, high) = percentiles(samples);
    Some(Estimate { value: mean(group) / mean(baseline) - 1.0, low, high })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_interval() {
        // 8 of 10: 0.4902 to 0.9433 (Wilson 1927, as tabulated by Newcombe 1998).
        let e = wilson(8, 10).unwrap();
        assert!((e.low - 0.4902).abs() < 1e-4 && (e.high - 0.9433).abs() < 1e-4, "{e:?}");
        let none = wilson(0, 20).unwrap();
        assert_eq!(none.low, 0.0);
        assert!((none.high - 0.1611).abs() < 1e-4, "{none:?}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn the_bootstrap_is_the_same_for_the_same_seed_and_brackets_the_estimate() {
        let group: Vec<f64> = (0..40).map(|i| f64::from(i % 9 + 20)).collect();
        let baseline: Vec<f64> = (0..40).map(|i| f64::from(i % 7 + 15)).collect();
        let a = uplift_estimate(&group, &baseline, BOOTSTRAP_SEED).unwrap();
        assert_eq!(Some(a), uplift_estimate(&group, &baseline, BOOTSTRAP_SEED));
        assert!(a.low < a.value && a.value < a.high, "{a:?}");
        assert!(a.low > 0.0, "a clear uplift excludes zero: {a:?}");
        let m = mean_estimate(&group, BOOTSTRAP_SEED).unwrap();
        assert!(m.low <= m.value && m.value <= m.high);
        assert_eq!(uplift_estimate(&group, &[0.0, 0.0], 1), None);
    }
}
