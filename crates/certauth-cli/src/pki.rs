//! The demo's throw-away PKI (rcgen): a CA, a server certificate for localhost, and one
//! client of each kind the demo shows.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

/// One client the demo connects with.
pub(crate) struct Client {
    /// Short name, also the file stem with `--keep`.
    pub(crate) name: &'static str,
    /// What it presents, for the table.
    pub(crate) presents: &'static str,
    /// Certificate and key PEM (`None`: presents no certificate).
    pub(crate) identity: Option<(String, String)>,
    /// The outcome the demo expects: `echo` or the denial code.
    pub(crate) expect: &'static str,
}

pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    pub(crate) server_pem: String,
    pub(crate) server_key: String,
    pub(crate) clients: Vec<Client>,
}

fn ca(cn: &str) -> Result<(CertificateParams, KeyPair, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(vec![])?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "certauth demo");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = p.self_signed(&key)?.pem();
    Ok((p, key, pem))
}

fn leaf(
    issuer: &Issuer<'_, &KeyPair>,
    cn: &str,
    server: bool,
    expired: bool,
) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(vec![])?;
    p.distinguished_name.push(DnType::CommonName, cn);
    if server {
        p.subject_alt_names = vec![
            SanType::DnsName(cn.try_into()?),
            SanType::IpAddress([127, 0, 0, 1].into()),
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    } else {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    if expired {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    Ok((p.signed_by(&key, issuer)?.pem(), key.serialize_pem()))
}

impl Pki {
    pub(crate) fn generate() -> Result<Self, rcgen::Error> {
        let (params, key, ca_pem) = ca("certauth demo CA")?;
        let issuer = Issuer::from_params(&params, &key);
        let (other_params, other_key, _) = ca("some other CA")?;
        let other = Issuer::from_params(&other_params, &other_key);
        let (server_pem, server_key) = leaf(&issuer, "localhost", true, false)?;
        let clients = vec![
            Client {
                name: "trusted",
                presents: "CN=trusted-client from the demo CA",
                identity: Some(leaf(&issuer, "trusted-client", false, false)?),
                expect: "echo",
            },
            Client {
                name: "other-ca",
                presents: "CN=trusted-client from another CA",
                identity: Some(leaf(&other, "trusted-client", false, false)?),
                expect: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            },
            Client {
                name: "expired",
                presents: "CN=trusted-client, expired in 2021",
                identity: Some(leaf(&issuer, "trusted-client", false, true)?),
                expect: "CERT_HAS_EXPIRED",
            },
            Client {
                name: "refused",
                presents: "CN=someone-else from the demo CA",
                identity: Some(leaf(&issuer, "someone-else", false, false)?),
                expect: "POLICY_DENIED",
            },
            Client {
                name: "none",
                presents: "no certificate",
                identity: None,
                expect: "NO_CERTIFICATE",
            },
        ];
        Ok(Self {
            ca_pem,
            server_pem,
            server_key,
            clients,
        })
    }
}
