//! The filter graph: nodes, links with frame queues, and the tick.
//!
//! The schedule is a topological order computed whenever links change (a cycle is refused at `link`).
//! `tick` then walks it once, like mediastreamer2's `msticker.c`:
//! 1. sources (no linked inputs) and pumps always run;
//! 2. every other filter runs only when at least one of its inputs has a frame queued, after all its
//!    upstream filters have run in this tick, so a frame crosses the whole chain in one tick.
//!
//! Each run is timed with the injected [`UsageClock`] for the usage table.

use std::collections::VecDeque;
use std::time::Duration;

use crate::filter::{Filter, FilterDesc, FilterError, FilterEvent, ProcessCx, Queue, Transmit, UsageClock, UsageTable};
use crate::filter::{UsageStats, MAX_PINS};

/// Index of a node in its graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// Why a graph operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("no node {0:?} in this graph")]
    NoSuchNode(NodeId),
    #[error("{name} has no {dir} pin {pin}")]
    NoSuchPin { name: &'static str, dir: &'static str, pin: usize },
    #[error("{name} {dir} pin {pin} is already linked")]
    PinInUse { name: &'static str, dir: &'static str, pin: usize },
    #[error("{from} -> {to} is not linked")]
    NotLinked { from: &'static str, to: &'static str },
    #[error("linking {from} -> {to} would make a cycle")]
    Cycle { from: &'static str, to: &'static str },
    #[error("a graph holds at most 65535 links")]
    TooManyLinks,
    #[error("filter {name} ({node:?}) failed: {source}")]
    FilterFailed { node: NodeId, name: &'static str, source: FilterError },
    #[error("the graph stopped after an earlier filter failure")]
    Failed,
}

struct Node {
    filter: Box<dyn Filter>,
    desc: FilterDesc,
    /// Queue index per input pin, `None` when unlinked. Inline, not a Vec: `tick` reads them for every
    /// node of every graph, and a pointer chase each is a cache miss at 1000 graphs.
    inputs: [Option<u16>; MAX_PINS],
    outputs: [Option<u16>; MAX_PINS],
    usage: UsageStats,
}

impl Node {
    fn input_pins(&self) -> &[Option<u16>] {
        &self.inputs[..self.desc.inputs]
    }

