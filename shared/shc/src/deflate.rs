//! Raw DEFLATE (RFC 1951, no zlib or gzip wrapper), rule 18.
//!
//! A new DEFLATE encoder allocates a few hundred KiB of tables; per card that costs more than the
//! compression itself (DESIGN.md §10). [`Compressor`] is therefore made once per worker and reused.
//! Inflation is bounded so that a small hostile payload cannot expand into gigabytes.

use libdeflater::{CompressionLvl, DecompressionError, Decompressor};

use crate::error::Error;

/// Largest inflated payload accepted. Real cards are a few KiB; the chunked examples reach 74 KiB.
pub const MAX_INFLATED: usize = 4 * 1024 * 1024;

/// A reusable raw-DEFLATE compressor (not `Sync`: one per worker thread).
pub struct Compressor {
    inner: libdeflater::Compressor,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compressor")
    }
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    /// Compression level used for cards: every byte saved shrinks the QR code, and level 9 is
    /// within 1% of level 12's size at a third of its cost on card-sized input (BENCHMARKS.md).
    pub const LEVEL: i32 = 9;

    /// A compressor at [`Compressor::LEVEL`].
    pub fn new() -> Self {
        let level = CompressionLvl::new(Self::LEVEL).unwrap_or_default();
        Compressor {
            inner: libdeflater::Compressor::new(level),
        }
    }

    /// Compresses `input`, replacing the contents of `out`.
    pub fn compress_into(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let bound = self.inner.deflate_compress_bound(input.len());
        out.clear();
        out.resize(bound, 0);
        let n = self
            .inner
            .deflate_compress(input, out)
            .map_err(|e| Error::Deflate(e.to_string()))?;
        out.truncate(n);
        Ok(())
    }

    /// Compresses `input` into a new vector.
    pub fn compress(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.compress_into(input, &mut out)?;
        Ok(out)
    }
}

/// Inflates raw DEFLATE data, refusing anything larger than `limit` bytes once inflated.
///
/// zlib-wrapped data (`78 9c …`) fails here, as it must (rule 18; dev-tools `invalid_deflate`).
pub fn inflate_raw(input: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let mut decompressor = Decompressor::new();
    // DEFLATE rarely exceeds 1:10 on JSON; start there and grow geometrically up to the limit.
    let mut size = input.len().saturating_mul(10).clamp(1024, limit.max(1));
    loop {
        let mut out = vec![0u8; size];
        match decompressor.deflate_decompress(input, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(DecompressionError::InsufficientSpace) if size < limit => {
                size = size.saturating_mul(4).min(limit);
            }
            Err(DecompressionError::InsufficientSpace) => {
                return Err(Error::Deflate(format!(
                    "inflated payload exceeds {limit} bytes"
                )))
            }
            Err(DecompressionError::BadData) => {
                return Err(Error::Deflate("not raw DEFLATE data".into()));
            }
        }
    }
}
