//! What the targets share: one harness per process (keys, verifier), and
//! the split of an input into the parts a target signs.

use std::sync::OnceLock;
use tokend::fuzzing::Harness;

pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::new)
}

/// `data` as (selector byte, header text, payload text): the header runs
/// to the first newline. Text that is not UTF-8 is kept lossily.
#[allow(dead_code)] // not every target splits its input
pub fn parts(data: &[u8]) -> Option<(u8, String, String)> {
    let (&selector, rest) = data.split_first()?;
    let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let header = String::from_utf8_lossy(&rest[..cut]).into_owned();
    let payload = String::from_utf8_lossy(rest.get(cut + 1..).unwrap_or_default()).into_owned();
    Some((selector, header, payload))
}
