//! Text for the command line: the entry table, one entry in full, two entries side by side,
//! verify, replay and audit reports. Pure functions of their inputs.

use super::entry::{Difference, Entry, EntryKind, Verdict, VerdictKind};
use super::replay::{AuditReport, ReplayReport};
use super::row::Row;
use super::verify::VerifyReport;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

fn sci(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(0.0) => "0".into(),
        Some(v) if (1e-3..1e4).contains(&v.abs()) => format!("{v:.4}"),
        Some(v) => format!("{v:.3e}"),
    }
}

fn seq_of(all: &[Entry], hash: &str) -> String {
    // A merged replay names its original by the hash the source ledger knew it by.
    // Own hashes first: walking lineages parses embedded lines, so only when needed.
    let by_lineage = || {
        all.iter()
            .find(|e| e.origin.is_some() && e.lineage().iter().any(|h| h == hash))
    };
    all.iter()
        .find(|e| e.hash == hash)
        .or_else(by_lineage)
        .map_or_else(
            || hash[..12.min(hash.len())].to_string(),
            |e| e.seq.to_string(),
        )
}

/// The result word of a verdict.
pub fn verdict_word(v: &Verdict) -> &'static str {
    result_word(v.result)
}

fn result_word(r: VerdictKind) -> &'static str {
    match r {
        VerdictKind::Exact => "EXACT",
        VerdictKind::Close => "CLOSE",
        VerdictKind::Diverged => "DIVERGED",
    }
}

/// One difference in words: `at step 3: grad_w of layer h2: original 0.1, replay 0.2`.
pub fn difference(d: &Difference) -> String {
    let mut s = String::new();
    match d.step {
        Some(step) => {
            let _ = write!(s, "at step {step}: ");
        }
        None => s.push_str("in "),
    }
    s.push_str(&d.quantity);
    if let Some(layer) = &d.layer {
        let _ = write!(s, " of layer {layer}");
    }
    let _ = write!(s, ": original {}, replay {}", d.original, d.replayed);
    s
}

/// `DIVERGED at step …` or `EXACT`.
pub fn verdict(v: &Verdict) -> String {
    match &v.first {
        Some(d) => format!("{} {}", verdict_word(v), difference(d)),
        None => verdict_word(v).to_string(),
    }
}

/// How far two traces agree, and the conclusions side by side (two indented lines).
pub fn agreement(a: &crate::ledger::Agreement) -> String {
    let to = |s: Option<usize>| s.map_or_else(|| "no probe".to_string(), |s| format!("step {s}"));
    let mut s = format!(
        "  agreement: bit-identical to {}, within 1e-6 relative to {}, within 1 % to {}",
        to(a.identical_to),
        to(a.within_1e6_to),
        to(a.within_1pct_to)
    );
    if let Some(r) = a.first_relative {
        let _ = write!(s, "; the first difference is {r:.1e} relative");
    }
    s.push('\n');
    let sides: Vec<String> = a
        .conclusions
        .iter()
        .map(|(name, x, y)| {
            if x == y {
                format!("{name} {x}")
            } else {
                format!("{name} {x} vs {y}")
            }
        })
        .collect();
    let _ = writeln!(
        s,
        "  conclusions (original vs replay): {}",
        sides.join("; ")
    );
    s
}

/// The `ledger list` table.
pub fn list(rows: &[&Row], seqs: &HashMap<String, u64>) -> String {
    let mut s = format!(
        "{:>5}  {:<20}  {:<24}  {:<12}  {:<11}  {:>10}  {}\n",
        "seq", "started (UTC)", "experiment", "config", "status", "final loss", "kind"
    );
    for e in rows {
        let kind = match (&e.kind, &e.replay_of, &e.verdict) {
            (EntryKind::Replay, Some(of), Some(v)) => {
                let of = seqs
                    .get(of)
                    .map_or_else(|| of[..12.min(of.len())].to_string(), u64::to_string);
                format!("replay of {of}: {}", result_word(v.result))
            }
            _ => match (&e.kind, &e.lesion_of) {
                (EntryKind::Lesion, Some(of)) => {
                    let of = seqs
                        .get(of)
                        .map_or_else(|| of[..12.min(of.len())].to_string(), u64::to_string);
                    format!("lesion of {of}")
                }
                _ => "run".into(),
            },
        };
        let kind = if e.origin.is_some() {
            format!("{kind} (merged)")
        } else {
            kind
        };
        let _ = writeln!(
            s,
            "{:>5}  {:<20}  {:<24}  {:<12}  {:<11}  {:>10}  {}",
            e.seq,
            e.started,
            e.experiment,
            e.config_hash.short(),
            e.status.name(),
            sci(e.metrics.train_loss),
            kind
        );
    }
    s
}

