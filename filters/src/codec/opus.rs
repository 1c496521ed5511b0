//! Opus (RFC 6716; RTP payload RFC 7587), mono, through the `opus` crate and libopus 1.6 (bundled by
//! `opusic-sys`, built with cmake). The RTP clock is 48000 whatever rate the codec runs at
//! (RFC 7587 §4.1); here it runs at the PCM rate it was built for (8, 12, 16, 24 or 48 kHz).
//!
//! Encoder: application VOIP, complexity from [`OpusConfig`], in-band FEC (LBRR) on, DTX off, frames of
//! 10, 20, 40 or 60 ms. Decoder: libopus's PLC for `conceal`, its FEC decode for `decode_fec`.

use ::opus::{Application, Bandwidth, Bitrate, Channels, ErrorCode};

use super::{AudioDecoder, AudioEncoder, CodecError, CodecKind, OpusConfig};

/// Frame durations the encoder takes, in ms.
pub const FRAME_MS: [u32; 4] = [10, 20, 40, 60];
/// The longest packet RFC 6716 §3.2.5 allows, in ms (decode buffers are this long).
const MAX_PACKET_MS: usize = 120;
/// The bitrate used below 24 kHz when FEC is wanted and no bitrate is configured.
pub const FEC_MIN_BITRATE: u32 = 24_000;
/// libopus's recommended maximum packet size in bytes (opus_encode documentation).
const MAX_PAYLOAD: usize = 4000;

fn opus_error(e: ::opus::Error) -> CodecError {
    CodecError::Opus { function: e.function(), description: e.description() }
}

fn check_rate(rate: u32) -> Result<(), CodecError> {
    if CodecKind::Opus.pcm_rates().contains(&rate) {
        Ok(())
    } else {
        Err(CodecError::UnsupportedRate { codec: CodecKind::Opus, rate })
    }
}

/// The widest audio band a receiver playing at `rate` Hz can use (RFC 7587 §6.1 `maxplaybackrate`;
/// RFC 6716 §2 table 1).
pub fn bandwidth_for(rate: u32) -> Bandwidth {
    match rate {
        0..=8000 => Bandwidth::Narrowband,
        8001..=12000 => Bandwidth::Mediumband,
        12001..=16000 => Bandwidth::Wideband,
        16001..=24000 => Bandwidth::Superwideband,
        _ => Bandwidth::Fullband,
    }
}

/// Opus as an [`AudioEncoder`].
pub struct Encoder {
    inner: ::opus::Encoder,
    rate: u32,
}

impl Encoder {
    pub fn new(rate: u32, config: &OpusConfig) -> Result<Self, CodecError> {
        check_rate(rate)?;
        let mut inner = ::opus::Encoder::new(rate, Channels::Mono, Application::Voip).map_err(opus_error)?;
        inner.set_complexity(i32::from(config.complexity.min(10))).map_err(opus_error)?;
        inner.set_inband_fec(config.inband_fec).map_err(opus_error)?;
        inner.set_packet_loss_perc(i32::from(config.packet_loss_pct.min(100))).map_err(opus_error)?;
        inner.set_dtx(false).map_err(opus_error)?;
        let fec = config.inband_fec && config.packet_loss_pct > 0;
        let bitrate = match config.bitrate {
            // RFC 7587 §7.1: 6 to 510 kbit/s.
            Some(bps) => Some(bps.clamp(6000, 510_000)),
            // SILK only adds LBRR (FEC) data above a band-dependent rate (12-16 kbit/s plus a margin for
            // the loss, silk/control_codec.c silk_setup_LBRR); libopus's automatic rate at 8-16 kHz is
            // below that (e.g. 11 kbit/s at 8 kHz, 20 ms), so FEC would silently be absent.
            None if fec && rate <= 16000 => Some(FEC_MIN_BITRATE),
            None => None,
        };
        if let Some(bps) = bitrate {
            inner.set_bitrate(Bitrate::Bits(bps as i32)).map_err(opus_error)?;
        }
        if let Some(max) = config.max_playback_rate {
            inner.set_max_bandwidth(bandwidth_for(max)).map_err(opus_error)?;
        }
        Ok(Self { inner, rate })
    }
}