    fn output_pins(&self) -> &[Option<u16>] {
        &self.outputs[..self.desc.outputs]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link {
    from: (NodeId, usize),
    to: (NodeId, usize),
}

/// A per-call filter graph.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<Option<Node>>,
    /// Link slots; a link's queue has the same index in `queues`.
    links: Vec<Option<Link>>,
    queues: Vec<Queue>,
    schedule: Vec<NodeId>,
    events: Vec<FilterEvent>,
    transmits: Vec<Transmit>,
    /// Usage of removed nodes, by name: a graph's table covers every filter it ran.
    retired: Vec<(&'static str, UsageStats)>,
    ticks: u64,
    failed: bool,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a filter; it takes part in ticks once the schedule includes it (immediately).
    pub fn add(&mut self, filter: impl Filter) -> NodeId {
        self.add_boxed(Box::new(filter))
    }

    pub fn add_boxed(&mut self, filter: Box<dyn Filter>) -> NodeId {
        let mut desc = filter.desc();
        debug_assert!(desc.inputs <= MAX_PINS && desc.outputs <= MAX_PINS, "{} has too many pins", desc.name);
        desc.inputs = desc.inputs.min(MAX_PINS);
        desc.outputs = desc.outputs.min(MAX_PINS);
        let node =
            Node { filter, desc, inputs: [None; MAX_PINS], outputs: [None; MAX_PINS], usage: UsageStats::default() };
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(Some(node));
        self.reschedule().expect("adding an unlinked node cannot create a cycle");
        id
    }

    /// Remove a node and every link touching it; frames queued on those links are dropped. Its usage
    /// stays in [`Graph::usage`].
    pub fn remove(&mut self, id: NodeId) -> Result<Box<dyn Filter>, GraphError> {
        self.node(id)?;
        for slot in 0..self.links.len() {
            if let Some(l) = self.links[slot] {
                if l.from.0 == id || l.to.0 == id {
                    self.unlink(l.from.0, l.from.1, l.to.0, l.to.1)?;
                }
            }
        }
        let node = self.nodes[id.0 as usize].take().ok_or(GraphError::NoSuchNode(id))?;
        self.reschedule()?;
        if node.usage.count > 0 {
            match self.retired.iter_mut().find(|(name, _)| *name == node.desc.name) {
                Some((_, usage)) => usage.merge(&node.usage),
                None => self.retired.push((node.desc.name, node.usage)),
            }
        }
        Ok(node.filter)
    }

    /// Link output pin `out` of `from` to input pin `inp` of `to`. Refuses pins in use and cycles.
    pub fn link(&mut self, from: NodeId, out: usize, to: NodeId, inp: usize) -> Result<(), GraphError> {
        let (from_name, to_name) = (self.node(from)?.desc.name, self.node(to)?.desc.name);
        match self.node(from)?.output_pins().get(out) {
            None => return Err(GraphError::NoSuchPin { name: from_name, dir: "output", pin: out }),
            Some(Some(_)) => return Err(GraphError::PinInUse { name: from_name, dir: "output", pin: out }),
            Some(None) => {}
        }
        match self.node(to)?.input_pins().get(inp) {
            None => return Err(GraphError::NoSuchPin { name: to_name, dir: "input", pin: inp }),
            Some(Some(_)) => return Err(GraphError::PinInUse { name: to_name, dir: "input", pin: inp }),
            Some(None) => {}
        }
        let slot = match self.links.iter().position(Option::is_none) {
            Some(s) => s,
            None => {
                self.links.push(None);
                self.queues.push(VecDeque::new());
                self.links.len() - 1
            }
        };
        let Ok(queue) = u16::try_from(slot) else {
            return Err(GraphError::TooManyLinks);
        };
        self.links[slot] = Some(Link { from: (from, out), to: (to, inp) });
        if self.reschedule().is_err() {
            self.links[slot] = None;
            self.reschedule().expect("the graph was acyclic before this link");
            return Err(GraphError::Cycle { from: from_name, to: to_name });
        }
        self.node_mut(from)?.outputs[out] = Some(queue);
        self.node_mut(to)?.inputs[inp] = Some(queue);
        Ok(())
    }

    /// Link a chain of single-pin filters: `chain(&[a, b, c])` links a:0 → b:0 → c:0.
    pub fn chain(&mut self, nodes: &[NodeId]) -> Result<(), GraphError> {
        for w in nodes.windows(2) {
            self.link(w[0], 0, w[1], 0)?;
        }
        Ok(())
    }

    /// Remove the link `from:out → to:inp`, dropping frames still queued on it.
    pub fn unlink(&mut self, from: NodeId, out: usize, to: NodeId, inp: usize) -> Result<(), GraphError> {
        let want = Link { from: (from, out), to: (to, inp) };
        let Some(slot) = self.links.iter().position(|l| *l == Some(want)) else {
            return Err(GraphError::NotLinked { from: self.node(from)?.desc.name, to: self.node(to)?.desc.name });
        };
        self.links[slot] = None;
        self.queues[slot].clear();
        self.node_mut(from)?.outputs[out] = None;
        self.node_mut(to)?.inputs[inp] = None;
        self.reschedule()
    }

    /// The filter at `id` as its concrete type, to feed it or change it between ticks.
    pub fn filter_mut<F: Filter>(&mut self, id: NodeId) -> Option<&mut F> {
        let node = self.nodes.get_mut(id.0 as usize)?.as_mut()?;
        (node.filter.as_mut() as &mut dyn std::any::Any).downcast_mut::<F>()
    }

    pub fn filter<F: Filter>(&self, id: NodeId) -> Option<&F> {
        let node = self.nodes.get(id.0 as usize)?.as_ref()?;
        (node.filter.as_ref() as &dyn std::any::Any).downcast_ref::<F>()
    }

    pub fn desc(&self, id: NodeId) -> Option<FilterDesc> {
        Some(self.nodes.get(id.0 as usize)?.as_ref()?.desc)
    }

    /// The order in which `tick` visits nodes.
    pub fn schedule(&self) -> &[NodeId] {
        &self.schedule
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Run one 10 ms tick at virtual time `now`. A filter error stops this graph for good (later ticks
    /// return [`GraphError::Failed`]); other graphs are unaffected.
    pub fn tick(&mut self, now: Duration, clock: &dyn UsageClock) -> Result<(), GraphError> {
        if self.failed {
            return Err(GraphError::Failed);
        }
        let tick = self.ticks;
        self.ticks += 1;
        let mut t = clock.now_ns();
        for &id in &self.schedule {
            let Some(node) = self.nodes[id.0 as usize].as_mut() else { continue };
            let inputs = &node.inputs[..node.desc.inputs];
            let fed = inputs.iter().any(|q| matches!(q, Some(q) if !self.queues[usize::from(*q)].is_empty()));
            let source = inputs.iter().all(Option::is_none);
            if !(fed || source || node.desc.pump) {
                continue;
            }
            let mut cx = ProcessCx {
                now,
                tick,
                queues: &mut self.queues,
                inputs,
                outputs: &node.outputs[..node.desc.outputs],
                events: &mut self.events,
                transmits: &mut self.transmits,
            };
            let result = node.filter.process(&mut cx);
            let end = clock.now_ns();
            node.usage.record(end.saturating_sub(t));
            t = end;
            if let Err(source) = result {
                self.failed = true;
                return Err(GraphError::FilterFailed { node: id, name: node.desc.name, source });
            }
        }
        Ok(())
    }

    /// Events filters emitted since the last call, oldest first.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, FilterEvent> {
        self.events.drain(..)
    }

    /// Datagrams filters want sent since the last call, oldest first.
    pub fn drain_transmits(&mut self) -> std::vec::Drain<'_, Transmit> {
        self.transmits.drain(..)
    }

    /// Usage statistics of every node (the "FILTER USAGE STATISTICS" table). A removed node's usage is
    /// added to the first live node of its name, or has its own row when there is none.
    pub fn usage(&self) -> UsageTable {
        let mut rows: Vec<(&'static str, UsageStats)> =
            self.nodes.iter().flatten().map(|n| (n.desc.name, n.usage)).collect();
        for (name, usage) in &self.retired {
            match rows.iter_mut().find(|(n, _)| n == name) {
                Some((_, live)) => live.merge(usage),
                None => rows.push((name, *usage)),
            }
        }
        UsageTable::new(rows)
    }

    /// Frames waiting in link queues (all links).
    pub fn queued_frames(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    fn node(&self, id: NodeId) -> Result<&Node, GraphError> {
        self.nodes.get(id.0 as usize).and_then(Option::as_ref).ok_or(GraphError::NoSuchNode(id))
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node, GraphError> {
        self.nodes.get_mut(id.0 as usize).and_then(Option::as_mut).ok_or(GraphError::NoSuchNode(id))
    }

    /// Kahn's algorithm over the current links; sources first, in insertion order, so schedules are
    /// deterministic. Returns `Cycle` (with placeholder names) if some node is never freed.
    fn reschedule(&mut self) -> Result<(), GraphError> {
        let n = self.nodes.len();
        let mut indegree = vec![0usize; n];
        for l in self.links.iter().flatten() {
            indegree[l.to.0 .0 as usize] += 1;
        }
        let mut ready: VecDeque<usize> = (0..n).filter(|&i| self.nodes[i].is_some() && indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_front() {
            order.push(NodeId(i as u32));
            for l in self.links.iter().flatten().filter(|l| l.from.0 .0 as usize == i) {
                let j = l.to.0 .0 as usize;
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    ready.push_back(j);
                }
            }
        }
        if order.len() != self.nodes.iter().flatten().count() {
            return Err(GraphError::Cycle { from: "?", to: "?" });
        }
        self.schedule = order;
        Ok(())
    }
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.schedule.iter().filter_map(|&id| self.desc(id).map(|d| d.name)).collect();
        f.debug_struct("Graph").field("schedule", &names).field("ticks", &self.ticks).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{FilterError, NoClock, TICK};
    use crate::nodes::{Tee, ToneGen, VoidSink};

    /// Passes frames through and counts its runs; fails on a chosen tick.
    struct Pass {
        fail_at: Option<u64>,
    }

    impl Filter for Pass {
        fn desc(&self) -> FilterDesc {
            FilterDesc { name: "pass", inputs: 1, outputs: 1, pump: false }
        }
        fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
            if self.fail_at == Some(cx.tick) {
                return Err(FilterError::Injected { filter: "pass" });
            }
            while let Some(f) = cx.pop(0) {
                cx.push(0, f);
            }
            Ok(())
        }
    }

    /// A clock that advances 1000 ns per reading, so usage times are exact.
    struct StepClock(std::cell::Cell<u64>);

    impl UsageClock for StepClock {
        fn now_ns(&self) -> u64 {
            let t = self.0.get() + 1000;
            self.0.set(t);
            t
        }
    }

    #[test]
    fn schedule_is_topological_whatever_the_insertion_order() {
        let mut g = Graph::new();
        let sink = g.add(VoidSink::new());
        let b = g.add(Pass { fail_at: None });
        let a = g.add(Pass { fail_at: None });
        let src = g.add(ToneGen::new(8000, 440.0, 0.0, 1000));
        g.chain(&[src, a, b, sink]).unwrap();
        assert_eq!(g.schedule(), &[src, a, b, sink]);
        g.tick(Duration::ZERO, &NoClock).unwrap();
        // The tone crossed the whole chain in one tick.
        assert_eq!(g.filter::<VoidSink>(sink).unwrap().frames, 1);
        assert_eq!(g.queued_frames(), 0);
    }

    #[test]
    fn cycles_and_bad_pins_are_refused() {
        let mut g = Graph::new();
        let a = g.add(Pass { fail_at: None });
        let b = g.add(Pass { fail_at: None });
        g.link(a, 0, b, 0).unwrap();
        assert!(matches!(g.link(b, 0, a, 0), Err(GraphError::Cycle { .. })));
        // The refused link left no trace: a and b are still a valid chain.
        assert_eq!(g.schedule(), &[a, b]);
        assert!(matches!(g.link(a, 0, b, 0), Err(GraphError::PinInUse { dir: "output", .. })));
        assert!(matches!(g.link(a, 3, b, 0), Err(GraphError::NoSuchPin { dir: "output", pin: 3, .. })));
        assert!(matches!(g.link(a, 0, NodeId(9), 0), Err(GraphError::NoSuchNode(NodeId(9)))));
        let t = g.add(Tee::new());
        let s = g.add(VoidSink::new());
        assert!(matches!(g.link(s, 0, t, 0), Err(GraphError::NoSuchPin { dir: "output", .. })));
        g.unlink(a, 0, b, 0).unwrap();
        assert!(matches!(g.unlink(a, 0, b, 0), Err(GraphError::NotLinked { .. })));
        // Now b -> a is fine.
        g.link(b, 0, a, 0).unwrap();
        let pos = |n| g.schedule().iter().position(|&x| x == n).unwrap();
        assert!(pos(b) < pos(a), "{:?}", g.schedule());
    }

    #[test]
    fn unfed_filters_do_not_run_but_pumps_and_sources_do() {
        let mut g = Graph::new();
        let src = g.add(ToneGen::new(8000, 440.0, 0.0, 1000).with_duration_ms(20));
        let pass = g.add(Pass { fail_at: None });
        let sink = g.add(VoidSink::new());
        g.chain(&[src, pass, sink]).unwrap();
        for i in 0..5 {
            g.tick(TICK * i, &NoClock).unwrap();
        }
        let usage = g.usage();
        let count = |name| usage.rows.iter().find(|r| r.name == name).unwrap().stats.count;
        assert_eq!(count("tone_gen"), 5, "a source runs every tick");
        assert_eq!(count("pass"), 2, "two 10 ms frames, then nothing to do");
        assert_eq!(count("void_sink"), 2);
    }

    /// A pump with one input: counts its runs.
    struct Pump {
        runs: u64,
    }

    impl Filter for Pump {
        fn desc(&self) -> FilterDesc {
            FilterDesc { name: "pump", inputs: 1, outputs: 0, pump: true }
        }
        fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
            self.runs += 1;
            while cx.pop(0).is_some() {}
            Ok(())
        }
    }

    #[test]
    fn a_pump_runs_every_tick_with_its_input_linked_but_empty() {
        let mut g = Graph::new();
        let src = g.add(ToneGen::new(8000, 440.0, 0.0, 1000).with_duration_ms(20));
        let pass = g.add(Pass { fail_at: None });
        let pump = g.add(Pump { runs: 0 });
        g.chain(&[src, pass, pump]).unwrap();
        for i in 0..6 {
            g.tick(TICK * i, &NoClock).unwrap();
        }
        assert_eq!(g.filter::<Pump>(pump).unwrap().runs, 6);
        let pass_runs = g.usage().rows.iter().find(|r| r.name == "pass").unwrap().stats.count;
        assert_eq!(pass_runs, 2, "the non-pump in front of it ran only when fed");
    }

    #[test]
    fn a_failing_filter_stops_its_graph_for_good() {
        let mut g = Graph::new();
        let src = g.add(ToneGen::new(8000, 440.0, 0.0, 1000));
        let pass = g.add(Pass { fail_at: Some(2) });
        g.chain(&[src, pass]).unwrap();
        g.tick(Duration::ZERO, &NoClock).unwrap();
        g.tick(TICK, &NoClock).unwrap();
        let err = g.tick(TICK * 2, &NoClock).unwrap_err();
        assert!(matches!(err, GraphError::FilterFailed { node, name: "pass", .. } if node == pass));
        assert!(matches!(g.tick(TICK * 3, &NoClock), Err(GraphError::Failed)));
    }

    #[test]
    fn usage_table_reports_counts_times_and_shares() {
        let mut g = Graph::new();
        let src = g.add(ToneGen::new(8000, 440.0, 0.0, 1000));
        let sink = g.add(VoidSink::new());
        g.chain(&[src, sink]).unwrap();
        let clock = StepClock(std::cell::Cell::new(0));
        for i in 0..4 {
            g.tick(TICK * i, &clock).unwrap();
        }
        let table = g.usage();
        assert_eq!(table.rows.len(), 2);
        for r in &table.rows {
            assert_eq!(r.stats.count, 4);
            assert_eq!(r.stats.mean_ns(), 1000.0);
            assert_eq!(r.stats.max_ns, 1000);
            assert_eq!(r.share_percent, 50.0);
        }
        let text = table.to_string();
        assert!(text.contains("FILTER USAGE STATISTICS"), "{text}");
        assert!(
            text.lines().any(|l| l.starts_with("tone_gen") && l.contains(" 4 ") && l.contains("0.0010000")),
            "{text}"
        );
    }

    #[test]
    fn removing_a_node_drops_its_links_and_queued_frames() {
        let mut g = Graph::new();
        let src = g.add(ToneGen::new(8000, 440.0, 0.0, 1000));
        let pass = g.add(Pass { fail_at: None });
        g.chain(&[src, pass]).unwrap();
        g.tick(Duration::ZERO, &NoClock).unwrap();
        g.remove(pass).unwrap();
        assert_eq!(g.schedule(), &[src]);
        assert_eq!(g.queued_frames(), 0);
        assert!(g.filter::<Pass>(pass).is_none());
    }

    #[test]
    fn a_removed_nodes_usage_stays_in_the_table() {
        let mut g = Graph::new();
        let src = g.add(ToneGen::new(8000, 440.0, 0.0, 1000));
        let pass = g.add(Pass { fail_at: None });
        g.chain(&[src, pass]).unwrap();
        g.tick(Duration::ZERO, &NoClock).unwrap();
        g.remove(pass).unwrap();
        let count =
            |g: &Graph| g.usage().rows.iter().filter(|r| r.name == "pass").map(|r| r.stats.count).collect::<Vec<_>>();
        assert_eq!(count(&g), vec![1], "its own row while no live node has its name");
        // A new node of the same name takes the old one's runs into its row.
        let again = g.add(Pass { fail_at: None });
        g.chain(&[src, again]).unwrap();
        g.tick(TICK, &NoClock).unwrap();
        assert_eq!(count(&g), vec![2]);
    }
}
