//! The connection flags of mongo-tools (`--host`, `--port`, `-u`, `-p`, TLS, auth,
//! timeouts, `--readPreference`) folded into one connection string, with mongo-tools'
//! rules: a flag and the URI must agree, a flag fills what the URI leaves out, and a
//! single host without a replica set name is connected to directly.

use super::CompatError;
use super::args::Parsed;
use super::relaxed;

/// A connection string taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// `mongodb` or `mongodb+srv`.
    pub scheme: String,
    /// User name (decoded).
    pub user: Option<String>,
    /// Password (decoded).
    pub password: Option<String>,
    /// Hosts, `host[:port]`, as written.
    pub hosts: Vec<String>,
    /// The path's database (decoded), if any.
    pub db: Option<String>,
    /// Query options, in order, decoded.
    pub params: Vec<(String, String)>,
}

fn pct_decode(s: &str) -> Result<String, CompatError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    CompatError::Usage(
                        "connection string: a `%` is not followed by two hex digits".into(),
                    )
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| CompatError::Usage("connection string: percent-encoding is not UTF-8".into()))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn pct_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Uri {
    /// Parses `mongodb://[user[:pass]@]hosts[/[db]][?options]` (or `mongodb+srv://`).
    pub fn parse(s: &str) -> Result<Uri, CompatError> {
        let bad = |why: &str| CompatError::Usage(format!("invalid connection string: {why}"));
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("it must begin with mongodb:// or mongodb+srv://"))?;
        if scheme != "mongodb" && scheme != "mongodb+srv" {
            return Err(bad("it must begin with mongodb:// or mongodb+srv://"));
        }
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (Some(pct_decode(n)?), Some(pct_decode(p)?)),
                None => (Some(pct_decode(u)?), None),
            },
            None => (None, None),
        };
        if hosts.is_empty() {
            return Err(bad("it names no host"));
        }
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, q),
            None => (tail, ""),
        };
        let db = path.strip_prefix('/').unwrap_or(path);
        let db = if db.is_empty() {
            None
        } else {
            Some(pct_decode(db)?)
        };
        let mut params = Vec::new();
        for kv in query.split(['&', ';']).filter(|kv| !kv.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(&format!("option {kv:?} has no value")))?;
            params.push((pct_decode(k)?, pct_decode(v)?));
        }
        Ok(Uri {
            scheme: scheme.to_string(),
            user,
            password,
            hosts: hosts.split(',').map(str::to_string).collect(),
            db,
            params,
        })
    }

    /// The value of an option (names are case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn remove_param(&mut self, name: &str) {
        self.params.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    /// Sets an option the flag `flag` gives; an option already in the URI with another
    /// value is a conflict, as in mongo-tools.
    fn set_param(&mut self, name: &str, value: &str, flag: &str) -> Result<(), CompatError> {
        match self.param(name) {
            Some(v) if v.eq_ignore_ascii_case(value) => Ok(()),
            Some(v) => Err(conflict(name, v, value, flag)),
            None => {
                self.params.push((name.to_string(), value.to_string()));
                Ok(())
            }
        }
    }

    /// The connection string.
    pub fn render(&self) -> String {
        let mut s = format!("{}://", self.scheme);
        if let Some(u) = &self.user {
            s.push_str(&pct_encode(u));
            if let Some(p) = &self.password {
                s.push(':');
                s.push_str(&pct_encode(p));
            }
            s.push('@');
        }
        s.push_str(&self.hosts.join(","));
        s.push('/');
        if let Some(db) = &self.db {
            s.push_str(&pct_encode(db));
        }
        if !self.params.is_empty() {
            s.push('?');
            let q: Vec<String> = self
                .params
                .iter()
                .map(|(k, v)| format!("{}={}", k, pct_encode_param(v)))
                .collect();
            s.push_str(&q.join("&"));
        }
        s
    }
}

