//! Step 5b of the token path: the claims, parsed once and checked against the
//! issuer's policy (RFC 7519 §4.1, RFC 8725 §3.8–3.11, RFC 9068).

use serde_json::{Map, Value};

use super::parse::parse_object;
use super::reason::Reason;
use crate::config::IssuerConfig;

/// A token's claims: every member as sent, plus the registered ones type-checked.
#[derive(Debug, Clone)]
pub struct Claims {
    map: Map<String, Value>,
    exp: Option<f64>,
    iat: Option<f64>,
    nbf: Option<f64>,
}

impl Claims {
    /// Parses the payload: a JSON object without repeated members in which `iss`,
    /// `sub`, `jti` are strings, `aud` a string or array of strings, and `exp`,
    /// `nbf`, `iat` numbers.
    pub fn parse(payload: &[u8]) -> Result<Claims, Reason> {
        let map = parse_object(payload).map_err(|e| e.unwrap_or(Reason::BadClaims))?;
        for name in ["iss", "sub", "jti"] {
            if map.get(name).is_some_and(|v| !v.is_string()) {
                return Err(Reason::BadClaims);
            }
        }
        match map.get("aud") {
            None | Some(Value::String(_)) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
            Some(_) => return Err(Reason::BadClaims),
        }
        let date = |name| match map.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(Reason::BadClaims),
            Some(_) => Err(Reason::BadClaims),
        };
        let (exp, iat, nbf) = (date("exp")?, date("iat")?, date("nbf")?);
        Ok(Claims { map, exp, iat, nbf })
    }

    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }

    fn str_claim(&self, name: &str) -> Option<&str> {
        self.map.get(name).and_then(Value::as_str)
    }

    pub fn iss(&self) -> Option<&str> {
        self.str_claim("iss")
    }
    pub fn sub(&self) -> Option<&str> {
        self.str_claim("sub")
    }
    pub fn jti(&self) -> Option<&str> {
        self.str_claim("jti")
    }
    /// `client_id` (RFC 9068), or `azp` as OIDC providers name it.
    pub fn client_id(&self) -> Option<&str> {
        self.str_claim("client_id")
            .or_else(|| self.str_claim("azp"))
    }
    pub fn exp(&self) -> Option<f64> {
        self.exp
    }
    pub fn iat(&self) -> Option<f64> {
        self.iat
    }

    /// Scopes as one space-separated string: `scope` (RFC 8693), or `scp` as a
    /// string or array (Okta, Azure AD).
    pub fn scope(&self) -> Option<String> {
        match self.map.get("scope").or_else(|| self.map.get("scp"))? {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => {
                let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                Some(parts.join(" "))
            }
            _ => None,
        }
    }

    /// Checks time, lifetime, audience and required claims at `now` (Unix seconds).
    pub fn check(&self, policy: &IssuerConfig, now: u64) -> Result<(), Reason> {
        let now = now as f64;
        let leeway = policy.leeway_seconds as f64;
        let exp = self.exp.ok_or(Reason::MissingExp)?;
        if now >= exp + leeway {
            return Err(Reason::Expired);
        }
        if self.nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(Reason::NotYetValid);
        }
        if self.iat.is_some_and(|iat| iat > now + leeway) {
            return Err(Reason::IssuedInFuture);
        }
        if policy.max_lifetime_seconds > 0 {
            let lifetime = exp - self.iat.unwrap_or(now);
            if lifetime > policy.max_lifetime_seconds as f64 {
                return Err(Reason::LifetimeTooLong);
            }
        }
        if !policy.audiences.is_empty() {
            let matches = |a: &str| policy.audiences.iter().any(|want| want == a);
            let ok = match self.map.get("aud") {
                Some(Value::String(a)) => matches(a),
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).any(matches),
                _ => false,
            };
            if !ok {
                return Err(Reason::AudienceMismatch);
            }
        }
        if policy
            .required_claims
            .iter()
            .any(|c| !self.map.contains_key(c))
        {
            return Err(Reason::MissingRequiredClaim);
        }
        Ok(())
    }
}

/// Whether a header `typ` is accepted: media types compare case-insensitively and
/// `application/` may be left out (RFC 7515 §4.1.9).
pub fn typ_accepted(typ: Option<&str>, accepted: &[String]) -> bool {
    if accepted.is_empty() {
        return true;
    }
    let Some(typ) = typ else { return false };
    let short = |t: &str| {
        let t = t.trim();
        if t.len() > 12 && t[..12].eq_ignore_ascii_case("application/") {
            t[12..].to_owned()
        } else {
            t.to_owned()
        }
    };
    let typ = short(typ);
    accepted.iter().any(|a| short(a).eq_ignore_ascii_case(&typ))
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
        Claims::parse(json.as_bytes())?.check(policy, now)
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
    fn malformed_registered_claims() {
        for bad in [
            r#"{"iss":["https://a"],"exp":1}"#,
            r#"{"exp":"1000100"}"#,
            r#"{"exp":1000100,"nbf":true}"#,
            r#"{"exp":1000100,"sub":42}"#,
            r#"{"exp":1000100,"aud":[1]}"#,
            r#"{"exp":1000100,"jti":null}"#,
        ] {
            assert_eq!(
                Claims::parse(bad.as_bytes()).unwrap_err(),
                Reason::BadClaims,
                "{bad}"
            );
        }
        assert_eq!(
            Claims::parse(br#"{"exp":1,"exp":2}"#).unwrap_err(),
            Reason::DuplicateMember
        );
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

    #[test]
    fn typ_matching() {
        let accepted = vec!["at+jwt".to_string(), "JWT".to_string()];
        assert!(typ_accepted(Some("at+jwt"), &accepted));
        assert!(typ_accepted(Some("application/AT+JWT"), &accepted));
        assert!(typ_accepted(Some("jwt"), &accepted));
        assert!(!typ_accepted(Some("id+jwt"), &accepted));
        assert!(!typ_accepted(None, &accepted));
        assert!(typ_accepted(None, &[]));
    }

    #[test]
    fn scope_from_scope_or_scp() {
        let c = Claims::parse(br#"{"scp":["read","write"]}"#).unwrap();
        assert_eq!(c.scope().as_deref(), Some("read write"));
        let c = Claims::parse(br#"{"scope":"a b","scp":"x"}"#).unwrap();
        assert_eq!(c.scope().as_deref(), Some("a b"));
    }
}
