//! Cost of one 10 ms tick of N PCMU play graphs, without socket I/O.
//!
//! Each graph is the "play" recipe: file_player → resampler → encoder (PCMU, 20 ms) → rtp_send, and
//! rtp_recv → void_sink. Filters are timed with the runtime's clock (`TscClock`), as in production, so the usage
//! statistics' own cost is included. Transmits are drained and dropped.
//!
//! Each prompt is benched streamed from its file (decoder and resampler per call) and cached (decoded
//! and resampled once and shared, as the media coordinator's prompt cache plays prompts up to 30 s).
//!
//! Run: `cargo bench -p rms-filters --bench play_graph`. Criterion reports the time of one tick of all
//! N graphs; the "per graph" line printed at the end divides by N.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rms_filters::clock::TscClock;
use rms_filters::codec::CodecKind;
use rms_filters::nodes::file_player::decode_file;
use rms_filters::nodes::resampler::resample_all;
use rms_filters::nodes::{Encoder, FilePlayer, Resampler, RtpRecv, RtpSend, VoidSink};
use rms_filters::{Graph, TICK};

fn write_prompt(rate: u32) -> PathBuf {
    let path = std::env::temp_dir().join(format!("rms-bench-prompt-{rate}.wav"));
    let signal = rms_filters::testing::test_signal(rate, rate as usize * 3, 3400.0);
    rms_filters::testing::write_wav(&path, rate, &signal).expect("write bench prompt");
    path
}

/// How a graph's player gets its prompt.
enum Prompt<'a> {
    /// Streamed from the file (decoder and resampler per call).
    File(&'a Path),
    /// Decoded and resampled once, shared (what the coordinator's prompt cache does).
    Cached(&'a Path, Arc<[i16]>),
}

fn play_graph(i: u32, prompt: &Prompt<'_>) -> Graph {
    let dest: SocketAddr = "127.0.0.1:9".parse().expect("literal address");
    let mut g = Graph::new();
    let player = g.add(FilePlayer::new());
    let resampler = g.add(Resampler::new(8000));
    let encoder = g.add(Encoder::new(CodecKind::Pcmu.encoder(), 0, 20));
    let send = g.add(RtpSend::new(i, dest, 8000, i, 0, 0));
    g.chain(&[player, resampler, encoder, send]).expect("link");
    let recv = g.add(RtpRecv::new(8000));
    let sink = g.add(VoidSink::new());
    g.chain(&[recv, sink]).expect("link");
    let player = g.filter_mut::<FilePlayer>(player).expect("player");
    match prompt {
        Prompt::File(file) => player.play(file, 0).map(|_| ()),
        Prompt::Cached(name, samples) => player.play_pcm(name, samples.clone(), 8000, 0),
    }
    .expect("open prompt");
    g
}

fn bench_ticks(c: &mut Criterion) {
    let clock = TscClock::new();
    for rate in [8000u32, 16000] {
        let file = write_prompt(rate);
        let (_, decoded) = decode_file(&file, u64::MAX).expect("decode prompt").expect("not too long");
        let cached: Arc<[i16]> = resample_all(&decoded, rate, 8000).expect("resample prompt").into();
        for (how, prompt) in [("streamed", Prompt::File(&file)), ("cached", Prompt::Cached(&file, cached.clone()))] {
            let mut group = c.benchmark_group(format!("pcmu_play_graph_tick_{}k_prompt_{how}", rate / 1000));
            for n in [1u32, 100, 1000] {
                let mut graphs: Vec<Graph> = (0..n).map(|i| play_graph(i, &prompt)).collect();
                let mut now = Duration::ZERO;
                group.throughput(Throughput::Elements(u64::from(n)));
                group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                    b.iter(|| {
                        now += TICK;
                        for g in graphs.iter_mut() {
                            g.tick(now, &clock).expect("tick");
                            for t in g.drain_transmits() {
                                black_box(t);
                            }
                        }
                    })
                });
                if n == 1 {
                    // Where the time goes, as the seed's table (timed with the same real clock).
                    println!("{}", graphs[0].usage());
                }
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench_ticks);
criterion_main!(benches);
