//! Routing scripts in Lua 5.4 (mlua, vendored): the [`RouteHost`] for the session layer.
//!
//! A script defines `request_route(call)` and `event_route["name"] = function(call) ... end`.
//! The `call` object records what a route asks for (`call:answer(route)`, `call:play(file, route)`,
//! `call:hangup([code, reason])`, `call:reply(code, reason)`, `call:ringing()`,
//! `call:bridge(target, on_bridged [, on_failed] [, opts])`) and exposes the call's fields
//! (`call.id`, `call.ruri`, `call.ruri_user`, `call.from`, `call.to`, `call.source`, `call.codec`,
//! `call.b_codec`, `call.bridge_status`, `call.bridge_reason`, `call:header(name)`).
//! `rms.log(level, msg)` writes to rms's log.
//!
//! Routes run to completion; the session layer carries out the recorded actions afterwards. A
//! route that runs past its instruction budget is stopped with an error, so a script bug cannot
//! stall signalling.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mlua::{HookTriggers, Lua, Table, UserData, UserDataFields, UserDataMethods, Value, VmState};

use crate::session::{Action, BridgeRequest, CallView, LegQuality, RouteHost, RouteName, ScriptError};

/// Lua instructions a single route may run (checked every 10,000): tens of milliseconds of pure
/// Lua, far beyond any sane route, and a bound on how long a runaway loop stalls signalling.
const INSTRUCTION_BUDGET: u64 = 20_000_000;
const HOOK_EVERY: u32 = 10_000;

/// A loaded routing script.
pub struct LuaHost {
    lua: Lua,
    script: String,
    /// Instructions left for the running route, in units of `HOOK_EVERY`.
    budget: Arc<AtomicU64>,
}

impl LuaHost {
    /// Load a script file. Syntax errors and errors at top level name the file and line.
    pub fn load(path: &Path) -> Result<Self, ScriptError> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| ScriptError::Load { message: format!("{}: {e}", path.display()) })?;
        Self::from_source(&path.display().to_string(), &source)
    }

    /// Load a script from text; `name` is what errors call it.
    pub fn from_source(name: &str, source: &str) -> Result<Self, ScriptError> {
        let lua = Lua::new();
        let load_err = |e: mlua::Error| ScriptError::Load { message: first_line(&e) };
        let globals = lua.globals();
        globals.set("event_route", lua.create_table().map_err(load_err)?).map_err(load_err)?;
        let rms = lua.create_table().map_err(load_err)?;
        let script = name.to_string();
        let log = lua
            .create_function(move |_, (level, msg): (String, String)| {
                match level.to_ascii_lowercase().as_str() {
                    "error" | "err" => tracing::error!(script = %script, "{msg}"),
                    "warn" | "warning" => tracing::warn!(script = %script, "{msg}"),
                    "debug" | "dbg" => tracing::debug!(script = %script, "{msg}"),
                    _ => tracing::info!(script = %script, "{msg}"),
                }
                Ok(())
            })
            .map_err(load_err)?;
        rms.set("log", log).map_err(load_err)?;
        globals.set("rms", rms).map_err(load_err)?;
        // `@name` makes Lua report errors as `name:line:` (a chunk name without `@` is quoted).
        lua.load(source).set_name(format!("@{name}")).exec().map_err(load_err)?;
        match globals.get::<Value>("request_route").map_err(load_err)? {
            Value::Function(_) => {}
            _ => return Err(ScriptError::Load { message: format!("{name}: no function request_route(call)") }),
        }
        let budget = Arc::new(AtomicU64::new(0));
        let left = budget.clone();
        lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_, _| {
            if left.fetch_sub(1, Ordering::Relaxed) <= 1 {
                return Err(mlua::Error::runtime("route exceeded its instruction budget (endless loop?)"));
            }
            Ok(VmState::Continue)
        })
        .map_err(load_err)?;
        drop(globals);
        Ok(Self { lua, script: name.to_string(), budget })
    }

    /// The event routes the script defines, for checks at load time.
    pub fn event_routes(&self) -> Vec<String> {
        let Ok(table) = self.lua.globals().get::<Table>("event_route") else { return Vec::new() };
        table.pairs::<String, Value>().filter_map(|p| p.ok()).map(|(k, _)| k).collect()
    }

    pub fn script(&self) -> &str {
        &self.script
    }
}

