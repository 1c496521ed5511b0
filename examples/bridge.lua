-- Bridge each caller to a destination chosen in the script (Kamailio: rms_bridge(target,
-- "rms:bridged")). rms dials the B-leg itself (its own Call-ID, From tag and CSeq), relays the
-- callee's ringing, answers the caller when the callee answers, and joins the media: a relay when
-- both sides use the same codec, transcoding otherwise.
--
-- The proxy in front may name the destination in an X-Bridge-To header (a sip: URI with an IP
-- address: rms does no DNS); otherwise the called user is dialled at PBX.

local PBX = "127.0.0.1:5080"

function request_route(call)
  local target = call:header("X-Bridge-To") or ("sip:" .. call.ruri_user .. "@" .. PBX)
  -- Ring for at most 30 s (X-Ring-Timeout may say otherwise); then the callee is cancelled and
  -- the caller gets 408. Without an on_failed route, any failure of the callee (486, 404 ...) is
  -- relayed to the caller as it is.
  local ring = tonumber(call:header("X-Ring-Timeout") or "") or 30
  call:bridge(target, "rms:bridged", { timeout = ring })
end

event_route["rms:bridged"] = function(call)
  rms.log("info", "call " .. call.id .. " bridged: " .. call.codec .. " <-> " .. call.b_codec)
end
