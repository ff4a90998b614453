//! The SOQL subset the simulated org understands: a tokenizer ([`lexer`]), a recursive-descent
//! parser into an AST ([`parser`]), and a binder and evaluator that check the AST against the
//! describe metadata and run it over records ([`eval`]).
//!
//! Supported: `SELECT` field list, `FROM`, `WHERE` with `= != <> < <= > >= LIKE IN NOT IN`,
//! `AND`, `OR`, `NOT`, parentheses, `null`, booleans, numbers, quoted strings with SOQL's
//! escapes, date and datetime literals; `ORDER BY` several fields with `ASC`/`DESC` and
//! `NULLS FIRST`/`NULLS LAST`; `LIMIT`. Not supported (answered as malformed or as an unknown
//! column): relationship fields (`Owner.Name`), subqueries, aggregates, `OFFSET`, date
//! literals such as `TODAY` or `LAST_N_DAYS:n`, `GROUP BY`, `HAVING`, `WITH`, `FOR UPDATE`.
//! As in Salesforce, `AND` and `OR` cannot be mixed at one level without parentheses.

pub(crate) mod eval;
pub(crate) mod lexer;
pub(crate) mod parser;

pub(crate) use eval::{BoundExpr, compile_condition, compile_query};

/// A SOQL error with the position it points at, rendered the way Salesforce renders parse
/// errors: the query line, a caret, `ERROR at Row:R:Column:C` and the detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SoqlError {
    /// The Salesforce `errorCode`: `MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE` or
    /// `INVALID_QUERY_FILTER_OPERATOR`.
    pub(crate) code: &'static str,
    /// Byte offset in the query text.
    pub(crate) pos: usize,
    /// The last line of the message.
    pub(crate) detail: String,
}

impl SoqlError {
    pub(crate) fn malformed(pos: usize, detail: impl Into<String>) -> Self {
        Self {
            code: "MALFORMED_QUERY",
            pos,
            detail: detail.into(),
        }
    }

    /// The `message` of the REST error body for the query `soql`.
    pub(crate) fn render(&self, soql: &str) -> String {
        let pos = self.pos.min(soql.len());
        let before = &soql[..pos];
        let row = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = soql[line_start..]
            .find('\n')
            .map_or(soql.len(), |i| line_start + i);
        let column = soql[line_start..pos].chars().count() + 1;
        let line = &soql[line_start..line_end];
        let caret = " ".repeat(column - 1);
        format!(
            "\n{line}\n{caret}^\nERROR at Row:{row}:Column:{column}\n{}",
            self.detail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_points_at_the_column() {
        let err = SoqlError::malformed(7, "unexpected token: FORM");
        let text = err.render("SELECT FORM");
        assert_eq!(
            text,
            "\nSELECT FORM\n       ^\nERROR at Row:1:Column:8\nunexpected token: FORM"
        );
    }

    #[test]
    fn render_counts_rows() {
        let err = SoqlError::malformed(16, "x");
        assert!(
            err.render("SELECT Id\nFROM Nope")
                .contains("ERROR at Row:2:Column:7")
        );
    }
}
