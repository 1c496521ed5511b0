//! `encoder`: PCM at the codec's rate in, one [`EncodedFrame`] per ptime out.
//!
//! Ticks bring 10 ms of audio; the encoder re-frames to the negotiated ptime (RFC 3551 §4.2: 20 ms by
//! default; Opus rounds down to its 10/20/40/60 ms frames, `CodecKind::packet_ms`). At end of stream it
//! pads the last packet with silence so no audio is lost. A packet the codec fails to encode is dropped
//! and counted; it never fails the graph.

use crate::codec::AudioEncoder;
use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};
use crate::frame::EncodedFrame;

pub struct Encoder {
    codec: Box<dyn AudioEncoder>,
    payload_type: u8,
    /// Samples per packet.
    frame_samples: usize,
    pending: Vec<i16>,
    /// Packets the codec failed to encode (dropped).
    pub encode_errors: u64,
}

impl Encoder {
    pub const DESC: FilterDesc = FilterDesc { name: "encoder", inputs: 1, outputs: 1, pump: false };

    /// `ptime_ms` is the packet duration (10..=60 in steps of 10).
    pub fn new(codec: Box<dyn AudioEncoder>, payload_type: u8, ptime_ms: u32) -> Self {
        let frame_samples = frame_samples(codec.as_ref(), ptime_ms);
        Self { codec, payload_type, frame_samples, pending: Vec::with_capacity(frame_samples * 2), encode_errors: 0 }
    }

    /// Drop samples waiting for a full packet (a play was stopped or replaced: they must not be
    /// prepended to the next one).
    pub fn reset(&mut self) {
        self.pending.clear();
    }

    /// Change the packet duration; takes effect from the next packet.
    pub fn set_ptime(&mut self, ptime_ms: u32) {
        self.frame_samples = frame_samples(self.codec.as_ref(), ptime_ms);
    }

    fn emit(&mut self, cx: &mut ProcessCx<'_>, end_of_stream: bool) {
        let kind = self.codec.kind();
        let n = self.frame_samples.min(self.pending.len());
        let mut payload = Vec::with_capacity(self.frame_samples);
        let encoded = self.codec.encode(&self.pending[..n], &mut payload);
        self.pending.drain(..n);
        if let Err(error) = encoded {
            self.encode_errors += 1;
            tracing::debug!(%error, "encoder: packet dropped");
            return;
        }
        // RTP clock units per PCM sample: 1/2 for G.722 (RFC 3551 §4.5.2), 48000/rate for Opus
        // (RFC 7587 §4.1).
        let duration = (n as u64 * u64::from(kind.clock_rate()) / u64::from(self.codec.pcm_rate().max(1))) as u32;
        cx.push(
            0,
            EncodedFrame {
                payload,
                payload_type: self.payload_type,
                duration,
                clock_rate: kind.clock_rate(),
                end_of_stream,
            },
        );
    }
}

/// Samples per packet at the codec's PCM rate (at least one, so re-framing always progresses).
fn frame_samples(codec: &dyn AudioEncoder, ptime_ms: u32) -> usize {
    let ms = codec.kind().packet_ms(ptime_ms);
    ((u64::from(codec.pcm_rate()) * u64::from(ms) / 1000) as usize).max(1)
}

