//! `gradlab sweep --emit-jobs FILE`: one self-contained `gradlab run` command line per grid
//! point, for GNU parallel or a Slurm job array, each writing its own ledger folder.
//!
//! A line reproduces its point exactly: the same `--set` settings, then `--seed` and
//! `--steps`, applied in the order the sweep applies them, so the run has the point's config
//! hash. After `gradlab ledger merge`, a later `gradlab sweep` over the same grid finds every
//! point recorded and runs nothing. Each line also carries the sweep's tags.

use super::run::Plan;
use std::path::Path;

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The command lines, one per point in grid order; point i (1-based, as Slurm's
/// `SLURM_ARRAY_TASK_ID` and `sed -n ip` count) writes its ledger to `<ledgers>/point-<i>`.
/// `program` is the gradlab binary to call, `file` the experiment file (both as the nodes
/// will see them; absolute paths keep the lines independent of the working directory).
pub fn lines(plan: &Plan, program: &Path, file: &Path, ledgers: &Path) -> Vec<String> {
    let tags = plan.tags();
    plan.points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut words = vec![
                shell_quote(&program.display().to_string()),
                "run".to_string(),
                shell_quote(&file.display().to_string()),
            ];
            for (field, value) in &p.settings {
                words.push("--set".into());
                words.push(shell_quote(&format!("{field}={value}")));
            }
            words.extend([
                "--seed".to_string(),
                p.seed.to_string(),
                "--steps".to_string(),
                p.experiment.spec().train.steps.to_string(),
                "--headless".to_string(),
            ]);
            for t in &tags {
                words.push("--tag".into());
                words.push(shell_quote(t));
            }
            words.push("--ledger".into());
            words.push(shell_quote(
                &ledgers
                    .join(format!("point-{}", i + 1))
                    .display()
                    .to_string(),
            ));
            words.join(" ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Experiment;
    use crate::sweep::parse_axis;

    #[test]
    fn quoting_leaves_plain_words_and_protects_the_rest() {
        assert_eq!(shell_quote("model.depth=5"), "model.depth=5");
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn one_line_per_point_with_its_settings_seed_and_ledger() {
        let base = Experiment::parse(
            "[experiment]\nname = \"s\"\nseed = 4\n",
            Path::new("s.toml"),
        )
        .unwrap();
        let axes = vec![parse_axis("model.depth=2,3").unwrap()];
        let plan = Plan::new(&base, axes, 2, Some(7)).unwrap();
        let lines = lines(
            &plan,
            Path::new("/bin/gradlab"),
            Path::new("/x/s.toml"),
            Path::new("/l"),
        );
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[3],
            format!(
                "/bin/gradlab run /x/s.toml --set model.depth=3 --seed 5 --steps 7 --headless --tag sweep:{} --tag sweep-axes:model.depth --ledger /l/point-4",
                plan.id
            )
        );
    }
}
