//! Media engine integration tests: the coordinator in virtual time, and the media thread on real
//! loopback sockets checked against independent tools (sox).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rms::media::{
    LegId, LegMedia, LegSocket, MediaCmd, MediaCoordinator, MediaError, MediaEvent, MediaOutput, PromptCacheLimits,
};
use rms::runtime::{LegSockets, MediaRequest, MediaThread};
use rms_filters::codec::{g711, CodecKind};
use rms_filters::nodes::file_player::FileError;
use rms_filters::nodes::Resampler;
use rms_filters::testing::{best_correlation, goertzel_ratio, sine, test_signal, FilterHarness};
use rms_filters::{AudioFrame, Filter, FilterDesc, FilterError, NoClock, ProcessCx, TICK};
use rtp_types::RtpPacket;

// ---------------------------------------------------------------------------------------------------
// Per-thread heap accounting, for the memory budget of a play graph.

struct CountingAlloc;

thread_local! {
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE_BYTES.try_with(|b| b.set(b.get() + layout.size() as isize));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE_BYTES.try_with(|b| b.set(b.get() - layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LIVE_BYTES.try_with(|b| b.set(b.get() + new_size as isize - layout.size() as isize));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn live_bytes() -> isize {
    LIVE_BYTES.with(Cell::get)
}

// ---------------------------------------------------------------------------------------------------
// Helpers.

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rms-media-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn write_wav(path: &Path, rate: u32, samples: &[i16]) {
    rms_filters::testing::write_wav(path, rate, samples).expect("write wav");
}

fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    rms_filters::testing::read_wav(path).expect("read wav")
}

fn pcmu(remote: SocketAddr) -> LegMedia {
    LegMedia::new(remote, CodecKind::Pcmu, 0, 20)
}

fn remote() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("literal")
}

/// Everything the coordinator produced on one tick.
#[derive(Default)]
struct TickOutput {
    transmits: Vec<(LegId, Vec<u8>)>,
    events: Vec<MediaEvent>,
}

/// The next output that is not an RTCP report (legs report RTCP, and say BYE when destroyed).
fn poll_event(c: &mut MediaCoordinator) -> Option<MediaOutput> {
    loop {
        match c.poll_output()? {
            MediaOutput::Transmit { socket: LegSocket::Rtcp, .. } => continue,
            other => return Some(other),
        }
    }
}

/// Runs `ticks` ticks of virtual time from `first`, collecting outputs per tick.
fn run_ticks(c: &mut MediaCoordinator, first: u64, ticks: u64) -> Vec<TickOutput> {
    (first..first + ticks)
        .map(|n| {
            assert_eq!(c.tick(TICK * n as u32), 1, "exactly one tick is due at {n} × 10 ms");
            let mut out = TickOutput::default();
            while let Some(o) = c.poll_output() {
                match o {
                    MediaOutput::Transmit { leg, socket: LegSocket::Rtp, payload, .. } => {
                        out.transmits.push((leg, payload))
                    }
                    MediaOutput::Transmit { .. } => {}
                    MediaOutput::Event(e) => out.events.push(e),
                }
            }
            out
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Virtual time.

#[test]
fn pcmu_play_of_a_3s_16khz_wav_emits_exactly_150_packets_and_one_end_of_file_on_the_last_tick() {
    // From the prompt cache (the default), and streamed from the file: the same packets.
    let cached = play_3s_16khz_prompt(PromptCacheLimits::default());
    let streamed = play_3s_16khz_prompt(PromptCacheLimits { max_bytes: 0, max_seconds: 0 });
    assert!(cached == streamed, "cached and streamed plays differ");
}

/// Runs the acceptance checks on one play; returns the payloads sent.
fn play_3s_16khz_prompt(cache: PromptCacheLimits) -> Vec<u8> {
    let source = test_signal(16000, 48000, 7000.0);
    let file = temp_path("prompt-3s-16k.wav");
    write_wav(&file, 16000, &source);

    let mut c = MediaCoordinator::new(1, Box::new(NoClock));
    c.set_prompt_cache(cache);
    let leg = LegId(1);
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media: pcmu(remote()) });
    c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file: file.clone(), loops: 1, token: 42 });
    let ticks = run_ticks(&mut c, 0, 400);

    let packets: Vec<(usize, Vec<u8>)> =
        ticks.iter().enumerate().flat_map(|(n, t)| t.transmits.iter().map(move |(_, p)| (n, p.clone()))).collect();
    assert_eq!(packets.len(), 150);
    let parsed: Vec<RtpPacket<'_>> = packets.iter().map(|(_, p)| RtpPacket::parse(p).expect("valid RTP")).collect();
    for w in parsed.windows(2) {
        assert_eq!(w[1].sequence_number(), w[0].sequence_number().wrapping_add(1));
        assert_eq!(w[1].timestamp(), w[0].timestamp().wrapping_add(160));
        assert_eq!(w[1].ssrc(), w[0].ssrc());
        assert!(!w[1].marker_bit());
    }
    assert!(parsed[0].marker_bit(), "first packet of the talkspurt carries the marker");
    assert!(parsed.iter().all(|p| p.payload_type() == 0 && p.payload().len() == 160));

    // Payloads are G.711 µ-law of the file resampled to 8 kHz.
    let mut resampler = FilterHarness::new(Resampler::new(8000));
    let frames = source.chunks(160).count();
    for (i, chunk) in source.chunks(160).enumerate() {
        resampler.push(0, AudioFrame { samples: chunk.to_vec(), rate: 16000, end_of_stream: i == frames - 1 });
        resampler.run().expect("resample");
    }
    let resampled = resampler.take_samples(0);
    assert_eq!(resampled.len(), 24000);
    let mut expected = Vec::new();
    g711::encode(g711::Law::Mu, &resampled, &mut expected);
    let sent: Vec<u8> = parsed.iter().flat_map(|p| p.payload().to_vec()).collect();
    assert!(sent == expected, "payloads differ from G.711 of the resampled file");

    // One end-of-file, on tick 299 (the 300th 10 ms frame of 160 samples), with the last packet.
    let done: Vec<(usize, &MediaEvent)> =
        ticks.iter().enumerate().flat_map(|(n, t)| t.events.iter().map(move |e| (n, e))).collect();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(matches!(done[0], (299, MediaEvent::PlayDone { leg: LegId(1), token: 42, completed: true })), "{done:?}");
    assert_eq!(packets.last().expect("packets").0, 299);
    sent
}

