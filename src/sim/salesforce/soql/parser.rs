//! The SOQL parser: recursive descent from tokens to an unchecked AST.
//!
//! ```text
//! query     := SELECT ident (',' ident)* FROM ident [WHERE condition]
//!              [ORDER BY order (',' order)*] [LIMIT number]
//! condition := unary (AND unary)* | unary (OR unary)*
//! unary     := NOT unary | '(' condition ')' | predicate
//! predicate := ident op literal | ident [NOT] IN '(' literal (',' literal)* ')'
//!            | ident LIKE string
//! order     := ident [ASC | DESC] [NULLS (FIRST | LAST)]
//! literal   := string | number | date | datetime | NULL | TRUE | FALSE
//! ```

use chrono::{DateTime, NaiveDate, Utc};

use super::SoqlError;
use super::lexer::{CmpOp, PatElem, Tok, Token, tokenize};

/// A name as written, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    pub(crate) name: String,
    pub(crate) pos: usize,
}

/// A literal value in a filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LitKind {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
}

/// A literal with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lit {
    pub(crate) kind: LitKind,
    pub(crate) pos: usize,
}

/// A WHERE condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        field: Ident,
        op: CmpOp,
        value: Lit,
    },
    In {
        field: Ident,
        negated: bool,
        values: Vec<Lit>,
    },
    Like {
        field: Ident,
        pattern: Vec<PatElem>,
        pos: usize,
    },
}

/// One ORDER BY key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderItem {
    pub(crate) field: Ident,
    pub(crate) descending: bool,
    /// `None` when the query leaves it to the default.
    pub(crate) nulls_first: Option<bool>,
}

/// A parsed SELECT statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub(crate) fields: Vec<Ident>,
    pub(crate) object: Ident,
    pub(crate) filter: Option<Expr>,
    pub(crate) order_by: Vec<OrderItem>,
    pub(crate) limit: Option<u64>,
}

/// Words that cannot name a field or an object.
const RESERVED: &[&str] = &[
    "and", "asc", "by", "desc", "false", "first", "from", "group", "having", "in", "last", "like",
    "limit", "not", "null", "nulls", "or", "order", "select", "true", "where", "with", "offset",
];

/// Parses a whole query.
pub(crate) fn parse_query(input: &str) -> Result<Query, SoqlError> {
    let mut parser = Parser {
        tokens: tokenize(input)?,
        at: 0,
    };
    let query = parser.query()?;
    parser.expect_eof()?;
    Ok(query)
}

