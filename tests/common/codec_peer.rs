//! Independent codec peers and PESQ scoring for the transcoding tests: RTP that really is PCMU,
//! PCMA, G.722 or Opus, encoded and decoded by implementations that share no code with rms.
//!
//! - Encoders: ffmpeg (Debian package `ffmpeg`): `-f mulaw` / `-f alaw` (raw G.711), `-c:a g722 -f g722`
//!   (raw G.722, 8000 bytes/s), `-c:a libopus -application voip -frame_duration 20` in Ogg Opus, whose
//!   pages this module parses to get ffmpeg's exact packets (OpusHead and OpusTags skipped).
//! - Decoders: sox for G.711, ffmpeg's raw `g722` input for G.722, and ffmpeg's own Opus decoder
//!   (`-c:a opus`, a reimplementation independent of libopus) reading an Ogg Opus file this module
//!   writes from the received packets.
//! - RTP: timestamps on each codec's RFC clock (RFC 3551: 8000 for PCMU, PCMA and G.722, whose
//!   clock stays 8000 although it samples at 16 kHz, §4.5.2; RFC 7587: 48000 for Opus), packets
//!   paced at their duration in real time.
//! - Receiving: packets are ordered by sequence number (wraparound unrolled); each lost packet
//!   becomes one packet of silence. The packets that did arrive are decoded as one stream (a
//!   decoder's state carries over a gap, as in a receiver without concealment), then cut at packet
//!   boundaries to put the silence in place.
//! - Scoring: `tests/pesq/score.py` (the PyPI `pesq` package, ITU-T P.862 narrowband MOS-LQO) in
//!   the venv `target/pesq-venv` (or the Python named by `RMS_PESQ_PYTHON`); see tests/pesq/README.md.
//!
//! A leg that both sends and receives uses one socket: give the receiver a `try_clone` of it.

// Real-peer tooling: the sender paces RTP on the media clock (20 ms, sleeping until each packet's
// due time) and the receiver bounds its waits with deadlines, so both read Instant::now and sleep.
#![allow(clippy::disallowed_methods)]
// Each test file uses a different part of the tooling.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rms_filters::testing::{read_wav, write_wav};

/// Opus bit rate of the peer's encoder (VBR, `-application voip`).
pub const OPUS_BITRATE: u32 = 32_000;

/// The codecs the peers speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

impl Codec {
    pub const ALL: [Codec; 4] = [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus];

    /// The SDP `a=rtpmap` encoding (RFC 3551 §6; RFC 7587 §7: always `opus/48000/2`).
    pub fn rtpmap(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
            Codec::G722 => "G722/8000",
            Codec::Opus => "opus/48000/2",
        }
    }

    /// The static payload type (RFC 3551), `None` for Opus (dynamic).
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            Codec::Opus => None,
        }
    }

    /// RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            _ => 8_000,
        }
    }

    /// Sample rate of the audio the encoder is fed (libopus codes 16 kHz input as wideband).
    pub fn encoder_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8_000,
            Codec::G722 | Codec::Opus => 16_000,
        }
    }

    /// Sample rate of the decoder's output.
    pub fn decoder_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8_000,
            Codec::G722 => 16_000,
            Codec::Opus => 48_000,
        }
    }

    /// Duration of one payload in RTP clock units (Opus: read from the TOC byte, RFC 6716 §3.1).
    pub fn payload_duration(self, payload: &[u8]) -> u32 {
        match self {
            // One byte per sample for G.711; for G.722 one byte is two 16 kHz samples, that is one
            // unit of its 8000 Hz RTP clock.
            Codec::Pcmu | Codec::Pcma | Codec::G722 => payload.len() as u32,
            Codec::Opus => opus_packet_samples(payload),
        }
    }

    /// Decoded samples (at `decoder_rate`) in one payload.
    fn decoded_samples(self, payload: &[u8]) -> usize {
        let units = self.payload_duration(payload) as usize;
        units * self.decoder_rate() as usize / self.clock_rate() as usize
    }
}

