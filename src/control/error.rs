//! Why a control operation (an admin call, a command, a reload) was
//! refused. Each variant maps to one HTTP status in the admin API.

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// 404.
    #[error("unknown route {0:?}")]
    UnknownRoute(String),
    /// 404.
    #[error("unknown pool {0:?}")]
    UnknownPool(String),
    /// 400: the request itself is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 409: the operation does not apply in the route's current state; the
    /// text says why.
    #[error("{0}")]
    Conflict(String),
    /// 400: a reload found the file invalid; the old config keeps serving.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// 400: a reload could not bind or read a listener's files.
    #[error("{0}")]
    Listener(std::io::Error),
    /// 500: the change could not be persisted, so it was not made.
    #[error("saving control state: {0}")]
    State(#[from] super::store::StoreError),
    /// 503.
    #[error("the controller has stopped")]
    Stopped,
    /// 503: in a fleet, only the leader decides, and none answered.
    #[error("{0}")]
    NoLeader(String),
}

impl ControlError {
    pub(crate) fn conflict(message: impl Into<String>) -> ControlError {
        ControlError::Conflict(message.into())
    }
}
