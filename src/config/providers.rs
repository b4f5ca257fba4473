//! `provider` on an issuer (SPEC, "Cloud identity providers"): what a
//! cloud's tokens need, written into the explicit keys a user could set
//! themselves (`issuer_aliases`, `audience_claims`, `required_claim_values`),
//! each only where the user left it unset (`required_claim_values` per
//! claim), then those keys' checks.

use serde::Deserialize;

use super::IssuerConfig;
use super::issuers::{KID, KeysFormat};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// Amazon Cognito user pools: access tokens name their app client in
    /// `client_id` (no `aud`) and say what they are in `token_use`.
    Cognito,
    /// Google: ID tokens carry `iss` in two spellings.
    Google,
    /// Firebase Authentication ID tokens: keys as an X.509 map.
    Firebase,
    /// Google Cloud Identity-Aware Proxy's signed header.
    Iap,
    /// GitHub Actions OIDC tokens (workload identity federation).
    GithubActions,
    /// Kubernetes projected service-account tokens.
    Kubernetes,
    /// Microsoft Entra ID (Azure AD), multi-tenant: one issuer per tenant.
    Azure,
    /// AWS Application Load Balancer's `x-amzn-oidc-data`.
    Alb,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cognito => "cognito",
            Provider::Google => "google",
            Provider::Firebase => "firebase",
            Provider::Iap => "iap",
            Provider::GithubActions => "github-actions",
            Provider::Kubernetes => "kubernetes",
            Provider::Azure => "azure",
            Provider::Alb => "alb",
        }
    }

    /// The header the cloud puts its token in, read when `token_sources`
    /// is left unset.
    pub fn token_header(self) -> Option<&'static str> {
        match self {
            Provider::Iap => Some("x-goog-iap-jwt-assertion"),
            Provider::Alb => Some("x-amzn-oidc-data"),
            _ => None,
        }
    }
}

const GOOGLE: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Fills in `issuer`'s preset, then checks the keys behind presets.
pub(super) fn apply(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    match issuer.provider {
        None => {
            if issuer.cognito_token_use.is_some() {
                errors.push(format!(
                    "{at}.cognito_token_use: only with provider = \"cognito\""
                ));
            }
        }
        Some(Provider::Google) => google(issuer, at, errors),
        Some(Provider::Cognito) => cognito(issuer, at, errors),
        Some(Provider::Firebase) => firebase(issuer, at, errors),
        Some(Provider::Iap) => iap(issuer, at, errors),
        Some(Provider::GithubActions) => github_actions(issuer, at, errors),
        Some(Provider::Kubernetes) => kubernetes(issuer, at, errors),
        Some(Provider::Azure) => azure(issuer, at, errors),
        Some(Provider::Alb) => alb(issuer, at, errors),
    }
    tenant_templates(issuer, at, errors);
    pem_by_kid(issuer, at, errors);
    if issuer.keys_format == Some(KeysFormat::X509Map) && issuer.jwks_uri.is_none() {
        errors.push(format!(
            "{at}.keys_format: \"x509_map\" is read from jwks_uri: set it"
        ));
    }
    if issuer.audience_claims.is_empty() {
        issuer.audience_claims = vec!["aud".into()];
    }
    if issuer.audience_claims.iter().any(String::is_empty) {
        errors.push(format!(
            "{at}.audience_claims: claim names must not be empty"
        ));
    }
    for (i, alias) in issuer.issuer_aliases.iter().enumerate() {
        if alias.is_empty() || *alias == issuer.issuer {
            errors.push(format!(
                "{at}.issuer_aliases[{i}]: must be non-empty and differ from issuer"
            ));
        }
    }
    if issuer.required_claim_values.keys().any(String::is_empty) {
        errors.push(format!(
            "{at}.required_claim_values: claim names must not be empty"
        ));
    }
    if !issuer.header_claim_values.is_empty() && issuer.backchannel_logout {
        errors.push(format!(
            "{at}.backchannel_logout: not with header_claim_values (logout tokens are not checked against them)"
        ));
    }
    for (name, values) in &issuer.header_claim_values {
        if name.is_empty() || values.is_empty() {
            errors.push(format!(
                "{at}.header_claim_values: each member needs a name and at least one value"
            ));
        }
    }
}

