//! The SOQL tokenizer: identifiers (keywords are identifiers the parser recognises), quoted
//! strings with SOQL's escapes, numbers, date and datetime literals, operators and punctuation.

use chrono::{DateTime, NaiveDate, Utc};

use super::SoqlError;
use crate::sim::salesforce::values::{parse_date, parse_datetime};

/// One element of a LIKE pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatElem {
    /// A literal character (an escaped `\%` or `\_` included).
    Char(char),
    /// `_`: exactly one character.
    One,
    /// `%`: any run of characters.
    Many,
}

/// A quoted string literal, decoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StrLit {
    /// The decoded text, for comparisons.
    pub(crate) value: String,
    /// The same text as a LIKE pattern.
    pub(crate) pattern: Vec<PatElem>,
    /// Where a `\%` or `\_` escape sits: only LIKE accepts them.
    pub(crate) like_escape_at: Option<usize>,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A token's kind and value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(StrLit),
    Number(f64),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Op(CmpOp),
    Comma,
    LParen,
    RParen,
    Eof,
}

/// A token with its byte offset and source text (for "unexpected token" messages).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
    pub(crate) text: String,
}

impl Token {
    /// Whether this token is the keyword `word` (case-insensitive).
    pub(crate) fn is_keyword(&self, word: &str) -> bool {
        matches!(&self.tok, Tok::Ident(name) if name.eq_ignore_ascii_case(word))
    }
}

