//! Times `statfs` the way `df` makes it, for `bench/df.sh`, which copies
//! it into a VPS; not part of croft itself.
//!
//! `statfs_probe PATH COUNT`: calls statfs(PATH) COUNT times and prints
//! `ns_per_call=N blocks=B bsize=S` (the figures of the last call). Any
//! failure prints what failed and exits 1.

use std::ffi::CString;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(count)) = (args.get(1), args.get(2).and_then(|c| c.parse::<u32>().ok())) else {
        println!("usage: statfs_probe PATH COUNT");
        std::process::exit(1);
    };
    let Ok(cpath) = CString::new(path.as_str()) else {
        println!("a path without NUL bytes");
        std::process::exit(1);
    };
    // SAFETY: statfs is plain data, filled in by each call below.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let start = Instant::now();
    for _ in 0..count.max(1) {
        // SAFETY: a valid C string and a valid struct statfs to write.
        if unsafe { libc::statfs(cpath.as_ptr(), &mut st) } != 0 {
            println!("statfs {path}: {}", std::io::Error::last_os_error());
            std::process::exit(1);
        }
    }
    let ns = start.elapsed().as_nanos() / u128::from(count.max(1));
    println!("ns_per_call={ns} blocks={} bsize={}", st.f_blocks, st.f_bsize);
}
