//! Image tarballs: importing one into a root filesystem without letting it
//! write anywhere else, and exporting a root filesystem with its digest.
//!
//! An imported tarball is untrusted input that host root unpacks, so every
//! entry is checked before anything is written: no absolute paths, no `..`,
//! no device nodes, fifos or sockets, no owner outside the 65536 ids a VPS
//! maps, and no link pointing out of the tree (tar's `unpack_in` also
//! refuses any entry whose real parent lies outside the destination, which
//! covers paths through symlinks unpacked earlier).

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt or truncated archive")]
    Corrupt(#[source] std::io::Error),
    #[error("refusing archive entry {path:?}: {why}")]
    Unsafe { path: String, why: &'static str },
    /// An entry that could not be written: named as in the archive, with
    /// the cause alone (the tar crate's message names the host path it
    /// unpacks to, which is croft's business, not the uploader's).
    #[error("cannot unpack archive entry {path:?}: {why}")]
    Entry { path: String, why: String },
    #[error("bad zstd stream: {0}")]
    Zstd(String),
    #[error("the storage pool is full")]
    NoSpace(#[source] std::io::Error),
    #[error("the archive holds no root filesystem (no /sbin/init or /bin/sh)")]
    Empty,
}

/// What an import unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: u64,
    pub bytes: u64,
}

fn open_decompressed(path: &Path) -> Result<Box<dyn Read>, ArchiveError> {
    let file = File::open(path).map_err(|source| ArchiveError::Io {
        what: "open",
        path: path.to_path_buf(),
        source,
    })?;
    decompressed(BufReader::new(file))
}

/// `r` decompressed as its first bytes say: gzip, zstd, or a plain tar.
fn decompressed<'a>(mut r: impl Read + 'a) -> Result<Box<dyn Read + 'a>, ArchiveError> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    // A stream may hand over fewer bytes than asked for.
    while n < magic.len() {
        match r.read(&mut magic[n..]).map_err(ArchiveError::Corrupt)? {
            0 => break,
            got => n += got,
        }
    }
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let reader = head.chain(r);
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(GzDecoder::new(reader)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(ZstdFrames::new(BufReader::new(reader))?),
        _ => Box::new(reader),
    })
}

/// The largest zstd window accepted: what `zstd --long` (2^27) writes.
/// Bounds the memory a hostile archive can make croftd allocate.
const ZSTD_MAX_WINDOW: u64 = 1 << 27;

/// A zstd stream of one or more frames (`zstd -T0` and `pzstd` write
/// several), decoded frame after frame.
struct ZstdFrames<R: BufRead> {
    /// `None` only if re-arming for the next frame failed.
    inner: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
}

fn zstd_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad zstd stream: {e}"))
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> Result<Self, ArchiveError> {
        let inner = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(source, ZSTD_MAX_WINDOW)
            .map_err(|e| ArchiveError::Zstd(e.to_string()))?;
        Ok(ZstdFrames { inner: Some(inner) })
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let inner = self.inner.as_mut().ok_or_else(|| zstd_err("unreadable frame"))?;
            let n = inner.read(buf)?;
            if n > 0 || buf.is_empty() || !inner.decoder.is_finished() {
                return Ok(n);
            }
            // This frame is done: end of stream, or another frame follows.
            if inner.get_mut().fill_buf()?.is_empty() {
                return Ok(0);
            }
            let (source, decoder) = self.inner.take().expect("checked above").into_parts();
            let next =
                ruzstd::decoding::StreamingDecoder::new_with_decoder(source, decoder).map_err(zstd_err)?;
            self.inner = Some(next);
        }
    }
}

/// A failed write of entry `path` is the pool filling up (worth saying
/// so) or, for anything else, the entry named with its cause.
fn unpack_error(e: std::io::Error, path: &str) -> ArchiveError {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => ArchiveError::NoSpace(e),
        // The stream ended inside the entry (the tar crate's message
        // names host paths: only the kind is kept).
        std::io::ErrorKind::UnexpectedEof => ArchiveError::Corrupt(e.kind().into()),
        _ => {
            // The OS's own error, which names no path; the tar crate's
            // messages ("... when creating dir /pool/...") name host
            // paths and are left out.
            let mut os = e.raw_os_error();
            let mut cause = std::error::Error::source(&e);
            while let Some(inner) = cause {
                if let Some(code) = inner
                    .downcast_ref::<std::io::Error>()
                    .and_then(|i| i.raw_os_error())
                {
                    os = Some(code);
                }
                cause = inner.source();
            }
            let why = match os {
                Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
                None => e.kind().to_string(),
            };
            ArchiveError::Entry {
                path: path.to_string(),
                why,
            }
        }
    }
}

fn check_path(path: &Path) -> Result<(), &'static str> {
    for c in path.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
            Component::ParentDir => return Err("path leaves the tree (..)"),
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    Ok(())
}