fn layer_table(e: &Entry) -> String {
    let mut s = format!(
        "{:<8} {:>11} {:>11} {:>11} {:>11}\n",
        "layer", "|δ| first", "|δ| last", "|∂W| first", "|∂W| last"
    );
    for l in &e.layers {
        let _ = writeln!(
            s,
            "{:<8} {:>11} {:>11} {:>11} {:>11}",
            l.name,
            sci(l.delta_first),
            sci(l.delta_last),
            sci(l.grad_w_first),
            sci(l.grad_w_last)
        );
    }
    s
}

/// `ledger show`: every field of one entry.
pub fn show(e: &Entry, all: &[Entry]) -> String {
    let mut s = String::new();
    let mut row = |k: &str, v: String| {
        let _ = writeln!(s, "{k:<12} {v}");
    };
    row("entry", format!("{}  {}", e.seq, e.hash));
    row(
        "kind",
        match (&e.kind, &e.replay_of, &e.verdict) {
            (EntryKind::Replay, Some(of), Some(v)) => {
                format!("replay of entry {} ({of}): {}", seq_of(all, of), verdict(v))
            }
            _ => match (&e.kind, &e.lesion_of) {
                (EntryKind::Lesion, Some(of)) => {
                    format!("lesion study of entry {} ({of})", seq_of(all, of))
                }
                _ => "run".into(),
            },
        },
    );
    row("experiment", e.experiment.clone());
    row("started", format!("{}   ended {}", e.started, e.ended));
    let mut status = e.status.name().to_string();
    if let Some(at) = e.diverged_at {
        let _ = write!(status, " at step {at}");
    }
    if let Some(err) = &e.error {
        let _ = write!(status, " ({err})");
    }
    row("status", status);
    row("config", e.config_hash.0.clone());
    row(
        "seeds",
        format!(
            "experiment {}, backend {}, streams {}",
            e.seeds.experiment,
            e.seeds.backend,
            e.seeds.streams.join(", ")
        ),
    );
    let c = &e.code;
    let git = match (&c.git_commit, c.git_dirty) {
        (Some(commit), Some(true)) => {
            format!(
                "commit {commit} + uncommitted changes (diff {})",
                c.git_diff_hash.as_deref().unwrap_or("?")
            )
        }
        (Some(commit), _) => format!("commit {commit}"),
        (None, _) => "not built from a git checkout".into(),
    };
    row("code", format!("gradlab {}, {git}", c.crate_version));
    row(
        "toolchain",
        format!("{}, burn {}, {} {}", c.rustc, c.burn, c.target, c.profile),
    );
    row("features", c.features.join(", "));
    row("Cargo.lock", c.cargo_lock_hash.clone());
    row(
        "execution",
        format!(
            "{} on {}, {} thread(s), {} {} ({})",
            e.execution.backend,
            e.execution.device,
            e.execution.threads,
            e.host.os,
            e.host.arch,
            e.host.cpu
        ),
    );
    row("cpu features", e.host.features_text());
    let m = &e.metrics;
    row(
        "metrics",
        format!(
            "steps {}/{}, train loss {}, accuracy {}, test loss {}, test accuracy {}, {:.3} s",
            m.steps_done,
            m.steps_planned,
            sci(m.train_loss),
            sci(m.train_accuracy),
            sci(m.test_loss),
            sci(m.test_accuracy),
            m.wall_s
        ),
    );
    row(
        "trace",
        format!("{} ({} bytes)", e.trace.hash, e.trace.bytes),
    );
    row(
        "weights",
        format!(
            "{} ({} bytes{})",
            e.weights.hash,
            e.weights.bytes,
            if e.weights.file_hash.is_some() {
                ""
            } else {
                ", not stored: over the size cap"
            }
        ),
    );
    row("prev", e.prev.clone());
    if !e.tags.is_empty() {
        row("tags", e.tags.join(", "));
    }
    if let Some(o) = &e.origin {
        row(
            "merged",
            format!(
                "{} from entry {} of {} (head {}), original hash {}",
                o.merged,
                o.seq,
                o.source,
                &o.source_head[..12.min(o.source_head.len())],
                o.hash
            ),
        );
    }
    s.push('\n');
    s.push_str(&layer_table(e));
    s.push_str("\nconfig:\n");
    for line in e.config.lines() {
        let _ = writeln!(s, "  {line}");
    }
    s
}

