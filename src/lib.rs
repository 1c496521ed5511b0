//! rms: a SIP B2BUA media application server (IVR prompts, bridging, transcoding, quality reports).
//!
//! ```text
//!  signalling (tokio, later issues)            media thread (one OS thread)
//!  ┌──────────────────────────────┐  MediaCmd  ┌─────────────────────────────────────┐
//!  │ SIP endpoint, sessions,      │ ─────────► │ MediaLoop                           │
//!  │ Lua routes                   │ crossbeam  │  ├ reads RTP sockets (non-blocking) │
//!  │                              │ ◄───────── │  ├ MediaCoordinator::tick every 10ms│
//!  └──────────────────────────────┘ MediaEvent │  └ sends what the graphs produced   │
//!                                   tokio mpsc └─────────────────────────────────────┘
//! ```
//!
//! [`media`] is the sans-IO coordinator (time and datagrams are arguments); [`runtime`] is the only
//! module that reads clocks, binds sockets and starts threads. The graphs and filters live in the
//! `rms-filters` crate.

pub mod config;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod media;
pub mod runtime;
pub mod script;
pub mod sdp;
pub mod session;
pub mod sip;

pub use rms_filters as filters;
