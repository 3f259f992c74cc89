//! How a rerun is compared with its record: EXACT when trace and weights hash the same;
//! otherwise the first differing number (probe and end records, then the weights, then the
//! header), how far the two traces agree, and whether that is CLOSE — a first difference at
//! rounding level and the run's conclusions unchanged — or DIVERGED.

use super::entry::{Agreement, Difference, Entry, Verdict, VerdictKind};
use crate::train::Outcome;
use serde_json::Value;

/// Compares a rerun with the original's stored trace (and weights, when stored).
/// Returns the verdict and every differing header field. The first difference is sought in
/// the probe and end records, then the weights, and only then the header: a header-only
/// difference means every number matched and only the recorded circumstances differ.
pub fn compare(
    original: &Entry,
    trace: &[u8],
    weights: Option<&[u8]>,
    rerun: &Outcome,
    rerun_trace: &[u8],
) -> (Verdict, Vec<Difference>) {
    let rerun_weights = &rerun.weights[..];
    let rerun_weights_hash = rerun.weights_hash();
    let exact = trace == rerun_trace && original.weights.hash == rerun_weights_hash;
    let a: Vec<&[u8]> = trace
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let b: Vec<&[u8]> = rerun_trace
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let parse = |l: Option<&&[u8]>| l.and_then(|l| serde_json::from_slice::<Value>(l).ok());
    let (ha, hb) = (parse(a.first()), parse(b.first()));
    let header_differences = header_diffs(ha.as_ref(), hb.as_ref());
    if exact {
        return (
            Verdict {
                result: VerdictKind::Exact,
                first: None,
                agreement: None,
            },
            header_differences,
        );
    }
    let layers: Vec<String> = ha
        .as_ref()
        .and_then(|h| h.get("layers"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|n| n.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let first = (1..a.len().max(b.len()))
        .find_map(|i| record_diff(a.get(i).copied(), b.get(i).copied(), &layers))
        .or_else(|| {
            (original.weights.hash != rerun_weights_hash)
                .then(|| weights_diff(&original.weights.hash, weights, rerun_weights))
        })
        .or_else(|| header_differences.first().cloned())
        .unwrap_or_else(|| weights_diff(&original.weights.hash, weights, rerun_weights));
    let agreement = agreement(&a, &b, &first, original, rerun);
    let close = agreement.first_relative.is_some_and(|r| r <= CLOSE_FIRST)
        && conclusions_hold(original, rerun);
    (
        Verdict {
            result: if close {
                VerdictKind::Close
            } else {
                VerdictKind::Diverged
            },
            first: Some(first),
            agreement: Some(Box::new(agreement)),
        },
        header_differences,
    )
}

/// The largest relative size of a first difference that CLOSE accepts: 16 float32 ulps
/// (16 · 2⁻²³ ≈ 1.9e-6). Another CPU kind's kernels round differently by about one ulp per
/// operation; a changed setting or a bug moves the first difference far beyond this.
pub const CLOSE_FIRST: f64 = 16.0 * f32::EPSILON as f64;
/// How far the final losses may move for a CLOSE verdict (relative, or 1e-4 absolute).
pub const CLOSE_LOSS: f64 = 0.05;
/// How far the final accuracies may move for a CLOSE verdict (absolute).
pub const CLOSE_ACCURACY: f64 = 0.02;

/// |a − b| / max(|a|, |b|): 0 when equal, infinite when one is not a number.
fn relative(a: Option<f64>, b: Option<f64>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) if a == b => 0.0,
        (Some(a), Some(b)) if a.is_finite() && b.is_finite() => {
            (a - b).abs() / a.abs().max(b.abs())
        }
        (None, None) => 0.0,
        _ => f64::INFINITY,
    }
}

/// The largest relative difference between the numbers of two records of the same shape
/// (infinite where the shapes or any non-number differ).
fn max_relative(a: &Value, b: &Value) -> f64 {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return f64::INFINITY;
            }
            x.iter().fold(0.0, |m, (k, v)| {
                m.max(y.get(k).map_or(f64::INFINITY, |w| max_relative(v, w)))
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return f64::INFINITY;
            }
            x.iter()
                .zip(y)
                .fold(0.0, |m, (v, w)| m.max(max_relative(v, w)))
        }
        (Value::Number(x), Value::Number(y)) => relative(x.as_f64(), y.as_f64()),
        (x, y) if x == y => 0.0,
        _ => f64::INFINITY,
    }
}

