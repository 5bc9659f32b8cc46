//! `croft job ...`: the long operations (launches, rebuilds, image builds),
//! their progress and outcome, and cancelling one.

use crate::{show_list, wait_job, Format};
use anyhow::{bail, Result};
use clap::Subcommand;
use croft_api::{Job, JobStatus};
use croft_client::Client;

#[derive(Subcommand)]
pub enum JobCommand {
    /// List the latest operations, newest first.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show one operation.
    Show {
        /// The operation's id (croft job list).
        id: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Wait until an operation ends; fails unless it succeeded.
    Wait {
        /// The operation's id (croft job list).
        id: String,
    },
    /// Stop a running operation at its next step, undoing what it did (a
    /// cancelled launch leaves no VPS; a cancelled rebuild keeps the old
    /// disk), and wait until it has stopped.
    Cancel {
        /// The operation's id (croft job list).
        id: String,
        /// Return once the cancel is asked for, without waiting.
        #[arg(long)]
        no_wait: bool,
    },
}

pub fn run(client: &Client, command: JobCommand) -> Result<()> {
    match command {
        JobCommand::List { format } => show_list(
            format,
            &client.jobs()?,
            &["ID", "KIND", "TARGET", "STATUS", "PROGRESS", "CREATED"],
            |j| {
                vec![
                    j.id.clone(),
                    j.kind.clone(),
                    j.target.clone(),
                    j.status.word().into(),
                    format!("{}%", j.progress),
                    j.created_at.clone(),
                ]
            },
        )?,
        JobCommand::Show { id, format } => {
            let job = client.job(&id)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                show(&job);
            }
        }
        JobCommand::Wait { id } => {
            let job = wait_job(client, &client.job(&id)?)?;
            if job.status != JobStatus::Success {
                bail!("{}", ended(&job));
            }
        }
        JobCommand::Cancel { id, no_wait } => {
            let job = client.cancel_job(&id)?;
            if no_wait {
                println!("asked job {id} ({} {}) to stop", job.kind, job.target);
                return Ok(());
            }
            let job = wait_job(client, &job)?;
            match job.status {
                JobStatus::Cancelled => println!("job {id} ({} {}) cancelled", job.kind, job.target),
                // It was past its last step: it finished as it would have.
                _ => bail!("job {id} ended before it could stop: {}", ended(&job)),
            }
        }
    }
    Ok(())
}

fn show(job: &Job) {
    println!("id:       {}", job.id);
    println!("kind:     {}", job.kind);
    println!("tenant:   {}", job.tenant);
    println!("target:   {}", job.target);
    println!("status:   {}", job.status.word());
    println!("progress: {}%", job.progress);
    if let Some(message) = &job.message {
        println!("message:  {message}");
    }
    if let Some(error) = &job.error {
        println!("error:    {error}");
    }
    println!("created:  {}", job.created_at);
}

/// How a job ended, as one line.
fn ended(job: &Job) -> String {
    let what = format!("{} {} {}", job.kind, job.target, job.status.word());
    match &job.error {
        Some(error) => format!("{what}: {error}"),
        None => what,
    }
}
