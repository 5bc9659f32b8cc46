//! How croft's nftables rules scale with the number of VPSes: loads the
//! whole ruleset for N VPSes (each with a firewall rule), then times the
//! incremental changes croftd makes for one VPS (a firewall change, an
//! address added, a VPS added and removed) against a full reload. Run as
//! root in a network namespace of its own (bench/network-scale.sh does).
//!
//! Usage: nft_scale [N] [ROUNDS]

use croft_host::net::nft::{self, Firewall, FirewallRule, NetworkRules, Ruleset, Service, VpsRules};
use std::time::{Duration, Instant};

fn vps(i: u32) -> VpsRules {
    let (hi, lo) = ((i >> 8) as u8, i as u8);
    let host = i + 2;
    VpsRules {
        host_if: format!("crv{i}"),
        isolated: false,
        mac: [0x0e, 0xcf, 0, 0, hi, lo],
        ipv4: Some(std::net::Ipv4Addr::new(10, 87, (host >> 8) as u8, host as u8)),
        ipv6: Some(
            format!("fd63:726f:6674::{:x}", i + 2)
                .parse()
                .expect("an address"),
        ),
        extra: Vec::new(),
        delegated: Vec::new(),
        forwards: Vec::new(),
        firewall: Firewall {
            default_deny_in: false,
            default_deny_out: false,
            rules: vec![FirewallRule {
                inbound: true,
                allow: true,
                protocol: "tcp".into(),
                ports: Some((22, 22)),
                remote: None,
            }],
        },
        provider_exempt: false,
    }
}

fn load(text: &str) -> Duration {
    let start = Instant::now();
    nft::apply(text).unwrap_or_else(|e| panic!("nft: {e}"));
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(9);
    let mut ruleset = Ruleset {
        networks: vec![NetworkRules {
            bridge: "croftbr0".into(),
            ipv4_subnet: Some(("10.87.0.0".parse().expect("an address"), 16)),
            ipv6_subnet: None,
            nat: true,
            isolated: false,
            bridged: false,
        }],
        host_services: Vec::new(),
        blocked_egress: vec![Service {
            protocol: "tcp".into(),
            ports: (25, 25),
        }],
        vpses: (0..n).map(vps).collect(),
    };
    let full = median((0..rounds).map(|_| load(&nft::render(&ruleset))).collect());
    // One VPS's firewall changes: its two chains.
    let one = ruleset.vpses[n as usize / 2].clone();
    let mut changed = one.clone();
    changed.firewall.rules.push(FirewallRule {
        inbound: false,
        allow: false,
        protocol: "tcp".into(),
        ports: Some((25, 25)),
        remote: None,
    });
    let firewall = median(
        (0..rounds)
            .map(|i| {
                load(&nft::render_firewall_update(if i % 2 == 0 {
                    &changed
                } else {
                    &one
                }))
            })
            .collect(),
    );
    // An address added to it, and taken away again.
    let mut more = one.clone();
    more.extra = vec!["10.87.250.250".parse().expect("an address")];
    let address = median(
        (0..rounds)
            .map(|i| {
                let (from, to) = if i % 2 == 0 { (&one, &more) } else { (&more, &one) };
                load(&nft::render_port_update(from, to))
            })
            .collect(),
    );
    if rounds % 2 == 1 {
        load(&nft::render_port_update(&more, &one));
    }
    // One more VPS, added and removed.
    let new = vps(n);
    let add = nft::render_added_port(&new).expect("no forwards");
    let remove = nft::render_removed_port(&new);
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    for _ in 0..rounds {
        adds.push(load(&add));
        removes.push(load(&remove));
    }
    ruleset.vpses.truncate(0);
    load(&nft::render(&ruleset));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("vpses={n} full_reload_ms={:.1} firewall_change_ms={:.1} address_change_ms={:.1} vps_added_ms={:.1} vps_removed_ms={:.1}",
        ms(full), ms(firewall), ms(address), ms(median(adds)), ms(median(removes)));
}