/// Unpack `archive` (.tar or .tar.gz) into the empty directory `dest`.
/// On error `dest` may hold part of the tree; the caller discards it.
pub fn unpack(archive: &Path, dest: &Path) -> Result<Unpacked, ArchiveError> {
    unpack_tar(open_decompressed(archive)?, dest)
}

/// [`unpack`] an archive read from a stream (an upload), never held whole.
pub fn unpack_from(stream: impl Read, dest: &Path) -> Result<Unpacked, ArchiveError> {
    unpack_tar(decompressed(stream)?, dest)
}

fn unpack_tar(tarball: impl Read, dest: &Path) -> Result<Unpacked, ArchiveError> {
    let mut tar = tar::Archive::new(tarball);
    tar.set_preserve_permissions(true);
    tar.set_preserve_ownerships(true);
    tar.set_unpack_xattrs(false);
    tar.set_overwrite(true);
    let mut stats = Unpacked { entries: 0, bytes: 0 };
    for entry in tar.entries().map_err(ArchiveError::Corrupt)? {
        let mut entry = entry.map_err(ArchiveError::Corrupt)?;
        let path = entry.path().map_err(ArchiveError::Corrupt)?.into_owned();
        let shown = path.display().to_string();
        let refuse = |why| ArchiveError::Unsafe {
            path: shown.clone(),
            why,
        };
        check_path(&path).map_err(refuse)?;
        let header = entry.header();
        match header.entry_type() {
            tar::EntryType::Regular
            | tar::EntryType::Directory
            | tar::EntryType::Continuous
            | tar::EntryType::GNUSparse => {}
            tar::EntryType::Symlink => {}
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(ArchiveError::Corrupt)?
                    .ok_or_else(|| refuse("hard link without target"))?;
                check_path(&target).map_err(refuse)?;
            }
            tar::EntryType::Block | tar::EntryType::Char => return Err(refuse("device node")),
            tar::EntryType::Fifo => return Err(refuse("fifo")),
            tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {}
            _ => return Err(refuse("unsupported entry type")),
        }
        let uid = header.uid().map_err(ArchiveError::Corrupt)?;
        let gid = header.gid().map_err(ArchiveError::Corrupt)?;
        if uid >= u64::from(crate::spec::ID_RANGE) || gid >= u64::from(crate::spec::ID_RANGE) {
            return Err(refuse("owner outside the 65536 ids a VPS maps"));
        }
        stats.bytes += header.size().unwrap_or(0);
        if entry.unpack_in(dest).map_err(|e| unpack_error(e, &shown))? {
            stats.entries += 1;
        } else {
            return Err(refuse("outside the destination"));
        }
    }
    let has_init = ["sbin/init", "bin/sh"]
        .iter()
        .any(|p| std::fs::symlink_metadata(dest.join(p)).is_ok());
    if !has_init {
        return Err(ArchiveError::Empty);
    }
    Ok(stats)
}