/// Splits `input` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, SoqlError> {
    let mut lexer = Lexer {
        input,
        pos: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.input[self.pos..].chars().nth(offset)
    }

    fn push(&mut self, tok: Tok, start: usize) {
        let text = self.input[start..self.pos].to_string();
        self.tokens.push(Token {
            tok,
            pos: start,
            text,
        });
    }

    fn no_viable(&self, at: usize, c: char) -> SoqlError {
        let column = self.input[..at].chars().count();
        SoqlError::malformed(
            at,
            format!("line 1:{column} no viable alternative at character '{c}'"),
        )
    }

    fn run(&mut self) -> Result<(), SoqlError> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            if c.is_whitespace() {
                self.pos += c.len_utf8();
                continue;
            }
            match c {
                ',' => self.single(Tok::Comma),
                '(' => self.single(Tok::LParen),
                ')' => self.single(Tok::RParen),
                '=' => self.single(Tok::Op(CmpOp::Eq)),
                '!' if self.peek_at(1) == Some('=') => self.double(Tok::Op(CmpOp::Ne)),
                '<' if self.peek_at(1) == Some('>') => self.double(Tok::Op(CmpOp::Ne)),
                '<' if self.peek_at(1) == Some('=') => self.double(Tok::Op(CmpOp::Le)),
                '<' => self.single(Tok::Op(CmpOp::Lt)),
                '>' if self.peek_at(1) == Some('=') => self.double(Tok::Op(CmpOp::Ge)),
                '>' => self.single(Tok::Op(CmpOp::Gt)),
                '\'' => self.string()?,
                '-' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => self.number(),
                c if c.is_ascii_digit() => self.number_or_date()?,
                c if c.is_ascii_alphabetic() || c == '_' => {
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                    {
                        self.pos += 1;
                    }
                    let name = self.input[start..self.pos].to_string();
                    self.push(Tok::Ident(name), start);
                }
                other => return Err(self.no_viable(start, other)),
            }
        }
        self.tokens.push(Token {
            tok: Tok::Eof,
            pos: self.input.len(),
            text: "<EOF>".into(),
        });
        Ok(())
    }

    fn single(&mut self, tok: Tok) {
        let start = self.pos;
        self.pos += 1;
        self.push(tok, start);
    }

    fn double(&mut self, tok: Tok) {
        let start = self.pos;
        self.pos += 2;
        self.push(tok, start);
    }

    fn string(&mut self) -> Result<(), SoqlError> {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        let mut pattern = Vec::new();
        let mut like_escape_at = None;

        loop {
            let Some(c) = self.peek() else {
                return Err(SoqlError::malformed(
                    start,
                    format!(
                        "line 1:{} mismatched character '<EOF>' expecting '''",
                        self.input.chars().count()
                    ),
                ));
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                '\'' => break,
                '\\' => {
                    let decoded = self.escape(start, at)?;
                    match decoded {
                        Escaped::Char(d) => {
                            value.push(d);
                            pattern.push(PatElem::Char(d));
                        }
                        Escaped::LikeLiteral(d) => {
                            like_escape_at.get_or_insert(at);
                            value.push('\\');
                            value.push(d);
                            pattern.push(PatElem::Char(d));
                        }
                    }
                }
                '%' => {
                    value.push(c);
                    pattern.push(PatElem::Many);
                }
                '_' => {
                    value.push(c);
                    pattern.push(PatElem::One);
                }
                _ => {
                    value.push(c);
                    pattern.push(PatElem::Char(c));
                }
            }
        }
        self.push(
            Tok::Str(StrLit {
                value,
                pattern,
                like_escape_at,
            }),
            start,
        );
        Ok(())
    }

    /// Decodes the escape after a backslash at `at`, inside the string that starts at `start`.
    fn escape(&mut self, start: usize, at: usize) -> Result<Escaped, SoqlError> {
        let illegal = |lexer: &Self| {
            SoqlError::malformed(
                at,
                format!(
                    "Invalid string literal '{}'. Illegal character sequence '{}' in string \
                     literal.",
                    &lexer.input[start + 1..at],
                    &lexer.input[at..lexer.pos],
                ),
            )
        };
        let Some(next) = self.peek() else {
            return Err(illegal(self));
        };
        self.pos += next.len_utf8();
        let decoded = match next {
            'n' | 'N' => '\n',
            'r' | 'R' => '\r',
            't' | 'T' => '\t',
            'b' | 'B' => '\u{8}',
            'f' | 'F' => '\u{c}',
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            '%' | '_' => return Ok(Escaped::LikeLiteral(next)),
            'u' => {
                let hex = self.input.get(self.pos..self.pos + 4).unwrap_or("");
                let code = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32);
                let Some(decoded) = code else {
                    return Err(illegal(self));
                };
                self.pos += 4;
                decoded
            }
            _ => return Err(illegal(self)),
        };
        Ok(Escaped::Char(decoded))
    }

    fn number(&mut self) {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        self.digits();
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
            self.pos += 1;
            self.digits();
        }
        let text = &self.input[start..self.pos];
        // The text is digits with an optional sign and fraction, which always parses.
        let value = text.parse::<f64>().unwrap_or(f64::NAN);
        self.push(Tok::Number(value), start);
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn number_or_date(&mut self) -> Result<(), SoqlError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let date_shaped = rest.len() >= 10
            && rest.as_bytes()[4] == b'-'
            && rest.as_bytes()[7] == b'-'
            && rest[..10]
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !date_shaped {
            self.number();
            return Ok(());
        }

        // The literal runs until whitespace, a comma or a closing parenthesis.
        let len = rest
            .find(|c: char| c.is_whitespace() || c == ',' || c == ')')
            .unwrap_or(rest.len());
        let text = &rest[..len];
        self.pos += len;
        if text.len() == 10 {
            let date = parse_date(text).ok_or_else(|| self.bad_literal(start, text))?;
            self.push(Tok::Date(date), start);
            return Ok(());
        }
        let instant = parse_soql_datetime(text).ok_or_else(|| self.bad_literal(start, text))?;
        self.push(Tok::DateTime(instant), start);
        Ok(())
    }

    fn bad_literal(&self, start: usize, text: &str) -> SoqlError {
        let _ = self;
        SoqlError::malformed(start, format!("unexpected token: {text}"))
    }
}

enum Escaped {
    Char(char),
    LikeLiteral(char),
}

