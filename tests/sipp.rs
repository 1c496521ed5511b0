//! Real-peer tests of the SIP stack against sipp (Debian package `sip-tester`, installed by the
//! README's test command): the signalling runtime on 127.0.0.1 with the test-only answering
//! application, sipp's built-in `uac` over UDP and TCP, and the scenarios in tests/sipp/.

#[path = "common/answer_app.rs"]
mod answer_app;
#[path = "common/codec_peer.rs"]
mod codec_peer;
#[path = "common/impair.rs"]
mod impair;
#[path = "common/pcap.rs"]
mod pcap;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use answer_app::{AnswerApp, AppLog};
use rms::config::{ConfigFile, ServeConfig};
use rms::runtime::{Server, SignallingConfig, SignallingThread};
use rms::sdp::Direction;
use rms::sip::{DialogEnd, EndpointCounts, TimerConfig};
use rms_filters::codec::CodecKind;

fn server(timers: TimerConfig) -> (SignallingThread<AnswerApp>, Arc<Mutex<AppLog>>) {
    let (app, log) = AnswerApp::new();
    let mut config = SignallingConfig::new("127.0.0.1:0".parse().unwrap());
    config.timers = timers;
    config.seed = 7;
    (SignallingThread::spawn(config, app).expect("bind the signalling sockets"), log)
}

/// A port free on both UDP and TCP (for sipp's own SIP and media sockets).
/// Held by the tests whose figures depend on real time (load, PESQ, MOS, tone timing, SIP timer gaps and
/// deadlines), so that no two of them share this 2-core host's CPU: together they starve each other's
/// media threads, timers and capture sockets. The other tests still run beside them.
fn realtime_lock() -> std::sync::MutexGuard<'static, ()> {
    static REALTIME: Mutex<()> = Mutex::new(());
    // A test that failed holding it poisons it; the next one still runs.
    REALTIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn scenario(name: &str) -> String {
    if name.ends_with(".xml") {
        return name.to_string();
    }
    // The IVR caller is an example users run too; the others are test scenarios.
    let dir = if name == "ivr_call" { "examples" } else { "tests/sipp" };
    format!("{}/{dir}/{name}.xml", env!("CARGO_MANIFEST_DIR"))
}

fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rms-sipp-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run sipp against `target` and return its message log; panics with sipp's errors on failure.
fn sipp(name: &str, target: SocketAddr, args: &[&str]) -> String {
    sipp_on(name, free_port(), Some(target), args)
}

/// Run sipp on SIP port `port`, as a UAC towards `target` or (without one) as a UAS.
fn sipp_on(name: &str, port: u16, target: Option<SocketAddr>, args: &[&str]) -> String {
    let dir = work_dir(name);
    let messages = dir.join("messages.log");
    let errors = dir.join("errors.log");
    let port = port.to_string();
    let media_port = free_port().to_string();
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&dir);
    if let Some(target) = target {
        cmd.arg(target.to_string());
    }
    cmd.args(["-i", "127.0.0.1", "-p", &port, "-mp", &media_port, "-nostdin", "-timeout", "60s", "-timeout_error"])
        .args(["-trace_msg", "-message_file"])
        .arg(&messages)
        .args(["-trace_err", "-error_file"])
        .arg(&errors)
        .args(args);
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run sipp ({e}): install Debian's sip-tester (the README's test command does)"),
    };
    let log = std::fs::read_to_string(&messages).unwrap_or_default();
    if !out.status.success() {
        let errors = std::fs::read_to_string(&errors).unwrap_or_default();
        panic!(
            "sipp {name} failed ({}):\n{}\n{}\nerrors:\n{errors}\nmessages:\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    log
}

fn short_timers() -> TimerConfig {
    TimerConfig { t1: Duration::from_millis(20), t2: Duration::from_millis(80), t4: Duration::from_millis(100) }
}

/// Once every call has ended no dialog is left, and the transactions still absorbing
/// retransmissions (timers I, J, K, L: up to 64 × T1) run out by themselves: drive the stopped
/// endpoint through its remaining deadlines in virtual time and check nothing is left.
fn assert_nothing_left(server: SignallingThread<AnswerApp>) {
    let (_, mut endpoint) = server.shutdown();
    assert_eq!(endpoint.counts().dialogs, 0, "dialogs left after every call ended");
    for _ in 0..10_000 {
        let Some(at) = endpoint.poll_timeout() else { break };
        endpoint.handle_timeout(at);
        while endpoint.poll_transmit().is_some() {}
        while endpoint.poll_event().is_some() {}
    }
    assert_eq!(endpoint.counts(), EndpointCounts::default(), "transactions or timers left behind");
}

/// sipp's built-in `uac` (INVITE with PCMU, ACK, BYE) over `transport` (`u1` or `t1`).
fn builtin_uac(transport: &str) {
    let (server, log) = server(short_timers());
    sipp(&format!("uac-{transport}"), server.local_addr(), &["-sn", "uac", "-m", "10", "-r", "20", "-t", transport]);
    let log = log.lock().unwrap().clone();
    assert_eq!((log.invites, log.answered, log.acks), (10, 10, 10));
    assert_eq!(log.ended.iter().filter(|e| **e == DialogEnd::ByeReceived).count(), 10);
    assert!(log.negotiated_codecs.iter().all(|c| *c == CodecKind::Pcmu));
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    assert_nothing_left(server);
}

#[test]
fn builtin_uac_over_udp() {
    builtin_uac("u1");
}

#[test]
fn builtin_uac_over_tcp() {
    builtin_uac("t1");
}

#[test]
fn cancel_before_answer() {
    let (server, log) = server(short_timers());
    sipp("cancel", server.local_addr(), &["-sf", &scenario("cancel"), "-m", "3"]);
    let log = log.lock().unwrap().clone();
    assert_eq!((log.invites, log.cancelled, log.answered), (3, 3, 0));
    assert_nothing_left(server);
}

/// RFC 3261 §8.2.2.2 against sipp: the same INVITE again by another path gets 482, and the
/// application sees one call, which the caller then cancels.
#[test]
fn a_merged_invite_gets_482_loop_detected() {
    let (server, log) = server(short_timers());
    sipp("merged", server.local_addr(), &["-sf", &scenario("merged_request"), "-m", "2"]);
    let log = log.lock().unwrap().clone();
    assert_eq!((log.invites, log.cancelled, log.answered), (2, 2, 0), "one call each time, not two");
    assert_nothing_left(server);
}

#[test]
fn bye_from_the_caller() {
    let (server, log) = server(TimerConfig::default());
    sipp("bye-caller", server.local_addr(), &["-sf", &scenario("bye_from_caller"), "-m", "2"]);
    assert_eq!(log.lock().unwrap().ended, vec![DialogEnd::ByeReceived; 2]);
    assert_nothing_left(server);
}

/// rms hangs up; sipp checks the BYE has one To tag. `transport` is `u1` or `t1`.
fn bye_from_rms_over(transport: &str) {
    let (server, log) = server(TimerConfig::default());
    let args = ["-sf", &scenario("bye_from_rms"), "-m", "2", "-t", transport];
    sipp(&format!("bye-rms-{transport}"), server.local_addr(), &args);
    assert_eq!(log.lock().unwrap().ended, vec![DialogEnd::ByeSent; 2]);
    assert_nothing_left(server);
}

#[test]
fn bye_from_rms() {
    bye_from_rms_over("u1");
}

#[test]
fn bye_from_rms_over_tcp() {
    bye_from_rms_over("t1");
}

#[test]
fn options_ping() {
    let (server, log) = server(TimerConfig::default());
    sipp("options", server.local_addr(), &["-sf", &scenario("options"), "-m", "3"]);
    assert_eq!(log.lock().unwrap().invites, 0, "OPTIONS is answered by the endpoint");
}

#[test]
fn reinvite_hold_and_unhold() {
    let (server, log) = server(TimerConfig::default());
    sipp("reinvite", server.local_addr(), &["-sf", &scenario("reinvite_hold"), "-m", "1"]);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.reinvites, 2);
    assert_eq!(log.reinvite_directions, vec![Direction::RecvOnly, Direction::SendRecv]);
    assert_eq!(log.acks, 3);
}

#[test]
fn invite_without_sdp_gets_offer_in_200_and_answer_in_ack() {
    let (server, log) = server(TimerConfig::default());
    sipp("no-sdp", server.local_addr(), &["-sf", &scenario("no_sdp"), "-m", "1"]);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.late_offers_answered, 1);
    assert_eq!(log.negotiated_codecs, vec![CodecKind::Pcma]);
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    assert_nothing_left(server);
}

