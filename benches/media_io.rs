//! Cost of one 10 ms tick of N PCMU play legs through the media thread's real loop, with UDP on
//! loopback: every leg sends its RTP to its own socket, so each tick does the `send_to`s of the
//! packets due, the epoll readiness check and the `recv_from`s that read them back into each leg's
//! `rtp_recv`, besides ticking the graphs.
//!
//! Run: `cargo bench -p rms --bench media_io`. Criterion reports the time of one tick of all N legs;
//! divide by N (or read the throughput line, in legs per second) for the per-graph figure. The
//! `udp_syscall_floor_per_tick` group times the same sends and receives without rms, so that what rms
//! adds can be told apart from what the kernel (or a VM's system-call cost) takes.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rms::media::{LegId, LegMedia, MediaCmd, MediaCoordinator};
use rms::runtime::{LegSockets, MediaLoop, TscClock};
use rms_filters::codec::CodecKind;
use rms_filters::TICK;

fn write_prompt(rate: u32) -> PathBuf {
    let path = std::env::temp_dir().join(format!("rms-bench-io-prompt-{rate}.wav"));
    let signal = rms_filters::testing::test_signal(rate, rate as usize * 3, 3400.0);
    rms_filters::testing::write_wav(&path, rate, &signal).expect("write bench prompt");
    path
}

fn media_loop(n: u32, file: &Path) -> MediaLoop {
    let (_req_tx, req_rx) = crossbeam_channel::unbounded();
    let (ev_tx, ev_rx) = tokio::sync::mpsc::unbounded_channel();
    // Events are not read in this bench; keep the receiver alive so sends succeed.
    std::mem::forget(ev_rx);
    let mut ml =
        MediaLoop::new(MediaCoordinator::new(1, Box::new(TscClock::new())), req_rx, ev_tx).expect("media loop");
    for i in 0..n {
        let leg = LegId(i);
        let sockets = LegSockets::ephemeral([127, 0, 0, 1].into()).expect("bind");
        let remote = sockets.rtp.local_addr().expect("addr");
        ml.attach_sockets(leg, sockets).expect("attach");
        let media = LegMedia::new(remote, CodecKind::Pcmu, 0, 20);
        let c = ml.coordinator_mut();
        c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media });
        c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file: file.to_path_buf(), loops: 0, token: 0 });
    }
    ml
}

fn bench_io(c: &mut Criterion) {
    for rate in [8000u32, 16000] {
        let file = write_prompt(rate);
        let mut group = c.benchmark_group(format!("pcmu_play_leg_tick_with_udp_{}k_prompt", rate / 1000));
        for n in [1u32, 100, 1000] {
            let mut ml = media_loop(n, &file);
            let mut now = Duration::ZERO;
            group.throughput(Throughput::Elements(u64::from(n)));
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| {
                    ml.read_sockets(now);
                    black_box(ml.coordinator_mut().tick(now));
                    ml.flush();
                    now += TICK;
                })
            });
        }
        group.finish();
    }
}

/// The floor under the figures above: the same system calls without rms. Each of N sockets sends one
/// 172-byte datagram to itself every other tick (a PCMU leg at 20 ms) and reads it back.
fn bench_syscall_floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("udp_syscall_floor_per_tick");
    for n in [1usize, 1000] {
        let sockets: Vec<std::net::UdpSocket> = (0..n)
            .map(|_| {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
                s.set_nonblocking(true).expect("nonblocking");
                s
            })
            .collect();
        let addrs: Vec<_> = sockets.iter().map(|s| s.local_addr().expect("addr")).collect();
        let packet = [0u8; 172];
        let mut buf = [0u8; 2048];
        let mut tick = 0usize;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                tick += 1;
                for (i, (s, a)) in sockets.iter().zip(&addrs).enumerate() {
                    if (i + tick).is_multiple_of(2) {
                        let _ = s.send_to(&packet, a);
                        let _ = black_box(s.recv_from(&mut buf));
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_io, bench_syscall_floor);
criterion_main!(benches);
