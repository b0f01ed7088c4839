//! The parts of Go's `fmt` and `strconv` that templates reach: `%v` value
//! printing, `Sprint`/`Sprintln`/`Sprintf`, float formatting and quoting.

use crate::value::Value;

// ---------------------------------------------------------------------------
// strconv: float formatting
// ---------------------------------------------------------------------------

/// Decimal digits of a finite, non-negative `a`: `0.d1d2d3… × 10^dp`.
/// `sig` = Some(n) rounds to n significant digits (exactly, ties to even),
/// None gives the shortest digits that round-trip. Trailing zeros are trimmed;
/// zero has no digits and `dp == 0`.
fn decimal_digits(a: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    if a == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match sig {
        None => format!("{a:e}"),
        Some(n) => format!("{:.*e}", n.max(1) - 1, a),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits == [b'0'] {
        return (Vec::new(), 0);
    }
    (digits, exp + 1)
}

fn fmt_e(out: &mut String, d: &[u8], dp: i32, prec: usize, e: char) {
    out.push(d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        let m = d.len().min(prec + 1);
        let mut i = 1;
        if i < m {
            out.extend(d[i..m].iter().map(|&c| c as char));
            i = m;
        }
        while i <= prec {
            out.push('0');
            i += 1;
        }
    }
    out.push(e);
    let mut exp = if d.is_empty() { 0 } else { dp - 1 };
    if exp < 0 {
        out.push('-');
        exp = -exp;
    } else {
        out.push('+');
    }
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
}

fn fmt_f(out: &mut String, d: &[u8], dp: i32, prec: usize) {
    if dp > 0 {
        let dp = dp as usize;
        let m = d.len().min(dp);
        out.extend(d[..m].iter().map(|&c| c as char));
        for _ in m..dp {
            out.push('0');
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i64 {
            let j = dp as i64 + i - 1;
            let ch = if j >= 0 && (j as usize) < d.len() {
                d[j as usize] as char
            } else {
                '0'
            };
            out.push(ch);
        }
    }
}

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)` for `fmt` in `e E f g G`;
/// `prec < 0` means the shortest representation.
pub(crate) fn format_float(v: f64, fmt: char, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    let a = v.abs();
    match fmt {
        'f' | 'F' => {
            if prec < 0 {
                let (d, dp) = decimal_digits(a, None);
                let p = (d.len() as i32 - dp).max(0) as usize;
                fmt_f(&mut out, &d, dp, p);
            } else {
                out.push_str(&format!("{:.*}", prec as usize, a));
            }
        }
        'e' | 'E' => {
            let (d, dp, p) = if prec < 0 {
                let (d, dp) = decimal_digits(a, None);
                let p = d.len().saturating_sub(1);
                (d, dp, p)
            } else {
                let (d, dp) = decimal_digits(a, Some(prec as usize + 1));
                (d, dp, prec as usize)
            };
            fmt_e(&mut out, &d, dp, p, fmt);
        }
        _ => {
            // 'g' / 'G'
            let shortest = prec < 0;
            let (d, dp, mut p) = if shortest {
                let (d, dp) = decimal_digits(a, None);
                let n = d.len() as i32;
                (d, dp, n)
            } else {
                let p = prec.max(1);
                let (d, dp) = decimal_digits(a, Some(p as usize));
                (d, dp, p)
            };
            let nd = d.len() as i32;
            let mut eprec = p;
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            let e = if fmt == 'G' { 'E' } else { 'e' };
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                fmt_e(&mut out, &d, dp, (p - 1).max(0) as usize, e);
            } else {
                if p > dp {
                    p = nd;
                }
                fmt_f(&mut out, &d, dp, (p - dp).max(0) as usize);
            }
        }
    }
    out
}

/// `%v` of a float64.
pub(crate) fn float_v(v: f64) -> String {
    format_float(v, 'g', -1)
}

// ---------------------------------------------------------------------------
// strconv: parsing
// ---------------------------------------------------------------------------

/// Go's `underscoreOK`: underscores only between digits (or after a base
/// prefix).
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let b = if !b.is_empty() && (b[0] == b'-' || b[0] == b'+') {
        &b[1..]
    } else {
        b
    };
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1] | 0x20 == b'x';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && (c | 0x20).is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(s, 0, 64)` (no sign allowed).
pub(crate) fn parse_uint_base0(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let (base, digits): (u32, &str) = if b[0] == b'0' && b.len() >= 3 && (b[1] | 0x20) == b'x' {
        (16, &s[2..])
    } else if b[0] == b'0' && b.len() >= 3 && (b[1] | 0x20) == b'o' {
        (8, &s[2..])
    } else if b[0] == b'0' && b.len() >= 3 && (b[1] | 0x20) == b'b' {
        (2, &s[2..])
    } else if b[0] == b'0' && b.len() > 1 {
        (8, &s[1..])
    } else {
        (10, s)
    };
    let mut n: u64 = 0;
    let mut any = false;
    let mut underscores = false;
    for c in digits.chars() {
        if c == '_' {
            underscores = true;
            continue;
        }
        let d = c.to_digit(base)?;
        n = n.checked_mul(base as u64)?.checked_add(d as u64)?;
        any = true;
    }
    if !any || (underscores && !underscore_ok(s)) {
        return None;
    }
    Some(n)
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint_base0(rest)?;
    if neg {
        if u <= 1u64 << 63 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else if u <= i64::MAX as u64 {
        Some(u as i64)
    } else {
        None
    }
}

/// Why `parse_go_float` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatErr {
    Syntax,
    Range,
}

fn parse_hex_float(s: &str) -> Result<f64, FloatErr> {
    // s: hex digits with optional '.', then mandatory p exponent.
    let (mant, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => return Err(FloatErr::Syntax),
    };
    let exp: i64 = {
        let e = exp.replace('_', "");
        let (neg, digits) = match e.as_bytes().first() {
            Some(b'-') => (true, &e[1..]),
            Some(b'+') => (false, &e[1..]),
            _ => (false, &e[..]),
        };
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(FloatErr::Syntax);
        }
        let v: i64 = digits.parse().unwrap_or(i64::MAX / 4).min(100_000);
        if neg {
            -v
        } else {
            v
        }
    };
    let mut value = 0f64;
    let mut frac_digits = 0i64;
    let mut seen_dot = false;
    let mut any = false;
    for c in mant.chars() {
        match c {
            '_' => {}
            '.' if !seen_dot => seen_dot = true,
            _ => {
                let d = c.to_digit(16).ok_or(FloatErr::Syntax)?;
                value = value * 16.0 + d as f64;
                any = true;
                if seen_dot {
                    frac_digits += 1;
                }
            }
        }
    }
    if !any {
        return Err(FloatErr::Syntax);
    }
    let e2 = exp - 4 * frac_digits;
    let r = value * 2f64.powi(e2.clamp(-2000, 2000) as i32);
    if r.is_infinite() {
        return Err(FloatErr::Range);
    }
    Ok(r)
}

