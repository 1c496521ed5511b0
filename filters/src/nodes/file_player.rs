//! `file_player`: streams an audio file as one 10 ms mono frame per tick, at the file's own rate.
//!
//! WAV is read with hound: 16-bit PCM (the common prompt format) by bulk byte reads through a small
//! buffer, other sample widths through hound's sample iterator. MP3, FLAC and Ogg Vorbis (and WAV
//! encodings hound refuses, such as µ-law) are decoded packet by packet with symphonia. Nothing is
//! loaded whole. Converting to the call's rate is the `resampler`'s job.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::filter::{Filter, FilterDesc, FilterError, FilterEvent, ProcessCx};
use crate::frame::AudioFrame;

/// Sample rates a file may have.
pub const SUPPORTED_RATES: [u32; 6] = [8000, 16000, 22050, 32000, 44100, 48000];

/// Read buffer of a WAV play: small, because a whole play graph must fit in 64 KiB of heap.
const WAV_READ_BUFFER: usize = 4096;
/// Widest frame the 16-bit path handles; its straddling-frame buffer lives on the stack.
const FAST_PATH_MAX_CHANNELS: usize = 8;
/// Undecodable packets in a row tolerated in a compressed file (one damaged frame is skipped, as
/// players do) before the file counts as corrupt.
const MAX_BAD_PACKETS_IN_ROW: u32 = 3;

/// Why a file could not be played. Every variant names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("cannot open {path}: {kind}")]
    Open { path: PathBuf, kind: io::ErrorKind },
    #[error("{path}: unsupported format: {detail}")]
    UnsupportedFormat { path: PathBuf, detail: String },
    #[error("{path}: unsupported sample rate {rate} Hz")]
    UnsupportedRate { path: PathBuf, rate: u32 },
    #[error("{path}: contains no audio")]
    Empty { path: PathBuf },
    #[error("{path}: corrupt data: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot read {path}: {kind}")]
    Read { path: PathBuf, kind: io::ErrorKind },
}

impl FileError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Open { path, .. }
            | FileError::UnsupportedFormat { path, .. }
            | FileError::UnsupportedRate { path, .. }
            | FileError::Empty { path }
            | FileError::Corrupt { path, .. }
            | FileError::Read { path, .. } => path,
        }
    }
}

/// What `play` found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    /// Sample rate in Hz; the player's frames have this rate.
    pub rate: u32,
    /// Channels in the file (the player mixes them down to mono).
    pub channels: u16,
    /// Length of one play in samples (per channel), when the container states it.
    pub duration_samples: Option<u64>,
}

impl FileInfo {
    pub fn duration(&self) -> Option<Duration> {
        let samples = self.duration_samples?;
        Some(Duration::from_nanos(samples.saturating_mul(1_000_000_000) / u64::from(self.rate)))
    }
}

/// A source filter playing one file at a time; idle (no frames) when not playing.
#[derive(Default)]
pub struct FilePlayer {
    play: Option<Play>,
}

impl FilePlayer {
    pub const DESC: FilterDesc = FilterDesc { name: "file_player", inputs: 0, outputs: 1, pump: false };

    pub fn new() -> Self {
        Self::default()
    }

    /// Open `path` now and play it from the next tick, replacing any current play (which ends
    /// without an event). `loops` is the number of plays: 1 plays once, 0 loops until `stop`.
    ///
    /// Fails if the file cannot be opened or yields no audio at all.
    pub fn play(&mut self, path: &Path, loops: u32) -> Result<FileInfo, FileError> {
        self.play = None;
        let (source, info) = Source::open(path)?;
        let mut play = Play {
            path: path.to_owned(),
            source,
            rate: info.rate,
            loops_left: loops.checked_sub(1),
            pending: Vec::with_capacity(info.rate as usize / 100 + 2),
            frames: 0,
            samples_this_loop: 0,
            end: None,
        };
        // Decode the first frame now, so a file that cannot give any audio fails here, not on a tick.
        let first = play.frame_len() + 1;
        match play.source.read(&mut play.pending, first) {
            Ok(0) => return Err(FileError::Empty { path: play.path }),
            Ok(n) => play.samples_this_loop = n as u64,
            Err(e) if play.pending.is_empty() => return Err(e.into_file_error(&play.path)),
            Err(e) => play.end = Some(End::Failed(e.into_file_error(&play.path))),
        }
        self.play = Some(play);
        Ok(info)
    }

    /// Play decoded mono samples (a cached prompt) as if they were the file `name`: same framing,
    /// loops and events as [`FilePlayer::play`], no file access on ticks. `rate` must be one of
    /// [`SUPPORTED_RATES`].
    pub fn play_pcm(&mut self, name: &Path, samples: Arc<[i16]>, rate: u32, loops: u32) -> Result<(), FileError> {
        self.play = None;
        check_rate(name, rate)?;
        if samples.is_empty() {
            return Err(FileError::Empty { path: name.to_owned() });
        }
        let mut play = Play {
            path: name.to_owned(),
            source: Source::Memory { samples, at: 0 },
            rate,
            loops_left: loops.checked_sub(1),
            pending: Vec::with_capacity(rate as usize / 100 + 2),
            frames: 0,
            samples_this_loop: 0,
            end: None,
        };
        play.fill(play.frame_len() + 1);
        self.play = Some(play);
        Ok(())
    }

