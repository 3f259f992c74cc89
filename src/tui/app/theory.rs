//! The mean-field δ profiles the screens draw as a line, by config hash: computed once per
//! config by a background job (it builds the config's data set), then looked up per frame.

use crate::tui::event::Predicted;
use std::collections::HashMap;

/// What is known of one config's predicted profile.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Asked for, not computed yet.
    Pending,
    /// ‖δ^l‖/‖δ^out‖ per layer, input side first, the output layer last (= 1).
    Ready(Vec<f64>),
    /// ‖∂L/∂h_t‖/‖∂L/∂h_ref‖ per time step of a recurrent net (NaN where none).
    ThroughTime(Vec<f64>),
    /// No gradient to predict (a gradient-free search).
    NotCovered,
    Failed(String),
}

#[derive(Debug, Clone, Default)]
pub struct Theory {
    lines: HashMap<String, Line>,
}

impl Theory {
    /// Marks `config_hash` as wanted. Returns true when it has to be computed: it was
    /// neither computed nor asked for before.
    pub fn request(&mut self, config_hash: &str) -> bool {
        if self.lines.contains_key(config_hash) {
            return false;
        }
        self.lines.insert(config_hash.to_string(), Line::Pending);
        true
    }

    pub fn set(&mut self, config_hash: String, profile: Result<Option<Predicted>, String>) {
        let line = match profile {
            Ok(Some(Predicted::Layers(p))) => Line::Ready(p),
            Ok(Some(Predicted::Time(p))) => Line::ThroughTime(p),
            Ok(None) => Line::NotCovered,
            Err(e) => Line::Failed(e),
        };
        self.lines.insert(config_hash, line);
    }

    pub fn get(&self, config_hash: &str) -> Option<&Line> {
        self.lines.get(config_hash)
    }

    /// The predicted ratios across layers, when computed.
    pub fn ready(&self, config_hash: &str) -> Option<&[f64]> {
        match self.lines.get(config_hash) {
            Some(Line::Ready(p)) => Some(p),
            _ => None,
        }
    }

    /// The predicted ratios through time, when computed.
    pub fn through_time(&self, config_hash: &str) -> Option<&[f64]> {
        match self.lines.get(config_hash) {
            Some(Line::ThroughTime(p)) => Some(p),
            _ => None,
        }
    }
}
