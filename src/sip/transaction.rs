//! Transactions (RFC 3261 §17) as sans-IO state machines, with RFC 6026's Accepted states.
//!
//! A transaction is driven with `now`: the owner feeds it messages and [`handle_timeout`] calls, and
//! drains what it wants sent ([`poll_transmit`], bytes for the transaction's peer) and what the
//! transaction user must learn ([`poll_event`]). The owner removes it once [`is_terminated`].
//!
//! [`handle_timeout`]: ClientTransaction::handle_timeout
//! [`poll_transmit`]: ClientTransaction::poll_transmit
//! [`poll_event`]: ClientTransaction::poll_event
//! [`is_terminated`]: ClientTransaction::is_terminated

use std::collections::VecDeque;
use std::time::Duration;

use super::message::{Request, Response};
use super::timer::{Timer, TimerConfig, TimerTable};
use super::Method;

/// The Via branch prefix of RFC 3261 requests (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Timer D's floor on unreliable transports (§17.1.1.2: "at least 32 seconds").
const TIMER_D: Duration = Duration::from_secs(32);

/// Misuse of a transaction by its user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// The transaction is in a state where it cannot send this response.
    #[error("cannot send a {status} response in state {state:?}")]
    InvalidResponse { status: u16, state: ServerState },
}

/// INVITE transactions follow §17.1.1/§17.2.1, every other method §17.1.2/§17.2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    Invite,
    NonInvite,
}

impl TransactionKind {
    pub fn of(method: &Method) -> Self {
        if *method == Method::Invite {
            TransactionKind::Invite
        } else {
            TransactionKind::NonInvite
        }
    }
}

/// Client transaction states (Figures 5 and 6; RFC 6026 Figure 5 adds Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE sent, nothing heard.
    Calling,
    /// Non-INVITE sent, nothing heard.
    Trying,
    Proceeding,
    /// A final response arrived (any for non-INVITE; 300-699 for INVITE).
    Completed,
    /// INVITE got a 2xx: retransmitted 2xx are still passed to the user (RFC 6026 §8.4).
    Accepted,
    Terminated,
}

/// What a client transaction tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A response the user must see (retransmitted non-2xx finals are absorbed).
    Response(Response),
    /// Timer B or F fired: no final response (the user acts as on a 408, §8.1.3.1).
    Timeout,
}

/// A client transaction: sends the request, retransmits it over UDP, matches responses.
#[derive(Debug)]
pub struct ClientTransaction {
    kind: TransactionKind,
    state: ClientState,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    request: Request,
    request_bytes: Vec<u8>,
    /// The current retransmission interval of timer A or E.
    interval: Duration,
    /// The ACK for a non-2xx final, resent when the final is retransmitted (§17.1.1.2).
    ack: Option<Vec<u8>>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
}

