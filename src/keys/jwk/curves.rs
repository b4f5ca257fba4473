//! Elliptic-curve keys: ECDSA P-256 and P-384 (`kty: EC`), whose points
//! aws-lc checks to lie on their curve, and Ed25519 (`kty: OKP`), whose
//! points are checked here for what aws-lc lets through.

use aws_lc_rs::signature::{self, ParsedPublicKey};
use serde_json::{Map, Value};

use super::{KeyRejected, Material, b64_member, refuse_private, str_member};
use crate::token::alg::Family;

pub(super) fn ec(obj: &Map<String, Value>) -> Result<Material, KeyRejected> {
    refuse_private(obj, &["d"])?;
    let crv = str_member(obj, "crv")?;
    let (family, len, verify_alg) = match crv {
        "P-256" => (Family::EcP256, 32, &signature::ECDSA_P256_SHA256_FIXED),
        "P-384" => (Family::EcP384, 48, &signature::ECDSA_P384_SHA384_FIXED),
        other => return Err(KeyRejected::UnsupportedCurve(other.to_owned())),
    };
    let x = b64_member(obj, "x")?;
    let y = b64_member(obj, "y")?;
    if x.len() != len || y.len() != len {
        return Err(KeyRejected::BadCoordinateLength);
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    // aws-lc checks that the point lies on the curve (invalid-curve attacks).
    let key =
        ParsedPublicKey::new(verify_alg, &point).map_err(|_| KeyRejected::InvalidPublicKey)?;
    Ok(Material::Ec { family, key })
}

pub(super) fn okp(obj: &Map<String, Value>) -> Result<Material, KeyRejected> {
    refuse_private(obj, &["d"])?;
    let crv = str_member(obj, "crv")?;
    if crv != "Ed25519" {
        return Err(KeyRejected::UnsupportedCurve(crv.to_owned()));
    }
    let x = b64_member(obj, "x")?;
    let x: [u8; 32] = x
        .as_slice()
        .try_into()
        .map_err(|_| KeyRejected::BadCoordinateLength)?;
    ed25519_point_is_sound(&x)?;
    let key =
        ParsedPublicKey::new(&signature::ED25519, x).map_err(|_| KeyRejected::InvalidPublicKey)?;
    Ok(Material::Ed25519(key))
}

/// An Ed25519 public key must be the canonical encoding of a point of the
/// prime-order subgroup. A small-order key (eight encodings, of order 1, 2, 4
/// or 8) lets anyone sign without a private key: with R a small-order point and
/// S = 0, `[S]B − [k]A = R` holds for many messages, and aws-lc's verifier
/// does not refuse such keys. Mixed-order keys (a torsion part added to an
/// honest key) and non-canonical encodings (y ≥ p, or x = 0 with the sign bit)
/// are never produced by key generation either; refusing them makes every
/// verifier agree on which signatures are valid.
fn ed25519_point_is_sound(x: &[u8; 32]) -> Result<(), KeyRejected> {
    let compressed = curve25519_dalek::edwards::CompressedEdwardsY(*x);
    let point = compressed
        .decompress()
        .ok_or(KeyRejected::InvalidPublicKey)?;
    if point.compress() != compressed {
        return Err(KeyRejected::NonCanonicalPoint);
    }
    if point.is_small_order() {
        return Err(KeyRejected::SmallOrderPoint);
    }
    if !point.is_torsion_free() {
        return Err(KeyRejected::MixedOrderPoint);
    }
    Ok(())
}