    /// Stop playing now; no more frames, no end-of-file event.
    pub fn stop(&mut self) {
        self.play = None;
    }

    pub fn is_playing(&self) -> bool {
        self.play.is_some()
    }

    /// The file being played.
    pub fn file(&self) -> Option<&Path> {
        self.play.as_ref().map(|p| p.path.as_path())
    }
}

impl Filter for FilePlayer {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        let Some(play) = self.play.as_mut() else { return Ok(()) };
        let want = play.frame_len();
        // One sample of look-ahead tells whether this frame is the file's last.
        play.fill(want + 1);
        let n = want.min(play.pending.len());
        let last = play.end.is_some() && play.pending.len() <= want;
        let mut samples = Vec::with_capacity(n);
        samples.extend_from_slice(&play.pending[..n]);
        play.pending.drain(..n);
        play.frames += 1;
        cx.push(0, AudioFrame { samples, rate: play.rate, end_of_stream: last });
        if !last {
            return Ok(());
        }
        let Some(play) = self.play.take() else { return Ok(()) };
        cx.emit(match play.end {
            Some(End::Failed(error)) => FilterEvent::FileError { file: play.path, error },
            _ => FilterEvent::EndOfFile { file: play.path },
        });
        Ok(())
    }
}

/// One `play` call in progress.
struct Play {
    path: PathBuf,
    source: Source,
    rate: u32,
    /// Plays still to start after the current one; `None` loops forever.
    loops_left: Option<u32>,
    /// Decoded mono samples not yet sent.
    pending: Vec<i16>,
    /// Frames sent so far; sets the 220/221 cadence of 22050 Hz.
    frames: u64,
    samples_this_loop: u64,
    /// Set once the source has nothing more to give; `pending` then holds the last samples.
    end: Option<End>,
}

enum End {
    Finished,
    Failed(FileError),
}

impl Play {
    /// Samples in the next 10 ms frame, so that the long-run count is exact at 22050 Hz too.
    fn frame_len(&self) -> usize {
        let rate = u64::from(self.rate);
        ((self.frames + 1) * rate / 100 - self.frames * rate / 100) as usize
    }

    /// Decode until `pending` holds `need` samples or the last loop has ended.
    fn fill(&mut self, need: usize) {
        while self.pending.len() < need && self.end.is_none() {
            let missing = need - self.pending.len();
            match self.source.read(&mut self.pending, missing) {
                Ok(0) => self.next_loop(),
                Ok(n) => self.samples_this_loop += n as u64,
                Err(e) => self.end = Some(End::Failed(e.into_file_error(&self.path))),
            }
        }
    }

    fn next_loop(&mut self) {
        // A play that gave nothing would otherwise spin here forever.
        if self.samples_this_loop == 0 {
            self.end = Some(End::Finished);
            return;
        }
        match self.loops_left.as_mut() {
            Some(0) => {
                self.end = Some(End::Finished);
                return;
            }
            Some(n) => *n -= 1,
            None => {}
        }
        if let Err(e) = self.source.rewind(&self.path) {
            self.end = Some(End::Failed(e));
            return;
        }
        self.samples_this_loop = 0;
    }
}

/// A failure while reading decoded audio; `Play` adds the path.
#[derive(Debug)]
enum ReadError {
    Corrupt(String),
    Io(io::ErrorKind),
}

impl ReadError {
    fn into_file_error(self, path: &Path) -> FileError {
        let path = path.to_owned();
        match self {
            ReadError::Corrupt(detail) => FileError::Corrupt { path, detail },
            ReadError::Io(kind) => FileError::Read { path, kind },
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return ReadError::Corrupt("file ends inside the audio data".into());
        }
        ReadError::Io(e.kind())
    }
}

impl From<hound::Error> for ReadError {
    fn from(e: hound::Error) -> Self {
        match e {
            hound::Error::IoError(e) => e.into(),
            other => ReadError::Corrupt(other.to_string()),
        }
    }
}

/// Decode all of `path` to mono samples, if it holds at most `max_samples` (at its own rate).
/// `Ok(None)` when it is longer; an error when it cannot be opened or is corrupt anywhere.
pub fn decode_file(path: &Path, max_samples: u64) -> Result<Option<(FileInfo, Vec<i16>)>, FileError> {
    let (mut source, info) = Source::open(path)?;
    if info.duration_samples.is_some_and(|n| n > max_samples) {
        return Ok(None);
    }
    let mut samples = Vec::with_capacity(info.duration_samples.unwrap_or(0).min(max_samples) as usize);
    loop {
        match source.read(&mut samples, 4096) {
            Ok(0) => break,
            Ok(_) if samples.len() as u64 > max_samples => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.into_file_error(path)),
        }
    }
    if samples.is_empty() {
        return Err(FileError::Empty { path: path.to_owned() });
    }
    Ok(Some((info, samples)))
}

