use super::*;
use crate::session::HANGUP_ROUTE;

fn view() -> CallView {
    CallView {
        id: "abc@192.0.2.1".into(),
        ruri: "sip:ivr@192.0.2.2".into(),
        ruri_user: "ivr".into(),
        from: "<sip:alice@192.0.2.1>;tag=1".into(),
        to: "<sip:ivr@192.0.2.2>".into(),
        source: "192.0.2.1:5060".parse().unwrap(),
        codec: "PCMU".into(),
        headers: vec![("X-Account".into(), "42".into())],
        bridge_status: 0,
        bridge_reason: String::new(),
        b_codec: String::new(),
        end_reason: String::new(),
        quality: Vec::new(),
    }
}

fn host(source: &str) -> LuaHost {
    LuaHost::from_source("test.lua", source).unwrap()
}

#[test]
fn every_call_function_records_its_action() {
    let mut h = host(
        r#"
        function request_route(call)
          call:ringing()
          call:reply(183, "Session Progress")
          call:answer("rms:start")
        end
        event_route["rms:start"] = function(call)
          call:play("hello.wav", "rms:after_play")
        end
        event_route["rms:after_play"] = function(call)
          call:hangup()
          call:hangup(486, "Busy Here")
        end
        "#,
    );
    assert_eq!(
        h.run(RouteName::Request, &view()).unwrap(),
        vec![
            Action::Ringing,
            Action::Reply { code: 183, reason: "Session Progress".into() },
            Action::Answer { route: "rms:start".into() }
        ]
    );
    assert_eq!(
        h.run(RouteName::Event("rms:start"), &view()).unwrap(),
        vec![Action::Play { file: "hello.wav".into(), route: "rms:after_play".into() }]
    );
    assert_eq!(
        h.run(RouteName::Event("rms:after_play"), &view()).unwrap(),
        vec![
            Action::Hangup { code: None, reason: None },
            Action::Hangup { code: Some(486), reason: Some("Busy Here".into()) }
        ]
    );
    let mut routes = h.event_routes();
    routes.sort();
    assert_eq!(routes, vec!["rms:after_play", "rms:start"]);
}

#[test]
fn call_fields_and_headers_are_readable() {
    let mut h = host(
        r#"
        function request_route(call)
          local fields = {call.id, call.ruri, call.ruri_user, call.from, call.to, call.source, call.codec,
                          call:header("x-account"), tostring(call:header("X-Missing"))}
          call:reply(404, table.concat(fields, "|"))
        end
        "#,
    );
    let actions = h.run(RouteName::Request, &view()).unwrap();
    let Action::Reply { reason, .. } = &actions[0] else { panic!("{actions:?}") };
    assert_eq!(
        reason,
        "abc@192.0.2.1|sip:ivr@192.0.2.2|ivr|<sip:alice@192.0.2.1>;tag=1|<sip:ivr@192.0.2.2>|192.0.2.1:5060|PCMU|42|nil"
    );
}

#[test]
fn undefined_routes_and_runtime_errors_name_the_script_and_line() {
    let mut h = host("function request_route(call)\n  call:answer('rms:start')\nend\nevent_route['boom'] = function(call)\n  error('no prompt')\nend\n");
    assert_eq!(
        h.run(RouteName::Event("rms:nope"), &view()),
        Err(ScriptError::UndefinedRoute { route: "event_route[\"rms:nope\"]".into(), script: "test.lua".into() })
    );
    let err = h.run(RouteName::Event("boom"), &view()).unwrap_err();
    let ScriptError::Runtime { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("test.lua:5:") && message.contains("no prompt"), "{message}");
    // Wrong argument types are errors too, not panics.
    let mut h = host("function request_route(call) call:reply('x', 1) end");
    assert!(matches!(h.run(RouteName::Request, &view()), Err(ScriptError::Runtime { .. })));
    // The host still works after an error.
    let mut h =
        host("n = 0\nfunction request_route(call) n = n + 1; if n == 1 then error('first') end; call:ringing() end");
    assert!(h.run(RouteName::Request, &view()).is_err());
    assert_eq!(h.run(RouteName::Request, &view()).unwrap(), vec![Action::Ringing]);
}

#[test]
fn load_errors_name_the_file_and_line() {
    let Err(ScriptError::Load { message }) =
        LuaHost::from_source("ivr.lua", "function request_route(call)\n  call:answer(\nend\n")
    else {
        panic!("syntax error accepted")
    };
    assert!(message.contains("ivr.lua:3:"), "{message}");
    let Err(ScriptError::Load { message }) = LuaHost::from_source("ivr.lua", "x = 1\nerror('top level')\n") else {
        panic!()
    };
    assert!(message.contains("ivr.lua:2:"), "{message}");
    let Err(ScriptError::Load { message }) = LuaHost::from_source("ivr.lua", "-- nothing\n") else { panic!() };
    assert!(message.contains("request_route"), "{message}");
    assert!(matches!(LuaHost::load(Path::new("/nonexistent/x.lua")), Err(ScriptError::Load { .. })));
}

#[test]
fn an_endless_route_is_stopped() {
    let mut h = host("function request_route(call) while true do end end");
    let err = h.run(RouteName::Request, &view()).unwrap_err();
    assert!(err.to_string().contains("instruction budget"), "{err}");
    // The budget is per run: a normal route afterwards is fine.
    let mut h =
        host("i = 0\nfunction request_route(call) if i == 0 then i = 1; while true do end end; call:ringing() end");
    assert!(h.run(RouteName::Request, &view()).is_err());
    assert_eq!(h.run(RouteName::Request, &view()).unwrap(), vec![Action::Ringing]);
}

