//! OXD format.
