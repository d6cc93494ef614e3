//! Recursive descent over the tokens: `||` of `&&` of operations, with the
//! nesting depth bounded by [`MAX_DEPTH`](super::MAX_DEPTH).

use std::collections::BTreeSet;

use super::ast::Expr;
use super::lexer::{Tok, Token};
use super::{MAX_DEPTH, SelectorError};

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    depth: usize,
}

/// Parses a whole token list (ending in `Eof`).
pub(super) fn parse(tokens: &[Token]) -> Result<Expr, SelectorError> {
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    if matches!(p.peek(), Tok::Eof) {
        return Ok(Expr::All);
    }
    let expr = p.or()?;
    match p.peek() {
        Tok::Eof => Ok(expr),
        other => Err(p.error(format!(
            "unexpected {} after a complete expression",
            other.describe()
        ))),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn column(&self) -> usize {
        match self.tokens.get(self.pos).or(self.tokens.last()) {
            Some(t) => t.column,
            None => 1,
        }
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn error(&self, message: String) -> SelectorError {
        SelectorError {
            column: self.column(),
            message,
        }
    }

    fn enter(&mut self) -> Result<(), SelectorError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} deep")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, SelectorError> {
        let mut terms = vec![self.and()?];
        while matches!(self.peek(), Tok::Or) {
            self.next();
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, SelectorError> {
        let mut terms = vec![self.operation()?];
        while matches!(self.peek(), Tok::And) {
            self.next();
            terms.push(self.operation()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn operation(&mut self) -> Result<Expr, SelectorError> {
        let mut negated = false;
        while matches!(self.peek(), Tok::Not) {
            self.next();
            negated = !negated;
        }
        let expr = match self.next() {
            Tok::Has(k) => Expr::Has(k),
            Tok::All => Expr::All,
            Tok::Global => Expr::Global,
            Tok::Label(k) => self.comparison(k)?,
            Tok::LParen => {
                self.enter()?;
                let inner = self.or()?;
                if !matches!(self.peek(), Tok::RParen) {
                    return Err(
                        self.error(format!("expected ')', found {}", self.peek().describe()))
                    );
                }
                self.next();
                self.depth -= 1;
                inner
            }
            other => {
                self.pos = self.pos.saturating_sub(1);
                return Err(self.error(format!(
                    "expected a label, has(), all(), global(), '!' or '(', found {}",
                    other.describe()
                )));
            }
        };
        Ok(match (negated, expr) {
            (false, e) => e,
            // `!(!e)` is `e`, so printing and re-parsing gives the same tree.
            (true, Expr::Not(inner)) => *inner,
            (true, e) => Expr::Not(Box::new(e)),
        })
    }

    fn string(&mut self, after: &str) -> Result<String, SelectorError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            other => Err(self.error(format!(
                "expected a quoted string after {after}, found {}",
                other.describe()
            ))),
        }
    }

    fn comparison(&mut self, k: String) -> Result<Expr, SelectorError> {
        let op = self.next();
        Ok(match op {
            Tok::Eq => Expr::Eq(k, self.string("'=='")?),
            Tok::Ne => Expr::Ne(k, self.string("'!='")?),
            Tok::Contains => Expr::Contains(k, self.string("'contains'")?),
            Tok::StartsWith => Expr::StartsWith(k, self.string("'starts with'")?),
            Tok::EndsWith => Expr::EndsWith(k, self.string("'ends with'")?),
            Tok::In => Expr::In(k, self.set("'in'")?),
            Tok::NotIn => Expr::NotIn(k, self.set("'not in'")?),
            other => {
                self.pos = self.pos.saturating_sub(1);
                return Err(self.error(format!(
                    "expected an operator after label '{k}', found {}",
                    other.describe()
                )));
            }
        })
    }

    /// `{ 'a', 'b' }`; an empty set `{}` is allowed, as in Calico.
    fn set(&mut self, after: &str) -> Result<BTreeSet<String>, SelectorError> {
        if !matches!(self.peek(), Tok::LBrace) {
            return Err(self.error(format!(
                "expected '{{' after {after}, found {}",
                self.peek().describe()
            )));
        }
        self.next();
        let mut set = BTreeSet::new();
        while let Tok::Str(s) = self.peek().clone() {
            self.next();
            set.insert(s);
            if !matches!(self.peek(), Tok::Comma) {
                break;
            }
            self.next();
        }
        if !matches!(self.peek(), Tok::RBrace) {
            return Err(self.error(format!(
                "expected '}}' or a quoted string, found {}",
                self.peek().describe()
            )));
        }
        self.next();
        Ok(set)
    }
}
