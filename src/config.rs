//! `rms serve` settings: a TOML file (`--config`) whose keys are the flags' names, overridden by
//! the flags themselves, validated on load.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors reading or checking the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("rtp-ports {value:?}: expected LOW-HIGH with even LOW, 1024 <= LOW < HIGH <= 65535")]
    RtpPorts { value: String },
    #[error("sip timers: need 0 < sip-t1-ms <= sip-t2-ms and sip-t4-ms > 0 (got T1 {t1} ms, T2 {t2} ms, T4 {t4} ms)")]
    Timers { t1: u64, t2: u64, t4: u64 },
    #[error("opus-complexity {0}: expected 0..=10")]
    OpusComplexity(u8),
    #[error("rtcp-interval-ms {0}: expected 500..=60000 (RFC 3550 §6.2 recommends 5000)")]
    RtcpInterval(u64),
    #[error("rtcp-xr {0:?}: expected \"negotiated\", \"always\" or \"never\"")]
    RtcpXr(String),
    #[error("vq-collector: {0}")]
    VqCollector(#[from] crate::sip::TargetError),
    #[error("voice-dir {path}: {source}")]
    VoiceDir { path: PathBuf, source: std::io::Error },
}

/// The file form: every key optional, named as the flag (`rtp-ports = "20000-29999"`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<SocketAddr>,
    pub script: Option<PathBuf>,
    pub rtp_ports: Option<String>,
    pub media_ip: Option<IpAddr>,
    pub voice_dir: Option<PathBuf>,
    pub http: Option<SocketAddr>,
    pub call_log: Option<PathBuf>,
    pub vq_collector: Option<String>,
    /// RFC 3261 T1 in milliseconds (default 500).
    pub sip_t1_ms: Option<u64>,
    /// RFC 3261 T2 in milliseconds (default 4000).
    pub sip_t2_ms: Option<u64>,
    /// RFC 3261 T4 in milliseconds (default 5000).
    pub sip_t4_ms: Option<u64>,
    /// libopus encoder complexity 0..=10 (default 5: the CPU a busy server can afford per call).
    pub opus_complexity: Option<u8>,
    /// RFC 3550 §6.2 minimum RTCP interval in ms (default 5000).
    pub rtcp_interval_ms: Option<u64>,
    /// When RTCP XR is sent: `negotiated` (the peer's SDP had `a=rtcp-xr`, default), `always`, `never`.
    pub rtcp_xr: Option<String>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source: Box::new(source) })
    }

    /// Flags win over the file.
    pub fn overridden_by(self, flags: ConfigFile) -> ConfigFile {
        ConfigFile {
            listen: flags.listen.or(self.listen),
            script: flags.script.or(self.script),
            rtp_ports: flags.rtp_ports.or(self.rtp_ports),
            media_ip: flags.media_ip.or(self.media_ip),
            voice_dir: flags.voice_dir.or(self.voice_dir),
            http: flags.http.or(self.http),
            call_log: flags.call_log.or(self.call_log),
            vq_collector: flags.vq_collector.or(self.vq_collector),
            sip_t1_ms: flags.sip_t1_ms.or(self.sip_t1_ms),
            sip_t2_ms: flags.sip_t2_ms.or(self.sip_t2_ms),
            sip_t4_ms: flags.sip_t4_ms.or(self.sip_t4_ms),
            opus_complexity: flags.opus_complexity.or(self.opus_complexity),
            rtcp_interval_ms: flags.rtcp_interval_ms.or(self.rtcp_interval_ms),
            rtcp_xr: flags.rtcp_xr.or(self.rtcp_xr),
        }
    }
}

/// Checked settings with defaults filled in.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// `None`: the example IVR script built into the binary.
    pub script: Option<PathBuf>,
    pub rtp_ports: RangeInclusive<u16>,
    pub media_ip: IpAddr,
    pub voice_dir: PathBuf,
    pub http: Option<SocketAddr>,
    pub call_log: Option<PathBuf>,
    pub timers: crate::sip::TimerConfig,
    /// Opus encoder settings (complexity from `opus-complexity`).
    pub opus: rms_filters::codec::OpusConfig,
    pub rtcp: RtcpSettings,
    /// Where RFC 6035 reports go at each leg's end (`--vq-collector sip:HOST:PORT`).
    pub vq_collector: Option<crate::sip::Target>,
}

