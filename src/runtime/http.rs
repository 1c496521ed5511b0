//! `--http ADDR`: `GET /sessions` (the active calls as JSON) and `GET /metrics` (Prometheus), on
//! its own thread and tokio runtime so that a slow scraper never delays signalling.
//!
//! `/sessions` asks the signalling task (which owns the calls) through its input channel and
//! waits for the answer; nothing is shared.

use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::{mpsc, oneshot};

use super::server::ServerInput;

/// The process's Prometheus recorder (metrics' recorder is global: installed once, shared by every
/// server in the process, as in tests).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let ms = |v: &[f64]| v.iter().map(|x| x / 1000.0).collect::<Vec<f64>>();
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("rms_tick_duration_seconds".into()),
                &ms(&[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]),
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("rms_tick_lateness_seconds".into()),
                    &ms(&[0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]),
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("rms_call_mos".into()),
                    &[1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("rms_call_packet_loss_percent".into()),
                    &[0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0],
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

#[derive(Clone)]
struct AppState {
    server: mpsc::UnboundedSender<ServerInput>,
}

/// The HTTP server's thread; stops when dropped.
pub struct HttpThread {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpThread {
    pub fn spawn(addr: SocketAddr, server: mpsc::UnboundedSender<ServerInput>) -> io::Result<Self> {
        let _ = prometheus();
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .route("/sessions", get(sessions))
            .route("/metrics", get(metrics_text))
            .with_state(AppState { server });
        let thread = std::thread::Builder::new().name("rms-http".into()).spawn(move || {
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!(error = %e, "HTTP listener"),
                };
                let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stopped.await;
                });
                if let Err(e) = served.await {
                    tracing::error!(error = %e, "HTTP server stopped");
                }
            })
        })?;
        tracing::info!(http = %local_addr, "serving /sessions and /metrics");
        Ok(Self { local_addr, stop: Some(stop), thread: Some(thread) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for HttpThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn sessions(State(state): State<AppState>) -> impl IntoResponse {
    let (tx, rx) = oneshot::channel();
    if state.server.send(ServerInput::Sessions(tx)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "signalling stopped").into_response();
    }
    match rx.await {
        Ok(calls) => Json(calls).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "signalling stopped").into_response(),
    }
}

async fn metrics_text() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], prometheus().render())
}
