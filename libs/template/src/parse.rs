//! The parser: Go's `text/template/parse` recursive descent, producing the
//! AST the executor walks.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use crate::error::TemplateError;
use crate::funcs::Func;
use crate::gofmt::{parse_go_float, parse_int_base0, parse_uint_base0, quote};
use crate::lex::{lex, Item, Kind};

/// Maximum nesting of control structures and parenthesised pipelines.
pub(crate) const MAX_PARSE_DEPTH: usize = 100;

#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Box<Branch>),
    With(Box<Branch>),
    Range(Box<Branch>),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Debug)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub text: String,
    pub int: Option<i64>,
    pub uint: Option<u64>,
    pub float: Option<f64>,
}

#[derive(Debug)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    /// `$x.a.b`: idents[0] is the variable name including `$`.
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    Identifier {
        pos: usize,
        func: Func,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(usize, Number),
    String {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Number(pos, _)
            | Arg::String { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }

    fn is_literal(&self) -> bool {
        matches!(
            self,
            Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::String { .. }
        )
    }
}

// ---------------------------------------------------------------------------
// String forms (Go's Node.String), used in error messages.
// ---------------------------------------------------------------------------

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { idents, .. } => f.write_str(&idents.join(".")),
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe(p) = node.as_ref() {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for field in fields {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
            Arg::Identifier { func, .. } => f.write_str(func.name()),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => f.write_str(&n.text),
            Arg::String { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "({p})"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, list: &[Node]) -> fmt::Result {
    for n in list {
        write!(f, "{n}")?;
    }
    Ok(())
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let branch = |f: &mut fmt::Formatter<'_>, kw: &str, b: &Branch| -> fmt::Result {
            write!(f, "{{{{{kw} {}}}}}", b.pipe)?;
            write_list(f, &b.list)?;
            if let Some(e) = &b.else_list {
                f.write_str("{{else}}")?;
                write_list(f, e)?;
            }
            f.write_str("{{end}}")
        };
        match self {
            Node::Text(t) => f.write_str(&quote(t)),
            Node::Action(p) => write!(f, "{{{{{p}}}}}"),
            Node::If(b) => branch(f, "if", b),
            Node::With(b) => branch(f, "with", b),
            Node::Range(b) => branch(f, "range", b),
            Node::Template { name, pipe, .. } => match pipe {
                None => write!(f, "{{{{template {}}}}}", quote(name)),
                Some(p) => write!(f, "{{{{template {} {p}}}}}", quote(name)),
            },
            Node::Break => f.write_str("{{break}}"),
            Node::Continue => f.write_str("{{continue}}"),
        }
    }
}

/// Go's `IsEmptyTree`: only whitespace text.
fn is_empty_tree(list: &[Node]) -> bool {
    list.iter().all(|n| match n {
        Node::Text(t) => t.trim().is_empty(),
        _ => false,
    })
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

enum Parsed {
    Node(Node),
    End,
    Else,
}

impl fmt::Display for Parsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parsed::Node(n) => write!(f, "{n}"),
            Parsed::End => f.write_str("{{end}}"),
            Parsed::Else => f.write_str("{{else}}"),
        }
    }
}

type PResult<T> = Result<T, TemplateError>;

struct Parser<'a> {
    name: &'a str,
    items: Vec<Item>,
    idx: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    action_line: usize,
    last_line: usize,
    trees: HashMap<String, Vec<Node>>,
}

/// Parses `text`; returns the named trees (the main one under `name`).
pub(crate) fn parse(name: &str, text: &str) -> PResult<HashMap<String, Vec<Node>>> {
    let mut p = Parser {
        name,
        items: lex(text),
        idx: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        action_line: 0,
        last_line: 1,
        trees: HashMap::new(),
    };
    let root = p.parse_top()?;
    p.add_tree(name.to_string(), root)?;
    Ok(p.trees)
}

impl<'a> Parser<'a> {
    fn error(&self, msg: impl Into<String>) -> TemplateError {
        TemplateError::Parse {
            name: self.name.to_string(),
            line: self.last_line,
            message: msg.into(),
        }
    }

    fn item(&mut self, i: usize) -> PResult<Item> {
        let it = self
            .items
            .get(i)
            .or_else(|| self.items.last())
            .cloned()
            .unwrap_or(Item {
                kind: Kind::Eof,
                pos: 0,
                val: String::new(),
                line: 1,
            });
        self.last_line = it.line;
        if it.kind == Kind::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != it.line {
                extra = format!(" in action started at {}:{}", self.name, self.action_line);
                if it.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return Err(self.error(format!("{}{}", it.val, extra)));
        }
        Ok(it)
    }