/// Go's `strconv.ParseFloat(s, 64)`.
pub(crate) fn parse_go_float(s: &str) -> Result<f64, FloatErr> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Ok(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        if s.len() != body.len() {
            return Err(FloatErr::Syntax);
        }
        return Ok(f64::NAN);
    }
    if body.contains('_') && !underscore_ok(s) {
        return Err(FloatErr::Syntax);
    }
    let v = if lower.starts_with("0x") {
        parse_hex_float(&body[2..])?
    } else {
        let cleaned: String = body.chars().filter(|&c| c != '_').collect();
        if cleaned.is_empty()
            || !cleaned
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return Err(FloatErr::Syntax);
        }
        let v: f64 = cleaned.parse().map_err(|_| FloatErr::Syntax)?;
        if v.is_infinite() {
            return Err(FloatErr::Range);
        }
        v
    };
    Ok(if neg { -v } else { v })
}

/// The error text of a failed `strconv.ParseFloat`.
pub(crate) fn parse_float_error(s: &str, e: FloatErr) -> String {
    let why = match e {
        FloatErr::Syntax => "invalid syntax",
        FloatErr::Range => "value out of range",
    };
    format!("strconv.ParseFloat: parsing {}: {why}", quote(s))
}

// ---------------------------------------------------------------------------
// strconv: quoting
// ---------------------------------------------------------------------------

/// An approximation of Go's `strconv.IsPrint`.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !matches!(u,
        0x00AD
        | 0x0600..=0x0605
        | 0x061C
        | 0x06DD
        | 0x070F
        | 0x180E
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x206F
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF
        | 0xF0000..=0x10FFFF
        | 0xFFFE
        | 0xFFFF)
}

fn push_escaped(out: &mut String, c: char, quote: char, ascii_only: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if ascii_only {
        if c.is_ascii() && is_print(c) {
            out.push(c);
            return;
        }
    } else if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        _ => {
            let u = c as u32;
            if u < 0x20 || u == 0x7f {
                out.push_str("\\x");
                out.push(HEX[(u >> 4) as usize] as char);
                out.push(HEX[(u & 15) as usize] as char);
            } else if u < 0x10000 {
                out.push_str(&format!("\\u{u:04x}"));
            } else {
                out.push_str(&format!("\\U{u:08x}"));
            }
        }
    }
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    quote_with(s, '"', false)
}

fn quote_with(s: &str, q: char, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        push_escaped(&mut out, c, q, ascii_only);
    }
    out.push(q);
    out
}

fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !(c < ' ' || c == '\x7f')))
}

