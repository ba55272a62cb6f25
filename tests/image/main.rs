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

mod allocator;
mod bake;
mod c_deps;
mod debug;
mod docker;
mod expect;
mod fixtures;
mod kubernetes;
mod published;
mod rebuild;
mod release;
mod report;
mod running;
mod stock_docker;
mod verifiable;
mod verify;

fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let t0 = std::time::Instant::now();
    // `make verify REF=ref`: only the verification of that image, which builds, runs and
    // removes nothing (it may run inside a full run, whose images it must leave alone).
    if let Some(target) = verify::Target::from_env() {
        let trials = verify::checks(&format!("verify {}", target.reference), move || {
            Ok(target.clone())
        });
        let conclusion = libtest_mimic::run(&args, trials);
        report::print_summary(t0.elapsed());
        return conclusion.exit_code();
    }
    let mut trials = release::checks();
    trials.extend(running::checks());
    trials.extend(debug::checks());
    trials.extend(kubernetes::checks());
    trials.extend(published::checks());
    trials.extend(verifiable::checks());
    trials.extend(rebuild::checks());
    trials.extend(stock_docker::checks());
    trials.extend(c_deps::checks());
    trials.extend(allocator::checks());
    report::reset();
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.num_passed + conclusion.num_failed == 0 {
        // Nothing ran (a plain `cargo test`): no engine to clean up.
        return conclusion.exit_code();
    }
    fixtures::stop_all();
    report::print_summary(t0.elapsed());
    // Nothing of this run stays in the engine: the label filter lists only the user's images.
    let left = fixtures::leftover_images();
    if !left.is_empty() {
        eprintln!("images of this run left in the engine: {left:?}");
        return std::process::ExitCode::FAILURE;
    }
    conclusion.exit_code()
}
