//! Progress on standard error: bars on a terminal, timestamped log lines otherwise.
//!
//! Engines take a [`Progress`] and report work as it happens (the bars' positions);
//! when nothing is shown the calls cost an atomic add. On a terminal the bars are
//! drawn; when standard error is a file or a pipe (a cron job's log), every few seconds
//! one line per item in progress is printed instead: a timestamp, the item (a
//! namespace, or the total), its count of its total, the percentage and the rate.
//! `quiet` silences progress only: commands print their errors and summaries anyway.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How often progress lines are printed when standard error is not a terminal.
pub const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// What a tracked item counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes.
    Bytes,
    /// Documents.
    Docs,
}

struct Tracked {
    bar: ProgressBar,
    name: String,
    unit: Unit,
    started: Instant,
    /// Bytes of a documents item ([`Meter::add_bytes`]).
    bytes: Option<Arc<AtomicU64>>,
}

/// A documents bar that also counts bytes: on a terminal they are shown beside the
/// documents, in log lines after them.
#[derive(Clone)]
pub struct Meter {
    bar: ProgressBar,
    bytes: Arc<AtomicU64>,
    drawn: bool,
}

impl Meter {
    /// Counts `n` more documents.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Counts `b` more bytes.
    pub fn add_bytes(&self, b: u64) {
        let total = self.bytes.fetch_add(b, Ordering::Relaxed) + b;
        if self.drawn {
            self.bar.set_message(human_bytes(total));
        }
    }

    /// Documents counted so far.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Done: the bar disappears and no more lines are printed for it.
    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}

#[derive(Default)]
struct Lines {
    items: Vec<Tracked>,
}

#[derive(Clone)]
enum Mode {
    /// Nothing shown.
    Off,
    /// Bars drawn on the terminal.
    Bars(MultiProgress),
    /// Lines printed every [`LINE_INTERVAL`] by a background thread.
    Lines(Arc<Mutex<Lines>>),
}

/// A set of progress bars (one overall, more per active item), or their log lines.
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
}

impl Progress {
    /// Bars when standard error is a terminal, log lines when it is not, nothing with `quiet`.
    pub fn new(quiet: bool) -> Progress {
        if quiet {
            Progress::hidden()
        } else if std::io::stderr().is_terminal() {
            Progress::bars()
        } else {
            Progress::lines(LINE_INTERVAL)
        }
    }

    /// Nothing shown.
    pub fn hidden() -> Progress {
        Progress { mode: Mode::Off }
    }

    fn bars() -> Progress {
        Progress {
            mode: Mode::Bars(MultiProgress::with_draw_target(
                ProgressDrawTarget::stderr_with_hz(8),
            )),
        }
    }

    /// Log lines on standard error every `interval`, from a thread that ends when the
    /// last clone of this `Progress` is dropped.
    pub fn lines(interval: Duration) -> Progress {
        let shared = Arc::new(Mutex::new(Lines::default()));
        let weak: Weak<Mutex<Lines>> = Arc::downgrade(&shared);
        let _ = std::thread::Builder::new()
            .name("oxidump-progress".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    let Some(shared) = weak.upgrade() else { break };
                    let text = tick(&shared, Instant::now());
                    drop(shared);
                    if !text.is_empty() {
                        eprint!("{text}");
                    }
                }
            });
        Progress {
            mode: Mode::Lines(shared),
        }
    }

    /// A `Progress` that tracks items for [`Progress::render_lines`] without a thread (tests).
    pub fn lines_manual() -> Progress {
        Progress {
            mode: Mode::Lines(Arc::new(Mutex::new(Lines::default()))),
        }
    }

    /// The lines a tick would print now (empty when nothing is in progress, or not in
    /// line mode).
    pub fn render_lines(&self) -> String {
        match &self.mode {
            Mode::Lines(shared) => tick(shared, Instant::now()),
            _ => String::new(),
        }
    }

    /// Whether bars are drawn.
    pub fn enabled(&self) -> bool {
        matches!(self.mode, Mode::Bars(_))
    }

    /// A bar counting bytes towards `total` (a spinner when the total is unknown).
    pub fn bytes(&self, total: Option<u64>, message: impl Into<String>) -> ProgressBar {
        let message = message.into();
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
        self.add(bar.with_message(message.clone()), message, Unit::Bytes)
    }

    /// A bar counting documents towards `total`, and bytes ([`Meter::add_bytes`]).
    pub fn docs(&self, total: Option<u64>, message: impl Into<String>) -> Meter {
        let message = message.into();
        let style = match total {
            Some(_) => ProgressStyle::with_template(
                "{prefix:30!} [{bar:25}] {human_pos:>11}/{human_len:<11} docs {rate:>14} ETA {eta:>4} {msg}",
            ),
            None => ProgressStyle::with_template("{spinner} {prefix:30!} {human_pos:>11} docs {rate:>14} {msg}"),
        }
        .expect("valid template")
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&human_rate(s.per_sec()));
        })
        .progress_chars("=> ");
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::no_length(),
        };
        let bytes = Arc::new(AtomicU64::new(0));
        let bar = self.add_tracked(
            bar.with_style(style).with_prefix(message.clone()),
            message,
            Unit::Docs,
            Some(bytes.clone()),
        );
        Meter {
            bar,
            bytes,
            drawn: self.enabled(),
        }
    }

    fn add(&self, bar: ProgressBar, name: String, unit: Unit) -> ProgressBar {
        self.add_tracked(bar, name, unit, None)
    }

    fn add_tracked(
        &self,
        bar: ProgressBar,
        name: String,
        unit: Unit,
        bytes: Option<Arc<AtomicU64>>,
    ) -> ProgressBar {
        match &self.mode {
            Mode::Off => ProgressBar::hidden(),
            Mode::Bars(multi) => {
                let bar = multi.add(bar);
                bar.enable_steady_tick(Duration::from_millis(250));
                bar
            }
            Mode::Lines(shared) => {
                // Counted, never drawn; the line thread reads its position.
                bar.set_draw_target(ProgressDrawTarget::hidden());
                shared.lock().expect("progress lock").items.push(Tracked {
                    bar: bar.clone(),
                    name,
                    unit,
                    started: Instant::now(),
                    bytes,
                });
                bar
            }
        }
    }

    /// Prints a line above the bars (or to standard error when bars are off).
    pub fn println(&self, line: impl AsRef<str>) {
        match &self.mode {
            Mode::Bars(multi) => {
                let _ = multi.println(line.as_ref());
            }
            Mode::Lines(_) => eprintln!("{}\t{}", timestamp(), line.as_ref()),
            Mode::Off => eprintln!("{}", line.as_ref()),
        }
    }
}

