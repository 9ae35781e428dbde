//! auth (being built)
