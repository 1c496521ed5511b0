-- The flow of Kamailio's rtp_media_server example ("Answer and play files"), as rms event routes:
-- answer, play a prompt, hang up when it ends.
--
--   rms_answer("rms:start")                  -> call:answer("rms:start")
--   rms_play(file, "rms:after_play")         -> call:play(file, "rms:after_play")
--   rms_hangup()                             -> call:hangup()
--
-- Prompts resolve against --voice-dir (default voice_files/).

function request_route(call)
  rms.log("info", "call " .. call.id .. " from " .. call.from .. " to " .. call.ruri)
  call:answer("rms:start")
end

event_route["rms:start"] = function(call)
  call:play("welcome-8k.wav", "rms:after_play")
end

event_route["rms:after_play"] = function(call)
  call:hangup()
end

-- Runs when any call ends (rtpengine's mos_* figures, measured by rms itself; nil when not measured).
event_route["rms:hangup"] = function(call)
  local a = call.quality and call.quality.A
  if a and a.mos.average then
    rms.log("info", string.format("call %s ended (%s): MOS avg %.2f min %.2f, loss %.1f %%, jitter %.1f ms",
      call.id, call.end_reason, a.mos.average, a.mos.min, a.packetloss, a.jitter))
  else
    rms.log("info", "call " .. call.id .. " ended (" .. call.end_reason .. "), no media measured")
  end
end
