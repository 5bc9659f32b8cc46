//! Bytes that cross the API as streams (image tarballs, snapshot send
//! streams), in either direction, never held whole: an upload is read by
//! blocking host code as it arrives, a download is produced by blocking
//! host code as the client takes it, a chunk at a time.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use tokio::sync::mpsc;

/// How much of a stream one chunk carries.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the host code and the client.
const DEPTH: usize = 8;

/// A download: chunks as the host code makes them; an `Err` last means
/// it failed part-way (the client must not take what it got for whole).
pub type Download = mpsc::Receiver<std::io::Result<Bytes>>;

/// An upload as blocking code reads it.
pub type Upload = Box<dyn Read + Send>;

/// The sending end of a [`Download`], written like a file by blocking
/// code. A write fails once the client has gone.
pub struct DownloadWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
}

impl DownloadWriter {
    /// A writer and the download it feeds.
    pub fn new() -> (DownloadWriter, Download) {
        let (tx, rx) = mpsc::channel(DEPTH);
        (DownloadWriter { tx }, rx)
    }

    /// End the download as failed, with why.
    pub fn fail(self, why: String) {
        let _ = self.tx.blocking_send(Err(std::io::Error::other(why)));
    }

    /// Copy everything `r` yields into the download.
    pub fn copy_from(&mut self, r: &mut impl Read) -> std::io::Result<u64> {
        let mut total = 0;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.write_all(&buf[..n])?;
            total += n as u64;
        }
    }
}

impl Write for DownloadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A reader that hashes (sha256) and counts what passes through it.
pub struct Hashing<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// The sha256 (hex) and size of what was read.
    pub fn finish(self) -> (String, u64) {
        (format!("{:x}", self.hash.finalize()), self.bytes)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_download_carries_everything_then_its_failure() {
        let (mut w, mut rx) = DownloadWriter::new();
        let data: Vec<u8> = (0..(CHUNK * 3 + 17)).map(|i| i as u8).collect();
        let expected = data.clone();
        let producer = tokio::task::spawn_blocking(move || {
            w.copy_from(&mut &data[..]).unwrap();
            w.fail("disk on fire".into());
        });
        let mut got = Vec::new();
        let mut failure = None;
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Ok(b) => got.extend_from_slice(&b),
                Err(e) => failure = Some(e.to_string()),
            }
        }
        producer.await.unwrap();
        assert_eq!(got, expected);
        assert_eq!(failure.as_deref(), Some("disk on fire"));
    }

    #[tokio::test]
    async fn a_writer_fails_once_the_client_is_gone() {
        let (mut w, rx) = DownloadWriter::new();
        drop(rx);
        let err = tokio::task::spawn_blocking(move || w.write(b"x").unwrap_err())
            .await
            .unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn hashing_reports_the_sha256_of_what_passed() {
        let mut r = Hashing::new(&b"abc"[..]);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(
            r.finish(),
            (
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string(),
                3
            )
        );
    }
}