/// An open file, positioned at its next undecoded sample, or decoded samples in memory.
enum Source {
    Pcm16(Pcm16Wav),
    Wav(HoundWav),
    Coded(Coded),
    Memory { samples: Arc<[i16]>, at: usize },
}

impl Source {
    fn open(path: &Path) -> Result<(Source, FileInfo), FileError> {
        let open_error = |e: io::Error| FileError::Open { path: path.to_owned(), kind: e.kind() };
        let mut file = File::open(path).map_err(open_error)?;
        let mut magic = [0u8; 4];
        let is_riff = read_prefix(&mut file, &mut magic).map_err(open_error)? == magic.len() && &magic == b"RIFF";
        if is_riff {
            file.rewind().map_err(open_error)?;
            if let Some(opened) = open_wav(path, file)? {
                return Ok(opened);
            }
            // hound does not know this WAV encoding (µ-law, A-law, ADPCM...): symphonia may.
            file = File::open(path).map_err(open_error)?;
        } else {
            file.rewind().map_err(open_error)?;
        }
        let (coded, info) = Coded::open(path, file)?;
        Ok((Source::Coded(coded), info))
    }

    /// Append about `want` decoded mono samples to `out` (a compressed packet may give more); `Ok(0)`
    /// at the end of the file. On error, samples decoded before it are already in `out`.
    fn read(&mut self, out: &mut Vec<i16>, want: usize) -> Result<usize, ReadError> {
        match self {
            Source::Pcm16(s) => s.read(out, want),
            Source::Wav(s) => s.read(out, want),
            Source::Coded(s) => s.read(out),
            Source::Memory { samples, at } => {
                let n = want.min(samples.len() - *at);
                out.extend_from_slice(&samples[*at..*at + n]);
                *at += n;
                Ok(n)
            }
        }
    }

    /// Go back to the first sample, for the next loop.
    fn rewind(&mut self, path: &Path) -> Result<(), FileError> {
        let read_error = |e: io::Error| FileError::Read { path: path.to_owned(), kind: e.kind() };
        match self {
            Source::Pcm16(s) => s.rewind().map_err(read_error),
            Source::Wav(s) => s.reader.seek(0).map_err(read_error),
            Source::Memory { at, .. } => {
                *at = 0;
                Ok(())
            }
            Source::Coded(_) => {
                // Reopening is simpler and as cheap as seeking, and works for every container.
                let file = File::open(path).map_err(|e| FileError::Open { path: path.to_owned(), kind: e.kind() })?;
                let (coded, _) = Coded::open(path, file)?;
                *self = Source::Coded(coded);
                Ok(())
            }
        }
    }
}

