//! The dead-man state: the reversible fault in force on this node and when it
//! must be undone, persisted to a state file *before* the fault starts. The
//! listener's timer restores the node at `restore_at_ms` even if the
//! controller never comes back; a restarted agent (crash, OOM, systemd
//! restart during a net-drop) reads the file at startup and restores at once
//! if the deadline passed, or arms the timer for what is left. The same file
//! holds the replay state and the emergency stop in force.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::runner::Step;
use crate::proto::ChaosAction;

/// A reversible fault in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFault {
    /// The command that started it.
    pub id: String,
    pub action: ChaosAction,
    /// The interface taken down (net-drop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    pub started_ms: u64,
    /// Wall-clock deadline of the dead-man restore (Unix ms).
    pub restore_at_ms: u64,
}

impl ActiveFault {
    /// The steps that inflict the fault.
    pub fn inflict_steps(&self) -> Vec<Step> {
        match (self.action, &self.iface) {
            (ChaosAction::StopK3s, _) => vec![Step::StopK3s],
            (ChaosAction::NetDrop, Some(iface)) => vec![Step::LinkDown {
                iface: iface.clone(),
            }],
            _ => Vec::new(),
        }
    }

    /// The steps that undo it.
    pub fn restore_steps(&self) -> Vec<Step> {
        match (self.action, &self.iface) {
            (ChaosAction::StopK3s, _) => vec![Step::StartK3s],
            (ChaosAction::NetDrop, Some(iface)) => vec![Step::LinkUp {
                iface: iface.clone(),
            }],
            _ => Vec::new(),
        }
    }
}

/// Everything persisted, written atomically as one JSON document: the fault in
/// force plus the replay state, so a restarted agent still refuses replays
/// (the nonces of the current window, and anything issued before the last
/// command this node admitted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    #[serde(default)]
    pub fault: Option<ActiveFault>,
    /// `(issued_ms, nonce)` of admitted commands still inside the window.
    #[serde(default)]
    pub nonces: Vec<(u64, String)>,
    /// `issued_ms` of the last admitted command (0: none).
    #[serde(default)]
    pub last_admitted_issued_ms: u64,
    /// The last emergency stop or clear honoured: a stop stays in force
    /// across restarts, and its seq is the floor for the next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estop: Option<super::estop::EstopRecord>,
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("chaos state file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("chaos state file {path} is not a valid fault record: {source}")]
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Where the active fault is persisted (`None`: memory only).
#[derive(Debug, Clone)]
pub struct StateFile {
    path: Option<PathBuf>,
}

impl StateFile {
    pub fn new(path: Option<PathBuf>) -> Self {
        Self { path }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The fault left by a previous run, if any.
    pub fn load(&self) -> Result<Option<ActiveFault>, StateError> {
        Ok(self.load_state()?.fault)
    }

    /// Writes a state holding only `fault` (atomically and durably).
    pub fn save(&self, fault: &ActiveFault) -> Result<(), StateError> {
        self.save_state(&PersistedState {
            fault: Some(fault.clone()),
            ..PersistedState::default()
        })
    }

    /// Everything a previous run left (a file of an older agent holds a bare
    /// fault record, read as such).
    pub fn load_state(&self) -> Result<PersistedState, StateError> {
        let Some(path) = &self.path else {
            return Ok(PersistedState::default());
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(PersistedState::default());
            }
            Err(source) => {
                return Err(StateError::Io {
                    path: path.clone(),
                    source,
                });
            }
        };
        if let Ok(fault) = serde_json::from_slice::<ActiveFault>(&bytes) {
            return Ok(PersistedState {
                fault: Some(fault),
                ..PersistedState::default()
            });
        }
        serde_json::from_slice(&bytes).map_err(|source| StateError::Decode {
            path: path.clone(),
            source,
        })
    }

    /// Writes `state` atomically and durably (temp file, fsync, rename).
    pub fn save_state(&self, state: &PersistedState) -> Result<(), StateError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        let json = serde_json::to_vec(state).expect("the state always serialises");
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Forgets the fault (after it was restored).
    pub fn clear(&self) -> Result<(), StateError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io {
                path: path.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_clear_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateFile::new(Some(dir.path().join("chaos.json")));
        assert_eq!(state.load().unwrap(), None);
        let fault = ActiveFault {
            id: "c1".into(),
            action: ChaosAction::NetDrop,
            iface: Some("eth0".into()),
            started_ms: 1,
            restore_at_ms: 2,
        };
        state.save(&fault).unwrap();
        assert_eq!(state.load().unwrap(), Some(fault.clone()));
        assert_eq!(
            fault.restore_steps(),
            vec![Step::LinkUp {
                iface: "eth0".into()
            }]
        );
        state.clear().unwrap();
        assert_eq!(state.load().unwrap(), None);
    }

    #[test]
    fn garbage_state_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chaos.json");
        std::fs::write(&path, "nope").unwrap();
        let err = StateFile::new(Some(path)).load().unwrap_err();
        assert!(err.to_string().contains("chaos.json"), "{err}");
    }
}
