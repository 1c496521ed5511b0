//! `recorder`: writes the audio it receives to a 16-bit mono WAV file.
//!
//! The file is finalized (its header's lengths written) at `end_of_stream`, on [`Recorder::close`],
//! or, failing both, when the recorder is dropped (hound's writer finalizes on drop).

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use crate::filter::{Filter, FilterDesc, FilterError, FilterEvent, ProcessCx};
use crate::nodes::file_player::SUPPORTED_RATES;

const NAME: &str = "recorder";
/// Samples a 16-bit WAV can hold: its data length is a 32-bit byte count (minus header room).
const MAX_SAMPLES: u64 = (u32::MAX as u64 - 64) / 2;

pub struct Recorder {
    path: PathBuf,
    rate: u32,
    /// `None` once closed: later frames are dropped.
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    samples: u64,
}

impl Recorder {
    pub const DESC: FilterDesc = FilterDesc { name: NAME, inputs: 1, outputs: 0, pump: false };

    /// Create (or truncate) `path` for audio at `rate` Hz, one of the file player's rates.
    pub fn create(path: &Path, rate: u32) -> Result<Recorder, FilterError> {
        if !SUPPORTED_RATES.contains(&rate) {
            return Err(FilterError::UnsupportedRate { filter: NAME, rate });
        }
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(|e| write_error(path, e))?;
        Ok(Recorder { path: path.to_owned(), rate, writer: Some(writer), samples: 0 })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn is_closed(&self) -> bool {
        self.writer.is_none()
    }

    /// Finalize the file now. Returns the `RecordingClosed` event for the caller to deliver (there is
    /// no tick to emit it from), or `None` if the recording was already closed.
    pub fn close(&mut self) -> Result<Option<FilterEvent>, FilterError> {
        let Some(writer) = self.writer.take() else {
            return Ok(None);
        };
        writer.finalize().map_err(|e| write_error(&self.path, e))?;
        Ok(Some(FilterEvent::RecordingClosed { file: self.path.clone(), samples: self.samples }))
    }

    /// [`close`](Self::close), consuming the recorder.
    pub fn finish(mut self) -> Result<Option<FilterEvent>, FilterError> {
        self.close()
    }

    fn write(&mut self, samples: &[i16]) -> Result<(), FilterError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        // WAV sizes are 32-bit (about 74 hours at 8 kHz); hound would overflow past that.
        let n = u32::try_from(samples.len()).unwrap_or(u32::MAX);
        if self.samples + u64::from(n) > MAX_SAMPLES {
            let source = io::Error::new(io::ErrorKind::FileTooLarge, "a WAV file holds at most 4 GiB of audio");
            return Err(FilterError::Write { filter: NAME, path: self.path.clone(), source });
        }
        let mut block = writer.get_i16_writer(n);
        for &s in samples {
            block.write_sample(s);
        }
        block.flush().map_err(|e| write_error(&self.path, e))?;
        self.samples += samples.len() as u64;
        Ok(())
    }
}

impl Filter for Recorder {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        while let Some(audio) = cx.pop_audio(0, NAME)? {
            if self.writer.is_none() {
                continue;
            }
            if audio.rate != self.rate {
                return Err(FilterError::UnsupportedRate { filter: NAME, rate: audio.rate });
            }
            self.write(&audio.samples)?;
            if audio.end_of_stream {
                if let Some(event) = self.close()? {
                    cx.emit(event);
                }
            }
        }
        Ok(())
    }
}

