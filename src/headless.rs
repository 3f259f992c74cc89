//! Runs without the terminal UI: a progress bar on stderr (when it is a terminal) and a
//! per-layer summary table at the end.

use crate::experiment::Experiment;
use crate::train::{self, Control, Event, Outcome, Probe, RunEnv};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::Arc;

/// Trains `exp` on its own thread, showing progress, and returns its outcome.
pub fn run(exp: &Experiment, env: RunEnv, control: Arc<Control>) -> Outcome {
    let steps = exp.spec().train.steps as u64;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(steps);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg:28} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
            )
            .expect("the progress template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(exp.name().to_string());
        Some(bar)
    } else {
        None
    };
    let (rx, handle) = train::spawn(exp.clone(), env, control);
    for event in rx {
        if let (Some(bar), Event::Probe { probe, .. }) = (&bar, &event) {
            bar.set_position(probe.step as u64 + 1);
            bar.set_message(format!("{} loss {:.4}", exp.name(), probe.loss));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    handle
        .join()
        .expect("the training thread catches its own panics")
}

fn sci(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.2e}")
    }
}

/// The end-of-run table: per layer, ‖δ‖ and ‖∂L/∂W‖ at the first and last probe, and each
/// as a ratio to the output layer's (the signature of a vanishing or exploding gradient).
pub fn summary(out: &Outcome) -> String {
    let mut s = String::new();
    let end = &out.end;
    let _ = write!(
        s,
        "{}: {} after {} steps",
        out.header.experiment,
        end.status.name(),
        end.steps_done
    );
    if let Some(at) = end.diverged_at {
        let _ = write!(s, " (loss or gradient non-finite at step {at})");
    }
    if let Some(e) = &end.error {
        let _ = write!(s, " ({e})");
    }
    let _ = writeln!(
        s,
        " in {:.1}s, {:.1} steps/s",
        out.wall_s,
        out.steps_per_s()
    );
    let (Some(first), Some(last)) = (out.trace.first_probe(), out.trace.last_probe()) else {
        return s;
    };
    let _ = writeln!(
        s,
        "loss {:.4} → {:.4}{}",
        first.loss,
        last.loss,
        test_text(last)
    );
    if let (Some(&f1), Some(&ft), Some(&l1), Some(&lt)) = (
        first.time.first(),
        first.time.last(),
        last.time.first(),
        last.time.last(),
    ) {
        let t = first.time.len();
        let ratio = |a: f64, b: f64| if b > 0.0 { sci(a / b) } else { "-".into() };
        let _ = writeln!(
            s,
            "through time: |∂L/∂h_1| / |∂L/∂h_{t}| {} at the first probe, {} at the last",
            ratio(f1, ft),
            ratio(l1, lt)
        );
    }
    if let (Some(search), Some(f)) = (&out.header.search, last.fitness) {
        let _ = writeln!(
            s,
            "no gradients ({search}): last generation best loss {:.4}, population mean {:.4}",
            f.best, f.mean
        );
        return s;
    }
    let _ = writeln!(
        s,
        "{:<6} {:>10} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10} {:>10}",
        "layer", "|δ| first", "/out", "|δ| last", "/out", "|∂W| first", "/out", "|∂W| last", "/out"
    );
    let out_first = first.layers.last().copied().unwrap_or_default();
    let out_last = last.layers.last().copied().unwrap_or_default();
    let ratio = |a: f64, b: f64| if b > 0.0 { sci(a / b) } else { "-".into() };
    for (i, name) in out.header.layers.iter().enumerate() {
        let (f, l) = (first.layers[i], last.layers[i]);
        let _ = writeln!(
            s,
            "{:<6} {:>10} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10} {:>10}",
            name,
            sci(f.delta),
            ratio(f.delta, out_first.delta),
            sci(l.delta),
            ratio(l.delta, out_last.delta),
            sci(f.grad_w),
            ratio(f.grad_w, out_first.grad_w),
            sci(l.grad_w),
            ratio(l.grad_w, out_last.grad_w),
        );
    }
    s
}

fn test_text(p: &Probe) -> String {
    match p.test {
        Some(t) => match t.accuracy {
            Some(a) => format!(", test loss {:.4}, test accuracy {:.1}%", t.loss, 100.0 * a),
            None => format!(", test loss {:.4}", t.loss),
        },
        None => String::new(),
    }
}
