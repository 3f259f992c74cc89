//! The real 8×8 handwritten digits (UCI optdigits test set, CC BY 4.0), shipped in the repository.

use super::{DataError, Dataset, Objective, split_rows};
use crate::experiment::DataSection;
use crate::rng::Stream;
use std::io::Read;

/// Embedded so a built binary needs no file beside it.
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// All 1797 digits, pixels scaled from 0..16 to 0..1.
pub fn rows() -> Result<Vec<(Vec<f32>, u32)>, DataError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| DataError::Digits(e.to_string()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let nums: Vec<u32> = line
                .split(',')
                .map(|v| v.trim().parse::<u32>())
                .collect::<Result<_, _>>()
                .map_err(|e| DataError::Digits(format!("row {}: {e}", i + 1)))?;
            if nums.len() != 65 || nums[64] > 9 {
                return Err(DataError::Digits(format!(
                    "row {}: expected 64 pixels and a label 0..9",
                    i + 1
                )));
            }
            Ok((
                nums[..64].iter().map(|&p| p as f32 / 16.0).collect(),
                nums[64],
            ))
        })
        .collect()
}

pub fn load(s: &DataSection, rng: &mut Stream) -> Result<Dataset, DataError> {
    let (train, test) = split_rows(rows()?, s.train_size, s.test_size, rng);
    Ok(Dataset {
        input_dim: 64,
        seq_len: 1,
        objective: Objective::Classify { classes: 10 },
        train,
        test,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_1797_digits_parse() {
        let rows = super::rows().unwrap();
        assert_eq!(rows.len(), 1797);
        let mut counts = [0; 10];
        for (_, y) in &rows {
            counts[*y as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
    }
}