/// How far two traces agree probe by probe, the first difference's size, and the recorded
/// conclusions side by side.
fn agreement(
    a: &[&[u8]],
    b: &[&[u8]],
    first: &Difference,
    original: &Entry,
    rerun: &Outcome,
) -> Agreement {
    let parse = |l: &[u8]| serde_json::from_slice::<Value>(l).ok();
    let is_probe = |v: &Value| v.get("type").and_then(Value::as_str) == Some("probe");
    let (mut identical_to, mut within_1e6_to, mut within_1pct_to) = (None, None, None);
    let (mut identical, mut tight, mut loose) = (true, true, true);
    for (x, y) in a.iter().zip(b).skip(1) {
        let (Some(vx), Some(vy)) = (parse(x), parse(y)) else {
            break;
        };
        if !is_probe(&vx) {
            continue;
        }
        let step = vx.get("step").and_then(Value::as_u64).map(|s| s as usize);
        let r = if x == y { 0.0 } else { max_relative(&vx, &vy) };
        identical &= x == y;
        tight &= r <= 1e-6;
        loose &= r <= 1e-2;
        if !loose {
            break;
        }
        if identical {
            identical_to = step;
        }
        if tight {
            within_1e6_to = step;
        }
        within_1pct_to = step;
    }
    let number = |t: &str| t.parse::<f64>().ok();
    let first_relative = if first.quantity == "record" || first.quantity.starts_with("header.") {
        None
    } else {
        Some(relative(number(&first.original), number(&first.replayed))).filter(|r| r.is_finite())
    };
    let replayed = crate::ledger::summarize(rerun)
        .ok()
        .map(|s| (s.metrics, s.diverged_at));
    let text = |v: Option<f64>| v.map_or_else(|| "null".to_string(), |x| x.to_string());
    let m = &original.metrics;
    let mut conclusions = vec![(
        "status".to_string(),
        original.status.name().to_string(),
        rerun.end.status.name().to_string(),
    )];
    conclusions.push((
        "diverged_at".into(),
        text(original.diverged_at.map(|s| s as f64)),
        text(rerun.end.diverged_at.map(|s| s as f64)),
    ));
    if let Some((r, _)) = &replayed {
        for (name, a, b) in [
            ("train_loss", m.train_loss, r.train_loss),
            ("test_loss", m.test_loss, r.test_loss),
            ("test_accuracy", m.test_accuracy, r.test_accuracy),
        ] {
            if a.is_some() || b.is_some() {
                conclusions.push((name.into(), text(a), text(b)));
            }
        }
    }
    Agreement {
        identical_to,
        within_1e6_to,
        within_1pct_to,
        first_relative,
        conclusions,
    }
}

/// Whether the rerun reaches the original's recorded conclusions: the same status, steps
/// and diverged step, and — for a run that completed — final losses within [`CLOSE_LOSS`]
/// and accuracies within [`CLOSE_ACCURACY`].
pub fn conclusions_hold(original: &Entry, rerun: &Outcome) -> bool {
    let end = &rerun.end;
    if end.status != original.status
        || end.diverged_at != original.diverged_at
        || end.steps_done != original.metrics.steps_done
    {
        return false;
    }
    if end.status != crate::train::Status::Completed {
        return true;
    }
    let Ok(summary) = crate::ledger::summarize(rerun) else {
        return false;
    };
    let (a, b) = (&original.metrics, &summary.metrics);
    let loss = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() <= (CLOSE_LOSS * x.abs().max(y.abs())).max(1e-4),
        (None, None) => true,
        _ => false,
    };
    let accuracy = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() <= CLOSE_ACCURACY,
        (None, None) => true,
        _ => false,
    };
    loss(a.train_loss, b.train_loss)
        && loss(a.test_loss, b.test_loss)
        && accuracy(a.train_accuracy, b.train_accuracy)
        && accuracy(a.test_accuracy, b.test_accuracy)
}

fn header_diffs(a: Option<&Value>, b: Option<&Value>) -> Vec<Difference> {
    let empty = serde_json::Map::new();
    let (a, b) = (
        a.and_then(Value::as_object).unwrap_or(&empty),
        b.and_then(Value::as_object).unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = a.keys().collect();
    keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| Difference {
            step: None,
            quantity: format!("header.{k}"),
            layer: None,
            original: show(a.get(k)),
            replayed: show(b.get(k)),
        })
        .collect()
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "absent".to_string(), Value::to_string)
}

/// One segment of a path into a JSON record.
enum Seg {
    Key(String),
    Index(usize),
}