/// Go's `%#U` of a rune: `U+00A0`, plus ` 'c'` when printable.
pub(crate) fn sharp_u(c: char) -> String {
    if is_print(c) {
        format!("U+{:04X} '{}'", c as u32, c)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

// ---------------------------------------------------------------------------
// fmt
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Default, Debug)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

/// Output larger than the limit was requested.
#[derive(Debug)]
pub(crate) struct Overflow;

struct Printer {
    buf: String,
    limit: usize,
    overflow: bool,
}

impl Printer {
    fn new(limit: usize) -> Printer {
        Printer {
            buf: String::new(),
            limit,
            overflow: false,
        }
    }

    fn push_str(&mut self, s: &str) {
        if self.buf.len() + s.len() > self.limit {
            self.overflow = true;
            return;
        }
        self.buf.push_str(s);
    }

    fn push(&mut self, c: char) {
        if self.buf.len() + c.len_utf8() > self.limit {
            self.overflow = true;
            return;
        }
        self.buf.push(c);
    }

    fn padding(&mut self, f: &Flags, n: usize) {
        if self.buf.len().saturating_add(n) > self.limit {
            self.overflow = true;
            return;
        }
        let c = if f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    /// Go's `fmt.pad`: pads `s` to the width.
    fn pad(&mut self, f: &Flags, s: &str) {
        let w = match f.wid {
            None | Some(0) => {
                self.push_str(s);
                return;
            }
            Some(w) => w,
        };
        let n = s.chars().count();
        if n >= w {
            self.push_str(s);
            return;
        }
        if !f.minus {
            self.padding(f, w - n);
            self.push_str(s);
        } else {
            self.push_str(s);
            let f2 = Flags { zero: false, ..*f };
            self.padding(&f2, w - n);
        }
    }

    fn bad_verb(&mut self, f: &Flags, verb: char, v: &Value, depth: usize) {
        self.push_str("%!");
        self.push(verb);
        self.push('(');
        if let Value::Nil = v {
            self.push_str("<nil>");
        } else {
            self.push_str(&v.type_name());
            self.push('=');
            self.print_arg(f, v, 'v', depth);
        }
        self.push(')');
    }

    fn fmt_bool(&mut self, f: &Flags, b: bool, verb: char, v: &Value, depth: usize) {
        match verb {
            't' | 'v' => self.pad(f, if b { "true" } else { "false" }),
            _ => self.bad_verb(f, verb, v, depth),
        }
    }

    fn fmt_integer(&mut self, f: &Flags, i: i64, verb: char, v: &Value, depth: usize) {
        let (base, upper) = match verb {
            'v' | 'd' => (10, false),
            'b' => (2, false),
            'o' | 'O' => (8, false),
            'x' => (16, false),
            'X' => (16, true),
            'c' => {
                let c = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                self.pad(f, c.encode_utf8(&mut [0; 4]));
                return;
            }
            'q' => {
                let c = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                let mut s = String::from('\'');
                push_escaped(&mut s, c, '\'', f.plus);
                s.push('\'');
                self.pad(f, &s);
                return;
            }
            'U' => {
                let mut s = format!("U+{:04X}", i as u64);
                if f.sharp {
                    if let Some(c) = u32::try_from(i).ok().and_then(char::from_u32) {
                        if is_print(c) {
                            s.push_str(&format!(" '{c}'"));
                        }
                    }
                }
                let f2 = Flags { zero: false, ..*f };
                self.pad(&f2, &s);
                return;
            }
            _ => {
                self.bad_verb(f, verb, v, depth);
                return;
            }
        };
        let neg = i < 0;
        let u = i.unsigned_abs();
        let mut prec = 0usize;
        if let Some(p) = f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let f2 = Flags { zero: false, ..*f };
                self.padding(&f2, f.wid.unwrap_or(0));
                return;
            }
        } else if f.zero && !f.minus && f.wid.is_some() {
            prec = f.wid.unwrap_or(0);
            if neg || f.plus || f.space {
                prec = prec.saturating_sub(1);
            }
        }
        if prec > self.limit {
            self.overflow = true;
            return;
        }
        let digits = match (base, upper) {
            (10, _) => u.to_string(),
            (2, _) => format!("{u:b}"),
            (8, _) => format!("{u:o}"),
            (16, false) => format!("{u:x}"),
            _ => format!("{u:X}"),
        };
        let mut s = String::with_capacity(prec.max(digits.len()) + 4);
        if neg {
            s.push('-');
        } else if f.plus {
            s.push('+');
        } else if f.space {
            s.push(' ');
        }
        if verb == 'O' {
            s.push_str("0o");
        }
        let zeros = prec.saturating_sub(digits.len());
        if f.sharp {
            match base {
                2 => s.push_str("0b"),
                8 if zeros == 0 && !digits.starts_with('0') => s.push('0'),
                16 => s.push_str(if upper { "0X" } else { "0x" }),
                _ => {}
            }
        }
        s.extend(std::iter::repeat_n('0', zeros));
        s.push_str(&digits);
        let f2 = Flags { zero: false, ..*f };
        self.pad(&f2, &s);
    }

    fn fmt_float(&mut self, f: &Flags, x: f64, verb: char, v: &Value, depth: usize) {
        let (conv, default_prec) = match verb {
            'v' => ('g', -1),
            'b' | 'g' | 'x' => ('g', -1),
            'G' | 'X' => ('G', -1),
            'f' | 'F' => ('f', 6),
            'e' => ('e', 6),
            'E' => ('E', 6),
            _ => {
                self.bad_verb(f, verb, v, depth);
                return;
            }
        };
        let prec = match f.prec {
            Some(p) => p.min(self.limit) as i32,
            None => default_prec,
        };
        let s = format_float(x, conv, prec);
        let mut num = if s.starts_with('-') || s.starts_with('+') {
            s
        } else {
            format!("+{s}")
        };
        if f.space && num.starts_with('+') && !f.plus {
            num.replace_range(0..1, " ");
        }
        let second = num.as_bytes().get(1).copied();
        if second == Some(b'I') || second == Some(b'N') {
            let f2 = Flags { zero: false, ..*f };
            if second == Some(b'N') && !f.space && !f.plus {
                num.remove(0);
            }
            self.pad(&f2, &num);
            return;
        }
        if f.plus || !num.starts_with('+') {
            if let Some(w) = f.wid {
                if f.zero && !f.minus && w > num.len() {
                    self.push_str(&num[..1]);
                    self.padding(f, w - num.len());
                    self.push_str(&num[1..]);
                    return;
                }
            }
            self.pad(f, &num);
            return;
        }
        self.pad(f, &num[1..]);
    }

    fn fmt_string(&mut self, f: &Flags, s: &str, verb: char, v: &Value, depth: usize) {
        match verb {
            'v' if f.sharp_v => self.fmt_q(&Flags { sharp: true, ..*f }, s),
            'v' | 's' => {
                let s = truncate(f, s);
                self.pad(f, s);
            }
            'x' => self.fmt_sx(f, s, false),
            'X' => self.fmt_sx(f, s, true),
            'q' => self.fmt_q(f, s),
            _ => self.bad_verb(f, verb, v, depth),
        }
    }

    fn fmt_q(&mut self, f: &Flags, s: &str) {
        let s = truncate(f, s);
        let q = if f.sharp && can_backquote(s) {
            format!("`{s}`")
        } else {
            quote_with(s, '"', f.plus)
        };
        self.pad(f, &q);
    }

    fn fmt_sx(&mut self, f: &Flags, s: &str, upper: bool) {
        let digits: &[u8; 16] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        let b = s.as_bytes();
        let length = match f.prec {
            Some(p) if p < b.len() => p,
            _ => b.len(),
        };
        let mut width = 2 * length;
        if width > 0 {
            if f.space {
                if f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if f.sharp {
                width += 2;
            }
        } else {
            if let Some(w) = f.wid {
                self.padding(f, w);
            }
            return;
        }
        if let Some(w) = f.wid {
            if w > width && !f.minus {
                self.padding(f, w - width);
            }
        }
        let x = if upper { 'X' } else { 'x' };
        let mut out = String::with_capacity(width);
        if f.sharp {
            out.push('0');
            out.push(x);
        }
        for (i, &c) in b[..length].iter().enumerate() {
            if f.space && i > 0 {
                out.push(' ');
                if f.sharp {
                    out.push('0');
                    out.push(x);
                }
            }
            out.push(digits[(c >> 4) as usize] as char);
            out.push(digits[(c & 15) as usize] as char);
        }
        self.push_str(&out);
        if let Some(w) = f.wid {
            if w > width && f.minus {
                self.padding(&Flags { zero: false, ..*f }, w - width);
            }
        }
    }

    /// Go's `printArg`/`printValue` for one operand.
    fn print_arg(&mut self, f: &Flags, v: &Value, verb: char, depth: usize) {
        if self.overflow || depth > 64 {
            if depth > 64 {
                self.push_str("...");
            }
            return;
        }
        if let Value::Nil = v {
            match verb {
                'T' | 'v' => self.pad(f, "<nil>"),
                _ => self.bad_verb(f, verb, v, depth),
            }
            return;
        }
        if verb == 'T' {
            let t = v.type_name();
            self.pad(f, &t);
            return;
        }
        match v {
            Value::Nil => {}
            Value::Bool(b) => self.fmt_bool(f, *b, verb, v, depth),
            Value::Int(i) => self.fmt_integer(f, *i, verb, v, depth),
            Value::Float(x) => self.fmt_float(f, *x, verb, v, depth),
            Value::String(s) => self.fmt_string(f, s, verb, v, depth),
            Value::Time(_) | Value::Duration(_) => {
                // Stringers.
                if matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') {
                    let s = match v {
                        Value::Time(t) => t.to_string(),
                        Value::Duration(d) => crate::timefmt::duration_string(*d),
                        _ => String::new(),
                    };
                    self.fmt_string(f, &s, verb, v, depth);
                } else {
                    self.bad_verb(f, verb, v, depth);
                }
            }
            Value::List(items) => {
                self.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.push(' ');
                    }
                    self.print_arg(f, item, verb, depth + 1);
                    if self.overflow {
                        return;
                    }
                }
                self.push(']');
            }
            Value::Map(m) => {
                self.push_str("map[");
                for (i, (k, item)) in m.iter().enumerate() {
                    if i > 0 {
                        self.push(' ');
                    }
                    self.fmt_string(f, k, verb, &Value::string(k.as_str()), depth + 1);
                    self.push(':');
                    self.print_arg(f, item, verb, depth + 1);
                    if self.overflow {
                        return;
                    }
                }
                self.push(']');
            }
            Value::StringMap(m) => {
                self.push_str("map[");
                for (i, (k, item)) in m.iter().enumerate() {
                    if i > 0 {
                        self.push(' ');
                    }
                    if matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') {
                        self.fmt_string(f, k, verb, &Value::Nil, depth + 1);
                        self.push(':');
                        self.fmt_string(f, item, verb, &Value::Nil, depth + 1);
                    } else {
                        self.bad_verb(f, verb, &Value::string(k.as_str()), depth + 1);
                        self.push(':');
                        self.bad_verb(f, verb, &Value::string(item.as_str()), depth + 1);
                    }
                    if self.overflow {
                        return;
                    }
                }
                self.push(']');
            }
            Value::Struct(s) => {
                self.push('{');
                for (i, (name, item)) in s.fields.iter().enumerate() {
                    if i > 0 {
                        self.push(' ');
                    }
                    if f.plus_v {
                        self.push_str(name);
                        self.push(':');
                    }
                    self.print_arg(f, item, verb, depth + 1);
                }
                self.push('}');
            }
            Value::Sample(s) => {
                self.push_str("&{");
                if f.plus_v {
                    self.push_str("Labels:");
                }
                self.print_arg(f, &Value::StringMap(s.labels.clone()), verb, depth + 1);
                self.push(' ');
                if f.plus_v {
                    self.push_str("Value:");
                }
                self.print_arg(f, &Value::Float(s.value), verb, depth + 1);
                self.push('}');
            }
        }
    }
}

