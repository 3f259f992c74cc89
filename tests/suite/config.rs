//! Experiment files through the real binary: every valid fixture passes `check`, every
//! invalid one fails with exactly the message its first line promises and writes nothing.

use super::common::{gradlab, root, write_experiment};
use std::path::PathBuf;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "fixtures/{kind} is missing files");
    files
}

#[test]
fn valid_fixtures_and_shipped_experiments_check() {
    let mut files = fixtures("valid");
    files.extend(
        std::fs::read_dir(root().join("experiments"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml")),
    );
    for f in files {
        let out = gradlab(&root()).arg("check").arg(&f).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let hash = stdout.split_whitespace().next().unwrap();
        assert_eq!(hash.len(), 64, "{stdout}");
    }
}

#[test]
fn invalid_fixtures_fail_with_their_promised_message_and_write_nothing() {
    for f in fixtures("invalid") {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks its '# expect: ' line", f.display()))
            .replace("{file}", &f.display().to_string());
        let dir = tempfile::tempdir().unwrap();
        for args in [vec!["check"], vec!["run", "--headless"]] {
            let out = gradlab(dir.path()).args(&args).arg(&f).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{} {args:?}", f.display());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(expect.trim_end()),
                "{}:\nwanted: {expect}\ngot:    {stderr}",
                f.display()
            );
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(
            left.is_empty(),
            "{} left files behind: {left:?}",
            f.display()
        );
    }
}

#[test]
fn canonical_form_is_stable_under_cosmetic_changes() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_experiment(
        dir.path(),
        "a",
        "[experiment]\nname = \"n\"\n[train]\nlearning_rate = 0.01\n",
    );
    let b = write_experiment(
        dir.path(),
        "b",
        "# a comment\n[train]\nlearning_rate = 1e-2  # spelled differently\nsteps = 500\n\n[experiment]\nname = \"n\"\n",
    );
    let c = write_experiment(
        dir.path(),
        "c",
        "[experiment]\nname = \"n\"\n[train]\nlearning_rate = 0.02\n",
    );
    let hash = |p: &PathBuf| {
        let out = gradlab(dir.path()).arg("check").arg(p).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(hash(&a), hash(&b));
    assert_ne!(hash(&a), hash(&c));
    let canon = gradlab(dir.path())
        .args(["check", "--canonical"])
        .arg(&b)
        .output()
        .unwrap();
    let text = String::from_utf8(canon.stdout).unwrap();
    assert!(text.contains("learning_rate = 0.01\n"), "{text}");
    assert!(
        text.contains("[probe]\nevery = 1\n"),
        "defaults are spelled out: {text}"
    );
    // The canonical form is itself a valid file with the same hash.
    let d = write_experiment(dir.path(), "d", &text);
    assert_eq!(hash(&a), hash(&d));
}
