//! An API fuzzer shared by two tiers: malformed JSON, wrong types,
//! unknown fields, huge and deeply nested bodies, raw bytes and hostile
//! names thrown at every endpoint of a croftd listening on a unix socket.
//! Each answer must be a 4xx with a JSON error message (or a success for
//! the few inputs that happen to be valid and harmless), never a 5xx, a
//! dropped connection, a hang or a panic. The inputs come from a seeded
//! generator: `CROFT_FUZZ_SEED=N` replays a run, `CROFT_FUZZ_ROUNDS=N`
//! makes it longer. Tier 2 (`croftd/tests/api_fuzz.rs`) runs it on the
//! simulated backend; tier 3 (`croft/tests/api_fuzz.rs`, which includes
//! this file) on real VPSes. Both leave a VPS named `keep1` there
//! throughout and check afterwards that nothing changed.
#![allow(dead_code)] // the tier-3 tests use Rng without the fuzzer

use croft_api::ErrorBody;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A small seeded generator (splitmix64): the same seed, the same run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Names no endpoint may take for a VPS, snapshot, image or job (URL-encoded).
const HOSTILE_NAMES: &[&str] = &[
    "..",
    ".",
    "%2e%2e",
    "..%2F..%2Fetc",
    "a%2Fb",
    "%00",
    "x%00y",
    "-rf",
    "a%20b",
    "UPPER",
    "caf%C3%A9",
    "%FF%FE",
    "%0A",
    "name;rm%20-rf",
    "$(reboot)",
    "%25",
    "0",
    "-1",
    "99999999999999999999",
];