fn truncate<'s>(f: &Flags, s: &'s str) -> &'s str {
    if let Some(p) = f.prec {
        if let Some((i, _)) = s.char_indices().nth(p) {
            return &s[..i];
        }
    }
    s
}

/// What an action prints for a value: `<no value>` for nil, pointers
/// (samples) dereferenced, everything else as `%v`.
pub(crate) fn print_action_value(v: &Value) -> String {
    print_action_value_limited(v, usize::MAX).unwrap_or_default()
}

/// [`print_action_value`], failing once the text would exceed `limit` bytes.
pub(crate) fn print_action_value_limited(v: &Value, limit: usize) -> Result<String, Overflow> {
    let s = match v {
        Value::Nil => "<no value>".to_string(),
        Value::String(s) => s.to_string(),
        Value::Float(x) => float_v(*x),
        Value::Int(i) => i.to_string(),
        _ => {
            let mut p = Printer::new(limit.saturating_add(1));
            p.print_arg(&Flags::default(), v, 'v', 0);
            if p.overflow {
                return Err(Overflow);
            }
            if let Value::Sample(_) = v {
                p.buf.split_off(1)
            } else {
                p.buf
            }
        }
    };
    if s.len() > limit {
        return Err(Overflow);
    }
    Ok(s)
}

