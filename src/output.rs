//! Outputs that appear under their final name only when they are complete.
//!
//! A file is written as a hidden temporary file in the destination's directory and
//! renamed over the destination by [`AtomicFile::commit`]; a directory is built as a
//! hidden temporary directory and renamed by [`AtomicDir::commit`]. Dropping either
//! without committing removes the temporary, so an interrupted or failed run never
//! leaves something that looks like a finished backup.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Error creating or committing an output.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The destination already exists and overwriting was not asked for.
    #[error("{0}: already exists (remove it first or choose another output)")]
    Exists(PathBuf),
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Outputs get the usual modes (0666 and 0777 before the umask), not the private ones
/// temporary files are created with.
#[cfg(unix)]
pub fn file_mode() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o666)
}

#[cfg(unix)]
fn dir_mode() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o777)
}

/// Outputs get the mode of the current directory.
#[cfg(not(unix))]
pub fn file_mode() -> fs::Permissions {
    fs::metadata(".")
        .map(|m| m.permissions())
        .expect("current directory")
}

#[cfg(not(unix))]
fn dir_mode() -> fs::Permissions {
    file_mode()
}

fn parent_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What follows an output's name in its temporary names.
const PARTIAL_INFIX: &str = ".partial-";

/// The start of the temporary names of `dest`: `.NAME.partial-`.
fn leftover_prefix(dest: &Path) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    format!(".{name}{PARTIAL_INFIX}")
}

/// The temporary names of `dest` made by this process: `.NAME.partial-PID-` and a
/// random suffix. The process id tells a later run whether the output is still being
/// written or was left by a run that died.
fn temp_prefix(dest: &Path) -> String {
    format!("{}{}-", leftover_prefix(dest), std::process::id())
}

/// A file inside a directory being built: the directory is the partial output of a
/// run that has not finished (or never will). Removed just before the rename.
pub const PARTIAL_MARKER: &str = ".oxidump-partial";

/// Whether `path` is the partial output of a run that was interrupted or is still
/// running: a temporary name of [`AtomicFile`] or [`AtomicDir`], or a directory that
/// holds the [`PARTIAL_MARKER`].
pub fn is_partial_output(path: &Path) -> bool {
    let named = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .is_some_and(|n| n.starts_with('.') && n.contains(PARTIAL_INFIX));
    named || path.join(PARTIAL_MARKER).exists()
}

/// What [`is_partial_output`] means, for messages.
pub const PARTIAL_OUTPUT: &str = "partial output of an interrupted run: it was never completed (the next run to the same destination removes it)";

/// Removes what runs to `dest` that died (killed, crashed) left: temporaries whose
/// process is gone. Those of live processes (another run writing to the same place)
/// are left alone; so are names without a process id, which are not ours to judge.
/// Returns what was removed.
pub fn remove_leftovers(dest: &Path) -> Vec<PathBuf> {
    remove_all(dead_leftovers(dest))
}

fn remove_all(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for p in paths {
        let gone = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        if gone.is_ok() {
            removed.push(p);
        }
    }
    removed
}

/// The temporaries of runs to `dest` whose process is gone (see [`remove_leftovers`]).
pub fn dead_leftovers(dest: &Path) -> Vec<PathBuf> {
    let prefix = leftover_prefix(dest);
    dead_temporaries(&parent_of(dest), |name| name.strip_prefix(&prefix))
}

/// The temporaries directly under `dir`, whatever output they were for, whose process
/// is gone: what runs that each write a new name (the snapshots of a backup
/// repository) leave when they are killed.
pub fn dead_leftovers_in(dir: &Path) -> Vec<PathBuf> {
    dead_temporaries(dir, |name| {
        let rest = name.strip_prefix('.')?;
        rest.find(PARTIAL_INFIX)
            .map(|at| &rest[at + PARTIAL_INFIX.len()..])
    })
}

