//! Packet-loss concealment for the sample codecs (G.711, and G.722 on its 16 kHz output), after ITU-T
//! G.711 Appendix I: pitch-period waveform substitution with overlap-add.
//!
//! Our own code: no crate offers it (the ITU reference `lowcfe.c` and SpanDSP's `plc.c` are C inside
//! larger libraries), and it is small. As in Appendix I:
//! - the pitch is found by normalised cross-correlation of the last 20 ms against the history at lags
//!   of 5..15 ms (a coarse search on every 2nd sample at 8 kHz, then a fine search around the best);
//! - the lost audio repeats the last pitch period, whose last quarter is cross-faded with the quarter
//!   before the period so the loop joins smoothly; after 10 ms it repeats 2 periods, after 20 ms 3
//!   (less buzzy), each switch cross-faded over a quarter period;
//! - from 10 ms on it fades by 20 % per 10 ms, so it is silent after 60 ms;
//! - the first real audio after a loss is cross-faded from the continued synthetic signal over a
//!   quarter period plus 4 ms per 10 ms lost (at most 10 ms).
//!
//! One difference: Appendix I delays its output by 3.75 ms so that the start of a loss can be
//! cross-faded into real audio not yet played. We add no delay (decoding stays bit-exact while nothing
//! is lost); instead the step between the last sample played and the sample before the repeated
//! period is faded out over the first quarter period, which keeps the waveform continuous.
//! All lengths are Appendix I's 8 kHz values scaled to the rate.

/// Appendix I's constants at 8 kHz (samples).
const PITCH_MIN: usize = 40; // 200 Hz
const PITCH_MAX: usize = 120; // 66.7 Hz
const CORR_LEN: usize = 160; // 20 ms
const FRAME: usize = 80; // 10 ms: attenuation and period-growth steps
const END_OVERLAP_INCR: usize = 32; // 4 ms more end overlap per 10 ms lost
const NDEC: usize = 2; // decimation of the coarse pitch search
/// Attenuation per 10 ms after the first 10 ms of a loss.
const ATTEN_PER_FRAME: f32 = 0.2;
/// The most periods the loop repeats.
const MAX_PERIODS: usize = 3;
/// Frames (10 ms) after which concealment is silence.
const SILENT_AFTER_FRAMES: usize = 6;
/// Energy floor of the pitch search's normaliser (Appendix I's CORRMINPOWER at 8 kHz, every 2nd sample).
const CORR_MIN_POWER: f32 = 250.0;

/// Concealment state of one decoder.
#[derive(Debug, Clone)]
pub struct Plc {
    pitch_min: usize,
    pitch_max: usize,
    corr_len: usize,
    frame: usize,
    end_overlap_incr: usize,
    ndec: usize,
    /// The last output (real or concealed), oldest first: 3 longest periods and a quarter.
    history: Vec<i16>,
    /// Samples concealed in the loss under way; 0 when none is.
    erased: usize,
    pitch: usize,
    /// A quarter of the pitch period.
    overlap: usize,
    periods: usize,
    /// The history at the start of the loss, with its tail cross-faded for the current loop.
    buf: Vec<f32>,
    /// The original last `overlap` samples of `buf`.
    tail: Vec<f32>,
    /// Read position in the loop (`periods × pitch` samples ending at the end of `buf`).
    offset: usize,
    /// A signal to fade out of while the synthetic one fades in (start of a loss, period switches).
    fade: Vec<f32>,
    fade_pos: usize,
}

impl Plc {
    /// A concealer for audio at `rate` Hz (clamped to 8..48 kHz).
    pub fn new(rate: u32) -> Self {
        let rate = rate.clamp(8000, 48000) as usize;
        let scale = |n: usize| n * rate / 8000;
        let pitch_max = scale(PITCH_MAX);
        let history_len = MAX_PERIODS * pitch_max + pitch_max / 4;
        Self {
            pitch_min: scale(PITCH_MIN),
            pitch_max,
            corr_len: scale(CORR_LEN),
            frame: scale(FRAME),
            end_overlap_incr: scale(END_OVERLAP_INCR),
            ndec: scale(NDEC),
            history: vec![0; history_len],
            erased: 0,
            pitch: pitch_max,
            overlap: pitch_max / 4,
            periods: 1,
            buf: Vec::new(),
            tail: Vec::new(),
            offset: 0,
            fade: Vec::new(),
            fade_pos: 0,
        }
    }

