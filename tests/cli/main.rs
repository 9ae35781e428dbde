//! The `snapex` binary as a user runs it: the admin commands, `snapex demo`, `snapex export`
//! and `snapex verify`: one test binary (each binary links the whole crate, which is what a
//! build of the tests spends its time on).

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod catalog;
mod demo;
mod export;