/// Removes what [`dead_leftovers_in`] finds; returns what was removed.
pub fn remove_leftovers_in(dir: &Path) -> Vec<PathBuf> {
    remove_all(dead_leftovers_in(dir))
}

/// The names under `dir` that `rest` maps to `PID-…` where process PID is gone.
fn dead_temporaries(dir: &Path, rest: impl Fn(&str) -> Option<&str>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = rest(&name) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) != Some(false) {
            continue;
        }
        found.push(e.path());
    }
    found.sort();
    found
}

/// A temporary name of `dest` of this process, ending in `what`: like those of
/// [`AtomicFile`], it is left alone while this process runs and is a leftover once
/// it is gone.
pub fn own_leftover_name(dest: &Path, what: &str) -> PathBuf {
    parent_of(dest).join(format!("{}{what}", temp_prefix(dest)))
}

/// Whether process `pid` runs; `None` when this system cannot tell.
fn process_alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    proc.join("self")
        .exists()
        .then(|| proc.join(pid.to_string()).exists())
}

/// A file written under a temporary name and renamed into place on [`commit`](AtomicFile::commit).
pub struct AtomicFile {
    dest: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
    removed: Vec<PathBuf>,
}

impl AtomicFile {
    /// Starts writing `dest`. Refuses an existing destination unless `overwrite`.
    pub fn create(dest: &Path, overwrite: bool) -> Result<AtomicFile, OutputError> {
        if !overwrite && dest.exists() {
            return Err(OutputError::Exists(dest.to_path_buf()));
        }
        let removed = remove_leftovers(dest);
        let dir = parent_of(dest);
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(dest))
            .permissions(file_mode())
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            file: BufWriter::with_capacity(1 << 20, tmp),
            removed,
        })
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Leftovers of dead runs to the same destination removed when this one started.
    pub fn leftovers_removed(&self) -> &[PathBuf] {
        &self.removed
    }

    /// Flushes, syncs and renames the file to its final name.
    pub fn commit(self) -> Result<(), OutputError> {
        let dest = self.dest;
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| io_err(&dest)(e.into_error()))?;
        tmp.as_file().sync_all().map_err(io_err(&dest))?;
        tmp.persist(&dest).map_err(|e| io_err(&dest)(e.error))?;
        Ok(())
    }
}

impl AtomicFile {
    /// Leaves the file unfinished under its temporary name, flushed and synced: the
    /// partial output of an interrupted run ([`is_partial_output`]), which a later run
    /// to the same destination continues (`dump --resume`) or removes. Returns its path.
    pub fn keep_partial(self) -> Result<PathBuf, OutputError> {
        let dest = self.dest;
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| io_err(&dest)(e.into_error()))?;
        tmp.as_file().sync_all().map_err(io_err(&dest))?;
        let (_, path) = tmp.keep().map_err(|e| io_err(&dest)(e.error))?;
        Ok(path)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A directory built under a temporary name and renamed into place on [`commit`](AtomicDir::commit).
pub struct AtomicDir {
    dest: PathBuf,
    tmp: Option<tempfile::TempDir>,
    removed: Vec<PathBuf>,
    merge: bool,
}

impl AtomicDir {
    /// Starts building `dest`. Refuses an existing destination unless it is an empty directory.
    pub fn create(dest: &Path) -> Result<AtomicDir, OutputError> {
        if dest.exists() {
            let empty = fs::read_dir(dest)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(OutputError::Exists(dest.to_path_buf()));
            }
        }
        AtomicDir::start(dest, false)
    }

    /// Starts building `dest`, to be merged into it if it exists (as mongodump writes
    /// into an existing dump directory): on [`commit`](AtomicDir::commit) every file
    /// built replaces the file of the same path under `dest`; other files are left alone.
    pub fn create_merging(dest: &Path) -> Result<AtomicDir, OutputError> {
        if dest.exists() && !dest.is_dir() {
            return Err(OutputError::Io {
                path: dest.to_path_buf(),
                source: io::Error::other("exists and is not a directory"),
            });
        }
        AtomicDir::start(dest, true)
    }

