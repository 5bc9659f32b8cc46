//! Embeds the web panel's browser files into croftd: the pieces from npm
//! (`ui/package.json` and its lockfile; `npm ci --prefix crates/croftd/ui`
//! installs them) and the panel's own (`ui/static/`). It writes
//! `$OUT_DIR/assets.rs`, a table of (name, content type, entity tag,
//! bytes) that
//! `http/panel/assets.rs` serves, so no file is read at run time and none
//! is copied into the repository.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The npm files the panel serves, by their path under `node_modules`,
/// and the name they are served under.
const FROM_NPM: &[(&str, &str)] = &[
    ("htmx.org/dist/htmx.min.js", "htmx.min.js"),
    ("uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
    ("uplot/dist/uPlot.min.css", "uPlot.min.css"),
    ("@xterm/xterm/lib/xterm.js", "xterm.js"),
    ("@xterm/xterm/css/xterm.css", "xterm.css"),
    ("@xterm/addon-fit/lib/addon-fit.js", "addon-fit.js"),
];

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// A file's fingerprint for its entity tag (FNV-1a, 64 bits): it changes
/// when the file does, so browsers revalidate and get the new one.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for (path, name) in FROM_NPM {
        let file = ui.join("node_modules").join(path);
        println!("cargo:rerun-if-changed={}", file.display());
        if !file.is_file() {
            panic!(
                "the web panel's npm packages are not installed ({} is missing): run `npm ci --prefix crates/croftd/ui` (scripts/deps.sh does)",
                file.display()
            );
        }
        files.push((name.to_string(), file));
    }
    let own = ui.join("static");
    println!("cargo:rerun-if-changed={}", own.display());
    let mut entries: Vec<_> = std::fs::read_dir(&own)
        .unwrap_or_else(|e| panic!("{}: {e}", own.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 file name")
            .to_string();
        files.push((name, path));
    }
    let mut table = String::from(
        "/// The panel's browser files: (name, content type, entity tag, bytes).\npub const ASSETS: &[(&str, &str, &str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let _ = writeln!(
            table,
            "    ({name:?}, {:?}, \"\\\"{:016x}\\\"\", include_bytes!({:?})),",
            content_type(name),
            fnv1a(&bytes),
            path.display().to_string()
        );
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("assets.rs");
    std::fs::write(&out, table).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
