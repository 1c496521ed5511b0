//! rms-filters: the rms media engine.
//!
//! Per-call filter graphs ([`graph::Graph`]) of [`filter::Filter`] nodes, ticked every 10 ms by their
//! owner (the media coordinator in the `rms` crate). This crate does no I/O of its own besides reading
//! and writing audio files: datagrams come in through `RtpRecv::push_datagram` and go out as
//! [`filter::Transmit`]s that the owner sends; time comes in as an argument to `tick`.
//!
//! It has no SIP, SDP or tokio dependency, so the layering stays honest.

pub mod clock;
pub mod codec;
pub mod filter;
pub mod frame;
pub mod graph;
pub mod level;
pub mod nodes;
pub mod rtp;
#[cfg(feature = "testing")]
pub mod testing;

pub use filter::{
    Filter, FilterDesc, FilterError, FilterEvent, NoClock, ProcessCx, Transmit, UsageClock, UsageTable, TICK,
};
pub use frame::{AudioFrame, EncodedFrame, Frame, RtpFrame};
pub use graph::{Graph, GraphError, NodeId};
