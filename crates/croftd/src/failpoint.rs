//! Crash points for fault tests: with `CROFTD_CRASH_AT=<name>` in its
//! environment, croftd kills itself with SIGKILL (no cleanup, no unwinding,
//! exactly a crash) when it reaches the point of that name. The tests use
//! it to stop croftd between two steps of an operation that are too close
//! together to hit with an outside kill, then check what the next start
//! makes of the state.

/// Die here if the environment names this point.
pub fn crash_point(name: &str) {
    if std::env::var_os("CROFTD_CRASH_AT").is_some_and(|v| v == name) {
        tracing::warn!(point = name, "crashing at a test crash point");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
