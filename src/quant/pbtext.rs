//! A small reader of protobuf text format (the syntax of AMCT's `.cfg` files, `record.txt`
//! and AIPP configs) into a schema-free tree that keeps the line:column of every field and
//! value; typed readers such as [`super::config`] interpret the tree.
//!
//! Syntax accepted: `name: value`, `name { ... }`, `name: { ... }`, `name < ... >`, list
//! syntax `name: [v1, v2]` (scalars or messages), optional `,` / `;` after a field, `#`
//! comments, single- or double-quoted strings with C escapes (adjacent strings concatenate),
//! numbers (decimal, hex, octal, floats with exponent or `f` suffix, `inf`, `nan`, a leading
//! `-`), identifiers (enum names, `true` / `false`).

use std::fmt;

/// 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// An identifier: an enum value name, `true`, `false`, `inf`, `nan`, ...
    Ident(String),
    /// A number as written, with its sign (`-1.5e3`, `0x1F`, `2f`).
    Number(String),
    /// A quoted string, escapes decoded.
    Str(String),
}

impl Scalar {
    /// The value as a protobuf-text float: a decimal number (optionally ending in `f`) or
    /// `inf` / `infinity` / `nan` with an optional sign; hex is for integers only.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Scalar::Number(n) if !n.contains(['x', 'X']) => n.strip_suffix(['f', 'F']).unwrap_or(n).parse::<f64>().ok(),
            Scalar::Number(_) | Scalar::Str(_) => None,
            Scalar::Ident(i) => match i.to_ascii_lowercase().as_str() {
                "inf" | "infinity" => Some(f64::INFINITY),
                "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
                "nan" | "-nan" => Some(f64::NAN),
                _ => None,
            },
        }
    }

    /// How the value reads in messages.
    pub fn describe(&self) -> String {
        match self {
            Scalar::Ident(s) => format!("identifier {s}"),
            Scalar::Number(s) => format!("number {s}"),
            Scalar::Str(s) => format!("string {s:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { pos: Pos, scalar: Scalar },
    Message { pos: Pos, fields: Vec<Field> },
    List { pos: Pos, items: Vec<Value> },
}

impl Value {
    pub fn pos(&self) -> Pos {
        match self {
            Value::Scalar { pos, .. } | Value::Message { pos, .. } | Value::List { pos, .. } => *pos,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

impl std::error::Error for SyntaxError {}

type Result<T> = std::result::Result<T, SyntaxError>;

/// Parses a whole text-format message.
pub fn parse(text: &str) -> Result<Vec<Field>> {
    let mut p = Parser { lex: Lexer::new(text), peeked: None };
    p.fields(None)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Number(String),
    Str(String),
    Sym(char),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Number(s) => format!("number {s}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Sym(c) => format!("'{c}'"),
            Tok::Eof => "the end of the file".into(),
        }
    }
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    pos: Pos,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { chars: text.chars().peekable(), pos: Pos { line: 1, col: 1 } }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }

    fn err<T>(pos: Pos, message: impl Into<String>) -> Result<T> {
        Err(SyntaxError { pos, message: message.into() })
    }

    /// The next token and where it starts.
    fn next(&mut self) -> Result<(Tok, Pos)> {
        loop {
            match self.chars.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.bump();
                    }
                }
                _ => break,
            }
        }
        let pos = self.pos;
        let Some(&c) = self.chars.peek() else { return Ok((Tok::Eof, pos)) };
        if c.is_ascii_alphabetic() || c == '_' {
            let mut s = String::new();
            while let Some(&c) = self.chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_') {
                s.push(c);
                self.bump();
            }
            return Ok((Tok::Ident(s), pos));
        }
        if c.is_ascii_digit() || c == '.' {
            let mut s = String::new();
            while let Some(&c) = self.chars.peek() {
                let exponent_sign = (c == '+' || c == '-') && s.ends_with(['e', 'E']) && !s.starts_with("0x") && !s.starts_with("0X");
                if !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign) {
                    break;
                }
                s.push(c);
                self.bump();
            }
            return Ok((Tok::Number(s), pos));
        }
        if c == '"' || c == '\'' {
            return Ok((Tok::Str(self.string(c, pos)?), pos));
        }
        if "{}[]<>:,;-".contains(c) {
            self.bump();
            return Ok((Tok::Sym(c), pos));
        }
        Self::err(pos, format!("unexpected character {c:?}"))
    }

    /// A quoted string (the opening quote is next), escapes decoded.
    fn string(&mut self, quote: char, start: Pos) -> Result<String> {
        self.bump();
        let mut bytes = Vec::new();
        loop {
            let pos = self.pos;
            let Some(c) = self.bump() else { return Self::err(start, "string not closed before the end of the file") };
            match c {
                '\n' => return Self::err(start, "string not closed on its line"),
                c if c == quote => break,
                '\\' => {
                    let Some(e) = self.bump() else { return Self::err(start, "string not closed before the end of the file") };
                    match e {
                        'n' => bytes.push(b'\n'),
                        't' => bytes.push(b'\t'),
                        'r' => bytes.push(b'\r'),
                        'a' => bytes.push(7),
                        'b' => bytes.push(8),
                        'f' => bytes.push(12),
                        'v' => bytes.push(11),
                        '\\' | '\'' | '"' | '?' => bytes.push(e as u8),
                        '0'..='7' => {
                            let mut v = e.to_digit(8).expect("octal digit");
                            for _ in 0..2 {
                                match self.chars.peek().and_then(|c| c.to_digit(8)) {
                                    Some(d) => {
                                        v = v * 8 + d;
                                        self.bump();
                                    }
                                    None => break,
                                }
                            }
                            if v > 255 {
                                return Self::err(pos, format!("octal escape \\{v:o} is larger than a byte"));
                            }
                            bytes.push(v as u8);
                        }
                        'x' | 'X' => {
                            let mut v = None;
                            for _ in 0..2 {
                                match self.chars.peek().and_then(|c| c.to_digit(16)) {
                                    Some(d) => {
                                        v = Some(v.unwrap_or(0) * 16 + d);
                                        self.bump();
                                    }
                                    None => break,
                                }
                            }
                            let Some(v) = v else { return Self::err(pos, "\\x escape without hex digits") };
                            bytes.push(v as u8);
                        }
                        'u' | 'U' => {
                            let n = if e == 'u' { 4 } else { 8 };
                            let mut v = 0u32;
                            for _ in 0..n {
                                let Some(d) = self.chars.peek().and_then(|c| c.to_digit(16)) else {
                                    return Self::err(pos, format!("\\{e} escape needs {n} hex digits"));
                                };
                                v = v * 16 + d;
                                self.bump();
                            }
                            let Some(ch) = char::from_u32(v) else {
                                return Self::err(pos, format!("\\{e}{v:X} is not a Unicode scalar value"));
                            };
                            bytes.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        other => return Self::err(pos, format!("unknown escape \\{other}")),
                    }
                }
                c => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        String::from_utf8(bytes).or_else(|_| Self::err(start, "string escapes give bytes that are not valid UTF-8"))
    }
}

struct Parser<'a> {
    lex: Lexer<'a>,
    peeked: Option<(Tok, Pos)>,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&(Tok, Pos)> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex.next()?);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn next(&mut self) -> Result<(Tok, Pos)> {
        self.peek()?;
        Ok(self.peeked.take().expect("just filled"))
    }

    fn eat(&mut self, c: char) -> Result<bool> {
        if self.peek()?.0 == Tok::Sym(c) {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Fields up to the closing bracket of `open` (a message body: opening char and where it
    /// is) or to the end of the file (`None`).
    fn fields(&mut self, open: Option<(char, Pos)>) -> Result<Vec<Field>> {
        let close = open.map(|(c, _)| if c == '{' { '}' } else { '>' });
        let mut fields = Vec::new();
        loop {
            let (tok, pos) = self.next()?;
            match tok {
                Tok::Eof if close.is_none() => return Ok(fields),
                Tok::Sym(c) if Some(c) == close => return Ok(fields),
                Tok::Ident(name) => {
                    let value = self.field_value(&name)?;
                    fields.push(Field { name, pos, value });
                    if !self.eat(',')? {
                        self.eat(';')?;
                    }
                }
                Tok::Eof => {
                    let (c, at) = open.expect("inside a message");
                    let close = close.expect("inside a message");
                    // Reported where the unclosed bracket opens: that is where the fix goes.
                    return Lexer::err(at, format!("'{c}' is not closed: missing '{close}' before the end of the file (at {pos})"));
                }
                other => {
                    let want = close.map_or(String::new(), |c| format!(" or '{c}'"));
                    return Lexer::err(pos, format!("expected a field name{want}, found {}", other.describe()));
                }
            }
        }
    }

    /// What follows a field name: `: value`, `: [list]`, or a message with or without `:`.
    fn field_value(&mut self, name: &str) -> Result<Value> {
        if self.eat(':')? {
            if self.peek()?.0 == Tok::Sym('[') {
                let (_, pos) = self.next()?;
                let mut items = Vec::new();
                if !self.eat(']')? {
                    loop {
                        items.push(self.value(name)?);
                        if self.eat(']')? {
                            break;
                        }
                        let (tok, pos) = self.next()?;
                        if tok != Tok::Sym(',') {
                            return Lexer::err(pos, format!("in the list of '{name}': expected ',' or ']', found {}", tok.describe()));
                        }
                    }
                }
                return Ok(Value::List { pos, items });
            }
            return self.value(name);
        }
        match self.peek()? {
            (Tok::Sym('{' | '<'), _) => self.value(name),
            (tok, pos) => Lexer::err(*pos, format!("expected ':' or '{{' after field name '{name}', found {}", tok.describe())),
        }
    }

    /// A scalar or a `{...}` / `<...>` message.
    fn value(&mut self, name: &str) -> Result<Value> {
        let (tok, pos) = self.next()?;
        match tok {
            Tok::Sym(c @ ('{' | '<')) => Ok(Value::Message { pos, fields: self.fields(Some((c, pos)))? }),
            Tok::Sym('-') => match self.next()? {
                (Tok::Number(n), _) => Ok(Value::Scalar { pos, scalar: Scalar::Number(format!("-{n}")) }),
                (Tok::Ident(i), _) if ["inf", "infinity", "nan"].contains(&i.to_ascii_lowercase().as_str()) => {
                    Ok(Value::Scalar { pos, scalar: Scalar::Ident(format!("-{i}")) })
                }
                (other, p) => Lexer::err(p, format!("expected a number after '-' for '{name}', found {}", other.describe())),
            },
            Tok::Number(n) => Ok(Value::Scalar { pos, scalar: Scalar::Number(n) }),
            Tok::Ident(i) => Ok(Value::Scalar { pos, scalar: Scalar::Ident(i) }),
            Tok::Str(mut s) => {
                while let (Tok::Str(_), _) = self.peek()? {
                    let (Tok::Str(more), _) = self.next()? else { unreachable!("peeked a string") };
                    s.push_str(&more);
                }
                Ok(Value::Scalar { pos, scalar: Scalar::Str(s) })
            }
            other => Lexer::err(pos, format!("expected a value for '{name}', found {}", other.describe())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(v: &Value) -> &Scalar {
        match v {
            Value::Scalar { scalar, .. } => scalar,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn fields_messages_lists_and_positions() {
        let text = "# comment\nbatch_num: 4  # trailing\nm {\n  x: -1.5e-3, y: 'a\\tb' \"c\\x41\\101\\u00e9\";\n}\nn: < k: inf >\nl: [\"a\", 'b']\nlm: [{a: 1}, {a: 2}]\ne: []";
        let f = parse(text).unwrap();
        assert_eq!(f.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["batch_num", "m", "n", "l", "lm", "e"]);
        assert_eq!(f[0].pos, Pos { line: 2, col: 1 });
        assert_eq!(scalar(&f[0].value), &Scalar::Number("4".into()));
        assert_eq!(f[0].value.pos(), Pos { line: 2, col: 12 });
        let Value::Message { fields: m, .. } = &f[1].value else { panic!() };
        assert_eq!(scalar(&m[0].value), &Scalar::Number("-1.5e-3".into()));
        assert_eq!(m[1].pos, Pos { line: 4, col: 15 });
        assert_eq!(scalar(&m[1].value), &Scalar::Str("a\tbcAAé".into()));
        let Value::Message { fields: n, .. } = &f[2].value else { panic!() };
        assert_eq!(scalar(&n[0].value), &Scalar::Ident("inf".into()));
        let Value::List { items, .. } = &f[3].value else { panic!() };
        assert_eq!(items.iter().map(scalar).collect::<Vec<_>>(), [&Scalar::Str("a".into()), &Scalar::Str("b".into())]);
        let Value::List { items, .. } = &f[4].value else { panic!() };
        assert!(matches!(&items[1], Value::Message { fields, .. } if scalar(&fields[0].value) == &Scalar::Number("2".into())));
        assert!(matches!(&f[5].value, Value::List { items, .. } if items.is_empty()));
    }

    #[test]
    fn syntax_errors_have_positions() {
        for (text, at, needle) in [
            ("a: 1\nb {\n c: 2\n", "2:3", "'{' is not closed: missing '}' before the end of the file (at 4:1)"),
            ("a 1", "1:3", "expected ':' or '{' after field name 'a', found number 1"),
            ("a: \"xy\nb: 1", "1:4", "string not closed on its line"),
            ("a: [1 2]", "1:7", "expected ',' or ']', found number 2"),
            ("a: }", "1:4", "expected a value for 'a', found '}'"),
            ("a: 'bad \\q'", "1:9", "unknown escape \\q"),
            ("a: 1 }", "1:6", "expected a field name, found '}'"),
            ("a: 1 @", "1:6", "unexpected character '@'"),
            ("a: -x", "1:5", "expected a number after '-'"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.pos.to_string(), at, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }
}
