//! The object store: gzip files named by the blake3 of their content, written beside their
//! final name and renamed into place, and read as streams — a trace's size is never the
//! memory of the run that writes it or of the command that checks it.

use super::store::{OBJECTS, sync_dir};
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Where the object with this content hash lives.
pub fn object_path(dir: &Path, hash: &str) -> PathBuf {
    dir.join(OBJECTS)
        .join(&hash[..2])
        .join(format!("{hash}.gz"))
}

/// Why a stored object cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object file {path} is missing")]
    Missing { path: PathBuf },
    #[error("object file {path} cannot be read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "object file {path} has blake3 {found}, the entry recorded {expected} (the file was altered)"
    )]
    FileHash {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("object file {path} is not valid gzip: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("object file {path} holds content with blake3 {found}, not {expected}")]
    ContentHash {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("object file {path} holds {found} bytes, the entry recorded {expected}")]
    Length {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
}

/// gzip with a fixed header (no name, mtime 0), so equal content compresses to equal files
/// with one flate2 version.
fn encoder<W: Write>(w: W) -> GzEncoder<W> {
    GzBuilder::new().mtime(0).write(w, Compression::default())
}

/// What streaming an object file found. The caller compares the hashes with what it expects,
/// in the order the ledger's README gives (file hash, gzip, content hash, length).
#[derive(Debug)]
pub struct Streamed {
    /// blake3 of the file, hex.
    pub file_hash: String,
    /// Why the file is not exactly one gzip member, if it is not.
    pub corrupt: Option<String>,
    /// blake3 of the decompressed content, hex (of what decompressed, when corrupt).
    pub content_hash: String,
    /// Bytes of decompressed content.
    pub len: u64,
}

/// A reader that hashes what passes through it and keeps a copy of its first read error
/// (to tell a failing disk from a damaged gzip stream, which the decoder reports alike).
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    failed: Option<io::Error>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }
}

fn open_file(path: &Path) -> Result<File, ObjectError> {
    File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ObjectError::Missing {
            path: path.to_path_buf(),
        },
        _ => ObjectError::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Streams the object file of `hash` through gunzip into `sink`, 64 KiB at a time, hashing
/// the file and the content as they pass. A damaged gzip stream does not stop the file hash:
/// the rest of the file is still read, so an altered file is reported as altered.
pub fn stream_object(
    dir: &Path,
    hash: &str,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<Streamed, ObjectError> {
    let path = object_path(dir, hash);
    let io_err = |source| ObjectError::Io {
        path: path.clone(),
        source,
    };
    let file = Hashing {
        inner: open_file(&path)?,
        hasher: blake3::Hasher::new(),
        failed: None,
    };
    let mut decoder = flate2::bufread::GzDecoder::new(BufReader::with_capacity(1 << 16, file));
    let mut content = blake3::Hasher::new();
    let mut len = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let mut corrupt = None;
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                content.update(&buf[..n]);
                len += n as u64;
                sink(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                corrupt = Some(e.to_string());
                break;
            }
        }
    }
    let mut rest = decoder.into_inner();
    if let Some(e) = rest.get_mut().failed.take() {
        return Err(io_err(e));
    }
    // Whatever follows the member (or the point where decoding failed) still counts for the
    // file hash; after a whole member it must be nothing.
    let trailing = io::copy(&mut rest, &mut io::sink()).map_err(io_err)?;
    if corrupt.is_none() && trailing > 0 {
        corrupt = Some(format!("{trailing} bytes follow the gzip member"));
    }
    Ok(Streamed {
        file_hash: rest.into_inner().hasher.finalize().to_hex().to_string(),
        corrupt,
        content_hash: content.finalize().to_hex().to_string(),
        len,
    })
}

