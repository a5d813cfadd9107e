using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Tests.Channel;

namespace SecureChannels.Protocol.Tests.Circuits;

/// <summary>An agent's <see cref="RelayLink"/> over an in-memory hop whose relay side the test plays by hand.</summary>
internal sealed class RelayLinkHarness : IAsyncDisposable
{
    public static readonly WelcomeFrame DefaultWelcome = new("relay-one", ["service-a"], 1024 * 1024, 64 * 1024);

    private RelayLinkHarness(ChannelTestKit kit, ChannelTestKit.Agent agent, ChannelTestKit.Agent relayAgent, RelayLink link, RelaySide relay)
    {
        Kit = kit;
        Agent = agent;
        RelayAgent = relayAgent;
        Link = link;
        Relay = relay;
    }

    public ChannelTestKit Kit { get; }

    public ChannelTestKit.Agent Agent { get; }

    public ChannelTestKit.Agent RelayAgent { get; }

    public RelayLink Link { get; }

    public RelaySide Relay { get; }

    /// <summary>A hop with HELLO and WELCOME already exchanged.</summary>
    public static async Task<RelayLinkHarness> CreateAsync(Func<TimeProvider, RelayLinkOptions>? options = null, WelcomeFrame? welcome = null, Func<IDuplexPipe, IDuplexPipe>? agentTransport = null)
    {
        var (kit, agent, relayAgent, agentHop, relay) = await OpenHopAsync(agentTransport);
        var connect = RelayLink.ConnectAsync(agentHop, options?.Invoke(kit.Time) ?? new RelayLinkOptions { TimeProvider = kit.Time });
        await relay.ReceiveAsync(RelayFrameType.Hello);
        await relay.SendAsync(RelayFrames.Welcome(welcome ?? DefaultWelcome));
        var link = await connect.WaitAsync(ChannelTestKit.Guard);
        return new RelayLinkHarness(kit, agent, relayAgent, link, relay);
    }

    /// <summary>An open hop and nothing more: the agent's end (initiator, over <paramref name="agentTransport"/>'s wrapping of its pipe) and the relay's end.</summary>
    public static async Task<(ChannelTestKit Kit, ChannelTestKit.Agent Agent, ChannelTestKit.Agent RelayAgent, SecureChannel AgentHop, RelaySide Relay)> OpenHopAsync(Func<IDuplexPipe, IDuplexPipe>? agentTransport = null)
    {
        var kit = await ChannelTestKit.CreateAsync();
        var agent = await kit.CreateAgentAsync(["relay-name=service-a"]);
        var relayAgent = await kit.CreateAgentAsync();
        var (initiator, responder) = ChannelTestKit.CreateConnection();
        var (agentHop, relayHop) = await ChannelTestKit.OpenAsync(kit.Options(agent), kit.Options(relayAgent), (agentTransport?.Invoke(initiator) ?? initiator, responder));
        return (kit, agent, relayAgent, agentHop, new RelaySide(relayHop));
    }

    /// <summary>Opens a circuit from the agent and accepts it on the relay side with <paramref name="peerWindow"/>.</summary>
    public async Task<Circuit> OpenAcceptedAsync(uint peerWindow = 1024 * 1024, string address = "service-b")
    {
        var open = Link.OpenCircuitAsync(address);
        var frame = await Relay.ReceiveAsync(RelayFrameType.Open);
        var id = RelayFrames.ReadCircuit(frame);
        await Relay.SendAsync(RelayFrames.WindowFrame(RelayFrameType.Accept, id, peerWindow));
        return await open.WaitAsync(ChannelTestKit.Guard);
    }

    public async ValueTask DisposeAsync()
    {
        await Link.DisposeAsync();
        await Relay.Hop.DisposeAsync();
        await Kit.DisposeAsync();
    }

    public static async Task<byte[]> ReadExactlyAsync(PipeReader reader, int count)
    {
        var received = new List<byte>(count);
        while (received.Count < count)
        {
            var result = await reader.ReadAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            var take = result.Buffer.Slice(0, Math.Min(result.Buffer.Length, count - received.Count));
            received.AddRange(take.ToArray());
            reader.AdvanceTo(take.End);
            Assert.False(result.IsCompleted && received.Count < count, "The stream ended early.");
        }

        return [.. received];
    }
}

