//! The panel's browser files, embedded at build time (`build.rs`: the npm
//! packages of `ui/package.json` and the panel's own `ui/static/`),
//! served under `/ui/static/` with a long cache life: their names change
//! with croftd's version in the pages' links.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// `GET /ui/static/{file}`.
pub(super) async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
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
            let (_, _, bytes) = ASSETS
                .iter()
                .find(|(n, _, _)| *n == name)
                .unwrap_or_else(|| panic!("{name}"));
            assert!(bytes.len() > 100, "{name}");
        }
    }
}
