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

    /// <summary>Starts the relay (again, on <paramref name="port"/> to restart it where agents expect it).</summary>
    public async Task<RelayEndpoint> StartRelayAsync(int port = 0)
    {
        RelayIdentity ??= await CreateIdentityAsync();
        var credential = await IssueAsync(RelayIdentity, "system:relay", "role=relay");
        var app = RelayApplication.Build([], new RelayIdentity(RelayIdentity, Anchors, new RevocationRegistry(), [credential]), builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Relay:Name"] = "edge",
                ["Relay:Endpoint"] = $"127.0.0.1:{port}",
                ["Relay:MetricsEndpoint"] = "",
                ["Relay:BytesPerSecondPerConnection"] = "0",
            });
            builder.Services.AddSingleton<TimeProvider>(Time);
            builder.Logging.ClearProviders();
        });
        await app.StartAsync().WaitAsync(Guard);
        Relay = app;
        _running.Add(app);
        return new RelayEndpoint(app.Services.GetRequiredService<RelayServer>().HopEndPoint!, RelayIdentity.Identifier);
    }

    public async Task StopRelayAsync()
    {
        await Relay!.StopAsync().WaitAsync(Guard);
    }

    /// <summary>An agent with a credential for <paramref name="principal"/> granting <paramref name="attributes"/>, started against <paramref name="relay"/>.</summary>
    public async Task<AgentClient> StartAgentAsync(RelayEndpoint relay, string principal, string[] attributes, string policy, string[]? names = null)
    {
        var identity = await CreateIdentityAsync();
        var agent = new AgentClient(new AgentClientOptions
        {
            Identity = identity,
            Anchors = Anchors,
            Credentials = [await IssueAsync(identity, principal, attributes)],
            Policy = AccessPolicy.Parse(policy),
            Relays = [relay],
            Names = names ?? [],
            TimeProvider = Time,
        });
        _running.Add(agent);
        await agent.StartAsync().WaitAsync(Guard);
        return agent;
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
