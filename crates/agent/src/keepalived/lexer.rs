//! keepalived.conf tokens: words, quoted strings and braces, each with its file and line;
//! comments (`#`, `!`) dropped; `include PATTERN` expanded in place (glob, relative to the
//! including file's directory, as keepalived does); keepalived's line conditions (`@ID`
//! applies a line only on the system whose config id is ID, `@^ID` everywhere else) and
//! parameters (`$NAME=value` defines, `$NAME` and `${NAME}` are replaced, across
//! includes) applied before a line is split.

use super::diag::{Diagnostic, Loc};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What lines see while a file and its includes are read: the config id for `@` lines
/// and the `$` parameters defined so far.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// The config id (`@ID` lines apply when it is ID).
    pub config_id: String,
    /// `$NAME=value` definitions.
    pub params: HashMap<String, String>,
}

impl Env {
    /// An environment for config id `id`: the given one, else this host's short name.
    pub fn new(id: Option<&str>) -> Env {
        let id = id.map(str::to_string).unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            host.trim().split('.').next().unwrap_or_default().to_string()
        });
        Env { config_id: id, params: HashMap::new() }
    }

    /// The line as keepalived reads it: `None` when it does not apply here or is a
    /// definition (recorded), else with its `@` condition removed and parameters
    /// replaced. Undefined parameters are reported and left as written.
    fn line<'a>(&mut self, line: &'a str, loc: &Loc, diags: &mut Vec<Diagnostic>) -> Option<std::borrow::Cow<'a, str>> {
        let mut rest = code_part(line).trim_start();
        if let Some(cond) = rest.strip_prefix('@') {
            let end = cond.find(char::is_whitespace).unwrap_or(cond.len());
            let (id, tail) = cond.split_at(end);
            let applies = match id.strip_prefix('^') {
                Some(not) => not != self.config_id,
                None => id == self.config_id,
            };
            if !applies {
                return None;
            }
            rest = tail;
        }
        if let Some(def) = rest.strip_prefix('$') {
            if let Some((name, value)) = def.split_once('=') {
                let name = name.trim();
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    let value = self.substitute(value.trim(), loc, diags).into_owned();
                    self.params.insert(name.to_string(), value);
                    return None;
                }
            }
        }
        Some(self.substitute(rest, loc, diags))
    }

    fn substitute<'a>(&self, s: &'a str, loc: &Loc, diags: &mut Vec<Diagnostic>) -> std::borrow::Cow<'a, str> {
        if !s.contains('$') {
            return s.into();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, used) = match after.strip_prefix('{') {
                Some(b) => match b.find('}') {
                    Some(e) => (&b[..e], e + 2),
                    None => ("", 0),
                },
                None => {
                    let e = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                    (&after[..e], e)
                }
            };
            match self.params.get(name) {
                Some(v) if !name.is_empty() => out.push_str(v),
                _ => {
                    if !name.is_empty() {
                        diags
                            .push(Diagnostic::warning(loc.clone(), format!("${name} is not defined: left as written")));
                    }
                    out.push('$');
                    rest = after;
                    continue;
                }
            }
            rest = &after[used..];
        }
        out.push_str(rest);
        out.into()
    }
}

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A word or a quoted string (quotes removed).
    Word(String),
    /// `{`.
    Open,
    /// `}`.
    Close,
    /// End of a line: statements are line-oriented.
    Eol,
}

/// A token with where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// File and line.
    pub loc: Loc,
}

/// How deep includes may nest before a cycle is assumed.
const MAX_INCLUDE_DEPTH: usize = 16;

/// The line without its comment: from a `#` or `!` that starts a word outside quotes
/// (as the tokenizer reads comments).
fn code_part(line: &str) -> &str {
    let (mut quoted, mut word_start) = (false, true);
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' | '!' if !quoted && word_start => return &line[..i],
            _ => {}
        }
        word_start = !quoted && (c.is_whitespace() || c == '{' || c == '}');
    }
    line
}

