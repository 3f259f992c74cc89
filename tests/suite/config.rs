//! Experiment files through the real binary: the shipped ones validate, a bad one is
//! rejected with its line, and a rejected file never reaches the ledger.

use super::common::{gradlab, root, small_experiment, write_experiment};

#[test]
fn shipped_experiments_validate() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = std::fs::read_dir(root().join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    assert!(!files.is_empty());
    let out = gradlab(dir.path())
        .arg("check")
        .args(&files)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), files.len());
}

#[test]
fn a_misspelled_key_is_rejected_with_its_line_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_experiment(
        dir.path(),
        "bad",
        &small_experiment("bad", "lerning_rate = 0.1\n"),
    );
    let out = gradlab(dir.path())
        .arg("check")
        .arg(&bad)
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    assert!(String::from_utf8_lossy(&out).contains("unknown field `lerning_rate`"));
    let out = gradlab(dir.path())
        .arg("run")
        .arg(&bad)
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    assert!(String::from_utf8_lossy(&out).contains("bad.toml:"));
    assert!(
        !dir.path().join("ledger").exists(),
        "a config error happens before any run"
    );
}