#[test]
fn playing_again_after_the_end_continues_seq_and_timestamps() {
    let file = temp_path("prompt-200ms-8k.wav");
    write_wav(&file, 8000, &test_signal(8000, 1600, 3400.0));
    let mut c = MediaCoordinator::new(2, Box::new(NoClock));
    let leg = LegId(1);
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media: pcmu(remote()) });
    c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file: file.clone(), loops: 1, token: 1 });
    let mut ticks = run_ticks(&mut c, 0, 20);
    // Second play right after the first ended (same tick as PlayDone), then one after 100 ms of silence.
    c.handle_cmd(TICK * 20, MediaCmd::Play { leg, file: file.clone(), loops: 1, token: 2 });
    ticks.extend(run_ticks(&mut c, 20, 30));
    c.handle_cmd(TICK * 50, MediaCmd::Play { leg, file, loops: 1, token: 3 });
    ticks.extend(run_ticks(&mut c, 50, 20));
    let parsed: Vec<(u16, u32, bool)> = ticks
        .iter()
        .flat_map(|t| t.transmits.iter())
        .map(|(_, p)| {
            let p = RtpPacket::parse(p).expect("rtp");
            (p.sequence_number(), p.timestamp(), p.marker_bit())
        })
        .collect();
    assert_eq!(parsed.len(), 30);
    for (i, w) in parsed.windows(2).enumerate() {
        assert_eq!(w[1].0, w[0].0.wrapping_add(1));
        if i + 1 == 20 {
            // Tick 50's play follows 10 silent ticks after the second play's last packet (tick 39):
            // 100 ms = 800 samples more than contiguous, and a marker.
            assert_eq!(w[1].1, w[0].1.wrapping_add(160 + 800));
            assert!(w[1].2);
        } else {
            assert_eq!(w[1].1, w[0].1.wrapping_add(160), "packet {}", i + 1);
            assert!(!w[1].2, "packet {}", i + 1);
        }
    }
}