/// Splits one file's text into tokens; `include` lines are returned as words (expanded by
/// [`lex_file`]).
pub fn lex_str(text: &str, file: &Arc<str>) -> Vec<Token> {
    lex_with(text, file, &mut Env::default(), &mut Vec::new())
}

/// [`lex_str`] with `@` conditions and `$` parameters applied from `env`.
pub fn lex_with(text: &str, file: &Arc<str>, env: &mut Env, diags: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let loc = Loc { file: file.clone(), line: i as u32 + 1 };
        let Some(line) = env.line(raw, &loc, diags) else { continue };
        let line = line.as_ref();
        if line.split_whitespace().next() == Some("regex") {
            match quoted_escaped(line) {
                Ok(words) => {
                    out.extend(words.into_iter().map(|w| Token { tok: Tok::Word(w), loc: loc.clone() }));
                    out.push(Token { tok: Tok::Eol, loc });
                }
                Err(e) => diags.push(Diagnostic::error(loc, e)),
            }
            continue;
        }
        let mut chars = line.char_indices().peekable();
        let mut any = false;
        while let Some(&(start, c)) = chars.peek() {
            match c {
                '#' | '!' => break,
                c if c.is_whitespace() => {
                    chars.next();
                }
                '{' | '}' => {
                    chars.next();
                    out.push(Token { tok: if c == '{' { Tok::Open } else { Tok::Close }, loc: loc.clone() });
                    any = true;
                }
                '"' => {
                    chars.next();
                    let mut s = String::new();
                    for (_, c) in chars.by_ref() {
                        if c == '"' {
                            break;
                        }
                        s.push(c);
                    }
                    out.push(Token { tok: Tok::Word(s), loc: loc.clone() });
                    any = true;
                }
                _ => {
                    let mut end = line.len();
                    while let Some(&(j, c)) = chars.peek() {
                        if c.is_whitespace() || c == '{' || c == '}' || c == '"' {
                            end = j;
                            break;
                        }
                        chars.next();
                    }
                    out.push(Token { tok: Tok::Word(line[start..end].to_string()), loc: loc.clone() });
                    any = true;
                }
            }
        }
        if any {
            out.push(Token { tok: Tok::Eol, loc });
        }
    }
    out
}

/// A line split as keepalived splits a `regex` line (`alloc_strvec_quoted_escaped`): words
/// at whitespace, `"` and `'` quoting any part of a word (braces are text), and
/// a `#` or `!` outside double quotes starting a comment, anywhere in a word, and
/// backslash escapes replaced: `\xHH`, `\cX`, octal `\NNN`, `\a \b \E \f \n \r \t \v`,
/// any other character itself (so a PCRE `\d` is written `\\d`, as for keepalived). A
/// byte an escape makes that is not printable ASCII is written back as the regex escape
/// `\xHH`, so the pattern stays text and matches that byte.
fn quoted_escaped(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let (mut w, mut quote, mut comment) = (String::new(), None, false);
        while let Some(c) = chars.next() {
            match (c, quote) {
                // keepalived's `decomment`: `#` or `!` outside double quotes ends the line.
                ('#' | '!', q) if q != Some('"') => {
                    comment = true;
                    break;
                }
                ('\\', _) => {
                    let Some(e) = chars.next() else { return Err(format!("a lone '\\' ends the line: {line}")) };
                    let byte = match e {
                        'x' if chars.peek().is_some_and(char::is_ascii_hexdigit) => {
                            let mut v = 0u8;
                            while let Some(d) = chars.next_if(char::is_ascii_hexdigit) {
                                v = (v << 4) | d.to_digit(16).unwrap_or(0) as u8;
                            }
                            v
                        }
                        'c' if chars.peek().is_some() => chars.next().map_or(0, |x| x as u8 & 0x1f),
                        '0'..='7' => {
                            let mut v = e as u8 - b'0';
                            for _ in 0..2 {
                                match chars.next_if(|d| ('0'..='7').contains(d)) {
                                    Some(d) => v = (v << 3) | (d as u8 - b'0'),
                                    None => break,
                                }
                            }
                            v
                        }
                        'a' => 0x07,
                        'b' => 0x08,
                        'E' => 0x1b,
                        'f' => 0x0c,
                        'n' => b'\n',
                        'r' => b'\r',
                        't' => b'\t',
                        'v' => 0x0b,
                        other => {
                            w.push(other);
                            continue;
                        }
                    };
                    match byte {
                        0x20..=0x7e => w.push(byte as char),
                        _ => w.push_str(&format!("\\x{byte:02x}")),
                    }
                }
                (q, Some(open)) if q == open => quote = None,
                (c, Some(_)) => w.push(c),
                ('"' | '\'', None) => quote = Some(c),
                (c, None) if c.is_whitespace() => break,
                (c, None) => w.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("missing terminating {q}: {line}"));
        }
        if !w.is_empty() || !comment {
            words.push(w);
        }
        if comment {
            return Ok(words);
        }
    }
}

