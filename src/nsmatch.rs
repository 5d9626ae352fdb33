//! Namespace patterns, compatible with mongorestore's `--nsInclude`, `--nsExclude`,
//! `--nsFrom` and `--nsTo`.
//!
//! A pattern matches the whole `db.collection` string. `*` matches any run of
//! characters, dots included; `\*` is a literal asterisk and `\\` a literal
//! backslash; everything else is literal. Renaming pairs use either asterisks
//! (substituted in order) or `$name$` variables (`prod.$c$` → `archive.old_$c$`).

use regex::Regex;

/// A pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("namespace pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(String),
    Star,
    Var(String),
}

fn tokenize(p: &str, allow_vars: bool) -> Result<Vec<Token>, PatternError> {
    let err = |reason: &str| PatternError {
        pattern: p.to_string(),
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('*' | '\\' | '$')) => lit.push(n),
                _ => return Err(err("`\\` must be followed by `*`, `\\` or `$`")),
            },
            '*' => {
                if !lit.is_empty() {
                    out.push(Token::Lit(std::mem::take(&mut lit)));
                }
                out.push(Token::Star);
            }
            '$' => {
                if !allow_vars {
                    return Err(err(
                        "`$` is not allowed here (variables are for --ns-from/--ns-to)",
                    ));
                }
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('$') => break,
                        Some(n) => name.push(n),
                        None => return Err(err("unterminated `$variable$`")),
                    }
                }
                if name.is_empty() {
                    return Err(err("empty `$$` variable"));
                }
                if !lit.is_empty() {
                    out.push(Token::Lit(std::mem::take(&mut lit)));
                }
                out.push(Token::Var(name));
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Token::Lit(lit));
    }
    Ok(out)
}

/// A compiled namespace pattern.
#[derive(Debug, Clone)]
pub struct NsPattern {
    source: String,
    tokens: Vec<Token>,
    re: Regex,
}

impl NsPattern {
    /// Compiles an include/exclude pattern (no variables).
    pub fn new(p: &str) -> Result<NsPattern, PatternError> {
        NsPattern::compile(p, false)
    }

    fn compile(p: &str, allow_vars: bool) -> Result<NsPattern, PatternError> {
        let tokens = tokenize(p, allow_vars)?;
        let mut re = String::from("^");
        let mut seen = std::collections::HashSet::new();
        for t in &tokens {
            match t {
                Token::Lit(l) => re.push_str(&regex::escape(l)),
                Token::Star => re.push_str("(.*?)"),
                Token::Var(v) => {
                    if !seen.insert(v.clone()) {
                        return Err(PatternError {
                            pattern: p.into(),
                            reason: format!("variable ${v}$ is used twice"),
                        });
                    }
                    re.push_str("(.*?)");
                }
            }
        }
        re.push('$');
        let re = Regex::new(&re).map_err(|e| PatternError {
            pattern: p.into(),
            reason: e.to_string(),
        })?;
        Ok(NsPattern {
            source: p.to_string(),
            tokens,
            re,
        })
    }

