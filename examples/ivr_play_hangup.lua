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