#[test]
fn rms_log_is_available() {
    let mut h = host("function request_route(call) rms.log('info', 'call from ' .. call.from); call:ringing() end");
    assert_eq!(h.run(RouteName::Request, &view()).unwrap(), vec![Action::Ringing]);
}

#[test]
fn bridge_takes_its_routes_and_options_in_every_documented_form() {
    let mut h = host(
        r#"
        function request_route(call)
          call:bridge("sip:bob@127.0.0.1:5080", "rms:bridged")
          call:bridge("sip:bob@127.0.0.1", "rms:bridged", "rms:failed")
          call:bridge("sip:bob@127.0.0.1", "rms:bridged", { codecs = { "PCMU" }, timeout = 5 })
          call:bridge("sip:bob@127.0.0.1", "rms:bridged", "rms:failed",
            { timeout = 2.5, headers = { ["X-B"] = "2", ["X-A"] = "1" }, from = "sip:ivr@rms.example" })
        end
        event_route["rms:failed"] = function(call)
          rms.log("info", "status " .. call.bridge_status .. " " .. call.bridge_reason .. " " .. call.b_codec)
          call:bridge("sip:x@127.0.0.1", "rms:bridged", { codec = { "PCMU" } })
        end
        "#,
    );
    let base = BridgeRequest {
        target: "sip:bob@127.0.0.1".into(),
        on_bridged: "rms:bridged".into(),
        ..BridgeRequest::default()
    };
    assert_eq!(
        h.run(RouteName::Request, &view()).unwrap(),
        vec![
            Action::Bridge(BridgeRequest { target: "sip:bob@127.0.0.1:5080".into(), ..base.clone() }),
            Action::Bridge(BridgeRequest { on_failed: Some("rms:failed".into()), ..base.clone() }),
            Action::Bridge(BridgeRequest {
                codecs: Some(vec!["PCMU".into()]),
                timeout: Some(std::time::Duration::from_secs(5)),
                ..base.clone()
            }),
            Action::Bridge(BridgeRequest {
                on_failed: Some("rms:failed".into()),
                timeout: Some(std::time::Duration::from_millis(2500)),
                headers: vec![("X-A".into(), "1".into()), ("X-B".into(), "2".into())],
                from: Some("sip:ivr@rms.example".into()),
                ..base
            }),
        ]
    );
    // A misspelt option is an error naming it, not silence.
    let err = h.run(RouteName::Event("rms:failed"), &view()).unwrap_err();
    assert!(err.to_string().contains("bad option codec"), "{err}");
    // So is a timeout that is not 0 < seconds <= a day (no panic on a huge one).
    for bad in ["0", "-1", "1e300", "0/0", "86401", "math.huge"] {
        let mut h = host(&format!(
            "function request_route(call) call:bridge(\"sip:x@127.0.0.1\", \"rms:bridged\", {{ timeout = {bad} }}) end"
        ));
        let err = h.run(RouteName::Request, &view()).unwrap_err();
        assert!(err.to_string().contains("bad option timeout"), "{bad}: {err}");
    }
}

#[test]
fn every_example_script_loads_and_defines_the_routes_it_names() {
    for name in ["ivr_play_hangup.lua", "bridge.lua", "play_then_bridge.lua", "transcoding_gateway.lua"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
        let host = LuaHost::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let source = std::fs::read_to_string(&path).unwrap();
        let defined = host.event_routes();
        // Every "rms:..." route the script names is defined (a route that does not exist must
        // never be silence).
        for named in source.split('"').filter(|s| s.starts_with("rms:")) {
            assert!(defined.iter().any(|d| d == named), "{name}: {named} is named but not defined");
        }
    }
}

#[test]
fn the_hangup_route_reads_the_end_reason_and_each_legs_quality() {
    let mut h = host(
        r#"
        event_route["rms:hangup"] = function(call)
            local a, b = call.quality.A, call.quality.B
            assert(call.end_reason == "caller_bye")
            assert(a.label == "A" and a.mos.min == 3.5 and a.mos.min_at == 12.5 and a.mos.max == 4.4)
            assert(a.mos.average == 4.1 and a.packetloss == 1.5 and a.jitter == 3.0 and a.samples == 6)
            assert(a.roundtrip == nil and b.roundtrip == 40.0 and b.mos.min == nil and b.samples == 0)
            call:hangup()
        end
        request_route = function(call) assert(call.quality == nil) end
    "#,
    );
    h.run(RouteName::Request, &view()).unwrap();
    let mut v = view();
    v.end_reason = "caller_bye".into();
    let a = LegQuality {
        label: "A",
        mos_min: Some((3.5, 12.5)),
        mos_max: Some(4.4),
        mos_average: Some(4.1),
        packetloss: Some(1.5),
        jitter: Some(3.0),
        roundtrip: None,
        samples: 6,
    };
    let b = LegQuality {
        label: "B",
        mos_min: None,
        mos_max: None,
        mos_average: None,
        packetloss: None,
        jitter: None,
        roundtrip: Some(40.0),
        samples: 0,
    };
    v.quality = vec![a, b];
    let actions = h.run(RouteName::Event(HANGUP_ROUTE), &v).unwrap();
    assert_eq!(actions, vec![Action::Hangup { code: None, reason: None }]);
    // The built-in example's hangup route logs with and without measured quality.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ivr_play_hangup.lua");
    let mut example = LuaHost::load(&path).unwrap();
    assert_eq!(example.run(RouteName::Event(HANGUP_ROUTE), &v).unwrap(), vec![]);
    v.quality.clear();
    assert_eq!(example.run(RouteName::Event(HANGUP_ROUTE), &v).unwrap(), vec![]);
}