/// Flattens a TOML document to `section.key → value` text.
fn flatten(text: &str) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    match text.parse::<toml::Table>() {
        Ok(t) => walk("", &toml::Value::Table(t), &mut out),
        Err(e) => {
            out.insert("(unparsable config)".into(), e.message().to_string());
        }
    }
    out
}

/// The config keys whose values differ: `(key, a, b)`, `absent` for a missing key.
pub fn config_differences(a: &str, b: &str) -> Vec<(String, String, String)> {
    let (fa, fb) = (flatten(a), flatten(b));
    let mut keys: Vec<&String> = fa.keys().chain(fb.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| fa.get(*k) != fb.get(*k))
        .map(|k| {
            let get =
                |m: &BTreeMap<String, String>| m.get(k).cloned().unwrap_or_else(|| "absent".into());
            (k.clone(), get(&fa), get(&fb))
        })
        .collect()
}

/// `ledger diff`: config differences, environment differences, metric deltas and the two
/// per-layer gradient profiles side by side.
pub fn diff(a: &Entry, b: &Entry) -> String {
    let mut s = format!(
        "entry {} ({}, config {}, {})  vs  entry {} ({}, config {}, {})\n\nconfig:\n",
        a.seq,
        a.experiment,
        a.config_hash.short(),
        a.status.name(),
        b.seq,
        b.experiment,
        b.config_hash.short(),
        b.status.name()
    );
    let cfg = config_differences(&a.config, &b.config);
    if cfg.is_empty() {
        s.push_str("  identical\n");
    }
    for (k, x, y) in &cfg {
        let _ = writeln!(s, "  {k:<28} {x} → {y}");
    }
    s.push_str("\nenvironment:\n");
    let mut env = Vec::new();
    for (f, x, y) in a.code.differences(&b.code) {
        env.push((format!("code.{f}"), x, y));
    }
    for (f, x, y) in [
        (
            "backend",
            a.execution.backend.clone(),
            b.execution.backend.clone(),
        ),
        (
            "threads",
            a.execution.threads.to_string(),
            b.execution.threads.to_string(),
        ),
        ("host.os", a.host.os.clone(), b.host.os.clone()),
        ("host.arch", a.host.arch.clone(), b.host.arch.clone()),
        ("host.cpu", a.host.cpu.clone(), b.host.cpu.clone()),
        (
            "host.cpu_features",
            a.host.features_text(),
            b.host.features_text(),
        ),
    ] {
        if x != y {
            env.push((f.to_string(), x, y));
        }
    }
    if env.is_empty() {
        s.push_str("  identical\n");
    }
    for (k, x, y) in env {
        let _ = writeln!(s, "  {k:<28} {x} → {y}");
    }
    let _ = writeln!(
        s,
        "\n{:<16} {:>12} {:>12} {:>12}",
        "metric", "A", "B", "B − A"
    );
    let (ma, mb) = (&a.metrics, &b.metrics);
    let _ = writeln!(
        s,
        "{:<16} {:>12} {:>12} {:>12}",
        "steps",
        ma.steps_done,
        mb.steps_done,
        mb.steps_done as i64 - ma.steps_done as i64
    );
    for (name, x, y) in [
        ("train loss", ma.train_loss, mb.train_loss),
        ("train accuracy", ma.train_accuracy, mb.train_accuracy),
        ("test loss", ma.test_loss, mb.test_loss),
        ("test accuracy", ma.test_accuracy, mb.test_accuracy),
        ("wall s", Some(ma.wall_s), Some(mb.wall_s)),
    ] {
        let delta = x.zip(y).map(|(x, y)| y - x);
        let _ = writeln!(
            s,
            "{name:<16} {:>12} {:>12} {:>12}",
            sci(x),
            sci(y),
            sci(delta)
        );
    }
    let _ = writeln!(
        s,
        "\n{:<8} {:>10} {:>10}  {:>10} {:>10}  {:>10} {:>10}  {:>10} {:>10}",
        "layer", "|δ|₀ A", "|δ|₀ B", "|δ| A", "|δ| B", "|∂W|₀ A", "|∂W|₀ B", "|∂W| A", "|∂W| B"
    );
    for i in 0..a.layers.len().max(b.layers.len()) {
        let (la, lb) = (a.layers.get(i), b.layers.get(i));
        let name = la.or(lb).map_or("", |l| l.name.as_str());
        let f = |l: Option<&super::LayerProfile>, g: fn(&super::LayerProfile) -> Option<f64>| {
            sci(l.and_then(g))
        };
        let _ = writeln!(
            s,
            "{:<8} {:>10} {:>10}  {:>10} {:>10}  {:>10} {:>10}  {:>10} {:>10}",
            name,
            f(la, |l| l.delta_first),
            f(lb, |l| l.delta_first),
            f(la, |l| l.delta_last),
            f(lb, |l| l.delta_last),
            f(la, |l| l.grad_w_first),
            f(lb, |l| l.grad_w_first),
            f(la, |l| l.grad_w_last),
            f(lb, |l| l.grad_w_last),
        );
    }
    s
}

