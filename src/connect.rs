//! Connecting to a server from a connection string, and what oxidump needs to know
//! about it. The URI carries the whole connection story (auth, TLS, replica set,
//! read preference, compressors); [`redact_uri`] is the only form of it that is ever
//! printed or stored.

use std::time::Duration;

use bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, ReadPreference, ReadPreferenceOptions, SelectionCriteria};
use mongodb::{Client, Database};

/// Error connecting.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URI does not parse.
    #[error("invalid connection string {uri}: {message}")]
    BadUri {
        /// The redacted URI.
        uri: String,
        /// What is wrong.
        message: String,
    },
    /// No server answered in time.
    #[error("cannot reach the server at {uri} (gave up after {timeout:?}): {message}")]
    Unreachable {
        /// The redacted URI.
        uri: String,
        /// Server selection timeout.
        timeout: Duration,
        /// Driver's account of what it tried.
        message: String,
    },
    /// The server refused the credentials.
    #[error("authentication refused by {uri}: {message}")]
    Auth {
        /// The redacted URI.
        uri: String,
        /// Server's reason.
        message: String,
    },
    /// Any other driver error while connecting.
    #[error("{uri}: {}", describe(source))]
    Driver {
        /// The redacted URI.
        uri: String,
        /// The driver error.
        source: mongodb::error::Error,
    },
    /// An option value is invalid.
    #[error("{0}")]
    Usage(String),
}

/// Query parameters whose values are secrets.
const SECRET_PARAMS: [&str; 4] = [
    "tlscertificatekeyfilepassword",
    "sslpemkeypassword",
    "authmechanismproperties",
    "password",
];

/// The connection string with every credential removed: the password of the user
/// info and the values of secret options. The user name is kept.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return "<invalid connection string>".into();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{user}@{hosts}")
        }
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let q: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                        format!("{k}=<redacted>")
                    }
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", q.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Refuses connection-string options given without a value (`?replicaSet=`), which
/// the driver would take as an empty name and then fail to find any server.
fn check_options(uri: &str) -> Result<(), String> {
    let Some((_, query)) = uri.split_once('?') else {
        return Ok(());
    };
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if v.is_empty() {
            return Err(format!("option {k} has no value"));
        }
    }
    Ok(())
}

/// Default server-selection timeout when the URI does not set one.
pub const DEFAULT_SELECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// Parses `read_preference` (`primary`, `primaryPreferred`, `secondary`,
/// `secondaryPreferred`, `nearest`).
pub fn parse_read_preference(mode: &str) -> Result<ReadPreference, ConnectError> {
    let o = || Some(ReadPreferenceOptions::default());
    Ok(match mode {
        "primary" => ReadPreference::Primary,
        "primaryPreferred" => ReadPreference::PrimaryPreferred { options: o() },
        "secondary" => ReadPreference::Secondary { options: o() },
        "secondaryPreferred" => ReadPreference::SecondaryPreferred { options: o() },
        "nearest" => ReadPreference::Nearest { options: o() },
        other => {
            return Err(ConnectError::Usage(format!(
                "--read-preference {other:?}: expected primary, primaryPreferred, secondary, secondaryPreferred or nearest"
            )));
        }
    })
}

/// Why `tlsCRLFile` (mongo-tools' `--sslCRLFile`) is refused.
pub const NO_CRL: &str = "certificate revocation lists are not checked: oxidump's TLS is rustls through the MongoDB Rust driver, which has no tlsCRLFile option; remove it (revoked client certificates are refused by the server; for the server's certificate, rely on its CA or pin it with tlsCAFile)";

/// Options of the connection string that this build cannot honour, with the reason.
fn unsupported_option(uri: &str) -> Option<String> {
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k.eq_ignore_ascii_case("tlsCRLFile") {
            return Some(format!("tlsCRLFile: {NO_CRL}"));
        }
        if k.eq_ignore_ascii_case("authMechanism")
            && v.eq_ignore_ascii_case("GSSAPI")
            && !cfg!(feature = "gssapi")
        {
            return Some(
                "authMechanism=GSSAPI: Kerberos needs oxidump built with `cargo build --features gssapi` (and the system's GSS-API library); this build has no Kerberos support".into(),
            );
        }
    }
    None
}