fn write_error(path: &Path, e: hound::Error) -> FilterError {
    let source = match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    };
    FilterError::Write { filter: NAME, path: path.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::AudioFrame;
    use crate::graph::Graph;
    use crate::nodes::{FilePlayer, Resampler};
    use crate::testing::{sine, test_signal, FilterHarness};
    use crate::{NoClock, TICK};

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rms-recorder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(name)
    }

    fn read_back(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).expect("a valid WAV");
        let samples = r.samples::<i16>().collect::<Result<Vec<_>, _>>().expect("samples");
        (r.spec(), samples)
    }

    fn frames(samples: &[i16], rate: u32) -> Vec<AudioFrame> {
        let mut frames: Vec<AudioFrame> =
            samples.chunks(rate as usize / 100).map(|c| AudioFrame::new(c.to_vec(), rate)).collect();
        if let Some(last) = frames.last_mut() {
            last.end_of_stream = true;
        }
        frames
    }

    #[test]
    fn records_bit_exactly_and_closes_at_end_of_stream() {
        let path = temp_path("sine.wav");
        let data = sine(8000, 1000.0, 12000.0, 8000 + 37);
        let mut h = FilterHarness::new(Recorder::create(&path, 8000).expect("create"));
        let all = frames(&data, 8000);
        let count = all.len();
        for (i, f) in all.into_iter().enumerate() {
            h.push(0, f);
            h.run().expect("record");
            let closed = i == count - 1;
            assert_eq!(h.events.len(), usize::from(closed), "event only with the last frame");
        }
        assert_eq!(h.events, vec![FilterEvent::RecordingClosed { file: path.clone(), samples: data.len() as u64 }]);
        assert!(h.filter.is_closed());
        let (spec, samples) = read_back(&path);
        assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 8000, 16));
        assert_eq!(samples, data);
        // Frames after the end are dropped; closing again is a no-op.
        h.push(0, AudioFrame::new(vec![1; 80], 8000));
        h.run().expect("ignored");
        assert_eq!(h.filter.close().expect("close"), None);
        assert_eq!(read_back(&path).1.len(), data.len());
    }

    #[test]
    fn close_finalizes_and_reports_once() {
        let path = temp_path("closed.wav");
        let data = sine(16000, 440.0, 9000.0, 1600);
        let mut h = FilterHarness::new(Recorder::create(&path, 16000).expect("create"));
        for mut f in frames(&data, 16000) {
            f.end_of_stream = false;
            h.push(0, f);
            h.run().expect("record");
        }
        assert!(h.events.is_empty());
        assert_eq!(h.filter.samples(), 1600);
        let event = h.filter.close().expect("close");
        assert_eq!(event, Some(FilterEvent::RecordingClosed { file: path.clone(), samples: 1600 }));
        assert_eq!(h.filter.close().expect("close again"), None);
        assert_eq!(read_back(&path).1, data);
    }

    #[test]
    fn dropping_without_close_still_finalizes() {
        let path = temp_path("dropped.wav");
        let data = sine(8000, 700.0, 9000.0, 999);
        let mut h = FilterHarness::new(Recorder::create(&path, 8000).expect("create"));
        h.push(0, AudioFrame::new(data.clone(), 8000));
        h.run().expect("record");
        drop(h);
        assert_eq!(read_back(&path).1, data);
    }

    #[test]
    fn finish_consumes_and_finalizes() {
        let path = temp_path("finished.wav");
        let mut r = Recorder::create(&path, 48000).expect("create");
        r.write(&[1, 2, 3]).expect("write");
        assert_eq!(r.finish().expect("finish"), Some(FilterEvent::RecordingClosed { file: path.clone(), samples: 3 }));
        assert_eq!(read_back(&path).1, vec![1, 2, 3]);
    }

    #[test]
    fn wrong_input_fails() {
        let path = temp_path("wrong.wav");
        let mut h = FilterHarness::new(Recorder::create(&path, 8000).expect("create"));
        h.push(0, AudioFrame::new(vec![0; 160], 16000));
        assert!(matches!(h.run(), Err(FilterError::UnsupportedRate { filter: "recorder", rate: 16000 })));
        let packet = crate::testing::pcmu_packet(160);
        h.push(0, packet);
        assert!(matches!(h.run(), Err(FilterError::UnexpectedFrame { got: "encoded", .. })));
    }

    #[test]
    fn create_errors_name_the_file() {
        let path = temp_path("no-such-dir").join("x.wav");
        let Err(FilterError::Write { path: p, source, .. }) = Recorder::create(&path, 8000) else {
            panic!("must fail")
        };
        assert_eq!((p, source.kind()), (path, io::ErrorKind::NotFound));
        assert!(matches!(
            Recorder::create(&temp_path("r.wav"), 11025),
            Err(FilterError::UnsupportedRate { rate: 11025, .. })
        ));
    }

    /// The play-and-record path end to end in a graph: file_player (16 kHz) → resampler → recorder (8 kHz).
    #[test]
    fn a_graph_plays_resamples_and_records() {
        let prompt = temp_path("prompt16k.wav");
        let recording = temp_path("recording8k.wav");
        let data = test_signal(16000, 16000 * 2 + 123, 3000.0);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&prompt, spec).expect("prompt");
        for &s in &data {
            w.write_sample(s).expect("prompt");
        }
        w.finalize().expect("prompt");

        let mut g = Graph::new();
        let player = g.add(FilePlayer::new());
        let resampler = g.add(Resampler::new(8000));
        let recorder = g.add(Recorder::create(&recording, 8000).expect("create"));
        g.chain(&[player, resampler, recorder]).expect("link");
        g.filter_mut::<FilePlayer>(player).expect("player").play(&prompt, 1).expect("play");
        let mut events = Vec::new();
        for tick in 0..250u32 {
            g.tick(TICK * tick, &NoClock).expect("tick");
            events.extend(g.drain_events().map(|e| (tick, e)));
        }
        // 32123 samples: 201 frames, the last on tick 200; 16061.5 rounds up at 8 kHz.
        let samples = (data.len() as u64).div_ceil(2);
        assert_eq!(
            events,
            vec![
                (200, FilterEvent::EndOfFile { file: prompt }),
                (200, FilterEvent::RecordingClosed { file: recording.clone(), samples }),
            ]
        );
        let (spec, recorded) = read_back(&recording);
        assert_eq!((spec.sample_rate, recorded.len() as u64), (8000, samples));
        // The same audio through a lone resampler: the graph must neither lose nor reorder anything.
        let mut alone = FilterHarness::new(Resampler::new(8000));
        for f in frames(&data, 16000) {
            alone.push(0, f);
            alone.run().expect("resample");
        }
        assert_eq!(recorded, alone.take_samples(0));
    }
}