/// A value as it appears inside an error message: at most ~200 bytes.
pub(crate) fn print_for_error(v: &Value) -> String {
    match print_action_value_limited(v, 200) {
        Ok(s) => s,
        Err(Overflow) => {
            let mut p = Printer::new(200);
            p.print_arg(&Flags::default(), v, 'v', 0);
            p.buf.push_str("...");
            p.buf
        }
    }
}

/// `%v` of one operand (as `fmt.Sprint` prints it).
fn sprint_one(p: &mut Printer, v: &Value) {
    p.print_arg(&Flags::default(), v, 'v', 0);
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
pub(crate) fn sprint(args: &[Value], limit: usize) -> Result<String, Overflow> {
    let mut p = Printer::new(limit);
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::String(_));
        if i > 0 && !is_string && !prev_string {
            p.push(' ');
        }
        sprint_one(&mut p, a);
        prev_string = is_string;
        if p.overflow {
            return Err(Overflow);
        }
    }
    Ok(p.buf)
}

/// Go's `fmt.Sprintln`: spaces always, newline at the end.
pub(crate) fn sprintln(args: &[Value], limit: usize) -> Result<String, Overflow> {
    let mut p = Printer::new(limit);
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.push(' ');
        }
        sprint_one(&mut p, a);
        if p.overflow {
            return Err(Overflow);
        }
    }
    p.push('\n');
    if p.overflow {
        return Err(Overflow);
    }
    Ok(p.buf)
}

