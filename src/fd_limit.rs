//! The open-files limit. At start the soft limit is raised to the hard one (as Go's runtime
//! does), and the connection limit is kept under it: past `--max-connections` a client must get
//! the documented 503, which needs a free descriptor to accept it, not wait in the backlog.

/// Descriptors kept for what is not a served connection: stdio, the listeners, the runtime's
/// epoll and wake-up descriptors, files the debug endpoints open, the socket a 503 goes out on.
pub const RESERVED: u64 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit the process started with.
    pub was: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Where there is no such limit (Windows): nothing to raise, nothing to fit under.
#[cfg(not(unix))]
pub fn raise() -> Result<OpenFiles, crate::Error> {
    Ok(OpenFiles {
        was: u64::MAX,
        soft: u64::MAX,
        hard: u64::MAX,
    })
}

/// Raises the soft open-files limit as far as the hard limit (and the kernel's `nr_open`) allow.
#[cfg(unix)]
pub fn raise() -> Result<OpenFiles, crate::Error> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(crate::Error::OpenFiles(
            std::io::Error::last_os_error().to_string(),
        ));
    }
    let was = lim.rlim_cur;
    let target = lim.rlim_max.min(nr_open());
    if target > was {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: plain syscall on a struct we own; failure leaves the limit as it was.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = raised.rlim_cur;
        }
    }
    Ok(OpenFiles {
        was,
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

/// The kernel's ceiling for any process's limit (an "unlimited" hard limit cannot be set).
#[cfg(unix)]
fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// The number of connections that fit under a soft limit of `soft` open files.
pub fn connections_that_fit(max_connections: u32, soft: u64) -> u32 {
    let room = soft.saturating_sub(RESERVED).max(1);
    (max_connections as u64).min(room) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_leaves_room_for_other_descriptors() {
        assert_eq!(connections_that_fit(1024, 1_048_576), 1024);
        assert_eq!(connections_that_fit(1024, 1024), 1024 - RESERVED as u32);
        assert_eq!(connections_that_fit(1024, 10), 1);
    }
}
