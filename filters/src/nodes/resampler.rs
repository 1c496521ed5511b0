//! `resampler`: converts PCM frames to the call's rate (a prompt at 16 kHz for a PCMU call at 8 kHz).
//!
//! Frames already at the output rate pass through untouched. Others go through rubato's FFT
//! resampler, one 10 ms chunk at a time. A stream's output is time-aligned with its input (the
//! resampler's delay is dropped at the start) and, at `end_of_stream`, the tail is flushed so that the
//! stream yields exactly round(input × out_rate / in_rate) samples; the next stream starts afresh.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};
use crate::frame::{AudioFrame, Frame};
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
        while let Some(frame) = cx.pop(0) {
            let Frame::Audio(audio) = frame else {
                return Err(FilterError::UnexpectedFrame {
                    filter: NAME,
                    pin: 0,
                    expected: "audio",
                    got: frame.kind(),
                });
            };
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

/// Conversion state of one input rate.
struct Stream {
    in_rate: u32,
    out_rate: u32,
    fft: Fft<f32>,
    /// One input chunk being collected.
    input: Vec<f32>,
    filled: usize,
    /// One output chunk.
    output: Vec<f32>,
    /// Output samples still to drop at the stream start (the resampler's delay).
    to_trim: usize,
    total_in: u64,
    total_out: u64,
}

impl Stream {
    fn new(in_rate: u32, out_rate: u32) -> Result<Stream, FilterError> {
        let failed = |e: &dyn std::fmt::Display| FilterError::Resampler { filter: NAME, detail: e.to_string() };
        // One FFT block per 10 ms frame where the rates allow; rubato rounds up to a whole block (441
        // samples, 20 ms, at 22050 Hz). An odd block (441, from 22050 or 44100 Hz) centres rubato's filter
        // half an input sample early, so that output leads by under one output sample; an even block
        // would fix that but double the chunk and make output come in bursts.
        let chunk = in_rate as usize / 100;
        let fft =
            Fft::<f32>::new(in_rate as usize, out_rate as usize, chunk, 1, FixedSync::Both).map_err(|e| failed(&e))?;
        let input = vec![0.0; fft.input_frames_next()];
        let output = vec![0.0; fft.output_frames_next()];
        let to_trim = fft.output_delay();
        Ok(Stream { in_rate, out_rate, fft, input, filled: 0, output, to_trim, total_in: 0, total_out: 0 })
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
            let n = rest.len().min(self.input.len() - self.filled);
            for (dst, &src) in self.input[self.filled..self.filled + n].iter_mut().zip(&rest[..n]) {
                *dst = f32::from(src);
            }
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
            self.input[self.filled..].fill(0.0);
            self.run_chunk(out)?;
        }
        // The last chunk overshoots into the zero padding: cut it back.
        let excess = usize::try_from(self.total_out - target).unwrap_or(usize::MAX);
        out.truncate(out.len().saturating_sub(excess));
        self.fft.reset();
        self.filled = 0;
        self.to_trim = self.fft.output_delay();
        self.total_in = 0;
        self.total_out = 0;
        Ok(())
    }

    fn run_chunk(&mut self, out: &mut Vec<i16>) -> Result<(), FilterError> {
        let failed = |e: &dyn std::fmt::Display| FilterError::Resampler { filter: NAME, detail: e.to_string() };
        let frames_in = self.input.len();
        let frames_out = self.output.len();
        let input = InterleavedSlice::new(&self.input[..], 1, frames_in).map_err(|e| failed(&e))?;
        let mut output = InterleavedSlice::new_mut(&mut self.output[..], 1, frames_out).map_err(|e| failed(&e))?;
        let (_, produced) = self.fft.process_into_buffer(&input, &mut output, None).map_err(|e| failed(&e))?;
        self.filled = 0;
        let skip = self.to_trim.min(produced);
        self.to_trim -= skip;
        out.extend(self.output[skip..produced].iter().map(|&x| to_i16(x)));
        self.total_out += (produced - skip) as u64;
        Ok(())
    }
}

/// Round to nearest and saturate (`as` saturates; adding ±0.5 first rounds without a libm call).
fn to_i16(x: f32) -> i16 {
    (x + 0.5f32.copysign(x)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::EncodedFrame;
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
                let odd_block = Stream::new(in_rate, out_rate).expect("stream").fft.fft_size_in() % 2 == 1;
                let slack = usize::from(odd_block);
                assert!(peak.abs_diff(out_rate as usize / 10) <= slack, "{in_rate} -> {out_rate}: peak at {peak}");
            }
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
        let packet = EncodedFrame {
            payload: vec![0; 160],
            payload_type: 0,
            duration: 160,
            clock_rate: 8000,
            end_of_stream: false,
        };
        h.push(0, packet);
        assert!(matches!(h.run(), Err(FilterError::UnexpectedFrame { got: "encoded", .. })));
    }
}
