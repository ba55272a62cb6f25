//! Bad configuration: one clear line naming the setting and value, non-zero exit, no panic.
mod common;

use common::run_to_end;

fn assert_config_error(args: &[&str], env: &[(&str, &str)], expect_code: i32, needles: &[&str]) {
    let (code, _out, err) = run_to_end(args, env);
    assert_eq!(code, Some(expect_code), "{args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: expected one line, got: {err}"
    );
    assert!(err.starts_with("httpserver: error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "{err}");
    }
}

#[test]
fn port_out_of_range() {
    assert_config_error(&["--port", "70000"], &[], 2, &["--port", "70000"]);
}

#[test]
fn port_from_env_not_a_number() {
    assert_config_error(
        &[],
        &[("MY_SERVICE_PORT", "eighty")],
        2,
        &["MY_SERVICE_PORT", "eighty"],
    );
}

#[test]
fn flag_wins_over_env() {
    // The env names a port that is taken; the flag (--port 0, from the harness) is used instead.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let srv = common::Server::start_with(common::binary(), &[], &[("MY_SERVICE_PORT", &port)]);
    assert_ne!(srv.port().to_string(), port);
    assert_eq!(common::get(srv.addr, "/healthz").status, 200);
    assert_config_error(
        &["--port", "x"],
        &[("MY_SERVICE_PORT", "8080")],
        2,
        &["--port", "'x'"],
    );
}

#[test]
fn unknown_log_format() {
    assert_config_error(
        &["--log-format", "xml"],
        &[],
        2,
        &["--log-format", "xml", "text, json"],
    );
}

#[test]
fn unparsable_durations() {
    assert_config_error(
        &["--shutdown-grace", "10x"],
        &[],
        2,
        &["--shutdown-grace", "10x"],
    );
    assert_config_error(
        &["--header-read-timeout", "0s"],
        &[],
        2,
        &["--header-read-timeout", "greater than zero"],
    );
}

#[test]
fn bad_limits() {
    assert_config_error(
        &["--max-profile-seconds", "0"],
        &[],
        2,
        &["--max-profile-seconds"],
    );
    assert_config_error(&["--max-connections", "0"], &[], 2, &["--max-connections"]);
    assert_config_error(
        &["--debug-addr", "nowhere"],
        &[],
        2,
        &["--debug-addr", "nowhere"],
    );
}

#[test]
fn unknown_flag() {
    assert_config_error(&["--colour"], &[], 2, &["--colour"]);
}

#[test]
fn invalid_rust_log() {
    assert_config_error(
        &["--port", "0", "--listen", "127.0.0.1"],
        &[("RUST_LOG", "info,[=")],
        1,
        &["RUST_LOG"],
    );
}

#[test]
fn address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    assert_config_error(
        &["--listen", "127.0.0.1", "--port", &port],
        &[],
        1,
        &[
            &format!("cannot listen on 127.0.0.1:{port}"),
            "--port",
            "in use",
        ],
    );
    // The env var is named too when the port came from it.
    let (code, _, err) = run_to_end(&["--listen", "127.0.0.1"], &[("MY_SERVICE_PORT", &port)]);
    assert_eq!(code, Some(1));
    assert!(err.contains("MY_SERVICE_PORT"), "{err}");
}

#[test]
fn help_and_version() {
    let (code, out, _) = run_to_end(&["--help"], &[]);
    assert_eq!(code, Some(0));
    for needle in [
        "MY_SERVICE_PORT",
        "--verbosity",
        "glog",
        "healthcheck",
        "--debug-addr",
        "--shutdown-grace",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}: {out}");
    }
    let (code, out, _) = run_to_end(&["--version"], &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.trim(),
        concat!("httpserver ", env!("CARGO_PKG_VERSION"))
    );
}