impl ClientTransaction {
    /// Start the transaction: the request is queued for sending at once. `reliable` is true on
    /// TCP, where nothing is retransmitted (§17.1.1.2, §17.1.2.2).
    pub fn new(now: Duration, request: Request, reliable: bool, config: TimerConfig) -> Self {
        let kind = TransactionKind::of(request.method());
        let request_bytes = request.to_bytes();
        let mut tx = Self {
            kind,
            state: ClientState::Trying,
            reliable,
            config,
            timers: TimerTable::default(),
            request,
            request_bytes: request_bytes.clone(),
            interval: config.t1,
            ack: None,
            transmits: VecDeque::from([request_bytes]),
            events: VecDeque::new(),
        };
        let (retransmit, timeout) = match kind {
            TransactionKind::Invite => (Timer::A, Timer::B),
            TransactionKind::NonInvite => (Timer::E, Timer::F),
        };
        if kind == TransactionKind::Invite {
            tx.state = ClientState::Calling;
        }
        if !reliable {
            tx.timers.set(retransmit, now + config.t1);
        }
        tx.timers.set(timeout, now + config.timeout());
        tx
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// A response whose branch and CSeq method matched this transaction (§17.1.3).
    pub fn handle_response(&mut self, now: Duration, response: Response) {
        let status = response.status();
        match (self.kind, self.state, status) {
            (TransactionKind::Invite, ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                self.state = ClientState::Proceeding;
                self.timers.stop(Timer::A);
                self.timers.stop(Timer::B);
                self.events.push_back(ClientEvent::Response(response));
            }
            (TransactionKind::Invite, ClientState::Calling | ClientState::Proceeding, 200..=299) => {
                self.state = ClientState::Accepted;
                self.timers.stop_all();
                self.timers.set(Timer::M, now + self.config.timeout());
                self.events.push_back(ClientEvent::Response(response));
            }
            (TransactionKind::Invite, ClientState::Calling | ClientState::Proceeding, _) => {
                self.state = ClientState::Completed;
                self.timers.stop_all();
                let ack = self.ack_for(&response).to_bytes();
                self.transmits.push_back(ack.clone());
                self.ack = Some(ack);
                let wait = if self.reliable { Duration::ZERO } else { TIMER_D.max(self.config.timeout()) };
                self.timers.set(Timer::D, now + wait);
                self.events.push_back(ClientEvent::Response(response));
            }
            // RFC 6026 §8.4: 2xx retransmissions go to the user, who re-sends its ACK.
            (TransactionKind::Invite, ClientState::Accepted, 200..=299) => {
                self.events.push_back(ClientEvent::Response(response));
            }
            (TransactionKind::Invite, ClientState::Completed, 300..) => {
                if let Some(ack) = &self.ack {
                    self.transmits.push_back(ack.clone());
                }
            }
            (TransactionKind::NonInvite, ClientState::Trying | ClientState::Proceeding, 100..=199) => {
                self.state = ClientState::Proceeding;
                self.events.push_back(ClientEvent::Response(response));
            }
            (TransactionKind::NonInvite, ClientState::Trying | ClientState::Proceeding, _) => {
                self.state = ClientState::Completed;
                self.timers.stop_all();
                let wait = if self.reliable { Duration::ZERO } else { self.config.t4 };
                self.timers.set(Timer::K, now + wait);
                self.events.push_back(ClientEvent::Response(response));
            }
            // Late provisionals, retransmitted finals in Completed: absorbed.
            _ => {}
        }
        self.handle_timeout(now);
    }

    /// Run every timer due by `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        while let Some(timer) = self.timers.expire(now) {
            match timer {
                // Timer A doubles without bound (§17.1.1.2); timer E caps at T2 in Trying and
                // uses T2 in Proceeding (§17.1.2.2).
                Timer::A => {
                    self.transmits.push_back(self.request_bytes.clone());
                    self.interval *= 2;
                    self.timers.set(Timer::A, now + self.interval);
                }
                Timer::E => {
                    self.transmits.push_back(self.request_bytes.clone());
                    self.interval = match self.state {
                        ClientState::Proceeding => self.config.t2,
                        _ => (self.interval * 2).min(self.config.t2),
                    };
                    self.timers.set(Timer::E, now + self.interval);
                }
                Timer::B | Timer::F => {
                    self.events.push_back(ClientEvent::Timeout);
                    self.terminate();
                }
                Timer::D | Timer::K | Timer::M => self.terminate(),
                _ => {}
            }
        }
    }

    /// A transport error sending the request (§17.1.4): the user sees a timeout-like failure.
    pub fn transport_error(&mut self) {
        if matches!(self.state, ClientState::Calling | ClientState::Trying | ClientState::Proceeding) {
            self.events.push_back(ClientEvent::Timeout);
        }
        self.terminate();
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Duration> {
        self.timers.next_timeout()
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.timers.stop_all();
    }

    /// §17.1.4: the transport could not deliver the request. The transaction ends at once, unless
    /// a final response already settled it (the TU was told of that instead); returns whether it
    /// was still waiting.
    pub fn transport_failed(&mut self) -> bool {
        let waiting = matches!(self.state, ClientState::Calling | ClientState::Trying | ClientState::Proceeding);
        if waiting {
            self.terminate();
        }
        waiting
    }

    /// §17.1.1.3: the ACK for a non-2xx final shares the INVITE's Request-URI, top Via, From,
    /// Call-ID, CSeq number and Route; its To is the response's (with the tag).
    fn ack_for(&self, response: &Response) -> Request {
        let mut ack = Request::new(Method::Ack, self.request.uri().clone());
        if let Some(via) = self.request.header("Via") {
            ack.push_header("Via", via);
        }
        ack.push_header("Max-Forwards", "70");
        for name in ["From", "Call-ID"] {
            if let Some(v) = self.request.header(name) {
                ack.push_header(name, v);
            }
        }
        if let Some(to) = response.header("To") {
            ack.push_header("To", to);
        }
        if let Ok(cseq) = self.request.cseq() {
            ack.push_header("CSeq", format!("{} ACK", cseq.seq));
        }
        for route in self.request.header_all("Route") {
            ack.push_header("Route", route);
        }
        ack
    }
}

/// Server transaction states (Figures 7 and 8; RFC 6026 Figure 7 adds Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE received, the user has not answered.
    Trying,
    Proceeding,
    /// A final response went out (300-699 for INVITE).
    Completed,
    /// INVITE only: the ACK for a non-2xx final arrived.
    Confirmed,
    /// INVITE only: a 2xx went out; retransmitted INVITEs are absorbed (RFC 6026 §7.1).
    Accepted,
    Terminated,
}

/// What a server transaction tells its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    /// Timer H fired: the ACK for a non-2xx final never came (§17.2.1).
    AckTimeout,
}

/// What became of a request that matched an existing server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absorbed {
    /// A retransmission or an ACK the transaction consumed.
    Yes,
    /// An ACK in Accepted: the user (dialog layer) must see it (RFC 6026 §7.1).
    PassToUser,
}

