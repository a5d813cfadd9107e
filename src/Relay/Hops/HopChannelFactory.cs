using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Noise.Crypto;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Relay.Hops;

/// <summary>
/// Builds the secure-channel options of hops: the relay's identity, a channel key attested by it (renewed
/// before the attestation runs out), the trust anchors, and the admission policy for accepted hops or a
/// pin on the expected identifier for dialed peer links.
/// </summary>
internal sealed class HopChannelFactory : IDisposable
{
    // Attestations last a day and are renewed at half-life, so a hop never presents one about to expire.
    private static readonly TimeSpan AttestationLifetime = TimeSpan.FromDays(1);

    private readonly RelayIdentity _identity;
    private readonly RelayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly AccessPolicy _admission;
    private readonly CredentialVerifier _verifier;
    private readonly SemaphoreSlim _renew = new(1, 1);
    private DhKeyPair? _channelKey;
    private SignedKeyAttestation? _attestation;
    private DateTimeOffset _renewAt;

    public HopChannelFactory(RelayIdentity identity, IOptions<RelayOptions> options, TimeProvider time, ILogger<HopChannelFactory> logger)
    {
        _identity = identity;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _admission = AccessPolicy.Parse(_options.Admission);
        _verifier = new CredentialVerifier(identity.Anchors, identity.Revocations, time);
    }

    public Identifier Identifier => _identity.Identity.Identifier;

    /// <summary>Options for a hop an agent or peer relay dialed to us: judged by the admission policy.</summary>
    public Task<SecureChannelOptions> ForAcceptedHopAsync(CancellationToken cancellationToken) => CreateAsync(_admission, cancellationToken);

    /// <summary>Options for a link we dial: the other side must pass admission and be exactly the configured peer relay.</summary>
    public Task<SecureChannelOptions> ForDialedLinkAsync(Identifier expected, CancellationToken cancellationToken) =>
        CreateAsync(AccessPolicy.Parse($"({_options.Admission}) && peer.identifier == \"{expected}\""), cancellationToken);

    public void Dispose()
    {
        _channelKey?.Dispose();
        _renew.Dispose();
    }

    private async Task<SecureChannelOptions> CreateAsync(AccessPolicy policy, CancellationToken cancellationToken)
    {
        var (key, attestation) = await CurrentKeyAsync(cancellationToken).ConfigureAwait(false);
        return new SecureChannelOptions
        {
            Identity = _identity.Identity,
            ChannelKey = key,
            Attestation = attestation,
            Credentials = _identity.Credentials,
            Verifier = _verifier,
            Revocations = _identity.Revocations,
            Policy = policy,
            TimeProvider = _time,
            Logger = _logger,
            MaxMessageSize = _options.MaxFrameLength,
            HandshakeTimeout = _options.HandshakeTimeout,
            IdleTimeout = _options.IdleTimeout,
            KeepaliveInterval = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(1).Ticks, _options.IdleTimeout.Ticks / 4)),
        };
    }

    private async Task<(DhKeyPair Key, SignedKeyAttestation Attestation)> CurrentKeyAsync(CancellationToken cancellationToken)
    {
        var key = Volatile.Read(ref _channelKey);
        var attestation = Volatile.Read(ref _attestation);
        if (key is not null && attestation is not null && _time.GetUtcNow() < _renewAt)
        {
            return (key, attestation);
        }

        await _renew.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_channelKey is null || _attestation is null || _time.GetUtcNow() >= _renewAt)
            {
                // The old key stays alive: hops opened with it keep their own transport keys, never the static key.
                _channelKey = Curve25519Dh.Instance.GenerateKeyPair();
                _attestation = await _identity.Identity.AttestChannelKeyAsync(_channelKey.PublicKey.ToArray(), AttestationLifetime, _time, cancellationToken).ConfigureAwait(false);
                _renewAt = _time.GetUtcNow() + (AttestationLifetime / 2);
            }

            return (_channelKey, _attestation);
        }
        finally
        {
            _renew.Release();
        }
    }
}
