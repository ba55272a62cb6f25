//! Why the server could not start: each error names the setting or the step responsible, so
//! the binary prints one line and exits non-zero. Reasons are kept as text (the OS's words),
//! so errors compare and clone.

use std::fmt;
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A listening address could not be bound; `setting` is the flag or env it came from.
    Listen {
        addr: SocketAddr,
        setting: &'static str,
        reason: String,
    },
    /// A bound socket could not be handed to the runtime.
    Listener(String),
    /// RUST_LOG does not parse.
    LogFilter { directives: String, reason: String },
    /// Another log subscriber is already installed.
    LogSubscriber(String),
    /// The open-files limit could not be read.
    OpenFiles(String),
    /// A signal handler could not be installed.
    Signal { name: &'static str, reason: String },
    /// The async runtime did not start.
    Runtime(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listen {
                addr,
                setting,
                reason,
            } => write!(f, "cannot listen on {addr} ({setting}): {reason}"),
            Self::Listener(e) => write!(f, "cannot serve on the bound socket: {e}"),
            Self::LogFilter { directives, reason } => {
                write!(f, "invalid RUST_LOG={directives:?}: {reason}")
            }
            Self::LogSubscriber(e) => write!(f, "cannot install the log subscriber: {e}"),
            Self::OpenFiles(e) => write!(f, "cannot read the open-files limit: {e}"),
            Self::Signal { name, reason } => {
                write!(f, "cannot install the {name} handler: {reason}")
            }
            Self::Runtime(e) => write!(f, "cannot start the async runtime: {e}"),
        }
    }
}

impl std::error::Error for Error {}
