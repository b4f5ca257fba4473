//! The request being authorized, in the one normal form routes are matched
//! on. A gateway's upstream may read a path differently from tokend (decode
//! `%2F`, strip `;params`, fold `\`); every form where two readings would land
//! on different routes is refused here rather than guessed.

use std::borrow::Cow;
use std::fmt;

use super::RequestFacts;

/// Method, host and path, normalized: method upper-case, host lower-case
/// without port, path as [`normalize_path`] makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub method: Cow<'a, str>,
    pub host: Cow<'a, str>,
    pub path: Cow<'a, str>,
}

/// Why a forwarded request cannot be matched against routes (answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    NoRequest,
    BadMethod,
    BadHost,
    NotAPath,
    BadCharacter,
    BadEscape,
    AmbiguousSegment,
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadRequest::NoRequest => {
                "the gateway did not say which request: send X-Forwarded-Method and X-Forwarded-Uri, or X-Original-Method and X-Original-URI"
            }
            BadRequest::BadMethod => "the forwarded method is not an HTTP method",
            BadRequest::BadHost => "the forwarded host is not a host name",
            BadRequest::NotAPath => "the forwarded URI is not a path (must start with \"/\")",
            BadRequest::BadCharacter => {
                "the forwarded path holds a character a URI cannot (space, control, backslash or non-ASCII)"
            }
            BadRequest::BadEscape => "the forwarded path holds a malformed percent-escape",
            BadRequest::AmbiguousSegment => {
                "the forwarded path holds a dot segment hidden by an encoded slash or a ;parameter"
            }
        })
    }
}

impl<'a> Target<'a> {
    /// Normalizes what the gateway reported. Method and path must both be
    /// known; the host may be absent (then no `hosts` route matches).
    pub fn of(facts: &RequestFacts<'a>) -> Result<Target<'a>, BadRequest> {
        if facts.method.is_empty() || facts.path.is_empty() {
            return Err(BadRequest::NoRequest);
        }
        Ok(Target {
            method: normalize_method(facts.method)?,
            host: normalize_host(facts.host)?,
            path: normalize_path(facts.path)?,
        })
    }
}

/// Methods compare case-insensitively: `post` must not slip past a route
/// written for `POST` when the upstream treats them alike.
fn normalize_method(method: &str) -> Result<Cow<'_, str>, BadRequest> {
    let token = method
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(BadRequest::BadMethod);
    }
    Ok(if method.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(method.to_ascii_uppercase())
    } else {
        Cow::Borrowed(method)
    })
}

/// Lower-case, without `:port` or a trailing dot; `[v6]` literals kept whole.
fn normalize_host(host: &str) -> Result<Cow<'_, str>, BadRequest> {
    let name = if let Some(rest) = host.strip_prefix('[') {
        let end = rest.find(']').ok_or(BadRequest::BadHost)?;
        let after = &rest[end + 1..];
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(port)) {
            return Err(BadRequest::BadHost);
        }
        let literal = &host[..end + 2];
        if !literal[1..literal.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(BadRequest::BadHost);
        }
        literal
    } else {
        let name = match host.rsplit_once(':') {
            Some((name, p)) if port(p) => name,
            Some(_) => return Err(BadRequest::BadHost),
            None => host,
        };
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            return Err(BadRequest::BadHost);
        }
        name.strip_suffix('.').unwrap_or(name)
    };
    Ok(if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    })
}