/// Times (seconds since the first) of each received message whose first line starts with `line`.
fn received_times(messages: &str, line: &str) -> Vec<f64> {
    let mut times = Vec::new();
    let mut stamp = None;
    let mut lines = messages.lines().peekable();
    while let Some(l) = lines.next() {
        if let Some(rest) = l.strip_prefix("----------------------------------------------- ") {
            // "2026-11-22\t12:34:56.789012"
            stamp = rest.split_whitespace().last().and_then(parse_clock);
            continue;
        }
        if l.contains("message received") {
            // Skip to the first non-empty line: the start line.
            let start = lines.by_ref().find(|l| !l.trim().is_empty()).unwrap_or_default();
            if start.starts_with(line) {
                times.extend(stamp);
            }
        }
    }
    let first = times.first().copied().unwrap_or(0.0);
    times.iter().map(|t| t - first).collect()
}

fn parse_clock(s: &str) -> Option<f64> {
    let mut parts = s.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + sec)
}

#[test]
fn uac_that_never_acks_gets_200_retransmissions_then_bye() {
    let _realtime = realtime_lock();
    // T1 100 ms, T2 400 ms: the 200 goes out at 0, .1, .3, .7, then every .4 s; BYE at 64 × T1.
    let timers =
        TimerConfig { t1: Duration::from_millis(100), t2: Duration::from_millis(400), t4: Duration::from_secs(1) };
    let (server, log) = server(timers);
    let messages = sipp("no-ack", server.local_addr(), &["-sf", &scenario("no_ack"), "-m", "1"]);
    let oks = received_times(&messages, "SIP/2.0 200");
    let byes = received_times(&messages, "BYE ");
    // Check the gaps, not absolute times: each retransmission is scheduled from the previous
    // one, so a loaded machine's wake-up delays add up but no single gap grows by much.
    let gaps: Vec<f64> = oks.windows(2).map(|w| w[1] - w[0]).collect();
    let expected_gap = |i: usize| [0.1, 0.2, 0.4].get(i).copied().unwrap_or(0.4);
    for (i, gap) in gaps.iter().enumerate() {
        let want = expected_gap(i);
        assert!((gap - want).abs() < 0.06, "gap {i} is {gap:.3} s, expected {want:.3} s: {oks:?}");
    }
    // 0, .1, .3, .7 then every .4 s until 64 × T1 = 6.4 s: 18 in all (one fewer if late wake-ups
    // pushed the last past the deadline).
    assert!((17..=18).contains(&oks.len()), "{} 200s: {oks:?}", oks.len());
    assert_eq!(byes.len(), 1);
    let bye_after_first_200 = received_times(&messages, "").into_iter().fold(0.0, f64::max);
    assert!((6.3..6.7).contains(&bye_after_first_200), "BYE at {bye_after_first_200:.3} s, expected 64 × T1 = 6.4 s");
    let log = log.lock().unwrap().clone();
    assert_eq!(log.ended, vec![DialogEnd::AckTimeout]);
    assert_eq!(log.acks, 0);
}

#[test]
fn hundred_concurrent_calls_at_50_cps() {
    let (server, log) = server(TimerConfig::default());
    sipp("load", server.local_addr(), &["-sn", "uac", "-m", "100", "-r", "50", "-l", "100", "-d", "2000"]);
    let log = log.lock().unwrap().clone();
    assert_eq!((log.invites, log.answered, log.acks), (100, 100, 100));
    assert_eq!(log.ended.len(), 100);
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    assert_nothing_left(server);
}

/// What a capture socket got: (payload type, payload, SSRC, sequence number) per packet, in arrival
/// order.
type Captured = Vec<(u8, Vec<u8>, u32, u16)>;

fn capture_rtp(socket: UdpSocket, done: Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<Captured> {
    std::thread::spawn(move || {
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let mut packets = Vec::new();
        let mut buf = [0u8; 2048];
        // Read until the call is over and the socket has been quiet for one timeout.
        loop {
            match socket.recv(&mut buf) {
                Ok(n) if n > 12 => {
                    let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                    let seq = u16::from_be_bytes([buf[2], buf[3]]);
                    packets.push((buf[1] & 0x7f, buf[12..n].to_vec(), ssrc, seq))
                }
                Ok(_) => {}
                Err(_) if done.load(std::sync::atomic::Ordering::SeqCst) => return packets,
                Err(_) => {}
            }
        }
    })
}

fn serve_config(rtp_ports: &str) -> ServeConfig {
    serve_config_with(rtp_ports, ConfigFile::default())
}

/// The example IVR on 127.0.0.1 with the repository's prompts, overridden by `flags` (as `rms serve`
/// flags override its config file).
fn serve_config_with(rtp_ports: &str, flags: ConfigFile) -> ServeConfig {
    let base = ConfigFile {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        script: Some(format!("{}/examples/ivr_play_hangup.lua", env!("CARGO_MANIFEST_DIR")).into()),
        rtp_ports: Some(rtp_ports.into()),
        voice_dir: Some(format!("{}/voice_files", env!("CARGO_MANIFEST_DIR")).into()),
        ..ConfigFile::default()
    };
    ServeConfig::from_file(base.overridden_by(flags)).unwrap()
}

/// Decode G.711 with sox (the independent decoder) and correlate with the prompt.
fn correlation_with_prompt(payload: &[u8], sox_type: &str, name: &str) -> f64 {
    let dir = work_dir(name);
    let raw = dir.join("captured.raw");
    let wav = dir.join("captured.wav");
    std::fs::write(&raw, payload).unwrap();
    let status = Command::new("sox")
        .args(["-t", sox_type, "-r", "8000", "-c", "1"])
        .arg(&raw)
        .args(["-t", "wav", "-b", "16", "-e", "signed-integer"])
        .arg(&wav)
        .status()
        .expect("sox (Debian package sox) decodes the capture");
    assert!(status.success());
    let (_, captured) = rms_filters::testing::read_wav(&wav).unwrap();
    let prompt_path = format!("{}/voice_files/welcome-8k.wav", env!("CARGO_MANIFEST_DIR"));
    let (_, prompt) = rms_filters::testing::read_wav(std::path::Path::new(&prompt_path)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    rms_filters::testing::best_correlation(&prompt, &captured, 400).0
}

#[test]
fn rms_serve_answers_plays_the_prompt_and_hangs_up() {
    let log_dir = work_dir("call-log");
    let call_log = log_dir.join("calls.jsonl");
    let mut config = serve_config("42000-42099");
    config.call_log = Some(call_log.clone());
    let server = Server::start(&config).expect("rms serve starts");
    for (pt, codec, sox_type) in [("0", "PCMU", "ul"), ("8", "PCMA", "al")] {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rtp_port = socket.local_addr().unwrap().port().to_string();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let capture = capture_rtp(socket, done.clone());
        let name = format!("ivr-{codec}");
        sipp(
            &name,
            server.local_addr(),
            &[
                "-sf",
                &scenario("ivr_call"),
                "-m",
                "1",
                "-set",
                "rtp_port",
                &rtp_port,
                "-set",
                "pt",
                pt,
                "-set",
                "codec",
                codec,
            ],
        );
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let packets = capture.join().unwrap();
        // A 3.0 s prompt at 20 ms: 150 ± 2 packets, all of the offered payload type.
        assert!((148..=152).contains(&packets.len()), "{codec}: {} packets", packets.len());
        assert!(packets.iter().all(|(p, _, _, _)| p.to_string() == pt), "{codec}: payload types");
        let payload: Vec<u8> = packets.iter().flat_map(|(_, p, _, _)| p.iter().copied()).collect();
        let corr = correlation_with_prompt(&payload, sox_type, &name);
        eprintln!("{codec}: {} RTP packets, correlation {corr:.4} with the prompt (sox-decoded)", packets.len());
        assert!(corr >= 0.98, "{codec}: correlation {corr:.4} with the prompt");
    }
    let (app, _) = server.shutdown();
    assert_eq!(app.sessions().counts().calls, 0);
    // --call-log: one JSON object per call, with the seed's two tables structured.
    let text = std::fs::read_to_string(&call_log).unwrap();
    let calls: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(calls.len(), 2, "{text}");
    for (call, codec) in calls.iter().zip(["PCMU", "PCMA"]) {
        assert_eq!(call["codec"], codec);
        assert_eq!(call["end_reason"], "rms_bye");
        assert_eq!(call["hung_up_by"], "rms");
        // 150 packets, the last sent 2.98 s after the first; then the BYE.
        assert!(call["duration_s"].as_f64().unwrap() >= 2.9, "{call}");
        let leg = &call["legs"][0];
        let sent = leg["rtp"]["sent_packets"].as_u64().unwrap();
        assert!((148..=152).contains(&sent), "{call}");
        let filters: Vec<&str> =
            leg["filters"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert!(filters.contains(&"rtp_send") && filters.contains(&"encoder"), "{filters:?}");
    }
    let _ = std::fs::remove_dir_all(&log_dir);
}

#[test]
fn sigterm_and_sigint_end_active_calls_with_bye_and_exit_0() {
    for signal in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGINT] {
        stop_with(signal);
    }
}

/// The real `rms serve` binary on a free port, with the repository's prompts.
fn spawn_rms(args: &[&str]) -> (std::process::Child, SocketAddr) {
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let rms = Command::new(env!("CARGO_BIN_EXE_rms"))
        .args(["serve", "--listen", &listen.to_string()])
        .args(args)
        .arg("--voice-dir")
        .arg(format!("{}/voice_files", env!("CARGO_MANIFEST_DIR")))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run rms serve");
    (rms, listen)
}

/// One PCMU IVR call from sipp on another thread; its RTP arrives on the returned socket.
fn ivr_call_in_background(name: &str, target: SocketAddr) -> (UdpSocket, std::thread::JoinHandle<String>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = socket.local_addr().unwrap().port().to_string();
    let name = name.to_string();
    let caller = std::thread::spawn(move || {
        let args = ["-sf", &scenario("ivr_call"), "-m", "1", "-set", "rtp_port", &rtp_port, "-set", "pt", "0"];
        sipp(&name, target, &[&args[..], &["-set", "codec", "PCMU"]].concat())
    });
    (socket, caller)
}

fn stop_with(signal: nix::sys::signal::Signal) {
    let (mut rms, target) = spawn_rms(&["--rtp-ports", "43000-43099"]);
    let (socket, caller) = ivr_call_in_background(&format!("{signal}"), target);
    // The call is up once its RTP flows: then stop rms. The scenario passes only if rms's BYE
    // comes (its 3 s prompt is cut short), with one To tag.
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 2048];
    socket.recv(&mut buf).expect("RTP from rms");
    let pid = nix::unistd::Pid::from_raw(rms.id() as i32);
    nix::sys::signal::kill(pid, signal).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let capture = capture_rtp(socket, done.clone());
    caller.join().expect("sipp got rms's BYE");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let packets = capture.join().unwrap().len() + 1;
    assert!(packets < 100, "the BYE came at shutdown, not after the 150-packet prompt ({packets} packets)");
    // rms must exit by itself, and with 0; a bounded wait on another thread.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(rms.wait()));
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(status) => assert!(status.unwrap().success(), "rms exit status after {signal}"),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("rms did not exit within 10 s of {signal}");
        }
    }
}

