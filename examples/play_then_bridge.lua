-- Answer, play a prompt, then connect the caller (the flow that crashed Kamailio's module).
-- When the callee cannot be reached, say goodbye and hang up.
--
--   rms_answer("rms:start")                        -> call:answer("rms:start")
--   rms_play(file, "rms:connect")                  -> call:play(file, "rms:connect")
--   rms_bridge(target, "rms:bridged")              -> call:bridge(target, "rms:bridged", "rms:unreachable")

local PBX = "127.0.0.1:5080"

function request_route(call)
  call:answer("rms:start")
end

event_route["rms:start"] = function(call)
  call:play(call:header("X-Prompt") or "welcome-8k.wav", "rms:connect")
end

event_route["rms:connect"] = function(call)
  local target = call:header("X-Bridge-To") or ("sip:" .. call.ruri_user .. "@" .. PBX)
  local ring = tonumber(call:header("X-Ring-Timeout") or "") or 30
  call:bridge(target, "rms:bridged", "rms:unreachable", { timeout = ring })
end

event_route["rms:bridged"] = function(call)
  rms.log("info", "call " .. call.id .. " connected to the callee (" .. call.b_codec .. ")")
end

-- The caller is answered already: tell them, then hang up.
event_route["rms:unreachable"] = function(call)
  rms.log("info", "callee unreachable: " .. call.bridge_status .. " " .. call.bridge_reason)
  call:play("goodbye-8k.wav", "rms:bye")
end

event_route["rms:bye"] = function(call)
  call:hangup()
end
