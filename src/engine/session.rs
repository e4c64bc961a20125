//! Planning (input shapes fixed, shapes inferred, constant subgraphs folded, one [`Op`] built
//! per node) and execution with intermediate-tensor capture. Buffers are dropped after
//! their last consumer, so peak memory follows the live tensors, not the graph size.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::error::{EngineError, Result};
use super::fuse::{ElementwiseChain, StepView, find_fusions};
use super::registry::{BuildContext, Op, Registry};
use super::tensor::Tensor;
use crate::onnx::graph::Graph;
use crate::onnx::proto::{ModelProto, TensorProto, type_proto};
use crate::onnx::shapes::{MAX_KNOWN_ELEMENTS, infer_shapes};
use crate::onnx::{DataType, node_label};

/// A graph input as the session expects it.
#[derive(Debug, Clone)]
pub struct InputSpec {
    pub name: String,
    pub dtype: DataType,
    /// Fixed by `--input_shape` or the model; None where a dimension stayed dynamic.
    pub shape: Option<Vec<usize>>,
}

/// Per-run choices that change how values are computed (not what is computed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Round every float32 output of every executed op to the nearest float16 and widen it
    /// back to float32, emulating a device that computes and stores activations in fp16.
    /// Graph inputs and planning-time constants are left as given.
    pub round_outputs_to_f16: bool,
}

/// Which plan a run takes and how far: the unfused one (every value exists), and only up to
/// the last observed value ([`Session::observe_prefix`]).
#[derive(Debug, Clone, Copy, Default)]
struct Extent {
    unfused: bool,
    prefix_only: bool,
}

#[derive(Debug, Clone)]
struct Step {
    label: String,
    op_type: String,
    op: Arc<dyn Op>,
    /// The node's index in the graph and its domain's opset.
    node: usize,
    opset: i64,
    inputs: Vec<Option<usize>>,
    outputs: Vec<usize>,
    /// Values whose last consumer is this step: dropped right after it runs.
    frees: Vec<usize>,
}

impl Step {
    /// Runs the op on the values `value(id)` gives for its inputs; errors name the node.
    fn run<'a>(&self, value: impl Fn(usize) -> Option<&'a Tensor>) -> Result<Vec<Tensor>> {
        let args: Vec<Option<&Tensor>> = self.inputs.iter().map(|id| id.and_then(&value)).collect();
        let node_err = |detail| EngineError::Node { node: self.label.clone(), op_type: self.op_type.clone(), detail };
        let results = self.op.run(&args).map_err(|e| node_err(e.0))?;
        if results.len() < self.outputs.len() {
            return Err(node_err(format!("produced {} outputs, the graph expects {}", results.len(), self.outputs.len())));
        }
        Ok(results)
    }
}

/// A planned model, ready to run many times (it is `Send + Sync`).
#[derive(Debug)]
pub struct Session {
    names: Vec<String>,
    ids: HashMap<String, usize>,
    constants: Vec<(usize, Arc<Tensor>)>,
    inputs: Vec<(InputSpec, usize)>,
    outputs: Vec<(String, usize)>,
    steps: Vec<Step>,
    /// The same plan with element-wise tails fused into convolutions ([`super::fuse`]);
    /// empty when nothing fused.
    fused: Vec<Step>,
    /// Values the fused plan never computes: a run observing one of them takes `steps`.
    hidden: HashSet<String>,
}

impl Session {
    /// Plans `model` with all registered ops. `input_shapes` fixes dynamic inputs
    /// (names must be graph inputs).
    pub fn new(model: &ModelProto, input_shapes: &HashMap<String, Vec<i64>>) -> Result<Session> {
        Session::with_registry(model, input_shapes, &Registry::with_all_ops())
    }

    pub fn with_registry(model: &ModelProto, input_shapes: &HashMap<String, Vec<i64>>, registry: &Registry) -> Result<Session> {
        Session::build(model, input_shapes, registry, HashMap::new())
    }

    /// [`Self::new`] for a model the caller is done with: each large initializer (more
    /// elements than shape inference reads) is converted and dropped in turn, so that its
    /// data is not held twice while the session is planned (YOLOX's fake-quant model: 20 MB).
    pub fn from_model(mut model: ModelProto, input_shapes: &HashMap<String, Vec<i64>>) -> Result<Session> {
        let mut large = HashMap::new();
        for init in model.graph.iter_mut().flat_map(|g| g.initializer.iter_mut()) {
            let elements = crate::onnx::tensor::element_count(init.name(), &init.dims).unwrap_or(0);
            if elements > MAX_KNOWN_ELEMENTS && !large.contains_key(init.name()) {
                let stub =
                    TensorProto { name: init.name.clone(), dims: init.dims.clone(), data_type: init.data_type, ..Default::default() };
                large.insert(init.name().to_string(), std::mem::replace(init, stub));
            }
        }
        Session::build(&model, input_shapes, &Registry::with_all_ops(), large)
    }

