using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Noise.Crypto;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Benchmarks;

/// <summary>
/// Two agents ready to open secure channels to each other, made once (as in tests/Protocol.Tests/Channel's
/// ChannelTestKit): each has an identity, an X25519 channel key attested by it for a day, and one credential
/// from the authority of a <see cref="CredentialFixture"/>. Both verify with that fixture's verifier (trust
/// anchor, 100-entry revocation list, fixed clock) and judge each other with a policy: the responder runs
/// <see cref="CredentialBenchmarks.PolicyText"/>, the initiator <c>subject.role == "ledger"</c>.
/// </summary>
internal sealed class ChannelPeers : IDisposable
{
    private readonly CredentialFixture _fixture;
    private readonly List<DhKeyPair> _channelKeys = [];

    private ChannelPeers(CredentialFixture fixture) => _fixture = fixture;

    /// <summary>The connecting side: acts for user:alice@example.com with role=billing, env=prod.</summary>
    public SecureChannelOptions Initiator { get; private set; } = null!;

    /// <summary>The accepting side: acts for team:finance with role=ledger.</summary>
    public SecureChannelOptions Responder { get; private set; } = null!;

    public static async Task<ChannelPeers> CreateAsync()
    {
        var peers = new ChannelPeers(await CredentialFixture.CreateAsync().ConfigureAwait(false));
        try
        {
            peers.Initiator = await peers.CreateOptionsAsync("user:alice@example.com", ["role=billing", "env=prod"], "subject.role == \"ledger\"").ConfigureAwait(false);
            peers.Responder = await peers.CreateOptionsAsync("team:finance", ["role=ledger"], CredentialBenchmarks.PolicyText).ConfigureAwait(false);
            return peers;
        }
        catch
        {
            peers.Dispose();
            throw;
        }
    }

    /// <summary>Opens both ends of a channel over a fresh in-memory connection, concurrently.</summary>
    public Task<(SecureChannel Initiator, SecureChannel Responder)> OpenAsync()
    {
        var (initiatorPipe, responderPipe) = InMemoryConnection.CreatePipes();
        return OpenAsync(initiatorPipe, responderPipe);
    }

    /// <summary>Opens both ends of a channel over the two ends of one connection, concurrently.</summary>
    public async Task<(SecureChannel Initiator, SecureChannel Responder)> OpenAsync(IDuplexPipe initiatorPipe, IDuplexPipe responderPipe)
    {
        var accept = SecureChannel.AcceptAsync(responderPipe, Responder);
        var initiator = await SecureChannel.ConnectAsync(initiatorPipe, Initiator).ConfigureAwait(false);
        return (initiator, await accept.ConfigureAwait(false));
    }

    /// <summary>Throws unless each end verified the other's identity and both agree on the handshake hash.</summary>
    public void EnsurePaired(SecureChannel initiator, SecureChannel responder)
    {
        if (initiator.Peer.Identifier != Responder.Identity.Identifier || responder.Peer.Identifier != Initiator.Identity.Identifier
            || !initiator.HandshakeHash.Span.SequenceEqual(responder.HandshakeHash.Span))
        {
            throw new InvalidOperationException("The two sides of the channel do not agree on who they are.");
        }
    }

    public void Dispose()
    {
        foreach (var key in _channelKeys)
        {
            key.Dispose();
        }

        _fixture.Dispose();
    }

    private async Task<SecureChannelOptions> CreateOptionsAsync(string principal, string[] attributes, string policy)
    {
        var time = _fixture.Time;
        var identity = await _fixture.CreateIdentityAsync().ConfigureAwait(false);
        var channelKey = Curve25519Dh.Instance.GenerateKeyPair();
        _channelKeys.Add(channelKey);
        var attestation = await identity.AttestChannelKeyAsync(channelKey.PublicKey.ToArray(), TimeSpan.FromDays(1), time).ConfigureAwait(false);
        var now = time.GetUtcNow();
        var credential = await CredentialIssuer.IssueAsync(_fixture.Authority, identity.Identifier, Principal.Parse(principal), AttributeSet.Parse(attributes), now, now.AddDays(1), 0).ConfigureAwait(false);
        return new SecureChannelOptions
        {
            Identity = identity,
            ChannelKey = channelKey,
            Attestation = attestation,
            Credentials = [credential],
            Verifier = _fixture.Verifier,
            Revocations = _fixture.Revocations,
            Policy = AccessPolicy.Parse(policy),
            TimeProvider = time,
        };
    }
}
