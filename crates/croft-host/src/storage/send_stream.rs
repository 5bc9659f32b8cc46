//! The head of a btrfs send stream: enough of it to tell, before a long
//! `btrfs receive`, whether a file is a stream at all, which snapshot it
//! carries and whether it is incremental (on which parent).
//!
//! Layout (btrfs-progs `send.h`, all little-endian): the 13-byte magic
//! `btrfs-stream\0` and a u32 version; then commands, each a header (u32
//! length of its attributes, u16 command, u32 crc32c) and attributes (u16
//! type, u16 length, data). The first command is `SUBVOL` (a full stream)
//! or `SNAPSHOT` (incremental: it names its parent by UUID).

use std::io::Read;

const MAGIC: &[u8; 13] = b"btrfs-stream\0";
const CMD_SUBVOL: u16 = 1;
const CMD_SNAPSHOT: u16 = 2;
const CMD_END: u16 = 21;
/// The commands a VPS disk's stream is made of (btrfs-progs `send.h`):
/// files, directories, symlinks, hard links, fifos and sockets (VPSes keep
/// both on disk: postfix's private sockets, a daemon's fifo), renames and
/// removals, data (plain, cloned, encoded, preallocated), xattrs, mode,
/// owner and times, and fs-verity. Not here, and so refused: `MKNOD` (a
/// device node: a VPS cannot make one itself, and one on its disk would
/// open a host device) and `FILEATTR` (inode flags such as immutable or
/// append-only, which VPS root cannot set or clear itself), and any
/// command a newer btrfs may add.
const ALLOWED_COMMANDS: &[u16] = &[
    3,  // MKFILE
    4,  // MKDIR
    6,  // MKFIFO
    7,  // MKSOCK
    8,  // SYMLINK
    9,  // RENAME
    10, // LINK
    11, // UNLINK
    12, // RMDIR
    13, // SET_XATTR
    14, // REMOVE_XATTR
    15, // WRITE
    16, // CLONE
    17, // TRUNCATE
    18, // CHMOD
    19, // CHOWN
    20, // UTIMES
    CMD_END, 22, // UPDATE_EXTENT
    23, // FALLOCATE (v2)
    25, // ENCODED_WRITE (v2)
];
const CMD_MKNOD: u16 = 5;
const ATTR_UID: u16 = 6;
const ATTR_GID: u16 = 7;
const ATTR_XATTR_NAME: u16 = 13;
/// Ids on a VPS disk are its own, 0..65536 (shifted into the VPS's range
/// only when mounted); a file owned by anything else belongs to nobody
/// inside and to some other user outside.
const VPS_IDS: u64 = 65536;
const ATTR_UUID: u16 = 1;
const ATTR_PATH_TO: u16 = 16;
const ATTR_DATA: u16 = 19;
const ATTR_CLONE_PATH: u16 = 22;
/// Longer than any command btrfs writes (v1 at most about 64 KiB of data
/// a command, v2 about 144 KiB): a forged length is refused before the
/// receive would allocate it.
const MAX_COMMAND: usize = 1 << 20;
const ATTR_PATH: u16 = 15;
const ATTR_CLONE_UUID: u16 = 20;
/// A first command longer than this is not one btrfs writes (it holds a
/// name of at most 255 bytes, two UUIDs and two transids).
const MAX_FIRST_COMMAND: usize = 4096;

/// What the first command of a send stream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHead {
    pub version: u32,
    /// The name the snapshot had where it was sent from.
    pub name: String,
    pub uuid: [u8; 16],
    /// The parent an incremental stream applies to; `None` for a full one.
    pub parent_uuid: Option<[u8; 16]>,
}

/// Why a file is not a send stream croft can receive.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("not a btrfs send stream")]
    NotAStream,
    #[error("btrfs send stream version {0} is not supported (1 or 2)")]
    Version(u32),
    #[error("the stream is cut short")]
    Truncated,
    #[error("the stream does not begin with a snapshot (command {0})")]
    NoSnapshot(u16),
    #[error("the stream's first command lacks its {0}")]
    MissingAttribute(&'static str),
    #[error("the stream is cut short (no end marker)")]
    NoEndMarker,
    #[error("the stream holds a command of {0} bytes, more than btrfs writes")]
    CommandTooLong(usize),
    #[error("the stream holds more than one snapshot")]
    SecondSnapshot,
    #[error("the stream names a path outside its snapshot: {0:?}")]
    UnsafePath(String),
    #[error("the stream clones data from a subvolume other than its own snapshot and its parent")]
    ForeignClone,
    #[error("the stream creates a device node ({0:?}), which no VPS disk holds")]
    DeviceNode(String),
    #[error("the stream holds command {0}, which croft does not receive")]
    Command(u16),
    #[error("the stream gives a file an owner outside the VPS's ids ({0})")]
    ForeignOwner(u64),
    #[error("the stream sets the extended attribute {0:?}, which VPS root cannot set itself")]
    PrivilegedXattr(String),
}

