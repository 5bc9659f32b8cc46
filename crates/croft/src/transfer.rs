//! Image tarballs and snapshot streams moved between a local file (or
//! stdin/stdout, given as `-`) and croftd, with a progress bar on a
//! terminal and the sha256 of what moved. A download lands in its file
//! whole or not at all (`croft_client::outfile`).

use anyhow::{anyhow, Result};
use croft_client::outfile::{check_target, OutFile};
use sha2::{Digest, Sha256};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

/// A progress bar on stderr when it is a terminal, of `total` bytes if
/// known; nothing otherwise.
pub fn progress(what: &str, total: Option<u64>) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(n) => (
            indicatif::ProgressBar::new(n),
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        ),
        None => (
            indicatif::ProgressBar::no_length(),
            "{spinner} {msg} {bytes} {bytes_per_sec}",
        ),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// What an upload reads: a file, or stdin for `-`; and its size if known.
pub fn open_input(file: &Path) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
    if file == Path::new("-") {
        return Ok((Box::new(std::io::stdin()), None));
    }
    let f = std::fs::File::open(file).map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?;
    let meta = f
        .metadata()
        .map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?;
    if !meta.is_file() {
        return Err(anyhow!("cannot read {}: not a regular file", file.display()));
    }
    Ok((Box::new(f), Some(meta.len())))
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hash: std::sync::Arc<std::sync::Mutex<Sha256>>,
}

impl<R: Read> HashingReader<R> {
    /// The reader, and a handle to read its digest from once it is done.
    pub fn new(inner: R) -> (HashingReader<R>, Digestor) {
        let hash = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
        (
            HashingReader {
                inner,
                hash: hash.clone(),
            },
            Digestor(hash),
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.lock().expect("hash lock").update(&buf[..n]);
        Ok(n)
    }
}

/// The digest of what a [`HashingReader`] read.
pub struct Digestor(std::sync::Arc<std::sync::Mutex<Sha256>>);

impl Digestor {
    pub fn hex(&self) -> String {
        format!("{:x}", self.0.lock().expect("hash lock").clone().finalize())
    }
}

/// Where a download goes: a file (written beside, moved in when whole),
/// or stdout for `-`; it hashes what it is given.
pub struct Output {
    file: Option<OutFile>,
    hash: Sha256,
}

impl Output {
    /// Check `file` as the target (new, or a regular file with `force`),
    /// before anything is asked of croftd.
    pub fn create(file: &Path, force: bool) -> Result<Output> {
        if file == Path::new("-") {
            return Ok(Output {
                file: None,
                hash: Sha256::new(),
            });
        }
        let target = target_path(file)?;
        check_target(&target, force)?;
        Ok(Output {
            file: Some(OutFile::create(&target, force)?),
            hash: Sha256::new(),
        })
    }

    /// Move the file in place; the sha256 of what was written.
    pub fn finish(self) -> Result<String> {
        if let Some(file) = self.file {
            file.persist()?;
        }
        Ok(format!("{:x}", self.hash.finalize()))
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match &self.file {
            Some(f) => f.file().write(buf)?,
            None => std::io::stdout().write(buf)?,
        };
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &self.file {
            Some(f) => f.file().flush(),
            None => std::io::stdout().flush(),
        }
    }
}

/// `file` made absolute (from the current directory), refusing what
/// names a directory or lies in none.
fn target_path(file: &Path) -> Result<PathBuf> {
    let text = file.to_string_lossy();
    if text.ends_with('/') {
        return Err(anyhow!("{text} names a directory, not a file"));
    }
    let target = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir()?.join(file)
    };
    if !target.parent().is_some_and(Path::is_dir) {
        return Err(anyhow!("{text}: give a path in an existing directory"));
    }
    Ok(target)
}
