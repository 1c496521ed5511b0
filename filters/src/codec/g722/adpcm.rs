//! The G.722 codec proper at 64 kbit/s (mode 1): transmit and receive QMF (ITU-T G.722 §2.4, §4.4) and
//! the lower (6-bit) and higher (2-bit) sub-band ADPCM coders (§3, §4), one octet per two 16 kHz
//! samples, higher-band bits on top (§1.4.4).
//!
//! A port of SpanDSP's `g722_encode.c`/`g722_decode.c` (Steve Underwood, placed in the public domain;
//! based on the CMU 1993 codec, free to use) by way of the Rust translation in `ezk-g722` 0.1.2 (MIT,
//! kbalt), kept to the 64 kbit/s, 16 kHz, unpacked path we use and allocation-free. It restores the
//! reset state that translation lost: DETL = 32 and DETH = 8 (G.722 §3.6.3 RESET; SpanDSP's
//! `g722_*_init`). Without it the first samples of every call are coded with a zero step size and the
//! output differs from other implementations for the first ~250 ms (compared with ffmpeg's independent
//! codec in `codec::g722` tests; with the reset both directions match ffmpeg bit for bit).
//! The block names in comments are those of G.722 §3 and §4.

/// QMF coefficients (G.722 table 11), h0..h11; the filter is symmetric.
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
/// Logarithmic scale factor multipliers (G.722 table 14: WL; table 16: WH).
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const WH: [i32; 3] = [0, -214, 798];
/// 4-bit lower-band quantiser index to WL index (table 14).
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// 2-bit higher-band index to WH index (table 16).
const RH2: [i32; 4] = [2, 1, 2, 1];
/// Inverse log base 2 table (table 15, ILB).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025,
    3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Inverse quantiser outputs: 4-bit lower band (table 7, QM4), 6-bit lower band (table 6, QM6), 2-bit
/// higher band (table 9, QM2).
const QM4: [i32; 16] =
    [0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0];
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576,
    -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040,
    -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
    4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// Lower-band quantiser decision levels (table 5, Q6) and output codes for negative and positive
/// differences (ILN, ILP).
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339,
    1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,
    4, 0,
];
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34,
    33, 32, 0,
];
/// Higher-band output codes (table 8).
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];

fn saturate(x: i32) -> i32 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// The adaptive predictor and scale factor state of one sub-band.
#[derive(Debug, Clone, Default)]
struct Band {
    s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    sg: [i32; 7],
    nb: i32,
    det: i32,
}

impl Band {
    /// The reset state (G.722 §3.6.3): everything 0 but the scale factor.
    fn reset(det: i32) -> Self {
        Self { det, ..Self::default() }
    }

    /// Blocks 3L/3H LOGSCL/LOGSCH and SCALEL/SCALEH: adapt the log scale factor by `w`, limit it to
    /// `max`, and derive the linear one (`shift` is 8 for the lower band, 10 for the higher).
    fn scale(&mut self, w: i32, max: i32, shift: i32) {
        self.nb = (((self.nb * 127) >> 7) + w).clamp(0, max);
        let wd1 = ILB[((self.nb >> 6) & 31) as usize];
        let wd2 = shift - (self.nb >> 11);
        let wd3 = if wd2 < 0 { wd1 << -wd2 } else { wd1 >> wd2 };
        self.det = wd3 << 2;
    }

