//! The executor: Go's `text/template/exec.go` semantics over [`Value`]s,
//! with resource limits.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::TemplateError;
use crate::funcs::{self, FnError, Func};
use crate::gofmt::{print_action_value_limited, print_for_error};
use crate::parse::{Arg, Branch, Command, Node, Number, Pipe};
use crate::value::Value;
use crate::{ExecOptions, Template};

/// A failure inside execution, turned into a [`TemplateError`] at the top.
pub(crate) enum Fail {
    At {
        pos: usize,
        context: String,
        message: String,
        template: String,
    },
    Limit {
        message: String,
        template: String,
    },
}

enum Flow {
    Normal,
    Break,
    Continue,
}

/// The node an error is reported at.
#[derive(Clone, Copy)]
enum At<'n> {
    Cmd(&'n Command),
    Arg(&'n Arg),
    Node(&'n Node, usize),
    Pipe(&'n Pipe),
}

impl At<'_> {
    fn pos(&self) -> usize {
        match self {
            At::Cmd(c) => c.pos,
            At::Arg(a) => a.pos(),
            At::Node(_, pos) => *pos,
            At::Pipe(p) => p.pos,
        }
    }

    fn context(&self) -> String {
        match self {
            At::Cmd(c) => c.to_string(),
            At::Arg(a) => a.to_string(),
            At::Node(n, _) => n.to_string(),
            At::Pipe(p) => p.to_string(),
        }
    }
}

pub(crate) struct State<'a> {
    tmpl: &'a Template,
    cur: &'a str,
    vars: Vec<(&'a str, Value)>,
    out: String,
    pub(crate) opts: &'a ExecOptions<'a>,
    steps: u64,
    iterations: u64,
    depth: usize,
    calls: usize,
    regexes: HashMap<String, Arc<regex::Regex>>,
    regex_compiles: usize,
}

/// Regular expressions one execution may compile (the cache holds 256).
const MAX_REGEX_COMPILES: usize = 1000;

pub(crate) fn execute(
    tmpl: &Template,
    data: &Value,
    opts: &ExecOptions<'_>,
) -> Result<String, TemplateError> {
    let Some((name, tree)) = tmpl.trees.get_key_value(&tmpl.name) else {
        return Err(TemplateError::ExecNoNode {
            template: tmpl.name.clone(),
            message: format!(
                "{} is an incomplete or empty template",
                crate::gofmt::quote(&tmpl.name)
            ),
        });
    };
    let mut st = State {
        tmpl,
        cur: name,
        vars: vec![("$", data.clone())],
        out: String::new(),
        opts,
        steps: 0,
        iterations: 0,
        depth: 0,
        calls: 0,
        regexes: HashMap::new(),
        regex_compiles: 0,
    };
    match st.walk_list(data, tree) {
        Ok(_) => Ok(st.out),
        Err(f) => Err(st.to_error(f)),
    }
}

impl<'a> State<'a> {
    fn to_error(&self, f: Fail) -> TemplateError {
        match f {
            Fail::At {
                pos,
                context,
                message,
                template,
            } => {
                let text = &self.tmpl.text;
                let mut pos = pos.min(text.len());
                while !text.is_char_boundary(pos) {
                    pos -= 1;
                }
                let before = &text[..pos];
                let line = 1 + before.bytes().filter(|&b| b == b'\n').count();
                let col = match before.rfind('\n') {
                    None => pos,
                    Some(i) => pos - (i + 1),
                };
                TemplateError::Exec {
                    name: self.tmpl.name.clone(),
                    line,
                    col,
                    template,
                    context,
                    message,
                }
            }
            Fail::Limit { message, template } => TemplateError::Limit { template, message },
        }
    }

    fn fail(&self, at: At<'_>, message: impl Into<String>) -> Fail {
        Fail::At {
            pos: at.pos(),
            context: at.context(),
            message: message.into(),
            template: self.cur.to_string(),
        }
    }

    pub(crate) fn limit_fail(&self, message: impl Into<String>) -> Fail {
        Fail::Limit {
            message: message.into(),
            template: self.cur.to_string(),
        }
    }

    /// The byte budget for any single string a function builds.
    pub(crate) fn string_limit(&self) -> usize {
        self.opts.limits.max_output_bytes
    }

    pub(crate) fn regex(&mut self, pattern: &str) -> Result<Arc<regex::Regex>, FnError> {
        if let Some(re) = self.regexes.get(pattern) {
            return Ok(re.clone());
        }
        self.regex_compiles += 1;
        if self.regex_compiles > MAX_REGEX_COMPILES {
            return Err(FnError::Limit(format!(
                "more than {MAX_REGEX_COMPILES} regular expressions compiled"
            )));
        }
        // Compiling costs far more than a step.
        self.steps += 100 + pattern.len() as u64;
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .dfa_size_limit(1 << 21)
            .nest_limit(100)
            .build()
            .map_err(|e| {
                let detail = e
                    .to_string()
                    .lines()
                    .rev()
                    .find_map(|l| l.strip_prefix("error: ").map(str::to_string))
                    .unwrap_or_else(|| e.to_string());
                FnError::Call(format!("error parsing regexp: {detail}: `{pattern}`"))
            })?;
        let re = Arc::new(re);
        if self.regexes.len() < 256 {
            self.regexes.insert(pattern.to_string(), re.clone());
        }
        Ok(re)
    }

    fn step(&mut self) -> Result<(), Fail> {
        self.steps += 1;
        if self.steps > self.opts.limits.max_steps {
            return Err(self.limit_fail(format!(
                "execution exceeded the limit of {} steps",
                self.opts.limits.max_steps
            )));
        }
        Ok(())
    }

    /// Charges one step per 256 units of data handled.
    fn charge(&mut self, size: usize) -> Result<(), Fail> {
        self.steps += (size / 256) as u64;
        self.step()
    }

    fn enter(&mut self) -> Result<(), Fail> {
        self.depth += 1;
        if self.depth > self.opts.limits.max_depth {
            return Err(self.limit_fail(format!(
                "execution exceeded the maximum nesting depth of {}",
                self.opts.limits.max_depth
            )));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn output_limit(&self) -> Fail {
        self.limit_fail(format!(
            "output exceeds the limit of {} bytes",
            self.opts.limits.max_output_bytes
        ))
    }

    fn write(&mut self, s: &str) -> Result<(), Fail> {
        if self.out.len() + s.len() > self.opts.limits.max_output_bytes {
            return Err(self.output_limit());
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, list: &'a [Node]) -> Result<Flow, Fail> {
        self.enter()?;
        for node in list {
            match self.walk(dot, node)? {
                Flow::Normal => {}
                flow => {
                    self.leave();
                    return Ok(flow);
                }
            }
        }
        self.leave();
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &'a Node) -> Result<Flow, Fail> {
        self.step()?;
        match node {
            Node::Text(t) => self.write(t)?,
            Node::Action(pipe) => self.walk_action(dot, pipe)?,
            Node::If(b) => return self.walk_if_or_with(dot, b, false),
            Node::With(b) => return self.walk_if_or_with(dot, b, true),
            Node::Range(b) => return self.walk_range(dot, b, node),
            Node::Template { pos, name, pipe } => {
                self.walk_template(dot, node, *pos, name, pipe)?
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    #[inline(never)]
    fn walk_action(&mut self, dot: &Value, pipe: &'a Pipe) -> Result<(), Fail> {
        let v = self.eval_pipeline(dot, pipe)?;
        if pipe.decl.is_empty() {
            match &v {
                Value::String(s) => self.write(s)?,
                v => {
                    let room = self
                        .opts
                        .limits
                        .max_output_bytes
                        .saturating_sub(self.out.len());
                    match print_action_value_limited(v, room) {
                        Ok(s) => self.write(&s)?,
                        Err(_) => return Err(self.output_limit()),
                    }
                }
            }
        }
        Ok(())
    }

    #[inline(never)]
    fn walk_if_or_with(&mut self, dot: &Value, b: &'a Branch, is_with: bool) -> Result<Flow, Fail> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if v.is_true() {
            if is_with {
                self.walk_list(&v, &b.list)?
            } else {
                self.walk_list(dot, &b.list)?
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    #[inline(never)]
    fn walk_template(
        &mut self,
        dot: &Value,
        node: &'a Node,
        pos: usize,
        name: &str,
        pipe: &'a Option<Pipe>,
    ) -> Result<(), Fail> {
        let Some((key, tree)) = self.tmpl.trees.get_key_value(name) else {
            return Err(self.fail(
                At::Node(node, pos),
                format!("template {} not defined", crate::gofmt::quote(name)),
            ));
        };
        if self.calls >= self.opts.limits.max_template_depth {
            return Err(self.limit_fail(format!(
                "exceeded maximum template depth ({})",
                self.opts.limits.max_template_depth
            )));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Nil,
        };
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", new_dot.clone())]);
        let saved_cur = std::mem::replace(&mut self.cur, key.as_str());
        self.calls += 1;
        let r = self.walk_list(&new_dot, tree);
        self.calls -= 1;
        self.vars = saved_vars;
        self.cur = saved_cur;
        r.map(|_| ())
    }

    fn walk_range(&mut self, dot: &Value, b: &'a Branch, node: &'a Node) -> Result<Flow, Fail> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let mark2 = self.vars.len();
        let mut ran = false;
        match &val {
            Value::List(items) => {
                for (i, e) in items.iter().enumerate() {
                    ran = true;
                    if self.iteration(b, mark2, Value::Int(i as i64), e.clone())? {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                for (k, e) in m.iter() {
                    ran = true;
                    if self.iteration(b, mark2, Value::string(k.as_str()), e.clone())? {
                        break;
                    }
                }
            }
            Value::StringMap(m) => {
                for (k, e) in m.iter() {
                    ran = true;
                    if self.iteration(
                        b,
                        mark2,
                        Value::string(k.as_str()),
                        Value::string(e.as_str()),
                    )? {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.fail(
                        At::Node(node, b.pos),
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                for i in 0..*n {
                    ran = true;
                    if self.iteration(b, mark2, Value::Int(i), Value::Int(i))? {
                        break;
                    }
                }
            }
            Value::Nil => {}
            other => {
                return Err(self.fail(
                    At::Node(node, b.pos),
                    format!("range can't iterate over {}", print_for_error(other)),
                ))
            }
        }
        if !ran {
            if let Some(e) = &b.else_list {
                self.walk_list(dot, e)?;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    /// One range iteration; returns true on `{{break}}`.
    fn iteration(
        &mut self,
        b: &'a Branch,
        mark: usize,
        index: Value,
        elem: Value,
    ) -> Result<bool, Fail> {
        self.iterations += 1;
        if self.iterations > self.opts.limits.max_range_iterations {
            return Err(self.limit_fail(format!(
                "range iterations exceeded the limit of {}",
                self.opts.limits.max_range_iterations
            )));
        }
        let decl = &b.pipe.decl;
        let at = At::Pipe(&b.pipe);
        if !decl.is_empty() {
            if b.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(at, &decl[0], index.clone())?;
                } else {
                    self.set_var(at, &decl[0], elem.clone())?;
                }
            } else {
                let n = self.vars.len();
                self.vars[n - 1].1 = elem.clone();
            }
        }
        if decl.len() > 1 {
            if b.pipe.is_assign {
                self.set_var(at, &decl[1], elem.clone())?;
            } else {
                let n = self.vars.len();
                self.vars[n - 2].1 = index;
            }
        }
        let r = self.walk_list(&elem, &b.list);
        self.vars.truncate(mark);
        Ok(matches!(r?, Flow::Break))
    }

    fn var_value(&self, at: At<'_>, name: &str) -> Result<Value, Fail> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.fail(at, format!("undefined variable: {name}"))),
        }
    }

    fn set_var(&mut self, at: At<'_>, name: &str, v: Value) -> Result<(), Fail> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(self.fail(at, format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'a Pipe) -> Result<Value, Fail> {
        self.enter()?;
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or_default();
        for d in &pipe.decl {
            if pipe.is_assign {
                self.set_var(At::Pipe(pipe), d, value.clone())?;
            } else {
                self.vars.push((d.as_str(), value.clone()));
            }
        }
        self.leave();
        Ok(value)
    }

    fn not_a_function(&self, args: &'a [Arg], final_: &Option<Value>) -> Result<(), Fail> {
        if args.len() > 1 || final_.is_some() {
            return Err(self.fail(
                At::Arg(&args[0]),
                format!("can't give argument to non-function {}", args[0]),
            ));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        cmd: &'a Command,
        final_: Option<Value>,
    ) -> Result<Value, Fail> {
        self.step()?;
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), first, idents, &cmd.args[1..], final_)
            }
            Arg::Chain { node, fields, .. } => {
                let base = self.eval_chain_base(dot, first, node)?;
                self.eval_field_chain(dot, base, first, fields, &cmd.args[1..], final_)
            }
            Arg::Identifier { func, .. } => {
                self.eval_function(dot, *func, At::Cmd(cmd), &cmd.args[1..], final_)
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &final_)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Variable { idents, .. } => {
                let v = self.var_value(At::Arg(first), &idents[0])?;
                if idents.len() == 1 {
                    self.not_a_function(&cmd.args, &final_)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, first, &idents[1..], &cmd.args[1..], final_)
            }
            _ => {
                self.not_a_function(&cmd.args, &final_)?;
                match first {
                    Arg::Bool(_, b) => Ok(Value::Bool(*b)),
                    Arg::Dot(_) => Ok(dot.clone()),
                    Arg::Nil(_) => Err(self.fail(At::Arg(first), "nil is not a command")),
                    Arg::Number(_, n) => self.ideal_constant(first, n),
                    Arg::String { text, .. } => Ok(Value::string(text.as_str())),
                    _ => Err(self.fail(At::Arg(first), format!("can't evaluate command {first}"))),
                }
            }
        }
    }

    fn ideal_constant(&self, at: &'a Arg, n: &Number) -> Result<Value, Fail> {
        let t = &n.text;
        let is_hex_int = t.len() > 2
            && t.starts_with('0')
            && matches!(t.as_bytes()[1], b'x' | b'X')
            && !t.contains(['p', 'P']);
        let is_rune = t.starts_with('\'');
        if let Some(f) = n.float {
            if !is_hex_int && !is_rune && t.contains(['.', 'e', 'E', 'p', 'P']) {
                return Ok(Value::Float(f));
            }
        }
        if let Some(i) = n.int {
            return Ok(Value::Int(i));
        }
        if n.uint.is_some() {
            return Err(self.fail(At::Arg(at), format!("{t} overflows int")));
        }
        Ok(Value::Nil)
    }

    fn eval_chain_base(
        &mut self,
        dot: &Value,
        chain: &'a Arg,
        node: &'a Arg,
    ) -> Result<Value, Fail> {
        if let Arg::Nil(_) = node {
            return Err(self.fail(
                At::Arg(chain),
                format!("indirection through explicit nil in {chain}"),
            ));
        }
        self.eval_arg(dot, node)
    }

    /// Go's `evalArg` for an `any`-typed parameter.
    fn eval_arg(&mut self, dot: &Value, arg: &'a Arg) -> Result<Value, Fail> {
        self.step()?;
        match arg {
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Ok(Value::Nil),
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), arg, idents, &[], None)
            }
            Arg::Variable { idents, .. } => {
                let v = self.var_value(At::Arg(arg), &idents[0])?;
                if idents.len() == 1 {
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, arg, &idents[1..], &[], None)
            }
            Arg::Pipe(p) => self.eval_pipeline(dot, p),
            Arg::Identifier { func, .. } => self.eval_function(dot, *func, At::Arg(arg), &[], None),
            Arg::Chain { node, fields, .. } => {
                let base = self.eval_chain_base(dot, arg, node)?;
                self.eval_field_chain(dot, base, arg, fields, &[], None)
            }
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Number(_, n) => self.ideal_constant(arg, n),
            Arg::String { text, .. } => Ok(Value::string(text.as_str())),
        }
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        receiver: Value,
        node: &'a Arg,
        idents: &'a [String],
        args: &'a [Arg],
        final_: Option<Value>,
    ) -> Result<Value, Fail> {
        let n = idents.len();
        let mut recv = receiver;
        for ident in &idents[..n - 1] {
            recv = self.eval_field(dot, ident, node, &[], None, recv)?;
        }
        self.eval_field(dot, &idents[n - 1], node, args, final_, recv)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        node: &'a Arg,
        args: &'a [Arg],
        final_: Option<Value>,
        receiver: Value,
    ) -> Result<Value, Fail> {
        let has_args = !args.is_empty() || final_.is_some();
        let at = At::Arg(node);
        if let Some(want) = funcs::method_arity(&receiver, name) {
            let got = args.len() + final_.is_some() as usize;
            if got != want {
                return Err(self.fail(
                    at,
                    format!("wrong number of args for {name}: want {want} got {got}"),
                ));
            }
            let mut vals = Vec::with_capacity(got);
            for a in args {
                vals.push(self.eval_arg(dot, a)?);
            }
            if let Some(f) = final_ {
                vals.push(f);
            }
            return match funcs::call_method(&receiver, name, vals) {
                Ok(v) => Ok(v),
                Err(FnError::Call(m)) => Err(self.fail(at, format!("error calling {name}: {m}"))),
                Err(FnError::Arg(m)) => Err(self.fail(at, m)),
                Err(FnError::Limit(m)) => Err(self.limit_fail(m)),
            };
        }
        let cant = |st: &Self, recv: &Value| {
            st.fail(
                at,
                format!("can't evaluate field {name} in type {}", recv.type_name()),
            )
        };
        match &receiver {
            Value::Nil => Ok(Value::Nil),
            Value::Struct(s) => match s.get(name) {
                Some(v) => {
                    if has_args {
                        return Err(self.fail(
                            at,
                            format!("{name} has arguments but cannot be invoked as function"),
                        ));
                    }
                    Ok(v.clone())
                }
                None => Err(cant(self, &receiver)),
            },
            Value::Sample(s) => {
                let v = match name {
                    "Labels" => Value::StringMap(s.labels.clone()),
                    "Value" => Value::Float(s.value),
                    _ => return Err(cant(self, &receiver)),
                };
                if has_args {
                    return Err(self.fail(
                        at,
                        format!("{name} has arguments but cannot be invoked as function"),
                    ));
                }
                Ok(v)
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.fail(at, format!("{name} is not a method but has arguments")));
                }
                Ok(m.get(name).cloned().unwrap_or(Value::Nil))
            }
            Value::StringMap(m) => {
                if has_args {
                    return Err(self.fail(at, format!("{name} is not a method but has arguments")));
                }
                Ok(Value::string(m.get(name).map_or("", String::as_str)))
            }
            _ => Err(cant(self, &receiver)),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        func: Func,
        at: At<'a>,
        args: &'a [Arg],
        final_: Option<Value>,
    ) -> Result<Value, Fail> {
        let name = func.name();
        let (fixed, variadic) = func.arity();
        let n = args.len() + final_.is_some() as usize;
        if variadic {
            if n < fixed {
                return Err(self.fail(
                    at,
                    format!("wrong number of args for {name}: want at least {fixed} got {n}"),
                ));
            }
        } else if n != fixed {
            return Err(self.fail(
                at,
                format!("wrong number of args for {name}: want {fixed} got {n}"),
            ));
        }
        if matches!(func, Func::And | Func::Or) {
            let is_or = func == Func::Or;
            let mut v = Value::Nil;
            for a in args {
                v = self.eval_arg(dot, a)?;
                if v.is_true() == is_or {
                    return Ok(v);
                }
            }
            if let Some(f) = final_ {
                v = f;
            }
            return Ok(v);
        }
        let mut vals = Vec::with_capacity(n);
        for a in args {
            vals.push(self.eval_arg(dot, a)?);
        }
        if let Some(f) = final_ {
            vals.push(f);
        }
        // Work grows with the data a function touches: charge for it so that
        // big strings or lists in a loop cannot stall execution.
        let size: usize = vals.iter().map(data_size).sum();
        self.charge(size)?;
        match funcs::call(self, func, vals) {
            Ok(v) => {
                if let Value::String(s) = &v {
                    if s.len() > self.string_limit() {
                        return Err(self.limit_fail(format!(
                            "{name} result exceeds the limit of {} bytes",
                            self.string_limit()
                        )));
                    }
                }
                self.charge(data_size(&v))?;
                Ok(v)
            }
            Err(FnError::Call(m)) => Err(self.fail(at, format!("error calling {name}: {m}"))),
            Err(FnError::Arg(m)) => Err(self.fail(at, m)),
            Err(FnError::Limit(m)) => Err(self.limit_fail(m)),
        }
    }
}

/// The size of a function argument or result, for step accounting: bytes
/// of a string, elements of a container.
fn data_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::StringMap(m) => m.len(),
        _ => 0,
    }
}
