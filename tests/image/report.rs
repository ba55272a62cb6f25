//! One row per check that ran (result, figure, time), printed as a table at the end, and kept
//! in target/ for `make bench` (image sizes) and for reading later.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libtest_mimic::Trial;

struct Row {
    check: String,
    passed: bool,
    figure: String,
    took: Duration,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

/// A check: Ok(figure) passes, Err(why) fails; a panic fails too. Ignored unless asked for
/// (`--ignored`), so a plain `cargo test` builds but never runs them.
pub fn check(
    name: impl Into<String>,
    f: impl FnOnce() -> Result<String, String> + Send + 'static,
) -> Trial {
    let name = name.into();
    let row_name = name.clone();
    Trial::test(name, move || {
        let t0 = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
            Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()))
        });
        let took = t0.elapsed();
        let (passed, figure) = match &result {
            Ok(fig) => (true, fig.clone()),
            Err(why) => (false, why.lines().next().unwrap_or("").to_owned()),
        };
        eprintln!(
            "[check] {} {row_name}: {figure}",
            if passed { "PASS" } else { "FAIL" }
        );
        ROWS.lock().unwrap_or_else(|p| p.into_inner()).push(Row {
            check: row_name,
            passed,
            figure,
            took,
        });
        result.map(|_| ()).map_err(Into::into)
    })
    .with_ignored_flag(true)
}

/// Prints the table (column widths from the content) and saves it under target/.
pub fn print_summary(total: Duration) {
    let rows = ROWS.lock().unwrap_or_else(|p| p.into_inner());
    if rows.is_empty() {
        return;
    }
    let width = rows.iter().map(|r| r.check.len()).max().unwrap_or(5).max(5);
    let mut out = format!("\n{:width$}  RESULT  TIME     FIGURE\n", "CHECK");
    for r in rows.iter() {
        out.push_str(&format!(
            "{:width$}  {:6}  {:>6.1}s  {}\n",
            r.check,
            if r.passed { "PASS" } else { "FAIL" },
            r.took.as_secs_f64(),
            r.figure
        ));
    }
    let failed = rows.iter().filter(|r| !r.passed).count();
    out.push_str(&format!(
        "\n{} checks, {} passed, {failed} failed; total {} s\n",
        rows.len(),
        rows.len() - failed,
        total.as_secs()
    ));
    eprint!("{out}");
    let _ = std::fs::write(crate::bake::scratch_file("summary.txt"), out);
}

/// Records an image size for BENCHMARKS.md (`make bench` reads this file).
pub fn image_size(label: &str, bytes: u64) {
    use std::io::Write;
    let path = crate::bake::scratch_file("image-sizes.tsv");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{label}\t{bytes} bytes");
    }
}

/// Starts this run's image-size file afresh.
pub fn reset() {
    let _ = std::fs::remove_file(crate::bake::scratch_file("image-sizes.tsv"));
}