    /// Whether a loss is being concealed (the next real audio will be cross-faded in).
    pub fn concealing(&self) -> bool {
        self.erased > 0
    }

    /// Real audio just decoded: after a loss its start is cross-faded from the synthetic signal (in
    /// place); it then becomes the history concealment works from.
    pub fn good(&mut self, samples: &mut [i16]) {
        if self.erased > 0 {
            let frames = self.erased.div_ceil(self.frame);
            let len = (self.overlap + (frames - 1) * self.end_overlap_incr).min(self.frame).min(samples.len());
            for (i, s) in samples[..len].iter_mut().enumerate() {
                let synthetic = self.synthetic(self.erased + i);
                let w = (i + 1) as f32 / (len + 1) as f32;
                *s = to_i16(synthetic * (1.0 - w) + f32::from(*s) * w);
            }
            self.erased = 0;
        }
        self.remember(samples);
    }

    /// Append `n` samples standing in for lost audio.
    pub fn conceal(&mut self, n: usize, out: &mut Vec<i16>) {
        if n == 0 {
            return;
        }
        if self.erased == 0 {
            self.start();
        }
        let start = out.len();
        out.reserve(n);
        for _ in 0..n {
            let e = self.erased;
            if e > 0
                && e.is_multiple_of(self.frame)
                && e / self.frame < MAX_PERIODS
                && e < SILENT_AFTER_FRAMES * self.frame
            {
                self.add_period();
            }
            let v = self.synthetic(e);
            out.push(to_i16(v));
            self.erased += 1;
        }
        let (history, concealed) = (&mut self.history, &out[start..]);
        remember(history, concealed);
    }

    /// The synthetic sample at position `e` of the loss, attenuated (advances the loop).
    fn synthetic(&mut self, e: usize) -> f32 {
        if e >= SILENT_AFTER_FRAMES * self.frame {
            return 0.0;
        }
        let mut v = self.next_loop_sample();
        if self.fade_pos < self.fade.len() {
            let w = (self.fade_pos + 1) as f32 / (self.fade.len() + 1) as f32;
            v = self.fade[self.fade_pos] * (1.0 - w) + v * w;
            self.fade_pos += 1;
        }
        v * self.gain(e)
    }

    /// 1 for the first 10 ms, then down 20 % per 10 ms to 0 at 60 ms (Appendix I `scalespeech`).
    fn gain(&self, e: usize) -> f32 {
        if e < self.frame {
            return 1.0;
        }
        (1.0 - ATTEN_PER_FRAME * (e - self.frame) as f32 / self.frame as f32).max(0.0)
    }

    /// The start of a loss: find the pitch, set up a one-period loop. The loop starts one period back,
    /// so the sample before it should equal the last one played; the difference is faded out over a
    /// quarter period (0 for a steady periodic signal).
    fn start(&mut self) {
        self.buf.clear();
        self.buf.extend(self.history.iter().map(|&s| f32::from(s)));
        self.pitch = self.find_pitch();
        self.overlap = (self.pitch / 4).max(1);
        let end = self.buf.len();
        self.tail.clear();
        self.tail.extend_from_slice(&self.buf[end - self.overlap..]);
        self.periods = 1;
        self.offset = 0;
        let jump = self.buf[end - 1] - self.buf[end - self.pitch - 1];
        self.join_loop();
        // As a signal to fade out of: the loop's start plus the jump.
        self.fade.clear();
        for i in 0..self.overlap {
            self.fade.push(self.buf[end - self.pitch + i] + jump);
        }
        self.fade_pos = 0;
    }

    /// Cross-fade the loop's last quarter period from the original tail into the quarter period just
    /// before the loop, so that its end runs into its start (Appendix I `overlapadd` on `pitchbuf`).
    fn join_loop(&mut self) {
        let end = self.buf.len();
        let loop_start = end - self.periods * self.pitch;
        let ov = self.overlap;
        for i in 0..ov {
            let w = (i + 1) as f32 / (ov + 1) as f32;
            self.buf[end - ov + i] = self.tail[i] * (1.0 - w) + self.buf[loop_start - ov + i] * w;
        }
    }

