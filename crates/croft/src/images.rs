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

pub fn run(client: &Client, command: ImageCommand) -> Result<()> {
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
