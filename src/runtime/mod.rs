//! The only I/O in rms: real clocks, sockets and threads. Everything here is a thin driver around a
//! sans-IO core.

pub mod call_log;
pub mod http;
pub mod media;
pub mod server;
pub mod signalling;

pub use media::{LegSockets, MediaLoop, MediaRequest, MediaThread};
pub use rms_filters::clock::TscClock;
pub use server::{RtpPortPool, ServeError, Server, ServerApp, ServerInput};
pub use signalling::{SignallingApp, SignallingConfig, SignallingTask, SignallingThread};
