//! Progress bars, drawn only on a terminal (standard error) and never with `--quiet`.
//!
//! Engines take a [`Progress`] and report work as it happens; when bars are off the
//! calls cost an atomic add.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A set of progress bars (one overall, more per active item).
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    enabled: bool,
}

impl Progress {
    /// Bars on standard error when it is a terminal and `quiet` is off.
    pub fn new(quiet: bool) -> Progress {
        let enabled = !quiet && std::io::stderr().is_terminal();
        Progress::with_enabled(enabled)
    }

    /// No bars at all.
    pub fn hidden() -> Progress {
        Progress::with_enabled(false)
    }

    fn with_enabled(enabled: bool) -> Progress {
        let target = if enabled {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
            enabled,
        }
    }

    /// Whether bars are drawn.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A bar counting bytes towards `total` (a spinner when the total is unknown).
    pub fn bytes(&self, total: Option<u64>, message: impl Into<String>) -> ProgressBar {
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template(
                    "{msg:30!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::no_length().with_style(
                ProgressStyle::with_template("{spinner} {msg:30!} {bytes:>10} {binary_bytes_per_sec:>12} {elapsed}")
                    .expect("valid template"),
            ),
        };
        self.add(bar.with_message(message.into()))
    }

    /// A bar counting documents towards `total`, showing bytes in its message.
    pub fn docs(&self, total: Option<u64>, message: impl Into<String>) -> ProgressBar {
        let style = match total {
            Some(_) => ProgressStyle::with_template(
                "{prefix:30!} [{bar:25}] {human_pos:>11}/{human_len:<11} docs {per_sec:>14} ETA {eta:>4} {msg}",
            ),
            None => ProgressStyle::with_template("{spinner} {prefix:30!} {human_pos:>11} docs {per_sec:>14} {msg}"),
        }
        .expect("valid template")
        .progress_chars("=> ");
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::no_length(),
        };
        self.add(bar.with_style(style).with_prefix(message.into()))
    }

    fn add(&self, bar: ProgressBar) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = self.multi.add(bar);
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    }

    /// Prints a line above the bars (or to standard error when bars are off).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.enabled {
            let _ = self.multi.println(line.as_ref());
        } else {
            eprintln!("{}", line.as_ref());
        }
    }
}