/// The first leaf where two JSON values differ, in the original's field order.
fn first_leaf(
    a: Option<&Value>,
    b: Option<&Value>,
    path: &mut Vec<Seg>,
) -> Option<(String, String)> {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().collect();
            keys.extend(y.keys().filter(|k| !x.contains_key(*k)));
            for k in keys {
                path.push(Seg::Key(k.clone()));
                if let Some(d) = first_leaf(x.get(k), y.get(k), path) {
                    return Some(d);
                }
                path.pop();
            }
            None
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                path.push(Seg::Index(i));
                if let Some(d) = first_leaf(x.get(i), y.get(i), path) {
                    return Some(d);
                }
                path.pop();
            }
            None
        }
        (x, y) if x == y => None,
        (x, y) => Some((show(x), show(y))),
    }
}

/// Names a path: per-layer quantities become (field, layer label).
fn name_path(path: &[Seg], layers: &[String]) -> (String, Option<String>) {
    let (layer, rest) = match path {
        [Seg::Key(k), Seg::Index(i), rest @ ..] if k == "layers" && !rest.is_empty() => (
            Some(
                layers
                    .get(*i)
                    .cloned()
                    .unwrap_or_else(|| format!("layer {i}")),
            ),
            rest,
        ),
        _ => (None, path),
    };
    let mut q = String::new();
    for seg in rest {
        match seg {
            Seg::Key(k) => {
                if !q.is_empty() {
                    q.push('.');
                }
                q.push_str(k);
            }
            Seg::Index(i) => q.push_str(&format!("[{i}]")),
        }
    }
    (q, layer)
}

fn describe(v: &Value) -> String {
    match v.get("type").and_then(Value::as_str) {
        Some("probe") => format!("probe at step {}", show(v.get("step"))),
        Some("end") => format!(
            "end ({})",
            v.get("status").and_then(Value::as_str).unwrap_or("?")
        ),
        Some(other) => other.to_string(),
        None => "unreadable record".into(),
    }
}

