//! MNIST IDX files (optionally gzipped) from a local folder: the format of LeCun et al.

use super::{DataError, Dataset, Objective, Split};
use crate::experiment::DataSection;
use std::io::Read;
use std::path::Path;

/// An IDX array: dimensions and unsigned bytes (the only element type MNIST uses).
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses IDX bytes (magic 0x00 0x00 0x08 ndim, big-endian u32 dimensions, then u8 data).
pub fn parse(bytes: &[u8]) -> Result<IdxArray, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (bad magic number)".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
            bytes[2]
        ));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err("truncated IDX header".into());
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let len: usize = dims.iter().product();
    if bytes.len() - header != len {
        return Err(format!(
            "IDX data holds {} bytes, its header promises {len}",
            bytes.len() - header
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads `dir/name` or, failing that, `dir/name.gz`.
pub fn read(dir: &Path, name: &str) -> Result<IdxArray, String> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let bytes = if plain.exists() {
        std::fs::read(&plain).map_err(|e| format!("{}: {e}", plain.display()))?
    } else if gz.exists() {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(
            std::fs::File::open(&gz).map_err(|e| format!("{}: {e}", gz.display()))?,
        )
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", gz.display()))?;
        out
    } else {
        return Err(format!("neither {name} nor {name}.gz is there"));
    };
    parse(&bytes).map_err(|e| format!("{name}: {e}"))
}

fn split(dir: &Path, images: &str, labels: &str, limit: usize) -> Result<(Split, usize), String> {
    let img = read(dir, images)?;
    let lab = read(dir, labels)?;
    if img.dims.len() != 3 || lab.dims.len() != 1 || img.dims[0] != lab.dims[0] {
        return Err(format!(
            "{images} and {labels} do not match (dims {:?} vs {:?})",
            img.dims, lab.dims
        ));
    }
    let dim = img.dims[1] * img.dims[2];
    let n = img.dims[0].min(limit);
    if let Some(bad) = lab.data[..n].iter().find(|&&l| l > 9) {
        return Err(format!("{labels}: label {bad} is not a digit"));
    }
    Ok((
        Split {
            n,
            x: img.data[..n * dim]
                .iter()
                .map(|&p| p as f32 / 255.0)
                .collect(),
            labels: lab.data[..n].iter().map(|&l| l as u32).collect(),
            targets: Vec::new(),
        },
        dim,
    ))
}

/// The first `train_size` / `test_size` examples of MNIST's train and t10k files.
pub fn load_mnist(s: &DataSection) -> Result<Dataset, DataError> {
    let dir = Path::new(&s.path);
    let err = |message| DataError::Mnist {
        path: s.path.clone(),
        message,
    };
    let (train, dim) = split(
        dir,
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        s.train_size,
    )
    .map_err(err)?;
    let (test, _) = split(
        dir,
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        s.test_size,
    )
    .map_err(err)?;
    Ok(Dataset {
        input_dim: dim,
        seq_len: 1,
        objective: Objective::Classify { classes: 10 },
        train,
        test,
    })
}

/// Writes an IDX u8 array (used by tests to make tiny MNIST folders).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Task;
    use std::io::Write;

    fn write_mnist(dir: &Path, gzip: bool) {
        let images: Vec<u8> = (0..5 * 4 * 3).map(|i| (i * 4) as u8).collect();
        let files = [
            ("train-images-idx3-ubyte", encode(&[5, 4, 3], &images)),
            ("train-labels-idx1-ubyte", encode(&[5], &[0, 1, 2, 3, 9])),
            ("t10k-images-idx3-ubyte", encode(&[2, 4, 3], &images[..24])),
            ("t10k-labels-idx1-ubyte", encode(&[2], &[7, 8])),
        ];
        for (name, bytes) in files {
            if gzip {
                let f = std::fs::File::create(dir.join(format!("{name}.gz"))).unwrap();
                let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
                gz.write_all(&bytes).unwrap();
                gz.finish().unwrap();
            } else {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }

    fn section(dir: &Path) -> DataSection {
        DataSection {
            task: Task::Mnist,
            path: dir.display().to_string(),
            train_size: 4,
            test_size: 10,
            ..DataSection::default()
        }
    }

    #[test]
    fn reads_plain_and_gzipped_idx() {
        for gzip in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_mnist(dir.path(), gzip);
            let d = load_mnist(&section(dir.path())).unwrap();
            assert_eq!(d.input_dim, 12);
            assert_eq!(
                (d.train.n, d.test.n),
                (4, 2),
                "sizes are capped by what the files hold"
            );
            assert_eq!(d.train.labels, vec![0, 1, 2, 3]);
            assert_eq!(d.test.labels, vec![7, 8]);
            assert_eq!(d.train.x[1], 4.0 / 255.0);
        }
    }

    #[test]
    fn rejects_bad_files_with_a_reason() {
        assert!(parse(&[1, 2, 3]).unwrap_err().contains("magic"));
        assert!(
            parse(&encode(&[3], &[1, 2]))
                .unwrap_err()
                .contains("promises 3")
        );
        let dir = tempfile::tempdir().unwrap();
        let err = load_mnist(&section(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz"),
            "{err}"
        );
    }
}