/// Counts and hashes what passes through.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Write `src` as a gzip-compressed tarball into `out` (a download, as
/// the client takes it); returns the tarball's sha256 and size.
pub fn pack(src: &Path, out: impl Write) -> Result<(String, u64), ArchiveError> {
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io { what, path, source }
    };
    let hashing = HashingWriter {
        inner: std::io::BufWriter::new(out),
        hash: Sha256::new(),
        bytes: 0,
    };
    let gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    builder.follow_symlinks(false);
    builder.append_dir_all(".", src).map_err(io("archive", src))?;
    let gz = builder.into_inner().map_err(io("write the tarball of", src))?;
    let mut hashing = gz.finish().map_err(io("write the tarball of", src))?;
    hashing.flush().map_err(io("write the tarball of", src))?;
    Ok((format!("{:x}", hashing.hash.finalize()), hashing.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(dir: &Path, build: impl FnOnce(&mut tar::Builder<File>)) -> PathBuf {
        let path = dir.join("in.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        build(&mut b);
        b.finish().unwrap();
        path
    }

    fn file_entry(b: &mut tar::Builder<File>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        // Owned by whoever runs the test, so an unpack (which keeps owners)
        // works without root: root's own entries when run as root.
        h.set_uid(nix::unistd::geteuid().as_raw().into());
        h.set_gid(nix::unistd::getegid().as_raw().into());
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`; write the raw name to build hostile input.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    #[test]
    fn refuses_traversal_absolute_and_device_entries_and_writes_nothing_outside() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        for (bad, why) in [("../escaped", "(..)"), ("/etc/escaped", "absolute")] {
            std::fs::create_dir_all(&dest).unwrap();
            let t = tarball(dir.path(), |b| file_entry(b, bad, b"x"));
            let err = unpack(&t, &dest).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!dir.path().join("escaped").exists());
        }
        let t = tarball(dir.path(), |b| {
            let mut h = tar::Header::new_gnu();
            h.set_path("dev/sda").unwrap();
            h.set_entry_type(tar::EntryType::Block);
            h.set_size(0);
            h.set_cksum();
            b.append(&h, &[][..]).unwrap();
        });
        assert!(unpack(&t, &dest).unwrap_err().to_string().contains("device node"));
        assert!(!dest.join("dev/sda").exists());
    }

    #[test]
    fn an_entry_that_cannot_be_written_is_named_as_in_the_archive_not_by_host_path() {
        let dir = tempfile::tempdir().unwrap();
        // Where croftd unpacks an image named nu/junk.
        let dest = dir.path().join(".nu_junk.unfinished");
        std::fs::create_dir_all(&dest).unwrap();
        let t = tarball(dir.path(), |b| {
            file_entry(b, "etc", b"a file");
            file_entry(b, "etc/passwd", b"under a file");
        });
        let err = unpack(&t, &dest).unwrap_err();
        let mut text = err.to_string();
        let mut cause = std::error::Error::source(&err);
        while let Some(c) = cause {
            text += &format!(": {c}");
            cause = c.source();
        }
        assert!(text.contains("\"etc/passwd\""), "{text}");
        assert!(
            !text.contains("nu_junk") && !text.contains(&*dir.path().to_string_lossy()),
            "{text}"
        );
    }

    #[test]
    fn a_symlink_cannot_carry_later_entries_out_of_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        std::fs::create_dir_all(&dest).unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let t = tarball(dir.path(), |b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "etc", &outside).unwrap();
            file_entry(b, "etc/passwd", b"owned");
        });
        assert!(unpack(&t, &dest).is_err());
        assert!(!outside.join("passwd").exists(), "wrote through a symlink");
    }

    #[test]
    fn round_trip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::write(src.join("bin/sh"), b"#!shell").unwrap();
        std::fs::write(src.join("data"), vec![7u8; 200_000]).unwrap();
        let out = dir.path().join("img.tar.gz");
        let (sha, size) = pack(&src, &File::create(&out).unwrap()).unwrap();
        assert_eq!(sha.len(), 64);
        assert_eq!(size, std::fs::metadata(&out).unwrap().len());
        let dest = dir.path().join("dest");
        std::fs::create_dir_all(&dest).unwrap();
        let stats = unpack(&out, &dest).unwrap();
        assert!(stats.entries >= 3);
        assert_eq!(std::fs::read(dest.join("data")).unwrap().len(), 200_000);
        // Cut the archive in half: a clear error, not a partial success.
        let bytes = std::fs::read(&out).unwrap();
        let cut = dir.path().join("cut.tar.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let dest2 = dir.path().join("dest2");
        std::fs::create_dir_all(&dest2).unwrap();
        assert!(matches!(unpack(&cut, &dest2), Err(ArchiveError::Corrupt(_))));
        // An empty tree is not a root filesystem.
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        pack(&empty, &File::create(dir.path().join("e.tar.gz")).unwrap()).unwrap();
        let dest3 = dir.path().join("dest3");
        std::fs::create_dir_all(&dest3).unwrap();
        assert!(matches!(
            unpack(&dir.path().join("e.tar.gz"), &dest3),
            Err(ArchiveError::Empty)
        ));
    }

    #[test]
    fn zstd_single_and_multi_frame_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let tar_path = tarball(dir.path(), |b| {
            file_entry(b, "bin/sh", b"#!shell");
            file_entry(b, "data", &vec![9u8; 300_000]);
        });
        let tar_bytes = std::fs::read(&tar_path).unwrap();
        let zstd = |input: &[u8]| -> Vec<u8> {
            let p = dir.path().join("in");
            std::fs::write(&p, input).unwrap();
            let out = std::process::Command::new("zstd")
                .args(["-q", "-c"])
                .arg(&p)
                .output()
                .unwrap();
            assert!(out.status.success(), "zstd (Debian's zstd package) failed");
            out.stdout
        };
        let single = zstd(&tar_bytes);
        // Two frames back to back decode to the two halves joined.
        let mut multi = zstd(&tar_bytes[..5000]);
        multi.extend(zstd(&tar_bytes[5000..]));
        for (name, bytes) in [("one.tar.zst", &single), ("two.tar.zst", &multi)] {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            let dest = dir.path().join(format!("dest-{name}"));
            std::fs::create_dir_all(&dest).unwrap();
            unpack(&p, &dest).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(
                std::fs::read(dest.join("data")).unwrap(),
                vec![9u8; 300_000],
                "{name}"
            );
        }
        let cut = dir.path().join("cut.tar.zst");
        std::fs::write(&cut, &single[..single.len() / 2]).unwrap();
        let dest = dir.path().join("dest-cut");
        std::fs::create_dir_all(&dest).unwrap();
        assert!(matches!(unpack(&cut, &dest), Err(ArchiveError::Corrupt(_))));
    }
}
