//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command running the real `gradlab` binary in `dir`, with its ledger in `dir/ledger`.
pub fn gradlab(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_gradlab"));
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
