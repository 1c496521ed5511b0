//! `resampler`: converts PCM frames to the call's rate (a prompt at 16 kHz for a PCMU call at 8 kHz).
//!
//! Frames already at the output rate pass through untouched. Integer down-conversions (16, 32 and
//! 48 kHz to 8 kHz; 32 and 48 kHz to 16 kHz) go through [`Decimator`], a polyphase FIR of our own;
//! the rest (22.05 and 44.1 kHz sources, up-conversion) through rubato's FFT resampler, one 10 ms
//! chunk at a time. A stream's output is time-aligned with its input (the
//! resampler's delay is dropped at the start) and, at `end_of_stream`, the tail is flushed so that the
//! stream yields exactly round(input × out_rate / in_rate) samples; the next stream starts afresh.

use std::sync::OnceLock;

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};
use crate::frame::AudioFrame;
use crate::nodes::file_player::SUPPORTED_RATES;

/// Rates the resampler converts to.
pub const OUTPUT_RATES: [u32; 4] = [8000, 16000, 32000, 48000];

const NAME: &str = "resampler";

pub struct Resampler {
    out_rate: u32,
    /// The converter for the latest input rate, kept across streams at that rate.
    stream: Option<Stream>,
}

impl Resampler {
    pub const DESC: FilterDesc = FilterDesc { name: NAME, inputs: 1, outputs: 1, pump: false };

    /// `out_rate` must be one of [`OUTPUT_RATES`]; another fails the first `process`.
    pub fn new(out_rate: u32) -> Self {
        Self { out_rate, stream: None }
    }

    /// Forget the stream in progress without flushing it (a play was stopped or replaced).
    pub fn reset(&mut self) {
        self.stream = None;
    }

    pub fn out_rate(&self) -> u32 {
        self.out_rate
    }

    /// Send what the current stream still holds when it is cut short by a frame at another rate.
    fn flush_unfinished(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        let Some(stream) = self.stream.as_mut().filter(|s| s.total_in > 0) else {
            return Ok(());
        };
        let mut samples = Vec::with_capacity(stream.flush_capacity());
        stream.finish(&mut samples)?;
        cx.push(0, AudioFrame::new(samples, self.out_rate));
        Ok(())
    }
}

impl Filter for Resampler {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        if !OUTPUT_RATES.contains(&self.out_rate) {
            return Err(FilterError::UnsupportedRate { filter: NAME, rate: self.out_rate });
        }
        while let Some(audio) = cx.pop_audio(0, NAME)? {
            if audio.rate == self.out_rate {
                self.flush_unfinished(cx)?;
                cx.push(0, audio);
                continue;
            }
            if !SUPPORTED_RATES.contains(&audio.rate) {
                return Err(FilterError::UnsupportedRate { filter: NAME, rate: audio.rate });
            }
            if self.stream.as_ref().is_some_and(|s| s.in_rate != audio.rate) {
                self.flush_unfinished(cx)?;
                self.stream = None;
            }
            let stream = match self.stream.as_mut() {
                Some(stream) => stream,
                None => self.stream.insert(Stream::new(audio.rate, self.out_rate)?),
            };
            let mut capacity = stream.push_capacity(audio.samples.len());
            if audio.end_of_stream {
                capacity += stream.flush_capacity();
            }
            let mut samples = Vec::with_capacity(capacity);
            stream.push(&audio.samples, &mut samples)?;
            if audio.end_of_stream {
                stream.finish(&mut samples)?;
            }
            // A chunk may need more than one frame (22050 Hz): skip empty frames, but never an end.
            if samples.is_empty() && !audio.end_of_stream {
                continue;
            }
            cx.push(0, AudioFrame { samples, rate: self.out_rate, end_of_stream: audio.end_of_stream });
        }
        Ok(())
    }
}

/// Convert a whole stream at once (a prompt being cached), exactly as the filter would frame by frame.
pub fn resample_all(samples: &[i16], in_rate: u32, out_rate: u32) -> Result<Vec<i16>, FilterError> {
    if in_rate == out_rate {
        return Ok(samples.to_vec());
    }
    for rate in [in_rate, out_rate] {
        if !SUPPORTED_RATES.contains(&rate) || (rate == out_rate && !OUTPUT_RATES.contains(&rate)) {
            return Err(FilterError::UnsupportedRate { filter: NAME, rate });
        }
    }
    let mut stream = Stream::new(in_rate, out_rate)?;
    let expected = (samples.len() as u64 * u64::from(out_rate) / u64::from(in_rate)) as usize;
    let mut out = Vec::with_capacity(expected + stream.flush_capacity());
    stream.push(samples, &mut out)?;
    stream.finish(&mut out)?;
    Ok(out)
}

/// Conversion state of one input rate.
struct Stream {
    in_rate: u32,
    out_rate: u32,
    engine: Engine,
    /// One input chunk being collected.
    input: Vec<i16>,
    filled: usize,
    /// One output chunk.
    output: Vec<i16>,
    /// Output samples still to drop at the stream start (the resampler's delay).
    to_trim: usize,
    total_in: u64,
    total_out: u64,
}

