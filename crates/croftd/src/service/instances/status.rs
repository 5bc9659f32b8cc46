//! Which operation may run in which status, in one table: what every
//! lifecycle operation checks before it changes anything.

use crate::service::{Result, ServiceError};
use croft_api::Status;

/// An operation on a VPS that depends on its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    Delete { force: bool },
    Rebuild,
    Restore { stop: bool },
}

/// What the operation does about the VPS's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Go ahead as it is.
    Proceed,
    /// Stop it first (and, but for a delete, start it again after).
    StopFirst,
}

/// The plan for `action` on VPS `name` in status `status`, or why it is
/// refused (a conflict: it may work once the status changes).
pub fn plan(name: &str, status: Status, action: Action) -> Result<Plan> {
    use Action::*;
    use Status::*;
    let refuse = |why: String| Err(ServiceError::Conflict(why));
    match (action, status) {
        (Start, Stopped) => Ok(Plan::Proceed),
        (Start, s) => refuse(format!("VPS {name} is {s}, not stopped")),
        (Stop, Running) => Ok(Plan::Proceed),
        (Stop, s) => refuse(format!("VPS {name} is {s}, not running")),
        (Restart | Rebuild | Restore { .. }, Stopped) => Ok(Plan::Proceed),
        (Restart | Rebuild | Restore { stop: true }, Running) => Ok(Plan::StopFirst),
        (Restore { stop: false }, Running) => refuse(format!(
            "VPS {name} is running; stop it first or restore with stop (croft snapshot restore --stop)"
        )),
        (Restart | Rebuild | Restore { .. }, s) => refuse(format!("VPS {name} is {s}")),
        (Delete { force: false }, Running) => refuse(format!(
            "VPS {name} is running; stop it first or force the delete"
        )),
        (Delete { .. }, Running | Starting | Stopping) => Ok(Plan::StopFirst),
        (Delete { .. }, Stopped | Creating | Deleting) => Ok(Plan::Proceed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use Status::*;

    #[test]
    fn every_action_in_every_status() {
        let all = [Creating, Stopped, Starting, Running, Stopping, Deleting];
        let actions = [
            Start,
            Stop,
            Restart,
            Delete { force: false },
            Delete { force: true },
            Rebuild,
            Restore { stop: false },
            Restore { stop: true },
        ];
        // (action, status) -> Some(plan) allowed, None refused.
        let expect = |a: Action, s: Status| -> Option<Plan> {
            match (a, s) {
                (Start, Stopped) | (Stop, Running) => Some(Plan::Proceed),
                (Restart | Rebuild | Restore { .. }, Stopped) => Some(Plan::Proceed),
                (Restart | Rebuild | Restore { stop: true }, Running) => Some(Plan::StopFirst),
                (Delete { force: true }, Running) => Some(Plan::StopFirst),
                (Delete { .. }, Starting | Stopping) => Some(Plan::StopFirst),
                (Delete { .. }, Stopped | Creating | Deleting) => Some(Plan::Proceed),
                _ => None,
            }
        };
        for a in actions {
            for s in all {
                match (plan("v", s, a), expect(a, s)) {
                    (Ok(p), Some(e)) => assert_eq!(p, e, "{a:?} in {s}"),
                    (Err(ServiceError::Conflict(why)), None) => {
                        assert!(why.starts_with("VPS v is"), "{a:?} in {s}: {why}")
                    }
                    (got, want) => panic!("{a:?} in {s}: got {got:?}, want {want:?}"),
                }
            }
        }
    }
}