    /// [`Self::new`] for a model holding stubs (name, type and dims) of the initializers in
    /// `initializers`, which are planned from there and dropped one by one.
    pub fn with_initializers(
        model: &ModelProto,
        input_shapes: &HashMap<String, Vec<i64>>,
        initializers: HashMap<String, TensorProto>,
    ) -> Result<Session> {
        Session::build(model, input_shapes, &Registry::with_all_ops(), initializers)
    }

    /// Plans `model`; the initializers named in `large` are taken from there (the model holds
    /// stubs of them: name, type and dims).
    fn build(
        model: &ModelProto,
        input_shapes: &HashMap<String, Vec<i64>>,
        registry: &Registry,
        mut large: HashMap<String, TensorProto>,
    ) -> Result<Session> {
        let graph_proto =
            model.graph.as_ref().ok_or_else(|| EngineError::Input { name: "<model>".into(), detail: "the model has no graph".into() })?;
        let graph = Graph::new(graph_proto)?;
        let inferred = infer_shapes(model, input_shapes)?;
        let static_shape =
            |name: &str| -> Option<Vec<usize>> { inferred.shapes.get(name).map(|s| s.iter().map(|&d| d.max(0) as usize).collect()) };
        let opsets: HashMap<&str, i64> =
            model.opset_import.iter().map(|o| (if o.domain() == "ai.onnx" { "" } else { o.domain() }, o.version())).collect();

        let mut plan = Planner::default();
        for init in &graph_proto.initializer {
            let t = match large.remove(init.name()) {
                Some(full) => crate::onnx::Tensor::from_proto(&full)?,
                None => crate::onnx::Tensor::from_proto(init)?,
            };
            plan.add_constant(init.name(), Arc::new(Tensor::from_onnx(&t, init.name())?));
        }
        let mut inputs = Vec::new();
        for v in graph.real_inputs() {
            let dtype = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                Some(type_proto::Value::TensorType(t)) => DataType::try_from(t.elem_type()).unwrap_or(DataType::Undefined),
                _ => DataType::Undefined,
            };
            let spec = InputSpec { name: v.name().to_string(), dtype, shape: static_shape(v.name()) };
            let id = plan.id(v.name());
            inputs.push((spec, id));
        }

        // Readers of each initializer not built yet, and the values some built node reads
        // (a step at run time, or a folded node): an initializer that all its readers
        // captured in another form (a conv's packed weights) is freed as soon as the last of
        // them is built, so that a session does not hold every weight twice while it plans
        // (YOLOX: 20 MB).
        let output_names: HashSet<&str> = graph_proto.output.iter().map(|o| o.name()).collect();
        let mut readers_left: HashMap<usize, usize> = HashMap::new();
        for n in graph_proto.node.iter().flat_map(|n| &n.input) {
            if let Some(&id) = plan.ids.get(n.as_str())
                && plan.constants[id].is_some()
                && !output_names.contains(n.as_str())
            {
                *readers_left.entry(id).or_default() += 1;
            }
        }
        let mut read_by_nodes = vec![false; plan.names.len()];

        for index in graph.topological_order()? {
            let node = &graph_proto.node[index];
            let label = node_label(node, index);
            let domain = if node.domain() == "ai.onnx" { "" } else { node.domain() };
            let opset = opsets.get(domain).copied().unwrap_or(0);
            let builder = registry.get(domain, node.op_type()).ok_or_else(|| EngineError::UnsupportedOp {
                node: label.clone(),
                op_type: node.op_type().to_string(),
                domain: domain.to_string(),
                opset,
            })?;
            let node_err = |detail: String| EngineError::Node { node: label.clone(), op_type: node.op_type().to_string(), detail };
            let input_ids: Vec<Option<usize>> = node.input.iter().map(|n| (!n.is_empty()).then(|| plan.id(n))).collect();
            let ctx = BuildContext {
                node,
                opset,
                constants: input_ids.iter().map(|id| id.and_then(|id| plan.constant(id))).collect(),
                input_shapes: node.input.iter().map(|n| static_shape(n)).collect(),
                input_producers: node.input.iter().map(|n| graph.producer(n).map(|p| &graph_proto.node[p])).collect(),
            };
            let op = builder(&ctx).map_err(|e| node_err(e.0))?;
            let output_ids: Vec<usize> = node.output.iter().map(|n| plan.id(n)).collect();

            let all_constant = input_ids.iter().flatten().all(|&id| plan.constant(id).is_some());
            let folded = all_constant && !is_nondeterministic(node.op_type());
            if folded {
                // Fold: run once now and keep the results as constants.
                let args: Vec<Option<&Tensor>> = ctx.constants.iter().map(|c| c.as_deref()).collect();
                let results = op.run(&args).map_err(|e| node_err(e.0))?;
                for (&id, t) in output_ids.iter().zip(results) {
                    plan.set_constant(id, Arc::new(t));
                }
            }
            drop(ctx);
            read_by_nodes.resize(plan.names.len(), false);
            for (k, id) in input_ids.iter().enumerate() {
                let Some(id) = *id else { continue };
                if folded || op.reads_input(k) {
                    read_by_nodes[id] = true;
                }
                if let Some(left) = readers_left.get_mut(&id) {
                    *left -= 1;
                    if *left == 0 && !read_by_nodes[id] {
                        plan.constants[id] = None;
                    }
                }
            }
            if folded {
                continue;
            }
            plan.steps.push(Step {
                label,
                op_type: node.op_type().to_string(),
                op: Arc::from(op),
                node: index,
                opset,
                inputs: input_ids,
                outputs: output_ids,
                frees: Vec::new(),
            });
        }