/// One line per unfinished item, in the order the items started; finished items are
/// forgotten.
fn tick(shared: &Mutex<Lines>, now: Instant) -> String {
    let mut l = shared.lock().expect("progress lock");
    l.items.retain(|t| !t.bar.is_finished());
    let ts = timestamp();
    let mut out = String::new();
    for t in &l.items {
        let secs = now.saturating_duration_since(t.started).as_secs_f64();
        let bytes = t.bytes.as_ref().map(|b| b.load(Ordering::Relaxed));
        let line = progress_line(
            &t.name,
            t.unit,
            t.bar.position(),
            t.bar.length(),
            bytes,
            secs,
        );
        let _ = writeln!(out, "{ts}\t{line}");
    }
    out
}

/// One progress line (without its timestamp): the item, its count of its total, the
/// percentage, the bytes of a documents item, and the rate, e.g.
/// `[#####...............] shop.orders  12,000/48,000 documents (25.0%)  3.1 MiB  4,000.0 documents/s`.
pub fn progress_line(
    name: &str,
    unit: Unit,
    pos: u64,
    total: Option<u64>,
    bytes: Option<u64>,
    secs: f64,
) -> String {
    let bar = |frac: f64| {
        let full = ((frac.clamp(0.0, 1.0)) * 20.0).round() as usize;
        format!("[{}{}]", "#".repeat(full), ".".repeat(20 - full))
    };
    let rate = if secs > 0.0 { pos as f64 / secs } else { 0.0 };
    let (count, of, speed) = match unit {
        Unit::Docs => (
            human_count(pos),
            total.map(human_count),
            format!("{} documents", human_rate(rate).trim_end_matches("/s")),
        ),
        Unit::Bytes => (
            human_bytes(pos),
            total.map(human_bytes),
            human_bytes(rate as u64),
        ),
    };
    let what = if unit == Unit::Docs { " documents" } else { "" };
    let bytes = bytes
        .map(|b| format!("  {}", human_bytes(b)))
        .unwrap_or_default();
    match total.filter(|t| *t > 0) {
        Some(t) => format!(
            "{} {name}  {count}/{}{what} ({:.1}%){bytes}  {speed}/s",
            bar(pos as f64 / t as f64),
            of.unwrap_or_default(),
            pos as f64 * 100.0 / t as f64
        ),
        None => format!("{name}  {count}{what}{bytes}  {speed}/s"),
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
    fn lines_for_logs() {
        assert_eq!(
            progress_line(
                "shop.orders",
                Unit::Docs,
                12_000,
                Some(48_000),
                Some(3 << 20),
                3.0
            ),
            "[#####...............] shop.orders  12,000/48,000 documents (25.0%)  3.0 MiB  4,000.0 documents/s"
        );
        assert_eq!(
            progress_line("total", Unit::Bytes, 3 << 20, Some(12 << 20), None, 2.0),
            "[#####...............] total  3.0 MiB/12.0 MiB (25.0%)  1.5 MiB/s"
        );
        assert_eq!(
            progress_line("oplog", Unit::Docs, 7, None, None, 0.0),
            "oplog  7 documents  0.0 documents/s"
        );
    }

    #[test]
    fn line_mode_tracks_unfinished_items() {
        let p = Progress::lines_manual();
        assert!(!p.enabled());
        let total = p.bytes(Some(1000), "total");
        let ns = p.docs(Some(10), "shop.orders");
        let done = p.docs(None, "shop.users");
        total.inc(250);
        ns.inc(4);
        ns.add_bytes(2048);
        assert_eq!((ns.position(), ns.bytes()), (4, 2048));
        done.inc(3);
        done.finish_and_clear();
        let text = p.render_lines();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("\ttotal ") || lines[0].contains("] total  250 B/1000 B (25.0%)"),
            "{text}"
        );
        assert!(
            lines[1].contains("shop.orders  4/10 documents (40.0%)"),
            "{text}"
        );
        assert!(!text.contains("shop.users"), "{text}");
        // Every line starts with a timestamp and a tab.
        for l in lines {
            let (ts, _) = l.split_once('\t').expect("tab");
            assert_eq!(ts.len(), "2026-01-02T03:04:05.678+0000".len(), "{l}");
        }
        // Quiet and terminal modes print no lines.
        assert_eq!(Progress::hidden().render_lines(), "");
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
