//! Offline verification: findings and the report every format's checker fills.
//!
//! A checker never stops at the first problem it can step over: it records a
//! [`Finding`] (what, where: file, namespace, frame, byte offset) and goes on as far
//! as the format allows. The command decides the exit code from the report.

use std::path::PathBuf;

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The backup is corrupt or incomplete: some data cannot be trusted or is missing.
    Error,
    /// Worth knowing, but every document is intact.
    Warning,
}

/// One problem found in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Stable machine-readable identifier of the kind of problem (for example `frame-crc`).
    pub code: &'static str,
    /// The file the problem is in (for directories, the file inside it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The namespace concerned, `db.collection`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The frame number within the namespace (OXD) or segment number (mongodump archive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
    /// Byte offset in the file (in the decompressed stream for gzipped inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Human-readable description: what was found and what was expected.
    pub message: String,
}

impl Finding {
    /// A new error finding with no location yet.
    pub fn error(code: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Error,
            code,
            file: None,
            namespace: None,
            frame: None,
            offset: None,
            message: message.into(),
        }
    }

    /// A new warning finding with no location yet.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, message)
        }
    }

    /// Sets the file.
    pub fn file(mut self, file: impl Into<PathBuf>) -> Finding {
        self.file = Some(file.into());
        self
    }

    /// Sets the namespace.
    pub fn ns(mut self, ns: impl Into<String>) -> Finding {
        self.namespace = Some(ns.into());
        self
    }

    /// Sets the frame number.
    pub fn frame(mut self, frame: u64) -> Finding {
        self.frame = Some(frame);
        self
    }

    /// Sets the byte offset.
    pub fn offset(mut self, offset: u64) -> Finding {
        self.offset = Some(offset);
        self
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}]", self.code)?;
        if let Some(p) = &self.file {
            write!(f, " {}", p.display())?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, " ns={ns}")?;
        }
        if let Some(fr) = self.frame {
            write!(f, " frame={fr}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " offset={o}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Options of a verification.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Also walk every element of every document (types, lengths, UTF-8).
    pub deep: bool,
}

/// Per-namespace totals seen by a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NsTotals {
    /// `db.collection`.
    pub namespace: String,
    /// Documents read.
    pub documents: u64,
    /// Raw BSON bytes read.
    pub bytes: u64,
}

/// What a verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The input that was checked.
    pub path: PathBuf,
    /// Detected format (`oxd`, `mongodump-archive`, `mongodump-archive+gzip`, `mongodump-dir`, …).
    pub format: String,
    /// Whether the input is complete (OXD: valid trailer and footer; mongodump archive: every
    /// namespace reached its end block).
    pub complete: bool,
    /// Per-namespace totals, in catalog order.
    pub namespaces: Vec<NsTotals>,
    /// Everything found, in input order.
    pub findings: Vec<Finding>,
}

impl Report {
    /// A new report for `path` in `format`.
    pub fn new(path: impl Into<PathBuf>, format: impl Into<String>) -> Report {
        Report {
            path: path.into(),
            format: format.into(),
            ..Report::default()
        }
    }

    /// Records a finding.
    pub fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    /// Whether any error finding was recorded.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Clean: complete with no error finding.
    pub fn is_ok(&self) -> bool {
        self.complete && !self.has_errors()
    }
}
