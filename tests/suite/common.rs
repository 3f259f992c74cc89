//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Set to a command line (`qemu-x86_64 -cpu Nehalem`) to run every `gradlab` the tests start
/// under it: the binary then sees the emulated CPU's features and takes its kernel paths,
/// which is how `make test-cpus` proves the suite and the replays hold on other CPU kinds.
pub const RUNNER_ENV: &str = "GRADLAB_TEST_RUNNER";

/// The program and leading arguments that start the real `gradlab` binary: the binary
/// itself, or the runner of [`RUNNER_ENV`] followed by it.
pub fn gradlab_argv() -> Vec<String> {
    let bin = env!("CARGO_BIN_EXE_gradlab").to_string();
    let mut argv: Vec<String> = std::env::var(RUNNER_ENV)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    argv.push(bin);
    argv
}

/// A plain `std` command that starts the real binary (under the runner, if one is set).
pub fn gradlab_std() -> std::process::Command {
    let argv = gradlab_argv();
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd
}

/// A command running the real `gradlab` binary in `dir`, with its ledger in `dir/ledger`.
pub fn gradlab(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::from_std(gradlab_std());
    cmd.current_dir(dir)
        .env("GRADLAB_LEDGER", dir.join("ledger"))
        .env_remove("NO_COLOR");
    cmd
}

/// Writes an experiment file into `dir` and returns its path.
pub fn write_experiment(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, body).unwrap();
    path
}

/// A small, fast experiment: a few layers on spirals.
pub fn small_experiment(name: &str, extra: &str) -> String {
    format!(
        "[experiment]\nname = \"{name}\"\nseed = 3\n\n[data]\ntask = \"spirals\"\ntrain_size = 128\ntest_size = 64\n\n[model]\ndepth = 4\nwidth = 16\n\n[train]\nsteps = 30\nbatch_size = 32\nlearning_rate = 0.1\n{extra}"
    )
}

/// Copies a folder tree (a ledger), leaving out lock files.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != ".lock" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
