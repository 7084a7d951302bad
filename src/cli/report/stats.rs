//! Honest bounds on a share measured over runs: exact binomial (Clopper–Pearson) intervals; for zero events
//! the one-sided upper bound `1 - alpha^(1/n)`, which the rule of three approximates as `3/n`.

/// `P(X <= k)` for `X ~ Binomial(n, p)`, summed in log space (no underflow for large `n`).
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n || p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    // log pmf(0) = n ln q; pmf(i+1) = pmf(i) * (n-i)/(i+1) * p/q.
    let mut log_pmf = n as f64 * lq;
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        terms.push(log_pmf);
        log_pmf += ((n - i) as f64).ln() - ((i + 1) as f64).ln() + lp - lq;
    }
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln())
        .exp()
        .min(1.0)
}

/// The `p` in [0, 1] where the decreasing function `f` crosses `target`, by bisection.
fn solve_decreasing(f: impl Fn(f64) -> f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if f(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// With `k` events in `n` runs: the one-sided upper bound at `confidence` on the per-run probability.
/// `k = 0` gives `1 - (1 - confidence)^(1/n)` (0 in 1,200 runs: under 0.25% at 95%).
pub fn upper_bound(k: u64, n: u64, confidence: f64) -> f64 {
    if n == 0 || k >= n {
        return 1.0;
    }
    let alpha = 1.0 - confidence;
    if k == 0 {
        return 1.0 - alpha.powf(1.0 / n as f64);
    }
    solve_decreasing(|p| binomial_cdf(k, n, p), alpha)
}

/// The two-sided exact (Clopper–Pearson) interval at `confidence` for `k` events in `n` runs.
pub fn clopper_pearson(k: u64, n: u64, confidence: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let half = (1.0 - confidence) / 2.0;
    let lo = if k == 0 {
        0.0
    } else {
        // P(X >= k; p) = 1 - cdf(k-1) increases with p: solve cdf(k-1) = 1 - half.
        solve_decreasing(|p| binomial_cdf(k - 1, n, p), 1.0 - half)
    };
    let hi = if k == n {
        1.0
    } else {
        solve_decreasing(|p| binomial_cdf(k, n, p), half)
    };
    (lo, hi)
}

/// A percentage for prose: `0.25%`, `0.0083%`, `37%`.
pub fn percent(p: f64) -> String {
    let x = p * 100.0;
    if x == 0.0 {
        "0%".to_string()
    } else if x >= 10.0 {
        format!("{x:.0}%")
    } else if x >= 0.1 {
        let t = format!("{x:.2}");
        format!("{}%", t.trim_end_matches('0').trim_end_matches('.'))
    } else {
        format!("{x:.3}%")
    }
}

/// A count with thousands separators: `1,200`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_events_in_1200_runs_bound_the_rate_under_a_quarter_percent() {
        let b = upper_bound(0, 1200, 0.95);
        assert!((b - 0.002493).abs() < 1e-5, "{b}");
        assert_eq!(percent(b), "0.25%");
        // The rule of three approximates it.
        assert!((b - 3.0 / 1200.0).abs() < 1e-4);
    }

    #[test]
    fn the_binomial_cdf_matches_hand_computed_values() {
        // n=3, p=0.5: P(X<=0)=1/8, P(X<=1)=1/2, P(X<=2)=7/8.
        assert!((binomial_cdf(0, 3, 0.5) - 0.125).abs() < 1e-12);
        assert!((binomial_cdf(1, 3, 0.5) - 0.5).abs() < 1e-12);
        assert!((binomial_cdf(2, 3, 0.5) - 0.875).abs() < 1e-12);
        assert_eq!(binomial_cdf(3, 3, 0.5), 1.0);
        // Large n does not underflow: the median of Binomial(100000, 0.5) sits at 1/2.
        assert!((binomial_cdf(50_000, 100_000, 0.5) - 0.5).abs() < 0.01);
    }

    #[test]
    fn clopper_pearson_matches_published_intervals() {
        // 5 of 10 at 95%: (0.1871, 0.8129), the textbook exact interval.
        let (lo, hi) = clopper_pearson(5, 10, 0.95);
        assert!((lo - 0.1871).abs() < 1e-3 && (hi - 0.8129).abs() < 1e-3, "{lo} {hi}");
        // 0 of 10: the upper end at alpha/2 is 1 - 0.025^(1/10) = 0.3085.
        let (lo, hi) = clopper_pearson(0, 10, 0.95);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.3085).abs() < 1e-3, "{hi}");
        assert_eq!(clopper_pearson(10, 10, 0.95).1, 1.0);
    }

    #[test]
    fn counts_and_percents_read_like_prose() {
        assert_eq!(count(1200), "1,200");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(percent(0.37), "37%");
        assert_eq!(percent(0.0), "0%");
    }
}