/// Connects and checks that the server answers (`ping`), so an unreachable server or
/// refused credentials fail here with a clear message.
pub async fn connect(
    uri: &str,
    pool_size: u32,
    read_preference: Option<&str>,
) -> Result<Client, ConnectError> {
    let shown = redact_uri(uri);
    check_options(uri).map_err(|message| ConnectError::BadUri {
        uri: shown.clone(),
        message,
    })?;
    if let Some(message) = unsupported_option(uri) {
        return Err(ConnectError::BadUri {
            uri: shown.clone(),
            message,
        });
    }
    let mut opts = ClientOptions::parse(uri)
        .await
        .map_err(|e| ConnectError::BadUri {
            uri: shown.clone(),
            message: e.kind.to_string(),
        })?;
    if opts.app_name.is_none() {
        opts.app_name = Some(format!("oxidump {}", env!("CARGO_PKG_VERSION")));
    }
    if opts.server_selection_timeout.is_none() {
        opts.server_selection_timeout = Some(DEFAULT_SELECTION_TIMEOUT);
    }
    let timeout = opts
        .server_selection_timeout
        .unwrap_or(DEFAULT_SELECTION_TIMEOUT);
    opts.max_pool_size = Some(opts.max_pool_size.unwrap_or(0).max(pool_size));
    if let Some(mode) = read_preference {
        opts.selection_criteria = Some(SelectionCriteria::ReadPreference(parse_read_preference(
            mode,
        )?));
    }
    let client = Client::with_options(opts).map_err(|source| ConnectError::Driver {
        uri: shown.clone(),
        source,
    })?;
    match client.database("admin").run_command(doc! {"ping": 1}).await {
        Ok(_) => Ok(client),
        Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::ServerSelection { .. }) => {
            Err(ConnectError::Unreachable {
                uri: shown,
                timeout,
                message: short_message(&e),
            })
        }
        Err(e)
            if matches!(*e.kind, mongodb::error::ErrorKind::Authentication { .. })
                || code_of(&e) == Some(18) =>
        {
            Err(ConnectError::Auth {
                uri: shown,
                message: short_message(&e),
            })
        }
        Err(source) => Err(ConnectError::Driver { uri: shown, source }),
    }
}

/// How long [`close`] waits for the client's last server-side work (cursors being
/// killed, sessions ended) before it closes the connections anyway.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Closes a client: waits (at most [`CLOSE_TIMEOUT`]) for the cleanup of the cursors
/// and sessions it released, ends its sessions and stops its background workers.
/// Called once everything that used the client is over and before the async runtime
/// is dropped, so that no driver task is cut off in the middle of a request.
pub async fn close(client: Client) {
    let last = client.clone();
    if tokio::time::timeout(CLOSE_TIMEOUT, client.shutdown())
        .await
        .is_err()
    {
        last.shutdown().immediate(true).await;
    }
}

/// The server error code of a driver error, if it carries one.
pub fn code_of(e: &mongodb::error::Error) -> Option<i32> {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::InsertMany(im) => im
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteConcernError(w)) => Some(w.code),
        _ => None,
    }
}

/// The driver's message without its topology dump.
fn short_message(e: &mongodb::error::Error) -> String {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { message, .. } => message
            .split(" Topology:")
            .next()
            .unwrap_or(message)
            .trim_end_matches('.')
            .to_string(),
        ErrorKind::Authentication { message, .. } => message.clone(),
        ErrorKind::Command(c) => c.message.clone(),
        other => other.to_string(),
    }
}

/// A driver error in one line, for people: what failed, without the driver's
/// internal labels and topology dumps.
pub fn describe(e: &mongodb::error::Error) -> String {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::Io(io) => format!("the connection to the server was lost ({io})"),
        ErrorKind::ConnectionPoolCleared { .. } => "the connection to the server was lost".into(),
        ErrorKind::ServerSelection { message, .. } => {
            let m = message
                .split(" Topology:")
                .next()
                .unwrap_or(message)
                .trim_end_matches('.');
            format!("the server cannot be reached ({m})")
        }
        ErrorKind::Command(c) => {
            let hint = if c.code == 13 {
                " (give a user and password in the connection string: mongodb://USER:PASSWORD@HOST/?authSource=admin)"
            } else {
                ""
            };
            if c.code_name.is_empty() {
                format!("server error {}: {}{hint}", c.code, c.message)
            } else {
                format!(
                    "server error {} ({}): {}{hint}",
                    c.code, c.code_name, c.message
                )
            }
        }
        ErrorKind::Authentication { message, .. } => format!("authentication failed: {message}"),
        other => other.to_string(),
    }
}

/// Whether a driver error is a network failure (the connection, not the command, failed).
pub fn is_network(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    matches!(
        e.kind.as_ref(),
        ErrorKind::Io(..)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::ServerSelection { .. }
    )
}

