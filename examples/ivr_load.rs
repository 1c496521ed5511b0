//! Load the IVR flow (answer, play the 3.0 s prompt, BYE from rms) with sipp and count what arrives.
//!
//! ```sh
//! cargo run --release --example ivr_load -- --calls 200 --rate 50 --limit 200
//! cargo run --release --example ivr_load -- --calls 2000 --rate 200 --limit 1000   # setup rate
//! cargo run --release --example ivr_load -- --target 127.0.0.1:5060 ...            # an rms serve
//! ```
//!
//! Without `--target` it starts rms in this process (release build, the example script, the
//! repository's voice_files/). sipp (Debian's sip-tester) places the calls with
//! examples/ivr_call.xml; every call's SDP points its RTP at one local socket, and packets are
//! told apart by SSRC (one per call leg). Prints calls OK/failed (sipp's counts), the setup rate,
//! and RTP packets received per call (a full prompt is 150 ± 2).
#![allow(clippy::disallowed_methods)] // a load tool measures real time

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rms::config::{ConfigFile, ServeConfig};
use rms::runtime::Server;

struct Args {
    calls: u32,
    rate: u32,
    limit: u32,
    target: Option<SocketAddr>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args { calls: 200, rate: 50, limit: 200, target: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--calls" => a.calls = value.parse()?,
            "--rate" => a.rate = value.parse()?,
            "--limit" => a.limit = value.parse()?,
            "--target" => a.target = Some(value.parse()?),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let root = env!("CARGO_MANIFEST_DIR");
    let server = match args.target {
        Some(_) => None,
        None => {
            let flags = ConfigFile {
                listen: Some("127.0.0.1:0".parse()?),
                rtp_ports: Some("46000-49999".into()),
                voice_dir: Some(format!("{root}/voice_files").into()),
                ..ConfigFile::default()
            };
            Some(Server::start(&ServeConfig::from_file(flags)?)?)
        }
    };
    let target = args.target.or(server.as_ref().map(|s| s.local_addr())).context("no target")?;

    let sink = UdpSocket::bind("127.0.0.1:0")?;
    sink.set_read_timeout(Some(Duration::from_millis(200)))?;
    // Hundreds of calls' RTP (50 packets/s each) land on this one socket: give it room, so that
    // what is counted is what rms sent, not what our buffer dropped (forcing past rmem_max needs
    // root; otherwise the kernel's limit applies).
    let room = 32 * 1024 * 1024;
    if nix::sys::socket::setsockopt(&sink, nix::sys::socket::sockopt::RcvBufForce, &room).is_err() {
        let _ = nix::sys::socket::setsockopt(&sink, nix::sys::socket::sockopt::RcvBuf, &room);
    }
    let rtp_port = sink.local_addr()?.port();
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let counter = std::thread::spawn(move || {
        let mut per_ssrc: HashMap<u32, u32> = HashMap::new();
        let mut buf = [0u8; 2048];
        loop {
            match sink.recv(&mut buf) {
                Ok(n) if n >= 12 => {
                    *per_ssrc.entry(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]])).or_default() += 1
                }
                Ok(_) => {}
                Err(_) if stop.load(Ordering::SeqCst) => return per_ssrc,
                Err(_) => {}
            }
        }
    });

    let scenario = format!("{root}/examples/ivr_call.xml");
    let started = Instant::now();
    let out = Command::new("sipp")
        .arg(target.to_string())
        .args(["-sf", &scenario, "-nostdin", "-i", "127.0.0.1", "-p", "0", "-mp", "0"])
        .args(["-m", &args.calls.to_string(), "-r", &args.rate.to_string(), "-l", &args.limit.to_string()])
        .args(["-set", "rtp_port", &rtp_port.to_string(), "-set", "pt", "0", "-set", "codec", "PCMU"])
        .args(["-timeout", "600s", "-max_socket", "5000"])
        .output()
        .context("run sipp (Debian package sip-tester)")?;
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let per_ssrc = counter.join().expect("counter thread");
    let screen = String::from_utf8_lossy(&out.stdout);
    let count = |label: &str| -> u64 {
        screen
            .lines()
            .rfind(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split('|').nth(2))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let (ok, failed) = (count("Successful call"), count("Failed call"));
    let mut packets: Vec<u32> = per_ssrc.values().copied().collect();
    packets.sort_unstable();
    let full = packets.iter().filter(|p| (148..=152).contains(*p)).count();
    println!("target {target}: {} calls offered at {}/s, at most {} at once", args.calls, args.rate, args.limit);
    println!("calls OK {ok}, failed {failed} (sipp exit {})", out.status);
    println!(
        "setup rate {} calls/s for {:.1} s ({} calls), all ended in {:.1} s (each call lasts the 3.0 s prompt)",
        args.rate,
        f64::from(args.calls) / f64::from(args.rate.max(1)),
        args.calls,
        elapsed.as_secs_f64()
    );
    if let (Some(min), Some(max)) = (packets.first(), packets.last()) {
        let sum: u64 = packets.iter().map(|&p| u64::from(p)).sum();
        println!(
            "RTP per call: {} calls seen, min {min}, mean {:.1}, max {max}; {full} with the full prompt (150 ± 2)",
            packets.len(),
            sum as f64 / packets.len() as f64
        );
    }
    if let Some(server) = server {
        server.shutdown();
    }
    if failed > 0 || ok != u64::from(args.calls) || full != args.calls as usize {
        bail!("not every call succeeded with its full prompt");
    }
    Ok(())
}