        let outputs: Vec<(String, usize)> = graph_proto.output.iter().map(|o| (o.name().to_string(), plan.id(o.name()))).collect();
        assign_frees(&mut plan.steps, &plan.constants, &outputs);
        let (fused, hidden) = if fusion_enabled() {
            fuse_plan(&plan, &graph_proto.node, &|id| static_shape(&plan.names[id]), &outputs)
        } else {
            (Vec::new(), HashSet::new())
        };
        let Planner { names, ids, constants, steps } = plan;
        // Constants no node reads (weights a conv packed, initializers nothing reads) are
        // dropped: memory, not values. A value folding read stays (it may be observed). The
        // unfused steps were counted as they were built; the fused plan's are checked here.
        let mut read = read_by_nodes;
        read.resize(names.len(), false);
        for step in &fused {
            for (k, id) in step.inputs.iter().enumerate() {
                if let Some(id) = *id
                    && step.op.reads_input(k)
                {
                    read[id] = true;
                }
            }
        }
        for (_, id) in &outputs {
            read[*id] = true;
        }
        let constants = constants.into_iter().enumerate().filter_map(|(id, c)| c.filter(|_| read[id]).map(|c| (id, c))).collect();
        Ok(Session { names, ids, constants, inputs, outputs, steps, fused, hidden })
    }

    /// Number of executed steps of the fused plan (equal to [`Self::step_count`] when
    /// nothing fused).
    pub fn fused_step_count(&self) -> usize {
        if self.fused.is_empty() { self.steps.len() } else { self.fused.len() }
    }

    /// Runs the model without the plan-time fusions, one op per node (for checking that
    /// the fused plan gives the same outputs).
    pub fn run_unfused(&self, inputs: HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>> {
        self.execute(inputs, &HashSet::new(), &mut |_, _| {}, None, &RunOptions::default(), Extent { unfused: true, prefix_only: false })
    }

    /// The plan a run takes: the fused one unless the run needs a value it hides, or rounds
    /// each op's output to fp16 (the fused ops would round once per conv).
    fn plan_for(&self, observe: &HashSet<String>, options: &RunOptions, unfused: bool) -> &[Step] {
        if self.fused.is_empty() || unfused || options.round_outputs_to_f16 || observe.iter().any(|n| self.hidden.contains(n)) {
            &self.steps
        } else {
            &self.fused
        }
    }

    pub fn inputs(&self) -> impl Iterator<Item = &InputSpec> {
        self.inputs.iter().map(|(spec, _)| spec)
    }

    pub fn output_names(&self) -> impl Iterator<Item = &str> {
        self.outputs.iter().map(|(n, _)| n.as_str())
    }

    /// Number of nodes left to execute after constant folding.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// Op types of the executed nodes, for reporting.
    pub fn step_op_types(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|s| s.op_type.as_str())
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.ids.contains_key(name)
    }

    pub fn run(&self, inputs: HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>> {
        self.run_observed(inputs, &HashSet::new(), &mut |_, _| {})
    }

    /// Runs the model with [`RunOptions`].
    pub fn run_with(&self, inputs: HashMap<String, Tensor>, options: &RunOptions) -> Result<Vec<(String, Tensor)>> {
        self.execute(inputs, &HashSet::new(), &mut |_, _| {}, None, options, Extent::default())
    }

    /// Runs the model; every tensor named in `observe` is passed to `callback` as soon as
    /// it is computed (graph inputs and constants first).
    pub fn run_observed(
        &self,
        inputs: HashMap<String, Tensor>,
        observe: &HashSet<String>,
        callback: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<Vec<(String, Tensor)>> {
        self.execute(inputs, observe, callback, None, &RunOptions::default(), Extent::default())
    }

    /// [`Self::run_observed`] that stops as soon as every tensor of `observe` the model has
    /// was passed to `callback`: the steps after the last of them do not run, and no output
    /// is returned.
    pub fn observe_prefix(
        &self,
        inputs: HashMap<String, Tensor>,
        observe: &HashSet<String>,
        callback: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<()> {
        self.execute(inputs, observe, callback, None, &RunOptions::default(), Extent { unfused: false, prefix_only: true }).map(drop)
    }

    /// Computes the value `want` from `given` values (any values of the model, not only graph
    /// inputs) and the constants, running only the steps on the way. It takes the unfused
    /// plan, in which every value exists (same bits as the fused one). For re-running a part
    /// of a model on other data with the session's own weights.
    pub fn run_part(&self, given: &[(&str, &Tensor)], want: &str) -> Result<Tensor> {
        let id_of = |name: &str| {
            self.ids
                .get(name)
                .copied()
                .ok_or_else(|| EngineError::Input { name: name.to_string(), detail: "is not a value of the model".into() })
        };
        let mut known: Vec<Option<&Tensor>> = vec![None; self.names.len()];
        for (id, c) in &self.constants {
            known[*id] = Some(c.as_ref());
        }
        for &(name, t) in given {
            known[id_of(name)?] = Some(t);
        }
        let want_id = id_of(want)?;
        if let Some(t) = known[want_id] {
            return Ok(t.clone());
        }
        // Backwards from `want`: the steps producing a needed value not known.
        let mut needed = vec![false; self.names.len()];
        needed[want_id] = true;
        let mut to_run = Vec::new();
        for (i, step) in self.steps.iter().enumerate().rev() {
            if step.outputs.iter().any(|&o| needed[o]) {
                to_run.push(i);
                for &id in step.inputs.iter().flatten() {
                    if known[id].is_none() {
                        needed[id] = true;
                    }
                }
            }
        }
        to_run.reverse();
        if let Some((spec, _)) = self.inputs.iter().find(|(_, id)| needed[*id]) {
            return Err(EngineError::Input { name: spec.name.clone(), detail: format!("is needed for '{want}' but was not given") });
        }
        let mut last_use: HashMap<usize, usize> = HashMap::new();
        for &i in &to_run {
            for &id in self.steps[i].inputs.iter().flatten() {
                last_use.insert(id, i);
            }
        }
        let mut computed: Vec<Option<Tensor>> = vec![None; self.names.len()];
        for &i in &to_run {
            if super::cancel::cancelled() {
                return Err(EngineError::Cancelled);
            }
            let step = &self.steps[i];
            let results = step.run(|id| known[id].or(computed[id].as_ref()))?;
            for (&id, t) in step.outputs.iter().zip(results) {
                computed[id] = Some(t);
            }
            for &id in step.inputs.iter().flatten() {
                if id != want_id && last_use.get(&id) == Some(&i) {
                    computed[id] = None;
                }
            }
        }
        computed[want_id]
            .take()
            .ok_or_else(|| EngineError::Input { name: want.to_string(), detail: "was never computed (no step produces it)".into() })
    }

    /// Runs once and returns, with the outputs, the wall time of every executed node as
    /// (node, op type, milliseconds) in execution order.
    #[allow(clippy::type_complexity)]
    pub fn run_profiled(&self, inputs: HashMap<String, Tensor>) -> Result<(Vec<(String, Tensor)>, Vec<(String, String, f64)>)> {
        let mut times = Vec::with_capacity(self.steps.len());
        let outputs = self.execute(inputs, &HashSet::new(), &mut |_, _| {}, Some(&mut times), &RunOptions::default(), Extent::default())?;
        let steps = self.plan_for(&HashSet::new(), &RunOptions::default(), false);
        let profile = steps.iter().zip(times).map(|(s, t)| (s.label.clone(), s.op_type.clone(), t)).collect();
        Ok((outputs, profile))
    }

    fn execute(
        &self,
        mut inputs: HashMap<String, Tensor>,
        observe: &HashSet<String>,
        callback: &mut dyn FnMut(&str, &Tensor),
        mut step_times: Option<&mut Vec<f64>>,
        options: &RunOptions,
        Extent { unfused, prefix_only }: Extent,
    ) -> Result<Vec<(String, Tensor)>> {
        if let Some(unknown) = inputs.keys().find(|k| !self.inputs.iter().any(|(s, _)| &s.name == *k)) {
            let known: Vec<&str> = self.inputs.iter().map(|(s, _)| s.name.as_str()).collect();
            return Err(EngineError::Input { name: unknown.clone(), detail: format!("is not a model input (inputs: {known:?})") });
        }
        let mut env: Vec<Option<Arc<Tensor>>> = vec![None; self.names.len()];
        for (id, c) in &self.constants {
            env[*id] = Some(Arc::clone(c));
        }
        for (spec, id) in &self.inputs {
            let t = inputs
                .remove(&spec.name)
                .ok_or_else(|| EngineError::Input { name: spec.name.clone(), detail: "is required but was not given".into() })?;
            check_input(spec, &t)?;
            env[*id] = Some(Arc::new(t));
        }
        // Observed values not passed to `callback` yet (`prefix_only` stops at none).
        let mut unseen = observe.iter().filter(|n| self.ids.contains_key(*n)).count();
        for (id, slot) in env.iter().enumerate() {
            if let Some(t) = slot
                && observe.contains(&self.names[id])
            {
                callback(&self.names[id], t);
                unseen = unseen.saturating_sub(1);
            }
        }
        for step in self.plan_for(observe, options, unfused) {
            if prefix_only && unseen == 0 {
                return Ok(Vec::new());
            }
            if super::cancel::cancelled() {
                return Err(EngineError::Cancelled);
            }
            let started = std::time::Instant::now();
            let results = step.run(|id| env[id].as_deref())?;
            for (&id, mut t) in step.outputs.iter().zip(results) {
                if options.round_outputs_to_f16 {
                    super::fp16::round_tensor_to_f16(&mut t);
                }
                if observe.contains(&self.names[id]) {
                    callback(&self.names[id], &t);
                    unseen = unseen.saturating_sub(1);
                }
                env[id] = Some(Arc::new(t));
            }
            for &id in &step.frees {
                env[id] = None;
            }
            if let Some(times) = step_times.as_deref_mut() {
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
        if prefix_only {
            return Ok(Vec::new());
        }
        self.outputs
            .iter()
            .map(|(name, id)| {
                let t = env[*id]
                    .take()
                    .ok_or_else(|| EngineError::Input { name: name.clone(), detail: "graph output was never computed".into() })?;
                Ok((name.clone(), Arc::try_unwrap(t).unwrap_or_else(|shared| (*shared).clone())))
            })
            .collect()
    }
}

fn check_input(spec: &InputSpec, t: &Tensor) -> Result<()> {
    if spec.dtype != DataType::Undefined && t.dtype() != spec.dtype {
        return Err(EngineError::Input {
            name: spec.name.clone(),
            detail: format!("is {}, the model expects {}", t.dtype_name(), spec.dtype.as_str_name().to_ascii_lowercase()),
        });
    }
    if let Some(shape) = &spec.shape
        && t.shape() != shape.as_slice()
    {
        return Err(EngineError::Input {
            name: spec.name.clone(),
            detail: format!("has shape {:?}, the planned shape is {shape:?}", t.shape()),
        });
    }
    Ok(())
}

fn is_nondeterministic(op_type: &str) -> bool {
    matches!(op_type, "RandomNormal" | "RandomUniform" | "RandomNormalLike" | "RandomUniformLike" | "Multinomial" | "Bernoulli")
}

#[derive(Default)]
struct Planner {
    names: Vec<String>,
    ids: HashMap<String, usize>,
    constants: Vec<Option<Arc<Tensor>>>,
    steps: Vec<Step>,
}

impl Planner {
    fn id(&mut self, name: &str) -> usize {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len();
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        self.constants.push(None);
        id
    }

    fn add_constant(&mut self, name: &str, t: Arc<Tensor>) {
        let id = self.id(name);
        self.constants[id] = Some(t);
    }

    fn set_constant(&mut self, id: usize, t: Arc<Tensor>) {
        self.constants[id] = Some(t);
    }

    fn constant(&self, id: usize) -> Option<Arc<Tensor>> {
        self.constants.get(id).and_then(|c| c.clone())
    }
}

/// Marks, for every computed value, the step after which nothing reads it.
fn assign_frees(steps: &mut [Step], constants: &[Option<Arc<Tensor>>], outputs: &[(String, usize)]) {
    let keep: HashSet<usize> = outputs.iter().map(|(_, id)| *id).collect();
    let mut last_use: HashMap<usize, usize> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        for &id in step.inputs.iter().flatten() {
            last_use.insert(id, i);
        }
        // A value nobody reads is freed right after it is produced.
        for &id in &step.outputs {
            last_use.entry(id).or_insert(i);
        }
    }
    for (id, step) in last_use {
        if !keep.contains(&id) && constants[id].is_none() {
            steps[step].frees.push(id);
        }
    }
}

/// Plan-time fusion is on unless `APTQ_FUSE=0` (for measuring what it gains).
fn fusion_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("APTQ_FUSE").map_or(true, |v| v != "0"))
}

/// The fused plan of `plan` ([`super::fuse`]) and the names of the values it hides; an
/// empty plan when nothing fuses.
fn fuse_plan(
    plan: &Planner,
    nodes: &[crate::onnx::NodeProto],
    shape: &dyn Fn(usize) -> Option<Vec<usize>>,
    outputs: &[(String, usize)],
) -> (Vec<Step>, HashSet<String>) {
    let keep: HashSet<usize> = outputs.iter().map(|(_, id)| *id).collect();
    let views: Vec<StepView> = plan
        .steps
        .iter()
        .map(|s| StepView { node: &nodes[s.node], op: &*s.op, opset: s.opset, inputs: &s.inputs, outputs: &s.outputs })
        .collect();
    let fusions = find_fusions(&views, &|id| plan.constant(id), shape, &keep);
    let mut replaced: HashMap<usize, Step> = HashMap::new();
    let mut removed: HashSet<usize> = HashSet::new();
    let mut hidden = HashSet::new();
    for f in fusions {
        let conv = &plan.steps[f.conv];
        let (op, inputs): (Arc<dyn Op>, _) = match f.head_input {
            Some(x) => (Arc::new(ElementwiseChain::new(f.epilogue)), vec![Some(x)]),
            None => match conv.op.with_epilogue(Arc::new(f.epilogue), f.quantizer) {
                Some(op) => (Arc::from(op), conv.inputs.clone()),
                None => continue,
            },
        };
        let tail: Vec<&str> = f.absorbed.iter().map(|&i| plan.steps[i].op_type.as_str()).collect();
        replaced.insert(
            f.conv,
            Step {
                label: format!("{} (+ {})", conv.label, tail.join(", ")),
                op,
                inputs,
                outputs: vec![f.output],
                frees: Vec::new(),
                ..conv.clone()
            },
        );
        removed.extend(f.absorbed);
        hidden.extend(f.hidden.iter().map(|&id| plan.names[id].clone()));
    }
    if replaced.is_empty() {
        return (Vec::new(), HashSet::new());
    }
    let mut fused: Vec<Step> = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(i, _)| !removed.contains(i))
        .map(|(i, s)| replaced.remove(&i).unwrap_or_else(|| Step { frees: Vec::new(), ..s.clone() }))
        .collect();
    assign_frees(&mut fused, &plan.constants, outputs);
    (fused, hidden)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::error::OpResult;
    use crate::engine::registry::input_f32;
    use crate::onnx::build::float_value_info as value;
    use crate::onnx::proto::{GraphProto, NodeProto, OperatorSetIdProto};
    use ndarray::{ArrayD, IxDyn};

    /// Test op: y = 2x.
    #[derive(Debug)]
    struct Double;
    impl Op for Double {
        fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
            Ok(vec![Tensor::F32(input_f32(inputs, 0)?.mapv(|v| v * 2.0))])
        }
    }

    /// Test op: y = x / 3 (results are rarely representable in fp16).
    #[derive(Debug)]
    struct Third;
    impl Op for Third {
        fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
            Ok(vec![Tensor::F32(input_f32(inputs, 0)?.mapv(|v| v / 3.0))])
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::default();
        r.register("Double", |_| Ok(Box::new(Double)));
        r.register("Third", |_| Ok(Box::new(Third)));
        r
    }

    fn node(name: &str, op: &str, input: &str, output: &str) -> NodeProto {
        NodeProto {
            name: Some(name.into()),
            op_type: Some(op.into()),
            input: vec![input.into()],
            output: vec![output.into()],
            ..Default::default()
        }
    }

    /// x → a → b → y, with x dynamic in its first dim.
    fn chain(op: &str) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: vec![node("n1", "Double", "x", "a"), node("n2", op, "a", "b"), node("n3", "Double", "b", "y")],
                input: vec![value("x", &[-1, 2])],
                output: vec![value("y", &[-1, 2])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A model of `graph` at IR 8, default-domain opset 13.
    fn opset13(graph: GraphProto) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
            graph: Some(graph),
            ..Default::default()
        }
    }

    fn x(n: usize) -> Tensor {
        Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[n, 2]), (0..n * 2).map(|v| v as f32).collect()).unwrap())
    }

    #[test]
    fn runs_captures_and_frees() {
        let shapes = HashMap::from([("x".to_string(), vec![3, 2])]);
        let s = Session::with_registry(&chain("Double"), &shapes, &registry()).unwrap();
        assert_eq!(s.inputs().next().unwrap().shape, Some(vec![3, 2]));
        // Intermediates die after their last consumer; y (a graph output) is kept.
        assert_eq!(s.steps[0].frees, vec![0], "x is freed after n1");
        assert_eq!(s.steps[1].frees, vec![s.ids["a"]]);
        assert_eq!(s.steps[2].frees, vec![s.ids["b"]]);

        let observe: HashSet<String> = ["a".to_string(), "x".to_string()].into();
        let mut seen = Vec::new();
        let out = s
            .run_observed(HashMap::from([("x".to_string(), x(3))]), &observe, &mut |n, t| seen.push((n.to_string(), t.to_f64_vec()[1])))
            .unwrap();
        assert_eq!(seen, vec![("x".to_string(), 1.0), ("a".to_string(), 2.0)]);
        assert_eq!(out[0].0, "y");
        assert_eq!(out[0].1.to_f64_vec(), vec![0.0, 8.0, 16.0, 24.0, 32.0, 40.0]);
    }

    #[test]
    fn input_errors_name_the_input() {
        let shapes = HashMap::from([("x".to_string(), vec![3, 2])]);
        let s = Session::with_registry(&chain("Double"), &shapes, &registry()).unwrap();
        let e = s.run(HashMap::new()).unwrap_err().to_string();
        assert_eq!(e, "input 'x': is required but was not given");
        let e = s.run(HashMap::from([("x".into(), x(3)), ("z".into(), x(1))])).unwrap_err().to_string();
        assert!(e.starts_with("input 'z': is not a model input"), "{e}");
        let e = s.run(HashMap::from([("x".into(), x(2))])).unwrap_err().to_string();
        assert_eq!(e, "input 'x': has shape [2, 2], the planned shape is [3, 2]");
        let ints = Tensor::I64(ArrayD::zeros(IxDyn(&[3, 2])));
        let e = s.run(HashMap::from([("x".into(), ints)])).unwrap_err().to_string();
        assert_eq!(e, "input 'x': is int64, the model expects float");
    }

    #[test]
    fn run_part_runs_only_the_steps_between_given_and_wanted_values() {
        let shapes = HashMap::from([("x".to_string(), vec![3, 2])]);
        let s = Session::with_registry(&chain("Third"), &shapes, &registry()).unwrap();
        // a = 2x, b = a / 3, y = 2b: from a given `a`, b and y follow without x.
        let a = x(3);
        let b = s.run_part(&[("a", &a)], "b").unwrap();
        assert_eq!(b.to_f64_vec(), a.to_f64_vec().iter().map(|v| (*v as f32 / 3.0) as f64).collect::<Vec<_>>());
        let y = s.run_part(&[("a", &a)], "y").unwrap();
        assert_eq!(y.to_f64_vec(), b.to_f64_vec().iter().map(|v| v * 2.0).collect::<Vec<_>>());
        // The same as a whole run from x = a / 2.
        let half = Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[3, 2]), a.to_f64_vec().iter().map(|v| *v as f32 / 2.0).collect()).unwrap());
        assert_eq!(s.run(HashMap::from([("x".to_string(), half)])).unwrap()[0].1, y);
        // A given value is returned as is; missing or unknown values are named.
        assert_eq!(s.run_part(&[("b", &a)], "b").unwrap(), a);
        assert_eq!(s.run_part(&[], "b").unwrap_err().to_string(), "input 'x': is needed for 'b' but was not given");
        assert_eq!(s.run_part(&[("q", &a)], "b").unwrap_err().to_string(), "input 'q': is not a value of the model");
    }

    #[test]
    fn observe_prefix_stops_after_the_last_observed_value() {
        /// Test op that fails when it runs.
        #[derive(Debug)]
        struct Boom;
        impl Op for Boom {
            fn run(&self, _: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
                Err(crate::engine::error::OpError("ran".into()))
            }
        }
        let mut r = registry();
        r.register("Boom", |_| Ok(Box::new(Boom)));
        let shapes = HashMap::from([("x".to_string(), vec![3, 2])]);
        let s = Session::with_registry(&chain("Boom"), &shapes, &r).unwrap();
        let input = || HashMap::from([("x".to_string(), x(3))]);
        let mut seen = Vec::new();
        // `a` comes before the failing step n2: it is observed and n2 never runs.
        let observe = HashSet::from(["a".to_string(), "not a value".to_string()]);
        s.observe_prefix(input(), &observe, &mut |name, t| seen.push((name.to_string(), t.to_f64_vec()))).unwrap();
        assert_eq!(seen, vec![("a".to_string(), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0])]);
        // A whole run, or a prefix up to `b`, runs n2.
        let e = s.run_observed(input(), &observe, &mut |_, _| {}).unwrap_err().to_string();
        assert!(e.contains("n2") && e.contains("ran"), "{e}");
        let to_b = HashSet::from(["a".to_string(), "b".to_string()]);
        assert!(s.observe_prefix(input(), &to_b, &mut |_, _| {}).is_err());
        // Observing only a graph input runs no step at all.
        s.observe_prefix(input(), &HashSet::from(["x".to_string()]), &mut |_, _| {}).unwrap();
    }

    #[test]
    fn constants_no_step_reads_are_not_kept() {
        use crate::onnx::build::{attr_ints, node as op_node};
        use crate::onnx::{Tensor as OnnxTensor, TensorData};
        // y = Conv(x, w, b) + c; w is packed by the conv (on a CPU with the panel kernel),
        // `unused` is read by no node, `two` only by a Mul that folds to `c` (kept).
        let (ci, co) = (4usize, 8usize);
        let w: Vec<f32> = (0..co * ci * 9).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.1).collect();
        let init = |name: &str, dims: Vec<i64>, v: Vec<f32>| OnnxTensor::new(dims, TensorData::F32(v)).to_proto(name);
        let graph = GraphProto {
            name: Some("g".into()),
            node: vec![
                op_node("Mul", "fold", &["two", "two"], &["c"], vec![]),
                op_node("Conv", "conv", &["x", "w", "b"], &["h"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
                op_node("Add", "add", &["h", "c"], &["y"], vec![]),
            ],
            initializer: vec![
                init("w", vec![co as i64, ci as i64, 3, 3], w.clone()),
                init("b", vec![co as i64], (0..co).map(|i| i as f32).collect()),
                init("two", vec![1], vec![2.0]),
                init("unused", vec![3], vec![1.0; 3]),
            ],
            input: vec![value("x", &[1, ci as i64, 5, 5])],
            output: vec![value("y", &[1, co as i64, 5, 5])],
            ..Default::default()
        };
        let model = opset13(graph);
        let s = Session::new(&model, &HashMap::new()).unwrap();
        let held: HashSet<&str> = s.constants.iter().map(|(id, _)| s.names[*id].as_str()).collect();
        assert!(held.contains("b") && held.contains("c") && held.contains("two"), "{held:?}");
        assert!(!held.contains("unused"), "{held:?}");
        let packed = crate::engine::kernels::conv::pack_conv_weights(&w, ci, co, 1, 9).is_some();
        assert_eq!(held.contains("w"), !packed, "{held:?}");
        // The direct definition of y.
        let xs: Vec<f32> = (0..ci * 25).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.25).collect();
        let mut want = vec![0f32; co * 25];
        for (o, plane) in want.chunks_mut(25).enumerate() {
            for (p, v) in plane.iter_mut().enumerate() {
                let (py, px) = (p / 5, p % 5);
                let mut acc = 0f64;
                for c in 0..ci {
                    for (ky, kx) in (0..3).flat_map(|a| (0..3).map(move |b| (a, b))) {
                        let (yy, xx) = ((py + ky) as isize - 1, (px + kx) as isize - 1);
                        if (0..5).contains(&yy) && (0..5).contains(&xx) {
                            acc += (w[((o * ci + c) * 3 + ky) * 3 + kx] * xs[c * 25 + yy as usize * 5 + xx as usize]) as f64;
                        }
                    }
                }
                *v = (acc + o as f64) as f32 + 4.0;
            }
        }
        let input = HashMap::from([("x".to_string(), Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[1, ci, 5, 5]), xs).unwrap()))]);
        for y in [s.run(input.clone()).unwrap(), s.run_unfused(input).unwrap()] {
            let got = y[0].1.to_f64_vec();
            assert!(got.iter().zip(&want).all(|(g, w)| (g - *w as f64).abs() < 1e-4), "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn a_session_from_an_owned_model_equals_one_from_a_borrowed_model() {
        use crate::onnx::build::{attr_ints, node as op_node};
        use crate::onnx::{Tensor as OnnxTensor, TensorData};
        // A weight large enough to be taken out of the model (4608 elements), and a small
        // shape initializer that shape inference reads (Reshape's target).
        let (ci, co) = (16usize, 32usize);
        assert!(co * ci * 9 > MAX_KNOWN_ELEMENTS);
        let w: Vec<f32> = (0..co * ci * 9).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.01).collect();
        let graph = GraphProto {
            name: Some("g".into()),
            node: vec![
                op_node("Conv", "conv", &["x", "w"], &["h"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
                op_node("Reshape", "flat", &["h", "shape"], &["y"], vec![]),
            ],
            initializer: vec![
                OnnxTensor::new(vec![co as i64, ci as i64, 3, 3], TensorData::F32(w)).to_proto("w"),
                OnnxTensor::new(vec![2], TensorData::I64(vec![co as i64, -1])).to_proto("shape"),
            ],
            input: vec![value("x", &[1, ci as i64, 6, 6])],
            output: vec![value("y", &[co as i64, 36])],
            ..Default::default()
        };
        let model = opset13(graph);
        let xs: Vec<f32> = (0..ci * 36).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.25).collect();
        let input = HashMap::from([("x".to_string(), Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[1, ci, 6, 6]), xs).unwrap()))]);
        let borrowed = Session::new(&model, &HashMap::new()).unwrap().run(input.clone()).unwrap();
        let owned = Session::from_model(model, &HashMap::new()).unwrap().run(input).unwrap();
        assert_eq!(borrowed[0].1.shape(), &[co, 36]);
        let bits = |t: &Tensor| t.to_f64_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&borrowed[0].1), bits(&owned[0].1));
        assert!(borrowed[0].1.to_f64_vec().iter().any(|&v| v != 0.0));
    }

    #[test]
    fn unsupported_op_names_node_op_and_opset() {
        let e = Session::with_registry(&chain("FancyOp"), &HashMap::new(), &registry()).unwrap_err().to_string();
        assert_eq!(e, "node 'n2': op FancyOp (domain '', opset 13) is not supported by the engine");
    }

    #[test]
    fn f16_rounding_applies_after_every_op() {
        use half::f16;
        let shapes = HashMap::from([("x".to_string(), vec![3, 2])]);
        let s = Session::with_registry(&chain("Third"), &shapes, &registry()).unwrap();
        let xs = [0.1f32, 1.7, -2.3, 1000.01, 3.3e-5, 7.0];
        let input = || HashMap::from([("x".to_string(), Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[3, 2]), xs.to_vec()).unwrap()))]);
        let r = |v: f32| f16::from_f32(v).to_f32();
        // Per-op reference: Double, Third, Double, each output rounded to fp16.
        let expected: Vec<f32> = xs.iter().map(|&x| r(r(r(x * 2.0) / 3.0) * 2.0)).collect();
        let exact: Vec<f32> = xs.iter().map(|&x| x * 2.0 / 3.0 * 2.0).collect();

        let rounded = s.run_with(input(), &RunOptions { round_outputs_to_f16: true }).unwrap();
        let Tensor::F32(y) = &rounded[0].1 else { panic!("expected f32 output") };
        assert_eq!(y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        // Rounding only at the end would give other values for some elements.
        let once: Vec<f32> = exact.iter().map(|&v| r(v)).collect();
        assert_ne!(y.as_slice().unwrap(), once.as_slice());

        let plain = s.run_with(input(), &RunOptions::default()).unwrap();
        assert_eq!(plain, s.run(input()).unwrap());
        assert_ne!(plain[0].1, rounded[0].1);
    }
}
