using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Policy;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Hosting;

namespace SecureChannels.Client.Tests;

/// <summary>An authority, a relay on loopback and agents (<see cref="AgentClient"/>s) on one fake clock.</summary>
internal sealed class ClientTestKit : IAsyncDisposable
{
    /// <summary>The safety net for awaits that would hang on a bug; never a timing assumption.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private readonly List<IDisposable> _owned = [];
    private readonly List<IAsyncDisposable> _running = [];
    private readonly Dictionary<string, AgentIdentity> _relayIdentities = [];
    private readonly Dictionary<string, WebApplication> _relays = [];
    private ulong _revocationSequence;

    private ClientTestKit(FakeTimeProvider time, AgentIdentity authority)
    {
        Time = time;
        Authority = authority;
        Anchors = new TrustAnchors().Trust(authority.Verified);
    }

    public FakeTimeProvider Time { get; }

    public AgentIdentity Authority { get; }

    public TrustAnchors Anchors { get; }

    public WebApplication? Relay { get; private set; }

    public AgentIdentity? RelayIdentity { get; private set; }

    public static async Task<ClientTestKit> CreateAsync()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));
        var signer = InMemorySigner.Generate();
        var kit = new ClientTestKit(time, await AgentIdentity.CreateAsync(signer, time));
        kit._owned.Add(signer);
        return kit;
    }

    public async Task<AgentIdentity> CreateIdentityAsync()
    {
        var signer = InMemorySigner.Generate();
        _owned.Add(signer);
        return await AgentIdentity.CreateAsync(signer, Time);
    }

    public async Task<CredentialChain> IssueAsync(AgentIdentity subject, string principal, params string[] attributes)
    {
        var now = Time.GetUtcNow();
        return await CredentialIssuer.IssueAsync(Authority, subject.Identifier, Principal.Parse(principal), AttributeSet.Parse(attributes), now, now.AddHours(1), 1);
    }

    /// <summary>Starts the relay <paramref name="name"/> (again, on <paramref name="port"/> to restart it where agents expect it, with the same identity).</summary>
    public async Task<RelayEndpoint> StartRelayAsync(int port = 0, string name = "edge")
    {
        if (!_relayIdentities.TryGetValue(name, out var identity))
        {
            identity = await CreateIdentityAsync();
            _relayIdentities[name] = identity;
        }

        RelayIdentity ??= identity;
        var credential = await IssueAsync(identity, "system:relay", "role=relay");
        var app = RelayApplication.Build([], new RelayIdentity(identity, Anchors, new RevocationRegistry(), [credential]), builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Relay:Name"] = name,
                ["Relay:Endpoint"] = $"127.0.0.1:{port}",
                ["Relay:MetricsEndpoint"] = "",
                ["Relay:BytesPerSecondPerConnection"] = "0",
            });
            builder.Services.AddSingleton<TimeProvider>(Time);
            builder.Logging.ClearProviders();
        });
        await app.StartAsync().WaitAsync(Guard);
        Relay ??= app;
        _relays[name] = app;
        _running.Add(app);
        return new RelayEndpoint(app.Services.GetRequiredService<RelayServer>().HopEndPoint!, identity.Identifier);
    }

    public async Task StopRelayAsync(string name = "edge")
    {
        var app = _relays[name];
        await app.StopAsync().WaitAsync(Guard);
        if (ReferenceEquals(app, Relay))
        {
            Relay = null;
        }
    }

    /// <summary>Signs a newer revocation list of the authority with <paramref name="entries"/> and merges it into <paramref name="registries"/>, as an authority subscription would.</summary>
    public async Task RevokeAsync(IEnumerable<RevocationRegistry> registries, params RevocationEntry[] entries)
    {
        var list = new RevocationList(Authority.Identifier, ++_revocationSequence, Time.GetUtcNow(), entries);
        var signed = await SignedRevocationList.SignAsync(list, Authority);
        foreach (var registry in registries)
        {
            registry.Merge(signed, Authority.Verified);
        }
    }

    /// <summary>An agent with a credential for <paramref name="principal"/> granting <paramref name="attributes"/>, started against <paramref name="relay"/>.</summary>
    public Task<AgentClient> StartAgentAsync(RelayEndpoint relay, string principal, string[] attributes, string policy, string[]? names = null, RevocationRegistry? revocations = null) =>
        StartAgentAsync([relay], principal, attributes, policy, names, revocations);

    /// <summary>An agent as above, with hops to every relay of <paramref name="relays"/>.</summary>
    public async Task<AgentClient> StartAgentAsync(RelayEndpoint[] relays, string principal, string[] attributes, string policy, string[]? names = null, RevocationRegistry? revocations = null)
    {
        var identity = await CreateIdentityAsync();
        var agent = new AgentClient(new AgentClientOptions
        {
            Identity = identity,
            Anchors = Anchors,
            Credentials = [await IssueAsync(identity, principal, attributes)],
            Revocations = revocations ?? new RevocationRegistry(),
            Policy = AccessPolicy.Parse(policy),
            Relays = relays,
            Names = names ?? [],
            TimeProvider = Time,
        });
        _running.Add(agent);
        await agent.StartAsync().WaitAsync(Guard);
        return agent;
    }

    /// <summary>Opens a channel from <paramref name="opener"/> to <paramref name="address"/> and accepts it at <paramref name="acceptor"/>.</summary>
    public static async Task<(AgentChannel Opened, AgentChannel Accepted)> ConnectAsync(AgentClient opener, AgentClient acceptor, string? address = null)
    {
        var opening = opener.OpenChannelAsync(address ?? acceptor.Identifier.ToString());
        var accepted = await acceptor.AcceptChannelAsync().WaitAsync(Guard);
        return (await opening.WaitAsync(Guard), accepted);
    }

    public static async Task AssertCarriesAsync(AgentChannel from, AgentChannel to)
    {
        var payload = Guid.NewGuid().ToByteArray();
        await from.SendAsync(payload).AsTask().WaitAsync(Guard);
        using var received = await to.ReceiveAsync().AsTask().WaitAsync(Guard);
        Assert.NotNull(received);
        Assert.Equal(payload, received.Payload.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _running.Count - 1; i >= 0; i--)
        {
            await _running[i].DisposeAsync();
        }

        foreach (var owned in _owned)
        {
            owned.Dispose();
        }
    }
}