/// Read the head of a send stream from `r` (which it consumes a little of).
pub fn read_head(r: &mut impl Read) -> Result<StreamHead, StreamError> {
    let (head, _) = read_raw(r)?;
    Ok(head)
}

/// The head of the stream, and its bytes to put back in front of the rest
/// (re-encoded as read): for a caller that must know the snapshot's name
/// before it hands the whole stream on.
pub fn read_head_bytes(r: &mut impl Read) -> Result<(StreamHead, Vec<u8>), StreamError> {
    let (head, raw) = read_raw(r)?;
    let mut out = raw.header.to_vec();
    out.extend(encode_command(raw.kind, &attributes(&raw.body)?));
    Ok((head, out))
}

/// Read the head of a send stream from `r` and give back, beside it, the
/// stream's header and first command with the snapshot renamed `name` (and
/// that command's checksum made anew): fed to `btrfs receive` in place of
/// the bytes read, followed by the rest of `r`, the snapshot arrives under
/// `name` (every later command names paths inside the snapshot).
pub fn read_head_renamed(r: &mut impl Read, name: &str) -> Result<(StreamHead, Vec<u8>), StreamError> {
    let (head, raw) = read_raw(r)?;
    let attrs: Vec<(u16, &[u8])> = attributes(&raw.body)?
        .into_iter()
        .map(|(attr, data)| (attr, if attr == ATTR_PATH { name.as_bytes() } else { data }))
        .collect();
    let mut out = raw.header.to_vec();
    out.extend(encode_command(raw.kind, &attrs));
    Ok((head, out))
}

/// One send-stream command as btrfs writes it: the header (length of the
/// attributes, kind, crc32c of the whole command) and the attributes.
pub fn encode_command(kind: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (attr, data) in attrs {
        body.extend(attr.to_le_bytes());
        body.extend((data.len() as u16).to_le_bytes());
        body.extend(*data);
    }
    let mut out = Vec::with_capacity(10 + body.len());
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(kind.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(&body);
    let crc = crc32c(&out);
    out[6..10].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Copy the commands that follow a stream's head from `r` to `w`, up to
/// and including the end marker, and stop there; what follows the marker
/// never reaches the receive. Each command is checked first, because
/// `btrfs receive` trusts its stream: no second snapshot (a stream may
/// carry several, each under a name of its own choosing), no path that is
/// absolute or climbs out with `..`, and no clone from a subvolume other
/// than the stream's own snapshot or its parent (`allowed_clones`: btrfs
/// finds a clone source by UUID anywhere in the pool, a neighbour's disk
/// included). A stream that ends without the marker was cut short.
pub fn copy_commands(
    r: &mut impl Read,
    w: &mut impl std::io::Write,
    version: u32,
    allowed_clones: &[[u8; 16]],
) -> std::io::Result<u64> {
    let invalid = |e: StreamError| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string());
    let mut copied = 0u64;
    let mut body = Vec::new();
    loop {
        let mut header = [0u8; 10];
        if let Err(e) = r.read_exact(&mut header) {
            return Err(match e.kind() {
                std::io::ErrorKind::UnexpectedEof => invalid(StreamError::NoEndMarker),
                _ => e,
            });
        }
        let kind = u16::from_le_bytes([header[4], header[5]]);
        let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_COMMAND {
            return Err(invalid(StreamError::CommandTooLong(len)));
        }
        body.resize(len, 0);
        r.read_exact(&mut body).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => invalid(StreamError::Truncated),
            _ => e,
        })?;
        check_command(kind, &body, version, allowed_clones).map_err(invalid)?;
        w.write_all(&header)?;
        w.write_all(&body)?;
        copied += 10 + len as u64;
        if kind == CMD_END {
            return Ok(copied);
        }
    }
}

