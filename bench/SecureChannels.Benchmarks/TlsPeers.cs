using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace SecureChannels.Benchmarks;

/// <summary>
/// The TLS baseline's two parties: self-signed ECDSA P-256 certificates for a server and a client, made once,
/// and the options of a TLS 1.3 connection with mutual certificate authentication, each side pinning the
/// other's certificate by its SHA-256 thumbprint. Session resumption is off, so every handshake is a full one
/// (as every channel handshake is). Certificate contexts are built once, as a server would.
/// </summary>
internal sealed class TlsPeers : IDisposable
{
    /// <summary>The server's name: its certificate's subject and DNS name, and the client's target host.</summary>
    public const string ServerName = "localhost";

    private readonly X509Certificate2 _serverCertificate;
    private readonly X509Certificate2 _clientCertificate;

    /// <summary>Makes the certificates and options.</summary>
    /// <param name="cipher">
    /// The one TLS 1.3 cipher suite both sides offer (for the throughput comparison), or null for OpenSSL's
    /// default list (TLS_AES_256_GCM_SHA384 first).
    /// </param>
    private TlsPeers(TlsCipherSuite? cipher)
    {
        _serverCertificate = CreateCertificate(ServerName, "1.3.6.1.5.5.7.3.1");
        _clientCertificate = CreateCertificate("agent", "1.3.6.1.5.5.7.3.2");
        CipherSuitesPolicy? policy = null;
        if (cipher is { } suite)
        {
            if (OperatingSystem.IsWindows())
            {
                throw new PlatformNotSupportedException("Choosing TLS cipher suites needs OpenSSL (Linux) or macOS.");
            }

            policy = new CipherSuitesPolicy([suite]);
        }

        ServerOptions = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(_serverCertificate, additionalCertificates: null, offline: true),
            ClientCertificateRequired = true,
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = Pin(_clientCertificate),
            AllowTlsResume = false,
            CipherSuitesPolicy = policy,
        };
        ClientOptions = new SslClientAuthenticationOptions
        {
            TargetHost = ServerName,
            ClientCertificateContext = SslStreamCertificateContext.Create(_clientCertificate, additionalCertificates: null, offline: true),
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = Pin(_serverCertificate),
            AllowTlsResume = false,
            CipherSuitesPolicy = policy,
        };
    }

    public SslServerAuthenticationOptions ServerOptions { get; }

    public SslClientAuthenticationOptions ClientOptions { get; }

    /// <inheritdoc cref="TlsPeers(TlsCipherSuite?)"/>
    public static TlsPeers Create(TlsCipherSuite? cipher = null) => new(cipher);

    /// <summary>Runs both sides of a handshake over a fresh in-memory connection, concurrently.</summary>
    public Task<(SslStream Client, SslStream Server)> ConnectAsync()
    {
        var (clientStream, serverStream) = InMemoryConnection.CreateStreams();
        return ConnectAsync(clientStream, serverStream);
    }

    /// <summary>Runs both sides of a handshake over the two ends of one connection, concurrently; the TLS streams own them.</summary>
    public async Task<(SslStream Client, SslStream Server)> ConnectAsync(Stream clientStream, Stream serverStream)
    {
        var client = new SslStream(clientStream, leaveInnerStreamOpen: false);
        var server = new SslStream(serverStream, leaveInnerStreamOpen: false);
        try
        {
            var accept = server.AuthenticateAsServerAsync(ServerOptions, CancellationToken.None);
            await client.AuthenticateAsClientAsync(ClientOptions, CancellationToken.None).ConfigureAwait(false);
            await accept.ConfigureAwait(false);
            return (client, server);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Throws unless <paramref name="stream"/> negotiated TLS 1.3 with both sides authenticated by certificate.</summary>
    public static void EnsureMutualTls13(SslStream stream)
    {
        if (stream.SslProtocol != SslProtocols.Tls13 || !stream.IsMutuallyAuthenticated || stream.RemoteCertificate is null)
        {
            throw new InvalidOperationException($"Not a mutually authenticated TLS 1.3 connection: {stream.SslProtocol}, mutual {stream.IsMutuallyAuthenticated}.");
        }
    }

    public void Dispose()
    {
        _serverCertificate.Dispose();
        _clientCertificate.Dispose();
    }

    /// <summary>
    /// A self-signed ECDSA P-256 certificate for <paramref name="name"/> with one extended key usage, exported
    /// and re-imported as PFX so its private key is usable by OpenSSL for the handshake on Linux.
    /// </summary>
    private static X509Certificate2 CreateCertificate(string name, string extendedKeyUsage)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(extendedKeyUsage)], false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(name);
        request.CertificateExtensions.Add(names.Build());
        var now = DateTimeOffset.UtcNow;
        using var ephemeral = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(1));
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), password: null);
    }

    /// <summary>Accepts exactly <paramref name="expected"/>: its SHA-256 thumbprint, and no error but the untrusted self-signed root.</summary>
    private static RemoteCertificateValidationCallback Pin(X509Certificate2 expected)
    {
        var thumbprint = expected.GetCertHash(HashAlgorithmName.SHA256);
        return (_, certificate, _, errors) =>
            (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
            && certificate is not null
            && CryptographicOperations.FixedTimeEquals(certificate.GetCertHash(HashAlgorithmName.SHA256), thumbprint);
    }
}