impl Stream {
    fn new(in_rate: u32, out_rate: u32) -> Result<Stream, FilterError> {
        let engine = Engine::new(in_rate, out_rate)?;
        let input = vec![0; engine.input_frames()];
        let output = vec![0; engine.output_frames()];
        let to_trim = engine.output_delay();
        Ok(Stream { in_rate, out_rate, engine, input, filled: 0, output, to_trim, total_in: 0, total_out: 0 })
    }

    /// Output samples that `push`ing `n` input samples can produce at most.
    fn push_capacity(&self, n: usize) -> usize {
        (self.filled + n) / self.input.len() * self.output.len()
    }

    /// Output samples that `finish` can produce at most.
    fn flush_capacity(&self) -> usize {
        self.to_trim + 2 * self.output.len()
    }

    fn push(&mut self, samples: &[i16], out: &mut Vec<i16>) -> Result<(), FilterError> {
        self.total_in += samples.len() as u64;
        let mut rest = samples;
        while !rest.is_empty() {
            // A whole chunk straight from the frame (the usual 10 ms case): no copy into `input`.
            if self.filled == 0 && rest.len() >= self.input.len() {
                let (chunk, later) = rest.split_at(self.input.len());
                let produced = self.engine.process(chunk, &mut self.output)?;
                self.take_output(produced, out);
                rest = later;
                continue;
            }
            let n = rest.len().min(self.input.len() - self.filled);
            self.input[self.filled..self.filled + n].copy_from_slice(&rest[..n]);
            self.filled += n;
            rest = &rest[n..];
            if self.filled == self.input.len() {
                self.run_chunk(out)?;
            }
        }
        Ok(())
    }

    /// Flush the tail so the stream's output totals round(total_in × out / in), then reset for the
    /// next stream.
    fn finish(&mut self, out: &mut Vec<i16>) -> Result<(), FilterError> {
        let (in_rate, out_rate) = (u64::from(self.in_rate), u64::from(self.out_rate));
        let target = (self.total_in * out_rate + in_rate / 2) / in_rate;
        while self.total_out < target {
            self.input[self.filled..].fill(0);
            self.run_chunk(out)?;
        }
        // The last chunk overshoots into the zero padding: cut it back.
        let excess = usize::try_from(self.total_out - target).unwrap_or(usize::MAX);
        out.truncate(out.len().saturating_sub(excess));
        self.engine.reset();
        self.filled = 0;
        self.to_trim = self.engine.output_delay();
        self.total_in = 0;
        self.total_out = 0;
        Ok(())
    }

    fn run_chunk(&mut self, out: &mut Vec<i16>) -> Result<(), FilterError> {
        let produced = self.engine.process(&self.input, &mut self.output)?;
        self.filled = 0;
        self.take_output(produced, out);
        Ok(())
    }

    /// Move a chunk's output to `out`, less what is still to trim of the start-up delay.
    fn take_output(&mut self, produced: usize, out: &mut Vec<i16>) {
        let skip = self.to_trim.min(produced);
        self.to_trim -= skip;
        out.extend_from_slice(&self.output[skip..produced]);
        self.total_out += (produced - skip) as u64;
    }
}

/// The converter behind a [`Stream`]: fixed-size chunks in, fixed-size chunks out.
enum Engine {
    Decimate(Decimator),
    Interpolate(Interpolator),
    Fft(Box<FftEngine>),
}

