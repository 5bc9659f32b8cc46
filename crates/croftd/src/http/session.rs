//! The panel's session in HTTP terms: the cookie that carries it
//! (`__Host-croft_session`: Secure, HttpOnly, SameSite=Strict, the whole
//! host, no domain), and the same-origin rule every request proven by it
//! must pass when it changes something or opens a WebSocket: its `Origin`
//! is this server's own (`https://` and the `Host` it was sent to), or,
//! for a GET the browser navigates to from the panel's own page (a
//! download link, sent without `Origin`), its `Sec-Fetch-*` headers say so.
//! SameSite=Strict already keeps the cookie off other sites' requests;
//! the Origin check is the second wall, and the one browsers apply to
//! WebSockets, which SameSite does not cover everywhere.

use axum::http::{header, HeaderMap, HeaderValue, Method};

/// The cookie's name. `__Host-` makes browsers refuse it unless it is
/// Secure, for path `/` and without a domain.
pub const COOKIE: &str = "__Host-croft_session";

/// The session secret the request's cookies carry, if any.
pub fn secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// The `Set-Cookie` value that gives the browser `secret`, for the
/// session's life (`max_age` seconds).
pub fn set(secret: &str, max_age: u64) -> HeaderValue {
    let cookie = cookie::Cookie::build((COOKIE, secret))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(
            max_age.min(i64::MAX as u64) as i64
        ))
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("a hex secret makes a valid header")
}

/// The `Set-Cookie` value that makes the browser forget the session.
pub fn clear() -> HeaderValue {
    let cookie = cookie::Cookie::build((COOKIE, ""))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("an empty cookie makes a valid header")
}

/// Whether a request must pass the same-origin rule: it may change
/// something (any method but GET, HEAD and OPTIONS), or it opens a
/// WebSocket.
pub fn needs_same_origin(method: &Method, headers: &HeaderMap) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || is_upgrade(headers)
}

/// Whether a session's request comes from the panel's own pages: its
/// `Origin` is this server's ([`same_origin`]); or it is a GET or HEAD
/// (not a WebSocket) that the browser itself marks as a navigation from
/// this origin (`Sec-Fetch-Site: same-origin`, `Sec-Fetch-Mode:
/// navigate`). Browsers send no `Origin` when following a link (an image
/// export's download), and a page cannot set `Sec-Fetch-*` headers; a
/// subresource (`<img src>`) or a script's fetch is not a navigation.
pub fn from_own_pages(method: &Method, headers: &HeaderMap) -> bool {
    if same_origin(headers) {
        return true;
    }
    let says = |name: &str, value: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case(value))
    };
    matches!(*method, Method::GET | Method::HEAD)
        && !is_upgrade(headers)
        && says("sec-fetch-site", "same-origin")
        && says("sec-fetch-mode", "navigate")
}

/// Whether the request asks to become a WebSocket.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether the request's `Origin` is this server as the browser reached
/// it: `https://` and its `Host`. A request without either is not.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("https://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; __Host-croft_session=abc; b=2")]);
        assert_eq!(secret(&h).as_deref(), Some("abc"));
        assert_eq!(secret(&headers(&[("cookie", "croft_session=abc")])), None);
        assert_eq!(secret(&HeaderMap::new()), None);
    }

    #[test]
    fn the_cookie_is_host_only_secure_http_only_and_strict() {
        let v = set("abc", 60);
        let v = v.to_str().unwrap();
        for part in [
            "__Host-croft_session=abc",
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
        ] {
            assert!(v.contains(part), "{part} in {v}");
        }
        assert!(!v.contains("Domain"), "{v}");
        assert!(clear().to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn a_get_the_browser_marks_same_origin_passes_without_an_origin() {
        let marked = |site: &str| {
            headers(&[
                ("sec-fetch-site", site),
                ("sec-fetch-mode", "navigate"),
                ("host", "panel.example:8443"),
            ])
        };
        assert!(from_own_pages(&Method::GET, &marked("same-origin")));
        assert!(from_own_pages(&Method::HEAD, &marked("same-origin")));
        for site in ["same-site", "cross-site", "none"] {
            assert!(!from_own_pages(&Method::GET, &marked(site)), "{site}");
        }
        // Not a navigation: an image, a script's fetch.
        for mode in ["no-cors", "cors", "same-origin"] {
            let mut h = marked("same-origin");
            h.insert("sec-fetch-mode", HeaderValue::from_static(mode));
            assert!(!from_own_pages(&Method::GET, &h), "{mode}");
        }
        // Only a read: a POST, or a WebSocket, needs the Origin.
        assert!(!from_own_pages(&Method::POST, &marked("same-origin")));
        let mut upgrade = marked("same-origin");
        upgrade.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!from_own_pages(&Method::GET, &upgrade));
        let origin = headers(&[
            ("origin", "https://panel.example:8443"),
            ("host", "panel.example:8443"),
        ]);
        assert!(from_own_pages(&Method::POST, &origin));
    }

    #[test]
    fn only_this_servers_origin_passes() {
        let ok = headers(&[
            ("origin", "https://panel.example:8443"),
            ("host", "panel.example:8443"),
        ]);
        assert!(same_origin(&ok));
        for bad in [
            headers(&[("origin", "https://evil.example"), ("host", "panel.example:8443")]),
            headers(&[
                ("origin", "http://panel.example:8443"),
                ("host", "panel.example:8443"),
            ]),
            headers(&[("origin", "null"), ("host", "panel.example:8443")]),
            headers(&[("host", "panel.example:8443")]),
        ] {
            assert!(!same_origin(&bad), "{bad:?}");
        }
        assert!(needs_same_origin(&Method::POST, &HeaderMap::new()));
        assert!(!needs_same_origin(&Method::GET, &HeaderMap::new()));
        assert!(needs_same_origin(
            &Method::GET,
            &headers(&[("upgrade", "websocket")])
        ));
    }
}