/// <summary>The relay's end of a hop, frame by frame.</summary>
internal sealed class RelaySide(SecureChannel hop)
{
    public SecureChannel Hop => hop;

    public async Task<byte[]> ReceiveAsync()
    {
        using var message = await hop.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
        Assert.NotNull(message);
        return message.Payload.ToArray();
    }

    public async Task<byte[]> ReceiveAsync(RelayFrameType expected)
    {
        var frame = await ReceiveAsync();
        Assert.Equal(expected, (RelayFrameType)frame[0]);
        return frame;
    }

    public Task SendAsync(byte[] frame) => hop.SendAsync(frame).AsTask().WaitAsync(ChannelTestKit.Guard);

    public static byte[] Data(uint circuit, ReadOnlySpan<byte> body)
    {
        var frame = new byte[RelayLimits.CircuitHeaderLength + body.Length];
        RelayFrames.WriteDataHeader(frame, circuit);
        body.CopyTo(frame.AsSpan(RelayLimits.CircuitHeaderLength));
        return frame;
    }
}

/// <summary>
/// The smallest relay that forwards circuits between two hops: WELCOME, OPEN with a fresh even id and the
/// opener's identity, every other circuit frame with its id rewritten. No flow-control enforcement.
/// </summary>
internal sealed class TinyForwarder
{
    private readonly SecureChannel[] _hops;
    private readonly Lock _lock = new();
    private readonly Dictionary<(int Side, uint Id), (int Side, uint Id)> _routes = [];
    private uint _nextEven = 2;

    public TinyForwarder(SecureChannel first, SecureChannel second)
    {
        _hops = [first, second];
        Loops = Task.WhenAll(RunAsync(0), RunAsync(1));
    }

    public Task Loops { get; }

    private async Task RunAsync(int side)
    {
        var hop = _hops[side];
        var other = 1 - side;
        while (true)
        {
            byte[] frame;
            try
            {
                using var message = await hop.ReceiveAsync();
                if (message is null)
                {
                    return;
                }

                frame = message.Payload.ToArray();
            }
            catch (SecureChannelException)
            {
                return;
            }

            var type = (RelayFrameType)frame[0];
            switch (type)
            {
                case RelayFrameType.Hello:
                    await SendAsync(hop, RelayFrames.Welcome(new WelcomeFrame("tiny", [], 1024 * 1024, 16 * 1024)));
                    continue;
                case RelayFrameType.Ping:
                    frame[0] = (byte)RelayFrameType.Pong;
                    await SendAsync(hop, frame);
                    continue;
                case RelayFrameType.GoAway or RelayFrameType.Pong:
                    continue;
            }

            var id = RelayFrames.ReadCircuit(frame);
            (int Side, uint Id) target;
            if (type == RelayFrameType.Open)
            {
                var open = RelayFrames.DecodeOpen(frame);
                lock (_lock)
                {
                    target = (other, _nextEven);
                    _nextEven += 2;
                    _routes[(side, id)] = target;
                    _routes[target] = (side, id);
                }

                var peer = hop.Peer;
                await SendAsync(_hops[other], RelayFrames.Open(target.Id, open with { Opener = peer.Identifier.ToString(), Principal = peer.Principal.ToString() }));
                continue;
            }

            lock (_lock)
            {
                target = _routes[(side, id)];
            }

            RelayFrames.RewriteCircuit(frame, target.Id);
            await SendAsync(_hops[target.Side], frame);
        }
    }

    /// <summary>Forwards best effort: the other hop may already be gone while this one drains.</summary>
    private static async Task SendAsync(SecureChannel hop, byte[] frame)
    {
        try
        {
            await hop.SendAsync(frame);
        }
        catch (SecureChannelException)
        {
        }
    }
}

internal static class FrameExtensions
{
    public static uint ReadU32(this byte[] frame, int offset) => BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(offset));

    public static byte[] Body(this byte[] frame) => frame[RelayLimits.CircuitHeaderLength..];

    public static async Task WriteAllAsync(this PipeWriter writer, ReadOnlyMemory<byte> bytes)
    {
        await writer.WriteAsync(bytes).AsTask().WaitAsync(ChannelTestKit.Guard);
    }

    public static ReadOnlySequence<byte> AsSequence(this byte[] bytes) => new(bytes);
}
