//! `--config FILE`: the YAML file mongo-tools reads for secrets kept off the command
//! line. It is a flat mapping whose only keys are `password`, `uri` and
//! `sslPEMKeyPassword` (mongo-tools refuses any other key, and so does oxidump); values
//! are plain, single-quoted or double-quoted scalars.

use std::path::Path;

use super::CompatError;

/// The values of a config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `password`.
    pub password: Option<String>,
    /// `uri`.
    pub uri: Option<String>,
    /// `sslPEMKeyPassword`.
    pub ssl_pem_key_password: Option<String>,
}

/// Reads the config file at `path`.
pub fn load(path: &Path) -> Result<Config, CompatError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CompatError::Usage(format!(
            "error opening file with --config {}: {e}",
            path.display()
        ))
    })?;
    parse(&text).map_err(|e| {
        CompatError::Usage(format!("error parsing config file {}: {e}", path.display()))
    })
}

fn strip_comment(v: &str) -> &str {
    // A `#` starts a comment at the start or after a space.
    let b = v.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'#' && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return v[..i].trim_end();
        }
    }
    v.trim_end()
}

fn scalar(raw: &str, line: usize) -> Result<String, String> {
    let v = raw.trim();
    if let Some(body) = v.strip_prefix('\'') {
        let mut out = String::new();
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                let rest: String = chars.collect();
                if !strip_comment(&rest).trim().is_empty() {
                    return Err(format!("line {line}: text after the closing quote"));
                }
                return Ok(out);
            }
            out.push(c);
        }
        return Err(format!("line {line}: unterminated single-quoted value"));
    }
    if let Some(body) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    let rest: String = chars.collect();
                    if !strip_comment(&rest).trim().is_empty() {
                        return Err(format!("line {line}: text after the closing quote"));
                    }
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some('/') => out.push('/'),
                    Some(o) => return Err(format!("line {line}: unsupported escape \\{o}")),
                    None => break,
                },
                c => out.push(c),
            }
        }
        return Err(format!("line {line}: unterminated double-quoted value"));
    }
    let v = strip_comment(v);
    if v.starts_with(['[', '{', '&', '*', '!', '|', '>']) {
        return Err(format!(
            "line {line}: only plain or quoted text values are allowed"
        ));
    }
    Ok(v.to_string())
}

/// Parses the text of a config file.
pub fn parse(text: &str) -> Result<Config, String> {
    let mut c = Config::default();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t == "---" || t == "..." {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            return Err(format!("line {n}: nested values are not allowed"));
        }
        let (key, value) = t
            .split_once(':')
            .ok_or_else(|| format!("line {n}: expected `key: value`"))?;
        let value = scalar(value, n)?;
        let slot = match key.trim() {
            "password" => &mut c.password,
            "uri" => &mut c.uri,
            "sslPEMKeyPassword" => &mut c.ssl_pem_key_password,
            other => {
                return Err(format!(
                    "line {n}: field {other:?} not found (the keys are password, uri and sslPEMKeyPassword)"
                ));
            }
        };
        if slot.is_some() {
            return Err(format!("line {n}: key {:?} already set", key.trim()));
        }
        *slot = Some(value);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_keys() {
        let c = parse(
            "# secrets\n---\npassword: 'it''s # not a comment'\nuri: mongodb://h:1/?a=b # the server\nsslPEMKeyPassword: \"k\\\"ey\"\n",
        )
        .unwrap();
        assert_eq!(c.password.as_deref(), Some("it's # not a comment"));
        assert_eq!(c.uri.as_deref(), Some("mongodb://h:1/?a=b"));
        assert_eq!(c.ssl_pem_key_password.as_deref(), Some("k\"ey"));
    }

    #[test]
    fn strict() {
        assert!(parse("user: x\n").unwrap_err().contains("\"user\""));
        assert!(parse("password: a\npassword: b\n").is_err());
        assert!(parse("password:\n  nested: 1\n").is_err());
        assert!(parse("password: [a]\n").is_err());
        assert!(parse("password 'x'\n").is_err());
        assert!(parse("password: 'open\n").is_err());
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn load_names_the_file() {
        let e = load(Path::new("/nonexistent/oxidump.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/oxidump.yaml"), "{e}");
    }
}