/// How legs send RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpSettings {
    /// RFC 3550 §6.2 Tmin.
    pub min_interval: std::time::Duration,
    pub xr: XrPolicy,
}

impl Default for RtcpSettings {
    fn default() -> Self {
        Self { min_interval: rms_filters::rtp::session::DEFAULT_MIN_INTERVAL, xr: XrPolicy::Negotiated }
    }
}

/// When RTCP XR (RFC 3611) is sent to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XrPolicy {
    /// Only when the peer's SDP has `a=rtcp-xr` (RFC 3611 §5.1).
    Negotiated,
    /// Always (peers that do not know XR skip the packet, RFC 3550 §6.1 / RFC 3611 §1).
    Always,
    Never,
}

impl XrPolicy {
    /// Whether a leg whose peer did (not) negotiate XR gets it.
    pub fn sends(self, negotiated: bool) -> bool {
        match self {
            XrPolicy::Negotiated => negotiated,
            XrPolicy::Always => true,
            XrPolicy::Never => false,
        }
    }
}

impl ServeConfig {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:5060";
    pub const DEFAULT_RTP_PORTS: RangeInclusive<u16> = 20000..=29999;

    pub fn from_file(file: ConfigFile) -> Result<Self, ConfigError> {
        let listen = file.listen.unwrap_or_else(|| Self::DEFAULT_LISTEN.parse().expect("valid default"));
        let rtp_ports = match &file.rtp_ports {
            Some(v) => parse_port_range(v)?,
            None => Self::DEFAULT_RTP_PORTS,
        };
        let voice_dir = file.voice_dir.unwrap_or_else(|| PathBuf::from("voice_files"));
        // Prompt paths are checked against this directory, so make it absolute now.
        let voice_dir =
            std::path::absolute(&voice_dir).map_err(|source| ConfigError::VoiceDir { path: voice_dir, source })?;
        let default = crate::sip::TimerConfig::default();
        let ms = |v: Option<u64>, d: std::time::Duration| v.unwrap_or(d.as_millis() as u64);
        let (t1, t2, t4) =
            (ms(file.sip_t1_ms, default.t1), ms(file.sip_t2_ms, default.t2), ms(file.sip_t4_ms, default.t4));
        if t1 == 0 || t2 < t1 || t4 == 0 {
            return Err(ConfigError::Timers { t1, t2, t4 });
        }
        let timers = crate::sip::TimerConfig {
            t1: std::time::Duration::from_millis(t1),
            t2: std::time::Duration::from_millis(t2),
            t4: std::time::Duration::from_millis(t4),
        };
        let mut opus = rms_filters::codec::OpusConfig::default();
        if let Some(c) = file.opus_complexity {
            if c > 10 {
                return Err(ConfigError::OpusComplexity(c));
            }
            opus.complexity = c;
        }
        let mut rtcp = RtcpSettings::default();
        if let Some(ms) = file.rtcp_interval_ms {
            if !(500..=60_000).contains(&ms) {
                return Err(ConfigError::RtcpInterval(ms));
            }
            rtcp.min_interval = std::time::Duration::from_millis(ms);
        }
        if let Some(xr) = &file.rtcp_xr {
            rtcp.xr = match xr.as_str() {
                "negotiated" => XrPolicy::Negotiated,
                "always" => XrPolicy::Always,
                "never" => XrPolicy::Never,
                _ => return Err(ConfigError::RtcpXr(xr.clone())),
            };
        }
        let vq_collector = file.vq_collector.as_deref().map(crate::sip::parse_target).transpose()?;
        Ok(Self {
            rtcp,
            vq_collector,
            timers,
            opus,
            listen,
            script: file.script,
            rtp_ports,
            media_ip: file.media_ip.unwrap_or(listen.ip()),
            voice_dir,
            http: file.http,
            call_log: file.call_log,
        })
    }
}

