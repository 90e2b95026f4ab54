//! TLS 1.3 on ring for calls between modules. Servers demand a client certificate from the
//! trust bundle; clients check that the server's certificate chains to the bundle and names
//! the module they meant to reach (SPIFFE style: the URI SAN, not a DNS name). Certificates
//! and bundles are looked up per handshake, so a reload applies to the next connection
//! while open connections carry on.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tonic::transport::server::Connected;

use super::certs::{CertStore, uri_names, verify_chain};
use super::identity::ServiceIdentity;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const ALPN_H2: &[u8] = b"h2";

/// Serves and presents the store's current certificate.
#[derive(Debug)]
struct CurrentCertificate(Arc<CertStore>);

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key.clone())
    }
}

impl ResolvesClientCert for CurrentCertificate {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Verifies client certificates against the store's current bundle.
#[derive(Debug)]
struct CurrentClientVerifier(Arc<CertStore>);

impl ClientCertVerifier for CurrentClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; every module presents its one certificate anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.0.current().client_verifier.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("the mesh speaks TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.0.provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.provider().signature_verification_algorithms.supported_schemes()
    }
}

/// Accepts a server certificate that chains to the caller's bundle and names `expected`.
#[derive(Debug)]
struct ExpectedServer {
    store: Arc<CertStore>,
    expected: ServiceIdentity,
}

impl ServerCertVerifier for ExpectedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let mut chain = vec![end_entity.clone()];
        chain.extend(intermediates.iter().cloned());
        verify_chain(&chain, &self.store.current().roots, self.store.provider(), now)?;
        let names = uri_names(end_entity).map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if names.contains(&self.expected.to_string()) {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::warn!(expected = %self.expected, presented = ?names, "a server presented another identity");
            Err(Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("the mesh speaks TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.store.provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.store.provider().signature_verification_algorithms.supported_schemes()
    }
}

/// The server side of a module's mutual TLS.
pub(crate) fn server_config(store: Arc<CertStore>) -> Result<rustls::ServerConfig, Error> {
    let provider = store.provider().clone();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(CurrentClientVerifier(store.clone())))
        .with_cert_resolver(Arc::new(CurrentCertificate(store)));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// The client side: presents `caller`'s certificate and expects `target`'s identity.
pub(crate) fn client_config(caller: Arc<CertStore>, target: ServiceIdentity) -> Result<rustls::ClientConfig, Error> {
    let provider = caller.provider().clone();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ExpectedServer { store: caller.clone(), expected: target }))
        .with_client_cert_resolver(Arc::new(CurrentCertificate(caller)));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// What a server knows of the other end of a connection.
#[derive(Clone, Debug)]
pub struct MeshPeer {
    /// The remote address.
    pub address: Option<SocketAddr>,
    /// The SPIFFE ID of the verified client certificate; `None` on a plain connection.
    pub certificate_identity: Option<String>,
}

/// An accepted connection: TLS (mutual TLS mode) or plain (behind a sidecar).
pub(crate) struct MeshStream {
    io: Io,
    peer: MeshPeer,
}

enum Io {
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Plain(TcpStream),
}

impl Connected for MeshStream {
    type ConnectInfo = MeshPeer;

    fn connect_info(&self) -> MeshPeer {
        self.peer.clone()
    }
}

impl AsyncRead for MeshStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
            Io::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MeshStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
            Io::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
            Io::Plain(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
            Io::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
            Io::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Tls(stream) => stream.is_write_vectored(),
            Io::Plain(stream) => stream.is_write_vectored(),
        }
    }
}

/// Accepted connections, handshakes done, for `serve_with_incoming`. Handshakes run
/// concurrently, so a slow or hostile client holds up no one; failures are logged and
/// dropped. `tls: None` accepts plain connections (a sidecar terminates TLS).
pub(crate) fn incoming(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    module: &'static str,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<MeshStream>> {
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                // The server stopped and dropped the stream.
                _ = sender.closed() => return,
            };
            let (tcp, address) = match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(module, %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let sender = sender.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let stream = match tls {
                    None => MeshStream {
                        io: Io::Plain(tcp),
                        peer: MeshPeer { address: Some(address), certificate_identity: None },
                    },
                    Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let identity = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .and_then(|leaf| uri_names(leaf).ok())
                                .and_then(|names| names.into_iter().find(|name| name.starts_with("spiffe://")));
                            MeshStream {
                                io: Io::Tls(Box::new(stream)),
                                peer: MeshPeer { address: Some(address), certificate_identity: identity },
                            }
                        }
                        Ok(Err(error)) => {
                            tracing::warn!(module, %address, %error, "mutual TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(module, %address, "mutual TLS handshake timed out");
                            return;
                        }
                    },
                };
                let _ = sender.send(Ok(stream)).await;
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

/// Opens mutual-TLS connections for a tonic channel.
#[derive(Clone)]
pub(crate) struct MeshConnector {
    pub(crate) connector: TlsConnector,
    /// Sent as SNI; identity is checked on the certificate's URI, not this name.
    pub(crate) server_name: ServerName<'static>,
}

type Connecting = Pin<
    Box<dyn Future<Output = io::Result<hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>> + Send>,
>;

impl tower::Service<http::Uri> for MeshConnector {
    type Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let (connector, server_name) = (self.connector.clone(), self.server_name.clone());
        Box::pin(async move {
            let host =
                uri.host().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{uri} has no host")))?;
            let port = uri.port_u16().unwrap_or(80);
            let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port)).await?;
            tcp.set_nodelay(true)?;
            let stream = connector.connect(server_name, tcp).await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}