fn port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// The path routes are matched on: query and fragment cut off,
/// percent-escapes of unreserved characters decoded (the others kept, hex
/// upper-cased), runs of `/` collapsed, `.` and `..` segments resolved as
/// RFC 3986 §5.2.4 does. Refused: anything but printable ASCII (a raw `\`
/// included), a malformed escape, and a dot segment that only appears to some
/// readers — behind `%2F`/`%5C` (`/a%2F..%2Fb`) or before `;` (`/a/..;/b`).
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, BadRequest> {
    let path = &raw[..memchr::memchr2(b'?', b'#', raw.as_bytes()).unwrap_or(raw.len())];
    if !path.starts_with('/') {
        return Err(BadRequest::NotAPath);
    }
    if plain_path(path)? {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path)?;
    let mut segments: Vec<&str> = Vec::new();
    let pieces: Vec<&str> = decoded.split('/').skip(1).collect();
    let last = pieces.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, segment) in pieces.iter().enumerate() {
        if hides_dot_segment(segment) {
            return Err(BadRequest::AmbiguousSegment);
        }
        match *segment {
            "" | "." => trailing_slash = i == last,
            ".." => {
                segments.pop();
                trailing_slash = i == last;
            }
            s => {
                segments.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// One pass over a path that starts with `/` (it runs on every routed
/// request): `Err` for a character no route may see (anything but printable
/// ASCII, or a `\`); `Ok(true)` when there is nothing to normalize: no `%`,
/// no empty segment (`//`), no `.` or `..` segment (`;parameters` aside).
fn plain_path(path: &str) -> Result<bool, BadRequest> {
    let mut plain = true;
    let mut segment_start = 1;
    for (i, &b) in path.as_bytes().iter().enumerate() {
        if !(0x21..=0x7e).contains(&b) || b == b'\\' {
            return Err(BadRequest::BadCharacter);
        }
        if b == b'%' {
            plain = false;
        } else if b == b'/' && i > 0 {
            plain &= i > segment_start && !is_dot_segment(&path[segment_start..i]);
            segment_start = i + 1;
        }
    }
    Ok(plain && !is_dot_segment(&path[segment_start.min(path.len())..]))
}

/// `.` or `..`, before any `;parameters`.
fn is_dot_segment(segment: &str) -> bool {
    segment.starts_with('.') && matches!(segment.split(';').next(), Some("." | ".."))
}

/// A segment some upstream would read as `.` or `..`: Tomcat and Spring drop
/// `;parameters`, others decode `%2F` and `%5C` into separators.
fn hides_dot_segment(segment: &str) -> bool {
    let before_params = segment.split(';').next().unwrap_or("");
    if segment.contains(';') && matches!(before_params, "." | "..") {
        return true;
    }
    let upper = segment.to_ascii_uppercase();
    if upper.contains("%2F") || upper.contains("%5C") {
        return upper
            .split("%2F")
            .flat_map(|p| p.split("%5C"))
            .any(|p| matches!(p.split(';').next().unwrap_or(""), "." | ".."));
    }
    false
}

/// Decodes `%XX` of unreserved characters (RFC 3986 §2.3); keeps the others
/// encoded, with upper-case hex so that equal paths compare equal.
fn decode_unreserved(path: &str) -> Result<String, BadRequest> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i] as char);
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3).ok_or(BadRequest::BadEscape)?;
        let value = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .filter(|_| hex.iter().all(u8::is_ascii_hexdigit))
            .ok_or(BadRequest::BadEscape)?;
        if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
            out.push(value as char);
        } else {
            out.push('%');
            out.push_str(&format!("{value:02X}"));
        }
        i += 3;
    }
    Ok(out)
}