/// Parses a bare condition, as written in a validation rule.
pub(crate) fn parse_condition(input: &str) -> Result<Expr, SoqlError> {
    let mut parser = Parser {
        tokens: tokenize(input)?,
        at: 0,
    };
    let condition = parser.condition()?;
    parser.expect_eof()?;
    Ok(condition)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof, and `at` never moves past it.
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::Eof {
            self.at += 1;
        }
        token
    }

    fn unexpected(&self) -> SoqlError {
        let token = self.peek();
        SoqlError::malformed(token.pos, format!("unexpected token: {}", token.text))
    }

    fn keyword(&mut self, word: &str) -> bool {
        if self.peek().is_keyword(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), SoqlError> {
        if self.keyword(word) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), SoqlError> {
        if &self.peek().tok == tok {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect_eof(&self) -> Result<(), SoqlError> {
        if self.peek().tok == Tok::Eof {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn ident(&mut self) -> Result<Ident, SoqlError> {
        match &self.peek().tok {
            Tok::Ident(name) if !RESERVED.contains(&name.to_ascii_lowercase().as_str()) => {
                let ident = Ident {
                    name: name.clone(),
                    pos: self.peek().pos,
                };
                self.at += 1;
                Ok(ident)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn query(&mut self) -> Result<Query, SoqlError> {
        self.expect_keyword("select")?;
        let mut fields = vec![self.ident()?];
        while self.peek().tok == Tok::Comma {
            self.at += 1;
            fields.push(self.ident()?);
        }

        self.expect_keyword("from")?;
        let object = self.ident()?;

        let filter = if self.keyword("where") {
            Some(self.condition()?)
        } else {
            None
        };

        let mut order_by = Vec::new();
        if self.keyword("order") {
            self.expect_keyword("by")?;
            loop {
                order_by.push(self.order_item()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.at += 1;
            }
        }

        let mut limit = None;
        if self.keyword("limit") {
            let token = self.bump();
            match token.tok {
                Tok::Number(n) if n >= 0.0 && n.fract() == 0.0 && n <= 2_147_483_647.0 => {
                    // Checked just above: integral and within u32.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let n = n as u64;
                    limit = Some(n);
                }
                _ => {
                    return Err(SoqlError::malformed(
                        token.pos,
                        format!("unexpected token: {}", token.text),
                    ));
                }
            }
        }

        Ok(Query {
            fields,
            object,
            filter,
            order_by,
            limit,
        })
    }

    fn order_item(&mut self) -> Result<OrderItem, SoqlError> {
        let field = self.ident()?;
        let descending = if self.keyword("desc") {
            true
        } else {
            self.keyword("asc");
            false
        };
        let nulls_first = if self.keyword("nulls") {
            if self.keyword("first") {
                Some(true)
            } else {
                self.expect_keyword("last")?;
                Some(false)
            }
        } else {
            None
        };
        Ok(OrderItem {
            field,
            descending,
            nulls_first,
        })
    }

    fn condition(&mut self) -> Result<Expr, SoqlError> {
        let first = self.unary()?;
        let joiner = if self.peek().is_keyword("and") {
            "and"
        } else if self.peek().is_keyword("or") {
            "or"
        } else {
            return Ok(first);
        };

        let mut parts = vec![first];
        while self.keyword(joiner) {
            parts.push(self.unary()?);
        }
        // Salesforce refuses `a AND b OR c`: the reader must say which is meant.
        if self.peek().is_keyword("and") || self.peek().is_keyword("or") {
            return Err(self.unexpected());
        }
        Ok(if joiner == "and" {
            Expr::And(parts)
        } else {
            Expr::Or(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, SoqlError> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek().tok == Tok::LParen {
            self.at += 1;
            let inner = self.condition()?;
            self.expect(&Tok::RParen)?;
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, SoqlError> {
        let field = self.ident()?;

        if let Tok::Op(op) = self.peek().tok {
            self.at += 1;
            let value = self.literal()?;
            return Ok(Expr::Compare { field, op, value });
        }
        if self.keyword("like") {
            let token = self.bump();
            return match token.tok {
                Tok::Str(lit) => Ok(Expr::Like {
                    field,
                    pattern: lit.pattern,
                    pos: token.pos,
                }),
                _ => Err(SoqlError::malformed(
                    token.pos,
                    format!("unexpected token: {}", token.text),
                )),
            };
        }
        let negated = self.keyword("not");
        if self.keyword("in") {
            self.expect(&Tok::LParen)?;
            let mut values = vec![self.literal()?];
            while self.peek().tok == Tok::Comma {
                self.at += 1;
                values.push(self.literal()?);
            }
            self.expect(&Tok::RParen)?;
            return Ok(Expr::In {
                field,
                negated,
                values,
            });
        }
        Err(self.unexpected())
    }

    fn literal(&mut self) -> Result<Lit, SoqlError> {
        let token = self.bump();
        let kind = match token.tok {
            Tok::Str(lit) => {
                if let Some(at) = lit.like_escape_at {
                    let sequence = &token.text[at - token.pos..at - token.pos + 2];
                    return Err(SoqlError::malformed(
                        at,
                        format!(
                            "Invalid string literal '{}'. Illegal character sequence '{sequence}' \
                             in string literal.",
                            &token.text[1..token.text.len() - 1]
                        ),
                    ));
                }
                LitKind::Text(lit.value)
            }
            Tok::Number(n) => LitKind::Number(n),
            Tok::Date(d) => LitKind::Date(d),
            Tok::DateTime(t) => LitKind::DateTime(t),
            Tok::Ident(ref word) if word.eq_ignore_ascii_case("null") => LitKind::Null,
            Tok::Ident(ref word) if word.eq_ignore_ascii_case("true") => LitKind::Bool(true),
            Tok::Ident(ref word) if word.eq_ignore_ascii_case("false") => LitKind::Bool(false),
            _ => {
                return Err(SoqlError::malformed(
                    token.pos,
                    format!("unexpected token: {}", token.text),
                ));
            }
        };
        Ok(Lit {
            kind,
            pos: token.pos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(idents: &[Ident]) -> Vec<&str> {
        idents.iter().map(|i| i.name.as_str()).collect()
    }

    #[test]
    fn full_query_parses_into_its_parts() {
        let query = parse_query(
            "select Id, Name FROM account WHERE Name != null ORDER BY SystemModstamp, Id DESC \
             NULLS LAST LIMIT 10",
        )
        .expect("parses");
        assert_eq!(names(&query.fields), ["Id", "Name"]);
        assert_eq!(query.object.name, "account");
        assert!(matches!(
            query.filter,
            Some(Expr::Compare { op: CmpOp::Ne, .. })
        ));
        assert_eq!(query.order_by.len(), 2);
        assert!(!query.order_by[0].descending);
        assert_eq!(query.order_by[0].nulls_first, None);
        assert!(query.order_by[1].descending);
        assert_eq!(query.order_by[1].nulls_first, Some(false));
        assert_eq!(query.limit, Some(10));
    }

    #[test]
    fn and_or_not_and_parentheses_nest() {
        let expr = parse_condition("A = 1 AND (B = 2 OR NOT C IN (3, 4)) AND D NOT IN ('x')")
            .expect("parses");
        let Expr::And(parts) = expr else {
            panic!("top level is AND")
        };
        assert_eq!(parts.len(), 3);
        let Expr::Or(inner) = &parts[1] else {
            panic!("parenthesised OR")
        };
        assert!(matches!(&inner[1], Expr::Not(_)));
        assert!(matches!(&parts[2], Expr::In { negated: true, .. }));
    }

    #[test]
    fn mixing_and_with_or_needs_parentheses() {
        let err = parse_condition("A = 1 AND B = 2 OR C = 3").expect_err("ambiguous");
        assert_eq!(err.detail, "unexpected token: OR");
    }

    #[test]
    fn like_takes_a_pattern() {
        let expr = parse_condition("Name LIKE 'Ac_e%'").expect("parses");
        let Expr::Like { pattern, .. } = expr else {
            panic!("like")
        };
        assert_eq!(pattern[2], PatElem::One);
        assert_eq!(pattern[4], PatElem::Many);
    }

    #[test]
    fn like_escapes_outside_like_are_illegal() {
        let err = parse_condition(r"Name = '50\%'").expect_err("\\% outside LIKE");
        assert!(
            err.detail.contains(r"Illegal character sequence '\%'"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn malformed_queries_name_the_unexpected_token() {
        let cases = [
            ("SELECT FROM Account", "unexpected token: FROM"),
            ("SELECT Id Account", "unexpected token: Account"),
            ("SELECT Id FROM Account WHERE", "unexpected token: <EOF>"),
            (
                "SELECT Id FROM Account WHERE Name = ",
                "unexpected token: <EOF>",
            ),
            (
                "SELECT Id FROM Account WHERE (Name = 'a'",
                "unexpected token: <EOF>",
            ),
            ("SELECT Id FROM Account LIMIT x", "unexpected token: x"),
            ("SELECT Id FROM Account LIMIT 1.5", "unexpected token: 1.5"),
            ("SELECT Id FROM Account ORDER Id", "unexpected token: Id"),
            ("SELECT Id FROM Account extra", "unexpected token: extra"),
            ("SELECT Id, FROM Account", "unexpected token: FROM"),
        ];
        for (query, detail) in cases {
            let err = parse_query(query).expect_err(query);
            assert_eq!(err.code, "MALFORMED_QUERY", "{query}");
            assert_eq!(err.detail, detail, "{query}");
        }
    }
}
