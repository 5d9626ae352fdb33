//! The signals that stop a run: SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal
//! or session) all ask for the same clean stop.

/// Which signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT, Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP.
    Hangup,
}

impl Signal {
    /// The signal's name as mongo-tools logs it (`interrupt`, `terminated`, `hangup`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "interrupt",
            Signal::Terminate => "terminated",
            Signal::Hangup => "hangup",
        }
    }
}

/// Resolves when `s` delivers a signal; never when it could not be installed.
#[cfg(unix)]
async fn recv(s: Option<&mut tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Resolves on the next SIGINT, SIGTERM or SIGHUP, and says which. Each call listens
/// afresh, so a second call waits for a second signal.
pub async fn shutdown() -> Signal {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut hup = signal(SignalKind::hangup()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => Signal::Interrupt,
            _ = recv(term.as_mut()) => Signal::Terminate,
            _ = recv(hup.as_mut()) => Signal::Hangup,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    }
}
