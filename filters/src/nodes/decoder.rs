//! `decoder`: received RTP of the negotiated payload type in, PCM at the codec's rate out; other payload
//! types are left to other filters (telephone-event) and dropped here.
//!
//! Losses are concealed: the decoder follows the extended sequence number and timestamp of the last
//! packet it decoded, and when packets are missing before the next one it conceals the span the
//! timestamps say is missing (RFC 3550 §5.1), up to 120 ms; a longer gap is silence or DTX and is left
//! alone, and so is the gap before a packet with the marker bit (a talkspurt start). With Opus, the last lost packet is rebuilt from the FEC data of the next one (RFC 7587 §3.3),
//! the others by libopus's PLC.
//! A packet that fails to decode counts as lost, so it is concealed from the timestamps once the next
//! packet arrives. Nothing here fails the graph.

use crate::codec::{AudioDecoder, CodecKind};
use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};
use crate::frame::{AudioFrame, Frame, RtpFrame};
use crate::level::LevelMeter;

/// The longest gap concealed, in ms; longer ones are silence or DTX.
pub const MAX_CONCEAL_MS: u32 = 120;
/// A packet this many sequence numbers behind the last decoded one is late; further back, the stream
/// restarted (RFC 3550 A.1 MAX_MISORDER).
const MAX_MISORDER: u32 = 100;

pub struct Decoder {
    codec: Box<dyn AudioDecoder>,
    payload_type: u8,
    last: Option<Last>,
    /// Packets of another payload type, dropped.
    pub foreign_packets: u64,
    /// Lost (or undecodable) packets replaced by concealment.
    pub concealed_packets: u64,
    /// Lost packets rebuilt from the next packet's FEC data instead (Opus); not in `concealed_packets`.
    pub fec_recovered: u64,
    /// Packets the codec could not decode (each is concealed like a lost one).
    pub decode_errors: u64,
    /// Packets at or behind the last decoded one (duplicates, late), dropped.
    pub stale_packets: u64,
    /// Signal and noise level of what was decoded (concealment excluded).
    pub levels: LevelMeter,
}

/// The last packet decoded.
#[derive(Debug, Clone, Copy)]
struct Last {
    ssrc: u32,
    seq: u32,
    timestamp: u32,
    /// Its duration in RTP clock units.
    duration: u32,
}

impl Decoder {
    pub const DESC: FilterDesc = FilterDesc { name: "decoder", inputs: 1, outputs: 1, pump: false };

    pub fn new(codec: Box<dyn AudioDecoder>, payload_type: u8) -> Self {
        Self {
            codec,
            payload_type,
            last: None,
            foreign_packets: 0,
            concealed_packets: 0,
            fec_recovered: 0,
            decode_errors: 0,
            stale_packets: 0,
            levels: LevelMeter::new(),
        }
    }