/// `20000-29999`: RTP on even ports, RTCP on the odd one above (RFC 3550 §11).
pub fn parse_port_range(value: &str) -> Result<RangeInclusive<u16>, ConfigError> {
    let err = || ConfigError::RtpPorts { value: value.to_string() };
    let (low, high) = value.split_once('-').ok_or_else(err)?;
    let low: u16 = low.trim().parse().map_err(|_| err())?;
    let high: u16 = high.trim().parse().map_err(|_| err())?;
    if low < 1024 || low >= high || !low.is_multiple_of(2) {
        return Err(err());
    }
    Ok(low..=high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let file: ConfigFile =
            toml::from_str("listen = \"127.0.0.1:5070\"\nrtp-ports = \"30000-30099\"\nsip-t1-ms = 250\n").unwrap();
        let flags = ConfigFile { rtp_ports: Some("40000-40009".into()), ..ConfigFile::default() };
        let c = ServeConfig::from_file(file.overridden_by(flags)).unwrap();
        assert_eq!(c.listen, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(c.rtp_ports, 40000..=40009);
        assert_eq!(c.media_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(c.voice_dir.is_absolute() && c.voice_dir.ends_with("voice_files"));
        assert_eq!(c.timers.t1, std::time::Duration::from_millis(250));
        assert_eq!(c.timers.t2, std::time::Duration::from_secs(4));
    }

    #[test]
    fn bad_values_are_clear_errors() {
        assert!(toml::from_str::<ConfigFile>("listen = 5").is_err());
        assert!(toml::from_str::<ConfigFile>("nonsense = 1").is_err(), "unknown keys are refused");
        for bad in ["20001-20010", "20000", "x-y", "30000-20000", "80-100"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
        let bad_timers = ConfigFile { sip_t1_ms: Some(5000), sip_t2_ms: Some(4000), ..ConfigFile::default() };
        assert!(matches!(ServeConfig::from_file(bad_timers), Err(ConfigError::Timers { .. })));
        let bad_opus = ConfigFile { opus_complexity: Some(11), ..ConfigFile::default() };
        assert!(matches!(ServeConfig::from_file(bad_opus), Err(ConfigError::OpusComplexity(11))));
        let opus = ConfigFile { opus_complexity: Some(9), ..ConfigFile::default() };
        assert_eq!(ServeConfig::from_file(opus).unwrap().opus.complexity, 9);
    }

    #[test]
    fn rtcp_and_vq_settings_are_checked() {
        let d = ServeConfig::from_file(ConfigFile::default()).unwrap();
        assert_eq!(d.rtcp, RtcpSettings { min_interval: std::time::Duration::from_secs(5), xr: XrPolicy::Negotiated });
        assert!(d.vq_collector.is_none());
        let file: ConfigFile = toml::from_str(
            "rtcp-interval-ms = 1000\nrtcp-xr = \"always\"\nvq-collector = \"sip:collector@127.0.0.1:5090\"\n",
        )
        .unwrap();
        let c = ServeConfig::from_file(file).unwrap();
        assert_eq!(c.rtcp.min_interval, std::time::Duration::from_secs(1));
        assert!(c.rtcp.xr.sends(false));
        assert_eq!(c.vq_collector.unwrap().dest, "127.0.0.1:5090".parse().unwrap());
        for bad in [
            ConfigFile { rtcp_interval_ms: Some(100), ..ConfigFile::default() },
            ConfigFile { rtcp_xr: Some("sometimes".into()), ..ConfigFile::default() },
            ConfigFile { vq_collector: Some("collector.example.com".into()), ..ConfigFile::default() },
        ] {
            assert!(ServeConfig::from_file(bad).is_err());
        }
        assert!(!XrPolicy::Never.sends(true) && XrPolicy::Negotiated.sends(true) && !XrPolicy::Negotiated.sends(false));
    }
}
