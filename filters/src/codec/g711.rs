//! G.711 µ-law and A-law (ITU-T G.711), table-driven and bit-exact with the ITU-T G.191 STL
//! reference (`g711.c`: `ulaw_compress`, `ulaw_expand`, `alaw_compress`, `alaw_expand`).
//!
//! Written by hand: no maintained crate offers table-driven G.711 without pulling in a media framework.
//! Encoding looks up a table indexed by the top 14 (µ-law) or 13 (A-law) bits of the sample; decoding
//! looks up a 256-entry table. The tables are built at compile time from the STL formulas below.

use super::plc::Plc;
use super::{AudioDecoder, AudioEncoder, CodecError, CodecKind};

/// Which companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// µ-law (PCMU, North America and Japan).
    Mu,
    /// A-law (PCMA, elsewhere).
    A,
}

/// µ-law encoding of a 16-bit sample.
#[inline]
pub fn ulaw_encode(x: i16) -> u8 {
    ULAW_ENC[((x >> 2) as i32 + 8192) as usize]
}

/// A-law encoding of a 16-bit sample.
#[inline]
pub fn alaw_encode(x: i16) -> u8 {
    ALAW_ENC[((x >> 3) as i32 + 4096) as usize]
}

/// µ-law code to 16-bit linear.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DEC[code as usize]
}

/// A-law code to 16-bit linear.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DEC[code as usize]
}

/// Encode a block, appending to `out`.
pub fn encode(law: Law, pcm: &[i16], out: &mut Vec<u8>) {
    match law {
        Law::Mu => out.extend(pcm.iter().map(|&x| ulaw_encode(x))),
        Law::A => out.extend(pcm.iter().map(|&x| alaw_encode(x))),
    }
}

/// Decode a block, appending to `out`.
pub fn decode(law: Law, codes: &[u8], out: &mut Vec<i16>) {
    match law {
        Law::Mu => out.extend(codes.iter().map(|&c| ulaw_decode(c))),
        Law::A => out.extend(codes.iter().map(|&c| alaw_decode(c))),
    }
}

/// G.711 as an [`AudioEncoder`].
#[derive(Debug, Clone)]
pub struct Encoder {
    law: Law,
}

impl Encoder {
    pub fn new(law: Law) -> Self {
        Self { law }
    }
}

impl AudioEncoder for Encoder {
    fn kind(&self) -> CodecKind {
        match self.law {
            Law::Mu => CodecKind::Pcmu,
            Law::A => CodecKind::Pcma,
        }
    }

    fn pcm_rate(&self) -> u32 {
        8000
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode(self.law, pcm, out);
        Ok(())
    }
}

/// G.711 as an [`AudioDecoder`], concealing losses after G.711 Appendix I ([`Plc`]).
#[derive(Debug, Clone)]
pub struct Decoder {
    law: Law,
    plc: Plc,
}

impl Decoder {
    pub fn new(law: Law) -> Self {
        Self { law, plc: Plc::new(8000) }
    }
}

impl AudioDecoder for Decoder {
    fn kind(&self) -> CodecKind {
        match self.law {
            Law::Mu => CodecKind::Pcmu,
            Law::A => CodecKind::Pcma,
        }
    }

    fn pcm_rate(&self) -> u32 {
        8000
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let start = out.len();
        decode(self.law, payload, out);
        self.plc.good(&mut out[start..]);
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.plc.conceal(samples, out);
    }
}

// STL `ulaw_compress` for one sample whose low 2 bits are zero (the table index loses them).
const fn ulaw_compress(x: i16) -> u8 {
    let mut absno: i32 = if x < 0 { ((!x) as i32 >> 2) + 33 } else { (x as i32 >> 2) + 33 };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high = 0x8 - segno;
    let low = 0xF - ((absno >> segno) & 0xF);
    let mut y = (high << 4) | low;
    if x >= 0 {
        y |= 0x80;
    }
    y as u8
}

// STL `ulaw_expand`.
const fn ulaw_expand(code: u8) -> i16 {
    let sign: i32 = if code < 0x80 { -1 } else { 1 };
    let mantissa = !(code as i32);
    let exponent = (mantissa >> 4) & 0x7;
    let segment = exponent + 1;
    let mantissa = mantissa & 0xF;
    let step = 4 << segment;
    (sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

// STL `alaw_compress`.
const fn alaw_compress(x: i16) -> u8 {
    let mut ix: i32 = if x < 0 { (!x) as i32 >> 4 } else { x as i32 >> 4 };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if x >= 0 {
        ix |= 0x80;
    }
    (ix ^ 0x55) as u8
}

// STL `alaw_expand`.
const fn alaw_expand(code: u8) -> i16 {
    let ix = (code as i32 ^ 0x55) & 0x7F;
    let iexp = ix >> 4;
    let mut mant = ix & 0xF;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 0x8;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    (if code > 127 { mant } else { -mant }) as i16
}

static ULAW_ENC: [u8; 16384] = {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        // Index i holds samples (i - 8192) << 2 ..= that + 3; the STL ignores those two low bits.
        t[i] = ulaw_compress(((i as i32 - 8192) << 2) as i16);
        i += 1;
    }
    t
};

static ALAW_ENC: [u8; 8192] = {
    let mut t = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        t[i] = alaw_compress(((i as i32 - 4096) << 3) as i16);
        i += 1;
    }
    t
};

