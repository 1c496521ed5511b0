//! The `rms` command line.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rms::config::{ConfigFile, ServeConfig};
use rms::runtime::Server;

#[derive(Parser)]
#[command(name = "rms", version, about = "SIP B2BUA media application server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve calls with a routing script (with no flags: the example IVR script on 127.0.0.1:5060).
    Serve(Box<ServeArgs>),
    /// List the codecs this build supports, like `rtpengine --codecs`.
    Codecs,
    /// Print a running server's active calls (Kamailio's rms_sessions_dump), from its --http address.
    Sessions {
        /// The server's --http address
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
    },
}

/// Every flag has a key of the same name in the `--config` TOML file; flags win.
#[derive(Args)]
struct ServeArgs {
    /// SIP address, UDP and TCP [default: 127.0.0.1:5060]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The Lua routing script [default: the built-in examples/ivr_play_hangup.lua]
    #[arg(long)]
    script: Option<PathBuf>,
    /// RTP port range, LOW-HIGH [default: 20000-29999]
    #[arg(long)]
    rtp_ports: Option<String>,
    /// The address in our SDP [default: the --listen address]
    #[arg(long)]
    media_ip: Option<IpAddr>,
    /// Where prompts are read from; play() paths may not leave it [default: voice_files]
    #[arg(long)]
    voice_dir: Option<PathBuf>,
    /// HTTP address for GET /sessions (JSON) and GET /metrics (Prometheus)
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Append one JSON object per ended call to this file (JSON Lines)
    #[arg(long)]
    call_log: Option<PathBuf>,
    /// SIP timer T1 in ms (RFC 3261 §17) [default: 500]
    #[arg(long)]
    sip_t1_ms: Option<u64>,
    /// SIP timer T2 in ms [default: 4000]
    #[arg(long)]
    sip_t2_ms: Option<u64>,
    /// SIP timer T4 in ms [default: 5000]
    #[arg(long)]
    sip_t4_ms: Option<u64>,
    /// libopus encoder complexity, 0 (cheapest) to 10 [default: 5]
    #[arg(long)]
    opus_complexity: Option<u8>,
    /// Minimum RTCP report interval in ms, randomised per RFC 3550 §6.2 [default: 5000]
    #[arg(long)]
    rtcp_interval_ms: Option<u64>,
    /// Send RTCP XR (RFC 3611): negotiated (peer's SDP has a=rtcp-xr), always, never [default: negotiated]
    #[arg(long)]
    rtcp_xr: Option<String>,
    /// Send an RFC 6035 vq-rtcpxr PUBLISH per leg at call end to this collector, e.g. sip:collector@192.0.2.7:5060
    #[arg(long)]
    vq_collector: Option<String>,
    /// A TOML file with the same keys as these flags
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Sessions { http } => sessions(http),
        Command::Codecs => {
            print!("{}", rms::sdp::codecs::describe());
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let flags = ConfigFile {
        listen: args.listen,
        script: args.script,
        rtp_ports: args.rtp_ports,
        media_ip: args.media_ip,
        voice_dir: args.voice_dir,
        http: args.http,
        call_log: args.call_log,
        vq_collector: args.vq_collector,
        sip_t1_ms: args.sip_t1_ms,
        sip_t2_ms: args.sip_t2_ms,
        sip_t4_ms: args.sip_t4_ms,
        opus_complexity: args.opus_complexity,
        rtcp_interval_ms: args.rtcp_interval_ms,
        rtcp_xr: args.rtcp_xr,
    };
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let config = ServeConfig::from_file(file.overridden_by(flags))?;
    let server = Server::start(&config)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("signal runtime")?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })
    .context("waiting for SIGINT/SIGTERM")?;
    let (app, _) = server.shutdown();
    tracing::info!(calls_left = app.sessions().counts().calls, "rms stopped");
    Ok(())
}

fn sessions(http: SocketAddr) -> anyhow::Result<()> {
    let body = http_get(http, "/sessions").with_context(|| format!("GET http://{http}/sessions"))?;
    let calls: Vec<rms::session::CallSummary> = serde_json::from_str(&body).context("reading /sessions")?;
    println!("{} active call(s)", calls.len());
    for c in &calls {
        println!(
            "call-id: {}\n  from: {}\n  to: {}\n  ruri: {}  source: {}\n  state: {}  codec: {}  age: {:.1} s  answered: {}  \
playing: {}  rtp port: {}",
            c.id,
            c.from,
            c.to,
            c.ruri,
            c.source,
            c.state,
            if c.codec.is_empty() { "-" } else { &c.codec },
            c.age_s,
            c.answered_s.map_or("-".to_string(), |a| format!("{a:.1} s ago")),
            c.playing,
            c.rtp_port.map_or("-".to_string(), |p| p.to_string()),
        );
        if let Some(b) = &c.bridge {
            println!(
                "  bridge: {}  state: {}  codec: {}  rtp port: {}",
                b.target,
                b.state,
                if b.codec.is_empty() { "-" } else { &b.codec },
                b.rtp_port.map_or("-".to_string(), |p| p.to_string()),
            );
        }
    }
    Ok(())
}

/// One HTTP/1.0 GET to our own server. Written by hand: a client crate for a single request to a
/// known peer would cost more build time than these lines.
fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("no HTTP header end")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        anyhow::bail!("{status}");
    }
    Ok(body.to_string())
}
