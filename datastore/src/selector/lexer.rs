//! Selector tokens, each with the column it starts at.

use super::SelectorError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    Label(String),
    Str(String),
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Not,
    All,
    Global,
    Has(String),
    LParen,
    RParen,
    And,
    Or,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Label(l) => format!("label '{l}'"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::Comma => "','".into(),
            Tok::Eq => "'=='".into(),
            Tok::Ne => "'!='".into(),
            Tok::In => "'in'".into(),
            Tok::NotIn => "'not in'".into(),
            Tok::Contains => "'contains'".into(),
            Tok::StartsWith => "'starts with'".into(),
            Tok::EndsWith => "'ends with'".into(),
            Tok::Not => "'!'".into(),
            Tok::All => "'all()'".into(),
            Tok::Global => "'global()'".into(),
            Tok::Has(l) => format!("'has({l})'"),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::And => "'&&'".into(),
            Tok::Or => "'||'".into(),
            Tok::Eof => "end of selector".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) column: usize,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// A cursor over the input that knows its character column.
struct Cursor<'a> {
    rest: &'a str,
    column: usize,
}

impl<'a> Cursor<'a> {
    fn skip_space(&mut self) {
        while let Some(c) = self.rest.chars().next().filter(|&c| is_space(c)) {
            self.bump(c.len_utf8());
        }
    }

    fn bump(&mut self, bytes: usize) -> &'a str {
        let (taken, rest) = self.rest.split_at(bytes.min(self.rest.len()));
        self.rest = rest;
        self.column += taken.chars().count();
        taken
    }

    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest.starts_with(prefix) {
            self.bump(prefix.len());
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        let len = self
            .rest
            .find(|c: char| !is_ident(c))
            .unwrap_or(self.rest.len());
        if len == 0 { None } else { Some(self.bump(len)) }
    }

    fn error(&self, message: impl Into<String>) -> SelectorError {
        SelectorError {
            column: self.column,
            message: message.into(),
        }
    }
}

/// Splits `input` into tokens, ending with [`Tok::Eof`].
pub(super) fn lex(input: &str) -> Result<Vec<Token>, SelectorError> {
    let mut c = Cursor {
        rest: input,
        column: 1,
    };
    let mut out: Vec<Token> = Vec::new();
    loop {
        c.skip_space();
        let column = c.column;
        let Some(first) = c.rest.chars().next() else {
            out.push(Token {
                tok: Tok::Eof,
                column,
            });
            return Ok(out);
        };
        let after_label = matches!(
            out.last(),
            Some(Token {
                tok: Tok::Label(_),
                ..
            })
        );
        let tok = match first {
            '(' => {
                c.bump(1);
                Tok::LParen
            }
            ')' => {
                c.bump(1);
                Tok::RParen
            }
            '{' => {
                c.bump(1);
                Tok::LBrace
            }
            '}' => {
                c.bump(1);
                Tok::RBrace
            }
            ',' => {
                c.bump(1);
                Tok::Comma
            }
            '"' | '\'' => {
                c.bump(1);
                let Some(end) = c.rest.find(first) else {
                    return Err(SelectorError {
                        column,
                        message: format!("unterminated string (no closing {first})"),
                    });
                };
                let value = c.bump(end).to_owned();
                c.bump(1);
                Tok::Str(value)
            }
            '=' => {
                if !c.eat("==") {
                    return Err(c.error("expected '==' (a single '=' is not an operator)"));
                }
                Tok::Eq
            }
            '!' => {
                if c.eat("!=") {
                    Tok::Ne
                } else {
                    c.bump(1);
                    Tok::Not
                }
            }
            '&' => {
                if !c.eat("&&") {
                    return Err(c.error("expected '&&'"));
                }
                Tok::And
            }
            '|' => {
                if !c.eat("||") {
                    return Err(c.error("expected '||'"));
                }
                Tok::Or
            }
            _ if after_label => operator(&mut c, &out)?,
            _ => word(&mut c, first)?,
        };
        out.push(Token { tok, column });
    }
}

/// After a label: `in`, `not in`, `contains`, `starts with`, `ends with`.
fn operator(c: &mut Cursor<'_>, out: &[Token]) -> Result<Tok, SelectorError> {
    if c.eat("contains") {
        return Ok(Tok::Contains);
    }
    for (first, second, tok) in [
        ("starts", "with", Tok::StartsWith),
        ("ends", "with", Tok::EndsWith),
        ("not", "in", Tok::NotIn),
    ] {
        if c.eat(first) {
            c.skip_space();
            if c.eat(second) {
                return Ok(tok);
            }
            return Err(c.error(format!("expected '{second}' after '{first}'")));
        }
    }
    if c.eat("in") {
        return Ok(Tok::In);
    }
    let label = match out.last() {
        Some(Token {
            tok: Tok::Label(l), ..
        }) => l.as_str(),
        _ => "",
    };
    Err(c.error(format!(
        "expected an operator after label '{label}' \
         (==, !=, in, not in, contains, starts with, ends with)"
    )))
}

/// `has(k)`, `all()`, `global()` or a label.
fn word(c: &mut Cursor<'_>, first: char) -> Result<Tok, SelectorError> {
    if c.eat("has(") {
        c.skip_space();
        let Some(label) = c.ident() else {
            return Err(c.error("expected a label name in has(...)"));
        };
        c.skip_space();
        if !c.eat(")") {
            return Err(c.error("expected ')' to close has("));
        }
        return Ok(Tok::Has(label.to_owned()));
    }
    for (name, tok) in [("all(", Tok::All), ("global(", Tok::Global)] {
        if c.eat(name) {
            c.skip_space();
            if !c.eat(")") {
                return Err(c.error(format!("expected ')' after '{name}'")));
            }
            return Ok(tok);
        }
    }
    match c.ident() {
        Some(label) => Ok(Tok::Label(label.to_owned())),
        None => Err(c.error(format!("unexpected character {first:?}"))),
    }
}