/// Every endpoint: method, path template, a well-formed body to mutate.
const ENDPOINTS: &[(&str, &str, &str)] = &[
    ("GET", "/1.0", ""),
    ("GET", "/1.0/instances", ""),
    (
        "POST",
        "/1.0/instances",
        r#"{"name":"fz1","image":"nosuch/img","config":{"limits.memory":"64MiB"}}"#,
    ),
    ("GET", "/1.0/instances/{name}", ""),
    ("DELETE", "/1.0/instances/{name}?force=true", ""),
    (
        "POST",
        "/1.0/instances/{name}/state",
        r#"{"action":"start","force":false,"timeout":5}"#,
    ),
    (
        "PATCH",
        "/1.0/instances/{name}/config",
        r#"{"set":{"limits.memory":"lots"},"unset":[]}"#,
    ),
    ("GET", "/1.0/instances/{name}/console", ""),
    (
        "POST",
        "/1.0/instances/{name}/copy",
        r#"{"name":"keep1","snapshot":null}"#,
    ),
    (
        "POST",
        "/1.0/instances/{name}/rebuild",
        r#"{"image":"nosuch/img","user_data":null}"#,
    ),
    ("GET", "/1.0/instances/{name}/snapshots", ""),
    ("POST", "/1.0/instances/{name}/snapshots", r#"{"name":"..bad"}"#),
    (
        "POST",
        "/1.0/instances/{name}/snapshots",
        r#"{"name":null,"from_file":"/etc/hostname"}"#,
    ),
    (
        "GET",
        "/1.0/instances/{name}/snapshots/{snap}/export?since=base",
        "",
    ),
    ("GET", "/1.0/instances/{name}/host", ""),
    ("DELETE", "/1.0/instances/{name}/snapshots/{snap}", ""),
    (
        "POST",
        "/1.0/instances/{name}/snapshots/{snap}/restore",
        r#"{"stop":false}"#,
    ),
    ("GET", "/1.0/instances/{name}/forwards", ""),
    (
        "POST",
        "/1.0/instances/{name}/forwards",
        r#"{"protocol":"sctp","host_port":0,"vps_port":80}"#,
    ),
    ("DELETE", "/1.0/instances/{name}/forwards/{protocol}/{port}", ""),
    ("GET", "/1.0/instances/{name}/firewall", ""),
    (
        "POST",
        "/1.0/instances/{name}/firewall/rules",
        r#"{"action":"maybe","protocol":"tcp","port":"22","source":null}"#,
    ),
    ("DELETE", "/1.0/instances/{name}/firewall/rules/{port}", ""),
    ("GET", "/1.0/networks", ""),
    ("GET", "/1.0/networks/{name}", ""),
    ("GET", "/1.0/images", ""),
    (
        "POST",
        "/1.0/images?name=fz/img",
        r#"{"path":"/nonexistent/fz.tar"}"#,
    ),
    ("POST", "/1.0/images/build", r#"{"name":"nosuch/img"}"#),
    ("GET", "/1.0/images/{name}", ""),
    ("DELETE", "/1.0/images/{name}", ""),
    ("GET", "/1.0/images/{name}/export", ""),
    ("GET", "/1.0/storage-pools", ""),
    ("GET", "/1.0/storage-pools/{name}", ""),
    ("GET", "/1.0/jobs", ""),
    ("GET", "/1.0/jobs/{name}", ""),
    ("GET", "/1.0/jobs/{name}/wait?timeout=1", ""),
];

/// A value of some JSON type, often the wrong one for where it goes.
fn odd_value(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "null".into(),
        1 => "true".into(),
        2 => "-1".into(),
        3 => "1e400".into(),
        4 => "18446744073709551616".into(),
        5 => "[]".into(),
        6 => r#"{"nested":{"deeper":[1,2,3]}}"#.into(),
        7 => format!("\"{}\"", "A".repeat(rng.below(70_000))),
        8 => r#""\u0000\ud800 ../../etc/passwd""#.into(),
        _ => "\"\"".into(),
    }
}

/// The fields of the JSON object `text`, each with its value as written
/// (nothing if `text` is not an object), in key order.
fn fields_of(text: &str) -> BTreeMap<String, String> {
    fn fields(text: &str) -> Option<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let mut rest = text.trim_start().strip_prefix('{')?;
        loop {
            rest = rest.trim_start();
            if let Some(end) = rest.strip_prefix('}') {
                return end.trim().is_empty().then_some(out);
            }
            if !out.is_empty() {
                rest = rest.strip_prefix(',')?.trim_start();
            }
            let mut keys = serde_json::Deserializer::from_str(rest).into_iter::<String>();
            let key = keys.next()?.ok()?;
            rest = rest[keys.byte_offset()..]
                .trim_start()
                .strip_prefix(':')?
                .trim_start();
            let mut values = serde_json::Deserializer::from_str(rest).into_iter::<IgnoredAny>();
            values.next()?.ok()?;
            let end = values.byte_offset();
            out.insert(key, rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    fields(text).unwrap_or_default()
}

/// JSON value `text` as a JSON library writes back what it reads of it:
/// numbers in its own form, `null` for what it cannot read (a number out
/// of range, a string with a lone surrogate).
fn reread(text: &str) -> String {
    if let Ok(n) = serde_json::from_str::<serde_json::Number>(text) {
        serde_json::to_string(&n).unwrap()
    } else if let Ok(s) = serde_json::from_str::<String>(text) {
        serde_json::to_string(&s).unwrap()
    } else if serde_json::from_str::<IgnoredAny>(text).is_ok()
        && !text.starts_with(|c: char| c == '"' || c == '-' || c.is_ascii_digit())
    {
        text.to_string()
    } else {
        "null".into()
    }
}

/// A JSON object of `fields` (values as written).
fn object(fields: &BTreeMap<String, String>) -> Vec<u8> {
    let members: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
        .collect();
    format!("{{{}}}", members.join(",")).into_bytes()
}

/// A mutation of `base` (or something unrelated to it).
fn body(rng: &mut Rng, base: &str) -> Vec<u8> {
    let object_fields = fields_of(base);
    let fields: Vec<String> = object_fields.keys().cloned().collect();
    match rng.below(12) {
        // Raw bytes, often not UTF-8.
        0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
        // Truncated JSON.
        1 if !base.is_empty() => base.as_bytes()[..rng.below(base.len())].to_vec(),
        // A field of the wrong type.
        2 | 3 if !fields.is_empty() => {
            let mut v = object_fields.clone();
            let field = fields[rng.below(fields.len())].clone();
            let odd = reread(&odd_value(rng));
            v.insert(field, odd);
            object(&v)
        }
        // An unknown field.
        4 if !base.is_empty() => {
            let mut v = object_fields.clone();
            v.insert("surprise".into(), "1".into());
            object(&v)
        }
        // A missing field.
        5 if !fields.is_empty() => {
            let mut v = object_fields.clone();
            let field = fields[rng.below(fields.len())].clone();
            v.remove(&field);
            object(&v)
        }
        // Deep nesting.
        6 => {
            let depth = 1 + rng.below(100_000);
            format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
        }
        // JSON of another shape entirely.
        7 => rng
            .pick(&["[]", "\"text\"", "42", "null", "{}", "{\"a\":"])
            .as_bytes()
            .to_vec(),
        // Duplicate keys.
        8 if !fields.is_empty() => {
            let field = fields[rng.below(fields.len())].clone();
            format!("{{\"{field}\":1,\"{field}\":\"x\"}}").into_bytes()
        }
        // Too big (the body limit is a few MiB).
        9 if rng.below(8) == 0 => {
            let mut big = b"{\"name\":\"".to_vec();
            big.extend(std::iter::repeat_n(b'a', 20 << 20));
            big.extend(b"\"}");
            big
        }
        _ => base.as_bytes().to_vec(),
    }
}

/// Send one raw request; returns (status, body). A dropped connection or
/// an answer slower than the timeout fails the test.
fn send(socket: &Path, method: &str, path: &str, body: &[u8], content_type: &str) -> (u16, Vec<u8>) {
    let mut s = UnixStream::connect(socket).expect("croftd accepts connections");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: croftd\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    // A server refusing a big body may close before reading all of it.
    let _ = s.write_all(&req);
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => panic!("{method} {path}: no answer: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(raw.len());
    (status, raw[split..].to_vec())
}

/// `template` with its placeholders filled: the VPS `keep1` or a hostile
/// name, hostile snapshot names, protocols and ports.
fn fill(template: &str, rng: &mut Rng, sane_name: bool) -> String {
    let name = if sane_name {
        "keep1"
    } else {
        rng.pick(HOSTILE_NAMES)
    };
    template
        .replace("{name}", name)
        .replace("{snap}", rng.pick(HOSTILE_NAMES))
        .replace("{protocol}", rng.pick(&["tcp", "sctp", "..", "%00"]))
        .replace(
            "{port}",
            rng.pick(&["0", "65536", "-1", "80", "x", "99999999999999999999"]),
        )
}

/// Throw `rounds` rounds of hostile requests at every endpoint of the
/// croftd at `socket`, which has a VPS `keep1`; panics (with the seed to
/// replay) at the first answer that is not a clean refusal or success.
/// Returns how many requests it sent.
pub fn run(socket: &Path, seed: u64, rounds: usize) -> usize {
    eprintln!("fuzz seed {seed} (CROFT_FUZZ_SEED={seed} replays this run), {rounds} rounds");
    let mut rng = Rng(seed);
    let mut sent = 0;
    for round in 0..rounds {
        for (method, template, base) in ENDPOINTS {
            // Bodies at the real VPS (path names valid), names at everything.
            let sane_name = round % 2 == 0 && !method.eq_ignore_ascii_case("DELETE");
            let path = fill(template, &mut rng, sane_name);
            let payload = body(&mut rng, base);
            let content_type = if rng.below(20) == 0 {
                "text/plain"
            } else {
                "application/json"
            };
            let (status, reply) = send(socket, method, &path, &payload, content_type);
            sent += 1;
            let shown = String::from_utf8_lossy(&payload[..payload.len().min(200)]).into_owned();
            assert!(
                status != 0 && status < 500,
                "{method} {path} with {shown:?} -> {status}: {}\nseed {seed}",
                String::from_utf8_lossy(&reply)
            );
            if status >= 400 {
                let json: ErrorBody = serde_json::from_slice(&reply).unwrap_or_else(|_| {
                    panic!(
                        "{method} {path} -> {status} without a JSON error: {}\nseed {seed}",
                        String::from_utf8_lossy(&reply)
                    )
                });
                assert!(
                    !json.error.is_empty() && json.code == status,
                    "{method} {path} -> {status}: {json:?}\nseed {seed}"
                );
            }
        }
        // Hostile methods and request lines too, now and then.
        if round % 10 == 0 {
            for (method, path) in [
                ("PUT", "/1.0/instances"),
                ("BREW", "/1.0"),
                ("GET", "/1.0/../../etc/passwd"),
                ("GET", "//1.0//instances"),
                ("GET", &format!("/1.0/instances/{}", "a".repeat(10_000))),
            ] {
                let (status, _) = send(socket, method, path, b"", "application/json");
                assert!((400..500).contains(&status), "{method} {path} -> {status}");
                sent += 1;
            }
        }
    }
    eprintln!("{sent} requests");
    sent
}

/// A seed from the environment, or a fresh one.
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// A count from the environment, or `default`.
pub fn count_from_env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
