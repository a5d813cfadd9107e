using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using SecureChannels.Authority.Hosting;
using SecureChannels.Authority.Issuance;
using SecureChannels.Authority.Storage;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Noise.Crypto;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Authority.Tests;

/// <summary>
/// An authority on loopback (port 0) with an SQLite store in a temporary folder, and agents that reach it over
/// real TCP, all on one fake clock.
/// </summary>
internal sealed class AuthorityTestKit : IAsyncDisposable
{
    /// <summary>The safety net for awaits that would hang on a bug; never a timing assumption.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private readonly List<IDisposable> _owned = [];
    private readonly List<IAsyncDisposable> _running = [];

    private AuthorityTestKit(FakeTimeProvider time, AgentIdentity identity, string folder)
    {
        Time = time;
        Identity = identity;
        Folder = folder;
    }

    public FakeTimeProvider Time { get; }

    /// <summary>The authority's identity (kept across restarts).</summary>
    public AgentIdentity Identity { get; }

    public string Folder { get; }

    public string DatabasePath => Path.Combine(Folder, "authority.db");

    public RunningAuthority? Current { get; private set; }

    public static async Task<AuthorityTestKit> CreateAsync()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));
        var signer = InMemorySigner.Generate();
        var folder = Directory.CreateTempSubdirectory("sc-authority-").FullName;
        var kit = new AuthorityTestKit(time, await AgentIdentity.CreateAsync(signer, time), folder);
        kit._owned.Add(signer);
        return kit;
    }

    /// <summary>Starts (or restarts on the same store and port 0) the authority with the given "Authority" settings.</summary>
    public async Task<RunningAuthority> StartAsync(IDictionary<string, string?>? settings = null, IAuthorityStore? store = null, AgentIdentity? identity = null)
    {
        var values = new Dictionary<string, string?>
        {
            ["Authority:Endpoint"] = "127.0.0.1:0",
            ["Authority:MetricsEndpoint"] = "127.0.0.1:0",
            ["Authority:SqlitePath"] = DatabasePath,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            values["Authority:" + key] = value;
        }

        var app = AuthorityApplication.Build([], identity ?? Identity, builder =>
        {
            builder.Configuration.AddInMemoryCollection(values);
            builder.Services.AddSingleton<TimeProvider>(Time);
            if (store is not null)
            {
                builder.Services.AddSingleton(store);
            }

            builder.Logging.ClearProviders();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        });
        await app.StartAsync().WaitAsync(Guard);
        var running = new RunningAuthority(app);
        _running.Add(running);
        Current = running;
        return running;
    }

    /// <summary>A fresh agent: identity, attested channel key, no credentials yet.</summary>
    public async Task<Agent> CreateAgentAsync()
    {
        var signer = InMemorySigner.Generate();
        _owned.Add(signer);
        var identity = await AgentIdentity.CreateAsync(signer, Time);
        var channelKey = Curve25519Dh.Instance.GenerateKeyPair();
        _owned.Add(channelKey);
        var attestation = await identity.AttestChannelKeyAsync(channelKey.PublicKey.ToArray(), TimeSpan.FromDays(30), Time);
        return new Agent(identity, channelKey, attestation, new TrustAnchors().Trust(Identity.Verified), new RevocationRegistry());
    }

    /// <summary>Channel options for <paramref name="agent"/> presenting <paramref name="credentials"/>, judging the peer by <paramref name="policy"/>.</summary>
    public SecureChannelOptions Options(Agent agent, string policy, IReadOnlyList<CredentialChain>? credentials = null) => new()
    {
        Identity = agent.Identity,
        ChannelKey = agent.ChannelKey,
        Attestation = agent.Attestation,
        Credentials = credentials ?? agent.Credentials,
        Verifier = new CredentialVerifier(agent.Anchors, agent.Revocations, Time, new CredentialVerifierOptions { RequireRegisteredDelegations = agent.RequireRegisteredDelegations }),
        Revocations = agent.Revocations,
        Policy = AccessPolicy.Parse(policy),
        TimeProvider = Time,
        IdleTimeout = TimeSpan.FromHours(1),
        KeepaliveInterval = TimeSpan.FromMinutes(10),
    };

    /// <summary>
    /// Connects <paramref name="agent"/> to the running authority over TCP, pinned to its identifier, presenting
    /// its credentials (or none: enrolling and refreshing need only the identity, and a revoked or expired
    /// credential would fail the handshake).
    /// </summary>
    public async Task<AuthorityClient> ConnectAsync(Agent agent, bool presentCredentials = true)
    {
        var authority = Current ?? throw new InvalidOperationException("No authority is running.");
        var pipe = await ConnectTcpAsync(authority.Server.EndPoint!);
        var channel = await SecureChannel.ConnectAsync(pipe, Options(agent, $"peer.identifier == \"{Identity.Identifier}\"", presentCredentials ? null : [])).WaitAsync(Guard);
        var client = new AuthorityClient(channel, new AuthorityClientOptions { TimeProvider = Time, RequestTimeout = Guard });
        _running.Add(client);
        return client;
    }

    /// <summary>Creates a ticket as the local operator and enrolls <paramref name="agent"/> with it; the agent then holds the credential.</summary>
    public async Task<CredentialChain> EnrollAsync(Agent agent, string principal, string[] attributes, int maxDepth = 2, TimeSpan? lifetime = null)
    {
        var ticket = await Service.CreateTicketAsync(Caller.Operator(Identity.Identifier), new TicketRequest(Principal.Parse(principal), AttributeSet.Parse(attributes), TimeSpan.Zero, lifetime ?? TimeSpan.Zero, maxDepth));
        var client = await ConnectAsync(agent);
        var chain = await client.EnrollAsync(ticket.Ticket.Reveal());
        agent.Credentials = [chain];
        return chain;
    }

    public AuthorityService Service => (Current ?? throw new InvalidOperationException("No authority is running.")).Server.Service;

    /// <summary>A direct channel between two agents over an in-memory pipe pair; each judges the other by its policy.</summary>
    public async Task<(SecureChannel Initiator, SecureChannel Responder)> ChannelAsync(Agent initiator, string initiatorPolicy, Agent responder, string responderPolicy)
    {
        var (a, b) = DuplexPipePair();
        var accept = SecureChannel.AcceptAsync(b, Options(responder, responderPolicy));
        var connect = SecureChannel.ConnectAsync(a, Options(initiator, initiatorPolicy));
        var pair = (await connect.WaitAsync(Guard), await accept.WaitAsync(Guard));
        _running.Add(pair.Item1);
        _running.Add(pair.Item2);
        return pair;
    }

    public static (IDuplexPipe A, IDuplexPipe B) DuplexPipePair()
    {
        var ab = new Pipe();
        var ba = new Pipe();
        return (new DuplexPipe(ba.Reader, ab.Writer), new DuplexPipe(ab.Reader, ba.Writer));
    }

    public static async Task<IDuplexPipe> ConnectTcpAsync(IPEndPoint endpoint)
    {
        var client = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        await client.ConnectAsync(endpoint).WaitAsync(Guard);
        var stream = client.GetStream();
        return new DuplexPipe(PipeReader.Create(stream), PipeWriter.Create(stream));
    }

    /// <summary>Sends a message and reads it at the other end: the channel carries traffic both ways.</summary>
    public static async Task AssertCarriesAsync(SecureChannel from, SecureChannel to)
    {
        var payload = Guid.NewGuid().ToByteArray();
        await from.SendAsync(payload).AsTask().WaitAsync(Guard);
        using var received = await to.ReceiveAsync().AsTask().WaitAsync(Guard);
        Assert.NotNull(received);
        Assert.Equal(payload, received.Payload.ToArray());
    }

    /// <summary>Yields until <paramref name="condition"/> holds; <see cref="Guard"/> (real time) is only a safety net.</summary>
    public static async Task UntilAsync(Func<bool> condition)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (started.Elapsed > Guard)
            {
                throw new TimeoutException("The condition did not become true.");
            }

            // Polling a condition, not waiting for time to pass; 1 ms leaves the server's threads the CPU.
            await Task.Delay(1);
        }
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

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }

    internal sealed class Agent(AgentIdentity identity, DhKeyPair channelKey, SignedKeyAttestation attestation, TrustAnchors anchors, RevocationRegistry revocations)
    {
        public AgentIdentity Identity { get; } = identity;

        public DhKeyPair ChannelKey { get; } = channelKey;

        public SignedKeyAttestation Attestation { get; } = attestation;

        /// <summary>The authorities this agent trusts: the test's authority.</summary>
        public TrustAnchors Anchors { get; } = anchors;

        /// <summary>The revocation lists this agent honours (fed by its subscription).</summary>
        public RevocationRegistry Revocations { get; } = revocations;

        public IReadOnlyList<CredentialChain> Credentials { get; set; } = [];

        /// <summary>Whether this agent, as a verifier, accepts only delegations registered with the authority.</summary>
        public bool RequireRegisteredDelegations { get; set; }

        public Identifier Identifier => Identity.Identifier;
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}

/// <summary>A running authority and its host.</summary>
internal sealed class RunningAuthority(WebApplication app) : IAsyncDisposable
{
    public WebApplication App { get; } = app;

    public AuthorityServer Server { get; } = app.Services.GetRequiredService<AuthorityServer>();

    public async Task StopAsync()
    {
        await App.StopAsync().WaitAsync(AuthorityTestKit.Guard);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await App.StopAsync().WaitAsync(AuthorityTestKit.Guard);
        }
        catch (ObjectDisposedException)
        {
            // Stopped and disposed already.
        }

        await App.DisposeAsync();
    }
}