    fn next(&mut self) -> PResult<Item> {
        let it = self.item(self.idx)?;
        if self.idx < self.items.len() {
            self.idx += 1;
        }
        Ok(it)
    }

    fn backup(&mut self) {
        self.idx = self.idx.saturating_sub(1);
    }

    fn peek(&mut self) -> PResult<Item> {
        self.item(self.idx)
    }

    fn next_non_space(&mut self) -> PResult<Item> {
        loop {
            let it = self.next()?;
            if it.kind != Kind::Space {
                return Ok(it);
            }
        }
    }

    fn peek_non_space(&mut self) -> PResult<Item> {
        let it = self.next_non_space()?;
        self.backup();
        Ok(it)
    }

    fn unexpected(&self, it: &Item, context: &str) -> TemplateError {
        self.error(format!("unexpected {it} in {context}"))
    }

    fn expect(&mut self, kind: Kind, context: &str) -> PResult<Item> {
        let it = self.next_non_space()?;
        if it.kind != kind {
            return Err(self.unexpected(&it, context));
        }
        Ok(it)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(self.error("max expression depth exceeded"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn add_tree(&mut self, name: String, list: Vec<Node>) -> PResult<()> {
        match self.trees.get(&name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&list) {
                    return Err(self.error(format!(
                        "template: multiple definition of template {}",
                        quote(&name)
                    )));
                }
            }
            _ => {
                self.trees.insert(name, list);
            }
        }
        Ok(())
    }

    fn parse_top(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        loop {
            let it = self.peek()?;
            if it.kind == Kind::Eof {
                break;
            }
            if it.kind == Kind::LeftDelim {
                let save = self.idx;
                self.next()?;
                if self.next_non_space()?.kind == Kind::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.idx = save;
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.push(n),
                other => return Err(self.error(format!("unexpected {other}"))),
            }
        }
        Ok(root)
    }

    /// Runs `f` with a fresh variable scope and range depth, as a new tree.
    fn in_new_tree<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let r = f(self);
        self.vars = vars;
        self.range_depth = range_depth;
        r
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let it = self.next_non_space()?;
        if it.kind != Kind::String && it.kind != Kind::RawString {
            return Err(self.unexpected(&it, CONTEXT));
        }
        let name = self.unquote(&it)?;
        self.expect(Kind::RightDelim, CONTEXT)?;
        self.enter()?;
        let (list, end) = self.in_new_tree(|p| p.item_list())?;
        self.leave();
        if !matches!(end, Parsed::End) {
            return Err(self.error(format!("unexpected {end} in {CONTEXT}")));
        }
        self.add_tree(name, list)
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Parsed)> {
        let mut list = Vec::new();
        loop {
            if self.peek_non_space()?.kind == Kind::Eof {
                return Err(self.error("unexpected EOF"));
            }
            match self.text_or_action()? {
                Parsed::Node(n) => list.push(n),
                end => return Ok((list, end)),
            }
        }
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let it = self.next_non_space()?;
        match it.kind {
            Kind::Text => Ok(Parsed::Node(Node::Text(it.val))),
            Kind::LeftDelim => {
                self.action_line = it.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => Err(self.unexpected(&it, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let it = self.next_non_space()?;
        match it.kind {
            Kind::Block => return self.block_control(),
            Kind::Break => return self.break_control(true),
            Kind::Continue => return self.break_control(false),
            Kind::Else => return self.else_control(),
            Kind::End => {
                self.expect(Kind::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            Kind::If => {
                return self
                    .control("if")
                    .map(|b| Parsed::Node(Node::If(Box::new(b))))
            }
            Kind::Range => {
                return self
                    .control("range")
                    .map(|b| Parsed::Node(Node::Range(Box::new(b))))
            }
            Kind::Template => return self.template_control(),
            Kind::With => {
                return self
                    .control("with")
                    .map(|b| Parsed::Node(Node::With(Box::new(b))))
            }
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", Kind::RightDelim)?;
        Ok(Parsed::Node(Node::Action(pipe)))
    }

    fn break_control(&mut self, is_break: bool) -> PResult<Parsed> {
        let kw = if is_break {
            "{{break}}"
        } else {
            "{{continue}}"
        };
        let t = self.next_non_space()?;
        if t.kind != Kind::RightDelim {
            return Err(self.unexpected(&t, kw));
        }
        if self.range_depth == 0 {
            return Err(self.error(format!("{kw} outside {{{{range}}}}")));
        }
        Ok(Parsed::Node(if is_break {
            Node::Break
        } else {
            Node::Continue
        }))
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space()?;
        if peek.kind == Kind::If || peek.kind == Kind::With {
            return Ok(Parsed::Else);
        }
        self.expect(Kind::RightDelim, "else")?;
        Ok(Parsed::Else)
    }

    fn control(&mut self, context: &str) -> PResult<Branch> {
        self.enter()?;
        let mark = self.vars.len();
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let else_list = match next {
            Parsed::Else => {
                let peek = self.peek()?;
                if context == "if" && peek.kind == Kind::If {
                    self.next()?;
                    let b = self.control("if")?;
                    Some(vec![Node::If(Box::new(b))])
                } else if context == "with" && peek.kind == Kind::With {
                    self.next()?;
                    let b = self.control("with")?;
                    Some(vec![Node::With(Box::new(b))])
                } else {
                    let (l, n) = self.item_list()?;
                    if !matches!(n, Parsed::End) {
                        return Err(self.error(format!("expected end; found {n}")));
                    }
                    Some(l)
                }
            }
            _ => None,
        };
        self.vars.truncate(mark);
        self.leave();
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    fn parse_template_name(&mut self, it: &Item, context: &str) -> PResult<String> {
        match it.kind {
            Kind::String | Kind::RawString => self.unquote(it),
            _ => Err(self.unexpected(it, context)),
        }
    }

    fn template_control(&mut self) -> PResult<Parsed> {
        const CONTEXT: &str = "template clause";
        let it = self.next_non_space()?;
        let name = self.parse_template_name(&it, CONTEXT)?;
        let pipe = if self.next_non_space()?.kind != Kind::RightDelim {
            self.backup();
            Some(self.pipeline(CONTEXT, Kind::RightDelim)?)
        } else {
            None
        };
        Ok(Parsed::Node(Node::Template {
            pos: it.pos,
            name,
            pipe,
        }))
    }

    fn block_control(&mut self) -> PResult<Parsed> {
        const CONTEXT: &str = "block clause";
        let it = self.next_non_space()?;
        let name = self.parse_template_name(&it, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Kind::RightDelim)?;
        self.enter()?;
        let (list, end) = self.in_new_tree(|p| p.item_list())?;
        self.leave();
        if !matches!(end, Parsed::End) {
            return Err(self.error(format!("unexpected {end} in {CONTEXT}")));
        }
        self.add_tree(name.clone(), list)?;
        Ok(Parsed::Node(Node::Template {
            pos: it.pos,
            name,
            pipe: Some(pipe),
        }))
    }

    fn pipeline(&mut self, context: &str, end: Kind) -> PResult<Pipe> {
        let start = self.peek_non_space()?;
        let mut pipe = Pipe {
            pos: start.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations or assignments.
        loop {
            let save = self.idx;
            let v = self.peek_non_space()?;
            if v.kind != Kind::Variable {
                break;
            }
            self.next()?;
            let next = self.peek_non_space()?;
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    pipe.is_assign = next.kind == Kind::Assign;
                    self.next_non_space()?;
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    break;
                }
                Kind::Char if next.val == "," => {
                    self.next_non_space()?;
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space()?.kind {
                            Kind::Variable | Kind::RightDelim | Kind::RightParen => continue,
                            _ => return Err(self.error("range can only initialize variables")),
                        }
                    }
                    return Err(self.error(format!("too many declarations in {context}")));
                }
                _ => {
                    self.idx = save;
                    break;
                }
            }
        }
        loop {
            let it = self.next_non_space()?;
            if it.kind == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match it.kind {
                Kind::Bool
                | Kind::CharConstant
                | Kind::Complex
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&it, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.error(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if c.args.first().is_some_and(Arg::is_literal) {
                return Err(self.error(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                )));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space()?.pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space()?;
            if let Some(op) = self.operand()? {
                args.push(op);
            }
            let it = self.next()?;
            match it.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return Err(self.unexpected(&it, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.error("empty command"));
        }
        Ok(Command { pos, args })
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek()?.kind != Kind::Field {
            return Ok(Some(node));
        }
        let pos = self.peek()?.pos;
        let mut fields = Vec::new();
        while self.peek()?.kind == Kind::Field {
            let f = self.next()?;
            fields.push(f.val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable { pos, idents }
            }
            n if n.is_literal() => {
                return Err(self.error(format!("unexpected . after term {}", quote(&n.to_string()))))
            }
            n => Arg::Chain {
                pos,
                node: Box::new(n),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let it = self.next_non_space()?;
        Ok(Some(match it.kind {
            Kind::Identifier => match Func::lookup(&it.val) {
                Some(func) => Arg::Identifier { pos: it.pos, func },
                None => return Err(self.error(format!("function {} not defined", quote(&it.val)))),
            },
            Kind::Dot => Arg::Dot(it.pos),
            Kind::Nil => Arg::Nil(it.pos),
            Kind::Variable => {
                if !self.vars.contains(&it.val) {
                    return Err(self.error(format!("undefined variable {}", quote(&it.val))));
                }
                Arg::Variable {
                    pos: it.pos,
                    idents: vec![it.val],
                }
            }
            Kind::Field => Arg::Field {
                pos: it.pos,
                idents: vec![it.val[1..].to_string()],
            },
            Kind::Bool => Arg::Bool(it.pos, it.val == "true"),
            Kind::CharConstant | Kind::Complex | Kind::Number => {
                let n = self.number(&it)?;
                Arg::Number(it.pos, n)
            }
            Kind::LeftParen => {
                self.enter()?;
                let p = self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                self.leave();
                Arg::Pipe(Box::new(p))
            }
            Kind::String | Kind::RawString => {
                let text = self.unquote(&it)?;
                Arg::String {
                    pos: it.pos,
                    quoted: it.val,
                    text,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }

    fn unquote(&self, it: &Item) -> PResult<String> {
        unquote(&it.val).ok_or_else(|| self.error("invalid syntax"))
    }

    fn number(&self, it: &Item) -> PResult<Number> {
        let text = &it.val;
        if it.kind == Kind::CharConstant {
            let body = &text[1..];
            let (c, tail) = unquote_char(body, '\'').ok_or_else(|| self.error("invalid syntax"))?;
            if tail != "'" {
                return Err(self.error(format!("malformed character constant: {text}")));
            }
            let v = c as i64;
            return Ok(Number {
                text: text.clone(),
                int: Some(v),
                uint: Some(v as u64),
                float: Some(v as f64),
            });
        }
        if it.kind == Kind::Complex || text.ends_with('i') {
            return Err(self.error(format!("complex constant {} is not supported", quote(text))));
        }
        let mut n = Number {
            text: text.clone(),
            int: None,
            uint: None,
            float: None,
        };
        n.uint = parse_uint_base0(text);
        n.int = parse_int_base0(text);
        if n.int == Some(0) {
            n.uint = Some(0);
        }
        if let Some(i) = n.int {
            n.float = Some(i as f64);
        } else if let Some(u) = n.uint {
            n.float = Some(u as f64);
        } else if let Ok(f) = parse_go_float(text) {
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Err(self.error(format!("integer overflow: {}", quote(text))));
            }
            n.float = Some(f);
            if f.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
            {
                n.int = Some(f as i64);
            }
            if f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f) {
                n.uint = Some(f as u64);
            }
        }
        if n.int.is_none() && n.uint.is_none() && n.float.is_none() {
            return Err(self.error(format!("illegal number syntax: {}", quote(text))));
        }
        Ok(n)
    }
}

/// Go's `strconv.UnquoteChar`: one (possibly escaped) character of a quoted
/// literal, and the rest. Byte escapes (`\xNN`, octal) yield the byte as a
/// character when it is ASCII and U+FFFD otherwise (Rust strings are UTF-8).
fn unquote_char(s: &str, quote: char) -> Option<(char, &str)> {
    let mut chars = s.chars();
    let c = chars.next()?;
    if c == quote && (quote == '\'' || quote == '"') {
        return None;
    }
    if c != '\\' {
        return Some((c, chars.as_str()));
    }
    let e = chars.next()?;
    let rest = chars.as_str();
    let simple = match e {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        '\\' => Some('\\'),
        '\'' | '"' => {
            if e != quote {
                return None;
            }
            Some(e)
        }
        _ => None,
    };
    if let Some(c) = simple {
        return Some((c, rest));
    }
    let hex = |n: usize| -> Option<(u32, &str)> {
        if rest.len() < n || !rest.is_char_boundary(n) {
            return None;
        }
        let (h, tail) = rest.split_at(n);
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some((u32::from_str_radix(h, 16).ok()?, tail))
    };
    match e {
        'x' => {
            let (v, tail) = hex(2)?;
            Some((byte_char(v), tail))
        }
        'u' => {
            let (v, tail) = hex(4)?;
            Some((char::from_u32(v)?, tail))
        }
        'U' => {
            let (v, tail) = hex(8)?;
            Some((char::from_u32(v)?, tail))
        }
        '0'..='7' => {
            if rest.len() < 2 || !rest.is_char_boundary(2) {
                return None;
            }
            let (o, tail) = rest.split_at(2);
            let digits = format!("{e}{o}");
            if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            let v = u32::from_str_radix(&digits, 8).ok()?;
            if v > 255 {
                return None;
            }
            Some((byte_char(v), tail))
        }
        _ => None,
    }
}

fn byte_char(v: u32) -> char {
    if v < 0x80 {
        char::from_u32(v).unwrap_or('\u{FFFD}')
    } else {
        '\u{FFFD}'
    }
}

/// Go's `strconv.Unquote` for "…" and `…` literals.
pub(crate) fn unquote(s: &str) -> Option<String> {
    if s.len() < 2 {
        return None;
    }
    if s.starts_with('`') {
        if !s.ends_with('`') {
            return None;
        }
        let body = &s[1..s.len() - 1];
        if body.contains('`') {
            return None;
        }
        return Some(body.replace('\r', ""));
    }
    if !s.starts_with('"') || !s.ends_with('"') {
        return None;
    }
    let mut body = &s[1..s.len() - 1];
    let mut out = String::with_capacity(body.len());
    while !body.is_empty() {
        if body.starts_with('\n') {
            return None;
        }
        let (c, rest) = unquote_char(body, '"')?;
        out.push(c);
        body = rest;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse("t", text) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses() {
        for text in [
            "plain",
            "{{.}}",
            "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
            "{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}",
            "{{ with $x := .A }}{{ $x }}{{ else with .B }}b{{ end }}",
            "{{ range $i, $e := . }}{{ $i }}{{ break }}{{ continue }}{{ else }}none{{ end }}",
            "{{ define \"x\" }}X{{ end }}{{ template \"x\" . }}",
            "{{ block \"b\" . }}B{{ end }}",
            "{{ (index . 1).Foo.Bar }}",
            "{{ printf \"%d\" 1 | printf \"%s\" }}",
            "{{/* comment */}}",
            "{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ -2 }} {{ nil | print }}",
            "{{ `raw` }}",
            "{{\n.\n}}",
        ] {
            assert_eq!(err(text), "ok", "{text}");
        }
    }

    #[test]
    fn errors() {
        let cases = [
            ("{{", "template: t:1: unclosed action"),
            ("{{ foo }}", "template: t:1: function \"foo\" not defined"),
            ("{{ end }}", "template: t:1: unexpected {{end}}"),
            ("{{ else }}", "template: t:1: unexpected {{else}}"),
            ("{{ if 1 }}", "template: t:1: unexpected EOF"),
            ("{{ if }}{{ end }}", "template: t:1: missing value for if"),
            ("{{ $x }}", "template: t:1: undefined variable \"$x\""),
            ("{{ break }}", "template: t:1: {{break}} outside {{range}}"),
            (
                "{{ 1 | 2 }}",
                "template: t:1: non executable command in pipeline stage 2",
            ),
            (
                "{{ \"x\".y }}",
                "template: t:1: unexpected . after term \"\\\"x\\\"\"",
            ),
            (
                "a\n{{ if 1 }}\n{{ else }}{{ else }}{{ end }}",
                "template: t:3: expected end; found {{else}}",
            ),
            (
                "{{ 99999999999999999999 }}",
                "template: t:1: integer overflow: \"99999999999999999999\"",
            ),
            (
                "{{ $a, $b := 1 }}",
                "template: t:1: too many declarations in command",
            ),
            (
                "{{ define \"a\" }}x{{ end }}{{ define \"a\" }}y{{ end }}",
                "template: t:1: template: multiple definition of template \"a\"",
            ),
            ("{{ if\n", "template: t:2: unclosed action started at t:1"),
            (
                "{{ print(1) }}",
                "template: t:1: unexpected \"(\" in operand",
            ),
            (
                "{{ template x }}",
                "template: t:1: unexpected \"x\" in template clause",
            ),
            ("{{ \"\\q\" }}", "template: t:1: invalid syntax"),
        ];
        for (text, want) in cases {
            assert_eq!(err(text), want, "{text}");
        }
    }

    #[test]
    fn depth_limit() {
        let deep = format!("{}{}", "{{ if 1 }}".repeat(200), "{{ end }}".repeat(200));
        assert!(err(&deep).contains("max expression depth exceeded"));
        let parens = format!("{{{{ {}1{} }}}}", "(".repeat(500), ")".repeat(500));
        assert!(err(&parens).contains("max expression depth exceeded"));
    }

    #[test]
    fn unquoting() {
        assert_eq!(
            unquote(r#""a\tb\x41\u00e9\101""#).as_deref(),
            Some("a\tbAéA")
        );
        assert_eq!(unquote("`a\r\nb`").as_deref(), Some("a\nb"));
        assert_eq!(unquote(r#""\'""#), None);
        assert_eq!(unquote_char("\\'x", '\''), Some(('\'', "x")));
    }
}
