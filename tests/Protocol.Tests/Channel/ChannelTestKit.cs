using System.IO.Pipelines;
using Microsoft.Extensions.Time.Testing;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Noise.Crypto;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>An authority, agents with identities, channel keys and credentials, and an in-memory connection between them.</summary>
internal sealed class ChannelTestKit : IAsyncDisposable
{
    private readonly List<IDisposable> _owned = [];

    private ChannelTestKit(FakeTimeProvider time, AgentIdentity authority)
    {
        Time = time;
        Authority = authority;
        Anchors = new TrustAnchors().Trust(authority.Verified);
    }

    public FakeTimeProvider Time { get; }

    public AgentIdentity Authority { get; }

    public TrustAnchors Anchors { get; }

    public RevocationRegistry Revocations { get; } = new();

    public static async Task<ChannelTestKit> CreateAsync()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));
        var signer = InMemorySigner.Generate();
        var kit = new ChannelTestKit(time, await AgentIdentity.CreateAsync(signer, time));
        kit._owned.Add(signer);
        return kit;
    }

    /// <summary>An agent with a credential from the authority granting <paramref name="attributes"/> (none when null).</summary>
    public async Task<Agent> CreateAgentAsync(string[]? attributes = null, TimeSpan? credentialLifetime = null, string principal = "user:alice")
    {
        var signer = InMemorySigner.Generate();
        _owned.Add(signer);
        var identity = await AgentIdentity.CreateAsync(signer, Time);
        var channelKey = Curve25519Dh.Instance.GenerateKeyPair();
        _owned.Add(channelKey);
        var attestation = await identity.AttestChannelKeyAsync(channelKey.PublicKey.ToArray(), TimeSpan.FromDays(1), Time);
        var chains = new List<CredentialChain>();
        if (attributes is not null)
        {
            var now = Time.GetUtcNow();
            chains.Add(await CredentialIssuer.IssueAsync(Authority, identity.Identifier, Principal.Parse(principal), AttributeSet.Parse(attributes), now, now + (credentialLifetime ?? TimeSpan.FromHours(1)), 2));
        }

        return new Agent(identity, channelKey, attestation, chains);
    }

    public SecureChannelOptions Options(Agent agent, string? policy = "true", Action<ChannelEvent>? events = null) => new()
    {
        Identity = agent.Identity,
        ChannelKey = agent.ChannelKey,
        Attestation = agent.Attestation,
        Credentials = agent.Credentials,
        Verifier = new CredentialVerifier(Anchors, Revocations, Time),
        Revocations = Revocations,
        Policy = policy is null ? null : AccessPolicy.Parse(policy),
        TimeProvider = Time,
        Events = events,
    };

    /// <summary>Two pipes crossed: what one side writes, the other reads.</summary>
    public static (IDuplexPipe Initiator, IDuplexPipe Responder) CreateConnection(PipeOptions? options = null)
    {
        var toResponder = new Pipe(options ?? PipeOptions.Default);
        var toInitiator = new Pipe(options ?? PipeOptions.Default);
        return (new DuplexPipe(toInitiator.Reader, toResponder.Writer), new DuplexPipe(toResponder.Reader, toInitiator.Writer));
    }

    /// <summary>Opens both ends of a channel concurrently.</summary>
    public static async Task<(SecureChannel Initiator, SecureChannel Responder)> OpenAsync(SecureChannelOptions initiator, SecureChannelOptions responder, (IDuplexPipe Initiator, IDuplexPipe Responder)? connection = null)
    {
        var (a, b) = connection ?? CreateConnection();
        var accept = SecureChannel.AcceptAsync(b, responder);
        var connect = SecureChannel.ConnectAsync(a, initiator);
        return (await connect, await accept);
    }

    public ValueTask DisposeAsync()
    {
        foreach (var owned in _owned)
        {
            owned.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    internal sealed record Agent(AgentIdentity Identity, DhKeyPair ChannelKey, SignedKeyAttestation Attestation, IReadOnlyList<CredentialChain> Credentials);

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;

        public PipeWriter Output => output;
    }
}
