//! The map hasher for keys that are already hashes — the token cache's
//! keyed index, the revocation copy's 128-bit fingerprints: hashing them
//! again (SipHash, the maps' default) spends time for no spread.

use std::hash::{BuildHasherDefault, Hasher};

/// Takes a `u64` key as its hash and folds a `u128` key's halves together.
#[derive(Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    /// Not reached by `u64` and `u128` keys; folds 8-byte words for any other.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = (n >> 64) as u64 ^ n as u64;
    }
}

pub type BuildPrehashed = BuildHasherDefault<Prehashed>;
