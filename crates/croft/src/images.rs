//! `croft image`: the images VPSes are launched from.

use crate::transfer::{open_input, progress, HashingReader, Output};
use crate::{print_table, Format};
use anyhow::{anyhow, Result};
use clap::Subcommand;
use croft_api::{format_size, Image};
use croft_client::Client;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ImageCommand {
    /// List the images croft can launch.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show one image: distribution, release, architecture, size, digest.
    Info {
        /// The image.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Build an image croft knows how to build (debian/bookworm, ...) now
    /// rather than on its first launch.
    Build {
        /// The image to build (debian/bookworm, ...).
        name: String,
    },
    /// Build an image croft builds (debian/bookworm, ...) anew from the
    /// mirror, with today's packages. New VPSes and rebuilds get the new
    /// one; VPSes launched from the old one keep their disks.
    Refresh {
        /// The image to build anew.
        name: String,
    },
    /// Copy an image from another croft host: REMOTE:IMAGE is exported
    /// there and imported here (or into --remote), and the sha256 of what
    /// arrived is checked against what was sent.
    Copy {
        /// The image on a remote (`prod:debian/bookworm`).
        source: String,
        /// Its name here (default: the same).
        name: Option<String>,
    },
    /// Import a root filesystem tarball (.tar, .tar.gz or .tar.zst) as an
    /// image: FILE is read here (`-` for stdin) and sent to croftd (prints
    /// its sha256).
    Import {
        /// The tarball (`-` for stdin).
        file: PathBuf,
        /// The image's name.
        name: String,
    },
    /// Export an image as a .tar.gz into FILE (`-` for stdout; prints its
    /// sha256).
    Export {
        /// The image.
        name: String,
        /// Where to write it.
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Delete an image (VPSes launched from it keep their disks).
    Delete {
        /// The image.
        name: String,
    },
}

/// An image name, checked before a round trip.
fn image_name(name: &str) -> Result<&str> {
    croft_api::validate_image_name(name).map_err(|e| anyhow!(e))?;
    Ok(name)
}

/// "debian bookworm", as far as the image says.
fn os_name(i: &Image) -> String {
    match (&i.distro, &i.release) {
        (Some(d), Some(r)) => format!("{d} {r}"),
        (Some(d), None) => d.clone(),
        _ => "-".into(),
    }
}

/// `run`'s way to the client of another remote (`image copy`'s source).
pub type RemoteClient<'a> = &'a dyn Fn(&str) -> Result<Client>;

pub fn run(client: &Client, command: ImageCommand, remote: RemoteClient) -> Result<()> {
    match command {
        ImageCommand::List { format } => {
            let images = client.images()?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&images)?);
            } else {
                print_table(
                    &["NAME", "SOURCE", "AVAILABLE", "OS", "ARCH", "SIZE", "CREATED"],
                    images.iter().map(|i| {
                        vec![
                            i.name.clone(),
                            i.source.clone(),
                            if i.available {
                                "yes".into()
                            } else {
                                "no (built on launch)".into()
                            },
                            os_name(i),
                            i.arch.clone().unwrap_or_else(|| "-".into()),
                            i.size_bytes.map(format_size).unwrap_or_else(|| "-".into()),
                            i.created_at.clone().unwrap_or_else(|| "-".into()),
                        ]
                    }),
                );
            }
        }
        ImageCommand::Info { name, format } => {
            let i = client.image(image_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                println!("Name:         {}", i.name);
                println!("Description:  {}", i.description);
                println!("Source:       {}", i.source);
                println!(
                    "Available:    {}",
                    if i.available {
                        "yes"
                    } else {
                        "no (built on first launch)"
                    }
                );
                println!("Distribution: {}", dash(&i.distro));
                println!("Release:      {}", dash(&i.release));
                println!("Architecture: {}", dash(&i.arch));
                println!(
                    "Size:         {}",
                    i.size_bytes.map(format_size).unwrap_or_else(|| "-".into())
                );
                println!("Created:      {}", dash(&i.created_at));
                println!("SHA-256:      {}", dash(&i.sha256));
            }
        }
        ImageCommand::Build { name } => {
            let job = client.build_image(image_name(&name)?)?;
            let job = crate::wait_job(client, &job)?;
            crate::job_succeeded(&format!("build of {name}"), job)?;
            println!("Image {name} is built");
        }
        ImageCommand::Refresh { name } => {
            let job = client.refresh_image(image_name(&name)?)?;
            let job = crate::wait_job(client, &job)?;
            crate::job_succeeded(&format!("refresh of {name}"), job)?;
            println!("Image {name} is built anew (VPSes launched from the old one keep their disks)");
        }
        ImageCommand::Copy { source, name } => {
            let (from, image) = source
                .split_once(':')
                .ok_or_else(|| anyhow!("name the image's remote: REMOTE:IMAGE (croft remote list)"))?;
            image_name(image)?;
            let name = name.unwrap_or_else(|| image.to_string());
            image_name(&name)?;
            let source = remote(from)?;
            let sha256 = copy(source, image, client, &name)?;
            println!("{sha256}  {name}");
        }
        ImageCommand::Import { file, name } => {
            image_name(&name)?;
            let (input, size) = open_input(&file)?;
            let (input, digest) = HashingReader::new(input);
            let bar = progress(&format!("importing {name}"), size);
            let shown = bar.clone();
            let image = client.import_image(&name, input, move |n| shown.set_position(n));
            bar.finish_and_clear();
            let image = image?;
            eprintln!("Imported {}", image.name);
            println!("{}  {}", digest.hex(), file.display());
        }
        ImageCommand::Export { name, file, force } => {
            image_name(&name)?;
            let mut out = Output::create(&file, force)?;
            let bar = progress(&format!("exporting {name}"), None);
            let written = client.export_image(&name, &mut out, &|n| bar.set_position(n));
            bar.finish_and_clear();
            written?;
            let sha256 = out.finish()?;
            // On stdout the tarball itself goes; the digest to stderr then.
            if file.as_os_str() == "-" {
                eprintln!("{sha256}  -");
            } else {
                println!("{sha256}  {}", file.display());
            }
        }
        ImageCommand::Delete { name } => {
            client.delete_image(image_name(&name)?)?;
            println!("Deleted image {name} (VPSes launched from it keep their own disks)");
        }
    }
    Ok(())
}

