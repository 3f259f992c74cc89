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
    /// The CPU model name (the CPU's brand string on x86-64, else `/proc/cpuinfo`), or
    /// `unknown`.
    pub cpu: String,
    /// The instruction-set extensions that decide which kernels run (see [`CPU_FEATURES`]),
    /// as the CPU reports them to this process. Absent on entries recorded before gradlab
    /// kept them; left out of the line then, so those entries keep their exact bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_features: Option<Vec<String>>,
}

/// The CPU features probed for [`Host::cpu_features`]: on x86-64 the ones that define the
/// x86-64-v2/v3/v4 levels that the `gemm` and Burn (`pulp`/`macerator`) kernels and our own
/// AVX2 loops dispatch on; on aarch64 NEON and the extensions its kernels look for. Two
/// machines with the same list take the same kernel paths; the model name does not say that
/// (one "AMD EPYC" is AVX2-only, another has AVX-512).
#[cfg(target_arch = "x86_64")]
pub const CPU_FEATURES: &[&str] = &[
    "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2",
    "lzcnt", "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl",
];
#[cfg(target_arch = "aarch64")]
pub const CPU_FEATURES: &[&str] = &["neon", "fp16", "dotprod", "sve"];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const CPU_FEATURES: &[&str] = &[];

/// The features of [`CPU_FEATURES`] this CPU has, in that order. Asked of the CPU itself
/// (cpuid), not `/proc/cpuinfo`: that is what the kernels' run-time dispatch sees, also
/// under an emulator that reports another CPU than the host's.
pub fn cpu_features() -> Vec<String> {
    CPU_FEATURES
        .iter()
        .filter(|f| has_feature(f))
        .map(|f| f.to_string())
        .collect()
}