/// rubato's FFT resampler with its f32 buffers.
struct FftEngine {
    fft: Fft<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl Engine {
    fn new(in_rate: u32, out_rate: u32) -> Result<Engine, FilterError> {
        if let Some(d) = Decimator::new(in_rate, out_rate) {
            return Ok(Engine::Decimate(d));
        }
        if let Some(i) = Interpolator::new(in_rate, out_rate) {
            return Ok(Engine::Interpolate(i));
        }
        // One FFT block per 10 ms frame where the rates allow; rubato rounds up to a whole block (441
        // samples, 20 ms, at 22050 Hz). An odd block (441, from 22050 or 44100 Hz) centres rubato's filter
        // half an input sample early, so that output leads by under one output sample; an even block
        // would fix that but double the chunk and make output come in bursts.
        let chunk = in_rate as usize / 100;
        let fft = Fft::<f32>::new(in_rate as usize, out_rate as usize, chunk, 1, FixedSync::Both)
            .map_err(|e| resampler_failed(&e))?;
        let input = vec![0.0; fft.input_frames_next()];
        let output = vec![0.0; fft.output_frames_next()];
        Ok(Engine::Fft(Box::new(FftEngine { fft, input, output })))
    }

    fn input_frames(&self) -> usize {
        match self {
            Engine::Decimate(d) => d.chunk_in,
            Engine::Interpolate(i) => i.chunk_in,
            Engine::Fft(f) => f.input.len(),
        }
    }

    fn output_frames(&self) -> usize {
        match self {
            Engine::Decimate(d) => d.chunk_in / d.factor,
            Engine::Interpolate(i) => i.chunk_in * i.factor,
            Engine::Fft(f) => f.output.len(),
        }
    }

    /// Output samples of delay, dropped at a stream's start.
    fn output_delay(&self) -> usize {
        match self {
            Engine::Decimate(d) => d.delay,
            Engine::Interpolate(i) => i.delay(),
            Engine::Fft(f) => f.fft.output_delay(),
        }
    }

    fn reset(&mut self) {
        match self {
            Engine::Decimate(d) => d.reset(),
            Engine::Interpolate(i) => i.reset(),
            Engine::Fft(f) => f.fft.reset(),
        }
    }

    /// Convert one input chunk; returns the output samples produced.
    fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<usize, FilterError> {
        match self {
            Engine::Decimate(d) => Ok(d.process(input, output)),
            Engine::Interpolate(i) => Ok(i.process(input, output)),
            Engine::Fft(f) => {
                for (dst, &src) in f.input.iter_mut().zip(input) {
                    *dst = f32::from(src);
                }
                let (frames_in, frames_out) = (f.input.len(), f.output.len());
                let fin = InterleavedSlice::new(&f.input[..], 1, frames_in).map_err(|e| resampler_failed(&e))?;
                let mut fout =
                    InterleavedSlice::new_mut(&mut f.output[..], 1, frames_out).map_err(|e| resampler_failed(&e))?;
                let (_, produced) =
                    f.fft.process_into_buffer(&fin, &mut fout, None).map_err(|e| resampler_failed(&e))?;
                for (dst, &src) in output.iter_mut().zip(&f.output[..produced]) {
                    *dst = to_i16(src);
                }
                Ok(produced)
            }
        }
    }
}

fn resampler_failed(e: &dyn std::fmt::Display) -> FilterError {
    FilterError::Resampler { filter: NAME, detail: e.to_string() }
}

/// Integer-ratio down-conversion by a linear-phase FIR low-pass evaluated only at the kept samples
/// (polyphase decimation), in 16-bit fixed point.
///
/// Written by hand because it is the hot path of every prompt that is not at the call's rate:
/// rubato's FFT resampler costs 1.5-4.5 µs per 10 ms frame here, against a per-call budget of 1.5 µs
/// for the whole play graph. Design: Kaiser-windowed sinc (β = 6, about 60 dB stop-band), cut-off at
/// the output Nyquist frequency, `2 × factor × DELAY + 1` taps so the group delay is exactly
/// [`Decimator::DELAY`] output samples; flat within 0.2 dB to 3.4 kHz at 8 kHz out. Taps are Q15 and
/// products accumulate in i32 (no overflow: the taps' absolute sum is below 2), which vectorises well.
struct Decimator {
    factor: usize,
    chunk_in: usize,
    /// Output samples of group delay.
    delay: usize,
    /// Shared by every decimator of this factor: one copy stays hot in cache for all calls.
    filter: &'static DecimatorTaps,
    /// The last `len - 1` input samples, then room for one chunk and the padding.
    history: Vec<i16>,
}

/// Largest chunk a decimator takes (10 ms at 48 kHz) and so the most outputs it gives (to 16 kHz).
const MAX_CHUNK_IN: usize = 480;
const MAX_CHUNK_OUT: usize = MAX_CHUNK_IN / 2;
/// Room for the half-band's odd-indexed samples: (taps - 1 + chunk) / 2 at 32 kHz in.
const MAX_ODD: usize = (2 * 2 * Decimator::DELAY + 320) / 2;

/// The low-pass filter of one decimation factor.
struct DecimatorTaps {
    /// Q15 taps, zero-padded to a multiple of 8.
    taps: Vec<i16>,
    /// Taps that matter (before the padding).
    len: usize,
    /// For factor 2 (a half-band filter: every other tap is zero), the non-zero taps off the centre.
    odd_taps: Option<Vec<i16>>,
}

impl DecimatorTaps {
    /// The filter for `factor` (2, 3, 4 or 6), designed on first use.
    fn for_factor(factor: usize) -> Option<&'static DecimatorTaps> {
        static FILTERS: [OnceLock<DecimatorTaps>; 4] = [const { OnceLock::new() }; 4];
        let slot = match factor {
            2 => 0,
            3 => 1,
            4 => 2,
            6 => 3,
            _ => return None,
        };
        Some(FILTERS[slot].get_or_init(|| DecimatorTaps::design(factor)))
    }

    fn design(factor: usize) -> DecimatorTaps {
        let n = 2 * factor * Decimator::DELAY + 1;
        let centre = (n / 2) as f64;
        let cutoff = 0.5 / factor as f64; // cycles per input sample
        let i0_beta = bessel_i0(Decimator::KAISER_BETA);
        let ideal: Vec<f64> = (0..n)
            .map(|i| {
                let x = i as f64 - centre;
                let sinc = if x == 0.0 {
                    2.0 * cutoff
                } else {
                    (std::f64::consts::TAU * cutoff * x).sin() / (std::f64::consts::PI * x)
                };
                let r = x / centre;
                sinc * bessel_i0(Decimator::KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta
            })
            .collect();
        let sum: f64 = ideal.iter().sum();
        let mut taps: Vec<i16> = ideal.iter().map(|t| (t / sum * 32768.0).round() as i16).collect();
        // Unity gain at DC despite rounding: the centre tap takes the difference.
        let total: i32 = taps.iter().map(|&t| i32::from(t)).sum();
        taps[n / 2] += (32768 - total) as i16;
        taps.resize(n.div_ceil(8) * 8, 0);
        let odd_taps = (factor == 2).then(|| {
            // Taps at an even distance from the centre are sin(πx/2)/(πx) = 0 for even x ≠ 0.
            debug_assert!(taps[..n].iter().enumerate().all(|(k, &t)| k % 2 == 1 || k == n / 2 || t == 0));
            taps[..n].iter().skip(1).step_by(2).copied().collect()
        });
        DecimatorTaps { taps, len: n, odd_taps }
    }
}

impl Decimator {
    const DELAY: usize = 16;
    const KAISER_BETA: f64 = 6.0;

