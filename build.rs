//! Build script: captures the code identity every ledger entry records (git commit, dirty
//! flag, the uncommitted diff, rustc and Burn versions). Never fails outside a git checkout:
//! a missing value is simply recorded as unknown.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The paths whose content makes up the binary; a change anywhere else (experiments, the
/// ledger, tests, docs) does not make the build "dirty".
const CODE_PATHS: &[&str] = &["src", "build.rs", "Cargo.toml", "Cargo.lock", "data"];

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    for p in CODE_PATHS {
        println!("cargo:rerun-if-changed={p}");
    }

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = run(&root, &rustc, &["-V"])
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=GRADLAB_RUSTC_VERSION={rustc_version}");
    println!(
        "cargo:rustc-env=GRADLAB_BURN_VERSION={}",
        locked_version(&root.join("Cargo.lock"), "burn")
    );
    println!(
        "cargo:rustc-env=GRADLAB_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=GRADLAB_PROFILE={}",
        std::env::var("PROFILE").unwrap_or_default()
    );

    let mut commit = String::new();
    let mut dirty = String::new();
    let mut diff = Vec::new();
    if let Some(head) = run(&root, "git", &["rev-parse", "HEAD"]) {
        commit = head.trim().to_string();
        // Rebuild when the commit or the index moves, so the recorded identity follows them.
        for what in ["HEAD", "index"] {
            if let Some(p) = run(&root, "git", &["rev-parse", "--git-path", what]) {
                let p = absolute(&root, p.trim());
                if p.exists() {
                    println!("cargo:rerun-if-changed={}", p.display());
                }
            }
        }
        // The branch's ref is a loose file, or lives in packed-refs; a watched path that does
        // not exist would rerun this script on every build.
        if let Some(refname) = run(&root, "git", &["symbolic-ref", "-q", "HEAD"]) {
            for what in [refname.trim(), "packed-refs"] {
                if let Some(p) = run(&root, "git", &["rev-parse", "--git-path", what]) {
                    let p = absolute(&root, p.trim());
                    if p.exists() {
                        println!("cargo:rerun-if-changed={}", p.display());
                    }
                }
            }
        }
        let mut status_args = vec!["status", "--porcelain", "--untracked-files=all", "--"];
        status_args.extend(CODE_PATHS);
        let status = run(&root, "git", &status_args).unwrap_or_default();
        dirty = (!status.trim().is_empty()).to_string();
        // The diff's bytes are hashed at run time (blake3 is not a build dependency): the
        // tracked changes as a binary patch, then each untracked file's name and content.
        let mut diff_args = vec!["diff", "HEAD", "--binary", "--"];
        diff_args.extend(CODE_PATHS);
        if let Some(d) = run_bytes(&root, "git", &diff_args) {
            diff = d;
        }
        let mut untracked_args = vec!["ls-files", "--others", "--exclude-standard", "-z", "--"];
        untracked_args.extend(CODE_PATHS);
        if let Some(list) = run_bytes(&root, "git", &untracked_args) {
            for name in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
                let name = String::from_utf8_lossy(name).into_owned();
                diff.extend_from_slice(format!("untracked {name}\n").as_bytes());
                diff.extend(std::fs::read(root.join(&name)).unwrap_or_default());
            }
        }
    }
    println!("cargo:rustc-env=GRADLAB_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=GRADLAB_GIT_DIRTY={dirty}");
    std::fs::write(out.join("git-diff.bin"), diff).expect("OUT_DIR is writable");
}

fn absolute(root: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

fn run_bytes(dir: &Path, program: &str, args: &[&str]) -> Option<Vec<u8>> {
    // `git status` would otherwise refresh the index it is watched through, rerunning this
    // script on every build.
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Option<String> {
    run_bytes(dir, program, args).and_then(|b| String::from_utf8(b).ok())
}

/// The version of `name` pinned in Cargo.lock (empty when absent).
fn locked_version(lock: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"")
            && let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
        {
            return v.trim_matches('"').to_string();
        }
    }
    String::new()
}
