//! Which device nodes a VPS may open: the v1 devices controller's files,
//! or on cgroup v2 a BPF device program of the same allow-list.
//!
//! A user namespace cannot create device nodes, but it can open one that
//! appears on a filesystem whose mount allows devices: a node smuggled
//! onto its disk by a root tool (a crafted snapshot stream once put the
//! pool's loop device there), or a host device bound in by mistake. The
//! allow-list is the layer VPS root cannot undo: the devices hierarchy is
//! never delegated, so nothing inside can write these files.

use std::path::Path;

use super::fs::{self, Write};
use super::CgroupError;

/// The character devices a VPS's /dev holds (as LXC and Incus allow):
/// null, zero, full, random, urandom, tty, console, ptmx, and the pty
/// slaves of its own devpts (majors 136-143). Everything else is denied.
pub const ALLOWED: &[&str] = &[
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 137:* rwm",
    "c 138:* rwm",
    "c 139:* rwm",
    "c 140:* rwm",
    "c 141:* rwm",
    "c 142:* rwm",
    "c 143:* rwm",
];

/// Deny every device, then allow [`ALLOWED`] and `extra` (the rules of
/// the host devices the VPS was given, [`crate::spec::HostDevice::rule`]):
/// on a cgroup that holds no process yet (a new one, or one reused after
/// its VPS stopped), so nothing ever runs under a wider list.
pub(super) fn v1_writes(extra: &[&str]) -> Vec<Write> {
    std::iter::once(Write::new("devices.deny", "a", true))
        .chain(
            ALLOWED
                .iter()
                .chain(extra)
                .map(|rule| Write::new("devices.allow", *rule, true)),
        )
        .collect()
}

pub(super) fn v1_restrict(dir: &Path, extra: &[&str]) -> Result<(), CgroupError> {
    fs::apply_writes(dir, &v1_writes(extra))
}

/// The same allow-list for cgroup v2, which has no devices files: a BPF
/// program of type `BPF_PROG_TYPE_CGROUP_DEVICE` (as runc, crun and
/// systemd attach), run by the kernel on every device open and mknod in
/// the cgroup and its descendants. Attached with `BPF_F_ALLOW_MULTI`, so
/// programs below it (an init system's own) can only deny more.
///
/// The cgroup is given as its directory; the program stays attached for
/// the cgroup's life, after every descriptor here is closed.
pub fn v2_restrict(dir: &Path, extra: &[&str]) -> Result<(), CgroupError> {
    let program = bpf::program(&rules(extra));
    let prog = bpf::load(&program).map_err(|detail| CgroupError::Write {
        path: dir.to_path_buf(),
        value: "a device BPF program".into(),
        source: std::io::Error::other(detail),
    })?;
    let cgroup = std::fs::File::open(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    bpf::attach(&prog, &cgroup).map_err(|source| CgroupError::Write {
        path: dir.to_path_buf(),
        value: "attach the device BPF program".into(),
        source,
    })
}

/// A device a VPS may use: its type (`BPF_DEVCG_DEV_CHAR` or `_BLOCK`),
/// major, and minor (`None`: any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    kind: u32,
    major: u32,
    minor: Option<u32>,
}

/// [`ALLOWED`] and `extra` as rules (every rule there allows all of
/// `rwm`).
fn rules(extra: &[&str]) -> Vec<Rule> {
    ALLOWED
        .iter()
        .chain(extra)
        .map(|rule| {
            let mut words = rule.split(' ');
            let kind = match words.next() {
                Some("b") => bpf::DEV_BLOCK,
                _ => bpf::DEV_CHAR,
            };
            let (major, minor) = words
                .next()
                .and_then(|n| n.split_once(':'))
                .expect("ALLOWED rules read `t major:minor access`");
            Rule {
                kind,
                major: major.parse().expect("a major number"),
                minor: minor.parse().ok(),
            }
        })
        .collect()
}

/// Just enough eBPF for the device program: the instructions it needs
/// (encoded as `struct bpf_insn` of linux/bpf.h) and the two `bpf(2)`
/// calls that load and attach it.
mod bpf {
    use super::Rule;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    pub const DEV_BLOCK: u32 = 1; // BPF_DEVCG_DEV_BLOCK
    pub const DEV_CHAR: u32 = 2; // BPF_DEVCG_DEV_CHAR

    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;

