//! The Atlas-compatible Admin API (`/api/atlas/v2`, `/api/atlas/v1.0`) and the snapex
//! extensions (`/api/snapex/v1`), one file per resource.

pub mod error;
