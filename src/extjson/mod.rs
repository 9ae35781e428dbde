//! extjson (being built)