#[test]
fn a_script_syntax_error_stops_rms_serve_with_file_and_line() {
    let dir = work_dir("bad-script");
    let script = dir.join("broken.lua");
    std::fs::write(&script, "function request_route(call)\n  call:answer(\nend\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rms"))
        .args(["serve", "--listen", "127.0.0.1:0", "--script"])
        .arg(&script)
        .output()
        .expect("run rms serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:3:", script.display())), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The load acceptance at CI size: concurrent IVR calls all succeed and each gets its whole
/// prompt (`cargo run --release --example ivr_load` runs the full 200-call version).
#[test]
fn concurrent_ivr_calls_each_get_the_full_prompt() {
    let _realtime = realtime_lock();
    let dir = work_dir("ivr-load-calls");
    let call_log = dir.join("calls.jsonl");
    let mut config = serve_config("45000-45099");
    config.call_log = Some(call_log.clone());
    let server = Server::start(&config).expect("rms serve starts");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = socket.local_addr().unwrap().port().to_string();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let capture = capture_rtp(socket, done.clone());
    let args = ["-sf", &scenario("ivr_call"), "-m", "40", "-r", "20", "-l", "40", "-set", "rtp_port", &rtp_port];
    sipp("ivr-load", server.local_addr(), &[&args[..], &["-set", "pt", "0", "-set", "codec", "PCMU"]].concat());
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut captured: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    for (_, _, ssrc, _) in capture.join().unwrap() {
        *captured.entry(ssrc).or_default() += 1;
    }
    let (app, _) = server.shutdown();
    assert_eq!(app.sessions().counts().calls, 0);
    // What rms sent, by its own RTP statistics: a 3.0 s prompt at 20 ms is 150 ± 2 packets, to each
    // call, then its BYE.
    let text = std::fs::read_to_string(&call_log).unwrap();
    let calls: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(calls.len(), 40);
    let sent: Vec<u64> = calls.iter().map(|c| c["legs"][0]["rtp"]["sent_packets"].as_u64().unwrap_or(0)).collect();
    assert!(sent.iter().all(|n| (148..=152).contains(n)), "packets sent per call: {sent:?}");
    assert!(calls.iter().all(|c| c["end_reason"] == "rms_bye"), "{text}");
    // What arrived, independently: one stream per call, each mostly there. The capture thread shares
    // this 2-core host with the other tests; starved for over ~0.1 s, its socket buffer overflows.
    assert_eq!(captured.len(), 40, "one RTP stream per call");
    assert!(captured.values().all(|&n| n >= 75), "packets captured per call: {captured:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn http_sessions_metrics_and_the_sessions_command() {
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (mut rms, target) = spawn_rms(&["--rtp-ports", "43100-43199", "--http", &http.to_string()]);
    let (socket, caller) = ivr_call_in_background("http", target);
    // While the prompt plays: `rms sessions` shows the call.
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 2048];
    socket.recv(&mut buf).expect("RTP from rms");
    let out = Command::new(env!("CARGO_BIN_EXE_rms")).args(["sessions", "--http", &http.to_string()]).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing} {}", String::from_utf8_lossy(&out.stderr));
    assert!(listing.starts_with("1 active call(s)"), "{listing}");
    assert!(listing.contains("state: answered") && listing.contains("codec: PCMU") && listing.contains("playing: 1"));
    let json = http_get(http, "/sessions");
    assert!(json.contains("\"ruri\":\"sip:ivr@"), "{json}");
    caller.join().expect("the call completes");
    // After the call: its outcome and the media tick histograms.
    let metrics = http_get(http, "/metrics");
    assert!(metrics.contains("rms_calls_total{outcome=\"rms_bye\"} 1"), "{metrics}");
    assert!(metrics.contains("rms_active_calls 0"), "{metrics}");
    assert!(metrics.contains("rms_tick_duration_seconds_bucket"), "{metrics}");
    assert!(metrics.contains("rms_tick_lateness_seconds_count"), "{metrics}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(rms.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(rms.wait().unwrap().success());
}

