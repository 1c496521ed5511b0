//! G.722 (ITU-T G.722, 64 kbit/s mode; RTP payload RFC 3551 §4.5.2): 16 kHz PCM, one byte per two
//! samples, so 20 ms is 320 samples and 160 bytes, and 160 RTP clock units (the clock says 8000).
//!
//! The codec is `adpcm.rs` (SpanDSP's G.722 in Rust, with the reset state `ezk-g722` 0.1.2 lost; see
//! there). Losses are concealed on the 16 kHz output with [`Plc`]; the ADPCM state simply goes on with
//! the next real packet.

mod adpcm;

use super::plc::Plc;
use super::{AudioDecoder, AudioEncoder, CodecError, CodecKind};

/// PCM rate of G.722.
pub const RATE: u32 = 16000;

/// G.722 as an [`AudioEncoder`].
#[derive(Debug, Clone)]
pub struct Encoder {
    inner: adpcm::Encoder,
}

impl Encoder {
    pub fn new() -> Self {
        Self { inner: adpcm::Encoder::default() }
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioEncoder for Encoder {
    fn kind(&self) -> CodecKind {
        CodecKind::G722
    }

    fn pcm_rate(&self) -> u32 {
        RATE
    }

    /// Any even number of samples (each octet codes a pair, G.722 §1.2).
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !pcm.len().is_multiple_of(2) {
            return Err(CodecError::BadFrameSize { codec: CodecKind::G722, samples: pcm.len(), rate: RATE });
        }
        self.inner.encode(pcm, out);
        Ok(())
    }
}

/// G.722 as an [`AudioDecoder`]: every octet is a valid code, so decoding cannot fail.
#[derive(Debug, Clone)]
pub struct Decoder {
    inner: adpcm::Decoder,
    plc: Plc,
}

impl Decoder {
    pub fn new() -> Self {
        Self { inner: adpcm::Decoder::default(), plc: Plc::new(RATE) }
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioDecoder for Decoder {
    fn kind(&self) -> CodecKind {
        CodecKind::G722
    }

    fn pcm_rate(&self) -> u32 {
        RATE
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let start = out.len();
        self.inner.decode(payload, out);
        self.plc.good(&mut out[start..]);
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.plc.conceal(samples, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{best_correlation, correlation_at, goertzel_ratio, read_wav, sine, test_signal};

    fn roundtrip(pcm: &[i16]) -> Vec<i16> {
        let (mut enc, mut dec) = (Encoder::new(), Decoder::new());
        let mut out = Vec::new();
        for chunk in pcm.chunks(320) {
            let mut payload = Vec::new();
            enc.encode(chunk, &mut payload).unwrap();
            assert_eq!(payload.len(), chunk.len() / 2);
            dec.decode(&payload, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn twenty_ms_is_160_bytes() {
        let mut payload = Vec::new();
        Encoder::new().encode(&[0; 320], &mut payload).unwrap();
        assert_eq!(payload.len(), 160);
        let mut pcm = Vec::new();
        Decoder::new().decode(&payload, &mut pcm).unwrap();
        assert_eq!(pcm.len(), 320);
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_shape() {
        for freq in [440.0, 1000.0, 3000.0, 6000.0] {
            let s = sine(RATE, freq, 10000.0, 16000);
            let out = roundtrip(&s);
            assert_eq!(out.len(), s.len());
            // Skip the start (the codec's filters settle); the QMF pair delays by 22 samples (a tone's
            // best lag is ambiguous by whole periods, so the delay is checked on broadband audio below).
            let c = correlation_at(&out[1600..], &s[1600..], 22);
            assert!(c >= 0.95, "{freq} Hz: correlation {c}");
            assert!(goertzel_ratio(&out[1600..], RATE, freq) > 0.9, "{freq} Hz");
        }
    }

    #[test]
    fn wideband_speech_like_audio_survives() {
        let s = test_signal(RATE, 32000, 7000.0);
        let out = roundtrip(&s);
        let (c, lag) = best_correlation(&out[1600..], &s[1600..], 40);
        assert!(c >= 0.95, "correlation {c}");
        assert_eq!(lag, 22);
    }

    #[test]
    fn odd_sample_counts_are_refused() {
        let mut payload = Vec::new();
        assert_eq!(
            Encoder::new().encode(&[0; 321], &mut payload),
            Err(CodecError::BadFrameSize { codec: CodecKind::G722, samples: 321, rate: RATE })
        );
        assert!(payload.is_empty());
    }

    #[test]
    fn a_lost_packet_is_concealed_at_16_khz() {
        let s = sine(RATE, 440.0, 10000.0, 16000);
        let (mut enc, mut dec) = (Encoder::new(), Decoder::new());
        let mut out = Vec::new();
        for (i, chunk) in s.chunks(320).enumerate() {
            let mut payload = Vec::new();
            enc.encode(chunk, &mut payload).unwrap();
            if i == 20 {
                dec.conceal(320, &mut out);
            } else {
                dec.decode(&payload, &mut out).unwrap();
            }
        }
        assert_eq!(out.len(), s.len());
        let lost = &out[20 * 320..21 * 320];
        assert!(goertzel_ratio(lost, RATE, 440.0) > 0.9);
    }

    /// ffmpeg's G.722 (libavcodec's own implementation, independent of SpanDSP's) on 1 s of wideband
    /// audio: its encoding and decoding are in `tests/fixtures` (see the README there for the commands).
    /// Both directions match bit for bit, from the first sample (which needs the G.722 reset state).
    #[test]
    fn matches_ffmpeg_bit_for_bit() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let (rate, input) = read_wav(&dir.join("g722_input_16k.wav")).unwrap();
        let coded = std::fs::read(dir.join("g722_ffmpeg.g722")).unwrap();
        let (_, decoded) = read_wav(&dir.join("g722_ffmpeg_decoded.wav")).unwrap();
        assert_eq!((rate, input.len(), coded.len(), decoded.len()), (RATE, 16000, 8000, 16000));

        let mut enc = Encoder::new();
        let mut ours = Vec::new();
        for packet in input.chunks(320) {
            enc.encode(packet, &mut ours).unwrap();
        }
        let first = ours.iter().zip(&coded).position(|(a, b)| a != b);
        assert_eq!(first, None, "encoder differs from ffmpeg");
        assert_eq!(ours.len(), coded.len());

        let mut dec = Decoder::new();
        let mut pcm = Vec::new();
        for packet in coded.chunks(160) {
            dec.decode(packet, &mut pcm).unwrap();
        }
        let first = pcm.iter().zip(&decoded).position(|(a, b)| a != b);
        assert_eq!(first, None, "decoder differs from ffmpeg");
        assert_eq!(pcm.len(), decoded.len());
    }

    #[test]
    fn full_scale_input_and_any_code_stay_in_range() {
        // Square waves at full scale, at several periods, drive every saturation in the codec
        // (overflow would panic in this debug build).
        let mut enc = Encoder::new();
        let mut dec = Decoder::new();
        for half in [1, 2, 3, 8, 40] {
            let pcm: Vec<i16> = (0..3200).map(|i| if (i / half) % 2 == 0 { i16::MAX } else { i16::MIN }).collect();
            let mut bytes = Vec::new();
            enc.encode(&pcm, &mut bytes).unwrap();
            dec.decode(&bytes, &mut Vec::new()).unwrap();
        }
        let all: Vec<u8> = (0..=255).cycle().take(8000).collect();
        dec.decode(&all, &mut Vec::new()).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn any_input_codes_without_panicking(
            pcm in proptest::collection::vec(proptest::prelude::any::<i16>(), 0..400),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let mut enc = Encoder::new();
            let mut bytes = Vec::new();
            let even = pcm.len() & !1;
            enc.encode(&pcm[..even], &mut bytes).unwrap();
            let mut dec = Decoder::new();
            let mut out = Vec::new();
            dec.decode(&payload, &mut out).unwrap();
            dec.decode(&bytes, &mut out).unwrap();
            proptest::prop_assert_eq!(out.len(), 2 * (payload.len() + bytes.len()));
        }
    }
}
