using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Noise.Crypto;
using SecureChannels.Protocol.Policy;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Hosting;
using SecureChannels.Relay.Routing;

namespace SecureChannels.Relay.Tests;

/// <summary>
/// An authority, relays on loopback (port 0) and agents with identities and credentials, all on one fake clock.
/// Agents reach relays over real TCP, as deployed.
/// </summary>
internal sealed class RelayTestKit : IAsyncDisposable
{
    /// <summary>The safety net for awaits that would hang on a bug; never a timing assumption.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    private readonly List<IDisposable> _owned = [];
    private readonly List<IAsyncDisposable> _running = [];

    private RelayTestKit(FakeTimeProvider time, AgentIdentity authority)
    {
        Time = time;
        Authority = authority;
        Anchors = new TrustAnchors().Trust(authority.Verified);
    }

    public FakeTimeProvider Time { get; }

    public AgentIdentity Authority { get; }

    public TrustAnchors Anchors { get; }

    public RevocationRegistry Revocations { get; } = new();

    public static async Task<RelayTestKit> CreateAsync()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));
        var signer = InMemorySigner.Generate();
        var kit = new RelayTestKit(time, await AgentIdentity.CreateAsync(signer, time));
        kit._owned.Add(signer);
        return kit;
    }

    /// <summary>An agent (or a relay's identity) with a credential from the authority granting <paramref name="attributes"/>; none when null.</summary>
    public async Task<Agent> CreateAgentAsync(string[]? attributes = null, string principal = "user:alice")
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
            chains.Add(await CredentialIssuer.IssueAsync(Authority, identity.Identifier, Principal.Parse(principal), AttributeSet.Parse(attributes), now, now + TimeSpan.FromHours(1), 2));
        }

        return new Agent(identity, channelKey, attestation, chains);
    }

    /// <summary>Starts a relay on loopback port 0 with the given settings (keys of the "Relay" section, e.g. "Name").</summary>
    public async Task<RunningRelay> StartRelayAsync(string name = "relay-a", Agent? identity = null, IDictionary<string, string?>? settings = null)
    {
        identity ??= await CreateAgentAsync(["role=relay"]);
        var values = new Dictionary<string, string?>
        {
            ["Relay:Name"] = name,
            ["Relay:Endpoint"] = "127.0.0.1:0",
            ["Relay:MetricsEndpoint"] = "127.0.0.1:0",
            ["Relay:BytesPerSecondPerConnection"] = "0",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            values["Relay:" + key] = value;
        }

        var app = RelayApplication.Build([], new RelayIdentity(identity.Identity, Anchors, Revocations, identity.Credentials), builder =>
        {
            builder.Configuration.AddInMemoryCollection(values);
            builder.Services.AddSingleton<TimeProvider>(Time);
            builder.Logging.ClearProviders();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        });
        await app.StartAsync().WaitAsync(Guard);
        var relay = new RunningRelay(app, identity);
        _running.Add(relay);
        return relay;
    }

    /// <summary>
    /// Two relays, "relay-a" and "relay-b", each configured as the other's peer; A dials B at the endpoint
    /// <paramref name="route"/> makes of B's (B's own when null: a test can put a proxy between them). Returns once linked.
    /// </summary>
    public async Task<(RunningRelay A, RunningRelay B)> StartLinkedRelaysAsync(Func<IPEndPoint, IPEndPoint>? route = null)
    {
        var identityA = await CreateAgentAsync(["role=relay"]);
        var identityB = await CreateAgentAsync(["role=relay"]);
        var relayB = await StartRelayAsync("relay-b", identityB, new Dictionary<string, string?>
        {
            ["Peers:0:Name"] = "relay-a",
            ["Peers:0:Identifier"] = identityA.Identity.Identifier.ToString(),
        });
        var relayA = await StartRelayAsync("relay-a", identityA, new Dictionary<string, string?>
        {
            ["Peers:0:Name"] = "relay-b",
            ["Peers:0:Identifier"] = identityB.Identity.Identifier.ToString(),
            ["Peers:0:Endpoint"] = (route ?? (e => e))(relayB.Server.HopEndPoint!).ToString(),
        });
        await UntilAsync(() => relayA.Server.IsLinked("relay-b") && relayB.Server.IsLinked("relay-a"));
        return (relayA, relayB);
    }

    /// <summary>Secure-channel options for an agent; <paramref name="policy"/> judges the peer.</summary>
    public SecureChannelOptions Options(Agent agent, string policy, int maxMessageSize = 16 << 20) => new()
    {
        Identity = agent.Identity,
        ChannelKey = agent.ChannelKey,
        Attestation = agent.Attestation,
        Credentials = agent.Credentials,
        Verifier = new CredentialVerifier(Anchors, Revocations, Time),
        Revocations = Revocations,
        Policy = AccessPolicy.Parse(policy),
        TimeProvider = Time,
        MaxMessageSize = maxMessageSize,
    };

    /// <summary>Opens a hop from <paramref name="agent"/> to <paramref name="relay"/> over TCP, pinned to the relay's identifier.</summary>
    public async Task<SecureChannel> OpenHopAsync(Agent agent, RunningRelay relay, IDuplexPipe? through = null)
    {
        var pipe = through ?? await ConnectTcpAsync(relay.Server.HopEndPoint!);
        return await SecureChannel.ConnectAsync(pipe, Options(agent, $"peer.identifier == \"{relay.Server.Identifier}\"")).WaitAsync(Guard);
    }

    /// <summary>A hop and HELLO: the agent's link to the relay.</summary>
    public async Task<RelayLink> ConnectAsync(Agent agent, RunningRelay relay, string[]? names = null, bool listen = true, int? window = null, IDuplexPipe? through = null)
    {
        var hop = await OpenHopAsync(agent, relay, through);
        var options = new RelayLinkOptions { Listen = listen, Names = names ?? [], TimeProvider = Time, CircuitWindow = window ?? 256 * 1024 };
        var link = await RelayLink.ConnectAsync(hop, options).WaitAsync(Guard);
        _running.Add(link);
        return link;
    }

    /// <summary>Opens a circuit from <paramref name="from"/> to <paramref name="address"/> and accepts it at <paramref name="to"/>.</summary>
    public static async Task<(Circuit Opened, Circuit Accepted, IncomingCircuit Incoming)> CircuitAsync(RelayLink from, RelayLink to, string address)
    {
        var opening = from.OpenCircuitAsync(address);
        var incoming = await to.AcceptCircuitAsync().AsTask().WaitAsync(Guard);
        var accepted = await incoming.AcceptAsync().WaitAsync(Guard);
        return (await opening.WaitAsync(Guard), accepted, incoming);
    }

    /// <summary>An end-to-end secure channel between two agents over a circuit through the relay(s).</summary>
    public async Task<(SecureChannel Initiator, SecureChannel Responder)> EndToEndAsync(Agent a, RelayLink linkA, Agent b, RelayLink linkB, string address)
    {
        var (initiator, responder, _, _) = await EndToEndOverCircuitAsync(a, linkA, b, linkB, address);
        return (initiator, responder);
    }

    /// <summary>As <see cref="EndToEndAsync"/>, also returning the circuit under each end (to observe how it ends).</summary>
    public async Task<(SecureChannel Initiator, SecureChannel Responder, Circuit Opened, Circuit Accepted)> EndToEndOverCircuitAsync(Agent a, RelayLink linkA, Agent b, RelayLink linkB, string address)
    {
        var (opened, accepted, _) = await CircuitAsync(linkA, linkB, address);
        var accept = SecureChannel.AcceptAsync(accepted, Options(b, $"peer.identifier == \"{a.Identity.Identifier}\""));
        var connect = SecureChannel.ConnectAsync(opened, Options(a, $"peer.identifier == \"{b.Identity.Identifier}\""));
        return (await connect.WaitAsync(Guard), await accept.WaitAsync(Guard), opened, accepted);
    }

    /// <summary>
    /// A raw hop from <paramref name="agent"/>: a test plays a (misbehaving) agent by sending relay frames itself.
    /// <paramref name="receiveBufferSize"/> fixes the socket's receive buffer (no autotuning), so a hop that stops
    /// reading stops the relay's writes soon.
    /// </summary>
    public async Task<RawHop> OpenRawHopAsync(Agent agent, RunningRelay relay, int? receiveBufferSize = null)
    {
        var client = await ConnectTcpClientAsync(relay.Server.HopEndPoint!, receiveBufferSize);
        _owned.Add(client);
        var stream = client.GetStream();
        var hop = await OpenHopAsync(agent, relay, new DuplexPipe(PipeReader.Create(stream), PipeWriter.Create(stream)));
        var raw = new RawHop(hop, client);
        _running.Add(raw);
        return raw;
    }

    /// <summary>A TCP connection the test holds (to drop it, or to tune its buffers).</summary>
    public static async Task<TcpClient> ConnectTcpClientAsync(IPEndPoint endpoint, int? receiveBufferSize = null)
    {
        var client = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        try
        {
            if (receiveBufferSize is { } size)
            {
                client.ReceiveBufferSize = size;
            }

            await client.ConnectAsync(endpoint).WaitAsync(Guard);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public static async Task<IDuplexPipe> ConnectTcpAsync(IPEndPoint endpoint)
    {
        var client = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        await client.ConnectAsync(endpoint).WaitAsync(Guard);
        var stream = client.GetStream();
        return new DuplexPipe(PipeReader.Create(stream), PipeWriter.Create(stream));
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

            // Polling a condition, not waiting for time to pass: a 1 ms pause instead of a bare yield leaves the
            // relay's Kestrel threads the CPU on a two-core machine.
            await Task.Delay(1);
        }
    }

    /// <summary>GETs <paramref name="path"/> on the relay's metrics endpoint.</summary>
    public static async Task<(System.Net.HttpStatusCode Status, string Body)> GetAsync(RunningRelay relay, string path)
    {
        using var http = new HttpClient { Timeout = Guard };
        using var response = await http.GetAsync(new Uri($"http://{relay.Server.MetricsEndPoint}{path}"));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The relay's /metrics text.</summary>
    public static async Task<string> ScrapeMetricsAsync(RunningRelay relay) => (await GetAsync(relay, "/metrics")).Body;

    public static byte[] Pattern(int size, int seed) => [.. Enumerable.Range(0, size).Select(i => (byte)((i * 31) + seed))];

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

    internal sealed record Agent(AgentIdentity Identity, DhKeyPair ChannelKey, SignedKeyAttestation Attestation, IReadOnlyList<CredentialChain> Credentials);

    /// <summary>A hop on which the test sends and reads relay frames itself.</summary>
    internal sealed class RawHop(SecureChannel channel, TcpClient client) : IAsyncDisposable
    {
        public SecureChannel Channel { get; } = channel;

        public TcpClient Client { get; } = client;

        public ValueTask SendAsync(byte[] frame) => Channel.SendAsync(frame);

        /// <summary>The next frame; null once the relay closed the hop gracefully.</summary>
        public async Task<byte[]?> ReceiveAsync()
        {
            using var message = await Channel.ReceiveAsync().AsTask().WaitAsync(Guard);
            return message?.Payload.ToArray();
        }

        /// <summary>The next frame, which must be of <paramref name="type"/> (PINGs are answered and skipped).</summary>
        public async Task<byte[]> ExpectAsync(RelayFrameType type)
        {
            while (true)
            {
                var frame = await ReceiveAsync() ?? throw new InvalidOperationException($"The hop closed while a {type} was expected.");
                var actual = RelayFrames.ReadType(frame);
                if (actual == RelayFrameType.Ping)
                {
                    await SendAsync(RelayFrames.Ping(RelayFrameType.Pong, RelayFrames.DecodePing(frame)));
                    continue;
                }

                Assert.True(actual == type, $"Expected {type}, got {actual}.");
                return frame;
            }
        }

        /// <summary>Says HELLO and returns the WELCOME.</summary>
        public async Task<WelcomeFrame> HelloAsync(bool listen = true)
        {
            await SendAsync(RelayFrames.Hello(new HelloFrame(listen, [], null)));
            return RelayFrames.DecodeWelcome(await ExpectAsync(RelayFrameType.Welcome));
        }

        public async Task<ReasonFrame> ExpectGoAwayAsync() => RelayFrames.DecodeGoAway(await ExpectAsync(RelayFrameType.GoAway));

        /// <summary>Waits until the relay has closed the hop: a graceful end or a failed channel, never another frame.</summary>
        public async Task ExpectClosedAsync()
        {
            try
            {
                var frame = await ReceiveAsync();
                Assert.True(frame is null, $"Expected the hop to close, got a {(frame!.Length > 0 ? ((RelayFrameType)frame[0]).ToString() : "empty")} frame.");
            }
            catch (SecureChannelException)
            {
                // The relay dropped the connection without a close record: closed as well.
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Channel.DisposeAsync();
            Client.Dispose();
        }
    }

    internal sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    internal sealed class RunningRelay(WebApplication app, Agent identity) : IAsyncDisposable
    {
        private int _stopped;

        public WebApplication App { get; } = app;

        public Agent Identity { get; } = identity;

        public RelayServer Server => App.Services.GetRequiredService<RelayServer>();

        internal CircuitSwitch Switch => App.Services.GetRequiredService<CircuitSwitch>();

        public async Task StopAsync()
        {
            if (Interlocked.Exchange(ref _stopped, 1) == 0)
            {
                await App.StopAsync().WaitAsync(Guard);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            await App.DisposeAsync();
        }
    }
}
