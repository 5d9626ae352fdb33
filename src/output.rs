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

fn temp_prefix(dest: &Path) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    format!(".{name}.partial-")
}

/// A file written under a temporary name and renamed into place on [`commit`](AtomicFile::commit).
pub struct AtomicFile {
    dest: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `dest`. Refuses an existing destination unless `overwrite`.
    pub fn create(dest: &Path, overwrite: bool) -> Result<AtomicFile, OutputError> {
        if !overwrite && dest.exists() {
            return Err(OutputError::Exists(dest.to_path_buf()));
        }
        let dir = parent_of(dest);
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(dest))
            .permissions(file_mode())
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            file: BufWriter::with_capacity(1 << 20, tmp),
        })
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
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
        let dir = parent_of(dest);
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(dest))
            .permissions(dir_mode())
            .tempdir_in(&dir)
            .map_err(io_err(&dir))?;
        Ok(AtomicDir {
            dest: dest.to_path_buf(),
            tmp: Some(tmp),
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

    /// Renames the directory to its final name.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let tmp = self.tmp.take().expect("not committed");
        let path = tmp.keep();
        if self.dest.exists() {
            // An empty directory was allowed as the destination: replace it.
            fs::remove_dir(&self.dest).map_err(io_err(&self.dest))?;
        }
        fs::rename(&path, &self.dest).map_err(io_err(&self.dest))
    }
}

/// A single-file output: a file committed atomically, or standard output (`-`).
pub enum OutFile {
    /// A file under a temporary name until [`OutFile::commit`].
    File(AtomicFile),
    /// Standard output; [`OutFile::commit`] only flushes.
    Stdout(BufWriter<io::Stdout>),
}

impl OutFile {
    /// Opens `path`, where `-` means standard output.
    pub fn create(path: &Path, overwrite: bool) -> Result<OutFile, OutputError> {
        if path.as_os_str() == "-" {
            Ok(OutFile::Stdout(BufWriter::with_capacity(
                1 << 20,
                io::stdout(),
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