/// A filter that breaks on a chosen tick, by error or by panic.
struct Faulty {
    at: u64,
    panic: bool,
}

impl Filter for Faulty {
    fn desc(&self) -> FilterDesc {
        FilterDesc { name: "faulty", inputs: 0, outputs: 0, pump: false }
    }
    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        if cx.tick == self.at {
            if self.panic {
                panic!("faulty filter blew up");
            }
            return Err(FilterError::Injected { filter: "faulty" });
        }
        Ok(())
    }
}

#[test]
fn a_failing_filter_ends_only_its_own_leg_and_the_others_keep_ticking() {
    let file = temp_path("prompt-loop-8k.wav");
    write_wav(&file, 8000, &test_signal(8000, 8000, 3400.0));
    let mut c = MediaCoordinator::new(3, Box::new(NoClock));
    for (leg, fault) in [(1, None), (2, Some(false)), (3, Some(true))] {
        let leg = LegId(leg);
        c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media: pcmu(remote()) });
        c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file: file.clone(), loops: 0, token: 9 });
        if let Some(panic) = fault {
            c.graph_mut(leg).expect("leg exists").add(Faulty { at: 10, panic });
        }
    }
    let ticks = run_ticks(&mut c, 0, 100);
    let events: Vec<(usize, &MediaEvent)> =
        ticks.iter().enumerate().flat_map(|(n, t)| t.events.iter().map(move |e| (n, e))).collect();
    // Each failed leg reports its interrupted play, then its failure.
    assert_eq!(events.len(), 4, "{events:?}");
    for (i, leg) in [(0, 2), (2, 3)] {
        assert!(
            matches!(events[i], (10, MediaEvent::PlayDone { leg: LegId(l), token: 9, completed: false }) if *l == leg),
            "{events:?}"
        );
    }
    let failures = [events[1], events[3]];
    assert!(matches!(failures[0], (10, MediaEvent::LegFailed { leg: LegId(2), error: MediaError::Graph(_), .. })));
    match failures[1] {
        (10, MediaEvent::LegFailed { leg: LegId(3), error: MediaError::Panicked { message }, .. }) => {
            assert!(message.contains("faulty filter blew up"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.leg_count(), 1);
    let per_leg = |leg| ticks.iter().flat_map(|t| &t.transmits).filter(|(l, _)| *l == LegId(leg)).count();
    assert_eq!(per_leg(1), 50, "leg 1 sent a packet every 20 ms throughout");
    assert_eq!(per_leg(2), 5, "leg 2 sent until its failure on tick 10");
    assert_eq!(per_leg(3), 5);
}

#[test]
fn unreadable_unsupported_or_corrupt_files_give_an_error_event_naming_the_file() {
    let missing = temp_path("no-such-prompt.wav");
    let text = temp_path("not-audio.wav");
    std::fs::write(&text, "this is not a RIFF file, just text\n").expect("write");
    let garbage_mp3 = temp_path("garbage.mp3");
    std::fs::write(&garbage_mp3, (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>())
        .expect("write");
    let odd_rate = temp_path("odd-rate-11025.wav");
    write_wav(&odd_rate, 11025, &test_signal(11025, 11025, 3000.0));

    let mut c = MediaCoordinator::new(4, Box::new(NoClock));
    let leg = LegId(1);
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media: pcmu(remote()) });
    for (token, file) in [&missing, &text, &garbage_mp3, &odd_rate].into_iter().enumerate() {
        c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file: file.clone(), loops: 1, token: token as u64 });
        match poll_event(&mut c) {
            Some(MediaOutput::Event(MediaEvent::PlayFailed { token: t, error, .. })) => {
                assert_eq!(t, token as u64);
                let name = file.file_name().expect("name").to_string_lossy().to_string();
                assert!(error.to_string().contains(&name), "error {error} does not name {name}");
            }
            other => panic!("{file:?}: {other:?}"),
        }
    }
    assert!(matches!(
        {
            c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file: missing.clone(), loops: 1, token: 9 });
            poll_event(&mut c)
        },
        Some(MediaOutput::Event(MediaEvent::PlayFailed { error: FileError::Open { .. }, .. }))
    ));

    // A WAV whose header promises more data than the file holds plays what is there, then reports.
    let truncated = temp_path("truncated.wav");
    write_wav(&truncated, 8000, &test_signal(8000, 4000, 3400.0));
    let bytes = std::fs::read(&truncated).expect("read");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2 + 1]).expect("truncate");
    c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file: truncated, loops: 1, token: 10 });
    let ticks = run_ticks(&mut c, 0, 80);
    let events: Vec<&MediaEvent> = ticks.iter().flat_map(|t| &t.events).collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        matches!(events[0], MediaEvent::PlayFailed { token: 10, error: FileError::Corrupt { .. }, .. }),
        "{events:?}"
    );
    // About a quarter second of audio was there and was sent (20 ms packets) before the report.
    let sent = ticks.iter().map(|t| t.transmits.len()).sum::<usize>();
    assert!((10..=13).contains(&sent), "{sent} packets");
    // The leg survived all of it.
    assert_eq!(c.leg_count(), 1);
}