/// Option values keep `:` and `,` (tag sets and mechanism properties use them).
fn pct_encode_param(v: &str) -> String {
    pct_encode(v).replace("%3A", ":").replace("%2C", ",")
}

fn conflict(what: &str, in_uri: &str, given: &str, flag: &str) -> CompatError {
    CompatError::Usage(format!(
        "cannot specify a different {what} in the connection string ({in_uri:?}) and with {flag} ({given:?})"
    ))
}

/// Hosts of `--host` (`set/h1,h2` or `h1,h2`) and its replica set name.
fn split_host_arg(h: &str) -> (Vec<String>, Option<String>) {
    let (set, hosts) = match h.split_once('/') {
        Some((s, rest)) => (Some(s.to_string()), rest),
        None => (None, h),
    };
    let hosts = hosts
        .split(',')
        .map(|x| {
            if x.is_empty() {
                "localhost".to_string()
            } else {
                x.to_string()
            }
        })
        .collect();
    (hosts, set.filter(|s| !s.is_empty()))
}

fn host_has_port(h: &str) -> bool {
    // `[::1]:27017`, `host:27017`; a bare IPv6 address in brackets has no port.
    match h.rfind(']') {
        Some(i) => h[i..].contains(':'),
        None => h.contains(':'),
    }
}

fn port_of(h: &str) -> Option<&str> {
    host_has_port(h).then(|| h.rsplit(':').next().unwrap_or(""))
}

/// Mechanisms that never use a password (mongo-tools does not prompt for them).
const NO_PASSWORD: [&str; 3] = ["MONGODB-X509", "GSSAPI", "MONGODB-OIDC"];
/// Mechanisms whose credentials live in `$external`.
const EXTERNAL: [&str; 4] = ["GSSAPI", "PLAIN", "MONGODB-X509", "MONGODB-OIDC"];

/// What the connection flags come to.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The connection string (with credentials: print only through `redact_uri`).
    pub uri: String,
    /// The database named by `--db` or the URI's path.
    pub db: Option<String>,
    /// Messages for the log (a `--readPreference` replacing the URI's, …).
    pub notes: Vec<String>,
}

/// Reads a password (for `-u` without `-p`): from the terminal without echo, or one
/// line of standard input when it is not a terminal (as mongo-tools does).
pub fn prompt_password(what: &str) -> Result<String, CompatError> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Enter password for {what}: "))
            .map_err(|e| CompatError::Usage(format!("reading the password: {e}")))
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            CompatError::Usage(format!("reading the password from standard input: {e}"))
        })?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

