using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Noise.Crypto;
using SecureChannels.Protocol.Policy;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Hosting;

namespace SecureChannels.Benchmarks;

/// <summary>
/// An authority, agents with credentials from it, and relays on loopback port 0, as tests/Relay.Tests/RelayTestKit.cs
/// makes them, but on the real clock (<see cref="TimeProvider.System"/>): keepalives and timers run as deployed.
/// Agents reach relays over real TCP: TCP, hop secure channel, <see cref="RelayLink"/>, circuit.
/// </summary>
internal sealed class RelayPeers : IAsyncDisposable
{
    /// <summary>The safety net for awaits that would hang on a bug.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);

    private readonly List<IDisposable> _owned = [];
    private readonly List<IAsyncDisposable> _running = [];

    private RelayPeers(AgentIdentity authority)
    {
        Authority = authority;
        Anchors = new TrustAnchors().Trust(authority.Verified);
        Verifier = new CredentialVerifier(Anchors, Revocations, TimeProvider.System);
    }

    public AgentIdentity Authority { get; }

    public TrustAnchors Anchors { get; }

    public RevocationRegistry Revocations { get; } = new();

    public CredentialVerifier Verifier { get; }

    public static async Task<RelayPeers> CreateAsync()
    {
        var signer = InMemorySigner.Generate();
        var peers = new RelayPeers(await AgentIdentity.CreateAsync(signer, TimeProvider.System).ConfigureAwait(false));
        peers._owned.Add(signer);
        return peers;
    }

    /// <summary>An agent with an identity, an attested channel key and one credential from the authority.</summary>
    public async Task<Agent> CreateAgentAsync(string[]? attributes = null)
    {
        var time = TimeProvider.System;
        var signer = InMemorySigner.Generate();
        _owned.Add(signer);
        var identity = await AgentIdentity.CreateAsync(signer, time).ConfigureAwait(false);
        var channelKey = Curve25519Dh.Instance.GenerateKeyPair();
        _owned.Add(channelKey);
        var attestation = await identity.AttestChannelKeyAsync(channelKey.PublicKey.ToArray(), TimeSpan.FromDays(1), time).ConfigureAwait(false);
        var now = time.GetUtcNow();
        var credential = await CredentialIssuer.IssueAsync(Authority, identity.Identifier, Principal.Parse("user:bench@example.com"), AttributeSet.Parse(attributes ?? ["role=bench"]), now.AddMinutes(-5), now.AddDays(1), 2).ConfigureAwait(false);
        return new Agent(identity, channelKey, attestation, [credential]);
    }

    /// <summary>The relay settings every benchmark relay starts with (keys of the "Relay" section), overridden by <paramref name="settings"/>.</summary>
    public static Dictionary<string, string?> RelaySettings(IReadOnlyDictionary<string, string?>? settings = null)
    {
        var values = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Relay:Name"] = "bench",
            ["Relay:Endpoint"] = "127.0.0.1:0",
            ["Relay:MetricsEndpoint"] = "",

            // Unlimited, to measure what the relay can forward; the default (64 MiB/s per hop) is a policy, not a cost.
            ["Relay:BytesPerSecondPerConnection"] = "0",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            values["Relay:" + key] = value;
        }

