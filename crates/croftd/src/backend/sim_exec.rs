//! The simulator's commands, enough to prove an exec session's plumbing
//! end to end without a VPS: `echo WORDS` (stdout), `warn WORDS`
//! (stderr), `cat` (stdin to stdout until its end), `exit N`, `sleep`
//! (until a signal ends it: 128 + the signal), `size` (the next
//! window size set). Anything else is "not found" (127). The console
//! greets and echoes what is typed, until detached.

use super::session::{ExecControl, ExecEnds};
use bytes::Bytes;
use croft_api::exec::{ExecStart, STDERR, STDOUT};

pub(super) async fn run(start: ExecStart, ends: ExecEnds) {
    let ExecEnds {
        mut stdin,
        output,
        mut control,
        exit,
    } = ends;
    let say = |stream: u8, text: String| {
        let output = output.clone();
        async move {
            let _ = output.send((stream, Bytes::from(text))).await;
        }
    };
    let words = start.args[1..].join(" ");
    let code = match start.args[0].as_str() {
        "echo" => {
            say(STDOUT, format!("{words}\n")).await;
            0
        }
        "warn" => {
            say(STDERR, format!("{words}\n")).await;
            0
        }
        "cat" => {
            while let Some(bytes) = stdin.recv().await {
                let _ = output.send((STDOUT, bytes)).await;
            }
            0
        }
        "exit" => words.parse().unwrap_or(2),
        "sleep" => loop {
            match control.recv().await {
                Some(ExecControl::Signal(signal)) => break 128 + signal,
                Some(ExecControl::Resize { .. }) => {}
                None => break 128 + 1,
            }
        },
        "size" => match control.recv().await {
            Some(ExecControl::Resize { rows, cols }) => {
                say(STDOUT, format!("{rows} {cols}\n")).await;
                0
            }
            Some(ExecControl::Signal(signal)) => 128 + signal,
            None => 128 + 1,
        },
        other => {
            say(STDERR, format!("sim: {other}: not found\n")).await;
            127
        }
    };
    drop(output);
    let _ = exit.send(Ok(code));
}

/// A console: a greeting, then what is typed echoed back, until the
/// client detaches (drops the session).
pub(super) async fn console(ends: ExecEnds) {
    let ExecEnds {
        mut stdin,
        output,
        mut control,
        exit,
    } = ends;
    let _ = output
        .send((STDOUT, Bytes::from_static(b"sim console\r\n")))
        .await;
    loop {
        tokio::select! {
            typed = stdin.recv() => match typed {
                Some(bytes) => {
                    let _ = output.send((STDOUT, bytes)).await;
                }
                None => break,
            },
            c = control.recv() => if c.is_none() { break },
        }
    }
    drop(output);
    let _ = exit.send(Ok(0));
}