/// Streams the object of `hash` into `sink`, checking that it is one gzip member whose content
/// hashes to `hash`; returns the content length and the blake3 of the file. On an error
/// `sink` has seen part of the content: a caller that must not act on a bad object checks
/// first (see `check_object`).
pub fn read_object_into(
    dir: &Path,
    hash: &str,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<(u64, String), ObjectError> {
    let s = stream_object(dir, hash, sink)?;
    let path = || object_path(dir, hash);
    if let Some(message) = s.corrupt {
        return Err(ObjectError::Corrupt {
            path: path(),
            message,
        });
    }
    if s.content_hash != hash {
        return Err(ObjectError::ContentHash {
            path: path(),
            expected: hash.into(),
            found: s.content_hash,
        });
    }
    Ok((s.len, s.file_hash))
}

/// Checks the object of `hash` as [`read_object`] does, holding none of it.
pub fn check_object(dir: &Path, hash: &str) -> Result<(u64, String), ObjectError> {
    read_object_into(dir, hash, &mut |_| {})
}

/// Reads an object file and returns `(content, blake3 of the file)`, checking that the
/// content is one gzip member and hashes to `hash`.
pub fn read_object(dir: &Path, hash: &str) -> Result<(Vec<u8>, String), ObjectError> {
    let mut content = Vec::new();
    let (_, file_hash) = read_object_into(dir, hash, &mut |b| content.extend_from_slice(b))?;
    Ok((content, file_hash))
}

/// Stores `bytes` under their blake3 and returns `(hash, blake3 of the stored file)`.
pub fn put_object(dir: &Path, bytes: &[u8]) -> io::Result<(String, String)> {
    let hash = super::entry::hex_hash(bytes);
    let file_hash = put_stream(dir, &hash, &mut &bytes[..])?;
    Ok((hash, file_hash))
}

/// Stores the content `reader` yields, which the caller knows hashes to `hash`, compressing
/// it as it streams to the file; an existing valid object is kept. Returns the blake3 of the
/// file now in place. The content is hashed again on the way and a mismatch is an error, so
/// a wrong `hash` can never name other bytes.
pub fn put_stream(dir: &Path, hash: &str, reader: &mut dyn Read) -> io::Result<String> {
    if let Ok((_, file_hash)) = check_object(dir, hash) {
        return Ok(file_hash);
    }
    write_object_file(dir, hash, &mut |file| {
        let mut out = HashingWriter {
            inner: file,
            hasher: blake3::Hasher::new(),
        };
        let mut enc = encoder(&mut out);
        let mut content = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            content.update(&buf[..n]);
            enc.write_all(&buf[..n])?;
        }
        enc.finish()?;
        let found = content.finalize().to_hex().to_string();
        if found != hash {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("content to be stored as {hash} hashes to {found}"),
            ));
        }
        Ok(out.hasher.finalize().to_hex().to_string())
    })
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Stores an already compressed object file as it is (a merge copies another ledger's file
/// byte for byte, so its recorded `file_hash` still holds). An existing valid object is kept.
/// Returns the blake3 of the file now in place. The caller has checked that `gz` is valid
/// and holds content hashing to `hash`.
pub fn put_compressed(dir: &Path, hash: &str, gz: &[u8]) -> io::Result<String> {
    if let Ok((_, file_hash)) = check_object(dir, hash) {
        return Ok(file_hash);
    }
    write_object_file(dir, hash, &mut |file| {
        file.write_all(gz)?;
        Ok(super::entry::hex_hash(gz))
    })
}

/// Writes the object file of `hash` through `fill`: beside its final name, fsynced, renamed
/// into place and the folder fsynced, so a reader sees the whole object or none. Returns
/// what `fill` returns.
fn write_object_file(
    dir: &Path,
    hash: &str,
    fill: &mut dyn FnMut(&mut io::BufWriter<&File>) -> io::Result<String>,
) -> io::Result<String> {
    let path = object_path(dir, hash);
    let folder = path.parent().expect("an object path has a folder");
    let objects = dir.join(OBJECTS);
    // Each newly created folder is made durable in its parent.
    if !objects.is_dir() {
        fs::create_dir_all(&objects)?;
        sync_dir(dir)?;
    }
    if !folder.is_dir() {
        fs::create_dir_all(folder)?;
        sync_dir(&objects)?;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = folder.join(format!("{hash}.{}-{nanos}.tmp", std::process::id()));
    let result = (|| {
        let f = File::create(&tmp)?;
        let mut w = io::BufWriter::with_capacity(1 << 16, &f);
        let file_hash = fill(&mut w)?;
        w.flush()?;
        drop(w);
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        sync_dir(folder)?;
        Ok(file_hash)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_one_gzip_member_and_nothing_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let hash = super::super::entry::hex_hash(b"content");
        let decompress = |gz: &[u8]| {
            let path = object_path(dir.path(), &hash);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, gz).unwrap();
            read_object(dir.path(), &hash).map(|(c, _)| c)
        };
        let gz = {
            let mut e = encoder(Vec::new());
            e.write_all(b"content").unwrap();
            e.finish().unwrap()
        };
        assert_eq!(decompress(&gz).unwrap(), b"content");
        for tail in [&b"\0\0"[..], &gz[..]] {
            let mut two = gz.clone();
            two.extend_from_slice(tail);
            assert!(
                decompress(&two).is_err(),
                "{} bytes after the member",
                tail.len()
            );
        }
        assert!(
            decompress(&gz[..gz.len() - 1]).is_err(),
            "a truncated member"
        );
    }

    #[test]
    fn objects_round_trip_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (hash, file_hash) = put_object(dir.path(), b"hello").unwrap();
        assert_eq!(hash, super::super::entry::hex_hash(b"hello"));
        let (content, again) = read_object(dir.path(), &hash).unwrap();
        assert_eq!(
            (content.as_slice(), again.as_str()),
            (&b"hello"[..], file_hash.as_str())
        );
        assert_eq!(
            put_object(dir.path(), b"hello").unwrap(),
            (hash.clone(), file_hash)
        );
        // A damaged object is replaced by the next store of the same content.
        fs::write(object_path(dir.path(), &hash), b"junk").unwrap();
        assert!(matches!(
            read_object(dir.path(), &hash),
            Err(ObjectError::Corrupt { .. })
        ));
        put_object(dir.path(), b"hello").unwrap();
        assert!(read_object(dir.path(), &hash).is_ok());
    }

    fn corrupt_of(dir: &Path, hash: &str) -> Option<String> {
        stream_object(dir, hash, &mut |_| {}).unwrap().corrupt
    }

    /// Streamed writing and reading agree with the one-shot forms, a second member or a
    /// trailing byte is corrupt, and a damaged stream still yields the file's true hash.
    #[test]
    fn objects_stream_in_and_out() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let content: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (hash, file_hash) = put_object(d, &content).unwrap();
        let path = object_path(d, &hash);
        let gz = fs::read(&path).unwrap();
        assert_eq!(file_hash, super::super::entry::hex_hash(&gz));
        let (back, again) = read_object(d, &hash).unwrap();
        assert_eq!((back, again), (content.clone(), file_hash.clone()));
        assert_eq!(corrupt_of(d, &hash), None);
        // Storing again keeps the file.
        assert_eq!(put_stream(d, &hash, &mut &content[..]).unwrap(), file_hash);
        // A wrong hash is refused and leaves nothing.
        let wrong = "0".repeat(64);
        assert!(put_stream(d, &wrong, &mut &content[..]).is_err());
        assert!(!object_path(d, &wrong).exists());
        assert!(fs::read_dir(path.parent().unwrap()).unwrap().count() == 1);

        let mut twice = gz.clone();
        twice.extend_from_slice(&gz);
        fs::write(&path, &twice).unwrap();
        assert!(
            corrupt_of(d, &hash)
                .unwrap()
                .contains("follow the gzip member")
        );
        assert!(matches!(
            read_object(d, &hash),
            Err(ObjectError::Corrupt { .. })
        ));

        let mut flipped = gz.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        fs::write(&path, &flipped).unwrap();
        let s = stream_object(d, &hash, &mut |_| {}).unwrap();
        assert_eq!(s.file_hash, super::super::entry::hex_hash(&flipped));
        assert!(s.corrupt.is_some() || s.content_hash != hash);

        fs::remove_file(&path).unwrap();
        assert!(matches!(
            read_object(d, &hash),
            Err(ObjectError::Missing { .. })
        ));
    }
}