/// Google ID tokens: `iss` is `https://accounts.google.com` or
/// `accounts.google.com` (https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken).
fn google(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    let Some(other) = GOOGLE.iter().find(|s| **s != issuer.issuer) else {
        return;
    };
    if !GOOGLE.contains(&issuer.issuer.as_str()) {
        errors.push(format!(
            "{at}.issuer: provider \"google\" needs issuer = \"https://accounts.google.com\""
        ));
        return;
    }
    if !issuer.issuer_aliases.iter().any(|a| a == other) {
        issuer.issuer_aliases.push((*other).to_owned());
    }
    if issuer.audiences.is_empty() {
        errors.push(format!(
            "{at}.audiences: provider \"google\" needs your OAuth client ids (any Google ID token would pass without them)"
        ));
    }
}

/// Cognito user pool tokens
/// (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html):
/// `iss` is `https://cognito-idp.<region>.amazonaws.com/<pool id>`; an access
/// token's app client is `client_id` and `token_use` is `access`; an ID
/// token's is `aud` and `token_use` is `id`.
fn cognito(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    let host_ok = issuer
        .issuer
        .strip_prefix("https://cognito-idp.")
        .and_then(|rest| rest.split_once(".amazonaws.com/"))
        .is_some_and(|(region, pool)| {
            !region.is_empty() && !pool.is_empty() && !pool.contains('/')
        });
    if !host_ok {
        errors.push(format!(
            "{at}.issuer: provider \"cognito\" needs https://cognito-idp.<region>.amazonaws.com/<user pool id>"
        ));
    }
    let token_use = issuer
        .cognito_token_use
        .clone()
        .unwrap_or_else(|| "access".into());
    let audience_claim = match token_use.as_str() {
        "access" => "client_id",
        "id" => "aud",
        _ => {
            errors.push(format!(
                "{at}.cognito_token_use: must be \"access\" or \"id\""
            ));
            return;
        }
    };
    if issuer.audience_claims.is_empty() {
        issuer.audience_claims = vec![audience_claim.into()];
    }
    // Merged, not filled only when empty: a user adding a claim of their own
    // must not silently lose the token_use check.
    issuer
        .required_claim_values
        .entry("token_use".into())
        .or_insert(token_use);
    if issuer.audiences.is_empty() {
        errors.push(format!(
            "{at}.audiences: provider \"cognito\" needs your app client ids (any client of the pool would pass without them)"
        ));
    }
}

/// Where Google publishes the certificates that sign Firebase ID tokens.
pub const FIREBASE_KEYS: &str =
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com";

/// Firebase Authentication ID tokens
/// (https://firebase.google.com/docs/auth/admin/verify-id-tokens#verify_id_tokens_using_a_third-party_jwt_library):
/// `iss` is `https://securetoken.google.com/<project>`, `aud` the project,
/// `auth_time` in the past; keys are Google's X.509 map.
fn firebase(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    let project = issuer
        .issuer
        .strip_prefix("https://securetoken.google.com/")
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .map(str::to_owned);
    let Some(project) = project else {
        errors.push(format!(
            "{at}.issuer: provider \"firebase\" needs https://securetoken.google.com/<project id>"
        ));
        return;
    };
    if issuer.audiences.is_empty() {
        issuer.audiences = vec![project];
    }
    if no_key_source(issuer) {
        issuer.jwks_uri = Some(FIREBASE_KEYS.into());
        issuer.keys_format.get_or_insert(KeysFormat::X509Map);
    }
    if !issuer.required_claims.iter().any(|c| c == "auth_time") {
        issuer.required_claims.push("auth_time".into());
    }
    issuer.auth_time_in_past = true;
}