/// Parses a SOQL datetime literal: `YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|-hh:mm)`.
fn parse_soql_datetime(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    if bytes.get(10) != Some(&b'T') {
        return None;
    }
    let zone_ok = text.ends_with('Z') || {
        let n = text.len();
        n > 6 && matches!(bytes[n - 6], b'+' | b'-') && bytes[n - 3] == b':'
    };
    if !zone_ok {
        return None;
    }
    parse_datetime(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<Tok> {
        tokenize(input)
            .expect("tokenizes")
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    fn string(input: &str) -> StrLit {
        match tokenize(input).expect("tokenizes").remove(0).tok {
            Tok::Str(lit) => lit,
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn operators_and_punctuation() {
        assert_eq!(
            kinds("= != <> < <= > >= , ( )"),
            vec![
                Tok::Op(CmpOp::Eq),
                Tok::Op(CmpOp::Ne),
                Tok::Op(CmpOp::Ne),
                Tok::Op(CmpOp::Lt),
                Tok::Op(CmpOp::Le),
                Tok::Op(CmpOp::Gt),
                Tok::Op(CmpOp::Ge),
                Tok::Comma,
                Tok::LParen,
                Tok::RParen,
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn every_soql_escape_decodes() {
        let lit = string(r#"'a\'b\"c\\d\ne\Nf\rg\th\bi\fj\u00e9k'"#);
        assert_eq!(lit.value, "a'b\"c\\d\ne\nf\rg\th\u{8}i\u{c}j\u{e9}k");
        assert_eq!(lit.like_escape_at, None);
    }

    #[test]
    fn like_escapes_are_literal_pattern_characters() {
        let lit = string(r"'50\% off_%'");
        assert_eq!(
            lit.pattern,
            vec![
                PatElem::Char('5'),
                PatElem::Char('0'),
                PatElem::Char('%'),
                PatElem::Char(' '),
                PatElem::Char('o'),
                PatElem::Char('f'),
                PatElem::Char('f'),
                PatElem::One,
                PatElem::Many,
            ]
        );
        assert_eq!(lit.like_escape_at, Some(3));
    }

    #[test]
    fn illegal_escape_and_unterminated_string_are_malformed() {
        let err = tokenize(r"Name = 'a\qb'").expect_err("\\q is illegal");
        assert_eq!(err.code, "MALFORMED_QUERY");
        assert!(
            err.detail.contains("Illegal character sequence '\\q'"),
            "{}",
            err.detail
        );
        let err = tokenize("Name = 'open").expect_err("unterminated");
        assert!(
            err.detail.contains("mismatched character '<EOF>'"),
            "{}",
            err.detail
        );
        let err = tokenize(r"'\u12'").expect_err("short unicode escape");
        assert_eq!(err.code, "MALFORMED_QUERY");
    }

    #[test]
    fn numbers_dates_and_datetimes() {
        assert_eq!(
            kinds("42 -3.5")[..2],
            [Tok::Number(42.0), Tok::Number(-3.5)]
        );
        let date = NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date");
        assert_eq!(kinds("2024-01-01")[0], Tok::Date(date));
        let utc = parse_datetime("2024-01-01T00:00:00Z").expect("valid");
        assert_eq!(kinds("2024-01-01T00:00:00Z")[0], Tok::DateTime(utc));
        assert_eq!(kinds("2024-01-01T01:00:00+01:00")[0], Tok::DateTime(utc));
        let fractional = parse_datetime("2024-01-01T00:00:00.250Z").expect("valid");
        assert_eq!(
            kinds("2024-01-01T00:00:00.250Z)")[0],
            Tok::DateTime(fractional)
        );
        assert!(
            tokenize("2024-01-01T00:00:00").is_err(),
            "a datetime needs a zone"
        );
        assert!(tokenize("2024-13-01").is_err(), "month 13");
    }

    #[test]
    fn stray_character_is_no_viable_alternative() {
        let err = tokenize("SELECT Id FROM Account WHERE Name = \"x\"").expect_err("double quote");
        assert_eq!(
            err.detail,
            "line 1:36 no viable alternative at character '\"'"
        );
    }
}