/// A server transaction: absorbs request retransmissions and retransmits its responses.
#[derive(Debug)]
pub struct ServerTransaction {
    kind: TransactionKind,
    state: ServerState,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    /// The last response sent, resent when the request is retransmitted.
    last_response: Option<Vec<u8>>,
    last_status: u16,
    interval: Duration,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<ServerEvent>,
}

impl ServerTransaction {
    /// A new request created the transaction. An INVITE gets its 100 Trying at once (§17.2.1,
    /// sent immediately rather than after 200 ms: our users answer asynchronously).
    pub fn new(_now: Duration, request: &Request, reliable: bool, config: TimerConfig) -> Self {
        let kind = TransactionKind::of(request.method());
        let mut tx = Self {
            kind,
            state: ServerState::Trying,
            reliable,
            config,
            timers: TimerTable::default(),
            last_response: None,
            last_status: 0,
            interval: config.t1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        if kind == TransactionKind::Invite {
            tx.state = ServerState::Proceeding;
            let trying = Response::for_request(request, 100, "Trying", None).to_bytes();
            tx.transmits.push_back(trying.clone());
            tx.last_response = Some(trying);
            tx.last_status = 100;
        }
        tx
    }

    pub fn kind(&self) -> TransactionKind {
        self.kind
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The status of the last response sent (0: none yet).
    pub fn last_status(&self) -> u16 {
        self.last_status
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    /// Whether a final response has gone out.
    pub fn is_answered(&self) -> bool {
        self.last_status >= 200
    }

    /// A retransmitted request, or an ACK, that matched this transaction (§17.2.3).
    pub fn handle_request(&mut self, now: Duration, method: &Method) -> Absorbed {
        let is_ack = *method == Method::Ack;
        match (self.kind, self.state, is_ack) {
            (TransactionKind::Invite, ServerState::Proceeding | ServerState::Completed, false) => self.resend_last(),
            (TransactionKind::Invite, ServerState::Completed, true) => {
                self.state = ServerState::Confirmed;
                self.timers.stop(Timer::G);
                self.timers.stop(Timer::H);
                let wait = if self.reliable { Duration::ZERO } else { self.config.t4 };
                self.timers.set(Timer::I, now + wait);
            }
            (TransactionKind::Invite, ServerState::Accepted, true) => return Absorbed::PassToUser,
            (TransactionKind::NonInvite, ServerState::Proceeding | ServerState::Completed, _) => self.resend_last(),
            _ => {}
        }
        self.handle_timeout(now);
        Absorbed::Yes
    }

    /// Send a response from the user through the transaction.
    pub fn respond(&mut self, now: Duration, response: &Response) -> Result<(), TransactionError> {
        let status = response.status();
        let invalid = TransactionError::InvalidResponse { status, state: self.state };
        match (self.kind, self.state, status) {
            (TransactionKind::Invite, ServerState::Proceeding, 100..=199) => {}
            (TransactionKind::Invite, ServerState::Proceeding, 200..=299) => {
                self.state = ServerState::Accepted;
                self.timers.set(Timer::L, now + self.config.timeout());
            }
            // RFC 6026 §7.1: the user's 2xx retransmissions pass through Accepted.
            (TransactionKind::Invite, ServerState::Accepted, 200..=299) => {}
            (TransactionKind::Invite, ServerState::Proceeding, 300..=699) => {
                self.state = ServerState::Completed;
                if !self.reliable {
                    self.timers.set(Timer::G, now + self.config.t1);
                }
                self.timers.set(Timer::H, now + self.config.timeout());
            }
            (TransactionKind::NonInvite, ServerState::Trying | ServerState::Proceeding, 100..=199) => {
                self.state = ServerState::Proceeding;
            }
            (TransactionKind::NonInvite, ServerState::Trying | ServerState::Proceeding, 200..=699) => {
                self.state = ServerState::Completed;
                let wait = if self.reliable { Duration::ZERO } else { self.config.timeout() };
                self.timers.set(Timer::J, now + wait);
            }
            _ => return Err(invalid),
        }
        let bytes = response.to_bytes();
        self.transmits.push_back(bytes.clone());
        self.last_response = Some(bytes);
        self.last_status = status;
        self.handle_timeout(now);
        Ok(())
    }

    /// Run every timer due by `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        while let Some(timer) = self.timers.expire(now) {
            match timer {
                // §17.2.1: G doubles up to T2.
                Timer::G => {
                    self.resend_last();
                    self.interval = (self.interval * 2).min(self.config.t2);
                    self.timers.set(Timer::G, now + self.interval);
                }
                Timer::H => {
                    self.events.push_back(ServerEvent::AckTimeout);
                    self.terminate();
                }
                Timer::I | Timer::J | Timer::L => self.terminate(),
                _ => {}
            }
        }
    }

    /// A transport error sending a response (§17.2.4).
    pub fn transport_error(&mut self) {
        self.terminate();
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Duration> {
        self.timers.next_timeout()
    }

    fn resend_last(&mut self) {
        if let Some(last) = &self.last_response {
            self.transmits.push_back(last.clone());
        }
    }

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.timers.stop_all();
    }
}
