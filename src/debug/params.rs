//! Query parameters as Go's net/http/pprof reads them (`seconds`, `debug`, `gc`), with a
//! clear 400 for a malformed value instead of Go's silent zero.

use hyper::{Response, StatusCode};

use crate::responses::{self, Body};

/// Go's default capture length.
const DEFAULT_SECONDS: u64 = 30;

/// The raw value of `key` (the first occurrence; `key` alone gives "").
pub fn value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// `seconds=N`: a whole number from 1 to `max`; absent means Go's 30 (capped at `max`).
pub fn seconds(query: &str, max: u64) -> Result<u64, String> {
    Ok(optional_seconds(query, max)?.unwrap_or(DEFAULT_SECONDS.min(max)))
}

/// A capture's length (CPU profile, flame graph, trace): `seconds`, or the 400 to answer.
pub fn capture_seconds(query: &str, max: u64) -> Result<u64, Response<Body>> {
    seconds(query, max).map_err(|m| bad_request(&m))
}

/// `seconds=N` where it is optional (delta heap profiles).
pub fn optional_seconds(query: &str, max: u64) -> Result<Option<u64>, String> {
    match value(query, "seconds") {
        None => Ok(None),
        Some(raw) => match raw.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "invalid seconds={raw:?}: must be a whole number of seconds from 1 to {max} (--max-profile-seconds)"
            )),
        },
    }
}

/// `debug=N` (0 to `max_debug`) and `seconds=N` of a snapshot profile (heap, allocs,
/// goroutine, block, mutex, threadcreate): Go's delta over N seconds, which it serves only as
/// protobuf (`debug=0`), as here. A bad value is the 400 to answer.
pub fn snapshot(
    query: &str,
    max_debug: u8,
    max_seconds: u64,
) -> Result<(u8, Option<u64>), Response<Body>> {
    let parsed = debug(query, max_debug).and_then(|level| {
        let seconds = optional_seconds(query, max_seconds)?;
        if seconds.is_some() && level != 0 {
            return Err("seconds and debug params are incompatible: a delta profile is protobuf only (debug=0)".into());
        }
        Ok((level, seconds))
    });
    parsed.map_err(|m| bad_request(&m))
}

/// `debug=N`: 0 (pprof protobuf, the default) up to `max` (text forms).
pub fn debug(query: &str, max: u8) -> Result<u8, String> {
    match value(query, "debug") {
        None | Some("") => Ok(0),
        Some(raw) => match raw.parse::<u8>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(format!(
                "invalid debug={raw:?}: must be 0 (protobuf) to {max} (text)"
            )),
        },
    }
}

fn bad_request(msg: &str) -> Response<Body> {
    responses::error(StatusCode::BAD_REQUEST, msg)
}

/// A gzipped pprof protobuf, as Go serves `debug=0` profiles.
pub fn protobuf(name: &'static str, gz: Vec<u8>) -> Response<Body> {
    let disposition = match name {
        "profile" => "attachment; filename=\"profile\"",
        "heap" => "attachment; filename=\"heap\"",
        "allocs" => "attachment; filename=\"allocs\"",
        "goroutine" => "attachment; filename=\"goroutine\"",
        "block" => "attachment; filename=\"block\"",
        "mutex" => "attachment; filename=\"mutex\"",
        _ => "attachment; filename=\"threadcreate\"",
    };
    responses::attachment(gz, "application/octet-stream", disposition)
}

/// Go's `?seconds=N` on a snapshot profile: one snapshot now, one N seconds later, and what
/// changed in between (`end - start` per key; keys whose count did not change are left out).
pub async fn delta_counts<K: Ord>(
    seconds: Option<u64>,
    take: impl Fn() -> std::collections::BTreeMap<K, i64>,
) -> std::collections::BTreeMap<K, i64> {
    let Some(s) = seconds else {
        return take();
    };
    let start = take();
    tokio::time::sleep(std::time::Duration::from_secs(s)).await;
    let mut end = take();
    for (k, n) in start {
        *end.entry(k).or_insert(0) -= n;
    }
    end.retain(|_, n| *n != 0);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_defaults_and_bounds() {
        assert_eq!(seconds("", 300), Ok(30));
        assert_eq!(seconds("debug=1", 300), Ok(30));
        assert_eq!(seconds("", 10), Ok(10));
        assert_eq!(seconds("seconds=5", 300), Ok(5));
        for bad in [
            "seconds=0",
            "seconds=-1",
            "seconds=1.5",
            "seconds=",
            "seconds=301",
        ] {
            assert!(seconds(bad, 300).is_err(), "{bad}");
        }
        assert_eq!(optional_seconds("gc=1", 300), Ok(None));
    }

    #[test]
    fn delta_is_protobuf_only() {
        assert_eq!(snapshot("seconds=2", 1, 300).ok(), Some((0, Some(2))));
        assert_eq!(snapshot("debug=1", 1, 300).ok(), Some((1, None)));
        for bad in ["seconds=2&debug=1", "debug=2", "seconds=0"] {
            let resp = snapshot(bad, 1, 300).err().unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn debug_levels() {
        assert_eq!(debug("", 2), Ok(0));
        assert_eq!(debug("debug=2", 2), Ok(2));
        assert!(debug("debug=3", 2).is_err());
        assert!(debug("debug=x", 1).is_err());
    }
}