impl Filter for Encoder {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        let rate = self.codec.pcm_rate();
        while let Some(audio) = cx.pop_audio(0, "encoder")? {
            if audio.rate != rate {
                return Err(FilterError::UnsupportedRate { filter: "encoder", rate: audio.rate });
            }
            self.pending.extend_from_slice(&audio.samples);
            while self.pending.len() >= self.frame_samples {
                let last = audio.end_of_stream && self.pending.len() == self.frame_samples;
                self.emit(cx, last);
            }
            if audio.end_of_stream && !self.pending.is_empty() {
                self.pending.resize(self.frame_samples, 0);
                self.emit(cx, true);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{g711, CodecError, CodecKind, CodecParams};
    use crate::frame::AudioFrame;
    use crate::frame::Frame;
    use crate::testing::{sine, FilterHarness};

    fn encoded(h: &mut FilterHarness<Encoder>) -> Vec<EncodedFrame> {
        h.take(0)
            .into_iter()
            .map(|f| match f {
                Frame::Encoded(e) => e,
                other => panic!("{}", other.kind()),
            })
            .collect()
    }

    #[test]
    fn reframes_10ms_ticks_into_20ms_packets_bit_exactly() {
        let pcm = sine(8000, 1000.0, 12000.0, 800);
        let mut h = FilterHarness::new(Encoder::new(CodecKind::Pcmu.encoder(), 0, 20));
        for chunk in pcm.chunks(80) {
            h.push(0, AudioFrame::new(chunk.to_vec(), 8000));
            h.run().unwrap();
        }
        let out = encoded(&mut h);
        assert_eq!(out.len(), 5);
        let mut expected = Vec::new();
        g711::encode(g711::Law::Mu, &pcm, &mut expected);
        let got: Vec<u8> = out.iter().flat_map(|e| e.payload.clone()).collect();
        assert_eq!(got, expected);
        assert!(out.iter().all(|e| e.duration == 160 && e.payload_type == 0 && !e.end_of_stream));
    }

    #[test]
    fn end_of_stream_pads_the_last_packet_with_silence() {
        let mut h = FilterHarness::new(Encoder::new(CodecKind::Pcma.encoder(), 8, 20));
        h.push(0, AudioFrame::new(vec![1000; 80], 8000));
        h.run().unwrap();
        h.push(0, AudioFrame { samples: vec![1000; 30], rate: 8000, end_of_stream: true });
        h.run().unwrap();
        let out = encoded(&mut h);
        assert_eq!(out.len(), 1);
        assert!(out[0].end_of_stream);
        assert_eq!(out[0].payload.len(), 160);
        assert_eq!(out[0].payload[109], g711::alaw_encode(1000));
        assert_eq!(out[0].payload[110], g711::alaw_encode(0));
    }

    #[test]
    fn wrong_rate_is_an_error() {
        let mut h = FilterHarness::new(Encoder::new(CodecKind::Pcmu.encoder(), 0, 20));
        h.push(0, AudioFrame::new(vec![0; 160], 16000));
        assert!(matches!(h.run(), Err(FilterError::UnsupportedRate { rate: 16000, .. })));
    }

    #[test]
    fn g722_packets_are_160_bytes_and_160_clock_units_per_20_ms() {
        let mut h = FilterHarness::new(Encoder::new(CodecKind::G722.encoder(), 9, 20));
        for _ in 0..4 {
            h.push(0, AudioFrame::new(sine(16000, 1000.0, 8000.0, 160), 16000));
            h.run().unwrap();
        }
        let out = encoded(&mut h);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|e| e.payload.len() == 160 && e.duration == 160 && e.clock_rate == 8000));
    }

    #[test]
    fn opus_runs_at_its_pcm_rate_on_a_48_khz_clock() {
        let codec = CodecKind::Opus.encoder_with(&CodecParams::at(8000)).unwrap();
        // 30 ms is not an Opus frame size: 20 ms packets go out.
        let mut h = FilterHarness::new(Encoder::new(codec, 111, 30));
        for _ in 0..6 {
            h.push(0, AudioFrame::new(sine(8000, 440.0, 8000.0, 80), 8000));
            h.run().unwrap();
        }
        let out = encoded(&mut h);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|e| e.duration == 960 && e.clock_rate == 48000 && e.payload_type == 111));
        assert_eq!(h.filter.encode_errors, 0);
    }

    struct Failing;

    impl AudioEncoder for Failing {
        fn kind(&self) -> CodecKind {
            CodecKind::Opus
        }

        fn pcm_rate(&self) -> u32 {
            8000
        }

        fn encode(&mut self, pcm: &[i16], _out: &mut Vec<u8>) -> Result<(), CodecError> {
            Err(CodecError::BadFrameSize { codec: CodecKind::Opus, samples: pcm.len(), rate: 8000 })
        }
    }

    #[test]
    fn an_encode_error_drops_the_packet_and_is_counted() {
        let mut h = FilterHarness::new(Encoder::new(Box::new(Failing), 111, 20));
        for _ in 0..4 {
            h.push(0, AudioFrame::new(vec![0; 80], 8000));
            h.run().unwrap();
        }
        assert!(encoded(&mut h).is_empty());
        assert_eq!(h.filter.encode_errors, 2);
    }
}