static ULAW_DEC: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_expand(i as u8);
        i += 1;
    }
    t
};

static ALAW_DEC: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_expand(i as u8);
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    // Sun Microsystems' g711.c (CCITT formulation with segment search), used by sox and many PBXs; an
    // independent derivation to check the tables against. It differs from the STL only in how it takes
    // the magnitude of negative µ-law samples (two's vs ones' complement), handled below.
    fn sun_linear2ulaw(pcm: i16) -> u8 {
        const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
        let mut v = (pcm as i32) >> 2;
        let mask = if v < 0 {
            v = -v;
            0x7F
        } else {
            0xFF
        };
        v = v.min(8159) + (0x84 >> 2);
        let seg = SEG_UEND.iter().position(|&e| v <= e).unwrap_or(8) as i32;
        if seg >= 8 {
            return (0x7F ^ mask) as u8;
        }
        (((seg << 4) | ((v >> (seg + 1)) & 0xF)) ^ mask) as u8
    }

    fn sun_linear2alaw(pcm: i16) -> u8 {
        const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
        let mut v = (pcm as i32) >> 3;
        let mask = if v >= 0 {
            0xD5
        } else {
            v = -v - 1;
            0x55
        };
        let seg = SEG_AEND.iter().position(|&e| v <= e).unwrap_or(8) as i32;
        if seg >= 8 {
            return (0x7F ^ mask) as u8;
        }
        let q = if seg < 2 { (v >> 1) & 0xF } else { (v >> seg) & 0xF };
        (((seg << 4) | q) ^ mask) as u8
    }

    fn sun_ulaw2linear(u: u8) -> i16 {
        let u = !u as i32;
        let t = (((u & 0xF) << 3) + 0x84) << ((u & 0x70) >> 4);
        (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
    }

    fn sun_alaw2linear(a: u8) -> i16 {
        let a = (a ^ 0x55) as i32;
        let mut t = (a & 0xF) << 4;
        let seg = (a & 0x70) >> 4;
        match seg {
            0 => t += 8,
            1 => t += 0x108,
            _ => {
                t += 0x108;
                t <<= seg - 1;
            }
        }
        (if a & 0x80 != 0 { t } else { -t }) as i16
    }

    #[test]
    fn ulaw_encode_matches_reference_for_every_sample() {
        for x in i16::MIN..=i16::MAX {
            // The STL takes the magnitude of a negative sample as !x (ones' complement), Sun as
            // -(x >> 2): feed Sun the sample whose magnitude equals the STL's. For -4 < x < 0 that
            // magnitude is 0, which the STL encodes as negative zero (0x7F) and Sun as positive (0xFF).
            if x < 0 {
                let m = (!x) & !3;
                let expected = if m == 0 { 0x7F } else { sun_linear2ulaw(-m) };
                assert_eq!(ulaw_encode(x), expected, "x = {x}");
            } else {
                assert_eq!(ulaw_encode(x), sun_linear2ulaw(x), "x = {x}");
            }
            assert_eq!(ulaw_encode(x), ulaw_compress(x), "x = {x}");
        }
    }

    #[test]
    fn alaw_encode_matches_reference_for_every_sample() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(alaw_encode(x), sun_linear2alaw(x), "x = {x}");
            assert_eq!(alaw_encode(x), alaw_compress(x), "x = {x}");
        }
    }

    #[test]
    fn decode_matches_reference_for_every_code() {
        for c in 0..=255u8 {
            assert_eq!(ulaw_decode(c), sun_ulaw2linear(c), "µ code {c:#04x}");
            assert_eq!(alaw_decode(c), sun_alaw2linear(c), "A code {c:#04x}");
        }
    }

    #[test]
    fn itu_anchor_values() {
        // G.711 tables 1 and 2: zero input encodes to 0xFF (µ) and 0xD5 (A, even bits inverted).
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn decode_then_encode_is_identity_except_negative_zero() {
        for c in 0..=255u8 {
            let mu = ulaw_encode(ulaw_decode(c));
            // µ-law has two zeros (0x7F and 0xFF); both decode to 0, which encodes as +0.
            assert!(mu == c || (c == 0x7F && mu == 0xFF), "µ code {c:#04x} -> {mu:#04x}");
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A code {c:#04x}");
        }
    }

    #[test]
    fn quantisation_error_is_within_half_a_step() {
        for x in i16::MIN..=i16::MAX {
            let e = (ulaw_decode(ulaw_encode(x)) as i32 - x as i32).abs();
            // The largest µ-law step is 1024 (segment 7); clipping above 32124 adds up to 643.
            assert!(e <= 1024 / 2 + 4 || x.unsigned_abs() > 32124 - 512, "µ x={x} e={e}");
            let e = (alaw_decode(alaw_encode(x)) as i32 - x as i32).abs();
            assert!(e <= 1024 / 2 + 8, "A x={x} e={e}");
        }
    }
}