    /// At 10 and 20 ms into a loss: loop one period more, at the same phase, fading over a quarter
    /// period from the old loop to the new one.
    fn add_period(&mut self) {
        if self.periods >= MAX_PERIODS {
            return;
        }
        let saved = self.offset;
        let mut old = std::mem::take(&mut self.fade);
        old.clear();
        for _ in 0..self.overlap {
            old.push(self.next_loop_sample());
        }
        self.offset = saved % self.pitch;
        self.periods += 1;
        self.join_loop();
        self.fade = old;
        self.fade_pos = 0;
    }

    fn next_loop_sample(&mut self) -> f32 {
        let len = self.periods * self.pitch;
        let v = self.buf[self.buf.len() - len + self.offset];
        self.offset += 1;
        if self.offset == len {
            self.offset = 0;
        }
        v
    }

    /// The lag in `pitch_min..=pitch_max` whose history best matches the last `corr_len` samples,
    /// by correlation normalised by the lagged energy (Appendix I `findpitch`). Appendix I searches
    /// every 2nd lag on every 2nd sample, then refines; that can settle on a poor multiple of a short
    /// period (a 440 Hz tone), so here every lag is tried on every 2nd sample, then the best ±1 on
    /// every sample.
    fn find_pitch(&self) -> usize {
        let x = &self.buf;
        let end = x.len();
        let target = end - self.corr_len;
        let score = |lag: usize, step: usize| {
            let (mut corr, mut energy) = (0.0f32, 0.0f32);
            for i in (0..self.corr_len).step_by(step) {
                let a = x[target + i];
                let b = x[target + i - lag];
                corr += a * b;
                energy += b * b;
            }
            corr / energy.max(CORR_MIN_POWER * (self.ndec / step) as f32).sqrt()
        };
        // Longest lag first with `>=`, so ties go to the shorter period, as in Appendix I.
        let best_of = |lags: &mut dyn Iterator<Item = usize>, step: usize| {
            let mut best = (f32::MIN, self.pitch_max);
            for lag in lags {
                let s = score(lag, step);
                if s >= best.0 {
                    best = (s, lag);
                }
            }
            best.1
        };
        let coarse = best_of(&mut (self.pitch_min..=self.pitch_max).rev(), self.ndec);
        let lo = coarse.saturating_sub(1).max(self.pitch_min);
        let hi = (coarse + 1).min(self.pitch_max);
        best_of(&mut (lo..=hi).rev(), 1)
    }

    fn remember(&mut self, samples: &[i16]) {
        remember(&mut self.history, samples);
    }
}

/// Shift `samples` into the end of `history`.
fn remember(history: &mut [i16], samples: &[i16]) {
    let h = history.len();
    if samples.len() >= h {
        history.copy_from_slice(&samples[samples.len() - h..]);
    } else {
        history.copy_within(samples.len().., 0);
        history[h - samples.len()..].copy_from_slice(samples);
    }
}