        return values;
    }

    /// <summary>Starts a relay in this process on loopback port 0 (its own identity, trusting this authority).</summary>
    public async Task<RelayServer> StartRelayAsync(IReadOnlyDictionary<string, string?>? settings = null)
    {
        var signer = InMemorySigner.Generate();
        _owned.Add(signer);
        var identity = await AgentIdentity.CreateAsync(signer, TimeProvider.System).ConfigureAwait(false);
        var app = BuildRelay([], new RelayIdentity(identity, Anchors, Revocations, []), RelaySettings(settings));
        await app.StartAsync().WaitAsync(Guard).ConfigureAwait(false);
        _running.Add(app);
        return app.Services.GetRequiredService<RelayServer>();
    }

    /// <summary>A relay application with in-memory settings, no logging below warnings, and the real clock.</summary>
    public static WebApplication BuildRelay(string[] args, RelayIdentity identity, Dictionary<string, string?> settings) =>
        RelayApplication.Build(args, identity, builder =>
        {
            builder.Configuration.AddInMemoryCollection(settings);
            builder.Logging.ClearProviders();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        });

    /// <summary>Secure-channel options for <paramref name="agent"/>, judging the peer with <paramref name="policy"/>.</summary>
    public SecureChannelOptions Options(Agent agent, string policy, bool sendAcknowledgements = true) => new()
    {
        Identity = agent.Identity,
        ChannelKey = agent.ChannelKey,
        Attestation = agent.Attestation,
        Credentials = agent.Credentials,
        Verifier = Verifier,
        Revocations = Revocations,
        Policy = AccessPolicy.Parse(policy),
        TimeProvider = TimeProvider.System,
        SendAcknowledgements = sendAcknowledgements,
    };

    /// <summary>TCP to the relay, the hop's secure channel pinned to <paramref name="relay"/>, HELLO: the agent's link.</summary>
    public async Task<RelayLink> LinkAsync(Agent agent, IPEndPoint endpoint, Identifier relay, bool listen, int window = 256 * 1024)
    {
        var socket = await LoopbackTcp.ConnectAsync(endpoint).ConfigureAwait(false);
        // As AgentClient's hops: no ACK records on the hop (the end-to-end channel acknowledges for itself).
        var hop = await SecureChannel.ConnectAsync(LoopbackTcp.Pipe(socket), Options(agent, Pin(relay), sendAcknowledgements: false)).WaitAsync(Guard).ConfigureAwait(false);
        var link = await RelayLink.ConnectAsync(hop, new RelayLinkOptions { Listen = listen, CircuitWindow = window, TimeProvider = TimeProvider.System }).WaitAsync(Guard).ConfigureAwait(false);
        _running.Add(link);
        return link;
    }

    /// <summary>Opens a circuit from <paramref name="from"/> to the agent <paramref name="to"/> listens as, and accepts it there.</summary>
    public static async Task<(Circuit Opened, Circuit Accepted)> CircuitAsync(RelayLink from, RelayLink to, Agent target)
    {
        var opening = from.OpenCircuitAsync(target.Identity.Identifier.ToString());
        var incoming = await to.AcceptCircuitAsync().AsTask().WaitAsync(Guard).ConfigureAwait(false);
        var accepted = await incoming.AcceptAsync().WaitAsync(Guard).ConfigureAwait(false);
        return (await opening.WaitAsync(Guard).ConfigureAwait(false), accepted);
    }

    /// <summary>The end-to-end secure channel of <paramref name="a"/> (initiator) and <paramref name="b"/> over two connected pipes.</summary>
    public async Task<(SecureChannel Initiator, SecureChannel Responder)> ChannelAsync(Agent a, IDuplexPipe pipeA, Agent b, IDuplexPipe pipeB)
    {
        var accept = SecureChannel.AcceptAsync(pipeB, Options(b, Pin(a.Identity.Identifier)));
        var initiator = await SecureChannel.ConnectAsync(pipeA, Options(a, Pin(b.Identity.Identifier))).WaitAsync(Guard).ConfigureAwait(false);
        var responder = await accept.WaitAsync(Guard).ConfigureAwait(false);
        _running.Add(initiator);
        _running.Add(responder);
        return (initiator, responder);
    }

    public static string Pin(Identifier identifier) => $"peer.identifier == \"{identifier}\"";

    public async ValueTask DisposeAsync()
    {
        for (var i = _running.Count - 1; i >= 0; i--)
        {
            try
            {
                await _running[i].DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or ObjectDisposedException or OperationCanceledException or IOException or SecureChannelException or RelayException)
            {
                // Teardown of a benchmark: best effort.
            }
        }

        foreach (var owned in _owned)
        {
            owned.Dispose();
        }
    }

    internal sealed record Agent(AgentIdentity Identity, DhKeyPair ChannelKey, SignedKeyAttestation Attestation, IReadOnlyList<CredentialChain> Credentials);
}