    /// A decimator when `in_rate` is an integer multiple (2, 3, 4 or 6) of `out_rate`.
    fn new(in_rate: u32, out_rate: u32) -> Option<Decimator> {
        if in_rate <= out_rate || !in_rate.is_multiple_of(out_rate) {
            return None;
        }
        let factor = (in_rate / out_rate) as usize;
        let filter = DecimatorTaps::for_factor(factor)?;
        let chunk_in = in_rate as usize / 100;
        let history = vec![0; filter.len - 1 + chunk_in + (filter.taps.len() - filter.len)];
        if chunk_in > MAX_CHUNK_IN || (filter.odd_taps.is_some() && (filter.len - 1 + chunk_in) / 2 > MAX_ODD) {
            return None;
        }
        Some(Decimator { factor, chunk_in, delay: Self::DELAY, filter, history })
    }

    fn reset(&mut self) {
        self.history.fill(0);
    }

    fn process(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        let filter = self.filter;
        let keep = filter.len - 1;
        let total = keep + input.len();
        self.history[keep..total].copy_from_slice(input);
        let n_out = input.len() / self.factor;
        // Scratch on the stack rather than in the decimator: at 1000 calls, per-call scratch buffers
        // are cache misses every tick, the stack is always hot.
        let mut acc_buf = [0i32; MAX_CHUNK_OUT];
        let acc = &mut acc_buf[..n_out];
        if let Some(odd_taps) = &filter.odd_taps {
            // Output j = centre·x[2j + c] + Σ odd_taps[m]·x[2j + 2m + 1], and x[2j + 2m + 1] = odd[j + m].
            let mut odd_buf = [0i16; MAX_ODD];
            let odd = &mut odd_buf[..total / 2];
            for (o, pair) in odd.iter_mut().zip(self.history[..total].chunks_exact(2)) {
                *o = pair[1];
            }
            fir_q15(odd, odd_taps, 1, acc);
            let c = filter.len / 2;
            let centre = i32::from(filter.taps[c]);
            // The centre samples x[2j + c], as a slice so the loop below vectorises.
            let centre_samples = self.history[c..c + 2 * n_out].chunks_exact(2).map(|pair| pair[0]);
            for ((out, &a), x) in output[..n_out].iter_mut().zip(acc.iter()).zip(centre_samples) {
                *out = q15_to_i16(a + centre * i32::from(x));
            }
        } else {
            fir_q15(&self.history, &filter.taps, self.factor, acc);
            for (out, &a) in output[..n_out].iter_mut().zip(acc.iter()) {
                *out = q15_to_i16(a);
            }
        }
        self.history.copy_within(input.len()..total, 0);
        n_out
    }
}

/// Integer-ratio up-conversion (×2, ×3, ×4, ×6: 8 → 16/24/32/48 kHz, 16 → 32/48 kHz, 24 → 48 kHz) by
/// the decimator's low-pass split into `factor` polyphase sub-filters: output `n·L + p` is sub-filter
/// `p` over the inputs up to `n`, times `L` (zero-stuffing divides the level by `L`).
///
/// Written by hand for the same reason as [`Decimator`]: 8 → 16 kHz is on every bridge between a
/// G.711 leg and a G.722 (or wideband Opus) leg, where rubato's FFT resampler cost a quarter of the
/// G.722 codec itself per 10 ms frame. Same filter, so the same band edge and stop-band; group delay
/// `L × DELAY` output samples.
struct Interpolator {
    factor: usize,
    chunk_in: usize,
    /// Per phase, how output `n·L + p` is made from the history window ending at input `n`.
    phases: Vec<Phase>,
    /// The last `TAPS - 1` input samples, then room for one chunk.
    history: Vec<i16>,
}

/// One polyphase sub-filter, with the taps that are zero left out of the arithmetic.
///
/// Taps are multiplied by the factor `L` here, once, rather than each output: the products are the
/// same integers, and no off-centre tap × L leaves i16 (the largest, next to the centre at ×6, is
/// about 0.96 in Q15).
enum Phase {
    /// A single non-zero tap (the phase holding the centre: its other taps sit at multiples of `L`
    /// from the centre, where the sinc is zero): a delayed, scaled copy of the input.
    Delay { offset: usize, tap: i32 },
    /// `fir_q15` of `taps` over the window starting `offset` samples into the full one: the
    /// sub-filter reversed, zero-padded in front to whole 8-tap blocks.
    Fir { offset: usize, taps: Vec<i16> },
}

/// Largest interpolation factor (8 → 48 kHz).
const MAX_FACTOR: usize = 6;

/// Largest chunk an interpolator takes: 10 ms at 24 kHz.
const MAX_UP_CHUNK_IN: usize = 240;

impl Interpolator {
    /// Sub-filter length, padded to whole 8-tap blocks: `2 × DELAY + 1` taps fit in 40.
    const TAPS: usize = 40;