/// Whether one command (after the first) is one croft lets through.
fn check_command(
    kind: u16,
    body: &[u8],
    version: u32,
    allowed_clones: &[[u8; 16]],
) -> Result<(), StreamError> {
    if kind == CMD_SUBVOL || kind == CMD_SNAPSHOT {
        return Err(StreamError::SecondSnapshot);
    }
    if !ALLOWED_COMMANDS.contains(&kind) {
        return Err(if kind == CMD_MKNOD {
            let path = attributes(body)
                .ok()
                .and_then(|attrs| attrs.into_iter().find(|(a, _)| *a == ATTR_PATH))
                .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default();
            StreamError::DeviceNode(path)
        } else {
            StreamError::Command(kind)
        });
    }
    let mut rest = body;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(StreamError::Truncated);
        }
        let attr = u16::from_le_bytes([rest[0], rest[1]]);
        if version >= 2 && attr == ATTR_DATA {
            // From version 2 on, file data runs to the end of its command
            // with no length of its own.
            break;
        }
        let len = u16::from_le_bytes([rest[2], rest[3]]) as usize;
        let data = rest.get(4..4 + len).ok_or(StreamError::Truncated)?;
        match attr {
            ATTR_PATH | ATTR_PATH_TO | ATTR_CLONE_PATH if !stays_inside(data) => {
                return Err(StreamError::UnsafePath(
                    String::from_utf8_lossy(data).into_owned(),
                ))
            }
            ATTR_CLONE_UUID if !allowed_clones.iter().any(|u| u[..] == *data) => {
                return Err(StreamError::ForeignClone)
            }
            ATTR_UID | ATTR_GID => {
                let id = match data.len() {
                    8 => u64::from_le_bytes(data.try_into().expect("8 bytes")),
                    4 => u64::from(u32::from_le_bytes(data.try_into().expect("4 bytes"))),
                    _ => return Err(StreamError::Truncated),
                };
                if id >= VPS_IDS {
                    return Err(StreamError::ForeignOwner(id));
                }
            }
            // trusted.* (overlayfs's metadata among them) needs
            // CAP_SYS_ADMIN on the host; security.* beyond file
            // capabilities feeds host LSMs.
            ATTR_XATTR_NAME
                if data.starts_with(b"trusted.")
                    || (data.starts_with(b"security.") && data != b"security.capability") =>
            {
                return Err(StreamError::PrivilegedXattr(
                    String::from_utf8_lossy(data).into_owned(),
                ))
            }
            _ => {}
        }
        rest = &rest[4 + len..];
    }
    Ok(())
}

/// A path relative to the snapshot's root that does not climb out of it.
fn stays_inside(path: &[u8]) -> bool {
    !path.starts_with(b"/") && path.split(|b| *b == b'/').all(|part| part != b"..")
}

struct RawHead {
    header: [u8; 17],
    kind: u16,
    body: Vec<u8>,
}

fn read_raw(r: &mut impl Read) -> Result<(StreamHead, RawHead), StreamError> {
    let mut header = [0u8; 17];
    read_exact(r, &mut header).map_err(|_| StreamError::NotAStream)?;
    if &header[..13] != MAGIC {
        return Err(StreamError::NotAStream);
    }
    let version = u32::from_le_bytes(header[13..17].try_into().expect("4 bytes"));
    if !(1..=2).contains(&version) {
        return Err(StreamError::Version(version));
    }
    let mut cmd = [0u8; 10];
    read_exact(r, &mut cmd)?;
    let len = u32::from_le_bytes(cmd[0..4].try_into().expect("4 bytes")) as usize;
    let kind = u16::from_le_bytes(cmd[4..6].try_into().expect("2 bytes"));
    if kind != CMD_SUBVOL && kind != CMD_SNAPSHOT {
        return Err(StreamError::NoSnapshot(kind));
    }
    if len > MAX_FIRST_COMMAND {
        return Err(StreamError::NotAStream);
    }
    let mut body = vec![0u8; len];
    read_exact(r, &mut body)?;
    let (mut name, mut uuid, mut parent_uuid) = (None, None, None);
    for (attr, data) in attributes(&body)? {
        match attr {
            ATTR_PATH => name = Some(String::from_utf8_lossy(data).into_owned()),
            ATTR_UUID => uuid = data.try_into().ok(),
            ATTR_CLONE_UUID => parent_uuid = data.try_into().ok(),
            _ => {}
        }
    }
    let parent_uuid = match kind {
        CMD_SNAPSHOT => Some(parent_uuid.ok_or(StreamError::MissingAttribute("parent UUID"))?),
        _ => None,
    };
    let head = StreamHead {
        version,
        name: name.ok_or(StreamError::MissingAttribute("name"))?,
        uuid: uuid.ok_or(StreamError::MissingAttribute("UUID"))?,
        parent_uuid,
    };
    Ok((head, RawHead { header, kind, body }))
}

