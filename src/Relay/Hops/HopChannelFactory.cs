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
    private readonly RelayIdentity _identity;
    private readonly RelayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private volatile AccessPolicy _admission;
    private readonly CredentialVerifier _verifier;
    private readonly AttestedChannelKey _channelKey;

    public HopChannelFactory(RelayIdentity identity, IOptions<RelayOptions> options, TimeProvider time, ILogger<HopChannelFactory> logger)
    {
        _identity = identity;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _admission = AccessPolicy.Parse(_options.Admission);
        _verifier = new CredentialVerifier(identity.Anchors, identity.Revocations, time);
        _channelKey = new AttestedChannelKey(identity.Identity, time: time);
    }

    public Identifier Identifier => _identity.Identity.Identifier;

    /// <summary>Options for a hop an agent or peer relay dialed to us: judged by the admission policy.</summary>
    public Task<SecureChannelOptions> ForAcceptedHopAsync(CancellationToken cancellationToken) => CreateAsync(_admission, cancellationToken);

    /// <summary>The admission policy new hops are judged by.</summary>
    public AccessPolicy Admission => _admission;

    /// <summary>Replaces the admission policy for hops from now on (an authority published a newer one); open hops keep theirs.</summary>
    public void SetAdmission(AccessPolicy policy) => _admission = policy;

    /// <summary>Options for the channel to the authority: exactly that identity, which presents no credentials.</summary>
    public Task<SecureChannelOptions> ForAuthorityAsync(Identifier authority, CancellationToken cancellationToken) =>
        CreateAsync(AccessPolicy.Parse($"peer.identifier == \"{authority}\""), cancellationToken, Protocol.Authority.AuthorityLimits.MaxMessageLength);

    /// <summary>Options for a link we dial: the other side must pass admission and be exactly the configured peer relay.</summary>
    public Task<SecureChannelOptions> ForDialedLinkAsync(Identifier expected, CancellationToken cancellationToken) =>
        CreateAsync(AccessPolicy.Parse($"({_admission.Text}) && peer.identifier == \"{expected}\""), cancellationToken);

    public void Dispose() => _channelKey.Dispose();

    // Hop messages are relay frames (MaxFrameLength); the authority's are revocation lists up to 4 MiB.
    private async Task<SecureChannelOptions> CreateAsync(AccessPolicy policy, CancellationToken cancellationToken, int? maxMessageSize = null)
    {
        var (key, attestation) = await _channelKey.GetAsync(cancellationToken).ConfigureAwait(false);
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
            MaxMessageSize = maxMessageSize ?? _options.MaxFrameLength,
            HandshakeTimeout = _options.HandshakeTimeout,
            IdleTimeout = _options.IdleTimeout,
            KeepaliveInterval = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(1).Ticks, _options.IdleTimeout.Ticks / 4)),

            // The relay accounts for nothing by message: circuits carry their own credit, and the end-to-end channels
            // inside them acknowledge for themselves. An ACK per batch on every hop would only add a record per hop.
            SendAcknowledgements = false,
        };
    }
}