    fn new(in_rate: u32, out_rate: u32) -> Option<Interpolator> {
        if out_rate <= in_rate || !out_rate.is_multiple_of(in_rate) {
            return None;
        }
        let factor = (out_rate / in_rate) as usize;
        let filter = DecimatorTaps::for_factor(factor)?;
        let chunk_in = in_rate as usize / 100;
        if chunk_in > MAX_UP_CHUNK_IN {
            return None;
        }
        let taps = &filter.taps[..filter.len];
        let phases = (0..factor)
            .map(|p| {
                let sub: Vec<i16> = taps.iter().skip(p).step_by(factor).copied().collect();
                let mut padded = [0i16; Self::TAPS];
                // Newest input last: sub-filter tap k weighs input n - k.
                for (k, &t) in sub.iter().enumerate() {
                    padded[Self::TAPS - 1 - k] = t;
                }
                let nonzero: Vec<usize> = (0..Self::TAPS).filter(|&m| padded[m] != 0).collect();
                let gain = factor as i32;
                match nonzero[..] {
                    [offset] => Some(Phase::Delay { offset, tap: i32::from(padded[offset]) * gain }),
                    _ => {
                        let offset = nonzero.first().map_or(0, |&m| m / 8 * 8);
                        let taps = padded[offset..].iter().map(|&t| i16::try_from(i32::from(t) * gain).ok());
                        Some(Phase::Fir { offset, taps: taps.collect::<Option<Vec<i16>>>()? })
                    }
                }
            })
            .collect::<Option<Vec<Phase>>>()?;
        Some(Interpolator { factor, chunk_in, phases, history: vec![0; Self::TAPS - 1 + chunk_in] })
    }

    fn delay(&self) -> usize {
        self.factor * Decimator::DELAY
    }

    fn reset(&mut self) {
        self.history.fill(0);
    }

