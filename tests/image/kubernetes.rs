//! The drain contract of deploy/base, played on each image with the manifest's own values: the
//! container runs as the pod spec says (its args and env, uid 65532, read-only, no
//! capabilities, no privilege escalation) and serves load; the preStop sleep elapses while
//! traffic still arrives (endpoints are being removed), then the load stops, SIGTERM comes, a
//! request in flight finishes, and the process exits 0 well before
//! terminationGracePeriodSeconds. Zero failed requests, counted. Also: with a CPU limit of
//! one (`docker run --cpus 1`, a cgroup quota), the runtime sizes itself to one worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use libtest_mimic::Trial;

use crate::common::{self, manifests};
use crate::docker::{self, Container};
use crate::fixtures::{self, VARIANTS, Variant};
use crate::report::check;

pub fn checks() -> Vec<Trial> {
    let mut all = Vec::new();
    for v in VARIANTS {
        all.push(check(
            format!(
                "{} linux/amd64 as deploy/base runs it: preStop, SIGTERM under load, zero failed requests",
                v.name()
            ),
            move || drain(v),
        ));
    }
    all.push(check(
        "scratch linux/amd64 --cpus 1: one runtime worker (the cgroup quota, not the cores)",
        workers_follow_the_cpu_limit,
    ));
    all
}

/// `docker run` arguments for the pod's container: its env and security context.
fn pod_args(c: &serde_json::Value) -> Result<Vec<String>, String> {
    let mut args = vec![
        "--read-only".to_owned(),
        "--cap-drop=ALL".to_owned(),
        "--security-opt=no-new-privileges".to_owned(),
        "--user=65532:65532".to_owned(),
    ];
    for e in c["env"].as_array().ok_or("no env")? {
        args.push(format!(
            "--env={}={}",
            e["name"].as_str().ok_or("env name")?,
            e["value"].as_str().ok_or("env value")?
        ));
    }
    Ok(args)
}

fn drain(v: Variant) -> Result<String, String> {
    fixtures::release()?;
    let rendered = manifests::render("base")?;
    let pod = manifests::pod_spec(&rendered);
    let c = manifests::container(&rendered);
    let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .ok_or("no preStop sleep")?;
    let period = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .ok_or("no terminationGracePeriodSeconds")?;
    let http = manifests::container_port(c, "http") as u16;
    let debug = manifests::container_port(c, "debug") as u16;
    let args: Vec<String> = c["args"]
        .as_array()
        .ok_or("no args")?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let run_args = pod_args(c)?;
    let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let cmd: Vec<&str> = args.iter().map(String::as_str).collect();
    let (container, ports) = Container::run_publishing(
        &v.local_ref(),
        "linux/amd64",
        &[http, debug],
        &run_args,
        &cmd,
    )?;
    container.wait_healthy_http(fixtures::startup_limit("linux/amd64"))?;
    let debug_addr = std::net::SocketAddr::from(([127, 0, 0, 1], ports[1]));

    // Load: keep-alive clients, and a client opening a new connection per request (as
    // proxies that have not yet seen the endpoint removal do).
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, answered) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let addr = container.addr();
    let mut clients = Vec::new();
    for fresh in [false, false, false, true] {
        let (stop, sent, answered, failures) = (
            stop.clone(),
            sent.clone(),
            answered.clone(),
            failures.clone(),
        );
        clients.push(thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(120);
            let mut conn = None;
            while !stop.load(Relaxed) && Instant::now() < end {
                sent.fetch_add(1, Relaxed);
                let r = if fresh {
                    common::try_request(addr, "GET", "/healthz", b"", Duration::from_secs(5))
                        .map(|r| r.status)
                } else {
                    common::keepalive_get(&mut conn, addr, "/healthz")
                };
                match r {
                    Ok(200) => {
                        answered.fetch_add(1, Relaxed);
                    }
                    other => failures.lock().unwrap().push(format!("{other:?}")),
                }
            }
        }));
    }
    // Traffic for a while, then the pod is deleted: preStop sleeps while traffic still comes.
    thread::sleep(Duration::from_secs(2));
    thread::sleep(Duration::from_secs(pre_stop));
    // A request that is in flight when SIGTERM comes.
    let in_flight = thread::spawn(move || {
        common::try_request(
            debug_addr,
            "GET",
            "/debug/pprof/profile?seconds=3",
            b"",
            Duration::from_secs(30),
        )
    });
    thread::sleep(Duration::from_millis(500));
    // By now the endpoints are gone: no new requests.
    stop.store(true, Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let t = Instant::now();
    docker::docker(&["kill", "--signal", "TERM", &container.name])?;
    let ready_after = common::try_request(addr, "GET", "/readyz", b"", Duration::from_secs(2))
        .map(|r| r.status.to_string())
        .unwrap_or_else(|e| format!("no connection ({})", e.kind()));
    let code = docker::docker(&["wait", &container.name])?;
    let exit = t.elapsed();
    let profile = in_flight.join().map_err(|_| "in-flight client panicked")?;
    let (sent, answered) = (sent.load(Relaxed), answered.load(Relaxed));
    let failed = failures.lock().unwrap().clone();
    let budget = Duration::from_secs(period - pre_stop);
    let figure = format!(
        "{sent} sent, {answered} answered, {} failed; in flight at SIGTERM: {}; /readyz after SIGTERM: {ready_after}; exit {} after {:.2} s (budget {} s)",
        failed.len(),
        profile
            .as_ref()
            .map_or_else(|e| e.to_string(), |r| r.status.to_string()),
        code.trim(),
        exit.as_secs_f64(),
        budget.as_secs()
    );
    let ok = failed.is_empty()
        && sent == answered
        && matches!(&profile, Ok(r) if r.status == 200)
        && ready_after != "200"
        && code.trim() == "0"
        && exit < budget;
    if ok {
        Ok(figure)
    } else {
        Err(format!(
            "{figure}; failures: {:?}",
            &failed[..failed.len().min(5)]
        ))
    }
}

fn workers_follow_the_cpu_limit() -> Result<String, String> {
    fixtures::release()?;
    let c = Container::run(
        &Variant::Scratch.local_ref(),
        "linux/amd64",
        &["--cpus", "1", "--read-only"],
        &[],
    )?;
    c.wait_healthy_http(fixtures::startup_limit("linux/amd64"))?;
    // The service logs to stderr; `docker logs` hands it back on its own stderr.
    let out = std::process::Command::new("docker")
        .args(["logs", &c.name])
        .output()
        .map_err(|e| e.to_string())?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = log
        .lines()
        .find(|l| l.contains("httpserver started"))
        .ok_or("no startup line")?;
    let workers = common::field(line, "workers");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    if workers == "1" {
        Ok(format!("workers=1 (the host has {cores} cores)"))
    } else {
        Err(format!("workers={workers} under --cpus 1: {line}"))
    }
}
