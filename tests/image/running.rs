//! Each variant on each platform (arm64 under emulation), as `docker run` starts it: it
//! answers, runs as the unprivileged uid, turns healthy by its own HEALTHCHECK, and stops on
//! `docker stop` (SIGTERM to PID 1) at once with exit status 0; given `--port`, its
//! HEALTHCHECK follows the port the service listens on.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;

use crate::docker;
use crate::expect;
use crate::fixtures::{self, PLATFORMS, VARIANTS};
use crate::report::check;

pub fn checks() -> Vec<Trial> {
    let mut all = Vec::new();
    for v in VARIANTS {
        for p in PLATFORMS {
            let label = format!("{} {p}", v.name());
            all.push(check(
                format!("{label}: answers /healthz with ok"),
                move || {
                    fixtures::with_running(v, p, |c| {
                        let t = c.wait_healthy_http(fixtures::startup_limit(p))?;
                        Ok(format!("first ok after {} ms", t.as_millis()))
                    })
                },
            ));
            all.push(check(format!("{label}: runs as uid 65532"), move || {
                fixtures::with_running(v, p, |c| {
                    let uid = docker::container_uid(c)?;
                    let want: u32 = expect::USER.split(':').next().unwrap().parse().unwrap();
                    if uid == want {
                        Ok(format!("uid {uid}"))
                    } else {
                        Err(format!("uid {uid}, want {want}"))
                    }
                })
            }));
            all.push(check(
                format!("{label}: HEALTHCHECK turns healthy"),
                move || fixtures::with_running(v, p, |c| wait_health(c, Duration::from_secs(90))),
            ));
            all.push(check(
                format!("{label}: docker stop exits 0 at once"),
                move || {
                    let c = fixtures::take_running(v, p)?;
                    let t0 = Instant::now();
                    docker::docker(&["stop", "-t", "10", &c.name])?;
                    let took = t0.elapsed();
                    let code = c.inspect()?.state.exit_code;
                    if code == 0 && took < Duration::from_secs(5) {
                        Ok(format!("exit 0 in {} ms", took.as_millis()))
                    } else {
                        Err(format!(
                            "exit {code} after {} ms (timeout 10 s)",
                            took.as_millis()
                        ))
                    }
                },
            ));
        }
        all.push(check(
            format!(
                "{} linux/amd64 with --port 8080: HEALTHCHECK follows the flag, turns healthy",
                v.name()
            ),
            move || {
                fixtures::release()?;
                let (c, _) = docker::Container::run_publishing(
                    &v.local_ref(),
                    "linux/amd64",
                    &[8080],
                    &[],
                    &["--port", "8080"],
                )?;
                wait_health(&c, Duration::from_secs(60))
            },
        ));
    }
    all
}

fn wait_health(c: &docker::Container, limit: Duration) -> Result<String, String> {
    let t0 = Instant::now();
    let mut last = String::from("none");
    while t0.elapsed() < limit {
        let state = c.inspect()?.state;
        last = state
            .health
            .map_or_else(|| "no health state".into(), |h| h.status);
        if last == "healthy" {
            return Ok(format!("healthy after {} ms", t0.elapsed().as_millis()));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("still {last} after {limit:?}: {}", c.logs()))
}
