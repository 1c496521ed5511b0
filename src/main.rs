//! The `rms` command line.

use clap::{Parser, Subcommand};
use rms_filters::codec::CodecKind;

#[derive(Parser)]
#[command(name = "rms", version, about = "SIP B2BUA media application server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the codecs this build supports, like `rtpengine --codecs`.
    Codecs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Codecs => {
            for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
                let pt = kind.static_payload_type().map_or("dynamic".to_string(), |p| p.to_string());
                println!(
                    "{:>16}: fully supported (encode, decode); {} Hz, RTP clock {} Hz, payload type {}",
                    kind.name(),
                    kind.sample_rate(),
                    kind.clock_rate(),
                    pt
                );
            }
        }
    }
    Ok(())
}