#[test]
fn garbage_rtp_is_counted_bad_formatted_and_dropped() {
    let mut c = MediaCoordinator::new(5, Box::new(NoClock));
    let leg = LegId(1);
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media: pcmu(remote()) });
    let from = remote();
    let packet = |seq: u16| {
        rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(0)
            .sequence_number(seq)
            .timestamp(u32::from(seq) * 160)
            .ssrc(77)
            .payload([0xFFu8; 160].as_slice())
            .write_vec_unchecked()
    };
    for seq in 1..=3 {
        c.handle_rtp(TICK * 2 * u32::from(seq), leg, from, &packet(seq));
    }
    let good = packet(4);
    c.handle_rtp(TICK * 8, leg, from, &good);
    c.handle_rtp(TICK * 8, leg, from, &good[..7]);
    c.handle_rtp(TICK * 8, leg, from, b"");
    c.handle_rtp(TICK * 8, leg, from, &[0x40; 40]);
    c.handle_rtp(TICK * 8, leg, from, &good);
    // A datagram for a leg that does not exist is dropped without effect.
    c.handle_rtp(TICK * 8, LegId(99), from, &good);
    run_ticks(&mut c, 0, 20);
    c.handle_cmd(TICK * 20, MediaCmd::DestroyLeg { leg });
    match poll_event(&mut c) {
        Some(MediaOutput::Event(MediaEvent::LegClosed { report, .. })) => {
            assert_eq!(report.received.bad_formatted, 3);
            assert_eq!(report.received.packets, 5, "duplicates count as received (RFC 3550 A.3)");
            assert_eq!(report.received.duplicated, 1);
            assert_eq!(report.received.cumulative_lost, -1);
            assert!(report.usage.to_string().contains("rtp_recv"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.leg_count(), 0);
}

#[test]
fn recording_decodes_what_the_leg_receives_in_order() {
    let file = temp_path("recorded.wav");
    let mut c = MediaCoordinator::new(9, Box::new(NoClock));
    let leg = LegId(1);
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media: pcmu(remote()) });
    c.handle_cmd(Duration::ZERO, MediaCmd::Record { leg, file: file.clone() });
    // One second of a 1 kHz tone as PCMU at 20 ms, with three pairs of packets swapped in flight.
    let tone = sine(8000, 1000.0, 12000.0, 8000);
    let packets: Vec<Vec<u8>> = tone
        .chunks(160)
        .enumerate()
        .map(|(i, pcm)| {
            let mut payload = Vec::new();
            g711::encode(g711::Law::Mu, pcm, &mut payload);
            let packet = rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
                .payload_type(0)
                .sequence_number(1000 + i as u16)
                .timestamp(i as u32 * 160)
                .ssrc(0xABCD)
                .payload(payload.as_slice())
                .write_vec_unchecked();
            packet
        })
        .collect();
    let mut order: Vec<usize> = (0..packets.len()).collect();
    for first in [10, 21, 40] {
        order.swap(first, first + 1);
    }
    for n in 0..200u32 {
        let now = TICK * n;
        // Packet k is sent at 20 ms × k; the swapped pairs arrive 20 ms apart as usual.
        if n % 2 == 0 && (n / 2) < order.len() as u32 {
            c.handle_rtp(now, leg, remote(), &packets[order[(n / 2) as usize]]);
        }
        c.tick(now);
        while c.poll_output().is_some() {}
    }
    c.handle_cmd(TICK * 200, MediaCmd::DestroyLeg { leg });
    let report = match poll_event(&mut c) {
        Some(MediaOutput::Event(MediaEvent::LegClosed { report, .. })) => report,
        other => panic!("{other:?}"),
    };
    let text = report.to_string();
    assert!(text.contains("RTP STATISTICS") && text.contains("FILTER USAGE STATISTICS"), "{text}");
    assert_eq!(report.received.packets, 50);
    assert_eq!(report.received.late, 0, "reordering within the jitter buffer's delay is not lateness");
    let (rate, recorded) = read_wav(&file);
    assert_eq!(rate, 8000);
    assert_eq!(recorded.len(), 8000, "every packet decoded once");
    // Decoded in sequence order (a swap would put phase jumps in the tone), bit-exact.
    let mut expected = Vec::new();
    g711::decode(
        g711::Law::Mu,
        &packets.iter().flat_map(|p| RtpPacket::parse(p).expect("rtp").payload().to_vec()).collect::<Vec<_>>(),
        &mut expected,
    );
    assert!(recorded == expected, "recording differs from the decoded stream in order");
    assert!(goertzel_ratio(&recorded, 8000, 1000.0) > 0.95);
}