/// Where Google publishes IAP's signing keys (a JWK set).
pub const IAP_KEYS: &str = "https://www.gstatic.com/iap/verify/public_key-jwk";
const IAP_ISSUER: &str = "https://cloud.google.com/iap";
const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Whether no key source is configured (a preset may then name its cloud's).
fn no_key_source(issuer: &IssuerConfig) -> bool {
    !issuer.discovery
        && issuer.jwks_uri.is_none()
        && issuer.keys_url_template.is_none()
        && issuer.jwks_file.is_none()
        && issuer.hmac_secret.is_none()
        && issuer.hmac_secret_env.is_none()
        && issuer.hmac_secret_file.is_none()
}

/// The issuer a preset allows, and the audiences it cannot do without.
fn fixed_issuer(issuer: &IssuerConfig, want: &str, what: &str, at: &str, errors: &mut Vec<String>) {
    if issuer.issuer != want {
        errors.push(format!(
            "{at}.issuer: provider \"{what}\" needs issuer = \"{want}\""
        ));
    }
    if issuer.audiences.is_empty() {
        errors.push(format!(
            "{at}.audiences: provider \"{what}\" needs the audiences your tokens carry (every {what} token would pass without them)"
        ));
    }
}

/// Google IAP's `x-goog-iap-jwt-assertion`
/// (https://cloud.google.com/iap/docs/signed-headers-howto): ES256, keys at
/// [`IAP_KEYS`], `iss = https://cloud.google.com/iap`, `aud` the backend
/// service or app (`/projects/<number>/global/backendServices/<id>`).
fn iap(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    fixed_issuer(issuer, IAP_ISSUER, "iap", at, errors);
    if no_key_source(issuer) {
        issuer.jwks_uri = Some(IAP_KEYS.into());
    }
    if issuer.algorithms.is_empty() {
        issuer.algorithms = vec!["ES256".into()];
    }
}

/// GitHub Actions OIDC
/// (https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect):
/// discovery on `https://token.actions.githubusercontent.com`; `aud` is the
/// owner's URL or the audience the workflow asked for; route claims match
/// `repository`, `ref`, `environment`.
fn github_actions(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    fixed_issuer(issuer, GITHUB_ACTIONS_ISSUER, "github-actions", at, errors);
    if no_key_source(issuer) {
        issuer.discovery = true;
    }
}

/// Kubernetes projected service-account tokens
/// (https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#bound-service-account-tokens):
/// keys by discovery on the cluster's issuer (EKS, GKE and AKS publish it);
/// `aud` is what the pod's projected volume asked for, so `audiences` is
/// required — without it any token of the cluster would pass, the API
/// server's own included. Route claims read the `kubernetes.io` member
/// (`"kubernetes.io.namespace" = "payments"`).
fn kubernetes(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    if no_key_source(issuer) {
        issuer.discovery = true;
    }
    if issuer.audiences.is_empty() {
        errors.push(format!(
            "{at}.audiences: provider \"kubernetes\" needs the audience your pods' projected tokens ask for (any token of the cluster would pass without it)"
        ));
    }
}

/// The placeholder for a tenant in an issuer spelling.
pub const TENANT: &str = "{tenantid}";
const AZURE_V2: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
const AZURE_V1: &str = "https://sts.windows.net/{tenantid}/";
/// Microsoft's keys for every tenant (the multi-tenant, "common" set).
pub const AZURE_KEYS: &str = "https://login.microsoftonline.com/common/discovery/v2.0/keys";

/// Microsoft Entra ID multi-tenant apps
/// (https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens#validate-the-issuer):
/// `iss` is `https://login.microsoftonline.com/<tid>/v2.0` (v2 tokens) or
/// `https://sts.windows.net/<tid>/` (v1), the token's `tid` must be that
/// tenant, and the tenant must be one the app serves.
fn azure(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    if !issuer.issuer.contains(TENANT) && issuer.issuer != AZURE_V2 {
        errors.push(format!(
            "{at}.issuer: provider \"azure\" needs issuer = \"{AZURE_V2}\" (or another spelling with {TENANT})"
        ));
    }
    if issuer.issuer == AZURE_V2 && !issuer.issuer_aliases.iter().any(|a| a == AZURE_V1) {
        issuer.issuer_aliases.push(AZURE_V1.into());
    }
    if no_key_source(issuer) {
        issuer.jwks_uri = Some(AZURE_KEYS.into());
    }
    if issuer.audiences.is_empty() {
        errors.push(format!(
            "{at}.audiences: provider \"azure\" needs your application id URI or client id (any Entra ID token would pass without it)"
        ));
    }
}

/// `{tenantid}` spellings: once each, with `tenants` to say which pass, and
/// no discovery (it would fetch from a URL with the placeholder in it).
fn tenant_templates(issuer: &IssuerConfig, at: &str, errors: &mut Vec<String>) {
    let spellings = std::iter::once(&issuer.issuer).chain(&issuer.issuer_aliases);
    let templated: Vec<&String> = spellings.filter(|s| s.contains(TENANT)).collect();
    if templated.iter().any(|s| s.matches(TENANT).count() > 1) {
        errors.push(format!(
            "{at}.issuer: {TENANT} may appear once in a spelling"
        ));
    }
    match (templated.is_empty(), issuer.tenants.is_empty()) {
        (false, true) => errors.push(format!(
            "{at}.tenants: list the tenant ids whose tokens pass (or [\"*\"] for any): the issuer has {TENANT}"
        )),
        (true, false) => errors.push(format!(
            "{at}.tenants: only for an issuer spelled with {TENANT}"
        )),
        _ => {}
    }
    if !templated.is_empty() && issuer.discovery {
        errors.push(format!(
            "{at}.discovery: not with {TENANT} in the issuer: set jwks_uri"
        ));
    }
}

/// AWS ALB's `x-amzn-oidc-data`
/// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-authenticate-users.html#user-claims-encoding):
/// ES256, one PEM key per `kid` at the region's key endpoint, padded
/// base64url, and in the protected header `signer` (the load balancer's ARN)
/// and `client` (the OIDC client id). The regional endpoint serves the keys
/// of every load balancer in the region, so `signer` must be checked: without
/// it any ALB's token, anyone's, would pass.
fn alb(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    let signers = issuer
        .header_claim_values
        .get("signer")
        .cloned()
        .unwrap_or_default();
    if signers.is_empty() {
        errors.push(format!(
            "{at}.header_claim_values.signer: provider \"alb\" needs your load balancers' ARNs (the region's key endpoint serves every ALB's keys: without them any ALB's token would pass)"
        ));
    }
    if !issuer.audiences.is_empty() {
        errors.push(format!(
            "{at}.audiences: ALB tokens carry no aud: put your OIDC client ids in header_claim_values.client"
        ));
    }
    if no_key_source(issuer) {
        let regions: Option<std::collections::BTreeSet<&str>> =
            signers.iter().map(|arn| alb_region(arn)).collect();
        match regions {
            Some(regions) if regions.len() == 1 => {
                let region = regions.into_iter().next().unwrap_or_default();
                issuer.keys_url_template = Some(format!(
                    "https://public-keys.auth.elb.{region}.amazonaws.com/{KID}"
                ));
            }
            _ if signers.is_empty() => {}
            _ => errors.push(format!(
                "{at}.keys_url_template: set it (the signer ARNs name no single AWS region)"
            )),
        }
    }
    if issuer.keys_url_template.is_some() {
        issuer.keys_format.get_or_insert(KeysFormat::PemByKid);
    }
    if issuer.algorithms.is_empty() {
        issuer.algorithms = vec!["ES256".into()];
    }
    issuer.padded_base64 = true;
}

/// The region of a load balancer ARN
/// (`arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/…`).
fn alb_region(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some("aws"), Some("elasticloadbalancing"), Some(region)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let well_formed = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    well_formed.then_some(region)
}

/// `keys_format = "pem_by_kid"` and `keys_url_template` come together; the
/// template holds `{kid}` once, in its path, so a `kid` can never choose
/// the host.
fn pem_by_kid(issuer: &IssuerConfig, at: &str, errors: &mut Vec<String>) {
    let wanted = issuer.keys_format == Some(KeysFormat::PemByKid);
    match (&issuer.keys_url_template, wanted) {
        (None, true) => errors.push(format!(
            "{at}.keys_format: \"pem_by_kid\" is read from keys_url_template: set it"
        )),
        (Some(_), false) => errors.push(format!(
            "{at}.keys_url_template: only with keys_format = \"pem_by_kid\""
        )),
        (Some(template), true) => {
            // AWS's endpoint serves every load balancer's keys.
            if template.contains("public-keys.auth.elb.")
                && !issuer.header_claim_values.contains_key("signer")
            {
                errors.push(format!(
                    "{at}.header_claim_values.signer: AWS's key endpoint serves every ALB's keys: list your load balancers' ARNs"
                ));
            }
            let in_path = template
                .split_once(KID)
                .and_then(|(before, _)| before.split_once("://"))
                .is_some_and(|(_, rest)| rest.contains('/'));
            if template.matches(KID).count() != 1 || !in_path {
                errors.push(format!(
                    "{at}.keys_url_template: must hold {KID} once, in the path (https://host/…/{KID})"
                ));
            }
        }
        (None, false) => {}
    }
}
