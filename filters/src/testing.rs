//! Test helpers (feature `testing`): drive one filter by hand, and measure audio by content.

use std::collections::VecDeque;
use std::time::Duration;

use crate::filter::{Filter, FilterEvent, ProcessCx, Queue, Transmit, TICK};
use crate::frame::Frame;

/// Runs one filter outside a graph: frames pushed on its inputs, outputs collected per pin.
pub struct FilterHarness<F: Filter> {
    pub filter: F,
    queues: Vec<Queue>,
    inputs: Vec<Option<u16>>,
    outputs: Vec<Option<u16>>,
    pub events: Vec<FilterEvent>,
    pub transmits: Vec<Transmit>,
    pub tick: u64,
}

impl<F: Filter> FilterHarness<F> {
    pub fn new(filter: F) -> Self {
        let d = filter.desc();
        let queues = (0..d.inputs + d.outputs).map(|_| VecDeque::new()).collect();
        Self {
            filter,
            queues,
            inputs: (0..d.inputs as u16).map(Some).collect(),
            outputs: (d.inputs as u16..(d.inputs + d.outputs) as u16).map(Some).collect(),
            events: Vec::new(),
            transmits: Vec::new(),
            tick: 0,
        }
    }

    /// Queue a frame on input `pin`.
    pub fn push(&mut self, pin: usize, frame: impl Into<Frame>) {
        self.queues[pin].push_back(frame.into());
    }

    /// Run `process` once at the harness's tick (time = tick × 10 ms), then advance the tick.
    pub fn run(&mut self) -> Result<(), crate::FilterError> {
        let now = TICK * self.tick as u32;
        let mut cx = ProcessCx::new(
            now,
            self.tick,
            &mut self.queues,
            &self.inputs,
            &self.outputs,
            &mut self.events,
            &mut self.transmits,
        );
        let r = self.filter.process(&mut cx);
        self.tick += 1;
        r
    }

    /// Time of the next `run`.
    pub fn now(&self) -> Duration {
        TICK * self.tick as u32
    }

    /// Take everything queued on output `pin`.
    pub fn take(&mut self, pin: usize) -> Vec<Frame> {
        let q = self.inputs.len() + pin;
        self.queues[q].drain(..).collect()
    }

    /// Take output `pin`'s audio samples, concatenated (non-audio frames panic: this is test code).
    pub fn take_samples(&mut self, pin: usize) -> Vec<i16> {
        self.take(pin)
            .into_iter()
            .flat_map(|f| match f {
                Frame::Audio(a) => a.samples,
                other => panic!("expected audio, got {}", other.kind()),
            })
            .collect()
    }
}

/// Write a 16-bit mono WAV (test fixtures, prompts for benches).
pub fn write_wav(path: &std::path::Path, rate: u32, samples: &[i16]) -> Result<(), hound::Error> {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()
}

/// Read a 16-bit WAV's rate and samples (interleaved if it has several channels).
pub fn read_wav(path: &std::path::Path) -> Result<(u32, Vec<i16>), hound::Error> {
    let mut r = hound::WavReader::open(path)?;
    let rate = r.spec().sample_rate;
    let samples = r.samples::<i16>().collect::<Result<Vec<_>, _>>()?;
    Ok((rate, samples))
}

/// An encoded 8 kHz PCMU packet of `len` silent samples (to feed filters that must refuse it, or send).
pub fn pcmu_packet(len: usize) -> crate::frame::EncodedFrame {
    crate::frame::EncodedFrame {
        payload: vec![0xFF; len],
        payload_type: 0,
        duration: len as u32,
        clock_rate: 8000,
        end_of_stream: false,
    }
}

/// `n` samples of a sine at `freq` Hz, peak `amplitude`.
pub fn sine(rate: u32, freq: f64, amplitude: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| (amplitude * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin()).round() as i16)
        .collect()
}

/// A speech-like test signal: a few harmonics with a slow vibrato and an amplitude envelope, so that
/// correlation checks see a broadband, non-periodic waveform. All energy below `max_freq`.
pub fn test_signal(rate: u32, n: usize, max_freq: f64) -> Vec<i16> {
    let r = f64::from(rate);
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / r;
            let f0 = 180.0 + 60.0 * (std::f64::consts::TAU * 0.7 * t).sin();
            phase += std::f64::consts::TAU * f0 / r;
            let env = 0.55 + 0.45 * (std::f64::consts::TAU * 2.3 * t).sin();
            let mut v = 0.0;
            let mut k = 1.0;
            while k * 400.0 < max_freq {
                v += (phase * k).sin() / k;
                k += 1.0;
            }
            (env * v * 9000.0).clamp(-32000.0, 32000.0) as i16
        })
        .collect()
}

/// Power of `freq` in `samples` by the Goertzel algorithm, normalised to the signal's total power
/// (1.0 = all energy at that frequency).
pub fn goertzel_ratio(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let energy: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    if energy == 0.0 {
        return 0.0;
    }
    2.0 * power / (energy * samples.len() as f64)
}

/// Root-mean-square level.
pub fn rms_level(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// Normalised cross-correlation of `a` and `b` at lag `lag` (b shifted right by `lag`), over their
/// overlap.
pub fn correlation_at(a: &[i16], b: &[i16], lag: isize) -> f64 {
    let (mut sab, mut saa, mut sbb) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &x) in a.iter().enumerate() {
        let j = i as isize - lag;
        if j < 0 || j as usize >= b.len() {
            continue;
        }
        let y = f64::from(b[j as usize]);
        let x = f64::from(x);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    if saa == 0.0 || sbb == 0.0 {
        return 0.0;
    }
    sab / (saa * sbb).sqrt()
}

/// Best normalised correlation of `a` against `b` over lags in `-max_lag..=max_lag`; returns
/// (correlation, lag).
pub fn best_correlation(a: &[i16], b: &[i16], max_lag: usize) -> (f64, isize) {
    let m = max_lag as isize;
    (-m..=m)
        .map(|lag| (correlation_at(a, b, lag), lag))
        .fold((f64::MIN, 0), |best, c| if c.0 > best.0 { c } else { best })
}

/// A fuzz-style mutation of `bytes`: each edit `(at, byte, kind)` replaces (kind 0), flips a bit of (1)
/// or inserts (2) a byte at `at` modulo the length + 1; then, with `cut`, the result is cut short at
/// `cut` modulo its length + 1.
pub fn mutate(bytes: &mut Vec<u8>, edits: &[(usize, u8, u8)], cut: Option<usize>) {
    for &(at, byte, kind) in edits {
        let i = at % (bytes.len() + 1);
        match kind {
            0 if i < bytes.len() => bytes[i] = byte,
            1 if i < bytes.len() => bytes[i] ^= 1 << (byte % 8),
            _ => bytes.insert(i, byte),
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % (bytes.len() + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_finds_the_tone() {
        let s = sine(8000, 1000.0, 10000.0, 800);
        assert!(goertzel_ratio(&s, 8000, 1000.0) > 0.9);
        assert!(goertzel_ratio(&s, 8000, 1500.0) < 0.01);
    }

    #[test]
    fn correlation_finds_the_lag() {
        let s = test_signal(8000, 4000, 3400.0);
        let shifted: Vec<i16> = std::iter::repeat_n(0, 17).chain(s.iter().copied()).collect();
        let (c, lag) = best_correlation(&shifted, &s, 40);
        assert_eq!(lag, 17);
        assert!(c > 0.999);
    }
}
