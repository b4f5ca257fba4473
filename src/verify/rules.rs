//! Step 6 of the token path: the claim rules of one issuer's policy
//! (RFC 7519 §4.1, RFC 8725 §3.8–3.11, RFC 9068), applied to claims read once
//! by [`crate::token::claims`].

use crate::config::IssuerConfig;
use crate::token::parse::{Jws, parse_object};
use crate::token::{Claims, Reason};

/// The protected-header members an issuer pins (`header_claim_values`:
/// ALB's `signer` and `client`), each a string among its values.
pub fn check_header(jws: &Jws<'_>, policy: &IssuerConfig) -> Result<(), Reason> {
    if policy.header_claim_values.is_empty() {
        return Ok(());
    }
    let header = parse_object(&jws.header_json).map_err(|_| Reason::BadHeader)?;
    let holds = |(name, values): (&String, &Vec<String>)| {
        header
            .get(name)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|got| values.iter().any(|want| want == got))
    };
    if policy.header_claim_values.iter().all(holds) {
        Ok(())
    } else {
        Err(Reason::HeaderValueMismatch)
    }
}

/// A JWT's claims at `now` (Unix seconds): `exp` present (RFC 8725 §3.10's
/// advice made a rule), then every rule of [`check_answer_claims`].
pub fn check_claims(claims: &Claims, policy: &IssuerConfig, now: u64) -> Result<(), Reason> {
    if claims.exp().is_none() {
        return Err(Reason::MissingExp);
    }
    check_answer_claims(claims, policy, now)
}

/// Time, lifetime, audience and required claims at `now`; what an
/// introspection answer's members must pass too (there `exp` is optional, as
/// RFC 7662 has it, unless the issuer's `required_claims` lists it, as by default).
pub fn check_answer_claims(claims: &Claims, policy: &IssuerConfig, now: u64) -> Result<(), Reason> {
    let now = now as f64;
    let leeway = policy.leeway_seconds as f64;
    if claims.exp().is_some_and(|exp| now >= exp + leeway) {
        return Err(Reason::Expired);
    }
    if claims.nbf().is_some_and(|nbf| nbf > now + leeway) {
        return Err(Reason::NotYetValid);
    }
    if claims.iat().is_some_and(|iat| iat > now + leeway) {
        return Err(Reason::IssuedInFuture);
    }
    if policy.max_lifetime_seconds > 0
        && let Some(exp) = claims.exp()
    {
        let lifetime = exp - claims.iat().unwrap_or(now);
        if lifetime > policy.max_lifetime_seconds as f64 {
            return Err(Reason::LifetimeTooLong);
        }
    }
    if !policy.audiences.is_empty() {
        let wanted = |a: &str| policy.audiences.iter().any(|want| want == a);
        let matched = if policy.audience_claims.len() == 1 && policy.audience_claims[0] == "aud" {
            claims.audiences().any(wanted)
        } else {
            audience_values(claims, &policy.audience_claims).any(|a| wanted(&a))
        };
        if !matched {
            return Err(Reason::AudienceMismatch);
        }
    }
    // The dates are kept (and numbers when present), so the default
    // `required_claims = ["exp"]` needs no second read of the JSON.
    let kept = |name: &str| match name {
        "exp" => Some(claims.exp().is_some()),
        "iat" => Some(claims.iat().is_some()),
        "nbf" => Some(claims.nbf().is_some()),
        _ => None,
    };
    let required = &policy.required_claims;
    if required.iter().any(|c| kept(c) == Some(false)) {
        return Err(Reason::MissingRequiredClaim);
    }
    if required.iter().any(|c| kept(c).is_none()) {
        // Rarely configured: the other member names are read from the JSON again.
        let members: std::collections::HashMap<std::borrow::Cow<str>, serde::de::IgnoredAny> =
            serde_json::from_str(claims.json()).unwrap_or_default();
        if required.iter().any(|c| !members.contains_key(c.as_str())) {
            return Err(Reason::MissingRequiredClaim);
        }
    }
    if policy.auth_time_in_past {
        match members(claims)
            .get("auth_time")
            .and_then(serde_json::Value::as_f64)
        {
            Some(t) if t <= now + leeway => {}
            Some(_) => return Err(Reason::AuthTimeInFuture),
            None => return Err(Reason::MissingRequiredClaim),
        }
    }
    if !policy.required_claim_values.is_empty() {
        let members = members(claims);
        let holds = |(name, value): (&String, &String)| matches!(members.get(name), Some(serde_json::Value::String(s)) if s == value);
        if !policy.required_claim_values.iter().all(holds) {
            return Err(Reason::ClaimValueMismatch);
        }
    }
    Ok(())
}

