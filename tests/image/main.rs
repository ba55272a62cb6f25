//! The images end to end on a real engine, registry and container runtime: `make e2e` runs
//! `make engine`, then these checks (`cargo test --test image -- --ignored`), then
//! `make engine-stop`. Each check is one test, ignored by default. They share lazily built
//! fixtures (the release build, the push, running containers), so a failing check never hides
//! the others; the table at the end lists every check with its figure.
//!
//! Needs what `make engine` exports: DOCKER_HOST (or a default engine), REGISTRY, and
//! RUST_IMAGE / DISTROLESS_IMAGE where the public bases are unreachable.

#[path = "../common/mod.rs"]
mod common;

mod bake;
mod debug;
mod docker;
mod expect;
mod fixtures;
mod published;
mod rebuild;
mod release;
mod report;
mod running;

fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let t0 = std::time::Instant::now();
    let mut trials = release::checks();
    trials.extend(running::checks());
    trials.extend(debug::checks());
    trials.extend(published::checks());
    trials.extend(rebuild::checks());
    report::reset();
    let conclusion = libtest_mimic::run(&args, trials);
    fixtures::stop_all();
    report::print_summary(t0.elapsed());
    conclusion.exit_code()
}