    /// Removes what dead runs left for `dest`, then makes the temporary directory with
    /// its partial marker.
    fn start(dest: &Path, merge: bool) -> Result<AtomicDir, OutputError> {
        let removed = remove_leftovers(dest);
        let dir = parent_of(dest);
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(dest))
            .permissions(dir_mode())
            .tempdir_in(&dir)
            .map_err(io_err(&dir))?;
        let marker = tmp.path().join(PARTIAL_MARKER);
        fs::write(&marker, b"").map_err(io_err(&marker))?;
        Ok(AtomicDir {
            dest: dest.to_path_buf(),
            tmp: Some(tmp),
            removed,
            merge,
        })
    }

    /// Where to write the directory's contents until it is committed.
    pub fn path(&self) -> &Path {
        self.tmp.as_ref().expect("not committed").path()
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Leftovers of dead runs to the same destination removed when this one started.
    pub fn leftovers_removed(&self) -> &[PathBuf] {
        &self.removed
    }

    /// Removes the partial marker and renames the directory to its final name.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let tmp = self.tmp.take().expect("not committed");
        let marker = tmp.path().join(PARTIAL_MARKER);
        fs::remove_file(&marker).map_err(io_err(&marker))?;
        if self.merge && self.dest.exists() {
            merge_into(tmp.path(), &self.dest)?;
            // The emptied temporary directory is removed when `tmp` drops.
            return Ok(());
        }
        let path = tmp.keep();
        if self.dest.exists() {
            // An empty directory was allowed as the destination: replace it.
            fs::remove_dir(&self.dest).map_err(io_err(&self.dest))?;
        }
        fs::rename(&path, &self.dest).map_err(io_err(&self.dest))
    }
}

/// The reader of standard output went away (a closed pipe) before the output was
/// complete: carried as the source of an [`io::ErrorKind::BrokenPipe`] error, so that
/// every layer above reports how far the output got.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader after {bytes} bytes: the output is incomplete")]
pub struct OutputClosed {
    /// Bytes the reader received before it closed.
    pub bytes: u64,
}

/// Standard output for data: counts the bytes delivered, and turns a closed pipe into
/// an error that says how many bytes got through ([`OutputClosed`]).
pub struct StdoutSink {
    out: io::Stdout,
    written: u64,
}

impl StdoutSink {
    /// Standard output, nothing written yet.
    pub fn new() -> StdoutSink {
        StdoutSink {
            out: io::stdout(),
            written: 0,
        }
    }

    /// Bytes delivered so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn closed(&self, e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::BrokenPipe {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                OutputClosed {
                    bytes: self.written,
                },
            )
        } else {
            e
        }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        StdoutSink::new()
    }
}

impl Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.out.write(buf) {
            Ok(n) => {
                self.written += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.closed(e)),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush().map_err(|e| self.closed(e))
    }
}

/// Whether `e` (or what caused it) is standard output closed by its reader.
pub fn is_output_closed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<OutputClosed>().is_some() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::BrokenPipe
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// Moves every file under `from` to the same relative path under `to`, replacing
/// files there and creating directories as needed.
fn merge_into(from: &Path, to: &Path) -> Result<(), OutputError> {
    for e in fs::read_dir(from).map_err(io_err(from))? {
        let e = e.map_err(io_err(from))?;
        let src = e.path();
        let dst = to.join(e.file_name());
        if e.file_type().map_err(io_err(&src))?.is_dir() {
            if !dst.exists() {
                fs::rename(&src, &dst).map_err(io_err(&dst))?;
                continue;
            }
            if !dst.is_dir() {
                return Err(OutputError::Io {
                    path: dst,
                    source: io::Error::other("exists and is not a directory"),
                });
            }
            merge_into(&src, &dst)?;
        } else {
            if dst.is_dir() {
                return Err(OutputError::Io {
                    path: dst,
                    source: io::Error::other("is a directory where a file is to be written"),
                });
            }
            fs::rename(&src, &dst).map_err(io_err(&dst))?;
        }
    }
    Ok(())
}