#[test]
fn stopping_or_replacing_a_play_does_not_leak_its_tail_into_the_next() {
    let loud = temp_path("loud-8k.wav");
    write_wav(&loud, 8000, &vec![12000i16; 8000]);
    let quiet = temp_path("quiet-8k.wav");
    write_wav(&quiet, 8000, &vec![-300i16; 8000]);
    let mut c = MediaCoordinator::new(10, Box::new(NoClock));
    let leg = LegId(1);
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media: pcmu(remote()) });
    c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file: loud, loops: 1, token: 1 });
    // Three ticks: one full packet sent, half a packet (80 samples) waiting in the encoder.
    run_ticks(&mut c, 0, 3);
    c.handle_cmd(TICK * 3, MediaCmd::Play { leg, file: quiet, loops: 1, token: 2 });
    let ticks = run_ticks(&mut c, 3, 10);
    let first_new = ticks.iter().flat_map(|t| &t.transmits).next().expect("a packet of the new play");
    let payload = RtpPacket::parse(&first_new.1).expect("rtp").payload().to_vec();
    assert!(payload.iter().all(|&b| b == g711::ulaw_encode(-300)), "old samples leaked: {payload:?}");
}

#[test]
fn every_play_gets_its_play_done_even_when_the_leg_ends_first() {
    let file = temp_path("long-8k.wav");
    write_wav(&file, 8000, &test_signal(8000, 16000, 3400.0));
    let mut c = MediaCoordinator::new(11, Box::new(NoClock));
    let leg = LegId(1);
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media: pcmu(remote()) });
    c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file, loops: 1, token: 5 });
    run_ticks(&mut c, 0, 10);
    c.handle_cmd(TICK * 10, MediaCmd::DestroyLeg { leg });
    assert!(matches!(
        poll_event(&mut c),
        Some(MediaOutput::Event(MediaEvent::PlayDone { token: 5, completed: false, .. }))
    ));
    assert!(matches!(poll_event(&mut c), Some(MediaOutput::Event(MediaEvent::LegClosed { .. }))));
    assert!(poll_event(&mut c).is_none());
}

