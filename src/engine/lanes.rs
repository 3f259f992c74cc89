//! Which vector instructions the element-wise loops are compiled for, chosen at run time.
//!
//! The loops inlined into [`simd`] are compiled twice: for baseline x86-64 (SSE2) and for
//! AVX2. Nothing in them is reordered and FMA is never enabled, so each lane rounds exactly
//! as the scalar code would: the choice changes the speed, never the bits.

/// Runs `f` compiled for AVX2 where the CPU has it.
#[inline(always)]
pub fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// The widest vector unit the CPU offers for f32 lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// 4 lanes: SSE2 (every x86-64) or NEON, or scalar code elsewhere.
    Base,
    /// 8 lanes.
    Avx2,
    /// 16 lanes.
    Avx512,
}

impl Width {
    /// The widest this CPU runs.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Width::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Width::Avx2;
            }
        }
        Width::Base
    }

    /// Every width this CPU can run (the tests compare them).
    pub fn available() -> Vec<Self> {
        let widest = Self::detect();
        [Width::Base, Width::Avx2, Width::Avx512]
            .into_iter()
            .filter(|w| *w as u8 <= widest as u8)
            .collect()
    }
}
