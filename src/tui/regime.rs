//! Regimes of a layer's gradient: vanishing, healthy or exploding, judged against the
//! output layer so the thresholds do not depend on the loss scale.

/// A layer is vanishing when its norm is below this fraction of the output layer's.
pub const VANISHING_BELOW: f64 = 1e-3;
/// A layer is exploding when its norm is above this multiple of the output layer's.
pub const EXPLODING_ABOVE: f64 = 1e3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    Vanishing,
    Healthy,
    Exploding,
    /// No probe yet, or the output layer's norm is zero so no ratio exists.
    Unknown,
}

impl Regime {
    /// Classifies a layer's norm by its ratio to the output layer's norm. A non-finite
    /// norm is exploding whatever the output does: it is the end of a blow-up.
    pub fn classify(norm: f64, output_norm: f64) -> Self {
        if norm.is_nan() || norm.is_infinite() {
            return Regime::Exploding;
        }
        if !(output_norm.is_finite() && output_norm > 0.0) {
            return Regime::Unknown;
        }
        let ratio = norm / output_norm;
        if ratio < VANISHING_BELOW {
            Regime::Vanishing
        } else if ratio > EXPLODING_ABOVE {
            Regime::Exploding
        } else {
            Regime::Healthy
        }
    }

    /// The symbol shown beside the colour, so the regime survives NO_COLOR.
    pub fn symbol(self) -> &'static str {
        match self {
            Regime::Vanishing => "▼",
            Regime::Healthy => "●",
            Regime::Exploding => "▲",
            Regime::Unknown => "?",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Regime::Vanishing => "vanishing",
            Regime::Healthy => "healthy",
            Regime::Exploding => "exploding",
            Regime::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_ratios_to_the_output_layer() {
        assert_eq!(Regime::classify(1e-4, 1.0), Regime::Vanishing);
        assert_eq!(Regime::classify(1e-7, 1e-3), Regime::Vanishing);
        assert_eq!(Regime::classify(1e-6, 1e-3), Regime::Healthy);
        assert_eq!(Regime::classify(2e-3, 1.0), Regime::Healthy);
        assert_eq!(Regime::classify(999.0, 1.0), Regime::Healthy);
        assert_eq!(Regime::classify(1001.0, 1.0), Regime::Exploding);
    }

    #[test]
    fn degenerate_norms() {
        assert_eq!(Regime::classify(f64::INFINITY, 1.0), Regime::Exploding);
        assert_eq!(Regime::classify(f64::NAN, 1.0), Regime::Exploding);
        assert_eq!(Regime::classify(1.0, 0.0), Regime::Unknown);
        assert_eq!(Regime::classify(0.0, 1.0), Regime::Vanishing);
    }
}