/// Folds the connection flags of `p` (and a URI from `--config`) into a connection
/// string. `prompt` reads a password when `-u` is given without one.
pub fn build(
    p: &Parsed,
    positional_uri: Option<&str>,
    config: &super::config::Config,
    prompt: &mut dyn FnMut(&str) -> Result<String, CompatError>,
) -> Result<Connection, CompatError> {
    let mut notes = Vec::new();
    let flag_uri = p.value("uri");
    if flag_uri.is_some() && positional_uri.is_some() {
        return Err(CompatError::Usage(
            "illegal argument combination: cannot specify a URI in a positional argument and --uri"
                .into(),
        ));
    }
    let given = flag_uri
        .or(positional_uri)
        .or(config.uri.as_deref())
        .filter(|s| !s.is_empty());
    let port = p.value("port");
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(CompatError::Usage(format!(
            "--port {port:?} is not a port number"
        )));
    }
    let mut uri = match given {
        Some(s) => {
            let mut u = Uri::parse(s)?;
            if let Some(port) = port {
                for h in &mut u.hosts {
                    match port_of(h) {
                        Some(hp) if hp != port => {
                            return Err(conflict("port", hp, port, "--port"));
                        }
                        Some(_) => {}
                        None => *h = format!("{h}:{port}"),
                    }
                }
            }
            if let Some(h) = p.value("host") {
                let (mut seeds, set) = split_host_arg(h);
                if let Some(port) = port {
                    for s in &mut seeds {
                        if !host_has_port(s) {
                            *s = format!("{s}:{port}");
                        }
                    }
                }
                let a: std::collections::BTreeSet<&str> =
                    u.hosts.iter().map(String::as_str).collect();
                let b: std::collections::BTreeSet<&str> =
                    seeds.iter().map(String::as_str).collect();
                if a != b {
                    return Err(conflict("host", &u.hosts.join(","), h, "--host"));
                }
                if let Some(set) = set {
                    u.set_param("replicaSet", &set, "--host")?;
                }
            }
            u
        }
        None => {
            let (mut seeds, set) = split_host_arg(p.value("host").unwrap_or("localhost"));
            for s in &mut seeds {
                if !host_has_port(s) {
                    *s = format!("{s}:{}", port.unwrap_or("27017"));
                }
            }
            let mut u = Uri {
                scheme: "mongodb".into(),
                user: None,
                password: None,
                hosts: seeds,
                db: None,
                params: Vec::new(),
            };
            if let Some(set) = set {
                u.params.push(("replicaSet".into(), set));
            }
            u
        }
    };

    // Authentication.
    if let Some(user) = p.value("username") {
        match &uri.user {
            Some(u) if u != user => return Err(conflict("username", u, user, "--username")),
            _ => uri.user = Some(user.to_string()),
        }
    }
    let password = p
        .value("password")
        .filter(|s| !s.is_empty())
        .or(config.password.as_deref().filter(|s| !s.is_empty()));
    if let Some(pw) = password {
        match &uri.password {
            Some(u) if u != pw => {
                return Err(CompatError::Usage(
                    "cannot specify a different password in the connection string and with --password".into(),
                ));
            }
            _ => uri.password = Some(pw.to_string()),
        }
    }
    if uri.password.is_some() && uri.user.is_none() {
        return Err(CompatError::Usage(
            "a password was given without a user name: add -u/--username".into(),
        ));
    }
    if let Some(m) = p.value("authenticationMechanism") {
        uri.set_param("authMechanism", m, "--authenticationMechanism")?;
    }
    let mechanism = uri.param("authMechanism").map(str::to_ascii_uppercase);
    if let Some(src) = p.value("authenticationDatabase") {
        uri.set_param("authSource", src, "--authenticationDatabase")?;
    }
    let db_flag = p.value("db").filter(|d| !d.is_empty());
    let db = match (db_flag, &uri.db) {
        (Some(a), Some(b)) if a != b => return Err(conflict("database", b, a, "--db")),
        (Some(a), _) => Some(a.to_string()),
        (None, b) => b.clone(),
    };
    if uri.user.is_some() && uri.param("authSource").is_none() {
        // mongo-tools authenticates against --db when no authentication database is
        // given (and `$external` for external mechanisms); the driver would use admin.
        if mechanism.as_deref().is_some_and(|m| EXTERNAL.contains(&m)) {
            uri.params.push(("authSource".into(), "$external".into()));
        } else if uri.db.is_none()
            && let Some(d) = &db
        {
            uri.params.push(("authSource".into(), d.clone()));
        }
    }
    if uri.user.is_some()
        && uri.password.is_none()
        && !mechanism
            .as_deref()
            .is_some_and(|m| NO_PASSWORD.contains(&m))
    {
        uri.password = Some(prompt("mongo user")?);
    }
    let mut props: Vec<String> = Vec::new();
    for (flag, key) in [
        ("awsSessionToken", "AWS_SESSION_TOKEN"),
        ("gssapiServiceName", "SERVICE_NAME"),
        ("gssapiHostName", "SERVICE_HOST"),
    ] {
        if let Some(v) = p.value(flag) {
            props.push(format!("{key}:{v}"));
        }
    }
    if !props.is_empty() {
        match uri.param("authMechanismProperties") {
            Some(existing) => {
                let joined = format!("{existing},{}", props.join(","));
                uri.remove_param("authMechanismProperties");
                uri.params.push(("authMechanismProperties".into(), joined));
            }
            None => uri
                .params
                .push(("authMechanismProperties".into(), props.join(","))),
        }
    }

    // TLS.
    if p.has("ssl") {
        match uri.param("tls").or(uri.param("ssl")) {
            Some(v) if v.eq_ignore_ascii_case("false") => {
                return Err(conflict("tls", v, "true", "--ssl"));
            }
            Some(_) => {}
            None => uri.params.push(("tls".into(), "true".into())),
        }
    }
    for (flag, param) in [
        ("sslCAFile", "tlsCAFile"),
        ("sslPEMKeyFile", "tlsCertificateKeyFile"),
    ] {
        if let Some(v) = p.value(flag) {
            uri.set_param(param, v, &format!("--{flag}"))?;
        }
    }
    let key_password = p
        .value("sslPEMKeyPassword")
        .or(config.ssl_pem_key_password.as_deref());
    if let Some(v) = key_password {
        uri.set_param("tlsCertificateKeyFilePassword", v, "--sslPEMKeyPassword")?;
    }
    for (flag, param) in [
        ("tlsInsecure", "tlsInsecure"),
        ("sslAllowInvalidCertificates", "tlsAllowInvalidCertificates"),
        ("sslAllowInvalidHostnames", "tlsAllowInvalidHostnames"),
    ] {
        if p.has(flag) {
            uri.set_param(param, "true", &format!("--{flag}"))?;
        }
    }
    let tls_files = ["tlsCAFile", "tlsCertificateKeyFile", "tlsCRLFile"];
    if tls_files.iter().any(|k| uri.param(k).is_some())
        && uri.param("tls").is_none()
        && uri.param("ssl").is_none()
    {
        notes.push(
            "TLS files were given without --ssl: TLS is switched on as mongo-tools' driver does"
                .into(),
        );
        uri.params.push(("tls".into(), "true".into()));
    }

    // Timeouts and compression.
    for (flag, param) in [
        ("dialTimeout", "connectTimeoutMS"),
        ("serverSelectionTimeout", "serverSelectionTimeoutMS"),
    ] {
        if let Some(v) = p.value(flag) {
            let secs: u64 = v.parse().map_err(|_| {
                CompatError::Usage(format!("--{flag} {v:?} is not a number of seconds"))
            })?;
            if flag == "serverSelectionTimeout" && secs == 0 {
                continue;
            }
            uri.set_param(param, &(secs * 1000).to_string(), &format!("--{flag}"))?;
        }
    }
    if let Some(v) = p.value("socketTimeout")
        && v != "0"
    {
        return Err(CompatError::Usage(format!(
            "--socketTimeout {v}: the driver oxidump uses has no socket timeout; only 0 (none, the default) is accepted"
        )));
    }
    if let Some(v) = p.value("compressors")
        && v != "none"
    {
        uri.set_param("compressors", v, "--compressors")?;
    }

    // Read preference (mongodump).
    if let Some(rp) = p.value("readPreference") {
        apply_read_preference(&mut uri, rp, &mut notes)?;
    }

    // mongo-tools connects directly to a single host unless a replica set is named.
    let single = uri.hosts.len() == 1 && uri.scheme == "mongodb";
    if single
        && uri.param("replicaSet").is_none()
        && uri.param("directConnection").is_none()
        && !uri
            .param("loadBalanced")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        uri.params.push(("directConnection".into(), "true".into()));
    }
    Ok(Connection {
        uri: uri.render(),
        db,
        notes,
    })
}