    /// One `struct bpf_insn`: opcode, registers (dst low nibble, src
    /// high), offset, immediate.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Insn {
        code: u8,
        regs: u8,
        off: i16,
        imm: i32,
    }

    const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | dst,
            off,
            imm,
        }
    }

    /// `dst = *(u32 *)(src + off)`
    const fn load_word(dst: u8, src: u8, off: i16) -> Insn {
        insn(0x61, dst, src, off, 0) // BPF_LDX | BPF_MEM | BPF_W
    }
    /// `dst &= imm`
    const fn and(dst: u8, imm: i32) -> Insn {
        insn(0x57, dst, 0, 0, imm) // BPF_ALU64 | BPF_AND | BPF_K
    }
    /// `if dst != imm goto +off`
    const fn jump_unless(dst: u8, imm: u32, off: i16) -> Insn {
        insn(0x55, dst, 0, off, imm as i32) // BPF_JMP | BPF_JNE | BPF_K
    }
    /// `dst = imm`
    const fn set(dst: u8, imm: i32) -> Insn {
        insn(0xb7, dst, 0, 0, imm) // BPF_ALU64 | BPF_MOV | BPF_K
    }
    const EXIT: Insn = insn(0x95, 0, 0, 0, 0); // BPF_JMP | BPF_EXIT

    /// The program: r1 points at `struct bpf_cgroup_dev_ctx { u32
    /// access_type (access << 16 | type); u32 major; u32 minor; }`. Each
    /// rule is a block that jumps to the next on a mismatch and returns 1
    /// (allow) on a match; after the last, 0 (deny).
    pub fn program(rules: &[Rule]) -> Vec<Insn> {
        let mut prog = vec![
            load_word(2, 1, 0),
            and(2, 0xffff), // the device type
            load_word(3, 1, 4),
            load_word(4, 1, 8),
        ];
        for rule in rules {
            let mut checks = vec![(2, rule.kind), (3, rule.major)];
            checks.extend(rule.minor.map(|minor| (4, minor)));
            let block = checks.len() + 2;
            for (i, (reg, value)) in checks.into_iter().enumerate() {
                prog.push(jump_unless(reg, value, (block - i - 1) as i16));
            }
            prog.extend([set(0, 1), EXIT]);
        }
        prog.extend([set(0, 0), EXIT]);
        prog
    }

    /// Load `program`; the error carries the verifier's log.
    pub fn load(program: &[Insn]) -> Result<OwnedFd, String> {
        #[repr(C)]
        struct ProgLoad {
            prog_type: u32,
            insn_cnt: u32,
            insns: u64,
            license: u64,
            log_level: u32,
            log_size: u32,
            log_buf: u64,
        }
        let mut log = vec![0u8; 16 << 10];
        let attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: program.len() as u32,
            insns: program.as_ptr() as u64,
            license: c"GPL".as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
        };
        // SAFETY: bpf(2) reads `attr` (valid for its size, the kernel
        // zero-extends the rest of bpf_attr), the instructions and the
        // license it points at, and writes at most log_size bytes of log;
        // all outlive the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                &attr as *const ProgLoad,
                std::mem::size_of::<ProgLoad>(),
            )
        };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            let text = String::from_utf8_lossy(&log);
            return Err(format!("{err}: {}", text.trim_end_matches('\0').trim()));
        }
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// Attach `prog` to the cgroup whose directory `cgroup` is open.
    pub fn attach(prog: &OwnedFd, cgroup: &std::fs::File) -> Result<(), std::io::Error> {
        #[repr(C)]
        struct ProgAttach {
            target_fd: u32,
            attach_bpf_fd: u32,
            attach_type: u32,
            attach_flags: u32,
        }
        let attr = ProgAttach {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: BPF_F_ALLOW_MULTI,
        };
        // SAFETY: bpf(2) reads `attr`, valid for its size, and the two
        // descriptors it names, open for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_ATTACH,
                &attr as *const ProgAttach,
                std::mem::size_of::<ProgAttach>(),
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn each_rule_is_a_block_that_skips_to_the_next_on_a_mismatch() {
            let prog = program(&[
                Rule {
                    kind: DEV_CHAR,
                    major: 1,
                    minor: Some(3),
                },
                Rule {
                    kind: DEV_CHAR,
                    major: 136,
                    minor: None,
                },
            ]);
            // Prologue 4, a 5-instruction block, a 4-instruction block, the
            // final deny.
            assert_eq!(prog.len(), 4 + 5 + 4 + 2);
            assert_eq!(prog[4], jump_unless(2, DEV_CHAR, 4));
            assert_eq!(prog[5], jump_unless(3, 1, 3));
            assert_eq!(prog[6], jump_unless(4, 3, 2));
            assert_eq!(&prog[7..9], &[set(0, 1), EXIT]);
            assert_eq!(prog[9], jump_unless(2, DEV_CHAR, 3));
            assert_eq!(prog[10], jump_unless(3, 136, 2));
            assert_eq!(&prog[11..], &[set(0, 1), EXIT, set(0, 0), EXIT]);
            // Registers: dst in the low nibble.
            assert_eq!(load_word(2, 1, 4).regs, 0x12);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_reads_as_rules() {
        let rules = rules(&["c 10:200 rwm"]);
        assert_eq!(rules.len(), ALLOWED.len() + 1);
        assert_eq!(
            rules.last(),
            Some(&Rule {
                kind: bpf::DEV_CHAR,
                major: 10,
                minor: Some(200)
            })
        );
        assert_eq!(
            rules[0],
            Rule {
                kind: bpf::DEV_CHAR,
                major: 1,
                minor: Some(3)
            }
        );
        assert_eq!(rules[ALLOWED.len() - 1].minor, None);
    }
}
