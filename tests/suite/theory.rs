//! Mean-field theory against measurement on deep nets at initialisation.

use gradlab::experiment::Experiment;
use gradlab::theory;
use std::path::Path;

/// Measured with `gradlab theory FILE` (3 seeds): measured/predicted ‖δ^l‖/‖δ^out‖ stayed in
/// 0.79..1.31 on every layer of these nets, over profiles spanning up to 15 orders of
/// magnitude; finite width (64) and one batch per seed explain the spread. Bounds [0.5, 2]
/// leave ~1.5× margin and still reject any error in the recursion (one wrong factor per
/// layer compounds to orders of magnitude over 20 layers).
#[test]
fn prediction_matches_measurement_layer_by_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in [
        "tanh-naive-20",
        "sigmoid-naive-20",
        "tanh-xavier-20",
        "relu-xavier-30",
        "relu-he-30",
    ] {
        let exp = Experiment::load(&root.join(format!("experiments/{name}.toml"))).unwrap();
        let spec = exp.spec();
        let ds = gradlab::data::build(&spec.data, exp.seed()).unwrap();
        let p = theory::predict(
            &spec.model,
            ds.input_dim,
            ds.objective.output_dim(),
            theory::input_q(&ds.train.x),
        );
        let measured = theory::measure(&exp, 3).unwrap();
        assert_eq!(measured.len(), p.delta_ratio.len());
        for (l, (m, pr)) in measured.iter().zip(&p.delta_ratio).enumerate() {
            let r = m / pr;
            assert!(
                (0.5..2.0).contains(&r),
                "{name} layer {l}: measured {m:e}, predicted {pr:e}"
            );
        }
    }
}

#[test]
fn theory_command_flags_the_phase() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = super::common::gradlab(root)
        .args(["theory", "experiments/relu-he-30.toml", "--seeds", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("edge of chaos"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("h30 ")), "{text}");
    let out = super::common::gradlab(root)
        .args(["theory", "experiments/tanh-naive-20.toml", "--seeds", "1"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("ordered phase")
    );
}

/// `gradlab theory` on every shipped experiment exits 0, with the table (its rows the trace's
/// layer names, ending in `out` at 1.0 for both columns) or a line that says why there is none
/// — never a panic, never the MLP's table under a residual or recurrent net.
#[test]
fn theory_on_every_shipped_experiment_predicts_or_says_why_not() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20);
    let (mut tables, mut statements) = (0, 0);
    for file in &files {
        let out = super::common::gradlab_std()
            .args(["theory", "--seeds", "1"])
            .arg(file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {text}{err}",
            file.display()
        );
        let exp = Experiment::load(file).unwrap();
        match theory::not_covered(&exp) {
            Some(why) => {
                assert_eq!(text.trim(), format!("{}: {why}", exp.name()));
                statements += 1;
            }
            None => {
                assert!(text.contains("χ* = "), "{}: {text}", file.display());
                let out_row = text.lines().last().unwrap();
                let cols: Vec<&str> = out_row.split_whitespace().collect();
                assert_eq!(cols[0], "out", "{}: {text}", file.display());
                assert_eq!((cols[2], cols[3]), ("1.000e0", "1.000e0"), "{out_row}");
                tables += 1;
            }
        }
    }
    assert!(
        tables >= 14 && statements >= 6,
        "{tables} tables, {statements} statements"
    );
}

/// `gradlab theory FILE --grid …` draws the order–chaos plane for the file's activation, with
/// the edge where Schoenholz et al. 2017 (Fig. 1) put it: σ_w² ≈ 1.76 at σ_b² = 0.05 for tanh.
#[test]
fn the_phase_diagram_puts_the_edge_of_chaos_where_the_paper_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = super::common::gradlab_std()
        .args(["theory"])
        .arg(root.join("experiments/tanh-naive-20.toml"))
        .args([
            "--grid",
            "sigma_w=0.5:4:0.1",
            "--grid",
            "sigma_b=0.2236068,0.5",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = text
        .lines()
        .find(|l| l.contains("σ_b² = 0.0500"))
        .unwrap_or_else(|| panic!("{text}"));
    let edge: f64 = row
        .split("edge at σ_w² = ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{row}"));
    assert!((edge - 1.76).abs() < 0.02, "{row}");
    // Ordered left of the edge, chaotic right of it, on the drawn row.
    let cells: String = row
        .chars()
        .filter(|c| matches!(c, '·' | '#' | '|'))
        .collect();
    let first_chaotic = cells.find('#').unwrap();
    assert!(cells[..first_chaotic].chars().all(|c| c != '#'));
    assert!(cells.starts_with('·') && cells.ends_with('#'), "{cells}");
    // A bad axis is bad input.
    let bad = super::common::gradlab_std()
        .args(["theory"])
        .arg(root.join("experiments/tanh-naive-20.toml"))
        .args(["--grid", "depth=1,2"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
