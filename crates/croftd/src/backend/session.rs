//! A command running in a VPS as the API relays it: channels for its
//! input, its output, signals and window sizes, and its exit, whatever
//! backend runs it.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Signals and window sizes for a running command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecControl {
    Signal(i32),
    Resize { rows: u16, cols: u16 },
}

/// The running command's ends.
pub struct ExecSession {
    /// Its stdin (or its terminal's input); dropped: end of input.
    pub stdin: mpsc::Sender<Bytes>,
    /// What it writes, with the stream: [`croft_api::exec::STDOUT`] or
    /// [`croft_api::exec::STDERR`]. Closed once it has ended and what it
    /// wrote before is through.
    pub output: mpsc::Receiver<(u8, Bytes)>,
    pub control: mpsc::UnboundedSender<ExecControl>,
    /// Its exit code (128 + a signal that ended it), or why the session
    /// broke; sent after the output closes.
    pub exit: oneshot::Receiver<Result<i32, String>>,
}

/// The backend's ends of a session, for it to fill.
pub struct ExecEnds {
    pub stdin: mpsc::Receiver<Bytes>,
    pub output: mpsc::Sender<(u8, Bytes)>,
    pub control: mpsc::UnboundedReceiver<ExecControl>,
    pub exit: oneshot::Sender<Result<i32, String>>,
}

/// A new session and the backend's ends of it.
pub fn channels() -> (ExecSession, ExecEnds) {
    let (stdin_tx, stdin_rx) = mpsc::channel(16);
    let (output_tx, output_rx) = mpsc::channel(16);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (exit_tx, exit_rx) = oneshot::channel();
    (
        ExecSession {
            stdin: stdin_tx,
            output: output_rx,
            control: control_tx,
            exit: exit_rx,
        },
        ExecEnds {
            stdin: stdin_rx,
            output: output_tx,
            control: control_rx,
            exit: exit_tx,
        },
    )
}
