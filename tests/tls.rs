//! TLS connections to a server that requires client certificates, with throwaway
//! certificates made by the test: a dump and a restore over TLS, a connection without
//! the client certificate refused, an encrypted client key opened with its password
//! (and refused with a wrong one), and `tlsCRLFile` refused with its reason.

use std::path::{Path, PathBuf};

use bson::{Document, doc};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

use crate::common::private_server::PrivateServer;
use crate::common::{block_on, oxidump, run};

const KEY_PASSWORD: &str = "k3y-Pw";

/// Files of a throwaway PKI: a CA, a server certificate for 127.0.0.1 and localhost,
/// and a client certificate, its key plain and encrypted.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    /// Client certificate and its key, in one file (`tlsCertificateKeyFile`).
    client: PathBuf,
    /// Client certificate and its key encrypted with [`KEY_PASSWORD`] (PKCS#8).
    client_encrypted: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "oxidump test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

    let server_key = KeyPair::generate().expect("server key");
    let mut sp = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    sp.distinguished_name
        .push(DnType::CommonName, "oxidump test server");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = sp
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server certificate");

    let client_key = KeyPair::generate().expect("client key");
    let mut cp = CertificateParams::new(Vec::<String>::new()).expect("client params");
    cp.distinguished_name
        .push(DnType::CommonName, "oxidump test client");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = cp
        .signed_by(&client_key, &ca, &ca_key)
        .expect("client certificate");
    let der = client_key.serialize_der();
    let encrypted = pkcs8::PrivateKeyInfoRef::try_from(der.as_slice())
        .expect("PKCS#8 key")
        .encrypt(KEY_PASSWORD)
        .expect("encrypt the key")
        .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .expect("PEM");

    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write a PEM file");
        p
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server.pem()),
        server_key: write("server.key", &server_key.serialize_pem()),
        client: write(
            "client.pem",
            &format!("{}{}", client.pem(), client_key.serialize_pem()),
        ),
        client_encrypted: write(
            "client-encrypted.pem",
            &format!("{}{}", client.pem(), &*encrypted),
        ),
    }
}

fn tls_params(pki: &Pki, client: Option<&Path>) -> String {
    let mut s = format!("&tls=true&tlsCAFile={}", pki.ca.display());
    if let Some(c) = client {
        s.push_str(&format!("&tlsCertificateKeyFile={}", c.display()));
    }
    s
}

/// Without the test's own TLS options: the plain address.
fn base_uri(server: &PrivateServer) -> String {
    format!(
        "mongodb://{}/?directConnection=true&serverSelectionTimeoutMS=5000",
        server.addr()
    )
}

fn tls_server(pki: &Pki) -> PrivateServer {
    let args = [
        "--tls-cert-file",
        pki.server_cert.to_str().unwrap(),
        "--tls-key-file",
        pki.server_key.to_str().unwrap(),
        "--tls-ca-file",
        pki.ca.to_str().unwrap(),
        "--tls-require-client-cert",
    ];
    PrivateServer::start_with(&args, &tls_params(pki, Some(&pki.client)))
}

/// A dump and a restore over TLS with a client certificate; the same without the
/// certificate is refused by the server.
#[test]
fn dump_and_restore_over_tls_with_a_client_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki(tmp.path());
    let server = tls_server(&pki);
    let c = server.client();
    block_on(async {
        c.database("shop")
            .collection::<Document>("orders")
            .insert_many((0..300).map(|i| doc! {"_id": i, "v": format!("v{i}")}))
            .await
    })
    .expect("insert over TLS");
    let uri = format!(
        "{}{}",
        base_uri(&server),
        tls_params(&pki, Some(&pki.client))
    );
    let out = tmp.path().join("shop.oxd");
    run(
        oxidump()
            .args(["dump", "--uri", &uri, "--db", "shop", "-q", "-o"])
            .arg(&out),
        0,
    );
    run(
        oxidump().arg("restore").arg(&out).args([
            "--uri",
            &uri,
            "-q",
            "--ns-from",
            "shop.*",
            "--ns-to",
            "shop2.*",
        ]),
        0,
    );
    let n = block_on(async {
        c.database("shop2")
            .collection::<Document>("orders")
            .count_documents(doc! {})
            .await
    })
    .expect("count");
    assert_eq!(n, 300);

    // No client certificate: the server refuses the connection.
    let no_cert = format!("{}{}", base_uri(&server), tls_params(&pki, None));
    let (_, _, err) = run(
        oxidump()
            .args(["dump", "--uri", &no_cert, "--db", "shop", "-q", "-o"])
            .arg(tmp.path().join("refused.oxd")),
        2,
    );
    assert!(err.contains("cannot reach the server"), "{err}");
    assert!(!tmp.path().join("refused.oxd").exists());
    // Not trusting the server's CA: refused too.
    let no_ca = format!(
        "{}&tls=true&tlsCertificateKeyFile={}",
        base_uri(&server),
        pki.client.display()
    );
    let (_, _, err) = run(
        oxidump()
            .args(["dump", "--uri", &no_ca, "--db", "shop", "-q", "-o"])
            .arg(tmp.path().join("refused.oxd")),
        2,
    );
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

