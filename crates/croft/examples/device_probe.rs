//! Uses a host device a VPS feature gives, the way its software would, and
//! says whether it worked. The end-to-end tests copy it into a VPS; it is
//! not part of croft itself.
//!
//! - `device_probe tun`: opens /dev/net/tun and makes a TUN interface, as
//!   OpenVPN or a userspace WireGuard does; prints `tun ok`.
//! - `device_probe fuse DIR`: mounts a FUSE filesystem on DIR and serves it
//!   (the smallest server: INIT, and a root directory whose size is 4242),
//!   then stats DIR through it, as sshfs would be used; prints
//!   `fuse size=4242`.
//!
//! Any failure prints what failed and exits 1.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    println!("{what}: {e}");
    std::process::exit(1);
}

/// `struct ifreq` as TUNSETIFF reads it: a name and the flags.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

fn tun() {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .unwrap_or_else(|e| fail("open /dev/net/tun", e));
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..6].copy_from_slice(b"probe0");
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `req` is
    // laid out as (name, then the flags of the union), and outlives the
    // call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) };
    if rc < 0 {
        fail("TUNSETIFF", std::io::Error::last_os_error());
    }
    println!("tun ok");
}

const FUSE_GETATTR: u32 = 3;
const FUSE_FORGET: u32 = 2;
const FUSE_INIT: u32 = 26;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_BATCH_FORGET: u32 = 42;
const ROOT_SIZE: u64 = 4242;

/// A reply: `fuse_out_header` (len, error, unique) and `body`.
fn reply(dev: &mut std::fs::File, unique: u64, error: i32, body: &[u8]) {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&error.to_ne_bytes());
    out.extend_from_slice(&unique.to_ne_bytes());
    out.extend_from_slice(body);
    // A reply to a request the kernel dropped (an unmount) fails: fine.
    let _ = dev.write_all(&out);
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn fuse(dir: &str) {
    let mut dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .unwrap_or_else(|e| fail("open /dev/fuse", e));
    let options = format!("fd={},rootmode=40000,user_id=0,group_id=0", dev.as_raw_fd());
    nix::mount::mount(
        Some("device_probe"),
        dir,
        Some("fuse"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .unwrap_or_else(|e| fail("mount fuse", e));
    // The stat goes through the kernel to the loop below.
    let target = dir.to_string();
    std::thread::spawn(move || {
        let size = std::fs::metadata(&target).map(|m| std::os::unix::fs::MetadataExt::size(&m));
        let code = match size {
            Ok(size) => {
                println!("fuse size={size}");
                0
            }
            Err(e) => {
                println!("stat through fuse: {e}");
                1
            }
        };
        let _ = nix::mount::umount2(target.as_str(), nix::mount::MntFlags::MNT_DETACH);
        std::process::exit(code);
    });
    let mut buf = vec![0u8; (1 << 20) + 4096];
    loop {
        let n = match dev.read(&mut buf) {
            Ok(n) => n,
            // Unmounted: the connection is gone.
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return,
            Err(e) => fail("read /dev/fuse", e),
        };
        if n < 40 {
            fail("read /dev/fuse", format!("a request of {n} bytes"));
        }
        let opcode = u32_at(&buf, 4);
        let unique = u64::from_ne_bytes(buf[8..16].try_into().expect("8 bytes"));
        match opcode {
            FUSE_INIT => {
                let max_readahead = u32_at(&buf, 48);
                let mut init = Vec::with_capacity(64);
                for v in [7u32, 31, max_readahead, 0] {
                    init.extend_from_slice(&v.to_ne_bytes());
                }
                init.extend_from_slice(&16u16.to_ne_bytes()); // max_background
                init.extend_from_slice(&12u16.to_ne_bytes()); // congestion_threshold
                init.extend_from_slice(&65536u32.to_ne_bytes()); // max_write
                init.extend_from_slice(&1u32.to_ne_bytes()); // time_gran
                init.resize(64, 0);
                reply(&mut dev, unique, 0, &init);
            }
            FUSE_GETATTR => {
                // fuse_attr_out: validity, then fuse_attr.
                let mut attr = Vec::with_capacity(104);
                attr.extend_from_slice(&1u64.to_ne_bytes()); // attr_valid
                attr.extend_from_slice(&[0u8; 8]); // attr_valid_nsec, dummy
                for v in [1u64, ROOT_SIZE, 0, 0, 0, 0] {
                    // ino, size, blocks, atime, mtime, ctime
                    attr.extend_from_slice(&v.to_ne_bytes());
                }
                for v in [0u32, 0, 0, libc::S_IFDIR | 0o755, 2, 0, 0, 0, 4096, 0] {
                    // nsecs, mode, nlink, uid, gid, rdev, blksize, flags
                    attr.extend_from_slice(&v.to_ne_bytes());
                }
                reply(&mut dev, unique, 0, &attr);
            }
            // Never answered.
            FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT => {}
            _ => reply(&mut dev, unique, -libc::ENOSYS, &[]),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["tun"] => tun(),
        ["fuse", dir] => fuse(dir),
        _ => fail("usage", "device_probe tun | device_probe fuse DIR"),
    }
}