/// The (type, data) attributes of a command's body.
fn attributes(mut body: &[u8]) -> Result<Vec<(u16, &[u8])>, StreamError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < 4 {
            return Err(StreamError::Truncated);
        }
        let attr = u16::from_le_bytes([body[0], body[1]]);
        let len = u16::from_le_bytes([body[2], body[3]]) as usize;
        out.push((attr, body.get(4..4 + len).ok_or(StreamError::Truncated)?));
        body = &body[4 + len..];
    }
    Ok(out)
}

/// CRC-32C as btrfs checksums a command: seed 0, no final inversion (the
/// kernel's raw `crc32c()`), over the command with its crc field zeroed.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), StreamError> {
    r.read_exact(buf).map_err(|_| StreamError::Truncated)
}

/// A UUID as btrfs prints it (`8-4-4-4-12` lowercase hex).
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut v = kind.to_le_bytes().to_vec();
        v.extend((data.len() as u16).to_le_bytes());
        v.extend(data);
        v
    }

    /// A stream head laid out as `btrfs send` writes it (checked against a
    /// real one from btrfs-progs 6.2).
    fn stream(cmd: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = attrs.concat();
        let mut v = MAGIC.to_vec();
        v.extend(1u32.to_le_bytes());
        v.extend((body.len() as u32).to_le_bytes());
        v.extend(cmd.to_le_bytes());
        v.extend([0xdb, 0xc0, 0xe9, 0x40]); // crc, not checked here
        v.extend(body);
        v.extend([0u8; 32]); // the commands after the first
        v
    }

    #[test]
    fn reads_a_full_stream() {
        let uuid = [7u8; 16];
        let s = stream(
            CMD_SUBVOL,
            &[
                attr(ATTR_PATH, b"snap1"),
                attr(ATTR_UUID, &uuid),
                attr(2, &7u64.to_le_bytes()),
            ],
        );
        let head = read_head(&mut &s[..]).unwrap();
        assert_eq!(head.name, "snap1");
        assert_eq!(head.uuid, uuid);
        assert_eq!(head.parent_uuid, None);
        assert_eq!(head.version, 1);
    }

    #[test]
    fn reads_an_incremental_stream() {
        let s = stream(
            CMD_SNAPSHOT,
            &[
                attr(ATTR_PATH, b"s2"),
                attr(ATTR_UUID, &[1; 16]),
                attr(2, &8u64.to_le_bytes()),
                attr(ATTR_CLONE_UUID, &[2; 16]),
                attr(21, &7u64.to_le_bytes()),
            ],
        );
        let head = read_head(&mut &s[..]).unwrap();
        assert_eq!(head.name, "s2");
        assert_eq!(head.parent_uuid, Some([2; 16]));
    }

    #[test]
    fn refuses_what_is_not_a_stream() {
        assert_eq!(read_head(&mut &b"hello"[..]), Err(StreamError::NotAStream));
        assert_eq!(
            read_head(&mut &b"PK\x03\x04 a zip file, not a stream at all"[..]),
            Err(StreamError::NotAStream)
        );
        let mut s = stream(CMD_SUBVOL, &[attr(ATTR_PATH, b"a"), attr(ATTR_UUID, &[0; 16])]);
        s[13] = 9;
        assert_eq!(read_head(&mut &s[..]), Err(StreamError::Version(9)));
        let s = stream(3, &[attr(ATTR_PATH, b"a")]);
        assert_eq!(read_head(&mut &s[..]), Err(StreamError::NoSnapshot(3)));
        let s = stream(CMD_SUBVOL, &[attr(ATTR_UUID, &[0; 16])]);
        assert_eq!(read_head(&mut &s[..]), Err(StreamError::MissingAttribute("name")));
        let s = stream(CMD_SNAPSHOT, &[attr(ATTR_PATH, b"a"), attr(ATTR_UUID, &[0; 16])]);
        assert_eq!(
            read_head(&mut &s[..]),
            Err(StreamError::MissingAttribute("parent UUID"))
        );
        let s = stream(
            CMD_SUBVOL,
            &[attr(ATTR_PATH, b"snap1"), attr(ATTR_UUID, &[0; 16])],
        );
        assert_eq!(read_head(&mut &s[..30]), Err(StreamError::Truncated));
    }

    /// The header and first command of a real `btrfs send` of a snapshot
    /// named `s1` (btrfs-progs 6.2, kernel 6.18).
    const REAL_HEAD: [u8; 65] = [
        0x62, 0x74, 0x72, 0x66, 0x73, 0x2d, 0x73, 0x74, 0x72, 0x65, 0x61, 0x6d, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x26, 0x00, 0x00, 0x00, 0x01, 0x00, 0xdb, 0xc0, 0xe9, 0x40, 0x0f, 0x00, 0x02, 0x00, 0x73, 0x31, 0x01,
        0x00, 0x10, 0x00, 0xc4, 0x37, 0x48, 0x25, 0xb7, 0xe7, 0xec, 0x4f, 0x9a, 0x70, 0xf0, 0xdd, 0xe2, 0x5a,
        0xe8, 0xc5, 0x02, 0x00, 0x08, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn reads_a_real_stream_and_renames_it_with_the_checksum_btrfs_expects() {
        let head = read_head(&mut &REAL_HEAD[..]).unwrap();
        assert_eq!(head.name, "s1");
        assert_eq!(format_uuid(&head.uuid), "c4374825-b7e7-ec4f-9a70-f0dde25ae8c5");
        // Renamed to its own name, the bytes (checksum included) are the
        // ones btrfs wrote.
        let (_, same) = read_head_renamed(&mut &REAL_HEAD[..], "s1").unwrap();
        assert_eq!(same, REAL_HEAD);
        let (_, renamed) = read_head_renamed(&mut &REAL_HEAD[..], ".incoming-backup").unwrap();
        let again = read_head(&mut &renamed[..]).unwrap();
        assert_eq!(again.name, ".incoming-backup");
        assert_eq!(again.uuid, head.uuid);
        let body_len = u32::from_le_bytes(renamed[17..21].try_into().unwrap()) as usize;
        assert_eq!(renamed.len(), 27 + body_len);
        let mut zeroed = renamed[17..].to_vec();
        zeroed[6..10].fill(0);
        assert_eq!(crc32c(&zeroed).to_le_bytes(), renamed[23..27]);
    }

    fn command(kind: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = attrs.concat();
        let mut v = (body.len() as u32).to_le_bytes().to_vec();
        v.extend(kind.to_le_bytes());
        v.extend([0u8; 4]);
        v.extend(body);
        v
    }

    #[test]
    fn copies_commands_up_to_the_end_marker_and_refuses_a_stream_cut_short() {
        let write = command(15, &[attr(ATTR_PATH, b"etc/motd"), attr(19, &[9u8; 60_000])]);
        let end = command(CMD_END, &[]);
        let whole = [write.clone(), end.clone(), b"trailing".to_vec()].concat();
        let mut out = Vec::new();
        let n = copy_commands(&mut &whole[..], &mut out, 1, &[]).unwrap();
        assert_eq!(out, [write.clone(), end].concat());
        assert_eq!(n as usize, out.len());
        // Cut at a command boundary, and inside a command.
        for cut in [&write[..], &write[..5000]] {
            let err = copy_commands(&mut &cut[..], &mut Vec::new(), 1, &[]).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        }
        // A version 2 data attribute runs to the end of its command.
        let mut v2 = command(15, &[attr(ATTR_PATH, b"f")]);
        v2.extend(ATTR_DATA.to_le_bytes());
        v2.extend(b"raw bytes with no length, ../../ included");
        let len = (v2.len() - 10) as u32;
        v2[..4].copy_from_slice(&len.to_le_bytes());
        let stream = [v2, command(CMD_END, &[])].concat();
        copy_commands(&mut &stream[..], &mut Vec::new(), 2, &[]).unwrap();
    }

    #[test]
    fn refuses_what_btrfs_receive_would_trust() {
        let own = [1u8; 16];
        let refused = |cmd: Vec<u8>| {
            let stream = [cmd, command(CMD_END, &[])].concat();
            let mut out = Vec::new();
            let err = copy_commands(&mut &stream[..], &mut out, 1, &[own]).unwrap_err();
            assert!(out.is_empty(), "a refused command was fed on");
            err.to_string()
        };
        assert!(refused(command(CMD_SUBVOL, &[attr(ATTR_PATH, b"other")])).contains("more than one"));
        assert!(refused(command(CMD_SNAPSHOT, &[attr(ATTR_PATH, b"other")])).contains("more than one"));
        for path in [&b"../escape"[..], b"/etc/cron.d/x", b"a/../../b", b".."] {
            let err = refused(command(3, &[attr(ATTR_PATH, path)]));
            assert!(err.contains("outside its snapshot"), "{err}");
        }
        assert!(
            refused(command(9, &[attr(ATTR_PATH, b"a"), attr(ATTR_PATH_TO, b"../b")])).contains("outside")
        );
        let clone = |uuid: [u8; 16]| {
            command(
                16,
                &[
                    attr(ATTR_PATH, b"a"),
                    attr(ATTR_CLONE_UUID, &uuid),
                    attr(ATTR_CLONE_PATH, b"b"),
                ],
            )
        };
        assert!(refused(clone([2; 16])).contains("clones data"));
        let ok = [clone(own), command(CMD_END, &[])].concat();
        copy_commands(&mut &ok[..], &mut Vec::new(), 1, &[own]).unwrap();
        let mut huge = command(15, &[]);
        huge[..4].copy_from_slice(&(64u32 << 20).to_le_bytes());
        assert!(refused(huge).contains("more than btrfs writes"));
        // Symlink targets may point anywhere: they are data, not paths.
        let link = [
            command(8, &[attr(ATTR_PATH, b"bin/sh"), attr(17, b"/usr/bin/dash")]),
            command(CMD_END, &[]),
        ]
        .concat();
        copy_commands(&mut &link[..], &mut Vec::new(), 1, &[own]).unwrap();
    }

    #[test]
    fn refuses_commands_a_vps_disk_never_holds() {
        let check = |cmd: Vec<u8>| {
            let stream = [cmd, command(CMD_END, &[])].concat();
            copy_commands(&mut &stream[..], &mut Vec::new(), 2, &[]).map_err(|e| e.to_string())
        };
        // The pool's loop device, as the attack on the stream had it.
        let mode = (libc::S_IFBLK | 0o666) as u64;
        let mknod = command(
            CMD_MKNOD,
            &[
                attr(ATTR_PATH, b"dev/loop0"),
                attr(5, &mode.to_le_bytes()),
                attr(8, &0x700u64.to_le_bytes()),
            ],
        );
        let err = check(mknod).unwrap_err();
        assert!(err.contains("device node") && err.contains("dev/loop0"), "{err}");
        // Even a MKNOD that claims a fifo: btrfs sends those as MKFIFO.
        let fifo_mode = (libc::S_IFIFO | 0o600) as u64;
        assert!(check(command(
            CMD_MKNOD,
            &[attr(ATTR_PATH, b"p"), attr(5, &fifo_mode.to_le_bytes())]
        ))
        .is_err());
        assert!(check(command(
            24,
            &[attr(ATTR_PATH, b"f"), attr(26, &0x10u64.to_le_bytes())]
        ))
        .unwrap_err()
        .contains("command 24"));
        assert!(check(command(99, &[])).unwrap_err().contains("command 99"));
        let chown = |uid: u64| {
            command(
                19,
                &[
                    attr(ATTR_PATH, b"f"),
                    attr(ATTR_UID, &uid.to_le_bytes()),
                    attr(ATTR_GID, &0u64.to_le_bytes()),
                ],
            )
        };
        assert!(check(chown(65536)).unwrap_err().contains("owner outside"));
        assert!(check(chown(u64::MAX)).unwrap_err().contains("owner outside"));
        check(chown(65535)).unwrap();
        let xattr = |name: &[u8]| {
            command(
                13,
                &[attr(ATTR_PATH, b"f"), attr(ATTR_XATTR_NAME, name), attr(14, b"x")],
            )
        };
        assert!(check(xattr(b"trusted.overlay.redirect"))
            .unwrap_err()
            .contains("extended attribute"));
        assert!(check(xattr(b"security.selinux")).is_err());
        check(xattr(b"security.capability")).unwrap();
        check(xattr(b"user.mime_type")).unwrap();
        // Fifos and sockets are no devices: VPS disks hold them.
        check(command(6, &[attr(ATTR_PATH, b"run/fifo")])).unwrap();
        check(command(7, &[attr(ATTR_PATH, b"var/spool/postfix/private/smtp")])).unwrap();
    }

    #[test]
    fn formats_uuids_as_btrfs_does() {
        let uuid = [
            0xc4, 0x37, 0x48, 0x25, 0xb7, 0xe7, 0xec, 0x4f, 0x9a, 0x70, 0xf0, 0xdd, 0xe2, 0x5a, 0xe8, 0xc5,
        ];
        assert_eq!(format_uuid(&uuid), "c4374825-b7e7-ec4f-9a70-f0dde25ae8c5");
    }
}
