-- A transcoding gateway: callers may speak any codec rms knows (PCMU, PCMA, G.722, Opus, as they
-- offer); the far side is offered PCMU only, so rms transcodes between the two legs both ways
-- (and relays RFC 4733 telephone-events between them when both negotiated it).

local TRUNK = "127.0.0.1:5080"

function request_route(call)
  local target = call:header("X-Bridge-To") or ("sip:" .. call.ruri_user .. "@" .. TRUNK)
  call:bridge(target, "rms:bridged", { codecs = { "PCMU" }, timeout = 30 })
end

event_route["rms:bridged"] = function(call)
  rms.log("info", "gateway call " .. call.id .. ": " .. call.codec .. " <-> " .. call.b_codec)
end
