//! API robustness: malformed JSON, wrong types, unknown fields, huge and
//! deeply nested bodies, raw bytes and hostile names thrown at every
//! endpoint. Each answer must be a 4xx with a JSON error message (or a
//! success for the few inputs that happen to be valid and harmless), never
//! a 5xx, a dropped connection, a hang or a panic; and the VPS that exists
//! throughout is unchanged at the end. The inputs come from a seeded
//! generator: `CROFT_FUZZ_SEED=N` replays a run, `CROFT_FUZZ_ROUNDS=N`
//! makes it longer. Root needed.
#![cfg(feature = "e2e")]

mod common;

use common::Host;
use croft_api::{ErrorBody, Instance};
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

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
fn odd_value(rng: &mut common::Rng) -> String {
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
fn body(rng: &mut common::Rng, base: &str) -> Vec<u8> {
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
fn send(host: &Host, method: &str, path: &str, body: &[u8], content_type: &str) -> (u16, Vec<u8>) {
    let mut s = UnixStream::connect(&host.socket).expect("croftd accepts connections");
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

fn fill(template: &str, rng: &mut common::Rng, sane_name: bool) -> String {
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

#[test]
fn hostile_requests_get_a_4xx_json_error_never_a_5xx_a_hang_or_a_panic() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "keep1", "--memory", "64MiB"]);
    let before = host.info("keep1");
    let pid_before = host.details("keep1").init_pid;
    let images_before = host.ok(&["image", "list", "--format", "json"]);
    let seed = common::seed_from_env("CROFT_FUZZ_SEED");
    let rounds = common::count_from_env("CROFT_FUZZ_ROUNDS", 40);
    eprintln!("fuzz seed {seed} (CROFT_FUZZ_SEED={seed} replays this run), {rounds} rounds");
    let mut rng = common::Rng(seed);
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
            let (status, reply) = send(&host, method, &path, &payload, content_type);
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
                let (status, _) = send(&host, method, path, b"", "application/json");
                assert!((400..500).contains(&status), "{method} {path} -> {status}");
            }
        }
    }
    eprintln!("{sent} requests");
    assert!(
        !host.daemon_log().contains("panicked"),
        "croftd panicked:\n{}",
        host.daemon_log()
    );
    // Still serving, and nothing changed.
    let after = host.info("keep1");
    assert_eq!(after.status, before.status, "keep1's status changed");
    assert_eq!(after.config, before.config, "keep1's config changed");
    assert_eq!(
        host.details("keep1").init_pid,
        pid_before,
        "keep1's init_pid changed"
    );
    assert_eq!(after.nic, before.nic, "keep1's nic changed");
    assert_eq!(after.forwards, before.forwards, "keep1's forwards changed");
    assert_eq!(after.firewall, before.firewall, "keep1's firewall changed");
    assert_eq!(after.ssh_keys, before.ssh_keys, "keep1's ssh_keys changed");
    let names: Vec<String> = host
        .ok_json::<Vec<Instance>>(&["list", "--format", "json"])
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["keep1"], "requests created VPSes");
    let images_after = host.ok(&["image", "list", "--format", "json"]);
    assert_eq!(images_after, images_before, "requests changed the images");
    let snaps = host.ok(&["snapshot", "list", "keep1"]);
    assert!(!snaps.contains("bad"), "{snaps}");
}
