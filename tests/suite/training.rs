//! Headless training through the real binary: the summary, and byte-identical traces from
//! equal configs (what makes exact replay possible).

use super::common::{gradlab, small_experiment, write_experiment};

#[test]
fn equal_configs_give_byte_identical_traces() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), "small", &small_experiment("small", ""));
    let mut traces = Vec::new();
    for name in ["a.jsonl", "b.jsonl"] {
        let out = gradlab(dir.path())
            .args(["run", "--headless", "--no-ledger", "--trace", name])
            .arg(&file)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("small: completed after 30 steps"),
            "{text}"
        );
        traces.push(std::fs::read(dir.path().join(name)).unwrap());
    }
    assert_eq!(traces[0], traces[1]);
    assert_eq!(
        traces[0].iter().filter(|&&b| b == b'\n').count(),
        1 + 30 + 1,
        "header, 30 probes, end"
    );
}
