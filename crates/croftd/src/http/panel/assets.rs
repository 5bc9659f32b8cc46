//! The panel's browser files, embedded at build time (`build.rs`: the npm
//! packages of `ui/package.json` and the panel's own `ui/static/`),
//! served under `/ui/static/` with an entity tag of their contents:
//! browsers keep them and ask again each time (a 304 while unchanged), so
//! a new croftd's files are used at once.

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// `GET /ui/static/{file}`.
pub(super) async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, content_type, etag, bytes)) = ASSETS.iter().find(|(name, ..)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let cache = [(header::ETAG, *etag), (header::CACHE_CONTROL, "no-cache")];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == *etag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, [(header::CONTENT_TYPE, *content_type)], *bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    #[test]
    fn the_npm_pieces_and_the_panels_own_are_embedded() {
        for name in [
            "htmx.min.js",
            "uPlot.iife.min.js",
            "xterm.js",
            "xterm.css",
            "panel.js",
            "panel.css",
        ] {
            let (_, _, etag, bytes) = ASSETS
                .iter()
                .find(|(n, ..)| *n == name)
                .unwrap_or_else(|| panic!("{name}"));
            assert!(bytes.len() > 100, "{name}");
            assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
        }
    }
}
