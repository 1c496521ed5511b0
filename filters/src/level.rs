//! Signal and noise level of received audio, for RFC 3611 §4.7.4 (VoIP metrics) and RFC 6035 `Signal:`.
//!
//! Each decoded packet is one frame. A frame above [`SPEECH_THRESHOLD_DBM0`] is speech and counts toward
//! the signal level, the others toward the noise level; each level is the energy average of its frames,
//! in dBm0. 0 dBm0 is the G.711 digital milliwatt: a sine 3.17 dB below a full-scale sine (ITU-T G.711
//! §3 and Table 5; G.168 uses the same reference), i.e. an RMS of 16 096 on a 16-bit scale.
//!
//! A fixed threshold rather than a VAD: it is what RFC 3611 §4.7.4 asks ("during talkspurts" vs
//! "during silence periods") for telephone speech, with no tuning to get wrong.

/// RMS of a 0 dBm0 signal on a 16-bit scale: 32767 / √2 / 10^(3.17/20).
pub(crate) const DBM0_RMS: f64 = 16_096.0;
/// Frames louder than this are talkspurts.
pub const SPEECH_THRESHOLD_DBM0: f64 = -45.0;
/// The mean square of a frame at [`SPEECH_THRESHOLD_DBM0`]: 16 096² × 10^(−45/10) (checked in the tests).
const SPEECH_MEAN_SQUARE: f64 = 8_192.867_415_260_585;
/// The quietest level reported (digital silence has no finite level).
pub const FLOOR_DBM0: f64 = -120.0;

/// Energy sums of speech and silence frames.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LevelMeter {
    speech_energy: f64,
    speech_samples: u64,
    noise_energy: f64,
    noise_samples: u64,
}

impl LevelMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Account one frame of PCM (any rate).
    pub fn frame(&mut self, samples: &[i16]) {
        if samples.is_empty() {
            return;
        }
        let energy = energy(samples);
        // Compared as energies: a log per frame costs more than the sum.
        if energy > SPEECH_MEAN_SQUARE * samples.len() as f64 {
            self.speech_energy += energy;
            self.speech_samples += samples.len() as u64;
        } else {
            self.noise_energy += energy;
            self.noise_samples += samples.len() as u64;
        }
    }

    /// Signal and noise level in whole dBm0 (RFC 3611 §4.7.4 signed 8-bit), when frames of each kind
    /// were heard.
    pub fn levels(&self) -> (Option<i8>, Option<i8>) {
        let level = |energy: f64, n: u64| (n > 0).then(|| dbm0(energy / n as f64).round() as i8);
        (level(self.speech_energy, self.speech_samples), level(self.noise_energy, self.noise_samples))
    }
}

/// Σ x² of a frame, in eight f32 lanes so that it vectorises (it runs on every decoded packet). Each
/// square is exact in f32 to 2^-24 relative and a lane sums at most 120 of them (a 60 ms frame at
/// 48 kHz), so the result is within ~1e-5 relative: far below the whole dB reported.
fn energy(samples: &[i16]) -> f64 {
    let mut lanes = [0f32; 8];
    let blocks = samples.chunks_exact(8);
    let tail: f64 = blocks.remainder().iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    for block in blocks {
        for (lane, &s) in lanes.iter_mut().zip(block) {
            let x = f32::from(s);
            *lane += x * x;
        }
    }
    lanes.iter().map(|&l| f64::from(l)).sum::<f64>() + tail
}

/// The level in dBm0 of a mean square, floored at [`FLOOR_DBM0`].
fn dbm0(mean_square: f64) -> f64 {
    if mean_square <= 0.0 {
        return FLOOR_DBM0;
    }
    (10.0 * (mean_square / (DBM0_RMS * DBM0_RMS)).log10()).max(FLOOR_DBM0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sine;

    #[test]
    fn a_sine_reads_its_level_and_quiet_frames_are_noise() {
        let mut m = LevelMeter::new();
        // A sine of peak 32767 is +3.17 dBm0; at a tenth of the amplitude, −16.83 dBm0.
        for _ in 0..10 {
            m.frame(&sine(8000, 1000.0, 3276.7, 160));
        }
        // Noise at peak 40: 20·log10(40 / 32767) + 3.17 = −55.1 dBm0, below the speech threshold.
        for _ in 0..5 {
            m.frame(&sine(8000, 1000.0, 40.0, 160));
        }
        assert_eq!(m.levels(), (Some(-17), Some(-55)));
        let mut silent = LevelMeter::new();
        silent.frame(&[0; 160]);
        silent.frame(&[]);
        assert_eq!(silent.levels(), (None, Some(-120)));
        assert_eq!(LevelMeter::new().levels(), (None, None));
    }

    #[test]
    fn the_speech_threshold_is_minus_45_dbm0() {
        let exact = DBM0_RMS * DBM0_RMS * 10f64.powf(SPEECH_THRESHOLD_DBM0 / 10.0);
        assert!((SPEECH_MEAN_SQUARE - exact).abs() < 1e-6, "{exact}");
        // A sine's peak for a level L: 16 096 · 10^(L/20) · √2.
        let peak = |level: f64| DBM0_RMS * 10f64.powf(level / 20.0) * std::f64::consts::SQRT_2;
        let mut above = LevelMeter::new();
        above.frame(&sine(8000, 1000.0, peak(-44.9), 160));
        assert_eq!(above.levels(), (Some(-45), None));
        let mut below = LevelMeter::new();
        below.frame(&sine(8000, 1000.0, peak(-45.1), 160));
        assert_eq!(below.levels(), (None, Some(-45)));
    }
}