/// What oxidump needs to know about a server.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// `buildInfo.version`.
    pub version: String,
    /// Feature compatibility version, when the server reports one.
    pub fcv: Option<String>,
    /// Whether it is a mongos.
    pub is_mongos: bool,
    /// Whether it is a replica set member.
    pub is_replica_set: bool,
    /// `maxBsonObjectSize`.
    pub max_bson_size: i64,
    /// `maxMessageSizeBytes`.
    pub max_message_size: i64,
    /// `maxWriteBatchSize`.
    pub max_write_batch: i64,
    /// `buildInfo.secantusVersion`: set when the server is SecantusDB, not mongod.
    pub secantus_version: Option<String>,
}

impl ServerInfo {
    /// `(major, minor)` of the version (`(0, 0)` when it does not parse).
    pub fn major_minor(&self) -> (u32, u32) {
        parse_major_minor(&self.version)
    }
}

/// `(major, minor)` of a version string like `8.2.11`.
pub fn parse_major_minor(v: &str) -> (u32, u32) {
    let mut it = v.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn num(d: &Document, k: &str, default: i64) -> i64 {
    match d.get(k) {
        Some(Bson::Int32(v)) => *v as i64,
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Double(v)) => *v as i64,
        _ => default,
    }
}

/// Asks the server for its version, FCV, topology and limits.
pub async fn server_info(client: &Client) -> Result<ServerInfo, mongodb::error::Error> {
    let admin: Database = client.database("admin");
    let build = admin.run_command(doc! {"buildInfo": 1}).await?;
    let hello = admin.run_command(doc! {"hello": 1}).await?;
    let fcv = match admin
        .run_command(doc! {"getParameter": 1, "featureCompatibilityVersion": 1})
        .await
    {
        Ok(d) => d
            .get_document("featureCompatibilityVersion")
            .ok()
            .and_then(|f| f.get_str("version").ok())
            .map(str::to_string),
        Err(_) => None,
    };
    Ok(ServerInfo {
        version: build.get_str("version").unwrap_or("unknown").to_string(),
        fcv,
        is_mongos: hello.get_str("msg").ok() == Some("isdbgrid"),
        is_replica_set: hello.get_str("setName").is_ok(),
        max_bson_size: num(&hello, "maxBsonObjectSize", 16 * 1024 * 1024),
        max_message_size: num(&hello, "maxMessageSizeBytes", 48_000_000),
        max_write_batch: num(&hello, "maxWriteBatchSize", 100_000),
        secantus_version: build.get_str("secantusVersion").ok().map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_this_build_cannot_honour_are_named() {
        let crl = unsupported_option("mongodb://h/?tls=true&TLSCRLFILE=/crl.pem").unwrap();
        assert!(
            crl.starts_with("tlsCRLFile: certificate revocation lists"),
            "{crl}"
        );
        let gss = unsupported_option("mongodb://u@h/?authMechanism=gssapi");
        assert_eq!(gss.is_some(), !cfg!(feature = "gssapi"), "{gss:?}");
        assert_eq!(
            unsupported_option("mongodb://h/?tls=true&tlsCAFile=/ca.pem&authMechanism=MONGODB-AWS"),
            None
        );
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_uri("mongodb://alice:s3cret@h1:27017,h2/admin?replicaSet=rs&authSource=admin"),
            "mongodb://alice@h1:27017,h2/admin?replicaSet=rs&authSource=admin"
        );
        assert_eq!(
            redact_uri("mongodb+srv://bob:p%40ss@cluster.example.net"),
            "mongodb+srv://bob@cluster.example.net"
        );
        assert_eq!(
            redact_uri(
                "mongodb://h/?tlsCertificateKeyFilePassword=x&authMechanismProperties=AWS_SESSION_TOKEN:y"
            ),
            "mongodb://h/?tlsCertificateKeyFilePassword=<redacted>&authMechanismProperties=<redacted>"
        );
        assert_eq!(redact_uri("mongodb://h:1"), "mongodb://h:1");
        assert!(!redact_uri("mongodb://u:pa:ss@h/").contains("pa"));
        assert_eq!(redact_uri("nonsense"), "<invalid connection string>");
    }

    #[test]
    fn options_without_a_value_are_refused() {
        assert_eq!(
            check_options("mongodb://h/?replicaSet="),
            Err("option replicaSet has no value".into())
        );
        assert_eq!(
            check_options("mongodb://h/?a=1&tls"),
            Err("option tls has no value".into())
        );
        assert_eq!(check_options("mongodb://h/?replicaSet=rs0&w=1&"), Ok(()));
        assert_eq!(check_options("mongodb://h"), Ok(()));
    }

    #[test]
    fn versions() {
        assert_eq!(parse_major_minor("8.2.11"), (8, 2));
        assert_eq!(parse_major_minor("7.0.0-rc1"), (7, 0));
        assert_eq!(parse_major_minor("unknown"), (0, 0));
    }
}
