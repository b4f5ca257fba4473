//! Edge authorization through `/auth` and Envoy `Check`: every matcher, the
//! three verdicts, token sources, path attacks, and `/admin/explain`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use tokend::mint::{Signer, jwks};
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";
const OTHER_ISS: &str = "https://other.test";

pub const ROUTES: &str = r#"
[authorization]
token_sources = ["header:authorization", "cookie:session", "query:access_token"]

[[routes]]
name = "health"
path = "/healthz"
anonymous = true

[[routes]]
name = "orders-write"
path_prefix = "/orders"
methods = ["POST", "PUT", "DELETE"]
scopes_all = ["orders:write"]

[[routes]]
name = "orders-read"
path_prefix = "/orders"
scopes_any = ["orders:read", "orders:admin"]

[[routes]]
name = "admin"
hosts = ["admin.example.com", "*.internal.example"]
path_prefix = "/admin"
issuers = ["main"]
audiences = ["admin-api"]
claims = { tenant = "acme", "realm_access.roles" = "admin" }

[[routes]]
name = "admin-elsewhere"
path_prefix = "/admin"
scopes_all = ["never-granted"]
"#;

pub struct Edge {
    pub app: TestApp,
    pub key: Signer,
    other: Signer,
    _idps: (Idp, Idp),
}

pub async fn edge(extra: &str) -> Edge {
    let key = signer(Algorithm::ES256, "k1");
    let other = signer(Algorithm::ES256, "o1");
    let idp = Idp::start(jwks(&[&key])).await;
    let other_idp = Idp::start(jwks(&[&other])).await;
    let issuers = format!(
        "{}{}",
        jwks_issuer("main", ISS, &idp, ""),
        jwks_issuer("other", OTHER_ISS, &other_idp, "")
    );
    let app = spawn_ready(config_with(&issuers, extra)).await;
    Edge {
        app,
        key,
        other,
        _idps: (idp, other_idp),
    }
}

impl Edge {
    /// A token of the main issuer with these claims changed.
    pub fn token(&self, changes: Value) -> String {
        self.key.sign(Algorithm::ES256, &with(claims(ISS), changes))
    }

    /// `/auth` as Traefik and Caddy call it.
    pub async fn auth(
        &self,
        method: &str,
        host: &str,
        uri: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .app
            .http
            .get(format!("{}/auth", self.app.base))
            .header("x-forwarded-method", method)
            .header("x-forwarded-host", host)
            .header("x-forwarded-uri", uri);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send().await.unwrap()
    }

    /// The status and challenge `/auth` answers.
    pub async fn verdict(
        &self,
        method: &str,
        host: &str,
        uri: &str,
        token: Option<&str>,
    ) -> (u16, String) {
        let response = self.auth(method, host, uri, token).await;
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (response.status().as_u16(), challenge)
    }
}

fn forbidden(scope: &str) -> (u16, String) {
    (
        403,
        format!(r#"Bearer realm="tokend", error="insufficient_scope", scope="{scope}""#),
    )
}

fn unauthenticated() -> (u16, String) {
    (
        401,
        r#"Bearer realm="tokend", error="invalid_token""#.into(),
    )
}

fn allowed() -> (u16, String) {
    (200, String::new())
}

/// What, method, host, URI, token, expected status and challenge.
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    (u16, String),
);

