//! export (being built)