/// Samples at 48 kHz in an Opus packet, from its TOC byte (RFC 6716 §3.1); 0 for an empty packet.
pub fn opus_packet_samples(packet: &[u8]) -> u32 {
    let Some(&toc) = packet.first() else { return 0 };
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(0, |c| u32::from(c & 0x3f)),
    };
    frame * frames
}

// ---------------------------------------------------------------------------------------------
// Files and processes

/// The reference speech (tests/fixtures/speech, 11.0 s) at 8000 or 16000 Hz.
pub fn reference_speech(rate: u32) -> PathBuf {
    assert!(rate == 8000 || rate == 16000, "the reference speech is at 8 or 16 kHz, not {rate}");
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/speech/speech-{}k.wav", rate / 1000))
}

/// The reference speech at the rate `codec`'s encoder takes (8 kHz for G.711, 16 kHz otherwise).
pub fn reference_speech_for(codec: Codec) -> PathBuf {
    reference_speech(codec.encoder_rate())
}

/// A fresh scratch directory for one test (remove it when the test passes).
pub fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rms-transcoding-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run a tool; panic with its stderr (and what to install) if it cannot run or fails.
fn run(cmd: &mut Command, package: &str) -> Vec<u8> {
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {cmd:?} ({e}): install Debian's {package}"),
    };
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn ffmpeg() -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]);
    cmd
}

/// Resample (or copy) a WAV to 16-bit mono at `rate` with sox, without dither.
pub fn resample(input: &Path, rate: u32, output: &Path) {
    let mut cmd = Command::new("sox");
    cmd.arg("-D").arg(input).args(["-b", "16", "-c", "1", "-r", &rate.to_string()]).arg(output);
    run(&mut cmd, "sox");
}