/// An encrypted client key is opened with `tlsCertificateKeyFilePassword` (the
/// mongodump front end's `--sslPEMKeyPassword`); a wrong password says so.
#[test]
fn encrypted_client_key_with_its_password() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki(tmp.path());
    assert!(
        std::fs::read_to_string(&pki.client_encrypted)
            .unwrap()
            .contains("ENCRYPTED PRIVATE KEY")
    );
    let server = tls_server(&pki);
    let c = server.client();
    block_on(async {
        c.database("vault")
            .collection::<Document>("k")
            .insert_many((0..10).map(|i| doc! {"_id": i}))
            .await
    })
    .expect("insert over TLS");
    let uri = |pw: &str| {
        format!(
            "{}{}&tlsCertificateKeyFilePassword={pw}",
            base_uri(&server),
            tls_params(&pki, Some(&pki.client_encrypted))
        )
    };
    let out = tmp.path().join("vault.oxd");
    run(
        oxidump()
            .args([
                "dump",
                "--uri",
                &uri(KEY_PASSWORD),
                "--db",
                "vault",
                "-q",
                "-o",
            ])
            .arg(&out),
        0,
    );
    assert!(out.is_file());
    let (_, _, err) = run(
        oxidump()
            .args(["dump", "--uri", &uri("wrong"), "--db", "vault", "-q", "-o"])
            .arg(tmp.path().join("wrong.oxd")),
        2,
    );
    assert!(err.contains("decrypt"), "{err}");
    assert!(!err.contains(KEY_PASSWORD), "{err}");
    // The mongodump front end's spelling of the same.
    let (host, port) = server.addr().rsplit_once(':').expect("host:port");
    run(
        oxidump()
            .args(["mongodump", "--host", host, "--port", port, "--ssl"])
            .arg(format!("--sslCAFile={}", pki.ca.display()))
            .arg(format!(
                "--sslPEMKeyFile={}",
                pki.client_encrypted.display()
            ))
            .args(["--sslPEMKeyPassword", KEY_PASSWORD, "-d", "vault", "-o"])
            .arg(tmp.path().join("dump")),
        0,
    );
    assert!(tmp.path().join("dump/vault/k.bson").is_file());
}

/// `tlsCRLFile` cannot be honoured: refused with the reason, before connecting.
#[test]
fn crl_file_is_refused_with_its_reason() {
    let (_, _, err) = run(
        oxidump().args([
            "dump",
            "--uri",
            "mongodb://127.0.0.1:1/?tls=true&tlsCRLFile=/crl.pem",
            "-o",
            "/nonexistent/x.oxd",
        ]),
        2,
    );
    assert!(
        err.contains("tlsCRLFile") && err.contains("revocation lists are not checked"),
        "{err}"
    );
    let (_, _, err) = run(
        oxidump().args([
            "mongodump",
            "--host",
            "127.0.0.1:1",
            "--sslCRLFile",
            "/crl.pem",
        ]),
        1,
    );
    assert!(
        err.contains("--sslCRLFile") && err.contains("revocation"),
        "{err}"
    );
}
