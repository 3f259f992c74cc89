//! Experiment files: parse (serde + toml), validate once, canonical form and its blake3 hash.
//!
//! `Experiment` is the only type the rest of the lab sees; it cannot exist unvalidated.
//! Its canonical form fills every default, sorts keys and prints each number in one
//! spelling, so comments, whitespace, key order and spelled-out defaults never change the
//! hash while any change of value does.

pub mod memory;
mod spec;
mod validate;

pub use spec::*;

use std::fmt;
use std::path::{Path, PathBuf};

/// A bad experiment file: where, and what is allowed instead.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Larger than any experiment file (`/dev/zero`, a log given by mistake).
    #[error("{path}: larger than {limit} bytes, the most an experiment file may hold")]
    TooLarge { path: PathBuf, limit: u64 },
    /// Not UTF-8 text.
    #[error("{path}:{line}:{column}: not UTF-8 text (an experiment file is TOML, UTF-8)")]
    Encoding {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    /// TOML syntax, an unknown key, a wrong type or an unknown variant.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value out of its range.
    #[error("{}{field} = {}: {allowed}", at(path, *line), cut(value))]
    Invalid {
        path: PathBuf,
        line: usize,
        field: String,
        value: String,
        allowed: String,
    },
}

/// The most an experiment file may hold: canonical files are a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// A value as echoed in a message: whole when short, else its start and its length, so a
/// megabyte-long name or a 309-digit number does not flood the terminal.
fn cut(value: &str) -> String {
    const KEEP: usize = 60;
    let n = value.chars().count();
    if n <= KEEP + 20 {
        value.to_string()
    } else {
        let head: String = value.chars().take(KEEP).collect();
        format!("{head}… ({n} characters)")
    }
}

/// What kind of TOML value a field holds, for messages.
fn slot_kind(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "a whole number",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list, e.g. [1, 2]",
        toml::Value::Table(_) => "a table",
    }
}

/// `file:line: `, or `file: ` for a value that has no line (one from the command line).
fn at(path: &std::path::Path, line: usize) -> String {
    match line {
        0 => format!("{}: ", path.display()),
        _ => format!("{}:{line}: ", path.display()),
    }
}

/// The blake3 hash of a canonical config, as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ConfigHash(pub String);

impl ConfigHash {
    /// The first 12 hex digits, for tables and headers.
    pub fn short(&self) -> &str {
        &self.0[..12.min(self.0.len())]
    }
}

impl fmt::Display for ConfigHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated experiment with its canonical form and hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    spec: Spec,
    canonical: String,
    hash: ConfigHash,
}

/// Command-line overrides applied after parsing; they become part of the recorded config.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    pub steps: Option<usize>,
    pub seed: Option<u64>,
}