/// Stream image `image` out of `from` into `to` as image `name`, and check
/// that the digest `to` computed of what it received is that of what
/// `from` sent (and that `from` recorded for its export); a copy that
/// fails the check is deleted. Returns the digest.
fn copy(from: Client, image: &str, to: &Client, name: &str) -> Result<String> {
    // Refused before a byte moves: the name is taken here.
    if to
        .images()?
        .iter()
        .any(|i| i.name == name && (i.available || i.source != "built"))
    {
        return Err(anyhow!(
            "image {name} already exists here (give the copy another name)"
        ));
    }
    let (reader, writer) = nix::unistd::pipe()?;
    let (reader, mut writer) = (std::fs::File::from(reader), std::fs::File::from(writer));
    let (input, digest) = HashingReader::new(reader);
    let bar = progress(&format!("copying {image}"), None);
    let shown = bar.clone();
    let image2 = image.to_string();
    let export = std::thread::spawn(move || {
        // A failed import closes the pipe: the write then fails (EPIPE)
        // rather than killing the CLI with SIGPIPE.
        let mut pipe = nix::sys::signal::SigSet::empty();
        pipe.add(nix::sys::signal::Signal::SIGPIPE);
        let _ = pipe.thread_block();
        let exported = from.export_image(&image2, &mut writer, &|n| shown.set_position(n));
        (from, exported)
    });
    let imported = to.import_image(name, input, |_| {});
    let (from, exported) = export.join().map_err(|_| anyhow!("the export thread panicked"))?;
    bar.finish_and_clear();
    let fail = |why: String| -> Result<String> {
        let _ = to.delete_image(name);
        Err(anyhow!("{why}; the copy was deleted"))
    };
    let imported = match (imported, exported) {
        (Ok(imported), Ok(_)) => imported,
        (Ok(_), Err(e)) => return fail(format!("cannot export {image}: {e}")),
        // The source refused: that explains the import that found no
        // tarball.
        (Err(_), Err(e @ croft_client::ClientError::Api { .. })) => {
            return Err(anyhow!("cannot export {image}: {e}"))
        }
        // Otherwise the import's own error (the export then only met the
        // pipe it closed).
        (Err(e), _) => return Err(e.into()),
    };
    let sent = digest.hex();
    if imported.sha256.as_deref() != Some(sent.as_str()) {
        return fail(format!(
            "image {name} arrived with sha256 {}, not the {sent} sent",
            imported.sha256.as_deref().unwrap_or("-")
        ));
    }
    // The source records its export's digest once the stream is whole.
    for _ in 0..50 {
        match from.image(image) {
            Ok(source) if source.sha256.as_deref() == Some(sent.as_str()) => return Ok(sent),
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            Err(e) => return fail(format!("cannot read the source's sha256 of {image}: {e}")),
        }
    }
    fail(format!(
        "the source recorded no sha256 {sent} for the export of {image}"
    ))
}
