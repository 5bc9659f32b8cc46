//! Running the external tools croft relies on (btrfs, mkfs.btrfs, mount):
//! a failure carries the command line, its exit status and its stderr.

use std::process::{Command, Output};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CommandError {
    #[error("cannot run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot feed `{command}`")]
    Feed {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run `cmd` to completion; a non-zero exit is an error.
pub fn run(cmd: &mut Command) -> Result<Output, CommandError> {
    let command = describe(cmd);
    let out = cmd.output().map_err(|source| CommandError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(CommandError::Failed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

/// Run `cmd` with `feed` writing its stdin (closed when `feed` returns);
/// a non-zero exit is an error. Its stderr is read meanwhile by a thread,
/// so a chatty tool cannot stall the feed.
pub fn run_feeding(
    cmd: &mut Command,
    feed: impl FnOnce(&mut std::process::ChildStdin) -> std::io::Result<()>,
) -> Result<(), CommandError> {
    use std::io::Read;
    use std::process::Stdio;
    let command = describe(cmd);
    let spawn_err = |source| CommandError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err_pipe.read_to_string(&mut text);
        text
    });
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A tool that stops reading (it failed) breaks the pipe: its own exit
    // status and stderr tell why. But a feed that refused its input
    // (InvalidData) cut the tool short: that is the reason to report.
    // A feed error after the tool succeeded counts too.
    let fed = feed(&mut stdin);
    drop(stdin);
    let status = child.wait().map_err(spawn_err)?;
    let stderr = stderr.join().unwrap_or_default().trim().to_string();
    match fed {
        Err(source) if source.kind() == std::io::ErrorKind::InvalidData || status.success() => {
            Err(CommandError::Feed { command, source })
        }
        _ if !status.success() => Err(CommandError::Failed {
            command,
            status: status.to_string(),
            stderr,
        }),
        _ => Ok(()),
    }
}

/// Run `cmd` and return its stdout as text.
pub fn stdout(cmd: &mut Command) -> Result<String, CommandError> {
    run(cmd).map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fed_command_reads_what_it_is_fed_and_reports_its_failure() {
        let out = std::env::temp_dir().join(format!("croft-cmd-feed-{}", std::process::id()));
        run_feeding(
            Command::new("sh")
                .arg("-c")
                .arg(format!("cat > {}", out.display())),
            |stdin| std::io::Write::write_all(stdin, b"fed"),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "fed");
        let _ = std::fs::remove_file(&out);
        let err = run_feeding(
            Command::new("sh").args(["-c", "echo refused >&2; exit 4"]),
            |stdin| std::io::Write::write_all(stdin, &vec![0u8; 1 << 20]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
    }

    #[test]
    fn failures_carry_command_status_and_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sh -c echo boom >&2; exit 3"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
        assert!(matches!(
            run(&mut Command::new("/nonexistent/tool")),
            Err(CommandError::Spawn { .. })
        ));
        assert_eq!(stdout(Command::new("echo").arg("hi")).unwrap(), "hi\n");
    }
}
