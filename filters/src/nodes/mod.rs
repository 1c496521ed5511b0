//! The filter nodes, one file each.

pub mod bridge;
pub mod decoder;
pub mod dtmf_gen;
pub mod encoder;
pub mod file_player;
pub mod recorder;
pub mod resampler;
pub mod rtp_recv;
pub mod rtp_send;
pub mod tee;
pub mod tone_gen;
pub mod void_sink;

pub use bridge::{BridgeIn, BridgeMap, BridgeOut, EventMap, EventRoute};
pub use decoder::Decoder;
pub use dtmf_gen::DtmfGen;
pub use encoder::Encoder;
pub use file_player::FilePlayer;
pub use recorder::Recorder;
pub use resampler::Resampler;
pub use rtp_recv::RtpRecv;
pub use rtp_send::RtpSend;
pub use tee::Tee;
pub use tone_gen::ToneGen;
pub use void_sink::VoidSink;
