//! Cost of bridging, per second of call: a `MediaCoordinator` with two bridged legs, fed pre-encoded RTP
//! of a real voice (`voice_files/welcome-8k.wav`, looped) both ways, one 20 ms packet per leg every other
//! 10 ms tick, with `NoClock` and no sockets. Each sample is a whole call of [`CALL_SECONDS`].
//!
//! Beside each transcoding pair, the bare codec cost: decoding A's codec and encoding B's on the same
//! audio, and the other way round, nothing else (no RTP, no jitter buffer, no resampling, no graph),
//! timed alternately with the graph's calls in the same iterations.
//! The table at the end gives µs of CPU per second of bridged call and the ratio graph / bare.
//!
//! Run: `cargo bench -p rms --bench bridge`. Each codec pair is one line in [`PAIRS`]; each leg runs its
//! codec at the PCM rate the session layer would choose for the bridge ([`bridged_pcm_rate`]).

use std::cell::RefCell;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use rms::media::{bridged_pcm_rate, BridgeMode, LegId, LegMedia, MediaCmd, MediaCoordinator};
use rms_filters::codec::{CodecKind, CodecParams};
use rms_filters::nodes::resampler::resample_all;
use rms_filters::{NoClock, TICK};
use rtp_types::RtpPacketBuilder;

/// Call time per sample.
const CALL_SECONDS: u64 = 10;
const PTIME_MS: u32 = 20;

/// A bridged call: the codec (and payload type) of each leg.
struct Pair {
    a: (CodecKind, u8),
    b: (CodecKind, u8),
}

const PAIRS: &[Pair] = &[
    Pair { a: (CodecKind::Pcmu, 0), b: (CodecKind::Pcmu, 0) },
    Pair { a: (CodecKind::Pcmu, 0), b: (CodecKind::Pcma, 8) },
    Pair { a: (CodecKind::Pcmu, 0), b: (CodecKind::G722, 9) },
    Pair { a: (CodecKind::Pcmu, 0), b: (CodecKind::Opus, 111) },
];

impl Pair {
    /// Each leg's codec parameters, as the session layer sets them for a bridge.
    fn params(&self) -> (CodecParams, CodecParams) {
        let (a, b) = (self.a.0, self.b.0);
        (CodecParams::at(bridged_pcm_rate(a, b)), CodecParams::at(bridged_pcm_rate(b, a)))
    }
}

/// The voice at `codec`'s PCM rate and its RTP datagrams, one per ptime, as a far end would send them.
struct Stream {
    codec: CodecKind,
    params: CodecParams,
    pcm: Vec<i16>,
    packets: Vec<Vec<u8>>,
}

impl Stream {
    fn new(voice: &[i16], voice_rate: u32, (codec, pt): (CodecKind, u8), params: CodecParams, ssrc: u32) -> Self {
        let pcm = resample_all(voice, voice_rate, params.pcm_rate).expect("resample the voice");
        let samples = (params.pcm_rate * PTIME_MS / 1000) as usize;
        let ts_step = codec.clock_rate() * PTIME_MS / 1000;
        let mut encoder = codec.encoder_with(&params).expect("the bench's codec");
        let packets = pcm
            .chunks_exact(samples)
            .enumerate()
            .map(|(k, chunk)| {
                let mut payload = Vec::new();
                encoder.encode(chunk, &mut payload).expect("encode the bench audio");
                let packet = RtpPacketBuilder::<&[u8], &[u8]>::new()
                    .payload_type(pt)
                    .sequence_number(k as u16)
                    .timestamp(k as u32 * ts_step)
                    .ssrc(ssrc)
                    .marker_bit(k == 0)
                    .payload(payload.as_slice())
                    .write_vec()
                    .expect("valid packet");
                packet
            })
            .collect();
        Self { codec, params, pcm, packets }
    }

    fn samples_per_packet(&self) -> usize {
        (self.params.pcm_rate * PTIME_MS / 1000) as usize
    }
}

/// Datagram `k` of a looped stream, renumbered so that the loop is seamless for the receiver.
fn looped(stream: &Stream, k: usize) -> Vec<u8> {
    let n = stream.packets.len();
    let mut d = stream.packets[k % n].clone();
    let seq = (k as u16).to_be_bytes();
    d[2..4].copy_from_slice(&seq);
    let ts = (k as u32).wrapping_mul(stream.codec.clock_rate() * PTIME_MS / 1000).to_be_bytes();
    d[4..8].copy_from_slice(&ts);
    d
}

fn media(port: u16, (codec, pt): (CodecKind, u8), params: CodecParams) -> LegMedia {
    LegMedia { params, ..LegMedia::new(SocketAddr::from(([127, 0, 0, 1], port)), codec, pt, PTIME_MS) }
}

/// Two legs, bridged; returns the coordinator and the mode chosen.
fn bridged_call(pair: &Pair) -> (MediaCoordinator, BridgeMode) {
    let mut c = MediaCoordinator::new(1, Box::new(NoClock));
    let (a, b) = (LegId(1), LegId(2));
    let (pa, pb) = pair.params();
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg: a, media: media(4000, pair.a, pa) });
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg: b, media: media(5000, pair.b, pb) });
    c.handle_cmd(Duration::ZERO, MediaCmd::Bridge { a, b });
    let mode = c.bridged_to(a).map(|(_, m)| m).expect("bridged");
    while c.poll_output().is_some() {}
    (c, mode)
}