    /// Block 4: reconstruction and pole/zero predictor adaptation for a quantised difference `d`.
    fn predict(&mut self, d: i32) {
        // RECONS, PARREC
        self.d[0] = d;
        self.r[0] = saturate(self.s + d);
        self.p[0] = saturate(self.sz + d);

        // UPPOL2
        for i in 0..3 {
            self.sg[i] = self.p[i] >> 15;
        }
        let wd1 = saturate(self.a[1] << 2);
        let wd2 = (if self.sg[0] == self.sg[1] { -wd1 } else { wd1 }).min(32767);
        let mut wd3 = (wd2 >> 7) + if self.sg[0] == self.sg[2] { 128 } else { -128 };
        wd3 += (self.a[2] * 32512) >> 15;
        self.ap[2] = wd3.clamp(-12288, 12288);

        // UPPOL1
        self.sg[0] = self.p[0] >> 15;
        self.sg[1] = self.p[1] >> 15;
        let wd1 = if self.sg[0] == self.sg[1] { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        let limit = saturate(15360 - self.ap[2]);
        self.ap[1] = saturate(wd1 + wd2).clamp(-limit, limit);

        // UPZERO
        let wd1 = if d == 0 { 0 } else { 128 };
        self.sg[0] = d >> 15;
        for i in 1..7 {
            self.sg[i] = self.d[i] >> 15;
            let wd2 = if self.sg[i] == self.sg[0] { wd1 } else { -wd1 };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.bp[i] = saturate(wd2 + wd3);
        }

        // DELAYA
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }

        // FILTEP
        let wd1 = (self.a[1] * saturate(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * saturate(self.r[2] + self.r[2])) >> 15;
        self.sp = saturate(wd1 + wd2);

        // FILTEZ
        self.sz = 0;
        for i in (1..7).rev() {
            self.sz += (self.b[i] * saturate(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = saturate(self.sz);

        // PREDIC
        self.s = saturate(self.sp + self.sz);
    }
}

/// G.722 encoder state.
#[derive(Debug, Clone)]
pub struct Encoder {
    /// Transmit QMF delay line.
    x: [i32; 24],
    band: [Band; 2],
}

impl Default for Encoder {
    fn default() -> Self {
        Self { x: [0; 24], band: [Band::reset(32), Band::reset(8)] }
    }
}

impl Encoder {
    /// Encode pairs of 16 kHz samples, one octet per pair (a last odd sample is ignored).
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        out.reserve(pcm.len() / 2);
        for pair in pcm.chunks_exact(2) {
            // Transmit QMF (§2.4): shift in two samples, keep one output per band.
            self.x.copy_within(2.., 0);
            self.x[22] = i32::from(pair[0]);
            self.x[23] = i32::from(pair[1]);
            let (mut sumeven, mut sumodd) = (0, 0);
            for i in 0..12 {
                sumodd += self.x[2 * i] * QMF[i];
                sumeven += self.x[2 * i + 1] * QMF[11 - i];
            }
            let xlow = (sumeven + sumodd) >> 14;
            let xhigh = (sumeven - sumodd) >> 14;

            // Lower band. SUBTRA, QUANTL
            let low = &mut self.band[0];
            let el = saturate(xlow - low.s);
            let wd = if el >= 0 { el } else { -(el + 1) };
            let mut i = 1;
            while i < 30 && wd >= (Q6[i] * low.det) >> 12 {
                i += 1;
            }
            let ilow = if el < 0 { ILN[i] } else { ILP[i] };
            // INVQAL, LOGSCL, SCALEL, block 4
            let ril = (ilow >> 2) as usize;
            let dlow = (low.det * QM4[ril]) >> 15;
            low.scale(WL[RL42[ril] as usize], 18432, 8);
            low.predict(dlow);

            // Higher band. SUBTRA, QUANTH
            let high = &mut self.band[1];
            let eh = saturate(xhigh - high.s);
            let wd = if eh >= 0 { eh } else { -(eh + 1) };
            let mih = if wd >= (564 * high.det) >> 12 { 2 } else { 1 };
            let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
            // INVQAH, LOGSCH, SCALEH, block 4
            let dhigh = (high.det * QM2[ihigh as usize]) >> 15;
            high.scale(WH[RH2[ihigh as usize] as usize], 22528, 10);
            high.predict(dhigh);

            out.push(((ihigh << 6) | ilow) as u8);
        }
    }
}

/// G.722 decoder state (mode 1: all 6 lower-band bits used).
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Receive QMF delay line.
    x: [i32; 24],
    band: [Band; 2],
}

impl Default for Decoder {
    fn default() -> Self {
        Self { x: [0; 24], band: [Band::reset(32), Band::reset(8)] }
    }
}

impl Decoder {
    /// Decode octets, two 16 kHz samples each. Every octet is a valid code.
    pub fn decode(&mut self, codes: &[u8], out: &mut Vec<i16>) {
        out.reserve(codes.len() * 2);
        for &code in codes {
            let code = i32::from(code);
            let ilow = code & 0x3F;
            let ihigh = (code >> 6) & 0x3;

            // Lower band. INVQBL (6-bit), RECONS, LIMIT
            let low = &mut self.band[0];
            let rlow = (low.s + ((low.det * QM6[ilow as usize]) >> 15)).clamp(-16384, 16383);
            // INVQAL (4-bit, for adaptation), LOGSCL, SCALEL, block 4
            let ril = (ilow >> 2) as usize;
            let dlow = (low.det * QM4[ril]) >> 15;
            low.scale(WL[RL42[ril] as usize], 18432, 8);
            low.predict(dlow);

            // Higher band. INVQAH, RECONS, LIMIT, LOGSCH, SCALEH, block 4
            let high = &mut self.band[1];
            let dhigh = (high.det * QM2[ihigh as usize]) >> 15;
            let rhigh = (dhigh + high.s).clamp(-16384, 16383);
            high.scale(WH[RH2[ihigh as usize] as usize], 22528, 10);
            high.predict(dhigh);

            // Receive QMF (§4.4).
            self.x.copy_within(2.., 0);
            self.x[22] = rlow + rhigh;
            self.x[23] = rlow - rhigh;
            let (mut xout1, mut xout2) = (0, 0);
            for i in 0..12 {
                xout2 += self.x[2 * i] * QMF[i];
                xout1 += self.x[2 * i + 1] * QMF[11 - i];
            }
            out.push(saturate(xout1 >> 11) as i16);
            out.push(saturate(xout2 >> 11) as i16);
        }
    }
}