    /// Conceal what is missing before `rtp` (appending to `out`); false if `rtp` is stale.
    fn fill_gap(&mut self, rtp: &RtpFrame, out: &mut Vec<i16>) -> bool {
        let Some(last) = self.last.filter(|l| l.ssrc == rtp.ssrc) else {
            return true;
        };
        let behind = last.seq.wrapping_sub(rtp.seq);
        if behind < MAX_MISORDER {
            // Includes behind == 0, a duplicate.
            self.stale_packets += 1;
            return false;
        }
        let lost = rtp.seq.wrapping_sub(last.seq).wrapping_sub(1);
        // A talkspurt start (RFC 3551 §4.1) follows silence or a telephone-event, not a loss.
        if lost == 0 || rtp.seq < last.seq || rtp.marker {
            return true;
        }
        let kind = self.codec.kind();
        let clock = u64::from(kind.clock_rate().max(1));
        // What the lost packets covered: the timestamp step minus the last packet's own duration (or,
        // not knowing it, a share of the step).
        let step = i64::from(rtp.timestamp.wrapping_sub(last.timestamp) as i32);
        let covered = if last.duration > 0 {
            step - i64::from(last.duration)
        } else {
            step * i64::from(lost) / (i64::from(lost) + 1)
        };
        let max = clock * u64::from(MAX_CONCEAL_MS) / 1000;
        let Ok(covered) = u64::try_from(covered) else {
            return true;
        };
        if covered == 0 || covered > max {
            return true;
        }
        let samples = (covered * u64::from(self.codec.pcm_rate()) / clock) as usize;
        let lost = u64::from(lost);
        if kind == CodecKind::Opus {
            // libopus conceals all but the last lost packet's span and rebuilds that from the FEC data
            // (opus_decode with decode_fec; plain PLC when there is none).
            match self.codec.decode_fec(&rtp.payload, samples, out) {
                Ok(true) => {
                    self.fec_recovered += 1;
                    self.concealed_packets += lost - 1;
                }
                Ok(false) => self.concealed_packets += lost,
                Err(error) => {
                    tracing::debug!(%error, "decoder: FEC decode failed, concealing");
                    self.codec.conceal(samples, out);
                    self.concealed_packets += lost;
                }
            }
        } else {
            self.codec.conceal(samples, out);
            self.concealed_packets += lost;
        }
        true
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
            if !self.fill_gap(&rtp, &mut samples) {
                continue;
            }
            let before = samples.len();
            match self.codec.decode(&rtp.payload, &mut samples) {
                Ok(()) => {
                    self.levels.frame(&samples[before..]);
                    let decoded = (samples.len() - before) as u64;
                    let duration = decoded * u64::from(self.codec.kind().clock_rate()) / u64::from(rate.max(1));
                    self.last = Some(Last {
                        ssrc: rtp.ssrc,
                        seq: rtp.seq,
                        timestamp: rtp.timestamp,
                        duration: u32::try_from(duration).unwrap_or(u32::MAX),
                    });
                }
                Err(error) => {
                    // Left out of `last`: the next packet sees it as lost and conceals its span.
                    self.decode_errors += 1;
                    tracing::debug!(%error, seq = rtp.seq, "decoder: undecodable packet");
                }
            }
            if !samples.is_empty() {
                cx.push(0, AudioFrame::new(samples, rate));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{g711, CodecKind, CodecParams};
    use crate::testing::{correlation_at, goertzel_ratio, sine, test_signal, FilterHarness};

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

    fn packet(seq: u32, timestamp: u32, pt: u8, payload: Vec<u8>) -> RtpFrame {
        RtpFrame { ssrc: 7, seq, timestamp, payload_type: pt, marker: false, payload }
    }

    /// `pcm` encoded in packets of `frame` samples with `kind` at `rate`: (timestamp step, payloads).
    fn encode(kind: CodecKind, rate: u32, pcm: &[i16], frame: usize) -> (u32, Vec<Vec<u8>>) {
        let mut enc = kind.encoder_with(&CodecParams::at(rate)).unwrap();
        let payloads = pcm
            .chunks_exact(frame)
            .map(|c| {
                let mut p = Vec::new();
                enc.encode(c, &mut p).unwrap();
                p
            })
            .collect();
        (frame as u32 * kind.clock_rate() / rate, payloads)
    }

    /// Run the packets whose index `keep` accepts through a decoder, one per tick.
    fn decode(
        kind: CodecKind,
        rate: u32,
        step: u32,
        payloads: &[Vec<u8>],
        keep: impl Fn(usize) -> bool,
    ) -> (Vec<i16>, Decoder) {
        let codec = kind.decoder_with(&CodecParams::at(rate)).unwrap();
        let mut h = FilterHarness::new(Decoder::new(codec, 96));
        let mut out = Vec::new();
        for (i, p) in payloads.iter().enumerate().filter(|(i, _)| keep(*i)) {
            h.push(0, packet(1000 + i as u32, 5000 + i as u32 * step, 96, p.clone()));
            h.run().unwrap();
            out.extend(h.take_samples(0));
        }
        (out, h.filter)
    }

    #[test]
    fn a_lost_g711_packet_is_concealed_with_the_tone() {
        let s = sine(8000, 440.0, 10000.0, 8000);
        let (step, payloads) = encode(CodecKind::Pcmu, 8000, &s, 160);
        let (out, d) = decode(CodecKind::Pcmu, 8000, step, &payloads, |i| i != 20);
        assert_eq!(out.len(), s.len(), "the lost 20 ms are filled");
        assert_eq!((d.concealed_packets, d.fec_recovered, d.decode_errors), (1, 0, 0));
        let gap = &out[20 * 160..21 * 160];
        assert!(goertzel_ratio(gap, 8000, 440.0) > 0.9);
        assert!(correlation_at(gap, &s[20 * 160..21 * 160], 0) > 0.8);
    }

    #[test]
    fn the_gap_before_a_talkspurt_start_is_not_concealed() {
        let s = sine(8000, 440.0, 10000.0, 800);
        let (_, payloads) = encode(CodecKind::Pcmu, 8000, &s, 160);
        for (marker, samples, concealed) in [(false, 5 * 160, 2), (true, 3 * 160, 0)] {
            let mut h = FilterHarness::new(Decoder::new(CodecKind::Pcmu.decoder(), 96));
            // Packets 1 and 2 not decoded (silence, or telephone-events): 40 ms of timestamps.
            h.push(0, packet(0, 0, 96, payloads[0].clone()));
            h.push(0, RtpFrame { marker, ..packet(3, 480, 96, payloads[3].clone()) });
            h.push(0, packet(4, 640, 96, payloads[4].clone()));
            h.run().unwrap();
            assert_eq!(h.take_samples(0).len(), samples, "marker {marker}");
            assert_eq!(h.filter.concealed_packets, concealed);
        }
    }

    #[test]
    fn several_lost_g722_packets_are_concealed_for_their_duration() {
        let s = sine(16000, 440.0, 10000.0, 16000);
        let (step, payloads) = encode(CodecKind::G722, 16000, &s, 320);
        assert_eq!(step, 160, "20 ms of G.722 is 160 clock units");
        let (out, d) = decode(CodecKind::G722, 16000, step, &payloads, |i| !(20..23).contains(&i));
        assert_eq!(out.len(), s.len());
        assert_eq!(d.concealed_packets, 3);
    }

    #[test]
    fn gaps_longer_than_120_ms_are_not_concealed() {
        let s = sine(8000, 440.0, 10000.0, 8000);
        let (step, payloads) = encode(CodecKind::Pcma, 8000, &s, 160);
        let (out, d) = decode(CodecKind::Pcma, 8000, step, &payloads, |i| !(10..17).contains(&i));
        assert_eq!(out.len(), s.len() - 7 * 160);
        assert_eq!(d.concealed_packets, 0);
        // Exactly 120 ms is concealed.
        let (out, d) = decode(CodecKind::Pcma, 8000, step, &payloads, |i| !(10..16).contains(&i));
        assert_eq!(out.len(), s.len());
        assert_eq!(d.concealed_packets, 6);
    }

    #[test]
    fn a_lost_opus_packet_is_rebuilt_from_fec() {
        let s = test_signal(8000, 16000, 3400.0);
        let (step, payloads) = encode(CodecKind::Opus, 8000, &s, 160);
        assert_eq!(step, 960);
        // Packet 27 is loud: libopus only adds FEC data for active speech.
        let (out, d) = decode(CodecKind::Opus, 8000, step, &payloads, |i| i != 27);
        assert_eq!(out.len(), s.len());
        assert_eq!((d.concealed_packets, d.fec_recovered), (0, 1));
        // Two in a row: the first is concealed, the second rebuilt.
        let (out, d) = decode(CodecKind::Opus, 8000, step, &payloads, |i| i != 26 && i != 27);
        assert_eq!(out.len(), s.len());
        assert_eq!((d.concealed_packets, d.fec_recovered), (1, 1));
    }

    #[test]
    fn an_undecodable_packet_is_counted_and_concealed() {
        let s = test_signal(16000, 16000, 7000.0);
        let (step, mut payloads) = encode(CodecKind::Opus, 16000, &s, 320);
        payloads[27] = vec![0x03, 0x00]; // TOC code 3 with no frames (RFC 6716 §3.2.5)
        let (out, d) = decode(CodecKind::Opus, 16000, step, &payloads, |_| true);
        assert_eq!(out.len(), s.len());
        assert_eq!(d.decode_errors, 1);
        assert_eq!(d.concealed_packets + d.fec_recovered, 1);
    }

    #[test]
    fn duplicates_are_dropped_and_a_new_ssrc_starts_afresh() {
        let mut h = FilterHarness::new(Decoder::new(CodecKind::Pcmu.decoder(), 0));
        h.push(0, packet(10, 1600, 0, vec![0xFF; 160]));
        h.push(0, packet(10, 1600, 0, vec![0xFF; 160]));
        h.push(0, packet(9, 1440, 0, vec![0xFF; 160]));
        // Another source, far away in sequence and time: nothing to conceal.
        h.push(0, packet(5000, 90000, 0, vec![0xFF; 160]).with_ssrc(8));
        h.run().unwrap();
        assert_eq!(h.take_samples(0).len(), 320);
        assert_eq!((h.filter.stale_packets, h.filter.concealed_packets), (2, 0));
        // A restart far behind in sequence is decoded, not dropped.
        h.push(0, packet(2, 100, 0, vec![0xFF; 160]).with_ssrc(8));
        h.run().unwrap();
        assert_eq!(h.take_samples(0).len(), 160);
    }

    #[test]
    fn a_timestamp_jump_without_lost_packets_is_not_concealed() {
        let mut h = FilterHarness::new(Decoder::new(CodecKind::Pcmu.decoder(), 0));
        h.push(0, packet(10, 1600, 0, vec![0xFF; 160]));
        h.push(0, packet(11, 1600 + 800, 0, vec![0xFF; 160])); // silence suppressed (RFC 3551 §4.1)
        h.run().unwrap();
        assert_eq!(h.take_samples(0).len(), 320);
        assert_eq!(h.filter.concealed_packets, 0);
    }

    impl RtpFrame {
        fn with_ssrc(mut self, ssrc: u32) -> Self {
            self.ssrc = ssrc;
            self
        }
    }
}
