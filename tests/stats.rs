//! The numerics of `prodready::stats` against a reference implementation: U, its p-values
//! (`scipy.stats.mannwhitneyu`, method "asymptotic") and the Hodges–Lehmann shift (numpy's
//! median of every pairwise difference) on fixed vectors with ties and unequal sizes, stored in
//! tests/fixtures/stats/reference.json by tests/fixtures/stats/reference.py (the command is in
//! its docstring). Also: a bucketed (weighted) sample gives exactly what its expansion gives.

use prodready::stats::{Alternative, Weighted, hodges_lehmann, mann_whitney_u};
use serde_json::Value;

fn close(what: &str, got: f64, want: f64) {
    let tol = 1e-9 * want.abs().max(1e-300);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, scipy {want:e}"
    );
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn mann_whitney_and_hodges_lehmann_equal_scipy() {
    let text = std::fs::read_to_string("tests/fixtures/stats/reference.json").unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let x = Weighted::from_values(&floats(&case["x"]));
        let y = Weighted::from_values(&floats(&case["y"]));
        let t = mann_whitney_u(&x, &y).unwrap();
        close(&format!("{name} U"), t.u, case["u"].as_f64().unwrap());
        for (alt, key) in [
            (Alternative::TwoSided, "p_two_sided"),
            (Alternative::Greater, "p_greater"),
            (Alternative::Less, "p_less"),
        ] {
            close(
                &format!("{name} {key}"),
                t.p(alt),
                case[key].as_f64().unwrap(),
            );
        }
        let s = hodges_lehmann(&x, &y, 0.95).unwrap();
        close(
            &format!("{name} shift"),
            s.estimate,
            case["hodges_lehmann"].as_f64().unwrap(),
        );
        assert!(s.low <= s.estimate && s.estimate <= s.high, "{name}: {s:?}");
    }
}

#[test]
fn buckets_give_what_their_expansion_gives() {
    // A histogram-like sample: few distinct values, repeated many times.
    let xb = [(100.0, 40), (110.0, 25), (130.0, 7), (400.0, 1)];
    let yb = [(100.0, 10), (120.0, 30), (130.0, 20), (900.0, 1)];
    let expand = |b: &[(f64, u64)]| -> Vec<f64> {
        b.iter()
            .flat_map(|&(v, c)| std::iter::repeat_n(v, c as usize))
            .collect()
    };
    let (ex, ey) = (expand(&xb), expand(&yb));
    let s = hodges_lehmann(
        &Weighted::new(xb.to_vec()),
        &Weighted::new(yb.to_vec()),
        0.99,
    )
    .unwrap();
    let mut all: Vec<f64> = ey
        .iter()
        .flat_map(|b| ex.iter().map(move |a| b - a))
        .collect();
    all.sort_by(f64::total_cmp);
    let n = all.len();
    let median = if n % 2 == 1 {
        all[n / 2]
    } else {
        (all[n / 2 - 1] + all[n / 2]) / 2.0
    };
    assert_eq!(s.estimate, median, "{s:?}");
    assert_eq!(
        (s.low, s.high),
        (all[s.c as usize - 1], all[n - s.c as usize])
    );
    let unit = |v: &[f64]| Weighted::new(v.iter().map(|&x| (x, 1)).collect());
    assert_eq!(
        mann_whitney_u(&Weighted::new(xb.to_vec()), &Weighted::new(yb.to_vec())),
        mann_whitney_u(&unit(&ex), &unit(&ey))
    );
}
