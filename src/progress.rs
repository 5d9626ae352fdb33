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

/// The current time as mongo-tools prints it in log lines: `2026-01-02T03:04:05.678+0000` (UTC).
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_timestamp(now.as_secs() as i64, now.subsec_millis())
}

/// `secs` since the Unix epoch and `millis`, as [`timestamp`] prints them.
pub fn format_timestamp(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Bytes for people: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_bytes(b: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// A whole number with thousands separators: `43,662`.
pub fn human_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate for people: thousands separators and one decimal (`43,662.7/s`, `0.3/s`).
pub fn human_rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0.0/s".into();
    }
    let tenths = (per_sec * 10.0).round() as u64;
    format!("{}.{}/s", human_count(tenths / 10), tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0, 0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(
            format_timestamp(1_796_172_283, 45),
            "2026-12-02T00:44:43.045+0000"
        );
        assert_eq!(
            format_timestamp(951_782_400, 999),
            "2000-02-29T00:00:00.999+0000"
        );
    }

    #[test]
    fn people_numbers() {
        assert_eq!(human_count(0), "0");
        assert_eq!(human_count(999), "999");
        assert_eq!(human_count(1000), "1,000");
        assert_eq!(human_count(43_662_736), "43,662,736");
        assert_eq!(human_rate(43_662.736_447_059_05), "43,662.7/s");
        assert_eq!(human_rate(12.54), "12.5/s");
        assert_eq!(human_rate(0.96), "1.0/s");
        assert_eq!(human_rate(f64::NAN), "0.0/s");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
