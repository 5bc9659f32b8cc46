//! Sizes (`512MiB`, `1GiB`, `1.5G`) and CPU counts (`2`, `0.5`).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum UnitError {
    #[error("invalid size {input:?}: expected a number with an optional unit (B, KiB or K, MiB or M, GiB or G, TiB or T, KB, MB, GB, TB), e.g. 512MiB")]
    BadSize { input: String },
    #[error(
        "invalid cpu count {input:?}: expected a number of CPUs such as 2 or 0.5, with at most 3 decimals"
    )]
    BadCpu { input: String },
    #[error("invalid rate {input:?}: expected a number with a unit of bit, kbit, Mbit, Gbit (per second), e.g. 100Mbit")]
    BadRate { input: String },
}

/// Parse a byte size. `KiB`, `MiB`... and the one-letter `K`, `M`, `G`, `T`
/// (as in systemd and Docker) are powers of 1024; `KB`, `MB`, `GB`, `TB`
/// are powers of 1000, as in Incus; units are read in any case, as users
/// type them (`1gb` is `1GB`, `512m` is `512M`, `2gib` is `2GiB`).
/// Fractions are allowed with a unit (`1.5GiB`); the result is rounded
/// down to a byte.
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::BadSize { input: input.into() };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "ki" | "k" => 1 << 10,
        "mib" | "mi" | "m" => 1 << 20,
        "gib" | "gi" | "g" => 1 << 30,
        "tib" | "ti" | "t" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int_part.is_empty() || frac_part.contains('.') || (num.contains('.') && frac_part.is_empty()) {
        return Err(bad());
    }
    let whole: u64 = int_part.parse().map_err(|_| bad())?;
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(bad)?;
    if !frac_part.is_empty() {
        if frac_part.len() > 9 {
            return Err(bad());
        }
        let frac: u128 = frac_part.parse().map_err(|_| bad())?;
        let scale = 10u128.pow(frac_part.len() as u32);
        let extra = frac * u128::from(multiplier) / scale;
        bytes = bytes.checked_add(extra as u64).ok_or_else(bad)?;
    }
    Ok(bytes)
}

/// Format bytes with the largest binary unit that keeps one decimal honest.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else if (value.fract()).abs() < 0.05 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// Parse a network rate into bits per second: `100Mbit` -> 100_000_000.
/// Only bit units, decimal as in networking (`bps` forms are refused: tc
/// reads `mbps` as megabytes, and a user cannot tell which was meant).
pub fn parse_rate(input: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::BadRate { input: input.into() };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "bit" => 1,
        "kbit" => 1_000,
        "mbit" => 1_000_000,
        "gbit" => 1_000_000_000,
        "tbit" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if whole.is_empty() && frac.is_empty() || num.ends_with('.') {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let mut value = whole.checked_mul(multiplier).ok_or_else(bad)?;
    if !frac.is_empty() {
        let digits = frac.len().min(12) as u32;
        let f: u64 = frac[..digits as usize].parse().map_err(|_| bad())?;
        value = value
            .checked_add(f.checked_mul(multiplier).ok_or_else(bad)? / 10u64.pow(digits))
            .ok_or_else(bad)?;
    }
    Ok(value)
}

/// Parse a CPU count into millicores: `1.5` -> 1500.
pub fn parse_cpu(input: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::BadCpu { input: input.into() };
    let s = input.trim();
    let (int_part, frac_part) = s.split_once('.').unwrap_or((s, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || frac_part.len() > 3
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
        || (s.contains('.') && frac_part.is_empty())
    {
        return Err(bad());
    }
    let whole: u64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| bad())?
    };
    let mut frac: u64 = if frac_part.is_empty() {
        0
    } else {
        frac_part.parse().map_err(|_| bad())?
    };
    for _ in frac_part.len()..3 {
        frac *= 10;
    }
    whole
        .checked_mul(1000)
        .and_then(|m| m.checked_add(frac))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size(" 8 MiB "), Ok(8 << 20));
        // As users type them: any case, the same meaning.
        assert_eq!(parse_size("1gb"), Ok(1_000_000_000));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        assert_eq!(parse_size("10Mb"), Ok(10_000_000));
        for bad in [
            "",
            "MiB",
            "-1MiB",
            "1..5G",
            "1.G",
            "12XB",
            "1e9",
            "99999999999999999999",
            "18446744073709551615TiB",
            "1 GiB extra",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format_size(512), "512B");
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(3 << 29), "1.5GiB");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100Mbit"), Ok(100_000_000));
        assert_eq!(parse_rate("1.5gbit"), Ok(1_500_000_000));
        assert_eq!(parse_rate("500kbit"), Ok(500_000));
        assert_eq!(parse_rate(" 64 bit "), Ok(64));
        for bad in [
            "",
            "100",
            "100mbps",
            "100MB",
            "Mbit",
            "1.Mbit",
            "-5Mbit",
            "99999999999999999999Gbit",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpu("2"), Ok(2000));
        assert_eq!(parse_cpu("0.5"), Ok(500));
        assert_eq!(parse_cpu(".25"), Ok(250));
        assert_eq!(parse_cpu("1.125"), Ok(1125));
        for bad in ["", ".", "1.", "1.2345", "-1", "a", "1,5", "99999999999999999999"] {
            assert!(parse_cpu(bad).is_err(), "{bad}");
        }
    }
}