#[tokio::test]
async fn each_matcher_decides_as_documented() {
    let e = edge(ROUTES).await;
    let reader = e.token(json!({"scope": "orders:read"}));
    let writer = e.token(json!({"scope": "orders:read orders:write"}));
    let mut scp = with(claims(ISS), json!({"scp": ["orders:write", "x"]}));
    scp.as_object_mut().unwrap().remove("scope");
    let scp_array = e.key.sign(Algorithm::ES256, &scp);
    let near_miss = e.token(json!({"scope": "orders:reader ORDERS:READ orders"}));
    let admin_claims = json!({"aud": ["orders", "admin-api"], "tenant": "acme", "realm_access": {"roles": ["user", "admin"]}});
    let admin = e.token(admin_claims.clone());
    let wrong_tenant = e.token(with(admin_claims.clone(), json!({"tenant": "evil"})));
    let no_role = e.token(with(
        admin_claims.clone(),
        json!({"realm_access": {"roles": ["user"]}}),
    ));
    let wrong_aud = e.token(with(admin_claims.clone(), json!({"aud": "orders"})));
    let other_issuer = e.other.sign(
        Algorithm::ES256,
        &with(claims(OTHER_ISS), admin_claims.clone()),
    );
    let h = "api.example.com";
    let cases: Vec<Case> = vec![
        (
            "public route, no token",
            "GET",
            h,
            "/healthz",
            None,
            allowed(),
        ),
        (
            "public route ignores a bad token",
            "GET",
            h,
            "/healthz",
            Some("x.y.z"),
            allowed(),
        ),
        (
            "public route is exact",
            "GET",
            h,
            "/healthz/x",
            None,
            unauthenticated(),
        ),
        (
            "scopes_any granted",
            "GET",
            h,
            "/orders/7",
            Some(&reader),
            allowed(),
        ),
        ("no token", "GET", h, "/orders", None, unauthenticated()),
        (
            "bad token",
            "GET",
            h,
            "/orders",
            Some("x.y.z"),
            unauthenticated(),
        ),
        (
            "scopes_all missing",
            "POST",
            h,
            "/orders",
            Some(&reader),
            forbidden("orders:write"),
        ),
        (
            "scopes_all granted",
            "POST",
            h,
            "/orders",
            Some(&writer),
            allowed(),
        ),
        (
            "scp array",
            "PUT",
            h,
            "/orders/1",
            Some(&scp_array),
            allowed(),
        ),
        (
            "lower-case method is the same method",
            "post",
            h,
            "/orders",
            Some(&reader),
            forbidden("orders:write"),
        ),
        (
            "no prefix or case folding of scopes",
            "GET",
            h,
            "/orders",
            Some(&near_miss),
            forbidden("orders:read orders:admin"),
        ),
        (
            "prefix ends on a segment",
            "GET",
            h,
            "/ordersx",
            Some(&near_miss),
            allowed(),
        ),
        (
            "query is not part of the path",
            "GET",
            h,
            "/orders?x=/healthz",
            Some(&near_miss),
            forbidden("orders:read orders:admin"),
        ),
        (
            "host, issuer, audience, claims",
            "GET",
            "admin.example.com",
            "/admin/users",
            Some(&admin),
            allowed(),
        ),
        (
            "host with port and upper case",
            "GET",
            "ADMIN.example.com:8443",
            "/admin",
            Some(&admin),
            allowed(),
        ),
        (
            "wildcard host",
            "GET",
            "ops.internal.example",
            "/admin",
            Some(&admin),
            allowed(),
        ),
        (
            "wildcard is one label",
            "GET",
            "a.b.internal.example",
            "/admin",
            Some(&admin),
            forbidden("never-granted"),
        ),
        (
            "other host falls through",
            "GET",
            h,
            "/admin",
            Some(&admin),
            forbidden("never-granted"),
        ),
        (
            "claim value",
            "GET",
            "admin.example.com",
            "/admin",
            Some(&wrong_tenant),
            (
                403,
                r#"Bearer realm="tokend", error="insufficient_scope""#.into(),
            ),
        ),
        (
            "claim array on a dotted path",
            "GET",
            "admin.example.com",
            "/admin",
            Some(&no_role),
            (
                403,
                r#"Bearer realm="tokend", error="insufficient_scope""#.into(),
            ),
        ),
        (
            "route audiences",
            "GET",
            "admin.example.com",
            "/admin",
            Some(&wrong_aud),
            (
                403,
                r#"Bearer realm="tokend", error="insufficient_scope""#.into(),
            ),
        ),
        (
            "route issuers",
            "GET",
            "admin.example.com",
            "/admin",
            Some(&other_issuer),
            (
                403,
                r#"Bearer realm="tokend", error="insufficient_scope""#.into(),
            ),
        ),
        (
            "unmatched: any active token",
            "GET",
            h,
            "/elsewhere",
            Some(&near_miss),
            allowed(),
        ),
        (
            "unmatched: still needs one",
            "GET",
            h,
            "/elsewhere",
            None,
            unauthenticated(),
        ),
    ];
    for (what, method, host, uri, token, want) in cases {
        assert_eq!(e.verdict(method, host, uri, token).await, want, "{what}");
    }
    let metrics = e.app.metrics().await;
    for series in [
        r#"tokend_authz_decisions_total{route="orders-write",decision="deny_policy"}"#,
        r#"tokend_authz_decisions_total{route="health",decision="allow"}"#,
        r#"tokend_authz_decisions_total{route="orders-read",decision="deny_unauthenticated"}"#,
        r#"tokend_authz_decisions_total{route="default",decision="allow"}"#,
    ] {
        assert!(
            metric_value(&metrics, series) >= 1.0,
            "{series} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_public_route_strips_identity_the_client_made_up() {
    let e = edge(ROUTES).await;
    let response = e
        .app
        .http
        .get(format!("{}/auth", e.app.base))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/healthz")
        .header("x-auth-subject", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for name in ["x-auth-subject", "x-auth-scope", "x-tokend-assertion"] {
        assert_eq!(
            response.headers().get(name).map(|v| v.to_str().unwrap()),
            Some(""),
            "{name} is sent empty so that gateways overwrite the client's copy"
        );
    }
}

/// Paths an attacker writes so that tokend and the upstream disagree about
/// which route they name. Each lands on the route the upstream would serve,
/// or is refused.
#[tokio::test]
async fn path_tricks_reach_the_route_the_upstream_would_serve_or_are_refused() {
    let e = edge(ROUTES).await;
    let reader = e.token(json!({"scope": "orders:read"}));
    let admin_host = "admin.example.com";
    let bad = |what: &str| (400, what.to_owned());
    let admin_refused = (
        403,
        r#"Bearer realm="tokend", error="insufficient_scope""#.to_owned(),
    );
    for (what, method, uri, want) in [
        (
            "dot segments resolve",
            "GET",
            "/orders/../admin",
            admin_refused.clone(),
        ),
        (
            "encoded dots resolve",
            "GET",
            "/orders/%2e%2e/admin",
            admin_refused.clone(),
        ),
        (
            "encoded letters decode",
            "GET",
            "/%61dmin",
            admin_refused.clone(),
        ),
        (
            "double slash collapses",
            "GET",
            "//admin",
            admin_refused.clone(),
        ),
        (
            "dot segment staying inside",
            "GET",
            "/admin/../orders/1",
            allowed(),
        ),
        (
            "encoded slashes hiding ..",
            "GET",
            "/orders%2F..%2Fadmin",
            bad(""),
        ),
        (
            "encoded backslashes hiding ..",
            "GET",
            "/orders%5c..%5cadmin",
            bad(""),
        ),
        ("raw backslashes", "GET", "/orders\\..\\admin", bad("")),
        ("path parameter on ..", "GET", "/orders/..;/admin", bad("")),
        ("not a path", "GET", "http://evil.example/admin", bad("")),
        ("asterisk form", "GET", "*", bad("")),
        ("tab inside", "GET", "/orders\t/x", bad("")),
        ("malformed escape", "GET", "/orders/%zz", bad("")),
        ("method with a space", "GE T", "/orders", bad("")),
    ] {
        let (status, challenge) = e.verdict(method, admin_host, uri, Some(&reader)).await;
        if want.0 == 400 {
            assert_eq!(status, 400, "{what}: {uri}");
        } else {
            assert_eq!((status, challenge), want, "{what}: {uri}");
        }
    }
    // A forwarded request tokend was not told about is refused while routes exist.
    let response = e
        .app
        .http
        .get(format!("{}/auth", e.app.base))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("X-Forwarded-Uri"),
        "{body}"
    );
}

#[tokio::test]
async fn nginx_headers_describe_the_request_too() {
    let e = edge(ROUTES).await;
    let reader = e.token(json!({"scope": "orders:read"}));
    let ask = |method: &'static str, uri: &'static str| {
        e.app
            .http
            .get(format!("{}/auth", e.app.base))
            .header("x-original-method", method)
            .header("x-original-uri", uri)
            .header("host", "api.example.com")
            .bearer_auth(&reader)
            .send()
    };
    assert_eq!(ask("GET", "/orders/1?page=2").await.unwrap().status(), 200);
    assert_eq!(
        ask("DELETE", "/orders/1").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn default_deny_refuses_what_no_route_matches() {
    let e =
        edge(&ROUTES.replace("[authorization]\n", "[authorization]\ndefault = \"deny\"\n")).await;
    let token = e.token(json!({}));
    assert_eq!(
        e.verdict("GET", "api.example.com", "/elsewhere", Some(&token))
            .await,
        (
            403,
            r#"Bearer realm="tokend", error="insufficient_scope""#.into()
        )
    );
    assert_eq!(
        e.verdict("GET", "api.example.com", "/elsewhere", None)
            .await,
        unauthenticated(),
        "no token is still a 401"
    );
    assert_eq!(
        e.verdict("GET", "api.example.com", "/healthz", None).await,
        allowed()
    );
}

#[tokio::test]
async fn token_sources_are_tried_in_order() {
    let e = edge(ROUTES).await;
    let reader = e.token(json!({"scope": "orders:read"}));
    let base = format!("{}/auth", e.app.base);
    let ask = |uri: String, headers: Vec<(&'static str, String)>| {
        let mut r = e
            .app
            .http
            .get(&base)
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", uri);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    let cookie = format!("theme=dark; session={reader}");
    assert_eq!(
        ask("/orders".into(), vec![("cookie", cookie.clone())]).await,
        200
    );
    assert_eq!(
        ask(format!("/orders?access_token={reader}"), vec![]).await,
        200
    );
    assert_eq!(
        ask(
            "/orders".into(),
            vec![
                ("authorization", "Basic eDp5".into()),
                ("cookie", cookie.clone())
            ]
        )
        .await,
        200,
        "a header that is not a bearer token is passed over"
    );
    assert_eq!(
        ask(
            "/orders".into(),
            vec![
                ("authorization", "Bearer x.y.z".into()),
                ("cookie", cookie.clone())
            ]
        )
        .await,
        401,
        "the first token present decides: a bad one is not retried from a cookie"
    );
    assert_eq!(
        ask(
            "/orders".into(),
            vec![("cookie", format!("session={reader}; session=x.y.z"))]
        )
        .await,
        401,
        "a cookie given twice is refused"
    );
    let huge = format!("session={}", "a".repeat(60_000));
    assert_eq!(ask("/orders".into(), vec![("cookie", huge)]).await, 401);

    // Only the configured sources count: an ALB-style header alone.
    let alb = edge("[authorization]\ntoken_sources = [\"header:x-amzn-oidc-data\"]\n").await;
    let token = alb.token(json!({}));
    let status = |headers: Vec<(&'static str, String)>| {
        let mut r = alb.app.http.get(format!("{}/auth", alb.app.base));
        for (k, v) in headers {
            r = r.header(k, v);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(vec![("x-amzn-oidc-data", token.clone())]).await, 200);
    assert_eq!(
        status(vec![("authorization", format!("Bearer {token}"))]).await,
        401
    );
}

#[tokio::test]
async fn explain_says_why_and_normal_answers_do_not() {
    let e = edge(ROUTES).await;
    // tokend's own clock (fixed by the test), not a second later.
    let t = e.app.clock.load(std::sync::atomic::Ordering::SeqCst);
    let expired = e.token(json!({"iat": t - 600, "exp": t - 120}));
    let explain = |body: Value, auth: (&'static str, &'static str)| {
        e.app
            .http
            .post(format!("{}/admin/explain", e.app.base))
            .basic_auth(auth.0, Some(auth.1))
            .json(&body)
            .send()
    };
    let answer: Value = explain(json!({"token": expired}), ("ops", OPS_SECRET))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], false);
    assert_eq!(answer["reason"], "expired");
    assert_eq!(answer["issuer"], "main");
    assert_eq!(answer["kid"], "k1");
    assert_eq!(answer["alg"], "ES256");
    assert_eq!(
        answer["detail"],
        format!("exp {} is 120 s past (leeway 30)", t - 120)
    );
    assert_eq!(
        e.app.introspect(&expired).await,
        json!({"active": false}),
        "introspection never says why"
    );

    let reader = e.token(json!({"scope": "orders:read"}));
    let answer: Value = explain(
        json!({"token": reader, "method": "POST", "path": "/orders/9"}),
        ("ops", OPS_SECRET),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["route"], "orders-write");
    assert_eq!(answer["decision"], "deny");
    assert_eq!(answer["missing_scopes"], json!(["orders:write"]));
    let answer: Value = explain(
        json!({"token": "x.y.z", "path": "/healthz"}),
        ("ops", OPS_SECRET),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        (&answer["reason"], &answer["route"], &answer["decision"]),
        (&json!("bad_base64"), &json!("health"), &json!("allow"))
    );

    let unknown_kid = Signer::generate(Algorithm::ES256, "k9").sign(Algorithm::ES256, &claims(ISS));
    let answer: Value = explain(json!({"token": unknown_kid}), ("ops", OPS_SECRET))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["reason"], "unknown_kid");
    assert!(
        answer["detail"].as_str().unwrap().contains("(kids: k1)"),
        "{answer}"
    );

    let refused = explain(json!({"token": reader}), ("gateway", GATEWAY_SECRET))
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "explain needs admin");
    let malformed = explain(json!({"tok": reader}), ("ops", OPS_SECRET))
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
}

#[test]
fn check_config_names_every_bad_route() {
    let text = r#"
[[issuers]]
name = "main"
issuer = "https://idp.example.com"
jwks_uri = "https://idp.example.com/keys"

[authorization]
default = "maybe"

[[routes]]
name = "a"
hosts = []
issuers = ["main", "nope"]

[[routes]]
name = "a"
hosts = ["*.example.com", "bad host", "api.example.com:443", "*.*.example.com"]
path_prefix = "orders"

[[routes]]
name = "c d"
path = "/x"
path_prefix = "/y"
scopes_all = ["two words", ""]
claims = { tenant = ["acme"] }

[[routes]]
name = "e"
path = "/orders/../admin"
methods = ["GET", "BAD METHOD"]

[[routes]]
name = "f"
anonymous = true
scopes_any = ["x"]

[[routes]]
name = "g"
colour = "blue"
"#;
    let errors = tokend::config::Config::from_toml(text, Vec::new())
        .unwrap_err()
        .0;
    let expect = [
        "authorization.default: unknown variant `maybe`",
        "routes[0].hosts: empty list matches nothing",
        "routes[0].issuers[1]: unknown issuer \"nope\"",
        "routes[1].name: duplicate route name \"a\"",
        "routes[1].hosts[1]: bad host pattern \"bad host\"",
        "routes[1].hosts[2]: bad host pattern \"api.example.com:443\"",
        "routes[1].hosts[3]: bad host pattern \"*.*.example.com\"",
        "routes[1].path_prefix: \"orders\": the forwarded URI is not a path",
        "routes[2].name: \"c d\" must be letters",
        "routes[2]: set path or path_prefix, not both",
        "routes[2].scopes_all[0]: \"two words\" is not one scope",
        "routes[2].scopes_all[1]: \"\" is not one scope",
        "routes[2].claims.tenant: must be a string, number or boolean",
        "routes[3].path: \"/orders/../admin\" never matches as written",
        "routes[3].methods[1]: bad method \"BAD METHOD\"",
        "routes[4].anonymous: a public route takes no token",
        "routes[5].colour: unknown key",
    ];
    for e in expect {
        assert!(
            errors.iter().any(|got| got.starts_with(e)),
            "missing {e:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
}