impl RouteHost for LuaHost {
    fn run(&mut self, route: RouteName<'_>, call: &CallView) -> Result<Vec<Action>, ScriptError> {
        let runtime = |e: mlua::Error| ScriptError::Runtime { route: route.to_string(), message: first_line(&e) };
        let function: Value = match route {
            RouteName::Request => self.lua.globals().get("request_route").map_err(runtime)?,
            RouteName::Event(name) => {
                let table: Table = self.lua.globals().get("event_route").map_err(runtime)?;
                table.get(name).map_err(runtime)?
            }
        };
        let Value::Function(function) = function else {
            return Err(ScriptError::UndefinedRoute { route: route.to_string(), script: self.script.clone() });
        };
        let actions = Arc::new(Mutex::new(Vec::new()));
        let handle = LuaCall { view: call.clone(), actions: actions.clone() };
        self.budget.store(INSTRUCTION_BUDGET / u64::from(HOOK_EVERY), Ordering::Relaxed);
        function.call::<()>(handle).map_err(runtime)?;
        let actions = std::mem::take(&mut *actions.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(actions)
    }
}

/// The `call` object a route gets.
struct LuaCall {
    view: CallView,
    actions: Arc<Mutex<Vec<Action>>>,
}

impl LuaCall {
    fn push(&self, action: Action) {
        self.actions.lock().unwrap_or_else(|p| p.into_inner()).push(action);
    }
}

impl UserData for LuaCall {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("id", |_, c| Ok(c.view.id.clone()));
        fields.add_field_method_get("ruri", |_, c| Ok(c.view.ruri.clone()));
        fields.add_field_method_get("ruri_user", |_, c| Ok(c.view.ruri_user.clone()));
        fields.add_field_method_get("from", |_, c| Ok(c.view.from.clone()));
        fields.add_field_method_get("to", |_, c| Ok(c.view.to.clone()));
        fields.add_field_method_get("source", |_, c| Ok(c.view.source.to_string()));
        fields.add_field_method_get("codec", |_, c| Ok(c.view.codec.clone()));
        fields.add_field_method_get("b_codec", |_, c| Ok(c.view.b_codec.clone()));
        fields.add_field_method_get("bridge_status", |_, c| Ok(c.view.bridge_status));
        fields.add_field_method_get("bridge_reason", |_, c| Ok(c.view.bridge_reason.clone()));
        fields.add_field_method_get("end_reason", |_, c| Ok(c.view.end_reason.clone()));
        // `call.quality.A.mos.average`, ... (nil before the call ends).
        fields.add_field_method_get("quality", |lua, c| {
            if c.view.quality.is_empty() {
                return Ok(Value::Nil);
            }
            let legs = lua.create_table()?;
            for q in &c.view.quality {
                legs.set(q.label, quality_table(lua, q)?)?;
            }
            Ok(Value::Table(legs))
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("header", |_, c, name: String| Ok(c.view.header(&name).map(str::to_string)));
        methods.add_method("answer", |_, c, route: String| {
            c.push(Action::Answer { route });
            Ok(())
        });
        methods.add_method("play", |_, c, (file, route): (String, String)| {
            c.push(Action::Play { file, route });
            Ok(())
        });
        methods.add_method("hangup", |_, c, (code, reason): (Option<u16>, Option<String>)| {
            c.push(Action::Hangup { code, reason });
            Ok(())
        });
        methods.add_method("reply", |_, c, (code, reason): (u16, String)| {
            c.push(Action::Reply { code, reason });
            Ok(())
        });
        methods.add_method("ringing", |_, c, ()| {
            c.push(Action::Ringing);
            Ok(())
        });
        // bridge(target, on_bridged [, on_failed] [, opts]); opts may take on_failed's place.
        methods.add_method("bridge", |_, c, (target, on_bridged, third, fourth): (String, String, Value, Value)| {
            let (on_failed, opts) = match (third, fourth) {
                (Value::String(s), Value::Table(t)) => (Some(s.to_str()?.to_string()), Some(t)),
                (Value::String(s), Value::Nil) => (Some(s.to_str()?.to_string()), None),
                (Value::Table(t), Value::Nil) | (Value::Nil, Value::Table(t)) => (None, Some(t)),
                (Value::Nil, Value::Nil) => (None, None),
                (a, b) => {
                    return Err(mlua::Error::runtime(format!(
                        "bridge(target, on_bridged [, on_failed] [, opts]): got {} and {} after on_bridged",
                        a.type_name(),
                        b.type_name()
                    )))
                }
            };
            let mut request = BridgeRequest { target, on_bridged, on_failed, ..BridgeRequest::default() };
            if let Some(opts) = opts {
                bridge_options(&opts, &mut request)?;
            }
            c.push(Action::Bridge(request));
            Ok(())
        });
    }
}

/// `{label, mos = {min, min_at, max, average}, packetloss, jitter, roundtrip, samples}`; a figure not
/// measured is nil.
fn quality_table(lua: &Lua, q: &LegQuality) -> mlua::Result<Table> {
    let mos = lua.create_table()?;
    mos.set("min", q.mos_min.map(|(m, _)| m))?;
    mos.set("min_at", q.mos_min.map(|(_, at)| at))?;
    mos.set("max", q.mos_max)?;
    mos.set("average", q.mos_average)?;
    let t = lua.create_table()?;
    t.set("label", q.label)?;
    t.set("mos", mos)?;
    t.set("packetloss", q.packetloss)?;
    t.set("jitter", q.jitter)?;
    t.set("roundtrip", q.roundtrip)?;
    t.set("samples", q.samples)?;
    Ok(t)
}

/// The longest ring timeout `call:bridge` takes, in seconds (a day).
const MAX_RING_TIMEOUT_S: u64 = 86_400;

/// Read `call:bridge`'s options table: `codecs`, `timeout`, `headers`, `from`. Unknown keys are
/// an error, so a typo does not silently do nothing.
fn bridge_options(opts: &Table, request: &mut BridgeRequest) -> mlua::Result<()> {
    for pair in opts.pairs::<String, Value>() {
        let (key, value) = pair?;
        match (key.as_str(), value) {
            ("codecs", Value::Table(t)) => {
                request.codecs = Some(t.sequence_values::<String>().collect::<mlua::Result<_>>()?);
            }
            // A ring timeout is seconds to a day: beyond, it is a script bug (and a Duration overflow).
            ("timeout", Value::Integer(n)) if (1..=MAX_RING_TIMEOUT_S as i64).contains(&n) => {
                request.timeout = Some(std::time::Duration::from_secs(n as u64))
            }
            ("timeout", Value::Number(n)) if n > 0.0 && n <= MAX_RING_TIMEOUT_S as f64 => {
                request.timeout = Some(std::time::Duration::from_secs_f64(n))
            }
            ("headers", Value::Table(t)) => {
                for h in t.pairs::<String, String>() {
                    let (name, value) = h?;
                    if name.is_empty() || name.contains([':', '\r', '\n', ' ']) || value.contains(['\r', '\n']) {
                        return Err(mlua::Error::runtime(format!("bridge(): bad header {name:?}")));
                    }
                    request.headers.push((name, value));
                }
                // Pairs come in hash order: sort so the INVITE is the same each time.
                request.headers.sort();
            }
            ("from", Value::String(s)) => request.from = Some(s.to_str()?.to_string()),
            (key, value) => {
                return Err(mlua::Error::runtime(format!(
                    "bridge(): bad option {key} = {} (options: codecs = {{names}}, timeout = seconds up to a day, headers = {{name = value}}, from = uri)",
                    value.type_name()
                )))
            }
        }
    }
    Ok(())
}

/// The first line of a Lua error (`file:line: message`), without the traceback.
fn first_line(e: &mlua::Error) -> String {
    let text = match e {
        mlua::Error::CallbackError { cause, .. } => cause.to_string(),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or_default().to_string()
}

/// The default example script's path, relative to the repository.
pub fn example_script() -> PathBuf {
    PathBuf::from("examples/ivr_play_hangup.lua")
}

#[cfg(test)]
mod tests;