/// Read up to `buf.len()` bytes; fewer only at the end of the file.
fn read_prefix(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn check_rate(path: &Path, rate: u32) -> Result<(), FileError> {
    if SUPPORTED_RATES.contains(&rate) {
        return Ok(());
    }
    Err(FileError::UnsupportedRate { path: path.to_owned(), rate })
}

/// Parse a RIFF/WAVE header with hound. `Ok(None)`: an encoding hound does not support.
fn open_wav(path: &Path, file: File) -> Result<Option<(Source, FileInfo)>, FileError> {
    let unsupported = |detail: String| FileError::UnsupportedFormat { path: path.to_owned(), detail };
    let reader = match hound::WavReader::new(BufReader::with_capacity(WAV_READ_BUFFER, file)) {
        Ok(r) => r,
        Err(hound::Error::Unsupported) => return Ok(None),
        Err(hound::Error::IoError(e)) if e.kind() != io::ErrorKind::UnexpectedEof => {
            return Err(FileError::Read { path: path.to_owned(), kind: e.kind() })
        }
        Err(e) => return Err(unsupported(format!("bad WAV header: {e}"))),
    };
    let spec = reader.spec();
    check_rate(path, spec.sample_rate)?;
    let frames = u64::from(reader.duration());
    if frames == 0 {
        return Err(FileError::Empty { path: path.to_owned() });
    }
    let info = FileInfo { rate: spec.sample_rate, channels: spec.channels, duration_samples: Some(frames) };
    let channels = usize::from(spec.channels);
    let kind = match spec.sample_format {
        hound::SampleFormat::Float if spec.bits_per_sample == 32 => WavKind::Float,
        hound::SampleFormat::Float => return Err(unsupported(format!("{}-bit float", spec.bits_per_sample))),
        hound::SampleFormat::Int if (8..=32).contains(&spec.bits_per_sample) => {
            WavKind::Int { bits: spec.bits_per_sample }
        }
        hound::SampleFormat::Int => return Err(unsupported(format!("{}-bit PCM", spec.bits_per_sample))),
    };
    let read_error = |e: io::Error| FileError::Read { path: path.to_owned(), kind: e.kind() };
    if kind == (WavKind::Int { bits: 16 }) && channels <= FAST_PATH_MAX_CHANNELS {
        let samples = u64::from(reader.len());
        let mut inner = reader.into_inner();
        // hound keeps the container width private; the data chunk's length field, the 4 bytes just
        // read, tells it. 16 valid bits in a wider container go through hound's iterator instead.
        let data_start = inner.stream_position().map_err(read_error)?;
        inner.seek_relative(-4).map_err(read_error)?;
        let mut len = [0u8; 4];
        inner.read_exact(&mut len).map_err(read_error)?;
        let data_len = u64::from(u32::from_le_bytes(len));
        if data_len == samples * 2 {
            let source = Pcm16Wav { reader: inner, channels, data_start, data_len, left: data_len };
            return Ok(Some((Source::Pcm16(source), info)));
        }
        inner.rewind().map_err(read_error)?;
        let reader = hound::WavReader::new(inner).map_err(|e| unsupported(e.to_string()))?;
        return Ok(Some((Source::Wav(HoundWav { reader, channels, kind }), info)));
    }
    Ok(Some((Source::Wav(HoundWav { reader, channels, kind }), info)))
}

/// 16-bit PCM WAV, read as bytes straight from the data chunk.
struct Pcm16Wav {
    reader: BufReader<File>,
    channels: usize,
    data_start: u64,
    data_len: u64,
    /// Bytes of the data chunk not yet read.
    left: u64,
}

impl Pcm16Wav {
    fn read(&mut self, out: &mut Vec<i16>, want: usize) -> Result<usize, ReadError> {
        let frame_bytes = 2 * self.channels;
        let mut produced = 0;
        while produced < want && self.left > 0 {
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if buf.is_empty() {
                return Err(ReadError::Corrupt(format!("data chunk ends {} bytes early", self.left)));
            }
            let usable = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
            let frames = (usable / frame_bytes).min(want - produced);
            if frames == 0 {
                // A frame straddles the end of the read buffer.
                let mut frame = [0u8; 2 * FAST_PATH_MAX_CHANNELS];
                let frame = &mut frame[..frame_bytes];
                self.reader.read_exact(frame)?;
                out.push(mix_down_16(frame, self.channels));
                self.left -= frame_bytes as u64;
                produced += 1;
                continue;
            }
            let bytes = &buf[..frames * frame_bytes];
            if self.channels == 1 {
                out.extend(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])));
            } else {
                out.extend(bytes.chunks_exact(frame_bytes).map(|f| mix_down_16(f, self.channels)));
            }
            self.reader.consume(frames * frame_bytes);
            self.left -= (frames * frame_bytes) as u64;
            produced += frames;
        }
        Ok(produced)
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.reader.seek(SeekFrom::Start(self.data_start))?;
        self.left = self.data_len;
        Ok(())
    }
}

