//! What can go wrong when a profiler starts: the process's own files under /proc, its
//! executable's layout, a system call, or the bound on overlapping captures.

#![cfg(target_os = "linux")]

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A file under /proc/self could not be read or mapped.
    Proc { path: &'static str, reason: String },
    /// The executable cannot be profiled (not ELF, no code section, not mapped).
    Executable(String),
    /// A system call the sampler needs failed.
    Syscall { call: &'static str, reason: String },
    /// Every CPU capture window is already open.
    WindowsFull { max: usize },
}

impl Error {
    /// A failed call, with the reason errno gives.
    pub(crate) fn last_os(call: &'static str) -> Self {
        Self::Syscall {
            call,
            reason: std::io::Error::last_os_error().to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proc { path, reason } => write!(f, "cannot read {path}: {reason}"),
            Self::Executable(why) => write!(f, "cannot profile this executable: {why}"),
            Self::Syscall { call, reason } => write!(f, "{call}: {reason}"),
            Self::WindowsFull { max } => write!(f, "all {max} CPU capture windows are open"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_failed() {
        let e = Error::Proc {
            path: "/proc/self/maps",
            reason: "Permission denied".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot read /proc/self/maps: Permission denied"
        );
        assert_eq!(
            Error::WindowsFull { max: 16 }.to_string(),
            "all 16 CPU capture windows are open"
        );
    }
}