/// Whether `path` lies under `prefix`, on a segment boundary: `/orders`
/// covers `/orders` and `/orders/7`, never `/ordersx`.
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_as_documented() {
        for (raw, want) in [
            ("/orders", "/orders"),
            ("/orders?x=1", "/orders"),
            ("/orders#top", "/orders"),
            ("//orders//7", "/orders/7"),
            ("/orders/../admin", "/admin"),
            ("/orders/./7", "/orders/7"),
            ("/orders/7/..", "/orders/"),
            ("/..", "/"),
            ("/../../admin", "/admin"),
            ("/%6Frders", "/orders"),
            ("/orders/%2e%2e/admin", "/admin"),
            ("/a%2fb", "/a%2Fb"),
            ("/projects/group%2Fproject", "/projects/group%2Fproject"),
            ("/orders/", "/orders/"),
            ("/", "/"),
            ("/a%20b", "/a%20b"),
        ] {
            assert_eq!(normalize_path(raw).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn ambiguous_and_malformed_paths_are_refused() {
        for (raw, want) in [
            ("orders", BadRequest::NotAPath),
            ("http://evil/orders", BadRequest::NotAPath),
            ("*", BadRequest::NotAPath),
            ("/orders%2F..%2Fadmin", BadRequest::AmbiguousSegment),
            ("/orders%2f..%2fadmin", BadRequest::AmbiguousSegment),
            ("/orders%5C..%5Cadmin", BadRequest::AmbiguousSegment),
            ("/orders/..;/admin", BadRequest::AmbiguousSegment),
            ("/orders/.;x/admin", BadRequest::AmbiguousSegment),
            ("/orders\\..\\admin", BadRequest::BadCharacter),
            ("/orders\n", BadRequest::BadCharacter),
            ("/a b", BadRequest::BadCharacter),
            ("/caf\u{e9}", BadRequest::BadCharacter),
            ("/a%zz", BadRequest::BadEscape),
            ("/a%2", BadRequest::BadEscape),
            ("/a%+1", BadRequest::BadEscape),
        ] {
            assert_eq!(normalize_path(raw), Err(want), "{raw}");
        }
    }

    /// The one-pass test agrees with the rule it replaced (no `%`, no `//`,
    /// no segment reading `.` or `..` before its `;`) on every path of up to
    /// seven characters drawn from the ones that matter.
    #[test]
    fn the_plain_path_test_agrees_with_its_definition() {
        let defined = |path: &str| {
            !path.contains('%')
                && !path.contains("//")
                && !path
                    .split('/')
                    .any(|s| matches!(s.split(';').next(), Some("." | "..")))
        };
        let alphabet = ['/', '.', ';', 'a', '%'];
        let mut paths = vec!["/".to_owned()];
        let mut checked = 0;
        while let Some(path) = paths.pop() {
            assert_eq!(plain_path(&path), Ok(defined(&path)), "{path:?}");
            checked += 1;
            if path.len() < 7 {
                paths.extend(alphabet.iter().map(|c| format!("{path}{c}")));
            }
        }
        assert_eq!(checked, (0..7).map(|n| 5usize.pow(n)).sum::<usize>());
    }

    #[test]
    fn prefixes_end_on_a_segment_boundary() {
        assert!(under_prefix("/orders", "/orders"));
        assert!(under_prefix("/orders/7", "/orders"));
        assert!(!under_prefix("/ordersx", "/orders"));
        assert!(!under_prefix("/orders%2Fx", "/orders"));
        assert!(under_prefix("/orders/7", "/orders/"));
        assert!(!under_prefix("/orders", "/orders/"));
        assert!(under_prefix("/anything", "/"));
    }

    #[test]
    fn methods_and_hosts_normalize() {
        let facts = |method, host| RequestFacts {
            method,
            host,
            path: "/",
            ..RequestFacts::default()
        };
        let t = Target::of(&facts("post", "API.Example.com:8443")).unwrap();
        assert_eq!((&*t.method, &*t.host), ("POST", "api.example.com"));
        let t = Target::of(&facts("GET", "[::1]:80")).unwrap();
        assert_eq!(&*t.host, "[::1]");
        assert_eq!(
            Target::of(&facts("GET", "example.com.")).unwrap().host,
            "example.com"
        );
        assert_eq!(Target::of(&facts("GE T", "a")), Err(BadRequest::BadMethod));
        assert_eq!(Target::of(&facts("GET", "a b")), Err(BadRequest::BadHost));
        assert_eq!(Target::of(&facts("GET", "a:x")), Err(BadRequest::BadHost));
        assert_eq!(Target::of(&facts("GET", "a/b")), Err(BadRequest::BadHost));
        assert_eq!(Target::of(&facts("", "a")), Err(BadRequest::NoRequest));
    }
}