/// `ledger verify`.
pub fn verify(r: &VerifyReport, head: Option<&str>) -> String {
    let mut s = String::new();
    if r.ok() {
        let _ = write!(
            s,
            "ok: {} entries, {} objects, every hash recomputed, chain intact",
            r.entries, r.objects
        );
        if let Some(h) = head {
            let _ = write!(s, ", extends the published head {h}");
        }
        let _ = writeln!(
            s,
            "\nhead {}",
            r.head.as_deref().unwrap_or("(empty ledger)")
        );
        return s;
    }
    let _ = writeln!(
        s,
        "FAILED: {} problem(s) in {} entries",
        r.problems.len(),
        r.entries
    );
    if let Some(first) = r.first() {
        let _ = writeln!(s, "first: {first}");
    }
    for p in r.problems.iter().skip(1) {
        let _ = writeln!(s, "  also: {p}");
    }
    s
}

/// `gradlab replay`: the verdict and what else differed.
pub fn replay(r: &ReplayReport) -> String {
    let o = &r.original;
    let mut s = match &r.verdict.first {
        None => format!(
            "EXACT: entry {} ({}) reproduced bit for bit: trace {} and weights {}\n",
            o.seq,
            o.experiment,
            &o.trace.hash[..12],
            &o.weights.hash[..12]
        ),
        Some(d) if r.verdict.result == VerdictKind::Close => format!(
            "CLOSE: entry {} ({}) reproduced to rounding, not bit for bit: first difference {}\n",
            o.seq,
            o.experiment,
            difference(d)
        ),
        Some(d) => format!(
            "DIVERGED from entry {} ({}) {}\n",
            o.seq,
            o.experiment,
            difference(d)
        ),
    };
    if let Some(a) = &r.verdict.agreement {
        s.push_str(&agreement(a));
    }
    if r.verdict.result == VerdictKind::Close && r.machine.is_none() {
        // The machine note below says why on another CPU kind; otherwise name what else differs.
        let why: Vec<&str> = r
            .warnings
            .iter()
            .map(String::as_str)
            .filter(|w| {
                w.starts_with("code identity") || w.starts_with("backend") || w.starts_with("host")
            })
            .collect();
        let why = if why.is_empty() {
            "nothing this replay can see differs (same machine kind, build and engine)".to_string()
        } else {
            why.join("; ")
        };
        let _ = writeln!(s, "  why the bits can differ: {why}");
    }
    let first = r.verdict.first.as_ref();
    if let (Some(d), Some(why)) = (first, &r.machine) {
        let size = match (d.original.parse::<f64>(), d.replayed.parse::<f64>()) {
            (Ok(a), Ok(b)) if a.is_finite() && b.is_finite() && a != b => format!(
                " The first difference is {:.1e} relative.",
                (a - b).abs() / a.abs().max(b.abs())
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  the recording machine was different: {why}.{size} Another CPU kind rounds \
             differently (a relative difference near 1e-7 at the first step is rounding); it \
             does not by itself say the record is wrong"
        );
    }
    if first.is_some_and(|d| d.quantity.starts_with("header.")) {
        s.push_str("  every probe record, the end record and the weights are identical: only the trace header differs\n");
    }
    for d in r.header_differences.iter().filter(|d| Some(*d) != first) {
        let _ = writeln!(
            s,
            "  header {} also differs: original {}, replay {}",
            &d.quantity["header.".len()..],
            d.original,
            d.replayed
        );
    }
    s
}

/// `ledger audit`.
pub fn audit(r: &AuditReport) -> String {
    let mut s = format!(
        "audit: {} of {} run entries drawn with seed {}\n{:>5}  {:<24}  {}\n",
        r.items.len(),
        r.population,
        r.seed,
        "seq",
        "experiment",
        "verdict"
    );
    for i in &r.items {
        let v = match (&i.verdict, &i.error) {
            (Some(v), _) => verdict(v),
            (None, Some(e)) => format!("ERROR {e}"),
            (None, None) => "-".into(),
        };
        let rec = i
            .recorded
            .as_ref()
            .map(|(seq, h)| format!("  (replay entry {seq} {h})"))
            .unwrap_or_default();
        let _ = writeln!(s, "{:>5}  {:<24}  {v}{rec}", i.seq, i.experiment);
    }
    let _ = writeln!(
        s,
        "{} of {} EXACT, {} CLOSE, {} DIVERGED",
        r.exact(),
        r.items.len(),
        r.count(VerdictKind::Close),
        r.count(VerdictKind::Diverged)
    );
    s
}

/// The audit as JSON: every sampled entry with its verdict (and agreement), the warnings
/// about code, engine and machine differences, and the counts.
pub fn audit_json(r: &AuditReport) -> String {
    let items: Vec<serde_json::Value> = r
        .items
        .iter()
        .map(|i| {
            serde_json::json!({
                "seq": i.seq,
                "experiment": i.experiment,
                "verdict": i.verdict,
                "error": i.error,
                "machine": i.machine,
                "warnings": i.warnings,
                "replay_entry": i.recorded.as_ref().map(|(seq, _)| seq),
            })
        })
        .collect();
    let failed = r.items.iter().filter(|i| i.verdict.is_none()).count();
    let v = serde_json::json!({
        "seed": r.seed,
        "population": r.population,
        "counts": {
            "exact": r.exact(),
            "close": r.count(VerdictKind::Close),
            "diverged": r.count(VerdictKind::Diverged),
            "failed": failed,
        },
        "items": items,
    });
    serde_json::to_string_pretty(&v).expect("the audit serializes") + "\n"
}

/// The audit as a Markdown table, for a paper's supplement.
pub fn audit_markdown(r: &AuditReport) -> String {
    let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
    let mut s = format!(
        "Audit of {} of {} run entries (sample seed {}): {} EXACT, {} CLOSE, {} DIVERGED.\n\n\
         | entry | experiment | verdict | first difference | agreement | differences |\n\
         |---|---|---|---|---|---|\n",
        r.items.len(),
        r.population,
        r.seed,
        r.exact(),
        r.count(VerdictKind::Close),
        r.count(VerdictKind::Diverged)
    );
    for i in &r.items {
        let (word, first, band) = match (&i.verdict, &i.error) {
            (Some(v), _) => (
                verdict_word(v).to_string(),
                v.first.as_ref().map(difference).unwrap_or_default(),
                v.agreement
                    .as_ref()
                    .map(|a| agreement(a).trim().to_string())
                    .unwrap_or_default(),
            ),
            (None, Some(e)) => ("ERROR".into(), e.clone(), String::new()),
            (None, None) => ("-".into(), String::new(), String::new()),
        };
        let mut diffs = i.warnings.clone();
        if let Some(m) = &i.machine
            && !diffs.iter().any(|w| w.contains(m.as_str()))
        {
            diffs.push(format!("machine: {m}"));
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            i.seq,
            cell(&i.experiment),
            word,
            cell(&first),
            cell(&band),
            cell(&diffs.join("; "))
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_differences_list_changed_and_missing_keys() {
        let a = "[train]\nlearning_rate = 0.1\nsteps = 30\n";
        let b = "[train]\nlearning_rate = 0.2\nsteps = 30\n[probe]\nevery = 1\n";
        let d = config_differences(a, b);
        assert_eq!(
            d,
            vec![
                (
                    "probe.every".to_string(),
                    "absent".to_string(),
                    "1".to_string()
                ),
                (
                    "train.learning_rate".to_string(),
                    "0.1".to_string(),
                    "0.2".to_string()
                ),
            ]
        );
    }

    #[test]
    fn differences_read_as_sentences() {
        let d = Difference {
            step: Some(3),
            quantity: "grad_w".into(),
            layer: Some("h2".into()),
            original: "0.1".into(),
            replayed: "0.2".into(),
        };
        assert_eq!(
            difference(&d),
            "at step 3: grad_w of layer h2: original 0.1, replay 0.2"
        );
    }
}