fn read(path: &Path) -> (u32, Vec<i16>) {
    read_wav(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Encode a WAV into 20 ms payloads with ffmpeg. The audio is first resampled (sox) to the
/// encoder's rate if needed and padded with silence to a whole number of 20 ms packets.
pub fn encode(wav: &Path, codec: Codec, dir: &Path) -> Vec<Vec<u8>> {
    encode_opus_at(wav, codec, OPUS_BITRATE, dir)
}

/// `encode` with an explicit Opus bit rate (ignored by the other codecs).
pub fn encode_opus_at(wav: &Path, codec: Codec, opus_bitrate: u32, dir: &Path) -> Vec<Vec<u8>> {
    let rate = codec.encoder_rate();
    let input = dir.join(format!("encoder-in-{codec:?}.wav"));
    let (wav_rate, _) = read(wav);
    if wav_rate == rate {
        std::fs::copy(wav, &input).unwrap();
    } else {
        resample(wav, rate, &input);
    }
    let (_, mut samples) = read(&input);
    let per_packet = rate as usize / 50;
    samples.resize(samples.len().div_ceil(per_packet) * per_packet, 0);
    write_wav(&input, rate, &samples).unwrap();
    let out = dir.join(format!("encoded-{codec:?}"));
    let mut cmd = ffmpeg();
    cmd.arg("-i").arg(&input);
    match codec {
        Codec::Pcmu => cmd.args(["-f", "mulaw"]),
        Codec::Pcma => cmd.args(["-f", "alaw"]),
        Codec::G722 => cmd.args(["-c:a", "g722", "-f", "g722"]),
        Codec::Opus => cmd
            .args(["-c:a", "libopus", "-application", "voip", "-frame_duration", "20", "-vbr", "on"])
            .args(["-b:a", &opus_bitrate.to_string(), "-f", "opus"]),
    };
    run(cmd.arg(&out), "ffmpeg");
    let bytes = std::fs::read(&out).unwrap();
    let payloads: Vec<Vec<u8>> = match codec {
        // 8000 bytes per second for all three: 160 per 20 ms.
        Codec::Pcmu | Codec::Pcma | Codec::G722 => bytes.chunks(160).map(<[u8]>::to_vec).collect(),
        Codec::Opus => {
            let packets = ogg_packets(&bytes).unwrap_or_else(|e| panic!("ffmpeg's Ogg Opus: {e}"));
            assert!(
                packets.len() > 2 && packets[0].starts_with(b"OpusHead") && packets[1].starts_with(b"OpusTags"),
                "ffmpeg's Ogg Opus does not start with OpusHead and OpusTags"
            );
            packets[2..].to_vec()
        }
    };
    for (i, p) in payloads.iter().enumerate() {
        let units = codec.payload_duration(p);
        assert_eq!(units, codec.clock_rate() / 50, "{codec:?} packet {i} is not 20 ms ({} bytes)", p.len());
    }
    payloads
}

// ---------------------------------------------------------------------------------------------
// Ogg (RFC 3533) and Ogg Opus (RFC 7845)

/// The Ogg CRC-32: polynomial 0x04c11db7, MSB first, initial value and final XOR 0.
fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

/// The packets of a single-stream Ogg file, in order (packets continued across pages joined);
/// an error for a bad capture pattern, a truncated page or a bad CRC.
pub fn ogg_packets(ogg: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut packets = Vec::new();
    let mut partial = Vec::new();
    let mut at = 0;
    while at < ogg.len() {
        let page = &ogg[at..];
        if page.len() < 27 || &page[..4] != b"OggS" {
            return Err(format!("no Ogg page at byte {at}"));
        }
        let header_len = 27 + usize::from(page[26]);
        let table = page.get(27..header_len).ok_or(format!("truncated Ogg page at byte {at}"))?;
        let body_len: usize = table.iter().map(|&l| usize::from(l)).sum();
        let whole = page.get(..header_len + body_len).ok_or(format!("truncated Ogg page at byte {at}"))?;
        let mut zeroed = whole.to_vec();
        zeroed[22..26].fill(0);
        if ogg_crc(&zeroed) != u32::from_le_bytes([page[22], page[23], page[24], page[25]]) {
            return Err(format!("bad CRC in the Ogg page at byte {at}"));
        }
        let mut body = &whole[header_len..];
        for &lacing in table {
            partial.extend_from_slice(&body[..usize::from(lacing)]);
            body = &body[usize::from(lacing)..];
            if lacing < 255 {
                packets.push(std::mem::take(&mut partial));
            }
        }
        at += whole.len();
    }
    if !partial.is_empty() {
        return Err("the Ogg stream ends inside a packet".into());
    }
    Ok(packets)
}

fn ogg_page(header_type: u8, granule: u64, serial: u32, sequence: u32, packet: &[u8]) -> Vec<u8> {
    let mut lacing = vec![255u8; packet.len() / 255];
    lacing.push((packet.len() % 255) as u8);
    assert!(lacing.len() <= 255, "a {}-byte packet does not fit one Ogg page", packet.len());
    let mut page = b"OggS".to_vec();
    page.push(0);
    page.push(header_type);
    page.extend_from_slice(&granule.to_le_bytes());
    page.extend_from_slice(&serial.to_le_bytes());
    page.extend_from_slice(&sequence.to_le_bytes());
    page.extend_from_slice(&[0; 4]);
    page.push(lacing.len() as u8);
    page.extend_from_slice(&lacing);
    page.extend_from_slice(packet);
    let crc = ogg_crc(&page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
    page
}

/// An Ogg Opus file (RFC 7845) of mono Opus packets, one packet per page, pre-skip 0 (the
/// sender's encoder delay is not signalled in RTP; PESQ aligns the delay anyway) and granule
/// positions counting every packet's samples, so a decoder outputs exactly the packets' durations.
pub fn ogg_opus(packets: &[Vec<u8>]) -> Vec<u8> {
    const SERIAL: u32 = 0x726d_7321;
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, 1]); // version 1, one channel
    head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
    head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate (informational)
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family 0
    let vendor = b"rms codec_peer";
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes());
    let mut ogg = ogg_page(0x02, 0, SERIAL, 0, &head);
    ogg.extend(ogg_page(0, 0, SERIAL, 1, &tags));
    let mut granule = 0u64;
    for (i, packet) in packets.iter().enumerate() {
        granule += u64::from(opus_packet_samples(packet));
        let eos = if i + 1 == packets.len() { 0x04 } else { 0 };
        ogg.extend(ogg_page(eos, granule, SERIAL, i as u32 + 2, packet));
    }
    ogg
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decode payloads in order (`None`: a lost packet, one 20 ms packet of silence) to samples at
/// `codec.decoder_rate()`. The present payloads are decoded as one stream, then cut at packet
/// boundaries so that each lost packet's silence goes in its place.
pub fn decode(payloads: &[Option<Vec<u8>>], codec: Codec, dir: &Path) -> Vec<i16> {
    let present: Vec<&Vec<u8>> = payloads.iter().flatten().collect();
    assert!(!present.is_empty(), "nothing to decode: no {codec:?} payload");
    let input = dir.join(format!("decoder-in-{codec:?}"));
    let output = dir.join(format!("decoder-out-{codec:?}.wav"));
    match codec {
        Codec::Opus => std::fs::write(&input, ogg_opus(&present.iter().map(|p| p.to_vec()).collect::<Vec<_>>())),
        _ => std::fs::write(&input, present.iter().flat_map(|p| p.iter().copied()).collect::<Vec<u8>>()),
    }
    .unwrap();
    let mut cmd;
    match codec {
        Codec::Pcmu | Codec::Pcma => {
            cmd = Command::new("sox");
            let kind = if codec == Codec::Pcmu { "ul" } else { "al" };
            cmd.args(["-D", "-t", kind, "-r", "8000", "-c", "1"]).arg(&input);
            cmd.args(["-b", "16", "-e", "signed-integer"]);
            run(cmd.arg(&output), "sox");
        }
        Codec::G722 => {
            cmd = ffmpeg();
            cmd.args(["-f", "g722", "-i"]).arg(&input).args(["-c:a", "pcm_s16le"]);
            run(cmd.arg(&output), "ffmpeg");
        }
        Codec::Opus => {
            // ffmpeg's native decoder, not libopus: independent of whatever rms links.
            cmd = ffmpeg();
            cmd.args(["-c:a", "opus", "-i"]).arg(&input).args(["-c:a", "pcm_s16le", "-ac", "1"]);
            run(cmd.arg(&output), "ffmpeg");
        }
    }
    let (rate, decoded) = read(&output);
    assert_eq!(rate, codec.decoder_rate(), "{codec:?} decoder output rate");
    let expected: usize = present.iter().map(|p| codec.decoded_samples(p)).sum();
    assert_eq!(decoded.len(), expected, "{codec:?}: the decoder gave {} samples for {expected}", decoded.len());
    let silence = codec.decoder_rate() as usize / 50;
    let mut samples = Vec::with_capacity(payloads.len() * silence);
    let mut at = 0;
    for payload in payloads {
        match payload {
            Some(p) => {
                let n = codec.decoded_samples(p);
                samples.extend_from_slice(&decoded[at..at + n]);
                at += n;
            }
            None => samples.resize(samples.len() + silence, 0),
        }
    }
    samples
}

/// Decode payloads (see `decode`) into `wav` at 8 kHz (resampled by sox when the codec's rate is
/// higher), ready for `pesq_nb`.
pub fn decode_to_wav_8k(payloads: &[Option<Vec<u8>>], codec: Codec, dir: &Path, wav: &Path) {
    let samples = decode(payloads, codec, dir);
    if codec.decoder_rate() == 8000 {
        write_wav(wav, 8000, &samples).unwrap();
    } else {
        let native = dir.join(format!("decoded-{codec:?}-native.wav"));
        write_wav(&native, codec.decoder_rate(), &samples).unwrap();
        resample(&native, 8000, wav);
    }
}

/// The bare codec chain: `reference` encoded and decoded by each codec of `chain` in turn
/// (resampled by sox between codecs of different rates), no network, no rms. Returns the 8 kHz
/// WAV written in `dir`. `[G722, Pcmu]`: G.722 from the reference, decoded, to 8 kHz, PCMU, decoded.
pub fn bare_chain(reference: &Path, chain: &[Codec], dir: &Path) -> PathBuf {
    assert!(!chain.is_empty(), "an empty codec chain");
    let mut current = reference.to_path_buf();
    for (i, &codec) in chain.iter().enumerate() {
        let payloads: Vec<Option<Vec<u8>>> = encode(&current, codec, dir).into_iter().map(Some).collect();
        let next = dir.join(format!("chain-{i}-{codec:?}.wav"));
        write_wav(&next, codec.decoder_rate(), &decode(&payloads, codec, dir)).unwrap();
        current = next;
    }
    let name: Vec<String> = chain.iter().map(|c| format!("{c:?}")).collect();
    let out = dir.join(format!("bare-{}-8k.wav", name.join("-")));
    resample(&current, 8000, &out);
    out
}

/// PESQ NB of the bare chain (see `bare_chain`) from the reference speech at the first codec's rate,
/// against the 8 kHz reference: the figure an rms path through the same codecs is compared with.
pub fn bare_chain_pesq(chain: &[Codec], dir: &Path) -> f64 {
    assert!(!chain.is_empty(), "an empty codec chain");
    let wav = bare_chain(&reference_speech_for(chain[0]), chain, dir);
    pesq_nb(&reference_speech(8000), &wav)
}

// ---------------------------------------------------------------------------------------------
// RTP

/// One RTP packet (RFC 3550 §5.1); CSRCs, header extension and padding are dropped on parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacket {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
    /// When an `RtpReceiver` got it, from the receiver's start (`None` for packets built here).
    pub received_at: Option<Duration>,
}