const MODES: [&str; 5] = [
    "primary",
    "primaryPreferred",
    "secondary",
    "secondaryPreferred",
    "nearest",
];

fn apply_read_preference(
    uri: &mut Uri,
    rp: &str,
    notes: &mut Vec<String>,
) -> Result<(), CompatError> {
    let bad = |why: String| CompatError::Usage(format!("--readPreference {rp:?}: {why}"));
    let (mode, tags, staleness) = if rp.trim_start().starts_with('{') {
        let v = relaxed::parse(rp).map_err(|e| bad(e.to_string()))?;
        let obj = v.as_object().ok_or_else(|| bad("not a document".into()))?;
        for k in obj.keys() {
            if !matches!(k.as_str(), "mode" | "tagSets" | "maxStalenessSeconds") {
                return Err(bad(format!(
                    "unknown field {k:?} (expected mode, tagSets, maxStalenessSeconds)"
                )));
            }
        }
        let mode = obj
            .get("mode")
            .and_then(|m| m.as_str())
            .ok_or_else(|| bad("`mode` (a string) is required".into()))?
            .to_string();
        let mut tags = Vec::new();
        if let Some(ts) = obj.get("tagSets") {
            let arr = ts
                .as_array()
                .ok_or_else(|| bad("`tagSets` must be an array of documents".into()))?;
            for set in arr {
                let o = set
                    .as_object()
                    .ok_or_else(|| bad("`tagSets` must be an array of documents".into()))?;
                let pairs: Vec<String> = o
                    .iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}:{s}"),
                        other => format!("{k}:{other}"),
                    })
                    .collect();
                tags.push(pairs.join(","));
            }
        }
        let staleness = match obj.get("maxStalenessSeconds") {
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| bad("`maxStalenessSeconds` must be a whole number".into()))?,
            ),
            None => None,
        };
        (mode, tags, staleness)
    } else {
        (rp.to_string(), Vec::new(), None)
    };
    if !MODES.contains(&mode.as_str()) {
        return Err(bad(format!(
            "mode {mode:?} is not one of {}",
            MODES.join(", ")
        )));
    }
    if uri.param("readPreference").is_some() {
        notes.push(format!(
            "--readPreference {rp} replaces the connection string's readPreference"
        ));
    }
    for k in [
        "readPreference",
        "readPreferenceTags",
        "maxStalenessSeconds",
    ] {
        uri.remove_param(k);
    }
    uri.params.push(("readPreference".into(), mode));
    for t in tags {
        uri.params.push(("readPreferenceTags".into(), t));
    }
    if let Some(s) = staleness {
        uri.params
            .push(("maxStalenessSeconds".into(), s.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::config::Config;
    use super::super::flags::Tool;
    use super::*;

    fn conn(tool: Tool, a: &[&str]) -> Result<Connection, CompatError> {
        let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        let p = super::super::args::parse(tool, &args)?;
        let uri = p
            .positionals
            .iter()
            .find(|s| s.starts_with("mongodb"))
            .cloned();
        build(&p, uri.as_deref(), &Config::default(), &mut |_| {
            Ok("typed".into())
        })
    }

    fn dump(a: &[&str]) -> Result<Connection, CompatError> {
        conn(Tool::Mongodump, a)
    }

    #[test]
    fn defaults_to_localhost_directly() {
        let c = dump(&[]).unwrap();
        assert_eq!(c.uri, "mongodb://localhost:27017/?directConnection=true");
    }

    #[test]
    fn host_and_port() {
        let c = dump(&["-h", "db1", "--port", "28000"]).unwrap();
        assert_eq!(c.uri, "mongodb://db1:28000/?directConnection=true");
        let c = dump(&["--host", "rs0/a:1,b"]).unwrap();
        assert_eq!(c.uri, "mongodb://a:1,b:27017/?replicaSet=rs0");
        let c = dump(&["-h", "127.0.0.1:27018"]).unwrap();
        assert_eq!(c.uri, "mongodb://127.0.0.1:27018/?directConnection=true");
        let c = dump(&["-h", "[::1]:27019"]).unwrap();
        assert_eq!(c.uri, "mongodb://[::1]:27019/?directConnection=true");
        assert!(dump(&["--port", "x"]).is_err());
    }

    #[test]
    fn uri_and_flags_must_agree() {
        let c = dump(&[
            "mongodb://h:1/?replicaSet=rs",
            "--port",
            "1",
            "-h",
            "rs/h:1",
        ])
        .unwrap();
        assert_eq!(c.uri, "mongodb://h:1/?replicaSet=rs");
        let e = dump(&["mongodb://h:1/", "--port", "2"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("port"), "{e}");
        let e = dump(&["mongodb://h:1/", "-h", "other:1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("host"), "{e}");
        let e = dump(&["mongodb://u@h/", "-u", "v"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("username"), "{e}");
        let e = dump(&["--uri", "mongodb://h/", "mongodb://g/"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("positional"), "{e}");
        let e = dump(&["mongodb://h/a", "-d", "b"]).unwrap_err().to_string();
        assert!(e.contains("database"), "{e}");
    }

    #[test]
    fn port_fills_uri_hosts() {
        let c = dump(&["mongodb://h/", "--port", "5"]).unwrap();
        assert_eq!(c.uri, "mongodb://h:5/?directConnection=true");
    }

    #[test]
    fn credentials_and_auth_database() {
        let c = dump(&["-u", "us er", "-p", "p@ss:w/rd", "-d", "shop"]).unwrap();
        assert_eq!(
            c.uri,
            "mongodb://us%20er:p%40ss%3Aw%2Frd@localhost:27017/?authSource=shop&directConnection=true"
        );
        assert_eq!(c.db.as_deref(), Some("shop"));
        let c = dump(&[
            "-u",
            "a",
            "-p",
            "b",
            "--authenticationDatabase",
            "admin",
            "-d",
            "x",
        ])
        .unwrap();
        assert!(c.uri.contains("authSource=admin"), "{}", c.uri);
        let c = dump(&["-u", "CN=x", "--authenticationMechanism", "MONGODB-X509"]).unwrap();
        assert!(c.uri.contains("authSource=%24external"), "{}", c.uri);
        assert!(!c.uri.contains("typed"), "no prompt for X.509: {}", c.uri);
    }

    #[test]
    fn password_prompted_when_missing() {
        let c = dump(&["-u", "a"]).unwrap();
        assert!(c.uri.starts_with("mongodb://a:typed@"), "{}", c.uri);
        let c = dump(&["-u", "a", "-p", ""]).unwrap();
        assert!(c.uri.starts_with("mongodb://a:typed@"), "{}", c.uri);
        let c = dump(&["mongodb://a:given@h/"]).unwrap();
        assert!(c.uri.starts_with("mongodb://a:given@"), "{}", c.uri);
        let e = dump(&["-p", "alone"]).unwrap_err().to_string();
        assert!(e.contains("-u/--username"), "{e}");
    }

    #[test]
    fn uri_database_is_the_db() {
        let c = dump(&["mongodb://h/shop?authSource=admin"]).unwrap();
        assert_eq!(c.db.as_deref(), Some("shop"));
        assert_eq!(
            c.uri,
            "mongodb://h/shop?authSource=admin&directConnection=true"
        );
    }

    #[test]
    fn tls_flags() {
        let c = dump(&[
            "--ssl",
            "--sslCAFile",
            "/ca.pem",
            "--sslPEMKeyFile",
            "/c.pem",
            "--sslPEMKeyPassword",
            "k",
            "--tlsInsecure",
            "--sslAllowInvalidHostnames",
            "--sslAllowInvalidCertificates",
        ])
        .unwrap();
        for want in [
            "tls=true",
            "tlsCAFile=%2Fca.pem",
            "tlsCertificateKeyFile=%2Fc.pem",
            "tlsCertificateKeyFilePassword=k",
            "tlsInsecure=true",
            "tlsAllowInvalidHostnames=true",
            "tlsAllowInvalidCertificates=true",
        ] {
            assert!(c.uri.contains(want), "{want} in {}", c.uri);
        }
        let e = dump(&["mongodb://h/?tls=false", "--ssl"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls"), "{e}");
    }

    #[test]
    fn mechanism_properties_and_timeouts() {
        let c = dump(&[
            "--authenticationMechanism",
            "MONGODB-AWS",
            "--awsSessionToken",
            "tok",
            "--dialTimeout",
            "5",
            "--serverSelectionTimeout",
            "7",
            "--compressors",
            "zstd,snappy",
            "--socketTimeout",
            "0",
        ])
        .unwrap();
        for want in [
            "authMechanism=MONGODB-AWS",
            "authMechanismProperties=AWS_SESSION_TOKEN:tok",
            "connectTimeoutMS=5000",
            "serverSelectionTimeoutMS=7000",
            "compressors=zstd,snappy",
        ] {
            assert!(c.uri.contains(want), "{want} in {}", c.uri);
        }
        let c = dump(&["--gssapiServiceName", "svc", "--gssapiHostName", "kdc"]).unwrap();
        assert!(
            c.uri
                .contains("authMechanismProperties=SERVICE_NAME:svc,SERVICE_HOST:kdc"),
            "{}",
            c.uri
        );
        assert!(dump(&["--socketTimeout", "10"]).is_err());
        assert!(dump(&["--dialTimeout", "soon"]).is_err());
    }

    #[test]
    fn read_preferences() {
        let c = dump(&["--readPreference", "secondary"]).unwrap();
        assert!(c.uri.contains("readPreference=secondary"), "{}", c.uri);
        let c = dump(&[
            "--readPreference",
            "{mode: 'nearest', tagSets: [{dc: 'ny'}, {}], maxStalenessSeconds: 120}",
        ])
        .unwrap();
        assert!(
            c.uri.contains("readPreference=nearest&readPreferenceTags=dc:ny&readPreferenceTags=&maxStalenessSeconds=120"),
            "{}",
            c.uri
        );
        let c = dump(&[
            "mongodb://h/?readPreference=primary",
            "--readPreference",
            "nearest",
        ])
        .unwrap();
        assert!(
            c.uri.contains("readPreference=nearest") && !c.uri.contains("primary"),
            "{}",
            c.uri
        );
        assert_eq!(c.notes.len(), 1);
        assert!(dump(&["--readPreference", "closest"]).is_err());
        assert!(dump(&["--readPreference", "{tagSets: []}"]).is_err());
    }

    #[test]
    fn config_file_values_lose_to_flags() {
        let args: Vec<String> = ["-u", "a", "-p", "flag"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = super::super::args::parse(Tool::Mongodump, &args).unwrap();
        let cfg = Config {
            password: Some("file".into()),
            uri: Some("mongodb://cfg:1/".into()),
            ssl_pem_key_password: Some("kp".into()),
        };
        let c = build(&p, None, &cfg, &mut |_| panic!("no prompt")).unwrap();
        assert_eq!(
            c.uri,
            "mongodb://a:flag@cfg:1/?tlsCertificateKeyFilePassword=kp&directConnection=true"
        );
    }

    #[test]
    fn uri_round_trip() {
        let u = Uri::parse("mongodb+srv://u:p%40@c.example.net/db?retryWrites=true&w=majority")
            .unwrap();
        assert_eq!(u.password.as_deref(), Some("p@"));
        assert_eq!(u.db.as_deref(), Some("db"));
        assert_eq!(
            u.render(),
            "mongodb+srv://u:p%40@c.example.net/db?retryWrites=true&w=majority"
        );
        assert!(Uri::parse("http://x").is_err());
        assert!(Uri::parse("mongodb://").is_err());
    }
}