/// Reads `path` and every file it includes into one token stream. Unreadable files and
/// includes that match nothing are reported in `diags` (an include matching nothing is a
/// warning, as in keepalived; an unreadable top file is an error).
pub fn lex_file(path: &Path, env: &mut Env, diags: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut out = Vec::new();
    lex_into(path, None, 0, env, &mut out, diags);
    out
}

fn lex_into(
    path: &Path,
    from: Option<&Loc>,
    depth: usize,
    env: &mut Env,
    out: &mut Vec<Token>,
    diags: &mut Vec<Diagnostic>,
) {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let loc = from.cloned().unwrap_or(Loc { file: name, line: 0 });
            diags.push(Diagnostic::error(loc, format!("cannot read {}: {e}", path.display())));
            return;
        }
    };
    let toks = lex_with(&text, &name, env, diags);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut i = 0;
    let mut at_line_start = true;
    while i < toks.len() {
        let t = &toks[i];
        if at_line_start && t.tok == Tok::Word("include".into()) {
            let loc = t.loc.clone();
            let mut patterns = Vec::new();
            i += 1;
            while i < toks.len() && toks[i].tok != Tok::Eol {
                if let Tok::Word(w) = &toks[i].tok {
                    patterns.push(w.clone());
                }
                i += 1;
            }
            i += 1; // the Eol
            if patterns.is_empty() {
                diags.push(Diagnostic::error(loc, "include needs a file name or pattern"));
                continue;
            }
            if depth >= MAX_INCLUDE_DEPTH {
                diags.push(Diagnostic::error(loc, "includes nested too deeply (a cycle?)"));
                continue;
            }
            for pat in patterns {
                for f in expand(&dir, &pat, &loc, diags) {
                    lex_into(&f, Some(&loc), depth + 1, env, out, diags);
                }
            }
            continue;
        }
        at_line_start = matches!(t.tok, Tok::Eol | Tok::Open | Tok::Close);
        out.push(t.clone());
        i += 1;
    }
}