impl RtpPacket {
    pub fn parse(buf: &[u8]) -> Option<RtpPacket> {
        if buf.len() < 12 || buf[0] >> 6 != 2 {
            return None;
        }
        let mut start = 12 + 4 * usize::from(buf[0] & 0x0f);
        if buf[0] & 0x10 != 0 {
            let words = u16::from_be_bytes([*buf.get(start + 2)?, *buf.get(start + 3)?]);
            start += 4 + 4 * usize::from(words);
        }
        let mut end = buf.len();
        if buf[0] & 0x20 != 0 {
            end = end.checked_sub(usize::from(*buf.last()?))?;
        }
        Some(RtpPacket {
            marker: buf[1] & 0x80 != 0,
            payload_type: buf[1] & 0x7f,
            sequence: u16::from_be_bytes([buf[2], buf[3]]),
            timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
            payload: buf.get(start..end)?.to_vec(),
            received_at: None,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0x80, (u8::from(self.marker) << 7) | self.payload_type];
        b.extend_from_slice(&self.sequence.to_be_bytes());
        b.extend_from_slice(&self.timestamp.to_be_bytes());
        b.extend_from_slice(&self.ssrc.to_be_bytes());
        b.extend_from_slice(&self.payload);
        b
    }
}

/// The identity of an outgoing stream: payload type, SSRC and first sequence number and timestamp.
#[derive(Clone, Copy, Debug)]
pub struct StreamParams {
    pub payload_type: u8,
    pub ssrc: u32,
    pub first_sequence: u16,
    pub first_timestamp: u32,
}

impl StreamParams {
    /// Random SSRC, sequence number and timestamp (RFC 3550 §5.1), from `seed` for repeatability.
    pub fn new(payload_type: u8, seed: u64) -> StreamParams {
        let mut rng = fastrand::Rng::with_seed(seed);
        StreamParams { payload_type, ssrc: rng.u32(..), first_sequence: rng.u16(..), first_timestamp: rng.u32(..) }
    }
}

/// RTP packets for `payloads`: consecutive sequence numbers, timestamps advancing by each
/// payload's duration on the codec's clock, the marker on the first packet (start of talkspurt).
pub fn packetize(payloads: &[Vec<u8>], codec: Codec, params: StreamParams) -> Vec<RtpPacket> {
    let mut timestamp = params.first_timestamp;
    let mut packets = Vec::with_capacity(payloads.len());
    for (i, payload) in payloads.iter().enumerate() {
        packets.push(RtpPacket {
            marker: i == 0,
            payload_type: params.payload_type,
            sequence: params.first_sequence.wrapping_add(i as u16),
            timestamp,
            ssrc: params.ssrc,
            payload: payload.clone(),
            received_at: None,
        });
        timestamp = timestamp.wrapping_add(codec.payload_duration(payload));
    }
    packets
}

/// Send `packets` in the given order from `socket` to `dest`, one every `interval` in real time
/// (each packet at its due time from the first, so late wake-ups do not accumulate).
pub fn send_paced(socket: &UdpSocket, dest: SocketAddr, packets: &[RtpPacket], interval: Duration) {
    let start = Instant::now();
    for (i, packet) in packets.iter().enumerate() {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        socket.send_to(&packet.to_bytes(), dest).unwrap_or_else(|e| panic!("RTP to {dest}: {e}"));
    }
}

/// Encode `wav` with `codec` (ffmpeg) and send it as RTP from `socket` to `dest` at 20 ms; returns
/// the packets sent. Blocks for the length of the audio (run it on a thread next to signalling).
pub fn send_wav(
    socket: &UdpSocket,
    dest: SocketAddr,
    wav: &Path,
    codec: Codec,
    params: StreamParams,
    dir: &Path,
) -> Vec<RtpPacket> {
    let packets = packetize(&encode(wav, codec, dir), codec, params);
    send_paced(socket, dest, &packets, Duration::from_millis(20));
    packets
}

/// How long a receiver waits.
#[derive(Clone, Copy, Debug)]
pub struct ReceiveLimits {
    /// For the first packet (the receiver panics if none comes).
    pub first_packet: Duration,
    /// Silence after the last packet that ends the stream.
    pub idle: Duration,
    /// The whole capture, from the start.
    pub total: Duration,
}

impl Default for ReceiveLimits {
    fn default() -> Self {
        ReceiveLimits {
            first_packet: Duration::from_secs(10),
            idle: Duration::from_secs(1),
            total: Duration::from_secs(60),
        }
    }
}

/// A thread capturing RTP on a socket until the stream has been idle for `limits.idle`,
/// `limits.total` has passed or `stop` is called.
pub struct RtpReceiver {
    thread: std::thread::JoinHandle<Vec<RtpPacket>>,
    stop: Arc<AtomicBool>,
    local_addr: SocketAddr,
}

impl RtpReceiver {
    pub fn spawn(socket: UdpSocket, limits: ReceiveLimits) -> RtpReceiver {
        let local_addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            // A short read timeout so that `stop` and the deadlines are noticed promptly.
            socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let start = Instant::now();
            let mut last: Option<Instant> = None;
            let mut packets = Vec::new();
            let mut buf = [0u8; 2048];
            loop {
                let now = Instant::now();
                let idle = last.is_some_and(|t| now.duration_since(t) >= limits.idle);
                if stopped.load(Ordering::SeqCst) || idle || now.duration_since(start) >= limits.total {
                    break;
                }
                if last.is_none() && now.duration_since(start) >= limits.first_packet {
                    panic!("no RTP arrived at {local_addr} within {:?}", limits.first_packet);
                }
                if let Ok(n) = socket.recv(&mut buf) {
                    // Anything that is not RTP version 2, or is RTCP (packet types 200 to 204 where
                    // RTP has its marker and payload type, RFC 5761 §4), is skipped.
                    let rtcp = n > 1 && (200..=204).contains(&buf[1]);
                    if let Some(mut packet) = RtpPacket::parse(&buf[..n]).filter(|_| !rtcp) {
                        let now = Instant::now();
                        packet.received_at = Some(now.duration_since(start));
                        packets.push(packet);
                        last = Some(now);
                    }
                }
            }
            packets
        });
        RtpReceiver { thread, stop, local_addr }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// End the capture now (within one 20 ms read timeout).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// The packets captured, in arrival order; re-raises the capture thread's panic.
    pub fn join(self) -> Vec<RtpPacket> {
        self.thread.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

/// A received stream put back in sequence order.
#[derive(Clone, Debug, Default)]
pub struct Reassembled {
    /// One entry per sequence number from the lowest to the highest received; `None` if lost.
    pub payloads: Vec<Option<Vec<u8>>>,
    pub received: usize,
    pub lost: usize,
    pub duplicates: usize,
    /// Packets that arrived after one with a higher sequence number.
    pub out_of_order: usize,
    /// Packets of another payload type or SSRC than the stream's (the first packet's SSRC).
    pub ignored: usize,
}

/// Order the packets of `payload_type` by sequence number (wraparound unrolled relative to the
/// previous arrival) and mark the gaps as lost.
pub fn reassemble(packets: &[RtpPacket], payload_type: u8) -> Reassembled {
    let mut r = Reassembled::default();
    let Some(ssrc) = packets.iter().find(|p| p.payload_type == payload_type).map(|p| p.ssrc) else {
        r.ignored = packets.len();
        return r;
    };
    let mut previous: Option<(u16, i64)> = None;
    let mut highest = i64::MIN;
    let mut numbered: Vec<(i64, &RtpPacket)> = Vec::new();
    for p in packets {
        if p.payload_type != payload_type || p.ssrc != ssrc {
            r.ignored += 1;
            continue;
        }
        let index = match previous {
            Some((seq, index)) => index + i64::from(p.sequence.wrapping_sub(seq) as i16),
            None => 0,
        };
        previous = Some((p.sequence, index));
        if index < highest {
            r.out_of_order += 1;
        }
        highest = highest.max(index);
        numbered.push((index, p));
    }
    numbered.sort_by_key(|(index, _)| *index);
    let first = numbered[0].0;
    let span = (numbered[numbered.len() - 1].0 - first + 1) as usize;
    assert!(span <= 100_000, "sequence numbers span {span} packets: not one stream");
    r.payloads = vec![None; span];
    for (index, p) in numbered {
        let slot = &mut r.payloads[(index - first) as usize];
        if slot.is_some() {
            r.duplicates += 1;
        } else {
            *slot = Some(p.payload.clone());
            r.received += 1;
        }
    }
    r.lost = span - r.received;
    r
}

// ---------------------------------------------------------------------------------------------
// PESQ

/// The Python with the `pesq` package: `RMS_PESQ_PYTHON`, or the venv `target/pesq-venv`.
fn pesq_python() -> PathBuf {
    match std::env::var_os("RMS_PESQ_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pesq-venv/bin/python3"),
    }
}

/// ITU-T P.862 narrowband MOS-LQO of `degraded` against `reference` (PyPI `pesq`, mode `nb`).
/// Either WAV is resampled to 8 kHz with sox first if it is at another rate.
pub fn pesq_nb(reference: &Path, degraded: &Path) -> f64 {
    let at_8k = |wav: &Path| -> PathBuf {
        if read(wav).0 == 8000 {
            return wav.to_path_buf();
        }
        let out = wav.with_extension("pesq-8k.wav");
        resample(wav, 8000, &out);
        out
    };
    let (reference, degraded) = (at_8k(reference), at_8k(degraded));
    let python = pesq_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pesq/score.py");
    let out = match Command::new(&python).arg(&script).arg(&reference).arg(&degraded).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run {} ({e}): create the PESQ venv (tests/pesq/README.md):\n  \
             python3 -m venv target/pesq-venv && target/pesq-venv/bin/pip install numpy==2.4.6 cython==3.2.4 wheel \
             && target/pesq-venv/bin/pip install --no-build-isolation pesq==0.0.4",
            python.display()
        ),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "PESQ of {} against {} failed ({}):\n{stdout}{}",
        degraded.display(),
        reference.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().parse().unwrap_or_else(|_| panic!("score.py printed {stdout:?}, not a MOS"))
}