/// A single-file output: a file committed atomically, or standard output (`-`).
pub enum OutFile {
    /// A file under a temporary name until [`OutFile::commit`].
    File(AtomicFile),
    /// Standard output; [`OutFile::commit`] only flushes.
    Stdout(BufWriter<StdoutSink>),
}

impl OutFile {
    /// Opens `path`, where `-` means standard output.
    pub fn create(path: &Path, overwrite: bool) -> Result<OutFile, OutputError> {
        if path.as_os_str() == "-" {
            Ok(OutFile::Stdout(BufWriter::with_capacity(
                1 << 20,
                StdoutSink::new(),
            )))
        } else {
            AtomicFile::create(path, overwrite).map(OutFile::File)
        }
    }

    /// A name for messages: the final path, or `-` for standard output.
    pub fn display_path(&self) -> PathBuf {
        match self {
            OutFile::File(f) => f.dest().to_path_buf(),
            OutFile::Stdout(_) => PathBuf::from("-"),
        }
    }

    /// Leaves a file unfinished as the partial output of an interrupted run
    /// ([`AtomicFile::keep_partial`]) and returns its path; standard output is only
    /// flushed (`None`).
    pub fn keep_partial(self) -> Result<Option<PathBuf>, OutputError> {
        match self {
            OutFile::File(f) => f.keep_partial().map(Some),
            OutFile::Stdout(mut w) => w.flush().map(|()| None).map_err(io_err(Path::new("-"))),
        }
    }

