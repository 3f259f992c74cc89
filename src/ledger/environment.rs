//! What built this binary and where it runs: the code identity (from `build.rs`) and the host.

use serde::{Deserialize, Serialize};

/// The code that produced a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeIdentity {
    /// `CARGO_PKG_VERSION` of gradlab.
    pub crate_version: String,
    /// `git rev-parse HEAD` at build time; null when not built from a git checkout.
    pub git_commit: Option<String>,
    /// Whether `src/`, `build.rs`, `Cargo.toml`, `Cargo.lock` or `data/` differed from the
    /// commit (tracked changes or untracked files); null outside git.
    pub git_dirty: Option<bool>,
    /// blake3 of the uncommitted changes to those paths (see `ledger/README.md`); null when
    /// the build was clean or outside git.
    pub git_diff_hash: Option<String>,
    /// blake3 of the `Cargo.lock` the binary was built with.
    pub cargo_lock_hash: String,
    /// `rustc -V`.
    pub rustc: String,
    /// The Burn version pinned in `Cargo.lock`.
    pub burn: String,
    /// Burn features and the enabled gradlab features: these change the arithmetic.
    pub features: Vec<String>,
    /// Target triple and cargo profile.
    pub target: String,
    pub profile: String,
}

/// The machine a run executed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// `std::env::consts::OS`, e.g. `linux`.
    pub os: String,
    /// `std::env::consts::ARCH`, e.g. `x86_64`.
    pub arch: String,
    /// The CPU model name (`/proc/cpuinfo` on Linux), or `unknown`.
    pub cpu: String,
}

const CARGO_LOCK: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"));
const GIT_DIFF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/git-diff.bin"));

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The identity of the running binary.
pub fn code_identity() -> CodeIdentity {
    let dirty = match env!("GRADLAB_GIT_DIRTY") {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    let mut features = vec![
        "burn/std",
        "burn/autodiff",
        "burn/optim",
        "burn/flex",
        "burn/simd",
        "burn/rayon",
    ];
    if cfg!(feature = "wgpu") {
        features.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        features.push("cuda");
    }
    CodeIdentity {
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: non_empty(env!("GRADLAB_GIT_COMMIT")),
        git_dirty: dirty,
        git_diff_hash: (dirty == Some(true)).then(|| blake3::hash(GIT_DIFF).to_hex().to_string()),
        cargo_lock_hash: blake3::hash(CARGO_LOCK).to_hex().to_string(),
        rustc: env!("GRADLAB_RUSTC_VERSION").to_string(),
        burn: env!("GRADLAB_BURN_VERSION").to_string(),
        features: features.into_iter().map(String::from).collect(),
        target: env!("GRADLAB_TARGET").to_string(),
        profile: env!("GRADLAB_PROFILE").to_string(),
    }
}

/// The current host.
pub fn host() -> Host {
    Host {
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        cpu: cpu_model().unwrap_or_else(|| "unknown".into()),
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| matches!(k.trim(), "model name" | "Model" | "cpu model" | "Processor"))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|v| !v.is_empty())
}

impl CodeIdentity {
    /// The fields in which `other` differs from `self`, as `(field, self, other)`.
    pub fn differences(&self, other: &CodeIdentity) -> Vec<(&'static str, String, String)> {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "unknown".into());
        let mut out = Vec::new();
        let mut cmp = |name, a: String, b: String| {
            if a != b {
                out.push((name, a, b));
            }
        };
        cmp(
            "crate_version",
            self.crate_version.clone(),
            other.crate_version.clone(),
        );
        cmp("git_commit", opt(&self.git_commit), opt(&other.git_commit));
        cmp(
            "git_dirty",
            self.git_dirty.map_or("unknown".into(), |d| d.to_string()),
            other.git_dirty.map_or("unknown".into(), |d| d.to_string()),
        );
        cmp(
            "git_diff_hash",
            opt(&self.git_diff_hash),
            opt(&other.git_diff_hash),
        );
        cmp(
            "cargo_lock_hash",
            self.cargo_lock_hash.clone(),
            other.cargo_lock_hash.clone(),
        );
        cmp("rustc", self.rustc.clone(), other.rustc.clone());
        cmp("burn", self.burn.clone(), other.burn.clone());
        cmp(
            "features",
            self.features.join(","),
            other.features.join(","),
        );
        cmp("target", self.target.clone(), other.target.clone());
        cmp("profile", self.profile.clone(), other.profile.clone());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_filled_in() {
        let id = code_identity();
        assert_eq!(id.cargo_lock_hash.len(), 64);
        assert!(id.rustc.starts_with("rustc "), "{}", id.rustc);
        assert!(id.burn.starts_with("0."), "{}", id.burn);
        assert!(id.differences(&id).is_empty());
        let mut other = id.clone();
        other.rustc = "rustc 0.0.0".into();
        assert_eq!(id.differences(&other).len(), 1);
    }
}