impl AudioEncoder for Encoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn pcm_rate(&self) -> u32 {
        self.rate
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !FRAME_MS.iter().any(|&ms| pcm.len() == (self.rate * ms / 1000) as usize) {
            return Err(CodecError::BadFrameSize { codec: CodecKind::Opus, samples: pcm.len(), rate: self.rate });
        }
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = self.inner.encode(pcm, &mut buf).map_err(opus_error)?;
        out.extend_from_slice(&buf[..n.min(MAX_PAYLOAD)]);
        Ok(())
    }
}

/// Opus as an [`AudioDecoder`].
pub struct Decoder {
    inner: ::opus::Decoder,
    rate: u32,
}

impl Decoder {
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        check_rate(rate)?;
        let inner = ::opus::Decoder::new(rate, Channels::Mono).map_err(opus_error)?;
        Ok(Self { inner, rate })
    }

    /// Samples in 2.5 ms, the unit libopus conceals and recovers in.
    fn quantum(&self) -> usize {
        self.rate as usize / 400
    }

    fn max_samples(&self) -> usize {
        self.rate as usize * MAX_PACKET_MS / 1000
    }

    /// Decode into `out` (grown by at most `max` samples); nothing is appended on error.
    fn decode_into(&mut self, payload: &[u8], max: usize, fec: bool, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let start = out.len();
        out.resize(start + max, 0);
        match self.inner.decode(payload, &mut out[start..], fec) {
            Ok(n) => {
                out.truncate(start + n.min(max));
                Ok(n.min(max))
            }
            Err(e) => {
                out.truncate(start);
                Err(if e.code() == ErrorCode::InvalidPacket {
                    CodecError::CorruptPayload { codec: CodecKind::Opus, len: payload.len() }
                } else {
                    opus_error(e)
                })
            }
        }
    }

    /// Whether `packet` carries LBRR (FEC) data for the packet before it (libopus 1.5+).
    fn has_fec(packet: &[u8]) -> bool {
        // libopus reads the TOC byte before looking at the length.
        let Ok(len) = i32::try_from(packet.len()) else {
            return false;
        };
        if len == 0 {
            return false;
        }
        // SAFETY: `packet` is a live, non-empty slice of `len` bytes; libopus only reads it.
        unsafe { opusic_sys::opus_packet_has_lbrr(packet.as_ptr(), len) > 0 }
    }
}

