//! `GET /metrics` as the Prometheus client's own text parser reads it
//! (Debian's python3-prometheus-client, running `prometheus_text.py`).
//! Shared by the tier-2 tests (`sim/`) and the end-to-end tests
//! (`crates/croft/tests/common/`, by `#[path]`).

/// One metric family as the Prometheus client's parser read it: its type,
/// and its samples as (sample name, labels, value).
#[derive(Debug, serde::Deserialize)]
pub struct PromFamily {
    #[serde(rename = "type")]
    pub kind: String,
    pub samples: Vec<(String, std::collections::BTreeMap<String, String>, Option<f64>)>,
}

/// `text` parsed by the Prometheus client's own text parser (Debian's
/// python3-prometheus-client, through `tests/sim/prometheus_text.py`):
/// family name (a counter's without `_total`) → family. Panics with the
/// parser's complaint if it refuses the text.
// The boundary clippy.toml guards is the daemon's; this is a test's tool.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
pub fn parse_prometheus(text: &str) -> std::collections::BTreeMap<String, PromFamily> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    // Debian's interpreter, which has Debian's package (not a pyenv's).
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", include_str!("prometheus_text.py")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (scripts/deps.sh installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the Prometheus parser is missing: run scripts/deps.sh (python3-prometheus-client)"
    );
    assert!(
        out.status.success(),
        "the Prometheus parser refused the text: {stderr}\n{text}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
