//! Play an audio file as PCMU RTP to a UDP address through the media thread, then print the leg's
//! RTP and filter statistics.
//!
//! ```sh
//! cargo run --release --example play_to_udp -- voice.wav 127.0.0.1:4000
//! # listen with e.g.: tshark -i lo -f 'udp port 4000' -d udp.port==4000,rtp
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use rms::media::{LegId, LegMedia, MediaCmd, MediaEvent};
use rms::runtime::{LegSockets, MediaRequest, MediaThread};
use rms_filters::codec::CodecKind;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(dest)) = (args.next(), args.next()) else {
        bail!("usage: play_to_udp FILE HOST:PORT");
    };
    let dest: SocketAddr = dest.parse().context("destination must be HOST:PORT")?;
    let sockets = LegSockets::ephemeral([0, 0, 0, 0].into())?;
    let (media, mut events) = MediaThread::spawn(0x5eed)?;
    let leg = LegId(1);
    let leg_media = LegMedia::new(dest, CodecKind::Pcmu, 0, 20);
    media.send(MediaRequest::CreateLeg { sockets, cmd: MediaCmd::CreateLeg { leg, media: leg_media } });
    media.cmd(MediaCmd::Play { leg, file: PathBuf::from(file), loops: 1, token: 1 });
    while let Some(event) = events.blocking_recv() {
        match event {
            MediaEvent::PlayDone { .. } => media.cmd(MediaCmd::DestroyLeg { leg }),
            MediaEvent::PlayFailed { error, .. } => {
                eprintln!("{error}");
                media.cmd(MediaCmd::DestroyLeg { leg });
            }
            MediaEvent::LegClosed { report, .. } => {
                println!("sent {} packets, {} bytes", report.sent.packets, report.sent.bytes);
                println!("{}", report.usage);
                break;
            }
            other => println!("{other:?}"),
        }
    }
    media.shutdown();
    Ok(())
}
