//! mongodump formats.