/// A Lua error in one call's route ends that call (BYE) and leaves the others playing.
#[test]
fn a_lua_error_in_one_call_does_not_touch_the_others() {
    let dir = work_dir("lua-error-script");
    let script = dir.join("flaky.lua");
    std::fs::write(
        &script,
        r#"
function request_route(call) call:answer("rms:start") end
event_route["rms:start"] = function(call)
  -- sipp numbers its calls: "1-<pid>@...", "2-<pid>@..."
  if call.id:sub(1, 2) == "1-" then error("scripted failure for call 1") end
  call:play("welcome-8k.wav", "rms:after_play")
end
event_route["rms:after_play"] = function(call) call:hangup() end
"#,
    )
    .unwrap();
    let call_log = dir.join("calls.jsonl");
    let mut config = serve_config("45100-45199");
    config.script = Some(script);
    config.call_log = Some(call_log.clone());
    let server = Server::start(&config).expect("rms serve starts");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = socket.local_addr().unwrap().port().to_string();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let capture = capture_rtp(socket, done.clone());
    let args = ["-sf", &scenario("ivr_call"), "-m", "2", "-r", "10", "-l", "2", "-set", "rtp_port", &rtp_port];
    sipp("lua-error", server.local_addr(), &[&args[..], &["-set", "pt", "0", "-set", "codec", "PCMU"]].concat());
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut per_call: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    for (_, _, ssrc, _) in capture.join().unwrap() {
        *per_call.entry(ssrc).or_default() += 1;
    }
    let counts: Vec<usize> = per_call.values().copied().collect();
    assert_eq!(counts.len(), 1, "only the healthy call sent RTP: {per_call:?}");
    assert!((148..=152).contains(&counts[0]), "the healthy call got its whole prompt: {counts:?}");
    server.shutdown();
    let text = std::fs::read_to_string(&call_log).unwrap();
    let mut reasons: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["end_reason"].as_str().unwrap().to_string())
        .collect();
    reasons.sort();
    assert_eq!(reasons, vec!["error", "rms_bye"]);
    assert!(text.contains("flaky.lua:5: scripted failure for call 1"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rms_serve_answers_an_offer_without_a_common_codec_with_488() {
    let server = Server::start(&serve_config("45200-45299")).expect("rms serve starts");
    sipp("no-common-codec", server.local_addr(), &["-sf", &scenario("no_common_codec"), "-m", "1"]);
    let (app, _) = server.shutdown();
    assert_eq!(app.sessions().counts(), rms::session::SessionCounts::default());
    assert_eq!(app.ports().in_use(), 0, "the port taken for the answer went back");
}

// ----- bridge: sipp UAC (A) -> rms -> sipp UAS (B) -----

/// One bridged call: rms serving `script` (an example), a sipp callee running `callee` on its
/// own thread, and a sipp caller running `caller` whose X-Bridge-To names the callee. Returns
/// both message logs and the call log's record.
fn bridge_call(
    name: &str,
    script: &str,
    caller: (&str, &[&str]),
    callee: (&str, &[&str]),
    rtp_ports: &str,
) -> (String, String, serde_json::Value) {
    let dir = work_dir(&format!("{name}-log"));
    let call_log = dir.join("calls.jsonl");
    let mut config = serve_config(rtp_ports);
    config.script = Some(format!("{}/examples/{script}", env!("CARGO_MANIFEST_DIR")).into());
    config.call_log = Some(call_log.clone());
    let server = Server::start(&config).expect("rms serve starts");
    let b_port = free_port();
    let (callee_scenario, callee_args) =
        (scenario(callee.0), callee.1.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    let callee_name = format!("{name}-callee");
    let b = std::thread::spawn(move || {
        let args: Vec<&str> = callee_args.iter().map(String::as_str).collect();
        sipp_on(&callee_name, b_port, None, &[&["-sf", &callee_scenario, "-m", "1"][..], &args].concat())
    });
    let target = format!("sip:bob@127.0.0.1:{b_port}");
    let a_log = sipp(
        &format!("{name}-caller"),
        server.local_addr(),
        &[&["-sf", &scenario(caller.0), "-m", "1", "-set", "target", &target, "-set", "user", "bob"][..], caller.1]
            .concat(),
    );
    let b_log = b.join().expect("the callee's sipp passed");
    let (app, _) = server.shutdown();
    assert_eq!(app.sessions().counts(), rms::session::SessionCounts::default(), "{name}: calls or legs left");
    assert_eq!(app.ports().in_use(), 0, "{name}: RTP ports left");
    let text = std::fs::read_to_string(&call_log).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let record = serde_json::from_str(text.lines().next().expect("one call in the call log")).unwrap();
    (a_log, b_log, record)
}

const RING: [&str; 4] = ["-set", "ring", "30", "-set"];

#[test]
fn bridge_a_hangs_up_and_b_gets_one_bye() {
    let (a, b, record) = bridge_call(
        "bridge-a-bye",
        "bridge.lua",
        ("bridge_caller_hangs_up", &[&RING[..], &["rtp_port", "9", "-d", "500"]].concat()),
        ("callee_answers", &["-set", "rtp_port", "9"]),
        "46000-46099",
    );
    assert_eq!(b.matches("BYE sip:").count(), 1, "the callee got exactly one BYE:\n{b}");
    assert!(a.contains("X-Bridge-To"));
    assert_eq!(record["end_reason"], "caller_bye");
    assert_eq!((record["codec"].as_str(), record["b_codec"].as_str()), (Some("PCMU"), Some("PCMU")));
}

#[test]
fn bridge_b_hangs_up_and_a_gets_one_bye() {
    let (_, _, record) = bridge_call(
        "bridge-b-bye",
        "bridge.lua",
        ("bridge_caller_gets_bye", &[&RING[..], &["rtp_port", "9"]].concat()),
        ("callee_hangs_up", &["-set", "rtp_port", "9", "-d", "500"]),
        "46100-46199",
    );
    assert_eq!((record["end_reason"].as_str(), record["hung_up_by"].as_str()), (Some("callee_bye"), Some("callee")));
}

#[test]
fn bridge_busy_callee_gives_the_caller_486_within_a_second() {
    let _realtime = realtime_lock();
    // bridge_caller_busy.xml fails unless the 486 arrives within 1000 ms of the INVITE's 100.
    let (_, _, record) = bridge_call(
        "bridge-busy",
        "bridge.lua",
        ("bridge_caller_busy", &[&RING[..], &["rtp_port", "9"]].concat()),
        ("callee_busy", &[]),
        "46200-46299",
    );
    assert_eq!((record["end_reason"].as_str(), record["status"].as_u64()), (Some("rejected"), Some(486)));
}

#[test]
#[allow(clippy::disallowed_methods)] // a real-peer test: the ring timeout runs in real time
fn bridge_ring_timeout_cancels_the_callee_and_gives_the_caller_408() {
    let _realtime = realtime_lock();
    let started = std::time::Instant::now();
    let (_, b, record) = bridge_call(
        "bridge-timeout",
        "bridge.lua",
        ("bridge_caller_timeout", &["-set", "ring", "2", "-set", "rtp_port", "9"]),
        ("callee_rings", &[]),
        "46300-46399",
    );
    assert!(started.elapsed() >= Duration::from_secs(2), "408 not before the 2 s ring timeout");
    assert!(b.contains("CANCEL sip:"), "the callee was cancelled");
    assert_eq!(record["status"].as_u64(), Some(408));
}

#[test]
fn bridge_caller_cancel_cancels_the_callee() {
    let (_, b, record) = bridge_call(
        "bridge-cancel",
        "bridge.lua",
        ("bridge_caller_cancels", &[&RING[..], &["rtp_port", "9"]].concat()),
        ("callee_rings", &[]),
        "46400-46499",
    );
    assert!(b.contains("CANCEL sip:"), "the callee got the CANCEL");
    assert_eq!(record["end_reason"], "cancelled");
}

#[test]
fn play_then_bridge_connects_after_the_prompt() {
    let (_, _, record) = bridge_call(
        "play-then-bridge",
        "play_then_bridge.lua",
        ("bridge_caller_gets_bye", &[&RING[..], &["rtp_port", "9"]].concat()),
        ("callee_hangs_up", &["-set", "rtp_port", "9", "-d", "300"]),
        "46500-46599",
    );
    assert_eq!(record["end_reason"], "callee_bye");
    // A heard the prompt (3 s at 20 ms) on its leg before the bridge.
    let sent = record["legs"][0]["rtp"]["sent_packets"].as_u64().unwrap();
    assert!(sent >= 148, "the prompt went out before the bridge: {record}");
}

#[test]
fn play_then_bridge_to_a_busy_callee_runs_on_failed() {
    // on_failed plays goodbye-8k.wav (1.5 s) and hangs up: the caller gets rms's BYE.
    let (_, _, record) = bridge_call(
        "play-then-busy",
        "play_then_bridge.lua",
        ("bridge_caller_gets_bye", &[&RING[..], &["rtp_port", "9"]].concat()),
        ("callee_busy", &[]),
        "46600-46699",
    );
    assert_eq!(record["end_reason"], "rms_bye");
    let sent = record["legs"][0]["rtp"]["sent_packets"].as_u64().unwrap();
    assert!(sent >= 148 + 73, "welcome then goodbye were played: {record}");
}

// ----- media through a bridge: independent codec peers on both sides -----

/// The caller template with its pcap filled in (sipp loads the pcap with the scenario, so its path
/// cannot be a variable).
fn caller_scenario(dir: &std::path::Path, pcap: &std::path::Path) -> String {
    fill_template("bridge_caller_plays", &dir.join("caller.xml"), &[("@PCAP@", pcap.to_string_lossy().into_owned())])
}

/// The callee template answering with `codec` = (payload type, rtpmap), telephone-event at
/// `telephone_event` if given, extra attribute lines, and its pcap.
fn callee_scenario(
    dir: &std::path::Path,
    pcap: &std::path::Path,
    codec: (u8, &str),
    telephone_event: Option<u8>,
    attributes: &[String],
) -> String {
    let mut lines: Vec<String> = attributes.to_vec();
    let mut more = String::new();
    if let Some(te) = telephone_event {
        more = format!(" {te}");
        lines.push(format!("a=rtpmap:{te} telephone-event/8000"));
        lines.push(format!("a=fmtp:{te} 0-16"));
    }
    let extra: String = lines.iter().map(|l| format!("      {l}\n")).collect();
    fill_template(
        "callee_plays",
        &dir.join("callee.xml"),
        &[
            ("@PCAP@", pcap.to_string_lossy().into_owned()),
            ("RTP/AVP @PT@", format!("RTP/AVP {}{more}", codec.0)),
            ("@PT@", codec.0.to_string()),
            ("@RTPMAP@", codec.1.to_string()),
            ("      @FMTP@\n", extra),
        ],
    )
}

fn fill_template(template: &str, out: &std::path::Path, subs: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(scenario(template)).unwrap();
    for (from, to) in subs {
        text = text.replace(from, to);
    }
    std::fs::write(out, text).unwrap();
    out.to_string_lossy().into_owned()
}

/// `speech` encoded by `codec`'s independent peer (ffmpeg/sox) as an RTP pcap for sipp, its first
/// `packets` 20 ms packets (all by default); returns the file, the payload type and the packet count.
fn speech_pcap(
    dir: &std::path::Path,
    file: &str,
    codec: codec_peer::Codec,
    speech: &std::path::Path,
    packets: Option<usize>,
) -> (PathBuf, u8, usize) {
    let pt = codec.static_payload_type().unwrap_or(111);
    let mut payloads = codec_peer::encode(speech, codec, dir);
    payloads.truncate(packets.unwrap_or(payloads.len()));
    let rtp = codec_peer::packetize(&payloads, codec, codec_peer::StreamParams::new(pt, 11));
    let path = dir.join(file);
    let datagrams: Vec<Vec<u8>> = rtp.iter().map(codec_peer::RtpPacket::to_bytes).collect();
    pcap::write_rtp_pcap(&path, &datagrams, Duration::from_millis(20));
    (path, pt, rtp.len())
}

/// The callee's speech: the reference rotated by half its length (the same voices and level, in
/// another order), so that what each side hears can only have come from the other.
fn b_speech(dir: &std::path::Path, rate: u32) -> PathBuf {
    let path = dir.join(format!("b-speech-{rate}.wav"));
    if !path.exists() {
        let (rate, mut samples) = rms_filters::testing::read_wav(&codec_peer::reference_speech(rate)).unwrap();
        let half = samples.len() / 2;
        samples.rotate_left(half);
        rms_filters::testing::write_wav(&path, rate, &samples).unwrap();
    }
    path
}

/// What arrived at one side of a bridged call, decoded by that side's independent decoder.
struct Heard {
    wav: PathBuf,
    packets: usize,
    lost: usize,
}

/// One bridged call with speech both ways: the caller (A) speaks PCMU, the callee (B) `b_codec`,
/// each from a pcap of RTP made by ffmpeg/sox (replayed by sipp), and each side's test socket
/// captures what rms sends it. Returns (what A heard, what B heard).
/// Also returns the scratch directory (with B's speech in it).
fn speech_through_bridge(
    name: &str,
    b_codec: codec_peer::Codec,
    rtp_ports: &str,
) -> (Heard, Heard, serde_json::Value, PathBuf) {
    use codec_peer::{reassemble, reference_speech_for, Codec, ReceiveLimits, RtpReceiver};
    let dir = codec_peer::work_dir(&format!("bridge-{name}"));
    let (a_pcap, _, a_sent) = speech_pcap(&dir, "a.pcap", Codec::Pcmu, &reference_speech_for(Codec::Pcmu), None);
    let b_speech = b_speech(&dir, b_codec.encoder_rate());
    let (b_pcap, b_pt, b_sent) = speech_pcap(&dir, "b.pcap", b_codec, &b_speech, None);
    let fmtp = match b_codec {
        Codec::Opus => vec![format!("a=fmtp:{b_pt} useinbandfec=1")],
        _ => Vec::new(),
    };
    let caller_xml = caller_scenario(&dir, &a_pcap);
    let callee_xml = callee_scenario(&dir, &b_pcap, (b_pt, b_codec.rtpmap()), None, &fmtp);
    let limits = ReceiveLimits {
        first_packet: Duration::from_secs(20),
        idle: Duration::from_secs(3),
        total: Duration::from_secs(60),
    };
    let a_rx = RtpReceiver::spawn(UdpSocket::bind("127.0.0.1:0").unwrap(), limits);
    let b_rx = RtpReceiver::spawn(UdpSocket::bind("127.0.0.1:0").unwrap(), limits);
    let (a_port, b_port) = (a_rx.local_addr().port().to_string(), b_rx.local_addr().port().to_string());
    let (_, _, record) = bridge_call(
        name,
        "bridge.lua",
        (&caller_xml, &["-set", "ring", "30", "-set", "rtp_port", &a_port, "-d", "12500"]),
        (&callee_xml, &["-set", "rtp_port", &b_port]),
        rtp_ports,
    );
    let heard = |rx: RtpReceiver, codec: Codec, pt: u8, sent: usize, side: &str| {
        let packets = rx.join();
        let stream = reassemble(&packets, pt);
        let wav = dir.join(format!("{side}-heard-8k.wav"));
        codec_peer::decode_to_wav_8k(&stream.payloads, codec, &dir, &wav);
        eprintln!("{name}: {side} received {} packets ({} lost) of {sent} sent", stream.received, stream.lost);
        Heard { wav, packets: stream.received, lost: stream.lost }
    };
    eprintln!("{name}: call log {record}");
    let at_a = heard(a_rx, Codec::Pcmu, 0, b_sent, "A");
    let at_b = heard(b_rx, b_codec, b_pt, a_sent, "B");
    (at_a, at_b, record, dir)
}

#[test]
fn bridged_pcmu_calls_relay_each_sides_speech_to_the_other() {
    let _realtime = realtime_lock();
    use codec_peer::{reference_speech, Codec};
    let (at_a, at_b, record, dir) = speech_through_bridge("relay-pcmu", Codec::Pcmu, "47000-47099");
    let read = |p: &std::path::Path| rms_filters::testing::read_wav(p).unwrap().1;
    let (a_ref, b_ref) = (read(&reference_speech(8000)), read(&b_speech(&dir, 8000)));
    let (heard_by_a, heard_by_b) = (read(&at_a.wav), read(&at_b.wav));
    let a_hears_b = rms_filters::testing::best_correlation(&b_ref, &heard_by_a, 800).0;
    let b_hears_a = rms_filters::testing::best_correlation(&a_ref, &heard_by_b, 800).0;
    let a_hears_a = rms_filters::testing::best_correlation(&a_ref, &heard_by_a, 800).0;
    eprintln!("PCMU relay: A hears B {a_hears_b:.4}, B hears A {b_hears_a:.4} (A hears itself {a_hears_a:.4})");
    assert!(a_hears_b >= 0.98 && b_hears_a >= 0.98, "correlations {a_hears_b:.4} {b_hears_a:.4}");
    assert!(a_hears_a < 0.5, "A's own speech is not what it hears");
    assert_eq!((at_a.lost, at_b.lost), (0, 0), "nothing lost on loopback");
    assert!(at_a.packets >= 545 && at_b.packets >= 545, "the whole 11 s each way");
    assert_eq!(record["end_reason"], "caller_bye");
    let _ = std::fs::remove_dir_all(&dir);
}

/// PCMU at the caller, `b` at the callee: PESQ NB of what each side hears, beside the bare codec
/// chain (the same speech through the same two codecs with no rms in between).
fn transcoded_speech_scores(b: codec_peer::Codec, threshold: f64, rtp_ports: &str) {
    let _realtime = realtime_lock();
    use codec_peer::{bare_chain, pesq_nb, reference_speech, Codec};
    let name = format!("pcmu-{b:?}").to_lowercase();
    let (at_a, at_b, record, dir) = speech_through_bridge(&name, b, rtp_ports);
    let (a_ref, b_ref) = (reference_speech(8000), b_speech(&dir, 8000));
    // At the G.711 side: B's speech, encoded by B's peer, transcoded by rms to PCMU.
    let a_mos = pesq_nb(&b_ref, &at_a.wav);
    let a_bare = pesq_nb(&b_ref, &bare_chain(&b_speech(&dir, b.encoder_rate()), &[b, Codec::Pcmu], &dir));
    // At the other side: A's PCMU transcoded by rms to `b`, decoded by B's independent decoder.
    let b_mos = pesq_nb(&a_ref, &at_b.wav);
    let b_bare = pesq_nb(&a_ref, &bare_chain(&a_ref, &[Codec::Pcmu, b], &dir));
    eprintln!(
        "PCMU <-> {b:?} through rms: A (G.711 side) hears PESQ {a_mos:.3} (bare chain {a_bare:.3}); \
         B hears {b_mos:.3} (bare chain {b_bare:.3})"
    );
    assert!(a_mos >= threshold, "G.711 side: PESQ {a_mos:.3} < {threshold}");
    assert!(a_mos >= a_bare - 0.1, "G.711 side: PESQ {a_mos:.3} more than 0.1 under the bare chain {a_bare:.3}");
    assert!(b_mos >= b_bare - 0.1, "{b:?} side: PESQ {b_mos:.3} more than 0.1 under the bare chain {b_bare:.3}");
    assert_eq!(record["b_codec"].as_str(), Some(b.rtpmap().split('/').next().unwrap()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pcmu_to_pcma_transcoding_keeps_speech_quality() {
    transcoded_speech_scores(codec_peer::Codec::Pcma, 3.8, "47100-47199");
}

#[test]
fn pcmu_to_g722_transcoding_keeps_speech_quality() {
    transcoded_speech_scores(codec_peer::Codec::G722, 3.5, "47200-47299");
}

#[test]
fn pcmu_to_opus_transcoding_keeps_speech_quality() {
    transcoded_speech_scores(codec_peer::Codec::Opus, 3.5, "47300-47399");
}

#[test]
fn bridge_to_an_unreachable_tcp_target_gives_the_caller_503_at_once() {
    let dir = work_dir("bridge-unreachable-log");
    let call_log = dir.join("calls.jsonl");
    let mut config = serve_config("46700-46799");
    config.script = Some(format!("{}/examples/bridge.lua", env!("CARGO_MANIFEST_DIR")).into());
    config.call_log = Some(call_log.clone());
    let server = Server::start(&config).expect("rms serve starts");
    // A port nobody listens on: the connection is refused, a transport error (RFC 3261 §8.1.3.1).
    let target = format!("sip:bob@127.0.0.1:{};transport=tcp", free_port());
    let args = ["-sf", &scenario("bridge_caller_unreachable"), "-m", "1", "-set", "target", &target];
    sipp(
        "bridge-unreachable",
        server.local_addr(),
        &[&args[..], &["-set", "user", "bob", "-set", "ring", "30", "-set", "rtp_port", "9"]].concat(),
    );
    let (app, _) = server.shutdown();
    assert_eq!(app.sessions().counts(), rms::session::SessionCounts::default());
    assert_eq!(app.ports().in_use(), 0);
    let text = std::fs::read_to_string(&call_log).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(record["status"].as_u64(), Some(503), "{record}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bridged call whose caller sends 1 s of speech, digit 5 as RFC 4733 events (4 packets growing, the
/// end packet 3 times; 100 ms), then 1 s more, to a callee answering `b_codec` (and telephone-event at
/// `callee_te`). Returns what the callee received, its payload type, the call log record and the work
/// directory.
fn bridge_with_a_digit(
    name: &str,
    b_codec: codec_peer::Codec,
    callee_te: Option<u8>,
    rtp_ports: &str,
) -> (Vec<codec_peer::RtpPacket>, u8, serde_json::Value, PathBuf) {
    use codec_peer::{encode, reference_speech, Codec, ReceiveLimits, RtpPacket, RtpReceiver};
    let dir = codec_peer::work_dir(&format!("bridge-{name}"));
    // Caller: 1 s of speech, the event (4 packets growing, then the end packet 3 times), 1 s more.
    let speech = encode(&reference_speech(8000), Codec::Pcmu, &dir);
    let (ssrc, mut seq, mut ts) = (0x0d7f_0001u32, 2000u16, 90_000u32);
    let mut a_packets = Vec::new();
    let mut push = |pt: u8, marker: bool, ts: u32, seq: &mut u16, payload: Vec<u8>| {
        a_packets.push(
            RtpPacket { marker, payload_type: pt, sequence: *seq, timestamp: ts, ssrc, payload, received_at: None }
                .to_bytes(),
        );
        *seq = seq.wrapping_add(1);
    };
    for (i, p) in speech[..50].iter().enumerate() {
        push(0, i == 0, ts, &mut seq, p.clone());
        ts += 160;
    }
    let start = ts;
    for (i, duration) in [160u16, 320, 480, 640, 800, 800, 800].into_iter().enumerate() {
        let end = i >= 4;
        let payload = vec![5, (u8::from(end) << 7) | 10, (duration >> 8) as u8, duration as u8];
        push(101, i == 0, start, &mut seq, payload);
        if i < 4 {
            ts += 160;
        }
    }
    ts += 160;
    for (i, p) in speech[50..100].iter().enumerate() {
        push(0, i == 0, ts, &mut seq, p.clone());
        ts += 160;
    }
    let a_pcap = dir.join("a.pcap");
    pcap::write_rtp_pcap(&a_pcap, &a_packets, Duration::from_millis(20));
    // Callee: 1 s of speech in its codec.
    let (b_pcap, b_pt, _) = speech_pcap(&dir, "b.pcap", b_codec, &b_speech(&dir, 8000), Some(50));

    let caller_xml = caller_scenario(&dir, &a_pcap);
    let callee_xml = callee_scenario(&dir, &b_pcap, (b_pt, b_codec.rtpmap()), callee_te, &[]);
    let limits = ReceiveLimits {
        first_packet: Duration::from_secs(20),
        idle: Duration::from_secs(2),
        total: Duration::from_secs(30),
    };
    let b_rx = RtpReceiver::spawn(UdpSocket::bind("127.0.0.1:0").unwrap(), limits);
    let b_port = b_rx.local_addr().port().to_string();
    let (_, _, record) = bridge_call(
        name,
        "bridge.lua",
        (&caller_xml, &["-set", "ring", "30", "-set", "rtp_port", "9", "-d", "3500"]),
        (&callee_xml, &["-set", "rtp_port", &b_port]),
        rtp_ports,
    );
    (b_rx.join(), b_pt, record, dir)
}

/// RFC 4733 through a bridge with real peers: the caller's pcap carries digit 5 as telephone-events
/// (PT 101) between two stretches of speech; the callee negotiated telephone-event at PT 96. What the
/// callee receives must be the same event on its own payload type and timeline.
fn dtmf_through_bridge(name: &str, b_codec: codec_peer::Codec, rtp_ports: &str) {
    let _realtime = realtime_lock();
    use codec_peer::RtpPacket;
    let (heard, b_pt, record, dir) = bridge_with_a_digit(name, b_codec, Some(96), rtp_ports);
    let events: Vec<&RtpPacket> = heard.iter().filter(|p| p.payload_type == 96).collect();
    let audio: Vec<&RtpPacket> = heard.iter().filter(|p| p.payload_type == b_pt).collect();
    eprintln!("{name}: callee got {} audio packets and {} telephone-events", audio.len(), events.len());
    assert!(events.len() >= 5, "the event's packets reach the callee on its PT 96: {} of 7", events.len());
    assert!(heard.iter().all(|p| p.payload_type == 96 || p.payload_type == b_pt), "no other payload type");
    assert!(
        events.iter().all(|e| e.timestamp == events[0].timestamp && e.ssrc == audio[0].ssrc),
        "one event, rms's SSRC"
    );
    assert!(events[0].marker && events[1..].iter().all(|e| !e.marker), "marker on the event's first packet only");
    let parsed: Vec<(u8, bool, u16)> = events
        .iter()
        .map(|e| (e.payload[0], e.payload[1] & 0x80 != 0, u16::from_be_bytes([e.payload[2], e.payload[3]])))
        .collect();
    assert!(parsed.iter().all(|(code, _, _)| *code == 5), "digit 5: {parsed:?}");
    assert!(parsed.windows(2).all(|w| w[1].2 >= w[0].2), "durations grow: {parsed:?}");
    assert_eq!(parsed.last().map(|p| (p.1, p.2)), Some((true, 800)), "ends with E set at 100 ms: {parsed:?}");
    // Audio before and after the event, on the same timeline: the event starts after the audio
    // that preceded it, and the audio that follows comes after the event's end.
    let before = audio.iter().filter(|p| p.sequence.wrapping_sub(events[0].sequence) > 0x8000).count();
    let after = audio.len() - before;
    assert!(before >= 45 && after >= 45, "speech on both sides of the event: {before} before, {after} after");
    assert_eq!(record["end_reason"], "caller_bye");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The callee did not negotiate telephone-event: it must hear the digit as Q.23 tones in its audio,
/// decoded here by sox, between the caller's speech.
#[test]
fn dtmf_reaches_a_callee_without_telephone_event_as_in_band_tones() {
    let _realtime = realtime_lock();
    use rms_filters::testing::goertzel_ratio;
    let name = "dtmf-in-band";
    let (mut heard, b_pt, record, dir) = bridge_with_a_digit(name, codec_peer::Codec::Pcmu, None, "47900-47999");
    assert!(heard.iter().all(|p| p.payload_type == b_pt), "audio only, on the callee's payload type");
    let first_seq = heard[0].sequence;
    heard.sort_by_key(|p| p.sequence.wrapping_sub(first_seq));
    let payloads: Vec<Option<Vec<u8>>> = heard.iter().map(|p| Some(p.payload.clone())).collect();
    let pcm = codec_peer::decode(&payloads, codec_peer::Codec::Pcmu, &dir);
    // 10 ms blocks holding digit 5 (770 + 1336 Hz): the event's 100 ms, nine whole blocks at least.
    let digit: Vec<usize> = pcm
        .chunks_exact(80)
        .enumerate()
        .filter(|(_, b)| goertzel_ratio(b, 8000, 770.0) + goertzel_ratio(b, 8000, 1336.0) > 0.9)
        .map(|(i, _)| i)
        .collect();
    eprintln!("{name}: digit in blocks {digit:?} of {}", pcm.len() / 80);
    assert!((9..=11).contains(&digit.len()), "{digit:?}");
    assert!(digit.windows(2).all(|w| w[1] == w[0] + 1), "one tone: {digit:?}");
    // Speech on both sides: at least 0.8 s of audio before the tone and after it.
    let (first, last) = (digit[0], digit[digit.len() - 1]);
    assert!(first >= 80 && pcm.len() / 80 - last >= 80, "tone at {first}..={last} of {}", pcm.len() / 80);
    assert_eq!(record["end_reason"], "caller_bye");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dtmf_is_relayed_to_the_callees_payload_type_in_a_pcmu_relay() {
    dtmf_through_bridge("dtmf-relay", codec_peer::Codec::Pcmu, "47400-47499");
}

#[test]
fn dtmf_is_relayed_to_the_callees_payload_type_through_pcmu_to_pcma_transcoding() {
    dtmf_through_bridge("dtmf-transcode", codec_peer::Codec::Pcma, "47500-47599");
}

// ----- call quality (issue 6): RTCP, the E-model and RFC 6035 reports with real peers -----

/// One IVR call whose caller media crosses the impairment relay (see tests/common/impair.rs): sipp
/// carries the signalling and names the relay's port in its SDP; the relay plays the first
/// `speech_packets` 20 ms packets of the reference speech (PCMU, encoded by ffmpeg) to rms through
/// `impairment`, while rms plays a `prompt_s`-second tone (written to the work dir, the script's
/// `--voice-dir`) and hangs up when it ends. rms reports RTCP every second (`--rtcp-interval-ms 1000`)
/// and logs the call (`--call-log`). Checks nothing is left behind; returns the relay's counts and
/// the call log's record.
fn impaired_ivr_call(
    name: &str,
    impairment: impair::Impairment,
    prompt_s: u32,
    speech_packets: usize,
    rtp_ports: &str,
    flags: ConfigFile,
) -> (impair::RelayCounts, serde_json::Value, String) {
    use codec_peer::{encode, packetize, reference_speech, Codec, StreamParams};
    // Not sipp's own work dir (removed when sipp passes).
    let dir = work_dir(&format!("{name}-media"));
    let tone: Vec<i16> = (0..8000 * prompt_s)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 8000.0).sin()) as i16)
        .collect();
    rms_filters::testing::write_wav(&dir.join("long-8k.wav"), 8000, &tone).unwrap();
    let script = dir.join("long_prompt.lua");
    std::fs::write(
        &script,
        r#"
function request_route(call) call:answer("rms:start") end
event_route["rms:start"] = function(call) call:play("long-8k.wav", "rms:after_play") end
event_route["rms:after_play"] = function(call) call:hangup() end
"#,
    )
    .unwrap();
    let mut speech = encode(&reference_speech(8000), Codec::Pcmu, &dir);
    assert!(speech.len() >= speech_packets, "the reference speech has {} packets", speech.len());
    speech.truncate(speech_packets);
    let caller = packetize(&speech, Codec::Pcmu, StreamParams::new(0, 11));
    let relay = impair::Relay::spawn(
        impairment,
        caller.iter().map(codec_peer::RtpPacket::to_bytes).collect(),
        Duration::from_millis(20),
    );
    let call_log = dir.join("calls.jsonl");
    let config = serve_config_with(
        rtp_ports,
        ConfigFile {
            script: Some(script),
            voice_dir: Some(dir.clone()),
            call_log: Some(call_log.clone()),
            rtcp_interval_ms: Some(1000),
            ..flags
        },
    );
    let server = Server::start(&config).expect("rms serve starts");
    let relay_port = relay.rtp_port().to_string();
    let args = ["-sf", &scenario("ivr_call"), "-m", "1", "-set", "rtp_port", &relay_port, "-set", "pt", "0"];
    let caller_log = sipp(name, server.local_addr(), &[&args[..], &["-set", "codec", "PCMU"]].concat());
    let counts = relay.finish();
    let (app, _) = server.shutdown();
    assert_eq!(app.sessions().counts(), rms::session::SessionCounts::default(), "{name}: calls or legs left");
    assert_eq!(app.ports().in_use(), 0, "{name}: RTP ports left");
    let text = std::fs::read_to_string(&call_log).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.lines().next().expect("one call logged")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{name}: relay {counts:?}\n{name}: quality {}", record["legs"][0]["quality"]);
    assert_eq!(counts.received, speech_packets as u64, "{name}: the whole caller stream went out before the BYE");
    assert_eq!(counts.dropped + counts.forwarded, counts.received);
    assert!(counts.from_rms_rtp >= u64::from(prompt_s) * 49, "{name}: rms's prompt reached the relay: {counts:?}");
    assert!(counts.from_rms_rtcp >= 2, "{name}: rms's RTCP reached the relay's RTCP port: {counts:?}");
    assert_eq!(record["end_reason"], "rms_bye");
    (counts, record, caller_log)
}

/// The simplified E-model of the reference notes (§B4), by hand, for G.711 with PLC: Ie 0, Bpl 25.1,
/// random loss `ppl` % and one-way delay `d` ms.
fn hand_e_model_mos(ppl: f64, d: f64) -> f64 {
    let ie_eff = 95.0 * ppl / (ppl + 25.1);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let r = 93.2 - id - ie_eff;
    1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
}

/// Issue 6 with a real impaired path: 5 % seeded random loss and 20 ms jitter (0–40 ms delays) on
/// the caller's PCMU into rms. The call log's A-leg loss is the relay's drop rate (±1 point), and its
/// average MOS is the E-model computed here by hand from that loss and the delay rms says it used
/// (±0.2): d = RTT/2 (`roundtrip_ms`, 0 when the peer sent no RTCP to measure it from, as here) + the
/// end-system delay of rms's last XR VoIP metrics (`local_xr.end_system_delay_ms`: jitter-buffer
/// nominal + one packet time), as `RtcpSession::sample` computes it.
///
/// rms's figure is the mean of its per-interval losses (lost + discarded over expected) and counts
/// from the first packet of the validated source (RFC 3550 A.1 probation: a drop among the first two
/// packets is invisible to any receiver), so it is near the relay's overall rate, not equal to it.
#[test]
fn impaired_caller_media_gives_the_measured_loss_and_the_e_model_mos() {
    let _realtime = realtime_lock();
    let impairment = impair::Impairment { loss_percent: 5.0, jitter: Duration::from_millis(20), seed: 6 };
    // With --http, the process's Prometheus recorder is installed and takes the call's histograms.
    let http = ConfigFile { http: Some("127.0.0.1:0".parse().unwrap()), ..ConfigFile::default() };
    let (counts, record, _) = impaired_ivr_call("quality-impaired", impairment, 12, 550, "47600-47699", http);
    let metrics = rms::runtime::http::prometheus().render();
    for series in ["rms_call_mos_count{leg=\"A\"}", "rms_call_packet_loss_percent_bucket{leg=\"A\",le=\"5\"}"] {
        assert!(metrics.contains(series), "/metrics lacks {series}:\n{metrics}");
    }
    let q = &record["legs"][0]["quality"];
    let relay_loss = counts.dropped_percent();
    let rms_loss = q["packetloss_percent"].as_f64().expect("packetloss_percent");
    assert!((3.0..=7.0).contains(&relay_loss), "the seeded 5 % gave {relay_loss:.2} %");
    assert!(
        (rms_loss - relay_loss).abs() <= 1.0,
        "rms measured {rms_loss} % loss, the relay dropped {relay_loss:.2} %"
    );
    let rtt = q["roundtrip_ms"].as_f64().unwrap_or(0.0);
    let end_system = q["local_xr"]["end_system_delay_ms"].as_f64().expect("local_xr.end_system_delay_ms");
    let d = rtt / 2.0 + end_system;
    let hand = hand_e_model_mos(rms_loss, d);
    let mos = q["mos_average"].as_f64().expect("mos_average");
    eprintln!(
        "impaired: relay dropped {relay_loss:.2} %, rms loss {rms_loss} %, d {d} ms, MOS average {mos}, \
         hand E-model {hand:.3}"
    );
    assert!((mos - hand).abs() <= 0.2, "MOS average {mos} vs the hand E-model's {hand:.3} (Ppl {rms_loss}, d {d})");
    assert!(q["samples"].as_u64().unwrap() >= 8, "about one sample per second of the call: {q}");
    assert!(record["legs"][0]["rtcp"]["sent_packets"].as_u64().unwrap() >= 8, "{record}");
}

/// The same path with no impairment: G.711 scores as G.711 can (R 93.2 less the delay term).
#[test]
fn an_unimpaired_caller_gives_g711_its_top_mos() {
    let _realtime = realtime_lock();
    let (counts, record, _) =
        impaired_ivr_call("quality-clean", impair::Impairment::NONE, 5, 200, "47700-47799", ConfigFile::default());
    assert_eq!(counts.dropped, 0);
    let q = &record["legs"][0]["quality"];
    let mos_lq = q["local_xr"]["mos_lq"].as_f64().expect("local_xr.mos_lq");
    let mos = q["mos_average"].as_f64().expect("mos_average");
    let loss = q["packetloss_percent"].as_f64().expect("packetloss_percent");
    eprintln!("unimpaired: MOS-LQ {mos_lq}, MOS average {mos}, loss {loss}");
    assert!(mos_lq >= 4.3, "MOS-LQ {mos_lq}");
    if loss == 0.0 {
        assert!(mos >= 4.3, "MOS average {mos} with nothing lost");
    } else {
        // The relay paces in real time: on a starved host a late burst is discarded by rms's jitter
        // buffer, which is loss rms must score like any other.
        let d = q["local_xr"]["end_system_delay_ms"].as_f64().expect("end_system_delay_ms");
        let hand = hand_e_model_mos(loss, d);
        eprintln!("unimpaired: the host delayed packets past playout ({loss} % discarded)");
        assert!((mos - hand).abs() <= 0.2, "MOS average {mos} vs the hand E-model's {hand:.3} at {loss} %");
    }
}

/// The PUBLISH in a sipp message log, as received: from its request line to the end of its body
/// (sipp's log adds its own separators and blank lines after each message).
fn received_publish(messages: &str) -> &str {
    let start = messages.find("PUBLISH sip:").expect("a PUBLISH in the collector's log");
    let rest = &messages[start..];
    let end = rest.find("\n-----------------------------------------------").unwrap_or(rest.len());
    &rest[..end]
}

/// RFC 6035 with a real collector: rms, run with `--vq-collector sip:collector@127.0.0.1:PORT`, sends
/// one PUBLISH for the leg of an IVR call to a sipp collector (tests/sipp/vq_collector.xml, which checks
/// the Event and Content-Type and accepts with 200). The caller is sipp for the signalling and the relay
/// (unimpaired) for its media, so rms has a received stream to report on. The PUBLISH as received is
/// checked against RFC 6035 §4 (the VQSessionReport body, §4.2 ABNF) and RFC 3903 (the request).
#[test]
fn the_vq_collector_gets_an_rfc_6035_report_of_the_call() {
    let _realtime = realtime_lock();
    let collector_port = free_port();
    let collector_uri = format!("sip:collector@127.0.0.1:{collector_port}");
    let collector = std::thread::spawn(move || {
        sipp_on("vq-collector", collector_port, None, &["-sf", &scenario("vq_collector"), "-m", "1"])
    });
    let flags = ConfigFile { vq_collector: Some(collector_uri.clone()), ..ConfigFile::default() };
    let (counts, _, caller_log) =
        impaired_ivr_call("vq-caller", impair::Impairment::NONE, 4, 150, "47800-47899", flags);
    let collector_log = collector.join().expect("the collector got a PUBLISH and accepted it");
    let publish = received_publish(&collector_log);
    // The call as the caller saw it: its Call-ID, and rms's RTP port in the 200's SDP.
    let header = |text: &str, name: &str| -> String {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
        line[name.len()..].trim().to_string()
    };
    let call_id = header(&caller_log, "Call-ID:");
    let rms_port: u16 = header(&caller_log[caller_log.find("SIP/2.0 200").unwrap()..], "m=audio ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((47800..=47899).contains(&rms_port), "rms's RTP port {rms_port}");

    // RFC 3903 / RFC 6035 §3: the request.
    let (head, body) = publish.split_once("\r\n\r\n").expect("headers, a blank line, the body");
    let mut head_lines = head.split("\r\n");
    assert_eq!(head_lines.next(), Some(format!("PUBLISH {collector_uri} SIP/2.0").as_str()));
    let headers: Vec<(&str, &str)> =
        head_lines.map(|l| l.split_once(':').map(|(n, v)| (n.trim(), v.trim())).expect("name: value")).collect();
    let get = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
    assert_eq!(get("Event"), Some("vq-rtcpxr"));
    assert_eq!(get("Content-Type"), Some("application/vq-rtcpxr"));
    let length: usize = get("Content-Length").expect("Content-Length").parse().unwrap();
    // sipp's log ends the message with its own newline(s); the body is the first Content-Length bytes.
    assert!(body.len() >= length && body[length..].trim().is_empty(), "Content-Length {length}, body {body:?}");
    let body = &body[..length];

    // RFC 6035 §4: CRLF line ends, the CallTerm report of this call.
    assert!(body.ends_with("\r\n") && !body.replace("\r\n", "").contains('\n'), "CRLF lines: {body:?}");
    let lines: Vec<&str> = body.trim_end().split("\r\n").collect();
    assert_eq!(lines[0], "VQSessionReport: CallTerm");
    let field = |name: &str| -> &str {
        let prefix = format!("{name}:");
        let line = lines.iter().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {name} in {body}"));
        line[prefix.len()..].trim()
    };
    assert_eq!(field("CallID"), call_id);
    for id in ["LocalID", "RemoteID", "OrigID"] {
        assert!(field(id).contains("sip:"), "{id}: {}", field(id));
    }
    let local_addr = field("LocalAddr");
    let ssrc = local_addr
        .strip_prefix(&format!("IP=127.0.0.1 PORT={rms_port} SSRC=0x"))
        .unwrap_or_else(|| panic!("LocalAddr: {local_addr}"));
    assert!(ssrc.len() == 8 && ssrc.chars().all(|c| c.is_ascii_hexdigit()), "LocalAddr: {local_addr}");
    let remote_addr = field("RemoteAddr");
    let relay_port = header(&caller_log, "m=audio ").split(' ').next().unwrap().to_string();
    assert!(remote_addr.starts_with(&format!("IP=127.0.0.1 PORT={relay_port}")), "RemoteAddr: {remote_addr}");

    // LocalMetrics: what rms measured of the caller's stream, in the §4.2 order.
    let metrics_at = lines.iter().position(|l| *l == "LocalMetrics:").expect("LocalMetrics:");
    let metrics = &lines[metrics_at + 1..];
    let names: Vec<&str> = metrics.iter().map(|l| l.split(':').next().unwrap()).collect();
    let expected_order = ["Timestamps", "SessionDesc", "JitterBuffer", "PacketLoss", "BurstGapLoss", "Delay"];
    assert_eq!(names[..expected_order.len()], expected_order, "{body}");
    let param = |line: &str, key: &str| -> String {
        let tag = format!("{key}=");
        line.split_whitespace().find_map(|w| w.strip_prefix(&tag)).unwrap_or_else(|| panic!("{key} in {line}")).into()
    };
    let (start, stop) = (param(metrics[0], "START"), param(metrics[0], "STOP"));
    let rfc3339 = |t: &str| humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    assert!(start.ends_with('Z') && stop.ends_with('Z') && rfc3339(&start) <= rfc3339(&stop), "{}", metrics[0]);
    assert!(metrics[1].starts_with("SessionDesc: PT=0 PD=PCMU SR=8000"), "{}", metrics[1]);
    let percent = |v: String| {
        let (whole, tenth) = v.split_once('.').unwrap_or_else(|| panic!("{v}: one decimal"));
        assert!(tenth.len() == 1 && whole.parse::<u32>().is_ok(), "{v}: one decimal");
        v.parse::<f64>().unwrap()
    };
    assert_eq!((percent(param(metrics[3], "NLR")), percent(param(metrics[3], "JDR"))), (0.0, 0.0), "{}", metrics[3]);
    assert_eq!(param(metrics[4], "GMIN"), "16");
    let quality = metrics.iter().find(|l| l.starts_with("QualityEst:")).expect("QualityEst");
    for key in ["MOSLQ", "MOSCQ"] {
        let mos: f64 = param(quality, key).parse().unwrap();
        assert!((1.0..=4.5).contains(&mos), "{quality}");
    }
    assert_eq!(counts.dropped, 0);
}