fn has_feature(name: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as x;
        match name {
            "sse3" => x!("sse3"),
            "ssse3" => x!("ssse3"),
            "sse4.1" => x!("sse4.1"),
            "sse4.2" => x!("sse4.2"),
            "popcnt" => x!("popcnt"),
            "avx" => x!("avx"),
            "avx2" => x!("avx2"),
            "fma" => x!("fma"),
            "f16c" => x!("f16c"),
            "bmi1" => x!("bmi1"),
            "bmi2" => x!("bmi2"),
            "lzcnt" => x!("lzcnt"),
            "avx512f" => x!("avx512f"),
            "avx512bw" => x!("avx512bw"),
            "avx512cd" => x!("avx512cd"),
            "avx512dq" => x!("avx512dq"),
            "avx512vl" => x!("avx512vl"),
            _ => false,
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as a;
        match name {
            "neon" => a!("neon"),
            "fp16" => a!("fp16"),
            "dotprod" => a!("dotprod"),
            "sve" => a!("sve"),
            _ => false,
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = name;
        false
    }
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
    // Not arithmetic, but an entry should say it was made by a test build.
    if cfg!(feature = "fault-injection") {
        features.push("fault-injection");
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
        cpu_features: Some(cpu_features()),
    }
}

/// The CPU's own brand string (cpuid leaves 0x8000_0002–4) on x86-64: what this process
/// runs on also under an emulator, where `/proc/cpuinfo` describes the host instead; on a
/// real machine the kernel's `model name` is this same string.
#[cfg(target_arch = "x86_64")]
fn cpu_brand() -> Option<String> {
    use std::arch::x86_64::__cpuid;
    // SAFETY: cpuid exists on every x86-64 CPU; leaf 0x8000_0000 says which extended
    // leaves exist before any of them is read.
    #[allow(unused_unsafe)]
    let brand = unsafe {
        if __cpuid(0x8000_0000).eax < 0x8000_0004 {
            return None;
        }
        let mut bytes = Vec::with_capacity(48);
        for leaf in 0x8000_0002u32..=0x8000_0004 {
            let r = __cpuid(leaf);
            for word in [r.eax, r.ebx, r.ecx, r.edx] {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
        }
        bytes
    };
    let text = String::from_utf8_lossy(&brand);
    let name = text
        .trim_matches(char::from(0))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_brand() -> Option<String> {
    None
}

fn cpu_model() -> Option<String> {
    if let Some(brand) = cpu_brand() {
        return Some(brand);
    }
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| matches!(k.trim(), "model name" | "Model" | "cpu model" | "Processor"))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|v| !v.is_empty())
}

impl Host {
    /// The recorded CPU features, comma-separated, or `not recorded`.
    pub fn features_text(&self) -> String {
        self.cpu_features
            .as_ref()
            .map_or_else(|| "not recorded".into(), |f| list(f))
    }

    /// Why the two machines may take different kernel paths, in words; None when the OS,
    /// architecture and recorded CPU features agree. `self` is the recording machine.
    /// An entry without recorded features is compared by its CPU model name and always
    /// noted, since the name alone does not fix the instruction set.
    pub fn kernel_difference(&self, here: &Host) -> Option<String> {
        if (self.os.as_str(), self.arch.as_str()) != (here.os.as_str(), here.arch.as_str()) {
            return Some(format!(
                "the entry ran on {} {}, this is {} {}",
                self.os, self.arch, here.os, here.arch
            ));
        }
        let ours = here.cpu_features.clone().unwrap_or_default();
        match &self.cpu_features {
            None => Some(format!(
                "the entry does not record its CPU's features (made before gradlab kept them) \
                 and ran on '{}'; this is '{}' with {}",
                self.cpu,
                here.cpu,
                list(&ours)
            )),
            Some(theirs) if *theirs != ours => {
                let only = |a: &[String], b: &[String]| {
                    a.iter()
                        .filter(|f| !b.contains(f))
                        .cloned()
                        .collect::<Vec<_>>()
                };
                let (lost, gained) = (only(theirs, &ours), only(&ours, theirs));
                let mut parts = Vec::new();
                if !lost.is_empty() {
                    parts.push(format!("this CPU lacks {}", lost.join(",")));
                }
                if !gained.is_empty() {
                    parts.push(format!("has {} besides", gained.join(",")));
                }
                Some(format!(
                    "CPU features differ: the entry's machine ('{}') had {}; {}",
                    self.cpu,
                    list(theirs),
                    parts.join(" and ")
                ))
            }
            Some(_) => None,
        }
    }
}

fn list(features: &[String]) -> String {
    if features.is_empty() {
        "no listed extension".into()
    } else {
        features.join(",")
    }
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

    #[test]
    fn cpu_features_are_probed_and_compared() {
        let here = host();
        let features = here.cpu_features.clone().unwrap();
        assert!(features.iter().all(|f| CPU_FEATURES.contains(&f.as_str())));
        #[cfg(target_arch = "x86_64")]
        {
            // Every x86-64 CPU that runs this has at least the listed order; AVX2 implies AVX.
            assert!(!features.contains(&"avx2".into()) || features.contains(&"avx".into()));
        }
        assert_eq!(here.kernel_difference(&here), None);
        // An entry from before features were recorded is always flagged.
        let old = Host {
            cpu_features: None,
            ..here.clone()
        };
        let why = old.kernel_difference(&here).unwrap();
        assert!(why.contains("does not record"), "{why}");
        let serialized = serde_json::to_string(&old).unwrap();
        assert!(!serialized.contains("cpu_features"), "{serialized}");
        // One that had a feature this one lacks says which.
        let mut wider = features.clone();
        wider.push("imaginary512".into());
        let other = Host {
            cpu_features: Some(wider),
            ..here.clone()
        };
        let why = other.kernel_difference(&here).unwrap();
        assert!(why.contains("lacks imaginary512"), "{why}");
        let back: Host = serde_json::from_str(&serde_json::to_string(&other).unwrap()).unwrap();
        assert_eq!(back, other);
    }
}
