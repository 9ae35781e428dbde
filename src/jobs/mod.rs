//! jobs (being built)
