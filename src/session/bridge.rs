//! The B-leg of `call:bridge`: rms as UAC towards the target, and the joining of both legs.
//!
//! ```text
//! bridge()      allocate B's port, INVITE with our offer (B's own Call-ID, From tag, CSeq)
//! 1xx           180 relayed to an unanswered A; 183 with SDP: A gets 183 with its answer, the
//!               legs are joined at once (early media)
//! 2xx           ACK; A answered (200) if it was not; legs joined; on_bridged runs
//! 3xx-6xx, 408  on_failed runs (call.bridge_status), or the code is relayed to an unanswered A,
//!               or an answered A gets a BYE
//! ring timeout  CANCEL to B, then as a 408
//! A ends        CANCEL (unanswered B) or BYE (answered B); exactly one BYE either way
//! ```
//!
//! A B-leg INVITE cancelled after its call moved on stays an "orphan" until its transaction ends:
//! a 2xx that crosses the CANCEL is ACKed and hung up (RFC 3261 §9.1).

use std::time::Duration;

use rms_filters::codec::CodecKind;

use super::{
    vq_leg, BLeg, BState, BridgeRequest, CallState, EndReason, LegSdp, Sessions, Side, VqIds, DEFAULT_RING_TIMEOUT,
};
use crate::media::MediaCmd;
use crate::sdp::{build_offer, negotiate_answer, negotiate_offer_answer, OriginState, SessionDescription};
use crate::session::{RouteHost, RouteName, RtpPorts};
use crate::sip::{parse_target, Body, ClientTxId, DialogId, Endpoint, Method, OutgoingRequest, Reply, Response};