fn expand(dir: &Path, pattern: &str, loc: &Loc, diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { dir.join(pattern) };
    let full_s = full.display().to_string();
    let mut files: Vec<PathBuf> = match glob::glob(&full_s) {
        Ok(paths) => paths.filter_map(Result::ok).filter(|p| p.is_file()).collect(),
        Err(e) => {
            diags.push(Diagnostic::error(loc.clone(), format!("bad include pattern {pattern}: {e}")));
            return Vec::new();
        }
    };
    files.sort();
    if files.is_empty() {
        diags.push(Diagnostic::warning(loc.clone(), format!("include {pattern} matches no file")));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(toks: &[Token]) -> Vec<String> {
        toks.iter()
            .map(|t| match &t.tok {
                Tok::Word(w) => w.clone(),
                Tok::Open => "{".into(),
                Tok::Close => "}".into(),
                Tok::Eol => ";".into(),
            })
            .collect()
    }

    /// A `regex` line as keepalived reads it: quotes of either kind anywhere in a word,
    /// escapes replaced (a PCRE escape is written with two backslashes), braces kept.
    #[test]
    fn a_regex_line_is_split_and_unescaped_as_keepalived() {
        let f: Arc<str> = Arc::from("t.conf");
        for (line, want) in [
            (r#"regex "status: (ok|fine)""#, "status: (ok|fine)"),
            (r#"regex a{3}"#, "a{3}"),
            (r#"regex "it's"\ here"#, "it's here"),
            (r#"regex "\\d+\.\\d""#, r"\d+.\d"),
            (r#"regex "\"quoted\"""#, r#""quoted""#),
            (r#"regex "a\tb\x41\101\cA\xff""#, r"a\x09bAA\x01\xff"),
            (r#"regex ok!comment"#, "ok"),
            (r#"regex "<!-- ok -->""#, "<!-- ok -->"),
        ] {
            assert_eq!(words(&lex_str(line, &f)), ["regex", want, ";"], "{line}");
        }
        let mut diags = Vec::new();
        lex_with("regex \"open\n", &f, &mut Env::default(), &mut diags);
        assert!(diags.iter().any(|d| d.message.contains("missing terminating")), "{diags:?}");
    }

    #[test]
    fn splits_braces_quotes_and_comments() {
        let f: Arc<str> = Arc::from("t.conf");
        let t = lex_str("a b{ # c\n  script \"/bin/x -y\" ! z\n}\n\nreal_server 1.2.3.4 80{}", &f);
        assert_eq!(
            words(&t),
            ["a", "b", "{", ";", "script", "/bin/x -y", ";", "}", ";", "real_server", "1.2.3.4", "80", "{", "}", ";"]
        );
        assert_eq!(t[4].loc.line, 2);
        assert_eq!(t[9].loc.line, 5);
    }

    #[test]
    fn conditions_and_parameters_apply_before_splitting() {
        let f: Arc<str> = Arc::from("t.conf");
        let text =
            "# a $COMMENT\n$PRIO=150\n$DEV=dpdk0.kni\n@lb1 priority $PRIO\n@lb2 priority 100\n@^lb1 state BACKUP\n\
                    interface ${DEV}\nx $NOPE\n  @lb1 nested yes\n";
        let mut d = Vec::new();
        let t = lex_with(text, &f, &mut Env::new(Some("lb1")), &mut d);
        assert_eq!(
            words(&t),
            ["priority", "150", ";", "interface", "dpdk0.kni", ";", "x", "$NOPE", ";", "nested", "yes", ";"]
        );
        assert_eq!(t[0].loc.line, 4, "lines keep their numbers");
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].to_string().contains("t.conf:8: warning: $NOPE is not defined"), "{}", d[0]);
        let t = lex_with(text, &f, &mut Env::new(Some("lb2")), &mut Vec::new());
        assert_eq!(words(&t)[..6], ["priority", "100", ";", "state", "BACKUP", ";"]);
    }

    #[test]
    fn include_expands_globs_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("rvs-agent-lex-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::write(dir.join("main.conf"), "top 1\ninclude conf.d/*.conf\nend 2\n").unwrap();
        std::fs::write(dir.join("conf.d/b.conf"), "bee 2\n").unwrap();
        std::fs::write(dir.join("conf.d/a.conf"), "ay 1\ninclude ../missing*.conf\n").unwrap();
        let mut d = Vec::new();
        let t = lex_file(&dir.join("main.conf"), &mut Env::new(Some("lb1")), &mut d);
        assert_eq!(words(&t), ["top", "1", ";", "ay", "1", ";", "bee", "2", ";", "end", "2", ";"]);
        assert!(t[3].loc.file.ends_with("conf.d/a.conf"));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].to_string().contains("a.conf:2: warning: include ../missing*.conf matches no file"), "{}", d[0]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