#[test]
fn update_leg_changes_ptime_and_refuses_a_codec_change_or_second_recording() {
    let file = temp_path("ptime-8k.wav");
    write_wav(&file, 8000, &test_signal(8000, 8000, 3400.0));
    let mut c = MediaCoordinator::new(12, Box::new(NoClock));
    let leg = LegId(1);
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media: pcmu(remote()) });
    c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file, loops: 1, token: 1 });
    run_ticks(&mut c, 0, 4);
    let mut media = pcmu(remote());
    media.ptime_ms = 40;
    c.handle_cmd(TICK * 4, MediaCmd::UpdateLeg { leg, media });
    let ticks = run_ticks(&mut c, 4, 20);
    let sizes: Vec<usize> = ticks
        .iter()
        .flat_map(|t| &t.transmits)
        .map(|(_, p)| RtpPacket::parse(p).expect("rtp").payload().len())
        .collect();
    assert!(sizes.iter().all(|&n| n == 320), "40 ms packets after the update: {sizes:?}");
    assert_eq!(sizes.len(), 5);

    let mut pcma = pcmu(remote());
    pcma.codec = CodecKind::Pcma;
    pcma.payload_type = 8;
    c.handle_cmd(TICK * 24, MediaCmd::UpdateLeg { leg, media: pcma });
    assert!(matches!(
        poll_event(&mut c),
        Some(MediaOutput::Event(MediaEvent::CommandFailed { error: MediaError::CodecChange(LegId(1)), .. }))
    ));
    c.handle_cmd(TICK * 24, MediaCmd::Record { leg, file: temp_path("rec-a.wav") });
    c.handle_cmd(TICK * 24, MediaCmd::Record { leg, file: temp_path("rec-b.wav") });
    assert!(matches!(
        poll_event(&mut c),
        Some(MediaOutput::Event(MediaEvent::CommandFailed { error: MediaError::AlreadyRecording(LegId(1)), .. }))
    ));
}

#[test]
fn commands_for_unknown_legs_or_bad_ptime_fail_cleanly() {
    let mut c = MediaCoordinator::new(6, Box::new(NoClock));
    c.handle_cmd(Duration::ZERO, MediaCmd::StopPlay { leg: LegId(5) });
    assert!(matches!(
        poll_event(&mut c),
        Some(MediaOutput::Event(MediaEvent::CommandFailed { error: MediaError::NoSuchLeg(LegId(5)), .. }))
    ));
    let mut media = pcmu(remote());
    media.ptime_ms = 25;
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg: LegId(1), media });
    assert!(matches!(
        poll_event(&mut c),
        Some(MediaOutput::Event(MediaEvent::CommandFailed { error: MediaError::BadPtime(25), .. }))
    ));
    assert_eq!(c.leg_count(), 0);
}

#[test]
fn a_play_graph_with_its_buffers_costs_at_most_64_kib() {
    // Streamed from the file (decoder, resampler and read buffer per call) is the larger case.
    for (what, cache) in
        [("streamed", PromptCacheLimits { max_bytes: 0, max_seconds: 0 }), ("cached", PromptCacheLimits::default())]
    {
        let per_graph = heap_per_play_graph(cache);
        println!("heap per PCMU play graph (16 kHz prompt, {what}, steady state): {per_graph} bytes");
        assert!(per_graph > 0);
        assert!(per_graph <= 64 * 1024, "a {what} play graph costs {per_graph} bytes");
    }
}