/// One call of [`CALL_SECONDS`] through the coordinator; returns the datagrams it sent.
fn run_call(c: &mut MediaCoordinator, a: &[Vec<u8>], b: &[Vec<u8>]) -> usize {
    let mut sent = 0;
    for n in 0..CALL_SECONDS * 100 {
        let now = TICK * n as u32;
        if n % 2 == 0 {
            let k = (n / 2) as usize;
            c.handle_rtp(now, LegId(1), SocketAddr::from(([127, 0, 0, 1], 4000)), &a[k]);
            c.handle_rtp(now, LegId(2), SocketAddr::from(([127, 0, 0, 1], 5000)), &b[k]);
        }
        c.tick(now);
        while let Some(out) = c.poll_output() {
            sent += 1;
            black_box(out);
        }
    }
    sent
}

/// Decode `from`'s packets and encode the same audio with `to`'s codec, for a call's worth of packets.
fn bare_codecs(from: &Stream, to: &Stream, packets: usize) {
    let mut decoder = from.codec.decoder_with(&from.params).expect("the bench's codec");
    let mut encoder = to.codec.encoder_with(&to.params).expect("the bench's codec");
    let (mut pcm, mut payload) = (Vec::with_capacity(2048), Vec::with_capacity(2048));
    let n = to.samples_per_packet();
    let chunks = to.pcm.len() / n;
    for k in 0..packets {
        let d = &from.packets[k % from.packets.len()];
        pcm.clear();
        decoder.decode(&d[12..], &mut pcm).expect("decode");
        black_box(&pcm);
        let i = (k % chunks) * n;
        payload.clear();
        encoder.encode(&to.pcm[i..i + n], &mut payload).expect("encode");
        black_box(&payload);
    }
}

/// µs of CPU per call-second, accumulated over every sample criterion took.
#[derive(Default)]
struct Figure {
    total: Duration,
    calls: u64,
}

impl Figure {
    fn us_per_call_second(&self) -> f64 {
        if self.calls == 0 {
            return 0.0;
        }
        self.total.as_secs_f64() * 1e6 / (self.calls * CALL_SECONDS) as f64
    }
}

struct Row {
    name: String,
    mode: BridgeMode,
    graph: Figure,
    bare: Option<Figure>,
}

// Benches measure time: criterion's `iter_custom` wants the routine's own clock readings.
#[allow(clippy::disallowed_methods)]
fn bench_pairs(c: &mut Criterion, rows: &RefCell<Vec<Row>>) {
    let (voice_rate, voice) = rms_filters::testing::read_wav(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/voice_files/welcome-8k.wav"
    )))
    .expect("read welcome-8k.wav");
    let packets = (CALL_SECONDS * 1000 / u64::from(PTIME_MS)) as usize;
    let mut group = c.benchmark_group("bridge_call_10s");
    group.sample_size(20);
    for pair in PAIRS {
        let name = format!("{}-{}", pair.a.0.name(), pair.b.0.name());
        let (pa, pb) = pair.params();
        let (sa, sb) =
            (Stream::new(&voice, voice_rate, pair.a, pa, 0xa), Stream::new(&voice, voice_rate, pair.b, pb, 0xb));
        let a: Vec<Vec<u8>> = (0..packets).map(|k| looped(&sa, k)).collect();
        let b: Vec<Vec<u8>> = (0..packets).map(|k| looped(&sb, k)).collect();
        let (mut check, mode) = bridged_call(pair);
        // A broken path would be cheap: both ways must carry (nearly) every packet.
        let sent = run_call(&mut check, &a, &b);
        assert!(sent + 10 >= 2 * packets, "{name}: {sent} datagrams sent for 2 × {packets}");
        let mut row = Row { name: name.clone(), mode, graph: Figure::default(), bare: None };
        // Graph and bare codecs are timed in alternation within each iteration, so that both see the
        // same machine: on a shared VM the speed drifts by tens of percent between runs, which
        // separate measurements would read as a difference between the two.
        let mut bare = Figure::default();
        let transcode = mode == BridgeMode::Transcode;
        group.bench_function(BenchmarkId::new("graph", &name), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (mut call, _) = bridged_call(pair);
                    let start = Instant::now();
                    black_box(run_call(&mut call, &a, &b));
                    total += start.elapsed();
                    if transcode {
                        let start = Instant::now();
                        bare_codecs(&sa, &sb, packets);
                        bare_codecs(&sb, &sa, packets);
                        bare.total += start.elapsed();
                        bare.calls += 1;
                    }
                }
                row.graph.total += total;
                row.graph.calls += iters;
                total
            })
        });
        if transcode {
            row.bare = Some(bare);
        }
        rows.borrow_mut().push(row);
    }
    group.finish();
}

fn print_table(rows: &[Row]) {
    println!();
    println!("Bridged call cost, µs of CPU per second of call (both directions, {CALL_SECONDS} s calls, NoClock)");
    println!(
        "{:<14} {:<10} {:>12} {:>12} {:>12} {:>14}",
        "pair", "mode", "graph", "bare codecs", "graph/bare", "graph adds"
    );
    for r in rows {
        let graph = r.graph.us_per_call_second();
        let (bare, ratio, adds) = match &r.bare {
            Some(b) if b.us_per_call_second() > 0.0 => {
                let bare = b.us_per_call_second();
                (
                    format!("{bare:.2}"),
                    format!("{:.2}", graph / bare),
                    format!("{:+.1} %", (graph - bare) / bare * 100.0),
                )
            }
            _ => ("-".to_string(), "-".to_string(), "-".to_string()),
        };
        println!(
            "{:<14} {:<10} {:>12.2} {:>12} {:>12} {:>14}",
            r.name,
            format!("{:?}", r.mode),
            graph,
            bare,
            ratio,
            adds
        );
    }
}

fn main() {
    let rows = RefCell::new(Vec::new());
    let mut c = Criterion::default().configure_from_args();
    bench_pairs(&mut c, &rows);
    c.final_summary();
    print_table(&rows.borrow());
}