impl AudioDecoder for Decoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn pcm_rate(&self) -> u32 {
        self.rate
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        // An empty payload would ask libopus for PLC; RFC 6716 §3.1: a packet has at least its TOC byte.
        if payload.is_empty() {
            return Err(CodecError::CorruptPayload { codec: CodecKind::Opus, len: 0 });
        }
        let max = self.max_samples();
        self.decode_into(payload, max, false, out).map(|_| ())
    }

    /// libopus PLC, in whole 2.5 ms steps (libopus conceals nothing shorter), cut to `samples`.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let start = out.len();
        let q = self.quantum();
        let total = samples.div_ceil(q) * q;
        let mut done = 0;
        while done < total {
            let chunk = (total - done).min(self.max_samples());
            match self.decode_into(&[], chunk, false, out) {
                Ok(n) if n > 0 => done += n,
                _ => break,
            }
        }
        // Whatever libopus did not produce is silence.
        out.resize(start + samples, 0);
    }

    /// libopus FEC decode of the LBRR data in `next_payload` (RFC 6716 §2.1.7); the lost span must be
    /// whole 2.5 ms steps of at most 120 ms. Without LBRR data this is PLC and returns `Ok(false)`.
    fn decode_fec(&mut self, next_payload: &[u8], samples: usize, out: &mut Vec<i16>) -> Result<bool, CodecError> {
        if samples == 0
            || !samples.is_multiple_of(self.quantum())
            || samples > self.max_samples()
            || !Self::has_fec(next_payload)
        {
            self.conceal(samples, out);
            return Ok(false);
        }
        let start = out.len();
        self.decode_into(next_payload, samples, true, out)?;
        out.resize(start + samples, 0);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{best_correlation, correlation_at, goertzel_ratio, sine, test_signal};

    fn codec(rate: u32) -> (Encoder, Decoder) {
        (Encoder::new(rate, &OpusConfig::default()).unwrap(), Decoder::new(rate).unwrap())
    }

    fn packets(enc: &mut Encoder, pcm: &[i16], frame: usize) -> Vec<Vec<u8>> {
        pcm.chunks_exact(frame)
            .map(|c| {
                let mut p = Vec::new();
                enc.encode(c, &mut p).unwrap();
                p
            })
            .collect()
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_shape() {
        for rate in [8000, 16000, 48000] {
            for freq in [440.0, 1000.0] {
                let (mut enc, mut dec) = codec(rate);
                let s = sine(rate, freq, 10000.0, rate as usize);
                let mut out = Vec::new();
                for p in packets(&mut enc, &s, rate as usize / 50) {
                    dec.decode(&p, &mut out).unwrap();
                }
                assert_eq!(out.len(), s.len());
                let skip = rate as usize / 5;
                let (c, lag) = best_correlation(&out[skip..], &s[skip..], rate as usize / 100);
                assert!(c >= 0.9, "{rate} Hz, {freq} Hz: correlation {c} at lag {lag}");
                assert!(goertzel_ratio(&out[skip..], rate, freq) > 0.8, "{rate} Hz, {freq} Hz");
            }
        }
    }

    #[test]
    fn every_frame_size_codes() {
        let (mut enc, mut dec) = codec(16000);
        for ms in FRAME_MS {
            let n = 16 * ms as usize;
            let mut p = Vec::new();
            enc.encode(&sine(16000, 500.0, 8000.0, n), &mut p).unwrap();
            let mut out = Vec::new();
            dec.decode(&p, &mut out).unwrap();
            assert_eq!(out.len(), n, "{ms} ms");
        }
        let mut p = Vec::new();
        assert_eq!(
            enc.encode(&[0; 480], &mut p),
            Err(CodecError::BadFrameSize { codec: CodecKind::Opus, samples: 480, rate: 16000 })
        );
        assert!(p.is_empty());
    }

    #[test]
    fn plc_gives_the_samples_asked_for() {
        let (mut enc, mut dec) = codec(8000);
        let s = sine(8000, 440.0, 10000.0, 1600);
        for p in packets(&mut enc, &s, 160) {
            dec.decode(&p, &mut Vec::new()).unwrap();
        }
        for n in [160, 80, 480, 1, 7, 1000, 2000] {
            let mut out = vec![1; 3];
            dec.conceal(n, &mut out);
            assert_eq!(out.len(), 3 + n, "{n}");
        }
    }

    #[test]
    fn fec_beats_plc_on_a_lost_packet() {
        for rate in [8000, 16000, 48000] {
            let frame = rate as usize / 50;
            let s = test_signal(rate, rate as usize * 2, 3400.0);
            let config = OpusConfig { packet_loss_pct: 20, ..OpusConfig::default() };
            let mut enc = Encoder::new(rate, &config).unwrap();
            let ps = packets(&mut enc, &s, frame);
            // Loud (test_signal's envelope peaks at 0.54 s): libopus only adds FEC data for active speech.
            let lost = 27;
            let run = |fec: bool| {
                let mut dec = Decoder::new(rate).unwrap();
                let mut out = Vec::new();
                let mut used = false;
                for (i, p) in ps.iter().enumerate() {
                    if i == lost {
                        continue;
                    }
                    if i == lost + 1 {
                        if fec {
                            used = dec.decode_fec(p, frame, &mut out).unwrap();
                        } else {
                            dec.conceal(frame, &mut out);
                        }
                    }
                    dec.decode(p, &mut out).unwrap();
                }
                (out, used)
            };
            let (with_fec, used) = run(true);
            let (with_plc, _) = run(false);
            assert!(used, "{rate}: the packet after the loss carries FEC");
            assert_eq!(with_fec.len(), s.len());
            // Align on the audio before the loss, then compare the lost span.
            let (_, lag) = best_correlation(&with_fec[..lost * frame], &s[..lost * frame], frame / 2);
            let span = lost * frame..(lost + 1) * frame;
            let c_fec = correlation_at(&with_fec[span.clone()], &s[span.clone()], lag);
            let c_plc = correlation_at(&with_plc[span.clone()], &s[span.clone()], lag);
            assert!(c_fec > c_plc && c_fec > 0.5, "{rate}: FEC {c_fec}, PLC {c_plc}");
        }
    }

    #[test]
    fn without_fec_data_decode_fec_conceals() {
        let config = OpusConfig { inband_fec: false, ..OpusConfig::default() };
        let mut enc = Encoder::new(8000, &config).unwrap();
        let ps = packets(&mut enc, &sine(8000, 440.0, 10000.0, 1600), 160);
        let mut dec = Decoder::new(8000).unwrap();
        dec.decode(&ps[0], &mut Vec::new()).unwrap();
        let mut out = Vec::new();
        assert_eq!(dec.decode_fec(&ps[2], 160, &mut out), Ok(false));
        assert_eq!(out.len(), 160);
        // Spans libopus cannot recover in are concealed too.
        assert_eq!(dec.decode_fec(&ps[2], 150, &mut out), Ok(false));
        assert_eq!(out.len(), 310);
    }

    #[test]
    fn config_reaches_the_encoder() {
        let config = OpusConfig {
            complexity: 10,
            inband_fec: false,
            max_playback_rate: Some(8000),
            bitrate: Some(12000),
            packet_loss_pct: 0,
        };
        let mut enc = Encoder::new(48000, &config).unwrap();
        assert_eq!(enc.inner.get_complexity().unwrap(), 10);
        assert!(!enc.inner.get_inband_fec().unwrap());
        assert_eq!(enc.inner.get_bitrate().unwrap(), Bitrate::Bits(12000));
        assert_eq!(enc.inner.get_max_bandwidth().unwrap(), Bandwidth::Narrowband);
        assert!(!enc.inner.get_dtx().unwrap());
        let mut p = Vec::new();
        enc.encode(&sine(48000, 440.0, 8000.0, 960), &mut p).unwrap();
        assert_eq!(::opus::packet::get_bandwidth(&p).unwrap(), Bandwidth::Narrowband);
        let mut enc = Encoder::new(48000, &OpusConfig::default()).unwrap();
        assert_eq!(enc.inner.get_complexity().unwrap(), 5);
    }

    #[test]
    fn bad_rates_and_corrupt_payloads_are_errors() {
        assert!(matches!(Encoder::new(44100, &OpusConfig::default()), Err(CodecError::UnsupportedRate { .. })));
        assert!(matches!(Decoder::new(11025), Err(CodecError::UnsupportedRate { .. })));
        let mut dec = Decoder::new(8000).unwrap();
        let mut out = vec![7];
        assert_eq!(dec.decode(&[], &mut out), Err(CodecError::CorruptPayload { codec: CodecKind::Opus, len: 0 }));
        // TOC code 3 (RFC 6716 §3.2.5) with a frame count of 0 is invalid.
        assert!(dec.decode(&[0x03, 0x00], &mut out).is_err());
        assert_eq!(out, vec![7]);
    }

    proptest::proptest! {
        #[test]
        fn any_payload_decodes_or_fails_cleanly(payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut dec = Decoder::new(8000).unwrap();
            let mut out = Vec::new();
            match dec.decode(&payload, &mut out) {
                Ok(()) => proptest::prop_assert!(out.len() <= 960),
                Err(_) => proptest::prop_assert!(out.is_empty()),
            }
            let _ = dec.decode_fec(&payload, 160, &mut out);
        }
    }
}