const TOO_LARGE: usize = 1_000_000;

fn parse_num(b: &[u8], mut i: usize) -> (Option<usize>, usize) {
    let start = i;
    let mut n: usize = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        if n > TOO_LARGE {
            return (None, b.len());
        }
        n = n * 10 + (b[i] - b'0') as usize;
        i += 1;
    }
    if i == start {
        (None, i)
    } else {
        (Some(n), i)
    }
}

/// Go's `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value], limit: usize) -> Result<String, Overflow> {
    let mut p = Printer::new(limit);
    let b = format.as_bytes();
    let end = b.len();
    let mut arg_num = 0usize;
    let mut reordered = false;
    let mut i = 0usize;

    // Parses an explicit argument index `[n]` at i.
    let arg_number = |arg_num: usize,
                      i: usize,
                      nargs: usize,
                      reordered: &mut bool,
                      good: &mut bool|
     -> (usize, usize, bool) {
        if i >= end || b[i] != b'[' {
            return (arg_num, i, false);
        }
        *reordered = true;
        // parseArgNumber
        let mut j = i + 1;
        let mut ok = false;
        let mut idx = 0usize;
        let mut close = None;
        while j < end {
            if b[j] == b']' {
                let (n, ni) = parse_num(b, i + 1);
                if let Some(n) = n {
                    if ni == j && n >= 1 {
                        ok = true;
                        idx = n - 1;
                    }
                }
                close = Some(j + 1);
                break;
            }
            j += 1;
        }
        match close {
            None => {
                *good = false;
                (arg_num, i + 1, false)
            }
            Some(ni) => {
                if ok && idx < nargs {
                    (idx, ni, true)
                } else {
                    *good = false;
                    (arg_num, ni, ok)
                }
            }
        }
    };

    while i < end {
        let lasti = i;
        while i < end && b[i] != b'%' {
            i += 1;
        }
        if i > lasti {
            p.push_str(&format[lasti..i]);
        }
        if i >= end {
            break;
        }
        i += 1; // skip %
        let mut f = Flags::default();
        let mut good_arg_num = true;
        while i < end {
            match b[i] {
                b'#' => f.sharp = true,
                b'0' => f.zero = !f.minus,
                b'+' => f.plus = true,
                b'-' => {
                    f.minus = true;
                    f.zero = false;
                }
                b' ' => f.space = true,
                _ => break,
            }
            i += 1;
        }
        let (an, ni, mut after_index) =
            arg_number(arg_num, i, args.len(), &mut reordered, &mut good_arg_num);
        arg_num = an;
        i = ni;
        // width
        if i < end && b[i] == b'*' {
            i += 1;
            match args.get(arg_num) {
                Some(Value::Int(w)) if (*w as i128).unsigned_abs() <= TOO_LARGE as u128 => {
                    let w = *w;
                    if w < 0 {
                        f.minus = true;
                        f.zero = false;
                    }
                    f.wid = Some(w.unsigned_abs() as usize);
                }
                _ => p.push_str("%!(BADWIDTH)"),
            }
            if arg_num < args.len() {
                arg_num += 1;
            }
            after_index = false;
        } else {
            let (w, ni) = parse_num(b, i);
            f.wid = w;
            i = ni;
            if after_index && f.wid.is_some() {
                good_arg_num = false;
            }
        }
        // precision
        if i + 1 < end && b[i] == b'.' {
            i += 1;
            if after_index {
                good_arg_num = false;
            }
            let (an, ni, ai) =
                arg_number(arg_num, i, args.len(), &mut reordered, &mut good_arg_num);
            arg_num = an;
            i = ni;
            after_index = ai;
            if i < end && b[i] == b'*' {
                i += 1;
                match args.get(arg_num) {
                    Some(Value::Int(pr)) if (*pr as i128).unsigned_abs() <= TOO_LARGE as u128 => {
                        if *pr >= 0 {
                            f.prec = Some(*pr as usize);
                        }
                    }
                    _ => p.push_str("%!(BADPREC)"),
                }
                if arg_num < args.len() {
                    arg_num += 1;
                }
                after_index = false;
            } else {
                let (pr, ni) = parse_num(b, i);
                f.prec = Some(pr.unwrap_or(0));
                i = ni;
            }
        }
        if !after_index {
            let (an, ni, _) = arg_number(arg_num, i, args.len(), &mut reordered, &mut good_arg_num);
            arg_num = an;
            i = ni;
        }
        if i >= end {
            p.push_str("%!(NOVERB)");
            break;
        }
        let verb = format[i..].chars().next().unwrap_or('?');
        i += verb.len_utf8();
        if verb == '%' {
            p.push('%');
        } else if !good_arg_num {
            p.push_str("%!");
            p.push(verb);
            p.push_str("(BADINDEX)");
        } else if arg_num >= args.len() {
            p.push_str("%!");
            p.push(verb);
            p.push_str("(MISSING)");
        } else {
            if verb == 'v' {
                f.sharp_v = f.sharp;
                f.sharp = false;
                f.plus_v = f.plus;
                f.plus = false;
            }
            p.print_arg(&f, &args[arg_num], verb, 0);
            arg_num += 1;
        }
        if p.overflow {
            return Err(Overflow);
        }
    }
    if !reordered && arg_num < args.len() {
        p.push_str("%!(EXTRA ");
        for (k, a) in args[arg_num..].iter().enumerate() {
            if k > 0 {
                p.push_str(", ");
            }
            if let Value::Nil = a {
                p.push_str("<nil>");
            } else {
                p.push_str(&a.type_name());
                p.push('=');
                p.print_arg(&Flags::default(), a, 'v', 0);
            }
        }
        p.push(')');
    }
    if p.overflow {
        return Err(Overflow);
    }
    Ok(p.buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[Value]) -> Vec<Value> {
        args.to_vec()
    }

    #[test]
    fn float_shortest() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (1.5, "1.5"),
            (100.0, "100"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e21, "1e+21"),
            (-2.5, "-2.5"),
            (1353755652.0, "1.353755652e+09"),
            (-9.223372036854776e18, "-9.223372036854776e+18"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (-0.0, "-0"),
            (5e-324, "5e-324"),
        ];
        for (x, want) in cases {
            assert_eq!(float_v(x), want, "{x}");
        }
    }

    #[test]
    fn float_g_precision() {
        let cases = [
            (1.234567, "1.235"),
            (120.0, "120"),
            (1000.0, "1000"),
            (0.0, "0"),
            (1.0, "1"),
            (123456700.0, "1.235e+08"),
            (922.3372036854776, "922.3"),
            (12.345, "12.35"),
            (1.2345, "1.234"),
            (0.00012345, "0.0001234"),
            (0.000012345, "1.234e-05"),
            (99999.0, "1e+05"),
        ];
        for (x, want) in cases {
            assert_eq!(format_float(x, 'g', 4), want, "{x}");
        }
    }

    #[test]
    fn float_e_f() {
        assert_eq!(format_float(1234.5678, 'e', 6), "1.234568e+03");
        assert_eq!(format_float(1234.5678, 'e', -1), "1.2345678e+03");
        assert_eq!(format_float(0.0, 'e', 2), "0.00e+00");
        assert_eq!(format_float(1e100, 'e', 1), "1.0e+100");
        assert_eq!(format_float(3720.01, 'f', 2), "3720.01");
        assert_eq!(format_float(0.125, 'f', 2), "0.12");
        assert_eq!(format_float(-1.0, 'f', 0), "-1");
        assert_eq!(format_float(2.5, 'f', -1), "2.5");
    }

    #[test]
    fn printf_verbs() {
        let lim = 1 << 20;
        let cases: Vec<(&str, Vec<Value>, &str)> = vec![
            ("%.2f", v(&[Value::Float(1.234)]), "1.23"),
            ("%d", v(&[Value::Int(42)]), "42"),
            (
                "%5d|%-5d|%05d",
                v(&[3.into(), 3.into(), (-3).into()]),
                "    3|3    |-0003",
            ),
            ("%+d % d", v(&[5.into(), 5.into()]), "+5  5"),
            (
                "%x %X %o %b %#x %#o",
                v(&[
                    255.into(),
                    255.into(),
                    8.into(),
                    5.into(),
                    255.into(),
                    8.into(),
                ]),
                "ff FF 10 101 0xff 010",
            ),
            ("%s", v(&["foo".into()]), "foo"),
            ("%q", v(&["a\"b\n".into()]), "\"a\\\"b\\n\""),
            (
                "%v %v",
                v(&[Value::Float(1e6), Value::Bool(true)]),
                "1e+06 true",
            ),
            ("%t", v(&[Value::Bool(false)]), "false"),
            ("%d", v(&["foo".into()]), "%!d(string=foo)"),
            ("%f", v(&[Value::Int(80)]), "%!f(int=80)"),
            ("%s", v(&[Value::Int(5)]), "%!s(int=5)"),
            ("%d", v(&[]), "%!d(MISSING)"),
            ("%d", v(&[1.into(), 2.into()]), "1%!(EXTRA int=2)"),
            ("100%%", v(&[]), "100%"),
            ("%", v(&[]), "%!(NOVERB)"),
            ("%z", v(&[1.into()]), "%!z(int=1)"),
            (
                "%8.3f|%-8.2f|%08.3f",
                v(&[Value::Float(3.14259), Value::Float(2.5), Value::Float(-1.5)]),
                "   3.143|2.50    |-001.500",
            ),
            ("%e", v(&[Value::Float(123456.789)]), "1.234568e+05"),
            ("%g", v(&[Value::Float(0.000001)]), "1e-06"),
            ("%.3s", v(&["abcdef".into()]), "abc"),
            ("%x", v(&["hi".into()]), "6869"),
            ("%v", v(&[Value::Nil]), "<nil>"),
            ("%d", v(&[Value::Nil]), "%!d(<nil>)"),
            (
                "%T %T",
                v(&[Value::Float(1.0), "x".into()]),
                "float64 string",
            ),
            ("%v", v(&[Value::list([1.into(), "a".into()])]), "[1 a]"),
            ("%d", v(&[Value::list([1.into(), 2.into()])]), "[1 2]"),
            (
                "%v",
                v(&[Value::string_map([("a", "b"), ("c", "d")])]),
                "map[a:b c:d]",
            ),
            ("%[2]d %[1]d", v(&[1.into(), 2.into()]), "2 1"),
            ("%*d", v(&[5.into(), 1.into()]), "    1"),
            ("%c%c", v(&[72.into(), 105.into()]), "Hi"),
            ("%U", v(&[0x1F600.into()]), "U+1F600"),
            ("%6.2f%%", v(&[Value::Float(99.5)]), " 99.50%"),
            ("%f", v(&[Value::Float(f64::INFINITY)]), "+Inf"),
            ("%05f", v(&[Value::Float(f64::NAN)]), "  NaN"),
            ("%.0f", v(&[Value::Float(2.5)]), "2"),
        ];
        for (fmt, args, want) in cases {
            assert_eq!(sprintf(fmt, &args, lim).unwrap(), want, "{fmt}");
        }
    }

    #[test]
    fn printf_limits() {
        assert!(sprintf("%999999s", &["x".into()], 1000).is_err());
        assert_eq!(
            sprintf("%9999999999d", &[1.into()], 1000).unwrap(),
            "%!(NOVERB)%!(EXTRA int=1)"
        );
    }

    #[test]
    fn sprint_spacing() {
        let lim = 1 << 20;
        assert_eq!(sprint(&[1.into(), 2.into()], lim).unwrap(), "1 2");
        assert_eq!(
            sprint(&["a".into(), 1.into(), 2.into(), "b".into()], lim).unwrap(),
            "a1 2b"
        );
        assert_eq!(sprintln(&["a".into(), 1.into()], lim).unwrap(), "a 1\n");
        assert_eq!(sprint(&[Value::Nil], lim).unwrap(), "<nil>");
    }

    #[test]
    fn parse_numbers() {
        assert_eq!(parse_int_base0("0x1F"), Some(31));
        assert_eq!(parse_int_base0("010"), Some(8));
        assert_eq!(parse_int_base0("1_000"), Some(1000));
        assert_eq!(parse_int_base0("_1"), None);
        assert_eq!(parse_int_base0("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int_base0("9223372036854775808"), None);
        assert_eq!(parse_go_float("1e400"), Err(FloatErr::Range));
        assert_eq!(parse_go_float(".5"), Ok(0.5));
        assert_eq!(parse_go_float("0x1p-2"), Ok(0.25));
        assert_eq!(parse_go_float("one"), Err(FloatErr::Syntax));
        assert_eq!(parse_go_float("-Inf"), Ok(f64::NEG_INFINITY));
        assert!(parse_go_float("NaN").unwrap().is_nan());
        assert_eq!(parse_go_float(" 1"), Err(FloatErr::Syntax));
    }

    #[test]
    fn quoting() {
        assert_eq!(
            quote("a\u{a0}b\u{7f}\u{1F600}"),
            "\"a\\u00a0b\\x7f\u{1F600}\""
        );
        assert_eq!(sharp_u('\u{a0}'), "U+00A0");
        assert_eq!(sharp_u('x'), "U+0078 'x'");
    }

    proptest::proptest! {
        #[test]
        fn shortest_float_round_trips(x in proptest::num::f64::ANY) {
            let s = float_v(x);
            if x.is_finite() {
                proptest::prop_assert_eq!(parse_go_float(&s), Ok(x));
            }
            let e = format_float(x, 'e', 20);
            if x.is_finite() {
                proptest::prop_assert_eq!(parse_go_float(&e), Ok(x));
            }
            let _ = format_float(x, 'g', 3);
            let _ = format_float(x, 'f', 3);
        }
    }
}