    /// Completes the output: rename into place, or flush standard output.
    pub fn commit(self) -> Result<(), OutputError> {
        match self {
            OutFile::File(f) => f.commit(),
            OutFile::Stdout(mut w) => w.flush().map_err(io_err(Path::new("-"))),
        }
    }
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            OutFile::File(f) => f.write(buf),
            OutFile::Stdout(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            OutFile::File(f) => f.write_all(buf),
            OutFile::Stdout(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            OutFile::File(f) => f.flush(),
            OutFile::Stdout(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.oxd");
        let mut f = AtomicFile::create(&dest, false).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!dest.exists());
        f.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"hello");
        assert!(matches!(
            AtomicFile::create(&dest, false),
            Err(OutputError::Exists(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn outputs_are_not_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.oxd");
        AtomicFile::create(&dest, false).unwrap().commit().unwrap();
        // Group or others can read it under any usual umask (022, 002, 027).
        assert_ne!(fs::metadata(&dest).unwrap().permissions().mode() & 0o044, 0);
        let d = dir.path().join("dump");
        AtomicDir::create(&d).unwrap().commit().unwrap();
        assert_ne!(fs::metadata(&d).unwrap().permissions().mode() & 0o055, 0);
    }

    #[test]
    fn dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.oxd");
        let mut f = AtomicFile::create(&dest, false).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn leftovers_of_dead_runs_are_removed_those_of_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.oxd");
        // A process id that cannot be running (above the kernel's maximum).
        let dead = dir.path().join(".a.oxd.partial-4194399-abc123");
        let dead_dir = dir.path().join(".a.oxd.partial-4194398-def456");
        let live = dir
            .path()
            .join(format!(".a.oxd.partial-{}-xyz", std::process::id()));
        let foreign = dir.path().join(".a.oxd.partial-abcdef");
        let other = dir.path().join(".b.oxd.partial-4194399-abc123");
        fs::write(&dead, b"x").unwrap();
        fs::create_dir(&dead_dir).unwrap();
        fs::write(dead_dir.join(PARTIAL_MARKER), b"").unwrap();
        for p in [&live, &foreign, &other] {
            fs::write(p, b"x").unwrap();
        }
        assert!(is_partial_output(&dead) && is_partial_output(&dead_dir));
        assert!(!is_partial_output(&dest));
        let f = AtomicFile::create(&dest, false).unwrap();
        if Path::new("/proc/self").exists() {
            let mut removed = f.leftovers_removed().to_vec();
            removed.sort();
            assert_eq!(removed, vec![dead_dir.clone(), dead.clone()]);
            assert!(!dead.exists() && !dead_dir.exists());
        }
        assert!(live.exists() && foreign.exists() && other.exists());
        f.commit().unwrap();
    }

    #[test]
    fn leftovers_in_a_directory_are_those_of_any_name_whose_run_died() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir
            .path()
            .join(".20261202T100000Z.oxd.partial-4194399-abc123");
        let live = dir.path().join(format!(
            ".20261202T110000Z.oxd.partial-{}-xyz",
            std::process::id()
        ));
        let foreign = dir.path().join(".20261202T120000Z.oxd.partial-abcdef");
        let hidden = dir.path().join(".status.json");
        let visible = dir.path().join("20261202T100000Z.oxd");
        for p in [&dead, &live, &foreign, &hidden, &visible] {
            fs::write(p, b"x").unwrap();
        }
        if Path::new("/proc/self").exists() {
            assert_eq!(remove_leftovers_in(dir.path()), vec![dead.clone()]);
            assert!(!dead.exists());
        }
        for p in [&live, &foreign, &hidden, &visible] {
            assert!(p.exists(), "{}", p.display());
        }
    }

    #[test]
    fn a_directory_is_marked_partial_until_committed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dump");
        let d = AtomicDir::create(&dest).unwrap();
        assert!(is_partial_output(d.path()));
        assert!(d.path().join(PARTIAL_MARKER).exists());
        d.commit().unwrap();
        assert!(!is_partial_output(&dest));
        assert!(!dest.join(PARTIAL_MARKER).exists());
    }

    #[test]
    fn merging_replaces_only_what_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dump");
        fs::create_dir_all(dest.join("a")).unwrap();
        fs::write(dest.join("a/old.bson"), b"old").unwrap();
        fs::write(dest.join("a/x.bson"), b"x1").unwrap();
        let d = AtomicDir::create_merging(&dest).unwrap();
        fs::create_dir_all(d.path().join("a")).unwrap();
        fs::create_dir_all(d.path().join("b")).unwrap();
        fs::write(d.path().join("a/x.bson"), b"x2").unwrap();
        fs::write(d.path().join("b/y.bson"), b"y").unwrap();
        fs::write(d.path().join("prelude.json"), b"{}").unwrap();
        assert_eq!(fs::read(dest.join("a/x.bson")).unwrap(), b"x1");
        d.commit().unwrap();
        assert_eq!(fs::read(dest.join("a/old.bson")).unwrap(), b"old");
        assert_eq!(fs::read(dest.join("a/x.bson")).unwrap(), b"x2");
        assert_eq!(fs::read(dest.join("b/y.bson")).unwrap(), b"y");
        assert!(dest.join("prelude.json").exists());
        // No temporary directory is left beside it.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A new directory is created as usual; a file in the way is refused.
        let fresh = dir.path().join("fresh");
        let d = AtomicDir::create_merging(&fresh).unwrap();
        fs::write(d.path().join("z"), b"z").unwrap();
        d.commit().unwrap();
        assert!(fresh.join("z").exists());
        fs::write(dir.path().join("file"), b"").unwrap();
        assert!(AtomicDir::create_merging(&dir.path().join("file")).is_err());
    }

    #[test]
    fn dir_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dump");
        let d = AtomicDir::create(&dest).unwrap();
        fs::write(d.path().join("x"), b"1").unwrap();
        assert!(!dest.exists());
        d.commit().unwrap();
        assert_eq!(fs::read(dest.join("x")).unwrap(), b"1");
        let d2 = AtomicDir::create(&dir.path().join("other")).unwrap();
        drop(d2);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