fn heap_per_play_graph(cache: PromptCacheLimits) -> isize {
    let file = temp_path("prompt-mem-16k.wav");
    write_wav(&file, 16000, &test_signal(16000, 32000, 7000.0));
    let mut c = MediaCoordinator::new(7, Box::new(NoClock));
    c.set_prompt_cache(cache);
    // Warm up once so shared state (tables, TLS, the cached prompt) is not charged to the graphs.
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg: LegId(0), media: pcmu(remote()) });
    c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg: LegId(0), file: file.clone(), loops: 0, token: 0 });
    run_ticks(&mut c, 0, 10);
    const N: u32 = 50;
    let before = live_bytes();
    for i in 1..=N {
        let leg = LegId(i);
        c.handle_cmd(TICK * 10, MediaCmd::CreateLeg { leg, media: pcmu(remote()) });
        c.handle_cmd(TICK * 10, MediaCmd::Play { leg, file: file.clone(), loops: 0, token: 0 });
    }
    // Steady state: every buffer has reached its working size.
    run_ticks(&mut c, 10, 50);
    (live_bytes() - before) / N as isize
}

// ---------------------------------------------------------------------------------------------------
// Real sockets, decoded by sox.

fn sox(args: &[&str]) {
    let out = Command::new("sox")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("sox is needed for this test (the README's test command installs it): {e}"));
    assert!(out.status.success(), "sox {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Plays `file` through the media thread to a UDP socket on 127.0.0.1 and returns the µ-law payloads
/// received, in sequence order.
fn play_over_loopback(file: &Path) -> Vec<u8> {
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
    receiver.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
    let sockets = LegSockets::ephemeral([127, 0, 0, 1].into()).expect("bind leg sockets");
    let (media, mut events) = MediaThread::spawn(8).expect("media thread");
    let leg = LegId(1);
    media.send(MediaRequest::CreateLeg {
        sockets,
        cmd: MediaCmd::CreateLeg { leg, media: pcmu(receiver.local_addr().expect("addr")) },
    });
    media.cmd(MediaCmd::Play { leg, file: file.to_path_buf(), loops: 1, token: 1 });
    let mut packets: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut buf = [0u8; 2048];
    // Read until the play is reported done, then drain what is still in flight.
    let mut done = false;
    let mut idle_reads = 0;
    // Bounded: 50 ms read timeouts, at most 20 s without the play finishing.
    let mut timeouts = 0;
    while idle_reads < 4 {
        match receiver.recv_from(&mut buf) {
            Ok((n, _)) => {
                let p = RtpPacket::parse(&buf[..n]).expect("rms sent invalid RTP");
                packets.push((p.sequence_number(), p.payload().to_vec()));
            }
            Err(_) if done => idle_reads += 1,
            Err(_) => {
                timeouts += 1;
                assert!(timeouts < 400, "no PlayDone within 20 s ({} packets received)", packets.len());
            }
        }
        match events.try_recv() {
            Ok(MediaEvent::PlayDone { completed: true, .. }) => done = true,
            Ok(other) => panic!("unexpected media event {other:?}"),
            Err(_) => {}
        }
        assert!(packets.len() < 10_000, "runaway stream");
    }
    // The thread ran at least one tick per 10 ms of audio sent (it keeps its own count of late ticks).
    let stats = media.tick_stats().expect("the media thread answers");
    assert!(stats.ticks >= packets.len() as u64 * 2, "{stats:?} for {} packets", packets.len());
    media.shutdown();
    packets.sort_by_key(|(seq, _)| *seq);
    packets.into_iter().flat_map(|(_, p)| p).collect()
}

fn correlation_over_loopback(rate: u32) -> f64 {
    let seconds = 2;
    let source = test_signal(rate, rate as usize * seconds, 3400.0);
    let file = temp_path(&format!("loopback-{rate}.wav"));
    write_wav(&file, rate, &source);
    let ulaw = play_over_loopback(&file);
    assert_eq!(ulaw.len(), 8000 * seconds, "a {seconds} s prompt is {seconds} s of 8 kHz µ-law");
    let raw = temp_path(&format!("received-{rate}.ul"));
    std::fs::write(&raw, &ulaw).expect("write capture");
    let decoded = temp_path(&format!("received-{rate}.wav"));
    // sox decodes the µ-law, independently of our tables.
    sox(&[
        "-t",
        "ul",
        "-r",
        "8000",
        "-c",
        "1",
        raw.to_str().expect("utf8"),
        "-b",
        "16",
        decoded.to_str().expect("utf8"),
    ]);
    let reference = if rate == 8000 {
        file.clone()
    } else {
        // sox resamples the source, independently of our resampler.
        let r = temp_path(&format!("reference-{rate}-to-8k.wav"));
        sox(&[file.to_str().expect("utf8"), "-r", "8000", r.to_str().expect("utf8")]);
        r
    };
    let (drate, got) = read_wav(&decoded);
    let (rrate, want) = read_wav(&reference);
    assert_eq!((drate, rrate), (8000, 8000));
    let (corr, lag) = best_correlation(&got, &want, 80);
    println!("{rate} Hz source over loopback: correlation {corr:.4} at lag {lag} samples");
    corr
}

#[test]
fn loopback_play_of_an_8khz_wav_correlates_with_the_source() {
    let corr = correlation_over_loopback(8000);
    assert!(corr >= 0.99, "correlation {corr}");
}

#[test]
fn loopback_play_of_a_48khz_wav_correlates_with_the_source() {
    let corr = correlation_over_loopback(48000);
    assert!(corr >= 0.95, "correlation {corr}");
}

#[test]
fn a_refused_create_leg_releases_its_socket_and_never_replaces_a_live_legs() {
    let (media, mut events) = MediaThread::spawn(13).expect("media thread");
    let bind = || LegSockets::ephemeral([127, 0, 0, 1].into()).expect("bind");
    let (live, refused_dup, refused_ptime) = (bind(), bind(), bind());
    let addrs = [&live, &refused_dup, &refused_ptime].map(|s| s.rtp.local_addr().expect("addr"));
    let mut bad = pcmu(remote());
    bad.ptime_ms = 25;
    media.send(MediaRequest::CreateLeg {
        sockets: live,
        cmd: MediaCmd::CreateLeg { leg: LegId(1), media: pcmu(remote()) },
    });
    media.send(MediaRequest::CreateLeg {
        sockets: refused_dup,
        cmd: MediaCmd::CreateLeg { leg: LegId(1), media: pcmu(remote()) },
    });
    media.send(MediaRequest::CreateLeg {
        sockets: refused_ptime,
        cmd: MediaCmd::CreateLeg { leg: LegId(2), media: bad },
    });
    // The thread answers requests in order: once it reports tick statistics, the three are done.
    media.tick_stats().expect("the media thread answers");
    let mut failures = Vec::new();
    while let Ok(e) = events.try_recv() {
        failures.push(e);
    }
    assert!(
        matches!(
            failures.as_slice(),
            [
                MediaEvent::CommandFailed { error: MediaError::LegExists(LegId(1)), .. },
                MediaEvent::CommandFailed { error: MediaError::BadPtime(25), .. }
            ]
        ),
        "{failures:?}"
    );
    // The refused sockets were closed (their ports are free again); the live leg's is still held.
    assert!(UdpSocket::bind(addrs[1]).is_ok(), "duplicate leg's socket leaked");
    assert!(UdpSocket::bind(addrs[2]).is_ok(), "refused leg's socket leaked");
    assert!(UdpSocket::bind(addrs[0]).is_err(), "the live leg lost its socket");
    media.shutdown();
}
