//! The mean-field δ profiles the screens draw as a line, by config hash: computed once per
//! config by a background job (it builds the config's data set), then looked up per frame.

use std::collections::HashMap;

/// What is known of one config's predicted profile.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Asked for, not computed yet.
    Pending,
    /// ‖δ^l‖/‖δ^out‖ per layer, input side first, the output layer last (= 1).
    Ready(Vec<f64>),
    /// A model kind the theory does not cover.
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

    pub fn set(&mut self, config_hash: String, profile: Result<Option<Vec<f64>>, String>) {
        let line = match profile {
            Ok(Some(p)) => Line::Ready(p),
            Ok(None) => Line::NotCovered,
            Err(e) => Line::Failed(e),
        };
        self.lines.insert(config_hash, line);
    }

    pub fn get(&self, config_hash: &str) -> Option<&Line> {
        self.lines.get(config_hash)
    }

    /// The predicted ratios, when computed.
    pub fn ready(&self, config_hash: &str) -> Option<&[f64]> {
        match self.lines.get(config_hash) {
            Some(Line::Ready(p)) => Some(p),
            _ => None,
        }
    }
}
