//! Lines out of bytes that arrive in chunks of any size (a trace streaming out of gunzip), as
//! `bytes.split(|&b| b == b'\n')` would cut them from the whole: a line is handed over as soon
//! as its newline arrives, straight from the chunk when it lies inside one.

/// The splitter: what is left of a line the last chunk began.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Hands `each` every line the chunk completes (without its `\n`).
    pub fn feed(&mut self, mut chunk: &[u8], each: &mut dyn FnMut(&[u8])) {
        while let Some(at) = memchr::memchr(b'\n', chunk) {
            if self.pending.is_empty() {
                each(&chunk[..at]);
            } else {
                self.pending.extend_from_slice(&chunk[..at]);
                each(&self.pending);
                self.pending.clear();
            }
            chunk = &chunk[at + 1..];
        }
        self.pending.extend_from_slice(chunk);
    }

    /// Hands `each` what follows the last newline — the last piece of `split`, empty when the
    /// bytes ended with a newline.
    pub fn finish(&mut self, each: &mut dyn FnMut(&[u8])) {
        each(&std::mem::take(&mut self.pending));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any chunking gives the lines `split` gives.
    #[test]
    fn chunks_of_any_size_split_as_the_whole_does() {
        let text = b"ab\n\ncdef\ng\nlast";
        let whole: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        for size in 1..=text.len() {
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut lines = Lines::default();
            for chunk in text.chunks(size) {
                lines.feed(chunk, &mut |l| got.push(l.to_vec()));
            }
            lines.finish(&mut |l| got.push(l.to_vec()));
            assert_eq!(got, whole, "chunks of {size}");
        }
    }
}