    fn process(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        let keep = Self::TAPS - 1;
        let total = keep + input.len();
        self.history[keep..total].copy_from_slice(input);
        let n_in = input.len();
        // Each phase into its own contiguous row (so the loops vectorise), then interleaved.
        let mut acc_buf = [0i32; MAX_UP_CHUNK_IN];
        let acc = &mut acc_buf[..n_in];
        let mut rows = [[0i16; MAX_UP_CHUNK_IN]; MAX_FACTOR];
        for (phase, row) in self.phases.iter().zip(rows.iter_mut()) {
            let row = &mut row[..n_in];
            match phase {
                Phase::Delay { offset, tap } => {
                    for (out, &x) in row.iter_mut().zip(&self.history[*offset..offset + n_in]) {
                        *out = q15_to_i16(tap * i32::from(x));
                    }
                }
                Phase::Fir { offset, taps } => {
                    fir_q15(&self.history[*offset..total], taps, 1, acc);
                    for (out, &a) in row.iter_mut().zip(acc.iter()) {
                        *out = q15_to_i16(a);
                    }
                }
            }
        }
        let output = &mut output[..n_in * self.factor];
        match (self.factor, &rows) {
            // 8 → 16 kHz, on every G.711-G.722 bridge: a loop the compiler vectorises.
            (2, [even, odd, ..]) => {
                for ((pair, &e), &o) in output.chunks_exact_mut(2).zip(&even[..n_in]).zip(&odd[..n_in]) {
                    pair[0] = e;
                    pair[1] = o;
                }
            }
            _ => {
                for (n, frame) in output.chunks_exact_mut(self.factor).enumerate() {
                    for (out, row) in frame.iter_mut().zip(&rows) {
                        *out = row[n];
                    }
                }
            }
        }
        self.history.copy_within(n_in..total, 0);
        n_in * self.factor
    }
}

/// `out[j] = Σ_m taps[m] · x[j·stride + m]`: an FIR evaluated at every `stride`-th position.
///
/// `taps.len()` must be a multiple of 8 and `x` long enough for the last output. The x86_64 version
/// sums eight 16×16-bit products per `pmaddwd`, keeps the taps in registers and unrolls the tap loop
/// for the filter lengths the decimator uses: the 16 → 8 kHz frame went from ~5100 instructions
/// (iterator version) to ~2000.
#[cfg(target_arch = "x86_64")]
fn fir_q15(x: &[i16], taps: &[i16], stride: usize, out: &mut [i32]) {
    assert!(taps.len().is_multiple_of(8));
    if out.is_empty() {
        return;
    }
    assert!((out.len() - 1) * stride + taps.len() <= x.len(), "FIR input too short");
    // SAFETY: the two assertions above are `fir_q15_sse2`'s preconditions.
    unsafe {
        match taps.len() / 8 {
            4 => fir_q15_sse2::<4>(x, taps, stride, out),
            5 => fir_q15_sse2::<5>(x, taps, stride, out),
            13 => fir_q15_sse2::<13>(x, taps, stride, out),
            17 => fir_q15_sse2::<17>(x, taps, stride, out),
            25 => fir_q15_sse2::<25>(x, taps, stride, out),
            _ => {
                for (j, o) in out.iter_mut().enumerate() {
                    let w = &x[j * stride..j * stride + taps.len()];
                    *o = w.iter().zip(taps).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum();
                }
            }
        }
    }
}

/// # Safety
/// `taps.len() == 8 * BLOCKS` and `(out.len() - 1) * stride + taps.len() <= x.len()`.
#[cfg(target_arch = "x86_64")]
unsafe fn fir_q15_sse2<const BLOCKS: usize>(x: &[i16], taps: &[i16], stride: usize, out: &mut [i32]) {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_madd_epi16, _mm_setzero_si128,
        _mm_shuffle_epi32,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline. Every load reads 8 i16 inside `taps` (8b + 8 <=
    // 8·BLOCKS) or inside `x` (j·stride + 8b + 8 <= (out.len() - 1)·stride + taps.len() <= x.len()),
    // by the caller's contract; the unaligned load intrinsic has no alignment requirement.
    unsafe {
        let mut t = [_mm_setzero_si128(); BLOCKS];
        for (b, tb) in t.iter_mut().enumerate() {
            *tb = _mm_loadu_si128(taps.as_ptr().add(8 * b).cast::<__m128i>());
        }
        let xp = x.as_ptr();
        for (j, o) in out.iter_mut().enumerate() {
            let base = xp.add(j * stride);
            let mut acc = _mm_setzero_si128();
            for (b, tb) in t.iter().enumerate() {
                acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_loadu_si128(base.add(8 * b).cast::<__m128i>()), *tb));
            }
            // Horizontal sum of the four i32 lanes.
            acc = _mm_add_epi32(acc, _mm_shuffle_epi32::<0b01_00_11_10>(acc));
            acc = _mm_add_epi32(acc, _mm_shuffle_epi32::<0b10_11_00_01>(acc));
            *o = _mm_cvtsi128_si32(acc);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn fir_q15(x: &[i16], taps: &[i16], stride: usize, out: &mut [i32]) {
    for (j, o) in out.iter_mut().enumerate() {
        let w = &x[j * stride..j * stride + taps.len()];
        *o = w.iter().zip(taps).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum();
    }
}

/// Q15 accumulator to a rounded, saturated sample.
fn q15_to_i16(acc: i32) -> i16 {
    ((acc + (1 << 14)) >> 15).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// Modified Bessel function of the first kind, order 0 (power series), for the Kaiser window.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= half / k as f64;
        let t2 = term * term;
        sum += t2;
        if t2 < sum * 1e-16 {
            break;
        }
    }
    sum
}

/// Round to nearest and saturate (`as` saturates; adding ±0.5 first rounds without a libm call).
fn to_i16(x: f32) -> i16 {
    (x + 0.5f32.copysign(x)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;
    use crate::testing::{best_correlation, goertzel_ratio, rms_level, sine, test_signal, FilterHarness};

    /// `samples` cut into 10 ms frames (220/221 at 22050 Hz), the last one marked end of stream.
    fn frames_of(samples: &[i16], rate: u32) -> Vec<AudioFrame> {
        let mut frames = Vec::new();
        let (mut k, mut at) = (0u64, 0usize);
        while at < samples.len() {
            let len = ((k + 1) * u64::from(rate) / 100 - k * u64::from(rate) / 100) as usize;
            let end = (at + len).min(samples.len());
            frames.push(AudioFrame::new(samples[at..end].to_vec(), rate));
            at = end;
            k += 1;
        }
        if let Some(last) = frames.last_mut() {
            last.end_of_stream = true;
        }
        frames
    }

    /// Feed `frames` one per tick; return every output frame.
    fn run(h: &mut FilterHarness<Resampler>, frames: Vec<AudioFrame>) -> Vec<AudioFrame> {
        let mut out = Vec::new();
        for f in frames {
            h.push(0, f);
            h.run().expect("resample");
            for f in h.take(0) {
                let Frame::Audio(a) = f else { panic!("resampler emits audio only") };
                out.push(a);
            }
        }
        out
    }

    /// Resample a whole stream; checks the framing invariants and returns the samples.
    fn resample(samples: &[i16], in_rate: u32, out_rate: u32) -> Vec<i16> {
        let mut h = FilterHarness::new(Resampler::new(out_rate));
        let out = run(&mut h, frames_of(samples, in_rate));
        assert!(out.iter().all(|f| f.rate == out_rate));
        let ends: Vec<usize> = out.iter().enumerate().filter(|(_, f)| f.end_of_stream).map(|(i, _)| i).collect();
        assert_eq!(ends, vec![out.len() - 1], "only the last frame ends the stream");
        out.into_iter().flat_map(|f| f.samples).collect()
    }

    fn expected_len(n: usize, in_rate: u32, out_rate: u32) -> usize {
        ((n as u64 * u64::from(out_rate) * 2 + u64::from(in_rate)) / (2 * u64::from(in_rate))) as usize
    }

    fn db(a: f64, b: f64) -> f64 {
        20.0 * (a / b).log10()
    }

    #[test]
    fn a_1khz_tone_stays_1khz_at_the_same_level() {
        for (in_rate, out_rate) in
            [(16000, 8000), (48000, 8000), (44100, 8000), (22050, 8000), (8000, 48000), (8000, 16000)]
        {
            let input = sine(in_rate, 1000.0, 10000.0, in_rate as usize);
            let out = resample(&input, in_rate, out_rate);
            assert_eq!(out.len(), out_rate as usize, "{in_rate} -> {out_rate}");
            // Judge the middle, away from the stream's edges.
            let mid = &out[out.len() / 10..out.len() * 9 / 10];
            let ratio = goertzel_ratio(mid, out_rate, 1000.0);
            assert!(ratio > 0.9, "{in_rate} -> {out_rate}: goertzel {ratio}");
            let level = db(rms_level(mid), rms_level(&input));
            assert!(level.abs() < 1.0, "{in_rate} -> {out_rate}: level {level:.2} dB");
        }
    }

    #[test]
    fn total_output_is_exactly_the_rounded_ratio() {
        for in_rate in SUPPORTED_RATES {
            for out_rate in OUTPUT_RATES.into_iter().filter(|&r| r != in_rate) {
                // 3.00 s, and odd lengths: shorter than the resampler's delay, one sample, partial frames.
                let three_seconds = in_rate as usize * 3;
                for n in [three_seconds, 12_345, 7, 1, in_rate as usize / 100 + 1] {
                    let input = test_signal(in_rate, n, 3000.0);
                    let out = resample(&input, in_rate, out_rate);
                    assert_eq!(out.len(), expected_len(n, in_rate, out_rate), "{n} samples {in_rate} -> {out_rate}");
                }
            }
        }
    }

    #[test]
    fn band_limited_speech_matches_the_signal_made_at_8k() {
        let input = test_signal(48000, 48000 * 2, 3000.0);
        let direct = test_signal(8000, 8000 * 2, 3000.0);
        let out = resample(&input, 48000, 8000);
        let (c, lag) = best_correlation(&out, &direct, 40);
        assert!(c >= 0.99, "correlation {c} at lag {lag}");
        assert!(lag.abs() <= 1, "the delay is trimmed: lag {lag}");
    }

    #[test]
    fn upsampling_8k_to_48k_matches_the_signal_made_at_48k() {
        let input = test_signal(8000, 8000 * 2, 3000.0);
        let direct = test_signal(48000, 48000 * 2, 3000.0);
        let out = resample(&input, 8000, 48000);
        assert_eq!(out.len(), direct.len());
        let (c, lag) = best_correlation(&out, &direct, 60);
        assert!(c >= 0.99, "correlation {c} at lag {lag}");
        // test_signal's running phase leads by half a sample at its own rate, so the 8 kHz original
        // leads the 48 kHz one by a few 48 kHz samples; alignment itself is checked with an impulse.
        assert!(lag.abs() <= 6, "lag {lag}");
    }

    #[test]
    fn an_impulse_comes_out_at_the_same_time() {
        for in_rate in SUPPORTED_RATES {
            for out_rate in OUTPUT_RATES.into_iter().filter(|&r| r != in_rate) {
                // An impulse at 0.1 s, in a 0.3 s stream.
                let mut input = vec![0i16; in_rate as usize * 3 / 10];
                input[in_rate as usize / 10] = 30000;
                let out = resample(&input, in_rate, out_rate);
                let peak = (0..out.len()).max_by_key(|&k| out[k]).expect("output");
                // With an odd FFT block (441 samples from 22050 and 44100 Hz) rubato's filter is centred
                // half an input sample early: under one output sample, so allow one.
                let odd_block = match Stream::new(in_rate, out_rate).expect("stream").engine {
                    Engine::Fft(f) => f.fft.fft_size_in() % 2 == 1,
                    Engine::Decimate(_) | Engine::Interpolate(_) => false,
                };
                let slack = usize::from(odd_block);
                assert!(peak.abs_diff(out_rate as usize / 10) <= slack, "{in_rate} -> {out_rate}: peak at {peak}");
            }
        }
    }

    #[test]
    fn integer_decimation_is_flat_in_the_telephone_band_and_rejects_aliases() {
        for in_rate in [16000, 32000, 48000] {
            assert!(matches!(Stream::new(in_rate, 8000).expect("stream").engine, Engine::Decimate(_)));
            let level = |freq: f64| {
                let input = sine(in_rate, freq, 10000.0, in_rate as usize);
                let out = resample(&input, in_rate, 8000);
                db(rms_level(&out[800..7200]), rms_level(&input))
            };
            for freq in [300.0, 1000.0, 3000.0, 3400.0] {
                let l = level(freq);
                assert!(l.abs() < 0.2, "{in_rate} Hz: {freq} Hz comes out at {l:.2} dB");
            }
            // 5 kHz would fold to 3 kHz, 6.5 kHz to 1.5 kHz: both must be gone.
            for freq in [5000.0, 6500.0] {
                let l = level(freq);
                assert!(l < -50.0, "{in_rate} Hz: alias of {freq} Hz at {l:.1} dB");
            }
        }
    }

    #[test]
    fn integer_interpolation_is_flat_in_the_telephone_band_and_rejects_images() {
        for out_rate in [16000, 32000, 48000] {
            assert!(matches!(Stream::new(8000, out_rate).expect("stream").engine, Engine::Interpolate(_)));
            let input_at = |freq: f64| sine(8000, freq, 10000.0, 8000);
            for freq in [300.0, 1000.0, 3000.0, 3400.0] {
                let out = resample(&input_at(freq), 8000, out_rate);
                let span = &out[out.len() / 10..out.len() * 9 / 10];
                let l = db(rms_level(span), rms_level(&input_at(freq)));
                assert!(l.abs() < 0.2, "8000 -> {out_rate}: {freq} Hz comes out at {l:.2} dB");
                assert!(goertzel_ratio(span, out_rate, freq) > 0.99, "8000 -> {out_rate}: {freq} Hz");
            }
            // Zero-stuffing images a 1 kHz tone at 7 kHz (and 9 kHz ...): gone.
            let out = resample(&input_at(1000.0), 8000, out_rate);
            let image = goertzel_ratio(&out[out.len() / 10..out.len() * 9 / 10], out_rate, 7000.0);
            assert!(image < 1e-5, "8000 -> {out_rate}: the 7 kHz image keeps {image:e} of the power");
        }
        assert!(matches!(Stream::new(16000, 48000).expect("stream").engine, Engine::Interpolate(_)));
    }

    #[test]
    fn polyphase_interpolation_equals_zero_stuffing_through_the_whole_filter() {
        // The reference: insert L - 1 zeros after each input sample, run the full low-pass (every tap,
        // zeros included) and scale by L. The interpolator must give the same samples, bit for bit,
        // though it skips the zero taps (a half-band phase is a plain delay).
        for factor in [2usize, 3, 4, 6] {
            let mut interpolator = Interpolator::new(8000, 8000 * factor as u32).expect("interpolator");
            let taps = &DecimatorTaps::for_factor(factor).expect("taps").taps;
            let input = test_signal(8000, 800, 30_000.0);
            let mut got = vec![0i16; input.len() * factor];
            for (chunk, out) in input.chunks_exact(80).zip(got.chunks_exact_mut(80 * factor)) {
                assert_eq!(interpolator.process(chunk, out), 80 * factor);
            }
            let stuffed: Vec<i32> =
                (0..got.len()).map(|k| if k % factor == 0 { i32::from(input[k / factor]) } else { 0 }).collect();
            let expected: Vec<i16> = (0..got.len())
                .map(|k| {
                    let acc: i32 = taps
                        .iter()
                        .enumerate()
                        .filter(|&(m, _)| m <= k)
                        .map(|(m, &t)| i32::from(t) * stuffed[k - m])
                        .sum();
                    q15_to_i16(acc.saturating_mul(factor as i32))
                })
                .collect();
            assert_eq!(got, expected, "×{factor}");
        }
    }

    #[test]
    fn resample_all_equals_the_filter_frame_by_frame() {
        for (in_rate, out_rate) in [(16000, 8000), (48000, 8000), (44100, 8000), (8000, 16000)] {
            let input = test_signal(in_rate, 12_345, 3000.0);
            assert_eq!(resample_all(&input, in_rate, out_rate).unwrap(), resample(&input, in_rate, out_rate));
        }
    }

    #[test]
    fn frames_at_the_output_rate_pass_through_untouched() {
        let mut h = FilterHarness::new(Resampler::new(8000));
        let frames = frames_of(&test_signal(8000, 1000, 3000.0), 8000);
        let out = run(&mut h, frames.clone());
        assert_eq!(out, frames);
    }

    #[test]
    fn each_stream_starts_afresh() {
        let a = test_signal(16000, 5555, 3000.0);
        let b = sine(16000, 1000.0, 10000.0, 3210);
        let mut h = FilterHarness::new(Resampler::new(8000));
        let first: Vec<i16> = run(&mut h, frames_of(&a, 16000)).into_iter().flat_map(|f| f.samples).collect();
        let second: Vec<i16> = run(&mut h, frames_of(&b, 16000)).into_iter().flat_map(|f| f.samples).collect();
        assert_eq!(first, resample(&a, 16000, 8000));
        assert_eq!(second, resample(&b, 16000, 8000), "same as on a new resampler");
        // Another input rate for the next stream.
        let c = sine(44100, 1000.0, 10000.0, 4410);
        let third: Vec<i16> = run(&mut h, frames_of(&c, 44100)).into_iter().flat_map(|f| f.samples).collect();
        assert_eq!(third, resample(&c, 44100, 8000));
    }

    #[test]
    fn a_stream_cut_short_by_another_rate_is_flushed() {
        let mut h = FilterHarness::new(Resampler::new(8000));
        let mut a = frames_of(&sine(16000, 1000.0, 10000.0, 1600), 16000);
        a.last_mut().expect("frames").end_of_stream = false;
        let mut out = run(&mut h, a);
        out.extend(run(&mut h, frames_of(&[5i16; 80], 8000)));
        let total: usize = out.iter().map(|f| f.samples.len()).sum();
        assert_eq!(total, 800 + 80);
        assert_eq!(out.last().expect("frames").samples, vec![5; 80]);
        assert_eq!(out.iter().filter(|f| f.end_of_stream).count(), 1);
    }

    #[test]
    fn unsupported_rates_fail() {
        let mut h = FilterHarness::new(Resampler::new(8000));
        h.push(0, AudioFrame::new(vec![0; 110], 11025));
        assert!(matches!(h.run(), Err(FilterError::UnsupportedRate { filter: "resampler", rate: 11025 })));
        let mut h = FilterHarness::new(Resampler::new(44100));
        h.push(0, AudioFrame::new(vec![0; 160], 16000));
        assert!(matches!(h.run(), Err(FilterError::UnsupportedRate { rate: 44100, .. })));
    }

    #[test]
    fn non_audio_frames_fail() {
        let mut h = FilterHarness::new(Resampler::new(8000));
        let packet = crate::testing::pcmu_packet(160);
        h.push(0, packet);
        assert!(matches!(h.run(), Err(FilterError::UnexpectedFrame { got: "encoded", .. })));
    }
}
