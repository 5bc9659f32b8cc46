//! `croft snapshot`: snapshots of a VPS's disk, and moving them between
//! hosts as streams.

use crate::transfer::{open_input, progress, HashingReader, Output};
use crate::{path_name, print_table, Format};
use anyhow::Result;
use clap::Subcommand;
use croft_api::format_size;
use croft_client::Client;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Take a read-only snapshot (default name: the first free snapN).
    Create {
        /// The VPS.
        name: String,
        /// The snapshot.
        snapshot: Option<String>,
    },
    /// List a VPS's snapshots.
    List {
        /// The VPS.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Make a snapshot the VPS's disk again.
    Restore {
        /// The VPS.
        name: String,
        /// The snapshot.
        snapshot: String,
        /// Stop a running VPS first and start it again afterwards.
        #[arg(long)]
        stop: bool,
        /// Do not ask on a terminal.
        #[arg(long, short)]
        yes: bool,
    },
    /// Delete a snapshot.
    Delete {
        /// The VPS.
        name: String,
        /// The snapshot.
        snapshot: String,
    },
    /// Write a snapshot into FILE (`-` for stdout) as a btrfs send stream:
    /// all of it, or with --since only what changed since an older
    /// snapshot (btrfs pools). Prints the stream's sha256.
    Export {
        /// The VPS.
        name: String,
        /// The snapshot.
        snapshot: String,
        /// Where to write the stream.
        file: PathBuf,
        /// Send only the changes since this snapshot of the same VPS (the
        /// receiving VPS must have imported it already).
        #[arg(long)]
        since: Option<String>,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Send a stream written by `croft snapshot export` (here or on another
    /// host) from FILE (`-` for stdin) to croftd as a new snapshot of a VPS;
    /// restore or copy it from there.
    Import {
        /// The VPS.
        name: String,
        /// The stream (croft snapshot export).
        file: PathBuf,
        /// Name of the new snapshot (default: the name it was exported with).
        #[arg(long = "name")]
        snapshot: Option<String>,
    },
}

pub fn run(client: &Client, command: SnapshotCommand) -> Result<()> {
    match command {
        SnapshotCommand::Create { name, snapshot } => {
            let snap =
                client.create_snapshot(path_name(&name)?, &croft_api::SnapshotRequest { name: snapshot })?;
            println!("Snapshot {}/{} taken", name, snap.name);
        }
        SnapshotCommand::Export {
            name,
            snapshot,
            file,
            since,
            force,
        } => {
            path_name(&name)?;
            path_name(&snapshot)?;
            let mut out = Output::create(&file, force)?;
            let bar = progress(&format!("exporting {name}/{snapshot}"), None);
            let written = client.export_snapshot(&name, &snapshot, since.as_deref(), &mut out, &|n| {
                bar.set_position(n)
            });
            bar.finish_and_clear();
            let size = written?;
            let sha256 = out.finish()?;
            let what = match &since {
                Some(since) => format!("{name}/{snapshot} (changes since {since})"),
                None => format!("{name}/{snapshot}"),
            };
            // On stdout the stream itself goes; the report to stderr then.
            if file.as_os_str() == "-" {
                eprintln!("Exported {what}: {}, sha256 {sha256}", format_size(size));
            } else {
                println!(
                    "Exported {what} to {}: {}, sha256 {sha256}",
                    file.display(),
                    format_size(size)
                );
            }
        }
        SnapshotCommand::Import { name, file, snapshot } => {
            path_name(&name)?;
            if let Some(s) = &snapshot {
                path_name(s)?;
            }
            let (input, size) = open_input(&file)?;
            let (input, digest) = HashingReader::new(input);
            let bar = progress(&format!("importing into {name}"), size);
            let shown = bar.clone();
            let snap =
                client.import_snapshot(&name, snapshot.as_deref(), input, move |n| shown.set_position(n));
            bar.finish_and_clear();
            let snap = snap?;
            println!(
                "Imported snapshot {}/{} (sha256 {})",
                name,
                snap.name,
                digest.hex()
            );
        }
        SnapshotCommand::List { name, format } => {
            let snaps = client.snapshots(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&snaps)?);
            } else {
                print_table(
                    &["NAME", "CREATED", "SIZE"],
                    snaps.iter().map(|s| {
                        vec![
                            s.name.clone(),
                            s.created_at.clone(),
                            s.size_bytes.map(format_size).unwrap_or_else(|| "-".into()),
                        ]
                    }),
                );
            }
        }
        SnapshotCommand::Restore {
            name,
            snapshot,
            stop,
            yes,
        } => {
            crate::terminal::confirm(
                &format!("Restoring {name} to {snapshot} replaces its disk: what it wrote since is lost"),
                &name,
                yes,
            )?;
            client.restore_snapshot(
                path_name(&name)?,
                path_name(&snapshot)?,
                &croft_api::RestoreRequest { stop },
            )?;
            println!("Restored {name} from {snapshot}");
        }
        SnapshotCommand::Delete { name, snapshot } => {
            client.delete_snapshot(path_name(&name)?, path_name(&snapshot)?)?;
            println!("Deleted snapshot {name}/{snapshot}");
        }
    }
    Ok(())
}
