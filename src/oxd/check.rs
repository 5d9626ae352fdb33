//! Offline verification of OXD archives.
