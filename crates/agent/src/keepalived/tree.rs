//! keepalived.conf statements as a tree: a keyword, its arguments up to the end of the
//! line, and an optional `{ ... }` block of child statements (which may open on the next
//! line, or hold several statements on one line).

use super::diag::{Diagnostic, Loc};
use super::lexer::{Tok, Token};

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The first word.
    pub key: String,
    /// The other words on the line.
    pub args: Vec<String>,
    /// The block's statements, if the statement has a block.
    pub block: Option<Vec<Node>>,
    /// Where the keyword was read.
    pub loc: Loc,
}

impl Node {
    /// The block's statements, or none.
    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }
}

/// Builds the statement tree; unbalanced braces are reported.
pub fn build(tokens: &[Token], diags: &mut Vec<Diagnostic>) -> Vec<Node> {
    let mut i = 0;
    let nodes = statements(tokens, &mut i, 0, diags);
    if i < tokens.len() {
        diags.push(Diagnostic::error(tokens[i].loc.clone(), "unexpected '}'"));
    }
    nodes
}

fn statements(t: &[Token], i: &mut usize, depth: usize, diags: &mut Vec<Diagnostic>) -> Vec<Node> {
    let mut out = Vec::new();
    while *i < t.len() {
        match &t[*i].tok {
            Tok::Eol => *i += 1,
            Tok::Close => {
                if depth == 0 {
                    diags.push(Diagnostic::error(t[*i].loc.clone(), "unexpected '}'"));
                    *i += 1;
                    continue;
                }
                return out;
            }
            Tok::Open => {
                // A block with no keyword: parse and drop it, reporting once.
                diags.push(Diagnostic::error(t[*i].loc.clone(), "'{' without a keyword"));
                *i += 1;
                statements(t, i, depth + 1, diags);
                *i += 1;
            }
            Tok::Word(w) => {
                let loc = t[*i].loc.clone();
                let key = w.clone();
                *i += 1;
                let mut args = Vec::new();
                while let Some(Token { tok: Tok::Word(a), .. }) = t.get(*i) {
                    args.push(a.clone());
                    *i += 1;
                }
                // A block may open on this line or on the next.
                let mut j = *i;
                while matches!(t.get(j), Some(Token { tok: Tok::Eol, .. })) {
                    j += 1;
                }
                let block = if matches!(t.get(j), Some(Token { tok: Tok::Open, .. })) {
                    *i = j + 1;
                    let children = statements(t, i, depth + 1, diags);
                    if *i >= t.len() {
                        diags.push(Diagnostic::error(loc.clone(), format!("'{{' of {key} is never closed")));
                    } else {
                        *i += 1; // the '}'
                    }
                    Some(children)
                } else {
                    None
                };
                out.push(Node { key, args, block, loc });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex_str;
    use super::*;
    use std::sync::Arc;

    fn parse(s: &str) -> (Vec<Node>, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let n = build(&lex_str(s, &Arc::from("t")), &mut d);
        (n, d)
    }

    #[test]
    fn blocks_on_same_or_next_line_and_one_liners() {
        let (n, d) =
            parse("vrrp_instance VI_1\n{\n  state MASTER\n  virtual_ipaddress { 10.0.0.1/24 dev eth0 }\n}\nnext 1\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].args, ["VI_1"]);
        let c = n[0].children();
        assert_eq!(c[0].key, "state");
        assert_eq!(c[1].children()[0].key, "10.0.0.1/24");
        assert_eq!(c[1].children()[0].args, ["dev", "eth0"]);
        assert_eq!(n[1].loc.line, 6);
    }

    #[test]
    fn unbalanced_braces_are_reported_with_lines() {
        let (_, d) = parse("a {\n b 1\n");
        assert_eq!(d[0].to_string(), "t:1: error: '{' of a is never closed");
        let (_, d) = parse("a 1\n}\n");
        assert_eq!(d[0].to_string(), "t:2: error: unexpected '}'");
    }
}