fn to_i16(v: f32) -> i16 {
    v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{correlation_at, goertzel_ratio, rms_level, sine, test_signal};

    /// Feed `signal` in 20 ms packets, losing those in `lost`; returns the output.
    fn run(rate: u32, signal: &[i16], lost: &[usize]) -> Vec<i16> {
        let mut plc = Plc::new(rate);
        let packet = rate as usize / 50;
        let mut out = Vec::new();
        for (i, chunk) in signal.chunks(packet).enumerate() {
            if lost.contains(&i) {
                plc.conceal(chunk.len(), &mut out);
            } else {
                let start = out.len();
                out.extend_from_slice(chunk);
                plc.good(&mut out[start..]);
            }
        }
        out
    }

    #[test]
    fn nothing_changes_without_loss() {
        let s = test_signal(8000, 4000, 3400.0);
        assert_eq!(run(8000, &s, &[]), s);
    }

    #[test]
    fn a_lost_packet_of_a_steady_tone_is_the_tone() {
        for rate in [8000, 16000] {
            let s = sine(rate, 440.0, 10000.0, rate as usize);
            let out = run(rate, &s, &[10]);
            assert_eq!(out.len(), s.len());
            let p = rate as usize / 50;
            let lost = &out[10 * p..11 * p];
            assert!(goertzel_ratio(lost, rate, 440.0) > 0.9, "{rate}: {}", goertzel_ratio(lost, rate, 440.0));
            let c = correlation_at(lost, &s[10 * p..11 * p], 0);
            assert!(c > 0.9, "{rate}: correlation {c}");
            // Zeros would correlate 0; the level is kept (no fade in the first 10 ms, 10 % at most after).
            let level = rms_level(lost) / rms_level(&s[10 * p..11 * p]);
            assert!(level > 0.85 && level < 1.05, "{rate}: level {level}");
        }
    }

    #[test]
    fn a_lost_packet_of_speech_like_audio_beats_silence() {
        let s = test_signal(8000, 8000, 3400.0);
        let out = run(8000, &s, &[20]);
        let c = correlation_at(&out[3200..3360], &s[3200..3360], 0);
        assert!(c > 0.5, "correlation {c}");
    }

    #[test]
    fn long_losses_fade_to_silence() {
        let rate = 8000;
        let s = sine(rate, 300.0, 10000.0, 16000);
        let mut plc = Plc::new(rate);
        let mut out = s[..800].to_vec();
        plc.good(&mut out);
        let mut lost = Vec::new();
        plc.conceal(800, &mut lost); // 100 ms in one go
        let level = |ms: usize| rms_level(&lost[ms * 8..(ms + 10) * 8]);
        assert!(level(0) > 6000.0, "first 10 ms at full level: {}", level(0));
        assert!(level(20) < level(10) && level(30) < level(20) && level(40) < level(30));
        assert!(lost[480..].iter().all(|&x| x == 0), "silent after 60 ms");
        // Concealing in 20 ms pieces gives the same.
        let mut plc = Plc::new(rate);
        plc.good(&mut s[..800].to_vec());
        let mut pieces = Vec::new();
        for _ in 0..5 {
            plc.conceal(160, &mut pieces);
        }
        assert_eq!(pieces, lost);
    }

    #[test]
    fn the_return_to_real_audio_is_smoothed() {
        let rate = 8000;
        // A tone whose phase jumps during the loss: the real audio after it does not continue the
        // synthetic waveform, so without the cross-fade there would be a step.
        let a = sine(rate, 440.0, 10000.0, 1600);
        let b: Vec<i16> = sine(rate, 440.0, 10000.0, 1700)[100..].to_vec();
        let mut plc = Plc::new(rate);
        plc.good(&mut a[..800].to_vec());
        let mut out = Vec::new();
        plc.conceal(160, &mut out);
        let mut next = b[..160].to_vec();
        let before = *out.last().unwrap_or(&0);
        let raw_step = (i32::from(next[0]) - i32::from(before)).abs();
        plc.good(&mut next);
        let step = (i32::from(next[0]) - i32::from(before)).abs();
        // A 440 Hz tone at 10000 moves at most 2π·440/8000·10000 ≈ 3456 per sample.
        assert!(step < 3500, "step {step} (raw {raw_step})");
        // After the overlap the real audio is untouched.
        assert_eq!(next[80..], b[80..160]);
        assert!(!plc.concealing());
    }

    #[test]
    fn silence_before_a_loss_is_silence() {
        let mut plc = Plc::new(16000);
        let mut out = Vec::new();
        plc.conceal(320, &mut out);
        assert_eq!(out, vec![0; 320]);
        let mut next = vec![1000; 320];
        plc.good(&mut next);
        assert!(next[0] < 100 && next[319] == 1000, "fades in from silence");
    }

    #[test]
    fn odd_sizes_and_rates_do_not_panic() {
        for rate in [0, 1, 8000, 12345, 16000, 48000, 96000] {
            let mut plc = Plc::new(rate);
            let mut out = Vec::new();
            for n in [0, 1, 7, 79, 80, 81, 1000, 30000] {
                plc.conceal(n, &mut out);
                let mut real = vec![i16::MAX; n / 3];
                plc.good(&mut real);
                let mut real = vec![i16::MIN; 1];
                plc.good(&mut real);
            }
        }
    }
}