/// The claims, read from the JSON again (for the settings that name claims
/// tokend does not keep: `audience_claims` other than `aud`, `required_claim_values`).
fn members(claims: &Claims) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(claims.json()).unwrap_or_default()
}

/// A string claim that tokend does not keep (read from the JSON again).
pub fn string_claim(claims: &Claims, name: &str) -> Option<String> {
    match members(claims).remove(name) {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    }
}

/// The strings in `names` claims (each a string or an array of strings).
fn audience_values(claims: &Claims, names: &[String]) -> impl Iterator<Item = String> {
    let members = members(claims);
    let mut values = Vec::new();
    for name in names {
        match members.get(name) {
            Some(serde_json::Value::String(s)) => values.push(s.clone()),
            Some(serde_json::Value::Array(items)) => {
                values.extend(items.iter().filter_map(|v| v.as_str().map(str::to_owned)))
            }
            _ => {}
        }
    }
    values.into_iter()
}

/// The issue time a subject or issuer revocation compares with `before`: `iat`,
/// or, for a token without one whose issuer caps lifetimes, `exp` minus the
/// cap: the first moment tokend accepts it (the lifetime rule is `exp − now`),
/// so an entry living `before` + cap + leeway outlives every token it covers.
/// `None` (uncapped issuer, no `iat`): covered while the entry lives.
pub fn issued_at(claims: &Claims, policy: &IssuerConfig) -> Option<f64> {
    claims.iat().or_else(|| {
        let cap = policy.max_lifetime_seconds;
        (cap > 0).then(|| claims.exp().unwrap_or(0.0) - cap as f64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn policy(extra: &str) -> IssuerConfig {
        let lifetime = if extra.contains("max_lifetime_seconds") {
            ""
        } else {
            "max_lifetime_seconds = 3600"
        };
        let text = format!(
            "[[issuers]]\nname = \"a\"\nissuer = \"https://a\"\njwks_uri = \"https://a/k\"\nleeway_seconds = 30\n{lifetime}\n{extra}"
        );
        Config::from_toml(&text, Vec::new())
            .unwrap()
            .issuers
            .remove(0)
    }

    fn check(json: &str, policy: &IssuerConfig, now: u64) -> Result<(), Reason> {
        check_claims(&Claims::parse(json.as_bytes())?, policy, now)
    }

    /// Cognito access tokens: the audience is `client_id` (they carry no
    /// `aud`), and `token_use` must be `access`: an ID token of the same pool
    /// and client is refused.
    #[test]
    fn cognito_audience_claims_and_token_use() {
        let text = "[[issuers]]\nname = \"c\"\nprovider = \"cognito\"\n\
            issuer = \"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X\"\n\
            jwks_uri = \"https://c/k\"\naudiences = [\"app1\"]\n";
        let p = Config::from_toml(text, Vec::new())
            .unwrap()
            .issuers
            .remove(0);
        let access = r#"{"exp":1000100,"client_id":"app1","token_use":"access"}"#;
        let now = 1_000_000;
        assert_eq!(p.audience_claims, vec!["client_id".to_owned()]);
        assert_eq!(check(access, &p, now), Ok(()));
        let id = r#"{"exp":1000100,"aud":"app1","token_use":"id"}"#;
        assert_eq!(check(id, &p, now), Err(Reason::AudienceMismatch));
        let id_with_client = r#"{"exp":1000100,"client_id":"app1","aud":"app1","token_use":"id"}"#;
        assert_eq!(
            check(id_with_client, &p, now),
            Err(Reason::ClaimValueMismatch)
        );
        let other_client =
            r#"{"exp":1000100,"client_id":"app2","aud":"app1","token_use":"access"}"#;
        assert_eq!(check(other_client, &p, now), Err(Reason::AudienceMismatch));
        let no_token_use = r#"{"exp":1000100,"client_id":"app1"}"#;
        assert_eq!(
            check(no_token_use, &p, now),
            Err(Reason::ClaimValueMismatch)
        );
        let array_token_use = r#"{"exp":1000100,"client_id":"app1","token_use":["access"]}"#;
        assert_eq!(
            check(array_token_use, &p, now),
            Err(Reason::ClaimValueMismatch)
        );
    }

    #[test]
    fn time_rules_with_leeway() {
        let p = policy("");
        let now = 1_000_000;
        assert_eq!(
            check(r#"{"iss":"https://a","exp":1000100}"#, &p, now),
            Ok(())
        );
        assert_eq!(
            check(r#"{"iss":"https://a"}"#, &p, now),
            Err(Reason::MissingExp)
        );
        assert_eq!(check(r#"{"exp":999980}"#, &p, now), Ok(()), "within leeway");
        assert_eq!(
            check(r#"{"exp":999970}"#, &p, now),
            Err(Reason::Expired),
            "exp + leeway == now is expired"
        );
        assert_eq!(check(r#"{"exp":1000100,"nbf":1000030}"#, &p, now), Ok(()));
        assert_eq!(
            check(r#"{"exp":1000100,"nbf":1000031}"#, &p, now),
            Err(Reason::NotYetValid)
        );
        assert_eq!(
            check(r#"{"exp":1000100,"iat":1000031}"#, &p, now),
            Err(Reason::IssuedInFuture)
        );
        assert_eq!(
            check(r#"{"exp":1000100.5,"iat":999999.5}"#, &p, now),
            Ok(()),
            "fractional dates"
        );
    }

    #[test]
    fn lifetime_is_capped() {
        let p = policy("");
        let now = 1_000_000;
        assert_eq!(check(r#"{"exp":1003600,"iat":1000000}"#, &p, now), Ok(()));
        assert_eq!(
            check(r#"{"exp":1003601,"iat":1000000}"#, &p, now),
            Err(Reason::LifetimeTooLong)
        );
        assert_eq!(
            check(r#"{"exp":1003601}"#, &p, now),
            Err(Reason::LifetimeTooLong),
            "without iat: exp - now"
        );
        let uncapped = policy("max_lifetime_seconds = 0");
        assert_eq!(check(r#"{"exp":9000000}"#, &uncapped, now), Ok(()));
    }

    #[test]
    fn audience_and_required_claims() {
        let p =
            policy("audiences = [\"orders\", \"billing\"]\nrequired_claims = [\"exp\", \"sub\"]");
        let now = 1_000_000;
        assert_eq!(
            check(r#"{"exp":1000100,"aud":"orders","sub":"u"}"#, &p, now),
            Ok(())
        );
        assert_eq!(
            check(
                r#"{"exp":1000100,"aud":["x","billing"],"sub":"u"}"#,
                &p,
                now
            ),
            Ok(())
        );
        assert_eq!(
            check(r#"{"exp":1000100,"aud":"x","sub":"u"}"#, &p, now),
            Err(Reason::AudienceMismatch)
        );
        assert_eq!(
            check(r#"{"exp":1000100,"sub":"u"}"#, &p, now),
            Err(Reason::AudienceMismatch)
        );
        assert_eq!(
            check(r#"{"exp":1000100,"aud":"orders"}"#, &p, now),
            Err(Reason::MissingRequiredClaim)
        );
    }
}
