//! Bandwidth limits on the host end of a VPS's veth, where the VPS cannot
//! undo them:
//! - what the VPS receives leaves the host end: a token bucket (tbf) as
//!   its root qdisc;
//! - what the VPS sends arrives on the host end: an ingress qdisc
//!   redirects it to an ifb device (`<host_if>i`) whose root is a token
//!   bucket (policing would drop instead of shaping, and `police` is not
//!   available on every kernel).

use super::NetError;
use crate::cmd;
use std::process::Command;

/// The ifb device that shapes what VPS `host_if` sends.
pub fn ifb_name(host_if: &str) -> String {
    format!("{host_if}i")
}

fn tc(args: &[&str]) -> Result<(), NetError> {
    cmd::run(Command::new("tc").args(args))?;
    Ok(())
}

fn ip(args: &[&str]) -> Result<(), NetError> {
    cmd::run(Command::new("ip").args(args))?;
    Ok(())
}

/// tbf parameters for `bits_per_second`: a bucket of 10 ms of traffic (at
/// least 32 KiB, so a 1500-byte frame plus TSO bursts fit) and 50 ms of
/// queue.
fn tbf_args(bits_per_second: u64) -> Vec<String> {
    let burst = (bits_per_second / 8 / 100).max(32 * 1024);
    vec![
        "tbf".into(),
        "rate".into(),
        format!("{bits_per_second}bit"),
        "burst".into(),
        format!("{burst}b"),
        "latency".into(),
        "50ms".into(),
    ]
}

/// Set (or with `None` remove) the limits of VPS interface `host_if`.
/// Idempotent: applied at every start and on every live change.
pub fn set_limits(host_if: &str, ingress_bps: Option<u64>, egress_bps: Option<u64>) -> Result<(), NetError> {
    // To the VPS: the host end's own egress.
    match ingress_bps {
        Some(rate) => {
            let mut args = vec!["qdisc", "replace", "dev", host_if, "root"];
            let tbf = tbf_args(rate);
            args.extend(tbf.iter().map(String::as_str));
            tc(&args)?;
        }
        None => {
            // Deleting the root qdisc that is not there fails; fine.
            let _ = cmd::run(Command::new("tc").args(["qdisc", "del", "dev", host_if, "root"]));
        }
    }
    // From the VPS: redirected to the ifb and shaped there.
    let ifb = ifb_name(host_if);
    match egress_bps {
        Some(rate) => {
            if cmd::run(Command::new("ip").args(["link", "show", "dev", &ifb])).is_err() {
                ip(&["link", "add", &ifb, "type", "ifb"])?;
            }
            ip(&["link", "set", &ifb, "up"])?;
            let mut args = vec!["qdisc", "replace", "dev", ifb.as_str(), "root"];
            let tbf = tbf_args(rate);
            args.extend(tbf.iter().map(String::as_str));
            tc(&args)?;
            let _ = cmd::run(Command::new("tc").args(["qdisc", "del", "dev", host_if, "ingress"]));
            tc(&["qdisc", "add", "dev", host_if, "handle", "ffff:", "ingress"])?;
            tc(&[
                "filter", "add", "dev", host_if, "parent", "ffff:", "protocol", "all", "u32", "match", "u32",
                "0", "0", "action", "mirred", "egress", "redirect", "dev", &ifb,
            ])?;
        }
        None => {
            let _ = cmd::run(Command::new("tc").args(["qdisc", "del", "dev", host_if, "ingress"]));
            remove_ifb(host_if);
        }
    }
    Ok(())
}

/// Remove the ifb device of `host_if`, if there is one.
pub fn remove_ifb(host_if: &str) {
    let _ = cmd::run(Command::new("ip").args(["link", "del", &ifb_name(host_if)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_ten_milliseconds_but_at_least_32_kib() {
        assert_eq!(tbf_args(100_000_000)[4], "125000b");
        assert_eq!(tbf_args(1_000_000)[4], "32768b");
        assert_eq!(ifb_name("crv12"), "crv12i");
    }
}