/// The difference between the i-th records of two traces, if any.
fn record_diff(a: Option<&[u8]>, b: Option<&[u8]>, layers: &[String]) -> Option<Difference> {
    if a == b {
        return None;
    }
    let parse = |l: Option<&[u8]>| l.and_then(|l| serde_json::from_slice::<Value>(l).ok());
    let (va, vb) = (parse(a), parse(b));
    let kind = |v: &Option<Value>| {
        v.as_ref()
            .and_then(|v| v.get("type"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let step = |v: &Option<Value>| {
        v.as_ref()
            .and_then(|v| v.get("step"))
            .and_then(Value::as_u64)
            .map(|s| s as usize)
    };
    let (ka, kb) = (kind(&va), kind(&vb));
    if ka.is_some() && ka == kb {
        let mut path = Vec::new();
        let at = step(&va);
        let prefix = if ka.as_deref() == Some("end") {
            "end."
        } else {
            ""
        };
        return Some(match first_leaf(va.as_ref(), vb.as_ref(), &mut path) {
            Some((original, replayed)) => {
                let (q, layer) = name_path(&path, layers);
                Difference {
                    step: at,
                    quantity: format!("{prefix}{q}"),
                    layer,
                    original,
                    replayed,
                }
            }
            // Equal numbers spelled differently: quote the records themselves.
            None => Difference {
                step: at,
                quantity: "record".into(),
                layer: None,
                original: String::from_utf8_lossy(a.unwrap_or_default()).into_owned(),
                replayed: String::from_utf8_lossy(b.unwrap_or_default()).into_owned(),
            },
        });
    }
    let text = |v: &Option<Value>| v.as_ref().map_or_else(|| "absent".to_string(), describe);
    Some(Difference {
        step: step(&va).or(step(&vb)),
        quantity: "record".into(),
        layer: None,
        original: text(&va),
        replayed: text(&vb),
    })
}

/// Parameters of the canonical weights layout: (header line, f32 values).
fn parameters(bytes: &[u8]) -> Option<Vec<(String, Vec<f32>)>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let header = std::str::from_utf8(&rest[..nl]).ok()?.to_string();
        let dims = header.rsplit(' ').next()?;
        let count: usize = dims
            .split('x')
            .map(|d| d.parse::<usize>().ok())
            .product::<Option<usize>>()?;
        let body = rest.get(nl + 1..nl + 1 + 4 * count)?;
        let values = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push((header, values));
        rest = &rest[nl + 1 + 4 * count..];
    }
    Some(out)
}

/// The first differing weight, or the two hashes when the original weights are not stored.
fn weights_diff(original_hash: &str, weights: Option<&[u8]>, replayed: &[u8]) -> Difference {
    let hashes = || Difference {
        step: None,
        quantity: "weights".into(),
        layer: None,
        original: original_hash.to_string(),
        replayed: super::entry::hex_hash(replayed),
    };
    let (Some(a), Some(b)) = (weights.and_then(parameters), parameters(replayed)) else {
        return hashes();
    };
    for i in 0..a.len().max(b.len()) {
        let (pa, pb) = (a.get(i), b.get(i));
        let name = pa
            .or(pb)
            .map(|p| p.0.split(' ').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let layer = name.split('.').next().map(str::to_string);
        match (pa, pb) {
            (Some((ha, va)), Some((hb, vb))) if ha == hb => {
                if let Some(j) = (0..va.len()).find(|&j| va[j].to_bits() != vb[j].to_bits()) {
                    return Difference {
                        step: None,
                        quantity: format!("weights.{name}[{j}]"),
                        layer,
                        original: va[j].to_string(),
                        replayed: vb[j].to_string(),
                    };
                }
            }
            _ => {
                return Difference {
                    step: None,
                    quantity: "weights.layout".into(),
                    layer,
                    original: pa.map_or("absent".into(), |p| p.0.clone()),
                    replayed: pb.map_or("absent".into(), |p| p.0.clone()),
                };
            }
        }
    }
    hashes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Vec<String> {
        vec!["h1".into(), "out".into()]
    }

    #[test]
    fn first_difference_names_step_layer_and_quantity() {
        let a = br#"{"type":"probe","step":4,"loss":1.0,"layers":[{"delta":1.0,"grad_w":2.0},{"delta":3.0,"grad_w":4.0}]}"#;
        let b = br#"{"type":"probe","step":4,"loss":1.0,"layers":[{"delta":1.0,"grad_w":2.0},{"delta":3.0,"grad_w":4.5}]}"#;
        let d = record_diff(Some(a), Some(b), &layers()).unwrap();
        assert_eq!(
            (d.step, d.quantity.as_str(), d.layer.as_deref()),
            (Some(4), "grad_w", Some("out"))
        );
        assert_eq!((d.original.as_str(), d.replayed.as_str()), ("4.0", "4.5"));
        assert!(record_diff(Some(a), Some(a), &layers()).is_none());
    }

    #[test]
    fn a_shorter_trace_differs_at_the_missing_record() {
        let a = br#"{"type":"probe","step":7,"loss":1.0,"layers":[]}"#;
        let b = br#"{"type":"end","status":"interrupted","steps_done":7}"#;
        let d = record_diff(Some(a), Some(b), &layers()).unwrap();
        assert_eq!((d.step, d.quantity.as_str()), (Some(7), "record"));
        assert_eq!(d.replayed, "end (interrupted)");
        let d = record_diff(Some(a), None, &layers()).unwrap();
        assert_eq!(d.replayed, "absent");
    }

    #[test]
    fn test_metrics_and_end_fields_are_named() {
        let a = br#"{"type":"probe","step":2,"loss":1.0,"layers":[],"test":{"loss":0.5}}"#;
        let b = br#"{"type":"probe","step":2,"loss":1.0,"layers":[]}"#;
        let d = record_diff(Some(a), Some(b), &layers()).unwrap();
        assert_eq!(
            (d.quantity.as_str(), d.replayed.as_str()),
            ("test", "absent")
        );
        let a = br#"{"type":"end","status":"completed","steps_done":9}"#;
        let b = br#"{"type":"end","status":"completed","steps_done":8}"#;
        let d = record_diff(Some(a), Some(b), &layers()).unwrap();
        assert_eq!((d.step, d.quantity.as_str()), (None, "end.steps_done"));
    }

    #[test]
    fn weights_layout_parses_and_locates_a_difference() {
        let w = |v: f32| {
            crate::train::weights_bytes(&[("h1.weight".into(), vec![2, 2], vec![1.0, 2.0, 3.0, v])])
        };
        let p = parameters(&w(4.0)).unwrap();
        assert_eq!(
            p,
            vec![("h1.weight f32 2x2".to_string(), vec![1.0, 2.0, 3.0, 4.0])]
        );
        assert!(parameters(&w(4.0)[..w(4.0).len() - 1]).is_none());
        let d = weights_diff("h", Some(&w(4.0)), &w(4.5));
        assert_eq!(
            (d.quantity.as_str(), d.layer.as_deref()),
            ("weights.h1.weight[3]", Some("h1"))
        );
        assert_eq!((d.original.as_str(), d.replayed.as_str()), ("4", "4.5"));
        let d = weights_diff("h", None, &w(4.5));
        assert_eq!((d.quantity.as_str(), d.original.as_str()), ("weights", "h"));
    }
}
