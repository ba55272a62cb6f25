//! What every image must say about itself, wherever its config is read from (the engine's
//! `docker image inspect` or the registry's OCI config).

use crate::docker::ImageConfig;

pub const USER: &str = "65532:65532";
pub const ENTRYPOINT: &str = "/httpserver";

/// Every way `config` differs from the documented image config (empty when it matches).
pub fn config_problems(c: &ImageConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let mut want = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    want(
        c.env.iter().any(|e| e == "MY_SERVICE_PORT=80"),
        format!("env {:?} lacks MY_SERVICE_PORT=80", c.env),
    );
    for (k, v) in [("multi.l1", "v1"), ("multi.l2", "v2"), ("other", "v3")] {
        want(
            c.labels.get(k).map(String::as_str) == Some(v),
            format!("label {k}={:?}, want {v}", c.labels.get(k)),
        );
    }
    for k in [
        "title", "source", "version", "revision", "created", "licenses",
    ] {
        let key = format!("org.opencontainers.image.{k}");
        want(
            c.labels.get(&key).is_some_and(|v| !v.is_empty()),
            format!("label {key} missing"),
        );
    }
    want(
        c.exposed_ports.contains_key("80/tcp"),
        format!("exposed ports {:?}", c.exposed_ports.keys()),
    );
    want(c.user == USER, format!("user {:?}, want {USER}", c.user));
    want(
        c.entrypoint == [ENTRYPOINT],
        format!("entrypoint {:?}", c.entrypoint),
    );
    want(
        c.cmd.as_ref().is_none_or(|c| c.is_empty()),
        format!("cmd {:?}, want none", c.cmd),
    );
    let health = c.healthcheck.as_ref().map(|h| h.test.clone());
    want(
        health.as_deref()
            == Some(
                &[
                    "CMD".to_owned(),
                    ENTRYPOINT.to_owned(),
                    "healthcheck".to_owned(),
                ][..],
            ),
        format!("healthcheck {health:?}"),
    );
    problems
}

pub fn config_ok(c: &ImageConfig) -> Result<(), String> {
    match config_problems(c) {
        p if p.is_empty() => Ok(()),
        p => Err(p.join("; ")),
    }
}

/// Budget for the compressed scratch image (config + layers), per platform.
pub const SCRATCH_BUDGET_BYTES: u64 = 2_200_000;