impl Sessions {
    /// `call:bridge(...)`: dial the B-leg. Errors are script errors (the call ends with 500 or
    /// BYE); a target that cannot be dialled is a bridge failure (`on_failed`, status 400).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn bridge(
        &mut self,
        now: Duration,
        id: u64,
        request: BridgeRequest,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
        depth: usize,
    ) -> Result<(), String> {
        let call = self.calls.get(&id).ok_or("call gone")?;
        if call.b.is_some() {
            return Err("bridge() while another bridge is under way".into());
        }
        // A caller whose offer we cannot answer gets its 488 now, not after ringing the callee.
        if call.state == CallState::Unanswered {
            if let Some(offer) = &call.a.last_offer {
                let probe = self.config.answer_config(9, self.config.codecs.clone(), call.a.origin);
                if let Err(e) = negotiate_answer(offer, &probe) {
                    let reply = Reply::new(488, "Not Acceptable Here").with_header("Warning", e.warning_text());
                    let _ = ep.respond(now, call.tx, reply);
                    self.finish(now, id, EndReason::Rejected { status: 488 });
                    return Ok(());
                }
            }
        }
        let codecs = self.b_offer_codecs(id, &request)?;
        let target = match parse_target(&request.target) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(call = %self.call_id(id), error = %e, "bridge target unusable");
                let on_failed = request.on_failed.clone();
                self.bridge_failed(now, id, on_failed, 400, &e.to_string(), ep, host, ports, depth);
                return Ok(());
            }
        };
        self.next_leg += 1;
        let leg = crate::media::LegId(self.next_leg);
        let Some(port) = ports.allocate(leg) else {
            let on_failed = request.on_failed.clone();
            self.bridge_failed(now, id, on_failed, 503, "no RTP port free", ep, host, ports, depth);
            return Ok(());
        };
        let call = self.calls.get_mut(&id).ok_or("call gone")?;
        let mut sdp = LegSdp::new(OriginState::new(self.rng.u64(1..u64::MAX / 2)));
        let offer = build_offer(&self.config.offer_config(port, codecs, sdp.origin));
        let from = match &request.from {
            Some(uri) => format!("<{}>", uri.trim_start_matches('<').trim_end_matches('>')),
            None => without_tag(&call.view.from),
        };
        let to = format!("<{}>", crate::sip::print_uri(&target.uri));
        let out = OutgoingRequest {
            method: Method::Invite,
            uri: target.uri,
            from: from.clone(),
            to: to.clone(),
            dest: target.dest,
            transport: target.transport,
            headers: request.headers.clone(),
            body: Some(Body::sdp(offer.to_bytes())),
        };
        let tx = ep.send_request(now, out);
        sdp.leg = Some(leg);
        sdp.port = Some(port);
        sdp.our_offer = Some(offer);
        let ring_deadline = now.saturating_add(request.timeout.unwrap_or(DEFAULT_RING_TIMEOUT));
        tracing::info!(call = %call.view.id, target = %request.target, "bridging: B-leg INVITE sent");
        call.b = Some(BLeg {
            request,
            tx,
            state: BState::Calling,
            dialog: None,
            established: None,
            from,
            to,
            sdp,
            ring_deadline,
        });
        call.joined = false;
        call.bridged_route_ran = false;
        call.view.bridge_status = 0;
        call.view.bridge_reason.clear();
        self.by_client.insert(tx, id);
        self.by_leg.insert(leg, (id, Side::B));
        self.deadlines.insert((ring_deadline, id));
        Ok(())
    }

    /// The codecs offered to B: the script's list, else the A-leg's codec first (so B can pick it
    /// and the bridge relays) followed by the rest of ours.
    fn b_offer_codecs(&self, id: u64, request: &BridgeRequest) -> Result<Vec<CodecKind>, String> {
        if let Some(names) = &request.codecs {
            let mut codecs = Vec::with_capacity(names.len());
            for name in names {
                let codec = crate::sdp::codecs::KNOWN
                    .iter()
                    .copied()
                    .find(|k| k.name().eq_ignore_ascii_case(name))
                    .ok_or_else(|| format!("bridge(): unknown codec {name:?}"))?;
                codecs.push(codec);
            }
            if codecs.is_empty() {
                return Err("bridge(): codecs = {} names no codec".into());
            }
            return Ok(codecs);
        }
        let call = self.calls.get(&id).ok_or("call gone")?;
        let mut codecs: Vec<CodecKind> = call.a.negotiated.iter().map(|n| n.codec).collect();
        if codecs.is_empty() {
            if let Some(offer) = &call.a.last_offer {
                codecs.extend(crate::sdp::offered_codecs(offer).into_iter().filter(|c| self.config.codecs.contains(c)));
            }
        }
        for &c in &self.config.codecs {
            if !codecs.contains(&c) {
                codecs.push(c);
            }
        }
        Ok(codecs)
    }

    /// A response to the B-leg INVITE.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn b_response(
        &mut self,
        now: Duration,
        id: u64,
        response: &Response,
        dialog: Option<DialogId>,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        let status = response.status();
        match status {
            100 => {}
            101..=199 => self.b_provisional(now, id, response, ep, host, ports),
            200..=299 => self.b_answered(now, id, response, dialog, ep, host, ports),
            _ => {
                let reason = response.reason().to_string();
                self.b_failed(now, id, status, &reason, ep, host, ports);
            }
        }
    }

    fn b_provisional(
        &mut self,
        now: Duration,
        id: u64,
        response: &Response,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(b) = call.b.as_mut() else { return };
        if b.state == BState::Calling {
            b.state = BState::Early;
        }
        let a_unanswered = call.state == CallState::Unanswered;
        // Early media (183 with SDP, RFC 3960): B's answer sets up its leg; A gets our answer in a
        // 183 and the legs are joined before anyone answers.
        if !response.body().is_empty() && !b.sdp.media_running {
            match self.b_answer(id, response.body()) {
                Ok(()) => {
                    if a_unanswered {
                        let prefer = self.b_codec(id).into_iter().collect::<Vec<_>>();
                        match self.answer_a(now, id, 183, &prefer, ep, ports) {
                            Ok(_) => self.join_legs(now, id, ep, host, ports),
                            Err(detail) => self.end_call(now, id, EndReason::Error { detail }, ep),
                        }
                        return;
                    }
                }
                Err(detail) => {
                    tracing::warn!(call = %self.call_id(id), %detail, "unusable SDP in the B-leg's {}", response.status());
                }
            }
        }
        let Some(call) = self.calls.get(&id) else { return };
        if a_unanswered && !call.a.media_running {
            let _ = ep.respond(now, call.tx, Reply::new(180, "Ringing"));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn b_answered(
        &mut self,
        now: Duration,
        id: u64,
        response: &Response,
        dialog: Option<DialogId>,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        let Some(dialog) = dialog else { return };
        let cseq = response.cseq().map(|c| c.seq).unwrap_or(1);
        let Some(b) = self.calls.get_mut(&id).and_then(|c| c.b.as_mut()) else {
            return;
        };
        if b.state == BState::Answered {
            // A second 2xx from another fork (RFC 3261 §13.2.2.4): ACK it and hang it up.
            if b.dialog.as_ref() != Some(&dialog) {
                let _ = ep.ack(&dialog, cseq, None);
                let _ = ep.send_in_dialog(now, &dialog, Method::Bye, Vec::new(), None);
            }
            return;
        }
        let _ = ep.ack(&dialog, cseq, None);
        b.state = BState::Answered;
        b.dialog = Some(dialog.clone());
        b.established = Some(dialog.clone());
        let deadline = b.ring_deadline;
        // After early media a 2xx without SDP keeps the 183's answer.
        let keep_early_answer = b.sdp.media_running && response.body().is_empty();
        self.deadlines.remove(&(deadline, id));
        self.by_dialog.insert(dialog, (id, Side::B));
        if !keep_early_answer {
            if let Err(detail) = self.b_answer(id, response.body()) {
                tracing::warn!(call = %self.call_id(id), %detail, "B-leg answered without a usable SDP answer");
                self.end_call(now, id, EndReason::Error { detail: format!("B-leg answer: {detail}") }, ep);
                return;
            }
        }
        let Some(call) = self.calls.get(&id) else { return };
        if call.state == CallState::Unanswered {
            let prefer = self.b_codec(id).into_iter().collect::<Vec<_>>();
            match self.answer_a(now, id, 200, &prefer, ep, ports) {
                Ok(_) => {}
                Err(detail) => {
                    self.end_call(now, id, EndReason::Error { detail }, ep);
                    return;
                }
            }
        }
        self.join_legs(now, id, ep, host, ports);
    }

    /// B's SDP answer to our offer (in a 183 or the 2xx): it starts B's media, or, when early media
    /// already runs, updates the leg if the 2xx changed the answer.
    fn b_answer(&mut self, id: u64, body: &[u8]) -> Result<(), String> {
        let b = self.calls.get_mut(&id).and_then(|c| c.b.as_mut()).ok_or("no B-leg")?;
        let offer = b.sdp.our_offer.as_ref().ok_or("no offer of ours")?;
        let answer = SessionDescription::parse(body).map_err(|e| e.to_string())?;
        let n = negotiate_offer_answer(offer, &answer).map_err(|e| e.to_string())?;
        b.sdp.last_offer = Some(answer);
        if !b.sdp.media_running {
            self.start_media(id, Side::B, n);
        } else if b.sdp.negotiated.as_ref() != Some(&n) {
            if let Some(leg) = b.sdp.leg {
                self.media.push_back(MediaCmd::UpdateLeg { leg, media: super::leg_media(&n, &self.config.opus) });
            }
            b.sdp.negotiated = Some(n);
        }
        Ok(())
    }

    fn b_codec(&self, id: u64) -> Option<CodecKind> {
        self.calls.get(&id)?.b.as_ref()?.sdp.negotiated.as_ref().map(|n| n.codec)
    }

    /// Join the legs' media once both run, and run `on_bridged` once both are answered.
    pub(super) fn join_legs(
        &mut self,
        now: Duration,
        id: u64,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(b) = call.b.as_ref() else { return };
        let (Some(a_leg), Some(b_leg)) = (call.a.leg, b.sdp.leg) else { return };
        if !(call.a.media_running && b.sdp.media_running) {
            return;
        }
        if !call.joined {
            call.joined = true;
            // A prompt still playing to A stops: the callee's audio takes over.
            for (_, route) in call.plays.drain() {
                tracing::debug!(call = %call.view.id, %route, "play ended by the bridge; its route does not run");
            }
            self.media.push_back(MediaCmd::Bridge { a: a_leg, b: b_leg });
        }
        if b.state == BState::Answered && call.state == CallState::Answered && !call.bridged_route_ran {
            call.bridged_route_ran = true;
            call.view.bridge_status = 200;
            call.view.bridge_reason = "OK".into();
            let route = b.request.on_bridged.clone();
            tracing::info!(call = %call.view.id, target = %b.request.target, "bridged");
            self.run_route(now, id, RouteName::Event(&route), ep, host, ports, 0);
        }
    }

    /// The B-leg failed before it was answered (final non-2xx, timeout, ring timeout).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn b_failed(
        &mut self,
        now: Duration,
        id: u64,
        status: u16,
        reason: &str,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        let Some(b) = self.calls.get_mut(&id).and_then(|c| c.b.take()) else { return };
        let on_failed = b.request.on_failed.clone();
        tracing::info!(call = %self.call_id(id), target = %b.request.target, status, reason, "B-leg failed");
        self.drop_b(id, b);
        if let Some(call) = self.calls.get_mut(&id) {
            call.joined = false;
        }
        self.bridge_failed(now, id, on_failed, status, reason, ep, host, ports, 0);
    }

    /// What follows a failed bridge: `on_failed`, or the default (relay to an unanswered A, BYE
    /// to an answered one).
    #[allow(clippy::too_many_arguments)]
    fn bridge_failed(
        &mut self,
        now: Duration,
        id: u64,
        on_failed: Option<String>,
        status: u16,
        reason: &str,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
        depth: usize,
    ) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.view.bridge_status = status;
        call.view.bridge_reason = reason.to_string();
        let answered = call.state == CallState::Answered;
        if let Some(route) = on_failed {
            self.run_route(now, id, RouteName::Event(&route), ep, host, ports, depth + 1);
            self.require_progress(now, id, &route, ep);
            return;
        }
        if answered {
            self.end_call(now, id, EndReason::BridgeFailed { status }, ep);
            return;
        }
        // Relay the final status; an auth challenge or a 400 about our own request means nothing
        // to the caller.
        let relayed = match status {
            401 | 407 | 400 => 500,
            s if (300..=699).contains(&s) => s,
            _ => 500,
        };
        self.reject(now, id, relayed, reason, ep);
    }

    /// The ring timeout: CANCEL B and fail the bridge with 408 at once (B's 487 is absorbed).
    pub(super) fn ring_timeout(
        &mut self,
        now: Duration,
        id: u64,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        let Some(b) = self.calls.get(&id).and_then(|c| c.b.as_ref()) else { return };
        if b.state == BState::Answered {
            return;
        }
        let tx = b.tx;
        ep.cancel(now, tx);
        self.orphans.insert(tx);
        self.b_failed(now, id, 408, "Request Timeout", ep, host, ports);
    }

    /// End the B-leg's SIP side with its call: CANCEL when unanswered, BYE when answered.
    pub(super) fn end_b(&mut self, now: Duration, id: u64, ep: &mut Endpoint) {
        let Some(b) = self.calls.get_mut(&id).and_then(|c| c.b.take()) else { return };
        match (&b.state, &b.dialog) {
            (BState::Answered, Some(dialog)) => {
                if let Err(e) = ep.send_in_dialog(now, dialog, Method::Bye, Vec::new(), None) {
                    tracing::debug!(call = %self.call_id(id), error = %e, "no BYE sent to the B-leg");
                }
            }
            (BState::Answered, None) => {}
            (BState::Calling | BState::Early, _) => {
                ep.cancel(now, b.tx);
                self.orphans.insert(b.tx);
            }
        }
        self.drop_b(id, b);
    }

    /// Forget a B-leg: cancel or hang up what is still alive, release its port or media.
    pub(super) fn drop_b(&mut self, id: u64, b: BLeg) {
        let (media_ip, collecting) = (self.config.media_ip, self.config.vq_collector.is_some());
        if let Some(call) = self.calls.get_mut(&id) {
            call.b_codec = b.sdp.negotiated.as_ref().map(|n| n.codec).or(call.b_codec);
            if let (Some(d), true) = (&b.established, collecting) {
                let ids = VqIds {
                    call_id: d.call_id.clone(),
                    local_id: b.from.clone(),
                    remote_id: b.to.clone(),
                    orig_id: without_tag(&call.view.from),
                    // We are the UAC of the B-leg: our tag is the From tag.
                    dialog_id: Some(format!("{};to-tag={};from-tag={}", d.call_id, d.remote_tag, d.local_tag)),
                };
                let started = call.answered.unwrap_or(call.started);
                call.b_vq = vq_leg(Side::B, &b.sdp, media_ip, ids, started).or(call.b_vq.take());
            }
        }
        self.by_client.remove(&b.tx);
        self.deadlines.remove(&(b.ring_deadline, id));
        if let Some(dialog) = &b.dialog {
            self.by_dialog.remove(dialog);
        }
        self.release_leg(id, Side::B, &b.sdp);
    }

    /// A response to a B-leg INVITE whose call moved on.
    pub(super) fn orphan_response(
        &mut self,
        now: Duration,
        tx: ClientTxId,
        response: &Response,
        dialog: Option<DialogId>,
        ep: &mut Endpoint,
    ) {
        let status = response.status();
        if status < 200 {
            return;
        }
        self.orphans.remove(&tx);
        if let (200..=299, Some(dialog)) = (status, dialog) {
            let cseq = response.cseq().map(|c| c.seq).unwrap_or(1);
            let _ = ep.ack(&dialog, cseq, None);
            let _ = ep.send_in_dialog(now, &dialog, Method::Bye, Vec::new(), None);
        }
    }
}

/// A From/To value without its tag parameter (the B-leg gets its own tag).
pub(super) fn without_tag(value: &str) -> String {
    let end = value.find('>').map_or(0, |i| i + 1);
    let (addr, params) = value.split_at(end);
    let kept: Vec<&str> = params
        .split(';')
        .filter(|p| !p.trim().is_empty() && !p.trim().to_ascii_lowercase().starts_with("tag="))
        .collect();
    let mut out = addr.to_string();
    for p in kept {
        out.push(';');
        out.push_str(p.trim());
    }
    if out.is_empty() {
        return value.split(';').next().unwrap_or_default().to_string();
    }
    out
}
