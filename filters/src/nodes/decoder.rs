//! `decoder`: received RTP of the negotiated payload type in, PCM out; other payload types are left to
//! other filters (telephone-event) and dropped here.

use crate::codec::AudioDecoder;
use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};
use crate::frame::{AudioFrame, Frame};

pub struct Decoder {
    codec: Box<dyn AudioDecoder>,
    payload_type: u8,
    /// Packets of another payload type, dropped.
    pub foreign_packets: u64,
    /// Packets the codec could not decode, dropped.
    pub decode_errors: u64,
}

impl Decoder {
    pub const DESC: FilterDesc = FilterDesc { name: "decoder", inputs: 1, outputs: 1, pump: false };

    pub fn new(codec: Box<dyn AudioDecoder>, payload_type: u8) -> Self {
        Self { codec, payload_type, foreign_packets: 0, decode_errors: 0 }
    }
}

impl Filter for Decoder {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        let rate = self.codec.pcm_rate();
        while let Some(frame) = cx.pop(0) {
            let Frame::Rtp(rtp) = frame else {
                return Err(FilterError::UnexpectedFrame {
                    filter: "decoder",
                    pin: 0,
                    expected: "rtp",
                    got: frame.kind(),
                });
            };
            if rtp.payload_type != self.payload_type {
                self.foreign_packets += 1;
                continue;
            }
            let mut samples = Vec::with_capacity(rtp.payload.len() * 2);
            if self.codec.decode(&rtp.payload, &mut samples).is_err() {
                self.decode_errors += 1;
                continue;
            }
            cx.push(0, AudioFrame::new(samples, rate));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{g711, CodecKind};
    use crate::frame::RtpFrame;
    use crate::testing::FilterHarness;

    fn rtp(pt: u8, payload: Vec<u8>) -> RtpFrame {
        RtpFrame { ssrc: 1, seq: 1, timestamp: 0, payload_type: pt, marker: false, payload }
    }

    #[test]
    fn decodes_its_payload_type_and_drops_others() {
        let mut h = FilterHarness::new(Decoder::new(CodecKind::Pcma.decoder(), 8));
        let codes: Vec<u8> = (0..=255).collect();
        h.push(0, rtp(8, codes.clone()));
        h.push(0, rtp(101, vec![1, 2, 3, 4]));
        h.run().unwrap();
        let out = h.take_samples(0);
        let expected: Vec<i16> = codes.iter().map(|&c| g711::alaw_decode(c)).collect();
        assert_eq!(out, expected);
        assert_eq!(h.filter.foreign_packets, 1);
    }
}