    /// Whether `ns` (`db.collection`) matches.
    pub fn is_match(&self, ns: &str) -> bool {
        self.re.is_match(ns)
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Include and exclude patterns together: a namespace passes when it matches an
/// include (or there are none) and no exclude.
#[derive(Debug, Clone, Default)]
pub struct NsFilter {
    include: Vec<NsPattern>,
    exclude: Vec<NsPattern>,
}

impl NsFilter {
    /// Compiles the patterns.
    pub fn new(include: &[String], exclude: &[String]) -> Result<NsFilter, PatternError> {
        Ok(NsFilter {
            include: include
                .iter()
                .map(|p| NsPattern::new(p))
                .collect::<Result<_, _>>()?,
            exclude: exclude
                .iter()
                .map(|p| NsPattern::new(p))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether `ns` passes.
    pub fn allows(&self, ns: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.is_match(ns)))
            && !self.exclude.iter().any(|p| p.is_match(ns))
    }

    /// Whether an include pattern names `ns` with no wildcard (an explicit request).
    pub fn names_explicitly(&self, ns: &str) -> bool {
        self.include
            .iter()
            .any(|p| !p.tokens.iter().any(|t| matches!(t, Token::Star)) && p.is_match(ns))
    }

    /// Whether there are include patterns.
    pub fn has_includes(&self) -> bool {
        !self.include.is_empty()
    }

    /// Whether there are exclude patterns.
    pub fn has_excludes(&self) -> bool {
        !self.exclude.is_empty()
    }
}

/// `--ns-from`/`--ns-to` pairs. When several pairs match, the last one given wins.
#[derive(Debug, Clone, Default)]
pub struct Renamer {
    rules: Vec<(NsPattern, Vec<Token>)>,
}

impl Renamer {
    /// Compiles the pairs, checking that each `to` uses what its `from` captures.
    pub fn new(pairs: &[(String, String)]) -> Result<Renamer, PatternError> {
        let mut rules = Vec::new();
        for (from, to) in pairs {
            let f = NsPattern::compile(from, true)?;
            let t = tokenize(to, true)?;
            let stars = |ts: &[Token]| ts.iter().filter(|t| matches!(t, Token::Star)).count();
            if stars(&f.tokens) != stars(&t) {
                return Err(PatternError {
                    pattern: to.clone(),
                    reason: format!(
                        "has {} `*`, but --ns-from {from:?} has {}",
                        stars(&t),
                        stars(&f.tokens)
                    ),
                });
            }
            for tok in &t {
                if let Token::Var(v) = tok
                    && !f.tokens.contains(&Token::Var(v.clone()))
                {
                    return Err(PatternError {
                        pattern: to.clone(),
                        reason: format!("uses ${v}$, which --ns-from {from:?} does not define"),
                    });
                }
            }
            rules.push((f, t));
        }
        Ok(Renamer { rules })
    }

    /// The target namespace for `ns` (`ns` itself when no pair matches).
    pub fn rename(&self, ns: &str) -> String {
        for (from, to) in self.rules.iter().rev() {
            let Some(caps) = from.re.captures(ns) else {
                continue;
            };
            // Capture i (1-based) belongs to the i-th Star or Var token of `from`.
            let mut stars = Vec::new();
            let mut vars = std::collections::HashMap::new();
            let mut k = 1;
            for t in &from.tokens {
                match t {
                    Token::Star => {
                        stars.push(caps.get(k).map_or("", |m| m.as_str()));
                        k += 1;
                    }
                    Token::Var(v) => {
                        vars.insert(v.as_str(), caps.get(k).map_or("", |m| m.as_str()));
                        k += 1;
                    }
                    Token::Lit(_) => {}
                }
            }
            let mut out = String::new();
            let mut star = stars.into_iter();
            for t in to {
                match t {
                    Token::Lit(l) => out.push_str(l),
                    Token::Star => out.push_str(star.next().unwrap_or("")),
                    Token::Var(v) => out.push_str(vars.get(v.as_str()).copied().unwrap_or("")),
                }
            }
            return out;
        }
        ns.to_string()
    }

    /// Whether any pair is defined.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_escapes() {
        let p = NsPattern::new("prod.*").unwrap();
        assert!(p.is_match("prod.users"));
        assert!(p.is_match("prod.a.b"));
        assert!(!p.is_match("production.users"));
        let p = NsPattern::new("*.sys*").unwrap();
        assert!(p.is_match("a.system.x"));
        let p = NsPattern::new(r"db.a\*b").unwrap();
        assert!(p.is_match("db.a*b"));
        assert!(!p.is_match("db.axb"));
        assert!(NsPattern::new("db.$x$").is_err());
        assert!(NsPattern::new("a.b(c)+").unwrap().is_match("a.b(c)+"));
    }

    #[test]
    fn filter_exclude_wins() {
        let f = NsFilter::new(&["shop.*".into()], &["shop.tmp*".into()]).unwrap();
        assert!(f.allows("shop.orders"));
        assert!(!f.allows("shop.tmp1"));
        assert!(!f.allows("logs.x"));
        assert!(NsFilter::default().allows("anything.x"));
        assert!(!f.names_explicitly("shop.orders"));
        let f = NsFilter::new(&["admin.system.users".into()], &[]).unwrap();
        assert!(f.names_explicitly("admin.system.users"));
    }

    #[test]
    fn renames() {
        let r = Renamer::new(&[
            ("prod.*".into(), "staging.*".into()),
            ("prod.$c$".into(), "archive.old_$c$".into()),
            ("*.x*".into(), "*.y*".into()),
        ])
        .unwrap();
        // Last matching pair wins.
        assert_eq!(r.rename("prod.users"), "archive.old_users");
        assert_eq!(r.rename("a.xb"), "a.yb");
        assert_eq!(r.rename("other.c"), "other.c");
        let r = Renamer::new(&[("$db$.$coll$".into(), "$db$_copy.$coll$".into())]).unwrap();
        assert_eq!(r.rename("shop.orders.2024"), "shop_copy.orders.2024");
        assert!(Renamer::new(&[("a.*".into(), "b.c".into())]).is_err());
        assert!(Renamer::new(&[("a.$x$".into(), "b.$y$".into())]).is_err());
        assert!(Renamer::new(&[("a.$x$.$x$".into(), "b".into())]).is_err());
    }
}