impl Experiment {
    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        use std::io::Read;
        let io = |source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(io)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_FILE_BYTES,
            });
        }
        let source = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
            let start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            ConfigError::Encoding {
                path: path.to_path_buf(),
                line,
                column: 1 + String::from_utf8_lossy(&valid[start..]).chars().count(),
            }
        })?;
        Self::parse(&source, path)
    }

    /// Parses and validates TOML text; `path` only names the source in errors.
    pub fn parse(source: &str, path: &Path) -> Result<Self, ConfigError> {
        let spec: Spec = toml::from_str(source).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_col(source, span.start))
                .unwrap_or((1, 1));
            let message = plain_types(e.message().trim());
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                // "wanted string or table" alone does not say which setting is meant.
                message: match key_on_line(source, line) {
                    Some(field) => format!("{field}: {message}"),
                    None => message,
                },
            }
        })?;
        validate::check(&spec).map_err(|v| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: field_line(source, &v.field),
            field: v.field,
            value: v.value,
            allowed: v.allowed,
        })?;
        Ok(Self::from_valid(spec))
    }

    /// Parses a canonical config embedded elsewhere (a ledger entry).
    pub fn from_canonical(source: &str) -> Result<Self, ConfigError> {
        Self::parse(source, Path::new("<embedded config>"))
    }

    fn from_valid(spec: Spec) -> Self {
        let canonical = canonical_toml(&spec);
        let hash = ConfigHash(blake3::hash(canonical.as_bytes()).to_hex().to_string());
        Self {
            spec,
            canonical,
            hash,
        }
    }

    /// Applies command-line overrides, revalidating and rehashing.
    pub fn with_overrides(self, o: Overrides) -> Result<Self, ConfigError> {
        let mut spec = self.spec;
        if let Some(steps) = o.steps {
            // `--steps` caps every kind of work: optimisation steps, generations of a
            // search, and each RBM's pretraining updates.
            spec.train.steps = steps;
            spec.dbn.pretrain_steps = spec.dbn.pretrain_steps.min(steps);
        }
        if let Some(seed) = o.seed {
            spec.experiment.seed = seed;
        }
        validate::check(&spec).map_err(|v| ConfigError::Invalid {
            path: PathBuf::from("the command line (--steps, --seed)"),
            line: 0,
            field: v.field,
            value: v.value,
            allowed: v.allowed,
        })?;
        Ok(Self::from_valid(spec))
    }

    /// Sets fields by dotted path (`model.depth`, `train.learning_rate`) to values written
    /// as TOML (`5`, `0.5`, `"tanh"`; a bare word is taken as a string), then revalidates.
    /// Used by `--set` and by sweeps; the result is a new config with its own hash.
    pub fn with_settings(&self, settings: &[(String, String)]) -> Result<Self, ConfigError> {
        if settings.is_empty() {
            return Ok(self.clone());
        }
        let mut doc: toml::Value =
            toml::from_str(&self.canonical).expect("the canonical form parses");
        for (path, raw) in settings {
            let bad = |allowed: String| ConfigError::Invalid {
                path: PathBuf::from("--set"),
                line: 0,
                field: path.clone(),
                value: format!("'{raw}'"),
                allowed,
            };
            let mut parts = path.splitn(2, '.');
            let (Some(section), Some(key)) = (parts.next(), parts.next()) else {
                return Err(bad(
                    "is not a field: write it as section.key, e.g. model.depth".into(),
                ));
            };
            let sections = doc
                .as_table()
                .map(|t| t.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            let table = doc
                .get_mut(section)
                .and_then(|t| t.as_table_mut())
                .ok_or_else(|| bad(format!("'{section}' is not a section ({sections})")))?;
            let slot = table
                .get_mut(key)
                .ok_or_else(|| bad(format!("'{key}' is not a field of [{section}]")))?;
            let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(raw.clone()));
            // Integers are accepted where the file has floats (`sigma_w=2`).
            let value = match (&*slot, value) {
                (toml::Value::Float(_), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
                (_, v) => v,
            };
            // A word where the field holds a number or a flag is named here, with the field,
            // rather than by the parser at a line of the rewritten text the user never saw.
            // (Fields of mixed kinds, like `residual_scale`, hold strings or floats.)
            if (slot.is_integer() || slot.is_bool()) && value.is_str() {
                let mut allowed = format!("must be {}", slot_kind(slot));
                if slot.is_integer() && raw.chars().all(|c| c.is_ascii_digit()) {
                    allowed += &format!(" from 0 to {} (TOML's largest integer)", i64::MAX);
                }
                return Err(bad(allowed));
            }
            *slot = value;
        }
        let text = toml::to_string(&doc).expect("a toml value always prints");
        Self::parse(&text, Path::new("<--set>"))
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.experiment.name
    }

    pub fn seed(&self) -> u64 {
        self.spec.experiment.seed
    }

    /// The canonical TOML text whose bytes are hashed.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    pub fn hash(&self) -> &ConfigHash {
        &self.hash
    }
}

/// Every default filled, keys sorted (toml's table is a BTreeMap), floats printed by the
/// shortest round-trip spelling.
fn canonical_toml(spec: &Spec) -> String {
    let value = toml::Value::try_from(spec).expect("a validated spec always serializes");
    let sorted = sort_value(value);
    toml::to_string(&sorted).expect("a toml value always prints")
}

fn sort_value(v: toml::Value) -> toml::Value {
    match v {
        toml::Value::Table(t) => {
            let mut entries: Vec<_> = t.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = toml::map::Map::new();
            for (k, v) in entries {
                out.insert(k, sort_value(v));
            }
            toml::Value::Table(out)
        }
        toml::Value::Array(a) => toml::Value::Array(a.into_iter().map(sort_value).collect()),
        other => other,
    }
}

/// serde names Rust types in its messages; users of a TOML file think in TOML's terms.
fn plain_types(message: &str) -> String {
    message
        .replace("expected usize", "expected a non-negative integer")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected f64", "expected a number")
}

/// 1-based line and column of a byte offset.
/// `section.key` when line `line` (1-based) of `source` is a `key = value` line, found by
/// the nearest `[section]` header above it; None for headers, blank lines and the like.
fn key_on_line(source: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let text = lines.get(line.checked_sub(1)?)?.trim_start();
    let (key, _) = text.split_once('=')?;
    let key = key.trim();
    let plain = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    };
    if !plain(key) {
        return None;
    }
    let section = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix('[')?.strip_suffix(']').map(str::trim)
    });
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key.to_string(),
    })
}

fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The line where `section.key` is written, or the section header when the key is absent
/// (the value came from a default), or line 1.
fn field_line(source: &str, field: &str) -> usize {
    let Ok(doc) = toml_edit::ImDocument::parse(source) else {
        return 1;
    };
    let mut parts = field.splitn(2, '.');
    let (Some(section), key) = (parts.next(), parts.next()) else {
        return 1;
    };
    let Some(table) = doc.get(section) else {
        return 1;
    };
    let span = key
        .and_then(|k| table.as_table_like().and_then(|t| t.get_key_value(k)))
        .and_then(|(k, _)| k.span())
        .or_else(|| table.span());
    span.map_or(1, |s| line_col(source, s.start).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Experiment, ConfigError> {
        Experiment::parse(s, Path::new("t.toml"))
    }

    #[test]
    fn defaults_comments_and_order_do_not_change_the_hash() {
        let a = parse("[experiment]\nname = \"x\"\n").unwrap();
        let b = parse(
            "# comment\n[model]\nwidth = 64\ndepth = 20\n\n[experiment]\nseed = 0\nname = \"x\"  # same\n",
        )
        .unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn number_spelling_does_not_change_the_hash() {
        let a = parse("[experiment]\nname = \"x\"\n[train]\nlearning_rate = 0.01\n").unwrap();
        let b = parse("[experiment]\nname = \"x\"\n[train]\nlearning_rate = 1e-2\n").unwrap();
        let c = parse("[experiment]\nname = \"x\"\n[model]\nsigma_w = 1\n").unwrap();
        let d = parse("[experiment]\nname = \"x\"\n[model]\nsigma_w = 1.0\n").unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_eq!(c.hash(), d.hash());
    }

    #[test]
    fn any_value_change_changes_the_hash() {
        let a = parse("[experiment]\nname = \"x\"\n").unwrap();
        for extra in [
            "[train]\nlearning_rate = 0.011\n",
            "[model]\ndepth = 21\n",
            "[experiment]\nseed = 1\n",
        ] {
            let src = if extra.starts_with("[experiment]") {
                "[experiment]\nname = \"x\"\nseed = 1\n".to_string()
            } else {
                format!("[experiment]\nname = \"x\"\n{extra}")
            };
            assert_ne!(a.hash(), parse(&src).unwrap().hash(), "{extra}");
        }
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = parse("[experiment]\nname = \"x\"\n[train]\nlerning_rate = 0.1\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("t.toml:4:1: train.lerning_rate: unknown field `lerning_rate`"),
            "{msg}"
        );
    }

    #[test]
    fn out_of_range_names_field_value_and_range() {
        let err = parse("[experiment]\nname = \"x\"\n\n[model]\ndepth = 0\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.toml:5: model.depth = 0: must be between 1 and 500"
        );
    }

    #[test]
    fn settings_change_fields_by_path_and_are_validated() {
        let a = parse("[experiment]\nname = \"x\"\n").unwrap();
        let set = |k: &str, v: &str| a.with_settings(&[(k.to_string(), v.to_string())]);
        let b = set("model.depth", "7").unwrap();
        assert_eq!(b.spec().model.depth, 7);
        assert_eq!(set("model.sigma_w", "2").unwrap().spec().model.sigma_w, 2.0);
        assert_eq!(
            set("model.activation", "relu")
                .unwrap()
                .spec()
                .model
                .activation,
            Activation::Relu
        );
        assert_ne!(a.hash(), b.hash());
        assert_eq!(b.hash(), set("model.depth", "7").unwrap().hash());
        assert!(
            set("model.depth", "0")
                .unwrap_err()
                .to_string()
                .contains("must be between 1 and 500")
        );
        assert!(
            set("model.dept", "3")
                .unwrap_err()
                .to_string()
                .contains("'dept' is not a field of [model]")
        );
        assert!(
            set("depth", "3")
                .unwrap_err()
                .to_string()
                .contains("section.key")
        );
    }

    #[test]
    fn overrides_are_part_of_the_config() {
        let a = parse("[experiment]\nname = \"x\"\n").unwrap();
        let b = a
            .clone()
            .with_overrides(Overrides {
                steps: Some(7),
                seed: None,
            })
            .unwrap();
        assert_eq!(b.spec().train.steps, 7);
        assert_ne!(a.hash(), b.hash());
        let again = Experiment::from_canonical(b.canonical()).unwrap();
        assert_eq!(again.hash(), b.hash());
    }

    /// `model.collapse` is left out of the canonical form when false, so configs written
    /// before it existed keep their hashes; set, it is part of the form and the hash.
    #[test]
    fn collapse_is_canonical_only_when_set() {
        let base = "[experiment]\nname = \"c\"\n[data]\ntask = \"key-recall\"\n[model]\nkind = \"chunker\"\n";
        let plain = Experiment::parse(base, Path::new("c.toml")).unwrap();
        assert!(
            !plain.canonical().contains("collapse"),
            "{}",
            plain.canonical()
        );
        let collapsed =
            Experiment::parse(&format!("{base}collapse = true\n"), Path::new("c.toml")).unwrap();
        assert!(collapsed.canonical().contains("collapse = true"));
        assert_ne!(plain.hash(), collapsed.hash());
        let again = Experiment::from_canonical(collapsed.canonical()).unwrap();
        assert_eq!(again.hash(), collapsed.hash());
        assert!(again.spec().model.collapse);
    }
}