/// The mean of one interleaved 16-bit little-endian frame (truncated toward zero).
fn mix_down_16(frame: &[u8], channels: usize) -> i16 {
    let sum: i32 = frame.chunks_exact(2).map(|b| i32::from(i16::from_le_bytes([b[0], b[1]]))).sum();
    (sum / channels as i32) as i16
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WavKind {
    Int { bits: u16 },
    Float,
}

/// WAV in other sample formats, through hound's sample iterator.
struct HoundWav {
    reader: hound::WavReader<BufReader<File>>,
    channels: usize,
    kind: WavKind,
}

impl HoundWav {
    fn read(&mut self, out: &mut Vec<i16>, want: usize) -> Result<usize, ReadError> {
        match self.kind {
            WavKind::Int { bits } => {
                let to_i16 = move |v: i32| if bits >= 16 { v >> (bits - 16) } else { v << (16 - bits) };
                read_mixed(self.reader.samples::<i32>(), self.channels, want, out, to_i16)
            }
            WavKind::Float => {
                let to_i16 = |v: f32| (f64::from(v) * 32768.0).round().clamp(-32768.0, 32767.0) as i32;
                read_mixed(self.reader.samples::<f32>(), self.channels, want, out, to_i16)
            }
        }
    }
}

/// Mix up to `want` interleaved frames from `samples` down to mono.
fn read_mixed<S>(
    mut samples: impl Iterator<Item = hound::Result<S>>,
    channels: usize,
    want: usize,
    out: &mut Vec<i16>,
    to_i16: impl Fn(S) -> i32,
) -> Result<usize, ReadError> {
    for produced in 0..want {
        let mut sum = 0i64;
        for channel in 0..channels {
            match samples.next() {
                Some(Ok(v)) => sum += i64::from(to_i16(v)),
                Some(Err(e)) => return Err(e.into()),
                None if channel == 0 => return Ok(produced),
                None => return Err(ReadError::Corrupt("last frame is incomplete".into())),
            }
        }
        out.push((sum / channels as i64) as i16);
    }
    Ok(want)
}

/// A compressed file (or a WAV encoding hound lacks), decoded by symphonia one packet at a time.
struct Coded {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    rate: u32,
    /// One decoded packet, interleaved, before mixing down.
    interleaved: Vec<i16>,
    bad_in_row: u32,
}

impl Coded {
    fn open(path: &Path, file: File) -> Result<(Coded, FileInfo), FileError> {
        let unsupported = |detail: String| FileError::UnsupportedFormat { path: path.to_owned(), detail };
        let source = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(OsStr::to_str) {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(&hint, source, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| match e {
                DecodeError::IoError(e) if e.kind() != io::ErrorKind::UnexpectedEof => {
                    FileError::Read { path: path.to_owned(), kind: e.kind() }
                }
                e => unsupported(e.to_string()),
            })?;
        let track = format.default_track(TrackType::Audio).ok_or_else(|| unsupported("no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| unsupported("no audio codec parameters".into()))?;
        let rate = params.sample_rate.ok_or_else(|| unsupported("unknown sample rate".into()))?;
        check_rate(path, rate)?;
        let channels = params.channels.as_ref().map_or(1, |c| c.count());
        let info = FileInfo {
            rate,
            channels: u16::try_from(channels).map_err(|_| unsupported(format!("{channels} channels")))?,
            duration_samples: track.num_frames,
        };
        let track_id = track.id;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| unsupported(e.to_string()))?;
        let coded = Coded { format, decoder, track_id, rate, interleaved: Vec::new(), bad_in_row: 0 };
        Ok((coded, info))
    }

    /// Decode the next packet of the track into `out`.
    fn read(&mut self, out: &mut Vec<i16>) -> Result<usize, ReadError> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(packet)) => packet,
                // A chained stream (new track list) ends the play: only the first is ours.
                Ok(None) | Err(DecodeError::ResetRequired) => return Ok(0),
                Err(DecodeError::IoError(e)) => return Err(e.into()),
                Err(e) => return Err(ReadError::Corrupt(e.to_string())),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(decoded) => decoded,
                Err(e @ (DecodeError::DecodeError(_) | DecodeError::IoError(_))) => {
                    self.bad_in_row += 1;
                    if self.bad_in_row > MAX_BAD_PACKETS_IN_ROW {
                        return Err(ReadError::Corrupt(e.to_string()));
                    }
                    continue;
                }
                Err(e) => return Err(ReadError::Corrupt(e.to_string())),
            };
            self.bad_in_row = 0;
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            if decoded.spec().rate() != self.rate {
                return Err(ReadError::Corrupt(format!("sample rate changes to {} Hz", decoded.spec().rate())));
            }
            let channels = decoded.spec().channels().count().max(1);
            self.interleaved.resize(decoded.samples_interleaved(), 0);
            decoded.copy_to_slice_interleaved::<i16, _>(&mut self.interleaved[..]);
            if channels == 1 {
                out.extend_from_slice(&self.interleaved);
            } else {
                out.extend(
                    self.interleaved
                        .chunks_exact(channels)
                        .map(|f| (f.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16),
                );
            }
            return Ok(frames);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;
    use crate::testing::{goertzel_ratio, sine, FilterHarness};

    /// A fresh path under the system temp dir, unique to this process and test.
    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rms-file-player-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(name)
    }

    fn write_wav<S: hound::Sample + Copy>(path: &Path, spec: hound::WavSpec, samples: &[S]) {
        let mut w = hound::WavWriter::create(path, spec).expect("create wav");
        for &s in samples {
            w.write_sample(s).expect("write sample");
        }
        w.finalize().expect("finalize wav");
    }

    fn pcm16(rate: u32, channels: u16) -> hound::WavSpec {
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int }
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
    }

    /// What a player produced: its frames per tick and its events with their tick.
    struct Run {
        frames: Vec<(u64, AudioFrame)>,
        events: Vec<(u64, FilterEvent)>,
    }

    impl Run {
        fn samples(&self) -> Vec<i16> {
            self.frames.iter().flat_map(|(_, f)| f.samples.iter().copied()).collect()
        }
    }

    /// Tick `player` `ticks` times; `process` must never fail.
    fn run(player: FilePlayer, ticks: u64) -> (Run, FilePlayer) {
        let mut h = FilterHarness::new(player);
        let mut out = Run { frames: Vec::new(), events: Vec::new() };
        for tick in 0..ticks {
            h.run().expect("the file player never fails a tick");
            for f in h.take(0) {
                let Frame::Audio(a) = f else { panic!("file_player emits audio only") };
                out.frames.push((tick, a));
            }
            out.events.extend(h.events.drain(..).map(|e| (tick, e)));
        }
        (out, h.filter)
    }

    fn play(path: &Path, loops: u32) -> (FilePlayer, FileInfo) {
        let mut p = FilePlayer::new();
        let info = p.play(path, loops).expect("play");
        (p, info)
    }

    #[test]
    fn idle_player_emits_nothing() {
        let (r, p) = run(FilePlayer::new(), 5);
        assert!(r.frames.is_empty() && r.events.is_empty());
        assert!(!p.is_playing());
    }

    #[test]
    fn three_seconds_at_16k_is_300_frames_bit_equal() {
        let path = temp_path("three_seconds.wav");
        let data = sine(16000, 440.0, 12000.0, 48000);
        write_wav(&path, pcm16(16000, 1), &data);
        let (p, info) = play(&path, 1);
        assert_eq!(info, FileInfo { rate: 16000, channels: 1, duration_samples: Some(48000) });
        assert_eq!(info.duration(), Some(Duration::from_secs(3)));
        let (r, p) = run(p, 310);
        assert_eq!(r.frames.len(), 300);
        for (i, (tick, f)) in r.frames.iter().enumerate() {
            assert_eq!(*tick, i as u64, "one frame per tick");
            assert_eq!(f.samples.len(), 160);
            assert_eq!(f.rate, 16000);
            assert_eq!(f.end_of_stream, i == 299, "frame {i}");
        }
        assert_eq!(r.events, vec![(299, FilterEvent::EndOfFile { file: path.clone() })]);
        assert_eq!(r.samples(), data);
        assert!(!p.is_playing());
    }

    #[test]
    fn stereo_is_mixed_down_exactly() {
        let path = temp_path("stereo.wav");
        let left = sine(8000, 300.0, 20000.0, 1234);
        let right = sine(8000, 1700.0, -31000.0, 1234);
        let interleaved: Vec<i16> = left.iter().zip(&right).flat_map(|(&l, &r)| [l, r]).collect();
        write_wav(&path, pcm16(8000, 2), &interleaved);
        let (p, info) = play(&path, 1);
        assert_eq!(info.channels, 2);
        let (r, _) = run(p, 20);
        let expected: Vec<i16> =
            left.iter().zip(&right).map(|(&l, &r)| ((i32::from(l) + i32::from(r)) / 2) as i16).collect();
        assert_eq!(r.samples(), expected);
        let last = &r.frames.last().expect("frames").1;
        assert_eq!(last.samples.len(), 1234 % 80, "the last frame carries only what is left");
        assert!(last.end_of_stream);
    }

    #[test]
    fn rate_22050_alternates_220_and_221_and_counts_exactly() {
        let path = temp_path("r22050.wav");
        let n = 22050 * 2 + 77;
        let data = sine(22050, 1000.0, 9000.0, n);
        write_wav(&path, pcm16(22050, 1), &data);
        let (p, _) = play(&path, 1);
        let (r, _) = run(p, 250);
        let lens: Vec<usize> = r.frames.iter().map(|(_, f)| f.samples.len()).collect();
        for (k, len) in lens.iter().enumerate().take(lens.len() - 1) {
            assert_eq!(*len, if k % 2 == 0 { 220 } else { 221 }, "frame {k}");
        }
        assert_eq!(lens.iter().sum::<usize>(), n);
        assert_eq!(r.samples(), data);
        assert_eq!(r.events.len(), 1);
    }

    #[test]
    fn two_loops_play_twice_seamlessly_with_one_end_event() {
        let path = temp_path("loops.wav");
        let data = sine(8000, 500.0, 10000.0, 1000); // 12.5 frames: the loop seam falls inside a frame
        write_wav(&path, pcm16(8000, 1), &data);
        let (p, _) = play(&path, 2);
        let (r, _) = run(p, 40);
        assert_eq!(r.samples(), [data.clone(), data].concat());
        assert_eq!(r.frames.len(), 25);
        assert!(r.frames[..24].iter().all(|(_, f)| f.samples.len() == 80 && !f.end_of_stream));
        assert!(r.frames[24].1.end_of_stream);
        assert_eq!(r.events, vec![(24, FilterEvent::EndOfFile { file: path })]);
    }

    #[test]
    fn zero_loops_plays_until_stopped() {
        let path = temp_path("forever.wav");
        let data = sine(8000, 500.0, 10000.0, 240);
        write_wav(&path, pcm16(8000, 1), &data);
        let (p, _) = play(&path, 0);
        let (r, mut p) = run(p, 100);
        assert_eq!(r.frames.len(), 100);
        assert!(r.events.is_empty() && r.frames.iter().all(|(_, f)| !f.end_of_stream));
        assert_eq!(r.samples(), data.repeat(100 * 80 / 240 + 1)[..8000]);
        p.stop();
        let (r, _) = run(p, 3);
        assert!(r.frames.is_empty() && r.events.is_empty());
    }

    #[test]
    fn other_wav_sample_formats_are_converted() {
        let check = |bits: u16, stored: &[i32], expected: &[i16]| {
            let path = temp_path(&format!("int{bits}.wav"));
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: bits,
                sample_format: hound::SampleFormat::Int,
            };
            if bits == 8 {
                write_wav(&path, spec, &stored.iter().map(|&v| v as i8).collect::<Vec<_>>());
            } else {
                write_wav(&path, spec, stored);
            }
            let (p, _) = play(&path, 1);
            let (r, _) = run(p, 2);
            assert_eq!(r.samples(), expected, "{bits}-bit");
            assert_eq!(r.events.len(), 1);
        };
        // Narrower samples scale up, wider ones keep their top 16 bits.
        check(8, &[0, 30, -30, 127, -128], &[0, 30 << 8, -30 << 8, 127 << 8, -128 << 8]);
        check(24, &[0, 600, -600, 0x7f_ffff, -0x80_0000], &[0, 2, -3, 32767, -32768]);
        check(32, &[0, 150_000, -150_000, i32::MAX, i32::MIN], &[0, 2, -3, 32767, -32768]);
        let path = temp_path("float.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        write_wav(&path, spec, &[0.5f32, 0.25, -1.0, -1.0, 2.0, 2.0]);
        let (p, _) = play(&path, 1);
        let (r, _) = run(p, 2);
        assert_eq!(r.samples(), vec![(16384 + 8192) / 2, -32768, 32767]);
    }

    #[test]
    fn mu_law_wav_goes_through_symphonia() {
        // hound refuses format tag 7 (G.711 µ-law), common for telephony prompts.
        let path = temp_path("mulaw.wav");
        let data: Vec<u8> = [0xff, 0x80, 0x00].repeat(100);
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(4 + 26 + 12 + 8 + data.len() as u32).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&18u32.to_le_bytes());
        for field in [7u16, 1] {
            wav.extend_from_slice(&field.to_le_bytes());
        }
        wav.extend_from_slice(&8000u32.to_le_bytes());
        wav.extend_from_slice(&8000u32.to_le_bytes());
        for field in [1u16, 8, 0] {
            wav.extend_from_slice(&field.to_le_bytes());
        }
        wav.extend_from_slice(b"fact");
        wav.extend_from_slice(&4u32.to_le_bytes());
        wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
        wav.extend_from_slice(&data);
        std::fs::write(&path, wav).expect("write");
        let (p, info) = play(&path, 2);
        assert_eq!((info.rate, info.channels), (8000, 1));
        let (r, _) = run(p, 10);
        let s = r.samples();
        assert_eq!(s.len(), 600, "two plays");
        // 0xff is zero, 0x80 the largest positive value, 0x00 the largest negative one.
        assert_eq!(s[0], 0);
        assert!(s[1] > 30000 && s[2] < -30000, "{:?}", &s[..3]);
        assert_eq!(r.events.len(), 1);
    }

    #[test]
    fn missing_file_fails_to_open() {
        let path = temp_path("does-not-exist.wav");
        let err = FilePlayer::new().play(&path, 1).expect_err("missing");
        assert_eq!(err, FileError::Open { path: path.clone(), kind: io::ErrorKind::NotFound });
        assert_eq!(err.path(), path);
    }

    #[test]
    fn text_file_named_wav_is_unsupported() {
        let path = temp_path("text.wav");
        std::fs::write(&path, "this is not audio, just some words in a file\n".repeat(20)).expect("write");
        let mut p = FilePlayer::new();
        let err = p.play(&path, 1).expect_err("text");
        assert!(matches!(&err, FileError::UnsupportedFormat { path: p, .. } if *p == path), "{err}");
        assert!(!p.is_playing());
    }

    #[test]
    fn unsupported_rate_is_refused() {
        let path = temp_path("r11025.wav");
        write_wav(&path, pcm16(11025, 1), &sine(11025, 1000.0, 9000.0, 1000));
        let err = FilePlayer::new().play(&path, 1).expect_err("11025");
        assert_eq!(err, FileError::UnsupportedRate { path, rate: 11025 });
    }

    #[test]
    fn wav_without_samples_is_empty() {
        let path = temp_path("empty.wav");
        write_wav::<i16>(&path, pcm16(8000, 1), &[]);
        let err = FilePlayer::new().play(&path, 1).expect_err("empty");
        assert_eq!(err, FileError::Empty { path });
    }

    #[test]
    fn truncated_wav_plays_what_is_there_then_reports_corruption() {
        let path = temp_path("truncated.wav");
        let data = sine(8000, 700.0, 10000.0, 8000);
        write_wav(&path, pcm16(8000, 1), &data);
        // Keep the 44-byte header (which still claims 8000 samples), 4000 samples and half of one more.
        let file = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
        file.set_len(44 + 2 * 4000 + 1).expect("truncate");
        drop(file);
        let (p, info) = play(&path, 3);
        assert_eq!(info.duration_samples, Some(8000));
        let (r, p) = run(p, 100);
        assert_eq!(r.samples(), data[..4000]);
        assert_eq!(r.frames.len(), 50);
        assert!(r.frames.last().expect("frames").1.end_of_stream);
        assert_eq!(r.events.len(), 1);
        let (tick, FilterEvent::FileError { file, error }) = &r.events[0] else { panic!("{:?}", r.events) };
        assert_eq!((*tick, file), (49, &path));
        assert!(matches!(error, FileError::Corrupt { path: p, .. } if *p == path), "{error}");
        assert!(!p.is_playing());
    }

    #[test]
    fn random_bytes_named_mp3_are_unsupported() {
        let path = temp_path("random.mp3");
        let mut x = 0x2545_f491_u32;
        let bytes: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        std::fs::write(&path, bytes).expect("write");
        let mut p = FilePlayer::new();
        let err = p.play(&path, 1).expect_err("noise is not MP3");
        assert!(matches!(&err, FileError::UnsupportedFormat { path: p, .. } if *p == path), "{err}");
        assert!(!p.is_playing());
    }

    #[test]
    fn mp3_with_its_middle_overwritten_by_noise_never_fails_a_tick() {
        let mut bytes = std::fs::read(fixture("sine1k_22k_mono.mp3")).expect("fixture");
        let mut x = 0x9e37_79b9_u32;
        for b in &mut bytes[1500..3500] {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let path = temp_path("damaged.mp3");
        std::fs::write(&path, bytes).expect("write");
        let (p, _) = play(&path, 1);
        let (r, p) = run(p, 200);
        assert!(!p.is_playing());
        assert_eq!(r.events.len(), 1, "one EndOfFile or FileError: {:?}", r.events);
        assert_eq!(r.frames.iter().filter(|(_, f)| f.end_of_stream).count(), 1);
        assert!(r.frames.last().expect("frames").1.end_of_stream);
    }

    #[test]
    fn replacing_a_play_starts_the_new_file() {
        let a = temp_path("replace_a.wav");
        let b = temp_path("replace_b.wav");
        write_wav(&a, pcm16(8000, 1), &[1i16; 800]);
        write_wav(&b, pcm16(16000, 1), &[2i16; 320]);
        let (mut p, _) = play(&a, 1);
        p.play(&b, 1).expect("play b");
        assert_eq!(p.file(), Some(b.as_path()));
        let (r, _) = run(p, 5);
        assert_eq!(r.samples(), vec![2; 320]);
        assert_eq!(r.events, vec![(1, FilterEvent::EndOfFile { file: b })]);
    }

    // The fixtures were made with real encoders from WAVs of `testing::sine(rate, 1000.0, 8000.0, n)`
    // (0.5 s each): `flac -8 --no-padding` (flac 1.4.2), `lame -m m -b 64` (LAME 3.100; 64 kbit/s so
    // the first frame can hold the Info/LAME tag that makes it gapless), `oggenc -q 2`
    // (vorbis-tools 1.4.2, the sine in both channels).

    #[test]
    fn flac_decodes_bit_exactly() {
        let path = fixture("sine1k_16k_mono.flac");
        let (p, info) = play(&path, 1);
        assert_eq!(info, FileInfo { rate: 16000, channels: 1, duration_samples: Some(8000) });
        let (r, _) = run(p, 60);
        assert_eq!(r.samples(), sine(16000, 1000.0, 8000.0, 8000));
        assert!(r.frames.iter().take(49).all(|(_, f)| f.samples.len() == 160 && !f.end_of_stream));
        assert_eq!(r.events, vec![(49, FilterEvent::EndOfFile { file: path })]);
    }

    #[test]
    fn mp3_decodes_to_the_tone() {
        let path = fixture("sine1k_22k_mono.mp3");
        let (p, info) = play(&path, 1);
        assert_eq!(info, FileInfo { rate: 22050, channels: 1, duration_samples: Some(11025) });
        let (r, _) = run(p, 100);
        let s = r.samples();
        assert_eq!(s.len(), 11025, "gapless: the encoder's delay and padding are trimmed");
        assert!(goertzel_ratio(&s[2000..10000], 22050, 1000.0) > 0.9);
        assert_eq!(r.events.len(), 1);
        assert!(matches!(r.events[0].1, FilterEvent::EndOfFile { .. }));
    }

    #[test]
    fn ogg_vorbis_stereo_decodes_to_the_tone() {
        let path = fixture("sine1k_48k_stereo.ogg");
        let (p, info) = play(&path, 2);
        assert_eq!((info.rate, info.channels), (48000, 2));
        let (r, _) = run(p, 200);
        let s = r.samples();
        assert_eq!(s.len(), 2 * 24000, "gapless: two plays of exactly 0.5 s");
        assert!(goertzel_ratio(&s[4000..20000], 48000, 1000.0) > 0.9);
        assert!(goertzel_ratio(&s[28000..44000], 48000, 1000.0) > 0.9);
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.frames.iter().filter(|(_, f)| f.end_of_stream).count(), 1);
    }
}
